//! The data of the request-feature benchmarks, shared by
//! `benches/throughput.rs` and `examples/url_rows.rs` so that both measure
//! the same URLs and events. (A folder with `mod.rs`: cargo does not take it
//! for a bench target of its own.) Each target uses a part of it.
#![allow(dead_code)]

use palisade_core::Event;
use std::path::{Path, PathBuf};

/// The allocator the `palisade` binary uses (crates/cli/src/main.rs), so
/// that the benchmarks measure what ships: the entity engine's growing
/// rows, sets and tables ran slower on glibc's malloc (nineteenth session,
/// Zen 4, `entity_phases`: the flow set's first run in a fresh process
/// 87–96 ms against 74–87, best of 5 runs 88–89 against 73–77; the
/// sliding count 47–52 against 30–31). Comparisons with builds from before
/// this line measure the allocator too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// the entity benchmarks' events (`url_rows` uses only the URLs)
pub mod flow_events;

/// ../shared/data/url-phishcrawl/dev.csv (20,365 URLs).
pub fn dev_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/url-phishcrawl/dev.csv")
}

/// ../shared/data/dga-clicksecurity/legit-dga_domains.csv (133,928 names).
pub fn dga_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/dga-clicksecurity/legit-dga_domains.csv")
}

/// The `host` column of [`dga_csv`] (quoted, no commas inside), legit and
/// generated names, in a fixed shuffled order: the file is sorted by name,
/// which no DNS log is (and which lets a CPU's branch predictors learn the
/// public-suffix lookup's path from one name to the next: before the
/// public-suffix memo the domain set ran at 157 ns/name sorted, ~230
/// shuffled, Zen 3).
pub fn dga_names() -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_to_string(dga_csv())?
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .map(|h| h.trim_matches('"').to_string())
        .collect();
    // Fisher–Yates with a fixed 64-bit LCG (Knuth's MMIX constants)
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in (1..names.len()).rev() {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        names.swap(i, ((x >> 33) % (i as u64 + 1)) as usize);
    }
    Ok(names)
}

/// The URL column of a PhishCrawl CSV (`url,label` with a header line).
pub fn read_urls(path: &Path) -> std::io::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .skip(1)
        .filter_map(|l| {
            l.rsplit_once(',')
                .map(|(u, _)| u.trim_matches('"').to_string())
        })
        .collect())
}

/// One proxy-log-like event per URL: a 200 over TLS from an ephemeral port.
pub fn request_events(urls: &[String]) -> Vec<Event> {
    urls.iter()
        .map(|u| Event {
            url_full: Some(u.clone()),
            http_response_status_code: Some(200),
            source_port: Some(50000),
            destination_port: Some(443),
            user_agent_original: Some("Mozilla/5.0".into()),
            ..Default::default()
        })
        .collect()
}

/// The real logs of `bench/entity_equivalence.sh`, as events: Zeek
/// wrccdc-2018 (TSV) and Stratosphere conn logs, the EVTX attack samples
/// and OTRF datasets as Windows JSON (131,959 events). Empty without
/// ../shared/data.
pub fn real_log_events() -> Vec<Event> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let mut inputs: Vec<(&str, PathBuf)> = Vec::new();
    let mut add = |format, dir: PathBuf, keep: &dyn Fn(&str) -> bool| {
        let mut found = Vec::new();
        files_under(&dir, &mut found);
        found.retain(|p| p.file_name().is_some_and(|n| keep(&n.to_string_lossy())));
        found.sort();
        inputs.extend(found.into_iter().map(|p| (format, p)));
    };
    add("zeek", data.join("zeek-wrccdc-2018/tsv"), &|n| {
        n.ends_with(".log")
    });
    for d in std::fs::read_dir(data.join("zeek-stratosphere-labeled"))
        .into_iter()
        .flatten()
        .flatten()
    {
        add("zeek", d.path().join("data"), &|n| {
            n.starts_with("conn.log")
        });
    }
    add(
        "windows-json",
        data.join("windows-evtx-attack-samples/jsonl"),
        &|n| n.ends_with(".jsonl"),
    );
    add(
        "windows-json",
        data.join("windows-otrf-security-datasets"),
        &|n| n.ends_with(".jsonl"),
    );
    let mut events = Vec::new();
    for (format, path) in inputs {
        let Ok(f) = palisade_ingest::Format::from_name(format) else {
            continue;
        };
        match palisade_ingest::read_path(&path, Some(f), &palisade_ingest::IngestOptions::default())
        {
            Ok((ev, _)) => events.extend(ev),
            Err(e) => eprintln!("real logs: skipping {}: {e}", path.display()),
        }
    }
    events
}

/// Real request logs as events: the Zeek wrccdc-2018 ssl.log (TSV; TLS by
/// SNI: the host alone) and the Apache access logs of
/// web-access-elastic-apache and web-access-secrepo (path and query, no
/// host). Empty without ../shared/data.
pub fn real_request_events() -> Vec<Event> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let mut inputs: Vec<(&str, PathBuf)> =
        vec![("zeek", data.join("zeek-wrccdc-2018/tsv/ssl.log"))];
    for dir in ["web-access-elastic-apache", "web-access-secrepo"] {
        let mut found = Vec::new();
        files_under(&data.join(dir), &mut found);
        found.retain(|p| !p.to_string_lossy().ends_with(".md"));
        found.sort();
        inputs.extend(found.into_iter().map(|p| ("apache", p)));
    }
    let mut events = Vec::new();
    for (format, path) in inputs {
        let Ok(f) = palisade_ingest::Format::from_name(format) else {
            eprintln!("real logs: no format {format}");
            continue;
        };
        match palisade_ingest::read_path(&path, Some(f), &palisade_ingest::IngestOptions::default())
        {
            Ok((ev, _)) => events.extend(ev),
            Err(e) => eprintln!("real logs: skipping {}: {e}", path.display()),
        }
    }
    events
}

/// Real DNS events for the domain table: Zeek's dns.log of wrccdc-2018
/// (TSV, 53,624 lines). Empty without ../shared/data.
pub fn real_dns_events() -> Vec<Event> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/zeek-wrccdc-2018/tsv/dns.log");
    let opts = palisade_ingest::IngestOptions::default();
    let read = palisade_ingest::Format::from_name("zeek")
        .map_err(|e| e.to_string())
        .and_then(|f| palisade_ingest::read_path(&path, Some(f), &opts).map_err(|e| e.to_string()));
    match read {
        Ok((events, _)) => events,
        Err(e) => {
            eprintln!("real DNS events: skipping {}: {e}", path.display());
            Vec::new()
        }
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}
