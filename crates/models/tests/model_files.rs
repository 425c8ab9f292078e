//! Model files round-trip exactly; schema mismatches, corrupt and newer files
//! are clear errors; identity and label columns never become features.

use palisade_core::{ColumnData, ColumnRole, ModelBody, Table};
use palisade_models::{Model, ModelError, ThresholdRule, TrainOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// 600 rows: three correlated numeric features, a constant column, an
/// identity column, a text column and a label (the last 6 rows are outliers).
fn table() -> Table {
    let n = 600;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut a, mut b, mut c, mut label) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let t: f64 = rng.random::<f64>() * 10.0;
        let out = i >= n - 6;
        a.push(if out {
            40.0 + t
        } else {
            t + rng.random::<f64>()
        });
        b.push(if out {
            -3.0 * t
        } else {
            2.0 * t + rng.random::<f64>()
        });
        c.push(if i % 50 == 0 {
            f64::NAN
        } else {
            (t * 100.0).exp2().min(1e6)
        });
        label.push(if out { 1.0 } else { 0.0 });
    }
    let mut tb = Table::new();
    tb.push(
        "source.ip",
        ColumnRole::Identity,
        ColumnData::Str(
            (0..n)
                .map(|i| Some(format!("10.0.0.{}", i % 200)))
                .collect(),
        ),
    )
    .unwrap();
    tb.push(
        "entity_id",
        ColumnRole::Identity,
        ColumnData::F64((0..n).map(|i| i as f64).collect()),
    )
    .unwrap();
    tb.push("a", ColumnRole::Feature, ColumnData::F64(a))
        .unwrap();
    tb.push("b", ColumnRole::Feature, ColumnData::F64(b))
        .unwrap();
    tb.push("c", ColumnRole::Feature, ColumnData::F64(c))
        .unwrap();
    tb.push("const", ColumnRole::Feature, ColumnData::F64(vec![3.0; n]))
        .unwrap();
    tb.push(
        "proto",
        ColumnRole::Meta,
        ColumnData::Str(
            (0..n)
                .map(|i| Some(if i % 2 == 0 { "tcp" } else { "udp" }))
                .collect(),
        ),
    )
    .unwrap();
    tb.push("label", ColumnRole::Label, ColumnData::F64(label))
        .unwrap();
    tb
}

fn opts() -> TrainOptions {
    let mut o = TrainOptions::new(3).with("epochs", 5);
    o.label_col = Some("label".into());
    o.log_cols = vec!["c".into()];
    o
}

fn train(kind: &str) -> Model {
    let mut o = opts();
    if kind != "autoencoder" && kind != "ensemble" {
        o.options.clear();
    }
    if kind == "ensemble" {
        o = o.with("members", "iforest,pca,autoencoder");
    }
    palisade_models::train(kind, &table(), &o).unwrap()
}

#[test]
fn every_kind_round_trips_exactly_and_leaves_out_non_features() {
    let t = table();
    for kind in ["iforest", "pca", "autoencoder", "ensemble"] {
        let m = train(kind);
        let b = &m.body;
        assert_eq!(
            b.schema.feature_names(),
            vec!["a", "b", "c", "const"],
            "{kind}"
        );
        let left = b.training.left_out.join(";");
        for col in ["source.ip", "entity_id", "proto", "label"] {
            assert!(
                left.contains(col),
                "{kind}: {col} not listed as left out: {left}"
            );
        }
        assert!(
            b.training
                .notes
                .iter()
                .any(|n| n.contains("`const` dropped")),
            "{kind}: {:?}",
            b.training.notes
        );
        assert!(
            b.training
                .notes
                .iter()
                .any(|n| n.contains("`c`: 12 missing")),
            "{kind}: {:?}",
            b.training.notes
        );
        assert_eq!(b.training.feature_stats.len(), 4);
        assert_eq!(b.training.seed, Some(3));
        let bytes = b.to_bytes().unwrap();
        let back = Model::from_bytes(&bytes).unwrap();
        assert_eq!(&back.body, b, "{kind}");
        let s1 = m.score_table(&t).unwrap();
        let s2 = back.score_table(&t).unwrap();
        assert_eq!(s1, s2, "{kind}: scores differ after a round trip");
        // the planted outliers are on top
        let auc =
            palisade_models::metrics::roc_auc(&s1, &(0..600).map(|i| i >= 594).collect::<Vec<_>>());
        assert!(auc > 0.95, "{kind}: AUC {auc}");
        // explanations name features of the schema, never identity columns
        let x = m.matrix(&t).unwrap();
        let e = m.detector.explain(&x, 599, 2).unwrap();
        assert_eq!(e.len(), 2);
        assert!(
            e.iter()
                .all(|c| ["a", "b", "c"].contains(&c.feature.as_str())),
            "{kind}: {e:?}"
        );
        // threshold by contamination: about 1 % of training rows at or above it
        let th = b.threshold.as_ref().unwrap();
        let above = s1.iter().filter(|&&s| s >= th.value).count();
        assert!(
            (6..=12).contains(&above),
            "{kind}: {above} rows above the threshold"
        );
    }
}

#[test]
fn reordered_columns_are_found_by_name() {
    let m = train("pca");
    let mut t = table();
    t.columns.reverse();
    assert_eq!(m.score_table(&t).unwrap(), m.score_table(&table()).unwrap());
}

#[test]
fn schema_mismatch_is_an_error_naming_the_column() {
    let m = train("iforest");
    let mut t = table();
    t.columns.retain(|c| c.name != "b");
    let err = m.score_table(&t).unwrap_err().to_string();
    assert!(
        err.contains("schema mismatch") && err.contains('b'),
        "{err}"
    );
    let mut t = table();
    t.push(
        "a",
        ColumnRole::Feature,
        ColumnData::Str(vec![Some("x"); 600].into()),
    )
    .unwrap();
    let err = m.score_table(&t).unwrap_err().to_string();
    assert!(err.contains("`a`") && err.contains("text"), "{err}");
    // a matrix of the wrong width straight into the detector
    let x = palisade_core::Matrix::zeros(3, 2);
    assert!(matches!(m.detector.score(&x), Err(ModelError::Data(_))));
    assert!(m
        .detector
        .explain(&m.matrix(&table()).unwrap(), 10_000, 3)
        .is_err());
}

#[test]
fn corrupt_truncated_newer_and_inconsistent_files_are_errors() {
    let m = train("iforest");
    let bytes = m.body.to_bytes().unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    // flip one digit inside the parameters
    let pos = text.find("\"split\":[").unwrap() + 12;
    let mut tampered = text.clone().into_bytes();
    tampered[pos] = if tampered[pos] == b'1' { b'2' } else { b'1' };
    let err = Model::from_bytes(&tampered).unwrap_err().to_string();
    assert!(
        err.contains("checksum") || err.contains("not a Palisade model"),
        "{err}"
    );
    assert!(Model::from_bytes(&bytes[..bytes.len() - 10])
        .unwrap_err()
        .to_string()
        .contains("corrupt"));
    let newer = text.replace("\"format_version\":1", "\"format_version\":7");
    assert!(Model::from_bytes(newer.as_bytes())
        .unwrap_err()
        .to_string()
        .contains("newer"));
    // a well-formed file whose parameters do not fit its schema
    let mut body: ModelBody = m.body.clone();
    body.schema.features.pop();
    let err = Model::from_bytes(&body.to_bytes().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("inputs"), "{err}");
    let mut body: ModelBody = m.body.clone();
    let mut params = body.params.to_value().unwrap();
    params["trees"][0]["leaf"] = serde_json::json!([1.0]);
    body.params = palisade_core::ModelParams::from_serialize(&params).unwrap();
    assert!(Model::from_bytes(&body.to_bytes().unwrap())
        .unwrap_err()
        .to_string()
        .contains("nodes"));
    let mut body: ModelBody = m.body.clone();
    body.kind = "no-such-kind".into();
    assert!(Model::from_bytes(&body.to_bytes().unwrap()).is_err());
}

#[test]
fn thresholds_by_target_fpr_and_fixed_and_bad_options() {
    let t = table();
    let mut o = opts();
    o.options.clear();
    o.threshold = ThresholdRule::TargetFpr(0.01);
    let m = palisade_models::train("iforest", &t, &o).unwrap();
    let s = m.score_table(&t).unwrap();
    let th = m.body.threshold.clone().unwrap();
    assert!(th.rule.contains("fpr"), "{}", th.rule);
    let fp = s.iter().take(594).filter(|&&v| v >= th.value).count();
    assert!(fp <= 5, "{fp} false positives at FPR 1 % of 594");
    o.threshold = ThresholdRule::Fixed(0.7);
    assert_eq!(
        palisade_models::train("iforest", &t, &o)
            .unwrap()
            .body
            .threshold
            .unwrap()
            .value,
        0.7
    );
    // target FPR without labels is an error
    o.threshold = ThresholdRule::TargetFpr(0.01);
    o.label_col = None;
    let mut t2 = t.clone();
    t2.columns.retain(|c| c.name != "label");
    assert!(palisade_models::train("iforest", &t2, &o).is_err());
    // an option the model does not read is an error naming it
    let o = TrainOptions::new(1).with("tress", 10);
    let err = palisade_models::train("iforest", &t2, &o)
        .unwrap_err()
        .to_string();
    assert!(err.contains("tress"), "{err}");
    assert!(matches!(
        palisade_models::train("svm", &t2, &o),
        Err(ModelError::UnknownKind(_))
    ));
}

#[test]
fn pca_refuses_zero_components_asked_for() {
    let mut o = opts();
    o.options.clear();
    let e = palisade_models::train("pca", &table(), &o.clone().with("components", 0u64))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("components") && e.contains("at least 1"), "{e}");
    // unset, the variance rule chooses
    assert!(palisade_models::train("pca", &table(), &o).is_ok());
}
