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
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
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
    H.get_or_init(|| match PrometheusBuilder::new().install_recorder() {
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

fn hstr<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn json_error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": msg.into() }))).into_response()
}

/// Build the router for a state (limits come from the policy at build time).
pub fn router(state: Arc<AppState>) -> Router {
    let srv = state.gate().policy.file.server.clone();
    let timeout = Duration::from_millis(srv.request_timeout_ms.max(1));
    let max_header = srv.max_header_bytes;
    Router::new()
        .route("/v1/decide", post(decide))
        .route("/v1/auth", any(forward_auth))
        .route("/v1/auth/{*rest}", any(forward_auth))
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
        .layer(DefaultBodyLimit::max(srv.max_body_bytes))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            limits(req, next, max_header, timeout)
        }))
        .with_state(state)
}

/// Header size limit and request timeout (the handler work, not the
/// connection; hyper bounds header parsing itself).
async fn limits(req: Request, next: Next, max_header: usize, timeout: Duration) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if size > max_header {
        return json_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("request headers exceed {max_header} bytes"),
        );
    }
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            metrics::counter!("palisade_gate_timeouts_total").increment(1);
            json_error(StatusCode::SERVICE_UNAVAILABLE, "gate timed out")
        }
    }
}

async fn decide(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let inp: DecideInput = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    let gate = st.gate();
    let subject = match gate.subject_from_input(&inp) {
        Ok(s) => s,
        Err(e) => return json_error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    Json(gate.decide(&subject).await).into_response()
}

/// The subject of a forward-auth request: the original method and URI come
/// from the proxy's headers (Traefik: X-Forwarded-Method/-Uri; nginx: the
/// ones the example config sets, X-Original-Method/-URI; Envoy: the original
/// path appended to the auth path).
fn forward_subject(
    gate: &Gate,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Subject {
    let id = &gate.policy.file.identity;
    let m = hstr(headers, "x-forwarded-method")
        .or_else(|| hstr(headers, "x-original-method"))
        .unwrap_or(method.as_str());
    let path_q = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let envoy = path_q
        .strip_prefix("/v1/auth")
        .filter(|r| r.starts_with('/'))
        .unwrap_or("/");
    let url = hstr(headers, "x-forwarded-uri")
        .or_else(|| hstr(headers, "x-original-uri"))
        .unwrap_or(envoy);
    let (path, query) = split_url(url).unwrap_or_else(|| ("/".into(), String::new()));
    let ip = gate.client_ip(peer, hstr(headers, &id.client_ip_header));
    let user = id
        .user_header
        .as_deref()
        .and_then(|h| hstr(headers, h))
        .map(str::to_string);
    let token = id
        .token_header
        .as_deref()
        .and_then(|h| hstr(headers, h))
        .map(|t| strip_bearer(t).to_string());
    let host = hstr(headers, "x-forwarded-host")
        .or_else(|| hstr(headers, "host"))
        .map(str::to_string);
    Subject {
        ip,
        host,
        user: user.filter(|s| !s.is_empty()),
        token: token.filter(|s| !s.is_empty()),
        method: m.to_ascii_uppercase(),
        path,
        query,
        user_agent: hstr(headers, "user-agent").map(str::to_string),
        referrer: hstr(headers, "referer").map(str::to_string),
        accept_language: headers.contains_key("accept-language"),
        header_count: headers.len(),
        pass: hstr(headers, "cookie")
            .and_then(|c| cookie_value(c, &gate.policy.file.challenge.cookie_name))
            .map(str::to_string),
    }
}

fn decision_headers(d: &Decision, h: &mut HeaderMap) {
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(HeaderName::from_static(k), v);
        }
    };
    put("x-palisade-decision", d.decision.as_str().into());
    if let Some(r) = d.risk {
        put("x-palisade-risk", format!("{r:.3}"));
    }
    // The most constrained limit is the one a client should pace itself by.
    if let Some(l) = d.limits.iter().min_by_key(|l| l.remaining) {
        put("x-ratelimit-limit", l.limit.to_string());
        put("x-ratelimit-remaining", l.remaining.to_string());
        put(
            "x-ratelimit-reset",
            l.reset_after_ms.div_ceil(1000).to_string(),
        );
    }
    if let Some(s) = d.retry_after_s {
        put("retry-after", s.to_string());
    }
    if let Some(c) = &d.challenge {
        put("x-palisade-challenge", c.url.clone());
    }
}

async fn forward_auth(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let gate = st.gate();
    let s = forward_subject(
        &gate,
        req.method(),
        req.uri(),
        req.headers(),
        peer_ip(req.extensions()),
    );
    let d = gate.decide(&s).await;
    let fa = &gate.policy.file.forward_auth;
    let status = match d.decision {
        Verdict::Allow => StatusCode::OK,
        Verdict::RateLimited => {
            StatusCode::from_u16(fa.rate_limited_status).unwrap_or(StatusCode::TOO_MANY_REQUESTS)
        }
        Verdict::Deny => StatusCode::from_u16(fa.deny_status).unwrap_or(StatusCode::FORBIDDEN),
        Verdict::Challenge => {
            StatusCode::from_u16(fa.challenge_status).unwrap_or(StatusCode::UNAUTHORIZED)
        }
    };
    let mut resp = match (&d.decision, &d.challenge) {
        // Traefik and Envoy hand a non-2xx auth response to the client as is,
        // so the challenge page itself is the body.
        (Verdict::Challenge, Some(c)) if !c.token.is_empty() => {
            let ret = format!(
                "{}{}",
                s.path,
                if s.query.is_empty() {
                    String::new()
                } else {
                    format!("?{}", s.query)
                }
            );
            (status, Html(pow_page(&c.token, c.difficulty, &ret))).into_response()
        }
        _ => status.into_response(),
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
        hstr(req_headers, &gate.policy.file.identity.client_ip_header),
    );
    (ip, hstr(req_headers, "user-agent").map(str::to_string))
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
    let got = hstr(h, "authorization").map(strip_bearer).unwrap_or("");
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
    let sweeper = {
        let st = state.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(Duration::from_secs(10));
            loop {
                t.tick().await;
                st.gate().sweep();
            }
        })
    };
    #[cfg(unix)]
    let hup = {
        let st = state.clone();
        tokio::spawn(async move {
            let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while s.recv().await.is_some() {
                if let Err(e) = st.reload() {
                    tracing::error!(error = %e, "reload on SIGHUP failed; keeping the old policy");
                }
            }
        })
    };
    let r = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    sweeper.abort();
    #[cfg(unix)]
    hup.abort();
    r
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
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(t) = threads {
        rt.worker_threads(t.max(1));
    }
    let rt = rt
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    rt.block_on(async move {
        let stores = Arc::new(Stores::default());
        let gate = Gate::new(policy, &stores).map_err(|e| format!("building the gate: {e}"))?;
        let state = AppState::new(gate, stores, Some(config.to_path_buf()));
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("listening on `{listen}`: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        eprintln!("palisade gate: listening on http://{addr}");
        serve(state, listener, shutdown_signal())
            .await
            .map_err(|e| format!("serving: {e}"))?;
        eprintln!("palisade gate: stopped");
        Ok(())
    })
}
