//! Supervised detectors: gradient boosted trees (`gbt`, forust-ml) and a
//! random forest (`rf`, [`forest`]) for binary malicious-vs-benign labels.
//!
//! What both kinds do, beyond fitting trees:
//! - **Missing values**: NaN goes to a learned side at every split (never imputed).
//! - **Categorical text columns**: frequency-rank codes stored in the model ([`encode`]).
//! - **Class imbalance**: `pos_weight` (a number, or `auto` = #neg/#pos) weighs
//!   positive rows; the forest can also draw a balanced bootstrap (`balanced=1`).
//! - **Calibration**: Platt (default) or isotonic, fitted on held-out rows —
//!   the `--valid` table when given, else a stratified `holdout` share (20 %)
//!   of the training rows that the trees never see. The model's score is the
//!   calibrated probability of the positive class.
//! - **Threshold**: the registry's rule (e.g. target FPR) is applied to the
//!   held-out scores ([`crate::Detector::held_out`]), not to training scores.
//! - **Explanations**: global gain importance and permutation importance (drop
//!   in held-out ROC-AUC when a column is shuffled), and per-row exact
//!   TreeSHAP contributions (gbt: log-odds units, from forust; rf:
//!   probability units, [`treeshap`]).
//! - **Evaluation**: stratified k-fold CV and a time-based split ([`eval`]).

pub mod calibrate;
pub mod encode;
pub mod eval;
pub mod forest;
pub mod gbt;
pub mod treeshap;

use crate::options::{OptionReader, TrainOptions};
use crate::registry::TrainData;
use crate::{check_inputs, check_row, top_k, Contribution, Detector, ModelError, Result};
use calibrate::{logit, CalibrationMethod, Calibrator};
use encode::CategoryCodes;
use forest::{Forest, ForestParams};
use gbt::GbtParams;
use palisade_core::{Matrix, ModelBody, ModelParams, Table};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// Option key under which [`prepare_training`] hands the category codes to the trainer.
const CATEGORIES_KEY: &str = "categories";

/// The fitted trees of either kind. (forust's booster is neither `Debug` nor `Clone`.)
///
/// Stored internally tagged (`{"algorithm": "rf", "forest": ...}`). The
/// `Deserialize` is hand-written: serde's derived one for an internally tagged
/// enum first buffers the whole variant into a generic `Content` tree (for a
/// 50 MB forest, hundreds of MB and most of the load time) before reading it;
/// see `TreesVisitor` below.
#[derive(Serialize)]
#[serde(tag = "algorithm", rename_all = "lowercase")]
pub enum Trees {
    Gbt {
        params: GbtParams,
        booster: Box<forust_ml::GradientBooster>,
    },
    Rf {
        forest: Forest,
    },
}

/// The derived (buffering) reading of [`Trees`], for input whose tag is not its first key.
#[derive(Deserialize)]
#[serde(tag = "algorithm", rename_all = "lowercase")]
enum TreesTagged {
    Gbt {
        params: GbtParams,
        booster: Box<forust_ml::GradientBooster>,
    },
    Rf {
        forest: Forest,
    },
}

/// Reads [`Trees`] straight into its fields when `algorithm` is the first key
/// (as [`Trees`]' `Serialize` always writes it), with no intermediate copy;
/// otherwise falls back to buffering the map as a JSON value.
struct TreesVisitor;

impl<'de> serde::de::Visitor<'de> for TreesVisitor {
    type Value = Trees;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map with an `algorithm` key (`gbt` or `rf`)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Trees, A::Error> {
        use serde::de::{Error, IgnoredAny};
        const VARIANTS: &[&str] = &["gbt", "rf"];
        let Some(first) = map.next_key::<String>()? else {
            return Err(A::Error::missing_field("algorithm"));
        };
        if first != "algorithm" {
            let mut m = serde_json::Map::new();
            m.insert(first, map.next_value()?);
            while let Some(k) = map.next_key::<String>()? {
                let v = map.next_value()?;
                m.insert(k, v);
            }
            let t =
                TreesTagged::deserialize(serde_json::Value::Object(m)).map_err(A::Error::custom)?;
            return Ok(match t {
                TreesTagged::Gbt { params, booster } => Trees::Gbt { params, booster },
                TreesTagged::Rf { forest } => Trees::Rf { forest },
            });
        }
        let algorithm: String = map.next_value()?;
        match algorithm.as_str() {
            "rf" => {
                let mut forest = None;
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "forest" if forest.is_some() => {
                            return Err(A::Error::duplicate_field("forest"))
                        }
                        "forest" => forest = Some(map.next_value::<Forest>()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Trees::Rf {
                    forest: forest.ok_or_else(|| A::Error::missing_field("forest"))?,
                })
            }
            "gbt" => {
                let mut params = None;
                let mut booster = None;
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "params" if params.is_some() => {
                            return Err(A::Error::duplicate_field("params"))
                        }
                        "params" => params = Some(map.next_value::<GbtParams>()?),
                        "booster" if booster.is_some() => {
                            return Err(A::Error::duplicate_field("booster"))
                        }
                        "booster" => {
                            booster = Some(map.next_value::<Box<forust_ml::GradientBooster>>()?)
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Trees::Gbt {
                    params: params.ok_or_else(|| A::Error::missing_field("params"))?,
                    booster: booster.ok_or_else(|| A::Error::missing_field("booster"))?,
                })
            }
            other => Err(A::Error::unknown_variant(other, VARIANTS)),
        }
    }
}

impl<'de> Deserialize<'de> for Trees {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Trees, D::Error> {
        d.deserialize_map(TreesVisitor)
    }
}

impl Trees {
    /// Uncalibrated margin: log-odds for gbt, logit of the vote share for rf.
    pub fn margin(&self, x: &Matrix) -> Vec<f64> {
        match self {
            Trees::Gbt { booster, .. } => gbt::predict_margin(booster, x),
            Trees::Rf { forest } => forest.predict(x).into_iter().map(logit).collect(),
        }
    }

    fn gain_importance(&self, d: usize) -> Vec<f64> {
        match self {
            Trees::Gbt { booster, .. } => gbt::gain_importance(booster, d),
            Trees::Rf { forest } => forest.gain_importance.clone(),
        }
    }
}

/// Everything a supervised kind learns to fit one set of trees.
#[derive(Debug, Clone)]
pub struct FitSpec {
    pub kind: &'static str,
    pub gbt: GbtParams,
    pub rf: ForestParams,
    /// `None` = `auto` (#negatives / #positives).
    pub pos_weight: Option<f64>,
    pub calibration: CalibrationMethod,
    pub holdout: f64,
    /// 0 = all cores.
    pub threads: usize,
    pub seed: u64,
}

impl FitSpec {
    /// Read the options of `kind` (`gbt` or `rf`).
    pub fn from_options(kind: &'static str, r: &OptionReader, seed: u64) -> Result<FitSpec> {
        let bad = |name: &str, msg: String| ModelError::BadOption {
            name: name.into(),
            msg,
        };
        let trees = r.usize("trees", 100)?;
        if trees == 0 {
            return Err(bad("trees", "must be at least 1".into()));
        }
        let pos_weight = match r.string("pos_weight", "1")?.trim() {
            "auto" | "balanced" => None,
            s => {
                let v: f64 = s
                    .parse()
                    .map_err(|_| bad("pos_weight", format!("`{s}` is not a number or `auto`")))?;
                if !(v.is_finite() && v > 0.0) {
                    return Err(bad("pos_weight", format!("must be positive, got {v}")));
                }
                Some(v)
            }
        };
        let calibration: CalibrationMethod = r
            .string("calibration", "platt")?
            .parse()
            .map_err(|e: String| bad("calibration", e))?;
        let holdout = r.f64("holdout", 0.2)?;
        if !(0.0..0.9).contains(&holdout) {
            return Err(bad(
                "holdout",
                format!("must be in [0, 0.9), got {holdout}"),
            ));
        }
        let threads = r.usize("threads", 0)?;
        let max_bins = r.usize("max_bins", 255)?.clamp(2, 255);
        let max_depth = r.usize("max_depth", 0)?;
        let mut gbt = GbtParams::default();
        let mut rf = ForestParams::default();
        if kind == "gbt" {
            gbt.iterations = trees;
            let d = GbtParams::default();
            gbt.learning_rate = r.f64("learning_rate", d.learning_rate as f64)? as f32;
            gbt.max_leaves = r.usize("leaves", d.max_leaves)?.max(2);
            if max_depth > 0 {
                gbt.max_depth = max_depth;
            }
            gbt.min_leaf_weight = r.f64("min_leaf_weight", d.min_leaf_weight as f64)? as f32;
            gbt.l2 = r.f64("l2", d.l2 as f64)? as f32;
            gbt.tiled = r.string("tiled", "0")?.trim() == "1";
            gbt.subsample = r.f64("subsample", 1.0)? as f32;
            gbt.colsample_bytree = r.f64("colsample", 1.0)?;
            gbt.nbins = max_bins as u16;
            gbt.depthwise = match r.string("grow", "depth")?.trim() {
                "leaf" => false,
                "depth" => true,
                o => return Err(bad("grow", format!("`{o}` is not `leaf` or `depth`"))),
            };
            gbt.seed = seed;
            if !(gbt.learning_rate > 0.0 && gbt.subsample > 0.0 && gbt.subsample <= 1.0) {
                return Err(bad(
                    "learning_rate/subsample",
                    "must be positive (subsample at most 1)".into(),
                ));
            }
        } else {
            rf.n_trees = trees;
            let mtry = r.usize("mtry", 0)?;
            rf.mtry = (mtry > 0).then_some(mtry);
            rf.max_depth = (max_depth > 0).then_some(max_depth);
            rf.min_samples_leaf = r.usize("min_leaf", 1)?.max(1);
            rf.balanced_bootstrap = match r.string("balanced", "0")?.trim() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                o => return Err(bad("balanced", format!("`{o}` is not 0/1"))),
            };
            rf.max_bins = max_bins;
            rf.seed = seed;
        }
        Ok(FitSpec {
            kind,
            gbt,
            rf,
            pos_weight,
            calibration,
            holdout,
            threads,
            seed,
        })
    }

    pub fn default_for(kind: &'static str, seed: u64) -> FitSpec {
        FitSpec {
            kind,
            gbt: GbtParams {
                seed,
                ..Default::default()
            },
            rf: ForestParams {
                seed,
                ..Default::default()
            },
            pos_weight: Some(1.0),
            calibration: CalibrationMethod::Platt,
            holdout: 0.2,
            threads: 0,
            seed,
        }
    }

    fn pool(&self) -> Result<rayon::ThreadPool> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build()
            .map_err(|e| ModelError::Train {
                kind: self.kind.into(),
                msg: format!("thread pool: {e}"),
            })
    }

    /// Fit trees on labelled rows only (`y` ∈ {0,1}).
    pub fn fit_trees(&self, x: &Matrix, y: &[f64]) -> Result<Trees> {
        let npos = y.iter().filter(|&&v| v > 0.5).count();
        let nneg = y.len() - npos;
        if npos == 0 || nneg == 0 {
            return Err(ModelError::Data(format!(
                "model `{}` needs both classes among the training rows, got {npos} positive and {nneg} negative",
                self.kind
            )));
        }
        let pw = self.pos_weight.unwrap_or(nneg as f64 / npos as f64);
        let x = sanitize(x);
        let err = |msg: String| ModelError::Train {
            kind: self.kind.into(),
            msg,
        };
        if self.kind == "gbt" {
            let p = GbtParams {
                pos_weight: pw,
                ..self.gbt.clone()
            };
            let threads = (self.threads > 0).then_some(self.threads);
            let booster = gbt::fit(&x, y, &p, threads).map_err(err)?;
            Ok(Trees::Gbt {
                params: p,
                booster: Box::new(booster),
            })
        } else {
            let p = ForestParams {
                pos_weight: pw,
                ..self.rf.clone()
            };
            let forest = self
                .pool()?
                .install(|| Forest::fit(&x, y, &p))
                .map_err(err)?;
            Ok(Trees::Rf { forest })
        }
    }
}

/// ±inf become ±f64::MAX so every split threshold stays finite (and JSON-safe).
pub fn sanitize(x: &Matrix) -> Matrix {
    if x.data.iter().all(|v| !v.is_infinite()) {
        return x.clone();
    }
    let data = x
        .data
        .iter()
        .map(|&v| {
            if v.is_infinite() {
                v.signum() * f64::MAX
            } else {
                v
            }
        })
        .collect();
    Matrix {
        rows: x.rows,
        cols: x.cols,
        data,
    }
}

/// Global importance of each feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    pub feature: String,
    /// Share of the total split gain (gbt: loss reduction; rf: Gini decrease).
    pub gain: f64,
    /// Drop of held-out ROC-AUC when the column is shuffled (NaN without held-out rows).
    pub permutation: f64,
}

/// The learned state of a `gbt` or `rf` model (its `ModelBody::params`).
#[derive(Serialize, Deserialize)]
pub struct Supervised {
    pub kind: String,
    pub names: Vec<String>,
    pub trees: Trees,
    pub calibrator: Calibrator,
    /// How the calibrator was fitted (method, rows).
    pub calibration: String,
    pub importance: Vec<Importance>,
    /// Codes of the categorical input columns (applied before scoring).
    #[serde(default)]
    pub categories: Option<CategoryCodes>,
    #[serde(default)]
    pub notes: Vec<String>,
    /// Calibrated scores and labels of the held-out rows (for the threshold; not stored).
    #[serde(skip)]
    pub held_out: Option<(Vec<f64>, Vec<bool>)>,
}

/// Stratified split of labelled row indices into (fit, held out).
pub fn stratified_holdout(y: &[f64], frac: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x005E_ED0F_CA1B);
    let mut fit = Vec::new();
    let mut held = Vec::new();
    for class in [true, false] {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| (y[i] > 0.5) == class).collect();
        idx.shuffle(&mut rng);
        let k = (idx.len() as f64 * frac).round() as usize;
        held.extend_from_slice(&idx[..k]);
        fit.extend_from_slice(&idx[k..]);
    }
    fit.sort_unstable();
    held.sort_unstable();
    (fit, held)
}

/// Rows used for permutation importance at most (a stratified subsample
/// beyond): d extra predictions of a deep forest over a big holdout would
/// otherwise dominate training time.
const PERMUTATION_ROWS: usize = 2000;

/// Drop of ROC-AUC when each column is shuffled (one seeded permutation).
pub fn permutation_importance(trees: &Trees, x: &Matrix, y: &[f64], seed: u64) -> Vec<f64> {
    if x.rows > PERMUTATION_ROWS {
        let (_, keep) =
            stratified_holdout(y, PERMUTATION_ROWS as f64 / x.rows as f64, seed ^ 0x9E37);
        let ys: Vec<f64> = keep.iter().map(|&i| y[i]).collect();
        return permutation_importance(trees, &x.select_rows(&keep), &ys, seed);
    }
    let labels: Vec<bool> = y.iter().map(|&v| v > 0.5).collect();
    let base = crate::metrics::roc_auc(&trees.margin(x), &labels);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xBEEF);
    (0..x.cols)
        .map(|j| {
            let mut col = x.column(j);
            col.shuffle(&mut rng);
            let mut xp = x.clone();
            for (i, v) in col.into_iter().enumerate() {
                xp.data[i * x.cols + j] = v;
            }
            base - crate::metrics::roc_auc(&trees.margin(&xp), &labels)
        })
        .collect()
}

impl Supervised {
    /// Train on labelled rows of `x` (labels NaN = unlabelled, left out),
    /// calibrating on `valid` when given, else on a stratified holdout.
    pub fn fit(
        spec: &FitSpec,
        x: &Matrix,
        labels: &[f64],
        names: &[String],
        valid: Option<(&Matrix, &[f64])>,
    ) -> Result<Supervised> {
        if labels.len() != x.rows {
            return Err(ModelError::Data(format!(
                "{} labels for {} rows",
                labels.len(),
                x.rows
            )));
        }
        let labelled: Vec<usize> = (0..x.rows).filter(|&i| !labels[i].is_nan()).collect();
        let mut notes = Vec::new();
        if labelled.len() < x.rows {
            notes.push(format!(
                "{} unlabelled training rows left out",
                x.rows - labelled.len()
            ));
        }
        let xl = x.select_rows(&labelled);
        let yl: Vec<f64> = labelled.iter().map(|&i| labels[i]).collect();
        let (x_fit, y_fit, x_cal, y_cal, how) = match valid {
            Some((vx, vy)) => {
                if vx.cols != x.cols {
                    return Err(ModelError::Data(format!(
                        "validation table has {} features, training has {}",
                        vx.cols, x.cols
                    )));
                }
                let keep: Vec<usize> = (0..vx.rows)
                    .filter(|&i| vy.get(i).is_some_and(|v| !v.is_nan()))
                    .collect();
                let vyl: Vec<f64> = keep.iter().map(|&i| vy[i]).collect();
                (
                    xl,
                    yl,
                    vx.select_rows(&keep),
                    vyl,
                    "the validation table".to_string(),
                )
            }
            None if spec.holdout > 0.0 => {
                let (fi, hi) = stratified_holdout(&yl, spec.holdout, spec.seed);
                let yf = fi.iter().map(|&i| yl[i]).collect();
                let yh = hi.iter().map(|&i| yl[i]).collect();
                let how = format!(
                    "a stratified {:.0}% holdout of the training rows",
                    spec.holdout * 100.0
                );
                (xl.select_rows(&fi), yf, xl.select_rows(&hi), yh, how)
            }
            None => (
                xl,
                yl,
                Matrix::zeros(0, x.cols),
                Vec::new(),
                "no held-out rows".to_string(),
            ),
        };
        let trees = spec.fit_trees(&x_fit, &y_fit)?;
        let x_cal = sanitize(&x_cal);
        let m_cal = trees.margin(&x_cal);
        let calibrator = Calibrator::fit(spec.calibration, &m_cal, &y_cal);
        let calibration = match &calibrator {
            Calibrator::Identity if spec.calibration != CalibrationMethod::None => {
                format!("none (too few held-out rows of a class in {how})")
            }
            _ => format!("{:?} on {} rows of {how}", spec.calibration, y_cal.len()).to_lowercase(),
        };
        notes.push(format!(
            "trained on {} rows; calibration: {calibration}",
            y_fit.len()
        ));
        let gain = trees.gain_importance(x.cols);
        let perm = if y_cal.is_empty() {
            vec![f64::NAN; x.cols]
        } else {
            spec.pool()?
                .install(|| permutation_importance(&trees, &x_cal, &y_cal, spec.seed))
        };
        let importance = names
            .iter()
            .enumerate()
            .map(|(j, n)| Importance {
                feature: n.clone(),
                gain: gain.get(j).copied().unwrap_or(0.0),
                permutation: perm.get(j).copied().unwrap_or(f64::NAN),
            })
            .collect();
        let held_out = (!y_cal.is_empty()).then(|| {
            (
                m_cal.iter().map(|&m| calibrator.apply(m)).collect(),
                y_cal.iter().map(|&v| v > 0.5).collect(),
            )
        });
        Ok(Supervised {
            kind: spec.kind.to_string(),
            names: names.to_vec(),
            trees,
            calibrator,
            calibration,
            importance,
            categories: None,
            notes,
            held_out,
        })
    }

    /// Calibrated probability of the positive class per row.
    pub fn predict(&self, x: &Matrix) -> Vec<f64> {
        self.trees
            .margin(&sanitize(x))
            .into_iter()
            .map(|m| self.calibrator.apply(m))
            .collect()
    }

    /// TreeSHAP values of one row (gbt: log-odds; rf: probability) and the base value.
    pub fn shap_row(&self, row: &[f64]) -> (Vec<f64>, f64) {
        let x = sanitize(&Matrix {
            rows: 1,
            cols: row.len(),
            data: row.to_vec(),
        });
        match &self.trees {
            Trees::Gbt { booster, .. } => {
                let (mut c, b) = gbt::contributions(booster, &x);
                (
                    c.pop().unwrap_or_default(),
                    b.first().copied().unwrap_or(0.0),
                )
            }
            Trees::Rf { forest } => {
                let mut phi = vec![0.0; row.len()];
                let mut base = 0.0;
                let mut scratch = treeshap::ShapScratch::default();
                for t in &forest.trees {
                    treeshap::tree_shap_with(t, &x.data, &mut phi, &mut scratch);
                    base += treeshap::expected_value(t);
                }
                let n = forest.trees.len().max(1) as f64;
                phi.iter_mut().for_each(|p| *p /= n);
                (phi, base / n)
            }
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |msg: String| ModelError::BadParams {
            kind: self.kind.clone(),
            msg,
        };
        match &self.trees {
            Trees::Rf { forest } => {
                forest.validate().map_err(bad)?;
                if forest.n_features != self.names.len() {
                    return Err(bad(format!(
                        "forest has {} inputs, {} names",
                        forest.n_features,
                        self.names.len()
                    )));
                }
            }
            Trees::Gbt { booster, .. } => {
                if booster.trees.is_empty() {
                    return Err(bad("booster has no trees".into()));
                }
            }
        }
        Ok(())
    }
}

impl Detector for Supervised {
    fn kind(&self) -> &'static str {
        if self.kind == "gbt" {
            "gbt"
        } else {
            "rf"
        }
    }
    fn n_inputs(&self) -> usize {
        self.names.len()
    }
    fn score(&self, x: &Matrix) -> Result<Vec<f64>> {
        check_inputs(Detector::kind(self), self.names.len(), x)?;
        Ok(self.predict(x))
    }
    fn explain(&self, x: &Matrix, row: usize, k: usize) -> Result<Vec<Contribution>> {
        check_inputs(Detector::kind(self), self.names.len(), x)?;
        check_row(x, row)?;
        let (phi, _) = self.shap_row(x.row(row));
        let c = self
            .names
            .iter()
            .zip(x.row(row))
            .zip(phi)
            .map(|((n, &v), p)| Contribution {
                feature: n.clone(),
                value: v,
                contribution: p,
            })
            .collect();
        Ok(top_k(c, k))
    }
    fn to_params(&self) -> Result<serde_json::Value> {
        crate::to_json(&self.kind, self)
    }
    fn to_model_params(&self) -> Result<ModelParams> {
        Ok(ModelParams::from_serialize(self)?)
    }
    fn notes(&self) -> Vec<String> {
        let mut n = self.notes.clone();
        if let Some(c) = &self.categories {
            n.extend(c.notes());
        }
        n
    }
    fn held_out(&self) -> Option<(Vec<f64>, Vec<bool>)> {
        self.held_out.clone()
    }
}

fn train_kind(kind: &'static str, data: &TrainData, r: &OptionReader) -> Result<Box<dyn Detector>> {
    let spec = FitSpec::from_options(kind, r, data.opts.seed)?;
    let categories = match r.string(CATEGORIES_KEY, "")?.as_str() {
        "" => None,
        s => Some(
            serde_json::from_str::<CategoryCodes>(s).map_err(|e| ModelError::BadOption {
                name: CATEGORIES_KEY.into(),
                msg: format!("internal category codes do not parse: {e}"),
            })?,
        ),
    };
    let labels = data.labels.as_ref().ok_or_else(|| ModelError::BadOption {
        name: "label-col".into(),
        msg: format!("model `{kind}` is supervised and needs a label column"),
    })?;
    let valid = data.validation.as_ref().map(|(m, l)| (m, &l[..]));
    let mut model = Supervised::fit(&spec, &data.x, labels, &data.names, valid)?;
    model.categories = categories;
    Ok(Box::new(model))
}

/// Registry trainer for `gbt`.
pub fn train_gbt(data: &TrainData, r: &OptionReader) -> Result<Box<dyn Detector>> {
    train_kind("gbt", data, r)
}

/// Registry trainer for `rf`.
pub fn train_rf(data: &TrainData, r: &OptionReader) -> Result<Box<dyn Detector>> {
    train_kind("rf", data, r)
}

fn load_kind(kind: &str, p: &ModelParams) -> Result<Box<dyn Detector>> {
    let m: Supervised = p.parse().map_err(|e| ModelError::BadParams {
        kind: kind.into(),
        msg: e.to_string(),
    })?;
    if m.kind != kind {
        return Err(ModelError::BadParams {
            kind: kind.into(),
            msg: format!("parameters are of kind `{}`", m.kind),
        });
    }
    m.validate()?;
    Ok(Box::new(m))
}

pub fn load_gbt(p: &ModelParams) -> Result<Box<dyn Detector>> {
    load_kind("gbt", p)
}

pub fn load_rf(p: &ModelParams) -> Result<Box<dyn Detector>> {
    load_kind("rf", p)
}

/// Registry hook before training: for `gbt`/`rf`, code the text feature
/// columns of `table` (and of the validation table) and hand the codes to
/// the trainer. `None` when nothing needs coding.
pub fn prepare_training(
    kind: &str,
    table: &Table,
    opts: &TrainOptions,
) -> Result<Option<(Table, TrainOptions)>> {
    if !crate::SUPERVISED_KINDS.contains(&kind) {
        return Ok(None);
    }
    let codes = CategoryCodes::fit(table, opts.label_col.as_deref());
    if codes.is_empty() {
        return Ok(None);
    }
    let enc = codes.apply(table).map_err(ModelError::Data)?;
    let mut o = opts.clone();
    if let Some(v) = &opts.validation {
        o.validation = Some(
            codes
                .apply(v)
                .map_err(|e| ModelError::Data(format!("validation table: {e}")))?,
        );
    }
    let json = serde_json::to_string(&codes).map_err(|e| ModelError::Data(e.to_string()))?;
    o.options
        .insert(CATEGORIES_KEY.into(), serde_json::Value::String(json));
    Ok(Some((enc, o)))
}

/// Registry hook before scoring: apply a `gbt`/`rf` model's category codes to `table`.
pub fn prepare_scoring(body: &ModelBody, table: &Table) -> Result<Option<Table>> {
    if !crate::SUPERVISED_KINDS.contains(&body.kind.as_str()) {
        return Ok(None);
    }
    /// Only the codes (the field CATEGORIES_KEY names): the trees in the
    /// same text are skipped unparsed.
    #[derive(serde::Deserialize)]
    struct Codes {
        #[serde(default, rename = "categories")]
        codes: Option<CategoryCodes>,
    }
    let codes: Codes = body.params.parse().map_err(|e| ModelError::BadParams {
        kind: body.kind.clone(),
        msg: format!("{CATEGORIES_KEY}: {e}"),
    })?;
    let Some(codes) = codes.codes else {
        return Ok(None);
    };
    Ok(Some(codes.apply(table).map_err(ModelError::Data)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_forest() -> Forest {
        let n = 200;
        let data: Vec<f64> = (0..n * 3).map(|i| ((i * 7919) % 101) as f64).collect();
        let x = Matrix::new(n, 3, data).unwrap();
        let y: Vec<f64> = (0..n)
            .map(|i| f64::from(x.get(i, 0) + x.get(i, 2) > 100.0))
            .collect();
        Forest::fit(
            &x,
            &y,
            &ForestParams {
                n_trees: 3,
                max_depth: Some(5),
                ..Default::default()
            },
        )
        .unwrap()
    }

    fn forest_of(t: Trees) -> Forest {
        match t {
            Trees::Rf { forest } => forest,
            Trees::Gbt { .. } => panic!("expected rf"),
        }
    }

    #[test]
    fn trees_read_back_from_text_and_value_with_the_tag_first_or_last() {
        let forest = small_forest();
        let v = serde_json::to_value(Trees::Rf {
            forest: forest.clone(),
        })
        .unwrap();
        // The writer puts the tag first.
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.starts_with(r#"{"algorithm":"rf""#), "{}", &text[..40]);
        assert_eq!(forest_of(serde_json::from_str(&text).unwrap()), forest);
        assert_eq!(forest_of(Trees::deserialize(&v).unwrap()), forest);
        // Tag last (hand-edited or other writers): the buffered fallback still reads it.
        let text2 = format!(
            r#"{{"forest":{},"extra":1,"algorithm":"rf"}}"#,
            serde_json::to_string(&forest).unwrap()
        );
        assert_eq!(forest_of(serde_json::from_str(&text2).unwrap()), forest);
        // Unknown keys beside the tag are ignored, as the derived reader did.
        let text3 = text.replacen(
            r#""algorithm":"rf","#,
            r#""algorithm":"rf","x":[1,{"a":2}],"#,
            1,
        );
        assert_eq!(forest_of(serde_json::from_str(&text3).unwrap()), forest);
        // Errors name what is wrong.
        let e = serde_json::from_str::<Trees>(r#"{"algorithm":"svm","forest":1}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("svm"), "{e}");
        let e = serde_json::from_str::<Trees>(r#"{"algorithm":"rf"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("forest"), "{e}");
        let e = serde_json::from_str::<Trees>(r#"{"forest":1}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("algorithm"), "{e}");
    }
}
