//! `palisade run` on the shipped quickstart: the binary, its flags and its outputs.

use std::path::Path;
use std::process::Command;

#[test]
fn run_quickstart_with_top_and_out_dir() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .current_dir(&root)
        .args([
            "run",
            "examples/quickstart/pipeline.toml",
            "--top",
            "5",
            "--json",
            "--out-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["alerts_written"], 5);
    assert!(v["alerts_total"].as_u64().unwrap() > 5);
    let alerts = std::fs::read_to_string(dir.path().join("alerts.jsonl")).unwrap();
    assert_eq!(alerts.lines().count(), 5);
    assert!(dir.path().join("report.html").is_file());
    let stages: Vec<&str> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    for s in ["ingest", "intel", "features", "model", "alerts", "report"] {
        assert!(stages.contains(&s), "stage {s} reported: {stages:?}");
    }
}

#[test]
fn run_with_a_malformed_pipeline_fails_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "seed = 1\n[[source]]\nname = \"x\"\npaths = [\"a.log\"]\nformat = 3\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["run"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:5"), "{err}");
}
