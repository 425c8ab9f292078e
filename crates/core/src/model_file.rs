//! The model-file envelope every detector writes: format version, feature
//! schema, preprocessing, parameters, training metadata and summary
//! statistics, and a checksum over all of it.
//!
//! The file is JSON: `{"format": "palisade-model", "format_version": N,
//! "checksum": "sha256:…", "model": {…}}`, where the checksum is the SHA-256 of
//! the compact JSON serialisation of `model`. JSON keeps the files readable and
//! diffable; our models are small (a forest of 100 trees × 511 nodes is a few MB).
//! Writing is atomic (see `palisade_io::atomic_write`).

use crate::schema::FeatureSchema;
use crate::stats::ColumnStats;
use crate::CoreError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MODEL_FORMAT: &str = "palisade-model";
/// Bump when the layout of [`ModelBody`] changes incompatibly.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// How a score becomes an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Rows with score ≥ value are alerts.
    pub value: f64,
    /// How it was chosen: `contamination=0.01`, `fpr=0.001 on validation`, `fixed`.
    pub rule: String,
}

/// Who trained the model, when, on what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingInfo {
    /// The command line that trained it.
    pub command: String,
    /// RFC 3339 time of training.
    pub trained_at: String,
    pub rows: usize,
    /// Palisade version that wrote it.
    pub palisade_version: String,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Columns of the input that were left out, and why.
    #[serde(default)]
    pub left_out: Vec<String>,
    /// Summary statistics of each feature on the training data (for drift checks).
    #[serde(default)]
    pub feature_stats: Vec<ColumnStats>,
    /// Free-form notes (e.g. constant columns dropped).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Everything inside the checksum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelBody {
    /// `iforest`, `pca`, `autoencoder`, `ensemble`, `gbt`, `rf`.
    pub kind: String,
    pub schema: FeatureSchema,
    /// The model's own parameters and learned state (kind-specific).
    pub params: serde_json::Value,
    #[serde(default)]
    pub threshold: Option<Threshold>,
    pub training: TrainingInfo,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    format_version: u32,
    checksum: String,
    model: serde_json::Value,
}

impl ModelBody {
    /// Serialise to the on-disk bytes, with checksum.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CoreError> {
        let model = serde_json::to_value(self).map_err(|e| CoreError::ModelFile(e.to_string()))?;
        let compact =
            serde_json::to_vec(&model).map_err(|e| CoreError::ModelFile(e.to_string()))?;
        let env = Envelope {
            format: MODEL_FORMAT.to_string(),
            format_version: MODEL_FORMAT_VERSION,
            checksum: format!("sha256:{}", hex::encode(Sha256::digest(&compact))),
            model,
        };
        let bytes = serde_json::to_vec(&env).map_err(|e| CoreError::ModelFile(e.to_string()))?;
        // Never write a file that cannot be loaded (e.g. a NaN serialised as
        // null where a number is required): read it back before it leaves here.
        Self::from_bytes(&bytes).map_err(|e| {
            CoreError::ModelFile(format!(
                "refusing to write a model that would not load back: {e}"
            ))
        })?;
        Ok(bytes)
    }

    /// Parse and check a model file: format, version, checksum, schema.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CoreError> {
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| {
            CoreError::ModelFile(format!(
                "not a Palisade model file (corrupt or truncated?): {e}"
            ))
        })?;
        if env.format != MODEL_FORMAT {
            return Err(CoreError::ModelFile(format!(
                "format is `{}`, expected `{MODEL_FORMAT}`",
                env.format
            )));
        }
        if env.format_version > MODEL_FORMAT_VERSION {
            return Err(CoreError::ModelFile(format!(
                "model format version {} is newer than this Palisade understands ({MODEL_FORMAT_VERSION}); upgrade Palisade",
                env.format_version
            )));
        }
        let compact =
            serde_json::to_vec(&env.model).map_err(|e| CoreError::ModelFile(e.to_string()))?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&compact)));
        if actual != env.checksum {
            return Err(CoreError::ModelFile(format!(
                "checksum mismatch (file says {}, content is {actual}): the file is corrupt or was edited",
                env.checksum
            )));
        }
        let body: ModelBody = serde_json::from_value(env.model)
            .map_err(|e| CoreError::ModelFile(format!("model body does not parse: {e}")))?;
        body.schema.validate()?;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{FeatureDef, FeatureType};

    fn body() -> ModelBody {
        ModelBody {
            kind: "test".into(),
            schema: FeatureSchema {
                set: "s".into(),
                features: vec![FeatureDef::new("a", FeatureType::Float, "s", &[], "")],
                identity: vec!["host".into()],
            },
            params: serde_json::json!({"w": [1.0, 2.0]}),
            threshold: Some(Threshold {
                value: 0.5,
                rule: "fixed".into(),
            }),
            training: TrainingInfo::default(),
        }
    }

    #[test]
    fn nan_statistics_survive_the_file() {
        let mut b = body();
        b.training.feature_stats = vec![ColumnStats::compute("a", [f64::NAN])];
        let back = ModelBody::from_bytes(&b.to_bytes().unwrap()).unwrap();
        assert!(back.training.feature_stats[0].mean.is_nan());
    }

    #[test]
    fn round_trip_and_corruption() {
        let b = body();
        let bytes = b.to_bytes().unwrap();
        assert_eq!(ModelBody::from_bytes(&bytes).unwrap(), b);
        let text = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("[1.0,2.0]", "[1.0,3.0]");
        let err = ModelBody::from_bytes(text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum"), "{err}");
        assert!(ModelBody::from_bytes(&bytes[..bytes.len() / 2]).is_err());
        let newer = String::from_utf8(bytes)
            .unwrap()
            .replace("\"format_version\":1", "\"format_version\":99");
        assert!(ModelBody::from_bytes(newer.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("newer"));
    }
}
