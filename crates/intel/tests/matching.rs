//! Matching edge cases, labels with provenance, verdicts and entity windows.

use palisade_core::{ColumnData, ColumnRole, Event, Table};
use palisade_intel::matcher::AllowList;
use palisade_intel::{
    apply_group_labels, label_events, label_groups, label_table, FeedSet, FeedSpec, LabelOptions,
    MatchKind, MatchOptions, Matcher, Verdicts,
};
use std::net::IpAddr;

fn set_of(feeds: &[(&str, &str)]) -> FeedSet {
    let mut s = FeedSet::default();
    for (name, text) in feeds {
        let spec = FeedSpec {
            name: name.to_string(),
            path: format!("{name}.txt"),
            ..Default::default()
        };
        s.add_text(&spec, &format!("{name}.txt"), text, false)
            .unwrap();
    }
    s
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn matcher(set: &FeedSet) -> Matcher {
    Matcher::build(set, &MatchOptions::default())
}

#[test]
fn ip_exact_and_longest_prefix() {
    let set = set_of(&[(
        "nets",
        "8.0.0.0/8 # wide\n8.8.0.0/16\n8.8.8.0/24\n8.8.8.8\n9.9.9.0/24\n2001:4860::/32\n2001:4860:4860::8888\n",
    )]);
    let m = matcher(&set);
    let val = |h: Option<palisade_intel::Hit>| {
        h.map(|h| (set.indicators[h.id as usize].value.clone(), h.kind))
    };
    assert_eq!(
        val(m.match_ip(ip("8.8.8.8"))),
        Some(("8.8.8.8".into(), MatchKind::IpExact))
    );
    assert_eq!(
        val(m.match_ip(ip("8.8.8.9"))),
        Some(("8.8.8.0/24".into(), MatchKind::Cidr))
    );
    assert_eq!(
        val(m.match_ip(ip("8.8.9.1"))),
        Some(("8.8.0.0/16".into(), MatchKind::Cidr))
    );
    // After the nested /16 ends, the /8 owns the rest again.
    assert_eq!(
        val(m.match_ip(ip("8.9.0.0"))),
        Some(("8.0.0.0/8".into(), MatchKind::Cidr))
    );
    assert_eq!(
        val(m.match_ip(ip("8.255.255.255"))),
        Some(("8.0.0.0/8".into(), MatchKind::Cidr))
    );
    assert_eq!(m.match_ip(ip("9.0.0.0")), None);
    assert_eq!(m.match_ip(ip("7.255.255.255")), None);
    assert_eq!(
        val(m.match_ip(ip("9.9.9.255"))),
        Some(("9.9.9.0/24".into(), MatchKind::Cidr))
    );
    // IPv4-mapped IPv6 is the IPv4 address.
    assert_eq!(
        val(m.match_ip(ip("::ffff:8.8.8.8"))),
        Some(("8.8.8.8".into(), MatchKind::IpExact))
    );
    assert_eq!(
        val(m.match_ip(ip("::ffff:8.8.8.7"))),
        Some(("8.8.8.0/24".into(), MatchKind::Cidr))
    );
    // IPv6.
    assert_eq!(
        val(m.match_ip(ip("2001:4860:4860::8888"))),
        Some(("2001:4860:4860::8888".into(), MatchKind::IpExact))
    );
    assert_eq!(
        val(m.match_ip(ip("2001:4860:1::1"))),
        Some(("2001:4860::/32".into(), MatchKind::Cidr))
    );
    assert_eq!(m.match_ip(ip("2001:4861::1")), None);
}

#[test]
fn overlapping_networks_from_several_feeds() {
    let set = set_of(&[
        ("a", "1.0.0.0/8\n1.2.0.0/16\n"),
        ("b", "1.2.0.0/16\n1.2.3.0/24\n"),
        ("c", "1.2.3.4\n"),
    ]);
    let m = matcher(&set);
    let h = m.match_ip(ip("1.2.9.9")).unwrap();
    // The same /16 in two feeds: both are reported.
    let feeds: Vec<u16> = m
        .same_key(h.id)
        .map(|i| set.indicators[i as usize].feed)
        .collect();
    assert_eq!(feeds, vec![0, 1]);
    assert_eq!(
        set.indicators[m.match_ip(ip("1.2.3.5")).unwrap().id as usize].value,
        "1.2.3.0/24"
    );
    assert_eq!(m.match_ip(ip("1.2.3.4")).unwrap().kind, MatchKind::IpExact);
    assert_eq!(
        set.indicators[m.match_ip(ip("1.3.0.0")).unwrap().id as usize].value,
        "1.0.0.0/8"
    );
}

#[test]
fn reserved_ranges_excluded_unless_asked_and_allow_list_wins() {
    // FireHOL level 1 style: bogons next to real networks.
    let set = set_of(&[(
        "fh",
        "0.0.0.0/8\n10.0.0.0/8\n192.168.0.0/16\n224.0.0.0/3\n10.1.2.3\n5.5.0.0/16\nfe80::/10\n",
    )]);
    let m = matcher(&set);
    assert_eq!(m.report.excluded_reserved, 6);
    assert_eq!(m.match_ip(ip("10.1.2.3")), None);
    assert_eq!(m.match_ip(ip("192.168.1.1")), None);
    assert!(m.match_ip(ip("5.5.5.5")).is_some());
    let keep = Matcher::build(
        &set,
        &MatchOptions {
            include_reserved: true,
            ..Default::default()
        },
    );
    assert_eq!(
        keep.match_ip(ip("10.1.2.3")).unwrap().kind,
        MatchKind::IpExact
    );
    assert_eq!(keep.match_ip(ip("10.9.9.9")).unwrap().kind, MatchKind::Cidr);

    let set = set_of(&[(
        "f",
        "5.5.0.0/16\n5.6.7.8\nevil.com\ngood.org\nsub.good.org\n",
    )]);
    let allow = AllowList {
        domains: vec!["good.org".into()],
        cidrs: vec!["5.5.5.0/24".parse().unwrap(), "5.6.7.8/32".parse().unwrap()],
    };
    let m = Matcher::build(
        &set,
        &MatchOptions {
            allow,
            ..Default::default()
        },
    );
    assert_eq!(
        m.match_ip(ip("5.5.5.5")),
        None,
        "allow-listed address inside a feed network"
    );
    assert!(m.match_ip(ip("5.5.6.5")).is_some());
    assert_eq!(m.match_ip(ip("5.6.7.8")), None);
    assert_eq!(m.match_domain("x.sub.good.org"), None);
    assert!(m.match_domain("a.evil.com").is_some());
    assert_eq!(m.match_url("http://sub.good.org/x"), None);
    assert_eq!(m.report.excluded_allowed, 3); // 5.6.7.8, good.org, sub.good.org
}

#[test]
fn domains_parents_psl_idna_trailing_dots() {
    let set = set_of(&[("d", "evil.com\nco.uk\nbad.co.uk\nbücher.example\nxn--mnchen-3ya.de\nblogspot.com\nfoo.s3.amazonaws.com\n")]);
    let m = matcher(&set);
    let k = |d: &str| {
        m.match_domain(d)
            .map(|h| (set.indicators[h.id as usize].value.clone(), h.kind))
    };
    assert_eq!(
        k("evil.com"),
        Some(("evil.com".into(), MatchKind::DomainExact))
    );
    assert_eq!(
        k("a.b.EVIL.com."),
        Some(("evil.com".into(), MatchKind::DomainParent))
    );
    assert_eq!(k("notevil.com"), None);
    assert_eq!(k("evil.com.au"), None);
    // `co.uk` is a public suffix: it matches itself only, never every .co.uk site.
    assert_eq!(k("example.co.uk"), None);
    assert_eq!(k("www.example.co.uk"), None);
    assert_eq!(k("co.uk"), Some(("co.uk".into(), MatchKind::DomainExact)));
    assert_eq!(
        k("x.bad.co.uk"),
        Some(("bad.co.uk".into(), MatchKind::DomainParent))
    );
    // Private PSL section: blogspot.com is a suffix, so its blogs are separate sites.
    assert_eq!(k("someblog.blogspot.com"), None);
    // IDNA: Unicode and punycode forms meet.
    assert_eq!(
        k("xn--bcher-kva.example"),
        Some(("xn--bcher-kva.example".into(), MatchKind::DomainExact))
    );
    assert_eq!(
        k("www.BÜCHER.example."),
        Some(("xn--bcher-kva.example".into(), MatchKind::DomainParent))
    );
    assert_eq!(
        k("münchen.de"),
        Some(("xn--mnchen-3ya.de".into(), MatchKind::DomainExact))
    );
    assert_eq!(
        k("foo.s3.amazonaws.com"),
        Some(("foo.s3.amazonaws.com".into(), MatchKind::DomainExact))
    );
    assert_eq!(
        k("x.foo.s3.amazonaws.com"),
        Some(("foo.s3.amazonaws.com".into(), MatchKind::DomainParent))
    );
    assert_eq!(k(""), None);
    assert_eq!(k("."), None);
}

#[test]
fn urls_normalised_then_host_rules() {
    let set = set_of(&[(
        "u",
        "http://Phish.example/login.php?a=%41\nevil.com\n6.6.6.6\nsite.example/kit/\n",
    )]);
    let m = matcher(&set);
    let kind = |u: &str| m.match_url(u).map(|h| h.kind);
    assert_eq!(
        kind("HTTP://phish.EXAMPLE:80/login.php?a=A#frag"),
        Some(MatchKind::UrlExact)
    );
    assert_eq!(
        kind("https://phish.example/login.php?a=%41"),
        Some(MatchKind::UrlExact)
    );
    assert_eq!(kind("http://phish.example/other"), None);
    assert_eq!(
        kind("http://x.evil.com:8080/a"),
        Some(MatchKind::UrlHostDomain)
    );
    assert_eq!(kind("http://6.6.6.6/x"), Some(MatchKind::UrlHostIp));
    assert_eq!(kind("https://site.example/kit/"), Some(MatchKind::UrlExact));
    assert_eq!(kind("not a url"), None);
}

#[test]
fn host_port_and_values() {
    let set = set_of(&[("hp", "1.2.3.4:443\n[2001:db9::1]:53\nbzgh.jmeu.cc:9999\n")]);
    let m = matcher(&set);
    assert_eq!(
        m.match_host_port(ip("1.2.3.4"), 443).map(|h| h.kind),
        Some(MatchKind::HostPort)
    );
    assert_eq!(m.match_host_port(ip("1.2.3.4"), 80), None);
    assert_eq!(
        m.match_ip(ip("1.2.3.4")),
        None,
        "a host:port indicator needs the port"
    );
    assert!(m.match_host_port(ip("2001:db9::1"), 53).is_some());
    assert!(m.match_value("bzgh.jmeu.cc:9999").is_some());
    assert!(m.match_value("1.2.3.4:443").is_some());
}

fn ev(f: impl FnOnce(&mut Event)) -> Event {
    let mut e = Event::default();
    f(&mut e);
    e
}

#[test]
fn events_tables_verdicts_and_windows() {
    let set = set_of(&[
        ("mal", "evil.com # family x\n6.6.6.6\n"),
        ("other", "6.6.6.6\n"),
    ]);
    let m = matcher(&set);
    let events = vec![
        ev(|e| {
            e.source_ip = Some(ip("10.0.0.1"));
            e.dns_question_name = Some("c2.evil.com".into());
        }),
        ev(|e| {
            e.source_ip = Some(ip("10.0.0.1"));
            e.destination_ip = Some(ip("6.6.6.6"));
        }),
        ev(|e| {
            e.source_ip = Some(ip("10.0.0.2"));
            e.destination_ip = Some(ip("7.7.7.7"));
        }),
        ev(|e| {
            e.source_ip = Some(ip("10.0.0.3"));
            e.destination_ip = Some(ip("6.6.6.6"));
        }),
    ];
    let l = label_events(&events, &set, &m, None);
    assert!(l[0].malicious && l[1].malicious && !l[2].malicious && l[3].malicious);
    let p = l[0].provenance.as_ref().unwrap();
    assert_eq!(
        (
            p.field.as_str(),
            p.kind,
            p.indicator.as_str(),
            p.feed.as_str()
        ),
        (
            "dns.question.name",
            MatchKind::DomainParent,
            "evil.com",
            "mal"
        )
    );
    assert_eq!(l[1].provenance.as_ref().unwrap().feed, "mal;other");

    // Verdicts: 6.6.6.6 benign (overrides feeds), 7.7.7.7 malicious (no feed has it).
    let v = Verdicts::parse(
        "indicator,verdict,who,when,note\n6.6.6.6,benign,ana,2024-01-02T00:00:00Z,CDN\n7.7.7.7,malicious,bo,2024-01-03,IR case 12\n",
        "v.csv",
    )
    .unwrap();
    let l = label_events(&events, &set, &m, Some(&v));
    assert!(l[0].malicious && !l[1].malicious && l[2].malicious && !l[3].malicious);
    assert_eq!(l[2].provenance.as_ref().unwrap().kind, MatchKind::Verdict);
    assert_eq!(l[2].provenance.as_ref().unwrap().feed, "analyst:bo");
    let bad = Verdicts::parse("indicator,verdict\n1.2.3.4,maybe\n", "v.csv")
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("v.csv") && bad.contains("line 2") && bad.contains("maybe"),
        "{bad}"
    );

    // Host windows: positive if any event matched, with the count.
    let groups = label_groups(&events, &set, &m, None, |e| e.source_ip);
    assert_eq!(groups[&ip("10.0.0.1")].hits, 2);
    assert_eq!(groups[&ip("10.0.0.2")].hits, 0);
    let mut t = Table::new();
    t.push(
        "entity",
        ColumnRole::Identity,
        ColumnData::Str(vec![Some("10.0.0.1"), Some("10.0.0.2"), Some("10.0.0.9")].into()),
    )
    .unwrap();
    t.push(
        "n_events",
        ColumnRole::Feature,
        ColumnData::F64(vec![2.0, 1.0, 0.0]),
    )
    .unwrap();
    let pos = apply_group_labels(&mut t, &groups, |t, i| {
        t.column("entity")
            .and_then(|c| c.data.text(i).parse::<IpAddr>().ok())
    })
    .unwrap();
    assert_eq!(pos, 1);
    assert_eq!(
        t.column("label").unwrap().data,
        ColumnData::F64(vec![1.0, 0.0, 0.0])
    );
    assert_eq!(
        t.column("intel.event_hits").unwrap().data,
        ColumnData::F64(vec![2.0, 0.0, 0.0])
    );
    assert_eq!(t.column("entity").unwrap().role, ColumnRole::Identity);
    assert_eq!(t.column("label").unwrap().role, ColumnRole::Label);

    // A table of identity columns.
    let mut t = Table::new();
    t.push(
        "source.ip",
        ColumnRole::Identity,
        ColumnData::Str(vec![Some("10.0.0.1"), Some("10.0.0.1"), None].into()),
    )
    .unwrap();
    t.push(
        "url.full",
        ColumnRole::Identity,
        ColumnData::Str(vec![Some("http://www.evil.com/x"), None, None].into()),
    )
    .unwrap();
    t.push(
        "destination.ip",
        ColumnRole::Identity,
        ColumnData::Str(vec![None, Some("6.6.6.6"), Some("::ffff:6.6.6.6")].into()),
    )
    .unwrap();
    t.push(
        "bytes",
        ColumnRole::Feature,
        ColumnData::F64(vec![1.0, 2.0, 3.0]),
    )
    .unwrap();
    t.push(
        "@timestamp",
        ColumnRole::Identity,
        ColumnData::Str(vec![Some("2018-03-24T17:15:00Z"); 3].into()),
    )
    .unwrap();
    // times are identity columns, but never matched
    assert_eq!(
        palisade_intel::label::label_columns(&t, &LabelOptions::default()).unwrap(),
        vec!["url.full", "destination.ip", "source.ip"]
    );
    let s = label_table(&mut t, &set, &m, None, &LabelOptions::default()).unwrap();
    assert_eq!(s.positive, 3);
    assert_eq!(
        t.column("intel.matched_field").unwrap().data.text(0),
        "url.full"
    );
    assert_eq!(
        t.column("intel.match_kind").unwrap().data.text(0),
        "url_host_domain"
    );
    assert_eq!(t.column("intel.category").unwrap().data.text(0), "");
    assert_eq!(
        t.column("intel.matched_field").unwrap().data.text(2),
        "destination.ip"
    );
    assert_eq!(t.column("intel.feed").unwrap().role, ColumnRole::Meta);
    assert_eq!(
        t.column("destination.ip").unwrap().role,
        ColumnRole::Identity
    );
    assert_eq!(t.feature_schema().feature_names(), vec!["bytes"]);
}

#[test]
fn misp_composite_attributes() {
    // Shape of a MISP feed event (attribute types as MISP defines them).
    let ev = r#"{"Event": {"info": "C2 campaign", "Attribute": [
        {"type": "ip-dst", "value": "203.0.114.9", "uuid": "a1", "timestamp": "1600000000"},
        {"type": "domain|ip", "value": "evil.example|198.51.99.7", "uuid": "a2"},
        {"type": "ip-dst|port", "value": "192.0.3.1|8443", "uuid": "a3"},
        {"type": "hostname", "value": "c2.bad.example", "uuid": "a4"},
        {"type": "url", "value": "http://bad.example/gate.php", "uuid": "a5"},
        {"type": "domain|ip", "value": "only-domain.example", "uuid": "a6"},
        {"type": "md5", "value": "0749bae92ca336a02c83d126e04ec628", "uuid": "a7"}],
      "Object": [{"name": "domain-ip", "Attribute": [{"type": "ip-src", "value": "2001:db9::5", "uuid": "a8"}]}]}}"#;
    let mut set = FeedSet::default();
    let spec = FeedSpec {
        name: "misp".into(),
        path: "e.json".into(),
        ..Default::default()
    };
    set.add_text(&spec, "e.json", ev, false).unwrap();
    let got: Vec<(&str, &str)> = set
        .indicators
        .iter()
        .map(|i| (i.kind.as_str(), i.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("ipv4", "203.0.114.9"),
            ("domain", "evil.example"),
            ("ipv4", "198.51.99.7"),
            ("host-port", "192.0.3.1:8443"),
            ("domain", "c2.bad.example"),
            ("url", "bad.example/gate.php"),
            ("ipv6", "2001:db9::5"),
        ]
    );
    let r = &set.feeds[0].report;
    assert_eq!(r.malformed, 1, "domain|ip without the ip part");
    assert_eq!(r.malformed_samples[0].line, 7);
    assert_eq!(r.unsupported.get("misp attribute type md5"), Some(&1));
    assert_eq!(set.indicators[0].category.as_deref(), Some("C2 campaign"));
    assert_eq!(set.indicators[0].last_seen, Some(1_600_000_000_000_000));
    let m = matcher(&set);
    assert_eq!(
        m.match_host_port(ip("192.0.3.1"), 8443).map(|h| h.kind),
        Some(MatchKind::HostPort)
    );
    assert_eq!(
        m.match_domain("x.c2.bad.example").map(|h| h.kind),
        Some(MatchKind::DomainParent)
    );
}
