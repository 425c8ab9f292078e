//! HTTP tests of every endpoint, through the router (tower `oneshot`).

mod common;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use palisade_gate::challenge::{solve_pow, Signer};
use palisade_gate::policy::ChallengeKind;
use serde_json::json;

fn decide_req(ip: &str, url: &str, headers: serde_json::Value) -> Request<Body> {
    post_json(
        "/v1/decide",
        &json!({"ip": ip, "method": "GET", "url": url, "headers": headers}),
    )
}

#[tokio::test]
async fn decide_rate_limits_per_ip_and_reports() {
    let (app, _) = app_from(&base_policy(&limit_ip("1/m", 3)), None);
    let mut remaining = vec![];
    for _ in 0..3 {
        let r = send(
            &app,
            decide_req("192.0.2.10", "/a", browser_headers()),
            "127.0.0.1",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let j = r.json();
        assert_eq!(j["decision"], "allow", "{j}");
        remaining.push(j["limits"][0]["remaining"].as_u64().unwrap());
    }
    assert_eq!(remaining, vec![2, 1, 0]);
    let j = send(
        &app,
        decide_req("192.0.2.10", "/a", browser_headers()),
        "127.0.0.1",
    )
    .await
    .json();
    assert_eq!(j["decision"], "rate_limited");
    let retry = j["retry_after_s"].as_u64().unwrap();
    assert!((55..=60).contains(&retry), "1 per minute: retry {retry}");
    assert!(j["reasons"][0].as_str().unwrap().contains("`ip`"));
    // Another address is not affected; an IPv6 neighbour in the same /64 is one key.
    assert_eq!(
        send(
            &app,
            decide_req("192.0.2.11", "/a", browser_headers()),
            "127.0.0.1"
        )
        .await
        .json()["decision"],
        "allow"
    );
    for _ in 0..3 {
        send(
            &app,
            decide_req("2001:db8:0:1::1", "/a", browser_headers()),
            "127.0.0.1",
        )
        .await;
    }
    let j = send(
        &app,
        decide_req("2001:db8:0:1:ffff::9", "/a", browser_headers()),
        "127.0.0.1",
    )
    .await
    .json();
    assert_eq!(
        j["decision"], "rate_limited",
        "same /64 must share a limit: {j}"
    );
}

#[tokio::test]
async fn decide_user_token_limits_and_overrides() {
    let extra = r#"
[[limit]]
name = "tok"
key = "token"
rate = "1/m"
burst = 1
[limit.overrides]
"paying" = { rate = "10/m", burst = 5 }

[[limit]]
name = "user"
key = "user"
rate = "1/m"
burst = 2
routes = ["/api/"]
methods = ["POST"]
"#;
    let (app, _) = app_from(&base_policy(extra), None);
    let mut h = browser_headers();
    h["authorization"] = json!("Bearer free");
    let d = |h: serde_json::Value| {
        post_json(
            "/v1/decide",
            &json!({"ip": "192.0.2.1", "url": "/x", "headers": h}),
        )
    };
    assert_eq!(
        send(&app, d(h.clone()), "127.0.0.1").await.json()["decision"],
        "allow"
    );
    assert_eq!(
        send(&app, d(h.clone()), "127.0.0.1").await.json()["decision"],
        "rate_limited"
    );
    // The paying token has its own larger quota.
    h["authorization"] = json!("Bearer paying");
    for i in 0..5 {
        let j = send(&app, d(h.clone()), "127.0.0.1").await.json();
        assert_eq!(j["decision"], "allow", "paying request {i}: {j}");
        assert_eq!(j["limits"][0]["limit"], 5);
    }
    assert_eq!(
        send(&app, d(h.clone()), "127.0.0.1").await.json()["decision"],
        "rate_limited"
    );
    // The user limit only applies to POST /api/…
    let u = |m: &str, url: &str| {
        post_json(
            "/v1/decide",
            &json!({"user": "alice", "method": m, "url": url, "headers": browser_headers()}),
        )
    };
    for _ in 0..4 {
        assert_eq!(
            send(&app, u("GET", "/api/x"), "127.0.0.1").await.json()["decision"],
            "allow"
        );
    }
    assert_eq!(
        send(&app, u("POST", "/api/x"), "127.0.0.1").await.json()["decision"],
        "allow"
    );
    assert_eq!(
        send(&app, u("POST", "https://h.example/api/y?q=1"), "127.0.0.1")
            .await
            .json()["decision"],
        "allow"
    );
    assert_eq!(
        send(&app, u("POST", "/api/z"), "127.0.0.1").await.json()["decision"],
        "rate_limited"
    );
}

#[tokio::test]
async fn decide_rejects_bad_input() {
    let (app, _) = app_from(&base_policy(""), None);
    let r = send(
        &app,
        Request::post("/v1/decide")
            .body(Body::from("{not json"))
            .unwrap(),
        "127.0.0.1",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"].as_str().unwrap().contains("invalid JSON"));
    let r = send(
        &app,
        post_json("/v1/decide", &json!({"url": "/", "bogus": 1})),
        "127.0.0.1",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("bogus"));
    let r = send(
        &app,
        post_json("/v1/decide", &json!({"ip": "999.1.1.1", "url": "/"})),
        "127.0.0.1",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text().contains("`ip`") || r.text().contains("field `ip`"),
        "{}",
        r.text()
    );
    let r = send(
        &app,
        post_json("/v1/decide", &json!({"url": "ftp://x"})),
        "127.0.0.1",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Oversized body (limit 2048).
    let big = json!({"url": "/", "headers": {"x": "a".repeat(5000)}});
    let r = send(&app, post_json("/v1/decide", &big), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Oversized headers (limit 4096).
    let req = Request::get("/healthz")
        .header("x-big", "b".repeat(5000))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&app, req, "127.0.0.1").await.status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

#[tokio::test]
async fn lists_allow_and_deny() {
    let (app, _) = app_from(&base_policy(&limit_ip("1/m", 1)), None);
    let j = send(
        &app,
        decide_req("203.0.113.5", "/", browser_headers()),
        "127.0.0.1",
    )
    .await
    .json();
    assert_eq!(j["decision"], "deny");
    assert!(j["reasons"][0].as_str().unwrap().contains("203.0.113.0/24"));
    let mut h = browser_headers();
    h["user-agent"] = json!("Mozilla EvilBot/2");
    assert_eq!(
        send(&app, decide_req("192.0.2.1", "/", h), "127.0.0.1")
            .await
            .json()["decision"],
        "deny"
    );
    // Allow-listed address skips the limits entirely.
    for _ in 0..5 {
        assert_eq!(
            send(
                &app,
                decide_req("198.51.100.7", "/", browser_headers()),
                "127.0.0.1"
            )
            .await
            .json()["decision"],
            "allow"
        );
    }
}

#[tokio::test]
async fn risky_request_is_challenged_and_pass_cookie_honoured() {
    let (app, _) = app_from(&base_policy(""), None);
    let scanner = json!({"user-agent": "python-requests/2.31"});
    let j = send(
        &app,
        decide_req("192.0.2.50", "/.env", scanner.clone()),
        "127.0.0.1",
    )
    .await
    .json();
    assert_eq!(j["decision"], "challenge", "{j}");
    let risk = j["risk"].as_f64().unwrap();
    assert!(risk >= 0.6, "{risk}");
    let token = j["challenge"]["token"].as_str().unwrap().to_string();
    let diff = j["challenge"]["difficulty"].as_u64().unwrap() as u8;
    assert!((4..=8).contains(&diff));
    // The verify endpoint sees the client from the proxy's X-Forwarded-For.
    let verify = |tok: &str, nonce: &str| {
        Request::post("/.palisade/verify")
            .header("content-type", "application/json")
            .header("x-forwarded-for", "192.0.2.50")
            .header("user-agent", "python-requests/2.31")
            .body(Body::from(
                json!({"token": tok, "nonce": nonce}).to_string(),
            ))
            .unwrap()
    };
    let nonce = solve_pow(&token, diff);
    let r = send(&app, verify(&token, &nonce), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cookie = r.header("set-cookie").unwrap();
    assert!(cookie.starts_with("palisade_pass=") && cookie.contains("HttpOnly"));
    let pass = cookie.split(';').next().unwrap().to_string();
    // Replaying the same solution fails.
    let r = send(&app, verify(&token, &nonce), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("already used"), "{}", r.text());
    // With the pass the same request is allowed …
    let mut h = scanner.clone();
    h["cookie"] = json!(pass.clone());
    let j = send(
        &app,
        decide_req("192.0.2.50", "/.env", h.clone()),
        "127.0.0.1",
    )
    .await
    .json();
    assert_eq!(j["decision"], "allow", "{j}");
    assert_eq!(j["pass"], true);
    // … but not from another client (the pass is bound to IP prefix + UA).
    let j = send(&app, decide_req("192.0.2.51", "/.env", h), "127.0.0.1")
        .await
        .json();
    assert_eq!(j["decision"], "challenge");
}

#[tokio::test]
async fn forged_expired_and_misbound_tokens_rejected() {
    let (app, st) = app_from(&base_policy(""), None);
    let gate = st.gate();
    let ua = "curl/8";
    let bind = gate.bind(Some("192.0.2.60".parse().unwrap()), Some(ua));
    let verify = |tok: &str, nonce: &str| {
        Request::post("/.palisade/verify")
            .header("x-forwarded-for", "192.0.2.60")
            .header("user-agent", ua)
            .body(Body::from(
                json!({"token": tok, "nonce": nonce}).to_string(),
            ))
            .unwrap()
    };
    // Expired: signed with the right key, expiry in the past.
    let expired = Signer::new(SECRET.as_bytes()).issue(ChallengeKind::Pow, 1, 1_000, &bind, None);
    let r = send(&app, verify(&expired, &solve_pow(&expired, 1)), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("expired"), "{}", r.text());
    // Forged: a token signed with another key, or a lowered difficulty.
    let far = palisade_gate::clock::unix_now_s() + 600;
    let forged =
        Signer::new(b"not-the-secret-key-at-all").issue(ChallengeKind::Pow, 1, far, &bind, None);
    let r = send(&app, verify(&forged, &solve_pow(&forged, 1)), "127.0.0.1").await;
    assert!(r.text().contains("signature"), "{}", r.text());
    let real = gate.issue_pow(Some("192.0.2.60".parse().unwrap()), Some(ua), 8);
    let lowered = real.replacen(".8.", ".1.", 1);
    let r = send(&app, verify(&lowered, &solve_pow(&lowered, 1)), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Wrong answer, then a different client using a valid solution.
    let r = send(&app, verify(&real, "not-a-solution"), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let other = Request::post("/.palisade/verify")
        .header("x-forwarded-for", "192.0.2.61")
        .header("user-agent", ua)
        .body(Body::from(
            json!({"token": real, "nonce": solve_pow(&real, 8)}).to_string(),
        ))
        .unwrap();
    let r = send(&app, other, "127.0.0.1").await;
    assert!(r.text().contains("different client"), "{}", r.text());
    // An untrusted peer cannot claim the client's address via X-Forwarded-For.
    let spoof = Request::post("/.palisade/verify")
        .header("x-forwarded-for", "192.0.2.60")
        .header("user-agent", ua)
        .body(Body::from(
            json!({"token": real, "nonce": solve_pow(&real, 8)}).to_string(),
        ))
        .unwrap();
    assert!(send(&app, spoof, "192.0.2.99")
        .await
        .text()
        .contains("different client"));
    // Malformed JSON at the verify endpoint.
    let bad = Request::post("/.palisade/verify")
        .body(Body::from("nope"))
        .unwrap();
    assert_eq!(
        send(&app, bad, "127.0.0.1").await.status,
        StatusCode::BAD_REQUEST
    );
    // Finally the legitimate client succeeds with the real token.
    let r = send(&app, verify(&real, &solve_pow(&real, 8)), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn challenge_pages() {
    let (app, _) = app_from(&base_policy(""), None);
    let r = send(
        &app,
        Request::get("/.palisade/challenge?return=//evil.example/")
            .body(Body::empty())
            .unwrap(),
        "192.0.2.1",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let page = r.text();
    assert!(page.contains("crypto.subtle.digest") && page.contains("/.palisade/challenge/captcha"));
    assert!(!page.contains("evil.example"), "open redirect");
    // Without a token the page uses the hardest puzzle.
    assert!(page.contains("bits = 8"), "{page}");
    // Editing the token in the URL gives the hardest puzzle, not an easier one.
    let r = send(
        &app,
        Request::get("/.palisade/challenge?t=c1.pow.1.9999999999.x.y.-.z")
            .body(Body::empty())
            .unwrap(),
        "192.0.2.1",
    )
    .await;
    assert!(r.text().contains("bits = 8"));
    let r = send(
        &app,
        Request::get("/.palisade/challenge/captcha?return=/shop")
            .body(Body::empty())
            .unwrap(),
        "192.0.2.1",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let page = r.text();
    assert!(page.contains("data:image/png;base64,"));
    let tok = page
        .split("name=\"token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let form = |t: &str, a: &str| {
        Request::post("/.palisade/challenge/captcha")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={t}&answer={a}&return=%2Fshop")))
            .unwrap()
    };
    // A wrong guess burns the image (single use): even a retry is refused.
    let r = send(&app, form(&tok, "zzzzzzz"), "192.0.2.1").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(send(&app, form(&tok, "zzzzzzz"), "192.0.2.1")
        .await
        .text()
        .contains("already used"));
    // A correct answer (token made with the gate's key and a known answer) earns a pass and a redirect.
    let bind = Signer::bind("192.0.2.1/32", None);
    let far = palisade_gate::clock::unix_now_s() + 600;
    let known =
        Signer::new(SECRET.as_bytes()).issue(ChallengeKind::Captcha, 0, far, &bind, Some("k7Pq2"));
    let r = send(&app, form(&known, "K7PQ2"), "192.0.2.1").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location").as_deref(), Some("/shop"));
    assert!(r
        .header("set-cookie")
        .unwrap()
        .starts_with("palisade_pass="));
    assert_eq!(
        send(&app, form(&known, "K7PQ2"), "192.0.2.1").await.status,
        StatusCode::FORBIDDEN
    );
    let r = send(
        &app,
        Request::post("/.palisade/challenge/captcha")
            .body(Body::from("garbage"))
            .unwrap(),
        "192.0.2.1",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn forward_auth_traefik_nginx_envoy() {
    let extra = format!(
        "{}\n[forward_auth]\nrate_limited_status = 429\n",
        limit_ip("1/m", 2)
    );
    let (app, _) = app_from(&base_policy(&extra), None);
    let traefik = |xff: &str| {
        Request::get("/v1/auth")
            .header("x-forwarded-for", xff)
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-uri", "/shop?item=1")
            .header("user-agent", "Mozilla/5.0 Firefox/120.0")
            .header("accept-language", "en")
            .header("referer", "https://shop.example/")
            .body(Body::empty())
            .unwrap()
    };
    let r = send(&app, traefik("192.0.2.70"), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-palisade-decision").as_deref(), Some("allow"));
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("1"));
    send(&app, traefik("192.0.2.70"), "127.0.0.1").await;
    let r = send(&app, traefik("192.0.2.70"), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // X-Forwarded-For from an untrusted peer is ignored: the peer is the key.
    let r = send(&app, traefik("192.0.2.70"), "192.0.2.200").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "spoofed XFF must not select the limited key"
    );
    // nginx auth_request style (X-Original-URI), a scanner → challenge page (401).
    let nginx = Request::get("/v1/auth")
        .header("x-forwarded-for", "192.0.2.71")
        .header("x-original-uri", "/wp-login.php")
        .header("user-agent", "python-requests/2")
        .body(Body::empty())
        .unwrap();
    let r = send(&app, nginx, "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("x-palisade-decision").as_deref(),
        Some("challenge")
    );
    assert!(r.text().contains("crypto.subtle.digest"));
    // Envoy ext_authz: original path appended to the auth path prefix.
    let envoy = Request::post("/v1/auth/.git/config")
        .header("x-forwarded-for", "192.0.2.72")
        .body(Body::empty())
        .unwrap();
    let r = send(&app, envoy, "127.0.0.1").await;
    assert_eq!(
        r.header("x-palisade-decision").as_deref(),
        Some("challenge"),
        "{:?}",
        r.headers
    );
    // Deny list → 403.
    let r = send(&app, traefik("203.0.113.9"), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn metrics_health_and_admin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.toml");
    std::fs::write(&path, base_policy(&limit_ip("1/m", 2))).unwrap();
    let (app, st) = app_from(&std::fs::read_to_string(&path).unwrap(), Some(path.clone()));
    send(
        &app,
        decide_req("192.0.2.80", "/", browser_headers()),
        "127.0.0.1",
    )
    .await;
    let r = send(
        &app,
        Request::get("/metrics").body(Body::empty()).unwrap(),
        "127.0.0.1",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let m = r.text();
    assert!(m.contains("palisade_gate_decisions_total"), "{m}");
    assert!(m.contains("palisade_gate_memory_keys"), "{m}");
    // decision latency as a bucketed histogram (adds up across a fleet)
    assert!(m.contains("palisade_gate_decide_seconds_bucket{le="), "{m}");
    let r = send(
        &app,
        Request::get("/healthz").body(Body::empty()).unwrap(),
        "127.0.0.1",
    )
    .await;
    assert_eq!(r.json()["ok"], true);

    let key = |auth: Option<&str>| {
        let mut b = Request::get("/admin/key?limiter=ip&key=192.0.2.80");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(
        send(&app, key(None), "127.0.0.1").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, key(Some("Bearer wrong-token-xxxxxxxx")), "127.0.0.1")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = send(&app, key(Some(&format!("Bearer {ADMIN}"))), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["remaining"], 1);
    let bad = Request::get("/admin/key?limiter=nope&key=1.2.3.4")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&app, bad, "127.0.0.1").await.status,
        StatusCode::BAD_REQUEST
    );

    // Reload: a new policy with a larger burst; the key's consumed cell is kept.
    std::fs::write(&path, base_policy(&limit_ip("1/m", 5))).unwrap();
    let reload = |auth: &str| {
        Request::post("/admin/reload")
            .header("authorization", auth)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        send(&app, reload("Bearer nope"), "127.0.0.1").await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = send(&app, reload(&format!("Bearer {ADMIN}")), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = send(&app, key(Some(&format!("Bearer {ADMIN}"))), "127.0.0.1").await;
    assert_eq!(r.json()["limit"], 5);
    assert_eq!(
        r.json()["remaining"],
        4,
        "state must survive a reload: {}",
        r.text()
    );
    // A broken policy is refused and the old one stays.
    std::fs::write(&path, "[[limit]]\nname='ip'\nkey='ip'\nrate='fast'\n").unwrap();
    let r = send(&app, reload(&format!("Bearer {ADMIN}")), "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("limit[0] (ip).rate"), "{}", r.text());
    assert_eq!(st.gate().policy.limits[0].quota.burst, 5);
}

#[tokio::test]
async fn real_listener_graceful_shutdown() {
    let p = palisade_gate::Policy::parse(&base_policy(""), "t").unwrap();
    let stores = std::sync::Arc::new(palisade_gate::Stores::default());
    let st = palisade_gate::server::AppState::new(
        palisade_gate::Gate::new(p, &stores).unwrap(),
        stores,
        None,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(palisade_gate::server::serve(st, listener, async {
        let _ = rx.await;
    }));
    // A plain blocking client (tokio's io-util is not enabled in this workspace).
    let buf = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf
    })
    .await
    .unwrap();
    assert!(buf.starts_with("HTTP/1.1 200"), "{buf}");
    tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("shutdown hung")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening after shutdown"
    );
}
