//! The decision engine: identity → allow/deny lists → rate limits → risk →
//! challenge, one [`Decision`] out. Used in-process and by the service.

use crate::challenge::{self, ChallengeError, SeenSet, Signer};
use crate::clock::{Clock, MonotonicClock, SystemClock};
use crate::gcra::Quota;
use crate::policy::{ip_prefix, ChallengeKind, FailureMode, KeyKind, LimitSpec, Policy, StoreKind};
use crate::risk::{CiWords, FeatureMask, LinearScorer, RequestFeatures, RequestView, RiskScorer};
use crate::store::{AnyStore, MemoryStore, RedisConfig, RedisStore, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// What `metrics::counter!` would attach to the limit-check counter.
static METRICS_META: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Path of the challenge pages served by the gate.
pub const CHALLENGE_PATH: &str = "/.palisade/challenge";

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Challenge,
    Deny,
    RateLimited,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Challenge => "challenge",
            Verdict::Deny => "deny",
            Verdict::RateLimited => "rate_limited",
        }
    }
}

/// One limit's state after this request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LimitReport {
    pub name: String,
    pub key_kind: KeyKind,
    /// The burst: requests allowed at once.
    pub limit: u32,
    pub remaining: u32,
    pub reset_after_ms: u64,
    pub allowed: bool,
    /// Set when the store failed and the failure mode decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_error: Option<String>,
}

/// What the client must do to pass.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChallengeOffer {
    pub kind: ChallengeKind,
    pub token: String,
    pub difficulty: u8,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    pub decision: Verdict,
    pub reasons: Vec<String>,
    pub limits: Vec<LimitReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<ChallengeOffer>,
    /// A valid pass cookie was presented.
    pub pass: bool,
}

/// The request as the gate sees it (after identity resolution).
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub ip: Option<IpAddr>,
    pub host: Option<String>,
    pub user: Option<String>,
    pub token: Option<String>,
    pub method: String,
    pub path: String,
    pub query: String,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
    pub accept_language: bool,
    pub header_count: usize,
    pub pass: Option<String>,
}

/// `POST /v1/decide` input.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecideInput {
    pub ip: Option<String>,
    pub user: Option<String>,
    pub token: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    pub url: String,
    #[serde(default)]
    pub headers: HashMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("field `{0}`: {1}")]
    BadInput(&'static str, String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("policy: {0}")]
    Policy(String),
    #[error("{0}")]
    Challenge(#[from] ChallengeError),
}

struct Limiter {
    spec: LimitSpec,
    store: AnyStore,
    /// The name as a metrics label: cloning it is a reference count, not an
    /// allocation per request.
    label: Arc<str>,
    /// `palisade_gate_limit_checks_total{limiter, result}` keys, built once:
    /// the macro would build (allocate, hash) a key per request. Only the
    /// keys are cached, not counter handles, so a recorder installed after
    /// the gate was built still receives them.
    checks_allowed: metrics::Key,
    checks_denied: metrics::Key,
    /// The counters of those keys, registered at the first check (see
    /// [`Gate::decide`] on why not at build time).
    checks: OnceLock<[metrics::Counter; 2]>,
    /// IP overrides keyed by network (the policy keys them by the network's
    /// text), so an IP request is looked up without formatting its key.
    ip_overrides: HashMap<ipnet::IpNet, Quota>,
}

/// A limiter key, built without allocating: an IP key is the masked prefix
/// (text only for Redis, whose keys are shared with other instances and
/// tools), a user or token key borrows the subject's string.
#[derive(Debug, Clone, Copy)]
enum LimitKey<'a> {
    Ip(ipnet::IpNet),
    Text(&'a str),
}

/// Longest memory-store IP key: tag, family, prefix length, 16 address bytes.
const IP_KEY_LEN: usize = 19;

impl LimitKey<'_> {
    /// The memory store's key bytes. An IP key starts with 0xFF, a byte that
    /// never occurs in UTF-8, so it can never equal a text key.
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            LimitKey::Text(t) => f(t.as_bytes()),
            LimitKey::Ip(net) => {
                let mut b = [0u8; IP_KEY_LEN];
                b[0] = 0xFF;
                b[2] = net.prefix_len();
                let len = match net.network() {
                    IpAddr::V4(a) => {
                        b[1] = 4;
                        b[3..7].copy_from_slice(&a.octets());
                        7
                    }
                    IpAddr::V6(a) => {
                        b[1] = 6;
                        b[3..19].copy_from_slice(&a.octets());
                        IP_KEY_LEN
                    }
                };
                f(&b[..len])
            }
        }
    }

    /// The key as text (Redis keys, and the overrides of text keys).
    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            LimitKey::Text(t) => std::borrow::Cow::Borrowed(t),
            LimitKey::Ip(net) => std::borrow::Cow::Owned(net.to_string()),
        }
    }
}

impl Limiter {
    fn applies(&self, method: &str, path: &str) -> bool {
        (self.spec.methods.is_empty() || self.spec.methods.iter().any(|m| m == method))
            && (self.spec.routes.is_empty()
                || self
                    .spec
                    .routes
                    .iter()
                    .any(|r| path.starts_with(r.as_str())))
    }
}

/// State that outlives a policy reload: limiter stores, the seen-set, the
/// fallback secret. Reusing them keeps every key's limit across a reload.
pub struct Stores {
    memory: Mutex<HashMap<String, (String, Arc<MemoryStore>)>>,
    redis: Mutex<Option<(String, Arc<RedisStore>)>>,
    seen: Arc<SeenSet>,
    fallback_secret: Vec<u8>,
    /// The memory limiters' clock: TATs are relative to its start, so it
    /// must outlive reloads together with the stores.
    clock: Arc<dyn Clock>,
}

impl Default for Stores {
    fn default() -> Self {
        Stores {
            memory: Mutex::new(HashMap::new()),
            redis: Mutex::new(None),
            seen: Arc::new(SeenSet::new(1_000_000)),
            fallback_secret: rand::random::<[u8; 32]>().to_vec(),
            clock: Arc::new(MonotonicClock::new()),
        }
    }
}

impl Stores {
    fn memory_for(&self, name: &str, p: &Policy) -> Arc<MemoryStore> {
        let m = &p.file.memory;
        let sig = format!("{}/{}/{:?}", m.max_keys, m.shards, m.eviction);
        let mut map = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, st)) = map.get(name) {
            if *s == sig {
                return st.clone();
            }
        }
        let st = Arc::new(MemoryStore::new(m.max_keys, m.shards, m.eviction));
        map.insert(name.to_string(), (sig, st.clone()));
        st
    }

    fn redis_for(&self, p: &Policy) -> Result<Option<Arc<RedisStore>>, GateError> {
        let Some(r) = &p.file.redis else {
            return Ok(None);
        };
        let sig = format!(
            "{}|{}|{}|{}|{}",
            r.url, r.prefix, r.timeout_ms, r.breaker_failures, r.breaker_cooldown_ms
        );
        let mut slot = self.redis.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, st)) = slot.as_ref() {
            if *s == sig {
                return Ok(Some(st.clone()));
            }
        }
        let st = Arc::new(RedisStore::new(RedisConfig {
            url: r.url.clone(),
            prefix: r.prefix.clone(),
            timeout: Duration::from_millis(r.timeout_ms.max(1)),
            breaker_failures: r.breaker_failures,
            breaker_cooldown: Duration::from_millis(r.breaker_cooldown_ms),
            server_time: true,
        })?);
        *slot = Some((sig, st.clone()));
        Ok(Some(st))
    }
}

/// One compiled policy with its stores; swap a new one in to reload.
pub struct Gate {
    pub policy: Policy,
    limiters: Vec<Limiter>,
    scorer: Arc<dyn RiskScorer>,
    /// The request features the scorer reads; only those are computed.
    needs: FeatureMask,
    /// Times `decide` for its histogram (the TSC clock: cheaper than `Instant`).
    timer: quanta::Clock,
    /// The decision counters and latency histogram, registered at the first
    /// decision (see [`Gate::decide`]).
    decision_metrics: OnceLock<DecisionMetrics>,
    signer: Signer,
    seen: Arc<SeenSet>,
    redis: Option<Arc<RedisStore>>,
    clock: Arc<dyn Clock>,
    wall: Arc<dyn Clock>,
    /// User-agent list matchers (case-insensitive, one pass per request).
    allow_ua: Option<CiWords>,
    deny_ua: Option<CiWords>,
}

/// `palisade_gate_decisions_total{decision}` (indexed by [`Verdict`]) and
/// `palisade_gate_decide_seconds`.
struct DecisionMetrics {
    decisions: [metrics::Counter; 4],
    decide_seconds: metrics::Histogram,
}

impl DecisionMetrics {
    fn register() -> Self {
        let c = |v: Verdict| metrics::counter!("palisade_gate_decisions_total", "decision" => v.as_str());
        DecisionMetrics {
            decisions: [
                c(Verdict::Allow),
                c(Verdict::Challenge),
                c(Verdict::Deny),
                c(Verdict::RateLimited),
            ],
            decide_seconds: metrics::histogram!("palisade_gate_decide_seconds"),
        }
    }
}

fn ua_matcher(words: &[String]) -> Result<Option<CiWords>, GateError> {
    if words.is_empty() {
        return Ok(None);
    }
    CiWords::new(words)
        .map(Some)
        .map_err(|e| GateError::Policy(format!("user-agent list: {e}")))
}

fn ceil_s(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000)
}

impl Gate {
    /// Build with the real clocks.
    pub fn new(policy: Policy, stores: &Stores) -> Result<Gate, GateError> {
        Gate::with_clocks(policy, stores, stores.clock.clone(), Arc::new(SystemClock))
    }

    /// Build with given clocks: `clock` drives the memory limiters (pass the
    /// same clock on every reload that shares `stores`), `wall`
    /// (Unix time) the token and pass expiry.
    pub fn with_clocks(
        policy: Policy,
        stores: &Stores,
        clock: Arc<dyn Clock>,
        wall: Arc<dyn Clock>,
    ) -> Result<Gate, GateError> {
        let redis = stores.redis_for(&policy)?;
        let mut limiters = Vec::new();
        for spec in &policy.limits {
            let store = match spec.store {
                StoreKind::Memory => AnyStore::Memory(stores.memory_for(&spec.name, &policy)),
                StoreKind::Redis => AnyStore::Redis(
                    redis
                        .clone()
                        .ok_or_else(|| GateError::Policy("redis store without [redis]".into()))?,
                ),
            };
            let ip_overrides = if spec.key == KeyKind::Ip {
                // The policy stores IP overrides as normalised network text.
                spec.overrides
                    .iter()
                    .map(|(k, q)| {
                        k.parse::<ipnet::IpNet>().map(|n| (n, *q)).map_err(|_| {
                            GateError::Policy(format!(
                                "limit `{}`: override `{k}` is not a network",
                                spec.name
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?
            } else {
                HashMap::new()
            };
            let label: Arc<str> = Arc::from(spec.name.as_str());
            let checks = |result: &'static str| {
                metrics::Key::from_parts(
                    "palisade_gate_limit_checks_total",
                    vec![
                        metrics::Label::new("limiter", label.clone()),
                        metrics::Label::new("result", result),
                    ],
                )
            };
            limiters.push(Limiter {
                checks_allowed: checks("allowed"),
                checks_denied: checks("denied"),
                checks: OnceLock::new(),
                label,
                spec: spec.clone(),
                store,
                ip_overrides,
            });
        }
        let r = &policy.file.risk;
        let scorer: Arc<dyn RiskScorer> = match &r.model {
            Some(path) => {
                crate::model_scorer::load(std::path::Path::new(path)).map_err(GateError::Policy)?
            }
            None => Arc::new(
                LinearScorer::with_weights(r.bias, &r.weights)
                    .map_err(|m| GateError::Policy(format!("risk.weights: {m}")))?,
            ),
        };
        let secret = policy
            .secret
            .clone()
            .unwrap_or_else(|| stores.fallback_secret.clone());
        Ok(Gate {
            allow_ua: ua_matcher(&policy.allow_uas)?,
            deny_ua: ua_matcher(&policy.deny_uas)?,
            signer: Signer::new(&secret),
            seen: stores.seen.clone(),
            redis,
            policy,
            limiters,
            needs: scorer.needs(),
            scorer,
            timer: quanta::Clock::new(),
            decision_metrics: OnceLock::new(),
            clock,
            wall,
        })
    }

    /// Whether a decision can wait on anything (a Redis-backed limiter); a
    /// memory-only decision never awaits, so a timeout around it is moot.
    pub fn may_wait(&self) -> bool {
        self.limiters
            .iter()
            .any(|l| matches!(l.store, AnyStore::Redis(_)))
    }

    /// Replace the risk scorer (tests, embedding).
    pub fn set_scorer(&mut self, s: Arc<dyn RiskScorer>) {
        self.needs = s.needs();
        self.scorer = s;
    }

    pub fn scorer_name(&self) -> &str {
        self.scorer.name()
    }

    fn wall_s(&self) -> u64 {
        self.wall.now_ns() / 1_000_000_000
    }

    /// The IP limiter key and challenge binding unit for an address.
    pub fn ip_key(&self, ip: IpAddr) -> String {
        self.ip_net(ip).to_string()
    }

    /// The client binding of tokens and passes.
    pub fn bind(&self, ip: Option<IpAddr>, ua: Option<&str>) -> String {
        let ipk = ip.map(|i| self.ip_key(i)).unwrap_or_default();
        let ua = if self.policy.file.challenge.bind_user_agent {
            ua
        } else {
            None
        };
        Signer::bind(&ipk, ua)
    }

    /// Is `peer` a trusted proxy (whose client-IP header we believe)?
    pub fn trusted(&self, peer: IpAddr) -> bool {
        self.policy
            .trusted_proxies
            .iter()
            .any(|n| n.contains(&peer))
    }

    /// The client address: the peer, or — only when the peer is a trusted
    /// proxy — the right-most address in the client-IP header that is not
    /// itself a trusted proxy (the left part of X-Forwarded-For is client-
    /// controlled and would let anyone choose their rate-limit key).
    pub fn client_ip(&self, peer: Option<IpAddr>, header: Option<&str>) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusted(peer) {
            return Some(peer);
        }
        let Some(h) = header else { return Some(peer) };
        let mut last = peer;
        for part in h.rsplit(',') {
            let Ok(ip) = part.trim().parse::<IpAddr>() else {
                break;
            };
            last = ip;
            if !self.trusted(ip) {
                return Some(ip);
            }
        }
        Some(last)
    }

    /// Build a [`Subject`] from `/v1/decide` input (the caller is trusted to
    /// state the client IP).
    pub fn subject_from_input(&self, inp: &DecideInput) -> Result<Subject, GateError> {
        let headers: HashMap<String, &str> = inp
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
            .collect();
        let ip =
            match &inp.ip {
                Some(s) => Some(s.trim().parse::<IpAddr>().map_err(|_| {
                    GateError::BadInput("ip", format!("`{s}` is not an IP address"))
                })?),
                None => None,
            };
        let method = inp
            .method
            .clone()
            .unwrap_or_else(|| "GET".into())
            .to_ascii_uppercase();
        if method.is_empty()
            || method.len() > 16
            || !method.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(GateError::BadInput(
                "method",
                format!("`{method}` is not an HTTP method"),
            ));
        }
        let (path, query) = split_url(&inp.url).ok_or_else(|| {
            GateError::BadInput("url", "must be a path (`/…`) or an http(s) URL".into())
        })?;
        let id = &self.policy.file.identity;
        let user = inp.user.clone().or_else(|| {
            id.user_header
                .as_ref()
                .and_then(|h| headers.get(h.to_ascii_lowercase().as_str()))
                .map(|s| s.to_string())
        });
        let token = inp.token.clone().or_else(|| {
            id.token_header
                .as_ref()
                .and_then(|h| headers.get(h.to_ascii_lowercase().as_str()))
                .map(|s| strip_bearer(s).to_string())
        });
        let host = url_host(&inp.url)
            .or_else(|| headers.get("host").copied())
            .map(str::to_string);
        Ok(Subject {
            ip,
            host,
            user: user.filter(|s| !s.is_empty()),
            token: token.filter(|s| !s.is_empty()),
            method,
            path,
            query,
            user_agent: headers.get("user-agent").map(|s| s.to_string()),
            referrer: headers
                .get("referer")
                .or_else(|| headers.get("referrer"))
                .map(|s| s.to_string()),
            accept_language: headers.contains_key("accept-language"),
            header_count: headers.len(),
            pass: headers
                .get("cookie")
                .and_then(|c| cookie_value(c, &self.policy.file.challenge.cookie_name))
                .map(str::to_string),
        })
    }

    fn ip_net(&self, ip: IpAddr) -> ipnet::IpNet {
        let id = &self.policy.file.identity;
        ip_prefix(ip, id.ipv4_prefix, id.ipv6_prefix)
    }

    fn limit_key<'s>(&self, kind: KeyKind, s: &'s Subject) -> Option<LimitKey<'s>> {
        match kind {
            KeyKind::Ip => s.ip.map(|ip| LimitKey::Ip(self.ip_net(ip))),
            KeyKind::User => s.user.as_deref().map(LimitKey::Text),
            KeyKind::Token => s.token.as_deref().map(LimitKey::Text),
        }
    }

    fn quota_for(l: &Limiter, key: &LimitKey<'_>) -> Quota {
        // Both maps are usually empty, and an empty map returns before hashing.
        match key {
            LimitKey::Ip(net) => l.ip_overrides.get(net),
            LimitKey::Text(t) => l.spec.overrides.get(*t),
        }
        .copied()
        .unwrap_or(l.spec.quota)
    }

    /// One limiter's store step. The memory store is called directly (no
    /// future, no key text); Redis gets the key's text.
    async fn check_store(
        l: &Limiter,
        key: &LimitKey<'_>,
        q: Quota,
        now: u64,
    ) -> Result<crate::gcra::Outcome, StoreError> {
        match &l.store {
            AnyStore::Memory(m) => key
                .with_bytes(|b| m.check(b, q, 1, now))
                .ok_or(StoreError::Full),
            // Boxed: the Redis future is large, and inline it would make
            // every decision's future (moved on each call) that large too.
            AnyStore::Redis(r) => {
                Box::pin(r.check_leased(&l.spec.name, &key.text(), q, l.spec.lease, now)).await
            }
        }
    }

    /// Decide on one request.
    ///
    /// The metric handles are registered at the first decision, not when
    /// the gate is built: the service builds its gate before it installs the
    /// Prometheus recorder, and a handle taken before that would count
    /// nowhere. Looking them up per request instead (the `counter!` macros)
    /// hashed and compared the key and allocated its labels on every
    /// decision (callgrind, `bench/gate_http.sh` workload).
    pub async fn decide(&self, s: &Subject) -> Decision {
        let started = self.timer.raw();
        let d = self.decide_inner(s).await;
        let m = self.decision_metrics.get_or_init(DecisionMetrics::register);
        m.decisions[d.decision as usize].increment(1);
        let ns = self.timer.delta_as_nanos(started, self.timer.raw());
        m.decide_seconds.record(ns as f64 * 1e-9);
        d
    }

    async fn decide_inner(&self, s: &Subject) -> Decision {
        let mut d = Decision {
            decision: Verdict::Allow,
            reasons: vec![],
            limits: vec![],
            retry_after_s: None,
            risk: None,
            challenge: None,
            pass: false,
        };
        let p = &self.policy;
        if let Some(ip) = s.ip {
            if let Some(n) = p.allow_cidrs.iter().find(|n| n.contains(&ip)) {
                d.reasons.push(format!("allow list: {n}"));
                return d;
            }
            if let Some(n) = p.deny_cidrs.iter().find(|n| n.contains(&ip)) {
                d.decision = Verdict::Deny;
                d.reasons.push(format!("deny list: {n}"));
                return d;
            }
        }
        if let Some(ua) = s.user_agent.as_deref() {
            if let Some(i) = self.allow_ua.as_ref().and_then(|a| a.find(ua)) {
                d.reasons.push(format!(
                    "allow list: user agent contains `{}`",
                    p.allow_uas[i]
                ));
                return d;
            }
            if let Some(i) = self.deny_ua.as_ref().and_then(|a| a.find(ua)) {
                d.decision = Verdict::Deny;
                d.reasons.push(format!(
                    "deny list: user agent contains `{}`",
                    p.deny_uas[i]
                ));
                return d;
            }
        }

        // Rate limits.
        d.limits.reserve(self.limiters.len());
        let now = self.clock.now_ns();
        let mut pressure = 0f32;
        let mut exceeded = false;
        let mut retry_ns = 0u64;
        for l in self
            .limiters
            .iter()
            .filter(|l| l.applies(&s.method, &s.path))
        {
            let Some(key) = self.limit_key(l.spec.key, s) else {
                continue;
            };
            let q = Self::quota_for(l, &key);
            let mut rep = LimitReport {
                name: l.spec.name.clone(),
                key_kind: l.spec.key,
                limit: q.burst,
                remaining: 0,
                reset_after_ms: 0,
                allowed: true,
                store_error: None,
            };
            match Self::check_store(l, &key, q, now).await {
                Ok(o) => {
                    rep.allowed = o.allowed;
                    rep.remaining = o.remaining;
                    rep.reset_after_ms = o.reset_after_ns / 1_000_000;
                    pressure = pressure.max(1.0 - o.remaining as f32 / q.burst as f32);
                    if !o.allowed {
                        exceeded = true;
                        retry_ns = retry_ns.max(o.retry_after_ns);
                        d.reasons
                            .push(format!("rate limit `{}` exceeded", l.spec.name));
                    }
                    let checks = l.checks.get_or_init(|| {
                        [&l.checks_allowed, &l.checks_denied].map(|key| {
                            metrics::with_recorder(|r| r.register_counter(key, &METRICS_META))
                        })
                    });
                    checks[usize::from(!o.allowed)].increment(1);
                }
                Err(e) => {
                    let mode = l.spec.on_store_error;
                    metrics::counter!("palisade_gate_store_errors_total", "limiter" => l.label.clone(), "store" => l.store.kind(), "mode" => match mode { FailureMode::Open => "open", FailureMode::Closed => "closed" }).increment(1);
                    tracing::debug!(limiter = %l.spec.name, error = %e, "limiter store failed");
                    rep.store_error = Some(e.to_string());
                    if mode == FailureMode::Closed {
                        rep.allowed = false;
                        exceeded = true;
                        retry_ns = retry_ns.max(1_000_000_000);
                        d.reasons.push(format!(
                            "rate limit `{}` unavailable ({e}); failing closed",
                            l.spec.name
                        ));
                    } else {
                        rep.remaining = q.burst;
                        d.reasons.push(format!(
                            "rate limit `{}` unavailable ({e}); failing open",
                            l.spec.name
                        ));
                    }
                }
            }
            d.limits.push(rep);
        }
        if exceeded {
            d.decision = Verdict::RateLimited;
            d.retry_after_s = Some(if retry_ns == u64::MAX {
                3600
            } else {
                ceil_s(retry_ns).max(1)
            });
        }

        // Risk, challenge, pass.
        // The binding is a SHA-256 and the wall clock a syscall-class read:
        // both only when a pass is presented or a challenge issued, not on
        // every request.
        let bind = || self.bind(s.ip, s.user_agent.as_deref());
        d.pass = s
            .pass
            .as_deref()
            .is_some_and(|ps| self.signer.check_pass(ps, self.wall_s(), &bind()));
        let r = &p.file.risk;
        if r.enabled {
            let view = RequestView {
                method: &s.method,
                host: s.host.as_deref(),
                path: &s.path,
                query: &s.query,
                user_agent: s.user_agent.as_deref(),
                referrer: s.referrer.as_deref(),
                accept_language: s.accept_language,
                header_count: s.header_count,
                limit_pressure: pressure,
                limit_exceeded: exceeded,
            };
            let f = RequestFeatures::from_view_masked(&view, self.needs);
            let score = self.scorer.score(&f, &view);
            if !score.is_finite() {
                // A scorer failure must not deny or challenge everyone; the
                // limits and lists above still apply.
                metrics::counter!("palisade_gate_risk_errors_total").increment(1);
                d.reasons.push("risk scorer returned no score".into());
            }
            let score = score.clamp(0.0, 1.0);
            if score.is_finite() {
                d.risk = Some(score);
            }
            if d.decision == Verdict::Allow && score.is_finite() {
                if score >= r.deny_at {
                    d.decision = Verdict::Deny;
                    d.reasons
                        .push(format!("risk {score:.3} ≥ deny threshold {}", r.deny_at));
                } else if score >= r.challenge_at {
                    if d.pass {
                        d.reasons.push(format!(
                            "risk {score:.3} ≥ challenge threshold, but a valid pass was presented"
                        ));
                    } else {
                        d.decision = Verdict::Challenge;
                        d.reasons.push(format!(
                            "risk {score:.3} ≥ challenge threshold {}",
                            r.challenge_at
                        ));
                        d.challenge = Some(self.offer(score, &bind()));
                    }
                }
            }
        }
        d
    }

    fn offer(&self, risk: f32, bind: &str) -> ChallengeOffer {
        let c = &self.policy.file.challenge;
        let r = &self.policy.file.risk;
        let difficulty = challenge::difficulty_for(
            risk,
            r.challenge_at,
            r.deny_at,
            c.min_difficulty,
            c.max_difficulty,
        );
        let exp = self.wall_s() + c.ttl_s;
        // A CAPTCHA token needs its image's answer, so the offer for the
        // captcha kind points at the page that generates one.
        let (token, url) = match c.kind {
            ChallengeKind::Pow => {
                let t = self
                    .signer
                    .issue(ChallengeKind::Pow, difficulty, exp, bind, None);
                let url = format!("{CHALLENGE_PATH}?t={t}");
                (t, url)
            }
            ChallengeKind::Captcha => (String::new(), format!("{CHALLENGE_PATH}/captcha")),
        };
        ChallengeOffer {
            kind: c.kind,
            token,
            difficulty,
            url,
        }
    }

    /// Issue a proof-of-work token for a client.
    pub fn issue_pow(&self, ip: Option<IpAddr>, ua: Option<&str>, difficulty: u8) -> String {
        let c = &self.policy.file.challenge;
        let d = difficulty.clamp(c.min_difficulty, c.max_difficulty);
        self.signer.issue(
            ChallengeKind::Pow,
            d,
            self.wall_s() + c.ttl_s,
            &self.bind(ip, ua),
            None,
        )
    }

    /// The difficulty of a valid, unexpired proof-of-work token for this client.
    pub fn opened_pow(&self, token: &str, bind: &str) -> Option<u8> {
        self.signer
            .open(token, self.wall_s(), bind)
            .ok()
            .filter(|t| t.kind == ChallengeKind::Pow)
            .map(|t| t.difficulty)
    }

    /// Issue a CAPTCHA: (token, PNG bytes).
    pub fn issue_captcha(&self, ip: Option<IpAddr>, ua: Option<&str>) -> Option<(String, Vec<u8>)> {
        let (answer, png) = challenge::make_captcha()?;
        let c = &self.policy.file.challenge;
        let tok = self.signer.issue(
            ChallengeKind::Captcha,
            0,
            self.wall_s() + c.ttl_s,
            &self.bind(ip, ua),
            Some(&answer),
        );
        Some((tok, png))
    }

    async fn first_use(&self, t: &challenge::Token, now: u64) -> Result<(), ChallengeError> {
        let fleet = self.policy.file.challenge.replay_store == StoreKind::Redis;
        if let (true, Some(r)) = (fleet, &self.redis) {
            match r.first_use(&t.id, t.expires.saturating_sub(now)).await {
                Ok(true) => return Ok(()),
                Ok(false) => return Err(ChallengeError::Replayed),
                // Redis down: fall back to the local seen-set (replays across
                // instances become possible for the outage; within one
                // instance they are still refused).
                Err(e) => {
                    tracing::warn!(error = %e, "replay store (redis) unavailable; using the local seen-set")
                }
            }
        }
        if self.seen.first_use(&t.id, t.expires, now)? {
            Ok(())
        } else {
            Err(ChallengeError::Replayed)
        }
    }

    /// Verify a proof-of-work solution; on success, the pass cookie value and its lifetime (s).
    pub async fn verify_pow(
        &self,
        token: &str,
        nonce: &str,
        ip: Option<IpAddr>,
        ua: Option<&str>,
    ) -> Result<(String, u64), ChallengeError> {
        let now = self.wall_s();
        let bind = self.bind(ip, ua);
        let res = async {
            let t = self.signer.open(token, now, &bind)?;
            self.signer.check_pow(token, &t, nonce)?;
            self.first_use(&t, now).await
        }
        .await;
        self.finish_verify("pow", res, now, &bind)
    }

    /// Verify a CAPTCHA answer; on success, the pass cookie value and lifetime.
    pub async fn verify_captcha(
        &self,
        token: &str,
        answer: &str,
        ip: Option<IpAddr>,
        ua: Option<&str>,
    ) -> Result<(String, u64), ChallengeError> {
        let now = self.wall_s();
        let bind = self.bind(ip, ua);
        let res = async {
            let t = self.signer.open(token, now, &bind)?;
            // Single use also for wrong answers: one guess per image.
            self.first_use(&t, now).await?;
            self.signer.check_captcha(&t, answer)
        }
        .await;
        self.finish_verify("captcha", res, now, &bind)
    }

    fn finish_verify(
        &self,
        kind: &'static str,
        res: Result<(), ChallengeError>,
        now: u64,
        bind: &str,
    ) -> Result<(String, u64), ChallengeError> {
        let outcome = match &res {
            Ok(()) => "ok",
            Err(ChallengeError::Replayed) => "replayed",
            Err(ChallengeError::Expired) => "expired",
            Err(ChallengeError::BadSignature | ChallengeError::Malformed) => "forged",
            Err(_) => "failed",
        };
        metrics::counter!("palisade_gate_challenges_verified_total", "kind" => kind, "result" => outcome).increment(1);
        res?;
        let ttl = self.policy.file.challenge.pass_ttl_s;
        Ok((self.signer.issue_pass(now + ttl, bind), ttl))
    }

    /// Inspect a key of a limiter without consuming.
    pub async fn inspect(&self, limiter: &str, key: &str) -> Result<LimitReport, GateError> {
        let l = self
            .limiters
            .iter()
            .find(|l| l.spec.name == limiter)
            .ok_or_else(|| {
                GateError::BadInput("limiter", format!("no limiter named `{limiter}`"))
            })?;
        let key = match l.spec.key {
            KeyKind::Ip => {
                let ip = key
                    .parse::<IpAddr>()
                    .or_else(|_| key.parse::<ipnet::IpNet>().map(|n| n.addr()))
                    .map_err(|_| GateError::BadInput("key", format!("`{key}` is not an IP")))?;
                LimitKey::Ip(self.ip_net(ip))
            }
            _ => LimitKey::Text(key),
        };
        let q = Self::quota_for(l, &key);
        let now = self.clock.now_ns();
        let (remaining, reset) = match &l.store {
            AnyStore::Memory(m) => {
                let (r, reset, _) = key.with_bytes(|b| m.peek(b, q, now));
                (r, reset)
            }
            AnyStore::Redis(r) => r.peek(&l.spec.name, &key.text(), q, now).await?,
        };
        Ok(LimitReport {
            name: l.spec.name.clone(),
            key_kind: l.spec.key,
            limit: q.burst,
            remaining,
            reset_after_ms: reset / 1_000_000,
            allowed: remaining > 0,
            store_error: None,
        })
    }

    /// Gauges read at scrape time.
    pub fn export_gauges(&self) {
        for l in &self.limiters {
            match &l.store {
                AnyStore::Memory(m) => {
                    metrics::gauge!("palisade_gate_memory_keys", "limiter" => l.spec.name.clone())
                        .set(m.len() as f64);
                    let st = &m.stats;
                    use std::sync::atomic::Ordering::Relaxed;
                    metrics::counter!("palisade_gate_memory_evictions_total", "limiter" => l.spec.name.clone(), "kind" => "expired").absolute(st.expired_evictions.load(Relaxed));
                    metrics::counter!("palisade_gate_memory_evictions_total", "limiter" => l.spec.name.clone(), "kind" => "active").absolute(st.active_evictions.load(Relaxed));
                    metrics::counter!("palisade_gate_memory_rejected_new_total", "limiter" => l.spec.name.clone()).absolute(st.rejected_new.load(Relaxed));
                }
                AnyStore::Redis(_) => {}
            }
        }
        if let Some(r) = &self.redis {
            let v = match r.breaker.state() {
                crate::store::BreakerState::Closed => 0.0,
                crate::store::BreakerState::Open => 1.0,
                crate::store::BreakerState::HalfOpen => 2.0,
            };
            metrics::gauge!("palisade_gate_redis_breaker_state").set(v);
            use std::sync::atomic::Ordering::Relaxed;
            metrics::counter!("palisade_gate_redis_errors_total").absolute(r.errors.load(Relaxed));
            metrics::counter!("palisade_gate_redis_breaker_trips_total")
                .absolute(r.breaker.trips.load(Relaxed));
            metrics::counter!("palisade_gate_redis_lease_hits_total")
                .absolute(r.lease_hits.load(Relaxed));
        }
    }

    /// Drop expired keys of the memory limiters (called periodically by the service).
    pub fn sweep(&self) {
        let now = self.clock.now_ns();
        for l in &self.limiters {
            if let AnyStore::Memory(m) = &l.store {
                m.sweep(now);
            }
        }
    }
}

/// Split a path-or-URL into (path, query). `None` for anything else.
pub fn split_url(url: &str) -> Option<(String, String)> {
    let rest = if url.starts_with('/') {
        url
    } else {
        let after = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))?;
        match after.find('/') {
            Some(i) => &after[i..],
            None => "/",
        }
    };
    let rest = rest.split('#').next().unwrap_or(rest);
    Some(match rest.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (rest.to_string(), String::new()),
    })
}

/// The host of an absolute http(s) URL.
pub fn url_host(url: &str) -> Option<&str> {
    let after = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    Some(&after[..end]).filter(|h| !h.is_empty())
}

pub fn strip_bearer(v: &str) -> &str {
    let v = v.trim();
    if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
        v[7..].trim()
    } else {
        v
    }
}

/// The value of cookie `name` in a Cookie header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    fn gate(extra: &str) -> Gate {
        let text = format!(
            r#"
[identity]
ipv6_prefix = 64
[risk]
enabled = false
[[limit]]
name = "ip"
key = "ip"
rate = "1/m"
burst = 2
[limit.overrides]
"10.9.9.9" = {{ rate = "10/m", burst = 4 }}
"2001:db8:1::/64" = {{ rate = "10/m", burst = 3 }}
{extra}
"#
        );
        let p = Policy::parse(&text, "t").unwrap();
        Gate::with_clocks(
            p,
            &Stores::default(),
            Arc::new(FakeClock::new(1_000_000_000)),
            Arc::new(FakeClock::new(1_700_000_000_000_000_000)),
        )
        .unwrap()
    }

    fn from(ip: &str) -> Subject {
        Subject {
            ip: Some(ip.parse().unwrap()),
            method: "GET".into(),
            path: "/".into(),
            ..Default::default()
        }
    }

    async fn allowed_in_a_row(g: &Gate, ip: &str) -> usize {
        let mut n = 0;
        while g.decide(&from(ip)).await.decision == Verdict::Allow {
            n += 1;
            assert!(n < 100);
        }
        n
    }

    /// IP keys are binary in the memory store: the configured prefix is the
    /// unit, overrides (keyed by network text in the policy) still apply,
    /// and `inspect` (text in, like the API) sees the same state.
    #[tokio::test]
    async fn ip_keys_prefixes_overrides_and_inspect() {
        let g = gate("");
        assert_eq!(allowed_in_a_row(&g, "10.0.0.1").await, 2);
        // A /32 for v4: the neighbour has its own burst.
        assert_eq!(allowed_in_a_row(&g, "10.0.0.2").await, 2);
        // Override by address (normalised to 10.9.9.9/32 by the policy).
        assert_eq!(allowed_in_a_row(&g, "10.9.9.9").await, 4);
        // v6: the whole /64 is one key, with its override.
        assert_eq!(allowed_in_a_row(&g, "2001:db8:1::1").await, 3);
        assert_eq!(
            g.decide(&from("2001:db8:1::ffff")).await.decision,
            Verdict::RateLimited
        );
        // Another /64 has the default quota.
        assert_eq!(allowed_in_a_row(&g, "2001:db8:2::1").await, 2);
        let r = g.inspect("ip", "2001:db8:1::42").await.unwrap();
        assert_eq!((r.limit, r.remaining), (3, 0));
        let r = g.inspect("ip", "10.0.0.3").await.unwrap();
        assert_eq!((r.limit, r.remaining), (2, 2));
        let r = g.inspect("ip", "10.9.9.9/32").await.unwrap();
        assert_eq!((r.limit, r.remaining), (4, 0));
    }

    #[test]
    fn ip_key_bytes_never_equal_text_keys() {
        let v4 = LimitKey::Ip("10.0.0.0/8".parse().unwrap());
        let v6 = LimitKey::Ip("2001:db8::/64".parse().unwrap());
        let b4 = v4.with_bytes(|b| b.to_vec());
        let b6 = v6.with_bytes(|b| b.to_vec());
        assert_eq!(b4, [0xFF, 4, 8, 10, 0, 0, 0]);
        assert_eq!(b6.len(), IP_KEY_LEN);
        assert_eq!(&b6[..3], &[0xFF, 6, 64]);
        assert!(std::str::from_utf8(&b4).is_err() && std::str::from_utf8(&b6).is_err());
        // Same network, different prefix length: different keys.
        let b4_16 = LimitKey::Ip("10.0.0.0/16".parse().unwrap()).with_bytes(|b| b.to_vec());
        assert_ne!(b4, b4_16);
        assert_eq!(v4.text(), "10.0.0.0/8");
        assert_eq!(LimitKey::Text("bob").with_bytes(|b| b.to_vec()), b"bob");
    }
}
