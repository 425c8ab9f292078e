//! Properties over arbitrary input: ratios in [0,1], streams within the
//! length, counts consistent, no panics on any bytes.

use palisade_core::{ColumnData, Event};
use palisade_features::request::N_URL;
use palisade_features::*;
use proptest::prelude::*;

fn check_lexical(s: &str, v: &[f64]) -> Result<(), TestCaseError> {
    let len = s.len() as f64;
    for (i, name) in [
        "digit_ratio",
        "lower_ratio",
        "upper_ratio",
        "vowel_change_ratio",
    ]
    .iter()
    .enumerate()
    {
        let x = v[[0, 1, 2, 3][i]];
        if s.is_empty() {
            prop_assert!(x.is_nan(), "{name} on empty");
        } else {
            prop_assert!((0.0..=1.0).contains(&x), "{name} = {x}");
        }
    }
    // streams (8..=12) are within the length, non-base64 too
    for &x in &v[8..=12] {
        prop_assert!(x >= 0.0 && x <= len);
    }
    prop_assert!(v[6] <= len);
    // lower + upper + digit ratios sum to at most 1
    if !s.is_empty() {
        prop_assert!(v[0] + v[1] + v[2] <= 1.0 + 1e-12);
        prop_assert!(v[13] >= 1.0 / len - 1e-12 && v[13] <= 1.0);
    }
    Ok(())
}

proptest! {
    #[test]
    fn url_features_bounded(s in ".{0,80}", b in proptest::collection::vec(any::<u8>(), 0..60)) {
        let mut fz = UrlFeaturizer::new();
        let mut out = [0.0; N_URL];
        let lossy = String::from_utf8_lossy(&b).into_owned();
        for input in [s.as_str(), lossy.as_str()] {
            fz.url_row(input, &mut out);
            check_lexical(input.split_once("://").map_or(input, |(a, r)| if a.bytes().all(|c| c.is_ascii_alphanumeric()) && !a.is_empty() && a.as_bytes()[0].is_ascii_alphabetic() { r } else { input }), &out)?;
            prop_assert!(out[N_URL - 5] >= 0.0 || out[N_URL - 5].is_nan()); // host entropy
        }
    }

    #[test]
    fn domain_features_bounded(s in "[a-zA-Z0-9.-]{0,40}") {
        let mut fz = DomainFeaturizer::new();
        let mut out = [0.0; domain::N_DOMAIN];
        fz.row(&s, &mut out);
        let name = s.strip_suffix('.').unwrap_or(&s);
        check_lexical(name, &out)?;
        let k = lexical::LEX_COUNT;
        prop_assert!(out[k + 2] <= out[k]); // longest label <= length
        if !name.is_empty() {
            prop_assert!(out[k + 4] + out[k + 5] <= 1.0 + 1e-12); // consonant + vowel ratios
            prop_assert!(out[k + 3] >= 0.0 && out[k + 3] <= 8.0); // entropy of bytes
        }
    }

    #[test]
    fn entity_counts_add_up(items in proptest::collection::vec((0u8..4, 0u8..6, 0u32..200, any::<bool>()), 0..60)) {
        let ev: Vec<Event> = items.iter().map(|(s, d, t, fail)| Event {
            timestamp_us: Some(*t as i64 * 60_000_000),
            source_ip: Some(std::net::IpAddr::from([10, 0, 0, *s])),
            destination_ip: Some(std::net::IpAddr::from([10, 0, 1, *d])),
            destination_port: Some(443),
            network_connection_state: Some(if *fail { "REJ" } else { "SF" }.into()),
            ..Default::default()
        }).collect();
        let t = flow_features(&ev, 3600).unwrap();
        let f = |n: &str| match &t.column(n).unwrap().data { ColumnData::F64(v) => v.clone(), _ => unreachable!() };
        let n = f("connections");
        prop_assert_eq!(n.iter().sum::<f64>(), ev.len() as f64);
        let fails = f("failed_share");
        let d = f("distinct_dst_ips");
        let new = f("new_dst_ips");
        for i in 0..t.nrows() {
            prop_assert!((0.0..=1.0).contains(&fails[i]));
            prop_assert!(d[i] >= 1.0 && d[i] <= n[i]);
            prop_assert!(new[i] <= d[i]);
        }
        let failed_total: f64 = fails.iter().zip(&n).map(|(r, c)| r * c).sum();
        prop_assert!((failed_total - items.iter().filter(|x| x.3).count() as f64).abs() < 1e-9);
    }
}
