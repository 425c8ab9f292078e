//! A risk model file as an operator makes one: an Isolation Forest trained
//! on the gate's request features and the first four URL features of some
//! requests, written where the gate loads it from. Shared by
//! `tests/model_risk.rs` and `benches/limiter.rs` (included by `#[path]`).

use palisade_core::{ColumnData, ColumnRole, Table};
use palisade_gate::risk::{RequestFeatures, RequestView, FEATURE_NAMES};
use std::path::{Path, PathBuf};

/// The URL features the model reads (the first four of the catalog).
pub fn url_names() -> Vec<String> {
    palisade_features::url_defs()
        .into_iter()
        .map(|d| d.name)
        .take(4)
        .collect()
}

/// An Isolation Forest (seed 7) trained on `views` (URL features of
/// `host` + `path` `?` `query`), and its model file in `dir`.
pub fn train_risk_model(
    views: &[RequestView<'_>],
    dir: &Path,
) -> (palisade_models::Model, PathBuf) {
    let url_names = url_names();
    let mut cols: Vec<Vec<f64>> = vec![vec![]; FEATURE_NAMES.len() + url_names.len()];
    let mut fz = palisade_features::UrlFeaturizer::new();
    for v in views {
        let f = RequestFeatures::from_view(v);
        for (j, x) in f.0.iter().enumerate() {
            cols[j].push(*x as f64);
        }
        let mut u = [0.0; palisade_features::request::N_URL];
        fz.url_row(
            &format!("{}{}?{}", v.host.unwrap_or(""), v.path, v.query),
            &mut u,
        );
        for j in 0..url_names.len() {
            cols[FEATURE_NAMES.len() + j].push(u[j]);
        }
    }
    let mut t = Table::new();
    for (j, c) in cols.into_iter().enumerate() {
        let name = match FEATURE_NAMES.get(j) {
            Some(n) => n.to_string(),
            None => url_names[j - FEATURE_NAMES.len()].clone(),
        };
        t.push(&name, ColumnRole::Feature, ColumnData::F64(c))
            .expect("column");
    }
    let opts = palisade_models::TrainOptions {
        seed: 7,
        log_offset: 1.0,
        ..Default::default()
    };
    let model = palisade_models::train("iforest", &t, &opts).expect("train");
    let path = dir.join("risk.json");
    std::fs::write(&path, model.body.to_bytes().expect("bytes")).expect("write");
    (model, path)
}
