#![no_main]
//! Any bytes through the squid reader: must return (events or an error), never panic.
use libfuzzer_sys::fuzz_target;
use palisade_ingest::{read_bytes, Format, IngestOptions};

fuzz_target!(|data: &[u8]| {
    let opts = IngestOptions { max_line_bytes: 4096, ..Default::default() };
    let _ = read_bytes("fuzz", data, Some(Format::Squid), &opts);
});
