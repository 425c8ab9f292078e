//! Parse + normalise throughput per format, on real samples from
//! ../shared/data replicated to ~16 MiB in memory (so disk speed is out of the
//! figure). Reports MB/s via `Throughput::Bytes`; lines/s = MB/s divided by
//! the mean line length printed before each group.
//!
//! Run: `cargo bench -p palisade-ingest --bench parse`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use palisade_ingest::{ingest_reader, Format, IngestOptions};
use std::path::Path;

const TARGET: usize = 16 << 20;

fn data(rel: &str) -> Option<Vec<u8>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("SKIPPED: {}: {e}", p.display());
            None
        }
    }
}

/// Header (kept once) + body lines replicated to about TARGET bytes.
fn replicate(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TARGET + body.len());
    out.extend_from_slice(header);
    while out.len() < TARGET {
        out.extend_from_slice(body);
    }
    out
}

fn split_header(text: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut header = Vec::new();
    let mut body = Vec::new();
    for line in text.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"#close") {
            continue;
        }
        if line.starts_with(b"#") {
            header.extend_from_slice(line);
        } else {
            body.extend_from_slice(line);
        }
    }
    (header, body)
}

fn inputs() -> Vec<(&'static str, Format, Vec<u8>)> {
    let mut v = Vec::new();
    if let Some(t) = data("zeek-stratosphere-labeled/008-zeek-mixed/data/conn.log.labeled") {
        let (h, b) = split_header(&t);
        v.push(("zeek-tsv conn", Format::ZeekTsv, replicate(&h, &b)));
    }
    if let Some(t) = data("zeek-stratosphere-labeled/002-zeek-scenario-port-scanning/conn.log") {
        v.push(("zeek-json conn", Format::ZeekJson, replicate(b"", &t)));
    }
    if let Some(t) = data("log-format-fixtures-sekoia/proxy_squid.jsonl") {
        // the native-format samples (the first two are Squid's CLF variant)
        let mut body = Vec::new();
        for l in std::str::from_utf8(&t).unwrap_or("").lines().skip(2) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
                if let Some(m) = v["message"].as_str() {
                    body.extend_from_slice(m.as_bytes());
                    body.push(b'\n');
                }
            }
        }
        v.push(("squid", Format::Squid, replicate(b"", &body)));
    }
    if let Some(t) = data("web-access-elastic-apache/apache_logs.part1") {
        v.push(("apache combined", Format::Apache, replicate(b"", &t)));
    }
    v
}

fn bench(c: &mut Criterion) {
    for keep_original in [true, false] {
        let opts = IngestOptions {
            keep_original,
            ..Default::default()
        };
        let mut g = c.benchmark_group(if keep_original {
            "parse"
        } else {
            "parse_no_original"
        });
        g.sample_size(10);
        for (name, format, bytes) in inputs() {
            let lines = bytes.iter().filter(|b| **b == b'\n').count().max(1);
            eprintln!(
                "{name}: {} bytes, {lines} lines, {:.0} bytes/line",
                bytes.len(),
                bytes.len() as f64 / lines as f64
            );
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            g.bench_function(name, |b| {
                b.iter(|| {
                    let mut n = 0u64;
                    let s = ingest_reader(name, bytes.as_slice(), Some(format), &opts, None, |e| {
                        n += e.source_port.is_some() as u64;
                        Ok(())
                    });
                    assert!(s.is_ok_and(|s| s.skipped_total() == 0));
                    n
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
