//! The forward-auth endpoint's HTTP/1.1 fast path.
//!
//! A proxy in front of a site (nginx `auth_request`, Traefik ForwardAuth,
//! Envoy's HTTP ext_authz) asks the gate once per request of the site, so
//! `/v1/auth` is the gate's hottest route by far. Every new connection starts
//! here: requests are parsed with `httparse` straight from the read buffer,
//! decided, and answered with one write per batch of pipelined requests —
//! no `HeaderMap`, no boxed body, no router. The first request that is
//! anything else (another route, a body, a parse error, headers over the
//! limit) hands the connection, with every byte read so far, to hyper and
//! the axum router, which then serve it to the end; so every other route,
//! and every error response, comes from the general stack.
//!
//! Why hand-written: under `bench/gate_http.sh` the hyper + axum request path
//! cost ~29k instructions per forward-auth request (callgrind), more than the
//! kernel's loopback TCP work, and kept the gate below nginx `limit_req`
//! (issue #8's goal). The decision itself is shared with the general path
//! (`server::forward_subject`, `forward_status`, `forward_body`,
//! `for_each_decision_header`), so the two answer alike; tests in
//! `tests/http.rs` compare them over real sockets.

use crate::server::{
    field_bytes, for_each_decision_header, forward_body, forward_status, forward_subject, AppState,
    Guard, HeaderText, RequestHeaders,
};
use axum::http::{HeaderName, StatusCode};
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Headers parsed per request; a request with more goes to hyper (whose own
/// limit is 100).
const MAX_HEADERS: usize = 48;

/// How a connection left the fast path.
pub(crate) enum Exit {
    /// Closed (EOF, `Connection: close`, HTTP/1.0 without keep-alive, or the
    /// server stopping while the connection was idle).
    Closed,
    /// Hand the connection to hyper; these bytes were read and not consumed.
    HandOff(Vec<u8>),
}

/// Serve forward-auth requests on `stream` until it closes or needs the
/// general stack.
pub(crate) async fn serve(
    stream: &mut TcpStream,
    peer: SocketAddr,
    st: &AppState,
    g: Guard,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> io::Result<Exit> {
    // A request whose head does not fit is handed over: hyper and `Guard`
    // give it the same 431 as on the general path.
    let buf_limit = g.max_header.saturating_add(4096).clamp(8 * 1024, 1 << 20);
    // `buf[..filled]` holds bytes read and not yet answered
    let mut buf: Vec<u8> = vec![0; 8 * 1024];
    let mut filled = 0;
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    // Timeouts without a timer per request: one timer per connection,
    // re-armed only when it fires early (the deadline moved on with the
    // traffic) or when a partial head needs an earlier deadline. Resetting
    // a timer on every request would cost about as much as the decision.
    let mut last_read = tokio::time::Instant::now();
    let mut head_since: Option<tokio::time::Instant> = None;
    let timer = tokio::time::sleep(g.idle_timeout);
    tokio::pin!(timer);
    loop {
        let mut start = 0;
        let mut close = false;
        while start < filled && !close {
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut slots);
            let n = match req.parse(&buf[start..filled]) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => break,
                // hyper answers malformed requests (400) and too many headers
                Err(_) => return hand_off(stream, &mut out, &buf[start..filled]).await,
            };
            let Some(head) = Head::of(&req, g.max_header) else {
                return hand_off(stream, &mut out, &buf[start..filled]).await;
            };
            close = !head.keep_alive;
            let gate = st.gate();
            let headers = Fields::new(req.headers);
            let s = forward_subject(&gate, head.method, head.target, &headers, Some(peer.ip()));
            match g.decide_in_time(&gate, &s).await {
                Some(d) => {
                    let page = forward_body(&s, &d);
                    let body = page.as_deref().map(|p| (HTML, p));
                    head.write_response(&mut out, forward_status(&gate, &d), body, |w| {
                        for_each_decision_header(&d, |name, v| w(name, v))
                    });
                }
                None => head.write_response(
                    &mut out,
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some((JSON, r#"{"error":"gate timed out"}"#)),
                    |_| {},
                ),
            }
            start += n;
        }
        if !out.is_empty() {
            write_all(stream, &out).await?;
            out.clear();
        }
        if close {
            return Ok(Exit::Closed);
        }
        if start > 0 {
            // a request completed: a partial head after it is a new one
            head_since = None;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled >= buf_limit {
            buf.truncate(filled);
            return Ok(Exit::HandOff(buf));
        }
        if filled == 0 && *stop.borrow() {
            return Ok(Exit::Closed);
        }
        if buf.len() - filled < 1024 {
            buf.resize((buf.len() * 2).min(buf_limit), 0);
        }
        let idle = filled == 0;
        // The deadline that applies while waiting: the idle timeout between
        // requests, the header timeout from a partial head's first bytes.
        let deadline = if idle {
            head_since = None;
            last_read + g.idle_timeout
        } else {
            let since = *head_since.get_or_insert(last_read);
            let d = since + g.header_read_timeout;
            if d < timer.deadline() {
                timer.as_mut().reset(d);
            }
            d
        };
        let read = loop {
            match read_once(stream, &mut buf[filled..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            tokio::select! {
                r = stream.readable() => r?,
                () = &mut timer => {
                    if tokio::time::Instant::now() >= deadline {
                        // As hyper does on its header timeout: close, no reply.
                        return Ok(Exit::Closed);
                    }
                    timer.as_mut().reset(deadline);
                }
                // Graceful shutdown: an idle connection closes; one in the
                // middle of a request is read to its end first.
                _ = async { stop.wait_for(|s| *s).await.map(|_| ()) }, if idle => {
                    return Ok(Exit::Closed);
                }
            }
        };
        if read == 0 {
            // EOF (a partial request is dropped, as hyper does)
            return Ok(Exit::Closed);
        }
        filled += read;
        last_read = tokio::time::Instant::now();
    }
}

/// One read, and tokio's readiness cleared when it drained the socket.
///
/// `try_read` checks tokio's cached readiness first, so a socket known to be
/// drained costs no system call; but tokio learns that a socket is drained
/// only from a read that fails with `EAGAIN`, so a request answered and then
/// waited for cost two reads: the one that got it and one that said "no
/// more". nginx reads once (a short read means drained). So do we: a read
/// that returns less than `buf` can take has emptied the socket at that
/// instant, and returning `WouldBlock` from `try_io` clears the readiness
/// without the second system call. Nothing can be missed: the socket is
/// edge-triggered, so bytes that arrive after the read raise a new event,
/// and tokio clears only the readiness it saw before the read (its tick).
/// Measured with `perf stat -e syscalls:sys_enter_recvfrom` under the
/// `bench/gate_http.sh` load: 2.0 → 1.0 reads per request.
fn read_once(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let space = buf.len();
    let mut got = 0;
    let r = stream.try_io(tokio::io::Interest::READABLE, || {
        let n = stream.try_read(buf)?;
        if n > 0 && n < space {
            got = n;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        r => r,
    }
}

/// Write what is answered so far, then hand the rest to hyper.
async fn hand_off(stream: &mut TcpStream, out: &mut Vec<u8>, rest: &[u8]) -> io::Result<Exit> {
    if !out.is_empty() {
        write_all(stream, out).await?;
        out.clear();
    }
    Ok(Exit::HandOff(rest.to_vec()))
}

/// Write all of `data` (the socket is non-blocking: wait while it is full).
async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match stream.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The parsed header fields, with a small signature of each name (length,
/// first and last byte in lower case) so that a lookup compares names in
/// full only where the signatures match: the forward-auth logic looks up
/// about a dozen names per request, and comparing every field against each
/// in full was the fast path's largest cost (callgrind).
struct Fields<'h, 'b> {
    all: &'h [httparse::Header<'b>],
    sig: [u32; MAX_HEADERS],
}

fn name_sig(n: &[u8]) -> u32 {
    match (n.first(), n.last()) {
        (Some(f), Some(l)) => {
            ((n.len() as u32) << 16)
                | (u32::from(f.to_ascii_lowercase()) << 8)
                | u32::from(l.to_ascii_lowercase())
        }
        _ => 0,
    }
}

impl<'h, 'b> Fields<'h, 'b> {
    fn new(all: &'h [httparse::Header<'b>]) -> Self {
        let mut sig = [0u32; MAX_HEADERS];
        for (s, h) in sig.iter_mut().zip(all) {
            *s = name_sig(h.name.as_bytes());
        }
        Fields { all, sig }
    }

    /// The first field named `name` (lower case, as `HeaderName` is).
    fn find(&self, name: &HeaderName) -> Option<&httparse::Header<'b>> {
        let n = name.as_str().as_bytes();
        let want = name_sig(n);
        self.sig[..self.all.len()]
            .iter()
            .zip(self.all)
            .find(|(s, h)| **s == want && h.name.as_bytes().eq_ignore_ascii_case(n))
            .map(|(_, h)| h)
    }
}

impl RequestHeaders for Fields<'_, '_> {
    fn text(&self, name: &HeaderName) -> Option<&str> {
        let v = self.find(name)?.value;
        // `HeaderValue::to_str`'s rule is visible ASCII and tab only; httparse
        // has already refused every other byte below 0x80 in a value.
        if v.is_ascii() {
            std::str::from_utf8(v).ok()
        } else {
            None
        }
    }
    fn has(&self, name: &HeaderName) -> bool {
        self.find(name).is_some()
    }
    fn count(&self) -> usize {
        self.all.len()
    }
}

/// What the fast path needs of a request head it can serve.
struct Head<'a> {
    method: &'a str,
    target: &'a str,
    http10: bool,
    keep_alive: bool,
}

impl<'a> Head<'a> {
    /// The head, if the fast path serves this request: a forward-auth
    /// target in origin form, no body, headers within the policy's limit.
    fn of(req: &httparse::Request<'_, 'a>, max_header: usize) -> Option<Head<'a>> {
        let (method, target, version) = (req.method?, req.path?, req.version?);
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        // the router's two forward-auth routes: `/v1/auth` and `/v1/auth/{*rest}`
        let auth = path == "/v1/auth" || path.len() > 9 && path.starts_with("/v1/auth/");
        if !auth {
            return None;
        }
        let mut keep_alive = version == 1;
        let mut size = target.len();
        for h in req.headers.iter() {
            size += field_bytes(h.name.len(), h.value.len());
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return None;
            }
            if h.name.eq_ignore_ascii_case("content-length") && h.value != b"0" {
                return None;
            }
            if h.name.eq_ignore_ascii_case("connection") {
                for t in h.value.split(|&b| b == b',') {
                    let t = t.trim_ascii();
                    if t.eq_ignore_ascii_case(b"close") {
                        keep_alive = false;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                        keep_alive = true;
                    }
                }
            }
        }
        // The general path's header check (`Guard::oversized`) answers 431.
        if size > max_header {
            return None;
        }
        Some(Head {
            method,
            target,
            http10: version == 0,
            keep_alive,
        })
    }

    /// Append the response: status line, the decision's headers (from
    /// `headers`), content type and length, connection, date, body.
    fn write_response(
        &self,
        out: &mut Vec<u8>,
        status: StatusCode,
        body: Option<(&str, &str)>,
        headers: impl FnOnce(&mut dyn FnMut(&HeaderName, HeaderText)),
    ) {
        // hyper answers an HTTP/1.0 request in HTTP/1.0
        out.extend_from_slice(if self.http10 {
            b"HTTP/1.0 "
        } else {
            b"HTTP/1.1 "
        });
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
        out.extend_from_slice(b"\r\n");
        let mut num = itoa::Buffer::new();
        headers(&mut |name, v| {
            let v: &[u8] = match v {
                HeaderText::Static(s) => s.as_bytes(),
                HeaderText::Number(n) => num.format(n).as_bytes(),
                // `HeaderValue::from_str`'s rule; the general path skips such a value too
                HeaderText::Text(t) => {
                    let b = t.as_bytes();
                    if !b.iter().all(|&c| c == b'\t' || (c >= 32 && c != 127)) {
                        return;
                    }
                    b
                }
            };
            put_header(out, name.as_str().as_bytes(), v);
        });
        if let Some((content_type, _)) = body {
            put_header(out, b"content-type", content_type.as_bytes());
        }
        put_header(
            out,
            b"content-length",
            num.format(body.map_or(0, |(_, b)| b.len())).as_bytes(),
        );
        match (self.http10, self.keep_alive) {
            (true, true) => put_header(out, b"connection", b"keep-alive"),
            (false, false) => put_header(out, b"connection", b"close"),
            _ => {}
        }
        DATE.with(|d| put_header(out, b"date", d.borrow_mut().now()));
        out.extend_from_slice(b"\r\n");
        // A response to HEAD has the length of the body it would have, and
        // no body (as hyper does): bytes after it would be read as the next
        // response of the connection.
        if let Some((_, b)) = body.filter(|_| self.method != "HEAD") {
            out.extend_from_slice(b.as_bytes());
        }
    }
}

/// The content types axum's `Html` and `Json` set.
const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The `Date` header, formatted once per second per thread (as hyper does).
struct DateCache {
    second: u64,
    text: String,
}

impl DateCache {
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(now);
        }
        self.text.as_bytes()
    }
}

thread_local! {
    static DATE: RefCell<DateCache> = const {
        RefCell::new(DateCache {
            second: 0,
            text: String::new(),
        })
    };
}

/// A connection handed to hyper: the bytes the fast path read but did not
/// consume come first, then the socket.
pub(crate) struct Rewind {
    pre: Vec<u8>,
    pos: usize,
    inner: TcpStream,
}

impl Rewind {
    pub(crate) fn new(pre: Vec<u8>, inner: TcpStream) -> Self {
        Rewind { pre, pos: 0, inner }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.pre.len() {
            let n = buf.remaining().min(this.pre.len() - this.pos);
            buf.put_slice(&this.pre[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.pre.len() {
                this.pre = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(raw: &[u8], max: usize) -> Option<(String, String, bool, bool)> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut slots);
        match req.parse(raw) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return None,
        }
        Head::of(&req, max).map(|h| (h.method.into(), h.target.into(), h.http10, h.keep_alive))
    }

    #[test]
    fn which_requests_the_fast_path_takes() {
        let ok = |raw: &str| head_of(raw.as_bytes(), 32 * 1024);
        assert_eq!(
            ok("GET /v1/auth HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(("GET".into(), "/v1/auth".into(), false, true))
        );
        assert!(ok("GET /v1/auth?x=1 HTTP/1.1\r\n\r\n").is_some());
        assert!(ok("POST /v1/auth/.git/config HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_some());
        // other routes, bodies, the catch-all's empty rest, absolute form
        for raw in [
            "GET /v1/authx HTTP/1.1\r\n\r\n",
            "GET /v1/auth/ HTTP/1.1\r\n\r\n",
            "GET /healthz HTTP/1.1\r\n\r\n",
            "POST /v1/decide HTTP/1.1\r\n\r\n",
            "POST /v1/auth HTTP/1.1\r\nContent-Length: 2\r\n\r\n",
            "POST /v1/auth HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET http://a/v1/auth HTTP/1.1\r\n\r\n",
        ] {
            assert!(ok(raw).is_none(), "{raw:?}");
        }
        // keep-alive: 1.1 unless close; 1.0 only when asked
        assert_eq!(
            ok("GET /v1/auth HTTP/1.1\r\nConnection: foo, Close\r\n\r\n").map(|h| h.3),
            Some(false)
        );
        assert_eq!(
            ok("GET /v1/auth HTTP/1.0\r\n\r\n").map(|h| (h.2, h.3)),
            Some((true, false))
        );
        assert_eq!(
            ok("GET /v1/auth HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").map(|h| (h.2, h.3)),
            Some((true, true))
        );
        // over the header limit: the general path answers 431
        let raw = "GET /v1/auth HTTP/1.1\r\nX-Big: 0123456789\r\n\r\n";
        assert!(head_of(raw.as_bytes(), 40).is_some());
        assert!(head_of(raw.as_bytes(), 20).is_none());
    }

    #[test]
    fn header_lookup_follows_header_value_rules() {
        let raw = b"GET /v1/auth HTTP/1.1\r\nUser-Agent: a\tb\r\nREFERER: r\r\nX-Bin: \xff\r\nuser-agent: second\r\n\r\n";
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut slots);
        assert!(matches!(req.parse(raw), Ok(httparse::Status::Complete(_))));
        let f = Fields::new(req.headers);
        // case-insensitive; the first of repeated fields; tab allowed
        assert_eq!(f.text(&axum::http::header::USER_AGENT), Some("a\tb"));
        assert_eq!(f.text(&axum::http::header::REFERER), Some("r"));
        let bin = HeaderName::from_static("x-bin");
        assert_eq!(f.text(&bin), None);
        assert!(f.has(&bin));
        assert_eq!(f.count(), 4);
    }

    #[test]
    fn responses_are_well_formed() {
        let h = Head {
            method: "GET",
            target: "/v1/auth",
            http10: false,
            keep_alive: true,
        };
        let mut out = Vec::new();
        let name = HeaderName::from_static("x-ratelimit-remaining");
        h.write_response(&mut out, StatusCode::TOO_MANY_REQUESTS, None, |w| {
            w(&name, HeaderText::Number(7));
            w(&name, HeaderText::Text("bad\nvalue"));
        });
        let text = String::from_utf8(out).expect("ascii");
        assert!(
            text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nx-ratelimit-remaining: 7\r\n"));
        assert!(!text.contains("bad"), "invalid values are skipped: {text}");
        assert!(text.contains("\r\ncontent-length: 0\r\n"));
        assert!(text.contains("\r\ndate: "));
        assert!(text.ends_with("\r\n\r\n"));
        assert!(!text.contains("connection"));

        let head_req = Head {
            method: "HEAD",
            ..h
        };
        let mut out = Vec::new();
        head_req.write_response(
            &mut out,
            StatusCode::UNAUTHORIZED,
            Some((HTML, "<p>x</p>")),
            |_| {},
        );
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.contains("content-length: 8\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n"),
            "a HEAD reply has no body: {text}"
        );

        let h10 = Head { http10: true, ..h };
        let mut out = Vec::new();
        h10.write_response(&mut out, StatusCode::OK, Some((HTML, "<p>x</p>")), |_| {});
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("HTTP/1.0 200 OK\r\n"));
        assert!(text.contains("content-type: text/html; charset=utf-8\r\n"));
        assert!(text.contains("content-length: 8\r\n"));
        assert!(text.contains("connection: keep-alive\r\n"));
        assert!(text.ends_with("\r\n\r\n<p>x</p>"));
    }
}
