//! The HTTP service: `/v1/decide`, forward-auth (nginx `auth_request`,
//! Traefik ForwardAuth, Envoy ext_authz HTTP), challenge pages and
//! verification, `/metrics`, `/healthz`, admin endpoints; body and header
//! size limits, a per-request timeout, graceful shutdown, and policy reload
//! by swapping an `Arc<Gate>` (requests in flight keep the old one).

use crate::engine::{
    cookie_value, split_url, strip_bearer, DecideInput, Decision, Gate, Stores, Subject, Verdict,
    CHALLENGE_PATH,
};
use crate::policy::Policy;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use base64::Engine;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

/// Shared service state.
pub struct AppState {
    gate: RwLock<Arc<Gate>>,
    stores: Arc<Stores>,
    policy_path: Option<PathBuf>,
    prom: Option<PrometheusHandle>,
    captcha_permits: tokio::sync::Semaphore,
}

/// The process-wide Prometheus recorder (installed once).
pub fn prometheus() -> Option<PrometheusHandle> {
    static H: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    // The decision latency as a bucketed histogram, not the default summary:
    // a fleet's histograms add up across instances (summaries' quantiles do
    // not), and upkeep only counts samples into buckets.
    let builder = PrometheusBuilder::new().set_buckets_for_metric(
        metrics_exporter_prometheus::Matcher::Full("palisade_gate_decide_seconds".into()),
        &[
            1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1,
        ],
    );
    H.get_or_init(|| match builder.and_then(|b| b.install_recorder()) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "no Prometheus recorder; /metrics will be empty");
            None
        }
    })
    .clone()
}

impl AppState {
    pub fn new(gate: Gate, stores: Arc<Stores>, policy_path: Option<PathBuf>) -> Arc<Self> {
        Arc::new(AppState {
            gate: RwLock::new(Arc::new(gate)),
            stores,
            policy_path,
            prom: prometheus(),
            // Image generation costs milliseconds of CPU: cap concurrency so a
            // flood of CAPTCHA requests cannot starve decisions.
            captcha_permits: tokio::sync::Semaphore::new(2),
        })
    }

    pub fn gate(&self) -> Arc<Gate> {
        self.gate.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-read the policy file and swap it in; on error the old policy stays.
    pub fn reload(&self) -> Result<usize, String> {
        let path = self
            .policy_path
            .as_ref()
            .ok_or("this gate was started without a policy file")?;
        let policy = Policy::load(path).map_err(|e| e.to_string())?;
        let gate = Gate::new(policy, &self.stores).map_err(|e| e.to_string())?;
        let n = gate.policy.limits.len();
        *self.gate.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(gate);
        metrics::counter!("palisade_gate_reloads_total").increment(1);
        tracing::info!(path = %path.display(), limits = n, "policy reloaded");
        Ok(n)
    }
}

fn peer_ip(req_ext: &axum::http::Extensions) -> Option<IpAddr> {
    req_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// A header's value as text. Takes `&HeaderName` (or a `&str` where a
/// name is rare): looking a `&str` up parses it into a name on every
/// request, which showed up in the forward-auth profile.
fn hstr(h: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_PALISADE_DECISION: HeaderName = HeaderName::from_static("x-palisade-decision");
const X_PALISADE_RISK: HeaderName = HeaderName::from_static("x-palisade-risk");
const X_PALISADE_CHALLENGE: HeaderName = HeaderName::from_static("x-palisade-challenge");
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn json_error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": msg.into() }))).into_response()
}

/// Build the router for a state (limits come from the policy at build time).
pub fn router(state: Arc<AppState>) -> Router {
    let srv = state.gate().policy.file.server.clone();
    // The decision routes skip the generic `limits` middleware (its boxed
    // future and timer were ~3% of a forward-auth request under
    // `bench/gate_http.sh`): `Guard` does the same checks inline, and times
    // the decision only when a limiter may wait on Redis — a memory-only
    // decision never awaits, so its timer could never fire.
    let g = Guard::of(&state);
    let hot = Router::new()
        .route(
            "/v1/decide",
            post(move |st: State<Arc<AppState>>, req: Request| decide(st, req, g)),
        )
        .route(
            "/v1/auth",
            any(move |st: State<Arc<AppState>>, req: Request| forward_auth(st, req, g)),
        )
        .route(
            "/v1/auth/{*rest}",
            any(move |st: State<Arc<AppState>>, req: Request| forward_auth(st, req, g)),
        );
    let rest = Router::new()
        .route(CHALLENGE_PATH, get(challenge_page))
        .route("/.palisade/verify", post(verify_pow))
        .route(
            "/.palisade/challenge/captcha",
            get(captcha_page).post(verify_captcha),
        )
        .route("/metrics", get(metrics_endpoint))
        .route("/healthz", get(healthz))
        .route("/admin/reload", post(admin_reload))
        .route("/admin/key", get(admin_key))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            limits(req, next, g)
        }));
    hot.merge(rest)
        .layer(DefaultBodyLimit::max(srv.max_body_bytes))
        .with_state(state)
}

/// The header-size and timeout checks of the decision routes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard {
    pub(crate) max_header: usize,
    timeout: Duration,
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

impl Guard {
    /// The checks of the state's policy (read when the server starts, as
    /// the router's other limits are).
    pub(crate) fn of(state: &AppState) -> Guard {
        let srv = &state.gate().policy.file.server;
        Guard {
            max_header: srv.max_header_bytes,
            timeout: Duration::from_millis(srv.request_timeout_ms.max(1)),
            header_read_timeout: Duration::from_millis(srv.header_read_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(srv.idle_timeout_ms.max(1)),
        }
    }

    fn oversized(&self, req: &Request) -> Option<Response> {
        (header_bytes(req) > self.max_header).then(|| {
            json_error(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("request headers exceed {} bytes", self.max_header),
            )
        })
    }

    async fn decide(&self, gate: &Gate, s: &Subject) -> Result<Decision, Response> {
        self.decide_in_time(gate, s).await.ok_or_else(timed_out)
    }

    /// The decision, or `None` when it took longer than the policy's
    /// request timeout (counted in `palisade_gate_timeouts_total`).
    pub(crate) async fn decide_in_time(&self, gate: &Gate, s: &Subject) -> Option<Decision> {
        if !gate.may_wait() {
            return Some(gate.decide(s).await);
        }
        match tokio::time::timeout(self.timeout, gate.decide(s)).await {
            Ok(d) => Some(d),
            Err(_) => {
                metrics::counter!("palisade_gate_timeouts_total").increment(1);
                None
            }
        }
    }
}

/// What one header field counts towards `server.max_header_bytes`: name,
/// value, ": " and CRLF (the fast path counts with this too).
pub(crate) fn field_bytes(name_len: usize, value_len: usize) -> usize {
    name_len + value_len + 4
}

fn header_bytes(req: &Request) -> usize {
    req.headers()
        .iter()
        .map(|(k, v)| field_bytes(k.as_str().len(), v.len()))
        .sum::<usize>()
        + req.uri().path_and_query().map_or(0, |p| p.as_str().len())
}

/// The 503 of a decision that timed out (counted by `decide_in_time`, or
/// by the caller).
fn timed_out() -> Response {
    json_error(StatusCode::SERVICE_UNAVAILABLE, "gate timed out")
}

/// Header size limit and request timeout (the handler work, not the
/// connection; hyper bounds header parsing itself).
async fn limits(req: Request, next: Next, g: Guard) -> Response {
    if let Some(r) = g.oversized(&req) {
        return r;
    }
    match tokio::time::timeout(g.timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            metrics::counter!("palisade_gate_timeouts_total").increment(1);
            timed_out()
        }
    }
}

async fn decide(State(st): State<Arc<AppState>>, req: Request, g: Guard) -> Response {
    if let Some(r) = g.oversized(&req) {
        return r;
    }
    // The Bytes extractor honours DefaultBodyLimit (413 when over).
    let body = match Bytes::from_request(req, &()).await {
        Ok(b) => b,
        Err(rejection) => return rejection.into_response(),
    };
    let inp: DecideInput = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    let gate = st.gate();
    let subject = match gate.subject_from_input(&inp) {
        Ok(s) => s,
        Err(e) => return json_error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    match g.decide(&gate, &subject).await {
        Ok(d) => Json(d).into_response(),
        Err(r) => r,
    }
}

/// The request headers as the forward-auth logic reads them: hyper's
/// `HeaderMap` on the general path, the parsed header slice on the
/// HTTP/1.1 fast path (`crate::http1_auth`). One implementation of the
/// forward-auth logic serves both, so they cannot drift apart.
pub(crate) trait RequestHeaders {
    /// The first value of `name` as text (`None` if absent or not visible
    /// ASCII, as `HeaderValue::to_str`).
    fn text(&self, name: &HeaderName) -> Option<&str>;
    /// Whether the header is present at all (whatever its value).
    fn has(&self, name: &HeaderName) -> bool;
    /// Number of header fields (a repeated name counts each time).
    fn count(&self) -> usize;
}

impl RequestHeaders for HeaderMap {
    fn text(&self, name: &HeaderName) -> Option<&str> {
        hstr(self, name)
    }
    fn has(&self, name: &HeaderName) -> bool {
        self.contains_key(name)
    }
    fn count(&self) -> usize {
        self.len()
    }
}

/// The subject of a forward-auth request: the original method and URI come
/// from the proxy's headers (Traefik: X-Forwarded-Method/-Uri; nginx: the
/// ones the example config sets, X-Original-Method/-URI; Envoy: the original
/// path appended to the auth path). `path_q` is the request target's path
/// and query.
pub(crate) fn forward_subject(
    gate: &Gate,
    method: &str,
    path_q: &str,
    headers: &impl RequestHeaders,
    peer: Option<IpAddr>,
) -> Subject {
    let id = &gate.policy.headers;
    let m = headers
        .text(&X_FORWARDED_METHOD)
        .or_else(|| headers.text(&X_ORIGINAL_METHOD))
        .unwrap_or(method);
    let envoy = path_q
        .strip_prefix("/v1/auth")
        .filter(|r| r.starts_with('/'))
        .unwrap_or("/");
    let url = headers
        .text(&X_FORWARDED_URI)
        .or_else(|| headers.text(&X_ORIGINAL_URI))
        .unwrap_or(envoy);
    let (path, query) = split_url(url).unwrap_or_else(|| ("/".into(), String::new()));
    let ip = gate.client_ip(peer, headers.text(&id.client_ip));
    let user = id
        .user
        .as_ref()
        .and_then(|h| headers.text(h))
        .map(str::to_string);
    let token = id
        .token
        .as_ref()
        .and_then(|h| headers.text(h))
        .map(|t| strip_bearer(t).to_string());
    let host = headers
        .text(&X_FORWARDED_HOST)
        .or_else(|| headers.text(&header::HOST))
        .map(str::to_string);
    Subject {
        ip,
        host,
        user: user.filter(|s| !s.is_empty()),
        token: token.filter(|s| !s.is_empty()),
        method: m.to_ascii_uppercase(),
        path,
        query,
        user_agent: headers.text(&header::USER_AGENT).map(str::to_string),
        referrer: headers.text(&header::REFERER).map(str::to_string),
        accept_language: headers.has(&header::ACCEPT_LANGUAGE),
        header_count: headers.count(),
        pass: headers
            .text(&header::COOKIE)
            .and_then(|c| cookie_value(c, &gate.policy.file.challenge.cookie_name))
            .map(str::to_string),
    }
}

/// A forward-auth response header value.
pub(crate) enum HeaderText<'a> {
    Static(&'static str),
    Number(u64),
    Text(&'a str),
}

/// The decision's response headers, in order, handed to `put` (the general
/// path builds a `HeaderMap`, the fast path writes bytes).
pub(crate) fn for_each_decision_header(d: &Decision, mut put: impl FnMut(&HeaderName, HeaderText)) {
    put(
        &X_PALISADE_DECISION,
        HeaderText::Static(d.decision.as_str()),
    );
    if let Some(r) = d.risk {
        let mut buf = [0u8; 16];
        match risk_text(r, &mut buf) {
            Some(t) => put(&X_PALISADE_RISK, HeaderText::Text(t)),
            None => put(&X_PALISADE_RISK, HeaderText::Text(&format!("{r:.3}"))),
        }
    }
    // The most constrained limit is the one a client should pace itself by.
    if let Some(l) = d.limits.iter().min_by_key(|l| l.remaining) {
        put(&X_RATELIMIT_LIMIT, HeaderText::Number(l.limit.into()));
        put(
            &X_RATELIMIT_REMAINING,
            HeaderText::Number(l.remaining.into()),
        );
        put(
            &X_RATELIMIT_RESET,
            HeaderText::Number(l.reset_after_ms.div_ceil(1000)),
        );
    }
    if let Some(s) = d.retry_after_s {
        put(&header::RETRY_AFTER, HeaderText::Number(s));
    }
    if let Some(c) = &d.challenge {
        put(&X_PALISADE_CHALLENGE, HeaderText::Text(&c.url));
    }
}

/// `format!("{r:.3}")` for a risk in [0, 1000), without the formatting
/// machinery (it was ~7% of a forward-auth request's instructions): `r` as
/// f64 times 1000 is exact (24 + 10 significant bits), so rounding it half
/// to even rounds exactly as `format!` does. `None` outside that range.
fn risk_text(r: f32, buf: &mut [u8; 16]) -> Option<&str> {
    if r.is_sign_negative() || r.is_nan() || r >= 1000.0 {
        return None;
    }
    let milli = (f64::from(r) * 1000.0).round_ties_even() as u32;
    let mut ip = itoa::Buffer::new();
    let int = ip.format(milli / 1000).as_bytes();
    let frac = milli % 1000;
    let n = int.len();
    buf[..n].copy_from_slice(int);
    buf[n] = b'.';
    buf[n + 1] = b'0' + (frac / 100) as u8;
    buf[n + 2] = b'0' + (frac / 10 % 10) as u8;
    buf[n + 3] = b'0' + (frac % 10) as u8;
    std::str::from_utf8(&buf[..n + 4]).ok()
}

fn decision_headers(d: &Decision, h: &mut HeaderMap) {
    // Numbers go in through `HeaderValue::from(u64)` (no format string, no
    // validation pass): these headers are on every forward-auth response.
    for_each_decision_header(d, |name, v| {
        let v = match v {
            HeaderText::Static(s) => HeaderValue::from_static(s),
            HeaderText::Number(n) => HeaderValue::from(n),
            HeaderText::Text(t) => match HeaderValue::from_str(t) {
                Ok(v) => v,
                Err(_) => return,
            },
        };
        h.insert(name.clone(), v);
    });
}

/// The forward-auth status for a decision (the policy's statuses).
pub(crate) fn forward_status(gate: &Gate, d: &Decision) -> StatusCode {
    let fa = &gate.policy.file.forward_auth;
    match d.decision {
        Verdict::Allow => StatusCode::OK,
        Verdict::RateLimited => {
            StatusCode::from_u16(fa.rate_limited_status).unwrap_or(StatusCode::TOO_MANY_REQUESTS)
        }
        Verdict::Deny => StatusCode::from_u16(fa.deny_status).unwrap_or(StatusCode::FORBIDDEN),
        Verdict::Challenge => {
            StatusCode::from_u16(fa.challenge_status).unwrap_or(StatusCode::UNAUTHORIZED)
        }
    }
}

/// The HTML body of a forward-auth response: the challenge page itself, as
/// Traefik and Envoy hand a non-2xx auth response to the client as is.
pub(crate) fn forward_body(s: &Subject, d: &Decision) -> Option<String> {
    match (&d.decision, &d.challenge) {
        (Verdict::Challenge, Some(c)) if !c.token.is_empty() => {
            let ret = if s.query.is_empty() {
                s.path.clone()
            } else {
                format!("{}?{}", s.path, s.query)
            };
            Some(pow_page(&c.token, c.difficulty, &ret))
        }
        _ => None,
    }
}

async fn forward_auth(State(st): State<Arc<AppState>>, req: Request, g: Guard) -> Response {
    if let Some(r) = g.oversized(&req) {
        return r;
    }
    let gate = st.gate();
    let path_q = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let s = forward_subject(
        &gate,
        req.method().as_str(),
        path_q,
        req.headers(),
        peer_ip(req.extensions()),
    );
    let d = match g.decide(&gate, &s).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let status = forward_status(&gate, &d);
    let mut resp = match forward_body(&s, &d) {
        Some(page) => (status, Html(page)).into_response(),
        None => status.into_response(),
    };
    decision_headers(&d, resp.headers_mut());
    resp
}

/// Only local paths may be redirect targets (no open redirect).
fn safe_return(r: Option<&str>) -> String {
    match r {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.len() < 2048 =>
        {
            p.to_string()
        }
        _ => "/".into(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn pow_page(token: &str, difficulty: u8, ret: &str) -> String {
    let tok = html_escape(token);
    let ret_e = html_escape(ret);
    let tok_js = serde_json::to_string(token).unwrap_or_default();
    let ret_js = serde_json::to_string(ret).unwrap_or_default();
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Checking your browser</title></head>
<body><h1>One moment…</h1><p id="s">Your browser is solving a small puzzle (difficulty {difficulty}).</p>
<noscript><p>JavaScript is off. <a href="/.palisade/challenge/captcha?return={ret_e}">Solve an image challenge instead</a>.</p></noscript>
<div data-token="{tok}"></div>
<script>
(async () => {{
  const token = {tok_js}, bits = {difficulty}, ret = {ret_js}, enc = new TextEncoder();
  const lz = h => {{ let n = 0; for (const b of h) {{ if (b === 0) {{ n += 8; continue; }} return n + Math.clz32(b) - 24; }} return n; }};
  for (let i = 0; ; i++) {{
    const h = new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(token + ':' + i)));
    if (lz(h) >= bits) {{
      const r = await fetch('/.palisade/verify', {{method: 'POST', headers: {{'content-type': 'application/json'}}, body: JSON.stringify({{token, nonce: String(i)}})}});
      if (r.ok) {{ location.replace(ret); }} else {{ document.getElementById('s').textContent = 'Verification failed; reload the page.'; }}
      return;
    }}
  }}
}})();
</script></body></html>"#
    )
}

#[derive(Deserialize)]
struct PageQuery {
    t: Option<String>,
    #[serde(rename = "return")]
    ret: Option<String>,
}

fn client_of(
    gate: &Gate,
    req_headers: &HeaderMap,
    ext: &axum::http::Extensions,
) -> (Option<IpAddr>, Option<String>) {
    let ip = gate.client_ip(
        peer_ip(ext),
        hstr(req_headers, &gate.policy.headers.client_ip),
    );
    (
        ip,
        hstr(req_headers, header::USER_AGENT).map(str::to_string),
    )
}

async fn challenge_page(
    State(st): State<Arc<AppState>>,
    Query(q): Query<PageQuery>,
    req: Request,
) -> Response {
    let gate = st.gate();
    let (ip, ua) = client_of(&gate, req.headers(), req.extensions());
    // A token from a decision carries its risk-based difficulty under the
    // signature; without one (or with an invalid one) the page issues the
    // hardest puzzle, so editing the URL never makes the puzzle easier.
    let bind = gate.bind(ip, ua.as_deref());
    let opened =
        q.t.as_deref()
            .and_then(|t| gate.opened_pow(t, &bind).map(|d| (t.to_string(), d)));
    let (token, diff) = opened.unwrap_or_else(|| {
        let d = gate.policy.file.challenge.max_difficulty;
        (gate.issue_pow(ip, ua.as_deref(), d), d)
    });
    let mut resp = Html(pow_page(&token, diff, &safe_return(q.ret.as_deref()))).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Deserialize)]
struct PowSolution {
    token: String,
    nonce: String,
}

fn pass_cookie(gate: &Gate, value: &str, ttl: u64) -> HeaderValue {
    let c = &gate.policy.file.challenge;
    let secure = if c.secure_cookie { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; Max-Age={ttl}; HttpOnly; SameSite=Lax{secure}",
        c.cookie_name
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn verify_pow(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let gate = st.gate();
    let (ip, ua) = client_of(&gate, req.headers(), req.extensions());
    let limit = gate.policy.file.server.max_body_bytes;
    let body = match axum::body::to_bytes(req.into_body(), limit).await {
        Ok(b) => b,
        Err(_) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body exceeds {limit} bytes"),
            )
        }
    };
    let sol: PowSolution = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    match gate
        .verify_pow(&sol.token, &sol.nonce, ip, ua.as_deref())
        .await
    {
        Ok((pass, ttl)) => {
            let mut r = Json(serde_json::json!({"ok": true, "pass_ttl_s": ttl})).into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, pass_cookie(&gate, &pass, ttl));
            r
        }
        Err(e) => json_error(StatusCode::FORBIDDEN, e.to_string()),
    }
}

async fn captcha_page(
    State(st): State<Arc<AppState>>,
    Query(q): Query<PageQuery>,
    req: Request,
) -> Response {
    let gate = st.gate();
    let (ip, ua) = client_of(&gate, req.headers(), req.extensions());
    let Ok(_permit) = st.captcha_permits.try_acquire() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "busy, retry",
        )
            .into_response();
    };
    let g = gate.clone();
    let made = tokio::task::spawn_blocking(move || g.issue_captcha(ip, ua.as_deref()))
        .await
        .ok()
        .flatten();
    let Some((token, png)) = made else {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not generate a CAPTCHA",
        );
    };
    let img = base64::engine::general_purpose::STANDARD.encode(png);
    let ret = html_escape(&safe_return(q.ret.as_deref()));
    let page = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Are you human?</title></head><body>
<h1>Type the characters you see</h1><img alt="CAPTCHA" src="data:image/png;base64,{img}">
<form method="post" action="/.palisade/challenge/captcha"><input type="hidden" name="token" value="{}">
<input type="hidden" name="return" value="{ret}"><input name="answer" autocomplete="off" autofocus>
<button type="submit">Continue</button></form></body></html>"#,
        html_escape(&token)
    );
    let mut resp = Html(page).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Deserialize)]
struct CaptchaForm {
    token: String,
    answer: String,
    #[serde(rename = "return")]
    ret: Option<String>,
}

async fn verify_captcha(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let gate = st.gate();
    let (ip, ua) = client_of(&gate, req.headers(), req.extensions());
    let limit = gate.policy.file.server.max_body_bytes;
    let body = match axum::body::to_bytes(req.into_body(), limit).await {
        Ok(b) => b,
        Err(_) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body exceeds {limit} bytes"),
            )
        }
    };
    let form: CaptchaForm = match serde_urlencoded_from(&body) {
        Some(f) => f,
        None => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "expected form fields `token`, `answer`",
            )
        }
    };
    match gate.verify_captcha(&form.token, &form.answer, ip, ua.as_deref()).await {
        Ok((pass, ttl)) => {
            let to = safe_return(form.ret.as_deref());
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
            r.headers_mut().insert(header::SET_COOKIE, pass_cookie(&gate, &pass, ttl));
            r
        }
        Err(e) => (
            StatusCode::FORBIDDEN,
            Html(format!(
                "<!doctype html><p>{}. <a href=\"/.palisade/challenge/captcha?return={}\">Try another image</a>.</p>",
                html_escape(&e.to_string()),
                html_escape(&safe_return(form.ret.as_deref()))
            )),
        )
            .into_response(),
    }
}

/// Parse an urlencoded body with axum's own form decoding (via `Query` on a
/// synthetic URI would be a hack; `axum::Form` needs the request, so decode
/// through `axum::extract::Query::try_from_uri` semantics here).
fn serde_urlencoded_from<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    let s = std::str::from_utf8(body).ok()?;
    let uri: Uri = format!("/?{s}").parse().ok()?;
    Query::<T>::try_from_uri(&uri).ok().map(|q| q.0)
}

async fn metrics_endpoint(State(st): State<Arc<AppState>>) -> Response {
    st.gate().export_gauges();
    match &st.prom {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response(),
    }
}

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    let g = st.gate();
    Json(
        serde_json::json!({"ok": true, "limits": g.policy.limits.len(), "scorer": g.scorer_name()}),
    )
    .into_response()
}

/// `Some(rejection)` unless the request carries the admin bearer token.
fn admin_reject(gate: &Gate, h: &HeaderMap) -> Option<Response> {
    let Some(want) = gate.policy.admin_token.as_deref() else {
        return Some(json_error(
            StatusCode::NOT_FOUND,
            "admin endpoints are disabled (no server.admin_token)",
        ));
    };
    let got = hstr(h, header::AUTHORIZATION)
        .map(strip_bearer)
        .unwrap_or("");
    // Constant-time comparison via SHA-256 of both.
    use sha2::{Digest, Sha256};
    let (a, b) = (
        Sha256::digest(want.as_bytes()),
        Sha256::digest(got.as_bytes()),
    );
    if a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
    {
        None
    } else {
        Some(json_error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))
    }
}

async fn admin_reload(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(r) = admin_reject(&st.gate(), &headers) {
        return r;
    }
    match st.reload() {
        Ok(n) => Json(serde_json::json!({"ok": true, "limits": n})).into_response(),
        Err(e) => json_error(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct KeyQuery {
    limiter: String,
    key: String,
}

async fn admin_key(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<KeyQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let gate = st.gate();
    if let Some(r) = admin_reject(&gate, &headers) {
        return r;
    }
    let Ok(Query(q)) = q else {
        return json_error(StatusCode::BAD_REQUEST, "need ?limiter=NAME&key=KEY");
    };
    match gate.inspect(&q.limiter, &q.key).await {
        Ok(rep) => Json(rep).into_response(),
        Err(e @ crate::engine::GateError::BadInput(..)) => {
            json_error(StatusCode::BAD_REQUEST, e.to_string())
        }
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Serve until `shutdown` resolves; SIGHUP reloads the policy (Unix).
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let housekeeping = spawn_housekeeping(&state);
    let r = serve_http1(listener, state, app, shutdown).await;
    housekeeping.iter().for_each(|h| h.abort());
    r
}

/// Accept connections and serve them until `shutdown` resolves; then stop
/// accepting and wait for the connections to finish the requests they have
/// (graceful shutdown).
///
/// Each connection starts on the forward-auth fast path
/// ([`crate::http1_auth`]) and moves to hyper's HTTP/1.1 connection and the
/// axum router at its first request of another kind. Why not
/// `axum::serve`: besides the fast path, it runs every connection through
/// hyper-util's protocol-detecting `auto` builder with upgrades, which the
/// gate does not need (its clients — nginx `auth_request`, Traefik, Envoy's
/// HTTP ext_authz, `/v1/decide` callers — speak HTTP/1.1), and it does not
/// set `TCP_NODELAY`.
async fn serve_http1(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use crate::http1_auth::{Exit, Rewind};
    use hyper_util::rt::TokioIo;
    use tower::Service;
    let guard = Guard::of(&state);
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper's timer bounds the time to read a request head, idle keep-alive
    // waits included (slow-header attacks); the fast path has its own.
    http.keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(guard.header_read_timeout);
    // Every connection task holds a clone; when all are dropped after the
    // stop, every connection has finished.
    let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (mut stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly rather than spin
                    // or die (what axum::serve does too).
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Responses are one small write each; Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        let (app, state, http) = (app.clone(), state.clone(), http.clone());
        let (alive, mut stop) = (alive_tx.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let pre =
                match crate::http1_auth::serve(&mut stream, peer, &state, guard, &mut stop).await {
                    Ok(Exit::HandOff(pre)) => pre,
                    Ok(Exit::Closed) => return,
                    Err(e) => {
                        tracing::debug!(error = %e, "connection ended with an error");
                        return;
                    }
                };
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut().insert(ConnectInfo(peer));
                    // Router is always ready and its error type is Infallible.
                    app.clone().call(req)
                });
            let conn = http.serve_connection(TokioIo::new(Rewind::new(pre, stream)), svc);
            tokio::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(alive);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
    Ok(())
}

/// The sweeper of idle limiter keys, the Prometheus recorder's upkeep and,
/// on Unix, policy reload on SIGHUP.
fn spawn_housekeeping(state: &Arc<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    let every = |period: u64, work: Box<dyn Fn() + Send>| {
        tokio::spawn(async move {
            let mut t = tokio::time::interval(Duration::from_secs(period));
            loop {
                t.tick().await;
                work();
            }
        })
    };
    let st = state.clone();
    let sweeper = every(10, Box::new(move || st.gate().sweep()));
    // Without upkeep an installed-only recorder keeps every histogram sample
    // until /metrics is scraped: memory grew by ~20 bytes per request under
    // `bench/gate_http.sh` when nobody scraped.
    let st = state.clone();
    let upkeep = every(
        5,
        Box::new(move || {
            if let Some(h) = &st.prom {
                h.run_upkeep();
            }
        }),
    );
    #[allow(unused_mut)]
    let mut tasks = vec![sweeper, upkeep];
    #[cfg(unix)]
    {
        let st = state.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while s.recv().await.is_some() {
                if let Err(e) = st.reload() {
                    tracing::error!(error = %e, "reload on SIGHUP failed; keeping the old policy");
                }
            }
        }));
    }
    tasks
}

/// One server worker: a single-threaded runtime with its own listening
/// socket on the shared address (SO_REUSEPORT: the kernel spreads the
/// connections), as nginx's worker processes do. Why not one multi-threaded
/// runtime: measured with `bench/gate_http.sh`, its cross-thread wake-ups
/// (futex, task switches) cost more than the gate's whole decision.
/// `bound` receives the bound address (or the bind error) before serving.
fn run_worker(
    state: Arc<AppState>,
    addr: SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
    bound: std::sync::mpsc::Sender<std::io::Result<SocketAddr>>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = match bind_shared(addr) {
            Ok(l) => l,
            Err(e) => {
                let _ = bound.send(Err(std::io::Error::new(e.kind(), e.to_string())));
                return Err(e);
            }
        };
        let _ = bound.send(listener.local_addr());
        let app = router(state.clone());
        serve_http1(listener, state, app, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
    })
}

fn bind_shared(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Ctrl-C or SIGTERM: stop accepting, finish requests in flight.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Load the policy, build the gate and serve until Ctrl-C/SIGTERM (what
/// `palisade gate serve` runs). `listen` overrides `server.listen`.
pub fn run_blocking(
    config: &std::path::Path,
    listen: Option<&str>,
    threads: Option<usize>,
) -> Result<(), String> {
    let policy = Policy::load(config).map_err(|e| e.to_string())?;
    let listen = listen
        .map(str::to_string)
        .unwrap_or_else(|| policy.file.server.listen.clone());
    if policy.secret.is_none() {
        tracing::warn!("no challenge secret: using a random per-process key (passes do not survive restarts or span a fleet)");
    }
    let addr: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&listen)
        .map_err(|e| format!("listening on `{listen}`: {e}"))?
        .next()
        .ok_or_else(|| format!("listening on `{listen}`: no address"))?;
    // Without SO_REUSEPORT (not Unix) the workers could not share the port.
    let workers = if cfg!(unix) {
        threads
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(1)
            .max(1)
    } else {
        1
    };
    // This runtime runs signals, reload and the sweeper; the workers serve.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    rt.block_on(async move {
        let stores = Arc::new(Stores::default());
        let gate = Gate::new(policy, &stores).map_err(|e| format!("building the gate: {e}"))?;
        let state = AppState::new(gate, stores, Some(config.to_path_buf()));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut addr = addr;
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers {
            let (tx, rx) = std::sync::mpsc::channel();
            let (st, stop) = (state.clone(), stop_rx.clone());
            let h = std::thread::Builder::new()
                .name(format!("palisade-gate-{i}"))
                .spawn(move || run_worker(st, addr, stop, tx))
                .map_err(|e| format!("starting worker {i}: {e}"))?;
            // The first worker's address (a port 0 becomes a real one) is
            // the one every other worker joins.
            match rx.recv() {
                Ok(Ok(a)) => addr = a,
                Ok(Err(e)) => {
                    let _ = stop_tx.send(true);
                    return Err(format!("listening on `{listen}`: {e}"));
                }
                Err(_) => return Err(format!("worker {i} stopped before listening")),
            }
            handles.push(h);
        }
        eprintln!("palisade gate: listening on http://{addr} ({workers} workers)");
        let housekeeping = spawn_housekeeping(&state);
        shutdown_signal().await;
        let _ = stop_tx.send(true);
        let joined = tokio::task::spawn_blocking(move || {
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| "a worker panicked".to_string()))
                .collect::<Result<Vec<_>, String>>()
        })
        .await
        .map_err(|e| e.to_string())??;
        housekeeping.iter().for_each(|h| h.abort());
        for r in joined {
            r.map_err(|e| format!("serving: {e}"))?;
        }
        eprintln!("palisade gate: stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::risk_text;

    #[test]
    fn risk_text_formats_as_format_does() {
        let check = |r: f32| {
            let mut buf = [0u8; 16];
            assert_eq!(
                risk_text(r, &mut buf),
                Some(format!("{r:.3}").as_str()),
                "{r:e}"
            );
        };
        // every tie k/16 (exactly half a thousandth when k is odd), the edges
        for k in 0..16 * 1000 {
            check(k as f32 / 16.0);
        }
        for r in [
            0.0,
            0.0005,
            0.0015,
            0.9995,
            0.99949,
            0.999_999_9,
            1.0,
            999.9995,
            999.999,
        ] {
            check(r);
        }
        // and a sweep of ordinary values in [0, 1]
        let mut x: u32 = 12345;
        for _ in 0..200_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            check((x >> 8) as f32 / (1u32 << 24) as f32);
        }
        let mut buf = [0u8; 16];
        for r in [-0.1, f32::NAN, f32::INFINITY, 1000.0, -0.0] {
            assert_eq!(risk_text(r, &mut buf), None, "{r}");
        }
    }
}
