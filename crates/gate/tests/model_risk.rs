//! The model-backed risk scorer: a palisade model file trained on gate and
//! URL features loads as the gate's scorer and scores requests. (A wiring
//! test on synthetic requests; the model's quality is the models crate's
//! business.) Run with `--features model`.
#![cfg(feature = "model")]

use palisade_core::{ColumnData, ColumnRole, Table};
use palisade_gate::risk::{RequestFeatures, RequestView, FEATURE_NAMES};

#[path = "support/risk_model.rs"]
mod risk_model;

fn browser(i: usize) -> (String, String) {
    (
        format!("/products/{}", i % 97),
        format!("ref=home&page={}", i % 7),
    )
}

#[test]
fn model_file_scores_requests() {
    let url_names = risk_model::url_names();
    let requests: Vec<(String, String)> = (0..400).map(browser).collect();
    let views: Vec<RequestView<'_>> = requests
        .iter()
        .enumerate()
        .map(|(i, (path, query))| RequestView {
            method: "GET",
            host: Some("shop.example"),
            path,
            query,
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
            ),
            referrer: Some("https://shop.example/"),
            accept_language: true,
            header_count: 8 + i % 5,
            limit_pressure: (i % 10) as f32 / 20.0,
            limit_exceeded: false,
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (model, path) = risk_model::train_risk_model(&views, dir.path());

    let scorer = palisade_gate::model_scorer::load(&path).unwrap();
    assert!(scorer.name().starts_with("model:iforest"));
    let (bp, bq) = browser(3);
    let b = RequestView {
        method: "GET",
        host: Some("shop.example"),
        path: &bp,
        query: &bq,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"),
        referrer: Some("https://shop.example/"),
        accept_language: true,
        header_count: 10,
        limit_pressure: 0.1,
        limit_exceeded: false,
    };
    let s = RequestView {
        method: "POST",
        host: Some("shop.example"),
        path: "/wp-admin/../../etc/passwd",
        query: "cmd=%2Fbin%2Fsh%20-c%20id&x=%00%00%00",
        user_agent: None,
        referrer: None,
        accept_language: false,
        header_count: 2,
        limit_pressure: 1.0,
        limit_exceeded: true,
    };
    let sb = scorer.score(&RequestFeatures::from_view(&b), &b);
    let ss = scorer.score(&RequestFeatures::from_view(&s), &s);
    assert!(sb.is_finite() && ss.is_finite());
    assert_ne!(ss, sb);
    // The adapter feeds the model exactly what the models crate's own table
    // path computes for the same request (same names, order and values).
    let one_row = |v: &RequestView<'_>, url: &str| {
        let f = RequestFeatures::from_view(v);
        let mut u = [0.0; palisade_features::request::N_URL];
        palisade_features::UrlFeaturizer::new().url_row(url, &mut u);
        let mut t = Table::new();
        for (j, name) in FEATURE_NAMES.iter().enumerate() {
            t.push(
                name,
                ColumnRole::Feature,
                ColumnData::F64(vec![f.0[j] as f64]),
            )
            .unwrap();
        }
        for (j, name) in url_names.iter().enumerate() {
            t.push(name, ColumnRole::Feature, ColumnData::F64(vec![u[j]]))
                .unwrap();
        }
        model.score_table(&t).unwrap()[0] as f32
    };
    assert_eq!(sb, one_row(&b, &format!("shop.example{bp}?{bq}")));
    assert_eq!(
        ss,
        one_row(
            &s,
            "shop.example/wp-admin/../../etc/passwd?cmd=%2Fbin%2Fsh%20-c%20id&x=%00%00%00"
        )
    );

    // A model needing a feature the gate cannot compute is refused by name.
    let mut t2 = Table::new();
    t2.push(
        "bytes_out_per_window",
        ColumnRole::Feature,
        ColumnData::F64((0..50).map(|i| i as f64).collect()),
    )
    .unwrap();
    t2.push(
        "other",
        ColumnRole::Feature,
        ColumnData::F64((0..50).map(|i| (i * 7 % 13) as f64).collect()),
    )
    .unwrap();
    let opts = palisade_models::TrainOptions {
        seed: 7,
        log_offset: 1.0,
        ..Default::default()
    };
    let m2 = palisade_models::train("iforest", &t2, &opts).unwrap();
    let p2 = dir.path().join("bad.json");
    std::fs::write(&p2, m2.body.to_bytes().unwrap()).unwrap();
    let e = palisade_gate::model_scorer::load(&p2).err().unwrap();
    assert!(e.contains("bytes_out_per_window"), "{e}");
}
