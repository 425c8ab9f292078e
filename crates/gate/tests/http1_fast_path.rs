//! The forward-auth HTTP/1.1 fast path over real sockets: it must answer as
//! the router does (same statuses and decision headers), keep requests in
//! order when they are pipelined or split across packets, and hand a
//! connection to hyper at its first request of another kind.

mod common;
use axum::body::Body;
use axum::http::Request;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A server on a real listener; dropped senders stop it.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    async fn start(policy: &str) -> Server {
        let (_, st) = app_from(policy, None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(palisade_gate::server::serve(st, listener, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .expect("shutdown hung")
                .expect("join")
                .expect("serve");
        }
    }
}

#[derive(Debug)]
struct Reply {
    version: u8,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send `chunks` (each written separately, with a pause so they arrive as
/// separate reads) and read `n` responses; `then_eof` also requires the
/// server to close the connection after them.
fn exchange(addr: SocketAddr, chunks: &[&[u8]], n: usize, then_eof: bool) -> Vec<Reply> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    for (i, c) in chunks.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        s.write_all(c).expect("write");
    }
    let mut buf = Vec::new();
    let mut replies = Vec::new();
    let mut chunk = [0u8; 4096];
    while replies.len() < n {
        // parse what is there
        let mut progressed = true;
        while progressed && replies.len() < n {
            progressed = false;
            let mut hs = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut hs);
            if let Ok(httparse::Status::Complete(head)) = r.parse(&buf) {
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map(|(_, v)| v.parse().expect("content-length"))
                    .expect("every response has a content-length");
                if buf.len() >= head + len {
                    replies.push(Reply {
                        version: r.version.expect("version"),
                        status: r.code.expect("status"),
                        headers,
                        body: buf[head..head + len].to_vec(),
                    });
                    buf.drain(..head + len);
                    progressed = true;
                }
            }
        }
        if replies.len() == n {
            break;
        }
        let k = s.read(&mut chunk).expect("read");
        assert!(k > 0, "connection closed after {} replies", replies.len());
        buf.extend_from_slice(&chunk[..k]);
    }
    if then_eof {
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).expect("read to EOF");
        assert!(
            rest.is_empty(),
            "bytes after the last reply: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
    replies
}

async fn exchange_async(
    addr: SocketAddr,
    chunks: Vec<Vec<u8>>,
    n: usize,
    then_eof: bool,
) -> Vec<Reply> {
    tokio::task::spawn_blocking(move || {
        let c: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        exchange(addr, &c, n, then_eof)
    })
    .await
    .expect("client thread")
}

fn auth_request(xff: &str, uri: &str, ua: &str) -> String {
    format!(
        "GET /v1/auth HTTP/1.1\r\nHost: gate\r\nX-Forwarded-For: {xff}\r\nX-Forwarded-Method: GET\r\n\
         X-Forwarded-Uri: {uri}\r\nUser-Agent: {ua}\r\nAccept-Language: en\r\n\r\n"
    )
}

const FIREFOX: &str = "Mozilla/5.0 Firefox/120.0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_as_the_router_does() {
    let policy = base_policy(&format!(
        "{}\n[forward_auth]\nrate_limited_status = 429\n",
        limit_ip("1/m", 2)
    ));
    let srv = Server::start(&policy).await;
    let (app, _) = app_from(&policy, None);
    // allow, allow, rate limited (same address); deny list; a scanner → challenge
    let cases = [
        ("192.0.2.70", "/shop?item=1", FIREFOX),
        ("192.0.2.70", "/shop?item=1", FIREFOX),
        ("192.0.2.70", "/shop?item=1", FIREFOX),
        ("203.0.113.9", "/", FIREFOX),
        ("192.0.2.71", "/wp-login.php", "python-requests/2"),
        ("192.0.2.72", "/a", "evilbot/1.0"),
    ];
    let mut pipelined = Vec::new();
    for (xff, uri, ua) in cases {
        pipelined.extend_from_slice(auth_request(xff, uri, ua).as_bytes());
    }
    let fast = exchange_async(srv.addr, vec![pipelined], cases.len(), false).await;
    for ((xff, uri, ua), got) in cases.iter().zip(&fast) {
        let want = send(
            &app,
            Request::get("/v1/auth")
                .header("host", "gate")
                .header("x-forwarded-for", *xff)
                .header("x-forwarded-method", "GET")
                .header("x-forwarded-uri", *uri)
                .header("user-agent", *ua)
                .header("accept-language", "en")
                .body(Body::empty())
                .expect("request"),
            "127.0.0.1",
        )
        .await;
        assert_eq!(got.status, want.status.as_u16(), "{xff} {uri} {ua}");
        assert_eq!(got.version, 1);
        for h in [
            "x-palisade-decision",
            "x-palisade-risk",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "retry-after",
            "content-type",
        ] {
            assert_eq!(
                got.header(h),
                want.header(h).as_deref(),
                "{h} for {xff} {uri} {ua}"
            );
        }
        // the challenge page carries a fresh token, so compare its shape
        assert_eq!(got.body.is_empty(), want.body.is_empty());
        assert!(got.header("date").is_some());
    }
    let statuses: Vec<u16> = fast.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200, 429, 403, 401, 403]);
    assert!(String::from_utf8_lossy(&fast[4].body).contains("crypto.subtle.digest"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_reads_pipelining_and_hand_off() {
    let srv = Server::start(&base_policy(&limit_ip("1/m", 100))).await;
    let one = auth_request("192.0.2.80", "/x", FIREFOX).into_bytes();
    // a request head split into single bytes, then two more requests in one
    // packet with the second's end in a third packet
    let mut chunks: Vec<Vec<u8>> = one[..12].iter().map(|b| vec![*b]).collect();
    chunks.push(one[12..].to_vec());
    let two = [one.clone(), one.clone()].concat();
    chunks.push(two[..one.len() + 10].to_vec());
    chunks.push(two[one.len() + 10..].to_vec());
    let r = exchange_async(srv.addr, chunks, 3, false).await;
    let remaining: Vec<&str> = r
        .iter()
        .map(|r| r.header("x-ratelimit-remaining").unwrap_or("-"))
        .collect();
    assert_eq!(remaining, vec!["99", "98", "97"], "answered in order");

    // forward-auth, then another route (hyper takes over), then forward-auth
    // again on the same connection: all three answered, in order
    let mixed = [
        auth_request("192.0.2.81", "/y", FIREFOX).into_bytes(),
        b"GET /healthz HTTP/1.1\r\nHost: gate\r\n\r\n".to_vec(),
        auth_request("192.0.2.81", "/y", FIREFOX).into_bytes(),
    ]
    .concat();
    let r = exchange_async(srv.addr, vec![mixed], 3, false).await;
    assert_eq!(r[0].header("x-ratelimit-remaining"), Some("99"));
    assert_eq!(r[1].status, 200);
    assert!(String::from_utf8_lossy(&r[1].body).contains("\"ok\":true"));
    assert_eq!(r[2].header("x-ratelimit-remaining"), Some("98"));
    assert_eq!(r[2].header("x-palisade-decision"), Some("allow"));

    // a body on the auth route goes to hyper, which still answers it
    let with_body = b"POST /v1/auth HTTP/1.1\r\nHost: gate\r\nX-Forwarded-For: 192.0.2.82\r\nUser-Agent: Mozilla/5.0 Firefox/120.0\r\nAccept-Language: en\r\nContent-Length: 4\r\n\r\nabcd".to_vec();
    let r = exchange_async(srv.addr, vec![with_body], 1, false).await;
    assert_eq!(r[0].header("x-ratelimit-remaining"), Some("99"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_http10_and_errors() {
    let srv = Server::start(&base_policy(&limit_ip("1/m", 100))).await;
    // HTTP/1.0 without keep-alive: answered in 1.0, then closed
    let r = exchange_async(
        srv.addr,
        vec![b"GET /v1/auth HTTP/1.0\r\nX-Forwarded-For: 192.0.2.90\r\nUser-Agent: Mozilla/5.0 Firefox/120.0\r\nAccept-Language: en\r\n\r\n".to_vec()],
        1,
        true,
    )
    .await;
    assert_eq!((r[0].version, r[0].status), (0, 200));
    // HTTP/1.0 keep-alive: kept open and said so
    let ka =
        b"GET /v1/auth HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 192.0.2.91\r\n\r\n";
    let r = exchange_async(srv.addr, vec![[&ka[..], &ka[..]].concat()], 2, false).await;
    assert_eq!(r[1].header("connection"), Some("keep-alive"));
    // HTTP/1.1 Connection: close: the reply says so and the server closes
    let r = exchange_async(
        srv.addr,
        vec![
            b"GET /v1/auth HTTP/1.1\r\nConnection: close\r\nX-Forwarded-For: 192.0.2.92\r\n\r\n"
                .to_vec(),
        ],
        1,
        true,
    )
    .await;
    assert_eq!(r[0].header("connection"), Some("close"));
    // headers over the policy's 4096 bytes: the general path's 431
    let big = format!(
        "GET /v1/auth HTTP/1.1\r\nX-Forwarded-For: 192.0.2.93\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(5000)
    );
    let r = exchange_async(srv.addr, vec![big.into_bytes()], 1, false).await;
    assert_eq!(r[0].status, 431);
    // a malformed request (a control byte in a header value): hyper's 400
    let r = exchange_async(
        srv.addr,
        vec![b"GET /v1/auth HTTP/1.1\r\nX-Forwarded-For: 192.0.2.94\x01\r\n\r\n".to_vec()],
        1,
        false,
    )
    .await;
    assert_eq!(r[0].status, 400);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_nothing_idle() {
    let srv = Server::start(&base_policy("")).await;
    let addr = srv.addr;
    // an idle keep-alive connection on the fast path must not hold up shutdown
    let idle = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(auth_request("192.0.2.95", "/", FIREFOX).as_bytes())
            .expect("write");
        let mut b = [0u8; 2048];
        let n = s.read(&mut b).expect("read");
        assert!(n > 0);
        s
    })
    .await
    .expect("client");
    srv.stop().await;
    drop(idle);
}

/// Read until EOF or `limit`; true when the server closed the connection.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).expect("timeout");
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_idle_connections_are_closed() {
    let policy = base_policy("").replace(
        "[server]\n",
        "[server]\nheader_read_timeout_ms = 300\nidle_timeout_ms = 600\n",
    );
    let srv = Server::start(&policy).await;
    let addr = srv.addr;
    tokio::task::spawn_blocking(move || {
        // a head that never completes (fast path): closed after ~300 ms
        let mut s = TcpStream::connect(addr).expect("connect");
        let t = std::time::Instant::now();
        s.write_all(b"GET /v1/auth HTTP/1.1\r\nHost: gate\r\nX-Slow: ")
            .expect("write");
        assert!(
            closed_within(&mut s, Duration::from_secs(5)),
            "slow head kept open"
        );
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(250),
            "closed too early: {took:?}"
        );

        // idle after one request: closed after ~600 ms
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(auth_request("192.0.2.96", "/", FIREFOX).as_bytes())
            .expect("write");
        let t = std::time::Instant::now();
        assert!(
            closed_within(&mut s, Duration::from_secs(5)),
            "idle connection kept open"
        );
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(500),
            "closed too early: {took:?}"
        );

        // busy for longer than the idle timeout in total, never idle that
        // long: stays open and answers every request
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        for i in 0..8 {
            s.write_all(auth_request("192.0.2.97", "/", FIREFOX).as_bytes())
                .expect("write");
            let mut b = [0u8; 4096];
            let n = s.read(&mut b).expect("read");
            assert!(n > 0, "closed at request {i}");
            std::thread::sleep(Duration::from_millis(150));
        }

        // after hyper has taken the connection over, its header timeout holds
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: gate\r\n\r\nGET /healthz HTTP/1.1\r\nHost:")
            .expect("write");
        assert!(
            closed_within(&mut s, Duration::from_secs(5)),
            "hyper kept a slow head open"
        );
    })
    .await
    .expect("client");
    srv.stop().await;
}

#[test]
fn zero_timeouts_are_refused() {
    for key in [
        "header_read_timeout_ms",
        "idle_timeout_ms",
        "request_timeout_ms",
    ] {
        let policy = base_policy("").replace("[server]\n", &format!("[server]\n{key} = 0\n"));
        let err = palisade_gate::Policy::parse(&policy, "t").expect_err(key);
        assert!(err.to_string().contains(key), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_requests_get_no_body() {
    let srv = Server::start(&base_policy(&limit_ip("1/m", 100))).await;
    let addr = srv.addr;
    // a challenged HEAD (its GET would carry the challenge page), then a GET
    // on the same connection: the second reply must follow the first head
    // directly, or the client would read page bytes as a status line
    let raw = [
        b"HEAD /v1/auth HTTP/1.1\r\nHost: gate\r\nX-Forwarded-For: 192.0.2.98\r\nX-Forwarded-Uri: /wp-login.php\r\nUser-Agent: python-requests/2\r\n\r\n".to_vec(),
        auth_request("192.0.2.99", "/", FIREFOX).into_bytes(),
    ]
    .concat();
    let text = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(&raw).expect("write");
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        // until the second reply's head is complete
        while got.windows(4).filter(|w| w == b"\r\n\r\n").count() < 2 {
            let n = s.read(&mut b).expect("read");
            assert!(n > 0, "closed early");
            got.extend_from_slice(&b[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    })
    .await
    .expect("client");
    let (first, rest) = text.split_once("\r\n\r\n").expect("first head");
    assert!(first.starts_with("HTTP/1.1 401"), "{first}");
    assert!(first.contains("content-length: "), "{first}");
    assert!(!first.contains("content-length: 0\r\n"), "{first}");
    assert!(
        rest.starts_with("HTTP/1.1 200"),
        "body bytes after a HEAD reply: {rest:.80}"
    );
    srv.stop().await;
}
