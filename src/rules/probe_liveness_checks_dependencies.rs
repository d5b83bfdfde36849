//! `probe-liveness-checks-dependencies`: a liveness probe that hits a readiness-style endpoint or repeats
//! the readiness probe, so an outage of a dependency restarts healthy pods.

use super::fix::{self, FixCx, Suggestion};
use super::resources_requests_missing::container_label;
use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::model::Container;
use crate::yaml::Node;

pub static RULE: Rule = Rule {
    id: "probe-liveness-checks-dependencies",
    section: "Healthchecks",
    severity: Severity::Warning,
    summary: "Liveness probe calls a readiness endpoint or repeats the readiness probe",
    why: "Readiness and liveness failures have very different consequences: a pod that is not ready is \
only taken out of the load balancer, but a pod that fails liveness is killed and restarted. Readiness \
endpoints usually check the app's dependencies (database, cache, downstream services), so when one of \
those has a short outage, a liveness probe pointed at the same check restarts every replica at once, \
although none of them was broken. The restarted pods then start cold against a dependency that is still \
down, and the outage spreads to everything that calls this app in turn: one failure cascades into many.",
    fix: "Point the liveness probe at a cheap endpoint that only proves the process can still answer \
(conventionally `/healthz`), and keep dependency checks in the readiness probe (`/readyz`). The two probes \
should not be the same check: if they are, the pod is restarted whenever it is merely not ready. With \
Spring Boot, use `/actuator/health/liveness` and `/actuator/health/readiness` rather than the aggregate \
`/actuator/health`.",
    secret: false,
    options: &[],
    suggest: Some(suggest),
    bad: Example {
        dir: "probe-liveness-checks-dependencies/bad",
        files: &[(
            "deployment.yaml",
            include_str!("../../fixtures/rules/probe-liveness-checks-dependencies/bad/deployment.yaml"),
        )],
    },
    good: Example {
        dir: "probe-liveness-checks-dependencies/good",
        files: &[(
            "deployment.yaml",
            include_str!("../../fixtures/rules/probe-liveness-checks-dependencies/good/deployment.yaml"),
        )],
    },
    check: Check::Object(check),
};

/// What a probe does, normalised so that two probes doing the same thing compare equal.
#[derive(Debug, PartialEq, Eq)]
enum Handler {
    Http { scheme: String, host: String, path: String, port: String },
    Exec(Vec<String>),
    Tcp { host: String, port: String },
    Grpc { port: String, service: String },
}

impl Handler {
    /// The probe's field holding this handler.
    fn field(&self) -> &'static str {
        match self {
            Handler::Http { .. } => "httpGet",
            Handler::Exec(_) => "exec",
            Handler::Tcp { .. } => "tcpSocket",
            Handler::Grpc { .. } => "grpc",
        }
    }

    fn describe(&self) -> String {
        match self {
            Handler::Http { path, port, .. } => format!("GET {path} on port {port}"),
            Handler::Exec(command) => format!("`{}`", command.join(" ")),
            Handler::Tcp { port, .. } => format!("a TCP connect to port {port}"),
            Handler::Grpc { port, service } if service.is_empty() => format!("a gRPC health check on port {port}"),
            Handler::Grpc { port, service } => format!("a gRPC health check of `{service}` on port {port}"),
        }
    }
}

/// A probe's handler; `None` when it has none (the API server rejects that; not ours to report).
fn handler(probe: &Node, c: &Container<'_>) -> Option<Handler> {
    let text = |node: &Node, key: &str| node.get(key).and_then(Node::as_text).unwrap_or_default().to_string();
    if let Some(http) = probe.get("httpGet").filter(|n| n.is_map()) {
        let scheme = http.get("scheme").and_then(Node::as_text).unwrap_or("HTTP").to_ascii_uppercase();
        return Some(Handler::Http {
            scheme,
            host: text(http, "host"),
            path: normalize_path(&text(http, "path")),
            port: port(http.get("port"), c),
        });
    }
    if let Some(exec) = probe.get("exec").filter(|n| n.is_map()) {
        let command = exec.get("command").map(Node::items).unwrap_or_default();
        let command: Vec<String> = command.iter().filter_map(Node::as_text).map(str::to_string).collect();
        // An exec probe without a command list is invalid; nothing to compare.
        return (!command.is_empty()).then_some(Handler::Exec(command));
    }
    if let Some(tcp) = probe.get("tcpSocket").filter(|n| n.is_map()) {
        return Some(Handler::Tcp { host: text(tcp, "host"), port: port(tcp.get("port"), c) });
    }
    if let Some(grpc) = probe.get("grpc").filter(|n| n.is_map()) {
        return Some(Handler::Grpc { port: port(grpc.get("port"), c), service: text(grpc, "service") });
    }
    None
}

/// A probe port as a number: named ports are resolved through the container's `ports`.
fn port(node: Option<&Node>, c: &Container<'_>) -> String {
    let text = node.and_then(Node::as_text).unwrap_or_default();
    if text.parse::<u32>().is_ok() {
        return text.to_string();
    }
    c.get("ports")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .find(|p| p.get("name").and_then(Node::as_text) == Some(text))
        .and_then(|p| p.get("containerPort").and_then(Node::as_text))
        .unwrap_or(text)
        .to_string()
}

/// `/healthz/` and `healthz` are the same path as `/healthz`; an empty path is `/`.
fn normalize_path(path: &str) -> String {
    let trimmed = path.trim().trim_end_matches('/');
    if trimmed.starts_with('/') { trimmed.to_string() } else { format!("/{trimmed}") }
}

fn segments(path: &str) -> Vec<String> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.split('/').filter(|s| !s.is_empty()).map(str::to_ascii_lowercase).collect()
}

/// `/readyz`, `/ready`, `/readiness`, `/health/ready`, `/actuator/health/readiness`, `/api/v1/readyz`…
fn is_readiness_path(path: &str) -> bool {
    let segs = segments(path);
    let last_is_ready = segs
        .last()
        .is_some_and(|s| matches!(s.as_str(), "ready" | "readyz" | "readiness" | "isready" | "is-ready" | "is_ready"));
    last_is_ready || segs.iter().any(|s| s == "readyz" || s == "readiness")
}

/// Spring Boot's `/actuator/health` aggregates every health indicator, the database's included.
fn is_aggregate_health(path: &str) -> bool {
    segments(path).ends_with(&["actuator".to_string(), "health".to_string()])
}

/// URL paths called by an exec probe (`curl -f http://localhost:8080/readyz`, `wget -qO- localhost/ready`).
fn exec_paths(command: &[String]) -> Vec<String> {
    command
        .iter()
        .flat_map(|arg| arg.split_whitespace())
        .filter_map(|token| {
            let token = token.trim_matches(['"', '\'']);
            let rest = match token.split_once("://") {
                Some((_, rest)) => rest,
                None if token.starts_with("localhost") || token.starts_with("127.0.0.1") => token,
                None => return None,
            };
            rest.find('/').map(|i| rest[i..].to_string())
        })
        .collect()
}

/// Lines a swapped pair of probes is looked for around the commented line.
const PROBE_SCAN: u32 = 30;

/// Swapped probe paths — the liveness probe calls the readiness endpoint while the readiness probe calls a
/// liveness-style one (`/healthz`) — are fixed by swapping the two `path:` values: one suggestion over the
/// lines from one to the other, made only when both are literal and found in the same container's block.
fn suggest(cx: &FixCx<'_>) -> Option<Suggestion> {
    let route = cx.finding.route.as_ref()?;
    let tail: Vec<&str> = route
        .0
        .iter()
        .rev()
        .take(3)
        .map(|s| match s {
            crate::yaml::Segment::Key(k) => k.as_str(),
            crate::yaml::Segment::Index(_) => "",
        })
        .collect();
    if tail != ["path", "httpGet", "livenessProbe"] {
        return None;
    }
    let line_at = |l: u32| (cx.head_line)(cx.file, l);
    let here = cx.text()?;
    let (key, live_path) = fix::key_value(&here)?;
    if key != "path" || live_path.contains("{{") || !is_readiness_path(live_path) {
        return None;
    }
    // `livenessProbe:` above the commented line, less indented.
    let probe_indent = (1..=8).find_map(|up| {
        let text = line_at(cx.line.checked_sub(up).filter(|l| *l >= 1)?)?;
        (fix::key_value(&text) == Some(("livenessProbe", "")) && fix::indent_of(&text) < fix::indent_of(&here))
            .then(|| fix::indent_of(&text))
    })?;
    // `readinessProbe:` at the same indentation, in the same block (never past a less indented line or `---`).
    let mut readiness = None;
    for direction in [-1i64, 1] {
        let mut l = i64::from(cx.line);
        for _ in 0..PROBE_SCAN {
            l += direction;
            let Some(text) = u32::try_from(l).ok().filter(|l| *l >= 1).and_then(line_at) else { break };
            if text.trim_start().starts_with("---")
                || (!fix::is_blank_or_comment(&text) && fix::indent_of(&text) < probe_indent)
            {
                break;
            }
            if fix::indent_of(&text) == probe_indent && fix::key_value(&text) == Some(("readinessProbe", "")) {
                readiness = u32::try_from(l).ok();
                break;
            }
        }
        if readiness.is_some() {
            break;
        }
    }
    // Its `path:`, literal and liveness-style.
    let (ready_line, ready_path) = (readiness? + 1..=readiness? + 8).find_map(|l| {
        let text = line_at(l)?;
        if fix::is_blank_or_comment(&text) {
            return None;
        }
        let (k, v) = fix::key_value(&text)?;
        (k == "path").then(|| (l, v.to_string()))
    })?;
    if ready_path.is_empty()
        || ready_path.contains("{{")
        || is_readiness_path(&ready_path)
        || is_aggregate_health(&ready_path)
        || fix::indent_of(&line_at(ready_line)?) <= probe_indent
    {
        return None;
    }
    let (first, last) = (cx.line.min(ready_line), cx.line.max(ready_line));
    let mut lines = Vec::new();
    for l in first..=last {
        let text = line_at(l)?;
        lines.push(match l {
            l if l == cx.line => fix::replace_value(&text, &ready_path)?,
            l if l == ready_line => fix::replace_value(&text, live_path)?,
            _ => text,
        });
    }
    Some(Suggestion { first, last, text: lines.join("\n") })
}

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    for c in pod.containers() {
        let Some(liveness) = c.get("livenessProbe") else { continue };
        let Some(live) = handler(liveness, c) else { continue };
        let same = c.get("readinessProbe").and_then(|r| handler(r, c)).is_some_and(|ready| ready == live);
        let probe_route = c.route.key("livenessProbe");
        let who = format!("the livenessProbe of {}", container_label(c));
        let called = match &live {
            Handler::Http { path, .. } => vec![path.clone()],
            Handler::Exec(command) => exec_paths(command),
            _ => Vec::new(),
        };
        let route = match &live {
            Handler::Http { .. } => probe_route.key("httpGet").key("path"),
            other => probe_route.key(other.field()),
        };
        let also_same = if same { ", and it is the same check as the readinessProbe" } else { "" };
        let message = if let Some(path) = called.iter().find(|p| is_readiness_path(p)) {
            format!(
                "{who} calls `{path}`, a readiness endpoint{also_same}: if a dependency it checks goes down, \
                 every replica is restarted instead of just being taken out of rotation"
            )
        } else if let Some(path) = called.iter().find(|p| is_aggregate_health(p)) {
            format!(
                "{who} calls `{path}`, Spring Boot's aggregate health, which includes every dependency's \
                 health indicator{also_same}: use `/actuator/health/liveness`"
            )
        } else if same {
            format!(
                "{who} is the same check as its readinessProbe ({}): whenever the pod is not ready, for \
                 example during a dependency outage, it is also restarted",
                live.describe()
            )
        } else {
            continue;
        };
        out.at(route, message);
    }
}

#[cfg(test)]
mod tests {
    use super::{RULE, exec_paths, is_aggregate_health, is_readiness_path};
    use crate::rules::testing::{messages, object_findings, routes, workload};

    fn probes(readiness: &str, liveness: &str) -> String {
        workload(
            "Deployment",
            &format!(
                "containers:\n  - name: web\n    image: a:1\n    ports:\n      - {{name: http, containerPort: 8080}}\n    \
                 readinessProbe: {readiness}\n    livenessProbe: {liveness}\n"
            ),
        )
    }

    #[test]
    fn readiness_paths() {
        for p in [
            "/readyz",
            "/ready",
            "/readiness",
            "/health/ready",
            "/actuator/health/readiness",
            "/api/v1/readyz",
            "/READY/",
            "/readyz?verbose=1",
            "/readiness/db",
        ] {
            assert!(is_readiness_path(p), "{p}");
        }
        for p in ["/healthz", "/livez", "/health/live", "/actuator/health/liveness", "/", "/already", "/ping"] {
            assert!(!is_readiness_path(p), "{p}");
        }
        assert!(is_aggregate_health("/actuator/health"));
        assert!(!is_aggregate_health("/actuator/health/liveness"));
    }

    #[test]
    fn the_guideline_swap_is_caught() {
        let yaml = probes("{httpGet: {path: /healthz, port: 8080}}", "{httpGet: {path: /readyz, port: 8080}}");
        let found = object_findings(&RULE, &yaml);
        let msgs = messages(&found);
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].starts_with("the livenessProbe of container `web` calls `/readyz`, a readiness endpoint:"));
        assert_eq!(routes(&found), vec!["spec.template.spec.containers[0].livenessProbe.httpGet.path"]);
    }

    #[test]
    fn identical_probes_are_caught_with_named_ports_resolved() {
        let yaml = probes("{httpGet: {path: /healthz, port: http}}", "{httpGet: {path: /healthz/, port: 8080}}");
        let msgs = messages(&object_findings(&RULE, &yaml));
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].contains("is the same check as its readinessProbe (GET /healthz on port 8080)"), "{msgs:?}");

        let yaml = probes("{tcpSocket: {port: 8080}}", "{tcpSocket: {port: http}}");
        assert_eq!(
            routes(&object_findings(&RULE, &yaml)),
            vec!["spec.template.spec.containers[0].livenessProbe.tcpSocket"]
        );
        let yaml = probes("{exec: {command: [check, --deep]}}", "{exec: {command: [check, --deep]}}");
        assert_eq!(messages(&object_findings(&RULE, &yaml)).len(), 1);
        let yaml = probes("{grpc: {port: 9090}}", "{grpc: {port: 9090}}");
        assert_eq!(messages(&object_findings(&RULE, &yaml)).len(), 1);
    }

    #[test]
    fn different_probes_are_fine() {
        for (r, l) in [
            ("{httpGet: {path: /readyz, port: 8080}}", "{httpGet: {path: /healthz, port: 8080}}"),
            ("{httpGet: {path: /healthz, port: 8080}}", "{httpGet: {path: /healthz, port: 9090}}"),
            ("{grpc: {port: 9090, service: ready}}", "{grpc: {port: 9090}}"),
            ("{exec: {command: [check, --deep]}}", "{exec: {command: [check]}}"),
            ("{tcpSocket: {port: 8080}}", "{httpGet: {path: /healthz, port: 8080}}"),
            ("null", "{httpGet: {path: /livez, port: 8080}}"),
            ("{httpGet: {path: /readyz, port: 8080}}", "{}"),
            ("{exec: {command: x}}", "{exec: {command: x}}"),
        ] {
            assert!(messages(&object_findings(&RULE, &probes(r, l))).is_empty(), "{r} / {l}");
        }
    }

    #[test]
    fn exec_and_spring_boot() {
        assert_eq!(
            exec_paths(&["sh".into(), "-c".into(), "curl -fs 'http://localhost:8080/readyz'".into()]),
            vec!["/readyz"]
        );
        assert_eq!(exec_paths(&["wget".into(), "-qO-".into(), "localhost:8080/ready".into()]), vec!["/ready"]);
        let yaml = probes("{tcpSocket: {port: 8080}}", "{exec: {command: [curl, -f, 'http://127.0.0.1:8080/readyz']}}");
        assert_eq!(routes(&object_findings(&RULE, &yaml)), vec!["spec.template.spec.containers[0].livenessProbe.exec"]);
        let yaml = probes("{tcpSocket: {port: 8080}}", "{httpGet: {path: /actuator/health, port: 8080}}");
        let msgs = messages(&object_findings(&RULE, &yaml));
        assert!(msgs[0].contains("Spring Boot's aggregate health"), "{msgs:?}");
    }

    #[test]
    fn same_readiness_path_mentions_both() {
        let yaml = probes("{httpGet: {path: /readyz, port: 8080}}", "{httpGet: {path: /readyz, port: 8080}}");
        let msgs = messages(&object_findings(&RULE, &yaml));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].contains("a readiness endpoint, and it is the same check as the readinessProbe"), "{msgs:?}");
    }
}
