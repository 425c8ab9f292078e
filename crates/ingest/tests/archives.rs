//! Zip archives: each file in one read as an input of its own (the OTRF
//! security datasets ship their logs zipped), named `ARCHIVE!/ENTRY`.

mod common;
use common::*;
use palisade_core::Event;
use palisade_ingest::{
    ingest_reader, read_bytes, read_path, Format, IngestError, IngestOptions, Reason,
};
use std::io::Write;

const ZEEK_CONN: &str =
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n\
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n\
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\n\
1521911721.000001\tC1\t10.0.0.1\t1001\t10.0.0.2\t80\ttcp\n\
1521911721.5\tC2\tnot-an-ip\t1\t10.0.0.2\t80\ttcp\n\
1521911721.000002\tC3\t10.0.0.1\t1002\t10.0.0.2\t80\ttcp\n";

/// A zip (stored, not deflated) of `files`; a name ending in `/` is a folder.
fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in files {
        if name.ends_with('/') {
            w.add_directory(*name, opts).unwrap();
        } else {
            w.start_file(*name, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

fn without_path(mut e: Event) -> Event {
    e.log_file_path = None;
    e
}

#[test]
fn otrf_zip_reads_as_the_json_inside() {
    let dir = "windows-otrf-security-datasets/lateral_movement/host";
    let (Some(zipped), Some(plain)) = (
        data(&format!(
            "{dir}/covenant_sharpsc_query_dcerpc_smb_svcctl.zip"
        )),
        data(&format!(
            "{dir}/covenant_sharpsc_query_dcerpc_smb_svcctl.jsonl"
        )),
    ) else {
        return;
    };
    let (from_zip, zs) = read(&zipped, None);
    let (from_json, js) = read(&plain, None);
    assert_eq!(zs.format, Some(Format::WindowsJson));
    assert_eq!(from_zip.len(), 349, "the SOURCE.md count");
    assert_eq!((zs.events, zs.lines), (js.events, js.lines));
    let inner = format!(
        "{}!/covenant_sharpsc_query_dcerpc_smb_svcctl_2020-08-06012009.json",
        zipped.display()
    );
    let named = from_zip
        .iter()
        .filter(|e| e.log_file_path.as_deref() == Some(&inner));
    assert_eq!(named.count(), 349, "{:?}", from_zip[0].log_file_path);
    let a: Vec<Event> = from_zip.into_iter().map(without_path).collect();
    let b: Vec<Event> = from_json.into_iter().map(without_path).collect();
    assert!(a == b, "the zipped and the plain file give other events");
}

#[test]
fn a_zipped_capture_is_named_as_a_capture() {
    let Some(p) =
        data("windows-otrf-security-datasets/lateral_movement/network/schtask_create.zip")
    else {
        return;
    };
    let err = read_path(&p, None, &IngestOptions::default()).unwrap_err();
    assert!(matches!(err, IngestError::PacketCapture { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("schtask_create.zip!/schtask_create_2020-12-1907003032.pcapng: a packet capture (pcapng)"),
        "{msg}"
    );
    // a command that runs: the capture out of the archive, then zeek on it
    assert!(
        msg.contains("schtask_create.zip schtask_create_2020-12-1907003032.pcapng && zeek -C -r schtask_create_2020-12-1907003032.pcapng`"),
        "{msg}"
    );
}

#[test]
fn every_file_of_an_archive_counts_in_its_summary() {
    let bytes = zip_of(&[
        ("logs/", b""),
        ("logs/a/conn.log", ZEEK_CONN.as_bytes()),
        ("logs/b/conn.log", ZEEK_CONN.as_bytes()),
        ("logs/empty.log", b""),
    ]);
    let (s, events, q) = ingest_stream("logs.zip", &bytes);
    let s = s.unwrap();
    assert_eq!(s.path, "logs.zip");
    assert_eq!(s.format, Some(Format::ZeekTsv));
    assert_eq!(events.len(), 4);
    assert_eq!(s.events, 4);
    assert_eq!(
        s.skipped.get(&Reason::BadAddress),
        Some(&2),
        "{:?}",
        s.skipped
    );
    assert_eq!(
        events[0].log_file_path.as_deref(),
        Some("logs.zip!/logs/a/conn.log")
    );
    assert_eq!(
        events[3].log_file_path.as_deref(),
        Some("logs.zip!/logs/b/conn.log")
    );
    // the examples name their file, the quarantine holds both bad lines
    assert!(
        s.examples[0].detail.starts_with("logs/a/conn.log: "),
        "{:?}",
        s.examples
    );
    assert!(
        s.examples[1].detail.starts_with("logs/b/conn.log: "),
        "{:?}",
        s.examples
    );
    assert_eq!(String::from_utf8_lossy(&q).matches("not-an-ip").count(), 2);
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("logs.zip!/logs/empty.log")),
        "{:?}",
        s.warnings
    );
    // --max-errors counts over the whole archive
    let opts = IngestOptions {
        max_errors: Some(1),
        ..Default::default()
    };
    let err =
        ingest_reader("logs.zip", bytes.as_slice(), None, &opts, None, |_| Ok(())).unwrap_err();
    assert!(
        err.to_string().contains("logs.zip!/logs/b/conn.log"),
        "{err}"
    );
}

#[test]
fn a_broken_or_empty_archive_is_reported() {
    let mut broken = b"PK\x03\x04".to_vec();
    broken.extend_from_slice(&[0x55; 100]);
    let opts = IngestOptions::default();
    let err = read_bytes("broken.zip", &broken, None, &opts).unwrap_err();
    assert!(matches!(err, IngestError::Zip { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("broken.zip: not a readable zip archive"),
        "{err}"
    );

    let empty = zip_of(&[]);
    let (events, s) = read_bytes("empty.zip", &empty, None, &opts).unwrap();
    assert!(events.is_empty());
    assert_eq!(s.events, 0);
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(s.warnings[0].contains("holds no files"));
}
