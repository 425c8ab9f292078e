//! `palisade ingest` end to end on the bundled fixtures of palisade-ingest.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ingest/tests/fixtures")
        .join(name)
}

fn palisade() -> Command {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
}

#[test]
fn ingests_files_globs_and_stdin_into_each_output_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    for ext in ["jsonl", "csv", "parquet"] {
        let out = dir.path().join(format!("ev.{ext}"));
        let pattern = fixture("*.jsonl").display().to_string();
        let r = palisade()
            .args([
                "ingest",
                fixture("apache_combined.log").to_str().unwrap_or_default(),
                &pattern,
                "--out",
            ])
            .arg(&out)
            .output()
            .expect("run palisade");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(r.status.success(), "{err}");
        assert!(
            err.contains("apache (40 lines, 40 events, 0 skipped)"),
            "{err}"
        );
        assert!(
            err.contains("windows-json (10 lines, 10 events, 0 skipped)"),
            "{err}"
        );
        let events = palisade_io::read_events(&out).expect("read back");
        assert_eq!(events.len(), 50, "{ext}");
        assert_eq!(events[0].source_ip, "83.149.9.216".parse().ok(), "{ext}");
        assert!(
            events.iter().any(|e| e.winlog_event_id == Some(4624)),
            "{ext}"
        );
    }

    // `-` reads stdin
    let out = dir.path().join("stdin.jsonl");
    let mut child = palisade()
        .args(["ingest", "-", "--out"])
        .arg(&out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let text = std::fs::read(fixture("apache_combined.log")).expect("fixture");
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(&text).expect("write stdin");
    }
    let r = child.wait_with_output().expect("wait");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(palisade_io::read_events(&out).expect("read back").len(), 40);
}

#[test]
fn quarantine_max_errors_and_fatal_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("access.log");
    let mut text = std::fs::read_to_string(fixture("apache_combined.log")).expect("fixture");
    text.push_str("this is not an access log line\n\u{1}\u{2}garbage\n");
    std::fs::write(&input, &text).expect("write");
    let out = dir.path().join("ev.jsonl");
    let q = dir.path().join("rejected.txt");
    let r = palisade()
        .arg("ingest")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .arg("--quarantine")
        .arg(&q)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(err.contains("40 events, 2 skipped"), "{err}");
    assert!(err.contains("line 41"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&q).expect("quarantine"),
        "this is not an access log line\n\u{1}\u{2}garbage\n"
    );

    let r = palisade()
        .arg("ingest")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .args(["--max-errors", "1"])
        .output()
        .expect("run");
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("--max-errors 1"));

    let r = palisade()
        .arg("ingest")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .args(["--format", "bogus"])
        .output()
        .expect("run");
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("unknown format `bogus`"));

    let r = palisade()
        .args(["ingest", "/no/such/file.log", "--out"])
        .arg(&out)
        .output()
        .expect("run");
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("/no/such/file.log"));

    let r = palisade()
        .arg("ingest")
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("ev.xyz"))
        .output()
        .expect("run");
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("--out-format"));
}
