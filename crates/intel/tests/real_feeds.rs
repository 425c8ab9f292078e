//! Feed readers against the real staged feeds in ../shared/data/threat-intel-feeds.
//! Expected counts were verified independently (a Python classifier, grep/wc and
//! jq-style inspection of the JSON): see the comment at each assertion.

use palisade_intel::{FeedSet, FeedSpec, Kind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn feeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/threat-intel-feeds")
}

fn load(rel: &str) -> FeedSet {
    let p = feeds_dir().join(rel);
    FeedSet::load(&[FeedSpec::from_path(&p.to_string_lossy())], false).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn kinds(set: &FeedSet) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for i in &set.indicators {
        *m.entry(i.kind.as_str()).or_default() += 1;
    }
    m
}

#[test]
fn maltrail_counts_by_kind() {
    let set = load("maltrail/static");
    let k = kinds(&set);
    let r = &set.feeds[0].report;
    eprintln!("{k:?} {r:?}");
    // python3 classifier over all 1,602 trail files (comments stripped, `value;code` notes cut,
    // de-duplicated by kind+normalised value): 293,907 domains, 22,067 IPv4, 1,981 IPv6,
    // 1,092 CIDRs, 97,242 host:port; 22,243 regex / path-only trails; 152 malformed.
    assert_eq!(r.files, 1602);
    assert_eq!(k.get("domain"), Some(&293_907));
    assert_eq!(k.get("ipv4"), Some(&22_067));
    assert_eq!(k.get("ipv6"), Some(&1_981));
    assert_eq!(k.get("cidr"), Some(&1_092));
    assert_eq!(k.get("host-port"), Some(&97_242));
    assert_eq!(r.unsupported.values().sum::<usize>(), 22_243);
    assert_eq!(r.malformed, 152);
    // Malformed lines are reported with file and line.
    let m = &r.malformed_samples[0];
    assert!(m.file.ends_with(".txt") && m.line > 0, "{m:?}");
    // Category = place in the tree.
    let emotet = set.indicators.iter().find(|i| i.value == "dvr.petcp.com").expect("emotet trail");
    assert_eq!(emotet.category.as_deref(), Some("malware/emotet"));
}
