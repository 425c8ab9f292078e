//! Training options shared by every model kind.

use crate::{ModelError, Result};
use palisade_core::Table;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// How the alert threshold is chosen at training time (stored in the model).
#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdRule {
    /// The top `fraction` of the training rows' scores are alerts.
    Contamination(f64),
    /// The smallest threshold whose false-positive rate on labelled
    /// validation rows (label 0) is at most `fpr`. Uses
    /// [`TrainOptions::validation`] when given, else the labelled training rows.
    TargetFpr(f64),
    /// A fixed score.
    Fixed(f64),
}

impl Default for ThresholdRule {
    fn default() -> Self {
        ThresholdRule::Contamination(0.01)
    }
}

impl ThresholdRule {
    /// The rule when none is asked for: for the supervised kinds a 1%
    /// false-positive rate on their held-out labelled rows; for the outlier
    /// detectors the top 1% of training scores ([`ThresholdRule::default`]).
    /// Why not one default: a supervised model's scores are probabilities
    /// of the positive class, and its training data can be half positives
    /// (PhishCrawl: 45%): the top 1% of them flagged 2% of the phishing
    /// URLs (`train --model gbt --cv 3`: recall 0.02).
    pub fn default_for(kind: &str) -> ThresholdRule {
        if crate::registry::SUPERVISED_KINDS.contains(&kind) {
            ThresholdRule::TargetFpr(0.01)
        } else {
            ThresholdRule::default()
        }
    }
}

/// A progress report from a long training step (for a terminal bar).
#[derive(Debug, Clone)]
pub struct Progress {
    /// What is running (`iforest trees`, `autoencoder epochs`, ...).
    pub stage: String,
    pub done: u64,
    pub total: u64,
    /// Free text (e.g. the current validation loss).
    pub message: String,
}

/// Callback receiving [`Progress`]; must be cheap (called from worker threads).
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Everything a trainer may read. Model-specific options live in `options`
/// (e.g. `trees`, `sample_size`, `components`, `hidden`, `epochs`); each kind
/// reads its keys through [`TrainOptions::reader`] and unknown keys are an error.
#[derive(Clone, Default)]
pub struct TrainOptions {
    pub seed: u64,
    /// Name of the label column (0/1; NaN or missing = unlabelled). Never a feature.
    pub label_col: Option<String>,
    pub threshold: ThresholdRule,
    /// Columns to log-transform (`sign(x)·ln(1 + |x|/log_offset)`); `*` = all.
    pub log_cols: Vec<String>,
    /// Offset of the log transform (1.0 = log1p). ln(1 + x/0.1) is an affine
    /// function of the ODDS benchmarks' ln(x + 0.1), which scaling absorbs.
    pub log_offset: f64,
    /// Model-specific options.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// Labelled validation table (threshold by target FPR, early stopping of
    /// supervised models). Read with the same label column.
    pub validation: Option<Table>,
    /// The command line, stored in the model file.
    pub command: String,
    /// Receives progress of long steps.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for TrainOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainOptions")
            .field("seed", &self.seed)
            .field("label_col", &self.label_col)
            .field("threshold", &self.threshold)
            .field("log_cols", &self.log_cols)
            .field("log_offset", &self.log_offset)
            .field("options", &self.options)
            .field(
                "validation_rows",
                &self.validation.as_ref().map(|t| t.nrows()),
            )
            .finish()
    }
}

impl TrainOptions {
    pub fn new(seed: u64) -> Self {
        TrainOptions {
            seed,
            log_offset: 1.0,
            ..Default::default()
        }
    }

    /// Set a model option (builder style, for tests and the CLI).
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.options.insert(key.to_string(), value.into());
        self
    }

    /// Report progress if someone listens.
    pub fn report(&self, stage: &str, done: u64, total: u64, message: impl FnOnce() -> String) {
        if let Some(p) = &self.progress {
            p(&Progress {
                stage: stage.to_string(),
                done,
                total,
                message: message(),
            });
        }
    }

    /// A reader of the model options that remembers which keys were used.
    pub fn reader(&self) -> OptionReader<'_> {
        OptionReader {
            opts: self,
            used: Mutex::new(BTreeSet::new()),
        }
    }
}

/// Typed access to [`TrainOptions::options`]; [`OptionReader::finish`] rejects
/// keys nobody read, so a mistyped option is an error rather than ignored.
pub struct OptionReader<'a> {
    opts: &'a TrainOptions,
    used: Mutex<BTreeSet<String>>,
}

impl OptionReader<'_> {
    fn get(&self, key: &str) -> Option<&serde_json::Value> {
        if let Ok(mut u) = self.used.lock() {
            u.insert(key.to_string());
        }
        self.opts.options.get(key).filter(|v| !v.is_null())
    }

    fn bad(key: &str, msg: impl Into<String>) -> ModelError {
        ModelError::BadOption {
            name: key.to_string(),
            msg: msg.into(),
        }
    }

    pub fn usize(&self, key: &str, default: usize) -> Result<usize> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .map(|x| x as usize)
                .ok_or_else(|| Self::bad(key, format!("expected a non-negative integer, got {v}"))),
        }
    }

    pub fn f64(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|x: &f64| x.is_finite())
                .ok_or_else(|| Self::bad(key, format!("expected a number, got {v}"))),
        }
    }

    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.f64(key, 0.0).map(Some),
        }
    }

    pub fn string(&self, key: &str, default: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(v) => Ok(v.to_string()),
        }
    }

    /// A comma-separated list of integers (`64,16`) or a JSON array.
    pub fn usize_list(&self, key: &str, default: &[usize]) -> Result<Vec<usize>> {
        match self.get(key) {
            None => Ok(default.to_vec()),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_u64()
                        .map(|x| x as usize)
                        .ok_or_else(|| Self::bad(key, "expected integers"))
                })
                .collect(),
            Some(v) => {
                let s = v
                    .as_str()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| v.to_string());
                s.split(',')
                    .map(|p| {
                        p.trim()
                            .parse()
                            .map_err(|_| Self::bad(key, format!("`{p}` is not an integer")))
                    })
                    .collect()
            }
        }
    }

    /// Error on any option that no reader asked for.
    pub fn finish(&self, kind: &str) -> Result<()> {
        let used = self.used.lock().map(|u| u.clone()).unwrap_or_default();
        let unknown: Vec<&String> = self
            .opts
            .options
            .keys()
            .filter(|k| !used.contains(*k))
            .collect();
        if let Some(k) = unknown.first() {
            let known: Vec<&str> = used.iter().map(|s| s.as_str()).collect();
            return Err(Self::bad(
                k,
                format!(
                    "not an option of model `{kind}` (it reads: {})",
                    known.join(", ")
                ),
            ));
        }
        Ok(())
    }
}
