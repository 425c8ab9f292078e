//! Detectors behind one interface, their metrics and their model files.
//!
//! - [`Detector`]: what every trained model is — score rows (higher = more
//!   suspicious), explain one row, serialise its parameters.
//! - [`registry::train`] / [`registry::load`]: the one place that maps a model
//!   kind (`iforest`, `pca`, `autoencoder`, `ensemble`, `gbt`, `rf`) to code.
//! - [`preprocess::Preprocess`]: scaling, optional log transform, explicit
//!   missing-value handling and constant-column dropping, stored in the model.
//! - [`metrics`]: ROC-AUC, average precision, TPR at fixed FPR, precision at k.
//! - [`threshold`]: turning scores into alerts (contamination, target FPR, fixed).
//!
//! Detectors read a [`Matrix`] of the *raw* numeric features, in the order of
//! the model's [`palisade_core::FeatureSchema`]; each applies its own stored
//! preprocessing. Identity and label columns never reach a detector: the
//! registry builds the matrix from `Feature` columns only.

pub mod autoencoder;
pub mod ensemble;
pub mod iforest;
mod iforest_walk;
pub mod metrics;
pub mod options;
pub mod pca;
pub mod preprocess;
pub mod registry;
pub mod supervised;
pub mod threshold;

pub use options::{Progress, ProgressFn, ThresholdRule, TrainOptions};
pub use registry::{
    fit_detector, load, train, Model, TrainData, KINDS, SUPERVISED_KINDS, UNSUPERVISED_KINDS,
};

use palisade_core::{CoreError, Matrix};
use serde::{Deserialize, Serialize};

/// Errors of training, loading and scoring. Each names the option, column or
/// model part at fault.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("unknown model kind `{0}` (known: iforest, pca, autoencoder, ensemble, gbt, rf)")]
    UnknownKind(String),
    #[error("option `{name}`: {msg}")]
    BadOption { name: String, msg: String },
    #[error("input data: {0}")]
    Data(String),
    #[error("model `{kind}`: stored parameters are invalid: {msg}")]
    BadParams { kind: String, msg: String },
    #[error("training `{kind}` failed: {msg}")]
    Train { kind: String, msg: String },
    #[error("`{0}` is not available yet")]
    NotImplemented(String),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// One feature's share in a row's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Feature name (as in the model schema).
    pub feature: String,
    /// The row's raw value of that feature (before preprocessing).
    pub value: f64,
    /// How much the feature contributed (kind-specific units; larger = more
    /// responsible). Contributions of one row are comparable with each other.
    pub contribution: f64,
}

/// A trained model. Implementations must be cheap to share across threads.
pub trait Detector: Send + Sync {
    /// `iforest`, `pca`, `autoencoder`, `ensemble`, `gbt`, `rf`.
    fn kind(&self) -> &'static str;

    /// Number of raw input columns the detector expects (the model schema's
    /// numeric features).
    fn n_inputs(&self) -> usize;

    /// One score per row; higher means more suspicious (for supervised
    /// models: the probability of the positive class). `x` holds the raw
    /// numeric features in model-schema order.
    fn score(&self, x: &Matrix) -> Result<Vec<f64>>;

    /// The top-`k` features behind row `row`'s score, largest contribution first.
    fn explain(&self, x: &Matrix, row: usize, k: usize) -> Result<Vec<Contribution>>;

    /// The learned state, as stored in `ModelBody::params`.
    fn to_params(&self) -> Result<serde_json::Value>;

    /// The learned state as the model file's text. A large model (a forest)
    /// serialises straight to text instead of building the `Value` first.
    fn to_model_params(&self) -> Result<palisade_core::ModelParams> {
        Ok(palisade_core::ModelParams::from_serialize(
            &self.to_params()?,
        )?)
    }

    /// Notes for the model file (constant columns dropped, missing values filled, ...).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Scores and labels of labelled rows the model did not train on (a
    /// supervised model's calibration holdout), for choosing the threshold
    /// when no validation table is given. Not stored in the model file.
    fn held_out(&self) -> Option<(Vec<f64>, Vec<bool>)> {
        None
    }
}

/// Check a matrix has the columns a detector expects (shared by implementations).
pub fn check_inputs(kind: &str, expected: usize, x: &Matrix) -> Result<()> {
    if x.cols != expected {
        return Err(ModelError::Data(format!(
            "model `{kind}` expects {expected} numeric features, the input has {}",
            x.cols
        )));
    }
    Ok(())
}

/// Check `row` is in range for `x`.
pub fn check_row(x: &Matrix, row: usize) -> Result<()> {
    if row >= x.rows {
        return Err(ModelError::Data(format!(
            "row {row} is out of range (input has {} rows)",
            x.rows
        )));
    }
    Ok(())
}

/// Sort contributions (largest first) and keep `k`.
pub fn top_k(mut c: Vec<Contribution>, k: usize) -> Vec<Contribution> {
    c.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    c.truncate(k);
    c
}

pub(crate) fn to_json<T: Serialize>(kind: &str, v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| ModelError::BadParams {
        kind: kind.to_string(),
        msg: e.to_string(),
    })
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    kind: &str,
    v: &serde_json::Value,
) -> Result<T> {
    T::deserialize(v).map_err(|e| ModelError::BadParams {
        kind: kind.to_string(),
        msg: e.to_string(),
    })
}
