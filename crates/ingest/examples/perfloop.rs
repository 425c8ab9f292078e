//! Parse one file in memory N times (for profiling with perf):
//! `cargo run --release -p palisade-ingest --example perfloop -- FILE FORMAT N`
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: perfloop FILE FORMAT N");
        std::process::exit(2);
    }
    let bytes = std::fs::read(&args[1]).unwrap_or_default();
    let format: palisade_ingest::Format = match args[2].parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let n: usize = args[3].parse().unwrap_or(10);
    let opts = palisade_ingest::IngestOptions::default();
    let t = std::time::Instant::now();
    let mut events = 0u64;
    for _ in 0..n {
        if let Ok(s) =
            palisade_ingest::ingest_reader("x", bytes.as_slice(), Some(format), &opts, None, |_| {
                Ok(())
            })
        {
            events += s.events;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "{events} events, {:.1} MB/s, {:.0} lines/s",
        (bytes.len() * n) as f64 / secs / 1e6,
        events as f64 / secs
    );
}
