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

/// One case-insensitive pass over the text for any of the markers (instead
/// of lower-casing it and searching once per marker: this is per request).
fn matcher(words: &[&str]) -> Option<AhoCorasick> {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(words)
        .ok()
}

static PROBE_AC: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| matcher(&PROBES));
static AUTOMATION_AC: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| matcher(&AUTOMATION));

fn has_any(ac: &Option<AhoCorasick>, text: &str) -> bool {
    ac.as_ref().is_some_and(|a| a.is_match(text))
}

fn ends_with_ci(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

fn ln1p(x: usize) -> f32 {
    (x as f32).ln_1p()
}

impl RequestFeatures {
    pub fn from_view(v: &RequestView<'_>) -> Self {
        let m = v.method;
        let url_len = v.path.len() + v.query.len();
        let pct = v.path.matches('%').count() + v.query.matches('%').count();
        RequestFeatures([
            (m == "GET" || m == "HEAD") as u8 as f32,
            (m == "POST") as u8 as f32,
            !(m == "GET" || m == "HEAD" || m == "POST") as u8 as f32,
            ln1p(v.path.len()),
            v.path.split('/').filter(|s| !s.is_empty()).count() as f32,
            ln1p(v.query.len()),
            if v.query.is_empty() {
                0.0
            } else {
                v.query.split('&').count() as f32
            },
            STATIC_EXT.iter().any(|e| ends_with_ci(v.path, e)) as u8 as f32,
            has_any(&PROBE_AC, v.path) as u8 as f32,
            if url_len == 0 {
                0.0
            } else {
                pct as f32 * 3.0 / url_len as f32
            },
            v.user_agent.is_none_or(|u| u.trim().is_empty()) as u8 as f32,
            ln1p(v.user_agent.map_or(0, str::len)),
            v.user_agent.is_some_and(|u| has_any(&AUTOMATION_AC, u)) as u8 as f32,
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
