//! `palisade train|score|eval`: the same three commands for every model kind.
//!
//! Reading and writing files happens here; training, scoring and metrics live
//! in `palisade-models`.

use anyhow::{bail, Context, Result};
use palisade_core::{ColumnData, ColumnRole, Table};
use palisade_io::{ReadTableOptions, DEFAULT_LABEL_COLUMN};
use palisade_models::metrics::EvalReport;
use palisade_models::{registry, Model, ThresholdRule, TrainOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `palisade train`.
///
/// Supervised models: the kinds `gbt` and `rf` are dispatched by
/// `palisade_models::registry` (see its `SUPERVISED HOOK`s). Their flags
/// (`--cv K`, `--time-col`, `--test-after`, …) go in this struct at the marked
/// place below and into `TrainOptions::options` in [`train_options`] at the
/// matching mark; `--valid` (a labelled validation table) is already here and
/// reaches trainers as `TrainData::validation`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Model kind: iforest, pca, autoencoder, ensemble (unsupervised); gbt, rf (supervised).
    #[arg(long = "model", value_name = "KIND")]
    pub model: String,
    /// Training table (CSV with header, JSON lines or Parquet).
    #[arg(long = "in", value_name = "TABLE")]
    pub input: PathBuf,
    /// Model file to write (JSON, atomically).
    #[arg(long, value_name = "MODEL")]
    pub out: PathBuf,
    /// Label column (0/1): never a feature; used by target-FPR thresholds and supervised models
    /// [default: a column named `label`, if there is one].
    #[arg(long)]
    pub label_col: Option<String>,
    /// More identity columns (never features), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub identity_cols: Vec<String>,
    /// Columns to leave out of the features, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threshold: expected fraction of anomalies among the training rows (default 0.01 for the
    /// outlier detectors; gbt and rf default to --target-fpr 0.01 on their held-out rows).
    #[arg(long, conflicts_with_all = ["target_fpr", "threshold"])]
    pub contamination: Option<f64>,
    /// Threshold: highest false-positive rate on labelled rows (--valid, else --label-col rows).
    #[arg(long, conflicts_with = "threshold")]
    pub target_fpr: Option<f64>,
    /// Threshold: a fixed score.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Labelled validation table (same columns) for thresholds and supervised early stopping.
    #[arg(long, value_name = "TABLE")]
    pub valid: Option<PathBuf>,
    /// Log-transform these columns (`sign(x)·ln(1+|x|/offset)`), comma-separated; `all` for every one.
    #[arg(long, value_delimiter = ',')]
    pub log1p: Vec<String>,
    /// Offset of the log transform (1 = log1p; 0.1 reproduces the ODDS ln(x+0.1) features up to scale).
    #[arg(long, default_value_t = 1.0)]
    pub log_offset: f64,

    // ---- iforest
    /// iforest: number of trees (100).
    #[arg(long)]
    pub trees: Option<usize>,
    /// iforest: sub-sample size ψ (256).
    #[arg(long)]
    pub sample_size: Option<usize>,
    // ---- pca
    /// pca: number of components kept (default: by --variance).
    #[arg(long)]
    pub components: Option<usize>,
    /// pca: explained variance to keep (0.95).
    #[arg(long)]
    pub variance: Option<f64>,
    /// pca: weighted (default), minor, reconstruction.
    #[arg(long)]
    pub pca_score: Option<String>,
    // ---- autoencoder
    /// autoencoder: hidden widths, comma-separated (64,32).
    #[arg(long)]
    pub hidden: Option<String>,
    /// autoencoder: bottleneck width (⌈d/2⌉).
    #[arg(long)]
    pub bottleneck: Option<usize>,
    /// autoencoder: maximum epochs (10).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// autoencoder: mini-batch size (32).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// autoencoder: Adam learning rate (0.001).
    #[arg(long)]
    pub lr: Option<f64>,
    /// autoencoder: early-stopping patience in epochs (5).
    #[arg(long)]
    pub patience: Option<usize>,
    /// autoencoder: train on at most this many rows (10000).
    #[arg(long)]
    pub max_train: Option<usize>,
    // ---- ensemble
    /// ensemble: members, comma-separated (iforest,pca).
    #[arg(long)]
    pub members: Option<String>,
    /// ensemble: rank (default) or zscore.
    #[arg(long)]
    pub combine: Option<String>,
    /// Any model option as KEY=VALUE (repeatable); see each model's docs.
    #[arg(long = "opt", value_name = "KEY=VALUE")]
    pub opt: Vec<String>,
    // ---- supervised (gbt, rf)
    /// gbt/rf: stratified K-fold cross-validation report (on stderr), then the model is trained on all rows.
    #[arg(long, value_name = "K", conflicts_with_all = ["time_col", "valid"])]
    pub cv: Option<usize>,
    /// gbt/rf: time column (seconds since the epoch or RFC 3339) for a time-based split; needs --test-after.
    #[arg(long, value_name = "COL", requires = "test_after")]
    pub time_col: Option<String>,
    /// gbt/rf: rows at or after TIME are the test set; the model written is the one trained on the past.
    #[arg(long, value_name = "TIME", requires = "time_col")]
    pub test_after: Option<String>,
    /// gbt/rf: weight of a positive row (a number, or `auto` = #negatives/#positives); default 1.
    #[arg(long, value_name = "W")]
    pub pos_weight: Option<String>,
    /// gbt/rf: probability calibration on held-out rows: platt (default), isotonic, none.
    #[arg(long)]
    pub calibration: Option<String>,
    /// gbt/rf: text columns to use as categorical features (frequency-rank codes stored in the model), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub categorical: Vec<String>,
}

/// Make the `--categorical` text columns features (the reader keeps text as `Meta`).
fn mark_categorical(table: &mut Table, cols: &[String], path: &Path) -> Result<()> {
    for name in cols {
        let c = table
            .column_mut(name)
            .with_context(|| format!("--categorical: {} has no column `{name}`", path.display()))?;
        match (c.role, &c.data) {
            (ColumnRole::Identity | ColumnRole::Label, _) => {
                bail!("--categorical: `{name}` is an identity or label column and can never be a feature")
            }
            (_, ColumnData::Str(_)) => c.role = ColumnRole::Feature,
            (_, ColumnData::F64(_)) => bail!(
                "--categorical: `{name}` is numeric in {}; only text columns are coded",
                path.display()
            ),
        }
    }
    Ok(())
}

/// `palisade score`.
#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    /// Model file written by `palisade train`.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Table to score (same feature columns as the training table).
    #[arg(long = "in", value_name = "TABLE")]
    pub input: PathBuf,
    /// Scores table to write (CSV, JSON lines or Parquet by extension).
    #[arg(long, value_name = "SCORES")]
    pub out: PathBuf,
    /// Add the top K contributing features of every row.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub explain: usize,
    /// Label column to carry into the output (never a feature)
    /// [default: a column named `label`, if there is one].
    #[arg(long)]
    pub label_col: Option<String>,
}

/// `palisade eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Labelled table.
    #[arg(long = "in", value_name = "TABLE")]
    pub input: PathBuf,
    #[arg(long, default_value = "label")]
    pub label_col: String,
    /// Print one JSON object (keys include roc_auc, pr_auc).
    #[arg(long)]
    pub json: bool,
}

fn read(
    path: &Path,
    label_col: Option<&str>,
    identity: &[String],
    exclude: &[String],
) -> Result<Table> {
    let opts = ReadTableOptions {
        label_col: label_col.map(str::to_string),
        identity_cols: identity.to_vec(),
        exclude_cols: exclude.to_vec(),
    };
    palisade_io::read_table(path, &opts)
        .with_context(|| format!("reading table {}", path.display()))
}

fn load_model(path: &Path) -> Result<Model> {
    let bytes = std::fs::read(path).with_context(|| format!("reading model {}", path.display()))?;
    Model::from_bytes(&bytes).with_context(|| format!("model file {}", path.display()))
}

/// Build the shared training options from the flags.
fn train_options(a: &TrainArgs) -> Result<TrainOptions> {
    let mut o = TrainOptions::new(a.seed);
    o.label_col = a.label_col.clone();
    o.log_cols = a.log1p.clone();
    o.log_offset = a.log_offset;
    o.threshold = match (a.contamination, a.target_fpr, a.threshold) {
        (_, _, Some(t)) => ThresholdRule::Fixed(t),
        (_, Some(f), None) => ThresholdRule::TargetFpr(f),
        (Some(c), None, None) => ThresholdRule::Contamination(c),
        (None, None, None) => ThresholdRule::default_for(&a.model),
    };
    o.command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut set = |k: &str, v: Option<serde_json::Value>| {
        if let Some(v) = v {
            o.options.insert(k.to_string(), v);
        }
    };
    set("trees", a.trees.map(Into::into));
    set("sample_size", a.sample_size.map(Into::into));
    set("components", a.components.map(Into::into));
    set("variance", a.variance.map(Into::into));
    set("score", a.pca_score.clone().map(Into::into));
    set("hidden", a.hidden.clone().map(Into::into));
    set("bottleneck", a.bottleneck.map(Into::into));
    set("epochs", a.epochs.map(Into::into));
    set("batch_size", a.batch_size.map(Into::into));
    set("lr", a.lr.map(Into::into));
    set("patience", a.patience.map(Into::into));
    set("max_train", a.max_train.map(Into::into));
    set("members", a.members.clone().map(Into::into));
    set("combine", a.combine.clone().map(Into::into));
    set("pos_weight", a.pos_weight.clone().map(Into::into));
    set("calibration", a.calibration.clone().map(Into::into));
    for kv in &a.opt {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--opt `{kv}`: expected KEY=VALUE"))?;
        let v: serde_json::Value = v
            .parse()
            .unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
        o.options.insert(k.trim().replace('-', "_"), v);
    }
    if let Some(v) = &a.valid {
        let mut t = read(v, a.label_col.as_deref(), &a.identity_cols, &a.exclude)?;
        mark_categorical(&mut t, &a.categorical, v)?;
        o.validation = Some(t);
    }
    Ok(o)
}

/// A progress bar on a terminal (indicatif draws nothing when stderr is not one).
fn progress_bar() -> (indicatif::ProgressBar, palisade_models::ProgressFn) {
    let bar = indicatif::ProgressBar::new(0);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    let b = bar.clone();
    let f: palisade_models::ProgressFn = Arc::new(move |p: &palisade_models::Progress| {
        b.set_prefix(p.stage.clone());
        b.set_length(p.total);
        b.set_position(p.done);
        if !p.message.is_empty() {
            b.set_message(p.message.clone());
        }
    });
    (bar, f)
}

pub fn run_train(args: TrainArgs) -> Result<()> {
    if !registry::KINDS.contains(&args.model.as_str()) {
        bail!(
            "unknown model kind `{}` (known: {})",
            args.model,
            registry::KINDS.join(", ")
        );
    }
    let mut table = read(
        &args.input,
        args.label_col.as_deref(),
        &args.identity_cols,
        &args.exclude,
    )?;
    if !args.categorical.is_empty() && !registry::SUPERVISED_KINDS.contains(&args.model.as_str()) {
        bail!("--categorical is for the supervised kinds (gbt, rf)");
    }
    mark_categorical(&mut table, &args.categorical, &args.input)?;
    let mut opts = train_options(&args)?;
    if opts.label_col.is_none() && table.column(DEFAULT_LABEL_COLUMN).is_some() {
        // the reader already made it the label; the models use it too
        // (target-FPR thresholds, supervised kinds).
        opts.label_col = Some(DEFAULT_LABEL_COLUMN.to_string());
    }
    let (bar, progress) = progress_bar();
    opts.progress = Some(progress);
    let started = std::time::Instant::now();
    let supervised = registry::SUPERVISED_KINDS.contains(&args.model.as_str());
    if (args.cv.is_some() || args.time_col.is_some()) && !supervised {
        bail!("--cv and --time-col are for the supervised kinds (gbt, rf)");
    }
    if let Some(k) = args.cv {
        let cv = palisade_models::supervised::eval::cross_validate(&args.model, &table, &opts, k)
            .with_context(|| format!("{k}-fold cross-validation of `{}`", args.model))?;
        print_supervised_report(&format!("{k}-fold CV (out-of-fold, pooled)"), &cv.pooled);
        eprintln!(
            "per fold ROC-AUC: mean {:.4} ± {:.4}, PR-AUC mean {:.4}",
            cv.mean_roc_auc, cv.std_roc_auc, cv.mean_pr_auc
        );
    }
    let model = match (&args.time_col, &args.test_after) {
        (Some(col), Some(after)) => {
            let (m, r) = palisade_models::supervised::eval::time_split(
                &args.model,
                &table,
                &opts,
                col,
                after,
            )
            .with_context(|| format!("time split of `{}` on `{col}` at {after}", args.model))?;
            print_supervised_report(
                &format!(
                    "time split: train {} rows before {after}, test {} rows at or after",
                    r.train_rows, r.test_rows
                ),
                &r.report,
            );
            m
        }
        _ => palisade_models::train(&args.model, &table, &opts)
            .with_context(|| format!("training `{}` on {}", args.model, args.input.display()))?,
    };
    bar.finish_and_clear();
    let bytes = model.body.to_bytes()?;
    palisade_io::atomic_write(&args.out, &bytes)
        .with_context(|| format!("writing model {}", args.out.display()))?;

    let b = &model.body;
    eprintln!(
        "trained {} on {} rows × {} features in {:.2}s → {}",
        b.kind,
        b.training.rows,
        b.schema.features.len(),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    eprintln!("features: {}", b.schema.feature_names().join(", "));
    if !b.training.left_out.is_empty() {
        eprintln!("left out: {}", b.training.left_out.join(", "));
    }
    for n in &b.training.notes {
        eprintln!("note: {n}");
    }
    if let Some(t) = &b.threshold {
        eprintln!("threshold: {} ({})", t.value, t.rule);
    }
    Ok(())
}

/// A supervised evaluation (CV or time split) on stderr.
fn print_supervised_report(what: &str, r: &EvalReport) {
    eprintln!(
        "{what}: {} positives, {} negatives",
        r.positives, r.negatives
    );
    eprintln!(
        "  ROC-AUC {:.4}  PR-AUC {:.4}  TPR@FPR1% {:.4}  TPR@FPR0.1% {:.4}",
        r.roc_auc, r.pr_auc, r.tpr_at_fpr_1pct, r.tpr_at_fpr_0_1pct
    );
    if let Some(c) = &r.confusion {
        eprintln!(
            "  at the threshold: tp {} fp {} tn {} fn {}; malicious precision {:.4} recall {:.4}; benign recall {:.4} (fpr {:.5})",
            c.tp,
            c.fp,
            c.tn,
            c.fn_,
            c.precision(),
            c.recall(),
            1.0 - c.fpr(),
            c.fpr()
        );
    }
}

pub fn run_score(args: ScoreArgs) -> Result<()> {
    let table = read(&args.input, args.label_col.as_deref(), &[], &[])?;
    let model = load_model(&args.model)?;
    let x = model.matrix(&table).with_context(|| {
        format!(
            "table {} against model {}",
            args.input.display(),
            args.model.display()
        )
    })?;
    let scores = model.detector.score(&x)?;
    let threshold = model.body.threshold.as_ref().map(|t| t.value);

    let mut out = Table::new();
    for c in &table.columns {
        if matches!(c.role, ColumnRole::Identity | ColumnRole::Label) {
            out.push(&c.name, c.role, c.data.clone())?;
        }
    }
    out.push("score", ColumnRole::Meta, ColumnData::F64(scores.clone()))?;
    if let Some(t) = threshold {
        out.push(
            "alert",
            ColumnRole::Meta,
            ColumnData::F64(scores.iter().map(|&s| f64::from(s >= t)).collect()),
        )?;
    }
    if args.explain > 0 {
        let ex = registry::explain_all(model.detector.as_ref(), &x, args.explain)?;
        for k in 0..args.explain {
            let features = ex
                .iter()
                .map(|row| row.get(k).map(|c| c.feature.as_str()))
                .collect();
            out.push(
                &format!("top{}_feature", k + 1),
                ColumnRole::Meta,
                ColumnData::Str(features),
            )?;
            let vals: Vec<f64> = ex
                .iter()
                .map(|r| r.get(k).map(|c| c.value).unwrap_or(f64::NAN))
                .collect();
            out.push(
                &format!("top{}_value", k + 1),
                ColumnRole::Meta,
                ColumnData::F64(vals),
            )?;
            let con: Vec<f64> = ex
                .iter()
                .map(|r| r.get(k).map(|c| c.contribution).unwrap_or(f64::NAN))
                .collect();
            out.push(
                &format!("top{}_contribution", k + 1),
                ColumnRole::Meta,
                ColumnData::F64(con),
            )?;
        }
    }
    palisade_io::write_table(&args.out, &out)
        .with_context(|| format!("writing scores {}", args.out.display()))?;
    let alerts = threshold.map(|t| scores.iter().filter(|&&s| s >= t).count());
    eprintln!(
        "scored {} rows with {} model {}{}",
        scores.len(),
        model.body.kind,
        args.model.display(),
        alerts
            .map(|a| format!("; {a} at or above the threshold"))
            .unwrap_or_default()
    );
    Ok(())
}

pub fn run_eval(args: EvalArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let table = read(&args.input, Some(&args.label_col), &[], &[])?;
    let scores = model
        .score_table(&table)
        .with_context(|| format!("scoring {}", args.input.display()))?;
    let labels: Vec<Option<bool>> = registry::label_values(&table, &args.label_col)?
        .into_iter()
        .map(|v| if v.is_nan() { None } else { Some(v > 0.5) })
        .collect();
    let threshold = model.body.threshold.as_ref().map(|t| t.value);
    let r = EvalReport::compute(&scores, &labels, threshold);
    if r.positives == 0 || r.negatives == 0 {
        tracing::warn!(
            "the labels hold {} positives and {} negatives; ranking metrics are undefined",
            r.positives,
            r.negatives
        );
    }
    if args.json {
        let mut v = serde_json::to_value(&r)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("model".into(), model.body.kind.clone().into());
            o.insert("model_file".into(), args.model.display().to_string().into());
            o.insert("table".into(), args.input.display().to_string().into());
        }
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    println!("model      {} ({})", args.model.display(), model.body.kind);
    println!(
        "table      {} ({} rows, {} positives, {} negatives, {} unlabelled)",
        args.input.display(),
        r.rows,
        r.positives,
        r.negatives,
        r.unlabelled
    );
    println!("ROC-AUC    {:.4}", r.roc_auc);
    println!("PR-AUC     {:.4}  (average precision)", r.pr_auc);
    println!("TPR@FPR1%  {:.4}", r.tpr_at_fpr_1pct);
    println!("TPR@FPR0.1% {:.4}", r.tpr_at_fpr_0_1pct);
    for (k, p) in &r.precision_at_k {
        println!("P@{k:<8} {p:.4}");
    }
    if let (Some(t), Some(c)) = (r.threshold, r.confusion) {
        println!(
            "threshold  {t} ({}): tp {} fp {} tn {} fn {}  precision {:.4} recall {:.4} fpr {:.5}",
            model
                .body
                .threshold
                .as_ref()
                .map(|t| t.rule.as_str())
                .unwrap_or(""),
            c.tp,
            c.fp,
            c.tn,
            c.fn_,
            c.precision(),
            c.recall(),
            c.fpr()
        );
    }
    Ok(())
}
