//! The accept loop and per-connection guards, in place of poem's `Server`, which has no
//! header-read or write timeout, no connection cap, and retries a failing `accept` in a tight
//! loop (at the open-file limit it burns a core and serves no one).
//!
//! Each connection is served by hyper (HTTP/1.1, and HTTP/2 with prior knowledge) over a
//! [`Guarded`] stream that enforces the timeouts, and holds one permit of the connection cap
//! for as long as it lives.

use std::{
    collections::VecDeque,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures_util::task::AtomicWaker;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use poem::{Addr, Endpoint, Request, Response, http::uri::Scheme, web::RemoteAddr};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    time::{Instant, Sleep},
};

/// Connection limits and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's head (request line and headers), from
    /// its first byte, or from the connection's start for the first request. Slowloris
    /// clients are cut off here.
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may sit idle after a response before it is closed.
    pub idle_timeout: Duration,
    /// How long a response write may make no progress (a client that never reads).
    pub write_timeout: Duration,
    /// Most connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

/// File descriptors kept free for the database, mail and other work when the connection cap is
/// derived from the open-file limit.
const RESERVED_FDS: u64 = 32;

impl ConnectionLimits {
    /// The default cap: the soft open-file limit less a reserve, at least 8.
    pub fn default_max_connections() -> usize {
        let soft = open_file_limit().unwrap_or(1024);
        soft.saturating_sub(RESERVED_FDS).clamp(8, 1 << 20) as usize
    }
}

/// The soft `RLIMIT_NOFILE`, when the platform tells it.
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct we pass, which lives for the call.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// How long in-flight connections get to finish after the shutdown signal.
const GRACE: Duration = Duration::from_secs(30);
/// The most an accept error backs off, and how often such errors are logged at most.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(10);
const CAP_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Serves `ep` on `listener` until `shutdown` completes, then lets open connections finish
/// their requests (up to 30 s) and returns.
pub async fn serve<E>(
    listener: TcpListener,
    ep: E,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    E: Endpoint<Output = Response> + 'static,
{
    let ep = Arc::new(ep);
    let local = listener.local_addr()?;
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut backoff = Duration::ZERO;
    let mut accept_errors = 0u64;
    let mut last_accept_log: Option<Instant> = None;
    let mut last_cap_log: Option<Instant> = None;
    tokio::pin!(shutdown);
    let fresh = Arc::new(FreshConnections::default());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                accept_errors += 1;
                // Out of descriptors or memory: back off instead of spinning on the same error.
                // Per-connection errors (a reset before accept) are retried at once.
                if is_resource_error(&e) {
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                }
                if last_accept_log.is_none_or(|t| t.elapsed() >= ACCEPT_LOG_INTERVAL) {
                    tracing::warn!(error = %e, errors = accept_errors, backoff_ms = backoff.as_millis() as u64, "accepting connections fails; backing off");
                    last_accept_log = Some(Instant::now());
                    accept_errors = 0;
                }
                if !backoff.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = &mut shutdown => break,
                    }
                }
                continue;
            }
        };
        backoff = Duration::ZERO;
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if last_cap_log.is_none_or(|t| t.elapsed() >= CAP_LOG_INTERVAL) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached; closing connections that never sent a request, others wait (raise --max-connections or the open-file limit)"
                    );
                    last_cap_log = Some(Instant::now());
                }
                // A connection that has not sent a byte loses its place to one that is here
                // now (as nginx reuses idle connections); with none, the newcomer waits.
                fresh.shed_oldest();
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let state = fresh.register(limits.max_connections);
        tokio::spawn(serve_connection(
            stream,
            local,
            remote,
            ep.clone(),
            limits,
            ConnectionSlot {
                _permit: permit,
                state,
            },
            stop_rx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit: when all are back, every connection has closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(GRACE, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period are dropped");
    }
    Ok(())
}

fn is_resource_error(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        true
    }
}

async fn serve_connection<E>(
    stream: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
    ep: Arc<E>,
    limits: ConnectionLimits,
    slot: ConnectionSlot,
    mut stop: watch::Receiver<bool>,
) where
    E: Endpoint<Output = Response> + 'static,
{
    let io = TokioIo::new(Guarded::new(stream, limits, slot));
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let ep = ep.clone();
        async move {
            let req = Request::from((
                req,
                poem::web::LocalAddr(Addr::SocketAddr(local)),
                RemoteAddr(Addr::SocketAddr(remote)),
                Scheme::HTTP,
            ));
            let resp: hyper::Response<_> = ep.get_response(req).await.into();
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, %remote, "connection ended with an error");
            }
            return;
        }
        _ = stop.wait_for(|s| *s) => {}
    }
    // Shutting down: finish the request in flight, then close.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// What a connection holds while it lives: its place under the cap, and the flag that lets
/// the accept loop close it while it has not sent anything.
struct ConnectionSlot {
    /// Returned to the cap when the connection is dropped.
    _permit: OwnedSemaphorePermit,
    state: Arc<FreshState>,
}

/// A connection's "never sent a byte" state, shared with the accept loop.
#[derive(Default)]
struct FreshState {
    /// True until the first byte arrives.
    fresh: AtomicBool,
    /// Set by the accept loop: close now if still fresh.
    shed: AtomicBool,
    waker: AtomicWaker,
}

/// Connections in accept order, for shedding the oldest one that never sent a request.
#[derive(Default)]
struct FreshConnections {
    list: Mutex<VecDeque<Weak<FreshState>>>,
}

impl FreshConnections {
    fn register(&self, max: usize) -> Arc<FreshState> {
        let state = Arc::new(FreshState::default());
        state.fresh.store(true, Ordering::Release);
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        if list.len() >= max.saturating_mul(2).max(64) {
            list.retain(|w| w.upgrade().is_some_and(|s| s.fresh.load(Ordering::Acquire)));
        }
        list.push_back(Arc::downgrade(&state));
        state
    }

    /// Closes the oldest live connection that has not sent a byte; false if there is none.
    fn shed_oldest(&self) -> bool {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(weak) = list.pop_front() {
            if let Some(state) = weak.upgrade()
                && state.fresh.load(Ordering::Acquire)
            {
                state.shed.store(true, Ordering::Release);
                state.waker.wake();
                return true;
            }
        }
        false
    }
}

/// Where a connection is in the request/response cycle, as far as the bytes show.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request's first byte; `since` the connection opened or the last
    /// response byte was written.
    Waiting { since: Instant, first: bool },
    /// A request's head has begun at `since` and its blank line has not arrived.
    InHead { since: Instant, tail: [u8; 3] },
    /// The head is complete: the handler runs and the body (if any) is read.
    Handling,
}

/// A TCP stream that enforces the header-read, idle and write timeouts of
/// [`ConnectionLimits`], and holds the connection's permit.
struct Guarded {
    inner: TcpStream,
    limits: ConnectionLimits,
    phase: Phase,
    /// HTTP/2 (prior knowledge): frames carry no text heads, so only idleness is timed.
    h2: Option<bool>,
    /// How many of the first bytes matched the HTTP/2 preface, until they show whether this
    /// is one: a client that sends one byte at a time must not pass for HTTP/2 and escape the
    /// header timeout.
    preface_matched: usize,
    last_write: Option<Instant>,
    last_read: Instant,
    read_timer: Pin<Box<Sleep>>,
    write_stalled_since: Option<Instant>,
    write_timer: Pin<Box<Sleep>>,
    slot: ConnectionSlot,
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl Guarded {
    fn new(inner: TcpStream, limits: ConnectionLimits, slot: ConnectionSlot) -> Self {
        let now = Instant::now();
        Self {
            inner,
            limits,
            phase: Phase::Waiting {
                since: now,
                first: true,
            },
            h2: None,
            preface_matched: 0,
            last_write: None,
            last_read: now,
            read_timer: Box::pin(tokio::time::sleep_until(now)),
            write_stalled_since: None,
            write_timer: Box::pin(tokio::time::sleep_until(now)),
            slot,
        }
    }

    /// When a pending read gives up, and why.
    fn read_deadline(&self) -> Option<(Instant, &'static str)> {
        let l = &self.limits;
        if self.h2 == Some(true) {
            let since = match (self.phase, self.last_write) {
                (Phase::Waiting { since, .. }, Some(w)) => since.max(w),
                (Phase::Waiting { since, .. }, None) => since,
                _ => return None,
            };
            return Some((since + l.idle_timeout, "idle timeout"));
        }
        match self.phase {
            // A new connection must start its request within the header timeout.
            Phase::Waiting { since, first: true } => {
                Some((since + l.header_read_timeout, "header read timeout"))
            }
            Phase::Waiting {
                since,
                first: false,
            } => Some((since + l.idle_timeout, "idle timeout")),
            Phase::InHead { since, .. } => {
                Some((since + l.header_read_timeout, "header read timeout"))
            }
            // After the response, waiting for the next request is idleness; before it, a body
            // that stops arriving is too.
            Phase::Handling => Some(match self.last_write {
                Some(w) => (w + l.idle_timeout, "idle timeout"),
                None => (self.last_read + l.idle_timeout, "body read timeout"),
            }),
        }
    }

    fn on_read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let now = Instant::now();
        self.last_read = now;
        self.slot.state.fresh.store(false, Ordering::Release);
        if self.h2.is_none() {
            let rest = &H2_PREFACE[self.preface_matched..];
            let n = bytes.len().min(rest.len());
            if bytes[..n] != rest[..n] {
                self.h2 = Some(false);
            } else {
                self.preface_matched += n;
                if self.preface_matched == H2_PREFACE.len() {
                    self.h2 = Some(true);
                }
            }
        }
        if self.h2 == Some(true) {
            self.phase = Phase::Waiting {
                since: now,
                first: false,
            };
            return;
        }
        let tail = match self.phase {
            Phase::Waiting { .. } => [0; 3],
            Phase::InHead { tail, .. } => tail,
            // Bytes after a response has been written start the next request; bytes before
            // it are the body of the current one.
            Phase::Handling if self.last_write.is_some() => [0; 3],
            Phase::Handling => return,
        };
        let since = match self.phase {
            Phase::InHead { since, .. } => since,
            _ => now,
        };
        self.last_write = None;
        if ends_head(tail, bytes) {
            self.phase = Phase::Handling;
        } else {
            self.phase = Phase::InHead {
                since,
                tail: last_three(tail, bytes),
            };
        }
    }

    fn on_write(&mut self) {
        let now = Instant::now();
        self.last_write = Some(now);
        self.write_stalled_since = None;
        if self.h2 == Some(true) {
            self.phase = Phase::Waiting {
                since: now,
                first: false,
            };
        }
    }

    /// Records a write's progress; a pending one starts (or checks) the write timeout.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                self.on_write();
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_write_stall(cx),
        }
    }

    /// A pending write that has made no progress for the write timeout fails the connection.
    fn poll_write_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let now = Instant::now();
        let since = *self.write_stalled_since.get_or_insert(now);
        let deadline = since + self.limits.write_timeout;
        if now >= deadline {
            return Poll::Ready(Err(timed_out("write timeout")));
        }
        if self.write_timer.deadline() != deadline {
            self.write_timer.as_mut().reset(deadline);
        }
        if self.write_timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(timed_out("write timeout")));
        }
        Poll::Pending
    }
}

/// Whether the blank line that ends a request head (`\r\n\r\n`) lies in `bytes`, or across
/// the three bytes read before them (`tail`). No allocation: this runs on every read.
fn ends_head(tail: [u8; 3], bytes: &[u8]) -> bool {
    const END: &[u8; 4] = b"\r\n\r\n";
    // Windows that start in the tail: 3, 2 or 1 of its bytes, then the rest from `bytes`.
    let across = (1..=3).any(|from_tail| {
        let need = 4 - from_tail;
        bytes.len() >= need
            && tail[3 - from_tail..] == END[..from_tail]
            && bytes[..need] == END[from_tail..]
    });
    across || bytes.windows(4).any(|w| w == END)
}

/// The last three bytes of `tail` followed by `bytes`.
fn last_three(tail: [u8; 3], bytes: &[u8]) -> [u8; 3] {
    let mut out = tail;
    for &b in bytes.iter().rev().take(3).rev() {
        out = [out[1], out[2], b];
    }
    out
}

fn timed_out(what: &'static str) -> io::Error {
    tracing::debug!("closing a connection: {what}");
    io::Error::new(io::ErrorKind::TimedOut, what)
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.on_read(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let state = &this.slot.state;
                if state.fresh.load(Ordering::Acquire) {
                    state.waker.register(cx.waker());
                    if state.shed.load(Ordering::Acquire) {
                        return Poll::Ready(Err(timed_out(
                            "closed at the connection limit before sending a request",
                        )));
                    }
                }
                let Some((deadline, what)) = this.read_deadline() else {
                    return Poll::Pending;
                };
                if Instant::now() >= deadline {
                    return Poll::Ready(Err(timed_out(what)));
                }
                if this.read_timer.deadline() != deadline {
                    this.read_timer.as_mut().reset(deadline);
                }
                if this.read_timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(timed_out(what)));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
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
    use super::{ends_head, last_three};

    /// Feeds `input` in pieces of every size and checks the head end is found exactly when a
    /// whole-buffer search finds it.
    #[test]
    fn the_end_of_a_head_is_found_across_any_split() {
        for input in [
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\n",
            b"\r\n\r\n",
            b"a\r\nb\r\n\rc\n\r\n",
        ] {
            let expected = input.windows(4).any(|w| w == b"\r\n\r\n");
            for piece in 1..=input.len() {
                let (mut tail, mut found) = ([0u8; 3], false);
                for chunk in input.chunks(piece) {
                    found |= ends_head(tail, chunk);
                    tail = last_three(tail, chunk);
                }
                assert_eq!(found, expected, "{input:?} in pieces of {piece}");
            }
        }
    }
}
