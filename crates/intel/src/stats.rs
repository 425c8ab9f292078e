//! Feed statistics in the spirit of MLSec Project's tiq-test: size by kind,
//! share expired, overlap between feeds (Jaccard, containment), uniqueness,
//! novelty between two snapshots, and hit rate over events.
//!
//! Overlap compares normalised indicators exactly (`kind:value`); a CIDR is
//! not expanded into the addresses it covers.

use crate::feeds::FeedSet;
use crate::indicator::Kind;
use crate::label::match_event;
use crate::matcher::{MatchOptions, Matcher};
use ahash::{AHashMap, AHashSet};
use palisade_core::Event;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct FeedStats {
    pub name: String,
    pub path: String,
    pub total: usize,
    pub by_kind: BTreeMap<String, usize>,
    pub expired: usize,
    pub expired_share: f64,
    /// Indicators in no other loaded feed.
    pub unique: usize,
    pub unique_share: f64,
    pub malformed: usize,
    pub duplicates: usize,
    pub unsupported: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overlap {
    pub a: String,
    pub b: String,
    pub common: usize,
    /// |A∩B| / |A∪B|
    pub jaccard: f64,
    /// |A∩B| / |A|: how much of A is also in B.
    pub a_in_b: f64,
    /// |A∩B| / |B|
    pub b_in_a: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Novelty {
    pub previous: usize,
    pub current: usize,
    pub added: usize,
    pub removed: usize,
    pub kept: usize,
    /// added / current
    pub added_share: f64,
    /// removed / previous
    pub removed_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HitRate {
    pub feed: String,
    pub events: usize,
    pub hits: usize,
    pub rate: f64,
    /// Distinct indicators of the feed that matched at least one event.
    pub indicators_hit: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    pub as_of: Option<String>,
    pub feeds: Vec<FeedStats>,
    pub overlap: Vec<Overlap>,
    pub novelty: Option<Novelty>,
    pub hit_rates: Option<Vec<HitRate>>,
}

fn share(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

type Key<'a> = (Kind, &'a str);

fn feed_sets(set: &FeedSet) -> Vec<AHashSet<Key<'_>>> {
    let mut sets: Vec<AHashSet<Key>> = vec![AHashSet::new(); set.feeds.len()];
    for i in &set.indicators {
        if let Some(s) = sets.get_mut(usize::from(i.feed)) {
            s.insert((i.kind, i.value.as_str()));
        }
    }
    sets
}

/// Size, expiry, overlap and uniqueness of every loaded feed.
pub fn feed_stats(set: &FeedSet, as_of_us: i64) -> StatsReport {
    let sets = feed_sets(set);
    let mut count: AHashMap<Key, u32> = AHashMap::new();
    for s in &sets {
        for k in s {
            *count.entry(*k).or_default() += 1;
        }
    }
    let mut feeds = Vec::new();
    for (fi, f) in set.feeds.iter().enumerate() {
        let mut by_kind = BTreeMap::new();
        let mut expired = 0;
        let mut total = 0;
        for i in set.feed_indicators(fi) {
            total += 1;
            *by_kind.entry(i.kind.as_str().to_string()).or_insert(0) += 1;
            expired += usize::from(set.is_expired(i, as_of_us));
        }
        let unique = sets
            .get(fi)
            .map(|s| s.iter().filter(|k| count.get(*k) == Some(&1)).count())
            .unwrap_or(0);
        feeds.push(FeedStats {
            name: f.name.clone(),
            path: f.path.clone(),
            total,
            by_kind,
            expired,
            expired_share: share(expired, total),
            unique,
            unique_share: share(unique, total),
            malformed: f.report.malformed,
            duplicates: f.report.duplicates,
            unsupported: f.report.unsupported.clone(),
        });
    }
    let mut overlap = Vec::new();
    for a in 0..sets.len() {
        for b in a + 1..sets.len() {
            let (sa, sb) = (&sets[a], &sets[b]);
            let (small, big) = if sa.len() <= sb.len() {
                (sa, sb)
            } else {
                (sb, sa)
            };
            let common = small.iter().filter(|k| big.contains(*k)).count();
            let union = sa.len() + sb.len() - common;
            overlap.push(Overlap {
                a: set.feeds[a].name.clone(),
                b: set.feeds[b].name.clone(),
                common,
                jaccard: share(common, union),
                a_in_b: share(common, sa.len()),
                b_in_a: share(common, sb.len()),
            });
        }
    }
    StatsReport {
        as_of: palisade_core::event::format_timestamp_us(as_of_us),
        feeds,
        overlap,
        novelty: None,
        hit_rates: None,
    }
}

/// Added and removed indicators between a previous and a current snapshot (all feeds of each set together).
pub fn novelty(previous: &FeedSet, current: &FeedSet) -> Novelty {
    let p: AHashSet<Key> = previous
        .indicators
        .iter()
        .map(|i| (i.kind, i.value.as_str()))
        .collect();
    let c: AHashSet<Key> = current
        .indicators
        .iter()
        .map(|i| (i.kind, i.value.as_str()))
        .collect();
    let kept = c.iter().filter(|k| p.contains(*k)).count();
    let added = c.len() - kept;
    let removed = p.len() - kept;
    Novelty {
        previous: p.len(),
        current: c.len(),
        added,
        removed,
        kept,
        added_share: share(added, c.len()),
        removed_share: share(removed, p.len()),
    }
}

/// For each feed alone, the share of events it matches (by the same rules as labelling).
pub fn hit_rates(set: &FeedSet, events: &[Event], opts: &MatchOptions) -> Vec<HitRate> {
    (0..set.feeds.len())
        .map(|fi| {
            let sub = FeedSet {
                feeds: set.feeds.clone(),
                indicators: set
                    .indicators
                    .iter()
                    .filter(|i| usize::from(i.feed) == fi)
                    .cloned()
                    .collect(),
            };
            let m = Matcher::build(&sub, opts);
            let mut hits = 0;
            let mut seen = AHashSet::new();
            for e in events {
                if let Some((h, _)) = match_event(&m, e) {
                    hits += 1;
                    seen.insert(h.id);
                }
            }
            HitRate {
                feed: set.feeds[fi].name.clone(),
                events: events.len(),
                hits,
                rate: share(hits, events.len()),
                indicators_hit: seen.len(),
            }
        })
        .collect()
}
