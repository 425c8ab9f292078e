//! A palisade model file as the gate's risk scorer (`risk.model` in the
//! policy; needs the `model` feature, which pulls in palisade-models).
//!
//! The model's schema names its inputs. Each must be one the gate can compute
//! per request: the gate's own request features ([`crate::risk::FEATURE_NAMES`],
//! which include the gate's counters) or palisade-features' URL-only set
//! (`url_defs`, lexical features of host + path + query). Anything else — a
//! per-window entity feature, a categorical — is refused at load time with
//! the feature's name, so a model that cannot be fed is never silently
//! scored on made-up inputs.
//!
//! The score is the detector's (higher = more suspicious), clamped to 0..=1:
//! supervised models (probabilities) and Isolation Forest (anomaly score)
//! are already in that range; for others, set the policy thresholds in the
//! model's own units.

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
    let bytes =
        std::fs::read(path).map_err(|e| format!("risk.model = `{}`: {e}", path.display()))?;
    let s = imp::ModelScorer::from_bytes(&bytes)
        .map_err(|e| format!("risk.model = `{}`: {e}", path.display()))?;
    Ok(Arc::new(s))
}

#[cfg(feature = "model")]
pub use imp::ModelScorer;

#[cfg(feature = "model")]
mod imp {
    use crate::risk::{FeatureMask, RequestFeatures, RequestView, RiskScorer, FEATURE_NAMES};
    use palisade_core::{FeatureType, Matrix};
    use palisade_features::request::N_URL;
    use palisade_features::{url_defs, UrlFeaturizer};
    use palisade_models::Model;
    use std::cell::RefCell;

    #[derive(Debug, Clone, Copy)]
    enum Src {
        Url(usize),
        Gate(usize),
    }

    pub struct ModelScorer {
        model: Model,
        cols: Vec<Src>,
        need_url: bool,
        name: String,
    }

    thread_local! {
        static URL_FEAT: RefCell<UrlFeaturizer> = RefCell::new(UrlFeaturizer::new());
        /// The URL text handed to the featurizer, reused across requests.
        static URL_TEXT: RefCell<String> = const { RefCell::new(String::new()) };
    }

    impl ModelScorer {
        pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
            let model = Model::from_bytes(bytes).map_err(|e| e.to_string())?;
            Self::from_model(model)
        }

        pub fn from_model(model: Model) -> Result<Self, String> {
            let url_names: Vec<String> = url_defs().into_iter().map(|d| d.name).collect();
            let mut cols = Vec::new();
            for f in &model.body.schema.features {
                if f.dtype == FeatureType::Categorical {
                    return Err(format!(
                        "feature `{}` is categorical; the gate feeds numeric features only",
                        f.name
                    ));
                }
                let src = if let Some(i) = FEATURE_NAMES.iter().position(|n| *n == f.name) {
                    Src::Gate(i)
                } else if let Some(i) = url_names.iter().position(|n| *n == f.name) {
                    Src::Url(i)
                } else {
                    return Err(format!(
                        "feature `{}` (set `{}`) cannot be computed per request by the gate (it offers the gate \
                         features and the `url` set)",
                        f.name, f.set
                    ));
                };
                cols.push(src);
            }
            let need_url = cols.iter().any(|c| matches!(c, Src::Url(_)));
            let name = format!("model:{}", model.body.kind);
            Ok(ModelScorer {
                model,
                cols,
                need_url,
                name,
            })
        }
    }

    impl RiskScorer for ModelScorer {
        fn score(&self, f: &RequestFeatures, req: &RequestView<'_>) -> f32 {
            let mut url = [f64::NAN; N_URL];
            if self.need_url {
                // host + path [+ ? query], built in a per-thread buffer
                // instead of a new String per request.
                URL_TEXT.with(|t| {
                    let mut text = t.borrow_mut();
                    text.clear();
                    text.push_str(req.host.unwrap_or(""));
                    text.push_str(req.path);
                    if !req.query.is_empty() {
                        text.push('?');
                        text.push_str(req.query);
                    }
                    URL_FEAT.with(|u| u.borrow_mut().url_row(&text, &mut url));
                });
            }
            let row: Vec<f64> = self
                .cols
                .iter()
                .map(|c| match *c {
                    Src::Url(i) => url[i],
                    Src::Gate(i) => f.0[i] as f64,
                })
                .collect();
            let Ok(m) = Matrix::new(1, row.len(), row) else {
                return f32::NAN;
            };
            match self.model.detector.score(&m) {
                Ok(v) => v.first().map_or(f32::NAN, |s| *s as f32),
                Err(e) => {
                    tracing::debug!(error = %e, "model scoring failed");
                    f32::NAN
                }
            }
        }

        fn name(&self) -> &str {
            &self.name
        }

        /// Only the gate features the model's schema names.
        fn needs(&self) -> FeatureMask {
            self.cols.iter().fold(FeatureMask::NONE, |m, c| match *c {
                Src::Gate(i) => m.with(i),
                Src::Url(_) => m,
            })
        }
    }
}
