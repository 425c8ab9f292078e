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
//! (`network.community_id` here), so `once_per = "network.community_id"`
//! counts connections, not log lines, whichever logs are fed.
//!
//! Rows: one per (entity, window) that at least one event was attributed to,
//! by `key` or by a feature's `entity`. Counts in a row are counts of observed
//! events (0 means none was seen for that entity in that window); sums and
//! min/max/mean are NaN when no matching event had the field; ratios are NaN
//! when the denominator is 0. Events without `@timestamp` are skipped and
//! counted in the [`EntityReport`].

use crate::access::{accessor, Accessor};
use crate::table_util::{ts_text, IdCols};
use crate::FeatureError;
use ahash::{AHashMap, AHashSet};
use palisade_core::{
    ColumnRole, Event, FeatureDef, FeatureType, FieldType, FieldValue, Table, EVENT_FIELDS,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash, Hasher};
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
    #[inline]
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
    num: Vec<u128>,
    /// First accumulator slot of this feature in a row.
    slot: usize,
    /// Index of its distinct set in a row (distinct, new_peers, and count
    /// with `once_per`).
    set: usize,
    /// `once_per`: the field whose values are counted once.
    once_per: Option<Accessor>,
    /// No alternative names an `entity` or a `field`: the event's rows are
    /// its key entity's.
    by_key: bool,
    /// Its set is filled by an earlier feature with the same field and
    /// `when` (a distinct count and a new-peer count of one field: the flow
    /// set's destination IPs), so the event loop passes it by.
    shares_set: bool,
}

/// The conditions on one field: the field is read once per event for all
/// of them (the host set's conditions read a handful of fields, most of
/// them many times). On the synthetic Zeek benchmark, whose events lack
/// most of those fields, the host set's speed did not change measurably.
struct FieldConds {
    get: Accessor,
    /// (bit of the condition in an event's condition bits, its test)
    tests: Vec<(u32, Test)>,
}

struct Compiled {
    by_field: Vec<FieldConds>,
    keys: Vec<Accessor>,
    entity_getters: Vec<Accessor>,
    features: Vec<CFeature>,
    n_slots: usize,
    n_sets: usize,
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
            alts.push(Alt {
                mask,
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
        let slots = match f.agg {
            Agg::Count => 1,
            Agg::Sum | Agg::Min | Agg::Max | Agg::Mean | Agg::Ratio => 2,
            Agg::Distinct | Agg::NewPeers => 0,
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
        features.push(CFeature {
            agg: f.agg,
            field,
            scale: f.scale.unwrap_or(1.0),
            num,
            slot: n_slots,
            set,
            once_per,
            shares_set,
            by_key: alts.iter().all(|a| a.entity.is_none() && a.field.is_none()),
            alts,
        });
        n_slots += slots;
        n_sets += sets;
    }
    let mut by_field: Vec<(String, FieldConds)> = Vec::new();
    for (i, cond) in conds.iter().enumerate() {
        let test = (i as u32, cond.test.clone());
        match by_field.iter_mut().find(|(f, _)| *f == cond.field) {
            Some((_, fc)) => fc.tests.push(test),
            None => by_field.push((
                cond.field.clone(),
                FieldConds {
                    get: cond.get,
                    tests: vec![test],
                },
            )),
        }
    }
    Ok(Compiled {
        by_field: by_field.into_iter().map(|(_, fc)| fc).collect(),
        keys,
        entity_getters,
        features,
        n_slots,
        n_sets,
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
    ips: AHashMap<IpAddr, u32>,
    ints: AHashMap<i64, u32>,
    strs: AHashMap<Box<str>, u32>,
    names: Vec<String>,
}

impl Entities {
    #[inline]
    fn id(&mut self, k: EKey<'_>) -> u32 {
        let next = self.names.len() as u32;
        match k {
            EKey::Ip(ip) => *self.ips.entry(ip).or_insert_with(|| {
                self.names.push(ip.to_string());
                next
            }),
            EKey::Int(i) => *self.ints.entry(i).or_insert_with(|| {
                self.names.push(i.to_string());
                next
            }),
            EKey::Str(s) => {
                if let Some(id) = self.strs.get(s) {
                    return *id;
                }
                self.strs.insert(s.into(), next);
                self.names.push(s.to_string());
                next
            }
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

/// A set of `value_hash` outputs: they are already ahash outputs, so the
/// set takes them as their own hash.
type HashSet64 = std::collections::HashSet<u64, palisade_core::IdentityBuildHasher>;

/// The distinct values (their `value_hash`) of one feature in one
/// (entity, window): inline up to `SMALL_SET` values, searched linearly,
/// then a hash set. Why: most rows see few distinct values, and a hash set
/// per row and feature paid an allocation and two or three rehashes as it
/// grew: allocation and rehashing were 12% of the flow set's time (perf).
/// Measured by criterion, alternating builds in one sitting (sixth session,
/// Xeon): inline room for 4 values, flow set +4%, host set +2% (with the
/// shared set of `CFeature::shares_set`); room for 8, flow set +18% but
/// host set −8 to −12%, whose nine sets a row mostly hold many values. The
/// smaller, never-slower choice is kept.
enum DistinctSet {
    Small { len: u8, values: [u64; SMALL_SET] },
    Large(HashSet64),
}

const SMALL_SET: usize = 4;

impl Default for DistinctSet {
    fn default() -> Self {
        DistinctSet::Small {
            len: 0,
            values: [0; SMALL_SET],
        }
    }
}

impl DistinctSet {
    /// Adds `h`; true when it was not there.
    #[inline]
    fn insert(&mut self, h: u64) -> bool {
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
                    *self = DistinctSet::spill(values, h);
                }
                true
            }
            DistinctSet::Large(set) => set.insert(h),
        }
    }

    #[cold]
    #[inline(never)]
    fn spill(values: &[u64; SMALL_SET], h: u64) -> DistinctSet {
        let mut set = HashSet64::with_capacity_and_hasher(2 * SMALL_SET, Default::default());
        set.extend(values.iter().copied());
        set.insert(h);
        DistinctSet::Large(set)
    }

    fn len(&self) -> usize {
        match self {
            DistinctSet::Small { len, .. } => *len as usize,
            DistinctSet::Large(set) => set.len(),
        }
    }

    fn values(&self) -> impl Iterator<Item = u64> + '_ {
        let (small, large) = match self {
            DistinctSet::Small { len, values } => (&values[..*len as usize], None),
            DistinctSet::Large(set) => (&[][..], Some(set)),
        };
        small.iter().chain(large.into_iter().flatten()).copied()
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
}

/// One row's state.
struct Row<'a> {
    acc: &'a mut [f64],
    sets: &'a mut [DistinctSet],
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
        let r = r as usize;
        Row {
            acc: &mut self.acc[r * self.n_slots..(r + 1) * self.n_slots],
            sets: &mut self.sets[r * self.n_sets..(r + 1) * self.n_sets],
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
#[inline]
fn value_hash(state: &ahash::RandomState, v: &FieldValue<'_>) -> u64 {
    let mut h = state.build_hasher();
    match v {
        FieldValue::Int(i) => (0u8, i).hash(&mut h),
        FieldValue::Str(s) => (1u8, s).hash(&mut h),
        FieldValue::Ip(ip) => (2u8, ip).hash(&mut h),
    }
    h.finish()
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
    /// A ratio's denominator, and whether the event is in its numerator.
    Ratio(bool),
    /// Sum, min, max, mean: the scaled value, if the event has the field.
    Number(Option<f64>),
    /// Distinct and new-peer counts: the value's hash, if it has the field.
    Value(Option<u64>),
}

#[inline]
fn contribution(
    f: &CFeature,
    field: Option<Accessor>,
    e: &Event,
    bits: u128,
    hs: &ahash::RandomState,
) -> Contribution {
    match f.agg {
        Agg::Count => Contribution::Count(
            f.once_per
                .and_then(|g| g.get(e))
                .map(|v| value_hash(hs, &v)),
        ),
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

impl Contribution {
    #[inline]
    fn apply(self, f: &CFeature, row: Row<'_>) {
        let s = f.slot;
        match self {
            Contribution::Count(once) => {
                let first = match once {
                    Some(h) => row.sets[f.set].insert(h),
                    None => true,
                };
                row.acc[s] += first as u8 as f64;
            }
            Contribution::Ratio(in_num) => {
                row.acc[s + 1] += 1.0;
                row.acc[s] += in_num as u8 as f64;
            }
            Contribution::Number(Some(x)) => {
                row.acc[s] = match f.agg {
                    Agg::Min => row.acc[s].min(x),
                    Agg::Max => row.acc[s].max(x),
                    // sum and mean both accumulate the sum
                    _ => row.acc[s] + x,
                };
                row.acc[s + 1] += 1.0;
            }
            Contribution::Value(Some(h)) => {
                row.sets[f.set].insert(h);
            }
            Contribution::Number(None) | Contribution::Value(None) => {}
        }
    }
}

/// How many events ahead the loop asks for an event's memory.
const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to load every cache line of `e` (an `Event` is about 1 KiB,
/// and a set reads fields spread over it). Why: the loop's work per event
/// is long and serial (cond bits, hash lookups, row updates), so the
/// out-of-order core overlaps few events' misses on its own; the accessors'
/// first touches of an event were the largest single cost (perf). Measured
/// on the flow set (400k events): the event loop 136–149 ms → 115–120 ms;
/// 4 or 8 events ahead alike, 16 and 32 worse. Prefetching the text
/// fields' bytes too (read through their pointers) gained nothing.
#[inline]
fn prefetch_event(e: &Event) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = e as *const Event as *const i8;
        for line in (0..std::mem::size_of::<Event>()).step_by(64) {
            // SAFETY: a prefetch is a hint: it reads nothing the program
            // sees and cannot fault; the address is inside `e`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = e;
}

/// Compute the features of `cfg` over `events`. See [`entity_features_with_report`].
pub fn entity_features(events: &[Event], cfg: &EntityConfig) -> Result<Table, FeatureError> {
    entity_features_with_report(events, cfg).map(|(t, _)| t)
}

/// Compute the features of `cfg` over `events`, with a report of skipped events.
pub fn entity_features_with_report(
    events: &[Event],
    cfg: &EntityConfig,
) -> Result<(Table, EntityReport), FeatureError> {
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
    let hs = ahash::RandomState::with_seeds(0x0005_eed1, 0x0005_eed2, 0x0005_eed3, 0x0005_eed4);
    let mut report = EntityReport {
        events: events.len(),
        ..Default::default()
    };
    let mut ents = Entities::default();
    let mut index = RowIndex::default();
    let mut rows = Rows::new(&c);
    // entities an event is attributed to, per feature (tiny, reused)
    let mut targets: Vec<(u32, Option<Accessor>)> = Vec::with_capacity(4);
    // the rows of the event's key entity, one per window holding it
    let mut default_rows: Vec<u32> = Vec::with_capacity(4);
    // Per event: each entity getter's id, looked up once (features share
    // getters: the host set's 23 features read source.ip/destination.ip in
    // most of their alternatives), and the rows already found (entity,
    // window start → row). Both were a hash lookup per feature before
    // (hash maps were 40% of the host set's time, perf); looking each up
    // once made the host set 5.6% faster (criterion).
    let mut getter_ids: Vec<Option<Option<u32>>> = vec![None; c.entity_getters.len()];
    let mut rows_seen: Vec<(u32, i64, u32)> = Vec::with_capacity(8);
    for (i, e) in events.iter().enumerate() {
        if let Some(ahead) = events.get(i + PREFETCH_AHEAD) {
            prefetch_event(ahead);
        }
        let Some(ts) = e.timestamp_us else {
            report.without_timestamp += 1;
            continue;
        };
        let mut bits = 0u128;
        for fc in &c.by_field {
            let v = fc.get.get(e);
            for (i, test) in &fc.tests {
                bits |= (test.eval(v.clone()) as u128) << i;
            }
        }
        let default_ent = c
            .keys
            .iter()
            .find_map(|k| k.get(e).and_then(ekey))
            .map(|k| ents.id(k));
        getter_ids.iter_mut().for_each(|g| *g = None);
        rows_seen.clear();
        // windows containing ts: starts s = k*step with s <= ts < s + window
        let k_hi = ts.div_euclid(step_us);
        let k_lo = ts.saturating_sub(window_us).div_euclid(step_us) + 1;
        let mut attributed = false;
        default_rows.clear();
        if let Some(d) = default_ent {
            attributed = true;
            for k in k_lo..=k_hi {
                let r = row_of(&mut index, &mut rows, &mut rows_seen, d, k * step_us);
                default_rows.push(r);
            }
        }
        for f in &c.features {
            if f.shares_set {
                continue;
            }
            if f.by_key {
                // Every alternative attributes the event to the key's entity
                // and reads the feature's own field: the rows are the key's,
                // found above, and the contribution is the same for each.
                if default_rows.is_empty() || !f.alts.iter().any(|a| bits & a.mask == a.mask) {
                    continue;
                }
                let add = contribution(f, f.field, e, bits, &hs);
                for &r in &default_rows {
                    add.apply(f, rows.row(r));
                }
                continue;
            }
            targets.clear();
            for alt in &f.alts {
                if bits & alt.mask != alt.mask {
                    continue;
                }
                let ent = match alt.entity {
                    None => default_ent,
                    Some(g) => *getter_ids[g].get_or_insert_with(|| {
                        c.entity_getters[g]
                            .get(e)
                            .and_then(ekey)
                            .map(|k| ents.id(k))
                    }),
                };
                if let Some(id) = ent {
                    if !targets.iter().any(|t| t.0 == id) {
                        targets.push((id, alt.field.or(f.field)));
                    }
                }
            }
            if targets.is_empty() {
                continue;
            }
            attributed = true;
            for &(t, g) in &targets {
                let add = contribution(f, g, e, bits, &hs);
                for k in k_lo..=k_hi {
                    let r = row_of(&mut index, &mut rows, &mut rows_seen, t, k * step_us);
                    add.apply(f, rows.row(r));
                }
            }
        }
        if !attributed {
            report.without_entity += 1;
        }
    }
    // deterministic order: entity name, then window start (the id keeps an
    // IP and a host name that print alike apart, so new-peer state is per entity)
    let mut by_name: Vec<u32> = (0..ents.names.len() as u32).collect();
    by_name.sort_by(|&a, &b| {
        ents.names[a as usize]
            .cmp(&ents.names[b as usize])
            .then(a.cmp(&b))
    });
    let mut rank = vec![0u32; by_name.len()];
    for (r, &id) in by_name.iter().enumerate() {
        rank[id as usize] = r as u32;
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_unstable_by_key(|&i| (rank[rows.entity[i] as usize], rows.window[i]));
    // windows are few; format each bound once
    let mut bounds: AHashMap<i64, (String, String)> = AHashMap::new();
    let n = rows.len();
    report.rows = n;
    let mut cols: Vec<Vec<f64>> = (0..c.features.len())
        .map(|_| Vec::with_capacity(n))
        .collect();
    // new peers: values not in the entity's earlier windows (rows are sorted)
    let mut seen: Vec<HashSet64> = (0..c.n_sets).map(|_| HashSet64::default()).collect();
    let mut prev_entity = u32::MAX;
    let mut ids = IdCols {
        cols: vec![
            (
                "entity".to_string(),
                ColumnRole::Identity,
                Vec::with_capacity(n),
            ),
            (
                "window_start".to_string(),
                ColumnRole::Identity,
                Vec::with_capacity(n),
            ),
            (
                "window_end".to_string(),
                ColumnRole::Identity,
                Vec::with_capacity(n),
            ),
        ],
    };
    for &i in &order {
        let row = rows.view(i);
        if row.entity != prev_entity {
            seen.iter_mut().for_each(|s| s.clear());
            prev_entity = row.entity;
        }
        ids.cols[0]
            .2
            .push(Some(ents.names[row.entity as usize].clone()));
        let (ws, we) = bounds.entry(row.window).or_insert_with(|| {
            (
                ts_text(row.window),
                ts_text(row.window.saturating_add(window_us)),
            )
        });
        ids.cols[1].2.push(Some(ws.clone()));
        ids.cols[2].2.push(Some(we.clone()));
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
                Agg::Distinct => row.sets[f.set].len() as f64,
                Agg::NewPeers => {
                    let cur = &row.sets[f.set];
                    let new = cur.values().filter(|h| !seen[f.set].contains(h)).count();
                    new as f64
                }
            };
            cols[j].push(x);
        }
        for f in &c.features {
            if f.agg == Agg::NewPeers {
                seen[f.set].extend(row.sets[f.set].values());
            }
        }
    }
    let table = crate::table_util::build_table(&cfg.name, cfg.defs(), cols, ids);
    Ok((table, report))
}

/// (entity, window start) → row.
#[derive(Default)]
struct RowIndex {
    map: AHashMap<(u32, i64), u32>,
    /// Per entity id, the (window start, row) it last asked for. Why: logs
    /// come roughly in time order, so an entity's next event is almost
    /// always in the window of its last one, and this plain array read
    /// (indexed by the entity id the event already has) saves a hash lookup
    /// per event.
    latest: Vec<(i64, u32)>,
}

/// The row of (entity, window start), made on first use. `seen` holds this
/// event's rows so far: an event's features mostly land in the same few.
#[inline]
fn row_of(
    index: &mut RowIndex,
    rows: &mut Rows,
    seen: &mut Vec<(u32, i64, u32)>,
    ent: u32,
    start: i64,
) -> u32 {
    if let Some(&(_, _, r)) = seen.iter().find(|s| s.0 == ent && s.1 == start) {
        return r;
    }
    let e = ent as usize;
    let r = match index.latest.get(e) {
        Some(&(w, r)) if w == start && r != u32::MAX => r,
        _ => {
            let r = *index
                .map
                .entry((ent, start))
                .or_insert_with(|| rows.push(ent, start));
            if index.latest.len() <= e {
                index.latest.resize(e + 1, (0, u32::MAX));
            }
            index.latest[e] = (start, r);
            r
        }
    };
    seen.push((ent, start, r));
    r
}
