//! Evaluation of the supervised kinds the way drift demands: stratified
//! k-fold cross-validation and a time-based split (train on the past, test
//! on the future). Both train through [`crate::registry::train`], so each
//! fold gets exactly what a real model gets (category codes, calibration on
//! its own holdout, threshold by the configured rule), and every metric is
//! computed on rows the fold's model never saw.

use crate::metrics::{Confusion, EvalReport};
use crate::options::TrainOptions;
use crate::registry::{label_values, train, Model};
use crate::{ModelError, Result};
use palisade_core::{Column, ColumnData, Table};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// Rows `idx` of `table` (all columns, schema kept).
pub fn take_rows(table: &Table, idx: &[usize]) -> Table {
    let columns = table
        .columns
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            role: c.role,
            data: match &c.data {
                ColumnData::F64(v) => ColumnData::F64(idx.iter().map(|&i| v[i]).collect()),
                ColumnData::Str(v) => ColumnData::Str(v.select(idx)),
            },
        })
        .collect();
    Table {
        columns,
        schema: table.schema.clone(),
    }
}

/// Fold (0..k) of each labelled row, classes spread evenly; `None` for unlabelled rows.
pub fn stratified_folds(labels: &[f64], k: usize, seed: u64) -> Vec<Option<usize>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xF01D);
    let mut out = vec![None; labels.len()];
    for class in [true, false] {
        let mut idx: Vec<usize> = (0..labels.len())
            .filter(|&i| !labels[i].is_nan() && (labels[i] > 0.5) == class)
            .collect();
        idx.shuffle(&mut rng);
        for (pos, i) in idx.into_iter().enumerate() {
            out[i] = Some(pos % k);
        }
    }
    out
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FoldResult {
    pub fold: usize,
    pub train_rows: usize,
    pub report: EvalReport,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CvReport {
    pub k: usize,
    pub folds: Vec<FoldResult>,
    /// All out-of-fold scores together; `confusion` sums each fold's confusion
    /// at that fold's own threshold.
    pub pooled: EvalReport,
    pub mean_roc_auc: f64,
    pub std_roc_auc: f64,
    pub mean_pr_auc: f64,
}

fn labels_of(table: &Table, opts: &TrainOptions) -> Result<Vec<f64>> {
    let col = opts
        .label_col
        .as_deref()
        .ok_or_else(|| ModelError::BadOption {
            name: "label-col".into(),
            msg: "evaluation needs a label column".into(),
        })?;
    label_values(table, col)
}

fn to_opt(l: &[f64]) -> Vec<Option<bool>> {
    l.iter()
        .map(|&v| if v.is_nan() { None } else { Some(v > 0.5) })
        .collect()
}

/// Stratified k-fold cross-validation of model `kind` on `table`.
pub fn cross_validate(
    kind: &str,
    table: &Table,
    opts: &TrainOptions,
    k: usize,
) -> Result<CvReport> {
    if k < 2 {
        return Err(ModelError::BadOption {
            name: "cv".into(),
            msg: format!("needs at least 2 folds, got {k}"),
        });
    }
    let labels = labels_of(table, opts)?;
    // every fold must hold both classes: a fold without one has no ROC-AUC,
    // and more folds than rows trained K models for nothing (a QA run of
    // `--cv 5000` on 1,000 rows took 500 s and reported NaN)
    let malicious = labels.iter().filter(|&&v| !v.is_nan() && v > 0.5).count();
    let benign = labels.iter().filter(|&&v| !v.is_nan() && v <= 0.5).count();
    if k > malicious.min(benign) {
        return Err(ModelError::BadOption {
            name: "cv".into(),
            msg: format!(
                "{k} folds need at least {k} labelled rows of each class; the table has \
                 {malicious} malicious and {benign} benign"
            ),
        });
    }
    let folds = stratified_folds(&labels, k, opts.seed);
    let mut pooled_scores = Vec::new();
    let mut pooled_labels = Vec::new();
    let mut confusion: Option<Confusion> = None;
    let mut results = Vec::new();
    for f in 0..k {
        let tr: Vec<usize> = (0..labels.len())
            .filter(|&i| folds[i].is_some_and(|g| g != f))
            .collect();
        let te: Vec<usize> = (0..labels.len()).filter(|&i| folds[i] == Some(f)).collect();
        let model = train(kind, &take_rows(table, &tr), opts)?;
        let test = take_rows(table, &te);
        let scores = model.score_table(&test)?;
        let lab = to_opt(&te.iter().map(|&i| labels[i]).collect::<Vec<_>>());
        let report = EvalReport::compute(
            &scores,
            &lab,
            model.body.threshold.as_ref().map(|t| t.value),
        );
        if let Some(c) = &report.confusion {
            let acc = confusion.get_or_insert(Confusion {
                tp: 0,
                fp: 0,
                tn: 0,
                fn_: 0,
            });
            acc.tp += c.tp;
            acc.fp += c.fp;
            acc.tn += c.tn;
            acc.fn_ += c.fn_;
        }
        pooled_scores.extend(scores);
        pooled_labels.extend(lab);
        tracing::info!("cv fold {}/{k}: roc-auc {:.4}", f + 1, report.roc_auc);
        results.push(FoldResult {
            fold: f,
            train_rows: tr.len(),
            report,
        });
    }
    let mut pooled = EvalReport::compute(&pooled_scores, &pooled_labels, None);
    pooled.confusion = confusion;
    let aucs: Vec<f64> = results.iter().map(|r| r.report.roc_auc).collect();
    let mean = aucs.iter().sum::<f64>() / k as f64;
    let std = (aucs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (k as f64 - 1.0)).sqrt();
    let mean_pr = results.iter().map(|r| r.report.pr_auc).sum::<f64>() / k as f64;
    Ok(CvReport {
        k,
        folds: results,
        pooled,
        mean_roc_auc: mean,
        std_roc_auc: std,
        mean_pr_auc: mean_pr,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimeSplitReport {
    pub time_col: String,
    /// The split point in seconds since the Unix epoch.
    pub test_after: f64,
    pub train_rows: usize,
    pub test_rows: usize,
    /// Rows without a readable time (left out of both sides).
    pub no_time: usize,
    pub report: EvalReport,
}

/// Seconds since the epoch of a time cell: a number (seconds) or RFC 3339 text.
fn time_of(c: &ColumnData, i: usize) -> Option<f64> {
    match c {
        ColumnData::F64(v) => v.get(i).copied().filter(|x| x.is_finite()),
        ColumnData::Str(v) => v.get(i)?.and_then(parse_time),
    }
}

/// A split time: seconds since the epoch, RFC 3339 text, or a date
/// (`YYYY-MM-DD`, its midnight UTC: what `palisade intel stats --as-of`
/// takes too).
pub fn parse_time(s: &str) -> Option<f64> {
    let s = s.trim();
    let b = s.as_bytes();
    let date_only = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if date_only {
        return palisade_core::event::parse_timestamp_us(&format!("{s}T00:00:00Z"))
            .map(|us| us as f64 / 1e6);
    }
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .or_else(|| palisade_core::event::parse_timestamp_us(s).map(|us| us as f64 / 1e6))
}

/// Train on rows with `time_col` < `test_after`, evaluate on the rest.
/// Returns the model trained on the past and its report on the future.
pub fn time_split(
    kind: &str,
    table: &Table,
    opts: &TrainOptions,
    time_col: &str,
    test_after: &str,
) -> Result<(Model, TimeSplitReport)> {
    let t = parse_time(test_after).ok_or_else(|| ModelError::BadOption {
        name: "test-after".into(),
        msg: format!(
            "`{test_after}` is neither seconds since the epoch, an RFC 3339 time nor a \
             YYYY-MM-DD date"
        ),
    })?;
    let col = table
        .column(time_col)
        .ok_or_else(|| ModelError::BadOption {
            name: "time-col".into(),
            msg: format!("the table has no column `{time_col}`"),
        })?;
    let mut past = Vec::new();
    let mut future = Vec::new();
    let mut no_time = 0;
    for i in 0..table.nrows() {
        match time_of(&col.data, i) {
            Some(ti) if ti < t => past.push(i),
            Some(_) => future.push(i),
            None => no_time += 1,
        }
    }
    if no_time > 0 {
        tracing::warn!(
            "{no_time} rows have no readable `{time_col}` and are left out of the time split"
        );
    }
    if past.is_empty() || future.is_empty() {
        return Err(ModelError::Data(format!(
            "time split at {test_after}: {} rows before, {} at or after; both sides need rows",
            past.len(),
            future.len()
        )));
    }
    let model = train(kind, &take_rows(table, &past), opts)?;
    let test = take_rows(table, &future);
    let scores = model.score_table(&test)?;
    let labels = labels_of(&test, opts)?;
    let report = EvalReport::compute(
        &scores,
        &to_opt(&labels),
        model.body.threshold.as_ref().map(|x| x.value),
    );
    let rep = TimeSplitReport {
        time_col: time_col.to_string(),
        test_after: t,
        train_rows: past.len(),
        test_rows: future.len(),
        no_time,
        report,
    };
    Ok((model, rep))
}
