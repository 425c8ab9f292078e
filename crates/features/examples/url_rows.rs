//! A small driver for profiling the per-URL features: runs `url_row` and/or
//! `request_row` over the PhishCrawl dev URLs (the bench data) a given number
//! of times and prints ns/URL (minimum and median over the passes, so a noisy
//! shared machine shows the quiet figure) and a checksum of every output bit
//! (two builds that print the same checksum computed the same features).
//!
//! Run: `cargo run --release -p palisade-features --example url_rows -- [url|request|rows|both|table|real|realtable|domain|realdomain] [passes] [csv]`
//! (`real`: the batch form on real request logs, Zeek ssl.log and Apache
//! access logs from ../shared/data, instead of the PhishCrawl URLs;
//! `realtable`: the table, identity columns and all, on those logs;
//! `domain`: the domain set over the host names of the DGA list;
//! `realdomain`: the domain table over Zeek's dns.log of wrccdc-2018)
//! Under callgrind use one pass and count only the calls:
//! `valgrind --tool=callgrind --toggle-collect='*one_request*' target/release/examples/url_rows request 1`
//! (two passes run: the checksum pass and the timed one). Valgrind does not
//! report AVX-512 to the program, so callgrind counts the AVX2 path on a CPU
//! with AVX2 (else the SSE2 fallback).

use palisade_core::{Event, Table};
use palisade_features::domain::N_DOMAIN;
use palisade_features::request::{N_REQUEST, N_URL};
use palisade_features::UrlFeaturizer;
use std::hint::black_box;
use std::time::Instant;

#[path = "../benches/data/mod.rs"]
mod data;

/// FNV-1a over the bits of a row (NaNs canonicalised: the payload is not a feature).
fn mix(h: &mut u64, row: &[f64]) {
    for x in row {
        let b = if x.is_nan() { u64::MAX } else { x.to_bits() };
        *h = (*h ^ b).wrapping_mul(0x0100_0000_01b3);
    }
}

/// (min, median) ns per item over `passes` runs of `f`.
fn time(passes: usize, n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut t: Vec<f64> = (0..passes.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[0], t[t.len() / 2])
}

/// One call, kept out of line so that a profiler can count exactly it
/// (`valgrind --tool=callgrind --toggle-collect='*one_url*'`).
#[inline(never)]
fn one_url(fz: &mut UrlFeaturizer, u: &str, out: &mut [f64; N_URL]) {
    fz.url_row(u, out);
}

/// As [`one_url`], for `request_row`.
#[inline(never)]
fn one_request(fz: &mut UrlFeaturizer, e: &Event, out: &mut [f64; N_REQUEST]) {
    fz.request_row(e, out);
}

/// As [`one_url`], for the domain set.
#[inline(never)]
fn one_domain(dz: &mut palisade_features::DomainFeaturizer, n: &str, out: &mut [f64; N_DOMAIN]) {
    dz.row(n, out);
}

/// Checksum `items` through `row` once, then time `passes` runs of it, and
/// print ns per item.
fn measure<T, const N: usize>(
    label: &str,
    passes: usize,
    items: &[T],
    mut row: impl FnMut(&T, &mut [f64; N]),
) {
    let mut out = [0.0; N];
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for x in items {
        row(x, &mut out);
        mix(&mut h, &out);
    }
    // the PhishCrawl modes print URLs as before (their lines compare with
    // earlier sessions' logs); the domain mode, names
    let unit = if label.starts_with("domain") {
        "name"
    } else {
        "URL"
    };
    let (min, med) = time(passes, items.len(), || {
        for x in items {
            row(black_box(x), &mut out);
            black_box(&out);
        }
    });
    println!(
        "{label:<11} {} {unit}s: min {min:.1} ns/{unit} ({:.2} M/s), median {med:.1}; checksum {h:016x}",
        items.len(),
        1e3 / min
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("both", String::as_str);
    let passes: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let path = args.get(3).map_or_else(data::dev_csv, Into::into);
    let urls = match data::read_urls(&path) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            std::process::exit(2);
        }
    };
    let mut fz = UrlFeaturizer::new();
    if mode == "url" || mode == "both" {
        measure("url_row", passes, &urls, |u, out| one_url(&mut fz, u, out));
    }
    if mode == "request" || mode == "both" {
        // the events of the criterion bench
        let events = data::request_events(&urls);
        measure("request_row", passes, &events, |e, out| {
            one_request(&mut fz, e, out)
        });
    }
    if mode == "rows" || mode == "both" {
        // the batch form, which prefetches upcoming events (same checksum as request_row)
        let events = data::request_events(&urls);
        measure_batch("request_rows", "URL", passes, &mut fz, &events);
    }
    if mode == "real" {
        // real request logs (Zeek ssl.log, Apache access logs), batch form
        let events = data::real_request_events();
        measure_batch(
            "request_rows (real logs)",
            "event",
            passes,
            &mut fz,
            &events,
        );
    }
    if mode == "domain" {
        // the domain set (`DomainFeaturizer::row`) over the host names of the
        // DGA list, legit and generated (not part of "both")
        let names = data::dga_names().unwrap_or_else(|e| {
            eprintln!("{}: {e}", data::dga_csv().display());
            std::process::exit(2)
        });
        let mut dz = palisade_features::DomainFeaturizer::new();
        measure("domain row", passes, &names, |n, out| {
            one_domain(&mut dz, n, out)
        });
    }
    if mode == "realdomain" {
        // the domain table (identity columns and all) over a real DNS log
        let events = data::real_dns_events();
        let label = "domain_features (table, Zeek dns.log)";
        measure_table(label, passes, &events, one_domain_table);
    }
    if mode == "table" || mode == "realtable" {
        // the whole table, identity columns and all (not part of "both"):
        // the PhishCrawl URLs as events, or the real request logs (which
        // have timestamps and addresses to write)
        let (label, events) = match mode {
            "table" => ("request_features (table)", data::request_events(&urls)),
            _ => (
                "request_features (table, real logs)",
                data::real_request_events(),
            ),
        };
        measure_table(label, passes, &events, one_table);
    }
}

/// Time `passes` builds of a table from `events` by `build`, and print ns
/// per event.
fn measure_table(label: &str, passes: usize, events: &[Event], build: fn(&[Event]) -> Table) {
    let (min, med) = time(passes, events.len(), || {
        black_box(build(black_box(events)));
    });
    println!(
        "{label} {} events: min {min:.1} ns/event ({:.2} M/s), median {med:.1}",
        events.len(),
        1e3 / min
    );
}

/// Checksum `events` through `request_rows` once, then time `passes` runs
/// of it, and print ns per `unit`.
fn measure_batch(label: &str, unit: &str, passes: usize, fz: &mut UrlFeaturizer, events: &[Event]) {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    fz.request_rows(events, |_, row| mix(&mut h, row));
    let (min, med) = time(passes, events.len(), || {
        one_batch(fz, black_box(events));
    });
    println!(
        "{label} {} {unit}s: min {min:.1} ns/{unit} ({:.2} M/s), median {med:.1}; checksum {h:016x}",
        events.len(),
        1e3 / min
    );
}

/// As [`one_url`], for the batch form (`--toggle-collect='*one_batch*'`).
#[inline(never)]
fn one_batch(fz: &mut UrlFeaturizer, events: &[Event]) {
    fz.request_rows(events, |_, row| {
        black_box(row);
    });
}

/// As [`one_url`], for the domain table (`--toggle-collect='*one_domain_table*'`).
#[inline(never)]
fn one_domain_table(events: &[Event]) -> Table {
    palisade_features::domain_features(events)
}

/// As [`one_url`], for the table (`--toggle-collect='*one_table*'`).
#[inline(never)]
fn one_table(events: &[Event]) -> Table {
    palisade_features::request_features(events)
}
