//! End-to-end tests of the App: the real `kpath serve` against the fake GitHub, through the test bed
//! ([`super::testbed`]). Every request kpath sends is checked against GitHub's OpenAPI description, and
//! no test sleeps to wait for work: each waits until the queue is idle.

#![cfg(test)]

use serde_json::json;

use super::fake_github::{Fault, Pull, TEST_REPO};
use super::testbed::{App, DEMO_PASSWORD, adapt, demo_changes, example};
use crate::app::github::{FIXED_MARKER, SUMMARY_MARKER};

/// Every log line of this test process (all tests), as `kpath serve` writes it: through the redacting
/// writer. Checked for leaks by [`no_canary_in_anything_serve_posts_or_logs`].
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// Keeps each log line (and shows it with the failing test's output, as the test writer does).
struct CapturedLog;

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(bytes);
        print!("{}", String::from_utf8_lossy(bytes));
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The test bed, with kpath's logs shown for failing tests and kept in [`LOGS`].
async fn start() -> App {
    let _ = tracing_subscriber::fmt()
        .with_writer(crate::redact::RedactingWriter::new(|| CapturedLog))
        .with_ansi(false)
        .with_env_filter("kpath=debug")
        .try_init();
    App::start().await
}

#[path = "../../../tests/support/canaries.rs"]
mod canaries;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_in_anything_serve_posts_or_logs() {
    let app = start().await;
    let corpus = canaries::corpus();
    let changes: Vec<(&str, Option<&str>)> = corpus.head.iter().map(|(p, c)| (p.as_str(), Some(c.as_str()))).collect();
    app.open(11, &changes).await;
    let posted = app.everything_posted();
    // Every request GitHub received, bodies included (reviews, replies, check runs, GraphQL).
    let requests: String = app
        .fake
        .requests()
        .iter()
        .map(|r| format!("{} {} {}\n", r.method, r.path, r.body.as_ref().map(ToString::to_string).unwrap_or_default()))
        .collect();
    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    for (what, text) in [("posted", &posted), ("requests", &requests), ("logs", &logs)] {
        let leaks = corpus.leaks(text);
        assert!(leaks.is_empty(), "{what} leaked {leaks:?}\n{text}");
    }
    // The corpus was reviewed: its secret findings and redacted diffs were posted.
    for expected in ["dockerfile-secret-env", "secret-in-env", "render-failed", "[redacted]"] {
        assert!(posted.contains(expected), "nothing posted says `{expected}`:\n{posted}");
    }
    assert!(logs.contains("review posted"), "the logs were captured:\n{logs}");
    app.assert_clean();
}
use crate::app::webhook;

/// The checkout deployment of the demo's base with `spec.replicas` under an autoscaler: one new error,
/// on line 9.
fn with_replicas(app: &App) -> String {
    app.read("apps/checkout/deployment.yaml").replacen("spec:\n", "spec:\n  replicas: 3\n", 1)
}

const CHECKOUT: &str = "apps/checkout/deployment.yaml";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_pull_request_gets_a_failing_check_inline_comments_and_one_summary() {
    let app = start().await;
    let changes = demo_changes();
    let changes: Vec<(&str, Option<&str>)> = changes.iter().map(|(p, c)| (p.as_str(), Some(c.as_str()))).collect();
    let head = app.open(7, &changes).await;

    let world = app.fake.world();
    assert_eq!(world.check_runs.len(), 1);
    let run = &world.check_runs[0];
    assert_eq!((run.name.as_str(), run.head_sha.as_str()), ("kpath", head.as_str()));
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert!(run.title.as_deref().is_some_and(|t| t.contains("new error")), "{:?}", run.title);
    assert!(!run.annotations.is_empty());
    assert_eq!(run.actions.first().and_then(|a| a["identifier"].as_str()), Some("rerun"));
    // The details under the summary: every rendered change in full.
    let text = run.text.as_deref().unwrap_or("");
    assert!(text.starts_with("## Rendered changes") && text.contains("```diff"), "{text}");

    // One review, its comments on the lines that caused each breach (the fake refuses lines off the diff).
    assert_eq!(world.reviews.len(), 1);
    let at = |path: &str, line: u64, rule: &str| {
        world.review_comments.iter().any(|c| {
            c.path == path && c.line == Some(line) && c.body.contains(&format!("`{rule}`")) && c.commit_id == head
        })
    };
    assert!(at(CHECKOUT, 9, "hpa-replicas-conflict"), "replicas under an HPA, on its line");
    assert!(at(CHECKOUT, 27, "secret-in-env"), "the literal secret, on its value line");
    // A finding in a rendered chart, on the values line that set it.
    let on_values = |c: &&super::fake_github::ReviewComment| c.path == "charts/storefront/values-prod.yaml";
    assert_eq!(world.review_comments.iter().filter(on_values).map(|c| c.line).collect::<Vec<_>>(), [Some(6)]);
    let summaries: Vec<_> = world.issue_comments.iter().filter(|c| c.body.starts_with(SUMMARY_MARKER)).collect();
    assert_eq!(summaries.len(), 1);
    // The chart's replicas now render under its autoscaler because the change removed the template's guard:
    // the values key is untouched, so the comment goes on the template line, which the diff's hunk shows.
    assert!(at("charts/storefront/templates/deployment.yaml", 9, "hpa-replicas-conflict"), "the chart finding inline");
    let summary = &summaries[0].body;
    // Traceable: the summary names the commit it reviewed, and each place links to its line at that commit.
    assert!(summary.contains(&format!("/octo/gitops/commit/{head})")), "{summary}");
    assert!(
        summary.contains(&format!("/octo/gitops/blob/{head}/charts/storefront/templates/deployment.yaml#L9)")),
        "{summary}"
    );
    drop(world);
    assert!(!app.everything_posted().contains(DEMO_PASSWORD), "a secret was posted");
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_fixes_the_findings_resolves_their_threads_once_and_passes() {
    let app = start().await;
    // Two findings: replicas under the autoscaler (line 9) and a memory limit above the request (line 36).
    let mut broken = with_replicas(&app);
    let limit = broken.rfind("memory: 512Mi").expect("the limit");
    broken.replace_range(limit..limit + "memory: 512Mi".len(), "memory: 1Gi");
    let fixed = app.read(CHECKOUT).replace("memory: 512Mi", "memory: 768Mi");
    app.open(8, &[(CHECKOUT, Some(&broken))]).await;
    {
        let world = app.fake.world();
        assert_eq!(world.check_runs[0].conclusion.as_deref(), Some("failure"));
        let lines: Vec<_> = world.review_comments.iter().map(|c| (c.path.as_str(), c.line)).collect();
        assert_eq!(lines, [(CHECKOUT, Some(9)), (CHECKOUT, Some(36))]);
    }
    // The same findings on the next push are not commented again.
    let same = broken.replace("value: info", "value: debug");
    app.synchronize(8, &[(CHECKOUT, Some(&same))]).await;
    assert_eq!(app.fake.world().review_comments.len(), 2, "no duplicate comment");

    let head = app.synchronize(8, &[(CHECKOUT, Some(&fixed))]).await;
    {
        let world = app.fake.world();
        let last = world.check_runs.last().expect("a run");
        assert_eq!((last.head_sha.as_str(), last.conclusion.as_deref()), (head.as_str(), Some("success")));
        for original in world.review_comments.iter().filter(|c| c.in_reply_to_id.is_none()) {
            assert!(original.resolved, "the fixed finding's thread is resolved");
            let replies: Vec<_> =
                world.review_comments.iter().filter(|c| c.in_reply_to_id == Some(original.id)).collect();
            assert_eq!(replies.len(), 1);
            assert!(
                replies[0].body.contains(&format!("Fixed in {}", &head[..7])) && replies[0].body.contains(FIXED_MARKER)
            );
        }
        let summaries: Vec<_> = world.issue_comments.iter().filter(|c| c.body.starts_with(SUMMARY_MARKER)).collect();
        assert_eq!(summaries.len(), 1, "one summary, edited in place");
        assert!(summaries[0].body.contains("no new findings"), "{}", summaries[0].body);
    }
    // The threads were read once for both.
    let thread_reads = app
        .fake
        .requests_to("POST", "/graphql")
        .iter()
        .filter(|r| r.body.as_ref().and_then(|b| b["query"].as_str()).is_some_and(|q| q.contains("reviewThreads")))
        .count();
    assert_eq!(thread_reads, 1);
    // Another push: the fixed threads are not told again.
    app.synchronize(8, &[(CHECKOUT, Some(&fixed.replace("768Mi", "800Mi")))]).await;
    assert_eq!(app.fake.world().review_comments.len(), 4);
    app.assert_clean();
}

/// A new app whose one container breaks four rules: they are all about its `- name:` line.
const CART: &str = "apps/cart/deployment.yaml";

fn cart(container_extra: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\n  namespace: shop\nspec:\n  selector:\n    \
         matchLabels: {{app: cart}}\n  template:\n    metadata:\n      labels: {{app: cart}}\n    spec:\n      \
         containers:\n        - name: cart\n          image: ghcr.io/octo/cart:1.2.3\n{container_extra}"
    )
}

const CART_PROBES: &str = "          readinessProbe:\n            httpGet: {path: /ready, port: 8080}\n          \
                           livenessProbe:\n            httpGet: {path: /live, port: 8080}\n";
const CART_RESOURCES: &str =
    "          resources:\n            requests: {cpu: 100m, memory: 128Mi}\n            limits: {memory: 128Mi}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_on_one_line_are_one_comment_whose_thread_is_fixed_when_all_are() {
    let app = start().await;
    app.open(21, &[(CART, Some(&cart("")))]).await;
    let first = {
        let world = app.fake.world();
        let comments: Vec<_> = world.review_comments.iter().filter(|c| c.path == CART).collect();
        assert_eq!(comments.len(), 1, "one comment for the line: {comments:#?}");
        let body = &comments[0].body;
        assert_eq!(comments[0].line, Some(14));
        for rule in ["probe-liveness-missing", "probe-readiness-missing", "resources-requests-missing"] {
            assert!(body.contains(&format!("`{rule}`")), "{rule} in {body}");
        }
        // Errors before the warning.
        let error = body.find("**error**").expect("an error");
        let warning = body.find("**warning**").expect("a warning");
        assert!(error < warning, "{body}");
        comments[0].id
    };
    // Probes added: two of its findings are left, so the thread is not fixed and nothing is posted again.
    app.synchronize(21, &[(CART, Some(&cart(CART_PROBES)))]).await;
    {
        let world = app.fake.world();
        assert_eq!(world.review_comments.len(), 1, "{:#?}", world.review_comments);
        assert!(!world.review_comments[0].resolved);
    }
    // Everything fixed: the thread is told once and resolved.
    let head = app.synchronize(21, &[(CART, Some(&cart(&format!("{CART_PROBES}{CART_RESOURCES}"))))]).await;
    {
        let world = app.fake.world();
        let replies: Vec<_> = world.review_comments.iter().filter(|c| c.in_reply_to_id == Some(first)).collect();
        assert_eq!(replies.len(), 1, "{:#?}", world.review_comments);
        assert!(replies[0].body.contains(&format!("Fixed in {}", &head[..7])));
        assert!(world.review_comments.iter().find(|c| c.id == first).is_some_and(|c| c.resolved));
    }
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_is_refused_and_nothing_is_posted() {
    let app = start().await;
    let head = app.push(9, &[(CHECKOUT, Some(&with_replicas(&app)))]);
    app.set_pull(9, &head);
    let payload = app.pull_request_event("opened", 9, &head);
    let forged = webhook::sign("not-the-secret", &serde_json::to_vec(&payload).expect("JSON"));
    assert_eq!(app.send_signed("pull_request", "d-1", &payload, Some(&forged)).await, 401);
    assert_eq!(app.send_signed("pull_request", "d-2", &payload, Some("sha256=")).await, 401);
    app.running.idle().await;
    assert!(app.fake.requests().is_empty(), "nothing reached GitHub");
    assert_eq!((app.get("/healthz").await, app.get("/readyz").await), (200, 200));
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_webhook_is_processed_once() {
    let app = start().await;
    let head = app.push(10, &[(CHECKOUT, Some(&with_replicas(&app)))]);
    app.set_pull(10, &head);
    let payload = app.pull_request_event("opened", 10, &head);
    assert_eq!(app.send_signed("pull_request", "same-delivery", &payload, None).await, 202);
    app.running.idle().await;
    assert_eq!(app.send_signed("pull_request", "same-delivery", &payload, None).await, 200);
    app.running.idle().await;
    let world = app.fake.world();
    assert_eq!((world.check_runs.len(), world.reviews.len(), world.review_comments.len()), (1, 1, 1));
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_quick_pushes_only_the_newest_posts() {
    let app = start().await;
    let first = app.push(11, &[(CHECKOUT, Some(&with_replicas(&app)))]);
    let newer = with_replicas(&app).replace("memory: 512Mi", "memory: 700Mi");
    let second = app.push(11, &[(CHECKOUT, Some(&newer))]);
    // Both pushes happened before kpath saw either webhook.
    app.set_pull(11, &second);
    assert_eq!(app.send("pull_request", &app.pull_request_event("synchronize", 11, &first)).await, 202);
    assert_eq!(app.send("pull_request", &app.pull_request_event("synchronize", 11, &second)).await, 202);
    app.running.idle().await;
    let world = app.fake.world();
    assert!(world.review_comments.iter().all(|c| c.commit_id == second), "nothing posted for the stale head");
    assert_eq!(world.reviews.len(), 1);
    let done: Vec<_> = world.check_runs.iter().filter(|r| r.head_sha == second).collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].conclusion.as_deref(), Some("failure"));
    for stale in world.check_runs.iter().filter(|r| r.head_sha == first) {
        assert_eq!(stale.conclusion.as_deref(), Some("cancelled"), "a stale run says it was superseded");
    }
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_502_after_github_stored_the_review_does_not_duplicate_it() {
    let app = start().await;
    app.fake.inject(Fault::new("POST", &format!("/repos/{TEST_REPO}/pulls/12/reviews"), 502, 1).after_applying());
    app.fake.fail_next("POST", &format!("/repos/{TEST_REPO}/issues/12/comments"), 502, 1);
    app.open(12, &[(CHECKOUT, Some(&with_replicas(&app)))]).await;
    let review_posts = app.fake.requests_to("POST", &format!("/repos/{TEST_REPO}/pulls/12/reviews")).len();
    assert_eq!(review_posts, 1, "the retry saw the stored review and did not post again");
    let world = app.fake.world();
    assert_eq!(world.reviews.len(), 1);
    assert_eq!(world.review_comments.len(), 1, "one comment");
    assert_eq!(world.issue_comments.iter().filter(|c| c.body.starts_with(SUMMARY_MARKER)).count(), 1);
    assert_eq!(world.check_runs[0].conclusion.as_deref(), Some("failure"));
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_review_falls_back_to_the_summary() {
    let app = start().await;
    app.fake.fail_next("POST", &format!("/repos/{TEST_REPO}/pulls/13/reviews"), 422, 1);
    app.open(13, &[(CHECKOUT, Some(&with_replicas(&app)))]).await;
    let world = app.fake.world();
    assert!(world.review_comments.is_empty());
    let summary = world.issue_comments.iter().find(|c| c.body.starts_with(SUMMARY_MARKER)).expect("a summary");
    assert!(summary.body.contains("Findings not commented inline"), "{}", summary.body);
    assert!(summary.body.contains("hpa-replicas-conflict") && summary.body.contains("apps/checkout/deployment.yaml:9"));
    let run = &world.check_runs[0];
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert!(run.summary.as_deref().is_some_and(|s| s.contains("Findings not commented inline")));
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_in_a_review_thread_are_answered_in_the_thread() {
    let app = start().await;
    app.open(15, &[(CHECKOUT, Some(&with_replicas(&app)))]).await;
    let thread = {
        let world = app.fake.world();
        world
            .review_comments
            .iter()
            .find(|c| c.user.kind == "Bot" && c.in_reply_to_id.is_none())
            .map(|c| c.id)
            .expect("kpath commented inline")
    };
    let reply = app.review_reply_event(15, thread, "/kpath explain hpa-replicas-conflict");
    assert_eq!(app.send("pull_request_review_comment", &reply).await, 202);
    app.running.idle().await;
    let world = app.fake.world();
    let rule = crate::rules::find("hpa-replicas-conflict").expect("rule");
    let answers: Vec<_> = world
        .review_comments
        .iter()
        .filter(|c| c.user.kind == "Bot" && c.in_reply_to_id == Some(thread))
        .filter(|c| c.body == rule.explanation_markdown())
        .collect();
    assert_eq!(answers.len(), 1, "the answer is a reply in the thread");
    assert!(!world.issue_comments.iter().any(|c| c.body == rule.explanation_markdown()), "and not in the conversation");
    assert!(world.reactions.iter().any(|r| r.on_review_comment && r.content == "eyes"), "👀 on the reply");
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_answered() {
    let app = start().await;
    let head = app.open(14, &[(CHECKOUT, Some(&with_replicas(&app)))]).await;

    let explain = app.comment_event(14, "Why?\n\n/kpath explain hpa-replicas-conflict");
    assert_eq!(app.send("issue_comment", &explain).await, 202);
    let all = app.comment_event(14, "/kpath explain");
    assert_eq!(app.send("issue_comment", &all).await, 202);
    let typo = app.comment_event(14, "/kpath explian");
    assert_eq!(app.send("issue_comment", &typo).await, 202);
    let quoted = app.comment_event(14, "> /kpath help\n\n`/kpath help` is in a code span");
    assert_eq!(app.send("issue_comment", &quoted).await, 202);
    app.running.idle().await;
    {
        let world = app.fake.world();
        let replies: Vec<&str> = world
            .issue_comments
            .iter()
            .filter(|c| c.user.kind == "Bot" && !c.body.starts_with(SUMMARY_MARKER))
            .map(|c| c.body.as_str())
            .collect();
        let rule = crate::rules::find("hpa-replicas-conflict").expect("rule");
        assert_eq!(replies.iter().filter(|r| **r == rule.explanation_markdown()).count(), 1, "{replies:#?}");
        // Without a rule id: a compact list of the rules with new findings, not every explanation.
        let list = replies.iter().find(|r| r.starts_with("The rules with new findings")).expect("the list");
        assert!(list.contains("| `hpa-replicas-conflict` (error) | 1 |"), "{list}");
        assert!(list.lines().count() < 12, "{list}");
        assert!(replies.iter().any(|r| r.contains("Did you mean `/kpath explain`?")), "{replies:#?}");
        assert_eq!(replies.len(), 3);
        let eyes = world.reactions.iter().filter(|r| r.content == "eyes").count();
        assert_eq!(eyes, 3, "👀 on each handled comment");
    }

    let recheck = app.comment_event(14, "/kpath recheck");
    assert_eq!(app.send("issue_comment", &recheck).await, 202);
    // The recheck goes back into the queue; wait for its check run (bounded, not timed).
    for _ in 0..600 {
        app.running.idle().await;
        let done = app.fake.world().check_runs.iter().filter(|r| r.head_sha == head && r.status == "completed").count();
        if done == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let world = app.fake.world();
    assert_eq!(world.check_runs.len(), 2, "recheck reviewed the head again");
    assert_eq!(world.review_comments.len(), 1, "without commenting twice");
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chart_completes_the_check_run_with_the_error() {
    let app = start().await;
    let path = "charts/storefront/templates/deployment.yaml";
    let broken = app.read(path).replacen("{{", "{{ if", 1);
    app.open(15, &[(path, Some(&broken))]).await;
    let world = app.fake.world();
    let run = &world.check_runs[0];
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    let summary = run.summary.as_deref().unwrap_or("");
    assert!(summary.contains("render-failed"), "{summary}");
    assert!(run.annotations.iter().any(|a| a["title"] == "render-failed"), "{:?}", run.annotations);
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_and_github_failures_complete_the_check_run_with_an_explanation() {
    let app = start().await;
    // The repository cannot be fetched.
    app.fake.world().git_root = Some(app.dir.path().join("nowhere"));
    app.open(16, &[(CHECKOUT, Some(&with_replicas(&app)))]).await;
    {
        let world = app.fake.world();
        let run = &world.check_runs[0];
        assert_eq!(run.conclusion.as_deref(), Some("failure"));
        assert_eq!(run.title.as_deref(), Some("kpath could not review this commit"));
        let summary = run.summary.as_deref().unwrap_or("");
        // A short reason and a reference; git's and GitHub's own error text only in the log.
        assert!(summary.contains("could not fetch the pull request's commits"), "{summary}");
        assert!(summary.contains("Reference for kpath's operators: `"), "{summary}");
        assert!(!summary.contains("class=Http") && !summary.contains("refs/"), "{summary}");
        assert!(world.review_comments.is_empty());
    }
    // GitHub's compare API keeps failing: retried, then explained.
    app.fake.world().git_root = Some(app.dir.path().join("served"));
    app.fake.fail_next("GET", &format!("/repos/{TEST_REPO}/compare"), 503, 10);
    app.synchronize(16, &[(CHECKOUT, Some(&with_replicas(&app).replace("512Mi", "600Mi")))]).await;
    let world = app.fake.world();
    let run = world.check_runs.last().expect("a run");
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert!(run.summary.as_deref().is_some_and(|s| s.contains("GitHub did not answer")), "{:?}", run.summary);
    assert!(run.summary.as_deref().is_some_and(|s| !s.contains("injected fault")), "{:?}", run.summary);
    // The details are in the log line that carries the reference, with the job's context (a span).
    let reference = run.summary.as_deref().and_then(|s| s.split("`").nth(3)).unwrap_or("-").to_string();
    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    let line = logs.lines().find(|l| l.contains(&format!("correlation=\"{reference}\""))).unwrap_or("");
    for part in ["injected fault", "repo=octo/gitops", "pull=16", "delivery=", "attempt=1", "review failed"] {
        assert!(line.contains(part), "{part} in {line:?}");
    }
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_suite_from_a_fork_finds_its_pull_request_by_head() {
    let app = start().await;
    let head = app.push(17, &[(CHECKOUT, Some(&with_replicas(&app)))]);
    let mut pull = Pull::new(17, &head, &app.base).with_files(app.files(&head));
    pull.head_repo = Some("someone/gitops".to_string());
    app.fake.add_pull(TEST_REPO, pull);
    let mut payload = adapt(example("check_suite", "requested"));
    payload["check_suite"]["head_sha"] = json!(head);
    payload["check_suite"]["pull_requests"] = json!([]);
    assert_eq!(app.send("check_suite", &payload).await, 202);
    app.running.idle().await;
    let world = app.fake.world();
    assert_eq!(world.check_runs.len(), 1);
    assert_eq!(world.review_comments.len(), 1);
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_re_run_button_reviews_the_head_again() {
    let app = start().await;
    let head = app.open(18, &[(CHECKOUT, Some(&with_replicas(&app)))]).await;
    let mut payload = adapt(example("check_run", "requested_action"));
    payload["check_run"]["name"] = json!("kpath");
    payload["check_run"]["head_sha"] = json!(head);
    payload["check_run"]["pull_requests"] = json!([{ "number": 18 }]);
    payload["requested_action"] = json!({ "identifier": "rerun" });
    assert_eq!(app.send("check_run", &payload).await, 202);
    app.running.idle().await;
    let world = app.fake.world();
    let runs: Vec<_> = world.check_runs.iter().filter(|r| r.head_sha == head).collect();
    assert_eq!(runs.len(), 2, "a second check run");
    assert!(runs.iter().all(|r| r.conclusion.as_deref() == Some("failure")));
    assert_eq!(world.review_comments.len(), 1, "and no second comment");
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_announced_twice_is_reviewed_once() {
    let app = start().await;
    let head = app.open(19, &[(CHECKOUT, Some(&with_replicas(&app)))]).await;
    let mut payload = adapt(example("check_suite", "requested"));
    payload["check_suite"]["head_sha"] = json!(head);
    payload["check_suite"]["pull_requests"] = json!([{ "number": 19 }]);
    // Answered at once: the head was already taken, so nothing is stored.
    assert_eq!(app.send("check_suite", &payload).await, 200);
    app.running.idle().await;
    assert_eq!(app.fake.world().check_runs.len(), 1, "one check run per push");
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_run_is_completed_even_when_github_fails_for_a_while() {
    let app = start().await;
    // Every attempt of the first two completion rounds fails (the client tries four times a round).
    app.fake.fail_next("PATCH", &format!("/repos/{TEST_REPO}/check-runs"), 503, 8);
    app.open(20, &[(CHECKOUT, Some(&with_replicas(&app)))]).await;
    let world = app.fake.world();
    let run = &world.check_runs[0];
    assert_eq!(run.conclusion.as_deref(), Some("failure"), "completed with the review's own conclusion");
    assert!(!run.annotations.is_empty());
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_cannot_switch_off_the_rule_that_judges_it() {
    let app = start().await;
    let config = app.read(".kpath.yml").replace(
        "  resources-cpu-limit: off",
        "  resources-cpu-limit: off\n  hpa-replicas-conflict: off\n  secret-in-env: notice",
    );
    app.open(11, &[(CHECKOUT, Some(&with_replicas(&app))), (".kpath.yml", Some(&config))]).await;
    let world = app.fake.world();
    assert_eq!(world.check_runs[0].conclusion.as_deref(), Some("failure"), "judged by the base's configuration");
    assert!(
        world.review_comments.iter().any(|c| c.path == CHECKOUT && c.body.contains("`hpa-replicas-conflict`")),
        "the finding the PR tried to switch off is still commented"
    );
    let summary = world.issue_comments.iter().find(|c| c.body.starts_with(SUMMARY_MARKER)).expect("a summary");
    assert!(summary.body.contains("weakens the gate: it turns off `hpa-replicas-conflict`"), "{}", summary.body);
    assert!(summary.body.contains("it lowers `secret-in-env` from error to notice"), "{}", summary.body);
    drop(world);
    app.assert_clean();
}
