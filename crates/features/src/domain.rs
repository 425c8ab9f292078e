//! Domain-name features for DNS query names, bare domains and domain lists
//! (DGA, tunnelling, malware domains): the lexical set of the request
//! features applied to the name, plus its shape (labels, entropy, ratios) and
//! public-suffix facts.
//!
//! The name is taken as written with one trailing dot removed; it is not
//! lower-cased for the lexical features (mixed case in DNS is itself a signal,
//! e.g. 0x20 encoding), but it is for the public-suffix lookup.

use crate::lexical::{lexical_specs, Histogram, LexStats, LEX_COUNT};
use crate::prefetch::{
    prefetch_bytes, prefetch_event, prefetch_offsets, EVENT_AHEAD, MAX_TEXT_PREFETCH, TEXT_AHEAD,
};
use crate::scan::{Scanner, MAX_FUSED};
use crate::table_util::{push_event_ids, text_column_for, IdCols};
use crate::urlparts::{host_psl_facts, is_ip_literal, SuffixMemo};
#[cfg(test)]
use crate::urlparts::{lower_host, psl_facts};
use palisade_core::{Event, FeatureDef, FeatureType, Table, TextColumn};
use std::sync::LazyLock;

pub const DOMAIN_SET: &str = "domain";
pub const N_DOMAIN: usize = LEX_COUNT + 9;

const READS: &[&str] = &[
    "dns.question.name",
    "url.domain",
    "tls.client.server_name",
    "destination.domain",
];

/// Reusable state for domain features.
pub struct DomainFeaturizer {
    scan: Scanner,
    /// The plain passes, for names longer than the scanner takes.
    hist: Histogram,
    /// The lower-cased name for the public-suffix lookup.
    host_buf: [u8; 256],
    /// Public-suffix answers by the name's end (see [`SuffixMemo`]).
    suffixes: SuffixMemo,
}

impl Default for DomainFeaturizer {
    fn default() -> Self {
        DomainFeaturizer {
            scan: Scanner::default(),
            hist: Histogram::default(),
            host_buf: [0; 256],
            suffixes: SuffixMemo::default(),
        }
    }
}

impl DomainFeaturizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Features of one name, in the order of [`domain_defs`].
    pub fn row(&mut self, name: &str, out: &mut [f64; N_DOMAIN]) {
        let n = name.strip_suffix('.').unwrap_or(name);
        let b = n.as_bytes();
        // the name's lexical stats and its entropy share one pass
        let (lex, entropy) = if b.len() <= MAX_FUSED {
            let mut ent = [0.0; 3];
            let lex = self.scan.scan(b, [Some(b), None, None], &mut ent);
            (lex, ent[0])
        } else {
            (self.hist.lex(b), self.hist.entropy(b))
        };
        let (buf, suffixes, simd) = (&mut self.host_buf, &mut self.suffixes, self.scan.simd());
        fill_row(n, &lex, entropy, out, |n| {
            host_psl_facts(n, buf, simd, suffixes)
        });
    }
}

/// The row of name `n` (trailing dot stripped) from its lexical stats and
/// entropy, however they were computed, and `psl_of(n)`: its public-suffix
/// facts (`psl_facts` of the lower-cased name, NaNs when it is too long).
fn fill_row(
    n: &str,
    lex: &LexStats,
    entropy: f64,
    out: &mut [f64; N_DOMAIN],
    psl_of: impl FnOnce(&str) -> (f64, f64),
) {
    let b = n.as_bytes();
    out[..LEX_COUNT].copy_from_slice(&lex.features());
    let k = LEX_COUNT;
    let len = b.len();
    let (labels, longest) = if len == 0 {
        (0usize, 0usize)
    } else {
        let mut labels = 0;
        let mut longest = 0;
        for l in b.split(|&c| c == b'.') {
            labels += 1;
            longest = longest.max(l.len());
        }
        (labels, longest)
    };
    let ratio = |a: u32| {
        if len == 0 {
            f64::NAN
        } else {
            a as f64 / len as f64
        }
    };
    out[k] = len as f64;
    out[k + 1] = labels as f64;
    out[k + 2] = longest as f64;
    out[k + 3] = entropy;
    out[k + 4] = ratio(lex.consonants);
    out[k + 5] = ratio(lex.vowels);
    let ip = is_ip_literal(n);
    let (sub, tld) = if ip || len == 0 {
        (f64::NAN, f64::NAN)
    } else {
        psl_of(n)
    };
    out[k + 6] = sub;
    out[k + 7] = tld;
    out[k + 8] = if len == 0 { f64::NAN } else { ip as u8 as f64 };
}

/// The domain feature set, in column order.
pub fn domain_defs() -> Vec<FeatureDef> {
    use FeatureType::{Bool, Float, Int};
    let what = "the domain name (as written, one trailing dot removed)";
    let mut v: Vec<FeatureDef> = lexical_specs(what)
        .into_iter()
        .map(|(n, t, d)| FeatureDef::new(&n, t, DOMAIN_SET, READS, &d))
        .collect();
    let f = |n: &str, t, d: &str| FeatureDef::new(n, t, DOMAIN_SET, READS, d);
    v.push(f(
        "name_length",
        Int,
        "Length of the name in bytes (trailing dot removed).",
    ));
    v.push(f(
        "label_count",
        Int,
        "Number of '.'-separated labels (empty labels included: `a..b` → 3); 0 for an empty name.",
    ));
    v.push(f(
        "longest_label",
        Int,
        "Length in bytes of the longest label.",
    ));
    v.push(f("name_entropy", Float, "Shannon entropy, in bits per byte, of the byte distribution of the name; 0 for an empty name."));
    v.push(f("consonant_ratio", Float, "Number of ASCII consonants (letters other than a,e,i,o,u; y is a consonant) divided by the length. NaN for an empty name."));
    v.push(f("vowel_ratio", Float, "Number of ASCII vowels a,e,i,o,u (either case) divided by the length. NaN for an empty name."));
    v.push(f("subdomain_count", Int, "Labels left of the registrable domain per the public suffix list (a.b.example.co.uk → 2); 0 for a registrable domain or a single label. NaN for an IP literal or empty name."));
    v.push(f("tld_class", Int, "Class of the last label: 1 legacy generic (com, net, org, edu, gov, mil, int, info, biz, arpa); 2 country code (two letters, ICANN section of the public suffix list); 3 other ICANN TLD (new gTLDs); 0 not in the public suffix list. NaN for an IP literal or empty name."));
    v.push(f(
        "is_ip",
        Bool,
        "1 when the name is an IPv4 or IPv6 literal, else 0. NaN for an empty name.",
    ));
    v
}

/// The name a domain row is computed on: the DNS query name, else the web host.
pub fn event_domain(e: &Event) -> Option<&str> {
    e.dns_question_name.as_deref().or(e.web_host())
}

fn table_of(names: Vec<Option<&str>>, ids: IdCols) -> Table {
    let mut cols = crate::table_util::ColumnBlocks::new(N_DOMAIN, names.len());
    let mut fz = DomainFeaturizer::new();
    for n in names {
        push_domain_row(&mut fz, &mut cols, n);
    }
    crate::table_util::build_table(DOMAIN_SET, domain_defs(), cols.finish(), ids)
}

fn push_domain_row(
    fz: &mut DomainFeaturizer,
    cols: &mut crate::table_util::ColumnBlocks,
    name: Option<&str>,
) {
    let mut row = [0.0; N_DOMAIN];
    match name {
        Some(n) => fz.row(n, &mut row),
        None => row.fill(f64::NAN),
    }
    cols.push_row(&row);
}

/// Domain features of events (one row per event; all NaN when the event has
/// no name). Identity columns: `@timestamp`, `source.ip`, `destination.ip`, `domain`.
pub fn domain_features(events: &[Event]) -> Table {
    let mut b = DomainTableBuilder::with_capacity(events.len());
    b.push(events);
    b.finish()
}

/// The table of [`domain_features`] built a batch of events at a time (as
/// [`RequestTableBuilder`](crate::RequestTableBuilder), and for the same reason).
pub struct DomainTableBuilder {
    cols: crate::table_util::ColumnBlocks,
    /// The identity columns, named by [`DOMAIN_IDS`].
    ids: [TextColumn; 4],
    ts_text: palisade_core::event::TimestampText,
    fz: DomainFeaturizer,
}

/// The domain table's identity columns, in order.
const DOMAIN_IDS: [&str; 4] = ["@timestamp", "source.ip", "destination.ip", "domain"];

/// The byte offsets of the event fields the domain table reads (the set's,
/// and the identity columns' `@timestamp`, `source.ip`, `destination.ip`),
/// for [`prefetch_event`].
static DOMAIN_TABLE_PREFETCH: LazyLock<Vec<usize>> =
    LazyLock::new(|| prefetch_offsets(READS.iter().chain(&DOMAIN_IDS[..3]).copied()));

impl Default for DomainTableBuilder {
    fn default() -> Self {
        DomainTableBuilder::with_capacity(0)
    }
}

impl DomainTableBuilder {
    /// A builder with room for `rows` rows (it grows past them).
    pub fn with_capacity(rows: usize) -> DomainTableBuilder {
        DomainTableBuilder {
            cols: crate::table_util::ColumnBlocks::new(N_DOMAIN, rows),
            ids: DOMAIN_IDS.map(|name| text_column_for(name, rows)),
            ts_text: Default::default(),
            fz: DomainFeaturizer::new(),
        }
    }

    /// Appends one row per event. Asks the CPU for each upcoming event's
    /// fields (those of the set and of the identity columns) 8 events early
    /// and for its name's bytes 4 early, as `UrlFeaturizer::request_rows`
    /// does, and for the same reason: on Zeek's dns.log (`url_rows
    /// realdomain`) the first read of an event's addresses was 16% of the
    /// table's time, in perf. With it, 170–182 → 140–145 ns/event (Zen 5,
    /// one binary switched at run time, best of 9 passes).
    pub fn push(&mut self, events: &[Event]) {
        let offsets: &[usize] = &DOMAIN_TABLE_PREFETCH;
        let [ts, sip, dip, domain] = &mut self.ids;
        for (i, e) in events.iter().enumerate() {
            if let Some(ahead) = events.get(i + EVENT_AHEAD) {
                prefetch_event(ahead, offsets);
            }
            if let Some(name) = events.get(i + TEXT_AHEAD).and_then(event_domain) {
                prefetch_bytes(name.as_ptr().cast(), name.len().min(MAX_TEXT_PREFETCH));
            }
            let name = event_domain(e);
            push_event_ids(e, (&mut *ts, &mut self.ts_text), sip, dip);
            domain.push(name);
            push_domain_row(&mut self.fz, &mut self.cols, name);
        }
    }

    /// The rows so far.
    pub fn rows(&self) -> usize {
        self.cols.rows()
    }

    /// The table, as [`domain_features`] makes it.
    pub fn finish(self) -> Table {
        let ids = IdCols {
            cols: DOMAIN_IDS
                .into_iter()
                .zip(self.ids)
                .map(|(n, v)| (n.to_string(), palisade_core::ColumnRole::Identity, v))
                .collect(),
        };
        crate::table_util::build_table(DOMAIN_SET, domain_defs(), self.cols.finish(), ids)
    }
}

/// Domain features of a list of names. Identity column `domain`.
pub fn domain_features_table(names: &[&str]) -> Table {
    let ids = IdCols::single("domain", names.iter().map(|n| Some(*n)).collect());
    table_of(names.iter().map(|n| Some(*n)).collect(), ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's prefetch asks for every line of every field the set and
    /// the identity columns read, and for fewer lines than the whole event.
    #[test]
    fn the_table_prefetch_covers_what_the_table_reads() {
        let names: Vec<&str> = READS.iter().chain(&DOMAIN_IDS[..3]).copied().collect();
        crate::prefetch::assert_covers(&DOMAIN_TABLE_PREFETCH, &names);
    }

    /// The straightforward row (separate lexical and entropy passes) the fast
    /// one must match exactly.
    fn reference_row(hist: &mut Histogram, name: &str, out: &mut [f64; N_DOMAIN]) {
        let n = name.strip_suffix('.').unwrap_or(name);
        fill_row(
            n,
            &hist.lex(n.as_bytes()),
            hist.entropy(n.as_bytes()),
            out,
            |n| {
                let mut buf = [0u8; 256];
                match lower_host(n, &mut buf) {
                    Some(h) => psl_facts(h),
                    None => (f64::NAN, f64::NAN),
                }
            },
        );
    }

    #[test]
    fn fast_row_matches_reference() {
        let mut names: Vec<String> = crate::test_data::dev_urls()
            .iter()
            .chain(
                crate::test_data::EDGE_URLS
                    .iter()
                    .map(|u| u.to_string())
                    .collect::<Vec<_>>()
                    .iter(),
            )
            .flat_map(|u| {
                let p = crate::urlparts::split_url(u);
                [p.host.to_string(), p.rest.to_string()]
            })
            .collect();
        names.extend(["", ".", "a..b.", "xn--bcher-kva.example", "10.0.0.1"].map(String::from));
        names.push("ab.".repeat(MAX_FUSED / 3 + 1));
        let mut fz = DomainFeaturizer::new();
        let mut hist = Histogram::default();
        let (mut got, mut want) = ([0.0; N_DOMAIN], [0.0; N_DOMAIN]);
        for n in &names {
            fz.row(n, &mut got);
            reference_row(&mut hist, n, &mut want);
            let same = got
                .iter()
                .zip(&want)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
            assert!(same, "{n:?}\n got {got:?}\nwant {want:?}");
        }
    }
}
