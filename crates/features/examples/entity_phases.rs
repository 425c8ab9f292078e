//! Times the entity engine's two phases (the aggregation pass, then sorting
//! and writing the table) on the throughput bench's 400k synthetic Zeek conn
//! events (or its real logs), from the engine's own `debug` log line.
//!
//! `cargo run --release -p palisade-features --example entity_phases -- [flow|host|count|sliding|SET.toml] [RUNS]`
//! (`real:host`, `real:flow`: on the bench's real logs instead, when ../shared/data is there)
use palisade_core::Event;
use palisade_features::*;

#[path = "../benches/data/mod.rs"]
mod data;
use data::flow_events;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter("palisade_features=debug")
        .with_target(false)
        .init();
    let mut args = std::env::args().skip(1);
    let arg = args.next().unwrap_or_else(|| "flow".into());
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    // `real:SET`: the set on the real logs of the throughput bench
    let (set, events): (String, Vec<Event>) = match arg.strip_prefix("real:") {
        Some(s) => (s.to_string(), data::real_log_events()),
        None => (arg, flow_events::flow_events(400_000)),
    };
    let cfg = match set.as_str() {
        "count" => EntityConfig::from_toml(flow_events::COUNT_ONLY),
        "sliding" => EntityConfig::from_toml(flow_events::COUNT_ONLY).map(|mut c| {
            c.slide = Some("15m".into());
            c
        }),
        // a path: a feature set of one's own (to take a set apart)
        path if path.ends_with(".toml") => std::fs::read_to_string(path)
            .map_err(|e| FeatureError::Config(format!("{path}: {e}")))
            .and_then(|t| EntityConfig::from_toml(&t)),
        name => builtin_entity_set(name),
    }
    .unwrap_or_else(|e| panic!("{set}: {e}"));
    for _ in 0..runs {
        let t = std::time::Instant::now();
        let table = entity_features(&events, &cfg).expect("entity features");
        println!(
            "{set}: {} rows, {:.1} ms in all ({:.2} M events/s)",
            table.nrows(),
            t.elapsed().as_secs_f64() * 1e3,
            events.len() as f64 / t.elapsed().as_secs_f64() / 1e6
        );
    }
}
