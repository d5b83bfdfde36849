//! The webhook endpoint: limit the body, verify `X-Hub-Signature-256` on the raw bytes in constant
//! time before anything is parsed, drop redeliveries, turn the events kpath acts on into jobs, and
//! answer at once (the work is queued). Unknown events are a quiet 2xx.
//!
//! See <https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries>.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::events::{self, Event};
use super::recent::Recent;

/// GitHub's maximum webhook payload.
pub const MAX_BODY: usize = 25 * 1024 * 1024;
/// How many delivery ids are remembered to drop redeliveries.
const REMEMBERED_DELIVERIES: usize = 10_000;

/// Where accepted events go (the job queue in production, a channel in tests).
pub trait Sink: Send + Sync + 'static {
    fn accept(&self, event: Event);
}

pub struct WebhookState<S: Sink> {
    secret: SecretString,
    sink: S,
    deliveries: Mutex<Recent<String>>,
}

impl<S: Sink> WebhookState<S> {
    pub fn new(secret: SecretString, sink: S) -> Self {
        WebhookState { secret, sink, deliveries: Mutex::new(Recent::new(REMEMBERED_DELIVERIES)) }
    }
}

/// The router serving the webhook at `path` (default `/webhook`).
pub fn router<S: Sink>(path: &str, state: Arc<WebhookState<S>>) -> Router {
    Router::new().route(path, post(receive::<S>)).layer(DefaultBodyLimit::max(MAX_BODY)).with_state(state)
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

async fn receive<S: Sink>(
    State(state): State<Arc<WebhookState<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !signature_is_valid(state.secret.expose_secret(), &body, header("x-hub-signature-256")) {
        tracing::warn!(
            delivery = header("x-github-delivery").unwrap_or("-"),
            "webhook with a missing or bad signature"
        );
        return (StatusCode::UNAUTHORIZED, "bad signature\n");
    }
    let event_name = header("x-github-event").unwrap_or("");
    let delivery = header("x-github-delivery").unwrap_or("");
    if !delivery.is_empty() {
        let first = state.deliveries.lock().map(|mut d| d.first_time(delivery.to_string())).unwrap_or(true);
        if !first {
            tracing::info!(delivery, event = event_name, "redelivery ignored");
            return (StatusCode::OK, "already received\n");
        }
    }
    let payload: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return (StatusCode::BAD_REQUEST, "body is not JSON\n"),
    };
    match events::parse(event_name, &payload) {
        Some(event) => {
            tracing::info!(delivery, event = event_name, "queued");
            state.sink.accept(event);
            (StatusCode::ACCEPTED, "queued\n")
        }
        None => (StatusCode::OK, "ignored\n"),
    }
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
}
