//! The windowed entity engine: group events by an entity key and a time
//! window (tumbling, or sliding with a step), and compute counts, sums,
//! min/max/mean, distinct counts, ratios and new-peer counts per
//! (entity, window), as a TOML file defines them.
//!
//! ```toml
//! name = "flow"
//! description = "per source IP"
//! key = ["source.ip"]          # first field present on an event is its entity
//! window = "1h"                # s, m, h, d, w, or plain seconds
//! slide = "15m"                # optional: sliding windows with this step
//!                              # (built from panes of one step when every
//!                              # feature is a count, ratio, min or max: see
//!                              # `pane_count`)
//!
//! [[feature]]
//! name = "failed_share"
//! agg = "ratio"                # count | sum | min | max | mean | distinct | ratio | new_peers
//! description = "Share of connections that failed."
//! numerator = [ { match = { "network.connection_state" = ["S0", "REJ"] } } ]
//! # when = [ { entity = "destination.ip", match = { "event.dataset" = "zeek.conn" } } ]
//! ```
//!
//! Matching: `when` is a list of alternatives (OR); each has `match`, a table of
//! field → value spec (AND), and an optional `entity` field that attributes
//! matching events to the entity named by that field instead of `key`. No
//! `when` means every event. A value spec is a string or integer (equal), a
//! list (any of), or a table with `not = [..]` (absent or none of),
//! `exists = true|false`, `min`/`max` (inclusive, integer fields). Strings
//! compare ASCII-case-insensitively. An event counts at most once per entity
//! per feature.
//!
//! `once_per = "FIELD"` (counts only) counts the events that carry FIELD once
//! per distinct value of it in an (entity, window); events without it count
//! one each. Zeek writes one line per connection in conn.log and another in
//! rdp.log, ntlm.log, …, all with the connection's `uid`
//! (`zeek.session_id` here), so `once_per = "zeek.session_id"`
//! counts connections, not log lines, whichever logs are fed.
//!
//! `exclusive = "GROUP"` (counts `once_per` only) makes the counts that name
//! the same group, and the same `once_per` field, count each value at most
//! once between them in an (entity, window): the value goes to the count
//! whose alternative of highest `rank` (an integer 0–255 on a `when`
//! alternative, default 0) met one of its events; among equal ranks, to
//! the count listed first (so the order of the events does not matter).
//! Why: one RDP connection is logged in Zeek's conn.log as established
//! (`SF`) and in rdp.log as failed when the login failed; the host set's
//! successful and failed RDP counts form a group in which rdp.log's
//! verdict (rank 1) outranks the TCP state (rank 0), so the connection
//! counts as failed, whichever line comes first.
//!
//! Rows: one per (entity, window) that at least one event was attributed to,
//! by `key` or by a feature's `entity`. Counts in a row are counts of observed
//! events (0 means none was seen for that entity in that window); sums and
//! min/max/mean are NaN when no matching event had the field; ratios are NaN
//! when the denominator is 0. Events without `@timestamp` are skipped and
//! counted in the [`EntityReport`].

use crate::access::{accessor, Accessor, Typed};
use crate::prefetch::{
    prefetch_bytes, prefetch_event, prefetch_event_text, prefetch_line, prefetch_offsets,
    text_prefetch_mask,
};
use crate::table_util::{ts_text, IdCols};
use crate::FeatureError;
use ahash::{AHashMap, AHashSet};
use palisade_core::{
    ColumnRole, Event, FeatureDef, FeatureType, FieldType, FieldValue, Table, EVENT_FIELDS,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::hash::Hash;
use std::net::IpAddr;

/// A feature-set definition as written in TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityConfig {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Entity key fields; the first present on an event is its entity.
    pub key: OneOrMany,
    /// Window length (`1d`, `12h`, `30m`, `45s`, `1w`, or seconds).
    #[serde(default = "default_window")]
    pub window: String,
    /// Step of sliding windows; absent = tumbling.
    #[serde(default)]
    pub slide: Option<String>,
    #[serde(rename = "feature")]
    pub features: Vec<FeatureSpec>,
}

fn default_window() -> String {
    "1d".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    Count,
    Sum,
    Min,
    Max,
    Mean,
    Distinct,
    Ratio,
    NewPeers,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    pub name: String,
    pub agg: Agg,
    pub description: String,
    /// The field summed / compared / counted distinct (not for count, ratio).
    #[serde(default)]
    pub field: Option<String>,
    /// Multiply numeric values by this (e.g. 1e-9 for ns → s).
    #[serde(default)]
    pub scale: Option<f64>,
    #[serde(default)]
    pub when: Vec<When>,
    /// For `ratio`: which of the matching events count in the numerator.
    #[serde(default)]
    pub numerator: Vec<When>,
    /// For `count`: count the events that carry this field once per distinct
    /// value in an (entity, window) (see the module docs).
    #[serde(default)]
    pub once_per: Option<String>,
    /// For a count `once_per`: the counts that name the same group count
    /// each value at most once between them in an (entity, window); the
    /// highest `rank` of the alternatives that saw it says which (see the
    /// module docs).
    #[serde(default)]
    pub exclusive: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default)]
    pub entity: Option<String>,
    /// Overrides the feature's `field` for events matching this alternative.
    #[serde(default)]
    pub field: Option<String>,
    #[serde(rename = "match", default)]
    pub matches: BTreeMap<String, ValueSpec>,
    /// In an `exclusive` group: how much this alternative's word on a value
    /// counts against the others' (default 0).
    #[serde(default)]
    pub rank: Option<u8>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ValueSpec {
    Int(i64),
    Str(String),
    List(Vec<Scalar>),
    Op(OpSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Str(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpSpec {
    #[serde(default)]
    pub not: Option<Vec<Scalar>>,
    #[serde(default)]
    pub exists: Option<bool>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
}

impl EntityConfig {
    /// Parse TOML; errors name the key at fault.
    pub fn from_toml(text: &str) -> Result<Self, FeatureError> {
        let cfg: EntityConfig =
            toml::from_str(text).map_err(|e| FeatureError::Config(e.to_string()))?;
        cfg.compile()?;
        Ok(cfg)
    }

    /// Feature definitions of this set (for the catalog and the table schema).
    pub fn defs(&self) -> Vec<FeatureDef> {
        self.features
            .iter()
            .map(|f| {
                let mut reads: Vec<String> = Vec::new();
                let mut add = |s: &str| {
                    if !reads.iter().any(|r| r == s) {
                        reads.push(s.to_string());
                    }
                };
                if let Some(fl) = &f.field {
                    add(fl);
                }
                if let Some(fl) = &f.once_per {
                    add(fl);
                }
                for w in f.when.iter().chain(&f.numerator) {
                    if let Some(fl) = &w.field {
                        add(fl);
                    }
                    if let Some(e) = &w.entity {
                        add(e);
                    }
                    for k in w.matches.keys() {
                        add(k);
                    }
                }
                let dtype = match f.agg {
                    Agg::Count | Agg::Distinct | Agg::NewPeers => FeatureType::Int,
                    _ => FeatureType::Float,
                };
                FeatureDef {
                    name: f.name.clone(),
                    dtype,
                    description: f.description.clone(),
                    set: self.name.clone(),
                    reads,
                }
            })
            .collect()
    }

    /// Window length in seconds.
    pub fn window_secs(&self) -> Result<i64, FeatureError> {
        parse_duration(&self.window).map_err(|m| FeatureError::Config(format!("key `window`: {m}")))
    }

    fn compile(&self) -> Result<Compiled, FeatureError> {
        compile(self)
    }
}

/// `1d`, `12h`, `30m`, `45s`, `2w` or plain seconds → seconds (> 0).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 'h')) => (&t[..i], 3600),
        Some((i, 'd')) => (&t[..i], 86_400),
        Some((i, 'w')) => (&t[..i], 604_800),
        _ => (t, 1),
    };
    let n: i64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 1d, 12h, 30m, 45s"))?;
    match n.checked_mul(mult) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(format!("`{s}` must be a positive duration")),
    }
}

// ---------------------------------------------------------------- compiled

#[derive(Debug, Clone, PartialEq)]
enum Test {
    AnyStr(Vec<String>),
    AnyInt(Vec<i64>),
    AnyIp(Vec<IpAddr>),
    NotStr(Vec<String>),
    NotInt(Vec<i64>),
    NotIp(Vec<IpAddr>),
    Exists(bool),
    Range(Option<i64>, Option<i64>),
}

struct Cond {
    field: String,
    get: Accessor,
    test: Test,
}

impl Test {
    /// One test on its own: the reference that [`FieldConds`] must agree with.
    #[cfg(test)]
    fn eval(&self, v: Option<FieldValue<'_>>) -> bool {
        match (self, v) {
            (Test::Exists(want), v) => v.is_some() == *want,
            (Test::AnyStr(l), Some(FieldValue::Str(s))) => {
                l.iter().any(|x| x.eq_ignore_ascii_case(s))
            }
            (Test::AnyInt(l), Some(FieldValue::Int(i))) => l.contains(&i),
            (Test::AnyIp(l), Some(FieldValue::Ip(i))) => l.contains(&i),
            (Test::NotStr(l), Some(FieldValue::Str(s))) => {
                !l.iter().any(|x| x.eq_ignore_ascii_case(s))
            }
            (Test::NotInt(l), Some(FieldValue::Int(i))) => !l.contains(&i),
            (Test::NotIp(l), Some(FieldValue::Ip(i))) => !l.contains(&i),
            (Test::NotStr(_) | Test::NotInt(_) | Test::NotIp(_), None) => true,
            (Test::Range(lo, hi), Some(FieldValue::Int(i))) => {
                lo.is_none_or(|l| i >= l) && hi.is_none_or(|h| i <= h)
            }
            _ => false,
        }
    }
}

struct Alt {
    mask: u128,
    /// Rank in an `exclusive` group (0 outside one).
    rank: u8,
    /// Field accessor override for this alternative.
    field: Option<Accessor>,
    /// Entity accessor override (index into `Compiled::entity_getters`).
    entity: Option<usize>,
}

struct CFeature {
    agg: Agg,
    field: Option<Accessor>,
    scale: f64,
    alts: Vec<Alt>,
    /// The alternatives' masks, side by side (the test of every feature on
    /// every event reads only these).
    masks: Vec<u128>,
    /// One alternative has no condition (a feature without `when`): every
    /// event meets it. Why apart: the test of `masks` was ~8 instructions
    /// an event and feature, and the flow set has no `when` at all.
    always: bool,
    num: Vec<u128>,
    /// First accumulator slot of this feature in a row.
    slot: usize,
    /// Index of its distinct set in a row (distinct, new_peers, and count
    /// with `once_per`).
    set: usize,
    /// `once_per`: the field whose values are counted once.
    once_per: Option<Accessor>,
    /// In an `exclusive` group (`set` is then the group's): its values are
    /// held in [`Rows::held`], each by one of the group's counts.
    exclusive: bool,
    /// No alternative names an `entity` or a `field`: the event's rows are
    /// its key entity's.
    by_key: bool,
    /// Its set is filled by an earlier feature with the same field and
    /// `when` (a distinct count and a new-peer count of one field: the flow
    /// set's destination IPs), so the event loop passes it by.
    shares_set: bool,
    /// No new-peer count reads its set's values back (a distinct count of
    /// its own, or a count `once_per`): only whether each (row, value) is
    /// new matters, so its values go to the rows' one [`Rows::seen`] table
    /// (`set` then only keeps them apart from other sets' there) and its
    /// count to `slot`.
    counted: bool,
}

/// The conditions on one field, compiled so that one read and one lookup
/// of the event's value answer all of them. Why: the host set tests
/// `winlog.event_id` against 14 lists and `event.dataset` against 8, the
/// flow set a port against a list of 33; testing each list in turn was
/// ~300 of the flow set's ~2,700 instructions per event (callgrind).
///
/// An event's bits for the field are: `absent` without a value; with one,
/// `present`, plus the `set` and minus the `clear` bits its value has in the
/// table, plus the ranges it falls in. `present` holds the `exists = true`
/// and `not` tests (true unless the value is listed: those are its `clear`
/// bits); the listed values' `set` bits are the any-of tests naming them.
#[derive(Default)]
struct FieldConds {
    get: Option<Accessor>,
    absent: u128,
    present: u128,
    ints: AHashMap<i64, (u128, u128)>,
    /// Keys are ASCII-lower-cased (strings compare case-insensitively);
    /// those of up to 15 bytes are in `short`, packed by [`short_key`]
    /// (hashing one integer is a fraction of hashing a slice: `event.dataset`
    /// and the Zeek states are all short).
    strs: AHashMap<Box<[u8]>, (u128, u128)>,
    short: AHashMap<u128, (u128, u128)>,
    /// `ints` and `short` as perfect-hash tables, once [`FieldConds::seal`]
    /// has built them (the maps answer where it could not: see [`KeyTable`]).
    int_table: Option<KeyTable<i64>>,
    short_table: Option<KeyTable<u128>>,
    /// Longest key of `strs`: a longer value matches none.
    longest_str: usize,
    ips: Vec<(IpAddr, (u128, u128))>,
    /// (bit, min, max) of `min`/`max` tests.
    ranges: Vec<(u32, Option<i64>, Option<i64>)>,
}

/// A string of up to 15 bytes, ASCII-lower-cased, as one integer: its
/// bytes, zero-padded, with the length in the last byte (so "a" and "a\0"
/// differ).
///
/// Why the overlapping reads: copying a short slice of unknown length into
/// a buffer calls `memcpy`, and this runs once per event and string field
/// (3.4% of the flow set's time). Two 8- or 4-byte reads that overlap
/// cover any length from 4 to 15 without a call.
#[inline]
fn short_key(t: &[u8]) -> Option<u128> {
    let n = t.len();
    let read8 = |at: usize| {
        t.get(at..at + 8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let read4 = |at: usize| {
        t.get(at..at + 4).map_or(0, |b| {
            u32::from_le_bytes(b.try_into().unwrap_or_default()) as u64
        })
    };
    let (lo, hi) = match n {
        0 => (0, 0),
        1..=3 => (t.iter().rev().fold(0u64, |x, &b| x << 8 | b as u64), 0),
        4..=7 => (read4(0) | (read4(n - 4) >> (8 * (8 - n))) << 32, 0),
        8 => (read8(0), 0),
        9..=15 => (read8(0), read8(n - 8) >> (8 * (16 - n))),
        _ => return None,
    };
    let key = (hi as u128) << 64 | lo as u128 | (n as u128) << 120;
    Some(ascii_lower_u128(key))
}

/// ASCII upper-case letters of the 16 bytes of `x` to lower case, others
/// unchanged (the byte-parallel test of `u8::make_ascii_lowercase`).
#[inline]
fn ascii_lower_u128(x: u128) -> u128 {
    const ONES: u128 = u128::MAX / 255;
    let heptets = x & (ONES * 0x7f);
    // per byte: high bit set when the low 7 bits are ≥ 'A', then > 'Z'
    let ge_a = heptets + ONES * (0x80 - b'A' as u128);
    let gt_z = heptets + ONES * (0x80 - b'Z' as u128 - 1);
    let upper = (ge_a ^ gt_z) & !x & (ONES * 0x80);
    x | upper >> 2
}

/// Longest string value a condition may list (values are lower-cased on
/// the stack to look them up).
const MAX_MATCH_STR: usize = 128;

impl FieldConds {
    /// Adds test `test` as bit `bit` (its strings are at most
    /// `MAX_MATCH_STR` bytes: `make_test` refuses longer ones).
    fn add(&mut self, bit: u32, test: &Test) {
        (self.int_table, self.short_table) = (None, None);
        let b = 1u128 << bit;
        let listed = |key: Scalar, set: bool, fc: &mut FieldConds| {
            let entry = match key {
                Scalar::Int(i) => fc.ints.entry(i).or_default(),
                Scalar::Str(t) => {
                    fc.longest_str = fc.longest_str.max(t.len());
                    match short_key(t.as_bytes()) {
                        Some(k) => fc.short.entry(k).or_default(),
                        None => fc
                            .strs
                            .entry(t.to_ascii_lowercase().into_bytes().into_boxed_slice())
                            .or_default(),
                    }
                }
            };
            if set {
                entry.0 |= b;
            } else {
                entry.1 |= b;
            }
        };
        let listed_ip = |ip: IpAddr, set: bool, fc: &mut FieldConds| {
            let at = match fc.ips.iter().position(|(x, _)| *x == ip) {
                Some(at) => at,
                None => {
                    fc.ips.push((ip, (0, 0)));
                    fc.ips.len() - 1
                }
            };
            if set {
                fc.ips[at].1 .0 |= b;
            } else {
                fc.ips[at].1 .1 |= b;
            }
        };
        match test {
            Test::AnyStr(l) => {
                for t in l {
                    listed(Scalar::Str(t.clone()), true, self);
                }
            }
            Test::AnyInt(l) => {
                for &i in l {
                    listed(Scalar::Int(i), true, self);
                }
            }
            Test::AnyIp(l) => l.iter().for_each(|&ip| listed_ip(ip, true, self)),
            Test::NotStr(l) => {
                (self.absent, self.present) = (self.absent | b, self.present | b);
                for t in l {
                    listed(Scalar::Str(t.clone()), false, self);
                }
            }
            Test::NotInt(l) => {
                (self.absent, self.present) = (self.absent | b, self.present | b);
                for &i in l {
                    listed(Scalar::Int(i), false, self);
                }
            }
            Test::NotIp(l) => {
                (self.absent, self.present) = (self.absent | b, self.present | b);
                l.iter().for_each(|&ip| listed_ip(ip, false, self));
            }
            Test::Exists(true) => self.present |= b,
            Test::Exists(false) => self.absent |= b,
            Test::Range(lo, hi) => self.ranges.push((bit, *lo, *hi)),
        }
    }

    /// Builds the perfect-hash tables of the listed integers and short
    /// strings (once every test is added; a later `add` would leave them
    /// stale, so `add` drops them).
    fn seal(&mut self) {
        self.int_table = KeyTable::build(&self.ints);
        self.short_table = KeyTable::build(&self.short);
    }

    /// The bits of this field's conditions that event `e` meets.
    #[inline]
    fn eval(&self, e: &Event) -> u128 {
        match self.get {
            Some(get) => self.eval_value(get.get(e)),
            None => 0,
        }
    }

    #[inline]
    fn eval_value(&self, v: Option<FieldValue<'_>>) -> u128 {
        let Some(v) = v else {
            return self.absent;
        };
        let (set, clear) = match v {
            FieldValue::Int(i) => {
                let mut bits = 0;
                for &(bit, lo, hi) in &self.ranges {
                    if lo.is_none_or(|l| i >= l) && hi.is_none_or(|h| i <= h) {
                        bits |= 1u128 << bit;
                    }
                }
                let (set, clear) = match &self.int_table {
                    Some(t) => t.get(i),
                    None if self.ints.is_empty() => (0, 0),
                    None => self.ints.get(&i).copied().unwrap_or_default(),
                };
                (set | bits, clear)
            }
            FieldValue::Str(t) => {
                if t.len() > self.longest_str {
                    (0, 0)
                } else if let Some(k) = short_key(t.as_bytes()) {
                    match &self.short_table {
                        Some(table) => table.get(k),
                        None => self.short.get(&k).copied().unwrap_or_default(),
                    }
                } else {
                    let mut buf = [0u8; MAX_MATCH_STR];
                    let low = &mut buf[..t.len()];
                    low.copy_from_slice(t.as_bytes());
                    low.make_ascii_lowercase();
                    self.strs.get(&*low).copied().unwrap_or_default()
                }
            }
            FieldValue::Ip(ip) => self
                .ips
                .iter()
                .find(|(x, _)| *x == ip)
                .map_or((0, 0), |(_, sc)| *sc),
        };
        (self.present | set) & !clear
    }
}

/// A key of a [`KeyTable`]: an integer, or a short string packed by
/// [`short_key`].
trait TableKey: Copy + Eq + Default {
    /// 64 bits of the key for the multiplicative hash (need not be one to
    /// one: the table compares whole keys).
    fn fold(self) -> u64;
}

impl TableKey for i64 {
    #[inline]
    fn fold(self) -> u64 {
        self as u64
    }
}

impl TableKey for u128 {
    #[inline]
    fn fold(self) -> u64 {
        (self as u64) ^ ((self >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// The values a field's conditions list, each with its (set, clear) bits,
/// looked up by a multiply, a shift, one load and one compare, without a
/// branch: a multiplicative hash whose multiplier is searched for, when the
/// config is compiled, until every listed value has a slot of its own (a
/// perfect hash for this set of values). Why not the hash maps it is built
/// from: each event looks its value up once per field, and a hashbrown
/// lookup hashes, reads a control-byte group and branches on the data (the
/// flow set's ports, tested against a list of 33, are random). Measured
/// paired against the maps (twentieth session, Intel Xeon VM, AVX-512, with
/// `access::FieldRef`): flow set 0.985, host set unchanged.
struct KeyTable<K> {
    mult: u64,
    shift: u32,
    /// Each slot's value and bits. An empty slot holds the default key
    /// with bits (0, 0), which is also the answer for an unlisted value: a
    /// probe that meets an empty slot answers right whatever its key.
    slots: Box<[(K, (u128, u128))]>,
}

impl<K: TableKey> KeyTable<K> {
    /// The table of `entries`; `None` when there are none, or when no
    /// multiplier tried gave every key a slot of its own in up to 2¹⁶ slots
    /// (the map answers then).
    fn build(entries: &AHashMap<K, (u128, u128)>) -> Option<KeyTable<K>> {
        if entries.is_empty() {
            return None;
        }
        // fixed seed: the same config compiles to the same tables
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        // at least twice the keys' count of slots: with n keys in m slots a
        // random multiplier is perfect with odds about e^(−n²/2m)
        let first = (2 * entries.len())
            .next_power_of_two()
            .trailing_zeros()
            .max(1);
        for log2 in first..=16 {
            let shift = 64 - log2;
            'try_one: for _ in 0..256 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mult = x | 1;
                let mut slots = vec![(K::default(), (0, 0)); 1 << log2];
                let mut used = vec![false; 1 << log2];
                for (&k, &bits) in entries {
                    let i = (k.fold().wrapping_mul(mult) >> shift) as usize;
                    if std::mem::replace(&mut used[i], true) {
                        continue 'try_one;
                    }
                    slots[i] = (k, bits);
                }
                return Some(KeyTable {
                    mult,
                    shift,
                    slots: slots.into_boxed_slice(),
                });
            }
        }
        None
    }

    /// The (set, clear) bits of `k`; (0, 0) for a value not listed.
    #[inline]
    fn get(&self, k: K) -> (u128, u128) {
        let i = (k.fold().wrapping_mul(self.mult) >> self.shift) as usize;
        let Some(&(key, (set, clear))) = self.slots.get(i) else {
            return (0, 0);
        };
        // all ones on a match, else zero: a select, not a branch on the data
        let keep = 0u128.wrapping_sub(u128::from(key == k));
        (set & keep, clear & keep)
    }
}

struct Compiled {
    by_field: Vec<FieldConds>,
    keys: Vec<Accessor>,
    entity_getters: Vec<Accessor>,
    features: Vec<CFeature>,
    n_slots: usize,
    n_sets: usize,
    /// Byte offsets of an event to prefetch (see [`prefetch_offsets`]).
    prefetch: Vec<usize>,
    /// The text fields whose bytes are asked for [`TEXT_PREFETCH_AHEAD`]
    /// events ahead (see [`text_prefetch_mask`]).
    text_prefetch: u8,
}

fn field_type(name: &str) -> Option<FieldType> {
    EVENT_FIELDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

fn scalar_text(s: &Scalar) -> String {
    match s {
        Scalar::Int(i) => i.to_string(),
        Scalar::Str(s) => s.clone(),
    }
}

fn make_test(field: &str, spec: &ValueSpec, at: &str) -> Result<Test, FeatureError> {
    let ty = field_type(field)
        .ok_or_else(|| FeatureError::Config(format!("{at}: unknown event field `{field}`")))?;
    let bad =
        |v: &str, what: &str| FeatureError::Config(format!("{at}.`{field}`: `{v}` is not {what}"));
    let ints = |l: &[Scalar]| -> Result<Vec<i64>, FeatureError> {
        l.iter()
            .map(|s| match s {
                Scalar::Int(i) => Ok(*i),
                Scalar::Str(t) => t.trim().parse().map_err(|_| bad(t, "an integer")),
            })
            .collect()
    };
    let ips = |l: &[Scalar]| -> Result<Vec<IpAddr>, FeatureError> {
        l.iter()
            .map(|s| {
                scalar_text(s)
                    .trim()
                    .parse()
                    .map_err(|_| bad(&scalar_text(s), "an IP address"))
            })
            .collect()
    };
    let any_or_not = |l: &[Scalar], not: bool| -> Result<Test, FeatureError> {
        if ty == FieldType::Str {
            if let Some(t) = l.iter().map(scalar_text).find(|t| t.len() > MAX_MATCH_STR) {
                return Err(FeatureError::Config(format!(
                    "{at}.`{field}`: `{t}` is longer than {MAX_MATCH_STR} bytes"
                )));
            }
        }
        Ok(match (ty, not) {
            (FieldType::Str, false) => Test::AnyStr(l.iter().map(scalar_text).collect()),
            (FieldType::Str, true) => Test::NotStr(l.iter().map(scalar_text).collect()),
            (FieldType::Int | FieldType::Timestamp, false) => Test::AnyInt(ints(l)?),
            (FieldType::Int | FieldType::Timestamp, true) => Test::NotInt(ints(l)?),
            (FieldType::Ip, false) => Test::AnyIp(ips(l)?),
            (FieldType::Ip, true) => Test::NotIp(ips(l)?),
        })
    };
    match spec {
        ValueSpec::Int(i) => any_or_not(&[Scalar::Int(*i)], false),
        ValueSpec::Str(s) => any_or_not(&[Scalar::Str(s.clone())], false),
        ValueSpec::List(l) => any_or_not(l, false),
        ValueSpec::Op(op) => {
            let n = op.not.is_some() as u8
                + op.exists.is_some() as u8
                + (op.min.is_some() || op.max.is_some()) as u8;
            if n != 1 {
                return Err(FeatureError::Config(format!(
                    "{at}.`{field}`: give exactly one of `not`, `exists`, or `min`/`max`"
                )));
            }
            if let Some(l) = &op.not {
                return any_or_not(l, true);
            }
            if let Some(x) = op.exists {
                return Ok(Test::Exists(x));
            }
            if !matches!(ty, FieldType::Int | FieldType::Timestamp) {
                return Err(FeatureError::Config(format!(
                    "{at}.`{field}`: `min`/`max` need an integer field"
                )));
            }
            Ok(Test::Range(op.min, op.max))
        }
    }
}

/// Most sliding windows one event may fall in (window / slide).
pub const MAX_WINDOWS_PER_EVENT: i64 = 1024;

fn compile(cfg: &EntityConfig) -> Result<Compiled, FeatureError> {
    let err = |m: String| FeatureError::Config(m);
    if cfg.name.trim().is_empty() {
        return Err(err("key `name`: must not be empty".into()));
    }
    parse_duration(&cfg.window).map_err(|m| err(format!("key `window`: {m}")))?;
    if let Some(s) = &cfg.slide {
        let step = parse_duration(s).map_err(|m| err(format!("key `slide`: {m}")))?;
        let window = parse_duration(&cfg.window).unwrap_or(i64::MAX);
        if step > window {
            return Err(err(format!(
                "key `slide`: step `{s}` is longer than the window `{}`",
                cfg.window
            )));
        }
        // every event lands in window/step windows; bound the work per event
        if window / step > MAX_WINDOWS_PER_EVENT {
            return Err(err(format!(
                "key `slide`: window `{}` / step `{s}` puts each event in more than {MAX_WINDOWS_PER_EVENT} windows",
                cfg.window
            )));
        }
    }
    let key_names = cfg.key.list();
    if key_names.is_empty() {
        return Err(err("key `key`: give at least one field".into()));
    }
    let mut keys = Vec::new();
    for k in &key_names {
        keys.push(accessor(k).ok_or_else(|| err(format!("key `key`: unknown event field `{k}`")))?);
    }
    if cfg.features.is_empty() {
        return Err(err("no `[[feature]]` given".into()));
    }
    let mut conds: Vec<Cond> = Vec::new();
    let mut entity_names: Vec<String> = Vec::new();
    let mut entity_getters: Vec<Accessor> = Vec::new();
    let mut features = Vec::new();
    let mut seen = AHashSet::new();
    let (mut n_slots, mut n_sets) = (0usize, 0usize);
    // (field and `when` as written, set index) of distinct / new-peer features
    let mut set_owners: Vec<(String, usize)> = Vec::new();
    // (group, `once_per` field, set index, first feature) of `exclusive` groups
    let mut groups: Vec<(String, String, usize, String)> = Vec::new();
    let mask_of = |w: &When, at: &str, conds: &mut Vec<Cond>| -> Result<u128, FeatureError> {
        let mut mask = 0u128;
        for (field, spec) in &w.matches {
            let test = make_test(field, spec, &format!("{at}.match"))?;
            let idx = match conds
                .iter()
                .position(|c| c.field == *field && c.test == test)
            {
                Some(i) => i,
                None => {
                    if conds.len() == 128 {
                        return Err(err(format!(
                            "{at}: more than 128 distinct match conditions in one set"
                        )));
                    }
                    let get = accessor(field)
                        .ok_or_else(|| err(format!("{at}: unknown event field `{field}`")))?;
                    conds.push(Cond {
                        field: field.clone(),
                        get,
                        test,
                    });
                    conds.len() - 1
                }
            };
            mask |= 1u128 << idx;
        }
        Ok(mask)
    };
    for (i, f) in cfg.features.iter().enumerate() {
        let at = format!("feature[{i}] (`{}`)", f.name);
        if f.name.trim().is_empty() {
            return Err(err(format!("feature[{i}].name: must not be empty")));
        }
        if !seen.insert(f.name.clone()) {
            return Err(err(format!("{at}.name: `{}` appears twice", f.name)));
        }
        if f.description.trim().is_empty() {
            return Err(err(format!(
                "{at}.description: must not be empty (it is the catalog entry)"
            )));
        }
        let needs_field = matches!(
            f.agg,
            Agg::Sum | Agg::Min | Agg::Max | Agg::Mean | Agg::Distinct | Agg::NewPeers
        );
        let field = match (&f.field, needs_field) {
            (Some(name), true) => {
                let get = accessor(name)
                    .ok_or_else(|| err(format!("{at}.field: unknown event field `{name}`")))?;
                if matches!(f.agg, Agg::Sum | Agg::Min | Agg::Max | Agg::Mean)
                    && !matches!(
                        field_type(name),
                        Some(FieldType::Int | FieldType::Timestamp)
                    )
                {
                    return Err(err(format!(
                        "{at}.field: `{name}` is not numeric, {:?} needs a number",
                        f.agg
                    )));
                }
                Some(get)
            }
            (None, true) if f.when.iter().all(|w| w.field.is_some()) && !f.when.is_empty() => None,
            (None, true) => return Err(err(format!("{at}.field: {:?} needs a `field`", f.agg))),
            (Some(_), false) => {
                return Err(err(format!("{at}.field: {:?} takes no `field`", f.agg)))
            }
            (None, false) => None,
        };
        if f.agg == Agg::Ratio && f.numerator.is_empty() {
            return Err(err(format!("{at}.numerator: `ratio` needs a numerator")));
        }
        if f.agg != Agg::Ratio && !f.numerator.is_empty() {
            return Err(err(format!(
                "{at}.numerator: only `ratio` takes a numerator"
            )));
        }
        let mut alts = Vec::new();
        let whens: Vec<When> = if f.when.is_empty() {
            vec![When {
                entity: None,
                field: None,
                matches: BTreeMap::new(),
                rank: None,
            }]
        } else {
            f.when.clone()
        };
        for (j, w) in whens.iter().enumerate() {
            let wat = format!("{at}.when[{j}]");
            let mask = mask_of(w, &wat, &mut conds)?;
            let entity = match &w.entity {
                None => None,
                Some(name) => {
                    let get = accessor(name).ok_or_else(|| {
                        err(format!("{wat}.entity: unknown event field `{name}`"))
                    })?;
                    Some(match entity_names.iter().position(|n| n == name) {
                        Some(p) => p,
                        None => {
                            entity_names.push(name.clone());
                            entity_getters.push(get);
                            entity_getters.len() - 1
                        }
                    })
                }
            };
            let alt_field = match &w.field {
                None => None,
                Some(_) if !needs_field => {
                    return Err(err(format!("{wat}.field: {:?} takes no `field`", f.agg)));
                }
                Some(name) => Some(
                    accessor(name)
                        .ok_or_else(|| err(format!("{wat}.field: unknown event field `{name}`")))?,
                ),
            };
            if w.rank.is_some() && f.exclusive.is_none() {
                return Err(err(format!(
                    "{wat}.rank: only a count in an `exclusive` group takes `rank`"
                )));
            }
            alts.push(Alt {
                mask,
                rank: w.rank.unwrap_or(0),
                field: alt_field,
                entity,
            });
        }
        let mut num = Vec::new();
        for (j, w) in f.numerator.iter().enumerate() {
            if w.entity.is_some() {
                return Err(err(format!(
                    "{at}.numerator[{j}].entity: not allowed in a numerator"
                )));
            }
            num.push(mask_of(w, &format!("{at}.numerator[{j}]"), &mut conds)?);
        }
        let once_per = match (&f.once_per, f.agg) {
            (None, _) => None,
            (Some(name), Agg::Count) => Some(
                accessor(name)
                    .ok_or_else(|| err(format!("{at}.once_per: unknown event field `{name}`")))?,
            ),
            (Some(_), agg) => {
                return Err(err(format!(
                    "{at}.once_per: only `count` takes `once_per`, not {agg:?}"
                )))
            }
        };
        let exclusive = match (&f.exclusive, &f.once_per) {
            (None, _) => None,
            (Some(g), _) if g.trim().is_empty() => {
                return Err(err(format!("{at}.exclusive: must not be empty")));
            }
            // a `once_per` here is a count's (other aggregations were refused)
            (Some(g), Some(op)) => Some((g, op)),
            (Some(_), _) => {
                return Err(err(format!(
                    "{at}.exclusive: only a count with `once_per` takes `exclusive`"
                )));
            }
        };
        let slots = match f.agg {
            Agg::Count => 1,
            Agg::Sum | Agg::Min | Agg::Max | Agg::Mean | Agg::Ratio => 2,
            // a distinct count keeps its count in a slot when `counted`
            Agg::Distinct => 1,
            Agg::NewPeers => 0,
        };
        let mut sets =
            (matches!(f.agg, Agg::Distinct | Agg::NewPeers) || once_per.is_some()) as usize;
        let mut set = n_sets;
        let mut shares_set = false;
        if matches!(f.agg, Agg::Distinct | Agg::NewPeers) {
            let signature = format!("{:?} {:?}", f.field, f.when);
            match set_owners.iter().find(|(sig, _)| *sig == signature) {
                Some(&(_, owner)) => {
                    (set, sets, shares_set) = (owner, 0, true);
                }
                None => set_owners.push((signature, n_sets)),
            }
        }
        if let Some((group, op)) = exclusive {
            match groups.iter().find(|g| g.0 == *group) {
                Some((_, first_op, _, first)) if first_op != op => {
                    return Err(err(format!(
                        "{at}.once_per: `{op}`, but `{first}` in the same `exclusive` group `{group}` counts once per `{first_op}`"
                    )));
                }
                // the group's counts keep their values in one set
                Some(&(_, _, owner, _)) => (set, sets) = (owner, 0),
                None => groups.push((group.clone(), op.clone(), n_sets, f.name.clone())),
            }
        }
        features.push(CFeature {
            agg: f.agg,
            field,
            scale: f.scale.unwrap_or(1.0),
            num,
            slot: n_slots,
            set,
            once_per,
            exclusive: exclusive.is_some(),
            shares_set,
            counted: false,
            by_key: alts.iter().all(|a| a.entity.is_none() && a.field.is_none()),
            masks: alts.iter().map(|a| a.mask).collect(),
            always: alts.iter().any(|a| a.mask == 0),
            alts,
        });
        n_slots += slots;
        n_sets += sets;
    }
    // Sets no new-peer count reads become `counted` and keep their index
    // (a key in `Rows::seen`); the others, whose values each row keeps, are
    // renumbered 0.. among themselves.
    let has_set =
        |f: &CFeature| matches!(f.agg, Agg::Distinct | Agg::NewPeers) || f.once_per.is_some();
    let mut valued = vec![false; n_sets];
    let mut owner_slot = vec![0usize; n_sets];
    for f in features.iter().filter(|f| has_set(f)) {
        valued[f.set] |= f.agg == Agg::NewPeers;
        if !f.shares_set {
            owner_slot[f.set] = f.slot;
        }
    }
    let mut n_valued = 0usize;
    let mut renumber = vec![usize::MAX; n_sets];
    for (set, _) in valued.iter().enumerate().filter(|(_, &v)| v) {
        renumber[set] = n_valued;
        n_valued += 1;
    }
    for f in features.iter_mut() {
        if !has_set(f) {
            continue;
        }
        f.counted = !valued[f.set];
        if !f.counted {
            f.set = renumber[f.set];
        } else if f.shares_set {
            // a second distinct count of the same values reads the first's count
            f.slot = owner_slot[f.set];
        }
    }
    let n_sets = n_valued;
    let mut by_field: Vec<(String, FieldConds)> = Vec::new();
    for (i, cond) in conds.iter().enumerate() {
        let at = match by_field.iter().position(|(f, _)| *f == cond.field) {
            Some(at) => at,
            None => {
                let fc = FieldConds {
                    get: Some(cond.get),
                    ..Default::default()
                };
                by_field.push((cond.field.clone(), fc));
                by_field.len() - 1
            }
        };
        by_field[at].1.add(i as u32, &cond.test);
    }
    let defs = cfg.defs();
    let read = defs
        .iter()
        .flat_map(|d| d.reads.iter().map(String::as_str))
        .chain(key_names.iter().map(String::as_str))
        .chain(["@timestamp"]);
    let text_prefetch = text_prefetch_mask(read.clone());
    Ok(Compiled {
        by_field: by_field
            .into_iter()
            .map(|(_, mut fc)| {
                fc.seal();
                fc
            })
            .collect(),
        keys,
        entity_getters,
        features,
        n_slots,
        n_sets,
        prefetch: prefetch_offsets(read),
        text_prefetch,
    })
}

// ---------------------------------------------------------------- engine

/// What happened to the input events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityReport {
    pub events: usize,
    /// Skipped: no `@timestamp`, so no window.
    pub without_timestamp: usize,
    /// Neither a key field nor any feature attributed the event to an entity.
    pub without_entity: usize,
    pub rows: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum EKey<'a> {
    Ip(IpAddr),
    Int(i64),
    Str(&'a str),
}

/// Interns entity values: one id per distinct entity.
#[derive(Default)]
struct Entities {
    /// IPv4 addresses as integers: hashing a `u32` is a fraction of
    /// hashing an `IpAddr` (its tag, then its octets as a slice); entity
    /// lookups were ~430 of the host set's instructions per event.
    ip4s: Ip4Ids,
    ips: AHashMap<IpAddr, u32>,
    ints: AHashMap<i64, u32>,
    strs: AHashMap<Box<str>, u32>,
    names: Vec<String>,
    /// Per id, the kind of value (IP, integer, text): with the name, it
    /// orders entities that print alike whatever order they came in.
    kinds: Vec<u8>,
}

impl Entities {
    /// The id of `k`, made on first sight. Why the split: an IPv4 address
    /// seen before (nearly every lookup) is found inline; through the whole
    /// function, not inlined, a lookup was ~50 instructions (host set: two
    /// per Zeek event).
    #[inline(always)]
    fn id(&mut self, k: EKey<'_>) -> u32 {
        match k {
            EKey::Ip(IpAddr::V4(ip)) => self.id_v4(ip.to_bits()),
            _ => self.id_or_new(k),
        }
    }

    /// The id of IPv4 address `ip` (its bits): `id` of an IPv4 key.
    #[inline(always)]
    fn id_v4(&mut self, ip: u32) -> u32 {
        match self.ip4s.find(ip) {
            Some(id) => id,
            None => self.id_or_new(EKey::Ip(IpAddr::V4(std::net::Ipv4Addr::from_bits(ip)))),
        }
    }

    /// The id of any key, made on first sight. A new IPv4 address is probed
    /// twice, in `id` and here: once per entity, so not worth a third path.
    #[inline(never)]
    fn id_or_new(&mut self, k: EKey<'_>) -> u32 {
        let next = self.names.len() as u32;
        match k {
            EKey::Ip(IpAddr::V4(ip)) => self.ip4s.id(ip.to_bits(), || {
                self.names
                    .push(palisade_core::event::ip_text(IpAddr::V4(ip)));
                self.kinds.push(0);
                next
            }),
            EKey::Ip(ip) => *self.ips.entry(ip).or_insert_with(|| {
                self.names.push(ip.to_string());
                self.kinds.push(0);
                next
            }),
            EKey::Int(i) => *self.ints.entry(i).or_insert_with(|| {
                self.names.push(i.to_string());
                self.kinds.push(1);
                next
            }),
            EKey::Str(s) => {
                if let Some(id) = self.strs.get(s) {
                    return *id;
                }
                self.strs.insert(s.into(), next);
                self.names.push(s.to_string());
                self.kinds.push(2);
                next
            }
        }
    }
}

/// IPv4 address → entity id: open addressing with linear probing, each
/// slot the address and id side by side, at most half full.
///
/// Why not `AHashMap<u32, u32>`: its lookup reads a control byte group and
/// then the bucket, two places in memory, and cannot be asked for ahead.
/// Here one slot read answers, and [`prefetch`](Self::prefetch) asks for it
/// while the batch's first pass has the event at hand: the host set looks up
/// two addresses per Zeek event, and `Entities::id` with hashbrown's probe
/// was ~12% of its time (perf). Measured by criterion, alternated: host set
/// +6–7% (tenth session, Zen 4).
struct Ip4Ids {
    /// `(address << 32) | (id + 1)`; 0 is an empty slot.
    slots: Vec<u64>,
    len: usize,
    /// 64 − log2(slots.len()): the hash's top bits pick the home slot.
    shift: u32,
}

impl Default for Ip4Ids {
    fn default() -> Self {
        Ip4Ids {
            slots: vec![0; 1024],
            len: 0,
            shift: 64 - 10,
        }
    }
}

impl Ip4Ids {
    #[inline]
    fn home(&self, ip: u32) -> usize {
        // Fibonacci hashing: addresses of one subnet differ in their low
        // bits, which the multiply spreads over the top ones
        (u64::from(ip).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    /// Where `ip` is: `Ok(id)`, or `Err(slot)`, the empty slot it would take.
    #[inline(always)]
    fn probe(&self, ip: u32) -> Result<u32, usize> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(ip);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return Err(i);
            }
            if (s >> 32) as u32 == ip {
                return Ok((s as u32) - 1);
            }
            i = (i + 1) & mask;
        }
    }

    /// The id of `ip`, if it has one.
    #[inline(always)]
    fn find(&self, ip: u32) -> Option<u32> {
        self.probe(ip).ok()
    }

    /// The id of `ip`, made by `new` (which returns the next id) on first sight.
    #[inline]
    fn id(&mut self, ip: u32, new: impl FnOnce() -> u32) -> u32 {
        let i = match self.probe(ip) {
            Ok(id) => return id,
            Err(i) => i,
        };
        let id = new();
        self.slots[i] = u64::from(ip) << 32 | (u64::from(id) + 1);
        self.len += 1;
        if 2 * self.len > self.slots.len() {
            self.grow();
        }
        id
    }

    /// Asks the CPU for `ip`'s home slot.
    #[inline]
    fn prefetch(&self, ip: u32) {
        prefetch_line(self.slots[self.home(ip)..].as_ptr().cast());
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let bigger = vec![0; 2 * self.slots.len()];
        let old = std::mem::replace(&mut self.slots, bigger);
        self.shift -= 1;
        let mask = self.slots.len() - 1;
        for s in old.into_iter().filter(|&s| s != 0) {
            let mut i = self.home((s >> 32) as u32);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }
}

#[inline]
fn ekey(v: FieldValue<'_>) -> Option<EKey<'_>> {
    match v {
        FieldValue::Ip(ip) => Some(EKey::Ip(ip)),
        FieldValue::Int(i) => Some(EKey::Int(i)),
        FieldValue::Str(s) if !s.is_empty() && s != "-" => Some(EKey::Str(s)),
        FieldValue::Str(_) => None,
    }
}

/// The distinct values (their `value_hash`) of one feature in one
/// (entity, window): inline up to `SMALL_SET` values, searched linearly,
/// then up to `MEDIUM_SET` in a block of the rows' shared medium blocks
/// (`Rows::medium`), searched linearly, then a hash set. Why: most rows see
/// few distinct values, and a hash set per row and feature paid an
/// allocation and two or three rehashes as it grew: allocation and
/// rehashing were 12% of the flow set's time (perf). Measured by
/// criterion, alternating builds in one sitting (sixth session, Xeon):
/// inline room for 4 values, flow set +4%, host set +2% (with the shared
/// set of `CFeature::shares_set`); room for 8, flow set +18% but host set
/// −8 to −12%, whose nine sets a row mostly hold many values. The smaller,
/// never-slower choice is kept. The medium tier (nineteenth session, Zen 4):
/// the flow set's rows hold ~8 destination addresses each, so most of them
/// spilled into a 32-slot hash set of their own, a `malloc` and a `free`
/// each and 256 bytes for 8 values (with its growth, 11 MB of the run's
/// 33 MB); a block of 16 values in one growing vector costs neither, and
/// rows with at most 4 values keep the 40 bytes they had (inline room for
/// 12 instead gave the flow set the same time, but 104 bytes a row and set
/// whatever the row holds).
enum DistinctSet {
    Small {
        len: u8,
        values: [u64; SMALL_SET],
    },
    /// `len` values in `Rows::medium[block]`.
    Medium {
        len: u8,
        block: u32,
    },
    Large(OpenSet),
}

/// The medium tier's blocks (see [`DistinctSet`]).
type MediumBlocks = Vec<[u64; MEDIUM_SET]>;

/// A set of nonzero `value_hash` outputs: open addressing with linear
/// probing, at most half full. The values are already uniform hashes, so
/// their bits are the slot. Why not `HashSet<u64>` (hashbrown): its
/// control bytes are a second cache line to miss for each insert into a
/// large set, and the host set's time was mostly those inserts (perf:
/// `HashMap::insert` 21%, 7.5% on the control-byte loads alone).
struct OpenSet {
    slots: Box<[u64]>,
    len: usize,
}

impl OpenSet {
    fn with_capacity(n: usize) -> OpenSet {
        OpenSet {
            slots: vec![0; (2 * n).next_power_of_two().max(8)].into_boxed_slice(),
            len: 0,
        }
    }

    /// Adds `h` (nonzero); true when it was not there.
    #[inline]
    fn insert(&mut self, h: u64) -> bool {
        debug_assert!(h != 0);
        let mask = self.slots.len() - 1;
        let mut i = self.home(h);
        loop {
            let s = self.slots[i];
            if s == h {
                return false;
            }
            if s == 0 {
                break;
            }
            i = (i + 1) & mask;
        }
        self.slots[i] = h;
        self.len += 1;
        if 2 * self.len > self.slots.len() {
            self.grow();
        }
        true
    }

    /// The slot where the search for `h` starts.
    #[inline]
    fn home(&self, h: u64) -> usize {
        h as usize & (self.slots.len() - 1)
    }

    #[inline]
    fn prefetch_slot(&self, h: u64) {
        prefetch_bytes(self.slots[self.home(h)..].as_ptr().cast(), 8);
    }

    /// Twice the slots.
    fn grow(&mut self) {
        self.grow_to(self.slots.len());
    }

    fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.iter().copied().filter(|&h| h != 0)
    }

    /// Room for `n` values at most half full, in one step.
    #[cold]
    #[inline(never)]
    fn grow_to(&mut self, n: usize) {
        let mut bigger = OpenSet::with_capacity(n);
        for &h in self.slots.iter().filter(|&&h| h != 0) {
            bigger.insert(h);
        }
        *self = bigger;
    }

    /// Empties the set. Why the shrink: one entity with many values must
    /// not make every later clear cost that many slots.
    fn clear(&mut self) {
        if self.slots.len() > 64 && self.slots.len() > 8 * self.len {
            *self = OpenSet::with_capacity(self.len);
        } else {
            self.slots.fill(0);
            self.len = 0;
        }
    }
}

const SMALL_SET: usize = 4;
const MEDIUM_SET: usize = 16;

impl Default for DistinctSet {
    fn default() -> Self {
        DistinctSet::Small {
            len: 0,
            values: [0; SMALL_SET],
        }
    }
}

impl DistinctSet {
    /// Adds `h`; true when it was not there. `medium`: the rows' medium
    /// blocks.
    #[inline]
    fn insert(&mut self, h: u64, medium: &mut MediumBlocks) -> bool {
        match self {
            DistinctSet::Small { len, values } => {
                let n = *len as usize;
                if values[..n].contains(&h) {
                    return false;
                }
                if n < SMALL_SET {
                    values[n] = h;
                    *len += 1;
                } else {
                    *self = DistinctSet::to_medium(values, h, medium);
                }
                true
            }
            DistinctSet::Medium { len, block } => {
                let n = *len as usize;
                let values = &mut medium[*block as usize];
                if values[..n].contains(&h) {
                    return false;
                }
                if n < MEDIUM_SET {
                    values[n] = h;
                    *len += 1;
                } else {
                    // the block is left unused: few rows outgrow it
                    *self = DistinctSet::spill(values, h);
                }
                true
            }
            DistinctSet::Large(set) => set.insert(h),
        }
    }

    /// The set of `values` and `h` in a new medium block (a hash set
    /// beyond 2³² blocks).
    #[cold]
    #[inline(never)]
    fn to_medium(values: &[u64; SMALL_SET], h: u64, medium: &mut MediumBlocks) -> DistinctSet {
        let Ok(block) = u32::try_from(medium.len()) else {
            return DistinctSet::spill(values, h);
        };
        let mut b = [0; MEDIUM_SET];
        b[..SMALL_SET].copy_from_slice(values);
        b[SMALL_SET] = h;
        medium.push(b);
        DistinctSet::Medium {
            len: SMALL_SET as u8 + 1,
            block,
        }
    }

    /// The set of `values` and `h` as a hash set.
    #[cold]
    #[inline(never)]
    fn spill(values: &[u64], h: u64) -> DistinctSet {
        let mut set = OpenSet::with_capacity(4 * values.len());
        for &v in values.iter().chain([&h]) {
            set.insert(v);
        }
        DistinctSet::Large(set)
    }

    fn len(&self) -> usize {
        match self {
            DistinctSet::Small { len, .. } | DistinctSet::Medium { len, .. } => *len as usize,
            DistinctSet::Large(set) => set.len,
        }
    }

    fn values<'a>(&'a self, medium: &'a MediumBlocks) -> impl Iterator<Item = u64> + 'a {
        let (listed, large) = match self {
            DistinctSet::Small { len, values } => (&values[..*len as usize], None),
            DistinctSet::Medium { len, block } => (&medium[*block as usize][..*len as usize], None),
            DistinctSet::Large(set) => (&[][..], Some(set)),
        };
        listed
            .iter()
            .copied()
            .chain(large.into_iter().flat_map(OpenSet::values))
    }

    /// Asks the CPU for where `h` would go.
    #[inline]
    fn prefetch_for(&self, h: u64, medium: &MediumBlocks) {
        match self {
            DistinctSet::Large(open) => open.prefetch_slot(h),
            _ => self.prefetch_values(medium),
        }
    }

    /// Asks the CPU for the set's values (up to 1 KiB of a hash set's
    /// slots); the inline ones come with the set.
    #[inline]
    fn prefetch_values(&self, medium: &MediumBlocks) {
        match self {
            DistinctSet::Small { .. } => {}
            DistinctSet::Medium { block, .. } => {
                if let Some(b) = medium.get(*block as usize) {
                    prefetch_bytes(b.as_ptr().cast(), std::mem::size_of_val(b));
                }
            }
            DistinctSet::Large(open) => {
                prefetch_bytes(open.slots.as_ptr().cast(), (open.slots.len() * 8).min(1024));
            }
        }
    }
}

/// Every (entity, window) row's state, column by column: row r's
/// accumulators are `acc[r·n_slots ..]` and its sets `sets[r·n_sets ..]`.
/// Why not a struct per row with its own boxed slices: the rows an event
/// lands in are random, and each box was a pointer to chase before the
/// miss on the data itself; here both addresses follow from r, so their
/// misses overlap.
struct Rows {
    n_slots: usize,
    n_sets: usize,
    /// A new row's accumulators (∞ / −∞ for min / max).
    fresh: Vec<f64>,
    entity: Vec<u32>,
    window: Vec<i64>,
    acc: Vec<f64>,
    sets: Vec<DistinctSet>,
    /// The medium tier of the sets (see [`DistinctSet`]).
    medium: MediumBlocks,
    /// The (row, counted set, value) triples seen so far, as one 64-bit
    /// fingerprint each (see [`seen_key`]): the values of every `counted`
    /// feature's sets in one table. Why: a set per row and feature cost an
    /// allocation, a spill from the inline values and a rehash at each
    /// doubling, and its slot could only be asked for once its row's set
    /// had been read; here the slot follows from the triple. Host set: the
    /// growth, allocations and page faults were ~15% of its time (perf);
    /// with this table, 7% fewer instructions and 8–15% more events/s
    /// (eleventh session, Zen 3, criterion alternated with the old build);
    /// the flow set, whose port sets are small, within noise. Keeping
    /// small sets inline and spilling only into this table was tried: no
    /// better for the host set, and more misses for the flow set's ports.
    seen: OpenSet,
    /// (events aggregated, events pushed): how far the input is, to size
    /// `seen` for it (see [`Rows::reserve_seen`]).
    progress: (usize, usize),
    /// The values of `exclusive` groups, by the same fingerprint (of the
    /// row, the group's set and the value): the slot of the count that
    /// holds each, and the rank it was held with.
    held: AHashMap<u64, (u32, u8)>,
}

/// One row's state.
struct Row<'a> {
    r: u32,
    acc: &'a mut [f64],
    sets: &'a mut [DistinctSet],
    medium: &'a mut MediumBlocks,
    seen: &'a mut OpenSet,
}

/// The fingerprint of value hash `h` in counted set `set` of row `r`:
/// nonzero, and as uniform as `h`. The same value in two rows or sets never
/// shares one (the multiplier is odd: (set, r) ↦ m is one to one); two
/// different values do with odds 2⁻⁶⁴, so among N triples a miscount by one
/// has odds about N²/2⁶⁵ (3·10⁻⁸ for a million triples, 3·10⁻⁴ for 10⁸).
#[inline]
fn seen_key(r: u32, set: usize, h: u64) -> u64 {
    let m = ((set as u64) << 32 | u64::from(r)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h ^ m.rotate_left(29)).max(1)
}

impl Rows {
    fn new(c: &Compiled) -> Rows {
        let mut fresh = vec![0.0; c.n_slots];
        for f in &c.features {
            match f.agg {
                Agg::Min => fresh[f.slot] = f64::INFINITY,
                Agg::Max => fresh[f.slot] = f64::NEG_INFINITY,
                _ => {}
            }
        }
        Rows {
            n_slots: c.n_slots,
            n_sets: c.n_sets,
            fresh,
            entity: Vec::new(),
            window: Vec::new(),
            acc: Vec::new(),
            sets: Vec::new(),
            medium: Vec::new(),
            seen: OpenSet::with_capacity(1024),
            progress: (0, 0),
            held: AHashMap::new(),
        }
    }

    fn len(&self) -> usize {
        self.entity.len()
    }

    /// A new row; its index.
    fn push(&mut self, entity: u32, window: i64) -> u32 {
        self.entity.push(entity);
        self.window.push(window);
        self.acc.extend_from_slice(&self.fresh);
        self.sets
            .extend((0..self.n_sets).map(|_| DistinctSet::default()));
        (self.entity.len() - 1) as u32
    }

    #[inline]
    fn row(&mut self, r: u32) -> Row<'_> {
        let at = r as usize;
        Row {
            r,
            acc: &mut self.acc[at * self.n_slots..(at + 1) * self.n_slots],
            sets: &mut self.sets[at * self.n_sets..(at + 1) * self.n_sets],
            medium: &mut self.medium,
            seen: &mut self.seen,
        }
    }

    /// Adds feature `f`'s contribution to row r.
    #[inline]
    fn add(&mut self, f: &CFeature, r: u32, add: Contribution) {
        match add {
            Contribution::Held(h, rank) => self.hold(r, f.slot, f.set, h, rank),
            _ => add.apply(f, self.row(r)),
        }
    }

    /// Counts value hash `h` of `exclusive` group `set` in row r's `slot`,
    /// unless a count of the group holds it there already with a higher
    /// rank, or an equal one and an earlier slot (a count listed earlier):
    /// the outcome does not depend on the order of the events. Out of line,
    /// and apart from [`Contribution::apply`], so that the event loop's
    /// code stays as it was before `exclusive` groups (see
    /// [`contribution`]).
    #[inline(never)]
    fn hold(&mut self, r: u32, slot: usize, set: usize, h: u64, rank: u8) {
        let acc = &mut self.acc[r as usize * self.n_slots..(r as usize + 1) * self.n_slots];
        let slot = slot as u32;
        match self.held.entry(seen_key(r, set, h)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((slot, rank));
                acc[slot as usize] += 1.0;
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let (held_by, held_rank) = *o.get();
                if rank > held_rank || (rank == held_rank && slot < held_by) {
                    acc[held_by as usize] -= 1.0;
                    acc[slot as usize] += 1.0;
                    o.insert((slot, rank));
                }
            }
        }
    }

    /// Asks the CPU for set `set` of row r.
    #[inline]
    fn prefetch_set(&self, r: u32, set: usize) {
        let at = r as usize * self.n_sets + set;
        if let Some(s) = self.sets.get(at) {
            prefetch_bytes(
                (s as *const DistinctSet).cast(),
                std::mem::size_of::<DistinctSet>(),
            );
        }
    }

    /// Inserts each (row, value hash) into set `set` of the row, asking for
    /// the slot of the insert `INSERT_PREFETCH_AHEAD` later as it goes
    /// (large sets are all over memory: the host set's were most of its
    /// time).
    fn insert_all(&mut self, set: usize, inserts: &[(u32, u64)]) {
        let n_sets = self.n_sets;
        for (t, &(r, h)) in inserts.iter().enumerate() {
            if let Some(&(r2, h2)) = inserts.get(t + INSERT_PREFETCH_AHEAD) {
                self.sets[r2 as usize * n_sets + set].prefetch_for(h2, &self.medium);
            }
            self.sets[r as usize * n_sets + set].insert(h, &mut self.medium);
        }
    }

    /// For each (row, value hash), adds one to the row's `slot` when the
    /// value is new to counted set `set` of the row, asking for the
    /// table's slot of the insert `INSERT_PREFETCH_AHEAD` later as it goes.
    fn count_all(&mut self, set: usize, slot: usize, inserts: &[(u32, u64)]) {
        self.reserve_seen(inserts.len());
        let n_slots = self.n_slots;
        for (t, &(r, h)) in inserts.iter().enumerate() {
            if let Some(&(r2, h2)) = inserts.get(t + INSERT_PREFETCH_AHEAD) {
                self.seen.prefetch_slot(seen_key(r2, set, h2));
            }
            if self.seen.insert(seen_key(r, set, h)) {
                self.acc[r as usize * n_slots + slot] += 1.0;
            }
        }
    }

    /// Room in `seen` for `extra` more values. Where it must grow, it grows
    /// to the size its growth so far projects for the end of the input
    /// pushed, not 2× at a time: at most 16× what it needs now while that
    /// is under 2²⁰ values (a projection made early may be far off: this
    /// bounds what a wrong one costs), and 2× beyond. Why: the host set's
    /// table went from 1,024 slots to 2 M in 11 doublings, each rehashing
    /// every value into freshly faulted pages; now it grows twice. Host
    /// set: 859 M instructions against 890 M, simulated last-level read
    /// misses 3.31 M against 3.68 M (callgrind).
    #[inline]
    fn reserve_seen(&mut self, extra: usize) {
        let need = self.seen.len + extra;
        if 2 * need > self.seen.slots.len() {
            let (done, total) = self.progress;
            let projected = if done > 0 {
                (self.seen.len as u128 * total as u128 / done as u128) as usize
            } else {
                need
            };
            let most = if need < 1 << 20 { 16 * need } else { 2 * need };
            self.seen.grow_to(need.max(projected.min(most)));
        }
    }

    /// Asks the CPU for row r's accumulators and sets (the output reads the
    /// rows in entity-name order, all over memory).
    #[inline]
    fn prefetch(&self, r: usize) {
        prefetch_bytes(
            self.acc[r * self.n_slots..].as_ptr().cast(),
            self.n_slots * 8,
        );
        prefetch_bytes(
            self.sets[r * self.n_sets..].as_ptr().cast(),
            self.n_sets * std::mem::size_of::<DistinctSet>(),
        );
    }

    /// Asks the CPU for the values of row r's medium and large sets, up to
    /// 1 KiB each (the sets themselves were asked for earlier by [`Rows::prefetch`]):
    /// a new-peer count reads them all. Why: with only their first line
    /// asked for, reading the flow set's new-peer sets was 7% of its time.
    #[inline]
    fn prefetch_large_sets(&self, r: usize) {
        for set in &self.sets[r * self.n_sets..(r + 1) * self.n_sets] {
            set.prefetch_values(&self.medium);
        }
    }

    /// Row r, read for output.
    fn view(&self, r: usize) -> RowView<'_> {
        RowView {
            entity: self.entity[r],
            window: self.window[r],
            acc: &self.acc[r * self.n_slots..(r + 1) * self.n_slots],
            sets: &self.sets[r * self.n_sets..(r + 1) * self.n_sets],
        }
    }
}

#[inline]
fn num_of(v: FieldValue<'_>) -> Option<f64> {
    match v {
        FieldValue::Int(i) => Some(i as f64),
        _ => None,
    }
}

/// A stable 64-bit hash of a value for distinct counting (fixed seeds, so runs
/// agree; a collision among the values of one entity-window is ~n²/2⁶⁵).
///
/// Integers and IPv4 addresses, most of what the sets count (ports,
/// addresses), go through [`mix64`], a bijection: two integers, or two
/// addresses, never collide, and it is a few instructions where the
/// hasher took ~34 (host set: 851 M instructions against 859 M with the
/// hasher for all; callgrind). The two get apart inputs (an address has
/// bit 40 set and nothing above it; an integer is XORed with a constant
/// whose top bits are set), so an integer and an address can meet only
/// for integers near −7·10¹⁸, should one set hold both.
///
/// Always inline for integers and IPv4 addresses, out of line for text
/// and IPv6 (ahash). Why: at `#[inline]` the compiler kept the whole of it
/// out of line, a call per value hashed (the host set hashes two addresses
/// per Zeek event: 800,000 calls of ~25 instructions, callgrind).
#[inline(always)]
fn value_hash(state: &ahash::RandomState, v: &FieldValue<'_>) -> u64 {
    // 0 marks an empty slot of an `OpenSet`; 0 and 1 share a value (a
    // collision of odds 2⁻⁶⁴ per pair, as any other)
    match v {
        FieldValue::Int(i) => int_hash(*i),
        FieldValue::Ip(IpAddr::V4(ip)) => v4_hash(*ip),
        _ => value_hash_hashed(state, v),
    }
}

/// [`value_hash`] of an integer.
#[inline(always)]
fn int_hash(i: i64) -> u64 {
    mix64(i as u64 ^ 0x9e37_79b9_7f4a_7c15).max(1)
}

/// [`value_hash`] of an IPv4 address.
#[inline(always)]
fn v4_hash(ip: std::net::Ipv4Addr) -> u64 {
    mix64(u64::from(ip.to_bits()) | 1 << 40).max(1)
}

/// [`value_hash`] of text and IPv6 addresses (the same hash as
/// `value_hash` for any value, so that either may be called).
#[inline(never)]
fn value_hash_hashed(state: &ahash::RandomState, v: &FieldValue<'_>) -> u64 {
    match v {
        FieldValue::Str(s) => state.hash_one((1u8, s)).max(1),
        FieldValue::Ip(IpAddr::V4(ip)) => v4_hash(*ip),
        FieldValue::Ip(ip) => state.hash_one((2u8, ip)).max(1),
        FieldValue::Int(i) => int_hash(*i),
    }
}

/// MurmurHash3's 64-bit finaliser: a bijection on `u64` whose every output
/// bit depends on every input bit (the sets take their slot from the low
/// bits).
#[inline]
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A finished row, read for output.
struct RowView<'a> {
    entity: u32,
    window: i64,
    acc: &'a [f64],
    sets: &'a [DistinctSet],
}

/// What one event adds to one feature in each row it lands in, worked out
/// once per (event, feature, field): a sliding window or a feature with
/// several rows applies it to each.
#[derive(Clone, Copy)]
enum Contribution {
    /// A count; with `once_per`, the hash of the event's value of that field.
    Count(Option<u64>),
    /// A count in an `exclusive` group: the hash of the event's `once_per`
    /// value, and the rank the event's alternatives give it.
    Held(u64, u8),
    /// A ratio's denominator, and whether the event is in its numerator.
    Ratio(bool),
    /// Sum, min, max, mean: the scaled value, if the event has the field.
    Number(Option<f64>),
    /// Distinct and new-peer counts: the value's hash, if it has the field.
    Value(Option<u64>),
}

// always: at `#[inline]` the compiler stopped inlining it into the event
// loop once `exclusive` counts were added (host set: 938 M instructions
// against 897 M before them; 890 M with this, `Rows::hold` apart and the
// loop of `by_alternative` over iterators; callgrind)
#[inline(always)]
fn contribution(
    f: &CFeature,
    field: Option<Accessor>,
    e: &Event,
    bits: u128,
    hs: &ahash::RandomState,
) -> Contribution {
    match f.agg {
        Agg::Count => match f.once_per.and_then(|g| g.get(e)) {
            Some(v) if f.exclusive => Contribution::Held(value_hash(hs, &v), f.rank(bits)),
            once => Contribution::Count(once.map(|v| value_hash(hs, &v))),
        },
        Agg::Ratio => Contribution::Ratio(f.num.iter().any(|m| bits & m == *m)),
        Agg::Sum | Agg::Min | Agg::Max | Agg::Mean => Contribution::Number(
            field
                .and_then(|g| g.get(e))
                .and_then(num_of)
                .map(|x| x * f.scale),
        ),
        Agg::Distinct | Agg::NewPeers => {
            Contribution::Value(field.and_then(|g| g.get(e)).map(|v| value_hash(hs, &v)))
        }
    }
}

impl CFeature {
    /// Whether an event with condition bits `bits` meets one of the
    /// feature's alternatives.
    #[inline]
    fn hits(&self, bits: u128) -> bool {
        self.always || self.masks.iter().any(|&m| m & !bits == 0)
    }

    /// The highest rank of the alternatives an event with `bits` meets
    /// (out of line: only `exclusive` counts need it).
    #[inline(never)]
    fn rank(&self, bits: u128) -> u8 {
        self.alts
            .iter()
            .filter(|a| a.mask & !bits == 0)
            .map(|a| a.rank)
            .max()
            .unwrap_or(0)
    }
}

/// Adds `x` to a sum, min, max or mean's two slots (the value so far, and
/// how many events had the field).
#[inline]
fn add_number(agg: Agg, slots: &mut [f64], x: f64) {
    slots[0] = match agg {
        Agg::Min => slots[0].min(x),
        Agg::Max => slots[0].max(x),
        // sum and mean both accumulate the sum
        _ => slots[0] + x,
    };
    slots[1] += 1.0;
}

impl Contribution {
    #[inline]
    fn apply(self, f: &CFeature, row: Row<'_>) {
        let s = f.slot;
        match self {
            // `Rows::add` passes these to `Rows::hold` instead
            Contribution::Held(..) => debug_assert!(false, "held counts go to Rows::hold"),
            Contribution::Count(once) => {
                // a count `once_per` is always `counted`
                let first = match once {
                    Some(h) => row.seen.insert(seen_key(row.r, f.set, h)),
                    None => true,
                };
                row.acc[s] += first as u8 as f64;
            }
            Contribution::Ratio(in_num) => {
                row.acc[s + 1] += 1.0;
                row.acc[s] += in_num as u8 as f64;
            }
            Contribution::Number(Some(x)) => add_number(f.agg, &mut row.acc[s..s + 2], x),
            Contribution::Value(Some(h)) if f.counted => {
                row.acc[s] += row.seen.insert(seen_key(row.r, f.set, h)) as u8 as f64;
            }
            Contribution::Value(Some(h)) => {
                row.sets[f.set].insert(h, row.medium);
            }
            Contribution::Number(None) | Contribution::Value(None) => {}
        }
    }
}

/// How many events ahead the loop asks for an event's memory.
const PREFETCH_AHEAD: usize = 8;

/// How many events ahead the loop asks for the bytes of an event's text
/// fields (read through the pointers in its lines, asked for
/// `PREFETCH_AHEAD` events ahead). Why: on the real logs, where events were
/// parsed into strings all over the heap, the first read of a field's bytes
/// was the host set's largest single cost (perf: a fifth of its time, on the
/// load of `event.dataset`'s bytes).
const TEXT_PREFETCH_AHEAD: usize = 4;

/// How many rows ahead the output asks for a row's memory.
const OUTPUT_PREFETCH_AHEAD: usize = 8;

/// Compute the features of `cfg` over `events`. See [`entity_features_with_report`].
pub fn entity_features(events: &[Event], cfg: &EntityConfig) -> Result<Table, FeatureError> {
    entity_features_with_report(events, cfg).map(|(t, _)| t)
}

/// Compute the features of `cfg` over `events`, with a report of skipped events.
pub fn entity_features_with_report(
    events: &[Event],
    cfg: &EntityConfig,
) -> Result<(Table, EntityReport), FeatureError> {
    let mut agg = EntityAggregator::new(cfg)?;
    agg.push(events);
    Ok(agg.finish())
}

/// The entity engine fed a chunk of events at a time, so that a long log's
/// events need not all be in memory: only the rows (entity × window) are
/// kept. Pushing the events in chunks, in order, gives the same table as
/// [`entity_features_with_report`] over all of them at once, bit for bit
/// (a chunk is cut into the same batches when its length is a multiple of
/// [`EntityAggregator::CHUNK_MULTIPLE`]; any cut gives the same values,
/// which do not depend on batching, but this keeps even the work alike).
pub struct EntityAggregator {
    name: String,
    defs: Vec<FeatureDef>,
    c: Compiled,
    /// The window of the output rows.
    window_us: i64,
    /// The window the event loop aggregates into: `window_us`, or the step
    /// when the rows are built from panes (see [`pane_count`]).
    engine_window_us: i64,
    step_us: i64,
    /// Panes per window (see [`pane_count`]); 1 when the event loop makes
    /// the windows' rows itself.
    panes: i64,
    hs: ahash::RandomState,
    ents: Entities,
    index: RowIndex,
    rows: Rows,
    report: EntityReport,
    aggregating: std::time::Duration,
    plans: Plans,
}

impl EntityAggregator {
    /// Chunks whose length is a multiple of this are cut into the engine's batches exactly.
    pub const CHUNK_MULTIPLE: usize = BATCH;

    pub fn new(cfg: &EntityConfig) -> Result<EntityAggregator, FeatureError> {
        let c = compile(cfg)?;
        let to_us = |secs: i64, key: &str| {
            secs.checked_mul(1_000_000)
                .ok_or_else(|| FeatureError::Config(format!("key `{key}`: too long")))
        };
        let window_us = to_us(cfg.window_secs()?, "window")?;
        let step_us = match &cfg.slide {
            Some(s) => to_us(
                parse_duration(s).map_err(|m| FeatureError::Config(format!("key `slide`: {m}")))?,
                "slide",
            )?,
            None => window_us,
        };
        let rows = Rows::new(&c);
        let plans = Plans::new(&c);
        let panes = pane_count(&c, window_us, step_us);
        let engine_window_us = if panes > 1 { step_us } else { window_us };
        Ok(EntityAggregator {
            name: cfg.name.clone(),
            defs: cfg.defs(),
            c,
            window_us,
            engine_window_us,
            step_us,
            panes,
            hs: ahash::RandomState::with_seeds(0x0005_eed1, 0x0005_eed2, 0x0005_eed3, 0x0005_eed4),
            ents: Entities::default(),
            index: RowIndex::new(engine_window_us, step_us),
            rows,
            plans,
            report: EntityReport::default(),
            aggregating: std::time::Duration::ZERO,
        })
    }

    /// Adds `events` (the next ones in input order) to the rows.
    pub fn push(&mut self, events: &[Event]) {
        let started = std::time::Instant::now();
        self.report.events += events.len();
        let mut batch = Batch::default();
        let mut engine = Engine {
            c: &self.c,
            window_us: self.engine_window_us,
            step_us: self.step_us,
            hs: &self.hs,
            ents: &mut self.ents,
            index: &mut self.index,
            rows: &mut self.rows,
            plans: &mut self.plans,
        };
        let before = self.report.events - events.len();
        for (at, chunk) in events.chunks(BATCH).enumerate() {
            engine.rows.progress = (before + at * BATCH, self.report.events);
            engine.batch(chunk, &events[at * BATCH..], &mut batch, &mut self.report);
        }
        self.aggregating += started.elapsed();
    }

    /// Events pushed so far.
    pub fn events(&self) -> usize {
        self.report.events
    }

    /// The table (rows sorted by entity, then window) and the report.
    pub fn finish(self) -> (Table, EntityReport) {
        let started = std::time::Instant::now();
        let EntityAggregator {
            name,
            defs,
            c,
            window_us,
            step_us,
            panes,
            ents,
            mut rows,
            mut report,
            aggregating,
            ..
        } = self;
        if panes > 1 {
            rows = windows_from_panes(&c, rows, panes, step_us);
        }
        // deterministic order: entity name, its kind, then window start (the
        // kind keeps an IP and a host name that print alike apart, so new-peer
        // state is per entity, and orders them whatever order they came in)
        let mut by_name: Vec<u32> = (0..ents.names.len() as u32).collect();
        by_name.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            (&ents.names[a], ents.kinds[a]).cmp(&(&ents.names[b], ents.kinds[b]))
        });
        let mut rank = vec![0u32; by_name.len()];
        for (r, &id) in by_name.iter().enumerate() {
            rank[id as usize] = r as u32;
        }
        let order = rows_in_order(&rows.entity, &rows.window, &rank);
        // windows are few; format each bound once
        let mut bounds: AHashMap<i64, (String, String)> = AHashMap::new();
        let n = rows.len();
        report.rows = n;
        let mut cols = crate::table_util::ColumnBlocks::new(c.features.len(), n);
        // new peers: values not in the entity's earlier windows (rows are sorted)
        // (per feature: a new-peer count's values so far in the entity's windows)
        let mut seen: Vec<OpenSet> = (0..c.features.len())
            .map(|_| OpenSet::with_capacity(0))
            .collect();
        let mut prev_entity = u32::MAX;
        let mut ids = IdCols::new(
            &[
                ("entity", ColumnRole::Identity),
                ("window_start", ColumnRole::Identity),
                ("window_end", ColumnRole::Identity),
            ],
            n,
        );
        for (at, &i) in order.iter().enumerate() {
            if let Some(&ahead) = order.get(at + OUTPUT_PREFETCH_AHEAD) {
                rows.prefetch(ahead);
            }
            if let Some(&soon) = order.get(at + OUTPUT_PREFETCH_AHEAD / 2) {
                rows.prefetch_large_sets(soon);
            }
            let row = rows.view(i);
            if row.entity != prev_entity {
                seen.iter_mut().for_each(|s| s.clear());
                prev_entity = row.entity;
            }
            ids.cols[0].2.push(Some(&ents.names[row.entity as usize]));
            let (ws, we) = bounds.entry(row.window).or_insert_with(|| {
                (
                    ts_text(row.window),
                    ts_text(row.window.saturating_add(window_us)),
                )
            });
            ids.cols[1].2.push(Some(ws));
            ids.cols[2].2.push(Some(we));
            let out = cols.next_row();
            for (j, f) in c.features.iter().enumerate() {
                let s = f.slot;
                let x = match f.agg {
                    Agg::Count => row.acc[s],
                    Agg::Sum | Agg::Min | Agg::Max => {
                        if row.acc[s + 1] > 0.0 {
                            row.acc[s]
                        } else {
                            f64::NAN
                        }
                    }
                    Agg::Mean | Agg::Ratio => {
                        if row.acc[s + 1] > 0.0 {
                            row.acc[s] / row.acc[s + 1]
                        } else {
                            f64::NAN
                        }
                    }
                    Agg::Distinct if f.counted => row.acc[s],
                    Agg::Distinct => row.sets[f.set].len() as f64,
                    Agg::NewPeers => {
                        // the row's values are distinct, so each one's insert
                        // tells whether an earlier window had it
                        // rotated: a set filled in another set's slot order
                        // (the same low bits, sorted) would cluster badly
                        let seen = &mut seen[j];
                        row.sets[f.set]
                            .values(&rows.medium)
                            .filter(|&h| seen.insert(h.rotate_left(32)))
                            .count() as f64
                    }
                };
                out[j] = x;
            }
        }
        let table = crate::table_util::build_table(&name, defs, cols.finish(), ids);
        tracing::debug!(
            set = %name,
            events = report.events,
            rows = report.rows,
            aggregate_ms = aggregating.as_secs_f64() * 1e3,
            table_ms = started.elapsed().as_secs_f64() * 1e3,
            "entity features"
        );
        (table, report)
    }
}

/// Panes per window when every feature of `c` can be built from panes,
/// else 1. A sliding window of `m` steps is the union of `m` consecutive
/// tumbling panes of one step; when every feature's state combines across
/// panes exactly (counts without `once_per`, ratios, min, max: integers
/// added, or a min or max taken), the event loop aggregates each event into
/// its one pane, and [`windows_from_panes`] builds each window's row from
/// its panes, instead of adding each event to its `m` windows' rows; the
/// table is the same, bit for bit. Sums and means stay per window: a sum of
/// pane sums would round differently from the sum of the events. Sets
/// (distinct and new-peer values) are never built from panes:
/// [`windows_from_panes`] combines accumulators only. Why panes: a sliding
/// count of 1 h by 15 min did 4 row lookups and updates per event; with
/// panes it does one, and the windows are then made entity by entity from
/// panes in order (after Li et al., "No pane, no gain", SIGMOD Record 2005).
fn pane_count(c: &Compiled, window_us: i64, step_us: i64) -> i64 {
    let combines = |f: &CFeature| match f.agg {
        Agg::Count => f.once_per.is_none() && !f.exclusive,
        Agg::Ratio | Agg::Min | Agg::Max => true,
        Agg::Sum | Agg::Mean | Agg::Distinct | Agg::NewPeers => false,
    };
    if step_us <= 0 || step_us >= window_us || window_us % step_us != 0 || c.n_sets != 0 {
        return 1;
    }
    if c.features.iter().all(combines) {
        window_us / step_us
    } else {
        1
    }
}

/// The rows of the windows of `panes` steps from the rows of the panes
/// (tumbling windows of one step; see [`pane_count`]): one row per
/// (entity, window) whose panes hold at least one row, as the event loop
/// would have made them, each row's state the panes' combined. The rows
/// come entity by entity, in window order.
fn windows_from_panes(c: &Compiled, mut rows: Rows, panes: i64, step_us: i64) -> Rows {
    let n_slots = rows.n_slots;
    let ids: Vec<u32> = (0..rows.entity.iter().max().map_or(0, |&m| m + 1)).collect();
    let order = rows_in_order(&rows.entity, &rows.window, &ids);
    let p_entity = std::mem::take(&mut rows.entity);
    let p_window = std::mem::take(&mut rows.window);
    let p_acc = std::mem::take(&mut rows.acc);
    rows.entity.reserve(p_entity.len());
    rows.window.reserve(p_entity.len());
    rows.acc.reserve(p_acc.len());
    // the window starting at w holds the panes starting in w..=w + span
    let span = (panes - 1).saturating_mul(step_us);
    let mut at = 0;
    while at < order.len() {
        let e = p_entity[order[at]];
        let end = at
            + order[at..]
                .iter()
                .take_while(|&&i| p_entity[i] == e)
                .count();
        // this entity's panes, in window order
        let group = &order[at..end];
        let start = |k: usize| p_window[group[k]];
        // panes group[lo..hi] lie in window w
        let (mut lo, mut hi) = (0, 0);
        let mut w = start(0).saturating_sub(span);
        loop {
            while lo < group.len() && start(lo) < w {
                lo += 1;
            }
            if lo == group.len() {
                break;
            }
            if start(lo) > w.saturating_add(span) {
                // no pane until group[lo]: its first window next
                w = start(lo).saturating_sub(span);
            }
            while hi < group.len() && start(hi) <= w.saturating_add(span) {
                hi += 1;
            }
            let r = rows.push(e, w) as usize;
            let acc = &mut rows.acc[r * n_slots..(r + 1) * n_slots];
            for &p in &group[lo..hi] {
                let pane = &p_acc[p * n_slots..(p + 1) * n_slots];
                for f in &c.features {
                    let s = f.slot;
                    // the second slot: a ratio's denominator, or how many
                    // values a min or max saw
                    match f.agg {
                        Agg::Count => acc[s] += pane[s],
                        Agg::Ratio => {
                            acc[s] += pane[s];
                            acc[s + 1] += pane[s + 1];
                        }
                        Agg::Min => {
                            acc[s] = acc[s].min(pane[s]);
                            acc[s + 1] += pane[s + 1];
                        }
                        Agg::Max => {
                            acc[s] = acc[s].max(pane[s]);
                            acc[s + 1] += pane[s + 1];
                        }
                        // `pane_count` admits no other
                        Agg::Sum | Agg::Mean | Agg::Distinct | Agg::NewPeers => {
                            debug_assert!(false, "{:?} built from panes", f.agg)
                        }
                    }
                }
            }
            match w.checked_add(step_us) {
                Some(next) => w = next,
                None => break,
            }
        }
        at = end;
    }
    rows
}

/// The rows' indices ordered by (rank of their entity, window start).
///
/// Why not one sort of (rank, window, row) triples: a counting sort by rank
/// is linear, and it keeps each entity's rows in the order they were made,
/// which for input in time order is already window order (each slice is
/// checked, and sorted only if it is not). The comparison sort was ~6% of
/// a sliding window's run, whose rows outnumber its events by half.
fn rows_in_order(entity: &[u32], window: &[i64], rank: &[u32]) -> Vec<usize> {
    // starts[k]: where rank k's rows begin in `order`
    let mut starts = vec![0usize; rank.len() + 1];
    for &e in entity {
        starts[rank[e as usize] as usize + 1] += 1;
    }
    for k in 1..starts.len() {
        starts[k] += starts[k - 1];
    }
    let mut next = starts.clone();
    let mut order = vec![0usize; entity.len()];
    for (i, &e) in entity.iter().enumerate() {
        let k = rank[e as usize] as usize;
        order[next[k]] = i;
        next[k] += 1;
    }
    for w in starts.windows(2) {
        let slice = &mut order[w[0]..w[1]];
        if !slice.is_sorted_by_key(|&i| window[i]) {
            slice.sort_unstable_by_key(|&i| window[i]);
        }
    }
    order
}

/// Events the engine takes at a time. Why batches: the engine then works
/// feature by feature over a batch, one tight loop per feature with its
/// aggregation known outside the loop, where it went event by event through
/// every feature (that dispatch was most of the flow set's ~2,700
/// instructions per event, callgrind); and a batch's inserts into distinct
/// sets are known before they are made, so their memory is asked for
/// ahead. 256 events' fields stay in the L1/L2 caches between the passes.
const BATCH: usize = 256;

/// How many inserts ahead a distinct set's slot is asked for.
const INSERT_PREFETCH_AHEAD: usize = 8;

/// One batch's events that have a timestamp, and what the first pass found
/// for each (index i in every vector).
#[derive(Default)]
struct Batch<'a> {
    events: Vec<&'a Event>,
    bits: Vec<u128>,
    /// The windows holding the event: starts k·step for k in k_lo..=k_hi.
    windows: Vec<(i64, i64)>,
    key: Vec<Option<u32>>,
    /// The key entity's rows, one per window: `key_rows[at[i]..at[i + 1]]`.
    key_rows: Vec<u32>,
    at: Vec<u32>,
    /// Every event of the batch has one key row, `key_rows[i]` (tumbling
    /// windows, every event keyed): `at` is then 0, 1, 2, …
    one_row_each: bool,
    attributed: Vec<bool>,
    /// Per event and entity getter, the entity id once looked up
    /// (`getter_ids[i · getters + g]`): features share getters (the host
    /// set's 23 features read source.ip / destination.ip in most of their
    /// alternatives).
    getter_ids: Vec<Option<Option<u32>>>,
    /// Per event and entity getter (as `getter_ids`), the getter's value
    /// when it is an IPv4 address, `1 << 32 | address`, else 0: read in
    /// pass 1 (to ask for its entity's slot), so that pass 2 need not read
    /// the event again. Why: pass 2 read the address a second time and
    /// passed it on as an `EKey` through the stack, where most of the
    /// samples of `push` fell (perf); with this, the host set took 674 M
    /// instructions instead of 703 M (callgrind) and 72.5–72.7 ms instead
    /// of 90–91 (twenty-second session, Emerald Rapids, alternated); the
    /// host set on the real logs alike.
    getter_v4: Vec<u64>,
    /// A distinct feature's (row, value hash) inserts, made after they are
    /// all known.
    inserts: Vec<(u32, u64)>,
    targets: Vec<(u32, Option<Accessor>)>,
    /// Per feature (planned ones only): the batch's events that meet one of
    /// its alternatives, and which ones (see [`Plans`]).
    hits: Vec<Vec<(u32, u64)>>,
    span: WindowSpan,
}

/// The windows of the last timestamp asked for, and the timestamps that
/// share them. Why: logs come roughly in time order, so most events fall
/// in the windows of the one before, and this check replaces two 64-bit
/// divisions per event.
#[derive(Default)]
struct WindowSpan {
    /// Timestamps in `from..until` have the windows `k`.
    from: i64,
    until: i64,
    k: (i64, i64),
}

impl WindowSpan {
    /// The windows holding `ts`: starts k·step for k in k_lo..=k_hi, with
    /// start ≤ ts < start + window.
    #[inline]
    fn windows(&mut self, ts: i64, window: i64, step: i64) -> (i64, i64) {
        if ts >= self.from && ts < self.until {
            return self.k;
        }
        let k_hi = ts.div_euclid(step);
        let k_lo = ts.saturating_sub(window).div_euclid(step) + 1;
        // k_hi holds for ts in [k_hi·step, (k_hi+1)·step), k_lo for ts in
        // [(k_lo−1)·step + window, k_lo·step + window); an overflow anywhere
        // leaves the span empty, so the next event computes its own.
        let span = || -> Option<(i64, i64)> {
            ts.checked_sub(window)?;
            let from =
                (k_hi.checked_mul(step)?).max((k_lo - 1).checked_mul(step)?.checked_add(window)?);
            let until = (k_hi + 1)
                .checked_mul(step)?
                .min(k_lo.checked_mul(step)?.checked_add(window)?);
            Some((from, until))
        };
        (self.from, self.until) = span().unwrap_or((0, 0));
        self.k = (k_lo, k_hi);
        self.k
    }
}

/// Each event of a batch: its condition bits, the event, its key rows.
#[inline]
fn key_rows_of<'x>(
    bits: &'x [u128],
    events: &'x [&Event],
    at: &'x [u32],
    key_rows: &'x [u32],
) -> impl Iterator<Item = (u128, &'x Event, &'x [u32])> {
    bits.iter()
        .zip(events)
        .zip(at.windows(2))
        .map(move |((&b, &e), w)| (b, e, &key_rows[w[0] as usize..w[1] as usize]))
}

/// The aggregation state and what it needs, for one batch at a time.
struct Engine<'a> {
    c: &'a Compiled,
    window_us: i64,
    step_us: i64,
    hs: &'a ahash::RandomState,
    ents: &'a mut Entities,
    index: &'a mut RowIndex,
    rows: &'a mut Rows,
    plans: &'a mut Plans,
}

impl Engine<'_> {
    /// Adds `chunk` to the rows. `upcoming` starts with the chunk and goes
    /// on with the events after it (events to prefetch).
    fn batch<'b>(
        &mut self,
        chunk: &'b [Event],
        upcoming: &'b [Event],
        b: &mut Batch<'b>,
        report: &mut EntityReport,
    ) {
        let c = self.c;
        b.events.clear();
        b.bits.clear();
        b.windows.clear();
        b.key.clear();
        b.key_rows.clear();
        b.at.clear();
        b.at.push(0);
        b.attributed.clear();
        b.getter_v4.clear();
        b.one_row_each = true;
        b.hits.resize_with(c.features.len(), Vec::new);
        for &fi in &self.plans.planned {
            b.hits[fi].clear();
        }
        // pass 1, event by event: conditions, key entity, its rows
        for (j, e) in chunk.iter().enumerate() {
            if let Some(next) = upcoming.get(j + PREFETCH_AHEAD) {
                prefetch_event(next, &c.prefetch);
            }
            // its text's bytes, once its own lines have had time to come
            if c.text_prefetch != 0 {
                if let Some(near) = upcoming.get(j + TEXT_PREFETCH_AHEAD) {
                    prefetch_event_text(near, c.text_prefetch);
                }
            }
            let Some(ts) = e.timestamp_us else {
                report.without_timestamp += 1;
                continue;
            };
            let bits = c.by_field.iter().fold(0u128, |b, fc| b | fc.eval(e));
            let key = c
                .keys
                .iter()
                .find_map(|k| k.get(e).and_then(ekey))
                .map(|k| self.ents.id(k));
            // the second pass looks these entities up
            for g in &c.entity_getters {
                let v4 = match g.get(e) {
                    Some(FieldValue::Ip(IpAddr::V4(ip))) => {
                        self.ents.ip4s.prefetch(ip.to_bits());
                        1 << 32 | u64::from(ip.to_bits())
                    }
                    _ => 0,
                };
                b.getter_v4.push(v4);
            }
            let (k_lo, k_hi) = b.span.windows(ts, self.window_us, self.step_us);
            if let Some(d) = key {
                for k in k_lo..=k_hi {
                    let r = row_of(self.index, self.rows, d, k, k * self.step_us);
                    b.key_rows.push(r);
                }
            }
            b.events.push(e);
            b.bits.push(bits);
            b.windows.push((k_lo, k_hi));
            b.key.push(key);
            b.at.push(b.key_rows.len() as u32);
            b.one_row_each &= b.key_rows.len() == b.events.len();
            b.attributed.push(key.is_some());
        }
        b.getter_ids.clear();
        b.getter_ids
            .resize(b.events.len() * c.entity_getters.len(), None);
        // Every bit some event of the batch has. Why: a feature none of
        // whose alternatives fits within it hits no event here, and is
        // passed by without testing each event (the host set's Windows
        // features on a batch of Zeek events: most of its 23).
        let any_bits = b.bits.iter().fold(0u128, |acc, &x| acc | x);
        // each event under the features with alternatives that it meets
        // (none to look for in a batch none of them can meet: the usual case
        // in a mixed log, whose batches mostly hold one dataset)
        let planned = &self.plans.planned;
        if planned.iter().any(|&fi| c.features[fi].hits(any_bits)) {
            for (i, &bits) in b.bits.iter().enumerate() {
                let (from, to) = self.plans.of(bits, c);
                for &(fi, met) in &self.plans.steps[from..to] {
                    b.hits[fi as usize].push((i as u32, met));
                }
            }
        }
        // pass 2, feature by feature
        for (fi, f) in c.features.iter().enumerate() {
            if f.shares_set {
                continue;
            }
            if f.by_key {
                if f.hits(any_bits) {
                    self.by_key(f, b);
                }
            } else if !b.hits[fi].is_empty() {
                self.by_alternative(f, fi, b);
            }
        }
        report.without_entity += b.attributed.iter().filter(|&&a| !a).count();
    }

    /// A feature whose events all count for their key entity's rows.
    fn by_key(&mut self, f: &CFeature, b: &mut Batch<'_>) {
        let mut inserts = std::mem::take(&mut b.inserts);
        if b.one_row_each {
            // row i is event i's: the loops below with one row an event
            // known to the compiler, and no slicing of `key_rows` by `at`.
            // Why: the flow set runs nine such loops over each batch, and
            // the iterator of `key_rows_of` was ~8 instructions an event
            // and loop (with `CFeature::always`, the flow set's 597 M
            // instructions fell to 491 M; callgrind)
            let each = || {
                b.bits
                    .iter()
                    .zip(&b.events)
                    .zip(&b.key_rows)
                    .map(|((&bits, &e), r)| (bits, e, std::slice::from_ref(r)))
            };
            self.by_key_over(f, &mut inserts, each);
        } else {
            let each = || key_rows_of(&b.bits, &b.events, &b.at, &b.key_rows);
            self.by_key_over(f, &mut inserts, each);
        }
        b.inserts = inserts;
    }

    /// [`Engine::by_key`] over `each()`: each event of the batch with its
    /// condition bits and key rows. `inserts`: room for a distinct
    /// feature's inserts.
    #[inline(always)]
    fn by_key_over<'x, I>(
        &mut self,
        f: &CFeature,
        inserts: &mut Vec<(u32, u64)>,
        each: impl Fn() -> I,
    ) where
        I: Iterator<Item = (u128, &'x Event, &'x [u32])>,
    {
        let (ns, s) = (self.rows.n_slots, f.slot);
        let acc = &mut self.rows.acc;
        match f.agg {
            Agg::Count if f.once_per.is_none() => {
                for (bits, _, rows) in each() {
                    if f.hits(bits) {
                        for &r in rows {
                            acc[r as usize * ns + s] += 1.0;
                        }
                    }
                }
            }
            Agg::Ratio => {
                for (bits, _, rows) in each() {
                    if f.hits(bits) {
                        let in_num = f.num.iter().any(|m| bits & m == *m) as u8 as f64;
                        for &r in rows {
                            let at = r as usize * ns + s;
                            acc[at] += in_num;
                            acc[at + 1] += 1.0;
                        }
                    }
                }
            }
            Agg::Sum | Agg::Mean | Agg::Min | Agg::Max => {
                let Some(get) = f.field else { return };
                // one loop per type of field (see `Typed`); `read(e)`: the
                // event's value as `num_of` gives it
                macro_rules! numbers {
                    ($read:expr) => {{
                        let read = $read;
                        for (bits, e, rows) in each() {
                            if !f.hits(bits) {
                                continue;
                            }
                            let Some(x) = read(e) else {
                                continue;
                            };
                            let x = x * f.scale;
                            for &r in rows {
                                let at = r as usize * ns + s;
                                add_number(f.agg, &mut acc[at..at + 2], x);
                            }
                        }
                    }};
                }
                match get.typed() {
                    Typed::I64(t) => numbers!(|e| t.get(e).map(|&v| v as f64)),
                    Typed::U64(t) => numbers!(|e| t.get(e).map(|&v| v as i64 as f64)),
                    Typed::U32(t) => numbers!(|e| t.get(e).map(|&v| f64::from(v))),
                    Typed::U16(t) => numbers!(|e| t.get(e).map(|&v| f64::from(v))),
                    // text and addresses have no number (`num_of`)
                    Typed::Str(_) | Typed::Ip(_) => {}
                    Typed::Named => numbers!(|e| get.get(e).and_then(num_of)),
                }
            }
            Agg::Distinct | Agg::NewPeers => {
                let Some(get) = f.field else { return };
                inserts.clear();
                let hs = self.hs;
                // one loop per type of field (see `Typed`); `hash(e)`: the
                // event's `value_hash` (this loop and `numbers!` above share
                // their shape; one macro for both, the body passed as a
                // closure, was 0.8% more instructions for the flow set)
                macro_rules! values {
                    ($hash:expr) => {{
                        let hash = $hash;
                        for (bits, e, rows) in each() {
                            if !f.hits(bits) {
                                continue;
                            }
                            let Some(h) = hash(e) else {
                                continue;
                            };
                            for &r in rows {
                                if !f.counted {
                                    self.rows.prefetch_set(r, f.set);
                                }
                                inserts.push((r, h));
                            }
                        }
                    }};
                }
                let int = |v: i64| value_hash(hs, &FieldValue::Int(v));
                match get.typed() {
                    Typed::Ip(t) => {
                        values!(|e| t.get(e).map(|&ip| value_hash(hs, &FieldValue::Ip(ip))))
                    }
                    Typed::U16(t) => values!(|e| t.get(e).map(|&v| int(v.into()))),
                    Typed::U32(t) => values!(|e| t.get(e).map(|&v| int(v.into()))),
                    Typed::U64(t) => values!(|e| t.get(e).map(|&v| int(v as i64))),
                    Typed::I64(t) => values!(|e| t.get(e).map(|&v| int(v))),
                    Typed::Str(t) => {
                        values!(|e| t.get(e).map(|v| value_hash(hs, &FieldValue::Str(v))))
                    }
                    Typed::Named => values!(|e| get.get(e).map(|v| value_hash(hs, &v))),
                }
                if f.counted {
                    self.rows.count_all(f.set, f.slot, inserts);
                } else {
                    self.rows.insert_all(f.set, inserts);
                }
            }
            Agg::Count => {
                for (bits, e, rows) in each() {
                    if f.hits(bits) {
                        let add = contribution(f, f.field, e, bits, self.hs);
                        for &r in rows {
                            self.rows.add(f, r, add);
                        }
                    }
                }
            }
        }
    }

    /// A feature with alternatives that name their own entity or field,
    /// over the events of the batch that meet one of them (`b.hits[fi]`).
    fn by_alternative(&mut self, f: &CFeature, fi: usize, b: &mut Batch<'_>) {
        let values = matches!(f.agg, Agg::Distinct | Agg::NewPeers);
        b.inserts.clear();
        let hits = std::mem::take(&mut b.hits[fi]);
        for &(i, met) in &hits {
            let i = i as usize;
            // One alternative met, the usual case (a set's alternatives
            // mostly tell datasets or event ids apart): its entity, with no
            // list of targets to build and search. Why: a hit through the
            // general path below was ~390 instructions for a plain count,
            // ~250 with this and `Batch::getter_v4` (callgrind, one count
            // over the host set's Zeek alternative against the same set met
            // by no event); the host set's Zeek events hit two or three
            // features each (its instructions 763 M → 703 M with this).
            if met & (met - 1) == 0 && met & BEYOND == 0 {
                let alt = &f.alts[met.trailing_zeros() as usize];
                if let Some(id) = self.alt_entity(alt, i, b) {
                    b.attributed[i] = true;
                    self.add_to_entity(f, i, id, alt.field.or(f.field), values, b);
                }
                continue;
            }
            let bits = b.bits[i];
            b.targets.clear();
            // the alternatives met, in their order: the first 63 by bit, any
            // beyond tested here (see `Plans::plan`)
            let beyond = if met & BEYOND != 0 {
                &f.alts[63..]
            } else {
                &[]
            };
            let met_alts = set_bits(met & !BEYOND)
                .map(|a| &f.alts[a])
                .chain(beyond.iter().filter(|a| bits & a.mask == a.mask));
            for alt in met_alts {
                if let Some(id) = self.alt_entity(alt, i, b) {
                    if !b.targets.iter().any(|t| t.0 == id) {
                        b.targets.push((id, alt.field.or(f.field)));
                    }
                }
            }
            if b.targets.is_empty() {
                continue;
            }
            b.attributed[i] = true;
            for t in 0..b.targets.len() {
                let (ent, field) = b.targets[t];
                self.add_to_entity(f, i, ent, field, values, b);
            }
        }
        b.hits[fi] = hits;
        if values && f.counted {
            self.rows.count_all(f.set, f.slot, &b.inserts);
        } else if values {
            self.rows.insert_all(f.set, &b.inserts);
        }
    }

    /// The entity that alternative `alt` attributes event i of the batch
    /// to: its key entity, or the one its `entity` field names (looked up
    /// once per event and field, from the address pass 1 kept when it is
    /// an IPv4 one).
    #[inline(always)]
    fn alt_entity(&mut self, alt: &Alt, i: usize, b: &mut Batch<'_>) -> Option<u32> {
        let Some(g) = alt.entity else {
            return b.key[i];
        };
        let at = i * self.c.entity_getters.len() + g;
        if let Some(id) = b.getter_ids[at] {
            return id;
        }
        let id = match b.getter_v4[at] {
            0 => self.c.entity_getters[g]
                .get(b.events[i])
                .and_then(ekey)
                .map(|k| self.ents.id(k)),
            v4 => Some(self.ents.id_v4(v4 as u32)),
        };
        b.getter_ids[at] = Some(id);
        id
    }

    /// Adds event i of the batch to feature `f` of entity `ent`'s rows
    /// (`field`: the alternative's field, else the feature's); a distinct
    /// value goes to `b.inserts`, made after the batch's hits.
    #[inline(always)]
    fn add_to_entity(
        &mut self,
        f: &CFeature,
        i: usize,
        ent: u32,
        field: Option<Accessor>,
        values: bool,
        b: &mut Batch<'_>,
    ) {
        let add = contribution(f, field, b.events[i], b.bits[i], self.hs);
        let own = b.key[i] == Some(ent);
        let (k_lo, k_hi) = b.windows[i];
        for k in k_lo..=k_hi {
            let r = if own {
                b.key_rows[b.at[i] as usize + (k - k_lo) as usize]
            } else {
                row_of(self.index, self.rows, ent, k, k * self.step_us)
            };
            match add {
                // a plain count: the one add, here (through
                // `Rows::add`, ~50 instructions a call)
                Contribution::Count(None) => {
                    self.rows.acc[r as usize * self.rows.n_slots + f.slot] += 1.0;
                }
                Contribution::Value(Some(h)) if values => {
                    if !f.counted {
                        self.rows.prefetch_set(r, f.set);
                    }
                    b.inserts.push((r, h));
                }
                _ => self.rows.add(f, r, add),
            }
        }
    }
}

/// The indexes of the bits set in `m`, lowest first.
#[inline]
fn set_bits(mut m: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (m != 0).then(|| {
            let a = m.trailing_zeros() as usize;
            m &= m - 1;
            a
        })
    })
}

/// Bit 63 of a plan's alternatives: one of the 64th and later met.
const BEYOND: u64 = 1 << 63;

/// log2 of the slots of [`Plans::cache`].
const PLAN_CACHE_LOG2: u32 = 8;

/// Distinct condition-bit patterns, and steps of their plans, memoised
/// before the memo starts over (it holds at most ~16 MiB of steps).
const MAX_PLANS: usize = 1 << 16;
const MAX_STEPS: usize = 1 << 20;

/// Per pattern of condition bits, the features with alternatives (those
/// not `by_key`) that an event with those bits meets, and which of their
/// alternatives: worked out once per pattern, not once per event and
/// feature. Why: each such feature was tested on every event of a batch
/// that might meet it, and each met alternative found by testing them all,
/// in branches that follow the data; a log has few patterns (the throughput
/// bench's synthetic Zeek events 5, the 132k events of the real logs of
/// `bench/entity_equivalence.sh` 44), and an event meets a handful of the
/// host set's 23 features. The plan of an event is a lookup of its bits;
/// the feature then visits only the events that meet it. Callgrind
/// (thirteenth session): host set 848.6 M → 793.8 M instructions (−6.5%),
/// mispredicted conditional branches (its simulation) 2.84 M → 2.40 M; on
/// the real logs 137.3 M → 135.4 M and 654 k → 537 k. Wall time on that
/// session's VM did not resolve it (±20% run to run).
struct Plans {
    /// In front of `memo`, by a hash of the bits: (bits, its plan's steps).
    cache: Box<[(u128, u32, u32)]>,
    memo: AHashMap<u128, (u32, u32)>,
    /// (feature index, the alternatives met: bit a for alternative a < 63,
    /// [`BEYOND`] for any later one), plans one after another.
    steps: Vec<(u32, u64)>,
    /// Indexes of the planned features: not `by_key`, not `shares_set`.
    planned: Vec<usize>,
}

impl Plans {
    fn new(c: &Compiled) -> Plans {
        let planned = (0..c.features.len())
            .filter(|&i| !c.features[i].by_key && !c.features[i].shares_set)
            .collect();
        let mut p = Plans {
            cache: Box::new([]),
            memo: AHashMap::default(),
            steps: Vec::new(),
            planned,
        };
        p.start_over(c);
        p
    }

    /// Forgets every plan; the cache holds that of the bits 0 in every slot.
    fn start_over(&mut self, c: &Compiled) {
        self.memo.clear();
        self.steps.clear();
        let zero = self.plan(0, c);
        self.memo.insert(0, zero);
        self.cache = vec![(0, zero.0, zero.1); 1 << PLAN_CACHE_LOG2].into_boxed_slice();
    }

    /// The steps of the plan for `bits`: `steps[from..to]`.
    #[inline]
    fn of(&mut self, bits: u128, c: &Compiled) -> (usize, usize) {
        let folded = (bits as u64) ^ ((bits >> 64) as u64).rotate_left(31);
        let slot = (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - PLAN_CACHE_LOG2)) as usize;
        let (b, from, to) = self.cache[slot];
        if b == bits {
            return (from as usize, to as usize);
        }
        self.miss(bits, slot, c)
    }

    #[cold]
    #[inline(never)]
    fn miss(&mut self, bits: u128, slot: usize, c: &Compiled) -> (usize, usize) {
        let (from, to) = match self.memo.get(&bits) {
            Some(&p) => p,
            None => {
                if self.memo.len() >= MAX_PLANS || self.steps.len() >= MAX_STEPS {
                    self.start_over(c);
                }
                let p = self.plan(bits, c);
                self.memo.insert(bits, p);
                p
            }
        };
        self.cache[slot] = (bits, from, to);
        (from as usize, to as usize)
    }

    /// Appends the plan of `bits` to `steps`; its range.
    fn plan(&mut self, bits: u128, c: &Compiled) -> (u32, u32) {
        let from = self.steps.len() as u32;
        for &fi in &self.planned {
            let met = c.features[fi]
                .alts
                .iter()
                .enumerate()
                .filter(|(_, a)| a.mask & !bits == 0)
                .fold(0u64, |m, (a, _)| m | if a < 63 { 1 << a } else { BEYOND });
            if met != 0 {
                self.steps.push((fi as u32, met));
            }
        }
        (from, self.steps.len() as u32)
    }
}

/// (entity, window start) → row.
struct RowIndex {
    /// Every row, once the input has gone back in time (see `newest`);
    /// empty until then (so: not empty = every row is in it).
    map: AHashMap<(u32, i64), u32>,
    /// Per entity id, the latest window start it has a row for. Why: while
    /// no event asks for a window older than its entity's latest (input in
    /// time order, as logs mostly are), a window past it is new and needs no
    /// lookup, nor a place in `map`; the first event that goes back in time
    /// puts every row in `map`, and from then on each new one. A sliding
    /// count built from panes makes a row for about every second event, and
    /// the map's inserts were a fifth of its run (perf).
    newest: Vec<i64>,
    /// log2 of the places per entity: the number of windows an event can
    /// fall in (window / step, rounded up), rounded up to a power of two
    /// (so that the place is a shift and a mask, not a division; tumbling
    /// windows have one place).
    ways_log2: u32,
    /// Per entity id, 2^`ways_log2` (window start, row) pairs: those of the
    /// windows it last asked for, window k in place k mod 2^`ways_log2`. Why: logs
    /// come roughly in time order, so an entity's next event is almost
    /// always in the windows of its last one, and this plain array read
    /// (indexed by the entity id the event already has) saves a hash lookup
    /// per event and window. A sliding window's event asks for up to
    /// 2^`ways_log2` consecutive windows, which take distinct places; with one place per
    /// entity they evicted each other, and every lookup of a 1 h window
    /// sliding by 15 min went to the hash map.
    latest: Vec<(i64, u32)>,
}

impl RowIndex {
    fn new(window_us: i64, step_us: i64) -> RowIndex {
        // step ≤ window (the config checks); at most 64 places per entity
        // (more windows per event still work, looked up in the map)
        let ways = (window_us.saturating_add(step_us - 1) / step_us.max(1)).clamp(1, 64) as u64;
        RowIndex {
            map: AHashMap::default(),
            newest: Vec::new(),
            ways_log2: ways.next_power_of_two().trailing_zeros(),
            latest: Vec::new(),
        }
    }

    /// Where (entity, window k)'s pair is kept in `latest`: consecutive
    /// windows of one entity in distinct places (k's low bits; a negative
    /// k's two's complement bits are as good).
    #[inline]
    fn place(&self, ent: u32, k: i64) -> usize {
        let mask = (1usize << self.ways_log2) - 1;
        ((ent as usize) << self.ways_log2) | (k as usize & mask)
    }
}

/// The row of (entity, window k starting at `start`), made on first use.
#[inline]
fn row_of(index: &mut RowIndex, rows: &mut Rows, ent: u32, k: i64, start: i64) -> u32 {
    match index.latest.get(index.place(ent, k)) {
        Some(&(w, r)) if w == start && r != u32::MAX => r,
        _ => row_of_slow(index, rows, ent, k, start),
    }
}

/// Makes room in the rows (and the index's map, once it holds every row)
/// for as many rows as the input pushed so far projects (see
/// [`Rows::reserve_seen`]: at most 16× at a time below 2²⁰ rows, 2× beyond),
/// instead of doubling from empty. Why: a sliding count built from panes
/// makes a row for every second event or so, and the rows' reallocations
/// and the map's rehashes as they doubled were ~10% of its instructions
/// (callgrind).
#[inline(never)]
fn reserve_rows(index: &mut RowIndex, rows: &mut Rows) {
    let len = rows.len();
    let (done, total) = rows.progress;
    let projected = if done > 0 {
        (len as u128 * total as u128 / done as u128).min(usize::MAX as u128) as usize
    } else {
        len
    };
    let most = if len < 1 << 20 {
        16 * len.max(64)
    } else {
        2 * len
    };
    let extra = projected.min(most).max(2 * len).max(64) - len;
    rows.entity.reserve(extra);
    rows.window.reserve(extra);
    rows.acc.reserve(extra * rows.n_slots);
    rows.sets.reserve(extra * rows.n_sets);
    if !index.map.is_empty() {
        index.map.reserve(extra);
    }
}

#[cold]
#[inline(never)]
fn row_of_slow(index: &mut RowIndex, rows: &mut Rows, ent: u32, k: i64, start: i64) -> u32 {
    if rows.len() == rows.entity.capacity() {
        reserve_rows(index, rows);
    }
    let e = ent as usize;
    if index.newest.len() <= e {
        index.newest.resize(e + 1, i64::MIN);
    }
    let r = if start > index.newest[e] {
        // past the entity's latest window: a new row
        index.newest[e] = start;
        let r = rows.push(ent, start);
        if !index.map.is_empty() {
            index.map.insert((ent, start), r);
        }
        r
    } else {
        if index.map.is_empty() {
            // the input went back in time: from now on every row is mapped
            // (the entry below makes the map non-empty even with no rows yet)
            index.map.reserve(rows.len());
            for (i, (&ent, &start)) in rows.entity.iter().zip(&rows.window).enumerate() {
                index.map.insert((ent, start), i as u32);
            }
        }
        *index.map.entry((ent, start)).or_insert_with(|| {
            let r = rows.push(ent, start);
            index.newest[e] = index.newest[e].max(start);
            r
        })
    };
    let at = index.place(ent, k);
    if index.latest.len() <= at {
        let places = (ent as usize + 1) << index.ways_log2;
        index.latest.resize(places, (0, u32::MAX));
    }
    index.latest[at] = (start, r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Ports and IPv4 addresses hash without a collision, among themselves
    /// and with each other, and never to 0 (an empty slot); their low bits,
    /// the slot, spread.
    #[test]
    fn value_hash_keeps_ports_and_addresses_apart() {
        let hs = ahash::RandomState::with_seeds(1, 2, 3, 4);
        let mut seen = AHashSet::new();
        let mut low = [0u32; 256];
        for p in 0..=65_535i64 {
            let h = value_hash(&hs, &FieldValue::Int(p));
            assert!(h != 0 && seen.insert(h), "port {p}");
            low[(h & 255) as usize] += 1;
        }
        for i in 0..200_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i * 7));
            let h = value_hash(&hs, &FieldValue::Ip(ip));
            assert!(h != 0 && seen.insert(h), "{ip}");
        }
        // 65,536 ports over 256 low bytes: 256 each on average
        assert!(low.iter().all(|&n| (192..=320).contains(&n)), "{low:?}");
        // the hasher's path: IPv6 and text, apart from the rest
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(seen.insert(value_hash(&hs, &FieldValue::Ip(v6))));
        assert!(seen.insert(value_hash(&hs, &FieldValue::Str("22"))));
    }

    /// The plan of any pattern of bits, from the cache, the memo or made
    /// anew, lists the planned features it meets and exactly their
    /// alternatives met, through more patterns than the memo keeps (it
    /// starts over) and back to patterns seen before that.
    #[test]
    fn plans_list_the_alternatives_each_pattern_meets() {
        let mut toml = String::from("name = \"p\"\nkey = \"host.name\"\nwindow = \"1h\"\n");
        let fields = ["destination.port", "source.port", "winlog.event_id"];
        for f in 0..3 {
            toml.push_str(&format!(
                "[[feature]]\nname = \"f{f}\"\nagg = \"count\"\ndescription = \"d\"\nwhen = [\n"
            ));
            for a in 0..(20 + 30 * f) {
                let field = fields[a % 3];
                let entity = ["source.ip", "destination.ip"][a % 2];
                toml.push_str(&format!(
                    "  {{ entity = \"{entity}\", match = {{ \"{field}\" = {}, \"event.outcome\" = \"x{}\" }} }},\n",
                    a % 11,
                    a % 7
                ));
            }
            toml.push_str("]\n");
        }
        // and one by its key alone: not planned
        toml.push_str("[[feature]]\nname = \"k\"\nagg = \"count\"\ndescription = \"d\"\n");
        let c = compile(&EntityConfig::from_toml(&toml).unwrap()).unwrap();
        let mut plans = Plans::new(&c);
        assert_eq!(plans.planned, vec![0, 1, 2]);
        let want = |bits: u128| -> Vec<(u32, u64)> {
            let mut v = Vec::new();
            for (fi, f) in c.features.iter().enumerate().take(3) {
                let mut met = 0u64;
                for (a, alt) in f.alts.iter().enumerate() {
                    if bits & alt.mask == alt.mask {
                        met |= if a < 63 { 1 << a } else { BEYOND };
                    }
                }
                if met != 0 {
                    v.push((fi as u32, met));
                }
            }
            v
        };
        // random patterns over the bits the conditions use (and one beyond,
        // which changes nothing), until more than MAX_PLANS were asked for
        // (the memo starts over)
        let used = c
            .features
            .iter()
            .fold(0u128, |m, f| f.alts.iter().fold(m, |m, a| m | a.mask));
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut early = Vec::new();
        let mut met_some = 0;
        let mut distinct = AHashSet::new();
        let mut n = 0;
        while distinct.len() <= MAX_PLANS + 5_000 {
            n += 1;
            assert!(n < 4 * MAX_PLANS, "{} patterns", distinct.len());
            let bits = ((next() as u128) << 64 | next() as u128) & (used | 1 << 127);
            let bits = if n % 3 == 0 {
                bits | used & !(1 << (n % 64))
            } else {
                bits
            };
            let (from, to) = plans.of(bits, &c);
            assert_eq!(plans.steps[from..to], want(bits)[..], "pattern {n}");
            met_some += (from < to) as usize;
            distinct.insert(bits);
            if n <= 100 {
                early.push(bits);
            }
        }
        assert!(met_some > 1_000, "{met_some}");
        for &bits in &early {
            let (from, to) = plans.of(bits, &c);
            assert_eq!(plans.steps[from..to], want(bits)[..]);
        }
        assert!(plans.memo.len() <= MAX_PLANS);
    }

    /// Each address gets one id, the one handed out at its first sight,
    /// through the table's growth (addresses of a few subnets, repeated).
    /// A distinct set holds each value once as it moves from its inline
    /// values to a medium block and then to a hash set, and two sets whose
    /// medium blocks sit side by side in the shared vector keep apart.
    #[test]
    fn distinct_sets_hold_each_value_once_through_their_tiers() {
        let mut medium = MediumBlocks::new();
        let (mut a, mut b) = (DistinctSet::default(), DistinctSet::default());
        let (mut want_a, mut want_b) = (BTreeSet::new(), BTreeSet::new());
        for i in 1..=3 * MEDIUM_SET as u64 {
            let h = mix64(i).max(1);
            assert!(a.insert(h, &mut medium), "value {i} is new");
            assert!(!a.insert(h, &mut medium), "value {i} again");
            want_a.insert(h);
            // b takes every other value of a's, and its own
            if i % 2 == 0 {
                assert!(b.insert(h, &mut medium));
                want_b.insert(h);
            }
            let own = mix64(i + 1000).max(1);
            assert!(b.insert(own, &mut medium));
            want_b.insert(own);
            let tier = |s: &DistinctSet| match s {
                DistinctSet::Small { .. } => "small",
                DistinctSet::Medium { .. } => "medium",
                DistinctSet::Large(_) => "large",
            };
            let n = i as usize;
            let expected = if n <= SMALL_SET {
                "small"
            } else if n <= MEDIUM_SET {
                "medium"
            } else {
                "large"
            };
            assert_eq!(tier(&a), expected, "after {i} values");
            assert_eq!(a.len(), want_a.len());
            assert_eq!(b.len(), want_b.len());
            assert_eq!(a.values(&medium).collect::<BTreeSet<_>>(), want_a);
            assert_eq!(b.values(&medium).collect::<BTreeSet<_>>(), want_b);
            assert_eq!(a.values(&medium).count(), want_a.len(), "no value twice");
        }
    }

    #[test]
    fn ip4_ids_give_each_address_its_first_id() {
        let mut ids = Ip4Ids::default();
        let mut want: std::collections::HashMap<u32, u32> = Default::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // the last base wraps past 255.255.255.255 to 0.0.x.x
            let ip = [0u32, 0x0a00_0000, 0xc0a8_0000, 0xffff_ff00][(x >> 60) as usize & 3]
                .wrapping_add((x % 5000) as u32);
            let next = want.len() as u32;
            assert_eq!(ids.find(ip), want.get(&ip).copied(), "{ip:#x}");
            let expect = *want.entry(ip).or_insert(next);
            assert_eq!(ids.id(ip, || next), expect, "{ip:#x}");
            assert_eq!(ids.find(ip), Some(expect), "{ip:#x}");
        }
        assert_eq!(ids.len, want.len());
        assert!(2 * ids.len <= ids.slots.len());
    }

    /// Sliding windows built from panes give the table the event loop gives
    /// when it adds each event to each of its windows, bit for bit: counts,
    /// ratios, min and max, with per-alternative entities and fields, on
    /// events out of time order, with gaps of days and events without a
    /// timestamp; and a set with a sum (or a window that is not a multiple
    /// of the step) is not built from panes.
    #[test]
    fn sliding_windows_from_panes_equal_the_event_loop() {
        const SET: &str = r#"
name = "p"
key = ["source.ip"]
window = "1h"
[[feature]]
name = "n"
agg = "count"
description = "d"
[[feature]]
name = "both"
agg = "count"
description = "d"
when = [ { match = { "destination.port" = [22, 443] } }, { entity = "destination.ip", match = { "destination.port" = 22 } } ]
[[feature]]
name = "pmin"
agg = "min"
field = "destination.port"
description = "d"
when = [ { match = { "destination.port" = { min = 1, max = 1000 } } } ]
[[feature]]
name = "pmax"
agg = "max"
field = "destination.port"
description = "d"
when = [ { match = {} }, { entity = "destination.ip", field = "source.port", match = { "network.connection_state" = "REJ" } } ]
[[feature]]
name = "fail"
agg = "ratio"
description = "d"
numerator = [ { match = { "network.connection_state" = { not = ["SF"] } } } ]
"#;
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let states = ["SF", "S0", "REJ"];
        let ports = [22u16, 80, 443, 3389, 51234];
        let events: Vec<Event> = (0..6000)
            .map(|_| {
                let r = next();
                // three busy days a week apart, and quiet hours between
                let day = [0i64, 7, 8][(r % 3) as usize];
                let at = day * 86_400_000_000 + ((r >> 8) % 86_400_000_000) as i64;
                Event {
                    timestamp_us: (r % 97 != 0).then_some(1_700_000_000_000_000 + at),
                    source_ip: Some(IpAddr::from(std::net::Ipv4Addr::from(
                        0x0a00_0000 + (r >> 40) as u32 % 40,
                    ))),
                    destination_ip: Some(IpAddr::from(std::net::Ipv4Addr::from(
                        0x0a00_0000 + (r >> 20) as u32 % 60,
                    ))),
                    destination_port: Some(ports[(r >> 50) as usize % ports.len()]),
                    source_port: Some(1024 + (r >> 30) as u16 % 5000),
                    network_connection_state: Some(states[(r >> 56) as usize % 3].into()),
                    ..Default::default()
                }
            })
            .collect();
        let table = |cfg: &EntityConfig, panes: bool| {
            let mut agg = EntityAggregator::new(cfg).expect("config");
            let built_from_panes = agg.panes > 1;
            if !panes {
                agg.panes = 1;
                agg.engine_window_us = agg.window_us;
                agg.index = RowIndex::new(agg.window_us, agg.step_us);
            }
            for chunk in events.chunks(1000) {
                agg.push(chunk);
            }
            let (t, report) = agg.finish();
            (format!("{t:?}"), report.rows, built_from_panes)
        };
        for (window, slide, from_panes) in [
            ("1h", "15m", true),
            ("1d", "1h", true),
            ("3h", "1h", true),
            ("1h", "25m", false),
            ("2h", "2h", false),
        ] {
            let mut cfg = EntityConfig::from_toml(SET).expect("set");
            cfg.window = window.into();
            cfg.slide = Some(slide.into());
            let (want, rows, _) = table(&cfg, false);
            let (got, _, built) = table(&cfg, true);
            assert_eq!(built, from_panes, "{window} by {slide}");
            assert!(rows > 100, "{window} by {slide}: {rows} rows");
            assert!(got == want, "{window} by {slide}: the tables differ");
        }
        // a sum is not built from panes (its rounding would differ)
        let mut cfg = EntityConfig::from_toml(&format!(
            "{SET}[[feature]]\nname = \"s\"\nagg = \"sum\"\nfield = \"source.port\"\ndescription = \"d\"\n"
        ))
        .expect("set");
        cfg.slide = Some("15m".into());
        assert!(!table(&cfg, true).2);
    }

    /// The rows' order is the sort of (entity rank, window), also where an
    /// entity's rows were not made in window order.
    #[test]
    fn rows_in_order_is_the_sort_by_rank_and_window() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let (mut entity, mut window) = (Vec::new(), Vec::new());
        for i in 0..5000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            entity.push((x % 97) as u32);
            // mostly rising, with some rows made for earlier windows
            window.push(if x.is_multiple_of(7) {
                -((x >> 8) as i64 % 1000)
            } else {
                i
            });
        }
        let rank: Vec<u32> = (0..97u32).map(|e| (e * 31) % 97).collect();
        let mut want: Vec<usize> = (0..entity.len()).collect();
        want.sort_by_key(|&i| (rank[entity[i] as usize], window[i], i));
        // (entity, window) pairs repeat here, unlike real rows: compare keys
        let key = |i: &usize| (rank[entity[*i] as usize], window[*i]);
        let got = rows_in_order(&entity, &window, &rank);
        assert_eq!(
            got.iter().map(key).collect::<Vec<_>>(),
            want.iter().map(key).collect::<Vec<_>>()
        );
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..entity.len()).collect::<Vec<_>>());
    }

    /// The packed key of a short string is its lower-cased bytes, zero-padded,
    /// with the length in the last byte, for every length and byte value.
    #[test]
    fn short_key_packs_lower_cased_bytes_and_length() {
        let mut x: u64 = 0x0dd_ba11_cafe_f00d;
        for n in 0..=20usize {
            for _ in 0..200 {
                let t: Vec<u8> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // often letters, sometimes any byte
                        if x.is_multiple_of(3) {
                            (x >> 8) as u8
                        } else {
                            b'@' + (x >> 8) as u8 % 60
                        }
                    })
                    .collect();
                let want = (n <= 15).then(|| {
                    let mut buf = [0u8; 16];
                    buf[..n].copy_from_slice(&t);
                    buf.make_ascii_lowercase();
                    buf[15] = n as u8;
                    u128::from_le_bytes(buf)
                });
                assert_eq!(short_key(&t), want, "{t:?}");
            }
        }
    }

    /// The cached windows of a timestamp are the ones computed afresh, for
    /// timestamps in order, out of order, negative and near the ends of i64.
    #[test]
    fn window_span_matches_the_formula() {
        let direct = |ts: i64, window: i64, step: i64| {
            (
                ts.saturating_sub(window).div_euclid(step) + 1,
                ts.div_euclid(step),
            )
        };
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for (window, step) in [(3600, 3600), (3600, 900), (3600, 1000), (7, 3), (5, 5)] {
            let mut span = WindowSpan::default();
            let mut ts: i64 = -20_000;
            for _ in 0..20_000 {
                ts += (next() % 700) as i64 - 100;
                assert_eq!(
                    span.windows(ts, window, step),
                    direct(ts, window, step),
                    "{ts}"
                );
            }
            for ts in [
                i64::MIN,
                i64::MIN + 1,
                i64::MIN + window,
                i64::MAX - 1,
                i64::MAX,
                0,
                -1,
            ] {
                assert_eq!(
                    span.windows(ts, window, step),
                    direct(ts, window, step),
                    "{ts}"
                );
            }
        }
    }

    /// The compiled lookup of a field's conditions gives each condition the
    /// value its own test gives, on values listed, unlisted, absent, of other
    /// case, too long, and at range bounds.
    #[test]
    fn field_conditions_agree_with_each_test() {
        let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        let cases: Vec<(Vec<Test>, Vec<Option<FieldValue<'static>>>)> = vec![
            (
                vec![
                    Test::AnyStr(s(&["SF", "rej", "S0"])),
                    Test::NotStr(s(&["S0", "Ünï"])),
                    Test::AnyStr(s(&["sf"])),
                    Test::Exists(true),
                    Test::Exists(false),
                    Test::NotStr(s(&["x"])),
                    Test::AnyStr(s(&[
                        "Microsoft-Windows-Sysmon/Operational",
                        "fifteen-bytes-x",
                    ])),
                    Test::NotStr(s(&["sixteen-bytes-xy"])),
                ],
                [
                    "Microsoft-Windows-Sysmon/Operational",
                    "microsoft-windows-sysmon/operationaL",
                    "Microsoft-Windows-Sysmon/Operationa",
                    "FIFTEEN-bytes-x",
                    "fifteen-bytes-",
                    "sixteen-bytes-XY",
                    "sixteen-bytes-x",
                    "a\0",
                    "sf",
                    "SF",
                    "Sf",
                    "REJ",
                    "s0",
                    "S0",
                    "x",
                    "X",
                    "",
                    "Ünï",
                    "ünï",
                    "SFX",
                    "a much longer value than any listed",
                ]
                .into_iter()
                .map(|t| Some(FieldValue::Str(t)))
                .chain([None])
                .collect(),
            ),
            (
                vec![
                    Test::AnyInt(vec![3389, 1433]),
                    Test::NotInt(vec![22, 3389]),
                    Test::Range(Some(1000), None),
                    Test::Range(None, Some(10)),
                    Test::Range(Some(5), Some(5)),
                    Test::Exists(true),
                    Test::AnyInt(vec![22]),
                ],
                [3389, 1433, 22, 5, 10, 11, 999, 1000, -1, i64::MAX, i64::MIN]
                    .into_iter()
                    .map(|i| Some(FieldValue::Int(i)))
                    .chain([None])
                    .collect(),
            ),
            (
                vec![
                    Test::AnyIp(vec![ip("10.0.0.1"), ip("::1")]),
                    Test::NotIp(vec![ip("10.0.0.1")]),
                    Test::Exists(false),
                ],
                ["10.0.0.1", "::1", "10.0.0.2", "::ffff:10.0.0.1"]
                    .into_iter()
                    .map(|t| Some(FieldValue::Ip(ip(t))))
                    .chain([None])
                    .collect(),
            ),
        ];
        for (tests, values) in cases {
            let mut fc = FieldConds::default();
            for (bit, t) in tests.iter().enumerate() {
                // spread the bits over the whole u128
                fc.add(bit as u32 * 17, t);
            }
            // the maps alone, and the perfect-hash tables built from them
            let mut sealed = FieldConds::default();
            for (bit, t) in tests.iter().enumerate() {
                sealed.add(bit as u32 * 17, t);
            }
            sealed.seal();
            assert!(sealed.ints.is_empty() || sealed.int_table.is_some());
            assert!(sealed.short.is_empty() || sealed.short_table.is_some());
            for v in values {
                let got = fc.eval_value(v.clone());
                assert_eq!(sealed.eval_value(v.clone()), got, "sealed, on {v:?}");
                for (bit, t) in tests.iter().enumerate() {
                    let want = t.eval(v.clone());
                    assert_eq!(got >> (bit * 17) & 1 == 1, want, "{t:?} on {v:?}");
                }
                assert_eq!(
                    got & !tests
                        .iter()
                        .enumerate()
                        .fold(0u128, |m, (b, _)| m | 1 << (b * 17)),
                    0,
                    "bits of no test set on {v:?}"
                );
            }
        }
    }
}
