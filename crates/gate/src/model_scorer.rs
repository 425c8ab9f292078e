//! Loading a model file as the gate's risk scorer.

use crate::risk::RiskScorer;
use std::path::Path;
use std::sync::Arc;

/// Load a palisade model file as a [`RiskScorer`].
#[cfg(not(feature = "model"))]
pub fn load(path: &Path) -> Result<Arc<dyn RiskScorer>, String> {
    Err(format!(
        "risk.model = `{}`: this build has no model support (build palisade-gate with the `model` feature)",
        path.display()
    ))
}

#[cfg(feature = "model")]
pub fn load(path: &Path) -> Result<Arc<dyn RiskScorer>, String> {
    Err(format!(
        "risk.model = `{}`: the model adapter is not wired yet",
        path.display()
    ))
}
