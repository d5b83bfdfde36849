//! `secret-committed`: a Kubernetes Secret with its data committed in plain (base64) form.

use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::yaml::{Node, Route};

pub static RULE: Rule = Rule {
    id: "secret-committed",
    section: "Environment Variables and Secrets",
    severity: Severity::Error,
    summary: "Secret with its data committed to the repository",
    why: "The values under a Secret's `data` are only base64-encoded, which anyone can decode, and \
`stringData` is plain text: committing either puts the credential in the repository for everyone with read \
access, in every fork and clone, and in the history long after it is deleted. A Secret's protection comes \
from RBAC in the cluster, and a copy in Git bypasses all of it. Keeping the value in a secret manager and \
committing only a description of where to fetch it keeps the repository free of secrets and makes rotation \
a change in one place.",
    fix: "Replace the Secret with an ExternalSecret that fetches the values from your secret manager, and \
rotate the values that were committed. AWS SSM Parameter Store and Secrets Manager both work as the store \
behind it. For a Helm chart, give it an `existingSecret` (or similar) value that names the Secret the \
ExternalSecret creates instead of passing the values to the chart; if a Secret really must live in Git, \
encrypt it with SOPS or use a SealedSecret.",
    secret: true,
    options: &[],
    bad: Example {
        dir: "secret-committed/bad",
        files: &[("secret.yaml", include_str!("../../fixtures/rules/secret-committed/bad/secret.yaml"))],
    },
    good: Example {
        dir: "secret-committed/good",
        files: &[
            ("externalsecret.yaml", include_str!("../../fixtures/rules/secret-committed/good/externalsecret.yaml")),
            ("secret.sops.yaml", include_str!("../../fixtures/rules/secret-committed/good/secret.sops.yaml")),
        ],
    },
    check: Check::Object(check),
};

/// Keys of a data field whose value is not empty (`password: ""` is a placeholder, not a secret).
fn filled_keys(field: Option<&Node>) -> Vec<&str> {
    field
        .map(Node::entries)
        .unwrap_or_default()
        .iter()
        .filter(|e| !e.value.is_null() && e.value.as_text().is_none_or(|t| !t.trim().is_empty()))
        .filter_map(|e| e.key.as_key())
        .collect()
}

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let object = &cx.object;
    if object.group() != "" || object.kind != "Secret" {
        return;
    }
    // A SOPS-encrypted file carries its metadata under a top-level `sops` key; its values are ciphertext.
    if object.root.get("sops").is_some() {
        return;
    }
    for field in ["data", "stringData"] {
        let keys = filled_keys(object.root.get(field));
        if keys.is_empty() {
            continue;
        }
        let shown: Vec<String> = keys.iter().take(5).map(|k| format!("`{k}`")).collect();
        let more = if keys.len() > 5 { format!(" and {} more", keys.len() - 5) } else { String::new() };
        out.at(
            Route::root().key(field),
            format!("Secret `{}` is committed with values in `{field}` ({}{more})", object.name, shown.join(", ")),
        );
        // One finding per Secret: the fix is the same for both fields.
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::object_findings;

    #[test]
    fn committed_data_is_reported_by_key_never_by_value() {
        let found = object_findings(
            &RULE,
            "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: web}\ntype: Opaque\ndata:\n  password: aHVudGVyMg==\n  user: YXBw\n",
        );
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(f.line, 5);
        assert_eq!(f.route.as_ref().map(ToString::to_string).as_deref(), Some("data"));
        assert!(f.message.contains("`password`, `user`"), "{}", f.message);
        assert!(!f.message.contains("aHVudGVyMg") && !f.message.contains("YXBw"), "{}", f.message);
    }

    #[test]
    fn string_data_is_reported() {
        let found = object_findings(
            &RULE,
            "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {}\nstringData:\n  token: plain-text-token\n",
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].route.as_ref().map(ToString::to_string).as_deref(), Some("stringData"));
        assert!(!found[0].message.contains("plain-text-token"));
    }

    #[test]
    fn sops_files_are_fine() {
        let found = object_findings(
            &RULE,
            "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata:\n  password: ENC[AES256_GCM,data:abc=,iv:x,tag:y,type:str]\nsops:\n  kms: []\n  version: 3.8.1\n",
        );
        assert!(found.is_empty());
    }

    #[test]
    fn empty_secrets_and_other_kinds_are_fine() {
        for text in [
            "apiVersion: v1\nkind: Secret\nmetadata: {name: sa-token, annotations: {kubernetes.io/service-account.name: web}}\ntype: kubernetes.io/service-account-token\n",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: placeholder}\ndata:\n  password: \"\"\n  other:\n",
            "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: db}\nspec:\n  encryptedData: {password: AgBy3i4OJSWK}\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
        ] {
            assert!(object_findings(&RULE, text).is_empty(), "{text}");
        }
    }

    #[test]
    fn many_keys_are_summarised() {
        let data: String = (0..7).map(|i| format!("  k{i}: dg==\n")).collect();
        let found =
            object_findings(&RULE, &format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\ndata:\n{data}"));
        assert!(found[0].message.contains("`k4` and 2 more"), "{}", found[0].message);
    }
}
