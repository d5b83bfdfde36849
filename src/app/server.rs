//! The HTTP server under `kpath serve`: accepts connections up to a cap, speaks HTTP/1 with hyper, bounds
//! how long a client may take to send a request, and drains gracefully.
//!
//! `axum::serve` offers none of these bounds, and the webhook is reachable by anyone: 50 slow senders were
//! held for as long as they liked and 3,000 idle connections stayed open. So connections are driven here:
//!
//! - **Connection cap.** At most [`Limits::max_connections`] connections are served at once; one over the
//!   cap is closed as soon as it is accepted (the client sees the connection closed, GitHub records a failed
//!   delivery that can be redelivered), so the cap costs nothing to enforce and the accept loop never waits.
//! - **Header timeout.** A request's head (request line and headers) must arrive within
//!   [`Limits::header_timeout`], counted from when the server starts waiting for it: when the connection is
//!   accepted, and on a kept-alive connection when the previous response was sent. So it is also the idle
//!   timeout: a connection that sends nothing is closed after it. Heads are at most [`MAX_HEAD`] bytes
//!   (hyper answers 431 beyond). See hyper's `http1::Builder::header_read_timeout`.
//! - **Body deadline.** Once the head is in, the request must be read and answered within
//!   [`Limits::body_timeout`] (a slow body, or a wait for room under the webhook's body-memory budget);
//!   otherwise the answer is 408 and the connection is closed.
//! - **Graceful drain.** When `shutdown` completes the listener is closed, idle connections are closed, and
//!   requests in flight finish (each is bounded by the two timeouts above).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The largest request head (request line and headers) read: GitHub's webhook heads are about 2 KB.
pub const MAX_HEAD: usize = 64 * 1024;
/// How often at most a refused connection is logged (with the count since the last line).
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(10);

/// How much a client may hold of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a request's head may take to arrive; also how long a connection may sit idle.
    pub header_timeout: Duration,
    /// How long reading a request's body and answering it may take, once its head is in.
    pub body_timeout: Duration,
    /// Connections served at once; more are closed on arrival.
    pub max_connections: usize,
}

/// GitHub.com gives up on a delivery that is not answered within 10 s
/// (<https://docs.github.com/webhooks/using-webhooks/handling-failed-webhook-deliveries>), so no genuine
/// delivery needs more than that: 5 s for the head (GitHub sends it at once) and 10 s for the body and the
/// answer. GitHub Enterprise Server waits 30 s: raise them there if deliveries over a slow link time out.
impl Default for Limits {
    fn default() -> Self {
        Limits { header_timeout: Duration::from_secs(5), body_timeout: Duration::from_secs(10), max_connections: 512 }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then drains: returns once every
/// connection has closed (at most the two timeouts later).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(middleware::from_fn_with_state(limits.body_timeout, body_deadline));
    let service = TowerToHyperService::new(app);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(MAX_HEAD).keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut refused = Refused::default();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted: wait a little
                    // rather than spin.
                    tracing::warn!("cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            refused.count(limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service.clone()));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // A header timeout, a head too large, a client gone: the connection's end, not kpath's.
                tracing::debug!("connection closed: {error}");
            }
            drop(slot);
        });
    }
    drop(listener);
    let drain = limits.header_timeout.saturating_add(limits.body_timeout).saturating_add(Duration::from_secs(1));
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {}s of draining; closed", drain.as_secs());
    }
    Ok(())
}

/// Answers 408 and closes the connection when a request is not read and answered in time.
async fn body_deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request not received in time; connection closed");
            (StatusCode::REQUEST_TIMEOUT, [(header::CONNECTION, "close")], "request timeout\n").into_response()
        }
    }
}

/// Counts connections refused over the cap, logging at most one line per [`REFUSED_LOG_EVERY`].
#[derive(Default)]
struct Refused {
    since_last_line: u64,
    last_line: Option<Instant>,
}

impl Refused {
    fn count(&mut self, cap: usize) {
        self.since_last_line += 1;
        if self.last_line.is_none_or(|at| at.elapsed() >= REFUSED_LOG_EVERY) {
            tracing::warn!(refused = self.since_last_line, cap, "connections over the cap closed");
            self.since_last_line = 0;
            self.last_line = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Mutex;

    use axum::routing::get;
    use secrecy::SecretString;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::app::events::Event;
    use crate::app::webhook::{self, Sink, WebhookState};

    const SECRET: &str = "server-test-secret";
    /// Every test finishes well within this, or fails.
    const DEADLINE: Duration = Duration::from_secs(20);

    #[derive(Default)]
    struct Events(Mutex<Vec<Event>>);

    impl Sink for Arc<Events> {
        async fn accept(
            &self,
            event: Event,
            _delivery: Option<String>,
        ) -> Result<crate::app::store::Enqueued, crate::app::store::StoreError> {
            self.0.lock().expect("lock").push(event);
            Ok(crate::app::store::Enqueued::Queued)
        }
    }

    struct Server {
        addr: SocketAddr,
        events: Arc<Events>,
        stop: Option<oneshot::Sender<()>>,
        task: JoinHandle<std::io::Result<()>>,
    }

    async fn start(limits: Limits) -> Server {
        let events = Arc::new(Events::default());
        let state = Arc::new(WebhookState::new(SecretString::from(SECRET.to_string()), events.clone()));
        let app = webhook::router("/webhook", state).route("/healthz", get(|| async { "ok\n" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app, limits, async {
            let _ = stopped.await;
        }));
        Server { addr, events, stop: Some(stop), task }
    }

    fn limits(header_ms: u64, body_ms: u64, max_connections: usize) -> Limits {
        Limits {
            header_timeout: Duration::from_millis(header_ms),
            body_timeout: Duration::from_millis(body_ms),
            max_connections,
        }
    }

    /// Runs `test` under [`DEADLINE`].
    async fn within_deadline<T>(test: impl Future<Output = T>) -> T {
        tokio::time::timeout(DEADLINE, test).await.expect("the test finished within its deadline")
    }

    /// Reads until the server closes the connection; what it sent.
    async fn read_to_close(stream: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&answer).into_owned(),
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    }

    /// A signed `pull_request.opened` webhook as raw HTTP/1.1.
    fn signed_webhook(delivery: &str) -> Vec<u8> {
        let payload = json!({
            "action": "opened",
            "number": 5,
            "repository": { "full_name": "octo/gitops" },
            "installation": { "id": 77 },
            "pull_request": { "number": 5, "state": "open", "head": { "sha": "b".repeat(40) } },
        });
        let body = serde_json::to_vec(&payload).expect("JSON");
        let mut request = format!(
            "POST /webhook HTTP/1.1\r\nHost: kpath\r\nConnection: close\r\nX-GitHub-Event: pull_request\r\n\
             X-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\n\r\n",
            webhook::sign(SECRET, &body),
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        request
    }

    /// Sends `request` on a new connection; the status line, or `None` when the connection was closed
    /// without an answer.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> Option<String> {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(request).await.ok()?;
        let answer = read_to_close(&mut stream).await;
        answer.lines().next().filter(|l| !l.is_empty()).map(str::to_string)
    }

    /// A client sending its request head a byte at a time (it would take over 10 s) is cut off after the
    /// header timeout: the connection is closed before the head is complete.
    #[tokio::test]
    async fn a_slow_sender_is_cut_off_after_the_header_timeout() {
        within_deadline(async {
            let server = start(limits(300, 300, 16)).await;
            let head = format!("POST /webhook HTTP/1.1\r\nHost: kpath\r\nX-Padding: {}\r\n\r\n", "a".repeat(500));
            let mut senders = Vec::new();
            for _ in 0..5 {
                let mut stream = TcpStream::connect(server.addr).await.expect("connects");
                let head = head.clone();
                senders.push(tokio::spawn(async move {
                    let mut sent = 0;
                    let mut buffer = [0u8; 256];
                    for byte in head.as_bytes() {
                        tokio::select! {
                            read = stream.read(&mut buffer) => {
                                if matches!(read, Ok(0) | Err(_)) {
                                    return sent;
                                }
                            }
                            () = tokio::time::sleep(Duration::from_millis(20)) => {}
                        }
                        if stream.write_all(&[*byte]).await.is_err() {
                            return sent;
                        }
                        sent += 1;
                    }
                    sent
                }));
            }
            for sender in senders {
                let sent = sender.await.expect("the sender ran");
                assert!(sent < head.len(), "the server waited for the whole head ({sent} bytes)");
            }
            assert!(server.events.0.lock().expect("lock").is_empty());
            // The server still answers.
            assert_eq!(exchange(server.addr, &signed_webhook("d-1")).await.as_deref(), Some("HTTP/1.1 202 Accepted"));
        })
        .await;
    }

    /// Connections that send nothing are closed (after the header timeout); so is a kept-alive connection
    /// after its answer.
    #[tokio::test]
    async fn idle_connections_are_closed() {
        within_deadline(async {
            let server = start(limits(300, 300, 64)).await;
            let mut idle = Vec::new();
            for _ in 0..40 {
                idle.push(TcpStream::connect(server.addr).await.expect("connects"));
            }
            for stream in &mut idle {
                assert_eq!(read_to_close(stream).await, "", "closed without an answer");
            }
            let mut kept_alive = TcpStream::connect(server.addr).await.expect("connects");
            kept_alive.write_all(b"GET /healthz HTTP/1.1\r\nHost: kpath\r\n\r\n").await.expect("sent");
            let answer = read_to_close(&mut kept_alive).await;
            assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("ok\n"), "{answer}");
        })
        .await;
    }

    /// With a cap of 4, the fifth to seventh connections are closed at once while the first four stay
    /// open; once those go, a real webhook is answered.
    #[tokio::test]
    async fn connections_over_the_cap_are_closed_and_the_server_still_answers() {
        within_deadline(async {
            let server = start(limits(15_000, 15_000, 4)).await;
            let mut held = Vec::new();
            for _ in 0..4 {
                held.push(TcpStream::connect(server.addr).await.expect("connects"));
            }
            for _ in 0..3 {
                let mut extra = TcpStream::connect(server.addr).await.expect("the kernel accepts it");
                assert_eq!(read_to_close(&mut extra).await, "", "closed at once, without an answer");
            }
            for stream in &held {
                let mut buffer = [0u8; 16];
                let still_open =
                    matches!(stream.try_read(&mut buffer), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
                assert!(still_open, "a connection within the cap was closed");
            }
            drop(held);
            // The server sees the four close in its own time: retried until a slot is free.
            let mut answer = None;
            for attempt in 0..200 {
                answer = exchange(server.addr, &signed_webhook(&format!("d-{attempt}"))).await;
                if answer.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(answer.as_deref(), Some("HTTP/1.1 202 Accepted"));
            assert_eq!(server.events.0.lock().expect("lock").len(), 1);
        })
        .await;
    }

    /// A body that stops coming is answered 408 after the body timeout, and the connection is closed.
    #[tokio::test]
    async fn a_slow_body_is_answered_408_and_closed() {
        within_deadline(async {
            let server = start(limits(5_000, 300, 16)).await;
            let mut stream = TcpStream::connect(server.addr).await.expect("connects");
            let head = "POST /webhook HTTP/1.1\r\nHost: kpath\r\nX-GitHub-Event: pull_request\r\n\
                        X-Hub-Signature-256: sha256=00\r\nContent-Length: 100000\r\n\r\n{\"action\"";
            stream.write_all(head.as_bytes()).await.expect("sent");
            let answer = read_to_close(&mut stream).await;
            assert!(answer.starts_with("HTTP/1.1 408 Request Timeout"), "{answer}");
            assert!(server.events.0.lock().expect("lock").is_empty());
        })
        .await;
    }

    /// A head over 64 KiB is refused by hyper (431) before any handler runs.
    #[tokio::test]
    async fn a_huge_head_is_refused() {
        within_deadline(async {
            let server = start(Limits::default()).await;
            let request = format!(
                "POST /webhook HTTP/1.1\r\nHost: kpath\r\nX-GitHub-Delivery: {}\r\nContent-Length: 0\r\n\r\n",
                "d".repeat(200_000)
            );
            let status = exchange(server.addr, request.as_bytes()).await;
            assert_eq!(status.as_deref(), Some("HTTP/1.1 431 Request Header Fields Too Large"));
        })
        .await;
    }

    /// Shutting down closes idle connections and returns, without waiting for their header timeout.
    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_returns() {
        within_deadline(async {
            let mut server = start(limits(60_000, 60_000, 16)).await;
            let mut idle = TcpStream::connect(server.addr).await.expect("connects");
            let mut answered = TcpStream::connect(server.addr).await.expect("connects");
            answered.write_all(b"GET /healthz HTTP/1.1\r\nHost: kpath\r\n\r\n").await.expect("sent");
            let mut buffer = [0u8; 256];
            let n = answered.read(&mut buffer).await.expect("answered");
            assert!(buffer[..n].starts_with(b"HTTP/1.1 200 OK"));
            if let Some(stop) = server.stop.take() {
                let _ = stop.send(());
            }
            server.task.await.expect("the server task").expect("served");
            assert_eq!(read_to_close(&mut idle).await, "");
            assert_eq!(read_to_close(&mut answered).await, "");
            assert!(TcpStream::connect(server.addr).await.is_err(), "the listener is closed");
        })
        .await;
    }
}
