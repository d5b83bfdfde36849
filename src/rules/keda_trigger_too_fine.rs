//! `keda-trigger-too-fine`: a KEDA ScaledObject that reacts to noise (short PromQL rate windows, tiny
//! thresholds, very frequent polling).

use super::{Check, Emitter, Example, ObjectCx, OptionKind, Rule, RuleOption};
use crate::finding::Severity;
use crate::quantity::parse_duration_ms;
use crate::yaml::{Node, Route};

pub static RULE: Rule = Rule {
    id: "keda-trigger-too-fine",
    section: "KEDA (Kubernetes-based Event Driven Autoscaler)",
    severity: Severity::Warning,
    summary: "KEDA ScaledObject scales on a signal too fine-grained to act on",
    why: "Adding a replica takes at least half a minute from the scaling decision to a pod that serves, \
and usually longer. A trigger that reacts faster than that, such as a PromQL `rate` over a few seconds, a \
threshold of one event per pod, or a metric polled every couple of seconds, sees every short burst as a \
trend: pods are added for load that is gone before they are ready and removed again a moment later. The \
flapping costs capacity and restarts and makes the workload less stable than a fixed size would. Smoothing \
the signal over a window comparable to the time a scale-up takes, with a threshold that means real \
pressure, lets KEDA act on load that lasts. The threshold check covers Prometheus triggers only, where \
`threshold` is the target value per pod; other scalers give their thresholds other meanings.",
    fix: "Widen the Prometheus range window (`rate(...[2m])` or more), raise `threshold` to the load one pod \
should carry, and keep `pollingInterval` at 15 seconds or more (KEDA's default is 30). If a fast reaction \
is really needed, tune the HPA behaviour (`advanced.horizontalPodAutoscalerConfig.behavior`) instead of \
sharpening the signal.",
    secret: false,
    options: &[
        RuleOption {
            name: "minRateWindow",
            kind: OptionKind::Duration,
            default: "2m",
            doc: "Shortest range window accepted in `rate`, `irate` and `increase` of a Prometheus trigger's query \
                  (a Prometheus duration).",
        },
        RuleOption {
            name: "minThreshold",
            kind: OptionKind::Number,
            default: "1",
            doc: "A Prometheus trigger's `threshold` must be above this value.",
        },
        RuleOption {
            name: "minPollingInterval",
            kind: OptionKind::Number,
            default: "15",
            doc: "Smallest `pollingInterval` accepted, in seconds.",
        },
    ],
    suggest: None,
    bad: Example {
        dir: "keda-trigger-too-fine/bad",
        files: &[
            ("deployment.yaml", include_str!("../../fixtures/rules/keda-trigger-too-fine/bad/deployment.yaml")),
            ("scaledobject.yaml", include_str!("../../fixtures/rules/keda-trigger-too-fine/bad/scaledobject.yaml")),
        ],
    },
    good: Example {
        dir: "keda-trigger-too-fine/good",
        files: &[
            ("deployment.yaml", include_str!("../../fixtures/rules/keda-trigger-too-fine/good/deployment.yaml")),
            ("scaledobject.yaml", include_str!("../../fixtures/rules/keda-trigger-too-fine/good/scaledobject.yaml")),
        ],
    },
    check: Check::Object(check),
};

const DEFAULT_MIN_RATE_WINDOW_MS: u64 = 120_000;
const DEFAULT_MIN_THRESHOLD: f64 = 1.0;
const DEFAULT_MIN_POLLING_INTERVAL: f64 = 15.0;

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let object = &cx.object;
    if !matches!(object.group(), "keda.sh" | "keda.k8s.io") || object.kind != "ScaledObject" {
        return;
    }
    // Options were checked when the configuration loaded; the defaults are for a configuration built
    // without them (library callers).
    let (min_window_ms, min_window_text) = match cx.options.duration_ms("minRateWindow") {
        Some(ms) => (ms, cx.options.text("minRateWindow")),
        None => (DEFAULT_MIN_RATE_WINDOW_MS, "2m".to_string()),
    };
    let min_threshold = cx.options.number("minThreshold").unwrap_or(DEFAULT_MIN_THRESHOLD);
    let min_polling = cx.options.number("minPollingInterval").unwrap_or(DEFAULT_MIN_POLLING_INTERVAL);

    // A pollingInterval that is not an integer is `manifest-invalid`'s to report.
    if let Some(seconds) = object.root.get_path(&["spec", "pollingInterval"]).and_then(Node::as_int)
        && (seconds as f64) < min_polling
    {
        out.at(
            Route::root().key("spec").key("pollingInterval"),
            format!(
                "ScaledObject `{}` polls its triggers every {seconds}s, more often than the {min_polling}s minimum: \
                 KEDA reacts to readings that change faster than pods can start",
                object.name
            ),
        );
    }

    let triggers = object.root.get_path(&["spec", "triggers"]).map(Node::items).unwrap_or_default();
    for (i, trigger) in triggers.iter().enumerate() {
        if trigger.get("type").and_then(Node::as_text) != Some("prometheus") {
            continue;
        }
        let route = Route::root().key("spec").key("triggers").index(i).key("metadata");
        let Some(metadata) = trigger.get("metadata") else { continue };
        if let Some(query) = metadata.get("query").and_then(Node::as_text) {
            let shortest = rate_windows(query)
                .into_iter()
                .filter_map(|w| Some((parse_duration_ms(w.window)?, w)))
                .filter(|(ms, _)| *ms < min_window_ms)
                .min_by_key(|(ms, _)| *ms);
            if let Some((_, w)) = shortest {
                out.at(
                    route.key("query"),
                    format!(
                        "Prometheus trigger {i} takes `{}` over `[{}]`, shorter than {min_window_text}: a window \
                         that short follows every spike, so the ScaledObject scales on noise",
                        w.function, w.window
                    ),
                );
            }
        }
        if let Some(threshold) = metadata.get("threshold").and_then(Node::as_text)
            && let Ok(value) = threshold.trim().parse::<f64>()
            && value <= min_threshold
        {
            out.at(
                route.key("threshold"),
                format!(
                    "Prometheus trigger {i} has `threshold: {}`, at or below {min_threshold}: every small rise in \
                     the metric asks for another pod",
                    threshold.trim()
                ),
            );
        }
    }
}

/// A range window of a rate-like function call in a PromQL query.
#[derive(Debug, PartialEq, Eq)]
struct RateWindow<'a> {
    function: &'static str,
    /// The range as written, e.g. `1m` (the range part of a subquery `[5m:30s]`).
    window: &'a str,
}

const RATE_FUNCTIONS: &[&str] = &["rate", "irate", "increase"];

/// Finds the range windows of `rate`, `irate` and `increase` calls. A small scanner rather than a
/// PromQL parser: it skips string literals and only looks at the call's own argument, which is enough
/// for the windows people write. Nested calls are found too.
fn rate_windows(query: &str) -> Vec<RateWindow<'_>> {
    let bytes = query.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if matches!(b, b'"' | b'\'' | b'`') {
            i = skip_string(bytes, i);
            continue;
        }
        if !is_ident(b) || (i > 0 && is_ident(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        let Some(function) = RATE_FUNCTIONS.iter().find(|f| **f == &query[start..i]) else { continue };
        let mut j = i;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if bytes.get(j) != Some(&b'(') {
            continue;
        }
        if let Some(window) = call_window(query, j + 1) {
            found.push(RateWindow { function, window });
        }
    }
    found
}

/// The first range selector at the top level of a call's argument, which starts at `from`.
fn call_window(query: &str, from: usize) -> Option<&str> {
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut k = from;
    while k < bytes.len() {
        match bytes[k] {
            b'"' | b'\'' | b'`' => {
                k = skip_string(bytes, k);
                continue;
            }
            b'(' | b'{' => depth += 1,
            b')' | b'}' if depth == 0 => return None,
            b')' | b'}' => depth -= 1,
            b'[' if depth == 0 => {
                let end = query[k + 1..].find(']')? + k + 1;
                let inner = &query[k + 1..end];
                return Some(inner.split(':').next().unwrap_or(inner).trim());
            }
            _ => {}
        }
        k += 1;
    }
    None
}

/// The index just past the string literal that starts at `start` (or the end of the text).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut k = start + 1;
    while k < bytes.len() {
        if bytes[k] == b'\\' && quote != b'`' {
            k += 2;
            continue;
        }
        if bytes[k] == quote {
            return k + 1;
        }
        k += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rules::testing::{lines_and_messages, object_findings_with};

    fn messages_with(yaml: &str, config: &Config) -> Vec<(u32, String)> {
        lines_and_messages(&object_findings_with(&RULE, yaml, config))
    }

    fn messages(yaml: &str) -> Vec<(u32, String)> {
        messages_with(yaml, &Config::default())
    }

    fn scaled_object(api: &str, polling: &str, query: &str, threshold: &str) -> String {
        format!(
            "apiVersion: {api}\nkind: ScaledObject\nmetadata:\n  name: web\nspec:\n  scaleTargetRef:\n    name: web\n\
             {polling}  triggers:\n    - type: prometheus\n      metadata:\n        serverAddress: http://prom:9090\n        \
             query: {query}\n        threshold: {threshold}\n"
        )
    }

    #[test]
    fn windows_are_found() {
        let w = |q| rate_windows(q).into_iter().map(|w| (w.function, w.window)).collect::<Vec<_>>();
        assert_eq!(w("rate(x[30s])"), vec![("rate", "30s")]);
        assert_eq!(w("sum(rate(http_requests_total{deployment=\"my-app\"}[2m]))"), vec![("rate", "2m")]);
        assert_eq!(
            w("sum(irate(a[1m])) / sum(increase (b{c=~\"[a-z]+\"}[ 5m ]))"),
            vec![("irate", "1m"), ("increase", "5m")]
        );
        assert_eq!(w("rate(max_over_time(x[10m])[1m:10s])"), vec![("rate", "1m")]);
        assert_eq!(w("rate(sum(rate(x[30s]))[5m:1m])"), vec![("rate", "5m"), ("rate", "30s")]);
        assert_eq!(w("my_rate(x[1s]) + x{l=\"rate(y[1s])\"} + separate(z[1s])"), vec![]);
        assert_eq!(w("rate(x"), vec![]);
        assert_eq!(w("rate(x[1m"), vec![]);
        assert_eq!(w("rate(\"unterminated"), vec![]);
        assert_eq!(w("rate(x[$__rate_interval])"), vec![("rate", "$__rate_interval")]);
        assert_eq!(w("rate(é{a=\"ü\\\"\"}[1m])"), vec![("rate", "1m")]);
        for odd in ["ratè(x[1m])", "\\", "rate(`a\\`[1m]", "rate([", "é", "\"", "rate(x[]", "rate()"] {
            let _ = rate_windows(odd);
        }
    }

    #[test]
    fn short_rate_window_is_too_fine() {
        let m = messages(&scaled_object("keda.sh/v1alpha1", "", "sum(rate(x[30s]))", "'100'"));
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].0, 12);
        assert!(m[0].1.contains("`rate` over `[30s]`, shorter than 2m"), "{m:?}");
        // The guideline's "don't": [1m] and threshold '1'.
        let m = messages(&scaled_object("keda.k8s.io/v1alpha1", "", "sum(rate(x[1m]))", "'1'"));
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[1].1.contains("`threshold: 1`, at or below 1"), "{m:?}");
    }

    #[test]
    fn wide_window_and_real_threshold_are_fine() {
        assert!(messages(&scaled_object("keda.sh/v1alpha1", "", "sum(rate(x[2m]))", "'100'")).is_empty());
        assert!(messages(&scaled_object("keda.sh/v1alpha1", "", "sum(rate(x[1h]))", "'1.5'")).is_empty());
        // Windows that are not durations (templating) and thresholds that are not numbers are skipped.
        assert!(messages(&scaled_object("keda.sh/v1alpha1", "", "rate(x[$w])", "'${T}'")).is_empty());
        assert_eq!(messages(&scaled_object("keda.sh/v1alpha1", "", "up", "'0.5'")).len(), 1);
    }

    #[test]
    fn polling_interval() {
        let m = messages(&scaled_object("keda.sh/v1alpha1", "  pollingInterval: 5\n", "up", "'10'"));
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].0, 8);
        assert!(m[0].1.contains("every 5s"), "{m:?}");
        assert!(messages(&scaled_object("keda.sh/v1alpha1", "  pollingInterval: 15\n", "up", "'10'")).is_empty());
        // Not an integer: manifest-invalid reports it.
        assert!(messages(&scaled_object("keda.sh/v1alpha1", "  pollingInterval: 5s\n", "up", "'10'")).is_empty());
    }

    #[test]
    fn options_override_defaults() {
        let config = Config::parse(
            "rules:\n  keda-trigger-too-fine:\n    minRateWindow: 5m\n    minThreshold: 10\n    minPollingInterval: 60\n",
            "c",
        )
        .expect("valid config");
        let m = messages_with(
            &scaled_object("keda.sh/v1alpha1", "  pollingInterval: 30\n", "rate(x[2m])", "'10'"),
            &config,
        );
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(m.iter().any(|(_, s)| s.contains("shorter than 5m")), "{m:?}");
    }

    #[test]
    fn other_kinds_and_trigger_types_are_ignored() {
        let so = scaled_object("keda.sh/v1alpha1", "", "rate(x[1s])", "'1'").replace("ScaledObject", "ScaledJob");
        assert!(messages(&so).is_empty());
        let so = scaled_object("keda.sh/v1alpha1", "", "rate(x[1s])", "'1'").replace("type: prometheus", "type: kafka");
        assert!(messages(&so).is_empty());
    }
}
