//! The windowed entity engine: aggregations by hand, windows, config errors.

use palisade_core::{ColumnData, ColumnRole, Event, Table};
use palisade_features::*;
use std::net::IpAddr;

fn col(t: &Table, name: &str) -> Vec<f64> {
    match &t
        .column(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .data
    {
        ColumnData::F64(v) => v.clone(),
        ColumnData::Str(_) => panic!("{name} is text"),
    }
}

fn text(t: &Table, name: &str) -> Vec<String> {
    match &t.column(name).unwrap().data {
        ColumnData::Str(v) => v
            .iter()
            .map(|s| s.unwrap_or_default().to_string())
            .collect(),
        ColumnData::F64(_) => panic!(),
    }
}

const H: i64 = 3_600_000_000;

fn conn(t_h: f64, src: &str, dst: &str, port: u16, state: &str, up: Option<u64>) -> Event {
    Event {
        timestamp_us: Some((t_h * H as f64) as i64),
        source_ip: Some(src.parse::<IpAddr>().unwrap()),
        destination_ip: Some(dst.parse::<IpAddr>().unwrap()),
        destination_port: Some(port),
        network_connection_state: Some(state.into()),
        source_bytes: up,
        event_dataset: Some("zeek.conn".into()),
        ..Default::default()
    }
}

const CFG: &str = r#"
name = "t"
key = "source.ip"
window = "1h"

[[feature]]
name = "n"
agg = "count"
description = "all events"

[[feature]]
name = "n443"
agg = "count"
description = "events to 443"
when = [ { match = { "destination.port" = 443 } } ]

[[feature]]
name = "up_sum"
agg = "sum"
field = "source.bytes"
description = "bytes up"

[[feature]]
name = "up_min"
agg = "min"
field = "source.bytes"
description = "min bytes up"

[[feature]]
name = "up_max"
agg = "max"
field = "source.bytes"
description = "max bytes up"

[[feature]]
name = "up_mean"
agg = "mean"
field = "source.bytes"
description = "mean bytes up"

[[feature]]
name = "dst"
agg = "distinct"
field = "destination.ip"
description = "distinct destinations"

[[feature]]
name = "fail"
agg = "ratio"
description = "failed share"
numerator = [ { match = { "network.connection_state" = ["s0", "REJ"] } } ]

[[feature]]
name = "new"
agg = "new_peers"
field = "destination.ip"
description = "new destinations"

[[feature]]
name = "in_by_dst"
agg = "count"
description = "connections received, attributed to the destination"
when = [ { entity = "destination.ip", match = { "event.dataset" = "zeek.conn" } } ]
"#;

#[test]
fn aggregations_by_hand() {
    let cfg = EntityConfig::from_toml(CFG).unwrap();
    let ev = vec![
        conn(0.1, "10.0.0.1", "10.0.0.9", 443, "SF", Some(10)),
        conn(0.2, "10.0.0.1", "10.0.0.8", 80, "S0", Some(30)),
        conn(0.3, "10.0.0.1", "10.0.0.9", 443, "REJ", None),
        conn(1.5, "10.0.0.1", "10.0.0.9", 22, "SF", None), // second window
        conn(1.6, "10.0.0.1", "10.0.0.7", 22, "SF", None),
        Event {
            timestamp_us: None,
            ..conn(0.0, "10.0.0.1", "10.0.0.9", 1, "SF", None)
        },
    ];
    let (t, rep) = entity_features_with_report(&ev, &cfg).unwrap();
    assert_eq!(rep.without_timestamp, 1);
    assert_eq!(rep.events, 6);
    // rows sorted by entity text then window: 10.0.0.1 w0, w1, 10.0.0.7 w1, 10.0.0.8 w0, 10.0.0.9 w0, w1
    let ent = text(&t, "entity");
    assert_eq!(
        ent,
        vec!["10.0.0.1", "10.0.0.1", "10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.0.9"]
    );
    assert_eq!(text(&t, "window_start")[1], "1970-01-01T01:00:00.000000Z");
    assert_eq!(text(&t, "window_end")[1], "1970-01-01T02:00:00.000000Z");
    assert_eq!(col(&t, "n")[..2], [3.0, 2.0]);
    assert_eq!(col(&t, "n443")[..2], [2.0, 0.0]);
    assert_eq!(col(&t, "up_sum")[0], 40.0);
    assert!(
        col(&t, "up_sum")[1].is_nan(),
        "no byte counts: missing, not 0"
    );
    assert_eq!(col(&t, "up_min")[0], 10.0);
    assert_eq!(col(&t, "up_max")[0], 30.0);
    assert_eq!(col(&t, "up_mean")[0], 20.0);
    assert!(col(&t, "up_mean")[1].is_nan());
    assert_eq!(col(&t, "dst")[..2], [2.0, 2.0]);
    assert_eq!(
        col(&t, "fail")[0],
        2.0 / 3.0,
        "S0 matches s0 case-insensitively"
    );
    assert_eq!(col(&t, "fail")[1], 0.0);
    assert_eq!(
        col(&t, "new")[..2],
        [2.0, 1.0],
        "10.0.0.9 was seen in window 0; only .7 is new"
    );
    // destination-attributed rows exist and count; their own key-based counts are 0
    assert_eq!(col(&t, "in_by_dst")[4..], [2.0, 1.0]);
    assert_eq!(col(&t, "n")[4], 0.0);
    assert!(col(&t, "fail")[4].is_nan(), "no own connections: ratio 0/0");
    // schema: identity columns excluded from features
    let s = t.schema.as_ref().unwrap();
    assert_eq!(s.identity, vec!["entity", "window_start", "window_end"]);
    assert_eq!(s.features.len(), 10);
    assert_eq!(t.column("entity").unwrap().role, ColumnRole::Identity);
    s.validate().unwrap();
}

#[test]
fn sliding_windows_count_each_event_in_every_window_that_holds_it() {
    let mut cfg = EntityConfig::from_toml(CFG).unwrap();
    cfg.slide = Some("30m".into());
    let ev = vec![
        conn(0.1, "10.0.0.1", "10.0.0.9", 443, "SF", Some(1)),
        conn(0.7, "10.0.0.1", "10.0.0.9", 443, "SF", Some(1)),
    ];
    let t = entity_features(&ev, &cfg).unwrap();
    let rows: Vec<usize> = (0..t.nrows())
        .filter(|&i| text(&t, "entity")[i] == "10.0.0.1")
        .collect();
    // windows starting -30m, 0, 30m: event@6m in [-30m,30m) and [0,60m); event@42m in [0,60m) and [30m,90m)
    let n: Vec<f64> = rows.iter().map(|&i| col(&t, "n")[i]).collect();
    assert_eq!(n, vec![1.0, 2.0, 1.0]);
    assert_eq!(
        text(&t, "window_start")[rows[0]],
        "1969-12-31T23:30:00.000000Z"
    );
}

#[test]
fn window_override_and_parse() {
    assert_eq!(entity::parse_duration("1d"), Ok(86_400));
    assert_eq!(entity::parse_duration("15m"), Ok(900));
    assert_eq!(entity::parse_duration("90"), Ok(90));
    assert!(entity::parse_duration("0s").is_err());
    assert!(entity::parse_duration("soon").is_err());
    let ev = vec![
        conn(0.1, "10.0.0.1", "10.0.0.9", 443, "SF", None),
        conn(5.0, "10.0.0.1", "10.0.0.9", 443, "SF", None),
    ];
    let t = flow_features(&ev, 86_400).unwrap();
    assert_eq!(
        col(&t, "connections"),
        vec![2.0],
        "one source, one day: one row"
    );
    let t = flow_features(&ev, 3_600).unwrap();
    assert_eq!(col(&t, "connections")[..2], [1.0, 1.0]);
}

fn err_of(toml: &str) -> String {
    EntityConfig::from_toml(toml).unwrap_err().to_string()
}

#[test]
fn config_errors_name_the_key() {
    let head = "name = \"x\"\nkey = \"source.ip\"\n";
    let e = err_of(&format!(
        "{head}window = \"soon\"\n[[feature]]\nname=\"a\"\nagg=\"count\"\ndescription=\"d\"\n"
    ));
    assert!(e.contains("window"), "{e}");
    let e = err_of(&format!(
        "{head}[[feature]]\nname=\"a\"\nagg=\"median\"\ndescription=\"d\"\n"
    ));
    assert!(e.contains("agg") || e.contains("median"), "{e}");
    let e = err_of(&format!(
        "{head}[[feature]]\nname=\"a\"\nagg=\"sum\"\nfield=\"source.nope\"\ndescription=\"d\"\n"
    ));
    assert!(e.contains("feature[0]") && e.contains("source.nope"), "{e}");
    let e = err_of(&format!(
        "{head}[[feature]]\nname=\"a\"\nagg=\"sum\"\nfield=\"url.full\"\ndescription=\"d\"\n"
    ));
    assert!(e.contains("not numeric"), "{e}");
    let e = err_of(&format!(
        "{head}[[feature]]\nname=\"a\"\nagg=\"ratio\"\ndescription=\"d\"\n"
    ));
    assert!(e.contains("numerator"), "{e}");
    let e = err_of(&format!(
        "{head}[[feature]]\nname=\"a\"\nagg=\"count\"\ndescription=\"d\"\nwhen=[{{match={{\"destination.port\"=\"https\"}}}}]\n"
    ));
    assert!(
        e.contains("feature[0]")
            && e.contains("when[0]")
            && e.contains("destination.port")
            && e.contains("https"),
        "{e}"
    );
    let e = err_of(&format!(
        "{head}[[feature]]\nname=\"a\"\nagg=\"count\"\ndescription=\"\"\n"
    ));
    assert!(e.contains("description"), "{e}");
    let e = err_of(&format!("{head}[[feature]]\nname=\"a\"\nagg=\"count\"\ndescription=\"d\"\n[[feature]]\nname=\"a\"\nagg=\"count\"\ndescription=\"d\"\n"));
    assert!(e.contains("twice"), "{e}");
    let e = err_of(&format!(
        "{head}colour = 1\n[[feature]]\nname=\"a\"\nagg=\"count\"\ndescription=\"d\"\n"
    ));
    assert!(e.contains("colour"), "{e}");
    let e = err_of("name = \"x\"\nkey = \"no.such\"\n[[feature]]\nname=\"a\"\nagg=\"count\"\ndescription=\"d\"\n");
    assert!(e.contains("key") && e.contains("no.such"), "{e}");
    let e = err_of(&format!("{head}window = \"1w\"\nslide = \"1s\"\n[[feature]]\nname=\"a\"\nagg=\"count\"\ndescription=\"d\"\n"));
    assert!(e.contains("slide") && e.contains("1024"), "{e}");
    let e = err_of(&format!(
        "{head}slide = \"2d\"\n[[feature]]\nname=\"a\"\nagg=\"count\"\ndescription=\"d\"\n"
    ));
    assert!(e.contains("slide"), "{e}");
}

#[test]
fn once_per_counts_each_value_once_per_window() {
    let cfg = EntityConfig::from_toml(
        r#"
name = "t"
key = "source.ip"
window = "1h"

[[feature]]
name = "lines"
agg = "count"
description = "log lines"

[[feature]]
name = "sessions"
agg = "count"
once_per = "zeek.session_id"
description = "sessions: lines with a uid count once per uid"

[[feature]]
name = "in_sessions"
agg = "count"
once_per = "zeek.session_id"
description = "sessions received"
when = [ { entity = "destination.ip" } ]
"#,
    )
    .unwrap();
    let with_uid = |t_h: f64, uid: Option<&str>, dataset: &str| Event {
        session_id: uid.map(str::to_string),
        event_dataset: Some(dataset.into()),
        ..conn(t_h, "10.0.0.1", "10.0.0.9", 3389, "SF", None)
    };
    let ev = vec![
        // one session in conn.log and rdp.log
        with_uid(0.1, Some("CabC1"), "zeek.conn"),
        with_uid(0.1, Some("CabC1"), "zeek.rdp"),
        // another session, logged three times
        with_uid(0.2, Some("Cxyz2"), "zeek.conn"),
        with_uid(0.2, Some("Cxyz2"), "zeek.rdp"),
        with_uid(0.3, Some("Cxyz2"), "zeek.ntlm"),
        // no uid (a Windows event, say): each counts
        with_uid(0.4, None, "windows"),
        with_uid(0.5, None, "windows"),
        // the first uid again in the next window: counts there
        with_uid(1.1, Some("CabC1"), "zeek.rdp"),
    ];
    let t = entity_features(&ev, &cfg).unwrap();
    let src: Vec<usize> = (0..t.nrows())
        .filter(|&i| text(&t, "entity")[i] == "10.0.0.1")
        .collect();
    let dst: Vec<usize> = (0..t.nrows())
        .filter(|&i| text(&t, "entity")[i] == "10.0.0.9")
        .collect();
    let at =
        |name: &str, rows: &[usize]| rows.iter().map(|&i| col(&t, name)[i]).collect::<Vec<_>>();
    assert_eq!(at("lines", &src), vec![7.0, 1.0]);
    assert_eq!(at("sessions", &src), vec![4.0, 1.0]);
    assert_eq!(at("in_sessions", &dst), vec![4.0, 1.0]);
    // a config written when palisade named the uid `network.community_id`
    let legacy = EntityConfig::from_toml(
        "name = \"t\"\nkey = \"source.ip\"\n[[feature]]\nname = \"sessions\"\nagg = \"count\"\n\
         once_per = \"network.community_id\"\ndescription = \"d\"\n",
    )
    .unwrap();
    let t_legacy = entity_features(&ev, &legacy).unwrap();
    assert_eq!(col(&t_legacy, "sessions")[0], 4.0);
    // the catalog says the field is read
    let defs = cfg.defs();
    assert!(defs[1].reads.iter().any(|r| r == "zeek.session_id"));
    // only counts take it, and the field must exist
    let head = "name = \"x\"\nkey = \"source.ip\"\n";
    let e = err_of(&format!(
        "{head}[[feature]]\nname=\"a\"\nagg=\"distinct\"\nfield=\"destination.ip\"\nonce_per=\"zeek.session_id\"\ndescription=\"d\"\n"
    ));
    assert!(e.contains("feature[0]") && e.contains("once_per"), "{e}");
    let e = err_of(&format!(
        "{head}[[feature]]\nname=\"a\"\nagg=\"count\"\nonce_per=\"no.such\"\ndescription=\"d\"\n"
    ));
    assert!(e.contains("once_per") && e.contains("no.such"), "{e}");
}

/// Counts in one `exclusive` group hold each `once_per` value once between
/// them; the higher rank takes it over, whichever event comes first.
#[test]
fn exclusive_group_counts_each_value_once_by_rank() {
    let toml = |slide: &str| {
        format!(
            r#"
name = "t"
key = "source.ip"
window = "1h"
{slide}

[[feature]]
name = "ok"
agg = "count"
once_per = "zeek.session_id"
exclusive = "g"
description = "established, unless the application log says it failed"
when = [
  {{ match = {{ "event.dataset" = "zeek.conn", "network.connection_state" = "SF" }} }},
  {{ match = {{ "event.dataset" = "zeek.rdp", "event.outcome" = {{ not = ["failure"] }} }}, rank = 1 }},
]

[[feature]]
name = "failed"
agg = "count"
once_per = "zeek.session_id"
exclusive = "g"
description = "refused, or failed by the application log"
when = [
  {{ match = {{ "event.dataset" = "zeek.conn", "network.connection_state" = "REJ" }} }},
  {{ match = {{ "event.dataset" = "zeek.rdp", "event.outcome" = "failure" }}, rank = 1 }},
]

[[feature]]
name = "sessions"
agg = "count"
once_per = "zeek.session_id"
description = "the same sessions outside the group"
"#
        )
    };
    let ev =
        |t_h: f64, uid: Option<&str>, dataset: &str, state: &str, outcome: Option<&str>| Event {
            session_id: uid.map(str::to_string),
            event_dataset: Some(dataset.into()),
            event_outcome: outcome.map(str::to_string),
            ..conn(t_h, "10.0.0.1", "10.0.0.9", 3389, state, None)
        };
    let events = vec![
        // TCP established, login failed: failed, in either order
        ev(0.10, Some("A"), "zeek.conn", "SF", None),
        ev(0.11, Some("A"), "zeek.rdp", "", Some("failure")),
        ev(0.20, Some("B"), "zeek.rdp", "", Some("failure")),
        ev(0.21, Some("B"), "zeek.conn", "SF", None),
        // established and logged in: ok once
        ev(0.30, Some("C"), "zeek.conn", "SF", None),
        ev(0.31, Some("C"), "zeek.rdp", "", Some("success")),
        // conn.log alone
        ev(0.40, Some("D"), "zeek.conn", "SF", None),
        ev(0.41, Some("E"), "zeek.conn", "REJ", None),
        // equal ranks: the count listed first (ok) takes it
        ev(0.50, Some("F"), "zeek.conn", "REJ", None),
        ev(0.51, Some("F"), "zeek.conn", "SF", None),
        // no uid: each counts where it matches
        ev(0.60, None, "zeek.conn", "SF", None),
        ev(0.61, None, "zeek.rdp", "", Some("failure")),
        // A again, in the next window: counts there on its own
        ev(1.10, Some("A"), "zeek.conn", "SF", None),
    ];
    let cfg = EntityConfig::from_toml(&toml("")).unwrap();
    let t = entity_features(&events, &cfg).unwrap();
    // window 0: ok = C, D, F, (no uid) = 4; failed = A, B, E, (no uid) = 4
    assert_eq!(col(&t, "ok"), vec![4.0, 1.0]);
    assert_eq!(col(&t, "failed"), vec![4.0, 0.0]);
    // A..F once each, and the two without a uid
    assert_eq!(col(&t, "sessions"), vec![8.0, 1.0]);
    // the order of the events does not matter (reversed, and in batches
    // of one: the engine takes a feature at a time within a batch)
    let mut rev = events.clone();
    rev.reverse();
    let t = entity_features(&rev, &cfg).unwrap();
    assert_eq!(col(&t, "ok"), vec![4.0, 1.0]);
    assert_eq!(col(&t, "failed"), vec![4.0, 0.0]);
    for order in [&events, &rev] {
        let mut agg = EntityAggregator::new(&cfg).unwrap();
        for e in order.iter() {
            agg.push(std::slice::from_ref(e));
        }
        let (t, _) = agg.finish();
        assert_eq!(col(&t, "ok"), vec![4.0, 1.0]);
        assert_eq!(col(&t, "failed"), vec![4.0, 0.0]);
    }
    // sliding windows: each window decides on its own
    let cfg = EntityConfig::from_toml(&toml("slide = \"30m\"")).unwrap();
    let t = entity_features(&events, &cfg).unwrap();
    let starts = text(&t, "window_start");
    let at =
        |name: &str| -> Vec<(String, f64)> { starts.iter().cloned().zip(col(&t, name)).collect() };
    // windows start at −30m (A–E), 0 (all of the first hour, as above),
    // 30m (F, the two without a uid, A again: ok 3, failed 1) and 1h (A)
    let ok = at("ok");
    let failed = at("failed");
    assert_eq!(
        ok.iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![2.0, 4.0, 3.0, 1.0],
        "{ok:?}"
    );
    assert_eq!(
        failed.iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![3.0, 4.0, 1.0, 0.0],
        "{failed:?}"
    );

    // config errors: exclusive needs once_per; one group, one field; rank
    // only in a group
    let head = "name = \"x\"\nkey = \"source.ip\"\n";
    let e = err_of(&format!(
        "{head}[[feature]]\nname=\"a\"\nagg=\"count\"\nexclusive=\"g\"\ndescription=\"d\"\n"
    ));
    assert!(e.contains("feature[0]") && e.contains("exclusive"), "{e}");
    let e = err_of(&format!(
        "{head}[[feature]]\nname=\"a\"\nagg=\"count\"\nonce_per=\"zeek.session_id\"\nexclusive=\"g\"\ndescription=\"d\"\n\
         [[feature]]\nname=\"b\"\nagg=\"count\"\nonce_per=\"source.port\"\nexclusive=\"g\"\ndescription=\"d\"\n"
    ));
    assert!(
        e.contains("feature[1]") && e.contains("`a`") && e.contains("zeek.session_id"),
        "{e}"
    );
    let e = err_of(&format!(
        "{head}[[feature]]\nname=\"a\"\nagg=\"count\"\ndescription=\"d\"\nwhen = [ {{ rank = 1 }} ]\n"
    ));
    assert!(
        e.contains("feature[0]") && e.contains("when[0].rank"),
        "{e}"
    );
}

/// Zeek logs one RDP connection in conn.log and rdp.log: the host set
/// counts it once, as failed when rdp.log says so, in either order.
#[test]
fn host_set_counts_a_zeek_rdp_connection_once_by_rdp_verdict() {
    let line =
        |t_s: i64, uid: &str, dataset: &str, state: Option<&str>, outcome: Option<&str>| Event {
            timestamp_us: Some(t_s * 1_000_000),
            session_id: Some(uid.into()),
            event_dataset: Some(dataset.into()),
            network_connection_state: state.map(str::to_string),
            event_outcome: outcome.map(str::to_string),
            source_ip: "10.2.0.1".parse().ok(),
            destination_ip: "10.2.0.2".parse().ok(),
            destination_port: Some(3389),
            ..Default::default()
        };
    let ev = vec![
        // refused login over an established connection, rdp.log first
        line(10, "Cfail", "zeek.rdp", None, Some("failure")),
        line(11, "Cfail", "zeek.conn", Some("SF"), None),
        // a good one, conn.log first
        line(20, "Cgood", "zeek.conn", Some("SF"), None),
        line(21, "Cgood", "zeek.rdp", None, Some("success")),
        // rdp.log says `encrypted` (outcome unknown): the TCP state stands
        line(30, "Cenc", "zeek.conn", Some("SF"), None),
        line(31, "Cenc", "zeek.rdp", None, Some("unknown")),
    ];
    let t = host_features(&ev, 86_400).unwrap();
    let ent = text(&t, "entity");
    let row = |e: &str| ent.iter().position(|x| x == e).unwrap();
    let v = |n: &str, r: usize| col(&t, n)[r];
    let client = row("10.2.0.1");
    assert_eq!(v("RDPOutboundSuccessfulCount", client), 2.0);
    assert_eq!(v("RDPOutboundFailedCount", client), 1.0);
    // inbound counts every connection, once
    assert_eq!(v("RDPInboundCount", row("10.2.0.2")), 3.0);
}

/// A feature's alternatives past the 63rd (which the engine's per-pattern
/// plans mark with one bit and test event by event) count like the first
/// ones, in the same order and once per entity.
#[test]
fn a_feature_with_more_than_63_alternatives_counts_every_one() {
    let mut toml = String::from(
        "name = \"many\"\nkey = [\"host.name\"]\nwindow = \"1d\"\n[[feature]]\nname = \"n\"\nagg = \"count\"\ndescription = \"d\"\nwhen = [\n",
    );
    for k in 0..70 {
        // alternative 66 counts for the client; 68 does too, on port 1000
        let (entity, port) = match k {
            66 => ("source.ip", 1066),
            68 => ("source.ip", 1000),
            _ => ("destination.ip", 1000 + k),
        };
        toml.push_str(&format!(
            "  {{ entity = \"{entity}\", match = {{ \"destination.port\" = {port} }} }},\n"
        ));
    }
    toml.push_str("]\n");
    let cfg = EntityConfig::from_toml(&toml).unwrap();
    let at = |t_h: f64, port: u16| conn(t_h, "10.0.0.1", "10.0.0.2", port, "SF", None);
    let ev = vec![
        at(1.0, 1000), // alternatives 0 (server) and 68 (client)
        at(2.0, 1066), // 66: the client
        at(3.0, 1069), // 69: the server
        at(4.0, 1030), // 30: the server
        at(5.0, 2000), // none
        at(6.0, 1062), // 62, the last one with a bit of its own: the server
        at(7.0, 1063), // 63, the first one past them: the server
    ];
    let (t, rep) = entity_features_with_report(&ev, &cfg).unwrap();
    let ent = text(&t, "entity");
    let n = col(&t, "n");
    let of = |e: &str| n[ent.iter().position(|x| x == e).unwrap()];
    assert_eq!(of("10.0.0.1"), 2.0);
    assert_eq!(of("10.0.0.2"), 5.0);
    assert_eq!(rep.without_entity, 1);
    // pushed one event at a time: the same table
    let mut agg = EntityAggregator::new(&cfg).unwrap();
    for e in &ev {
        agg.push(std::slice::from_ref(e));
    }
    let (t1, _) = agg.finish();
    assert_eq!(col(&t1, "n"), n);
}

#[test]
fn builtin_sets_parse_and_have_the_documented_features() {
    let host = builtin_entity_set("host").unwrap();
    let names: Vec<String> = host.features.iter().map(|f| f.name.clone()).collect();
    for n in [
        "SuccessfulLogonRDPPortCount",
        "UnsuccessfulLogonRDPPortCount",
        "RDPOutboundSuccessfulCount",
        "RDPOutboundFailedCount",
        "RDPInboundCount",
        "UnsuccessfulLogonSQLPortCount",
        "SQLOutboundSuccessfulCount",
        "SQLOutboundFailedCount",
        "SQLInboundCount",
        "SuccessfulLogonTypeInteractiveCount",
        "SuccessfulLogonTypeNetworkCount",
        "SuccessfulLogonTypeUnlockCount",
        "SuccessfulLogonTypeRemoteInteractiveCount",
        "SuccessfulLogonTypeOtherCount",
        "UnsuccessfulLogonTypeInteractiveCount",
        "UnsuccessfulLogonTypeNetworkCount",
        "UnsuccessfulLogonTypeUnlockCount",
        "UnsuccessfulLogonTypeRemoteInteractiveCount",
        "UnsuccessfulLogonTypeOtherCount",
        "NtlmCount",
        "DistinctSourceIPCount",
        "DistinctDestinationIPCount",
    ] {
        assert!(names.iter().any(|x| x == n), "missing {n}");
    }
    assert_eq!(names.len(), 23);
    assert_eq!(host.window_secs().unwrap(), 86_400);
    assert!(builtin_entity_set("nope").is_err());
}

fn win(id: u32, host: &str, f: impl FnOnce(&mut Event)) -> Event {
    let mut e = Event {
        timestamp_us: Some(1_000_000),
        winlog_event_id: Some(id),
        host_name: Some(host.into()),
        ..Default::default()
    };
    f(&mut e);
    e
}

#[test]
fn host_set_by_hand() {
    let ev = vec![
        win(4624, "A", |e| e.winlog_logon_type = Some(10)),
        win(4624, "A", |e| {
            e.winlog_logon_type = Some(3);
            e.winlog_authentication_package = Some("NTLM".into());
            e.source_ip = "10.0.0.5".parse().ok();
        }),
        win(4624, "A", |e| e.winlog_logon_type = Some(5)),
        win(4624, "A", |_| {}), // type not recorded: Other
        win(4625, "A", |e| {
            e.winlog_logon_type = Some(3);
            e.destination_port = Some(1433);
            e.source_ip = "10.0.0.6".parse().ok();
        }),
        win(4776, "A", |_| {}),
        win(5156, "A", |e| {
            e.network_direction = Some("egress".into());
            e.destination_port = Some(3389);
            e.destination_ip = "10.0.0.7".parse().ok();
        }),
        win(5157, "A", |e| {
            e.network_direction = Some("egress".into());
            e.destination_port = Some(1433);
            e.destination_ip = "10.0.0.8".parse().ok();
        }),
        // WFP inbound: the host's side is `source`
        win(5156, "A", |e| {
            e.network_direction = Some("ingress".into());
            e.source_port = Some(3389);
            e.destination_ip = "10.0.0.9".parse().ok();
        }),
        // Zeek: attributed to addresses
        Event {
            timestamp_us: Some(2_000_000),
            event_dataset: Some("zeek.ntlm".into()),
            event_outcome: Some("failure".into()),
            source_ip: "10.1.0.1".parse().ok(),
            destination_ip: "10.1.0.2".parse().ok(),
            destination_port: Some(3389),
            ..Default::default()
        },
    ];
    let t = host_features(&ev, 86_400).unwrap();
    let ent = text(&t, "entity");
    let row = |e: &str| {
        ent.iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("no row {e}: {ent:?}"))
    };
    let a = row("A");
    let v = |n: &str, r: usize| col(&t, n)[r];
    assert_eq!(v("SuccessfulLogonRDPPortCount", a), 1.0);
    assert_eq!(v("SuccessfulLogonTypeRemoteInteractiveCount", a), 1.0);
    assert_eq!(v("SuccessfulLogonTypeNetworkCount", a), 1.0);
    assert_eq!(v("SuccessfulLogonTypeOtherCount", a), 2.0);
    assert_eq!(v("UnsuccessfulLogonTypeNetworkCount", a), 1.0);
    assert_eq!(v("UnsuccessfulLogonSQLPortCount", a), 1.0);
    assert_eq!(v("NtlmCount", a), 2.0);
    assert_eq!(v("RDPOutboundSuccessfulCount", a), 1.0);
    assert_eq!(v("SQLOutboundFailedCount", a), 1.0);
    assert_eq!(v("RDPInboundCount", a), 1.0);
    assert_eq!(v("RDPOutboundFailedCount", a), 0.0);
    assert_eq!(
        v("DistinctSourceIPCount", a),
        3.0,
        "10.0.0.5, 10.0.0.6 (logons), 10.0.0.9 (WFP inbound peer)"
    );
    assert_eq!(v("DistinctDestinationIPCount", a), 2.0);
    let z = row("10.1.0.2");
    assert_eq!(v("UnsuccessfulLogonRDPPortCount", z), 1.0);
    assert_eq!(v("UnsuccessfulLogonTypeNetworkCount", z), 1.0);
    assert_eq!(v("NtlmCount", z), 1.0);
    assert_eq!(v("DistinctSourceIPCount", z), 1.0);
    let c = row("10.1.0.1");
    assert_eq!(
        v("DistinctDestinationIPCount", c),
        1.0,
        "the NTLM client opened one connection"
    );
    assert_eq!(v("NtlmCount", c), 0.0, "NTLM is counted at the server");
}

#[test]
fn distinct_and_new_peer_counts_past_the_inline_set() {
    // One source, two 1-h windows: window 0 sees destinations .1–.20 (each
    // twice), window 1 sees .15–.40 (each three times). Distinct: 20 and 26;
    // new in window 1: .21–.40 = 20. Sets spill from inline storage to a
    // hash set past 8 values; a distinct and a new-peer count of one field
    // share a set, so the same features with a `when` (not shared) must agree.
    let mut ev = Vec::new();
    for rep in 0..2 {
        for d in 1..=20 {
            let t = 0.01 * (d as f64) + 0.3 * rep as f64;
            ev.push(conn(t, "10.0.0.1", &format!("10.9.0.{d}"), 443, "SF", None));
        }
    }
    for rep in 0..3 {
        for d in 15..=40 {
            let t = 1.0 + 0.01 * (d as f64) + 0.2 * rep as f64;
            ev.push(conn(t, "10.0.0.1", &format!("10.9.0.{d}"), 443, "SF", None));
        }
    }
    let feature = |name: &str, agg: &str, when: &str| {
        format!("[[feature]]\nname = \"{name}\"\nagg = \"{agg}\"\nfield = \"destination.ip\"\ndescription = \"d\"\n{when}\n")
    };
    let when = "when = [ { match = { \"event.dataset\" = \"zeek.conn\" } } ]";
    let toml = format!(
        "name = \"t\"\nkey = \"source.ip\"\nwindow = \"1h\"\n{}{}{}{}",
        feature("dst", "distinct", ""),
        feature("new", "new_peers", ""),
        feature("dst_when", "distinct", when),
        feature("new_when", "new_peers", when),
    );
    let cfg = EntityConfig::from_toml(&toml).unwrap();
    let t = entity_features(&ev, &cfg).unwrap();
    let src_rows = text(&t, "entity")
        .iter()
        .filter(|e| *e == "10.0.0.1")
        .count();
    assert_eq!(src_rows, 2);
    assert_eq!(col(&t, "dst")[..2], [20.0, 26.0]);
    assert_eq!(col(&t, "new")[..2], [20.0, 20.0]);
    assert_eq!(col(&t, "dst_when")[..2], [20.0, 26.0]);
    assert_eq!(col(&t, "new_when")[..2], [20.0, 20.0]);
}

/// An IP entity and a host name that print alike are two entities, in the
/// same place in the table whichever came first: IPs before names.
#[test]
fn entities_that_print_alike_keep_apart_in_a_fixed_order() {
    let cfg = EntityConfig::from_toml(
        r#"
name = "alike"
key = ["host.name", "source.ip"]
window = "1h"
[[feature]]
name = "port_sum"
agg = "sum"
field = "destination.port"
description = "sum of ports"
[[feature]]
name = "new_dst"
agg = "new_peers"
field = "destination.ip"
description = "new destinations"
"#,
    )
    .unwrap();
    let named = Event {
        host_name: Some("10.0.0.5".into()),
        ..conn(0.1, "10.0.0.1", "10.0.0.9", 1, "SF", None)
    };
    let by_ip = Event {
        source_ip: Some("10.0.0.5".parse().unwrap()),
        ..conn(0.2, "10.0.0.5", "10.0.0.9", 2, "SF", None)
    };
    let a = entity_features(&[named.clone(), by_ip.clone()], &cfg).unwrap();
    let b = entity_features(&[by_ip, named], &cfg).unwrap();
    for t in [&a, &b] {
        assert_eq!(text(t, "entity"), vec!["10.0.0.5", "10.0.0.5"]);
        // the IP's row first; each entity's first window sees its peer as new
        assert_eq!(col(t, "port_sum"), vec![2.0, 1.0]);
        assert_eq!(col(t, "new_dst"), vec![1.0, 1.0]);
    }
}

/// A match value too long to look up is refused with the feature, the
/// alternative and the field it is in.
#[test]
fn a_too_long_match_value_names_where_it_is() {
    let long = "x".repeat(129);
    let e = EntityConfig::from_toml(&format!(
        "name = \"x\"\nkey = \"source.ip\"\n[[feature]]\nname=\"a\"\nagg=\"count\"\ndescription=\"d\"\nwhen = [ {{ match = {{ \"event.dataset\" = \"{long}\" }} }} ]\n"
    ))
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("feature[0]")
            && e.contains("when[0]")
            && e.contains("event.dataset")
            && e.contains("longer than 128"),
        "{e}"
    );
    let ok = "x".repeat(128);
    assert!(EntityConfig::from_toml(&format!(
        "name = \"x\"\nkey = \"source.ip\"\n[[feature]]\nname=\"a\"\nagg=\"count\"\ndescription=\"d\"\nwhen = [ {{ match = {{ \"event.dataset\" = \"{ok}\" }} }} ]\n"
    ))
    .is_ok());
}

/// A xorshift64 stream from `seed` (nonzero): the random tests' inputs.
fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// A window start within a day of 1970-01-01 as the tables print it.
fn start_text(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let day = if secs < 0 { "1969-12-31" } else { "1970-01-01" };
    let s = secs.rem_euclid(86_400);
    format!(
        "{day}T{:02}:{:02}:{:02}.000000Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Sliding windows against a count written out by brute force, on events
/// out of time order (entities revisit old windows, so the engine's
/// per-entity memory of recent windows misses and its order of rows is not
/// window order) and with 4, 9 (not a power of two) and 72 windows per
/// event (more than the 64 remembered per entity).
#[test]
fn sliding_counts_match_brute_force_on_unordered_events() {
    use std::collections::BTreeMap;
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    // about 1.5 hours, 40 sources; a tenth of the events jump up to an hour back
    let mut ts: Vec<(i64, String)> = Vec::new();
    let mut t = 0i64;
    for _ in 0..3000 {
        t += (next() % 3_600_000) as i64;
        let back = if next().is_multiple_of(10) {
            (next() % H as u64) as i64
        } else {
            0
        };
        ts.push((t - back, format!("10.0.{}.{}", next() % 2, next() % 20)));
    }
    let events: Vec<Event> = ts
        .iter()
        .map(|(t, src)| Event {
            timestamp_us: Some(*t),
            source_ip: Some(src.parse::<IpAddr>().unwrap()),
            ..Default::default()
        })
        .collect();
    let count_only = "name = \"c\"\nkey = \"source.ip\"\nwindow = \"1h\"\n[[feature]]\nname = \"n\"\nagg = \"count\"\ndescription = \"events\"\n";
    for (slide, step_us) in [
        ("15m", 900_000_000i64),
        ("400s", 400_000_000),
        ("50s", 50_000_000),
    ] {
        let mut cfg = EntityConfig::from_toml(count_only).unwrap();
        cfg.slide = Some(slide.into());
        // brute force: every window k·step ≤ t < k·step + 1h, by (entity, k)
        let mut want: BTreeMap<(IpAddr, String), f64> = BTreeMap::new();
        for (t, src) in &ts {
            let ip: IpAddr = src.parse().unwrap();
            let mut k = t.div_euclid(step_us);
            while k * step_us + H > *t {
                *want.entry((ip, start_text(k * step_us))).or_default() += 1.0;
                k -= 1;
            }
        }
        let table = entity_features(&events, &cfg).unwrap();
        let (ents, starts, n) = (
            text(&table, "entity"),
            text(&table, "window_start"),
            col(&table, "n"),
        );
        let got: BTreeMap<(IpAddr, String), f64> = (0..table.nrows())
            .map(|i| ((ents[i].parse().unwrap(), starts[i].clone()), n[i]))
            .collect();
        assert_eq!(got.len(), table.nrows(), "{slide}: a row twice");
        assert_eq!(got, want, "{slide}");
        // rows come by entity name, then window start
        let keys: Vec<(&String, &String)> = ents.iter().zip(&starts).collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "{slide}: rows out of order"
        );
    }
}

/// Distinct counts no new-peer count shares, and counts `once_per`, keep
/// their values in one table for all rows (`counted` sets): against counts
/// written out by brute force, on sliding windows, with values counted for
/// the key entity and for another (`entity = destination.ip`), a second
/// distinct count of the same values, and a new-peer count of another field
/// beside them (its set keeps its values). Enough (row, value) pairs that
/// the table doubles several times.
#[test]
fn counted_distinct_and_once_per_match_brute_force() {
    use std::collections::{BTreeMap, BTreeSet};
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let events: Vec<Event> = (0..6000i64)
        .map(|i| Event {
            timestamp_us: Some(i * 1_500_000),
            source_ip: Some(IpAddr::from([10, 0, 0, (next() % 30) as u8])),
            destination_ip: Some(IpAddr::from([
                10,
                1,
                (next() % 2) as u8,
                (next() % 200) as u8,
            ])),
            destination_port: Some((next() % 50) as u16),
            session_id: (!next().is_multiple_of(8)).then(|| format!("C{}", next() % 900)),
            event_dataset: Some("zeek.conn".into()),
            ..Default::default()
        })
        .collect();
    let cfg = EntityConfig::from_toml(
        r#"
name = "t"
key = "source.ip"
window = "1h"
slide = "20m"
[[feature]]
name = "dst"
agg = "distinct"
field = "destination.ip"
description = "destinations"
[[feature]]
name = "dst_again"
agg = "distinct"
field = "destination.ip"
description = "the same"
[[feature]]
name = "peers"
agg = "distinct"
field = "source.ip"
description = "as destination: its sources; as source: none"
when = [ { entity = "destination.ip" } ]
[[feature]]
name = "sessions"
agg = "count"
once_per = "zeek.session_id"
description = "sessions, each once"
[[feature]]
name = "new_ports"
agg = "new_peers"
field = "destination.port"
description = "ports new to the source"
"#,
    )
    .unwrap();
    let table = entity_features(&events, &cfg).unwrap();
    let step = 1_200_000_000i64;
    // brute force: per (entity, window start) the destinations, sources, and sessions
    type Sets = (BTreeSet<IpAddr>, BTreeSet<IpAddr>, BTreeSet<String>, usize);
    let mut want: BTreeMap<(IpAddr, String), Sets> = BTreeMap::new();
    for e in &events {
        let t = e.timestamp_us.unwrap();
        let (src, dst) = (e.source_ip.unwrap(), e.destination_ip.unwrap());
        let mut k = t.div_euclid(step);
        while k * step + H > t {
            let s = want.entry((src, start_text(k * step))).or_default();
            s.0.insert(dst);
            match &e.session_id {
                Some(uid) => {
                    s.2.insert(uid.clone());
                }
                None => s.3 += 1,
            }
            want.entry((dst, start_text(k * step)))
                .or_default()
                .1
                .insert(src);
            k -= 1;
        }
    }
    let (ents, starts) = (text(&table, "entity"), text(&table, "window_start"));
    let (dst, again, peers, sessions) = (
        col(&table, "dst"),
        col(&table, "dst_again"),
        col(&table, "peers"),
        col(&table, "sessions"),
    );
    assert_eq!(table.nrows(), want.len());
    let mut checked = 0;
    for i in 0..table.nrows() {
        let s = &want[&(ents[i].parse().unwrap(), starts[i].clone())];
        let at = format!("{} {}", ents[i], starts[i]);
        assert_eq!(dst[i], s.0.len() as f64, "dst {at}");
        assert_eq!(again[i], s.0.len() as f64, "dst_again {at}");
        assert_eq!(peers[i], s.1.len() as f64, "peers {at}");
        assert_eq!(sessions[i], (s.2.len() + s.3) as f64, "sessions {at}");
        checked += (s.0.len() > 20 && s.1.is_empty()) as usize;
    }
    assert!(checked > 50, "too few large source rows: {checked}");
    // the new-peer count beside them: a source's first window has all its ports new
    let new_ports = col(&table, "new_ports");
    assert!(new_ports.iter().any(|&n| n > 10.0));
    // pushed in uneven chunks (the table of counted values is sized from
    // the input pushed so far): the same table
    let mut agg = EntityAggregator::new(&cfg).unwrap();
    let mut rest = &events[..];
    for n in [1, 7, 300, 2500] {
        let (chunk, tail) = rest.split_at(n);
        agg.push(chunk);
        rest = tail;
    }
    agg.push(rest);
    let (chunked, _) = agg.finish();
    for name in ["entity", "window_start"] {
        assert_eq!(text(&chunked, name), text(&table, name), "{name}");
    }
    for name in ["dst", "dst_again", "peers", "sessions", "new_ports"] {
        assert_eq!(col(&chunked, name), col(&table, name), "{name}");
    }
}

/// Alternatives that name entities of their own, against counts written
/// out by brute force: an event meeting one alternative (the engine's
/// short path), several that name different entities (it counts once for
/// each), several that name the same one (once), and the key entity
/// beside them; on IPv4 and IPv6 addresses (the engine keeps an event's
/// IPv4 entity fields from its first pass), absent fields, and events no
/// alternative attributes (the report counts them).
#[test]
fn alternatives_count_each_event_once_for_each_entity_they_name() {
    use std::collections::{BTreeMap, BTreeSet};
    let mut next = xorshift(0x5851_f42d_4c95_7f2d);
    let ip = |next: &mut dyn FnMut() -> u64| -> Option<IpAddr> {
        match next() % 5 {
            0 => None,
            1 => Some(format!("2001:db8::{}", next() % 6).parse().unwrap()),
            _ => Some(IpAddr::from([10, 0, 0, (next() % 12) as u8])),
        }
    };
    let events: Vec<Event> = (0..4000i64)
        .map(|i| Event {
            timestamp_us: Some(i * 2_700_000),
            source_ip: ip(&mut next),
            destination_ip: ip(&mut next),
            destination_port: [None, Some(22), Some(80)][(next() % 3) as usize],
            event_dataset: Some(["zeek.conn", "win", "other"][(next() % 3) as usize].into()),
            host_name: (!next().is_multiple_of(3)).then(|| format!("ws{}", next() % 4)),
            ..Default::default()
        })
        .collect();
    let cfg = EntityConfig::from_toml(
        r#"
name = "t"
key = "host.name"
window = "1h"
[[feature]]
name = "touches"
agg = "count"
description = "events, once per entity named"
when = [
  { entity = "source.ip", match = { "event.dataset" = "zeek.conn" } },
  { entity = "destination.ip", match = { "event.dataset" = "zeek.conn" } },
  { entity = "destination.ip", match = { "destination.port" = 22 } },
  { match = { "event.dataset" = "win" } },
]
[[feature]]
name = "ports"
agg = "distinct"
field = "destination.port"
description = "ports, per entity named"
when = [
  { entity = "source.ip", match = { "event.dataset" = "zeek.conn" } },
  { entity = "destination.ip", match = { "destination.port" = 22 } },
]
"#,
    )
    .unwrap();
    let (table, report) = entity_features_with_report(&events, &cfg).unwrap();
    // brute force, by (entity as printed, window start)
    let mut touches: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut ports: BTreeMap<(String, String), BTreeSet<u16>> = BTreeMap::new();
    let mut unattributed = 0;
    for e in &events {
        let w = start_text(e.timestamp_us.unwrap().div_euclid(H) * H);
        let conn = e.event_dataset.as_deref() == Some("zeek.conn");
        let ssh = e.destination_port == Some(22);
        let ip_name = |ip: Option<IpAddr>| ip.map(|ip| ip.to_string());
        let mut named: BTreeSet<String> = BTreeSet::new();
        let mut port_named: BTreeSet<String> = BTreeSet::new();
        if conn {
            named.extend(ip_name(e.source_ip));
            named.extend(ip_name(e.destination_ip));
            port_named.extend(ip_name(e.source_ip));
        }
        if ssh {
            named.extend(ip_name(e.destination_ip));
            port_named.extend(ip_name(e.destination_ip));
        }
        if e.event_dataset.as_deref() == Some("win") {
            named.extend(e.host_name.clone());
        }
        for n in &named {
            *touches.entry((n.clone(), w.clone())).or_default() += 1.0;
        }
        for n in &port_named {
            let s = ports.entry((n.clone(), w.clone())).or_default();
            s.extend(e.destination_port);
        }
        // a row is made for the key entity too, whatever the features
        if let Some(h) = &e.host_name {
            touches.entry((h.clone(), w.clone())).or_default();
        }
        unattributed +=
            (named.is_empty() && port_named.is_empty() && e.host_name.is_none()) as usize;
    }
    let (ents, starts) = (text(&table, "entity"), text(&table, "window_start"));
    let (got_touches, got_ports) = (col(&table, "touches"), col(&table, "ports"));
    assert_eq!(table.nrows(), touches.len(), "rows");
    for i in 0..table.nrows() {
        let key = (ents[i].clone(), starts[i].clone());
        let at = format!("{} {}", key.0, key.1);
        assert_eq!(Some(&got_touches[i]), touches.get(&key), "touches {at}");
        let want_ports = ports.get(&key).map_or(0, BTreeSet::len) as f64;
        assert_eq!(got_ports[i], want_ports, "ports {at}");
    }
    assert_eq!(report.without_entity, unattributed);
    // every kind of attribution occurred
    assert!(ents.iter().any(|e| e.contains(':')), "no IPv6 entity");
    assert!(ents.iter().any(|e| e.starts_with("ws")), "no key entity");
    assert!(got_ports.iter().any(|&n| n > 1.0));
}
