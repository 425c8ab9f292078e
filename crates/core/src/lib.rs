//! Palisade's shared vocabulary. Pure data types and computation; no IO.
//!
//! - [`event::Event`]: the one normalised event (ECS names) every reader fills.
//! - [`schema::FeatureSchema`]: the one feature-schema type tables and models carry.
//! - [`table::Table`] and [`table::Matrix`]: feature tables and model input.
//! - [`model_file::ModelBody`]: the checked, versioned model-file envelope.
//! - [`stats::ColumnStats`]: summary statistics (drift, typical values).
//! - [`hash::IdentityHasher`]: maps and sets keyed by values that already are hashes.

pub mod event;
pub mod hash;
pub mod model_file;
pub mod schema;
pub mod stats;
pub mod table;

pub use event::{canonical_field_name, Event, FieldType, FieldValue, EVENT_FIELDS};
pub use hash::{IdentityBuildHasher, IdentityHasher};
pub use model_file::{ModelBody, ModelParams, Threshold, TrainingInfo, MODEL_FORMAT_VERSION};
pub use schema::{FeatureDef, FeatureSchema, FeatureType};
pub use stats::ColumnStats;
pub use table::{Column, ColumnData, ColumnRole, Matrix, Table, TextColumn};

/// Errors of the core types. Each names the field, column or file part at fault.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("unknown event field `{0}`")]
    UnknownField(String),
    #[error("field `{field}`: `{value}` is not {expected}")]
    BadValue {
        field: String,
        value: String,
        expected: &'static str,
    },
    #[error("schema: {0}")]
    Schema(String),
    #[error("schema mismatch: {0}")]
    SchemaMismatch(String),
    #[error("shape: {0}")]
    Shape(String),
    #[error("model file: {0}")]
    ModelFile(String),
}
