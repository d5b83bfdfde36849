//! `kpath serve`'s Prometheus metrics: [`METRICS`] is the one list of every metric's name, type, labels and
//! help; the typed functions below are what the rest of kpath calls; [`router`] serves `GET /metrics` in
//! Prometheus' text format (version 0.0.4).
//!
//! Recording goes through the `metrics` facade to `metrics-exporter-prometheus`'s recorder, installed once per
//! process ([`install`]); the exporter's own HTTP listener is not compiled in, our axum server serves the
//! rendered text. Every label value comes from a fixed set (event names kpath knows, outcomes, check-run
//! conclusions, HTTP status codes, renderer names), so no request can create new series.
//!
//! See <https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format> and
//! <https://docs.rs/metrics-exporter-prometheus/0.18>.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// What a metric is to Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric: its name, type, label names and help text.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

pub const WEBHOOKS: &str = "kpath_webhooks_total";
pub const GITHUB_REQUESTS: &str = "kpath_github_requests_total";
pub const GITHUB_RATE_LIMIT_REMAINING: &str = "kpath_github_rate_limit_remaining";
pub const QUEUE_DEPTH: &str = "kpath_queue_depth";
pub const JOBS_RUNNING: &str = "kpath_jobs_running";
pub const REVIEWS: &str = "kpath_reviews_total";
pub const REVIEW_DURATION: &str = "kpath_review_duration_seconds";
pub const RENDER_DURATION: &str = "kpath_render_duration_seconds";

/// Every metric kpath exports.
pub const METRICS: &[Metric] = &[
    Metric {
        name: WEBHOOKS,
        kind: Kind::Counter,
        labels: &["event", "outcome"],
        help: "Webhook deliveries received, by GitHub event (other: one kpath does not know) and outcome.",
    },
    Metric {
        name: GITHUB_REQUESTS,
        kind: Kind::Counter,
        labels: &["status"],
        help: "Requests to GitHub's API, by HTTP status code (error: no response came).",
    },
    Metric {
        name: GITHUB_RATE_LIMIT_REMAINING,
        kind: Kind::Gauge,
        labels: &[],
        help: "Requests left in GitHub's rate-limit window, as its last response said (x-ratelimit-remaining).",
    },
    Metric { name: QUEUE_DEPTH, kind: Kind::Gauge, labels: &[], help: "Jobs waiting to run." },
    Metric { name: JOBS_RUNNING, kind: Kind::Gauge, labels: &[], help: "Jobs running now." },
    Metric {
        name: REVIEWS,
        kind: Kind::Counter,
        labels: &["conclusion"],
        help: "Reviews finished, by the conclusion of their check run.",
    },
    Metric {
        name: REVIEW_DURATION,
        kind: Kind::Histogram,
        labels: &[],
        help: "Time from a review job's start to its completed check run, in seconds.",
    },
    Metric {
        name: RENDER_DURATION,
        kind: Kind::Histogram,
        labels: &["renderer"],
        help: "Time to render one unit (a chart release, a Kustomize root, a declared deployment), in seconds.",
    },
];

/// Buckets of [`REVIEW_DURATION`]: 0.1 s to 10 min.
const REVIEW_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];
/// Buckets of [`RENDER_DURATION`]: 10 ms to 2 min (a render's default time limit is 60 s).
const RENDER_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];
/// How often histogram samples are folded into their buckets when nobody scrapes (a scrape does it too).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Besides the events kpath reads ([`super::events::HANDLED`]), those GitHub sends every App or a repository
/// hook may: counted by name. Any other name is counted as `other`.
const OTHER_KNOWN_EVENTS: &[&str] = &["github_app_authorization", "ping", "push"];

/// What kpath did with a webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Turned into a job (202).
    Accepted,
    /// A delivery id seen before (200).
    Duplicate,
    /// An event or action kpath does not act on (200).
    Ignored,
    /// A missing or wrong signature (401).
    Unauthorized,
    /// A signed body that could not be read or parsed (400).
    BadRequest,
    /// A body over GitHub's maximum (413).
    TooLarge,
    /// kpath could not take it now: shutting down, or the job could not be stored (503).
    Unavailable,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Unauthorized => "unauthorized",
            Outcome::BadRequest => "bad_request",
            Outcome::TooLarge => "too_large",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// Check-run conclusions (<https://docs.github.com/rest/checks/runs#update-a-check-run>); others are `other`.
const CONCLUSIONS: &[&str] =
    &["success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required", "stale"];

/// `value` if it is one of `known`, else `other`: a label value from a fixed set.
fn known_or_other(value: &str, known: &[&'static str]) -> &'static str {
    known.iter().copied().find(|k| *k == value).unwrap_or("other")
}

/// Counts a webhook delivery.
pub fn webhook(event: &str, outcome: Outcome) {
    let event = match known_or_other(event, &super::events::HANDLED) {
        "other" => known_or_other(event, OTHER_KNOWN_EVENTS),
        handled => handled,
    };
    ::metrics::counter!(WEBHOOKS, "event" => event, "outcome" => outcome.label()).increment(1);
}

/// Counts a request to GitHub by the status of its answer; `0` (or anything that is not an HTTP status) for a
/// request that got no answer (connection refused, timeout).
pub fn github_request(status: u16) {
    let status = if (100..=599).contains(&status) { status.to_string() } else { "error".to_string() };
    ::metrics::counter!(GITHUB_REQUESTS, "status" => status).increment(1);
}

/// Records GitHub's `x-ratelimit-remaining` from its last answer.
pub fn github_rate_limit_remaining(remaining: u64) {
    ::metrics::gauge!(GITHUB_RATE_LIMIT_REMAINING).set(remaining as f64);
}

/// Records how many jobs wait.
pub fn queue_depth(waiting: usize) {
    ::metrics::gauge!(QUEUE_DEPTH).set(waiting as f64);
}

/// Records how many jobs run.
pub fn jobs_running(running: usize) {
    ::metrics::gauge!(JOBS_RUNNING).set(running as f64);
}

/// Counts a finished review by its check run's conclusion (`success`, `failure`, `neutral`, `cancelled`, …)
/// and records how long it took.
pub fn review_finished(conclusion: &str, seconds: f64) {
    let conclusion = known_or_other(conclusion, CONCLUSIONS);
    ::metrics::counter!(REVIEWS, "conclusion" => conclusion).increment(1);
    ::metrics::histogram!(REVIEW_DURATION).record(seconds);
}

/// Records how long one unit took to render, by renderer (`helm`, `kustomize`, `argocd`, `flux`: names are
/// compiled in, so the set is fixed).
pub fn render(renderer: &'static str, seconds: f64) {
    ::metrics::histogram!(RENDER_DURATION, "renderer" => renderer).record(seconds);
}

/// The recorder's handle, set up on first use.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder (once; later calls return the same
/// handle), describes every metric, starts at zero the gauges a scaler reads, and has the render layer report
/// each render's time ([`crate::render::set_render_observer`]).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = match recorder() {
                Ok(recorder) => {
                    let handle = recorder.handle();
                    if ::metrics::set_global_recorder(recorder).is_err() {
                        // Another recorder was set first: ours renders what it has (nothing), and kpath works on.
                        tracing::warn!("metrics: another recorder is installed; /metrics will be empty");
                    }
                    handle
                }
                Err(error) => {
                    tracing::warn!("metrics: histogram buckets refused ({error}); histograms are summaries");
                    let recorder = PrometheusBuilder::new().build_recorder();
                    let handle = recorder.handle();
                    let _ = ::metrics::set_global_recorder(recorder);
                    handle
                }
            };
            for metric in METRICS {
                match metric.kind {
                    Kind::Counter => ::metrics::describe_counter!(metric.name, metric.help),
                    Kind::Gauge => ::metrics::describe_gauge!(metric.name, metric.help),
                    Kind::Histogram => ::metrics::describe_histogram!(metric.name, metric.help),
                }
            }
            // A scaler on the queue's depth needs the series before the first job.
            queue_depth(0);
            jobs_running(0);
            crate::render::set_render_observer(|renderer, took| render(renderer, took.as_secs_f64()));
            let upkeep = handle.clone();
            let started = std::thread::Builder::new().name("kpath-metrics".into()).spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
            if let Err(error) = started {
                tracing::warn!("metrics: no upkeep thread ({error}); histograms are folded at each scrape");
            }
            handle
        })
        .clone()
}

fn recorder() -> Result<PrometheusRecorder, metrics_exporter_prometheus::BuildError> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REVIEW_DURATION.to_string()), REVIEW_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(RENDER_DURATION.to_string()), RENDER_BUCKETS)?
        .build_recorder())
}

/// Prometheus' text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// `GET /metrics`, installing the recorder if it is not yet.
pub fn router() -> Router {
    let handle = install();
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render()) }
        }),
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    /// `/metrics` as text.
    async fn scrape(app: &Router) -> (StatusCode, String, String) {
        let request = Request::get("/metrics").body(Body::empty()).expect("request");
        let response = app.clone().oneshot(request).await.expect("answered");
        let status = response.status();
        let content_type =
            response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        (status, content_type, String::from_utf8_lossy(&body).into_owned())
    }

    /// The label names of each sample line of `name` (`name{a="x",b="y"} 1` → `["a", "b"]`).
    fn label_sets(text: &str, name: &str) -> Vec<Vec<String>> {
        text.lines()
            .filter_map(|line| line.strip_prefix(name))
            .filter(|rest| rest.starts_with('{') || rest.starts_with(' '))
            .map(|rest| {
                let inside = rest.strip_prefix('{').and_then(|r| r.split_once('}')).map_or("", |(i, _)| i);
                inside.split(',').filter_map(|pair| pair.split_once('=')).map(|(k, _)| k.to_string()).collect()
            })
            .collect()
    }

    #[tokio::test]
    async fn every_metric_is_served_with_help_type_and_its_labels() {
        let app = router();
        webhook("pull_request", Outcome::Accepted);
        webhook("a-made-up-event\n", Outcome::Ignored);
        github_request(201);
        github_request(0);
        github_rate_limit_remaining(4_999);
        queue_depth(3);
        jobs_running(2);
        review_finished("success", 12.5);
        review_finished("something-new", 0.05);
        render("helm", 0.3);
        let (status, content_type, text) = scrape(&app).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, CONTENT_TYPE);
        for metric in METRICS {
            let kind = match metric.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            assert!(text.contains(&format!("# HELP {} {}\n", metric.name, metric.help)), "{}:\n{text}", metric.name);
            assert!(text.contains(&format!("# TYPE {} {kind}\n", metric.name)), "{}:\n{text}", metric.name);
            let sample =
                if metric.kind == Kind::Histogram { format!("{}_bucket", metric.name) } else { metric.name.into() };
            let sets = label_sets(&text, &sample);
            assert!(!sets.is_empty(), "no samples of {sample}:\n{text}");
            for set in sets {
                let mut expected: Vec<String> = metric.labels.iter().map(|l| l.to_string()).collect();
                if metric.kind == Kind::Histogram {
                    expected.push("le".into());
                }
                assert_eq!(set, expected, "{sample}:\n{text}");
            }
        }
        // Label values come from fixed sets.
        assert!(text.contains(r#"kpath_webhooks_total{event="pull_request",outcome="accepted"}"#), "{text}");
        assert!(text.contains(r#"kpath_webhooks_total{event="other",outcome="ignored"}"#), "{text}");
        assert!(!text.contains("made-up"), "{text}");
        assert!(text.contains(r#"kpath_github_requests_total{status="201"}"#), "{text}");
        assert!(text.contains(r#"kpath_github_requests_total{status="error"}"#), "{text}");
        assert!(text.contains(r#"kpath_reviews_total{conclusion="other"}"#), "{text}");
        assert!(text.contains(r#"kpath_review_duration_seconds_bucket{le="600"}"#), "{text}");
        assert!(text.contains(r#"kpath_render_duration_seconds_bucket{renderer="helm",le="0.5"}"#), "{text}");
        // Installing again changes nothing.
        let again = install();
        assert!(again.render().contains("# TYPE kpath_queue_depth gauge"));
    }

    /// A renderer that renders nothing, for timing the engine's renders.
    struct Stub;

    impl crate::render::Renderer for Stub {
        fn name(&self) -> &'static str {
            "stub-renderer"
        }
        fn discover(&self, tree: &dyn crate::render::Tree, _: &crate::config::Config) -> crate::render::Discovery {
            let units = tree
                .files()
                .iter()
                .filter(|f| f.ends_with("unit.yaml"))
                .map(|f| crate::render::Unit {
                    renderer: "stub-renderer",
                    root: f.trim_end_matches("unit.yaml").trim_end_matches('/').to_string(),
                    file: f.clone(),
                    environment: None,
                    inputs: [f.clone()].into(),
                    detail: std::sync::Arc::new(()),
                    declared: false,
                })
                .collect();
            crate::render::Discovery { units, ..Default::default() }
        }
        fn ready(&self) -> Result<(), String> {
            Ok(())
        }
        fn render(
            &self,
            _: &crate::render::Unit,
            _: &crate::render::RenderCx<'_>,
        ) -> Result<crate::render::Output, crate::render::Problem> {
            Ok(crate::render::Output::default())
        }
    }

    /// Each unit the engine renders is timed by renderer, through the render layer's observer.
    #[test]
    fn the_engine_s_renders_are_timed_by_renderer() {
        let handle = install();
        let dir = tempfile::tempdir().expect("tempdir");
        for unit in ["a", "b"] {
            std::fs::create_dir_all(dir.path().join(unit)).expect("mkdir");
            std::fs::write(dir.path().join(unit).join("unit.yaml"), "kind: Nothing\n").expect("write");
        }
        let renderers: Vec<Box<dyn crate::render::Renderer>> = vec![Box::new(Stub)];
        crate::engine::check_paths(&[dir.path().to_path_buf()], &crate::config::Config::default(), &renderers);
        let text = handle.render();
        let count = text
            .lines()
            .find_map(|l| l.strip_prefix(r#"kpath_render_duration_seconds_count{renderer="stub-renderer"} "#))
            .and_then(|v| v.parse::<u64>().ok());
        assert_eq!(count, Some(2), "{text}");
    }

    #[test]
    fn label_values_are_bounded() {
        assert_eq!(known_or_other("check_run", &crate::app::events::HANDLED), "check_run");
        assert_eq!(known_or_other("ping", OTHER_KNOWN_EVENTS), "ping");
        assert_eq!(known_or_other(&"e".repeat(30_000), OTHER_KNOWN_EVENTS), "other");
        assert_eq!(known_or_other("", &crate::app::events::HANDLED), "other");
        assert_eq!(known_or_other("timed_out", CONCLUSIONS), "timed_out");
    }
}
