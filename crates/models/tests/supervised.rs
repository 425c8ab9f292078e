//! Invariants of the supervised kinds (gbt, rf): every figure is measured on
//! rows the model did not train on.

use palisade_core::{ColumnData, ColumnRole, Matrix, Table};
use palisade_models::metrics::roc_auc;
use palisade_models::supervised::calibrate::{log_loss, sigmoid, CalibrationMethod};
use palisade_models::supervised::eval::{cross_validate, time_split};
use palisade_models::supervised::{FitSpec, Supervised};
use palisade_models::{Model, ThresholdRule, TrainOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KINDS: [&str; 2] = ["gbt", "rf"];

fn kind(k: &str) -> &'static str {
    if k == "gbt" {
        "gbt"
    } else {
        "rf"
    }
}

/// Four features: x0, x1 uniform (the signal), x2 noise, x3 = x0 with 20 % NaN.
/// Label: x0 + x1 > 1, flipped with probability `noise`.
fn toy(n: usize, seed: u64, noise: f64) -> (Matrix, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = Vec::new();
    let mut y = Vec::new();
    while y.len() < n {
        let (a, b, c): (f64, f64, f64) = (rng.random(), rng.random(), rng.random());
        let d = if rng.random::<f64>() < 0.2 {
            f64::NAN
        } else {
            a
        };
        let mut label = if a + b > 1.0 { 1.0 } else { 0.0 };
        if rng.random::<f64>() < noise {
            label = 1.0 - label;
        }
        data.extend([a, b, c, d]);
        y.push(label);
    }
    (Matrix::new(n, 4, data).unwrap(), y)
}

fn names() -> Vec<String> {
    ["x0", "x1", "noise", "x0_gappy"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn labels(y: &[f64]) -> Vec<bool> {
    y.iter().map(|&v| v > 0.5).collect()
}

/// An axis-aligned rectangle with a margin: label = x0 > 0.5 and x1 > 0.3,
/// rows within 0.05 of either edge dropped; x2 noise, x3 = x0 with 20 % NaN.
fn separable(n: usize, seed: u64) -> (Matrix, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = Vec::new();
    let mut y = Vec::new();
    while y.len() < n {
        let (a, b, c): (f64, f64, f64) = (rng.random(), rng.random(), rng.random());
        if (a - 0.5).abs() < 0.05 || (b - 0.3).abs() < 0.05 {
            continue;
        }
        let d = if rng.random::<f64>() < 0.2 {
            f64::NAN
        } else {
            a
        };
        data.extend([a, b, c, d]);
        y.push(if a > 0.5 && b > 0.3 { 1.0 } else { 0.0 });
    }
    (Matrix::new(n, 4, data).unwrap(), y)
}

#[test]
fn separable_toy_problem_is_learned_perfectly() {
    let (xtr, ytr) = separable(1500, 1);
    let (xte, yte) = separable(1000, 2);
    for k in KINDS {
        let spec = FitSpec::default_for(kind(k), 7);
        let m = Supervised::fit(&spec, &xtr, &ytr, &names(), None).unwrap();
        let p = m.predict(&xte);
        assert_eq!(roc_auc(&p, &labels(&yte)), 1.0, "{k}");
        let wrong = p
            .iter()
            .zip(&yte)
            .filter(|(&p, &y)| (p >= 0.5) != (y > 0.5))
            .count();
        assert_eq!(wrong, 0, "{k}: {wrong} held-out rows misclassified at 0.5");
    }
}

#[test]
fn positive_weight_raises_scores_monotonically() {
    let (xtr, ytr) = toy(2000, 3, 0.25);
    let (xte, _) = toy(1000, 4, 0.25);
    for k in KINDS {
        let mut means = Vec::new();
        for w in [0.2, 1.0, 5.0] {
            let mut spec = FitSpec {
                pos_weight: Some(w),
                calibration: CalibrationMethod::None,
                holdout: 0.0,
                ..FitSpec::default_for(kind(k), 5)
            };
            // Fully grown forest leaves are pure, so weights could only move splits;
            // with 25-row leaves the weighted leaf value shows the weight directly.
            spec.rf.min_samples_leaf = 25;
            let trees = spec.fit_trees(&xtr, &ytr).unwrap();
            let p: Vec<f64> = trees.margin(&xte).into_iter().map(sigmoid).collect();
            let flagged = p.iter().filter(|&&v| v >= 0.5).count() as f64 / p.len() as f64;
            means.push((p.iter().sum::<f64>() / p.len() as f64, flagged));
        }
        assert!(
            means
                .windows(2)
                .all(|w| w[1].0 > w[0].0 && w[1].1 >= w[0].1),
            "{k}: {means:?}"
        );
        assert!(means[2].1 > means[0].1 + 0.1, "{k}: {means:?}");
    }
}

#[test]
fn calibration_improves_held_out_log_loss() {
    let (xtr, ytr) = toy(3000, 6, 0.2);
    let (xte, yte) = toy(2000, 7, 0.2);
    for (k, method) in [
        ("gbt", CalibrationMethod::Platt),
        ("rf", CalibrationMethod::Platt),
        ("rf", CalibrationMethod::Isotonic),
    ] {
        // A positive weight of 4 leaves the raw scores far too high.
        let spec = FitSpec {
            pos_weight: Some(4.0),
            calibration: method,
            ..FitSpec::default_for(kind(k), 9)
        };
        let m = Supervised::fit(&spec, &xtr, &ytr, &names(), None).unwrap();
        let raw: Vec<f64> = m.trees.margin(&xte).into_iter().map(sigmoid).collect();
        let cal = m.predict(&xte);
        let (a, b) = (log_loss(&raw, &yte), log_loss(&cal, &yte));
        assert!(
            b < a - 0.005,
            "{k} {method:?}: raw {a:.4} calibrated {b:.4}"
        );
        // Platt keeps the ranking exactly; isotonic's flat blocks tie scores and may cost a little AUC.
        let (ar, ac) = (roc_auc(&raw, &labels(&yte)), roc_auc(&cal, &labels(&yte)));
        let slack = if method == CalibrationMethod::Platt {
            1e-9
        } else {
            0.03
        };
        assert!(ac >= ar - slack, "{k} {method:?}: auc {ar} -> {ac}");
    }
}

#[test]
fn tree_shap_contributions_add_up_to_the_margin() {
    let (xtr, ytr) = toy(800, 12, 0.1);
    let (xte, _) = toy(50, 13, 0.1);
    for k in KINDS {
        let spec = FitSpec {
            calibration: CalibrationMethod::None,
            ..FitSpec::default_for(kind(k), 3)
        };
        let m = Supervised::fit(&spec, &xtr, &ytr, &names(), None).unwrap();
        let margin = m.trees.margin(&xte);
        for (i, &m_i) in margin.iter().enumerate().take(xte.rows) {
            let (phi, base) = m.shap_row(xte.row(i));
            let total = phi.iter().sum::<f64>() + base;
            // gbt: log-odds; rf: the vote share (its margin is the logit of it).
            let target = if k == "gbt" { m_i } else { sigmoid(m_i) };
            // (rf's margin clips the vote share at 1e-6 from 0 and 1.)
            assert!(
                (total - target).abs() < 2e-6,
                "{k} row {i}: {total} vs {target}"
            );
        }
    }
}

fn strs(v: Vec<Option<&str>>) -> ColumnData {
    ColumnData::Str(v.into_iter().map(|s| s.map(|s| s.to_string())).collect())
}

/// A table whose label is "proto is icmp, or `size` is missing": only a model
/// that reads the text column and the NaN pattern can rank it.
fn mixed_table(n: usize, seed: u64) -> Table {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let protos = ["tcp", "udp", "icmp", "gre"];
    let (mut proto, mut size, mut noise, mut ip, mut y, mut ts) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..n {
        // "gre" is rare (never in small training sets) and benign.
        let p = protos[if rng.random::<f64>() < 0.02 {
            3
        } else {
            rng.random_range(0..3)
        }];
        let missing = rng.random::<f64>() < 0.15;
        let s: f64 = rng.random::<f64>() * 1000.0;
        proto.push(if rng.random::<f64>() < 0.05 {
            None
        } else {
            Some(p)
        });
        size.push(if missing { f64::NAN } else { s });
        noise.push(rng.random::<f64>());
        ip.push(Some(format!("10.0.0.{}", i % 250)));
        y.push(if p == "icmp" || missing { 1.0 } else { 0.0 });
        ts.push(1_700_000_000.0 + i as f64);
    }
    let mut t = Table::new();
    t.push("src_ip", ColumnRole::Identity, ColumnData::Str(ip.into()))
        .unwrap();
    t.push("proto", ColumnRole::Feature, strs(proto)).unwrap();
    t.push("size", ColumnRole::Feature, ColumnData::F64(size))
        .unwrap();
    t.push("noise", ColumnRole::Feature, ColumnData::F64(noise))
        .unwrap();
    t.push("ts", ColumnRole::Meta, ColumnData::F64(ts)).unwrap();
    t.push("label", ColumnRole::Label, ColumnData::F64(y))
        .unwrap();
    t
}

fn opts() -> TrainOptions {
    let mut o = TrainOptions::new(11).with("trees", 40u64);
    o.label_col = Some("label".into());
    o.threshold = ThresholdRule::TargetFpr(0.01);
    o
}

fn table_labels(t: &Table) -> Vec<bool> {
    match &t.column("label").unwrap().data {
        ColumnData::F64(v) => v.iter().map(|&x| x > 0.5).collect(),
        ColumnData::Str(_) => unreachable!(),
    }
}

#[test]
fn categorical_and_missing_values_are_learned_and_explained() {
    let train = mixed_table(1500, 21);
    let test = mixed_table(800, 22);
    for k in KINDS {
        let m = palisade_models::train(k, &train, &opts()).unwrap();
        // The text column is an input (coded), never dropped; identity never is.
        let feats = m.body.schema.feature_names();
        assert!(
            feats.contains(&"proto") && !feats.contains(&"src_ip"),
            "{k}: {feats:?}"
        );
        assert!(
            m.body
                .training
                .notes
                .iter()
                .any(|n| n.contains("categorical `proto`")),
            "{k}"
        );
        let s = m.score_table(&test).unwrap();
        let auc = roc_auc(&s, &table_labels(&test));
        assert!(auc > 0.99, "{k}: held-out auc {auc}");
        // Permutation importance: both signals matter, the noise column does not.
        let params = m.body.params.to_value().unwrap();
        let imp = params["importance"].as_array().unwrap();
        let perm = |f: &str| {
            imp.iter().find(|i| i["feature"] == f).unwrap()["permutation"]
                .as_f64()
                .unwrap()
        };
        assert!(
            perm("proto") > 0.05 && perm("size") > 0.05 && perm("noise") < 0.01,
            "{k}: {imp:?}"
        );
        // An icmp row with a present size is explained by proto first.
        let x = m.matrix(&test).unwrap();
        let ColumnData::Str(pv) = &test.column("proto").unwrap().data else {
            unreachable!()
        };
        let row = (0..test.nrows())
            .find(|&i| pv.value(i) == Some("icmp") && !x.get(i, 1).is_nan())
            .unwrap();
        let ex = m.detector.explain(&x, row, 2).unwrap();
        assert_eq!(ex[0].feature, "proto", "{k}: {ex:?}");
        assert!(ex[0].contribution > 0.0);
    }
}

#[test]
fn model_files_round_trip_and_reject_corruption() {
    let train = mixed_table(800, 31);
    let test = mixed_table(300, 32);
    for k in KINDS {
        let m = palisade_models::train(k, &train, &opts()).unwrap();
        let bytes = m.body.to_bytes().unwrap();
        let back = Model::from_bytes(&bytes).unwrap();
        assert_eq!(back.body, m.body);
        assert_eq!(
            back.score_table(&test).unwrap(),
            m.score_table(&test).unwrap(),
            "{k}"
        );
        let x = back.matrix(&test).unwrap();
        assert_eq!(
            back.detector.explain(&x, 3, 3).unwrap(),
            m.detector.explain(&x, 3, 3).unwrap()
        );
        assert!(Model::from_bytes(&bytes[..bytes.len() - 10]).is_err());
        // A text column that became numeric is an error naming it, not a crash.
        let mut bad = test.clone();
        bad.push(
            "proto",
            ColumnRole::Feature,
            ColumnData::F64(vec![1.0; test.nrows()]),
        )
        .unwrap();
        let e = back.score_table(&bad).unwrap_err().to_string();
        assert!(e.contains("proto"), "{e}");
    }
}

#[test]
fn threshold_is_chosen_on_held_out_rows() {
    let train = mixed_table(1000, 41);
    let m = palisade_models::train("rf", &train, &opts()).unwrap();
    let t = m.body.threshold.clone().unwrap();
    // 20 % holdout of ~1000 rows: about 200 labelled rows, not the 1000 training rows.
    let negs = t
        .rule
        .split_whitespace()
        .find_map(|w| w.parse::<usize>().ok())
        .unwrap();
    let total_neg = table_labels(&train).iter().filter(|&&b| !b).count();
    assert!(
        negs < total_neg / 3,
        "{} (of {total_neg} negatives)",
        t.rule
    );
}

#[test]
fn cross_validation_and_time_split_evaluate_unseen_rows() {
    let t = mixed_table(900, 51);
    let cv = cross_validate("gbt", &t, &opts(), 3).unwrap();
    assert_eq!(cv.folds.len(), 3);
    assert_eq!(cv.pooled.positives + cv.pooled.negatives, 900);
    assert!(
        cv.folds
            .iter()
            .all(|f| (598..=602).contains(&f.train_rows) && f.report.roc_auc > 0.98),
        "{cv:?}"
    );
    let c = cv.pooled.confusion.as_ref().unwrap();
    assert_eq!(c.tp + c.fp + c.tn + c.fn_, 900);
    let (m, r) = time_split("rf", &t, &opts(), "ts", "1700000600").unwrap();
    assert_eq!((r.train_rows, r.test_rows), (600, 300));
    assert_eq!(m.body.training.rows, 600);
    assert!(r.report.roc_auc > 0.98, "{:?}", r.report);
    assert!(
        time_split("rf", &t, &opts(), "ts", "1600000000").is_err(),
        "an empty past is an error"
    );
}

#[test]
fn a_validation_table_that_does_not_match_is_named_as_the_validation_table() {
    let t = mixed_table(300, 7);
    let mut v = mixed_table(100, 8);
    v.columns.retain(|c| c.name != "noise");
    let mut o = opts();
    o.validation = Some(v);
    let e = palisade_models::train("gbt", &t, &o)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("validation table does not match") && e.contains("noise"),
        "{e}"
    );
}

#[test]
fn cross_validation_refuses_more_folds_than_a_class_has_rows() {
    let t = mixed_table(900, 51);
    let labels = table_labels(&t);
    let fewest = labels
        .iter()
        .filter(|&&b| b)
        .count()
        .min(labels.iter().filter(|&&b| !b).count());
    let e = cross_validate("gbt", &t, &opts(), fewest + 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("need at least") && e.contains("malicious"),
        "{e}"
    );
}

/// NSL-KDD (real data, read from ../shared/data): train on a 3,000-row subsample
/// of the `i % 10 < 7` rows, evaluate on every `i % 10 >= 7` row.
#[test]
fn nsl_kdd_subsample_held_out_auc() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/nsl-kdd/KDDTrain+_20Percent.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.trim_end().split(',').collect())
        .collect();
    let build = |sel: Vec<&Vec<&str>>| {
        let mut t = Table::new();
        for j in 0..41 {
            let data = if (1..=3).contains(&j) {
                ColumnData::Str(sel.iter().map(|r| Some(r[j].to_string())).collect())
            } else {
                ColumnData::F64(
                    sel.iter()
                        .map(|r| r[j].parse().unwrap_or(f64::NAN))
                        .collect(),
                )
            };
            t.push(&format!("c{j}"), ColumnRole::Feature, data).unwrap();
        }
        t.push(
            "label",
            ColumnRole::Label,
            ColumnData::F64(sel.iter().map(|r| f64::from(r[41] != "normal")).collect()),
        )
        .unwrap();
        t
    };
    let train = build(
        rows.iter()
            .enumerate()
            .filter(|(i, _)| i % 10 < 7)
            .map(|(_, r)| r)
            .take(3000)
            .collect(),
    );
    let test = build(
        rows.iter()
            .enumerate()
            .filter(|(i, _)| i % 10 >= 7)
            .map(|(_, r)| r)
            .collect(),
    );
    assert!(test.nrows() > 7000);
    for k in KINDS {
        let m = palisade_models::train(k, &train, &opts()).unwrap();
        let auc = roc_auc(&m.score_table(&test).unwrap(), &table_labels(&test));
        // Measured ≈ 0.998 (gbt) / 0.999 (rf); the floor leaves room for seeds and platforms.
        assert!(auc > 0.98, "{k}: held-out NSL-KDD auc {auc}");
    }
}

#[test]
fn a_split_time_may_be_a_date() {
    use palisade_models::supervised::eval::parse_time;
    // 2023-11-14T00:00:00Z
    assert_eq!(parse_time("2023-11-14"), Some(1_699_920_000.0));
    assert_eq!(parse_time("2023-11-14T00:00:00Z"), Some(1_699_920_000.0));
    assert_eq!(parse_time("1699920000"), Some(1_699_920_000.0));
    assert_eq!(parse_time("2023-13-14"), None);
    assert_eq!(parse_time("2023-11-1x"), None);
}
