#![no_main]
//! Format detection and whatever reader it picks, on any bytes.
use libfuzzer_sys::fuzz_target;
use palisade_ingest::{read_bytes, sniff, IngestOptions};

fuzz_target!(|data: &[u8]| {
    let _ = sniff(data);
    let _ = read_bytes("fuzz", data, None, &IngestOptions::default());
});
