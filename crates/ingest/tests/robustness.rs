//! Property tests: random bytes and random near-valid lines into every reader
//! never panic, and every line is accounted for (events + skipped <= lines).
//!
//! These are what CI runs. The cargo-fuzz targets in `crates/ingest/fuzz`
//! explore the same entry points more deeply but need a nightly toolchain,
//! which the build machines cannot install.

use palisade_ingest::{read_bytes, Format, IngestOptions, Mapping};
use proptest::prelude::*;

const FORMATS: [Format; 9] = [
    Format::ZeekTsv,
    Format::ZeekJson,
    Format::Squid,
    Format::W3c,
    Format::Apache,
    Format::Evtx,
    Format::WindowsJson,
    Format::Netfilter,
    Format::Mapped,
];

fn opts(format: Format) -> IngestOptions {
    let mapping = (format == Format::Mapped).then(|| {
        Mapping::from_toml_str(
            "source = \"csv\"\n[[fields]]\ncolumn = \"a\"\nfield = \"source.ip\"\ntype = \"ip\"\n[[fields]]\ncolumn = \"t\"\nfield = \"@timestamp\"\ntype = \"timestamp\"\n",
            "prop",
        )
        .expect("mapping")
    });
    IngestOptions {
        mapping,
        max_line_bytes: 512,
        ..Default::default()
    }
}

fn check(bytes: &[u8], format: Option<Format>) {
    let o = opts(format.unwrap_or(Format::Mapped));
    if let Ok((ev, s)) = read_bytes("prop", bytes, format, &o) {
        assert_eq!(ev.len() as u64, s.events);
        assert!(s.events + s.skipped_total() <= s.lines.max(1) + 1, "{s}");
    }
}

/// Fragments that reach deep into the readers' branches.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("#separator \\x09\n".to_string()),
        Just("#separator \\xc3\n".to_string()),
        Just("#separator ,\n".to_string()),
        Just("#set_separator\t\\xa9\n".to_string()),
        Just("#fields\tts\tresp_mime_types\n#path\thttp\n1.5\ta,\u{e9}b\n".to_string()),
        Just("#fields\tts\tuid\tid.orig_h\tid.orig_p\tquery\tlabel\n".to_string()),
        Just("#path\tdns\n".to_string()),
        Just("#Fields: date time c-ip cs-method cs-uri-stem sc-status\n".to_string()),
        Just("{\"_path\":\"conn\",\"ts\":1.5,\"id.orig_h\":\"1.2.3.4\"}\n".to_string()),
        Just("{\"EventID\":4624,\"EventData\":{\"LogonType\":\"3\",\"IpAddress\":\"::ffff:1.2.3.4\"}}\n".to_string()),
        Just("{\"winlog\":{\"event_id\":\"5156\",\"event_data\":{\"Protocol\":\"6\"}}}\n".to_string()),
        Just("1564655684.277 3387 192.168.0.1 TCP_TUNNEL/200 19131 CONNECT a:443 - HIER_DIRECT/a -\n".to_string()),
        Just("1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"x\"\n".to_string()),
        Just("X IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 PROTO=TCP SPT=1 DPT=2\n".to_string()),
        Just("a,t\n".to_string()),
        "[ -~\t]{0,80}\n",
        "[0-9.:/\\-\\[\\]\"\t ]{0,60}\n",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), fi in 0usize..10) {
        check(&bytes, FORMATS.get(fi).copied());
    }

    #[test]
    fn random_near_valid_lines_never_panic(parts in proptest::collection::vec(fragment(), 0..24), fi in 0usize..10) {
        let text: String = parts.concat();
        check(text.as_bytes(), FORMATS.get(fi).copied());
    }

    #[test]
    fn random_evtx_mutations_never_panic(flips in proptest::collection::vec((0usize..70_000, any::<u8>()), 1..64)) {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/windows-evtx-attack-samples/evtx/Command and Control/DE_RDP_Tunneling_4624.evtx");
        if let Ok(mut bytes) = std::fs::read(p) {
            let n = bytes.len();
            for (at, v) in flips {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b ^= v;
                }
            }
            check(&bytes, Some(Format::Evtx));
        }
    }
}
