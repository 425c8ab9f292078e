//! The one feature-schema type that feature tables and model files carry.
//!
//! Architecture invariant: identity columns (entity key, window bounds, IPs,
//! domains, user agents, user names) are listed in `identity` and are never in
//! `features`; [`FeatureSchema::validate`] enforces that the two are disjoint,
//! and models build their input only from `features`.

use serde::{Deserialize, Serialize};

/// How a feature's values are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureType {
    /// A real number; NaN means missing.
    Float,
    /// 0 or 1; NaN means missing.
    Bool,
    /// A count or other integer, stored as f64; NaN means missing.
    Int,
    /// A small set of strings (protocol, service), encoded by the model.
    Categorical,
}

/// One feature: name, type, and what it means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDef {
    pub name: String,
    #[serde(rename = "type")]
    pub dtype: FeatureType,
    /// The precise definition, as in the feature catalog.
    pub description: String,
    /// The feature set it belongs to (`request`, `domain`, `host`, `flow`, or a user set).
    pub set: String,
    /// The event fields (ECS names) it reads.
    #[serde(default)]
    pub reads: Vec<String>,
}

impl FeatureDef {
    pub fn new(
        name: &str,
        dtype: FeatureType,
        set: &str,
        reads: &[&str],
        description: &str,
    ) -> Self {
        FeatureDef {
            name: name.to_string(),
            dtype,
            description: description.to_string(),
            set: set.to_string(),
            reads: reads.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Ordered features plus the identity columns that travel with them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FeatureSchema {
    /// Name of the feature set (or `custom` for a table whose schema was inferred).
    pub set: String,
    pub features: Vec<FeatureDef>,
    /// Columns used to group rows and make labels; never model inputs.
    #[serde(default)]
    pub identity: Vec<String>,
}

impl FeatureSchema {
    pub fn feature_names(&self) -> Vec<&str> {
        self.features.iter().map(|f| f.name.as_str()).collect()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == name)
    }

    /// Check the schema is well formed: no duplicate names, identity and
    /// features disjoint.
    pub fn validate(&self) -> Result<(), crate::CoreError> {
        let mut seen = std::collections::HashSet::new();
        for f in &self.features {
            if !seen.insert(f.name.as_str()) {
                return Err(crate::CoreError::Schema(format!(
                    "feature `{}` appears twice",
                    f.name
                )));
            }
        }
        for id in &self.identity {
            if seen.contains(id.as_str()) {
                return Err(crate::CoreError::Schema(format!(
                    "`{id}` is an identity column and may not also be a feature"
                )));
            }
        }
        Ok(())
    }

    /// Compare the features of `self` (what a model was trained on) with
    /// `other` (a table to score): same names, same order, same types.
    pub fn check_compatible(&self, other: &FeatureSchema) -> Result<(), crate::CoreError> {
        if self.features.len() != other.features.len() {
            return Err(crate::CoreError::SchemaMismatch(format!(
                "model expects {} features, table has {}",
                self.features.len(),
                other.features.len()
            )));
        }
        for (i, (a, b)) in self.features.iter().zip(&other.features).enumerate() {
            if a.name != b.name {
                return Err(crate::CoreError::SchemaMismatch(format!(
                    "feature {i}: model expects `{}`, table has `{}`",
                    a.name, b.name
                )));
            }
            if a.dtype != b.dtype {
                return Err(crate::CoreError::SchemaMismatch(format!(
                    "feature `{}`: model expects {:?}, table has {:?}",
                    a.name, a.dtype, b.dtype
                )));
            }
        }
        Ok(())
    }
}
