//! The webhook endpoint: limit the body, verify `X-Hub-Signature-256` on the raw bytes in constant
//! time before anything is parsed, drop redeliveries, turn the events kpath acts on into jobs, and
//! answer at once (the work is queued). Unknown events are a quiet 2xx.
//!
//! What a request can cost is bounded: a request without a signature header is refused before its body
//! is read; a body is at most [`MAX_BODY`] and is read into one buffer of its declared length; all bodies
//! being read share [`BODY_MEMORY`]; the payload is parsed into the few typed fields kpath needs
//! ([`events::parse`]) and dropped before the answer. Every value from the request that is logged (delivery
//! id, event name, parse errors) goes through [`bounded`]: escaped and at most 256 characters. Time is
//! bounded by the server ([`super::server`]). Every delivery is counted by event and outcome, refusals
//! included ([`metrics::webhook`]).
//!
//! See <https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries>.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::events::{self, Event};
use super::metrics::{self, Outcome};
#[cfg(test)]
use super::recent::Recent;
use super::store::{Enqueued, StoreError};
use crate::logtext::bounded;

/// GitHub's maximum webhook payload.
pub const MAX_BODY: usize = 25 * 1024 * 1024;
/// How many bytes of webhook bodies are held at once, in all. A body is read whole before its signature
/// can be checked, so without a budget N senders of 25 MB bodies would make kpath hold N × 25 MB; a
/// request that does not fit waits for room (within the server's body deadline, then 408).
pub const BODY_MEMORY: usize = 4 * MAX_BODY;
/// A delivery id longer than this (GitHub's are 36-character GUIDs) is remembered by its hash.
const MAX_DELIVERY_KEY: usize = 64;

/// Where accepted events go (the job store in production, a channel in tests). `delivery` is the
/// delivery's key, stored with the job so that a redelivery is dropped; an error means the job was not
/// stored, and the webhook answers 503 so that GitHub shows a failed delivery that can be redelivered.
pub trait Sink: Send + Sync + 'static {
    fn accept(
        &self,
        event: Event,
        delivery: Option<String>,
    ) -> impl std::future::Future<Output = Result<Enqueued, StoreError>> + Send;
}

pub struct WebhookState<S: Sink> {
    secret: SecretString,
    sink: S,
    /// Permits are bytes of [`BODY_MEMORY`].
    body_memory: Arc<Semaphore>,
}

impl<S: Sink> WebhookState<S> {
    pub fn new(secret: SecretString, sink: S) -> Self {
        WebhookState { secret, sink, body_memory: Arc::new(Semaphore::new(BODY_MEMORY)) }
    }
}

/// The router serving the webhook at `path` (default `/webhook`).
pub fn router<S: Sink>(path: &str, state: Arc<WebhookState<S>>) -> Router {
    Router::new().route(path, post(receive::<S>)).with_state(state)
}

/// Checks `sha256=<hex>` against HMAC-SHA256 of the raw body, in constant time.
pub fn signature_is_valid(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.strip_prefix("sha256=")) else { return false };
    let Some(expected) = decode_hex(hex) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return false };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

/// Signs a body as GitHub does (`sha256=<hex>`): for tests and tools that send webhooks.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

type Answer = (StatusCode, &'static str);

/// Answers a delivery and counts it by event and outcome (`kpath_webhooks_total`).
async fn receive<S: Sink>(State(state): State<Arc<WebhookState<S>>>, headers: HeaderMap, body: Body) -> Answer {
    let (outcome, answer) = answer(&state, &headers, body).await;
    let event_name = headers.get("x-github-event").and_then(|v| v.to_str().ok()).unwrap_or("");
    metrics::webhook(event_name, outcome);
    answer
}

async fn answer<S: Sink>(state: &WebhookState<S>, headers: &HeaderMap, body: Body) -> (Outcome, Answer) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let event_name = header("x-github-event").unwrap_or("");
    let delivery = header("x-github-delivery").unwrap_or("");
    let refuse_unsigned = || {
        tracing::warn!(delivery = %bounded(delivery), event = %bounded(event_name), "webhook with a missing or bad signature");
        (Outcome::Unauthorized, (StatusCode::UNAUTHORIZED, "bad signature\n"))
    };
    let Some(signature) = header("x-hub-signature-256") else { return refuse_unsigned() };
    let length =
        match headers.get(header::CONTENT_LENGTH).map(|v| v.to_str().ok().and_then(|v| v.parse::<usize>().ok())) {
            None => None,
            Some(Some(length)) if length <= MAX_BODY => Some(length),
            Some(_) => return (Outcome::TooLarge, (StatusCode::PAYLOAD_TOO_LARGE, "payload too large\n")),
        };
    // Room for the body before it is read: its declared length, else the most it may be.
    let Ok(_room) = state.body_memory.clone().acquire_many_owned(length.unwrap_or(MAX_BODY) as u32).await else {
        return (Outcome::Unavailable, (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"));
    };
    let body = match read_body(body, length).await {
        Ok(body) => body,
        Err(answer) if answer.0 == StatusCode::PAYLOAD_TOO_LARGE => return (Outcome::TooLarge, answer),
        Err(answer) => return (Outcome::BadRequest, answer),
    };
    if !signature_is_valid(state.secret.expose_secret(), &body, Some(signature)) {
        return refuse_unsigned();
    }
    let parsed = events::parse(event_name, &body);
    // The payload is not kept: the event holds the few fields kpath needs.
    drop(body);
    match parsed {
        // Answered only once the job is stored (durably, with PostgreSQL).
        Ok(Some(event)) => match state.sink.accept(event, (!delivery.is_empty()).then(|| delivery_key(delivery))).await
        {
            Ok(Enqueued::Queued) => {
                tracing::info!(delivery = %bounded(delivery), event = %bounded(event_name), "queued");
                (Outcome::Accepted, (StatusCode::ACCEPTED, "queued\n"))
            }
            Ok(Enqueued::Redelivery) => {
                tracing::info!(delivery = %bounded(delivery), event = %bounded(event_name), "redelivery ignored");
                (Outcome::Duplicate, (StatusCode::OK, "already received\n"))
            }
            Ok(Enqueued::Dropped) => {
                tracing::info!(delivery = %bounded(delivery), event = %bounded(event_name), "head already taken");
                (Outcome::Duplicate, (StatusCode::OK, "already reviewed\n"))
            }
            Err(error) => {
                tracing::error!(delivery = %bounded(delivery), event = %bounded(event_name), "not stored: {error}");
                (
                    Outcome::Unavailable,
                    (StatusCode::SERVICE_UNAVAILABLE, "cannot store the event now; redeliver it later\n"),
                )
            }
        },
        Ok(None) => (Outcome::Ignored, (StatusCode::OK, "ignored\n")),
        Err(error) => {
            tracing::warn!(delivery = %bounded(delivery), event = %bounded(event_name), "webhook refused: {error}");
            (Outcome::BadRequest, (StatusCode::BAD_REQUEST, "unreadable payload\n"))
        }
    }
}

/// The body, read frame by frame into one buffer of its declared length (no second copy), at most
/// [`MAX_BODY`] bytes.
async fn read_body(mut body: Body, length: Option<usize>) -> Result<Vec<u8>, Answer> {
    let mut bytes = Vec::with_capacity(length.unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Err((StatusCode::BAD_REQUEST, "the body could not be read\n")) };
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_BODY {
                return Err((StatusCode::PAYLOAD_TOO_LARGE, "payload too large\n"));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

/// What a delivery is remembered by: its id, or the hash of an id too long to keep.
fn delivery_key(delivery: &str) -> String {
    if delivery.len() <= MAX_DELIVERY_KEY {
        return delivery.to_string();
    }
    let digest = Sha256::digest(delivery.as_bytes());
    format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let sig = sign("s3cret", b"{}");
        assert!(signature_is_valid("s3cret", b"{}", Some(&sig)));
        assert!(!signature_is_valid("other", b"{}", Some(&sig)));
        assert!(!signature_is_valid("s3cret", b"{ }", Some(&sig)));
        assert!(!signature_is_valid("s3cret", b"{}", None));
        assert!(!signature_is_valid("s3cret", b"{}", Some("sha1=abc")));
        assert!(!signature_is_valid("s3cret", b"{}", Some("sha256=zz")));
        assert!(!signature_is_valid("s3cret", b"{}", Some(&sig[..sig.len() - 2])));
    }

    mod requests {
        use std::io::Write;
        use std::sync::Mutex as StdMutex;

        use axum::http::Request;
        use serde_json::json;
        use tower::ServiceExt;

        use super::*;

        const SECRET: &str = "s3cret";

        struct Channel(StdMutex<Vec<Event>>, StdMutex<Recent<String>>, std::sync::atomic::AtomicBool);

        impl Sink for Arc<Channel> {
            async fn accept(&self, event: Event, delivery: Option<String>) -> Result<Enqueued, StoreError> {
                if self.2.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(StoreError("connection refused".to_string()));
                }
                if let Some(delivery) = delivery
                    && !self.1.lock().expect("lock").first_time(delivery)
                {
                    return Ok(Enqueued::Redelivery);
                }
                self.0.lock().expect("lock").push(event);
                Ok(Enqueued::Queued)
            }
        }

        type State = Arc<WebhookState<Arc<Channel>>>;

        fn app_with_state() -> (Router, Arc<Channel>, State) {
            let events =
                Arc::new(Channel(StdMutex::new(Vec::new()), StdMutex::new(Recent::new(100)), Default::default()));
            let state = Arc::new(WebhookState::new(SecretString::from(SECRET.to_string()), events.clone()));
            (router("/webhook", state.clone()), events, state)
        }

        fn app() -> (Router, Arc<Channel>) {
            let (router, events, _) = app_with_state();
            (router, events)
        }

        fn request(event: &str, delivery: &str, signature: Option<&str>, body: Vec<u8>) -> Request<Body> {
            let mut request = Request::post("/webhook")
                .header("x-github-event", event)
                .header("x-github-delivery", delivery)
                .header("content-length", body.len().to_string());
            if let Some(signature) = signature {
                request = request.header("x-hub-signature-256", signature);
            }
            request.body(Body::from(body)).expect("request")
        }

        async fn status(app: &Router, request: Request<Body>) -> u16 {
            app.clone().oneshot(request).await.expect("answered").status().as_u16()
        }

        /// Log lines written while the guard lives (this test's thread only).
        #[derive(Clone, Default)]
        struct Logs(Arc<StdMutex<Vec<u8>>>);

        impl Write for Logs {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl Logs {
            fn capture(&self) -> tracing::subscriber::DefaultGuard {
                let logs = self.clone();
                let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || logs.clone()).finish();
                tracing::subscriber::set_default(subscriber)
            }

            fn lines(&self) -> Vec<String> {
                String::from_utf8_lossy(&self.0.lock().expect("lock")).lines().map(str::to_string).collect()
            }
        }

        /// A bad-signature request with a 60 KB delivery header (and control characters) is one short line.
        #[tokio::test]
        async fn a_bad_signature_with_huge_headers_logs_one_short_line() {
            let (app, events) = app();
            let logs = Logs::default();
            let _guard = logs.capture();
            // Headers cannot hold line breaks or escapes (hyper refuses them); tabs they can.
            let delivery = format!("\t2024-01-01 INFO forged\t{}", "d".repeat(60_000));
            let body = br#"{"action":"opened"}"#.to_vec();
            let forged = sign("not-the-secret", &body);
            let event = "e".repeat(30_000);
            let with_header = |signature: Option<&str>| {
                let mut r = request("pull_request", "x", signature, body.clone());
                r.headers_mut().insert("x-github-delivery", delivery.parse().expect("header"));
                r.headers_mut().insert("x-github-event", event.parse().expect("header"));
                r
            };
            assert_eq!(status(&app, with_header(Some(&forged))).await, 401);
            assert_eq!(status(&app, with_header(None)).await, 401);
            let lines = logs.lines();
            assert_eq!(lines.len(), 2, "{lines:?}");
            for line in &lines {
                assert!(line.len() < 1_000, "a {}-byte line", line.len());
                assert!(line.contains("missing or bad signature") && line.contains('…'), "{line}");
                assert!(!line.contains('\t') && line.contains("\\t2024"), "escaped: {line}");
            }
            assert!(events.0.lock().expect("lock").is_empty());
        }

        #[tokio::test]
        async fn bodies_are_bounded_before_they_are_read() {
            let (app, _, state) = app_with_state();
            let mut too_large = request("pull_request", "d-1", Some("sha256=00"), Vec::new());
            too_large.headers_mut().insert("content-length", (MAX_BODY + 1).to_string().parse().expect("header"));
            assert_eq!(status(&app, too_large).await, 413);
            let unsigned = request("pull_request", "d-2", None, b"{}".to_vec());
            assert_eq!(status(&app, unsigned).await, 401);
            // Without a length, the body is counted as it comes.
            let chunked = Request::post("/webhook")
                .header("x-hub-signature-256", "sha256=00")
                .body(Body::from(vec![b' '; MAX_BODY + 1]))
                .expect("request");
            assert_eq!(status(&app, chunked).await, 413);
            // Every byte of the budget is back.
            assert_eq!(state.body_memory.available_permits(), BODY_MEMORY);
        }

        /// A signed payload of an event kpath acts on that is not the expected shape (an 18.6 MB JSON
        /// array, here 2 MB) is a 400 with a bounded log line; a valid one is queued; the same delivery again
        /// is dropped.
        #[tokio::test]
        async fn signed_payloads_are_parsed_into_events_or_refused() {
            let (app, events) = app();
            let logs = Logs::default();
            let _guard = logs.capture();
            let array = format!("[{}]", vec!["{\"action\":\"opened\",\"x\":[1,2,3]}"; 60_000].join(",")).into_bytes();
            let signature = sign(SECRET, &array);
            assert_eq!(status(&app, request("pull_request", "d-1", Some(&signature), array)).await, 400);
            assert!(logs.lines().iter().all(|l| l.len() < 1_000), "{:?}", logs.lines());

            let payload = json!({
                "action": "opened",
                "number": 3,
                "repository": { "full_name": "octo/gitops", "ignored": vec![0; 1000] },
                "installation": { "id": 77 },
                "pull_request": { "number": 3, "state": "open", "head": { "sha": "a".repeat(40) } },
            });
            let body = serde_json::to_vec(&payload).expect("JSON");
            let signature = sign(SECRET, &body);
            assert_eq!(status(&app, request("pull_request", "d-2", Some(&signature), body.clone())).await, 202);
            assert_eq!(status(&app, request("pull_request", "d-2", Some(&signature), body.clone())).await, 200);
            assert_eq!(status(&app, request("push", "d-3", Some(&sign(SECRET, b"[]")), b"[]".to_vec())).await, 200);
            {
                let events = events.0.lock().expect("lock");
                assert_eq!(events.len(), 1);
                assert!(matches!(&events[0], Event::Review { repo, pull: Some(3), .. } if repo == "octo/gitops"));
            }
            // The store is down: 503, and the delivery is not remembered, so GitHub's redelivery is taken.
            events.2.store(true, std::sync::atomic::Ordering::SeqCst);
            assert_eq!(status(&app, request("pull_request", "d-4", Some(&signature), body.clone())).await, 503);
            events.2.store(false, std::sync::atomic::Ordering::SeqCst);
            assert_eq!(status(&app, request("pull_request", "d-4", Some(&signature), body)).await, 202);
        }

        /// The value of one sample line of `/metrics` (0 when the series is not there yet).
        fn sample(series: &str) -> f64 {
            let text = metrics::install().render();
            text.lines()
                .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok()))
                .unwrap_or(0.0)
        }

        /// Refused deliveries are counted too, by their outcome (other tests count concurrently into the same
        /// process-wide recorder, so the counts are compared as at least one more).
        #[tokio::test]
        async fn every_outcome_is_counted_including_refusals() {
            let (app, _) = app();
            let unauthorized = r#"kpath_webhooks_total{event="check_run",outcome="unauthorized"}"#;
            let too_large = r#"kpath_webhooks_total{event="other",outcome="too_large"}"#;
            let ignored = r#"kpath_webhooks_total{event="push",outcome="ignored"}"#;
            let before = [sample(unauthorized), sample(too_large), sample(ignored)];
            let forged = sign("not-the-secret", b"{}");
            assert_eq!(status(&app, request("check_run", "m-1", Some(&forged), b"{}".to_vec())).await, 401);
            let mut huge = request("made-up", "m-2", Some("sha256=00"), Vec::new());
            huge.headers_mut().insert("content-length", (MAX_BODY + 1).to_string().parse().expect("header"));
            assert_eq!(status(&app, huge).await, 413);
            assert_eq!(status(&app, request("push", "m-3", Some(&sign(SECRET, b"[]")), b"[]".to_vec())).await, 200);
            let after = [sample(unauthorized), sample(too_large), sample(ignored)];
            for ((series, before), after) in [unauthorized, too_large, ignored].iter().zip(before).zip(after) {
                assert!(after >= before + 1.0, "{series}: {before} then {after}");
            }
        }

        #[test]
        fn long_delivery_ids_are_remembered_by_their_hash() {
            assert_eq!(delivery_key("72d3162e-cc78-11e3-81ab-4c9367dc0958"), "72d3162e-cc78-11e3-81ab-4c9367dc0958");
            let key = delivery_key(&"d".repeat(60_000));
            assert!(key.starts_with("sha256:") && key.len() == 71, "{key}");
        }
    }
}
