//! URLs/s for the request features and events/s for entity aggregation, on
//! real data from ../shared/data when present (else a small built-in list).
//! Run: `cargo bench -p palisade-features`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use palisade_core::Event;
use palisade_features::request::N_URL;
use palisade_features::*;

mod data;

fn urls() -> Vec<String> {
    data::read_urls(&data::dev_csv()).unwrap_or_else(|_| {
        [
            "https://www.example.com/a/b?c=d",
            "http://192.168.1.1/login.php?user=admin&pw=x",
            "example.org",
        ]
        .iter()
        .cycle()
        .take(10_000)
        .map(|s| s.to_string())
        .collect()
    })
}

fn flow_events(n: usize) -> Vec<Event> {
    // Synthetic: 2,000 sources, 5,000 destinations, 8 ports, events spread over one day.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ports = [22u16, 53, 80, 443, 445, 3389, 8080, 51234];
    let states = ["SF", "S0", "REJ", "SF", "SF", "RSTO"];
    (0..n)
        .map(|i| {
            let r = next();
            Event {
                timestamp_us: Some(
                    1_521_849_600_000_000 + (i as i64) * (86_400_000_000 / n as i64),
                ),
                source_ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                    0x0a00_0000 + (r % 2000) as u32,
                ))),
                destination_ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                    0xc0a8_0000 + ((r >> 16) % 5000) as u32,
                ))),
                destination_port: Some(ports[((r >> 32) % ports.len() as u64) as usize]),
                source_bytes: Some((r >> 40) % 10_000),
                destination_bytes: Some((r >> 20) % 100_000),
                event_duration_ns: Some(((r >> 8) % 10_000_000) as i64),
                network_connection_state: Some(
                    states[((r >> 48) % states.len() as u64) as usize].to_string(),
                ),
                event_dataset: Some("zeek.conn".into()),
                ..Default::default()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let urls = urls();
    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Elements(urls.len() as u64));
    g.bench_function("url_row (URL-only set, per URL)", |b| {
        let mut fz = UrlFeaturizer::new();
        let mut out = [0.0; N_URL];
        b.iter(|| {
            for u in &urls {
                fz.url_row(black_box(u), &mut out);
                black_box(&out);
            }
        })
    });
    let events = data::request_events(&urls);
    g.bench_function("request_row (full request set, per event)", |b| {
        let mut fz = UrlFeaturizer::new();
        let mut out = [0.0; request::N_REQUEST];
        b.iter(|| {
            for e in &events {
                fz.request_row(black_box(e), &mut out);
                black_box(&out);
            }
        })
    });
    g.bench_function("request_features (table)", |b| {
        b.iter(|| black_box(request_features(&events)))
    });
    g.finish();

    let ev = flow_events(400_000);
    let mut g = c.benchmark_group("entity");
    g.throughput(Throughput::Elements(ev.len() as u64));
    g.sample_size(10);
    let flow = builtin_entity_set("flow").expect("flow set");
    g.bench_function("flow set, 1h tumbling", |b| {
        b.iter(|| black_box(entity_features(&ev, &flow)))
    });
    let mut count_only = EntityConfig::from_toml(
        "name = \"c\"\nkey = \"source.ip\"\nwindow = \"1h\"\n[[feature]]\nname = \"n\"\nagg = \"count\"\ndescription = \"events per source\"\n",
    )
    .expect("config");
    g.bench_function("count only, 1h tumbling", |b| {
        b.iter(|| black_box(entity_features(&ev, &count_only)))
    });
    count_only.slide = Some("15m".into());
    g.bench_function("count only, 1h sliding by 15m", |b| {
        b.iter(|| black_box(entity_features(&ev, &count_only)))
    });
    let host = builtin_entity_set("host").expect("host set");
    g.bench_function("host (Siddiqui) set, 1d", |b| {
        b.iter(|| black_box(entity_features(&ev, &host)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
