//! End to end: the shipped quickstart pipeline (real WRCCDC 2018 Zeek logs and
//! Maltrail trails in examples/quickstart) → alerts and report.

use palisade_pipeline::{run, run_pipeline, Pipeline, RunOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn quickstart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/pipeline.toml")
}

fn alerts(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("invalid JSON line {l}: {e}"))
        })
        .collect()
}

#[test]
fn quickstart_alerts_report_and_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let summary = run(
        &quickstart(),
        &RunOptions {
            out_dir: Some(out.clone()),
            top: Some(60),
        },
    )
    .unwrap();
    assert!(summary.events > 6000, "events read: {}", summary.events);
    assert!(summary.alerts_total > 0 && summary.alerts_written <= 60);

    // ---- alerts: valid ECS-style JSON, sorted, explained
    let a = alerts(&summary.alerts_path);
    assert_eq!(a.len(), summary.alerts_written);
    for v in &a {
        assert_eq!(v["event"]["kind"], "alert");
        assert!(
            v["@timestamp"]
                .as_str()
                .is_some_and(|t| t.starts_with("2018-03-24T")),
            "{v}"
        );
        let m = &v["palisade"]["model"];
        assert!(m["score"].as_f64().unwrap() >= m["threshold"].as_f64().unwrap());
        let ex = v["palisade"]["explanation"].as_array().unwrap();
        assert!(!ex.is_empty(), "explanation present: {v}");
        for c in ex {
            assert!(c["feature"].as_str().is_some_and(|f| !f.is_empty()));
            assert!(c.get("value").is_some() && c.get("typical").is_some());
        }
    }
    let risk: Vec<f64> = a
        .iter()
        .map(|v| v["event"]["risk_score"].as_f64().unwrap())
        .collect();
    assert!(
        risk.windows(2).all(|w| w[0] >= w[1]),
        "sorted by risk: {risk:?}"
    );

    // ---- known-bad entities rank on top of the per-source-IP table.
    // 10.164.94.120 is the red-team scanner of this capture: thousands of RDP
    // sessions and NTLM attempts against many team hosts (see ATTRIBUTION.md).
    let host_alerts: Vec<&Value> = a
        .iter()
        .filter(|v| v["palisade"]["table"] == "source-ip")
        .collect();
    let top_entities: Vec<&str> = host_alerts
        .iter()
        .take(6)
        .filter_map(|v| v["palisade"]["entity"].as_str())
        .collect();
    assert!(
        top_entities.contains(&"10.164.94.120"),
        "red-team scanner among the top: {top_entities:?}"
    );
    // The other two off-team hosts of the excerpt, both NTLM-heavy (10.150.0.20
    // tried 16 user names against 5 hosts in one minute), are flagged too.
    let flagged: Vec<&str> = host_alerts
        .iter()
        .filter_map(|v| v["palisade"]["entity"].as_str())
        .collect();
    for bad in ["10.150.0.20", "10.128.0.214"] {
        assert!(flagged.contains(&bad), "{bad} flagged: {flagged:?}");
    }
    let scanner = host_alerts
        .iter()
        .find(|v| v["palisade"]["entity"] == "10.164.94.120")
        .unwrap();
    let why: Vec<&str> = scanner["palisade"]["explanation"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["feature"].as_str())
        .collect();
    assert!(
        why.iter().any(|f| f.starts_with("rdp_")
            || f.starts_with("ntlm_")
            || f.starts_with("distinct_")
            || f.starts_with("tls_")),
        "{why:?}"
    );
    // Intel enrichment with provenance: 10.47.2.155 looked up whatismyipaddress.com (maltrail ipinfo trail).
    let intel: Vec<&Value> = a.iter().filter(|v| v.get("threat").is_some()).collect();
    assert!(!intel.is_empty(), "some alert carries intel matches");
    for v in &intel {
        let e = &v["threat"]["enrichments"][0];
        assert!(e["indicator"]["provider"]
            .as_str()
            .is_some_and(|p| !p.is_empty()));
        assert!(e["matched"]["atomic"]
            .as_str()
            .is_some_and(|p| !p.is_empty()));
    }

    // ---- report: sections and plots
    let html = std::fs::read_to_string(&summary.report_path).unwrap();
    for s in [
        "id=\"read\"",
        "id=\"alerts\"",
        "id=\"analysis-0\"",
        "id=\"analysis-1\"",
        "id=\"intel\"",
        "id=\"models\"",
        "id=\"catalog\"",
        "PCA map",
        "Score distributions",
    ] {
        assert!(html.contains(s), "report lacks {s}");
    }
    // 2 maps + 3 histograms + ROC and PR for at least the source-ip table
    assert!(
        html.matches("<svg").count() >= 7,
        "{} svg",
        html.matches("<svg").count()
    );
    assert!(
        html.contains("AUC "),
        "curves drawn where intel labels exist"
    );
    assert!(html.contains("10.164.94.120") && html.contains("whatismyipaddress.com"));
    assert!(!html.contains("src=\"http"), "self-contained");

    // ---- reproducible: same seed, same alerts
    let out2 = dir.path().join("out2");
    let s2 = run(
        &quickstart(),
        &RunOptions {
            out_dir: Some(out2),
            top: Some(60),
        },
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&summary.alerts_path).unwrap(),
        std::fs::read_to_string(&s2.alerts_path).unwrap()
    );

    // ---- train once, score many: load the saved models and get the same scores
    let saved = summary
        .models_saved
        .iter()
        .find(|p| p.to_string_lossy().contains("source-ip-iforest"))
        .unwrap();
    let text = std::fs::read_to_string(quickstart()).unwrap();
    let loaded_text = text.replacen(
        "[[model]]\nname = \"iforest\"\nfeatures = \"source-ip\"\nkind = \"iforest\"\nthreshold = { contamination = 0.03 }\noptions = { trees = 200 }",
        &format!("[[model]]\nname = \"iforest\"\nfeatures = \"source-ip\"\nload = \"{}\"", saved.display()),
        1,
    );
    assert_ne!(
        loaded_text, text,
        "the quickstart's iforest block changed; update this test"
    );
    let p = Pipeline::parse(&loaded_text, &quickstart()).unwrap();
    let s3 = run_pipeline(
        &p,
        &RunOptions {
            out_dir: Some(dir.path().join("out3")),
            top: Some(60),
        },
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&summary.alerts_path).unwrap(),
        std::fs::read_to_string(&s3.alerts_path).unwrap()
    );
    assert!(std::fs::read_to_string(&s3.report_path)
        .unwrap()
        .contains("loaded from"));
}

#[test]
fn malformed_pipeline_names_key_and_line() {
    let text = std::fs::read_to_string(quickstart())
        .unwrap()
        .replace("kind = \"pca\"", "kind = \"pcaa\"");
    let err = Pipeline::parse(&text, &quickstart())
        .unwrap_err()
        .to_string();
    let line = text.lines().position(|l| l.contains("pcaa")).unwrap() + 1;
    assert!(
        err.contains(&format!("pipeline.toml:{line}")) && err.contains("model.kind"),
        "{err}"
    );
}

#[test]
fn missing_input_is_a_clear_error() {
    let text = std::fs::read_to_string(quickstart())
        .unwrap()
        .replace("logs/*.log.gz", "nowhere/*.log");
    let p = Pipeline::parse(&text, &quickstart()).unwrap();
    let err = run_pipeline(
        &p,
        &RunOptions {
            out_dir: Some(std::env::temp_dir().join("palisade-never")),
            top: None,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("matches no file") && err.contains("source.paths"),
        "{err}"
    );
}

#[test]
fn supervised_model_on_intel_labels_is_judged_on_held_out_rows() {
    let text = std::fs::read_to_string(quickstart()).unwrap().replace(
        "[output]",
        "[[model]]\nname = \"rf\"\nfeatures = \"source-ip\"\nkind = \"rf\"\nthreshold = { fpr = 0.05 }\n\n[output]",
    );
    let p = Pipeline::parse(&text, &quickstart()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = run_pipeline(
        &p,
        &RunOptions {
            out_dir: Some(dir.path().to_path_buf()),
            top: None,
        },
    )
    .unwrap();
    let html = std::fs::read_to_string(&s.report_path).unwrap();
    assert!(
        html.contains("is supervised: its ROC and precision–recall curves are on its"),
        "held-out note"
    );
    let rf: Vec<Value> = alerts(&s.alerts_path)
        .into_iter()
        .filter(|v| v["palisade"]["model"]["name"] == "rf")
        .collect();
    assert!(rf.iter().all(|v| v["rule"]["category"] == "supervised"));
}

#[test]
fn built_in_sets_run_over_the_same_logs() {
    // The Siddiqui host set (window from the pipeline) over Zeek rdp/ntlm, and
    // the Franc request set over Zeek ssl (TLS seen by SNI), each with a model.
    let extra = r#"
[[features]]
name = "hosts"
set = "host"
window = "5m"
label = "none"

[[features]]
name = "tls"
set = "request"
datasets = ["zeek.ssl"]

[[model]]
name = "if"
features = "hosts"
kind = "iforest"
threshold = { contamination = 0.05 }

[[model]]
name = "if"
features = "tls"
kind = "iforest"
threshold = { contamination = 0.01 }

[output]"#;
    let text = std::fs::read_to_string(quickstart())
        .unwrap()
        .replace("[output]", extra);
    let p = Pipeline::parse(&text, &quickstart()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = run_pipeline(
        &p,
        &RunOptions {
            out_dir: Some(dir.path().to_path_buf()),
            top: None,
        },
    )
    .unwrap();
    let a = alerts(&s.alerts_path);
    for table in ["hosts", "tls"] {
        assert!(
            a.iter().any(|v| v["palisade"]["table"] == table),
            "alerts from `{table}`"
        );
    }
    // request rows are single TLS handshakes: the alert names the server and carries the SNI
    let tls = a.iter().find(|v| v["palisade"]["table"] == "tls").unwrap();
    assert!(tls["destination"]["ip"].as_str().is_some(), "{tls}");
    let csv = std::fs::read_to_string(dir.path().join("tables/tls.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        3060 + 1,
        "one row per TLS handshake of the excerpt"
    );
    assert!(csv.lines().next().unwrap().contains("score.if"));
}

/// A source's lines kept with a problem (a firewall line whose time does not
/// parse) and its file warnings (an empty file) reach the run's report and
/// the ingest stage, not only `palisade ingest` (they were dropped here).
#[test]
fn run_reports_flagged_lines_and_file_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let fw = dir.path().join("fw.log");
    std::fs::write(
        &fw,
        "Feb 30 12:34:56 fw01 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.5 DST=192.0.2.2 LEN=40 PROTO=TCP SPT=4444 DPT=22\n\
         Jan 10 12:34:57 fw01 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.5 DST=192.0.2.2 LEN=40 PROTO=TCP SPT=4445 DPT=23\n",
    )
    .unwrap();
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let extra = format!(
        "[[source]]\nname = \"fw\"\npaths = [{:?}]\nformat = \"netfilter\"\n\n\
         [[source]]\nname = \"nothing\"\npaths = [{:?}]\nformat = \"netfilter\"\n\n[intel]",
        fw.display().to_string(),
        empty.display().to_string()
    );
    let text = std::fs::read_to_string(quickstart())
        .unwrap()
        .replacen("[intel]", &extra, 1);
    let p = Pipeline::parse(&text, &quickstart()).unwrap();
    let s = run_pipeline(
        &p,
        &RunOptions {
            out_dir: Some(dir.path().join("out")),
            top: None,
        },
    )
    .unwrap();
    let ingest = s.stages.iter().find(|st| st.name == "ingest").unwrap();
    assert!(
        ingest.detail.contains("1 kept with a problem"),
        "{}",
        ingest.detail
    );
    let html = std::fs::read_to_string(&s.report_path).unwrap();
    assert!(html.contains("Lines kept with a problem"), "flagged table");
    assert!(html.contains("bad_timestamp"), "its reason");
    assert!(
        html.contains("source `nothing`") && html.contains("the input is empty"),
        "the empty file's warning in the notes"
    );
}
