//! Web proxy, web server, firewall and mapped readers on real samples.

mod common;
use common::*;
use palisade_ingest::{read_bytes, Format, IngestOptions, Mapping, Reason};

#[test]
fn squid_native_lines_from_sekoia() {
    // SEKOIA intake-formats has no licence file: read at test time, not copied.
    let Some(p) = data("log-format-fixtures-sekoia/proxy_squid.jsonl") else {
        return;
    };
    let msgs = sekoia_messages(&p);
    assert_eq!(msgs.len(), 15);
    let text = msgs.join("\n");
    let (ev, s) = read_text("squid-access.log", &text, Some(Format::Squid));
    // The first two samples are Squid's "common" (CLF-like) format, not native.
    assert_eq!(ev.len(), 13, "{s}");
    assert_eq!(s.skipped.get(&Reason::BadTimestamp), Some(&2), "{s}");
    assert_eq!(s.examples[0].line, 1);

    let e = &ev[0];
    assert_eq!(e.timestamp_us, Some(1_564_655_684_277_000));
    assert_eq!(e.event_duration_ns, Some(3_387_000_000));
    assert_eq!(e.source_ip, "192.168.0.1".parse().ok());
    assert_eq!(e.event_action.as_deref(), Some("TCP_TUNNEL"));
    assert_eq!(e.http_response_status_code, Some(200));
    assert_eq!(e.destination_bytes, Some(19131));
    assert_eq!(e.http_request_method.as_deref(), Some("CONNECT"));
    assert_eq!(e.url_domain.as_deref(), Some("example.org"));
    assert_eq!(e.destination_port, Some(443));
    assert_eq!(e.destination_domain.as_deref(), Some("example.org"));
    assert_eq!(e.log_line, Some(3));

    let miss = ev
        .iter()
        .find(|e| e.event_action.as_deref() == Some("TCP_MISS"))
        .expect("a TCP_MISS");
    assert_eq!(
        miss.url_full.as_deref(),
        Some("http://dt.example.com/dt123456")
    );
    assert_eq!(miss.url_path.as_deref(), Some("/dt123456"));
    assert_eq!(miss.http_response_mime_type.as_deref(), Some("image/gif"));
    let denied = ev
        .iter()
        .find(|e| e.event_action.as_deref() == Some("TCP_DENIED"))
        .expect("a denial");
    assert_eq!(denied.http_response_status_code, Some(403));
    assert_eq!(denied.event_outcome.as_deref(), Some("failure"));
    assert_eq!(denied.destination_ip, None);
    let pseudo = ev
        .iter()
        .find(|e| e.event_action.as_deref() == Some("NONE_NONE"))
        .expect("error pseudo-URL");
    assert_eq!(pseudo.url_domain, None);
    assert_eq!(pseudo.http_request_method, None);
    let last = ev.last().expect("events");
    assert_eq!(
        last.http_request_referrer.as_deref(),
        Some("http://www.example.org")
    );
    assert_eq!(last.user_agent_original.as_deref(), Some("TMUFE"));

    // and it is detected without --format
    let native: Vec<&str> = msgs[2..].iter().map(String::as_str).collect();
    let (_, s) = read_text("x", &native.join("\n"), None);
    assert_eq!(s.format, Some(Format::Squid));
}

#[test]
fn apache_combined_elastic() {
    let Some(p) = data("web-access-elastic-apache/apache_logs.part1") else {
        return;
    };
    let (ev, s) = read(&p, None);
    assert_eq!(s.format, Some(Format::Apache));
    assert_eq!(s.lines, 5_000);
    assert_eq!(ev.len() as u64 + s.skipped_total(), 5_000);
    assert!(ev.len() >= 4_990, "{s}");
    let e = &ev[0];
    assert_eq!(e.source_ip, "83.149.9.216".parse().ok());
    assert_eq!(e.timestamp_us, Some(1_431_857_103_000_000));
    assert_eq!(e.http_request_method.as_deref(), Some("GET"));
    assert_eq!(
        e.url_path.as_deref(),
        Some("/presentations/logstash-monitorama-2013/images/kibana-search.png")
    );
    assert_eq!(e.http_response_status_code, Some(200));
    assert_eq!(e.destination_bytes, Some(203_023));
    assert_eq!(
        e.http_request_referrer.as_deref(),
        Some("http://semicomplete.com/presentations/logstash-monitorama-2013/")
    );
    assert!(e
        .user_agent_original
        .as_deref()
        .is_some_and(|u| u.contains("Chrome/32.0.1700.77")));
    assert_eq!(e.event_dataset.as_deref(), Some("apache.access"));
    // every status is a real HTTP status
    assert!(ev.iter().all(|e| e
        .http_response_status_code
        .is_some_and(|s| (100..600).contains(&s))));
    let with_query = ev.iter().filter(|e| e.url_query.is_some()).count();
    assert!(with_query > 0);
}

#[test]
fn apache_secrepo_with_timezone() {
    let Some(p) = data("web-access-secrepo/access.log.2015-01-18") else {
        return;
    };
    let (ev, s) = read(&p, None);
    assert_eq!(s.format, Some(Format::Apache));
    assert_eq!(ev.len() as u64 + s.skipped_total(), s.lines);
    assert_eq!(ev.len(), 189, "{s}");
    // 02:31:50 -0800 is 10:31:50 UTC
    assert_eq!(ev[0].timestamp_us, Some(1_421_577_110_000_000));
    assert_eq!(ev[0].http_response_status_code, Some(301));
}

#[test]
fn netfilter_sekoia() {
    let Some(p) = data("log-format-fixtures-sekoia/firewall_netfilter_iptables.jsonl") else {
        return;
    };
    let msgs = sekoia_messages(&p);
    let (ev, s) = read_text("kern.log", &msgs.join("\n"), None);
    assert_eq!(s.format, Some(Format::Netfilter));
    assert_eq!(ev.len(), 5, "{s}");
    let e = &ev[0];
    assert_eq!(e.source_ip, "192.168.224.43".parse().ok());
    assert_eq!(e.destination_ip, "192.168.100.230".parse().ok());
    assert_eq!(e.source_port, Some(44606));
    assert_eq!(e.destination_port, Some(80));
    assert_eq!(e.network_transport.as_deref(), Some("tcp"));
    assert_eq!(e.network_connection_state.as_deref(), Some("accept"));
    assert_eq!(e.event_action.as_deref(), Some("DA->FEDERATEUR ACCEPT"));
    assert_eq!(e.source_bytes, Some(52));
    assert_eq!(ev[1].network_connection_state.as_deref(), Some("drop"));
    assert_eq!(
        ev[2].event_action.as_deref(),
        Some("INTERNET SPOOFING DROP")
    );
    assert_eq!(ev[2].source_bytes, Some(132), "first LEN, not the UDP one");
    let icmp = &ev[3];
    assert_eq!(icmp.network_transport.as_deref(), Some("icmp"));
    assert_eq!(icmp.source_port, None);

    // behind a syslog header with an RFC 3339 time
    let line = format!("2024-03-01T12:00:00Z fw1 kernel: [12345.678] {}", msgs[0]);
    let (ev, _) = read_text("kern.log", &line, Some(Format::Netfilter));
    assert_eq!(ev[0].timestamp_us, Some(1_709_294_400_000_000));
    assert_eq!(ev[0].event_action.as_deref(), Some("DA->FEDERATEUR ACCEPT"));
}

/// The UFW lines QA found losing data: a BSD syslog time (no year) before a
/// kernel uptime, and an RFC 3339 time with no uptime bracket.
const UFW: &str = "\
Jan 10 12:34:56 fw01 kernel: [123456.789012] [UFW ALLOW] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=10.0.0.5 DST=10.0.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54321 DF PROTO=TCP SPT=51514 DPT=22 WINDOW=29200 RES=0x00 SYN URGP=0
2024-01-10T12:34:57.123456+01:00 fw01 kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=203.0.113.9 DST=10.0.0.1 LEN=40 TOS=0x00 PREC=0x00 TTL=240 ID=1 PROTO=TCP SPT=40000 DPT=3389 WINDOW=1024 RES=0x00 SYN URGP=0
2024-01-10T12:34:58Z fw01 kernel: [UFW AUDIT] IN=eth0 OUT= SRC=10.0.0.7 DST=10.0.0.1 LEN=76 PROTO=UDP SPT=123 DPT=123 LEN=56
";

#[test]
fn netfilter_ufw_bsd_syslog_time() {
    use chrono::{Datelike, Timelike};
    let (ev, s) = read_text("ufw.log", UFW, None);
    assert_eq!(s.format, Some(Format::Netfilter));
    assert_eq!(ev.len(), 3, "{s}");
    assert!(s.flagged.is_empty() && s.skipped.is_empty(), "{s}");
    let t = ev[0].timestamp_us.expect("BSD syslog time parsed");
    let t = chrono::DateTime::from_timestamp_micros(t).unwrap();
    // the year is inferred: this year, or last year when Jan 10 is still ahead
    let now = chrono::Utc::now();
    assert!(t.year() == now.year() || t.year() == now.year() - 1, "{t}");
    assert!(t <= now + chrono::Duration::days(1), "{t}");
    assert_eq!((t.month(), t.day()), (1, 10));
    assert_eq!((t.hour(), t.minute(), t.second()), (12, 34, 56));
    assert_eq!(ev[0].event_action.as_deref(), Some("[UFW ALLOW]"));
    assert_eq!(ev[0].network_connection_state.as_deref(), Some("accept"));
    assert_eq!(ev[0].event_outcome.as_deref(), Some("success"));
    assert_eq!(ev[0].source_ip, "10.0.0.5".parse().ok());
    assert_eq!(ev[0].destination_port, Some(22));
    // a space-padded day and a syslog <PRI>
    let line = "<4>Jan  5 01:02:03 fw01 kernel: [   12.5] [UFW BLOCK] IN=eth0 OUT= SRC=10.0.0.7 DST=10.0.0.1 LEN=76 PROTO=UDP SPT=1 DPT=2";
    let (ev, s) = read_text("ufw.log", line, Some(Format::Netfilter));
    assert!(s.flagged.is_empty(), "{s}");
    let t = chrono::DateTime::from_timestamp_micros(ev[0].timestamp_us.unwrap()).unwrap();
    assert_eq!((t.month(), t.day(), t.hour(), t.second()), (1, 5, 1, 3));
    assert_eq!(ev[0].event_action.as_deref(), Some("[UFW BLOCK]"));
}

#[test]
fn netfilter_ufw_prefix_without_uptime_keeps_its_verdict() {
    let (ev, s) = read_text("ufw.log", UFW, None);
    assert_eq!(ev.len(), 3, "{s}");
    assert_eq!(ev[1].timestamp_us, Some(1_704_886_497_123_456));
    assert_eq!(ev[1].event_action.as_deref(), Some("[UFW BLOCK]"));
    assert_eq!(ev[1].network_connection_state.as_deref(), Some("block"));
    assert_eq!(ev[1].event_outcome.as_deref(), Some("failure"));
    assert_eq!(ev[2].event_action.as_deref(), Some("[UFW AUDIT]"));
    assert_eq!(ev[2].timestamp_us, Some(1_704_890_098_000_000));
    // the same verdict fields with and without an uptime bracket
    for v in ["ALLOW", "BLOCK", "AUDIT"] {
        let rest = format!(
            "[UFW {v}] IN=eth0 OUT= SRC=10.0.0.5 DST=10.0.0.1 LEN=60 PROTO=TCP SPT=1 DPT=22"
        );
        let with = format!("2024-01-10T12:34:57Z fw01 kernel: [123456.789012] {rest}");
        let without = format!("2024-01-10T12:34:57Z fw01 kernel: {rest}");
        let (a, _) = read_text("a.log", &with, Some(Format::Netfilter));
        let (b, _) = read_text("b.log", &without, Some(Format::Netfilter));
        assert_eq!(
            a[0].event_action.as_deref(),
            Some(format!("[UFW {v}]").as_str())
        );
        for (x, y) in [
            (&a[0].event_action, &b[0].event_action),
            (
                &a[0].network_connection_state,
                &b[0].network_connection_state,
            ),
            (&a[0].event_outcome, &b[0].event_outcome),
        ] {
            assert_eq!(x, y, "{v}");
        }
    }
}

#[test]
fn netfilter_bad_syslog_time_keeps_the_event_and_flags_it() {
    let text = "\
Feb 30 12:34:56 fw01 kernel: [1.5] [UFW BLOCK] IN=eth0 OUT= SRC=10.0.0.8 DST=10.0.0.1 LEN=40 PROTO=TCP SPT=1 DPT=2
2024-13-10T12:34:57Z fw01 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=10.0.0.8 DST=10.0.0.1 LEN=40 PROTO=TCP SPT=1 DPT=2
fw01 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=10.0.0.8 DST=10.0.0.1 LEN=40 PROTO=TCP SPT=1 DPT=2
2024-01-10T12:34:57Z fw01 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=10.0.0.8 DST=10.0.0.1 LEN=40 PROTO=TCP SPT=1 DPT=2
";
    let (ev, s) = read_text("ufw.log", text, Some(Format::Netfilter));
    assert_eq!(ev.len(), 4, "{s}");
    assert_eq!(s.events, 4);
    assert_eq!(s.skipped_total(), 0, "{s}");
    assert_eq!(s.flagged.get(&Reason::BadTimestamp), Some(&3), "{s}");
    assert_eq!(
        s.examples.iter().map(|r| r.line).collect::<Vec<_>>(),
        [1, 2, 3],
        "{s}"
    );
    for e in &ev[..3] {
        assert_eq!(e.timestamp_us, None);
        assert_eq!(e.network_connection_state.as_deref(), Some("block"));
        assert_eq!(e.source_ip, "10.0.0.8".parse().ok());
    }
    assert!(ev[3].timestamp_us.is_some());
    let shown = s.to_string();
    assert!(shown.contains("bad_timestamp"), "{shown}");
    assert!(shown.contains("Feb 30 12:34:56"), "{shown}");
    // bare lines (no syslog header) have no time to report
    let (_, s) = read_text(
        "k.log",
        "INPUT DROP IN=eth0 OUT= SRC=10.0.0.8 DST=10.0.0.1 LEN=40 PROTO=TCP SPT=1 DPT=2",
        Some(Format::Netfilter),
    );
    assert!(s.flagged.is_empty(), "{s}");
}

#[test]
fn w3c_iis_and_bluecoat() {
    // Layouts as IIS and Blue Coat ProxySG document them (no real W3C file is
    // in the shared data; see README "Not obtained").
    let iis = "#Software: Microsoft Internet Information Services 10.0\n\
#Version: 1.0\n\
#Date: 2024-01-02 03:04:05\n\
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\n\
2024-01-02 03:04:05 10.0.0.5 GET /owa/auth/logon.aspx replaceCurrent=1 443 - 203.0.113.9 Mozilla/5.0+(Windows+NT+10.0) - 200 0 0 31\n\
2024-01-02 03:04:06 10.0.0.5 POST /owa/auth.owa - 443 CORP\\alice 203.0.113.9 Mozilla/5.0+(Windows+NT+10.0) https://mail.example.com/ 302 0 0 15\n";
    let (ev, s) = read_text("u_ex240102.log", iis, None);
    assert_eq!(s.format, Some(Format::W3c));
    assert_eq!(ev.len(), 2, "{s}");
    let e = &ev[0];
    assert_eq!(e.timestamp_us, Some(1_704_164_645_000_000));
    assert_eq!(e.destination_ip, "10.0.0.5".parse().ok());
    assert_eq!(e.source_ip, "203.0.113.9".parse().ok());
    assert_eq!(e.url_path.as_deref(), Some("/owa/auth/logon.aspx"));
    assert_eq!(e.url_query.as_deref(), Some("replaceCurrent=1"));
    assert_eq!(e.destination_port, Some(443));
    assert_eq!(
        e.user_agent_original.as_deref(),
        Some("Mozilla/5.0 (Windows NT 10.0)")
    );
    assert_eq!(e.event_duration_ns, Some(31_000_000));
    assert_eq!(ev[1].user_name.as_deref(), Some("CORP\\alice"));
    assert_eq!(
        ev[1].http_request_referrer.as_deref(),
        Some("https://mail.example.com/")
    );

    let elff = "#Software: SGOS 6.7.4.1\n\
#Version: 1.0\n\
#Fields: date time time-taken c-ip sc-status s-action sc-bytes cs-bytes cs-method cs-uri-scheme cs-host cs-uri-port cs-uri-path cs-uri-query cs-username s-hierarchy s-supplier-name rs(Content-Type) cs(User-Agent) sc-filter-result cs-categories s-ip\n\
2024-01-02 10:00:00 120 198.51.100.7 200 TCP_NC_MISS 5120 430 GET http www.example.com 80 /index.html ?a=1 bob DIRECT www.example.com text/html \"Mozilla/5.0 (X11; Linux x86_64)\" OBSERVED \"News/Media\" 192.0.2.1\n";
    let (ev, s) = read_text("sg_main.log", elff, None);
    assert_eq!(ev.len(), 1, "{s}");
    let e = &ev[0];
    assert_eq!(
        e.url_full.as_deref(),
        Some("http://www.example.com/index.html?a=1")
    );
    assert_eq!(e.event_action.as_deref(), Some("TCP_NC_MISS"));
    assert_eq!(e.destination_bytes, Some(5120));
    assert_eq!(e.source_bytes, Some(430));
    assert_eq!(
        e.user_agent_original.as_deref(),
        Some("Mozilla/5.0 (X11; Linux x86_64)")
    );
    assert_eq!(e.http_response_mime_type.as_deref(), Some("text/html"));
    assert_eq!(e.user_name.as_deref(), Some("bob"));
}

#[test]
fn mapped_csv_firewall_uci() {
    let Some(p) = data("firewall-uci-internet/log2.part1.csv") else {
        return;
    };
    let mapping = Mapping::load(&fixture("firewall-uci.toml")).expect("mapping loads");
    let opts = IngestOptions {
        mapping: Some(mapping),
        ..Default::default()
    };
    let (ev, s) = palisade_ingest::read_path(&p, None, &opts).expect("read");
    assert_eq!(s.format, Some(Format::Mapped));
    assert_eq!(s.skipped_total(), 0, "{s}");
    assert_eq!(ev.len(), 32_766);
    // counts from the dataset's SOURCE.md
    let count = |a: &str| {
        ev.iter()
            .filter(|e| e.network_connection_state.as_deref() == Some(a))
            .count()
    };
    assert_eq!(count("allow"), 18_511);
    assert_eq!(count("deny"), 8_191);
    assert_eq!(count("drop"), 6_037);
    let e = &ev[0];
    // 57222,53,54587,53,allow,177,94,83,2,30,1,1
    assert_eq!(e.source_port, Some(57222));
    assert_eq!(e.destination_port, Some(53));
    assert_eq!(e.source_bytes, Some(94));
    assert_eq!(e.destination_bytes, Some(83));
    assert_eq!(e.event_duration_ns, Some(30_000_000_000));
    assert_eq!(e.source_packets, Some(1));
    assert_eq!(e.event_dataset.as_deref(), Some("firewall.uci"));
    assert_eq!(e.event_category.as_deref(), Some("network"));
}

/// A CSV row whose field count differs from its header's keeps its event
/// (every mapped column is there) but is flagged: its values may be
/// shifted. It was accepted without comment.
#[test]
fn mapped_csv_rows_with_other_field_counts_are_flagged() {
    let m = Mapping::from_toml_str(
        r#"
source = "csv"
dataset = "custom.fw"
[[fields]]
column = "src"
field = "source.ip"
type = "ip"
[[fields]]
column = "dport"
field = "destination.port"
type = "int"
"#,
        "inline",
    )
    .expect("mapping");
    let opts = IngestOptions {
        mapping: Some(m),
        ..Default::default()
    };
    let text = "src,dport,action\n10.0.0.1,22,allow\n10.0.0.2,23,deny,extra\n10.0.0.3,80\n";
    let (ev, s) = read_bytes("fw.csv", text.as_bytes(), Some(Format::Mapped), &opts).expect("read");
    assert_eq!(ev.len(), 3, "{s}");
    assert_eq!(s.skipped_total(), 0, "{s}");
    assert_eq!(s.flagged.get(&Reason::FieldCount), Some(&2), "{s}");
    let lines: Vec<u64> = s.examples.iter().map(|x| x.line).collect();
    assert_eq!(lines, vec![3, 4], "{s}");
    assert!(
        s.examples[0]
            .detail
            .contains("4 fields where the header has 3"),
        "{s}"
    );
    assert_eq!(ev[1].destination_port, Some(23));
}

#[test]
fn mapped_jsonl_with_nested_keys_and_time_format() {
    let m = Mapping::from_toml_str(
        r#"
source = "jsonl"
dataset = "custom.fw"
[[fields]]
column = "when"
field = "@timestamp"
type = "timestamp"
format = "%d/%m/%Y %H:%M:%S"
[[fields]]
column = "src.ip"
field = "source.ip"
type = "ip"
[[fields]]
column = "bytes"
field = "source.bytes"
type = "int"
"#,
        "inline",
    )
    .expect("valid mapping");
    let text = "{\"when\":\"02/01/2024 03:04:05\",\"src\":{\"ip\":\"10.1.1.1\"},\"bytes\":12}\n{\"when\":\"nope\",\"src\":{\"ip\":\"10.1.1.1\"}}\n";
    let opts = IngestOptions {
        mapping: Some(m),
        ..Default::default()
    };
    let (ev, s) = read_bytes("x.jsonl", text.as_bytes(), None, &opts).expect("read");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].timestamp_us, Some(1_704_164_645_000_000));
    assert_eq!(ev[0].source_ip, "10.1.1.1".parse().ok());
    assert_eq!(ev[0].source_bytes, Some(12));
    assert_eq!(s.skipped.get(&Reason::Mapping), Some(&1));
    assert!(s.examples[0].detail.contains("when"), "{:?}", s.examples);
}

#[test]
fn bad_mappings_are_rejected_with_the_field_named() {
    let e = Mapping::from_toml_str(
        "source = \"csv\"\n[[fields]]\ncolumn = \"a\"\nfield = \"no.such\"\n",
        "m.toml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("no.such"), "{e}");
    let e = Mapping::from_toml_str(
        "source = \"csv\"\n[[fields]]\ncolumn = \"a\"\nfield = \"source.ip\"\ntype = \"int\"\n",
        "m.toml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("source.ip"), "{e}");
    let e = Mapping::from_toml_str("source = \"xml\"\n", "m.toml").unwrap_err();
    assert!(e.to_string().contains("m.toml"), "{e}");
}
