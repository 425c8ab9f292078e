#![no_main]
//! Any bytes through the mapped CSV reader: must never panic.
use libfuzzer_sys::fuzz_target;
use palisade_ingest::{read_bytes, Format, IngestOptions, Mapping};

fuzz_target!(|data: &[u8]| {
    let mapping = Mapping::from_toml_str(
        "source = \"csv\"\n[[fields]]\ncolumn = \"a\"\nfield = \"source.ip\"\ntype = \"ip\"\n[[fields]]\ncolumn = \"t\"\nfield = \"@timestamp\"\ntype = \"timestamp\"\nformat = \"%d/%m/%Y %H:%M\"\n",
        "fuzz",
    )
    .ok();
    let opts = IngestOptions { mapping, max_line_bytes: 4096, ..Default::default() };
    let _ = read_bytes("fuzz", data, Some(Format::Mapped), &opts);
});
