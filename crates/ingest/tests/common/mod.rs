//! Shared helpers for the integration tests.
#![allow(dead_code)]

use palisade_core::Event;
use palisade_ingest::{
    ingest_reader, read_bytes, read_path, FileSummary, Format, IngestError, IngestOptions,
};
use std::path::{Path, PathBuf};

/// `../shared/data` as seen from the repository root. Tests over data that
/// may not be redistributed (GPL, CC BY-SA, no licence) read it from here.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// The path of a shared data file, or `None` (and a clear note on stderr) when
/// the shared data is absent; tests then skip instead of failing.
pub fn data(rel: &str) -> Option<PathBuf> {
    let p = data_dir().join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: shared data file {} is absent", p.display());
        None
    }
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn read(p: &Path, f: Option<Format>) -> (Vec<Event>, palisade_ingest::FileSummary) {
    match read_path(p, f, &IngestOptions::default()) {
        Ok(r) => r,
        Err(e) => panic!("{}: {e}", p.display()),
    }
}

pub fn read_text(
    name: &str,
    text: &str,
    f: Option<Format>,
) -> (Vec<Event>, palisade_ingest::FileSummary) {
    match read_bytes(name, text.as_bytes(), f, &IngestOptions::default()) {
        Ok(r) => r,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// `bytes` ingested as a stream named `name` (as stdin would be), with the
/// default options: the summary, the events and what was quarantined.
pub fn ingest_stream(
    name: &str,
    bytes: &[u8],
) -> (Result<FileSummary, IngestError>, Vec<Event>, Vec<u8>) {
    let mut quarantined = Vec::new();
    let mut events = Vec::new();
    let summary = ingest_reader(
        name,
        bytes,
        None,
        &IngestOptions::default(),
        Some(&mut quarantined),
        |e| {
            events.push(e.clone());
            Ok(())
        },
    );
    (summary, events, quarantined)
}

/// The `message` of each line of a log-format-fixtures-sekoia file.
pub fn sekoia_messages(p: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(p).expect("read sekoia file");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("sekoia line is JSON");
            v["message"].as_str().expect("message").to_string()
        })
        .collect()
}

/// An event without its provenance fields, to compare the same event read
/// from two encodings.
pub fn content(e: &Event) -> Event {
    Event {
        original: None,
        log_line: None,
        log_file_path: None,
        ..e.clone()
    }
}
