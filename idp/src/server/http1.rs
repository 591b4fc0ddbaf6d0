//! The connections behind [`serve_until`](super::serve_until): hyper's
//! HTTP/1.1 — the only protocol ever served here (axum's `http2` feature is
//! off; TLS and HTTP/2 end at the proxy) — and event streams carried off
//! their connection (issue 16: 10,000 browsers waiting on scan-to-login in
//! ≤ 100 MiB).
//!
//! hyper gives every open connection an 8 KiB read buffer and an 8 KiB write
//! buffer, and its state, for as long as it is open. A scan-to-login page
//! holds its event stream (`/scan/events`) open for minutes and is sent a
//! few bytes a minute; kept on a connection, that was most of the ≈ 25 KiB
//! each waiting browser cost. So once the router (every layer included) has
//! answered a GET with `text/event-stream`, the stream takes the socket:
//! a small task of its own writes the head hyper would have written
//! (`Transfer-Encoding: chunked`) and each event as a chunk, and notices the
//! browser leaving, while hyper's side of the connection ends. The head says
//! `Connection: close`, so the browser opens a new connection for what
//! follows, as it does when an event stream ends.
//!
//! Graceful shutdown is what axum's `serve` did: the listener closes, each
//! connection finishes its request in flight and closes, event streams end
//! (their bodies stop at the shutdown token, see `request_context`), and
//! [`serve_connections`] returns once every connection and stream is gone.
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request, Response, Version, header};
use futures_util::StreamExt;
use hyper::body::Incoming;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Accepts connections until `shutdown`, then drains: returns when every
/// connection and every carried event stream has ended.
pub(super) async fn serve_connections(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    // Each connection and each carried stream holds a receiver; the sender
    // sees `closed` when the last of them is gone.
    let (drained, open) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                tokio::spawn(connection(tcp, peer, app.clone(), shutdown.clone(), open.clone()));
            }
            Err(e) => accept_failed(e).await,
        }
    }
    drop(listener);
    drop(open);
    drained.closed().await;
}

/// As axum's `serve`: a connection reset before it was accepted is the
/// peer's affair; anything else (out of file descriptors) is logged and
/// retried a second later rather than spun on.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        return;
    }
    tracing::error!("accepting a connection failed: {e}");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    shutdown: CancellationToken,
    open: watch::Receiver<()>,
) {
    let socket = Socket::new(tcp);
    let io = hyper_util::rt::TokioIo::new(socket.clone());
    let service = hyper::service::service_fn(move |req| respond(req, peer, app.clone(), socket.clone(), open.clone()));
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("connection from {peer} ended: {e}");
    }
}

/// One request through the router, with the peer's address where handlers
/// read it (`ConnectInfo`); an event stream answering a GET leaves the
/// connection here (see the module documentation).
async fn respond(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    mut app: Router,
    socket: Socket,
    open: watch::Receiver<()>,
) -> Result<Response<Body>, Infallible> {
    use tower_service::Service;
    req.extensions_mut().insert(ConnectInfo(peer));
    // HTTP/1.0 has no chunked coding; HEAD has no body to carry.
    let may_carry = req.method() == Method::GET && req.version() == Version::HTTP_11;
    std::future::poll_fn(|cx| Service::<Request<Incoming>>::poll_ready(&mut app, cx)).await?;
    let res = app.call(req).await?;
    if may_carry
        && is_event_stream(&res)
        && let Some(tcp) = socket.take_if_flushed()
    {
        tokio::spawn(carry(tcp, res, open));
        return Ok(handed_off());
    }
    Ok(res)
}

/// Whether a response is a Server-Sent Events stream (open for as long as
/// the page waits).
pub(super) fn is_event_stream(res: &Response<Body>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// What hyper is given in place of a carried stream. It reaches no one (the
/// socket is gone); `Connection: close` ends hyper's side of the connection.
fn handed_off() -> Response<Body> {
    let mut res = Response::new(Body::empty());
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Writes a carried event stream to its browser: the head, each event as
/// one chunk, the last chunk when the stream ends (a final phase, or
/// shutdown), then closes. Ends at once when the browser goes away, which
/// drops the stream and with it the ticket's waiter. Holds `_open` so the
/// shutdown drain waits for it.
async fn carry(mut tcp: TcpStream, res: Response<Body>, _open: watch::Receiver<()>) {
    let (parts, body) = res.into_parts();
    if tcp.write_all(&head(parts)).await.is_err() {
        return;
    }
    let mut events = body.into_data_stream();
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            gone = went_away(&tcp) => if gone { return } else { continue },
        };
        match event {
            Some(Ok(data)) if data.is_empty() => {}
            Some(Ok(data)) => {
                if tcp.write_all(&chunk(&data)).await.is_err() {
                    return;
                }
            }
            Some(Err(e)) => {
                tracing::debug!("event stream to a browser failed: {e}");
                break;
            }
            None => break,
        }
    }
    let _ = tcp.write_all(b"0\r\n\r\n").await;
    let _ = tcp.shutdown().await;
}

/// Whether the browser closed its side. It has nothing to send on a stream
/// it was told ends the connection; whatever it sends anyway is dropped.
async fn went_away(tcp: &TcpStream) -> bool {
    // `poll_read_ready`, not `readable`: it takes the socket's one reader
    // slot, which still held the waker of hyper's finished connection task —
    // and with it that task's whole allocation (≈ 1 KiB a stream).
    if std::future::poll_fn(|cx| tcp.poll_read_ready(cx)).await.is_err() {
        return true;
    }
    let mut scratch = [0u8; 64];
    match tcp.try_read(&mut scratch) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

/// The response head as hyper writes it (RFC 9112 §4–6), framed for a
/// stream: chunked, and the connection closes after it.
fn head(parts: axum::http::response::Parts) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let framing = [header::CONNECTION, header::CONTENT_LENGTH, header::TRANSFER_ENCODING];
    for (name, value) in &parts.headers {
        if framing.contains(name) || name.as_str() == "keep-alive" {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(header::DATE) {
        // RFC 9110 §6.6.1: an origin server with a clock sends Date (transport time, not the rules' clock).
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT");
        out.extend_from_slice(format!("date: {date}\r\n").as_bytes());
    }
    out.extend_from_slice(b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n");
    out
}

/// One chunk of the chunked coding (RFC 9112 §7.1).
fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// A connection's TCP stream, shared by hyper and the request it is serving
/// so that an event stream can take it away.
#[derive(Clone)]
struct Socket(Arc<Mutex<Wire>>);

struct Wire {
    /// `None` once an event stream took it: hyper then reads end of file
    /// and its writes go nowhere.
    tcp: Option<TcpStream>,
    /// Everything hyper wrote has been flushed: no earlier response on this
    /// connection is still in hyper's buffer (only a pipelining client could
    /// leave one there; its stream then stays with hyper).
    flushed: bool,
}

impl Socket {
    fn new(tcp: TcpStream) -> Self {
        Self(Arc::new(Mutex::new(Wire { tcp: Some(tcp), flushed: true })))
    }

    fn wire(&self) -> MutexGuard<'_, Wire> {
        // Held for one non-blocking call at a time; a poisoned lock still guards a whole stream.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_if_flushed(&self) -> Option<TcpStream> {
        let mut wire = self.wire();
        if wire.flushed { wire.tcp.take() } else { None }
    }
}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.wire().tcp.as_mut() {
            Some(tcp) => Pin::new(tcp).poll_read(cx, buf),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut wire = self.wire();
        let Wire { tcp, flushed } = &mut *wire;
        match tcp.as_mut() {
            Some(tcp) => {
                *flushed = false;
                Pin::new(tcp).poll_write(cx, buf)
            }
            None => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut wire = self.wire();
        let Wire { tcp, flushed } = &mut *wire;
        match tcp.as_mut() {
            Some(tcp) => {
                *flushed = false;
                Pin::new(tcp).poll_write_vectored(cx, bufs)
            }
            None => Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum())),
        }
    }

    /// As the TCP stream: hyper then queues body chunks instead of copying
    /// them into its write buffer (which would keep the largest size).
    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut wire = self.wire();
        let Wire { tcp, flushed } = &mut *wire;
        match tcp.as_mut() {
            Some(tcp) => {
                let done = Pin::new(tcp).poll_flush(cx);
                *flushed = matches!(done, Poll::Ready(Ok(())));
                done
            }
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.wire().tcp.as_mut() {
            Some(tcp) => Pin::new(tcp).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::sse::{Event, Sse};
    use axum::routing::get;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    /// An event stream that says `hello`, then waits; `dropped` fires when
    /// the server lets go of it.
    fn app(dropped: Arc<tokio::sync::Notify>) -> Router {
        struct Guard(Arc<tokio::sync::Notify>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.notify_one();
            }
        }
        let events = move || {
            let guard = Guard(dropped.clone());
            async move {
                let hello = futures_util::stream::once(async { Ok::<_, Infallible>(Event::default().data("hello")) });
                let wait = futures_util::stream::pending().map(move |e| {
                    let _ = &guard;
                    e
                });
                Sse::new(hello.chain(wait))
            }
        };
        Router::new().route("/events", get(events)).route("/plain", get(|| async { "plain" }))
    }

    async fn start(app: Router) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let served = tokio::spawn(serve_connections(listener, app, shutdown.clone()));
        (addr, shutdown, served)
    }

    async fn read_until(tcp: &mut TcpStream, seen: &mut String, needle: &str) {
        let mut buf = [0u8; 1024];
        while !seen.contains(needle) {
            let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0, "closed before {needle:?}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    #[tokio::test]
    async fn an_event_stream_leaves_its_connection_and_ends_with_the_browser() {
        let dropped = Arc::new(tokio::sync::Notify::new());
        let (addr, shutdown, served) = start(app(dropped.clone())).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        // A page first, then the stream on the same kept-alive connection.
        tcp.write_all(b"GET /plain HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut seen = String::new();
        read_until(&mut tcp, &mut seen, "plain").await;
        tcp.write_all(b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut seen = String::new();
        read_until(&mut tcp, &mut seen, "data: hello\n\n\r\n").await;
        assert!(seen.starts_with("HTTP/1.1 200 OK\r\n"), "{seen}");
        assert!(seen.contains("content-type: text/event-stream\r\n"), "{seen}");
        assert!(seen.contains("transfer-encoding: chunked\r\nconnection: close\r\n\r\n"), "{seen}");
        assert!(seen.contains("\r\ndate: "), "{seen}");
        // The browser leaves: the stream is dropped at once.
        drop(tcp);
        tokio::time::timeout(Duration::from_secs(5), dropped.notified()).await.unwrap();
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), served).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn the_drain_waits_for_carried_streams() {
        let (addr, shutdown, served) = start(app(Arc::default())).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        read_until(&mut tcp, &mut String::new(), "hello").await;
        shutdown.cancel();
        // This stream does not end by itself (the real ones stop at the
        // token): the server waits for it, and is done once it goes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!served.is_finished());
        assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
        drop(tcp);
        tokio::time::timeout(Duration::from_secs(5), served).await.unwrap().unwrap();
    }
}
