//! The report renders every section, draws real SVG plots, escapes data and
//! references nothing outside the page.

use palisade_core::{FeatureDef, FeatureType};
use palisade_report::*;

fn curve(points: Vec<(f64, f64)>, auc: f64, baseline: Option<f64>) -> Curve {
    Curve {
        points,
        auc,
        baseline,
    }
}

fn sample() -> ReportInput {
    // 60 rows on a ring plus two far away; the far ones score highest and are labelled.
    let mut points = Vec::new();
    let mut scores = Vec::new();
    let mut labels = Vec::new();
    for i in 0..60 {
        let a = i as f64 / 60.0 * std::f64::consts::TAU;
        points.push(MapPoint {
            x: a.cos(),
            y: a.sin(),
            score: 0.4 + 0.001 * i as f64,
            label: Some(false),
            name: format!("10.0.0.{i}"),
        });
        scores.push(0.4 + 0.001 * i as f64);
        labels.push(false);
    }
    for (i, name) in ["<script>alert(1)</script>", "evil & co"]
        .iter()
        .enumerate()
    {
        points.push(MapPoint {
            x: 6.0 + i as f64,
            y: -4.0,
            score: 0.9 + 0.01 * i as f64,
            label: Some(true),
            name: name.to_string(),
        });
        scores.push(0.9 + 0.01 * i as f64);
        labels.push(true);
    }
    let model = |name: &str| ModelResult {
        name: name.to_string(),
        kind: "iforest".into(),
        provenance: "trained on 62 rows".into(),
        params: vec![("trees".into(), "100".into())],
        threshold: Some(0.8),
        threshold_rule: "contamination=0.05".into(),
        scores: scores.clone(),
        alerts: 2,
        roc: Some(curve(vec![(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)], 1.0, None)),
        pr: Some(curve(vec![(0.0, 1.0), (1.0, 1.0)], 1.0, Some(2.0 / 62.0))),
    };
    ReportInput {
        title: "Test <report>".into(),
        generated_at: "2026-01-01T00:00:00Z".into(),
        pipeline: "examples/x/pipeline.toml".into(),
        seed: Some(7),
        sources: vec![SourceSummary {
            name: "dns".into(),
            path: "logs/dns.log".into(),
            format: "zeek".into(),
            lines: 100,
            events: 98,
            skipped: 2,
            errors_by_reason: vec![("bad field `ts` <x>".into(), 2)],
            flagged: 3,
            flagged_by_reason: vec![("bad_time".into(), 3)],
            first_us: Some(1_521_911_720_000_000),
            last_us: Some(1_521_912_020_000_000),
        }],
        stages: vec![StageSummary {
            name: "ingest".into(),
            detail: "read 1 source".into(),
            count: 98,
            seconds: 0.01,
        }],
        feeds: vec![FeedSummary {
            name: "maltrail".into(),
            path: "feeds/".into(),
            indicators: 10,
            by_kind: vec![("domain".into(), 10)],
            matched_events: 3,
        }],
        analyses: vec![Analysis {
            name: "per source IP".into(),
            entity: "source IP × 1-minute window".into(),
            rows: 62,
            positives: Some(2),
            labels: Some(labels),
            label_source: "intel match".into(),
            map: Some(PcaMap {
                points,
                explained: [0.6, 0.3],
                coloured_by: "iforest".into(),
                name_top: 3,
            }),
            models: vec![model("iforest"), model("pca")],
        }],
        alerts: vec![AlertRow {
            timestamp: "2018-03-24T17:15:00Z".into(),
            entity: "<script>alert(1)</script>".into(),
            window: "17:15–17:16".into(),
            analysis: "per source IP".into(),
            model: "iforest".into(),
            score: 0.91,
            threshold: 0.8,
            top_features: vec![Contribution {
                feature: "rdp_count".into(),
                value: 412.0,
                typical: 0.0,
                weight: 0.7,
            }],
            intel: vec![IntelHit {
                feed: "maltrail".into(),
                indicator: "whatismyipaddress.com".into(),
                field: "dns.question.name".into(),
                category: "ipinfo".into(),
                count: 4,
            }],
        }],
        alerts_total: 2,
        alerts_in_table: 0,
        features: vec![FeatureDef::new(
            "rdp_count",
            FeatureType::Int,
            "entity",
            &["destination.port"],
            "RDP connections <3389>",
        )],
        outputs: vec![("out/alerts.jsonl".into(), "alerts".into())],
        notes: vec!["a note".into()],
    }
}

#[test]
fn every_section_is_present() {
    let html = render_html(&sample()).unwrap();
    for id in [
        "id=\"read\"",
        "id=\"alerts\"",
        "id=\"analysis-0\"",
        "id=\"intel\"",
        "id=\"models\"",
        "id=\"catalog\"",
        "id=\"run\"",
    ] {
        assert!(html.contains(id), "missing section {id}");
    }
    for text in [
        "PCA map",
        "Score distributions",
        "ROC and precision–recall",
        "Parse errors by reason",
        "Feature catalog",
    ] {
        assert!(html.contains(text), "missing heading {text}");
    }
    // Data made it through: counts, feature explanation, intel provenance, time span.
    assert!(
        html.contains("whatismyipaddress.com")
            && html.contains("(typical 0)")
            && html.contains("412")
    );
    assert!(html.contains("5.0 min"), "time span of 300 s");
}

#[test]
fn plots_are_inline_svg_with_drawn_elements() {
    let html = render_html(&sample()).unwrap();
    // map + 2 histograms + ROC + PR
    assert_eq!(html.matches("<svg").count(), 5);
    assert!(html.matches("<circle").count() >= 62, "one dot per row");
    assert!(html.matches("<rect").count() > 5, "histogram bars");
    assert!(html.contains("<polyline"), "curves");
    assert!(html.contains("AUC 1.000"));
    assert!(html.contains("threshold 0.800"));
}

#[test]
fn data_is_escaped() {
    let html = render_html(&sample()).unwrap();
    assert!(!html.contains("<script"), "no raw script tag from data");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("evil &amp; co"));
    assert!(html.contains("Test &lt;report&gt;"));
    assert!(html.contains("RDP connections &lt;3389&gt;"));
    assert!(html.contains("bad field `ts` &lt;x&gt;"));
    assert!(html.contains("Lines kept with a problem") && html.contains("bad_time"));
}

#[test]
fn no_external_references() {
    let html = render_html(&sample()).unwrap();
    assert!(!html.contains("src="), "nothing loaded from elsewhere");
    assert!(
        !html.contains("http://")
            || html.matches("http://").count() == html.matches("xmlns=\"http://www.w3.org").count()
    );
    assert!(!html.contains("https://"));
    for href in html.split("href=\"").skip(1) {
        assert!(
            href.starts_with('#'),
            "only in-page links: {}",
            &href[..href.len().min(40)]
        );
    }
}

#[test]
fn without_labels_curves_are_explained_not_drawn() {
    let mut r = sample();
    for a in &mut r.analyses {
        a.labels = None;
        a.positives = None;
        for m in &mut a.models {
            m.roc = None;
            m.pr = None;
        }
    }
    let html = render_html(&r).unwrap();
    assert!(html.contains("Not drawn: this table has no labels"));
    assert_eq!(html.matches("<svg").count(), 3);
}

#[test]
fn degenerate_inputs_do_not_panic() {
    let mut r = sample();
    r.analyses[0].models[0].scores = vec![f64::NAN, f64::INFINITY, 1.0];
    r.analyses[0].models[1].scores = vec![];
    r.analyses[0].map.as_mut().unwrap().points.truncate(1);
    r.analyses[0].map.as_mut().unwrap().points[0].x = f64::NAN;
    assert!(render_html(&r).is_ok());
    assert!(render_html(&ReportInput::default()).is_ok());
}
