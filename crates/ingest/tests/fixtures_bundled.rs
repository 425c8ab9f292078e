//! Tests over the permissively licensed excerpts in tests/fixtures: these run
//! everywhere, with or without ../shared/data.

mod common;
use common::*;
use palisade_ingest::Format;

#[test]
fn bundled_apache_excerpt() {
    let (ev, s) = read(&fixture("apache_combined.log"), None);
    assert_eq!(s.format, Some(Format::Apache));
    assert_eq!((s.lines, s.events, s.skipped_total()), (40, 40, 0), "{s}");
    // line 1: 83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/... HTTP/1.1" 200 203023 ...
    assert_eq!(ev[0].source_ip, "83.149.9.216".parse().ok());
    assert_eq!(ev[0].destination_bytes, Some(203_023));
    assert_eq!(ev[0].log_line, Some(1));
    assert!(ev[0]
        .original
        .as_deref()
        .is_some_and(|o| o.starts_with("83.149.9.216 - - [17/May/2015:10:05:03 +0000]")));
    // every line of the excerpt is from 17/May/2015 10:05..10:20 UTC
    let (lo, hi) = (1_431_857_100_000_000, 1_431_858_000_000_000);
    assert!(ev
        .iter()
        .all(|e| e.timestamp_us.is_some_and(|t| (lo..hi).contains(&t))));
}

#[test]
fn bundled_otrf_excerpt() {
    let (ev, s) = read(&fixture("otrf_covenant_excerpt.jsonl"), None);
    assert_eq!(s.format, Some(Format::WindowsJson));
    assert_eq!((s.events, s.skipped_total()), (10, 0), "{s}");
    let ids: Vec<u32> = ev.iter().filter_map(|e| e.winlog_event_id).collect();
    assert_eq!(ids.iter().filter(|i| **i == 4624).count(), 2);
    assert_eq!(ids.iter().filter(|i| **i == 5156).count(), 3);
    for e in &ev {
        assert!(e.timestamp_us.is_some() && e.host_name.is_some(), "{e:?}");
        match e.winlog_event_id {
            Some(4624) => {
                assert!(
                    e.winlog_logon_type.is_some()
                        && e.winlog_authentication_package.is_some()
                        && e.user_name.is_some()
                );
                assert_eq!(e.event_outcome.as_deref(), Some("success"));
            }
            Some(5156) | Some(5157) => {
                assert!(
                    e.source_ip.is_some()
                        && e.destination_ip.is_some()
                        && e.destination_port.is_some()
                );
                assert!(e.network_direction.is_some() && e.network_transport.is_some());
            }
            Some(3) => {
                assert_eq!(e.event_dataset.as_deref(), Some("windows.sysmon"));
                assert!(e.source_ip.is_some() && e.destination_ip.is_some());
            }
            _ => {}
        }
    }
}
