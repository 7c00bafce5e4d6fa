//! The HTTP server loop under the axum router: our own accept loop on hyper's
//! HTTP/1 connections, so that what one client can hold is bounded.
//!
//! - At most `max_connections` connections are served at once. When all are
//!   taken and someone new connects, the connection that has waited longest
//!   without a request in flight (a head that never came, an idle
//!   keep-alive) is closed to make room, so a flood of slow clients cannot
//!   lock out a well-behaved one. When every connection has a request in
//!   flight, the new one waits for a slot.
//! - Header timeout: from accept (or, on a keep-alive connection, from the
//!   first byte of the next request) to the end of the request head.
//! - Body timeout: from the end of the head to the end of the body, however
//!   the bytes trickle in (a total, not a gap between reads); past it the
//!   body reads fail and the handler answers 408 `body_timeout`.
//! - Idle timeout: a keep-alive connection with no request in flight.
//! - Write timeout: a response (an event stream to a client that stopped
//!   reading) whose socket has not accepted a byte for that long ends its
//!   connection. hyper itself stops pulling the response body once its write
//!   buffer holds `MAX_BUF` bytes, so nothing queues without limit meanwhile.
//!
//! One watchdog per connection keeps the three connection timers; the I/O
//! wrapper and the request hooks only store timestamps in atomics.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};

use crate::config::Limits;

/// The longest request head (431 beyond it).
const MAX_HEAD: usize = 64 * 1024;
/// hyper's read and write buffer cap: what a response may queue in memory
/// before hyper waits on the socket. Above the largest list response (about
/// 175 kB at 200 containers): a body larger than the cap is written in a
/// much slower way (measured: 2,300 instead of 3,700 req/s with a 64 KiB cap).
const MAX_BUF: usize = 256 * 1024;

/// Serves `router` on `listener` until `stop` turns true; then stops
/// accepting, lets each connection finish its in-flight request, and returns
/// when all are closed (the caller bounds that wait).
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, mut stop: watch::Receiver<bool>) {
    let max = limits.max_connections;
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(max));
    let open: Arc<std::sync::Mutex<HashMap<u64, Arc<ConnState>>>> = Arc::default();
    let mut next_id = 0u64;
    let mut warned_full = false;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (tcp, addr) = match accepted {
            Ok(c) => c,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::error!(error = %e, "accept failed; retrying in 1 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !warned_full {
                    tracing::warn!(
                        max_connections = max,
                        "connection limit reached; closing the longest-waiting idle connections"
                    );
                    warned_full = true;
                }
                if let Some(victim) = longest_waiting(&open.lock().unwrap_or_else(|e| e.into_inner())) {
                    victim.evict.notify_one();
                }
                tokio::select! {
                    p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        };
        if slots.available_permits() > max / 2 {
            warned_full = false;
        }
        let state = Arc::new(ConnState::new());
        next_id += 1;
        let id = next_id;
        open.lock().unwrap_or_else(|e| e.into_inner()).insert(id, state.clone());
        let conn = serve_connection(tcp, addr, router.clone(), limits.clone(), stop.clone(), state);
        let open = open.clone();
        tokio::spawn(async move {
            conn.await;
            open.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            drop(permit);
        });
    }
    drop(listener);
    // Every slot back means every connection closed.
    let _ = slots.acquire_many(max as u32).await;
}

/// The open connection with no request in flight that has waited longest
/// (for a head that does not come, or idle between requests).
fn longest_waiting(open: &HashMap<u64, Arc<ConnState>>) -> Option<Arc<ConnState>> {
    open.values().filter_map(|s| s.waiting_since().map(|at| (at, s))).min_by_key(|(at, _)| *at).map(|(_, s)| s.clone())
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// Why the watchdog ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    HeaderTimeout,
    Idle,
    WriteStalled,
}

/// A connection's timestamps, in milliseconds since it was accepted, plus
/// one; 0 means "not now".
struct ConnState {
    base: Instant,
    /// Requests whose response has not finished.
    active: AtomicUsize,
    /// When the bytes of a request head began to arrive (the connection
    /// starts in this state: a new connection owes us a head).
    head_since: AtomicU64,
    /// When the last response finished.
    idle_since: AtomicU64,
    /// When a write first found the socket full, until one gets through.
    write_blocked_since: AtomicU64,
    /// Told to close: the table is full and this one waited longest.
    evict: tokio::sync::Notify,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            base: Instant::now(),
            active: AtomicUsize::new(0),
            head_since: AtomicU64::new(1),
            idle_since: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            evict: tokio::sync::Notify::new(),
        }
    }

    /// Since when it has been waiting with no request in flight, if it is.
    fn waiting_since(&self) -> Option<Instant> {
        if self.active.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let since = match self.head_since.load(Ordering::SeqCst) {
            0 => self.idle_since.load(Ordering::SeqCst),
            head => head,
        };
        (since != 0).then(|| self.base + Duration::from_millis(since - 1))
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + 1
    }

    fn request_started(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        self.head_since.store(0, Ordering::SeqCst);
        ActiveGuard(self.clone())
    }

    /// Bytes came in. With no request in flight they begin the next head.
    /// (Bytes of a pipelined request read while one is in flight do not
    /// start its clock: that one is then bounded by the idle timeout.)
    fn read_some(&self) {
        if self.active.load(Ordering::SeqCst) == 0 && self.head_since.load(Ordering::SeqCst) == 0 {
            self.head_since.store(self.now(), Ordering::SeqCst);
        }
    }

    fn write_pending(&self) {
        if self.write_blocked_since.load(Ordering::Relaxed) == 0 {
            self.write_blocked_since.store(self.now(), Ordering::Relaxed);
        }
    }

    fn wrote_some(&self) {
        self.write_blocked_since.store(0, Ordering::Relaxed);
    }

    /// `Err` when a limit is past; else the time to look again: the nearest
    /// running deadline, and never later than the shortest timeout from now
    /// (a condition that starts after now cannot expire before that).
    fn check(&self, limits: &Limits) -> Result<Instant, Close> {
        let now = self.now();
        let ms = |d: Duration| d.as_millis() as u64;
        let shortest =
            [limits.header_timeout, limits.idle_timeout, limits.write_timeout].into_iter().min().unwrap_or_default();
        let mut next = now + ms(shortest);
        let mut deadline = |since: u64, limit: Duration, close: Close| -> Result<(), Close> {
            let at = since + ms(limit);
            if now >= at {
                return Err(close);
            }
            next = next.min(at);
            Ok(())
        };
        let blocked = self.write_blocked_since.load(Ordering::Relaxed);
        if blocked != 0 {
            deadline(blocked, limits.write_timeout, Close::WriteStalled)?;
        }
        if self.active.load(Ordering::SeqCst) == 0 {
            let head = self.head_since.load(Ordering::SeqCst);
            if head != 0 {
                deadline(head, limits.header_timeout, Close::HeaderTimeout)?;
            } else {
                deadline(self.idle_since.load(Ordering::SeqCst), limits.idle_timeout, Close::Idle)?;
            }
        }
        Ok(self.base + Duration::from_millis(next - 1))
    }
}

/// Held from the request's arrival until its response body is finished or
/// dropped: the connection is not idle meanwhile.
struct ActiveGuard(Arc<ConnState>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let s = &self.0;
        s.idle_since.store(s.now(), Ordering::SeqCst);
        s.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves one connection with the limits; returns when it is closed.
async fn serve_connection<I>(
    io: I,
    addr: SocketAddr,
    router: Router,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<bool>,
    state: Arc<ConnState>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Watched { inner: io, state: state.clone() });
    let service_state = state.clone();
    let body_timeout = limits.body_timeout;
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let guard = service_state.request_started();
        let mut req = req.map(|body| Body::new(DeadlineBody::new(body, body_timeout)));
        req.extensions_mut().insert(ConnectInfo(addr));
        let call = tower::ServiceExt::oneshot(router.clone(), req);
        async move {
            let resp = match call.await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(resp.map(|body| Tracked { inner: body, _guard: guard }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our watchdog keeps the header timeout (hyper's would also close idle
    // keep-alive connections after it).
    builder.header_read_timeout(None).keep_alive(true).max_buf_size(MAX_BUF).max_header_size(MAX_HEAD);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);

    let mut draining = false;
    loop {
        let wake = match state.check(&limits) {
            Ok(at) => at,
            Err(Close::Idle) if !draining => {
                // Closes at once when idle; else after the request that just came in.
                conn.as_mut().graceful_shutdown();
                draining = true;
                continue;
            }
            Err(Close::Idle) => Instant::now() + Duration::from_secs(1),
            Err(reason) => {
                tracing::debug!(%addr, ?reason, "closing connection");
                return;
            }
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%addr, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|s| *s), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = tokio::time::sleep_until(wake) => {}
            _ = state.evict.notified() => {
                tracing::debug!(%addr, "closing a waiting connection to make room for a new one");
                return;
            }
        }
    }
}

/// The socket, reporting reads and blocked writes to the watchdog.
struct Watched<I> {
    inner: I,
    state: Arc<ConnState>,
}

impl<I> Watched<I> {
    fn on_write(&self, r: Poll<std::io::Result<usize>>) -> Poll<std::io::Result<usize>> {
        match &r {
            Poll::Pending => self.state.write_pending(),
            Poll::Ready(Ok(n)) if *n > 0 => self.state.wrote_some(),
            _ => {}
        }
        r
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.state.read_some();
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.on_write(r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.on_write(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The request body did not arrive within the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {}", humantime::format_duration(*.0))]
pub struct BodyTimeout(pub Duration);

impl BodyTimeout {
    /// Is this error (or one it wraps) a body timeout?
    pub fn is_cause_of(e: &(dyn std::error::Error + 'static)) -> bool {
        let mut cur = Some(e);
        while let Some(e) = cur {
            if e.is::<BodyTimeout>() {
                return true;
            }
            cur = e.source();
        }
        false
    }
}

/// A request body that fails once `limit` has passed since the request head
/// arrived. The timer is only created if the body is read before it ends.
struct DeadlineBody {
    inner: Incoming,
    arrived: Instant,
    limit: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration) -> DeadlineBody {
        DeadlineBody { inner, arrived: Instant::now(), limit, deadline: None }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let (arrived, limit) = (this.arrived, this.limit);
        let deadline = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(arrived + limit)));
        ready!(deadline.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyTimeout(limit)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted as in flight.
struct Tracked {
    inner: Body,
    _guard: ActiveGuard,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use futures_util::stream;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits(write: Duration) -> Arc<Limits> {
        Arc::new(Limits {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            write_timeout: write,
            ..Limits::default()
        })
    }

    /// An endless response to a client that never reads: the connection
    /// ends after the write timeout, having buffered a bounded amount.
    #[tokio::test]
    async fn a_client_that_stops_reading_is_dropped() {
        let produced = Arc::new(AtomicUsize::new(0));
        let counter = produced.clone();
        let router = Router::new().route(
            "/stream",
            get(move || {
                let counter = counter.clone();
                let chunks = stream::repeat_with(move || {
                    counter.fetch_add(1024, Ordering::Relaxed);
                    Ok::<_, Infallible>(Bytes::from(vec![b'x'; 1024]))
                });
                async move { Body::from_stream(chunks) }
            }),
        );
        let (mut client, server) = tokio::io::duplex(4096);
        let (_stop_tx, stop) = watch::channel(false);
        let started = std::time::Instant::now();
        let conn = tokio::spawn(serve_connection(
            server,
            "127.0.0.1:1".parse().unwrap(),
            router,
            limits(Duration::from_secs(1)),
            stop,
            Arc::new(ConnState::new()),
        ));
        client.write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), conn).await.expect("dropped within the bound").unwrap();
        assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
        let n = produced.load(Ordering::Relaxed);
        assert!(n <= 2 * MAX_BUF + 64 * 1024, "buffered {n} bytes for a client that reads nothing");
        // What was written is readable, then EOF.
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.starts_with(b"HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn watchdog_deadlines() {
        let l = Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            ..Limits::default()
        };
        let s = Arc::new(ConnState::new());
        // A new connection owes a head within 10 s.
        let at = s.check(&l).unwrap();
        assert!(at <= s.base + Duration::from_secs(10));
        let g = s.request_started();
        assert!(s.check(&l).is_ok());
        drop(g);
        // Idle now: the header clock is off until a byte comes.
        assert_eq!(s.head_since.load(Ordering::SeqCst), 0);
        assert!(s.idle_since.load(Ordering::SeqCst) > 0);
        s.read_some();
        assert!(s.head_since.load(Ordering::SeqCst) > 0);
    }
}
