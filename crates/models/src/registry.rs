//! The one place that maps a model kind to its code: training, loading, and
//! building a model's input from a table.
//!
//! ## Plugging in a model kind (supervised: `gbt`, `rf`)
//! A trainer is `fn(&TrainData, &OptionReader) -> Result<Box<dyn Detector>>`
//! and a loader is `fn(&serde_json::Value) -> Result<Box<dyn Detector>>` (the
//! value is what `Detector::to_params` returned). Add them to `fit_kind` and
//! [`load`] at the lines marked `SUPERVISED HOOK`. Read model options through
//! the `OptionReader` (unknown keys become an error). `TrainData::labels` is
//! guaranteed present for kinds in [`SUPERVISED_KINDS`]; `TrainData::validation`
//! holds the `--valid` table's matrix and labels when given. The registry does
//! everything else: feature selection, threshold, statistics, model file.

use crate::options::{OptionReader, TrainOptions};
use crate::{Detector, ModelError, Result};
use palisade_core::{
    ColumnData, ColumnRole, ColumnStats, FeatureSchema, FeatureType, Matrix, ModelBody, Table,
    TrainingInfo,
};

pub const UNSUPERVISED_KINDS: &[&str] = &["iforest", "pca", "autoencoder", "ensemble"];
pub const SUPERVISED_KINDS: &[&str] = &["gbt", "rf"];
pub const KINDS: &[&str] = &["iforest", "pca", "autoencoder", "ensemble", "gbt", "rf"];

/// What a trainer gets.
pub struct TrainData<'a> {
    /// Raw numeric features, in the order of `names`.
    pub x: Matrix,
    pub names: Vec<String>,
    /// 0/1 labels per row, NaN = unlabelled; `None` without a label column.
    pub labels: Option<Vec<f64>>,
    /// Validation matrix (same columns) and its labels.
    pub validation: Option<(Matrix, Vec<f64>)>,
    pub opts: &'a TrainOptions,
}

/// A trained or loaded model: its file body and its live detector.
pub struct Model {
    pub body: ModelBody,
    pub detector: Box<dyn Detector>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("kind", &self.body.kind)
            .finish()
    }
}

/// Train a model of `kind` on the `Feature` columns of `table`.
///
/// Left out (and listed in `training.left_out`): identity columns, the label
/// column, `Meta` columns and non-numeric (categorical) features.
pub fn train(kind: &str, table: &Table, opts: &TrainOptions) -> Result<Model> {
    if !KINDS.contains(&kind) {
        return Err(ModelError::UnknownKind(kind.to_string()));
    }
    // SUPERVISED HOOK (categoricals): gbt/rf code text feature columns (codes stored in the model).
    let prepared = crate::supervised::prepare_training(kind, table, opts)?;
    let (table, opts) = match &prepared {
        Some((t, o)) => (t, o),
        None => (table, opts),
    };
    let (schema, left_out) = select_features(table, opts.label_col.as_deref())?;
    if schema.features.is_empty() {
        return Err(ModelError::Data(format!(
            "the table has no numeric feature columns to train on (left out: {})",
            left_out.join("; ")
        )));
    }
    if table.nrows() < 2 {
        return Err(ModelError::Data(format!(
            "need at least 2 rows to train, the table has {}",
            table.nrows()
        )));
    }
    let x = table.numeric_matrix(&schema)?;
    let names: Vec<String> = schema.features.iter().map(|f| f.name.clone()).collect();
    let labels = match &opts.label_col {
        Some(c) => Some(label_values(table, c)?),
        None => None,
    };
    if SUPERVISED_KINDS.contains(&kind) {
        let n = labels
            .as_ref()
            .map(|l| l.iter().filter(|v| !v.is_nan()).count())
            .unwrap_or(0);
        if n == 0 {
            return Err(ModelError::BadOption {
                name: "label-col".into(),
                msg: format!(
                    "model `{kind}` is supervised and needs a label column with 0/1 values"
                ),
            });
        }
    }
    let validation = match &opts.validation {
        Some(v) => {
            let c = opts
                .label_col
                .as_deref()
                .ok_or_else(|| ModelError::BadOption {
                    name: "valid".into(),
                    msg: "a validation table needs --label-col".into(),
                })?;
            // the validation table's own faults, named as its: the caller's
            // context names the training table
            let x = matrix_for(&schema, v).map_err(|e| ModelError::BadOption {
                name: "valid".into(),
                msg: format!("the validation table does not match the training table: {e}"),
            })?;
            Some((x, label_values(v, c)?))
        }
        None => None,
    };
    let data = TrainData {
        x,
        names,
        labels,
        validation,
        opts,
    };
    let detector = fit_detector(kind, &data)?;

    let train_scores = detector.score(&data.x)?;
    // Threshold: validation rows if given, else labelled training rows (only
    // for the target-FPR rule, which is the only one reading labels).
    let labelled = match (&data.validation, &data.labels) {
        (Some((vx, vl)), _) => Some((detector.score(vx)?, vl.clone())),
        // A supervised model's own holdout beats its (over-fitted) training scores.
        (None, Some(_)) if detector.held_out().is_some() => detector.held_out().map(|(s, l)| {
            (
                s,
                l.into_iter().map(|b| if b { 1.0 } else { 0.0 }).collect(),
            )
        }),
        (None, Some(l)) => Some((train_scores.clone(), l.clone())),
        _ => None,
    };
    let labelled = labelled.map(|(s, l)| {
        let pairs: Vec<(f64, bool)> = s
            .iter()
            .zip(&l)
            .filter(|(_, y)| !y.is_nan())
            .map(|(&s, &y)| (s, y > 0.5))
            .collect();
        (
            pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
            pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
        )
    });
    let threshold = crate::threshold::choose(
        &opts.threshold,
        &train_scores,
        labelled.as_ref().map(|(s, l)| (&s[..], &l[..])),
    )?;

    let feature_stats = (0..data.x.cols)
        .map(|j| ColumnStats::compute(&data.names[j], data.x.column(j)))
        .collect();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let body = ModelBody {
        kind: kind.to_string(),
        schema,
        params: detector.to_model_params()?,
        threshold: Some(threshold),
        training: TrainingInfo {
            command: opts.command.clone(),
            trained_at: palisade_core::event::format_timestamp_us(now_us).unwrap_or_default(),
            rows: data.x.rows,
            palisade_version: env!("CARGO_PKG_VERSION").to_string(),
            seed: Some(opts.seed),
            left_out,
            feature_stats,
            notes: detector.notes(),
        },
    };
    Ok(Model { body, detector })
}

/// Fit only the detector (no threshold, statistics or model body); rejects
/// options the kind does not read. For benchmarks and for composing models.
pub fn fit_detector(kind: &str, data: &TrainData) -> Result<Box<dyn Detector>> {
    let reader = data.opts.reader();
    let detector = fit_kind(kind, data, &reader)?;
    reader.finish(kind)?;
    Ok(detector)
}

/// Dispatch training to the kind's code.
fn fit_kind(kind: &str, data: &TrainData, r: &OptionReader) -> Result<Box<dyn Detector>> {
    match kind {
        "iforest" => crate::iforest::fit(data, r),
        "pca" => crate::pca::fit(data, r),
        "autoencoder" => crate::autoencoder::fit(data, r),
        "ensemble" => crate::ensemble::fit(data, r),
        // SUPERVISED HOOK (train)
        "gbt" => crate::supervised::train_gbt(data, r),
        "rf" => crate::supervised::train_rf(data, r),
        other => Err(ModelError::UnknownKind(other.to_string())),
    }
}

/// The live detector stored in a model body (checks its input width against
/// the schema).
pub fn load(body: &ModelBody) -> Result<Box<dyn Detector>> {
    let p = &body.params;
    // the small kinds load from a `Value`; the forests parse their text straight
    let value = || {
        p.to_value().map_err(|e| ModelError::BadParams {
            kind: body.kind.clone(),
            msg: e.to_string(),
        })
    };
    let det: Box<dyn Detector> = match body.kind.as_str() {
        "iforest" => crate::iforest::load(&value()?)?,
        "pca" => crate::pca::load(&value()?)?,
        "autoencoder" => crate::autoencoder::load(&value()?)?,
        "ensemble" => crate::ensemble::load(&value()?)?,
        // SUPERVISED HOOK (load)
        "gbt" => crate::supervised::load_gbt(p)?,
        "rf" => crate::supervised::load_rf(p)?,
        other => return Err(ModelError::UnknownKind(other.to_string())),
    };
    let expected = numeric_features(&body.schema).len();
    if det.n_inputs() != expected {
        return Err(ModelError::BadParams {
            kind: body.kind.clone(),
            msg: format!(
                "parameters expect {} inputs, the schema lists {expected} numeric features",
                det.n_inputs()
            ),
        });
    }
    Ok(det)
}

impl Model {
    /// Parse, check and load a model file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        let body = ModelBody::from_bytes(bytes)?;
        let detector = load(&body)?;
        Ok(Model { body, detector })
    }

    /// The model input built from `table`, columns looked up by name.
    pub fn matrix(&self, table: &Table) -> Result<Matrix> {
        // SUPERVISED HOOK (categoricals): apply a gbt/rf model's stored category codes.
        match crate::supervised::prepare_scoring(&self.body, table)? {
            Some(t) => matrix_for(&self.body.schema, &t),
            None => matrix_for(&self.body.schema, table),
        }
    }

    /// Score every row of `table`.
    pub fn score_table(&self, table: &Table) -> Result<Vec<f64>> {
        self.detector.score(&self.matrix(table)?)
    }
}

fn numeric_features(schema: &FeatureSchema) -> Vec<&str> {
    schema
        .features
        .iter()
        .filter(|f| f.dtype != FeatureType::Categorical)
        .map(|f| f.name.as_str())
        .collect()
}

/// Build the input matrix for a model `schema` from `table`. Columns are found
/// by name (so a reordered table is fine); a missing column, a text column
/// where a number is expected, or a column the table marks as identity/label
/// is a schema-mismatch error naming the column.
pub fn matrix_for(schema: &FeatureSchema, table: &Table) -> Result<Matrix> {
    let mut missing = Vec::new();
    for f in &schema.features {
        match table.column(&f.name) {
            None => missing.push(f.name.clone()),
            Some(c) => {
                if matches!(c.data, ColumnData::Str(_)) && f.dtype != FeatureType::Categorical {
                    return Err(palisade_core::CoreError::SchemaMismatch(format!(
                        "column `{}` holds text, the model expects numbers",
                        f.name
                    ))
                    .into());
                }
                if c.role == ColumnRole::Identity || c.role == ColumnRole::Label {
                    return Err(palisade_core::CoreError::SchemaMismatch(format!(
                        "column `{}` is a {:?} column in this table, the model uses it as a feature",
                        f.name, c.role
                    ))
                    .into());
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(palisade_core::CoreError::SchemaMismatch(format!(
            "the table lacks {} feature column(s) the model was trained on: {}",
            missing.len(),
            missing.join(", ")
        ))
        .into());
    }
    let extra: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| c.role == ColumnRole::Feature && schema.index_of(&c.name).is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !extra.is_empty() {
        tracing::warn!(
            "the table has feature columns the model does not use: {}",
            extra.join(", ")
        );
    }
    Ok(table.numeric_matrix(schema)?)
}

/// Numeric features of `table` that a model may read, and what was left out.
pub fn select_features(
    table: &Table,
    label_col: Option<&str>,
) -> Result<(FeatureSchema, Vec<String>)> {
    let full = table.feature_schema();
    let mut left_out = Vec::new();
    if let Some(l) = label_col {
        if table.column(l).is_none() {
            return Err(ModelError::BadOption {
                name: "label-col".into(),
                msg: format!("the table has no column `{l}`"),
            });
        }
    }
    let mut features = Vec::new();
    for f in full.features {
        if Some(f.name.as_str()) == label_col {
            left_out.push(format!("{} (label)", f.name));
        } else if full.identity.contains(&f.name) {
            left_out.push(format!("{} (identity)", f.name));
        } else if f.dtype == FeatureType::Categorical {
            left_out.push(non_numeric(table, &f.name));
        } else {
            features.push(f);
        }
    }
    for c in &table.columns {
        if c.role != ColumnRole::Feature {
            let why = match c.role {
                _ if Some(c.name.as_str()) == label_col => "label",
                ColumnRole::Identity => "identity",
                ColumnRole::Label => "label",
                _ => match c.data {
                    ColumnData::Str(_) => "non-numeric",
                    ColumnData::F64(_) => "not a feature",
                },
            };
            left_out.push(match why {
                "non-numeric" => non_numeric(table, &c.name),
                _ => format!("{} ({why})", c.name),
            });
        }
    }
    let schema = FeatureSchema {
        set: full.set,
        features,
        identity: full.identity,
    };
    schema.validate()?;
    Ok((schema, left_out))
}

/// The left-out note of a text column: where most of its values are
/// numbers, the first that is not, by row (1-based) and value. Why: one
/// stray cell makes a numeric column text, and the whole feature was left
/// out with no trace of where.
fn non_numeric(table: &Table, name: &str) -> String {
    let Some(ColumnData::Str(v)) = table.column(name).map(|c| &c.data) else {
        return format!("{name} (non-numeric)");
    };
    let (mut present, mut numbers, mut first_bad) = (0usize, 0usize, None);
    for (i, x) in v.iter().enumerate() {
        let Some(x) = x else { continue };
        present += 1;
        // what the table readers take as numbers: a `-` or `NA` beside the
        // culprit is not the cell to name
        if palisade_core::table::parse_cell_number(x).is_some() {
            numbers += 1;
        } else if first_bad.is_none() {
            first_bad = Some((i, x));
        }
    }
    match first_bad {
        Some((i, x)) if numbers * 10 >= present * 9 => {
            let shown: String = x.chars().take(40).collect();
            format!(
                "{name} (non-numeric: row {} holds `{shown}`, though {numbers} of {present} \
                 values are numbers)",
                i + 1
            )
        }
        _ => format!("{name} (non-numeric)"),
    }
}

/// A label column as 0/1 (NaN = unlabelled). Numbers: 0 is negative, any
/// other number positive. Text: `0/false/no/benign/normal/-` negative,
/// `1/true/yes/malicious/anomaly/attack/outlier` positive; empty,
/// `background` (Stratosphere's unlabelled traffic) and `unknown`
/// unlabelled; anything else is an error naming the value.
pub fn label_values(table: &Table, col: &str) -> Result<Vec<f64>> {
    let c = table.column(col).ok_or_else(|| ModelError::BadOption {
        name: "label-col".into(),
        msg: format!("the table has no column `{col}`"),
    })?;
    match &c.data {
        ColumnData::F64(v) => Ok(v
            .iter()
            .map(|&x| {
                if x.is_nan() {
                    f64::NAN
                } else if x != 0.0 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()),
        ColumnData::Str(v) => {
            v.iter()
                .enumerate()
                .map(|(i, s)| match s.map(|s| s.trim().to_ascii_lowercase()) {
                    None => Ok(f64::NAN),
                    Some(s) if s.is_empty() => Ok(f64::NAN),
                    // Stratosphere's third label: traffic nobody labelled
                    // (its README: neither benign nor malicious)
                    Some(s) if matches!(s.as_str(), "background" | "unknown" | "(empty)") => {
                        Ok(f64::NAN)
                    }
                    Some(s) => match s.as_str() {
                        // The words the labelled datasets security teams use
                        // (Stratosphere, PhishCrawl, ThreatFox, DGA and tunnelling sets).
                        "0" | "false" | "no" | "benign" | "normal" | "legit" | "legitimate"
                        | "good" | "clean" | "plain" | "-" => Ok(0.0),
                        "1" | "true" | "yes" | "malicious" | "anomaly" | "attack" | "outlier"
                        | "bad" | "phishing" | "dga" | "tunneling" | "malware" => Ok(1.0),
                        other => Err(ModelError::Data(format!(
                            "label column `{col}`, row {}: `{other}` is not a 0/1 label \
                                 (a text label column takes 0, false, benign, normal, legit, \
                                 plain / 1, true, malicious, attack, phishing, dga, tunneling; \
                                 background, unknown and empty are unlabelled; a column of \
                                 numbers alone reads 0 as benign and any other as malicious)",
                            i + 1
                        ))),
                    },
                })
                .collect()
        }
    }
}

/// Top-`k` explanations of every row, computed in parallel.
pub fn explain_all(
    det: &dyn Detector,
    x: &Matrix,
    k: usize,
) -> Result<Vec<Vec<crate::Contribution>>> {
    use rayon::prelude::*;
    (0..x.rows)
        .into_par_iter()
        .map(|i| det.explain(x, i, k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::ColumnRole;

    fn text_labels(values: &[&str]) -> Table {
        let mut t = Table::new();
        t.push(
            "label",
            ColumnRole::Label,
            ColumnData::Str(values.iter().map(|s| Some(s.to_string())).collect()),
        )
        .unwrap();
        t
    }

    #[test]
    fn dataset_label_words_map_to_0_and_1() {
        let t = text_labels(&["legit", "Malicious", "dga", "plain", "tunneling", "Benign"]);
        assert_eq!(
            label_values(&t, "label").unwrap(),
            vec![0.0, 1.0, 1.0, 0.0, 1.0, 0.0]
        );
        let err = label_values(&text_labels(&["legit", "maybe"]), "label")
            .unwrap_err()
            .to_string();
        assert!(err.contains("row 2") && err.contains("maybe"), "{err}");
        // Stratosphere's labels (../shared/data/zeek-stratosphere-labeled)
        let l = label_values(
            &text_labels(&["Benign", "Background", "Malicious"]),
            "label",
        )
        .unwrap();
        assert!(l[0] == 0.0 && l[1].is_nan() && l[2] == 1.0, "{l:?}");
        // a number other than 0/1 in a text column is refused, and the
        // message no longer says "other = malicious"
        let err = label_values(&text_labels(&["benign", "2"]), "label")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`2`") && !err.contains("other = malicious"),
            "{err}"
        );
    }

    #[test]
    fn a_numeric_column_with_a_stray_cell_is_left_out_naming_the_cell() {
        let mut t = Table::new();
        let mostly: Vec<Option<String>> = (0..20)
            .map(|i| {
                Some(match i {
                    3 => "-".into(),
                    6 => "abc".into(),
                    _ => i.to_string(),
                })
            })
            .collect();
        t.push(
            "n",
            ColumnRole::Feature,
            ColumnData::Str(mostly.into_iter().collect()),
        )
        .unwrap();
        let words: Vec<Option<String>> = (0..20).map(|i| Some(format!("w{i}"))).collect();
        t.push(
            "w",
            ColumnRole::Feature,
            ColumnData::Str(words.into_iter().collect()),
        )
        .unwrap();
        t.push(
            "x",
            ColumnRole::Feature,
            ColumnData::F64((0..20).map(f64::from).collect()),
        )
        .unwrap();
        let (schema, left_out) = select_features(&t, None).unwrap();
        assert_eq!(schema.feature_names(), vec!["x"]);
        assert!(
            left_out.iter().any(|l| l.starts_with("n (")
                && l.contains("row 7 holds `abc`")
                && l.contains("19 of 20")),
            "{left_out:?}"
        );
        // a text column (most values not numbers) keeps the plain note
        assert!(
            left_out.contains(&"w (non-numeric)".to_string()),
            "{left_out:?}"
        );
    }
}
