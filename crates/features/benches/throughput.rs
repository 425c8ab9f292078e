//! URLs/s for the request features and events/s for entity aggregation, on
//! real data from ../shared/data when present (else a small built-in list;
//! the entity sets on synthetic Zeek events, and on real logs too; the
//! request set on PhishCrawl URLs as events, and on real Zeek and Apache
//! logs too; the domain set on the DGA list's names, and as a table over
//! Zeek's dns.log).
//! Run: `cargo bench -p palisade-features`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use palisade_features::request::N_URL;
use palisade_features::*;

mod data;
use data::flow_events::{flow_events, COUNT_ONLY};

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
    g.bench_function(
        "request_rows (full request set, per event, prefetching)",
        |b| {
            let mut fz = UrlFeaturizer::new();
            b.iter(|| {
                fz.request_rows(black_box(&events), |_, row| {
                    black_box(row);
                })
            })
        },
    );
    g.bench_function("request_features (table)", |b| {
        b.iter(|| black_box(request_features(&events)))
    });
    g.finish();

    // real request logs: Zeek ssl.log (the SNI alone) and Apache access
    // logs (path and query, no host), where hosts repeat
    let real_requests = data::real_request_events();
    if !real_requests.is_empty() {
        let mut g = c.benchmark_group("request (real logs)");
        g.throughput(Throughput::Elements(real_requests.len() as u64));
        g.bench_function(
            "request_rows (full request set, per event, prefetching)",
            |b| {
                let mut fz = UrlFeaturizer::new();
                b.iter(|| {
                    fz.request_rows(black_box(&real_requests), |_, row| {
                        black_box(row);
                    })
                })
            },
        );
        g.bench_function("request_features (table)", |b| {
            b.iter(|| black_box(request_features(&real_requests)))
        });
        g.finish();
    }

    if let Ok(names) = data::dga_names() {
        let mut g = c.benchmark_group("domain");
        g.throughput(Throughput::Elements(names.len() as u64));
        g.bench_function("row (domain set, per name; DGA list, shuffled)", |b| {
            let mut fz = DomainFeaturizer::new();
            let mut out = [0.0; domain::N_DOMAIN];
            b.iter(|| {
                for n in &names {
                    fz.row(black_box(n), &mut out);
                    black_box(&out);
                }
            })
        });
        g.finish();
    }
    let real_dns = data::real_dns_events();
    if !real_dns.is_empty() {
        // Zeek's dns.log of wrccdc-2018: the table, identity columns and all
        let mut g = c.benchmark_group("domain (real logs)");
        g.throughput(Throughput::Elements(real_dns.len() as u64));
        g.bench_function("domain_features (table; Zeek dns.log)", |b| {
            b.iter(|| black_box(domain::domain_features(&real_dns)))
        });
        g.finish();
    }
    let ev = flow_events(400_000);
    let mut g = c.benchmark_group("entity");
    g.throughput(Throughput::Elements(ev.len() as u64));
    g.sample_size(10);
    let flow = builtin_entity_set("flow").expect("flow set");
    g.bench_function("flow set, 1h tumbling", |b| {
        b.iter(|| black_box(entity_features(&ev, &flow)))
    });
    let mut count_only = EntityConfig::from_toml(COUNT_ONLY).expect("config");
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

    // the real logs of bench/entity_equivalence.sh (Zeek and Windows): a
    // mix of datasets, most events meeting few of a set's features
    let real = data::real_log_events();
    if real.is_empty() {
        return;
    }
    let mut g = c.benchmark_group("entity (real logs)");
    g.throughput(Throughput::Elements(real.len() as u64));
    g.sample_size(20);
    g.bench_function("host (Siddiqui) set, 1d", |b| {
        b.iter(|| black_box(entity_features(&real, &host)))
    });
    g.bench_function("flow set, 1h tumbling", |b| {
        b.iter(|| black_box(entity_features(&real, &flow)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
