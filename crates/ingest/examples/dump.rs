//! Print the events of one input as JSON lines (debugging aid):
//! `cargo run -p palisade-ingest --example dump -- FILE [FORMAT]`
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: dump FILE [FORMAT]");
        std::process::exit(2);
    };
    let format = args
        .get(2)
        .map(|f| f.parse().unwrap_or_else(|e| panic!("{e}")));
    let opts = palisade_ingest::IngestOptions {
        keep_original: false,
        ..Default::default()
    };
    match palisade_ingest::read_path(path.as_ref(), format, &opts) {
        Ok((events, summary)) => {
            for e in events.iter().take(5) {
                println!("{}", serde_json::to_string(e).unwrap_or_default());
            }
            eprintln!("{summary}");
        }
        Err(e) => eprintln!("error: {e}"),
    }
}
