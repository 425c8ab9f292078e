//! The data of the request-feature benchmarks, shared by
//! `benches/throughput.rs` and `examples/url_rows.rs` so that both measure
//! the same URLs and events. (A folder with `mod.rs`: cargo does not take it
//! for a bench target of its own.)

use palisade_core::Event;
use std::path::{Path, PathBuf};

// the entity benchmarks' events (`url_rows` uses only the URLs)
#[allow(dead_code)]
pub mod flow_events;

/// ../shared/data/url-phishcrawl/dev.csv (20,365 URLs).
pub fn dev_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/url-phishcrawl/dev.csv")
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
