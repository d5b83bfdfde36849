//! The webhook endpoint end to end, through the real axum router, fed with GitHub's published
//! webhook examples (npm `@octokit/webhooks-examples`, installed by `scripts/test`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kpath::app::events::Event;
use kpath::app::store::{Enqueued, StoreError};
use kpath::app::webhook::{self, Sink, WebhookState};
use serde_json::Value;
use tower::ServiceExt;

const SECRET: &str = "webhook-secret-for-tests";

/// Collects events; remembers delivery ids as a store does (each delivery is stored once).
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Event>>>, Arc<Mutex<HashSet<String>>>);

impl Sink for Collect {
    async fn accept(&self, event: Event, delivery: Option<String>) -> Result<Enqueued, StoreError> {
        if let Some(delivery) = delivery
            && !self.1.lock().map_err(|_| StoreError("poisoned".into()))?.insert(delivery)
        {
            return Ok(Enqueued::Redelivery);
        }
        if let Ok(mut events) = self.0.lock() {
            events.push(event);
        }
        Ok(Enqueued::Queued)
    }
}

impl Collect {
    fn take(&self) -> Vec<Event> {
        self.0.lock().map(|mut e| std::mem::take(&mut *e)).unwrap_or_default()
    }
}

fn examples() -> Vec<Value> {
    let dir = std::env::var_os("KPATH_NPM")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/npm"));
    let index = dir.join("node_modules/@octokit/webhooks-examples/api.github.com/index.json");
    let text = std::fs::read_to_string(&index).unwrap_or_else(|e| {
        panic!("{}: {e}; run `bash scripts/test`, which installs GitHub's webhook examples", index.display())
    });
    serde_json::from_str(&text).expect("the examples are JSON")
}

/// GitHub's examples of one event, with their action.
fn examples_of(name: &str) -> Vec<Value> {
    examples()
        .into_iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["examples"].as_array().cloned())
        .unwrap_or_else(|| panic!("no examples for {name}"))
}

fn app(sink: Collect) -> axum::Router {
    webhook::router("/webhook", Arc::new(WebhookState::new(SECRET.to_string().into(), sink)))
}

async fn send(
    router: &axum::Router,
    event: &str,
    delivery: &str,
    body: &[u8],
    signature: Option<String>,
) -> StatusCode {
    let mut request = Request::post("/webhook")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery);
    if let Some(sig) = signature {
        request = request.header("x-hub-signature-256", sig);
    }
    let response =
        router.clone().oneshot(request.body(Body::from(body.to_vec())).expect("request")).await.expect("response");
    response.status()
}

async fn deliver(router: &axum::Router, event: &str, delivery: &str, payload: &Value) -> StatusCode {
    let body = serde_json::to_vec(payload).expect("json");
    send(router, event, delivery, &body, Some(webhook::sign(SECRET, &body))).await
}

#[tokio::test]
async fn pull_request_events_become_reviews_of_their_head() {
    let sink = Collect::default();
    let router = app(sink.clone());
    for (i, example) in examples_of("pull_request").iter().enumerate() {
        let action = example["action"].as_str().unwrap_or("");
        let status = deliver(&router, "pull_request", &format!("pr-{i}"), example).await;
        let events = sink.take();
        let acts = matches!(action, "opened" | "synchronize" | "reopened" | "ready_for_review")
            && example["pull_request"]["state"] != "closed";
        if acts {
            assert_eq!(status, StatusCode::ACCEPTED, "{action}");
            let expected_sha = example["pull_request"]["head"]["sha"].as_str().expect("sha");
            assert!(
                matches!(&events[..], [Event::Review { head_sha, pull: Some(_), requested: false, .. }] if head_sha == expected_sha),
                "{action}: {events:?}"
            );
        } else {
            assert_eq!(status, StatusCode::OK, "{action}");
            assert!(events.is_empty(), "{action}: {events:?}");
        }
    }
}

#[tokio::test]
async fn check_suites_and_our_check_runs_request_reviews() {
    let sink = Collect::default();
    let router = app(sink.clone());
    for (i, example) in examples_of("check_suite").iter().enumerate() {
        let action = example["action"].as_str().unwrap_or("");
        let status = deliver(&router, "check_suite", &format!("cs-{i}"), example).await;
        let events = sink.take();
        if matches!(action, "requested" | "rerequested") {
            assert_eq!(status, StatusCode::ACCEPTED);
            let rerequested = action == "rerequested";
            assert!(
                matches!(&events[..], [Event::Review { requested, .. }] if *requested == rerequested),
                "{action}: only a rerequest is asked for by someone: {events:?}"
            );
        } else {
            assert!(events.is_empty());
        }
    }
    for (i, example) in examples_of("check_run").iter().enumerate() {
        let action = example["action"].as_str().unwrap_or("");
        // Another app's check run is not ours to re-run...
        deliver(&router, "check_run", &format!("cr-{i}"), example).await;
        assert!(sink.take().is_empty() || example["check_run"]["name"] == "kpath");
        // ...ours is.
        let mut ours = example.clone();
        ours["check_run"]["name"] = "kpath".into();
        let status = deliver(&router, "check_run", &format!("cr-ours-{i}"), &ours).await;
        let events = sink.take();
        if matches!(action, "rerequested" | "requested_action") {
            assert_eq!(status, StatusCode::ACCEPTED, "{action}");
            assert!(matches!(&events[..], [Event::Review { requested: true, .. }]), "{action}: {events:?}");
        } else {
            assert!(events.is_empty(), "{action}");
        }
    }
}

#[tokio::test]
async fn pull_request_comments_with_commands_are_accepted_and_bots_are_ignored() {
    let sink = Collect::default();
    let router = app(sink.clone());
    let base = examples_of("issue_comment").into_iter().find(|e| e["action"] == "created").expect("a created comment");
    let mut on_pr = base.clone();
    on_pr["issue"]["pull_request"] = serde_json::json!({ "url": "https://api.github.com/repos/o/r/pulls/1" });
    on_pr["comment"]["body"] = "/kpath explain image-latest".into();
    on_pr["comment"]["user"]["type"] = "User".into();
    assert_eq!(deliver(&router, "issue_comment", "c-1", &on_pr).await, StatusCode::ACCEPTED);
    assert!(matches!(&sink.take()[..], [Event::Comment { body, .. }] if body == "/kpath explain image-latest"));

    let mut on_issue = on_pr.clone();
    on_issue["issue"].as_object_mut().expect("issue").remove("pull_request");
    assert_eq!(deliver(&router, "issue_comment", "c-2", &on_issue).await, StatusCode::OK);
    let mut from_bot = on_pr.clone();
    from_bot["comment"]["user"]["type"] = "Bot".into();
    assert_eq!(deliver(&router, "issue_comment", "c-3", &from_bot).await, StatusCode::OK);
    let mut chatter = on_pr.clone();
    chatter["comment"]["body"] = "looks good to me".into();
    assert_eq!(deliver(&router, "issue_comment", "c-4", &chatter).await, StatusCode::OK);
    assert!(sink.take().is_empty());
}

#[tokio::test]
async fn bad_or_missing_signatures_are_401_and_nothing_is_queued() {
    let sink = Collect::default();
    let router = app(sink.clone());
    let example = examples_of("pull_request").into_iter().find(|e| e["action"] == "opened").expect("opened");
    let body = serde_json::to_vec(&example).expect("json");
    assert_eq!(send(&router, "pull_request", "s-1", &body, None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(&router, "pull_request", "s-2", &body, Some(webhook::sign("wrong", &body))).await,
        StatusCode::UNAUTHORIZED
    );
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert_eq!(
        send(&router, "pull_request", "s-3", &tampered, Some(webhook::sign(SECRET, &body))).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(sink.take().is_empty());
}

#[tokio::test]
async fn redeliveries_are_processed_once() {
    let sink = Collect::default();
    let router = app(sink.clone());
    let example = examples_of("pull_request").into_iter().find(|e| e["action"] == "synchronize").expect("synchronize");
    assert_eq!(deliver(&router, "pull_request", "same-delivery", &example).await, StatusCode::ACCEPTED);
    assert_eq!(deliver(&router, "pull_request", "same-delivery", &example).await, StatusCode::OK);
    assert_eq!(sink.take().len(), 1);
}

#[tokio::test]
async fn other_events_are_a_quiet_2xx_and_oversized_bodies_are_refused() {
    let sink = Collect::default();
    let router = app(sink.clone());
    for name in ["ping", "push", "star", "workflow_run", "issues"] {
        let example = examples_of(name).into_iter().next().expect("an example");
        let status = deliver(&router, name, &format!("o-{name}"), &example).await;
        assert!(status.is_success(), "{name}: {status}");
    }
    assert!(sink.take().is_empty());
    let huge = vec![b' '; webhook::MAX_BODY + 1];
    let status = send(&router, "pull_request", "big", &huge, Some(webhook::sign(SECRET, &huge))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}
