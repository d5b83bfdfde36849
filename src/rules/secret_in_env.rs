//! `secret-in-env`: a sensitive environment variable written as a literal `value` in the manifest.

use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::model::{Container, PodSpec};
use crate::secrets;
use crate::yaml::{Node, Route};

pub static RULE: Rule = Rule {
    id: "secret-in-env",
    section: "Environment Variables and Secrets",
    severity: Severity::Error,
    summary: "Sensitive environment variable set to a literal value in the manifest",
    why: "A literal `value` is part of the workload's spec: it is committed to Git, copied into every \
rendered manifest and CI log, and readable by anyone allowed to `get` the Deployment or its Pods, which is \
a far wider audience than those allowed to read Secrets. Rotating it means a code change and a rollout, and \
the old value stays in the repository's history for good. Variables named like a password, token or key, \
and values shaped like a credential (cloud keys, vendor tokens, private keys, JWTs, URLs with a password), \
belong in a Secret that the container reads through `valueFrom.secretKeyRef`.",
    fix: "Move the value into a Secret and reference it with `valueFrom.secretKeyRef` instead of `value`. \
Create that Secret from your secret manager with an ExternalSecret rather than committing it, rotate the \
value that was exposed, and when the variable only holds where a secret is mounted name it `*_FILE` and \
give it the path.",
    secret: true,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "secret-in-env/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/secret-in-env/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "secret-in-env/good",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/secret-in-env/good/deployment.yaml"))],
    },
    check: Check::Object(check),
};

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    for var in env_vars(pod) {
        let Some(value) = var.item.get("value").filter(|v| !v.is_null()).and_then(Node::as_text) else { continue };
        let (name, container) = (var.name, var.container.name);
        if secrets::is_sensitive_assignment(name, value) {
            out.at(
                var.value_route(),
                format!(
                    "env var `{name}` of container `{container}` is set to a literal value, and its name says it is \
                     sensitive"
                ),
            );
        } else if let Some(kind) = secrets::credential_kind(value) {
            // The credential itself is the part at fault: in `postgres://{{ .Values.user }}:{{ .Values.password }}@…`
            // the finding belongs on the password's value.
            let credential = secrets::credential_values(value).first().copied().unwrap_or("");
            out.at_part(
                var.value_route(),
                credential,
                format!("env var `{name}` of container `{container}` has a literal value that looks like {kind}"),
            );
        }
    }
}

/// A named `env` item of one of a pod's containers.
pub(super) struct EnvVar<'p, 'a> {
    pub container: &'p Container<'a>,
    pub index: usize,
    pub item: &'a Node,
    pub name: &'a str,
}

impl EnvVar<'_, '_> {
    /// The route of the item's `name`.
    pub fn name_route(&self) -> Route {
        self.container.route.key("env").index(self.index).key("name")
    }

    /// The route of the item's literal `value`: the line to fix. Reports mask that line, and messages
    /// name the variable, never the value.
    pub fn value_route(&self) -> Route {
        self.container.route.key("env").index(self.index).key("value")
    }
}

/// The env vars the secret rules judge: every named `env` item of every container. The AWS SDK's
/// credential variables are left out: `aws-static-credentials` owns them, so one mistake gives one finding.
pub(super) fn env_vars<'p, 'a>(pod: &'p PodSpec<'a>) -> impl Iterator<Item = EnvVar<'p, 'a>> {
    pod.containers().iter().flat_map(|container| {
        let items = container.get("env").map(Node::items).unwrap_or_default();
        items.iter().enumerate().filter_map(move |(index, item)| {
            let name = item.get("name").and_then(Node::as_text)?;
            (!secrets::is_aws_credential_name(name)).then_some(EnvVar { container, index, item, name })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{indent, object_findings, workload};

    /// A Deployment whose container `web` has these `env` items (YAML at column 0).
    fn pod_with_env(env: &str) -> String {
        workload("Deployment", &format!("containers:\n  - name: web\n    image: web:1\n    env:\n{}", indent(env, 3)))
    }

    #[test]
    fn literal_password_is_reported_at_its_value_line_without_the_value() {
        let found = object_findings(&RULE, &pod_with_env("- name: DB_PASSWORD\n  value: \"hunter2-prod\""));
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(
            f.route.as_ref().map(ToString::to_string).as_deref(),
            Some("spec.template.spec.containers[0].env[0].value")
        );
        assert_eq!(f.line, 14, "the `value:` line, which is what to replace");
        assert!(f.message.contains("DB_PASSWORD"), "{}", f.message);
        assert!(!f.message.contains("hunter2"), "the value must never be quoted: {}", f.message);
        assert!(!f.help.contains("hunter2"));
    }

    #[test]
    fn credential_shaped_values_are_reported_whatever_the_name() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let found = object_findings(
            &RULE,
            &pod_with_env(&format!(
                "- name: UPSTREAM_AUTH\n  value: \"Bearer {jwt}\"\n- name: DATABASE_URL\n  value: postgres://app:pw0rd@db/app"
            )),
        );
        assert_eq!(found.len(), 2);
        assert!(found[0].message.contains("a JSON Web Token"), "{}", found[0].message);
        assert!(found[1].message.contains("a URL with an embedded password"), "{}", found[1].message);
        for f in &found {
            assert!(!f.message.contains(jwt) && !f.message.contains("pw0rd"), "{}", f.message);
        }
    }

    #[test]
    fn references_paths_and_empty_values_are_fine() {
        let found = object_findings(
            &RULE,
            &pod_with_env(
                "- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef: {name: db, key: password}\n\
             - name: DB_PASSWORD_FILE\n  value: /run/secrets/db/password\n\
             - name: API_TOKEN\n  value: \"\"\n\
             - name: ADMIN_PASSWORD\n  value: $(DB_PASSWORD)\n\
             - name: TOKEN_TTL\n  value: \"3600\"\n\
             - name: JWT_SECRET_NAME\n  value: checkout-jwt\n\
             - name: CACHE_TOKEN\n  value:\n\
             - name: LOG_LEVEL\n  value: info",
            ),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn aws_credentials_are_left_to_their_own_rule() {
        let found = object_findings(
            &RULE,
            &pod_with_env(
                "- name: AWS_SECRET_ACCESS_KEY\n  value: wJalrXUtnFEMI/K7MDENG\n- name: AWS_ACCESS_KEY_ID\n  value: AKIAIOSFODNN7EXAMPLE",
            ),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn init_containers_and_cronjobs_are_checked() {
        let text = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: job}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          initContainers:\n            - name: init\n              env:\n                - {name: GITHUB_TOKEN, value: abc}\n";
        let found = object_findings(&RULE, text);
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("`init`"));
    }

    #[test]
    fn objects_without_pods_are_ignored() {
        assert!(
            object_findings(&RULE, "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n")
                .is_empty()
        );
    }
}
