//! The model-file envelope every detector writes: format version, feature
//! schema, preprocessing, parameters, training metadata and summary
//! statistics, and a checksum over all of it.
//!
//! The file is JSON: `{"format": "palisade-model", "format_version": N,
//! "checksum": "sha256:…", "model": {…}}`, where the checksum is the SHA-256 of
//! the bytes of `model` as written (compact JSON). JSON keeps the files
//! readable and diffable. Writing is atomic (see `palisade_io::atomic_write`).
//!
//! Why the parameters stay JSON text ([`ModelParams`]) rather than a
//! `serde_json::Value`: a full-depth random forest is ~850k nodes (a 50 MB
//! file), and as a `Value` tree (a map per node) it took ~600 MB, held for as
//! long as the model was loaded, twice over while a file was read (`palisade
//! score` at 890 MB for a 50 MB file); as text, each detector parses its own
//! typed state from it once.

use crate::schema::FeatureSchema;
use crate::stats::ColumnStats;
use crate::CoreError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
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

/// A model's own parameters and learned state (kind-specific), kept as the
/// JSON text of the file (see the module's notes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelParams(Box<RawValue>);

/// The same JSON, however spaced.
impl PartialEq for ModelParams {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
            || matches!((self.to_value(), other.to_value()), (Ok(a), Ok(b)) if a == b)
    }
}

impl ModelParams {
    /// The parameters a detector serialises, straight to text.
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, CoreError> {
        serde_json::value::to_raw_value(value)
            .map(ModelParams)
            .map_err(|e| CoreError::ModelFile(format!("model parameters: {e}")))
    }

    /// Parse the text into the detector's own type.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// As a `serde_json::Value` (for small models and for tests that edit a file).
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        self.parse()
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }
}

/// Everything inside the checksum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelBody {
    /// `iforest`, `pca`, `autoencoder`, `ensemble`, `gbt`, `rf`.
    pub kind: String,
    pub schema: FeatureSchema,
    /// The model's own parameters and learned state (kind-specific).
    pub params: ModelParams,
    #[serde(default)]
    pub threshold: Option<Threshold>,
    pub training: TrainingInfo,
}

/// The file's outer object; `model` is borrowed as the text it is in the file,
/// so that the checksum is taken over those very bytes.
#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    format: String,
    format_version: u32,
    checksum: String,
    #[serde(borrow)]
    model: &'a RawValue,
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl ModelBody {
    /// Serialise to the on-disk bytes, with checksum.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CoreError> {
        let compact =
            serde_json::to_string(self).map_err(|e| CoreError::ModelFile(e.to_string()))?;
        let model: &RawValue =
            serde_json::from_str(&compact).map_err(|e| CoreError::ModelFile(e.to_string()))?;
        let env = Envelope {
            format: MODEL_FORMAT.to_string(),
            format_version: MODEL_FORMAT_VERSION,
            checksum: sha256(compact.as_bytes()),
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
        let text = env.model.get();
        if sha256(text.as_bytes()) != env.checksum {
            // Not the bytes as written: re-spaced by another tool, say. The
            // checksum of files up to the twentieth session's covers the
            // compact form of the body as a `serde_json::Value`, which
            // re-spacing does not change: that form is accepted too.
            let value: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| CoreError::ModelFile(format!("model body does not parse: {e}")))?;
            let canonical =
                serde_json::to_vec(&value).map_err(|e| CoreError::ModelFile(e.to_string()))?;
            let actual = sha256(&canonical);
            if actual != env.checksum {
                return Err(CoreError::ModelFile(format!(
                    "checksum mismatch (file says {}, content is {actual}): the file is corrupt or was edited",
                    env.checksum
                )));
            }
        }
        let body: ModelBody = serde_json::from_str(text)
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
            params: ModelParams::from_serialize(&serde_json::json!({"w": [1.0, 2.0]})).unwrap(),
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

    /// A file as the twentieth session and before wrote it: the checksum over
    /// the compact form of the body as a `serde_json::Value`.
    fn old_style_file(b: &ModelBody, pretty: bool) -> Vec<u8> {
        let model = serde_json::to_value(b).unwrap();
        let env = serde_json::json!({
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "checksum": sha256(&serde_json::to_vec(&model).unwrap()),
            "model": model,
        });
        if pretty {
            serde_json::to_vec_pretty(&env).unwrap()
        } else {
            serde_json::to_vec(&env).unwrap()
        }
    }

    #[test]
    fn files_written_before_the_parameters_were_text_still_load() {
        let b = body();
        let old = old_style_file(&b, false);
        assert_eq!(ModelBody::from_bytes(&old).unwrap(), b);
        // re-spaced by another tool: its checksum is of the compact form
        assert_eq!(ModelBody::from_bytes(&old_style_file(&b, true)).unwrap(), b);
        // and an edit is still caught on that path
        let edited = String::from_utf8(old_style_file(&b, true))
            .unwrap()
            .replace("2.0", "3.0");
        let err = ModelBody::from_bytes(edited.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum"), "{err}");
    }

    #[test]
    fn the_checksum_covers_the_bytes_of_the_model_as_written() {
        let b = body();
        let bytes = b.to_bytes().unwrap();
        let env: Envelope = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(env.checksum, sha256(env.model.get().as_bytes()));
        assert_eq!(
            b.params.to_value().unwrap(),
            serde_json::json!({"w": [1.0, 2.0]})
        );
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
