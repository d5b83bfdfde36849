//! `aws-static-credentials`: a pod handed long-lived AWS access keys through its environment instead
//! of an IAM role for its ServiceAccount (IRSA).
//!
//! Two halves: [`check`] looks at each pod's `env` (any source: literal, Secret, ConfigMap), and
//! [`envfrom_credentials`] looks across objects for `envFrom` of a Secret or ConfigMap whose keys are
//! AWS credential variables.

use compact_str::CompactString;

use super::{Check, Emitter, Example, Global, GlobalCx, ObjectCx, Rule};
use crate::finding::Severity;
use crate::model::facts::{Fact, FactKind, Spot};
use crate::model::{Object, PodSpec};
use crate::secrets;
use crate::yaml::Node;

pub static RULE: Rule = Rule {
    id: "aws-static-credentials",
    section: "Service Accounts and AWS IAM Roles",
    severity: Severity::Error,
    summary: "Pod gets static AWS access keys from its environment instead of an IAM role",
    why: "`AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are long-lived credentials of an IAM user: they \
work from anywhere until someone remembers to rotate them, are shared by every replica and every person who \
can read the Secret or the pod spec, and a leak is only noticed when the bill or the audit log shows it. \
Keeping them in a Secret instead of the manifest narrows who can read them but does not change any of that. \
On EKS a pod can instead assume an IAM role through its ServiceAccount (IRSA): the SDK exchanges a \
short-lived, automatically rotated token for temporary credentials, scoped by the role's trust policy to one \
ServiceAccount in one namespace.",
    fix: "Remove the AWS key variables and give the pod a ServiceAccount annotated with \
`eks.amazonaws.com/role-arn` (IRSA) whose role grants what the app needs. Let the role's trust policy name \
exactly that ServiceAccount (`system:serviceaccount:<namespace>:<name>`) and the `sts.amazonaws.com` \
audience, then deactivate the IAM user's access keys.",
    secret: true,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "aws-static-credentials/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/aws-static-credentials/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "aws-static-credentials/good",
        files: &[
            ("deployment.yaml", include_str!("../../fixtures/rules/aws-static-credentials/good/deployment.yaml")),
            (
                "serviceaccount.yaml",
                include_str!("../../fixtures/rules/aws-static-credentials/good/serviceaccount.yaml"),
            ),
        ],
    },
    check: Check::ObjectAndGlobal(check, Global { run: envfrom_credentials, reads: &[&ENV_FROM, &CREDENTIAL_KEYS] }),
};

/// Where an env var's value comes from, for the message (never the value itself).
fn source(item: &Node) -> Option<String> {
    let name_of = |node: &Node| node.get("name").and_then(Node::as_text).unwrap_or("?").to_string();
    if let Some(r) = item.get_path(&["valueFrom", "secretKeyRef"]) {
        return Some(format!("Secret `{}`", name_of(r)));
    }
    if let Some(r) =
        item.get_path(&["valueFrom", "configMapKeyRef"]).or_else(|| item.get_path(&["valueFrom", "configMapRef"]))
    {
        return Some(format!("ConfigMap `{}`", name_of(r)));
    }
    let value = item.get("value").filter(|v| !v.is_null()).and_then(Node::as_text)?;
    (!value.trim().is_empty()).then(|| "a literal value".to_string())
}

/// True when the container points the S3 client at an endpoint outside AWS (MinIO, Ceph, a local
/// emulator): the `AWS_*` keys are then that service's credentials, and IRSA cannot replace them.
fn uses_s3_compatible_endpoint(env: &Node) -> bool {
    env.items().iter().any(|item| {
        let name = item.get("name").and_then(Node::as_text).unwrap_or("");
        let value = item.get("value").and_then(Node::as_text).unwrap_or("");
        name.contains("ENDPOINT") && value.contains("://") && !value.contains("amazonaws.com")
    })
}

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    for container in pod.containers() {
        let Some(env) = container.get("env") else { continue };
        if uses_s3_compatible_endpoint(env) {
            continue;
        }
        for (i, item) in env.items().iter().enumerate() {
            let Some(name) = item.get("name").and_then(Node::as_text) else { continue };
            if !secrets::is_aws_credential_name(name) {
                continue;
            }
            let Some(from) = source(item) else { continue };
            out.at(
                container.route.key("env").index(i).key("name"),
                format!("container `{}` gets static AWS credentials: `{name}` from {from}", container.name),
            );
        }
    }
}

static ENV_FROM: FactKind = FactKind::of::<EnvFrom>("env-from");
static CREDENTIAL_KEYS: FactKind = FactKind::of::<CredentialKeys>("aws-credential-keys");

/// The Secrets and ConfigMaps a pod's containers load whole through `envFrom`.
#[derive(Debug, Clone)]
struct EnvFrom(Vec<EnvFromRef>);

#[derive(Debug, Clone)]
struct EnvFromRef {
    /// `Secret` or `ConfigMap`.
    kind: &'static str,
    name: CompactString,
    at: Spot,
}

impl Fact for EnvFrom {
    fn read(object: &Object<'_>, pod: Option<&PodSpec<'_>>) -> Option<EnvFrom> {
        let mut refs = Vec::new();
        for c in pod?.containers() {
            for (i, source) in c.node.get("envFrom").map(Node::items).unwrap_or_default().iter().enumerate() {
                for (field, kind) in [("secretRef", "Secret"), ("configMapRef", "ConfigMap")] {
                    if let Some(name) = source.get_path(&[field, "name"]).and_then(Node::as_text) {
                        let at = Spot::of(object, c.route.key("envFrom").index(i));
                        refs.push(EnvFromRef { kind, name: name.into(), at });
                    }
                }
            }
        }
        (!refs.is_empty()).then_some(EnvFrom(refs))
    }
}

/// The keys of a Secret's `data`/`stringData` or a ConfigMap's `data` that are AWS credential variables.
#[derive(Debug, Clone)]
struct CredentialKeys(Vec<CompactString>);

impl Fact for CredentialKeys {
    fn read(object: &Object<'_>, _: Option<&PodSpec<'_>>) -> Option<CredentialKeys> {
        let fields: &[&str] = match (object.group(), object.kind) {
            ("", "Secret") => &["data", "stringData"],
            ("", "ConfigMap") => &["data"],
            _ => return None,
        };
        let keys: Vec<CompactString> = fields
            .iter()
            .flat_map(|f| object.root.get(f).map(Node::entries).unwrap_or_default())
            .filter_map(|e| e.key.as_key())
            .filter(|k| secrets::is_aws_credential_name(k))
            .map(CompactString::from)
            .collect();
        (!keys.is_empty()).then_some(CredentialKeys(keys))
    }
}

/// The `envFrom` half of the rule: a workload loading a Secret or ConfigMap (same namespace) whose keys
/// are AWS credential variables. Runs over the facts of all objects, after the per-object checks.
pub(crate) fn envfrom_credentials(cx: &GlobalCx<'_>, out: &mut Emitter<'_>) {
    for (workload, EnvFrom(refs)) in cx.facts.with::<EnvFrom>() {
        for reference in refs {
            let Some((source, CredentialKeys(keys))) = cx
                .facts
                .named(reference.kind, &reference.name)
                .filter(|o| o.group().is_empty() && o.namespace == workload.namespace && o.same_scope(workload))
                .find_map(|o| Some((o, cx.facts.get::<CredentialKeys>(o)?)))
            else {
                continue;
            };
            let keys: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
            out.at_fact(
                workload,
                &reference.at,
                format!(
                    "{} `{}` gets static AWS credentials: {} from {} `{}`{} through `envFrom`",
                    workload.kind,
                    workload.name,
                    keys.join(", "),
                    reference.kind,
                    reference.name,
                    cx.at(source)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{global_findings, object_findings};

    const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: web}\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: web:1\n";

    #[test]
    fn any_source_of_aws_keys_is_reported_without_the_value() {
        let text = format!(
            "{DEPLOYMENT}          env:\n            - name: AWS_ACCESS_KEY_ID\n              value: AKIAIOSFODNN7EXAMPLE\n            - name: AWS_SECRET_ACCESS_KEY\n              valueFrom:\n                secretKeyRef: {{name: aws, key: secret}}\n            - name: AWS_SESSION_TOKEN\n              valueFrom:\n                configMapKeyRef: {{name: cfg, key: token}}\n            - name: AWS_REGION\n              value: eu-west-1\n"
        );
        let found = object_findings(&RULE, &text);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].message.contains("a literal value"));
        assert!(found[1].message.contains("Secret `aws`"));
        assert!(found[2].message.contains("ConfigMap `cfg`"));
        assert_eq!(
            found[0].route.as_ref().map(ToString::to_string).as_deref(),
            Some("spec.template.spec.containers[0].env[0].name")
        );
        for f in &found {
            assert!(!f.message.contains("AKIAIOSFODNN7EXAMPLE"), "{}", f.message);
        }
    }

    #[test]
    fn empty_values_and_other_variables_are_fine() {
        let text = format!(
            "{DEPLOYMENT}          env:\n            - name: AWS_ACCESS_KEY_ID\n              value: \"\"\n            - name: AWS_ROLE_ARN\n              value: arn:aws:iam::1:role/r\n            - name: aws_access_key_id\n              value: lower-case-is-not-read-by-the-sdk\n"
        );
        assert!(object_findings(&RULE, &text).is_empty());
    }

    #[test]
    fn keys_for_an_s3_compatible_store_are_not_aws_credentials() {
        let env = "          env:\n            - name: AWS_ACCESS_KEY_ID\n              valueFrom:\n                secretKeyRef: {name: minio, key: root-user}\n";
        let minio = format!(
            "{DEPLOYMENT}{env}            - name: MLFLOW_S3_ENDPOINT_URL\n              value: http://minio:80\n"
        );
        assert!(object_findings(&RULE, &minio).is_empty());
        let aws = format!(
            "{DEPLOYMENT}{env}            - name: AWS_ENDPOINT_URL\n              value: https://s3.eu-west-1.amazonaws.com\n"
        );
        assert_eq!(object_findings(&RULE, &aws).len(), 1);
    }

    #[test]
    fn env_from_a_secret_holding_aws_keys() {
        let text = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: aws, namespace: web}}\ndata: {{AWS_ACCESS_KEY_ID: QUtJQQ==, AWS_SECRET_ACCESS_KEY: c2VjcmV0}}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg, namespace: web}}\ndata: {{AWS_REGION: eu-west-1}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: aws, namespace: other}}\ndata: {{AWS_SESSION_TOKEN: dA==}}\n---\n\
             {DEPLOYMENT}          envFrom:\n            - configMapRef: {{name: cfg}}\n            - secretRef: {{name: aws}}\n"
        );
        let found = global_findings(&RULE, &text);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert!(
            f.message.contains(
                "`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` from Secret `aws` (`t.yaml:2`) through `envFrom`"
            ),
            "{}",
            f.message
        );
        assert!(!f.message.contains("QUtJQQ") && !f.message.contains("c2VjcmV0"));
        assert_eq!(
            f.route.as_ref().map(ToString::to_string).as_deref(),
            Some("spec.template.spec.containers[0].envFrom[1]")
        );
        assert_eq!(f.object.as_ref().map(|o| o.name.as_str()), Some("web"));
    }

    #[test]
    fn env_from_across_namespaces_does_not_match() {
        let text = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: aws, namespace: other}}\ndata: {{AWS_SECRET_ACCESS_KEY: c2VjcmV0}}\n---\n\
             {DEPLOYMENT}          envFrom:\n            - secretRef: {{name: aws}}\n"
        );
        assert!(global_findings(&RULE, &text).is_empty());
    }
}
