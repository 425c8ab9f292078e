//! Dirty input: every case gets a clear message or a counted, quarantined
//! skip; none panics.

mod common;
use common::*;
use palisade_ingest::{ingest_reader, read_bytes, Format, IngestError, IngestOptions, Reason};

const ZEEK_HEADER: &str =
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n\
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n\
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\n";

fn zeek_line(i: u32) -> String {
    format!(
        "1521911721.{i:06}\tC{i}\t10.0.0.1\t{}\t10.0.0.2\t80\ttcp\n",
        1000 + i
    )
}

#[test]
fn malformed_lines_are_counted_reported_and_quarantined() {
    let mut text = String::from(ZEEK_HEADER);
    text.push_str(&zeek_line(1));
    text.push_str("1521911721.5\tC2\tnot-an-ip\t1\t10.0.0.2\t80\ttcp\n"); // line 9 (7 header lines, then line 8)
    text.push_str("1521911721.5\tC3\t10.0.0.1\t1\n"); // line 10: too few fields
    text.push_str("yesterday\tC4\t10.0.0.1\t1\t10.0.0.2\t80\ttcp\n"); // line 11
    text.push_str("1521911721.5\tC5\t10.0.0.1\t99999\t10.0.0.2\t80\ttcp\n"); // line 12
    text.push_str(&zeek_line(2));
    text.push_str("#close\t2024-04-12-19-34-07\n");
    let (s, events, q) = ingest_stream("conn.log", text.as_bytes());
    let s = s.expect("a few bad lines are not fatal");
    assert_eq!(s.events, 2);
    assert_eq!(events[0].log_line, Some(8));
    assert_eq!(events[1].log_line, Some(13));
    assert_eq!(s.skipped.get(&Reason::BadAddress), Some(&1));
    assert_eq!(s.skipped.get(&Reason::FieldCount), Some(&1));
    assert_eq!(s.skipped.get(&Reason::BadTimestamp), Some(&1));
    assert_eq!(s.skipped.get(&Reason::BadNumber), Some(&1));
    let lines: Vec<u64> = s.examples.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![9, 10, 11, 12]);
    assert!(
        s.examples[0].detail.contains("id.orig_h") && s.examples[0].detail.contains("not-an-ip"),
        "{:?}",
        s.examples[0]
    );
    let shown = s.to_string();
    assert!(
        shown.contains("conn.log") && shown.contains("bad_address 1") && shown.contains("line 9:"),
        "{shown}"
    );
    // the quarantine holds exactly the rejected lines, verbatim
    let expected: Vec<&str> = text.lines().skip(8).take(4).collect();
    assert_eq!(
        String::from_utf8(q)
            .expect("utf8")
            .lines()
            .collect::<Vec<_>>(),
        expected
    );
}

#[test]
fn max_errors_makes_too_many_fatal() {
    let mut text = String::from(ZEEK_HEADER);
    for i in 0..10 {
        text.push_str(&format!("bad line {i}\n"));
        text.push_str(&zeek_line(i));
    }
    let opts = IngestOptions {
        max_errors: Some(3),
        ..Default::default()
    };
    let e = read_bytes("conn.log", text.as_bytes(), None, &opts).unwrap_err();
    assert!(
        matches!(
            e,
            IngestError::TooManyErrors {
                max: 3,
                line: 14,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("conn.log"), "{e}");
    let opts = IngestOptions {
        max_errors: Some(10),
        ..Default::default()
    };
    let (ev, s) = read_bytes("conn.log", text.as_bytes(), None, &opts).expect("10 errors allowed");
    assert_eq!((ev.len(), s.skipped_total()), (10, 10));
}

#[test]
fn huge_line_is_skipped_without_being_held_and_quarantined_whole() {
    let mut text = String::from(ZEEK_HEADER);
    text.push_str(&zeek_line(1));
    let huge = format!("1521911721.5\tC9\t{}\n", "x".repeat(3 << 20));
    text.push_str(&huge);
    text.push_str(&zeek_line(2));
    let opts = IngestOptions {
        max_line_bytes: 1 << 20,
        ..Default::default()
    };
    let mut q = Vec::new();
    let s = ingest_reader(
        "conn.log",
        text.as_bytes(),
        None,
        &opts,
        Some(&mut q),
        |_| Ok(()),
    )
    .expect("not fatal");
    assert_eq!(s.events, 2);
    assert_eq!(s.skipped.get(&Reason::LineTooLong), Some(&1));
    assert_eq!(s.examples[0].line, 9);
    assert_eq!(
        q,
        huge.as_bytes(),
        "the over-long line is quarantined verbatim"
    );
}

#[test]
fn binary_garbage() {
    let garbage: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let e = read_bytes("blob", &garbage, None, &IngestOptions::default()).unwrap_err();
    assert!(e.to_string().contains("looks binary"), "{e}");
    // forced through a text reader: every line rejected, then "wrong format"
    let mut many = Vec::new();
    for _ in 0..40 {
        many.extend_from_slice(&garbage);
    }
    match read_bytes(
        "blob",
        &many,
        Some(Format::Squid),
        &IngestOptions::default(),
    ) {
        Err(IngestError::WrongFormat { .. }) => {}
        Ok((ev, s)) => assert!(ev.is_empty() && s.skipped_total() > 0, "{s}"),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn missing_header() {
    let text: String = (0..5).map(zeek_line).collect();
    let e = read_bytes(
        "conn.log",
        text.as_bytes(),
        Some(Format::ZeekTsv),
        &IngestOptions::default(),
    )
    .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("conn.log") && m.contains("line 1") && m.contains("#fields"),
        "{m}"
    );
    // and it is not guessed as Zeek without its header
    let e = read_bytes("conn.log", text.as_bytes(), None, &IngestOptions::default()).unwrap_err();
    assert!(matches!(e, IngestError::Undetected { .. }), "{e}");

    let w3c = "2024-01-02 03:04:05 10.0.0.5 GET / - 443\n";
    let e = read_bytes(
        "u_ex.log",
        w3c.as_bytes(),
        Some(Format::W3c),
        &IngestOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("#Fields"), "{e}");
}

#[test]
fn wrong_format_says_what_the_input_looks_like() {
    let Some(p) = data("web-access-elastic-apache/apache_logs.part1") else {
        return;
    };
    let e = palisade_ingest::read_path(&p, Some(Format::ZeekJson), &IngestOptions::default())
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("zeek-json") && m.contains("it looks like apache") && m.contains("line 1"),
        "{m}"
    );
    assert!(Format::from_name("nosuch")
        .unwrap_err()
        .to_string()
        .contains("nosuch"));
}

#[test]
fn truncated_gzip() {
    let Some(p) = data("zeek-wrccdc-2018/json/ntlm.json.gz") else {
        return;
    };
    let gz = std::fs::read(&p).expect("read");
    let cut = &gz[..gz.len() / 2];
    let e = read_bytes("ntlm.json.gz", cut, None, &IngestOptions::default()).unwrap_err();
    let m = e.to_string();
    assert!(
        matches!(e, IngestError::Gzip { .. })
            && m.contains("truncated or corrupt gzip")
            && m.contains("ntlm.json.gz"),
        "{m}"
    );
    // the whole file reads fine
    let (ev, _) =
        read_bytes("ntlm.json.gz", &gz, None, &IngestOptions::default()).expect("whole gzip");
    assert_eq!(ev.len(), 422);
}

#[test]
fn corrupt_and_truncated_evtx() {
    let Some(p) =
        data("windows-evtx-attack-samples/evtx/Command and Control/DE_RDP_Tunneling_4624.evtx")
    else {
        return;
    };
    let good = std::fs::read(&p).expect("read");
    let (all, _) = read_bytes("a.evtx", &good, None, &IngestOptions::default()).expect("good file");
    assert!(!all.is_empty());

    // a truncated file: fewer events or a clear error, never a panic
    for frac in [2usize, 3, 5] {
        let cut = &good[..good.len() / frac];
        match read_bytes("cut.evtx", cut, None, &IngestOptions::default()) {
            Ok((ev, _)) => assert!(ev.len() <= all.len()),
            Err(e) => assert!(e.to_string().contains("cut.evtx"), "{e}"),
        }
    }
    // garbage over the first chunk's records (the chunk header sits at 4096)
    let mut bad = good.clone();
    for b in bad.iter_mut().skip(4096 + 600).take(3000) {
        *b ^= 0x5a;
    }
    match read_bytes("bad.evtx", &bad, None, &IngestOptions::default()) {
        Ok((ev, s)) => {
            assert!(
                ev.len() < all.len() || s.skipped_total() > 0 || ev.len() == all.len(),
                "{s}"
            );
            for ex in &s.examples {
                assert_eq!(ex.reason, Reason::EvtxRecord);
            }
        }
        Err(e) => assert!(e.to_string().contains("bad.evtx"), "{e}"),
    }
    // a broken file header is a clear error
    let mut hdr = good.clone();
    for b in hdr.iter_mut().skip(8).take(100) {
        *b = 0xff;
    }
    if let Err(e) = read_bytes(
        "hdr.evtx",
        &hdr,
        Some(Format::Evtx),
        &IngestOptions::default(),
    ) {
        assert!(e.to_string().contains("hdr.evtx"), "{e}");
    }
}

#[test]
fn empty_input_is_zero_events_with_a_warning() {
    // detected or given format alike: zero events, a warning naming the input
    for f in [None, Some(Format::Apache), Some(Format::Evtx)] {
        let (ev, s) = read_bytes("empty.log", b"", f, &IngestOptions::default())
            .unwrap_or_else(|e| panic!("{f:?}: {e}"));
        assert!(ev.is_empty());
        assert_eq!((s.events, s.lines, s.skipped_total()), (0, 0, 0), "{s}");
        assert_eq!(s.warnings.len(), 1, "{s}");
        assert!(s.warnings[0].contains("empty.log"), "{s}");
        assert!(s.warnings[0].contains("empty"), "{s}");
        assert!(s.to_string().contains("warning: empty.log"), "{s}");
    }
    // an empty gzip stream too
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"").unwrap();
    let gz = gz.finish().unwrap();
    let (ev, s) = read_bytes("empty.log.gz", &gz, None, &IngestOptions::default()).expect("gz");
    assert!(ev.is_empty() && s.warnings.len() == 1, "{s}");
    // only blank lines, format to be detected: the same
    let (ev, s) =
        read_bytes("blank.log", b"  \n\r\n\n", None, &IngestOptions::default()).expect("blank");
    assert!(ev.is_empty(), "{s}");
    assert_eq!(s.lines, 3, "{s}");
    assert!(s.warnings[0].contains("blank.log"), "{s}");
}

#[test]
fn undetectable_nonempty_input_is_still_an_error() {
    let e = read_bytes(
        "junk.log",
        b"hello world\nnothing here\n",
        None,
        &IngestOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, IngestError::Undetected { .. }), "{e}");
    assert!(e.to_string().contains("junk.log"), "{e}");
}

#[test]
fn truncated_evtx_is_reported() {
    let Some(p) =
        data("windows-evtx-attack-samples/evtx/Command and Control/DE_RDP_Tunneling_4624.evtx")
    else {
        return;
    };
    let good = std::fs::read(&p).expect("read");
    // the whole file: nothing to report
    let (_, s) = read_bytes("a.evtx", &good, None, &IngestOptions::default()).expect("good");
    assert!(s.warnings.is_empty() && s.skipped_total() == 0, "{s}");
    // cut inside its one chunk, and cut right after the file header
    for cut in [40_000usize, 4096, good.len() - 1] {
        let mut q: Vec<u8> = Vec::new();
        let s = ingest_reader(
            "cut.evtx",
            &good[..cut],
            None,
            &IngestOptions::default(),
            Some(&mut q),
            |_| Ok(()),
        )
        .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(
            s.skipped.get(&Reason::EvtxRecord),
            Some(&1),
            "cut at {cut}: {s}"
        );
        assert_eq!(s.warnings.len(), 1, "cut at {cut}: {s}");
        assert!(s.warnings[0].contains("cut.evtx"), "{s}");
        assert!(s.warnings[0].contains("truncated"), "{s}");
        let detail = &s.examples[0].detail;
        if cut > 4096 {
            assert!(detail.contains("mid-chunk"), "{s}");
        }
        assert!(detail.contains("header declares"), "{s}");
        assert_eq!(s.examples[0].reason, Reason::EvtxRecord);
        let q = String::from_utf8(q).unwrap();
        assert!(q.contains("cut.evtx") && q.contains("truncated"), "{q}");
    }
    // and --max-errors 0 makes it an error
    let opts = IngestOptions {
        max_errors: Some(0),
        ..Default::default()
    };
    let e = read_bytes("cut.evtx", &good[..40_000], None, &opts).unwrap_err();
    assert!(e.to_string().contains("cut.evtx"), "{e}");
}

#[test]
fn truncated_evtx_with_many_chunks_keeps_what_it_has() {
    let Some(p) = data(
        "windows-evtx-attack-samples/evtx/Other/rdpcorets_148_mst120_bluekeep_rpdscan_full.evtx",
    ) else {
        return;
    };
    let good = std::fs::read(&p).expect("read");
    let (all, s) = read_bytes("full.evtx", &good, None, &IngestOptions::default()).expect("full");
    assert!(s.warnings.is_empty(), "{s}");
    for cut in [100_000usize, 66_000] {
        let (ev, s) = read_bytes("tr.evtx", &good[..cut], None, &IngestOptions::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(ev.len() < all.len());
        assert_eq!(s.skipped_total(), 1, "{s}");
        assert!(s.warnings[0].contains("tr.evtx"), "{s}");
        assert!(s.to_string().contains("truncated .evtx"), "{s}");
    }
}

#[test]
fn mapped_without_mapping() {
    let e = read_bytes(
        "x.csv",
        b"a,b\n1,2\n",
        Some(Format::Mapped),
        &IngestOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("--mapping"), "{e}");
}

#[test]
fn crlf_bom_and_missing_final_newline() {
    let text = format!(
        "{}{}",
        ZEEK_HEADER.replace('\n', "\r\n"),
        zeek_line(1).trim_end()
    );
    let (ev, s) =
        read_bytes("conn.log", text.as_bytes(), None, &IngestOptions::default()).expect("crlf");
    assert_eq!(ev.len(), 1, "{s}");
    assert_eq!(ev[0].source_port, Some(1001));
}

#[test]
fn non_ascii_zeek_separator_is_refused_not_split_mid_character() {
    let text = "#separator \\xc3\n#fields\tts\tuid\n1.5\t\u{e9}\u{e9}\n";
    let (ev, s) = read_bytes(
        "conn.log",
        text.as_bytes(),
        Some(Format::ZeekTsv),
        &IngestOptions::default(),
    )
    .expect("not fatal");
    assert_eq!(s.skipped.get(&Reason::Syntax), Some(&1), "{s}");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].session_id.as_deref(), Some("\u{e9}\u{e9}"));
}

/// A packet capture is named as one, with what to run on it, instead of
/// "could not detect the log format; pass --format" (no format reads packets).
#[test]
fn packet_captures_are_named() {
    if let Some(p) = data("pcap-samples/DnsPackets.pcap") {
        let e = palisade_ingest::read_path(&p, None, &IngestOptions::default()).unwrap_err();
        assert!(
            matches!(e, IngestError::PacketCapture { kind: "pcap", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("zeek -C -r"), "{e}");
    }
    // pcapng's section header block, and pcap in the other byte order
    for (head, kind) in [
        (&[0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0][..], "pcapng"),
        (&[0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4][..], "pcap"),
    ] {
        let e = read_bytes("x.cap", head, None, &IngestOptions::default()).unwrap_err();
        assert!(
            matches!(e, IngestError::PacketCapture { kind: k, .. } if k == kind),
            "{e}"
        );
    }
}
