//! `manifest-invalid`: input kpath cannot read, or values the API server would reject in the fields kpath
//! reads.
//!
//! The loader reports YAML syntax errors, unreadable files and Dockerfile lines that are not
//! instructions under this id; [`missing_identity`] covers documents that are not objects; the object
//! check below covers field values (env, Secret data, quantities, probes, autoscaler counts).

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::model::{Container, ContainerRole, Object, kinds};
use crate::quantity::{parse_duration_ms, parse_quantity};
use crate::yaml::{Node, NodeKind, Route, Value};

pub static RULE: Rule = Rule {
    id: "manifest-invalid",
    section: "Core Guidelines",
    severity: Severity::Error,
    summary: "Manifest cannot be read, or has a value the API server would reject",
    why: "A manifest that does not parse, lacks `apiVersion`, `kind` or `metadata.name`, or carries a \
value of the wrong shape is refused when it is applied, and in a GitOps setup that means the whole sync \
stops and later changes pile up behind it. Some of these mistakes are easy to miss in review because the \
YAML looks right: Kubernetes reads unquoted `yes`, `on` or `8080` as a boolean or a number, `30s` is not \
a number of seconds, and `valueFrom.configMapRef` is the `envFrom` spelling rather than the \
`configMapKeyRef` that `env` expects. kpath also cannot check what it cannot read, so every other rule is \
silent about such a document; this rule makes sure it is not silently skipped. The same id covers \
Dockerfile lines that are not instructions.",
    fix: "Fix the value the message points at so the API server accepts it: quote strings, write numbers \
of seconds as plain integers, and use the field names of the Kubernetes API. Secret `data` holds \
standard base64 (put plain text under `stringData` instead), quantities look like `250m`, `2`, `512Mi` or \
`1Gi`, and every probe needs exactly one of `httpGet`, `tcpSocket`, `exec` or `grpc`; \
`kubectl apply --dry-run=server -f <file>` confirms the fix against a real cluster.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "manifest-invalid/bad",
        files: &[
            ("configmap.yaml", include_str!("../../fixtures/rules/manifest-invalid/bad/configmap.yaml")),
            ("deployment.yaml", include_str!("../../fixtures/rules/manifest-invalid/bad/deployment.yaml")),
        ],
    },
    good: Example {
        dir: "manifest-invalid/good",
        files: &[
            ("configmap.yaml", include_str!("../../fixtures/rules/manifest-invalid/good/configmap.yaml")),
            ("deployment.yaml", include_str!("../../fixtures/rules/manifest-invalid/good/deployment.yaml")),
        ],
    },
    check: Check::Object(check),
};

/// Configuration for a tool rather than an object for the API server (a kubeconfig, a Kustomization,
/// a kind cluster file, a Helm `Chart.yaml`): such a file has no `metadata.name` to give, and kpath
/// leaves it alone. See [`kinds::tool_configuration`].
fn is_tool_configuration(root: &Node) -> bool {
    let text = |key: &str| root.get(key).and_then(Node::as_text);
    match (text("apiVersion"), text("kind")) {
        (Some(api_version), Some(kind)) => kinds::tool_configuration(api_version, kind).is_some(),
        _ => kinds::is_helm_file(root),
    }
}

/// Reports a document that lacks apiVersion, kind or metadata.name, naming exactly what is missing.
/// Tool configuration (see [`is_tool_configuration`]) is skipped quietly.
pub(crate) fn missing_identity(root: &Node, out: &mut Emitter<'_>) {
    if is_tool_configuration(root) {
        return;
    }
    let shape = match &root.kind {
        NodeKind::Map(_) => None,
        NodeKind::Seq(_) => Some("a list"),
        NodeKind::Scalar(_) => Some("a single value"),
    };
    if let Some(shape) = shape {
        out.at(
            Route::root(),
            format!(
                "document is {shape}, not a Kubernetes object: an object is a mapping with `apiVersion`, `kind` \
                 and `metadata.name`"
            ),
        );
        return;
    }
    let problems = identity_problems(root);
    // `Object::from_root` only fails when a field is missing or not a scalar, so there is a problem to
    // name; keep a general message in case the two ever disagree.
    let what = if problems.is_empty() {
        "no usable `apiVersion`, `kind` and `metadata.name`".to_string()
    } else {
        join_and(&problems)
    };
    let subject = match root.get("kind").and_then(Node::as_str).filter(|k| !k.is_empty()) {
        Some(kind) => format!("`{kind}` document"),
        None => "document".to_string(),
    };
    out.at(
        Route::root(),
        format!("{subject} has {what}: the API server needs `apiVersion`, `kind` and `metadata.name` to know which object it is"),
    );
}

/// What is wrong with a document's identity, as phrases (`no \`kind\``, `an empty \`metadata.name\``).
fn identity_problems(root: &Node) -> Vec<String> {
    let mut problems = Vec::new();
    let describe = |node: Option<&Node>, field: &str| -> Option<String> {
        match node {
            None => Some(format!("no `{field}`")),
            Some(n) if n.is_null() || n.as_text() == Some("") => Some(format!("an empty `{field}`")),
            Some(n) if n.is_map() => Some(format!("a mapping as `{field}` (an unrendered `{{{{ }}}}` template?)")),
            Some(n) if n.scalar().is_none() => Some(format!("a list as `{field}`")),
            Some(_) => None,
        }
    };
    problems.extend(describe(root.get("apiVersion"), "apiVersion"));
    problems.extend(describe(root.get("kind"), "kind"));
    let metadata = root.get("metadata");
    let name = metadata.and_then(|m| m.get("name"));
    let generate_name =
        metadata.and_then(|m| m.get("generateName")).filter(|n| n.as_text().is_some_and(|t| !t.is_empty()));
    if generate_name.is_none() {
        problems.extend(describe(name, "metadata.name"));
    }
    problems
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let object = &cx.object;
    if kinds::tool_configuration(object.api_version, object.kind).is_some() {
        return;
    }
    check_identity(object, out);
    if let Some(pod) = object.pod_spec() {
        if let Some(resources) = pod.get("resources") {
            check_resources(resources, &pod.route.key("resources"), "the pod", out);
        }
        for container in pod.containers() {
            check_container(container, out);
        }
    }
    match (object.group(), object.kind) {
        ("", "Secret") => check_secret(object, out),
        ("", "ConfigMap") => check_config_map(object, out),
        ("", "PersistentVolumeClaim") => {
            if let Some(resources) = object.root.get_path(&["spec", "resources"]) {
                let label = format!("PersistentVolumeClaim `{}`", object.name);
                check_resources(resources, &Route::root().key("spec").key("resources"), &label, out);
            }
        }
        ("", "PersistentVolume") => {
            if let Some(capacity) = object.root.get_path(&["spec", "capacity"]) {
                check_quantities(capacity, &Route::root().key("spec").key("capacity"), "capacity", "the volume", out);
            }
        }
        ("apps", "StatefulSet") => {
            let templates =
                object.root.get_path(&["spec", "volumeClaimTemplates"]).map(Node::items).unwrap_or_default();
            for (i, template) in templates.iter().enumerate() {
                if let Some(resources) = template.get_path(&["spec", "resources"]) {
                    let name = template.get_path(&["metadata", "name"]).and_then(Node::as_text).unwrap_or("");
                    let route =
                        Route::root().key("spec").key("volumeClaimTemplates").index(i).key("spec").key("resources");
                    check_resources(resources, &route, &format!("volume claim template `{name}`"), out);
                }
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            check_integers(object, &["minReplicas", "maxReplicas"], false, out);
        }
        ("keda.sh" | "keda.k8s.io", "ScaledObject" | "ScaledJob") => {
            check_integers(
                object,
                &[
                    "pollingInterval",
                    "cooldownPeriod",
                    "initialCooldownPeriod",
                    "minReplicaCount",
                    "maxReplicaCount",
                    "idleReplicaCount",
                ],
                true,
                out,
            );
            check_trigger_metadata(object, out);
        }
        _ => {}
    }
}

/// Identity fields that are present but empty (`Object::from_root` accepts any scalar).
fn check_identity(object: &Object<'_>, out: &mut Emitter<'_>) {
    let problems = identity_problems(object.root);
    if !problems.is_empty() {
        out.at(
            Route::root(),
            format!(
                "document has {}: the API server needs `apiVersion`, `kind` and `metadata.name` to know which \
                 object it is",
                join_and(&problems)
            ),
        );
    }
}

/// How a container is named in messages.
fn container_label(c: &Container<'_>) -> String {
    let role = match c.role {
        ContainerRole::Main => "container",
        ContainerRole::Init => "init container",
        ContainerRole::Sidecar => "sidecar container",
    };
    if c.name.is_empty() { format!("unnamed {role}") } else { format!("{role} `{}`", c.name) }
}

fn check_container(c: &Container<'_>, out: &mut Emitter<'_>) {
    let label = container_label(c);
    for (i, env) in c.get("env").map(Node::items).unwrap_or_default().iter().enumerate() {
        check_env(env, &c.route.key("env").index(i), &label, out);
    }
    for (i, source) in c.get("envFrom").map(Node::items).unwrap_or_default().iter().enumerate() {
        let route = c.route.key("envFrom").index(i);
        for entry in source.entries() {
            let Some(key) = entry.key.as_key() else { continue };
            if matches!(key, "configMapRef" | "secretRef" | "prefix") {
                continue;
            }
            let hint = did_you_mean(
                key,
                ENV_FROM_SOURCES,
                &[("configMapKeyRef", "configMapRef"), ("secretKeyRef", "secretRef")],
            );
            out.at(
                route.key(key),
                format!(
                    "`envFrom` of {label} has an unknown field `{key}`{hint}; an `envFrom` entry takes \
                     `configMapRef` or `secretRef` (and an optional `prefix`)"
                ),
            );
        }
    }
    if let Some(resources) = c.get("resources") {
        check_resources(resources, &c.route.key("resources"), &label, out);
    }
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        if let Some(node) = c.get(probe).filter(|n| n.is_map()) {
            check_probe(node, &c.route.key(probe), probe, &label, out);
        }
    }
}

const VALUE_FROM_SOURCES: &[&str] = &["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef"];
const ENV_FROM_SOURCES: &[&str] = &["configMapRef", "secretRef", "prefix"];

/// ` (did you mean \`x\`?)` for a misspelt field: first the known confusions, then the closest name.
fn did_you_mean(key: &str, valid: &[&str], confusions: &[(&str, &str)]) -> String {
    let suggestion = confusions.iter().find(|(wrong, _)| *wrong == key).map(|(_, right)| *right).or_else(|| {
        valid
            .iter()
            .map(|v| (strsim::jaro_winkler(&key.to_ascii_lowercase(), &v.to_ascii_lowercase()), *v))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, v)| v)
    });
    suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

fn check_env(env: &Node, route: &Route, label: &str, out: &mut Emitter<'_>) {
    if !env.is_map() {
        return;
    }
    let name = env.get("name").and_then(Node::as_text).unwrap_or("");
    let var = if name.is_empty() { format!("an env var of {label}") } else { format!("env var `{name}` of {label}") };
    let value = env.get("value").filter(|v| !v.is_null());
    if let Some(value) = value
        && let Some(problem) = not_a_string(value)
    {
        out.at_with_help(
            route.key("value"),
            format!("{var}: `value` {problem}, but env values must be strings"),
            "Quote the value (`value: \"8080\"`, `value: \"yes\"`) so that it stays a string.",
        );
    }
    let Some(value_from) = env.get("valueFrom").filter(|v| !v.is_null()) else { return };
    if value.is_some_and(|v| v.as_text() != Some("")) {
        out.at(route.key("valueFrom"), format!("{var} sets both `value` and `valueFrom`; keep one of them"));
    }
    if !value_from.is_map() {
        out.at(route.key("valueFrom"), format!("{var}: `valueFrom` must be a mapping with one source"));
        return;
    }
    let mut known = Vec::new();
    let mut unknown = false;
    for entry in value_from.entries() {
        let Some(key) = entry.key.as_key() else { continue };
        if VALUE_FROM_SOURCES.contains(&key) {
            if !entry.value.is_null() {
                known.push(key);
            }
            continue;
        }
        unknown = true;
        let hint = did_you_mean(
            key,
            VALUE_FROM_SOURCES,
            &[
                ("configMapRef", "configMapKeyRef"),
                ("configMap", "configMapKeyRef"),
                ("secretRef", "secretKeyRef"),
                ("secret", "secretKeyRef"),
                ("fieldPath", "fieldRef"),
            ],
        );
        out.at(
            route.key("valueFrom").key(key),
            format!(
                "{var}: `valueFrom.{key}` is not a value source{hint}; valid sources are fieldRef, \
                 resourceFieldRef, configMapKeyRef, secretKeyRef and fileKeyRef"
            ),
        );
    }
    match known.as_slice() {
        [] if !unknown => out.at(
            route.key("valueFrom"),
            format!("{var}: `valueFrom` names no source; set one of fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef or fileKeyRef"),
        ),
        [] | [_] => {}
        [first, rest @ ..] => out.at(
            route.key("valueFrom"),
            format!("{var}: `valueFrom` sets `{first}` and `{}`; it takes exactly one source", rest.join("`, `")),
        ),
    }
}

/// Why a scalar that must be a string is not one (`is read as a number`), or `None` when it is a string.
/// Never quotes the value except for the YAML 1.1 boolean words, which cannot be secret.
fn not_a_string(node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::Map(_) => return Some("is a mapping".into()),
        NodeKind::Seq(_) => return Some("is a list".into()),
        NodeKind::Scalar(_) => {}
    }
    let scalar = node.scalar()?;
    match scalar.value() {
        Value::Str(_) | Value::Null => None,
        Value::Bool(_) => Some(format!(
            "is `{}`, which Kubernetes reads as a boolean (as it does every unquoted yes, no, on, off, true and false)",
            scalar.text
        )),
        Value::Int(_) | Value::Float(_) => Some("is read as a number".into()),
    }
}

/// `requests` and `limits` of a `resources` block.
fn check_resources(resources: &Node, route: &Route, owner: &str, out: &mut Emitter<'_>) {
    for kind in ["requests", "limits"] {
        if let Some(list) = resources.get(kind).filter(|n| !n.is_null()) {
            check_quantities(list, &route.key(kind), kind, owner, out);
        }
    }
}

/// Every entry of a resource list must be a non-negative quantity.
fn check_quantities(list: &Node, route: &Route, what: &str, owner: &str, out: &mut Emitter<'_>) {
    if !list.is_map() {
        out.at(route.clone(), format!("`{what}` of {owner} must map resource names to quantities"));
        return;
    }
    for entry in list.entries() {
        let Some(resource) = entry.key.as_key() else { continue };
        if entry.value.is_null() {
            continue;
        }
        let text = entry.value.scalar().map(|s| s.text.as_str());
        let problem = match text.map(|t| (t, parse_quantity(t))) {
            None => "is not a quantity".to_string(),
            Some((t, None)) => format!("`{t}` is not a Kubernetes quantity{}", quantity_hint(t)),
            Some((t, Some(q))) if q.millis() < 0 => format!("`{t}` is negative"),
            Some(_) => continue,
        };
        out.at(
            route.key(resource),
            format!("`{what}.{resource}` of {owner}: {problem}; quantities look like 250m, 2, 512Mi or 1Gi"),
        );
    }
}

/// A hint for the usual mistakes: `512MB`, `1gi`, `0.5 cpu`.
fn quantity_hint(text: &str) -> String {
    let t = text.trim();
    let digits_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits_end);
    let suffix = suffix.trim();
    let binary = match suffix.to_ascii_lowercase().as_str() {
        "kb" | "kib" | "ki" => "Ki",
        "mb" | "mib" | "mi" => "Mi",
        "gb" | "gib" | "gi" => "Gi",
        "tb" | "tib" | "ti" => "Ti",
        _ => return String::new(),
    };
    if number.is_empty() {
        return String::new();
    }
    format!(" (did you mean `{number}{binary}`?)")
}

fn check_probe(probe: &Node, route: &Route, field: &str, label: &str, out: &mut Emitter<'_>) {
    let handlers: Vec<&str> = ["httpGet", "tcpSocket", "exec", "grpc"]
        .into_iter()
        .filter(|h| probe.get(h).is_some_and(|n| !n.is_null()))
        .collect();
    match handlers.as_slice() {
        [] => out.at(
            route.clone(),
            format!("`{field}` of {label} has no handler; set one of httpGet, tcpSocket, exec or grpc"),
        ),
        [_] => {}
        [first, rest @ ..] => out.at(
            route.key(rest[0]),
            format!(
                "`{field}` of {label} sets `{first}` and `{}`; a probe takes exactly one handler",
                rest.join("` and `")
            ),
        ),
    }
}

/// Kubernetes decodes Secret `data` with Go's `base64.StdEncoding`: the standard alphabet, padding
/// required, trailing bits tolerated, and `\r`/`\n` skipped (so wrapped block scalars are fine).
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Why a base64 text does not decode, without quoting it.
fn base64_problem(text: &str) -> Option<&'static str> {
    let joined: String = text.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    if SECRET_BASE64.decode(joined.as_bytes()).is_ok() {
        return None;
    }
    Some(if joined.contains([' ', '\t']) {
        "it contains spaces"
    } else if joined.contains(['-', '_']) {
        "it uses characters outside the standard base64 alphabet (`-` and `_` are the URL-safe variant, or it is plain text)"
    } else if !joined.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')) {
        "it contains characters outside the base64 alphabet (plain text?)"
    } else if joined.trim_end_matches('=').len() % 4 == 1 {
        "its length is not that of any base64 text (plain text?)"
    } else {
        "its `=` padding is missing or misplaced"
    })
}

/// The keys of a map of base64 values (Secret `data`, ConfigMap `binaryData`) whose value does not
/// decode, each with why, never quoting the value. Null values are left alone.
fn invalid_base64(map: Option<&Node>) -> Vec<(&str, String)> {
    let entries = map.map(Node::entries).unwrap_or_default();
    entries
        .iter()
        .filter(|entry| !entry.value.is_null())
        .filter_map(|entry| {
            let key = entry.key.as_key()?;
            let problem = match entry.value.as_str() {
                Some(text) => format!("is not valid base64: {}", base64_problem(text)?),
                None => format!("{}, not a base64 string", kind_of(&entry.value)),
            };
            Some((key, problem))
        })
        .collect()
}

/// Secret `data` must be base64 and `stringData` strings. Findings point at the `data`/`stringData`
/// line, never at a value's line, and never quote a value.
fn check_secret(object: &Object<'_>, out: &mut Emitter<'_>) {
    let name = object.name;
    for (key, problem) in invalid_base64(object.root.get("data")) {
        out.at_with_help(
            Route::root().key("data"),
            format!("Secret `{name}`: `data.{key}` {problem}"),
            "Base64-encode the value (`printf %s \"$VALUE\" | base64 -w0`), or move it to `stringData`, which takes plain text.",
        );
    }
    if let Some(string_data) = object.root.get("stringData") {
        for entry in string_data.entries() {
            let Some(key) = entry.key.as_key() else { continue };
            if let Some(problem) = not_a_string_quiet(&entry.value) {
                out.at_with_help(
                    Route::root().key("stringData"),
                    format!("Secret `{name}`: `stringData.{key}` {problem}, but Secret values must be strings"),
                    "Quote the value so that it stays a string.",
                );
            }
        }
    }
}

/// Like [`not_a_string`] but never quotes anything (for Secret values).
fn not_a_string_quiet(node: &Node) -> Option<String> {
    match node.scalar().map(|s| s.value()) {
        Some(Value::Str(_) | Value::Null) => None,
        _ => Some(kind_of(node)),
    }
}

fn kind_of(node: &Node) -> String {
    match (&node.kind, node.scalar().map(|s| s.value())) {
        (NodeKind::Map(_), _) => "is a mapping".into(),
        (NodeKind::Seq(_), _) => "is a list".into(),
        (_, Some(Value::Bool(_))) => "is read as a boolean".into(),
        (_, Some(Value::Int(_) | Value::Float(_))) => "is read as a number".into(),
        _ => "is not a string".into(),
    }
}

/// ConfigMap `data` values must be strings; `binaryData` values base64.
fn check_config_map(object: &Object<'_>, out: &mut Emitter<'_>) {
    let name = object.name;
    for entry in object.root.get("data").map(Node::entries).unwrap_or_default() {
        let Some(key) = entry.key.as_key() else { continue };
        if let Some(problem) = not_a_string(&entry.value) {
            out.at_with_help(
                Route::root().key("data").key(key),
                format!("ConfigMap `{name}`: `data.{key}` {problem}, but ConfigMap values must be strings"),
                "Quote the value (`enabled: \"true\"`, `port: \"8080\"`) so that it stays a string.",
            );
        }
    }
    for (key, problem) in invalid_base64(object.root.get("binaryData")) {
        out.at(Route::root().key("binaryData").key(key), format!("ConfigMap `{name}`: `binaryData.{key}` {problem}"));
    }
}

/// Integer fields of an autoscaler's `spec`. KEDA's are seconds, hence the duration hint.
fn check_integers(object: &Object<'_>, fields: &[&str], seconds: bool, out: &mut Emitter<'_>) {
    for field in fields {
        let Some(node) = object.root.get_path(&["spec", field]).filter(|n| !n.is_null()) else { continue };
        if node.as_int().is_some() {
            continue;
        }
        let route = Route::root().key("spec").key(field);
        let Some(scalar) = node.scalar() else {
            out.at(route, format!("{} `{}`: `{field}` must be an integer", object.kind, object.name));
            continue;
        };
        let text = scalar.text.trim();
        let unit =
            if seconds && (field.ends_with("Period") || *field == "pollingInterval") { " of seconds" } else { "" };
        let hint = match (scalar.value(), text.parse::<i64>(), parse_duration_ms(text)) {
            (Value::Str(_), Ok(n), _) => format!(": write `{n}` without quotes"),
            (_, _, Some(ms)) if !unit.is_empty() && ms % 1000 == 0 => format!(": write `{}`", ms / 1000),
            _ => String::new(),
        };
        out.at(
            route,
            format!(
                "{} `{}`: `{field}` is `{text}`, but it must be a whole number{unit}{hint}",
                object.kind, object.name
            ),
        );
    }
}

/// KEDA trigger `metadata` is a map of strings: an unquoted `threshold: 100` is rejected by the CRD schema.
fn check_trigger_metadata(object: &Object<'_>, out: &mut Emitter<'_>) {
    let triggers = object.root.get_path(&["spec", "triggers"]).map(Node::items).unwrap_or_default();
    for (i, trigger) in triggers.iter().enumerate() {
        for entry in trigger.get("metadata").map(Node::entries).unwrap_or_default() {
            let Some(key) = entry.key.as_key() else { continue };
            if let Some(problem) = not_a_string(&entry.value) {
                out.at_with_help(
                    Route::root().key("spec").key("triggers").index(i).key("metadata").key(key),
                    format!(
                        "{} `{}`: trigger {i} `metadata.{key}` {problem}, but trigger metadata values must be strings",
                        object.kind, object.name
                    ),
                    "Quote the value (`threshold: \"100\"`) so that it stays a string.",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{indent, lines_and_messages, object_findings, workload};

    fn messages(yaml: &str) -> Vec<(u32, String)> {
        lines_and_messages(&object_findings(&RULE, yaml))
    }

    /// A Deployment whose one container, `web`, has these fields (YAML at column 0).
    fn deployment(container: &str) -> String {
        workload("Deployment", &format!("containers:\n  - name: web\n{}", indent(container, 2)))
    }

    #[test]
    fn missing_identity_names_what_is_missing() {
        let m = messages("apiVersion: v1\nmetadata:\n  name: x\n");
        assert_eq!(m, vec![(1, "document has no `kind`: the API server needs `apiVersion`, `kind` and `metadata.name` to know which object it is".to_string())]);
        let m = messages("kind: Deployment\nspec: {}\n");
        assert!(m[0].1.starts_with("`Deployment` document has no `apiVersion` and no `metadata.name`:"), "{m:?}");
        let m = messages("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {a: b}\n");
        assert!(m[0].1.contains("has a mapping as `metadata.name` (an unrendered `{{ }}` template?)"), "{m:?}");
        let m = messages("apiVersion: [v1]\nkind: ConfigMap\nmetadata:\n  name: x\n");
        assert!(m[0].1.starts_with("`ConfigMap` document has a list as `apiVersion`:"), "{m:?}");
        let m = messages("- a\n- b\n");
        assert!(m[0].1.starts_with("document is a list"), "{m:?}");
        assert!(messages("apiVersion: v1\nkind: Pod\nmetadata:\n  generateName: job-\n").is_empty());
        let m = messages("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"\"\n");
        assert!(m[0].1.contains("an empty `metadata.name`"), "{m:?}");
    }

    #[test]
    fn env_value_must_be_a_string() {
        let m = messages(&deployment(
            "env:\n  - name: CACHE\n    value: yes\n  - name: PORT\n    value: 8080\n  - name: MODE\n    value: 0644\n",
        ));
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(m[0].1.contains("`value` is `yes`, which Kubernetes reads as a boolean"), "{m:?}");
        assert_eq!(m[0].0, 13, "the `value: yes` line");
        assert!(m[1].1.contains("`value` is read as a number") && !m[1].1.contains("8080"), "{m:?}");
        let ok = "env:\n  - name: CACHE\n    value: \"yes\"\n  - name: PORT\n    value: '8080'\n  - name: E\n    value:\n  - name: S\n    value: plain\n";
        assert!(messages(&deployment(ok)).is_empty());
    }

    #[test]
    fn value_from_sources() {
        let m = messages(&deployment(
            "env:\n  - name: A\n    valueFrom:\n      configMapRef:\n        name: c\n        key: k\n",
        ));
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].1.contains("`valueFrom.configMapRef` is not a value source (did you mean `configMapKeyRef`?)"),
            "{m:?}"
        );
        let m = messages(&deployment("env:\n  - name: A\n    valueFrom:\n      secretKeyRf: {name: s, key: k}\n"));
        assert!(m[0].1.contains("(did you mean `secretKeyRef`?)"), "{m:?}");
        let m = messages(&deployment("env:\n  - name: A\n    valueFrom: {}\n"));
        assert!(m[0].1.contains("names no source"), "{m:?}");
        let m = messages(&deployment(
            "env:\n  - name: A\n    valueFrom:\n      fieldRef: {fieldPath: metadata.name}\n      secretKeyRef: {name: s, key: k}\n",
        ));
        assert!(m[0].1.contains("sets `fieldRef` and `secretKeyRef`"), "{m:?}");
        let m = messages(&deployment(
            "env:\n  - name: A\n    value: x\n    valueFrom:\n      fieldRef: {fieldPath: metadata.name}\n",
        ));
        assert!(m[0].1.contains("both `value` and `valueFrom`"), "{m:?}");
        for ok in [
            "fieldRef: {fieldPath: metadata.name}",
            "resourceFieldRef: {resource: limits.cpu}",
            "configMapKeyRef: {name: c, key: k}",
            "secretKeyRef: {name: s, key: k}",
            "fileKeyRef: {path: p, key: k, volumeName: v}",
        ] {
            assert!(
                messages(&deployment(&format!("env:\n  - name: A\n    valueFrom:\n      {ok}\n"))).is_empty(),
                "{ok}"
            );
        }
        let m = messages(&deployment(
            "envFrom:\n  - configMapKeyRef: {name: c}\n  - secretRef: {name: s}\n    prefix: S_\n",
        ));
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].1.contains("(did you mean `configMapRef`?)"), "{m:?}");
    }

    #[test]
    fn quantities() {
        let m = messages(&deployment(
            "resources:\n  requests:\n    cpu: 250m\n    memory: 512MB\n  limits:\n    memory: 1Gi\n    cpu: yes\n    ephemeral-storage: -1Gi\n",
        ));
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(
            m[0].1.contains(
                "`requests.memory` of container `web`: `512MB` is not a Kubernetes quantity (did you mean `512Mi`?)"
            ),
            "{m:?}"
        );
        assert!(m[1].1.contains("`limits.cpu`"), "{m:?}");
        assert!(m[2].1.contains("is negative"), "{m:?}");
        assert!(
            messages(&deployment(
                "resources:\n  requests: {cpu: 0.5, memory: 1e9, nvidia.com/gpu: 1}\n  limits:\n    cpu:\n"
            ))
            .is_empty()
        );
        let pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: d\nspec:\n  resources:\n    requests:\n      storage: 10 Gi\n";
        let m = messages(pvc);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].1.contains("PersistentVolumeClaim `d`"), "{m:?}");
        let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  volumeClaimTemplates:\n    - metadata: {name: data}\n      spec:\n        resources:\n          requests: {storage: 5GB}\n";
        assert!(messages(sts)[0].1.contains("volume claim template `data`"));
    }

    #[test]
    fn probes_need_exactly_one_handler() {
        let m = messages(&deployment(
            "readinessProbe:\n  periodSeconds: 5\nlivenessProbe:\n  httpGet: {path: /, port: 80}\n  exec: {command: [true]}\nstartupProbe:\n  grpc: {port: 9000}\n",
        ));
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].1.contains("`readinessProbe` of container `web` has no handler"), "{m:?}");
        assert!(m[1].1.contains("sets `httpGet` and `exec`"), "{m:?}");
    }

    #[test]
    fn secret_data_is_base64() {
        let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  ok: dGVzdA==\n  empty: \"\"\n  wrapped: |\n    dGVzdHRlc3R0ZXN0dGVzdHRl\n    c3R0ZXN0\n  plain: \"sensitive_value\"\n  unpadded: dGVzdA\n  spaced: dGVz dA==\n  number: 1234\nstringData:\n  fine: \"x\"\n  pin: 4321\n";
        let m = messages(secret);
        assert_eq!(m.len(), 5, "{m:?}");
        for (line, msg) in &m {
            assert!(
                !msg.contains("sensitive_value")
                    && !msg.contains("dGVz")
                    && !msg.contains("4321")
                    && !msg.contains("1234"),
                "{msg}"
            );
            assert!(*line == 5 || *line == 15, "points at data/stringData, not at the value: {line}");
        }
        assert!(m[0].1.contains("`data.plain` is not valid base64"), "{m:?}");
        assert!(m[1].1.contains("`data.unpadded`") && m[1].1.contains("padding"), "{m:?}");
        assert!(m[2].1.contains("spaces"), "{m:?}");
        assert!(m[3].1.contains("`data.number` is read as a number, not a base64 string"), "{m:?}");
        assert!(m[4].1.contains("`stringData.pin` is read as a number"), "{m:?}");
    }

    #[test]
    fn config_map_values_are_strings() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  enabled: true\n  port: \"8080\"\nbinaryData:\n  blob: not base64!\n";
        let m = messages(cm);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].1.contains("`data.enabled` is `true`, which Kubernetes reads as a boolean"), "{m:?}");
        assert!(m[1].1.contains("`binaryData.blob` is not valid base64"), "{m:?}");
    }

    #[test]
    fn keda_counts_are_integers() {
        let so = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: web\nspec:\n  scaleTargetRef: {name: web}\n  pollingInterval: 30s\n  cooldownPeriod: \"300\"\n  minReplicaCount: 2\n  maxReplicaCount: 1.5\n  triggers:\n    - type: prometheus\n      metadata:\n        threshold: 100\n        query: up\n";
        let m = messages(so);
        assert_eq!(m.len(), 4, "{m:?}");
        assert!(
            m[0].1.contains("`pollingInterval` is `30s`, but it must be a whole number of seconds: write `30`"),
            "{m:?}"
        );
        assert!(m[1].1.contains("`cooldownPeriod` is `300`") && m[1].1.contains("without quotes"), "{m:?}");
        assert!(m[2].1.contains("`maxReplicaCount` is `1.5`"), "{m:?}");
        assert!(m[3].1.contains("trigger 0 `metadata.threshold` is read as a number"), "{m:?}");
        let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  minReplicas: \"2\"\n  maxReplicas: 10\n";
        assert_eq!(messages(hpa).len(), 1);
    }

    #[test]
    fn odd_shapes_do_not_panic() {
        for yaml in [
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: [1, 2]\nstringData: x\n",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          env: 3\n          envFrom: [1, {}]\n          resources: {requests: 1, limits: [a]}\n          readinessProbe: 1\n",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers:\n        - env: [{name: A, valueFrom: 1}, 2, {valueFrom: {configMapKeyRef: ~}}]\n",
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: s}\nspec:\n  pollingInterval: [1]\n  triggers: [{metadata: [a]}, 1]\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: [1], b: {c: d}, ? [x] : y}\n",
        ] {
            let _ = messages(yaml);
        }
    }
}
