//! Prints an entity feature table in full precision, for comparing two
//! builds of the engine on the same input (not part of the product).
//! Usage: entity_dump SET|CONFIG.toml [SLIDE] FORMAT:PATH...
use palisade_core::{ColumnData, Event};
use palisade_features::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let set = args.next().expect("set");
    let mut cfg = match builtin_entity_set(&set) {
        Ok(c) => c,
        Err(_) => EntityConfig::from_toml(&std::fs::read_to_string(&set).unwrap()).unwrap(),
    };
    let mut events: Vec<Event> = Vec::new();
    for a in args {
        if let Some(s) = a.strip_prefix("slide=") {
            cfg.slide = Some(s.to_string());
            continue;
        }
        if let Some(w) = a.strip_prefix("window=") {
            cfg.window = w.to_string();
            continue;
        }
        let (fmt, path) = a.split_once(':').expect("FORMAT:PATH");
        let f = palisade_ingest::Format::from_name(fmt).unwrap();
        let (ev, _) = palisade_ingest::read_path(
            std::path::Path::new(path),
            Some(f),
            &palisade_ingest::IngestOptions::default(),
        )
        .unwrap();
        events.extend(ev);
    }
    let (t, rep) = entity_features_with_report(&events, &cfg).unwrap();
    println!("{rep:?}");
    // each cell's Debug text, column by column (`iter` on a text column:
    // the same Debug text whether it yields `&Option<String>` (before the
    // fifteenth session) or `Option<&str>`, so old revisions build this too)
    let cells: Vec<Vec<String>> = t
        .columns
        .iter()
        .map(|c| match &c.data {
            ColumnData::Str(v) => v.iter().map(|x| format!("{x:?}")).collect(),
            ColumnData::F64(v) => v.iter().map(|x| format!("{x:?}")).collect(),
        })
        .collect();
    for i in 0..t.nrows() {
        let mut line = String::new();
        for c in &cells {
            line += &c[i];
            line.push(',');
        }
        println!("{line}");
    }
}
