//! The gate policy: a TOML file, parsed strictly (unknown keys are errors)
//! and validated into a compiled form. Every error names the offending key.

use crate::gcra::Quota;
use crate::store::EvictionPolicy;
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("policy {path}: {message}")]
    Parse { path: String, message: String },
    #[error("policy {path}: `{key}`: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
}

/// The policy as written in TOML.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub identity: IdentitySection,
    #[serde(default)]
    pub lists: ListsSection,
    #[serde(default)]
    pub memory: MemorySection,
    #[serde(default)]
    pub redis: Option<RedisSection>,
    #[serde(default, rename = "limit")]
    pub limits: Vec<LimitSection>,
    #[serde(default)]
    pub risk: RiskSection,
    #[serde(default)]
    pub challenge: ChallengeSection,
    #[serde(default)]
    pub forward_auth: ForwardAuthSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub listen: String,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub request_timeout_ms: u64,
    /// A connection must deliver a request's head (request line and
    /// headers) within this many ms of its first byte, or it is closed
    /// (slow-header attacks).
    pub header_read_timeout_ms: u64,
    /// A keep-alive connection idle this long between requests is closed.
    pub idle_timeout_ms: u64,
    /// Bearer token of the admin endpoints, literally (prefer `admin_token_env`).
    pub admin_token: Option<String>,
    /// Name of the environment variable holding the admin token.
    pub admin_token_env: Option<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 64 * 1024,
            max_header_bytes: 32 * 1024,
            request_timeout_ms: 2_000,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 75_000,
            admin_token: None,
            admin_token_env: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySection {
    /// Peers whose client-IP header is believed.
    pub trusted_proxies: Vec<String>,
    /// Header carrying the client IP (`x-forwarded-for`, `x-real-ip`, ...).
    pub client_ip_header: String,
    /// Header carrying the authenticated user name (set by your auth layer).
    pub user_header: Option<String>,
    /// Header carrying the API token (`authorization`: a `Bearer ` prefix is stripped).
    pub token_header: Option<String>,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

impl Default for IdentitySection {
    fn default() -> Self {
        IdentitySection {
            trusted_proxies: vec![],
            client_ip_header: "x-forwarded-for".into(),
            user_header: None,
            token_header: None,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ListsSection {
    pub allow_cidrs: Vec<String>,
    pub deny_cidrs: Vec<String>,
    /// Case-insensitive substrings of the user agent.
    pub allow_user_agents: Vec<String>,
    pub deny_user_agents: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemorySection {
    /// Hard cap on keys tracked per memory limiter.
    pub max_keys: usize,
    pub shards: usize,
    pub eviction: EvictionPolicy,
}

impl Default for MemorySection {
    fn default() -> Self {
        MemorySection {
            max_keys: 1_000_000,
            shards: 64,
            eviction: EvictionPolicy::EvictSoonest,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSection {
    pub url: String,
    pub prefix: String,
    pub timeout_ms: u64,
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: u64,
}

impl Default for RedisSection {
    fn default() -> Self {
        RedisSection {
            url: "redis://127.0.0.1:6379/".into(),
            prefix: "palisade:gate:".into(),
            timeout_ms: 50,
            breaker_failures: 5,
            breaker_cooldown_ms: 2_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Ip,
    User,
    Token,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    #[default]
    Memory,
    Redis,
}

/// What a limiter does when its store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Allow the request (availability first).
    #[default]
    Open,
    /// Deny the request (protection first).
    Closed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideSection {
    pub rate: String,
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSection {
    pub name: String,
    pub key: KeyKind,
    /// `N/s`, `N/m`, `N/h`, `N/d` (or `N/10s`, `N/500ms`).
    pub rate: String,
    /// Requests allowed at once (default: the rate's N).
    pub burst: Option<u32>,
    #[serde(default)]
    pub store: StoreKind,
    #[serde(default)]
    pub on_store_error: FailureMode,
    /// Path prefixes this limit applies to (default: every path).
    #[serde(default)]
    pub routes: Vec<String>,
    /// Methods it applies to (default: all).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Per-key quotas (for `ip`: an address or CIDR).
    #[serde(default)]
    pub overrides: HashMap<String, OverrideSection>,
    /// Redis store only: cells one script call may reserve for this instance
    /// when a key is clearly under its limit, spent by the next requests
    /// without a round trip (0, the default: every request asks Redis).
    #[serde(default)]
    pub local_lease: u32,
    /// How long reserved cells stay spendable (default 100 ms).
    #[serde(default)]
    pub local_lease_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskSection {
    pub enabled: bool,
    /// Scores ≥ this are challenged.
    pub challenge_at: f32,
    /// Scores ≥ this are denied.
    pub deny_at: f32,
    /// A palisade model file (needs the `model` feature).
    pub model: Option<String>,
    pub bias: Option<f32>,
    /// Weights of the linear scorer by feature name (replace the defaults).
    pub weights: HashMap<String, f32>,
}

impl Default for RiskSection {
    fn default() -> Self {
        RiskSection {
            enabled: true,
            challenge_at: 0.6,
            deny_at: 0.95,
            model: None,
            bias: None,
            weights: HashMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeKind {
    #[default]
    Pow,
    Captcha,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChallengeSection {
    /// HMAC key for challenge tokens and pass cookies (prefer `secret_env`).
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    pub kind: ChallengeKind,
    pub ttl_s: u64,
    pub pass_ttl_s: u64,
    pub min_difficulty: u8,
    pub max_difficulty: u8,
    pub cookie_name: String,
    /// Bind tokens and passes to the user agent as well as the client IP prefix.
    pub bind_user_agent: bool,
    /// Seen-set for used challenges: `memory`, or `redis` (fleet).
    pub replay_store: StoreKind,
    /// Cap on remembered used challenges (memory replay store).
    pub replay_max: usize,
    /// Mark the pass cookie `Secure` (set false only for plain-HTTP testing).
    pub secure_cookie: bool,
}

impl Default for ChallengeSection {
    fn default() -> Self {
        ChallengeSection {
            secret: None,
            secret_env: None,
            kind: ChallengeKind::Pow,
            ttl_s: 300,
            pass_ttl_s: 3_600,
            min_difficulty: 14,
            max_difficulty: 20,
            cookie_name: "palisade_pass".into(),
            bind_user_agent: true,
            replay_store: StoreKind::Memory,
            replay_max: 1_000_000,
            secure_cookie: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardAuthSection {
    /// nginx `auth_request` only understands 2xx/401/403: use 403 (or 401) there.
    pub rate_limited_status: u16,
    pub deny_status: u16,
    pub challenge_status: u16,
}

impl Default for ForwardAuthSection {
    fn default() -> Self {
        ForwardAuthSection {
            rate_limited_status: 429,
            deny_status: 403,
            challenge_status: 401,
        }
    }
}

/// A limit after validation.
#[derive(Debug, Clone)]
pub struct LimitSpec {
    pub name: String,
    pub key: KeyKind,
    pub quota: Quota,
    pub store: StoreKind,
    pub on_store_error: FailureMode,
    pub routes: Vec<String>,
    pub methods: Vec<String>,
    pub overrides: HashMap<String, Quota>,
    /// The local fast path of a Redis limit (`cells` 0: off).
    pub lease: crate::store::Lease,
}

/// The validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub file: PolicyFile,
    pub trusted_proxies: Vec<IpNet>,
    pub allow_cidrs: Vec<IpNet>,
    pub deny_cidrs: Vec<IpNet>,
    pub allow_uas: Vec<String>,
    pub deny_uas: Vec<String>,
    pub limits: Vec<LimitSpec>,
    pub admin_token: Option<String>,
    pub secret: Option<Vec<u8>>,
    /// The identity headers, parsed once (a request looks them up by name).
    pub headers: IdentityHeaders,
}

/// `identity.*_header` as header names.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub client_ip: axum::http::HeaderName,
    pub user: Option<axum::http::HeaderName>,
    pub token: Option<axum::http::HeaderName>,
}

/// Parse `N/unit` into a count and period.
pub fn parse_rate(s: &str) -> Result<(u32, Duration), String> {
    let (n, per) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not `N/period` (e.g. `100/s`)"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` is not a positive integer"))?;
    if n == 0 {
        return Err("the count must be at least 1".into());
    }
    let per = per.trim();
    let split = per.find(|c: char| !c.is_ascii_digit()).unwrap_or(per.len());
    let (mult, unit) = per.split_at(split);
    let mult: u64 = if mult.is_empty() {
        1
    } else {
        mult.parse().map_err(|_| format!("bad period `{per}`"))?
    };
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" | "sec" | "second" => 1_000,
        "m" | "min" | "minute" => 60_000,
        "h" | "hour" => 3_600_000,
        "d" | "day" => 86_400_000,
        _ => {
            return Err(format!(
                "unknown period unit `{unit}` (use ms, s, m, h or d)"
            ))
        }
    };
    if mult == 0 {
        return Err("the period must be positive".into());
    }
    Ok((n, Duration::from_millis(mult.saturating_mul(unit_ms))))
}

/// Mask an address to the configured prefix (the unit an IP limit counts).
pub fn ip_prefix(ip: IpAddr, v4: u8, v6: u8) -> IpNet {
    let len = if ip.is_ipv4() {
        v4.min(32)
    } else {
        v6.min(128)
    };
    // The prefix length is clamped to the family's maximum, so this cannot fail.
    IpNet::new(ip, len)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(ip))
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("`{s}` is not an IP address or CIDR"))
}

impl Policy {
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
            path: p.clone(),
            source: e,
        })?;
        Policy::parse(&text, &p)
    }

    /// Parse and validate policy text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| PolicyError::Parse {
            path: origin.into(),
            message: e.to_string(),
        })?;
        Policy::compile(file, origin)
    }

    pub fn compile(file: PolicyFile, origin: &str) -> Result<Policy, PolicyError> {
        let bad = |key: String, message: String| PolicyError::Invalid {
            path: origin.into(),
            key,
            message,
        };
        let nets = |list: &[String], key: &str| -> Result<Vec<IpNet>, PolicyError> {
            list.iter()
                .enumerate()
                .map(|(i, s)| parse_net(s).map_err(|m| bad(format!("{key}[{i}]"), m)))
                .collect()
        };
        let trusted_proxies = nets(&file.identity.trusted_proxies, "identity.trusted_proxies")?;
        let allow_cidrs = nets(&file.lists.allow_cidrs, "lists.allow_cidrs")?;
        let deny_cidrs = nets(&file.lists.deny_cidrs, "lists.deny_cidrs")?;
        if file.identity.ipv4_prefix > 32 {
            return Err(bad("identity.ipv4_prefix".into(), "must be 0..=32".into()));
        }
        if file.identity.ipv6_prefix > 128 {
            return Err(bad("identity.ipv6_prefix".into(), "must be 0..=128".into()));
        }
        if file.memory.max_keys == 0 {
            return Err(bad("memory.max_keys".into(), "must be at least 1".into()));
        }
        for (key, ms) in [
            ("server.request_timeout_ms", file.server.request_timeout_ms),
            (
                "server.header_read_timeout_ms",
                file.server.header_read_timeout_ms,
            ),
            ("server.idle_timeout_ms", file.server.idle_timeout_ms),
        ] {
            if ms == 0 {
                return Err(bad(key.into(), "must be at least 1".into()));
            }
        }
        let mut names = std::collections::HashSet::new();
        let mut limits = Vec::new();
        for (i, l) in file.limits.iter().enumerate() {
            let key = format!("limit[{i}] ({})", l.name);
            if l.name.is_empty()
                || !l
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(bad(
                    format!("{key}.name"),
                    "use letters, digits, `_` and `-`".into(),
                ));
            }
            if !names.insert(l.name.clone()) {
                return Err(bad(format!("{key}.name"), "duplicate limit name".into()));
            }
            let quota = |rate: &str, burst: Option<u32>, k: &str| -> Result<Quota, PolicyError> {
                let (n, per) = parse_rate(rate).map_err(|m| bad(format!("{key}.{k}rate"), m))?;
                Quota::new(n, per, burst.unwrap_or(n)).ok_or_else(|| {
                    bad(
                        format!("{key}.{k}burst"),
                        "burst must be ≥ 1 and the rate below 1 per ns".into(),
                    )
                })
            };
            let q = quota(&l.rate, l.burst, "")?;
            if l.store == StoreKind::Redis && file.redis.is_none() {
                return Err(bad(
                    format!("{key}.store"),
                    "`redis` needs a [redis] section".into(),
                ));
            }
            if l.local_lease > 0 && l.store != StoreKind::Redis {
                return Err(bad(
                    format!("{key}.local_lease"),
                    "only a `redis` store has a local fast path".into(),
                ));
            }
            if l.local_lease_ms == Some(0) {
                return Err(bad(
                    format!("{key}.local_lease_ms"),
                    "must be at least 1".into(),
                ));
            }
            let lease = crate::store::Lease {
                cells: l.local_lease,
                ttl_ns: l.local_lease_ms.unwrap_or(100).saturating_mul(1_000_000),
            };
            for r in &l.routes {
                if !r.starts_with('/') {
                    return Err(bad(
                        format!("{key}.routes"),
                        format!("`{r}` must start with `/`"),
                    ));
                }
            }
            let mut overrides = HashMap::new();
            for (k, o) in &l.overrides {
                let oq = quota(&o.rate, o.burst, &format!("overrides.\"{k}\"."))?;
                let norm = if l.key == KeyKind::Ip {
                    parse_net(k)
                        .map_err(|m| bad(format!("{key}.overrides.\"{k}\""), m))?
                        .to_string()
                } else {
                    k.clone()
                };
                overrides.insert(norm, oq);
            }
            limits.push(LimitSpec {
                name: l.name.clone(),
                key: l.key,
                quota: q,
                store: l.store,
                on_store_error: l.on_store_error,
                routes: l.routes.clone(),
                methods: l.methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
                overrides,
                lease,
            });
        }
        let r = &file.risk;
        if !(0.0..=1.0).contains(&r.challenge_at) || !(0.0..=1.0).contains(&r.deny_at) {
            return Err(bad(
                "risk.challenge_at / risk.deny_at".into(),
                "must be within 0..=1".into(),
            ));
        }
        if r.challenge_at > r.deny_at {
            return Err(bad(
                "risk.challenge_at".into(),
                "must not exceed risk.deny_at".into(),
            ));
        }
        let c = &file.challenge;
        if c.min_difficulty > c.max_difficulty || c.max_difficulty > 32 {
            return Err(bad(
                "challenge.min_difficulty".into(),
                "need min ≤ max ≤ 32 bits".into(),
            ));
        }
        if c.ttl_s == 0 || c.pass_ttl_s == 0 {
            return Err(bad(
                "challenge.ttl_s".into(),
                "ttl_s and pass_ttl_s must be positive".into(),
            ));
        }
        if c.replay_store == StoreKind::Redis && file.redis.is_none() {
            return Err(bad(
                "challenge.replay_store".into(),
                "`redis` needs a [redis] section".into(),
            ));
        }
        if c.cookie_name.is_empty()
            || !c
                .cookie_name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            return Err(bad(
                "challenge.cookie_name".into(),
                "use letters, digits and `_`".into(),
            ));
        }
        for (k, v) in [
            (
                "forward_auth.rate_limited_status",
                file.forward_auth.rate_limited_status,
            ),
            ("forward_auth.deny_status", file.forward_auth.deny_status),
            (
                "forward_auth.challenge_status",
                file.forward_auth.challenge_status,
            ),
        ] {
            if !(400..=599).contains(&v) {
                return Err(bad(k.into(), format!("{v} is not a 4xx/5xx status")));
            }
        }
        let env = |name: &Option<String>, key: &str| -> Result<Option<String>, PolicyError> {
            match name {
                None => Ok(None),
                Some(n) => std::env::var(n)
                    .map(Some)
                    .map_err(|_| bad(key.into(), format!("environment variable `{n}` is not set"))),
            }
        };
        let admin_token = match env(&file.server.admin_token_env, "server.admin_token_env")? {
            Some(t) => Some(t),
            None => file.server.admin_token.clone(),
        };
        if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(bad(
                "server.admin_token".into(),
                "must be at least 16 characters".into(),
            ));
        }
        let secret = match env(&c.secret_env, "challenge.secret_env")? {
            Some(s) => Some(s),
            None => c.secret.clone(),
        };
        if secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err(bad(
                "challenge.secret".into(),
                "must be at least 16 characters".into(),
            ));
        }
        let header = |name: &str, key: &str| -> Result<axum::http::HeaderName, PolicyError> {
            axum::http::HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| bad(key.into(), format!("`{name}` is not a valid header name")))
        };
        let id = &file.identity;
        let headers = IdentityHeaders {
            client_ip: header(&id.client_ip_header, "identity.client_ip_header")?,
            user: id
                .user_header
                .as_deref()
                .map(|h| header(h, "identity.user_header"))
                .transpose()?,
            token: id
                .token_header
                .as_deref()
                .map(|h| header(h, "identity.token_header"))
                .transpose()?,
        };
        let lower = |v: &[String]| v.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>();
        Ok(Policy {
            headers,
            trusted_proxies,
            allow_cidrs,
            deny_cidrs,
            allow_uas: lower(&file.lists.allow_user_agents),
            deny_uas: lower(&file.lists.deny_user_agents),
            limits,
            admin_token,
            secret: secret.map(String::into_bytes),
            file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10/s").unwrap(), (10, Duration::from_secs(1)));
        assert_eq!(parse_rate("600/m").unwrap(), (600, Duration::from_secs(60)));
        assert_eq!(parse_rate("5/10s").unwrap(), (5, Duration::from_secs(10)));
        assert_eq!(
            parse_rate("1/500ms").unwrap(),
            (1, Duration::from_millis(500))
        );
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("10/fortnight")
            .unwrap_err()
            .contains("fortnight"));
        assert!(parse_rate("ten/s").is_err());
    }

    #[test]
    fn errors_name_the_key() {
        let e = Policy::parse("[[limit]]\nname='ip'\nkey='ip'\nrate='10/x'\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("limit[0] (ip).rate") && e.contains("t.toml"),
            "{e}"
        );
        let e = Policy::parse("[lists]\ndeny_cidrs=['10.0.0.0/8','nope']\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lists.deny_cidrs[1]"), "{e}");
        let e = Policy::parse("[server]\nlisten_on='x'\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen_on"), "{e}");
        let e = Policy::parse(
            "[[limit]]\nname='u'\nkey='user'\nrate='1/s'\nstore='redis'\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[redis]"), "{e}");
        let e = Policy::parse(
            "[[limit]]\nname='u'\nkey='user'\nrate='1/s'\nlocal_lease=4\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("limit[0] (u).local_lease"), "{e}");
        let e = Policy::parse(
            "[redis]\n[[limit]]\nname='u'\nkey='user'\nrate='1/s'\nstore='redis'\nlocal_lease=4\nlocal_lease_ms=0\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("local_lease_ms"), "{e}");
        let p = Policy::parse(
            "[redis]\n[[limit]]\nname='u'\nkey='user'\nrate='1/s'\nstore='redis'\nlocal_lease=4\n",
            "t",
        )
        .unwrap();
        assert_eq!(p.limits[0].lease.cells, 4);
        assert_eq!(p.limits[0].lease.ttl_ns, 100_000_000);
        let e = Policy::parse("[risk]\nchallenge_at=0.9\ndeny_at=0.5\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("risk.challenge_at"), "{e}");
    }

    #[test]
    fn overrides_normalised() {
        let p = Policy::parse(
            "[[limit]]\nname='ip'\nkey='ip'\nrate='10/s'\n[limit.overrides]\n\"2001:db8::1/64\"={rate='100/s'}\n",
            "t",
        )
        .unwrap();
        assert!(p.limits[0].overrides.contains_key("2001:db8::/64"));
        assert_eq!(p.limits[0].overrides["2001:db8::/64"].burst, 100);
    }

    #[test]
    fn ip_prefixing() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(ip_prefix(a, 32, 64).to_string(), "2001:db8:1:2::/64");
        let b: IpAddr = "192.0.2.77".parse().unwrap();
        assert_eq!(ip_prefix(b, 24, 64).to_string(), "192.0.2.0/24");
        assert_eq!(ip_prefix(b, 32, 64).to_string(), "192.0.2.77/32");
    }
}
