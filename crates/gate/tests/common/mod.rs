#![allow(dead_code)]

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use palisade_gate::server::{router, AppState};
use palisade_gate::{Gate, Policy, Stores};
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

pub const SECRET: &str = "test-secret-0123456789abcdef";
pub const ADMIN: &str = "admin-token-0123456789";

pub fn base_policy(extra: &str) -> String {
    format!(
        r#"
[server]
max_body_bytes = 2048
max_header_bytes = 4096
admin_token = "{ADMIN}"

[identity]
trusted_proxies = ["127.0.0.1/32"]
client_ip_header = "x-forwarded-for"
user_header = "x-user"
token_header = "authorization"

[lists]
deny_cidrs = ["203.0.113.0/24"]
deny_user_agents = ["evilbot"]
allow_cidrs = ["198.51.100.7"]

[challenge]
secret = "{SECRET}"
min_difficulty = 4
max_difficulty = 8
secure_cookie = false

[risk]
challenge_at = 0.6
deny_at = 0.999

{extra}
"#
    )
}

pub fn limit_ip(rate: &str, burst: u32) -> String {
    format!("[[limit]]\nname = \"ip\"\nkey = \"ip\"\nrate = \"{rate}\"\nburst = {burst}\n")
}

pub fn app_from(text: &str, path: Option<std::path::PathBuf>) -> (Router, Arc<AppState>) {
    let p = Policy::parse(text, "test").expect("policy");
    let stores = Arc::new(Stores::default());
    let gate = Gate::new(p, &stores).expect("gate");
    let st = AppState::new(gate, stores, path);
    (router(st.clone()), st)
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, k: &str) -> Option<String> {
        self.headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

pub async fn send(app: &Router, mut req: Request<Body>, peer: &str) -> Resp {
    let addr: SocketAddr = format!("{peer}:40000").parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = axum::body::to_bytes(r.into_body(), 1 << 22)
        .await
        .unwrap()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

pub fn post_json(uri: &str, v: &serde_json::Value) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

pub fn browser_headers() -> serde_json::Value {
    serde_json::json!({
        "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        "accept-language": "en",
        "referer": "https://example.com/",
        "accept": "text/html",
        "accept-encoding": "gzip",
        "cookie": "a=b"
    })
}
