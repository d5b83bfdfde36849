//! Fuzzes the webhook handler through kpath's real axum router with a known secret: headers and body
//! from the input, the body signed correctly (so it gets past the HMAC check to JSON and event parsing,
//! and `/kpath` comments reach the command parser) or left as the input signs it (which must be refused).
//!
//! Input layout (what `scripts/fuzz` writes as seeds): one flag byte (bit 0: sign the body with the
//! secret), then `name: value` header lines, an empty line, and the body.
#![no_main]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use http::{HeaderName, HeaderValue, Request, StatusCode};
use kpath::app::events::Event;
use kpath::app::webhook::{self, Sink, WebhookState};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use tower::ServiceExt;

const SECRET: &str = "fuzz-webhook-secret";

#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Event>>>);

impl Sink for Events {
    fn accept(&self, event: Event) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event);
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime"))
}

/// One header line: name and value, as bytes (the HTTP types check them).
type Header<'a> = (&'a [u8], &'a [u8]);

/// Splits the input into the flag byte, the header lines and the body.
fn split(data: &[u8]) -> Option<(u8, Vec<Header<'_>>, &[u8])> {
    let (&flags, rest) = data.split_first()?;
    let end = rest.windows(2).position(|w| w == b"\n\n").unwrap_or(rest.len());
    let head = &rest[..end];
    let body = rest.get(end + 2..).unwrap_or(&[]);
    let headers = head
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|b| *b == b':')?;
            let value = &line[colon + 1..];
            Some((&line[..colon], value.strip_prefix(b" ").unwrap_or(value)))
        })
        .collect();
    Some((flags, headers, body))
}

fuzz_target!(|data: &[u8]| {
    let Some((flags, headers, body)) = split(data) else { return };
    let sign = flags & 1 == 1;
    let mut request = Request::builder().method("POST").uri("/webhook");
    for (name, value) in headers {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) else { continue };
        if sign && name == "x-hub-signature-256" {
            continue;
        }
        request = request.header(name, value);
    }
    if sign {
        request = request.header("x-hub-signature-256", webhook::sign(SECRET, body));
    }
    let Ok(request) = request.body(Body::from(body.to_vec())) else { return };
    let events = Events::default();
    let router = webhook::router("/webhook", Arc::new(WebhookState::new(SecretString::from(SECRET), events.clone())));
    let status = runtime().block_on(router.oneshot(request)).map(|r| r.status()).unwrap_or(StatusCode::IM_A_TEAPOT);
    let events = events.0.lock().map(|e| e.clone()).unwrap_or_default();
    if !sign {
        // An unsigned or wrongly signed body (a fuzzed signature cannot match by chance) is never parsed,
        // never queued.
        assert!(
            matches!(status, StatusCode::UNAUTHORIZED | StatusCode::PAYLOAD_TOO_LARGE),
            "unsigned webhook answered {status}"
        );
        assert!(events.is_empty(), "unsigned webhook queued {events:?}");
        return;
    }
    assert!(
        matches!(
            status,
            StatusCode::OK | StatusCode::ACCEPTED | StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE
        ),
        "signed webhook answered {status}"
    );
    assert_eq!(events.len(), usize::from(status == StatusCode::ACCEPTED), "{status} with events {events:?}");
    for event in &events {
        if let Event::Comment { body, .. } = event {
            kpath_fuzz::run_commands(body);
        }
    }
});
