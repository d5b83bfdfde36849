//! `secret-in-configmap`: sensitive data kept in a ConfigMap, or a sensitive env var read from one.

use super::secret_in_env::env_vars;
use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::secrets;
use crate::yaml::{Node, Route};

pub static RULE: Rule = Rule {
    id: "secret-in-configmap",
    section: "Environment Variables and Secrets",
    severity: Severity::Error,
    summary: "Sensitive value kept in a ConfigMap",
    why: "ConfigMaps are meant for configuration anyone on the team may read: RBAC roles commonly grant \
`get` and `list` on them broadly, tools print them in diffs and dashboards, and nothing encrypts them at rest. \
A password, token or key stored there is therefore exposed to far more people and systems than one kept in a \
Secret, whose access can be restricted and audited separately. The same holds when a workload reads a \
variable named like a credential from a ConfigMap: wherever that value comes from, it is sitting in the \
wrong kind of object.",
    fix: "Move the sensitive keys into a Secret and read them with `secretKeyRef` (or `envFrom.secretRef`); \
keep only non-sensitive settings in the ConfigMap. Let an ExternalSecret create that Secret from your secret \
manager, and rotate any value that was committed. For configuration files, keep the secret out of the file \
and inject it through an environment variable or a mounted Secret.",
    secret: true,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "secret-in-configmap/bad",
        files: &[
            ("configmap.yaml", include_str!("../../fixtures/rules/secret-in-configmap/bad/configmap.yaml")),
            ("deployment.yaml", include_str!("../../fixtures/rules/secret-in-configmap/bad/deployment.yaml")),
        ],
    },
    good: Example {
        dir: "secret-in-configmap/good",
        files: &[
            ("configmap.yaml", include_str!("../../fixtures/rules/secret-in-configmap/good/configmap.yaml")),
            ("deployment.yaml", include_str!("../../fixtures/rules/secret-in-configmap/good/deployment.yaml")),
        ],
    },
    check: Check::Object(check),
};

/// Keys that name a configuration file: judged by their content, not their name (`secrets.yaml` may
/// hold only references).
const CONFIG_FILE_EXTENSIONS: &[&str] = &[
    "json",
    "yaml",
    "yml",
    "conf",
    "config",
    "cfg",
    "properties",
    "ini",
    "toml",
    "xml",
    "env",
    "sh",
    "tpl",
    "tmpl",
    "hcl",
    "txt",
];

/// Program code: only quoted strings are literals there, a bare word is a variable.
const CODE_EXTENSIONS: &[&str] = &["py", "js", "ts", "rb", "lua"];

fn extension(key: &str) -> Option<String> {
    key.rsplit_once('.').filter(|(stem, _)| !stem.is_empty()).map(|(_, ext)| ext.to_ascii_lowercase())
}

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    if cx.object.group() == "" && cx.object.kind == "ConfigMap" {
        check_data(cx, out);
    }
    check_env_refs(cx, out);
}

/// Sensitive keys, credential-shaped values and secrets inside configuration files of a ConfigMap.
fn check_data(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let name = cx.object.name;
    let Some(data) = cx.object.root.get("data") else { return };
    for entry in data.entries() {
        let Some(key) = entry.key.as_key() else { continue };
        let Some(value) = entry.value.scalar().map(|s| s.text.as_str()) else { continue };
        if entry.value.is_null() {
            continue;
        }
        let route = Route::root().key("data").key(key);
        let ext = extension(key);
        let code = ext.as_deref().is_some_and(|e| CODE_EXTENSIONS.contains(&e));
        let config_file = code || ext.as_deref().is_some_and(|e| CONFIG_FILE_EXTENSIONS.contains(&e));
        if !config_file && (secrets::is_sensitive_assignment(key, value) || secrets::is_aws_credential_name(key)) {
            out.at(route, format!("ConfigMap `{name}` has key `{key}`, whose name says it holds a secret"));
        } else if let Some(kind) = secrets::credential_kind(value) {
            let credential = secrets::credential_values(value).first().copied().unwrap_or("");
            out.at_part(route, credential, format!("ConfigMap `{name}` key `{key}` holds what looks like {kind}"));
        } else if config_file || value.contains('\n') {
            let found = secrets::embedded_secrets(value, code);
            if let Some(first) = found.first() {
                let more = match found.len() {
                    1 => String::new(),
                    n => format!(" and {} more setting{}", n - 1, if n == 2 { "" } else { "s" }),
                };
                out.at(
                    route,
                    format!(
                        "ConfigMap `{name}` key `{key}` sets `{}` (line {} of the value){more} to a literal secret",
                        first.setting, first.line
                    ),
                );
            }
        }
    }
}

/// Env vars named like a credential (or reading a key named like one) from a ConfigMap.
fn check_env_refs(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    for var in env_vars(pod) {
        // `configMapRef` under `valueFrom` is not valid Kubernetes, but it is what people write
        // (the guideline does too); treat it as the `configMapKeyRef` it means.
        let Some(source) = var
            .item
            .get_path(&["valueFrom", "configMapKeyRef"])
            .or_else(|| var.item.get_path(&["valueFrom", "configMapRef"]))
        else {
            continue;
        };
        let configmap = source.get("name").and_then(Node::as_text).unwrap_or("?");
        let key = source.get("key").and_then(Node::as_text).unwrap_or("");
        if secrets::is_sensitive_name(var.name) || secrets::is_sensitive_name(key) {
            out.at(
                var.name_route(),
                format!(
                    "env var `{}` of container `{}` is sensitive but is read from ConfigMap `{configmap}`",
                    var.name, var.container.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::object_findings;

    fn configmap(data: &str) -> String {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg, namespace: web}}\ndata:\n{data}")
    }

    #[test]
    fn sensitive_keys_are_reported_without_their_value() {
        let found =
            object_findings(&RULE, &configmap("  DB_HOST: db\n  db-password: \"hunter2-prod\"\n  apiKey: k-123\n"));
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].line, 6);
        assert_eq!(found[0].route.as_ref().map(ToString::to_string).as_deref(), Some("data.db-password"));
        for f in &found {
            assert!(!f.message.contains("hunter2") && !f.message.contains("k-123"), "{}", f.message);
        }
    }

    #[test]
    fn credential_values_under_harmless_keys() {
        let found =
            object_findings(&RULE, &configmap("  ghToken2: x\n  upstream: ghp_abcdefghijklmnopqrstuvwxyz0123456789\n"));
        // `ghToken2` → words GH, TOKEN2: not a marker word; the value is what gives the second away.
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("a GitHub token"));
        assert!(!found[0].message.contains("ghp_"), "{}", found[0].message);
    }

    #[test]
    fn secrets_inside_config_files() {
        let found = object_findings(
            &RULE,
            &configmap(
                "  application.properties: |\n    server.port=8080\n    spring.datasource.password=hunter2\n    stripe.api-key=abc\n",
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let m = &found[0].message;
        assert!(m.contains("`spring.datasource.password` (line 2 of the value) and 1 more setting"), "{m}");
        assert!(!m.contains("hunter2") && !m.contains("abc"), "{m}");
        assert_eq!(
            found[0].route.as_ref().map(ToString::to_string).as_deref(),
            Some("data[\"application.properties\"]")
        );
    }

    #[test]
    fn harmless_configmaps_pass() {
        let found = object_findings(
            &RULE,
            &configmap(
                "  LOG_LEVEL: info\n  TOKEN_TTL: \"3600\"\n  JWT_SECRET_NAME: jwt\n  DB_PASSWORD_FILE: /run/secrets/db\n  \
             EMPTY_PASSWORD: \"\"\n  app.yaml: |\n    password: ${DB_PASSWORD}\n    tokenUrl: https://idp/token\n  \
             secrets.yaml: |\n    db: {existingSecret: db}\n",
            ),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn sensitive_env_from_a_configmap() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: web}\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          env:\n            - name: MY_SENSITIVE_VAR\n              valueFrom:\n                configMapRef: {name: my-config, key: my-sensitive-var}\n            - name: DB_PASSWORD\n              valueFrom:\n                configMapKeyRef: {name: cfg, key: pw}\n            - name: DB_HOST\n              valueFrom:\n                configMapKeyRef: {name: cfg, key: host}\n            - name: STRIPE\n              valueFrom:\n                configMapKeyRef: {name: cfg, key: stripe-api-key}\n            - name: AWS_SECRET_ACCESS_KEY\n              valueFrom:\n                configMapKeyRef: {name: cfg, key: aws}\n            - name: API_TOKEN\n              valueFrom:\n                secretKeyRef: {name: s, key: token}\n";
        let found = object_findings(&RULE, text);
        let names: Vec<_> =
            found.iter().map(|f| f.route.as_ref().map(ToString::to_string).unwrap_or_default()).collect();
        // MY_SENSITIVE_VAR has no sensitive word: the guideline's placeholder name is not guessable.
        assert_eq!(
            names,
            ["spec.template.spec.containers[0].env[1].name", "spec.template.spec.containers[0].env[3].name"]
        );
    }
}
