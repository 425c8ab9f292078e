//! Per-request features for proxy and HTTP logs: the 28 features of Franc,
//! Sofka, Bartos, "Learning detector of malicious network traffic from weak
//! labels" (ECML PKDD 2015), plus URL length, path depth, Shannon entropy of
//! host, path and query, subdomain label count and TLD class.
//!
//! The URL string the lexical features read is the URL *without the scheme*
//! (`https://a.b/c?d` → `a.b/c?d`); when a source has no full URL it is
//! assembled as host + path + `?` + query from the fields it has.

use crate::lexical::{lexical_specs, Histogram, LEX_COUNT};
use crate::prefetch::{
    prefetch_bytes, prefetch_event, prefetch_offsets, EVENT_AHEAD, MAX_TEXT_PREFETCH, TEXT_AHEAD,
};
use crate::scan::{Scanner, Simd, MAX_FUSED};
use crate::table_util::{
    build_table, build_table_with, ColumnBlocks, IdCols, Prune, RequestIds, REQUEST_ID_READS,
};
use crate::urlparts::{
    count_byte, host_psl_facts, is_ip_literal, path_slashes_depth, range_mask,
    slashes_depth_masked, split_url_slashes, starts_with_http, SuffixMemo,
};
#[cfg(test)]
use crate::urlparts::{lower_host, psl_facts, split_url};
use palisade_core::{Event, FeatureDef, FeatureType, Table};
use std::sync::LazyLock;

/// The byte offsets of the event fields the request set reads (the union
/// of its features' `reads`), for [`prefetch_event`].
static REQUEST_PREFETCH: LazyLock<Vec<usize>> = LazyLock::new(|| {
    let defs = request_defs();
    prefetch_offsets(defs.iter().flat_map(|d| d.reads.iter().map(String::as_str)))
});

/// As [`REQUEST_PREFETCH`], with the fields of the table's identity and
/// label columns. Why: [`RequestTableBuilder::push`] reads them after the
/// row is made; `labels.source_label` lies on a line of its own near the
/// end of the ~1 KiB event, and its load was 96% of the identity columns'
/// samples in perf (`url_rows table`; 17% of the table's time). Measured
/// in one binary switched at run time (Zen 5, best of 9 passes): the
/// PhishCrawl events 222–226 → 198–218 ns/event, the real request logs
/// 156–163 → 150–154.
static REQUEST_TABLE_PREFETCH: LazyLock<Vec<usize>> = LazyLock::new(|| {
    let defs = request_defs();
    let reads = defs.iter().flat_map(|d| d.reads.iter().map(String::as_str));
    prefetch_offsets(reads.chain(REQUEST_ID_READS))
});

/// Name of the request feature set.
pub const REQUEST_SET: &str = "request";
/// Name of the URL-only subset (a list of URLs, no transaction fields).
pub const URL_SET: &str = "url";

/// Number of request features.
pub const N_REQUEST: usize = LEX_COUNT + 21;
/// Number of URL-only features.
pub const N_URL: usize = LEX_COUNT + 10;

const URL_TEXT: &str = "the URL without its scheme (url.full minus `scheme://`, or host+path+?query assembled from url.domain/url.path/url.query, or only the host when nothing else is visible)";

/// What one URL-shaped input looks like once split.
#[derive(Debug, Clone, Copy, Default)]
struct UrlView<'a> {
    /// The string the lexical features read.
    text: Option<&'a str>,
    host: Option<&'a str>,
    path: Option<&'a str>,
    query: Option<&'a str>,
    /// The string the URL splitter masked and the mask of its '/' bytes,
    /// when it did (see [`split_url_slashes`]).
    slashes: Option<(&'a str, u64)>,
}

/// Reusable state for computing URL features without allocation.
pub struct UrlFeaturizer {
    scan: Scanner,
    /// The lower-cased host for the public-suffix lookup (reused, so it is
    /// not zeroed per URL).
    host_buf: [u8; 256],
    /// Public-suffix answers by the host's end (see [`SuffixMemo`]).
    suffixes: SuffixMemo,
    /// The plain passes, for strings longer than the scanner takes.
    hist: Histogram,
    /// The URL text assembled from its parts (see `request_row_in`).
    assembled: String,
}

impl Default for UrlFeaturizer {
    fn default() -> Self {
        UrlFeaturizer {
            scan: Scanner::default(),
            host_buf: [0; 256],
            suffixes: SuffixMemo::default(),
            hist: Histogram::default(),
            assembled: String::new(),
        }
    }
}

impl UrlFeaturizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The URL-only features of one URL string, in the order of [`url_defs`].
    /// This is the hot loop the benchmark measures.
    #[inline]
    pub fn url_row(&mut self, url: &str, out: &mut [f64; N_URL]) {
        #[cfg(target_arch = "x86_64")]
        if self.scan.simd() == Simd::Avx512 {
            // SAFETY: `Simd::Avx512` comes from `Simd::detect`, which found
            // the features `url_row_avx512` enables.
            return unsafe { self.url_row_avx512(url, out) };
        }
        #[cfg(target_arch = "x86_64")]
        if self.scan.simd() == Simd::Avx2 {
            // SAFETY: `Simd::Avx2` comes from `Simd::detect`, which found
            // the features `url_row_avx2` enables.
            return unsafe { self.url_row_avx2(url, out) };
        }
        self.url_row_in(url, out);
    }

    /// [`url_row`](Self::url_row) compiled for CPUs with AVX2 (see
    /// [`url_row_avx512`](Self::url_row_avx512)).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt,lzcnt,bmi1,bmi2")]
    fn url_row_avx2(&mut self, url: &str, out: &mut [f64; N_URL]) {
        self.url_row_in(url, out);
    }

    /// [`url_row`](Self::url_row) compiled for CPUs with AVX-512: the SIMD
    /// helpers (splitter, class masks, lower-casing) then inline into it
    /// instead of being called, and the rest may use the wider instructions.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,popcnt,lzcnt,bmi1,bmi2")]
    fn url_row_avx512(&mut self, url: &str, out: &mut [f64; N_URL]) {
        self.url_row_in(url, out);
    }

    #[inline(always)]
    fn url_row_in(&mut self, url: &str, out: &mut [f64; N_URL]) {
        let (p, slash) = split_url_slashes(url, self.scan.simd());
        let v = UrlView {
            slashes: slash.map(|m| (p.rest, m)),
            text: Some(p.rest),
            host: if p.host.is_empty() {
                None
            } else {
                Some(p.host)
            },
            path: Some(p.path),
            query: Some(p.query.unwrap_or("")),
        };
        let (lex, extra) = out.split_at_mut(LEX_COUNT);
        if let (Ok(lex), Ok(extra)) = (lex.try_into(), extra.try_into()) {
            self.url_part(&v, lex, extra);
        }
    }

    /// The URL features of `v`: the lexical ones into `lex`, the others (in
    /// [`url_defs`] order) into `extra`; the callers place them in their rows.
    #[inline(always)]
    fn url_part(
        &mut self,
        v: &UrlView<'_>,
        lex: &mut [f64; LEX_COUNT],
        extra: &mut [f64; N_URL - LEX_COUNT],
    ) {
        let segs = [
            v.host.map(str::as_bytes),
            v.path.map(str::as_bytes),
            v.query.map(str::as_bytes),
        ];
        let text = v.text.map(str::as_bytes);
        let fits = text.map_or(0, <[u8]>::len) <= MAX_FUSED
            && segs.iter().all(|s| s.map_or(0, <[u8]>::len) <= MAX_FUSED);
        let mut ent = [f64::NAN; 3];
        if fits {
            // `ent` is written in place: returned with the stats, it was
            // copied in 16-byte moves that could not take the 8-byte values
            // from the stores still in flight (perf: 4% of `request_rows`;
            // `url_rows rows` 231 → 224 ns/event)
            let st = self.scan.scan(text.unwrap_or(b""), segs, &mut ent);
            *lex = match text {
                Some(_) => st.features(),
                None => [f64::NAN; LEX_COUNT],
            };
        } else {
            // Longer than the scanner takes (MAX_FUSED): the plain passes.
            *lex = match text {
                Some(t) => self.hist.lex(t).features(),
                None => [f64::NAN; LEX_COUNT],
            };
            ent = segs.map(|s| s.map_or(f64::NAN, |s| self.hist.entropy(s)));
        }
        // (offset, bits) of a part inside the masked string, and that
        // string's '/' mask, when the splitter made one and the part is in it
        let masked = |part: &str| {
            let (whole, slash) = v.slashes?;
            let off = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
            (part.as_ptr() as usize >= whole.as_ptr() as usize && off + part.len() <= whole.len())
                .then(|| (off, range_mask(off, part.len()), slash))
        };
        let (slashes, depth) = match v.path {
            Some(p) => {
                let (s, d) = match masked(p) {
                    Some((off, bits, slash)) => slashes_depth_masked(slash, bits, off),
                    None => path_slashes_depth(p.as_bytes()),
                };
                (s as f64, d as f64)
            }
            None => (f64::NAN, f64::NAN),
        };
        let query_slashes = v.query.map_or(f64::NAN, |q| match masked(q) {
            Some((_, bits, slash)) => (slash & bits).count_ones() as f64,
            None => count_byte(q, b'/') as f64,
        });
        let ip = v.host.map(is_ip_literal);
        let (sub, tld) = match v.host {
            Some(h) if ip == Some(false) => {
                host_psl_facts(h, &mut self.host_buf, self.scan.simd(), &mut self.suffixes)
            }
            _ => (f64::NAN, f64::NAN),
        };
        *extra = [
            slashes,
            query_slashes,
            ip.map_or(f64::NAN, |ip| ip as u8 as f64),
            v.text.map_or(f64::NAN, |t| t.len() as f64),
            depth,
            ent[0],
            ent[1],
            ent[2],
            sub,
            tld,
        ];
    }

    /// The request features of one event, in the order of [`request_defs`].
    pub fn request_row(&mut self, e: &Event, out: &mut [f64; N_REQUEST]) {
        #[cfg(target_arch = "x86_64")]
        if self.scan.simd() == Simd::Avx512 {
            // SAFETY: as in `url_row`.
            return unsafe { self.request_row_avx512(e, out) };
        }
        #[cfg(target_arch = "x86_64")]
        if self.scan.simd() == Simd::Avx2 {
            // SAFETY: as in `url_row`.
            return unsafe { self.request_row_avx2(e, out) };
        }
        self.request_row_in(e, out);
    }

    /// [`request_row`](Self::request_row) over `events`, handing each event
    /// and its row to `each`, in order. Use this rather than a loop of
    /// `request_row` over many events: it asks the CPU for each upcoming
    /// event's fields 8 events early and for its URL's bytes 4 early
    /// (`EVENT_AHEAD`, `TEXT_AHEAD`; the URL's address is in the event, so that
    /// must wait for the event's line). Why: a large log's events do not
    /// fit in any cache, and the first touch of an event's fields and then
    /// of its URL were the largest costs of the per-event loop (perf:
    /// about 15% of `request_row`'s time on 20k events).
    pub fn request_rows(&mut self, events: &[Event], each: impl FnMut(&Event, &[f64; N_REQUEST])) {
        self.request_rows_prefetching(events, &REQUEST_PREFETCH, each);
    }

    /// As [`request_rows`](Self::request_rows), asking for the event lines
    /// `offsets` (from [`prefetch_offsets`]; those of [`REQUEST_PREFETCH`]
    /// and whatever `each` reads).
    fn request_rows_prefetching(
        &mut self,
        events: &[Event],
        offsets: &[usize],
        mut each: impl FnMut(&Event, &[f64; N_REQUEST]),
    ) {
        let mut row = [0.0; N_REQUEST];
        for (i, e) in events.iter().enumerate() {
            if let Some(ahead) = events.get(i + EVENT_AHEAD) {
                prefetch_event(ahead, offsets);
            }
            if let Some(soon) = events.get(i + TEXT_AHEAD) {
                // the texts `request_row` reads: the URL, else what it is
                // assembled from (a TLS log's SNI, a web server's path and
                // query: without these, the first read of a Zeek ssl.log
                // event's server name was 65% of the counting pass's time)
                let (url, path, query) = match soon.url_full.as_deref() {
                    Some(full) => (Some(full), None, None),
                    None => (None, soon.url_path.as_deref(), soon.url_query.as_deref()),
                };
                let texts = [
                    url,
                    soon.web_host(),
                    path,
                    query,
                    soon.http_request_referrer.as_deref(),
                ];
                for t in texts.into_iter().flatten() {
                    prefetch_bytes(t.as_ptr().cast(), t.len().min(MAX_TEXT_PREFETCH));
                }
            }
            self.request_row(e, &mut row);
            each(e, &row);
        }
    }

    /// [`request_row`](Self::request_row) compiled for CPUs with AVX2 (see
    /// [`url_row_avx512`](Self::url_row_avx512)).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt,lzcnt,bmi1,bmi2")]
    fn request_row_avx2(&mut self, e: &Event, out: &mut [f64; N_REQUEST]) {
        self.request_row_in(e, out);
    }

    /// [`request_row`](Self::request_row) compiled for CPUs with AVX-512 (see
    /// [`url_row_avx512`](Self::url_row_avx512)).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,popcnt,lzcnt,bmi1,bmi2")]
    fn request_row_avx512(&mut self, e: &Event, out: &mut [f64; N_REQUEST]) {
        self.request_row_in(e, out);
    }

    #[inline(always)]
    fn request_row_in(&mut self, e: &Event, out: &mut [f64; N_REQUEST]) {
        // host + path + ?query, for events that have those fields but no
        // URL (a web server's access log): built in a buffer kept from call
        // to call (a `format!` per event was an allocation and a copy: with
        // the malloc and memmove it called, up to 9% of the real-log request
        // bench's time, perf)
        let mut assembled = std::mem::take(&mut self.assembled);
        let mut v = UrlView::default();
        let mut scheme: Option<&str> = e.url_scheme.as_deref();
        let visible_url;
        if let Some(full) = e.url_full.as_deref() {
            let (p, slash) = split_url_slashes(full, self.scan.simd());
            v.slashes = slash.map(|m| (p.rest, m));
            scheme = scheme.or(p.scheme);
            v.text = Some(p.rest);
            v.host = e
                .url_domain
                .as_deref()
                .or(if p.host.is_empty() {
                    None
                } else {
                    Some(p.host)
                })
                .or_else(|| e.web_host());
            v.path = e.url_path.as_deref().or(Some(p.path));
            v.query = e.url_query.as_deref().or(p.query).or(Some(""));
            visible_url = !p.path.is_empty() || p.query.is_some() || e.url_path.is_some();
        } else {
            v.host = e.web_host();
            match (v.host, e.url_path.as_deref()) {
                (h, Some(path)) => {
                    let q = e.url_query.as_deref();
                    assembled.clear();
                    assembled.push_str(h.unwrap_or(""));
                    assembled.push_str(path);
                    if let Some(q) = q {
                        assembled.push('?');
                        assembled.push_str(q);
                    }
                    v.text = Some(&assembled);
                    v.path = Some(path);
                    v.query = Some(q.unwrap_or(""));
                    visible_url = true;
                }
                (Some(h), None) => {
                    v.text = Some(h);
                    visible_url = false;
                }
                (None, None) => visible_url = false,
            }
        }
        let is_connect = e
            .http_request_method
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("CONNECT"));
        if is_connect {
            // a CONNECT target is `host:port`: the path and query are inside the tunnel
            v.path = None;
            v.query = None;
        }
        let mut u = [0.0; N_URL - LEX_COUNT];
        let (lex, _) = out.split_at_mut(LEX_COUNT);
        if let Ok(lex) = lex.try_into() {
            self.url_part(&v, lex, &mut u);
        }
        let k = LEX_COUNT;
        let nan = f64::NAN;
        let tls_only = e.tls_server_name.is_some()
            || e.event_dataset
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case("zeek.ssl"));
        out[k] = e.event_duration_ns.map_or(nan, |d| d as f64 / 1e9);
        out[k + 1] = e.http_response_status_code.map_or(nan, f64::from);
        out[k + 2] = if is_connect {
            1.0
        } else if visible_url {
            0.0
        } else if tls_only {
            1.0
        } else {
            nan
        };
        out[k + 3] = match scheme.and_then(http_or_https) {
            Some(https) => https as u8 as f64,
            _ if tls_only => 1.0,
            _ if is_connect && e.destination_port == Some(443) => 1.0,
            _ => nan,
        };
        out[k + 4] = e.source_bytes.map_or(nan, |b| b as f64);
        out[k + 5] = e.destination_bytes.map_or(nan, |b| b as f64);
        out[k + 6] = e.source_port.map_or(nan, f64::from);
        out[k + 7] = e.destination_port.map_or(nan, f64::from);
        out[k + 8] = present(e.user_agent_original.as_deref()).map_or(nan, |s| s.len() as f64);
        out[k + 9] = present(e.http_response_mime_type.as_deref()).map_or(nan, |s| s.len() as f64);
        out[k + 10] = u[0];
        out[k + 11] = u[1];
        out[k + 12] =
            present(e.http_request_referrer.as_deref()).map_or(nan, |s| count_byte(s, b'/') as f64);
        out[k + 13] = u[2];
        out[k + 14..].copy_from_slice(&u[3..]);
        self.assembled = assembled;
    }
}

/// `Some(false)` for the scheme `http`, `Some(true)` for `https` (in any
/// case), else `None`. Why not `eq_ignore_ascii_case` twice: its loops over
/// the bytes were ~47 instructions an event (callgrind, the PhishCrawl
/// URLs as events); this is one or two word compares ([`starts_with_http`];
/// bit 5 set maps a byte to 's' only from 's' or 'S', as for its letters).
#[inline]
fn http_or_https(scheme: &str) -> Option<bool> {
    let b = scheme.as_bytes();
    match b.len() {
        4 if starts_with_http(b) => Some(false),
        5 if starts_with_http(b) && b[4] | 0x20 == b's' => Some(true),
        _ => None,
    }
}

/// Web logs write `-` for an absent value (Apache, Squid, W3C); it is missing.
fn present(s: Option<&str>) -> Option<&str> {
    s.filter(|s| *s != "-")
}

fn url_extra_specs() -> Vec<(String, FeatureType, String, &'static [&'static str])> {
    use FeatureType::{Bool, Float, Int};
    const U: &[&str] = &["url.full", "url.domain", "url.path", "url.query"];
    const H: &[&str] = &[
        "url.full",
        "url.domain",
        "tls.client.server_name",
        "destination.domain",
    ];
    const P: &[&str] = &["url.full", "url.path"];
    const Q: &[&str] = &["url.full", "url.query"];
    vec![
        ("path_slash_count".into(), Int, "Number of '/' in the URL path (from the first '/' after the host up to '?' or '#'; url.path when the source has it). NaN when the path is not visible (CONNECT tunnels, TLS by SNI).".into(), P),
        ("query_slash_count".into(), Int, "Number of '/' in the query string (after the first '?' up to '#'; url.query when the source has it); 0 when the URL has no query. NaN when the URL is not visible.".into(), Q),
        ("sld_is_ip".into(), Bool, "1 when the host (url.domain, else the URL's authority without user info and port, else the TLS SNI or destination.domain) is an IPv4 or IPv6 literal, so there is no second-level domain name; else 0. NaN when no host is known.".into(), H),
        ("url_length".into(), Int, format!("Length in bytes of {URL_TEXT}. NaN when absent."), U),
        ("path_depth".into(), Int, "Number of non-empty '/'-separated segments of the URL path (`/a//b/` → 2). NaN when the path is not visible.".into(), P),
        ("host_entropy".into(), Float, "Shannon entropy, in bits per byte, of the byte distribution of the host name as written. 0 for a one-symbol host. NaN when no host is known.".into(), H),
        ("path_entropy".into(), Float, "Shannon entropy, in bits per byte, of the URL path; 0 for an empty path. NaN when the path is not visible.".into(), P),
        ("query_entropy".into(), Float, "Shannon entropy, in bits per byte, of the query string; 0 when there is none. NaN when the URL is not visible.".into(), Q),
        ("subdomain_count".into(), Int, "Number of labels of the host left of its registrable domain (public suffix list, psl crate): www.example.co.uk → 1. 0 when the host is itself a registrable domain or a single label. NaN for an IP literal or no host.".into(), H),
        ("tld_class".into(), Int, "Class of the last label of the host: 1 legacy generic (com, net, org, edu, gov, mil, int, info, biz, arpa); 2 country code (two letters, in the ICANN section of the public suffix list); 3 other ICANN TLD (new gTLDs such as xyz, top, online); 0 not in the public suffix list (local, lan, typos, made-up). NaN for an IP literal or no host.".into(), H),
    ]
}

fn lex_defs(set: &str, what: &str, reads: &[&str]) -> Vec<FeatureDef> {
    lexical_specs(what)
        .into_iter()
        .map(|(n, t, d)| FeatureDef::new(&n, t, set, reads, &d))
        .collect()
}

/// The URL-only feature set (set `url`): what a bare URL string gives.
pub fn url_defs() -> Vec<FeatureDef> {
    let mut v = lex_defs(URL_SET, "the URL without its scheme", &["url.full"]);
    for (n, t, d, _) in url_extra_specs() {
        v.push(FeatureDef::new(&n, t, URL_SET, &["url.full"], &d));
    }
    v
}

/// The request feature set (set `request`), in column order.
pub fn request_defs() -> Vec<FeatureDef> {
    use FeatureType::{Bool, Float, Int};
    let mut v = lex_defs(
        REQUEST_SET,
        URL_TEXT,
        &["url.full", "url.domain", "url.path", "url.query"],
    );
    let extra = url_extra_specs();
    let f = |n: &str, t, reads: &[&str], d: &str| FeatureDef::new(n, t, REQUEST_SET, reads, d);
    v.push(f("duration_s", Float, &["event.duration"], "Duration of the transaction or session in seconds (event.duration / 1e9): Zeek conn/http duration, Squid elapsed time, W3C time-taken. NaN when the source does not record it."));
    v.push(f(
        "http_status",
        Int,
        &["http.response.status_code"],
        "HTTP response status code (e.g. 200, 404). NaN when absent (TLS, conn).",
    ));
    v.push(f("url_encrypted", Bool, &["http.request.method", "url.full", "url.path", "tls.client.server_name", "event.dataset"], "1 when at most the host is visible: the method is CONNECT, or the event is TLS (tls.client.server_name set or dataset zeek.ssl) with no URL path; 0 when a URL path or query is visible; NaN when neither is known (e.g. a bare conn record)."));
    v.push(f("is_https", Bool, &["url.scheme", "url.full", "tls.client.server_name", "event.dataset", "http.request.method", "destination.port"], "1 when the scheme (url.scheme, else the scheme of url.full) is https, or the event is TLS (SNI set or zeek.ssl), or it is a CONNECT to port 443; 0 when the scheme is http; NaN otherwise."));
    v.push(f(
        "bytes_up",
        Int,
        &["source.bytes"],
        "Bytes sent by the client (source.bytes). NaN when absent.",
    ));
    v.push(f(
        "bytes_down",
        Int,
        &["destination.bytes"],
        "Bytes sent by the server (destination.bytes). NaN when absent.",
    ));
    v.push(f(
        "client_port",
        Int,
        &["source.port"],
        "Client TCP port (source.port). NaN when absent.",
    ));
    v.push(f(
        "server_port",
        Int,
        &["destination.port"],
        "Server TCP port (destination.port). NaN when absent (never guessed from the scheme).",
    ));
    v.push(f(
        "user_agent_length",
        Int,
        &["user_agent.original"],
        "Length in bytes of the User-Agent header. NaN when absent or `-`; 0 when sent empty.",
    ));
    v.push(f(
        "mime_type_length",
        Int,
        &["http.response.mime_type"],
        "Length in bytes of the response MIME type (Content-Type). NaN when absent or `-`.",
    ));
    let by = |name: &str| extra.iter().find(|x| x.0 == name).cloned();
    for name in ["path_slash_count", "query_slash_count"] {
        if let Some((n, t, d, r)) = by(name) {
            v.push(f(&n, t, r, &d));
        }
    }
    v.push(f("referrer_slash_count", Int, &["http.request.referrer"], "Number of '/' in the Referer header (the whole referrer URL, scheme included). NaN when absent or `-`."));
    for (n, t, d, r) in extra.iter().skip(2) {
        v.push(f(n, *t, r, d));
    }
    v
}

/// Request features of web/proxy/TLS events (one row per event).
pub fn request_features(events: &[Event]) -> Table {
    request_table(events, Prune::EmptyLabels)
}

/// As [`request_features`], but the label column `labels.source_label` is
/// kept even when no event has a label, so that the columns do not depend
/// on the events: a long input written chunk by chunk needs every chunk's
/// columns alike (`palisade features request` on more than one chunk).
pub fn request_features_fixed_columns(events: &[Event]) -> Table {
    request_table(events, Prune::Nothing)
}

fn request_table(events: &[Event], prune: Prune) -> Table {
    let mut b = RequestTableBuilder::with_capacity(events.len());
    b.push(events);
    b.finish_with(prune)
}

/// The request table built a batch of events at a time: pushing the
/// batches of a list of events gives the table of [`request_features`] (or,
/// by [`finish_fixed_columns`](Self::finish_fixed_columns), of
/// [`request_features_fixed_columns`]) over the whole list. Why: a reader of
/// a long log can then hold a few thousand events at a time, their memory
/// reused from batch to batch and still in cache when their rows are made,
/// while the table grows to a row group's size (`palisade features request`).
pub struct RequestTableBuilder {
    cols: ColumnBlocks,
    ids: RequestIds,
    fz: UrlFeaturizer,
}

impl Default for RequestTableBuilder {
    fn default() -> Self {
        RequestTableBuilder::with_capacity(0)
    }
}

impl RequestTableBuilder {
    /// A builder with room for `rows` rows (it grows past them).
    pub fn with_capacity(rows: usize) -> RequestTableBuilder {
        RequestTableBuilder {
            cols: ColumnBlocks::new(N_REQUEST, rows),
            ids: RequestIds::new(rows),
            fz: UrlFeaturizer::new(),
        }
    }

    /// Appends one row per event.
    pub fn push(&mut self, events: &[Event]) {
        let (cols, ids) = (&mut self.cols, &mut self.ids);
        let offsets: &[usize] = &REQUEST_TABLE_PREFETCH;
        self.fz.request_rows_prefetching(events, offsets, |e, row| {
            cols.push_row(row);
            ids.push(e);
        });
    }

    /// The rows so far.
    pub fn rows(&self) -> usize {
        self.cols.rows()
    }

    /// The table, as [`request_features`] makes it.
    pub fn finish(self) -> Table {
        self.finish_with(Prune::EmptyLabels)
    }

    /// The table, as [`request_features_fixed_columns`] makes it.
    pub fn finish_fixed_columns(self) -> Table {
        self.finish_with(Prune::Nothing)
    }

    fn finish_with(self, prune: Prune) -> Table {
        build_table_with(
            REQUEST_SET,
            request_defs(),
            self.cols.finish(),
            self.ids.into_cols(),
            prune,
        )
    }
}

/// URL-only features of a list of URLs (one row per URL). Identity column
/// `url` holds the input.
pub fn url_features_table(urls: &[&str]) -> Table {
    let defs = url_defs();
    let mut cols = ColumnBlocks::new(N_URL, urls.len());
    let mut fz = UrlFeaturizer::new();
    let mut row = [0.0; N_URL];
    for u in urls {
        fz.url_row(u, &mut row);
        cols.push_row(&row);
    }
    let ids = IdCols::single("url", urls.iter().map(|u| Some(*u)).collect());
    build_table(URL_SET, defs, cols.finish(), ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's prefetch asks for every line of every field the set and
    /// the identity columns read, and for fewer lines than the whole event.
    #[test]
    fn the_table_prefetch_covers_what_the_table_reads() {
        let defs = request_defs();
        let set = defs.iter().flat_map(|d| d.reads.iter().map(String::as_str));
        let names: Vec<&str> = set.chain(REQUEST_ID_READS).collect();
        crate::prefetch::assert_covers(&REQUEST_TABLE_PREFETCH, &names);
    }

    /// The straightforward `url_part` (one plain pass per feature) the fast
    /// one must match exactly.
    fn reference_url_part(hist: &mut Histogram, v: &UrlView<'_>, out: &mut [f64; N_URL]) {
        use crate::urlparts::path_depth;
        match v.text {
            Some(t) => out[..LEX_COUNT].copy_from_slice(&hist.lex(t.as_bytes()).features()),
            None => out[..LEX_COUNT].fill(f64::NAN),
        }
        let k = LEX_COUNT;
        out[k] = v.path.map_or(f64::NAN, |p| count_byte(p, b'/') as f64);
        out[k + 1] = v.query.map_or(f64::NAN, |q| count_byte(q, b'/') as f64);
        out[k + 2] = v.host.map_or(f64::NAN, |h| is_ip_literal(h) as u8 as f64);
        out[k + 3] = v.text.map_or(f64::NAN, |t| t.len() as f64);
        out[k + 4] = v.path.map_or(f64::NAN, |p| path_depth(p) as f64);
        out[k + 5] = v.host.map_or(f64::NAN, |h| hist.entropy(h.as_bytes()));
        out[k + 6] = v.path.map_or(f64::NAN, |p| hist.entropy(p.as_bytes()));
        out[k + 7] = v.query.map_or(f64::NAN, |q| hist.entropy(q.as_bytes()));
        let (sub, tld) = match v.host {
            Some(h) if !is_ip_literal(h) => {
                let mut buf = [0u8; 256];
                match lower_host(h, &mut buf) {
                    Some(lh) => psl_facts(lh),
                    None => (f64::NAN, f64::NAN),
                }
            }
            _ => (f64::NAN, f64::NAN),
        };
        out[k + 8] = sub;
        out[k + 9] = tld;
    }

    fn same(a: &[f64], b: &[f64]) -> bool {
        a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    #[test]
    fn request_rows_match_request_row_event_by_event() {
        // more events than the prefetch distances, some without a URL,
        // with a referrer, with the URL in parts
        let mut events: Vec<Event> = crate::test_data::EDGE_URLS
            .iter()
            .map(|u| Event {
                url_full: Some(u.to_string()),
                http_request_referrer: Some("http://r.example/a/b".into()),
                ..Default::default()
            })
            .collect();
        events.push(Event::default());
        events.push(Event {
            url_domain: Some("www.Example.org".into()),
            url_path: Some("/a/b".into()),
            url_query: Some("q=1".into()),
            ..Default::default()
        });
        // a TLS log's server name alone, and web server lines (path and
        // query, no host), a long one before shorter ones: the text they
        // are assembled into is reused from event to event
        let long_path = format!("/{}", "seg/".repeat(40));
        for (path, query) in [
            (long_path.as_str(), Some("x=1&y=2")),
            ("/b", None),
            ("/", Some("")),
            ("/c/d", Some("q=%2F")),
        ] {
            events.push(Event {
                tls_server_name: Some("cdn.Example.co.uk".into()),
                ..Default::default()
            });
            events.push(Event {
                url_path: Some(path.into()),
                url_query: query.map(Into::into),
                ..Default::default()
            });
        }
        assert!(events.len() > EVENT_AHEAD + TEXT_AHEAD);
        let mut fz = UrlFeaturizer::new();
        let mut seen = 0;
        fz.request_rows(&events, |e, row| {
            let mut want = [0.0; N_REQUEST];
            UrlFeaturizer::new().request_row(e, &mut want);
            assert!(std::ptr::eq(e, &events[seen]), "rows out of order");
            assert!(same(row, &want), "event {seen}: {row:?} vs {want:?}");
            seen += 1;
        });
        assert_eq!(seen, events.len());
        fz.request_rows(&[], |_, _| panic!("no events, no rows"));
    }

    #[test]
    fn http_or_https_is_the_case_insensitive_compare() {
        let reference = |s: &str| {
            if s.eq_ignore_ascii_case("https") {
                Some(true)
            } else if s.eq_ignore_ascii_case("http") {
                Some(false)
            } else {
                None
            }
        };
        // every byte in each place of "http" and "https" (the other bytes
        // that differ from a letter by bit 5 among them), and other lengths
        let mut checked = 0;
        for word in ["http", "https"] {
            for at in 0..word.len() {
                for x in 0..=255u8 {
                    let mut b = word.as_bytes().to_vec();
                    b[at] = x;
                    let Ok(s) = std::str::from_utf8(&b) else {
                        continue;
                    };
                    assert_eq!(http_or_https(s), reference(s), "{s:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000);
        for s in [
            "", "h", "htt", "HTTP", "HtTpS", "httpss", "ftp", "https:", "ws",
        ] {
            assert_eq!(http_or_https(s), reference(s), "{s:?}");
        }
    }

    #[test]
    fn request_prefetch_asks_for_the_fields_read_not_the_whole_event() {
        // every field the set reads has a known place: a field without one
        // would make the prefetch ask for all ~17 lines of every event
        for d in request_defs() {
            for f in &d.reads {
                assert!(
                    crate::access::field_span(f).is_some(),
                    "{}: no span for {f}",
                    d.name
                );
            }
        }
        let lines = std::mem::size_of::<Event>().div_ceil(64);
        assert!(!REQUEST_PREFETCH.is_empty());
        assert!(REQUEST_PREFETCH.len() < lines, "{:?}", *REQUEST_PREFETCH);
    }

    #[test]
    fn fast_url_part_matches_reference() {
        let mut urls = crate::test_data::dev_urls();
        let from_data = urls.len();
        let long_host = format!("http://{}.example.com/p", "ab".repeat(40_000));
        let long_path = format!("http://x.org/{}", "c/".repeat(40_000));
        urls.extend(crate::test_data::EDGE_URLS.iter().map(|u| u.to_string()));
        urls.push(long_host);
        urls.push(long_path);
        // either side of the scanner's limit
        for n in [MAX_FUSED - 1, MAX_FUSED, MAX_FUSED + 1] {
            let u = format!("http://a.b/{}", "x/y?".repeat(n));
            urls.push(u[..n].to_string());
        }
        let mut fz = UrlFeaturizer::new();
        let mut base = UrlFeaturizer::new();
        base.scan.set_simd(crate::scan::Simd::Base);
        let mut levels: Vec<UrlFeaturizer> = crate::scan::Simd::levels()
            .into_iter()
            .map(|simd| {
                let mut f = UrlFeaturizer::new();
                f.scan.set_simd(simd);
                f
            })
            .collect();
        let mut hist = Histogram::default();
        let (mut got, mut want) = ([0.0; N_URL], [0.0; N_URL]);
        let other_host = String::from("api.Example.net");
        for u in &urls {
            let p = split_url(u);
            let (_, slash) = split_url_slashes(u, fz.scan.simd());
            let row = UrlView {
                text: Some(p.rest),
                host: (!p.host.is_empty()).then_some(p.host),
                path: Some(p.path),
                query: Some(p.query.unwrap_or("")),
                slashes: slash.map(|m| (p.rest, m)),
            };
            // as url_row, as a CONNECT (no path/query), with a host from
            // another field (not a sub-slice), with the parts out of order,
            // and with no URL text at all
            let views = [
                row,
                UrlView {
                    path: None,
                    query: None,
                    ..row
                },
                UrlView {
                    host: Some(&other_host),
                    ..row
                },
                UrlView {
                    host: row.query,
                    query: row.host,
                    ..row
                },
                UrlView { text: None, ..row },
                UrlView {
                    slashes: None,
                    ..row
                },
            ];
            for v in views {
                let (lex, extra) = got.split_at_mut(LEX_COUNT);
                fz.url_part(
                    &v,
                    lex.try_into().expect("14 lexical features"),
                    extra.try_into().expect("10 others"),
                );
                reference_url_part(&mut hist, &v, &mut want);
                assert!(
                    same(&got, &want),
                    "{u:?} {v:?}\n got {got:?}\nwant {want:?}"
                );
            }
            fz.url_row(u, &mut got);
            reference_url_part(&mut hist, &row, &mut want);
            assert!(same(&got, &want), "url_row {u:?}");
            // and at every lower SIMD level (other CPUs)
            base.url_row(u, &mut got);
            assert!(same(&got, &want), "baseline url_row {u:?}");
            for l in &mut levels {
                l.url_row(u, &mut got);
                assert!(same(&got, &want), "{:?} url_row {u:?}", l.scan.simd());
            }
            // request_row has its own SIMD builds: the same row at every level
            let e = Event {
                url_full: Some(u.clone()),
                http_request_method: Some("GET".into()),
                ..Default::default()
            };
            let (mut r1, mut r2) = ([0.0; N_REQUEST], [0.0; N_REQUEST]);
            fz.request_row(&e, &mut r1);
            base.request_row(&e, &mut r2);
            assert!(same(&r1, &r2), "request_row {u:?}");
            assert!(
                same(&r1[..LEX_COUNT], &want[..LEX_COUNT]),
                "request_row {u:?}"
            );
            for l in &mut levels {
                l.request_row(&e, &mut r2);
                assert!(same(&r1, &r2), "{:?} request_row {u:?}", l.scan.simd());
            }
        }
        eprintln!(
            "{from_data} URLs from the bench data; SIMD level {:?}",
            fz.scan.simd()
        );
        // several thousand real URLs when the data is there
        assert!(from_data == 0 || from_data > 1000, "{from_data}");
    }
}
