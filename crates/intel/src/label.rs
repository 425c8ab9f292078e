//! Weak labels: join events and tables with the indicators, keep provenance,
//! and let analyst verdicts override the feeds both ways.

use crate::feeds::{parse_time, FeedSet};
use crate::indicator::{normalize_domain, normalize_url};
use crate::matcher::{Hit, MatchKind, Matcher};
use crate::IntelError;
use ahash::AHashMap;
use palisade_core::{ColumnData, ColumnRole, Event, Table};
use std::hash::Hash;
use std::net::IpAddr;
use std::path::Path;

/// Where a label came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// Every feed holding the matched indicator, `;`-joined (or `analyst:<who>`).
    pub feed: String,
    pub indicator: String,
    /// The event field or table column that matched.
    pub field: String,
    pub kind: MatchKind,
    pub category: Option<String>,
}

/// The label of one event or row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowLabel {
    pub malicious: bool,
    pub provenance: Option<Provenance>,
}

/// Provenance of a hit.
pub fn provenance(set: &FeedSet, m: &Matcher, hit: Hit, field: &str) -> Provenance {
    let ind = set.indicators.get(hit.id as usize);
    let mut feeds: Vec<&str> = Vec::new();
    for id in m.same_key(hit.id) {
        if let Some(f) = set
            .indicators
            .get(id as usize)
            .and_then(|i| set.feeds.get(usize::from(i.feed)))
        {
            if !feeds.contains(&f.name.as_str()) {
                feeds.push(&f.name);
            }
        }
    }
    Provenance {
        feed: feeds.join(";"),
        indicator: ind.map(|i| i.value.clone()).unwrap_or_default(),
        field: field.to_string(),
        kind: hit.kind,
        category: ind.and_then(|i| i.category.as_deref().map(str::to_string)),
    }
}

/// The first match of an event, fields in order of specificity: URL, user
/// agent, destination host:port, names (DNS query, TLS SNI, URL host,
/// destination domain), destination IP, source IP.
pub fn match_event(m: &Matcher, e: &Event) -> Option<(Hit, &'static str)> {
    if let Some(u) = e.url_full.as_deref() {
        if let Some(h) = m.match_url(u) {
            return Some((h, "url.full"));
        }
    } else if let (Some(d), Some(p)) = (e.url_domain.as_deref(), e.url_path.as_deref()) {
        // Zeek http gives host and URI, not the full URL.
        let q = e
            .url_query
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        if let Some(h) = m.match_url(&format!("{d}{p}{q}")) {
            return Some((h, "url.domain+url.path"));
        }
    }
    if let Some(h) = e
        .user_agent_original
        .as_deref()
        .and_then(|u| m.match_user_agent(u))
    {
        return Some((h, "user_agent.original"));
    }
    if let (Some(ip), Some(port)) = (e.destination_ip, e.destination_port) {
        if let Some(h) = m.match_host_port(ip, port) {
            return Some((h, "destination.ip+destination.port"));
        }
    }
    for (name, v) in [
        ("dns.question.name", &e.dns_question_name),
        ("tls.client.server_name", &e.tls_server_name),
        ("url.domain", &e.url_domain),
        ("destination.domain", &e.destination_domain),
    ] {
        if let Some(h) = v.as_deref().and_then(|d| m.match_domain(d)) {
            return Some((h, name));
        }
    }
    if let Some(h) = e.destination_ip.and_then(|ip| m.match_ip(ip)) {
        return Some((h, "destination.ip"));
    }
    if let Some(h) = e.source_ip.and_then(|ip| m.match_ip(ip)) {
        return Some((h, "source.ip"));
    }
    None
}

/// Identity values of an event, for verdicts.
fn event_identities(e: &Event) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for ip in [e.source_ip, e.destination_ip].into_iter().flatten() {
        v.push(ip.to_canonical().to_string());
    }
    for s in [
        &e.url_full,
        &e.dns_question_name,
        &e.tls_server_name,
        &e.url_domain,
        &e.destination_domain,
        &e.host_name,
        &e.user_name,
    ]
    .into_iter()
    .flatten()
    {
        v.push(s.clone());
    }
    v
}

/// Label events. Verdicts (if any) override the feeds.
pub fn label_events(
    events: &[Event],
    set: &FeedSet,
    m: &Matcher,
    verdicts: Option<&Verdicts>,
) -> Vec<RowLabel> {
    events
        .iter()
        .map(|e| {
            let hit = match_event(m, e).map(|(h, f)| provenance(set, m, h, f));
            let mut l = RowLabel {
                malicious: hit.is_some(),
                provenance: hit,
            };
            if let Some(v) = verdicts {
                let mut ids = event_identities(e);
                if let Some(p) = &l.provenance {
                    ids.push(p.indicator.clone());
                }
                v.apply(&ids, &mut l);
            }
            l
        })
        .collect()
}

/// Column names read as identity values by [`label_table`], in order of
/// specificity (the first match of a row gives its provenance).
pub const IDENTITY_COLUMNS: &[&str] = &[
    "url.full",
    "url",
    "user_agent.original",
    "dns.question.name",
    "tls.client.server_name",
    "url.domain",
    "destination.domain",
    "domain",
    "host",
    "destination.ip",
    "source.ip",
    "ip",
    "entity",
];

/// Identity columns that hold times, never indicators (an event table's
/// `@timestamp`, a windowed table's bounds): not matched by default.
const TIME_COLUMNS: &[&str] = &["@timestamp", "window_start", "window_end"];

/// Options of [`label_table`].
#[derive(Debug, Clone, Default)]
pub struct LabelOptions {
    /// Columns to match; `None`: the known identity names ([`IDENTITY_COLUMNS`])
    /// and every other column with the identity role.
    pub columns: Option<Vec<String>>,
}

/// What labelling a table did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LabelSummary {
    pub rows: usize,
    pub positive: usize,
    pub by_feed_hits: usize,
    pub verdict_overrides: usize,
    pub columns: Vec<String>,
    pub by_match_kind: std::collections::BTreeMap<String, usize>,
}

/// The columns [`label_table`] reads.
pub fn label_columns(table: &Table, opts: &LabelOptions) -> Result<Vec<String>, IntelError> {
    if let Some(cols) = &opts.columns {
        for c in cols {
            if table.column(c).is_none() {
                return Err(IntelError::Table(format!("no column `{c}` to match")));
            }
        }
        return Ok(cols.clone());
    }
    let mut cols: Vec<String> = IDENTITY_COLUMNS
        .iter()
        .filter(|n| table.column(n).is_some())
        .map(|s| s.to_string())
        .collect();
    for c in &table.columns {
        if c.role == ColumnRole::Identity
            && !cols.contains(&c.name)
            && !c.name.starts_with("intel.")
            && !TIME_COLUMNS.contains(&c.name.as_str())
        {
            cols.push(c.name.clone());
        }
    }
    Ok(cols)
}

/// Add `label` (1/0, role Label) and provenance columns `intel.feed`,
/// `intel.indicator`, `intel.matched_field`, `intel.match_kind`,
/// `intel.category` (role Meta) to a table. The columns read keep their role.
pub fn label_table(
    table: &mut Table,
    set: &FeedSet,
    m: &Matcher,
    verdicts: Option<&Verdicts>,
    opts: &LabelOptions,
) -> Result<LabelSummary, IntelError> {
    let cols = label_columns(table, opts)?;
    let n = table.nrows();
    let has_port =
        table.column("destination.port").is_some() && table.column("destination.ip").is_some();
    let mut labels = Vec::with_capacity(n);
    let mut summary = LabelSummary {
        rows: n,
        columns: cols.clone(),
        ..Default::default()
    };
    let col_refs: Vec<_> = cols.iter().filter_map(|c| table.column(c)).collect();
    for row in 0..n {
        let mut found: Option<Provenance> = None;
        if has_port {
            let ip = table
                .column("destination.ip")
                .map(|c| c.data.text(row))
                .and_then(|s| s.trim().parse::<IpAddr>().ok());
            let port = table
                .column("destination.port")
                .map(|c| c.data.text(row))
                .and_then(|s| s.trim().parse::<u16>().ok());
            if let (Some(ip), Some(port)) = (ip, port) {
                if let Some(h) = m.match_host_port(ip, port) {
                    found = Some(provenance(set, m, h, "destination.ip+destination.port"));
                }
            }
        }
        let mut ids = Vec::new();
        for c in &col_refs {
            let v = c.data.text(row);
            if v.is_empty() {
                continue;
            }
            if found.is_none() {
                let h = if c.name == "user_agent.original" {
                    m.match_user_agent(&v)
                } else {
                    m.match_value(&v)
                };
                if let Some(h) = h {
                    found = Some(provenance(set, m, h, &c.name));
                }
            }
            if verdicts.is_some() {
                ids.push(v);
            }
        }
        let mut l = RowLabel {
            malicious: found.is_some(),
            provenance: found,
        };
        if l.malicious {
            summary.by_feed_hits += 1;
        }
        if let Some(v) = verdicts {
            if let Some(p) = &l.provenance {
                ids.push(p.indicator.clone());
            }
            if v.apply(&ids, &mut l) {
                summary.verdict_overrides += 1;
            }
        }
        if l.malicious {
            summary.positive += 1;
        }
        if let Some(p) = &l.provenance {
            *summary
                .by_match_kind
                .entry(p.kind.as_str().to_string())
                .or_default() += 1;
        }
        labels.push(l);
    }
    push_label_columns(table, &labels, None)?;
    Ok(summary)
}

fn push_label_columns(
    table: &mut Table,
    labels: &[RowLabel],
    hits: Option<Vec<f64>>,
) -> Result<(), IntelError> {
    let map = |f: &dyn Fn(&Provenance) -> Option<String>| -> ColumnData {
        ColumnData::Str(
            labels
                .iter()
                .map(|l| l.provenance.as_ref().and_then(f))
                .collect(),
        )
    };
    let shape = |e: palisade_core::CoreError| IntelError::Table(e.to_string());
    table
        .push(
            "label",
            ColumnRole::Label,
            ColumnData::F64(
                labels
                    .iter()
                    .map(|l| if l.malicious { 1.0 } else { 0.0 })
                    .collect(),
            ),
        )
        .map_err(shape)?;
    table
        .push(
            "intel.feed",
            ColumnRole::Meta,
            map(&|p| Some(p.feed.clone())),
        )
        .map_err(shape)?;
    table
        .push(
            "intel.indicator",
            ColumnRole::Meta,
            map(&|p| Some(p.indicator.clone())),
        )
        .map_err(shape)?;
    table
        .push(
            "intel.matched_field",
            ColumnRole::Meta,
            map(&|p| Some(p.field.clone())),
        )
        .map_err(shape)?;
    table
        .push(
            "intel.match_kind",
            ColumnRole::Meta,
            map(&|p| Some(p.kind.as_str().to_string())),
        )
        .map_err(shape)?;
    table
        .push(
            "intel.category",
            ColumnRole::Meta,
            map(&|p| p.category.clone()),
        )
        .map_err(shape)?;
    if let Some(h) = hits {
        table
            .push("intel.event_hits", ColumnRole::Meta, ColumnData::F64(h))
            .map_err(shape)?;
    }
    Ok(())
}

/// The label of a group of events (an entity window).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupLabel {
    pub events: usize,
    /// Events of the group that matched (after verdicts).
    pub hits: usize,
    /// Provenance of the first matching event.
    pub first: Option<Provenance>,
}

/// Label groups of events (host-days, entity windows): a group is positive when
/// any of its events matched, with the count. `key` gives an event's group
/// (`None`: the event belongs to none).
pub fn label_groups<K: Eq + Hash>(
    events: &[Event],
    set: &FeedSet,
    m: &Matcher,
    verdicts: Option<&Verdicts>,
    key: impl Fn(&Event) -> Option<K>,
) -> AHashMap<K, GroupLabel> {
    let labels = label_events(events, set, m, verdicts);
    let mut out: AHashMap<K, GroupLabel> = AHashMap::new();
    for (e, l) in events.iter().zip(labels) {
        let Some(k) = key(e) else { continue };
        let g = out.entry(k).or_default();
        g.events += 1;
        if l.malicious {
            g.hits += 1;
            if g.first.is_none() {
                g.first = l.provenance;
            }
        }
    }
    out
}

/// Write group labels onto a table of groups (one row per entity window):
/// `label`, provenance of the first hit, and `intel.event_hits`. `row_key`
/// gives the group of a row; rows of no known group get label 0.
pub fn apply_group_labels<K: Eq + Hash>(
    table: &mut Table,
    groups: &AHashMap<K, GroupLabel>,
    row_key: impl Fn(&Table, usize) -> Option<K>,
) -> Result<usize, IntelError> {
    let n = table.nrows();
    let mut labels = Vec::with_capacity(n);
    let mut hits = Vec::with_capacity(n);
    let mut pos = 0;
    for row in 0..n {
        let g = row_key(table, row).and_then(|k| groups.get(&k));
        let h = g.map(|g| g.hits).unwrap_or(0);
        let l = RowLabel {
            malicious: h > 0,
            provenance: g.and_then(|g| g.first.clone()),
        };
        pos += usize::from(l.malicious);
        labels.push(l);
        hits.push(h as f64);
    }
    push_label_columns(table, &labels, Some(hits))?;
    Ok(pos)
}

/// One analyst verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The indicator or entity, normalised like indicators (IP, domain, URL key) or verbatim.
    pub target: String,
    pub malicious: bool,
    pub who: String,
    pub when_us: Option<i64>,
    pub note: String,
    pub line: u64,
}

/// Analyst verdicts by normalised target.
#[derive(Debug, Clone, Default)]
pub struct Verdicts {
    by_target: AHashMap<String, Verdict>,
}

/// Normalise a verdict target or an identity value so both compare equal.
fn norm_target(s: &str) -> String {
    let t = s.trim();
    if let Ok(ip) = t.parse::<IpAddr>() {
        return ip.to_canonical().to_string();
    }
    if t.contains("://") || (t.contains('/') && !t.starts_with('/')) {
        if let Some(u) = normalize_url(t) {
            return u;
        }
    }
    if let Some(d) = normalize_domain(t) {
        return d;
    }
    t.to_string()
}

impl Verdicts {
    /// Read `indicator|entity,verdict,who,when,note` CSV (header required; `who`,
    /// `when`, `note` optional). Errors name the file and line.
    pub fn read(path: &Path) -> Result<Verdicts, IntelError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| IntelError::Io {
            path: p.clone(),
            err: e,
        })?;
        Self::parse(&text, &p)
    }

    pub fn parse(text: &str, file: &str) -> Result<Verdicts, IntelError> {
        let err = |line: u64, msg: String| IntelError::Verdicts {
            file: file.to_string(),
            line,
            msg,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers: Vec<String> = rdr
            .headers()
            .map_err(|e| err(1, e.to_string()))?
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let pos = |n: &[&str]| n.iter().find_map(|x| headers.iter().position(|h| h == x));
        let target = pos(&["indicator", "entity", "target", "value"]).ok_or_else(|| {
            err(
                1,
                format!(
                    "header needs an `indicator` or `entity` column, has {}",
                    headers.join(",")
                ),
            )
        })?;
        let verdict =
            pos(&["verdict"]).ok_or_else(|| err(1, "header needs a `verdict` column".into()))?;
        let (who, when, note) = (
            pos(&["who", "analyst"]),
            pos(&["when", "time", "date"]),
            pos(&["note", "comment"]),
        );
        let mut out = Verdicts::default();
        for r in rdr.records() {
            let r =
                r.map_err(|e| err(e.position().map(|p| p.line()).unwrap_or(0), e.to_string()))?;
            let line = r.position().map(|p| p.line()).unwrap_or(0);
            let t = r.get(target).unwrap_or("").trim();
            if t.is_empty() {
                return Err(err(line, "empty indicator/entity".into()));
            }
            let malicious = match r
                .get(verdict)
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
                .as_str()
            {
                "malicious" | "bad" | "true_positive" | "tp" | "1" => true,
                "benign" | "good" | "false_positive" | "fp" | "0" => false,
                other => {
                    return Err(err(
                        line,
                        format!("verdict `{other}` is not malicious or benign"),
                    ))
                }
            };
            let when_text = when.and_then(|i| r.get(i)).unwrap_or("").trim();
            let when_us = if when_text.is_empty() {
                None
            } else {
                Some(
                    parse_time(when_text)
                        .ok_or_else(|| err(line, format!("`when` `{when_text}` is not a time")))?,
                )
            };
            let v = Verdict {
                target: norm_target(t),
                malicious,
                who: who.and_then(|i| r.get(i)).unwrap_or("").trim().to_string(),
                when_us,
                note: note.and_then(|i| r.get(i)).unwrap_or("").trim().to_string(),
                line,
            };
            // The latest verdict on a target stands (file order breaks ties).
            match out.by_target.get(&v.target) {
                Some(old) if old.when_us > v.when_us => {}
                _ => {
                    out.by_target.insert(v.target.clone(), v);
                }
            }
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.by_target.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_target.is_empty()
    }

    /// Override `l` with the latest verdict on any of `values`; true when one applied.
    pub fn apply(&self, values: &[String], l: &mut RowLabel) -> bool {
        if self.by_target.is_empty() {
            return false;
        }
        let best = values
            .iter()
            .filter_map(|v| self.by_target.get(&norm_target(v)))
            .max_by_key(|v| (v.when_us, v.line));
        let Some(v) = best else { return false };
        l.malicious = v.malicious;
        l.provenance = Some(Provenance {
            feed: format!("analyst:{}", v.who),
            indicator: v.target.clone(),
            field: "verdict".into(),
            kind: MatchKind::Verdict,
            category: Some(if v.note.is_empty() {
                if v.malicious {
                    "malicious".into()
                } else {
                    "benign".into()
                }
            } else {
                format!(
                    "{}: {}",
                    if v.malicious { "malicious" } else { "benign" },
                    v.note
                )
            }),
        });
        true
    }
}
