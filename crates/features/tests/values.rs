//! Hand-computed values for every feature of the request, url and domain sets.

use palisade_core::{ColumnData, Event, Table};
use palisade_features::*;

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

/// Compare one row against (feature, expected) pairs; NaN must be NaN.
fn check(t: &Table, row: usize, expected: &[(&str, f64)]) {
    for (name, want) in expected {
        let got = col(t, name)[row];
        if want.is_nan() {
            assert!(got.is_nan(), "{name}: want NaN, got {got}");
        } else {
            assert!((got - want).abs() < 1e-12, "{name}: want {want}, got {got}");
        }
    }
}

/// Every feature of the set must be listed in a test case.
fn covers_all(cases: &[&[(&str, f64)]], defs: &[palisade_core::FeatureDef]) {
    for d in defs {
        assert!(
            cases.iter().any(|c| c.iter().any(|(n, _)| *n == d.name)),
            "no hand value for `{}`",
            d.name
        );
    }
}

const NAN: f64 = f64::NAN;

// "bcdAEx12345.iou/ZZ?k=v&k=v&": 27 bytes; digits 5; lower b c d x i o u k v k v = 11;
// upper A E Z Z = 4; vowel/consonant switches (d,A) (E,x) = 2; '&' 2, '=' 2; non-base64 . ? & & = 4;
// runs: consonant bcd 3, vowel iou 3, lower bcd/iou 3, upper AE/ZZ 2, digit 5; most frequent byte count 2.
const LEX_A: &[(&str, f64)] = &[
    ("digit_ratio", 5.0 / 27.0),
    ("lower_ratio", 11.0 / 27.0),
    ("upper_ratio", 4.0 / 27.0),
    ("vowel_change_ratio", 2.0 / 27.0),
    ("has_amp_eq_repetition", 1.0),
    ("starts_with_digit", 0.0),
    ("non_base64_count", 4.0),
    ("has_special", 0.0),
    ("max_consonant_stream", 3.0),
    ("max_vowel_stream", 3.0),
    ("max_lower_stream", 3.0),
    ("max_upper_stream", 2.0),
    ("max_digit_stream", 5.0),
    ("max_char_ratio", 2.0 / 27.0),
];

#[test]
fn url_set_hand_values() {
    let urls = [
        "http://bcdAEx12345.iou/ZZ?k=v&k=v&",
        "",
        "9.9.9.9/a b",
        "é",
        "https://a.b.Example.co.uk",
    ];
    let t = url_features_table(&urls);
    assert_eq!(t.nrows(), 5);
    let h3 = |c: &[f64]| {
        let n: f64 = c.iter().sum();
        -c.iter().map(|x| x / n * (x / n).log2()).sum::<f64>()
    };
    let extra_a: &[(&str, f64)] = &[
        ("path_slash_count", 1.0),
        ("query_slash_count", 0.0),
        ("sld_is_ip", 0.0),
        ("url_length", 27.0),
        ("path_depth", 1.0),
        ("host_entropy", 15f64.log2()), // 15 distinct bytes, once each
        ("path_entropy", h3(&[1.0, 2.0])), // "/ZZ"
        ("query_entropy", 2.0),         // k = v & twice each
        ("subdomain_count", 0.0),
        ("tld_class", 0.0), // "iou" is not in the public suffix list
    ];
    check(&t, 0, LEX_A);
    check(&t, 0, extra_a);
    // empty URL: ratios 0/0, counts 0, no host
    let empty: &[(&str, f64)] = &[
        ("digit_ratio", NAN),
        ("max_char_ratio", NAN),
        ("starts_with_digit", 0.0),
        ("non_base64_count", 0.0),
        ("url_length", 0.0),
        ("path_depth", 0.0),
        ("sld_is_ip", NAN),
        ("host_entropy", NAN),
        ("path_entropy", 0.0),
        ("subdomain_count", NAN),
        ("tld_class", NAN),
    ];
    check(&t, 1, empty);
    // IP host, space in path: special; starts with a digit; slash counts
    let ip: &[(&str, f64)] = &[
        ("starts_with_digit", 1.0),
        ("has_special", 1.0),
        ("sld_is_ip", 1.0),
        ("subdomain_count", NAN),
        ("tld_class", NAN),
        ("digit_ratio", 4.0 / 11.0),
        ("non_base64_count", 4.0), // . . . and the space
        ("max_digit_stream", 1.0),
        ("path_slash_count", 1.0),
        ("path_depth", 1.0),
    ];
    check(&t, 2, ip);
    // Unicode: "é" is 2 bytes, both non-ASCII: special, not base64, no letters
    let uni: &[(&str, f64)] = &[
        ("url_length", 2.0),
        ("has_special", 1.0),
        ("non_base64_count", 2.0),
        ("lower_ratio", 0.0),
        ("max_char_ratio", 0.5),
        ("tld_class", 0.0),
    ];
    check(&t, 3, uni);
    let cc: &[(&str, f64)] = &[
        ("subdomain_count", 2.0),
        ("tld_class", 2.0),
        ("url_length", 17.0),
        ("path_depth", 0.0),
    ];
    check(&t, 4, cc);
    covers_all(&[LEX_A, extra_a], &url_defs());
    // identity column carries the input, schema marks it
    let s = t.schema.as_ref().unwrap();
    assert_eq!(s.identity, vec!["url"]);
    assert!(s.index_of("url").is_none());
}

fn ev() -> Event {
    Event::default()
}

#[test]
fn request_set_hand_values() {
    // 0: full URL with every transaction field
    let mut a = ev();
    a.url_full = Some("http://bcdAEx12345.iou/ZZ?k=v&k=v&".into());
    a.event_duration_ns = Some(1_500_000_000);
    a.http_response_status_code = Some(200);
    a.source_bytes = Some(100);
    a.destination_bytes = Some(2000);
    a.source_port = Some(51000);
    a.destination_port = Some(80);
    a.user_agent_original = Some("Mozilla/5.0".into());
    a.http_response_mime_type = Some("text/html".into());
    a.http_request_referrer = Some("http://x/y/z".into());
    // 1: Squid CONNECT tunnel: only host:port visible
    let mut b = ev();
    b.http_request_method = Some("CONNECT".into());
    b.url_full = Some("mail.example.com:443".into());
    b.destination_port = Some(443);
    b.http_response_mime_type = Some("-".into());
    // 2: Zeek ssl: SNI only
    let mut c = ev();
    c.event_dataset = Some("zeek.ssl".into());
    c.tls_server_name = Some("api.Example.co.uk".into());
    // 3: Apache: path + query, no host, `-` user agent
    let mut d = ev();
    d.url_path = Some("/index.php".into());
    d.url_query = Some("id=1/2".into());
    d.http_response_status_code = Some(404);
    d.user_agent_original = Some("-".into());
    d.http_request_referrer = Some("-".into());
    // 4: nothing at all
    let e = ev();
    let t = request_features(&[a, b, c, d, e]);
    let txn_a: &[(&str, f64)] = &[
        ("duration_s", 1.5),
        ("http_status", 200.0),
        ("url_encrypted", 0.0),
        ("is_https", 0.0),
        ("bytes_up", 100.0),
        ("bytes_down", 2000.0),
        ("client_port", 51000.0),
        ("server_port", 80.0),
        ("user_agent_length", 11.0),
        ("mime_type_length", 9.0),
        ("path_slash_count", 1.0),
        ("query_slash_count", 0.0),
        ("referrer_slash_count", 4.0),
        ("sld_is_ip", 0.0),
        ("url_length", 27.0),
        ("path_depth", 1.0),
        ("host_entropy", 15f64.log2()),
        ("query_entropy", 2.0),
        ("subdomain_count", 0.0),
        ("tld_class", 0.0),
    ];
    let path_a: &[(&str, f64)] = &[("path_entropy", 0.918_295_834_054_489_6)];
    check(&t, 0, LEX_A);
    check(&t, 0, txn_a);
    check(&t, 0, path_a);
    let connect: &[(&str, f64)] = &[
        ("url_encrypted", 1.0),
        ("is_https", 1.0),
        ("server_port", 443.0),
        ("mime_type_length", NAN),
        ("duration_s", NAN),
        ("http_status", NAN),
        ("bytes_up", NAN),
        ("client_port", NAN),
        ("user_agent_length", NAN),
        ("path_slash_count", NAN),
        ("query_slash_count", NAN),
        ("path_depth", NAN),
        ("path_entropy", NAN),
        ("query_entropy", NAN),
        ("url_length", 20.0),
        ("digit_ratio", 3.0 / 20.0),
        ("subdomain_count", 1.0),
        ("tld_class", 1.0),
        ("sld_is_ip", 0.0),
    ];
    check(&t, 1, connect);
    let ssl: &[(&str, f64)] = &[
        ("url_encrypted", 1.0),
        ("is_https", 1.0),
        ("url_length", 17.0),
        ("upper_ratio", 1.0 / 17.0),
        ("subdomain_count", 1.0),
        ("tld_class", 2.0),
        ("path_depth", NAN),
        ("http_status", NAN),
        ("server_port", NAN),
    ];
    check(&t, 2, ssl);
    let apache: &[(&str, f64)] = &[
        ("url_length", 17.0), // "/index.php?id=1/2"
        ("url_encrypted", 0.0),
        ("is_https", NAN),
        ("http_status", 404.0),
        ("user_agent_length", NAN),
        ("referrer_slash_count", NAN),
        ("query_slash_count", 1.0),
        ("path_slash_count", 1.0),
        ("sld_is_ip", NAN),
        ("host_entropy", NAN),
    ];
    check(&t, 3, apache);
    let none: &[(&str, f64)] = &[
        ("digit_ratio", NAN),
        ("starts_with_digit", NAN),
        ("max_digit_stream", NAN),
        ("url_length", NAN),
        ("url_encrypted", NAN),
        ("is_https", NAN),
    ];
    check(&t, 4, none);
    covers_all(&[LEX_A, txn_a, path_a], &request_defs());
    assert_eq!(request_defs().len(), 35);
}

#[test]
fn domain_set_hand_values() {
    let names = ["www.Google.com.", "192.168.0.1", "", "xn--bcher-kva.online"];
    let t = domain_features_table(&names);
    // "www.Google.com": 14 bytes; consonants w w w G g l c m = 8; vowels o o e o = 4;
    // byte counts w3 o3 .2 and G g l e c m once.
    let n = 14f64;
    let ent = n.log2() - (2.0 * 3.0 * 3f64.log2() + 2.0 * 2f64.log2()) / n;
    let g: &[(&str, f64)] = &[
        ("name_length", 14.0),
        ("label_count", 3.0),
        ("longest_label", 6.0),
        ("name_entropy", ent),
        ("consonant_ratio", 8.0 / 14.0),
        ("vowel_ratio", 4.0 / 14.0),
        ("subdomain_count", 1.0),
        ("tld_class", 1.0),
        ("is_ip", 0.0),
        ("upper_ratio", 1.0 / 14.0),
        ("lower_ratio", 11.0 / 14.0),
        ("digit_ratio", 0.0),
        ("vowel_change_ratio", 5.0 / 14.0), // (G,o) (o,g) (l,e) (c,o) (o,m)
        ("has_amp_eq_repetition", 0.0),
        ("starts_with_digit", 0.0),
        ("non_base64_count", 2.0),
        ("has_special", 0.0),
        ("max_consonant_stream", 3.0),
        ("max_vowel_stream", 2.0),
        ("max_lower_stream", 5.0), // "oogle"
        ("max_upper_stream", 1.0),
        ("max_digit_stream", 0.0),
        ("max_char_ratio", 3.0 / 14.0),
    ];
    check(&t, 0, g);
    let ip: &[(&str, f64)] = &[
        ("is_ip", 1.0),
        ("subdomain_count", NAN),
        ("tld_class", NAN),
        ("label_count", 4.0),
        ("starts_with_digit", 1.0),
    ];
    check(&t, 1, ip);
    let empty: &[(&str, f64)] = &[
        ("is_ip", NAN),
        ("label_count", 0.0),
        ("name_entropy", 0.0),
        ("consonant_ratio", NAN),
        ("digit_ratio", NAN),
    ];
    check(&t, 2, empty);
    let puny: &[(&str, f64)] = &[
        ("tld_class", 3.0),
        ("label_count", 2.0),
        ("longest_label", 13.0),
        ("max_char_ratio", 3.0 / 20.0),
    ];
    check(&t, 3, puny);
    covers_all(&[g], &domain_defs());
}

#[test]
fn domain_from_events_prefers_dns_name() {
    let mut a = ev();
    a.dns_question_name = Some("abc.example.org".into());
    a.url_domain = Some("other.example.net".into());
    let b = ev();
    let t = domain_features(&[a, b]);
    assert_eq!(col(&t, "name_length")[0], 15.0);
    assert!(
        col(&t, "name_length")[1].is_nan(),
        "no name: missing, not zero"
    );
    match &t.column("domain").unwrap().data {
        ColumnData::Str(v) => assert_eq!(v.value(0), Some("abc.example.org")),
        _ => panic!(),
    }
}

#[test]
fn catalog_is_complete_and_valid() {
    let cat = catalog();
    for set in ["request", "url", "domain", "host", "flow"] {
        assert!(cat.iter().any(|d| d.set == set), "{set}");
    }
    assert_eq!(cat.iter().filter(|d| d.set == "host").count(), 23);
    for d in &cat {
        assert!(
            d.description.len() > 30,
            "{}: description too short",
            d.name
        );
        assert!(
            !d.reads.is_empty() || d.set == "flow",
            "{}: reads nothing",
            d.name
        );
        for r in &d.reads {
            assert!(
                palisade_core::EVENT_FIELDS.iter().any(|(n, _)| n == r),
                "{}: unknown field {r}",
                d.name
            );
        }
    }
}
