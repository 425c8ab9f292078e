use palisade_features::*;
#[path = "../benches/data/mod.rs"]
mod data;
fn main() {
    let mut args = std::env::args().skip(1);
    let set = args.next().unwrap();
    let n: usize = args.next().unwrap().parse().unwrap();
    let cfg = if set.ends_with(".toml") {
        EntityConfig::from_toml(&std::fs::read_to_string(&set).unwrap()).unwrap()
    } else {
        builtin_entity_set(&set).unwrap()
    };
    let events = data::flow_events::flow_events(400_000);
    // the first n events, pushed again and again: the same work on fewer, cached events
    let reps = 400_000 / n;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let mut agg = EntityAggregator::new(&cfg).unwrap();
        for _ in 0..reps {
            agg.push(&events[..n]);
        }
        let (table, _) = agg.finish();
        let el = t.elapsed().as_secs_f64();
        println!(
            "{set} n={n}: {} rows {:.1} ms ({:.2} M/s)",
            table.nrows(),
            el * 1e3,
            (reps * n) as f64 / el / 1e6
        );
    }
}
