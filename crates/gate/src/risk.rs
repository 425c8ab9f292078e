//! Request risk: request-level features, a [`RiskScorer`] trait, and the
//! built-in linear (logistic) scorer. A model-backed scorer lives in
//! [`crate::model_scorer`] behind the `model` feature.
//!
//! Identity fields (IP, user, token, the user-agent text) are never inputs:
//! only shape features derived from them (length, emptiness, automation
//! markers) are.

use aho_corasick::AhoCorasick;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Names of the request features, in vector order.
pub const FEATURE_NAMES: [&str; 18] = [
    "method_get",
    "method_post",
    "method_other",
    "path_len_log",
    "path_depth",
    "query_len_log",
    "query_params",
    "path_static_ext",
    "path_probe",
    "pct_encoded_ratio",
    "ua_missing",
    "ua_len_log",
    "ua_automation",
    "referrer_missing",
    "accept_language_missing",
    "header_count",
    "limit_pressure",
    "limit_exceeded",
];

pub const N_FEATURES: usize = FEATURE_NAMES.len();

/// A set of request features (bit `i` = `FEATURE_NAMES[i]`): what a scorer
/// reads, so the gate computes only those per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureMask(pub u32);

impl FeatureMask {
    pub const ALL: FeatureMask = FeatureMask((1 << N_FEATURES) - 1);
    pub const NONE: FeatureMask = FeatureMask(0);

    pub fn with(self, i: usize) -> FeatureMask {
        FeatureMask(self.0 | (1 << i))
    }

    pub fn has(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }
}

// Feature indices, checked against FEATURE_NAMES by a test.
const F_PATH_LEN: usize = 3;
const F_PATH_DEPTH: usize = 4;
const F_QUERY_LEN: usize = 5;
const F_QUERY_PARAMS: usize = 6;
const F_STATIC_EXT: usize = 7;
const F_PROBE: usize = 8;
const F_PCT: usize = 9;
const F_UA_LEN: usize = 11;
const F_UA_AUTOMATION: usize = 12;

/// What the gate knows about a request, as input to the features.
#[derive(Debug, Clone, Default)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// The requested host (Host / X-Forwarded-Host, or from an absolute URL).
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub query: &'a str,
    pub user_agent: Option<&'a str>,
    pub referrer: Option<&'a str>,
    pub accept_language: bool,
    pub header_count: usize,
    /// Max over the limits that applied of (1 - remaining / burst).
    pub limit_pressure: f32,
    pub limit_exceeded: bool,
}

/// The feature vector of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestFeatures(pub [f32; N_FEATURES]);

const STATIC_EXT: [&str; 12] = [
    ".css", ".js", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".woff", ".woff2", ".webp",
    ".map",
];
/// Paths vulnerability scanners probe for.
const PROBES: [&str; 14] = [
    "/.env",
    "/.git",
    "wp-login",
    "wp-admin",
    "xmlrpc.php",
    "phpmyadmin",
    "/cgi-bin/",
    "../",
    "..%2f",
    "/etc/passwd",
    "/actuator",
    "/.aws",
    "/server-status",
    "/vendor/phpunit",
];
const AUTOMATION: [&str; 16] = [
    "bot",
    "crawl",
    "spider",
    "curl",
    "wget",
    "python",
    "go-http",
    "java/",
    "okhttp",
    "scrapy",
    "headless",
    "httpclient",
    "libwww",
    "nikto",
    "sqlmap",
    "masscan",
];

/// Texts up to this long are lower-cased on the stack and searched with the
/// SIMD matcher; longer ones (rare) go to the case-insensitive automaton.
const SHORT: usize = 256;

/// Case-insensitive (ASCII) "which of these words does the text contain".
///
/// Browsers' user agents are ~70-150 bytes and match none of the markers,
/// so each is scanned to the end on every request: a case-insensitive
/// Aho-Corasick DFA does that at one dependent table load per byte (~80 ns
/// for a 70-byte user agent on the bench machine); lower-casing into a stack
/// buffer and running the SIMD "Teddy" multi-substring search on it takes
/// ~25 ns. Matching lower-cased words in the lower-cased text is exactly
/// ASCII-case-insensitive matching (both fold byte by byte, non-ASCII bytes
/// unchanged). The automaton remains the fallback: texts over [`SHORT`],
/// CPUs without SSSE3, more than Teddy's 128 words, an empty word.
pub(crate) struct CiWords {
    teddy: Option<aho_corasick::packed::Searcher>,
    /// Zero bytes may pad a short text up to Teddy's minimum length (below
    /// it Teddy falls back to a slower Rabin-Karp): sound unless a word
    /// contains a zero byte, which then could match the padding.
    pad: bool,
    ci: AhoCorasick,
}

impl CiWords {
    pub(crate) fn new<S: AsRef<str>>(words: &[S]) -> Result<CiWords, String> {
        let lower: Vec<String> = words
            .iter()
            .map(|w| w.as_ref().to_ascii_lowercase())
            .collect();
        // Leftmost-first, like the packed searcher: both report the same word.
        let ci = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(&lower)
            .map_err(|e| e.to_string())?;
        let teddy = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(&lower)
            .build()
            .filter(|t| t.minimum_len() <= SHORT);
        Ok(CiWords {
            teddy,
            pad: !lower.iter().any(|w| w.as_bytes().contains(&0)),
            ci,
        })
    }

    /// The index of the (leftmost) word found in `text`.
    pub(crate) fn find(&self, text: &str) -> Option<usize> {
        let b = text.as_bytes();
        if let (Some(t), true) = (&self.teddy, b.len() <= SHORT) {
            let mut buf = [0u8; SHORT];
            for (d, c) in buf.iter_mut().zip(b) {
                *d = c.to_ascii_lowercase();
            }
            let n = if self.pad {
                b.len().max(t.minimum_len())
            } else {
                b.len()
            };
            return t.find(&buf[..n]).map(|m| m.pattern().as_usize());
        }
        self.ci.find(text).map(|m| m.pattern().as_usize())
    }

    pub(crate) fn any_in(&self, text: &str) -> bool {
        self.find(text).is_some()
    }
}

fn markers(words: &[&str]) -> Option<CiWords> {
    CiWords::new(words).ok()
}

static PROBE_AC: LazyLock<Option<CiWords>> = LazyLock::new(|| markers(&PROBES));
static AUTOMATION_AC: LazyLock<Option<CiWords>> = LazyLock::new(|| markers(&AUTOMATION));

fn has_any(m: &Option<CiWords>, text: &str) -> bool {
    m.as_ref().is_some_and(|m| m.any_in(text))
}

fn ends_with_ci(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// ln(1 + x) of the small lengths every request has, computed once with the
/// same `f32::ln_1p` (so bit-identical): a libm call per feature otherwise.
static LN1P: LazyLock<[f32; 512]> = LazyLock::new(|| std::array::from_fn(|i| (i as f32).ln_1p()));

fn ln1p(x: usize) -> f32 {
    match LN1P.get(x) {
        Some(v) => *v,
        None => (x as f32).ln_1p(),
    }
}

fn count_byte(s: &str, b: u8) -> usize {
    s.bytes().filter(|&c| c == b).count()
}

/// Non-empty `/`-separated segments, counted in one pass over the bytes.
fn path_depth(path: &str) -> usize {
    let mut n = 0;
    let mut prev = b'/';
    for c in path.bytes() {
        n += (prev == b'/' && c != b'/') as usize;
        prev = c;
    }
    n
}

impl RequestFeatures {
    /// Every feature (see [`RequestFeatures::from_view_masked`]).
    pub fn from_view(v: &RequestView<'_>) -> Self {
        Self::from_view_masked(v, FeatureMask::ALL)
    }

    /// The features in `need`; the others are 0. The costly ones (the
    /// marker scans, logarithms, byte counts) are skipped when not needed;
    /// the flags cost less than the test.
    pub fn from_view_masked(v: &RequestView<'_>, need: FeatureMask) -> Self {
        let m = v.method;
        let get = m == "GET" || m == "HEAD";
        let post = m == "POST";
        let f = |i: usize, compute: fn(&RequestView<'_>) -> f32| {
            if need.has(i) {
                compute(v)
            } else {
                0.0
            }
        };
        RequestFeatures([
            get as u8 as f32,
            post as u8 as f32,
            !(get || post) as u8 as f32,
            f(F_PATH_LEN, |v| ln1p(v.path.len())),
            f(F_PATH_DEPTH, |v| path_depth(v.path) as f32),
            f(F_QUERY_LEN, |v| ln1p(v.query.len())),
            f(F_QUERY_PARAMS, |v| {
                if v.query.is_empty() {
                    0.0
                } else {
                    (count_byte(v.query, b'&') + 1) as f32
                }
            }),
            f(F_STATIC_EXT, |v| {
                STATIC_EXT.iter().any(|e| ends_with_ci(v.path, e)) as u8 as f32
            }),
            f(F_PROBE, |v| has_any(&PROBE_AC, v.path) as u8 as f32),
            f(F_PCT, |v| {
                let url_len = v.path.len() + v.query.len();
                if url_len == 0 {
                    0.0
                } else {
                    let pct = count_byte(v.path, b'%') + count_byte(v.query, b'%');
                    pct as f32 * 3.0 / url_len as f32
                }
            }),
            v.user_agent.is_none_or(|u| u.trim().is_empty()) as u8 as f32,
            f(F_UA_LEN, |v| ln1p(v.user_agent.map_or(0, str::len))),
            f(F_UA_AUTOMATION, |v| {
                v.user_agent.is_some_and(|u| has_any(&AUTOMATION_AC, u)) as u8 as f32
            }),
            v.referrer.is_none_or(|r| r.is_empty()) as u8 as f32,
            (!v.accept_language) as u8 as f32,
            v.header_count as f32,
            v.limit_pressure.clamp(0.0, 1.0),
            v.limit_exceeded as u8 as f32,
        ])
    }

    pub fn get(&self, name: &str) -> Option<f32> {
        FEATURE_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.0[i])
    }
}

/// Turns request features into a risk score in 0..=1 (higher: more likely abusive).
pub trait RiskScorer: Send + Sync {
    /// The score of one request from its features (`req` for scorers that
    /// compute their own, e.g. a model's URL features). NaN: no score.
    fn score(&self, f: &RequestFeatures, req: &RequestView<'_>) -> f32;
    /// A short name for reports and metrics.
    fn name(&self) -> &str;
    /// The features `score` reads; the gate leaves the others at 0 and skips
    /// computing them. All of them unless a scorer says otherwise.
    fn needs(&self) -> FeatureMask {
        FeatureMask::ALL
    }
}

/// Logistic regression over the request features. The default weights are
/// hand-set priors (scanner paths and automation user agents raise risk,
/// browser-like headers lower it); replace them with fitted ones in the
/// policy's `[risk.weights]`.
#[derive(Debug, Clone)]
pub struct LinearScorer {
    pub bias: f32,
    pub weights: [f32; N_FEATURES],
}

impl Default for LinearScorer {
    fn default() -> Self {
        let mut w = [0.0; N_FEATURES];
        for (name, v) in [
            ("method_other", 0.5),
            ("path_len_log", 0.1),
            ("query_len_log", 0.1),
            ("path_static_ext", -0.5),
            ("path_probe", 4.0),
            ("pct_encoded_ratio", 2.0),
            ("ua_missing", 2.5),
            ("ua_automation", 2.5),
            ("referrer_missing", 0.3),
            ("accept_language_missing", 1.0),
            ("header_count", -0.05),
            ("limit_pressure", 1.5),
            ("limit_exceeded", 1.0),
        ] {
            if let Some(i) = FEATURE_NAMES.iter().position(|n| *n == name) {
                w[i] = v;
            }
        }
        LinearScorer {
            bias: -3.0,
            weights: w,
        }
    }
}

impl LinearScorer {
    /// Defaults with some weights replaced; unknown names are an error naming them.
    pub fn with_weights(bias: Option<f32>, weights: &HashMap<String, f32>) -> Result<Self, String> {
        let mut s = LinearScorer::default();
        if let Some(b) = bias {
            s.bias = b;
        }
        for (k, v) in weights {
            let i = FEATURE_NAMES.iter().position(|n| n == k).ok_or_else(|| {
                format!(
                    "unknown feature `{k}` (known: {})",
                    FEATURE_NAMES.join(", ")
                )
            })?;
            s.weights[i] = *v;
        }
        Ok(s)
    }
}

impl RiskScorer for LinearScorer {
    fn score(&self, f: &RequestFeatures, _req: &RequestView<'_>) -> f32 {
        let z: f32 = self.bias
            + self
                .weights
                .iter()
                .zip(f.0.iter())
                .map(|(w, x)| w * x)
                .sum::<f32>();
        1.0 / (1.0 + (-z).exp())
    }
    fn name(&self) -> &str {
        "linear"
    }
    /// A zero weight ignores its feature.
    fn needs(&self) -> FeatureMask {
        self.weights
            .iter()
            .enumerate()
            .filter(|(_, w)| **w != 0.0)
            .fold(FeatureMask::NONE, |m, (i, _)| m.with(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn browser<'a>() -> RequestView<'a> {
        RequestView {
            method: "GET",
            host: Some("shop.example"),
            path: "/products/42",
            query: "ref=home",
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
            ),
            referrer: Some("https://example.com/"),
            accept_language: true,
            header_count: 12,
            limit_pressure: 0.1,
            limit_exceeded: false,
        }
    }

    #[test]
    fn features_reflect_request() {
        let f = RequestFeatures::from_view(&browser());
        assert_eq!(f.get("method_get"), Some(1.0));
        assert_eq!(f.get("path_depth"), Some(2.0));
        assert_eq!(f.get("query_params"), Some(1.0));
        assert_eq!(f.get("ua_automation"), Some(0.0));
        let scan = RequestView {
            path: "/wp-admin/../.env",
            user_agent: Some("sqlmap/1.7"),
            ..browser()
        };
        let g = RequestFeatures::from_view(&scan);
        assert_eq!(g.get("path_probe"), Some(1.0));
        assert_eq!(g.get("ua_automation"), Some(1.0));
        assert_eq!(g.get("nope"), None);
    }

    #[test]
    fn feature_indices_match_names() {
        for (i, name) in [
            (F_PATH_LEN, "path_len_log"),
            (F_PATH_DEPTH, "path_depth"),
            (F_QUERY_LEN, "query_len_log"),
            (F_QUERY_PARAMS, "query_params"),
            (F_STATIC_EXT, "path_static_ext"),
            (F_PROBE, "path_probe"),
            (F_PCT, "pct_encoded_ratio"),
            (F_UA_LEN, "ua_len_log"),
            (F_UA_AUTOMATION, "ua_automation"),
        ] {
            assert_eq!(FEATURE_NAMES[i], name);
        }
        assert_eq!(FeatureMask::ALL.0.count_ones() as usize, N_FEATURES);
    }

    #[test]
    fn ln1p_table_is_exact() {
        for x in [0usize, 1, 2, 70, 511, 512, 513, 100_000] {
            assert_eq!(ln1p(x).to_bits(), (x as f32).ln_1p().to_bits(), "{x}");
        }
    }

    /// The safe, obvious reference: lower-case both, leftmost occurrence,
    /// first-listed word on ties.
    fn reference(words: &[&str], text: &str) -> Option<usize> {
        let t = text.to_ascii_lowercase();
        let mut best: Option<(usize, usize)> = None;
        for (i, w) in words.iter().enumerate() {
            let w = w.to_ascii_lowercase();
            if let Some(pos) = t.find(&w) {
                if best.is_none_or(|(p, _)| pos < p) {
                    best = Some((pos, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    #[test]
    fn markers_are_lowercase_ascii() {
        for w in PROBES.iter().chain(AUTOMATION.iter()) {
            assert!(w.is_ascii() && w.to_ascii_lowercase() == *w, "{w}");
        }
        // The fast path is the one taken (where the CPU has it).
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("ssse3") {
            assert!(PROBE_AC
                .as_ref()
                .is_some_and(|m| m.teddy.is_some() && m.pad));
            assert!(AUTOMATION_AC.as_ref().is_some_and(|m| m.teddy.is_some()));
        }
    }

    #[test]
    fn words_match_reference_at_length_edges() {
        for words in [&AUTOMATION[..], &PROBES[..]] {
            let m = CiWords::new(words).unwrap();
            for w in words {
                for pad in [0, 1, SHORT - w.len() - 1, SHORT - w.len(), SHORT, 3 * SHORT] {
                    // The word at the very end, upper-cased, around SHORT.
                    let fill = "é".repeat(pad / 2) + &"x".repeat(pad % 2);
                    let text = format!("{fill}{}", w.to_ascii_uppercase());
                    assert_eq!(m.find(&text), reference(words, &text), "{text:?}");
                    assert!(m.any_in(&text), "{text:?}");
                    // One byte cut off: no match unless another word remains.
                    let cut = &text[..text.len() - 1];
                    assert_eq!(m.find(cut), reference(words, cut), "{cut:?}");
                }
            }
        }
    }

    #[test]
    fn words_with_nul_empty_or_many_fall_back_correctly() {
        let nul = ["a\0b", "zz"];
        let m = CiWords::new(&nul).unwrap();
        assert!(!m.pad);
        assert_eq!(m.find("xa"), None, "zero padding must not complete `a\\0b`");
        assert_eq!(m.find("xA\0B"), Some(0));
        let empty = CiWords::new(&["", "bot"]).unwrap();
        assert!(empty.teddy.is_none());
        assert_eq!(empty.find("anything"), Some(0));
        let many: Vec<String> = (0..300).map(|i| format!("w{i}x")).collect();
        let m = CiWords::new(&many).unwrap();
        assert_eq!(m.find("..W299X.."), Some(299));
        assert_eq!(m.find("..w3.."), None);
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn words_match_reference(
            parts in proptest::collection::vec(
                prop_oneof![
                    "[a-zA-Z0-9/ ._%-]{0,40}",
                    proptest::sample::select(AUTOMATION.to_vec()).prop_map(String::from),
                    proptest::sample::select(PROBES.to_vec()).prop_map(String::from),
                    "[^\\x00]{0,8}",
                ],
                0..12,
            ),
            upper in proptest::bool::ANY,
        ) {
            let mut text: String = parts.concat();
            if upper {
                text = text.to_ascii_uppercase();
            }
            let auto = AUTOMATION_AC.as_ref().unwrap();
            let probe = PROBE_AC.as_ref().unwrap();
            prop_assert_eq!(auto.find(&text), reference(&AUTOMATION, &text));
            prop_assert_eq!(probe.find(&text), reference(&PROBES, &text));
        }
    }

    /// The one-pass byte counts against the obvious `str` versions.
    #[test]
    fn counts_match_str_reference() {
        for p in [
            "",
            "/",
            "//",
            "/a",
            "a",
            "/a/b/",
            "//a//b//",
            "/a%2F/b%20c",
            "%%%",
            "/x/./y",
        ] {
            let depth = p.split('/').filter(|s| !s.is_empty()).count();
            assert_eq!(path_depth(p), depth, "{p:?}");
            assert_eq!(count_byte(p, b'%'), p.matches('%').count(), "{p:?}");
        }
        for q in ["", "a=1", "a=1&b=2", "&", "a&&b", "&a&"] {
            let params = if q.is_empty() {
                0
            } else {
                q.split('&').count()
            };
            let v = RequestView {
                query: q,
                ..browser()
            };
            assert_eq!(
                RequestFeatures::from_view(&v).get("query_params"),
                Some(params as f32),
                "{q:?}"
            );
        }
    }

    /// A masked vector equals the full one on the masked features, is 0
    /// elsewhere (for the computed-on-demand ones), and the linear scorer
    /// scores identically from it.
    #[test]
    fn masked_features_agree_with_full() {
        let scan = RequestView {
            method: "PUT",
            path: "/wp-admin/%2e%2e/.env/x.js",
            query: "a=%41&b=2",
            user_agent: Some("python-requests/2.31"),
            referrer: None,
            accept_language: false,
            limit_pressure: 0.7,
            limit_exceeded: true,
            ..browser()
        };
        for v in [browser(), scan] {
            let full = RequestFeatures::from_view(&v);
            for (i, name) in FEATURE_NAMES.iter().enumerate() {
                let one = RequestFeatures::from_view_masked(&v, FeatureMask::NONE.with(i));
                assert_eq!(one.0[i], full.0[i], "{name}");
            }
            let none = RequestFeatures::from_view_masked(&v, FeatureMask::NONE);
            for i in [F_PROBE, F_UA_AUTOMATION, F_PATH_LEN, F_PCT] {
                assert_eq!(none.0[i], 0.0);
            }
            let s = LinearScorer::default();
            let masked = RequestFeatures::from_view_masked(&v, s.needs());
            assert_eq!(s.score(&masked, &v), s.score(&full, &v));
        }
        // Zero weights are not needed; non-zero ones are.
        let mut w = HashMap::new();
        w.insert("path_probe".to_string(), 0.0);
        w.insert("path_depth".to_string(), 1.0);
        let s = LinearScorer::with_weights(None, &w).unwrap();
        assert!(!s.needs().has(F_PROBE));
        assert!(s.needs().has(F_PATH_DEPTH));
        assert!(LinearScorer::default().needs().has(F_UA_AUTOMATION));
    }

    #[test]
    fn scanner_scores_higher_than_browser() {
        let s = LinearScorer::default();
        let b = s.score(&RequestFeatures::from_view(&browser()), &browser());
        let scan = RequestView {
            path: "/.git/config",
            user_agent: None,
            referrer: None,
            accept_language: false,
            header_count: 3,
            ..browser()
        };
        let x = s.score(&RequestFeatures::from_view(&scan), &scan);
        assert!(b < 0.2, "browser {b}");
        assert!(x > 0.9, "scanner {x}");
        assert!((0.0..=1.0).contains(&b) && (0.0..=1.0).contains(&x));
    }

    #[test]
    fn weights_override_and_unknown_name() {
        let mut w = HashMap::new();
        w.insert("ua_missing".to_string(), 0.0);
        let s = LinearScorer::with_weights(Some(0.0), &w).unwrap();
        assert_eq!(s.bias, 0.0);
        w.insert("shoe_size".to_string(), 1.0);
        assert!(LinearScorer::with_weights(None, &w)
            .unwrap_err()
            .contains("shoe_size"));
    }
}
