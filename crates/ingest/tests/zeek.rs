//! Zeek readers on real logs: WRCCDC 2018 (the same logs in TSV and JSON,
//! CC BY-SA: read from ../shared/data) and Stratosphere labelled logs (GPL:
//! read from ../shared/data).

mod common;
use common::*;
use palisade_ingest::Format;
use std::collections::BTreeMap;

#[test]
fn wrccdc_tsv_and_json_give_identical_events() {
    for log in [
        "ntlm",
        "rdp",
        "kerberos",
        "ssl",
        "dns",
        "smb_files",
        "dce_rpc",
        "ssh",
    ] {
        let (Some(tsv), Some(json)) = (
            data(&format!("zeek-wrccdc-2018/tsv/{log}.log")),
            data(&format!("zeek-wrccdc-2018/json/{log}.json.gz")),
        ) else {
            return;
        };
        let (a, sa) = read(&tsv, None);
        let (b, sb) = read(&json, None);
        assert_eq!(sa.format, Some(Format::ZeekTsv), "{log}");
        assert_eq!(sb.format, Some(Format::ZeekJson), "{log}");
        assert_eq!(sa.skipped_total(), 0, "{sa}");
        assert_eq!(sb.skipped_total(), 0, "{sb}");
        assert!(!a.is_empty(), "{log}");
        assert_eq!(a.len(), b.len(), "{log}: event counts differ");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(
                content(x),
                content(y),
                "{log}: event {i} differs between TSV and JSON"
            );
        }
        assert!(a
            .iter()
            .all(|e| e.event_dataset.as_deref() == Some(&format!("zeek.{log}")[..])));
        assert!(
            a.iter().all(|e| e.timestamp_us.is_some()
                && e.source_ip.is_some()
                && e.session_id.is_some()),
            "{log}"
        );
    }
}

#[test]
fn wrccdc_field_values() {
    let Some(p) = data("zeek-wrccdc-2018/tsv/ntlm.log") else {
        return;
    };
    let (ev, _) = read(&p, None);
    assert_eq!(ev.len(), 422);
    let e = &ev[0];
    assert_eq!(e.timestamp_us, Some(1_521_911_721_608_646));
    assert_eq!(e.session_id.as_deref(), Some("CGLspW1BuwJH6YxjK6"));
    assert_eq!(e.source_ip, "10.164.94.120".parse().ok());
    assert_eq!(e.source_port, Some(36315));
    assert_eq!(e.destination_ip, "10.47.8.208".parse().ok());
    assert_eq!(e.destination_port, Some(445));
    assert_eq!(
        e.destination_domain.as_deref(),
        Some("Snozberry.factory.oompa.loompa")
    );
    assert_eq!(e.event_outcome.as_deref(), Some("success"));
    assert_eq!(e.user_name, None, "`-` is unset");
    assert_eq!(
        e.log_line,
        Some(9),
        "first data line is line 9 after 8 header lines"
    );
    let admin = ev
        .iter()
        .find(|e| {
            e.user_name.as_deref() == Some("Administrator")
                && e.user_domain.as_deref() == Some("COTTONCANDY")
        })
        .expect("the Administrator@COTTONCANDY NTLM login");
    assert_eq!(admin.destination_domain.as_deref(), Some("CottonCandy"));
    // ntlm `hostname` is the client's name for itself: `source.domain`,
    // never `host.name` (the host set's entity: the computer that logged it)
    let claimed = ev
        .iter()
        .filter(|e| e.source_domain.as_deref() == Some("WORKSTATION"))
        .count();
    assert_eq!(
        claimed, 236,
        "ntlm.log's 236 lines with hostname WORKSTATION"
    );
    assert!(ev.iter().all(|e| e.host_name.is_none()));
    assert_eq!(admin.event_outcome, None, "success `-` is unset");
    assert_eq!(admin.network_protocol.as_deref(), Some("ntlm"));

    let Some(p) = data("zeek-wrccdc-2018/json/kerberos.json.gz") else {
        return;
    };
    let (ev, _) = read(&p, None);
    assert_eq!(ev.len(), 11);
    assert_eq!(ev[0].event_action.as_deref(), Some("AS"));
    assert_eq!(ev[0].user_name, None, "client `/NM` has no user");
    assert_eq!(ev[0].user_domain.as_deref(), Some("NM"));

    let Some(p) = data("zeek-wrccdc-2018/tsv/ssl.log") else {
        return;
    };
    let (ev, _) = read(&p, None);
    assert_eq!(ev.len(), 49_474);
    assert!(ev.iter().any(|e| e.tls_server_name.is_some()));
    assert!(
        ev.iter()
            .filter_map(|e| e.tls_version.as_deref())
            .all(|v| !v.starts_with("TLSv")),
        "versions normalised"
    );

    let Some(p) = data("zeek-wrccdc-2018/tsv/rdp.log") else {
        return;
    };
    let (ev, _) = read(&p, None);
    assert_eq!(ev.len(), 4_122);
    assert_eq!(ev[0].event_action.as_deref(), Some("encrypted"));
    assert_eq!(ev[0].event_outcome.as_deref(), Some("unknown"));
}

#[test]
fn stratosphere_labelled_conn() {
    let Some(p) = data("zeek-stratosphere-labeled/001-zeek-scenario-malicious/labeled-conn.log")
    else {
        return;
    };
    let (ev, s) = read(&p, None);
    assert_eq!(s.skipped_total(), 0, "{s}");
    assert_eq!(ev.len(), 992);
    let mut labels: BTreeMap<String, usize> = BTreeMap::new();
    for e in &ev {
        *labels
            .entry(e.source_label.clone().unwrap_or_default())
            .or_default() += 1;
    }
    // counts from the dataset's SOURCE.md
    assert_eq!(labels.get("Background"), Some(&739));
    assert_eq!(labels.get("Benign"), Some(&9));
    assert_eq!(labels.get("Malicious"), Some(&244));
    let e = &ev[0];
    assert_eq!(e.timestamp_us, Some(19_981_745));
    assert_eq!(
        e.source_ip,
        "fd2d:ab8c:225:0:81d3:fd3e:7f62:aec8".parse().ok()
    );
    assert_eq!(e.source_port, Some(56464));
    assert_eq!(e.destination_port, Some(53));
    assert_eq!(e.network_transport.as_deref(), Some("udp"));
    assert_eq!(e.network_protocol.as_deref(), Some("dns"));
    assert_eq!(e.event_duration_ns, Some(136_721_000));
    assert_eq!(e.source_bytes, Some(34));
    assert_eq!(e.destination_bytes, Some(50));
    assert_eq!(e.source_packets, Some(1));
    assert_eq!(e.network_connection_state.as_deref(), Some("SF"));
    assert_eq!(e.network_direction.as_deref(), Some("external"));
    assert_eq!(e.session_id.as_deref(), Some("C91Ycq25p2quMWzEMk"));
    assert_eq!(e.event_dataset.as_deref(), Some("zeek.conn"));

    // the unlabelled conn.log of the same scenario: same flows, no label
    let Some(p2) = data("zeek-stratosphere-labeled/001-zeek-scenario-malicious/conn.log") else {
        return;
    };
    let (plain, _) = read(&p2, None);
    assert_eq!(plain.len(), ev.len());
    for (a, b) in plain.iter().zip(&ev) {
        assert_eq!(a.source_label, None);
        assert_eq!(
            Some(content(a)),
            Some(palisade_core::Event {
                source_label: None,
                ..content(b)
            })
        );
    }
}

#[test]
fn stratosphere_json_conn_without_path() {
    let Some(p) = data("zeek-stratosphere-labeled/002-zeek-scenario-port-scanning/conn.log") else {
        return;
    };
    let (ev, s) = read(&p, None);
    assert_eq!(s.format, Some(Format::ZeekJson));
    assert_eq!(ev.len(), 4_504);
    let e = &ev[0];
    assert_eq!(
        e.event_dataset.as_deref(),
        Some("zeek.conn"),
        "log type from the file name"
    );
    assert_eq!(e.timestamp_us, Some(1_664_462_456_755_299));
    assert_eq!(e.destination_ip, "8.8.8.8".parse().ok());
    assert_eq!(e.destination_bytes, Some(111));
    assert_eq!(e.network_connection_state.as_deref(), Some("SHR"));
    assert_eq!(e.network_direction.as_deref(), Some("outbound"));
    assert_eq!(
        e.event_duration_ns,
        Some(12_167_000),
        "rounded to the microsecond like TSV"
    );
}

#[test]
fn stratosphere_http_dns_ssl_files() {
    if let Some(p) = data("zeek-stratosphere-labeled/005-zeek-scenario-malicious/http.log") {
        let (ev, s) = read(&p, None);
        assert_eq!(s.skipped_total(), 0, "{s}");
        assert_eq!(ev.len(), 992);
        let e = &ev[0];
        assert_eq!(e.http_request_method.as_deref(), Some("GET"));
        assert_eq!(e.url_domain.as_deref(), Some("gatyfus.com"));
        assert_eq!(e.url_path.as_deref(), Some("/login.php"));
        assert_eq!(e.url_full.as_deref(), Some("http://gatyfus.com/login.php"));
        assert_eq!(
            e.http_request_referrer.as_deref(),
            Some("http://www.google.com")
        );
        assert_eq!(e.http_response_status_code, Some(302));
        assert_eq!(e.http_response_mime_type.as_deref(), Some("text/html"));
        assert_eq!(e.source_bytes, Some(6));
        assert_eq!(e.destination_bytes, Some(154));
        assert!(e
            .user_agent_original
            .as_deref()
            .is_some_and(|u| u.starts_with("Mozilla/4.0 (compatible; MSIE 2.0")));
    }
    if let Some(p) = data("zeek-stratosphere-labeled/005-zeek-scenario-malicious/dns.log") {
        let (ev, _) = read(&p, None);
        assert_eq!(ev.len(), 992);
        assert_eq!(ev[0].dns_question_name.as_deref(), Some("dns.msftncsi.com"));
        assert_eq!(ev[0].dns_question_type.as_deref(), Some("A"));
        assert_eq!(ev[0].dns_response_code.as_deref(), Some("NOERROR"));
    }
    if let Some(p) = data("zeek-stratosphere-labeled/010-zeek-mixed/data/ssl.log.labeled") {
        let (ev, _) = read(&p, None);
        assert_eq!(ev.len(), 1_039);
        assert_eq!(
            ev.iter()
                .filter(|e| e.source_label.as_deref() == Some("Benign"))
                .count(),
            1_033
        );
        assert_eq!(
            ev.iter()
                .filter(|e| e.source_label.as_deref() == Some("Malicious"))
                .count(),
            4
        );
    }
    // The shared files.log has a header only; a files record in Zeek's own layout:
    let text = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tfiles\n\
#fields\tts\tfuid\ttx_hosts\trx_hosts\tconn_uids\tsource\tdepth\tanalyzers\tmime_type\tfilename\tduration\tseen_bytes\n\
#types\ttime\tstring\tset[addr]\tset[addr]\tset[string]\tstring\tcount\tset[string]\tstring\tstring\tinterval\tcount\n\
1655071298.2\tFx1\t91.228.165.44\t147.32.81.167,10.0.0.1\tC5hVfL2fjFRPxB5V3d,Cx\tHTTP\t0\t(empty)\tapplication/x-dosexec\tx.exe\t0.5\t1024\n";
    let (ev, s) = read_text("files.log", text, None);
    assert_eq!(s.skipped_total(), 0, "{s}");
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e.event_dataset.as_deref(), Some("zeek.files"));
    assert_eq!(e.source_ip, "91.228.165.44".parse().ok());
    assert_eq!(
        e.destination_ip,
        "147.32.81.167".parse().ok(),
        "first of the set"
    );
    assert_eq!(e.session_id.as_deref(), Some("C5hVfL2fjFRPxB5V3d"));
    assert_eq!(e.network_protocol.as_deref(), Some("http"));
    assert_eq!(
        e.http_response_mime_type.as_deref(),
        Some("application/x-dosexec")
    );
    assert_eq!(e.destination_bytes, Some(1024));
    assert_eq!(e.event_duration_ns, Some(500_000_000));
}
