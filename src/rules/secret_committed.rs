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
a change in one place. Values a Helm chart generates when it is rendered (a random password, a generated \
key) are not in the repository and are not reported, and neither is public material (certificates, CA \
bundles, public keys), which is safe to publish.",
    fix: "Replace the Secret with an ExternalSecret that fetches the values from your secret manager, and \
rotate the values that were committed. AWS SSM Parameter Store and Secrets Manager both work as the store \
behind it. For a Helm chart, give it an `existingSecret` (or similar) value that names the Secret the \
ExternalSecret creates instead of passing the values to the chart; if a Secret really must live in Git, \
encrypt it with SOPS or use a SealedSecret.",
    secret: true,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "secret-committed/bad",
        files: &[("secret.yaml", include_str!("../../fixtures/rules/secret-committed/bad/secret.yaml"))],
    },
    good: Example {
        dir: "secret-committed/good",
        files: &[
            ("externalsecret.yaml", include_str!("../../fixtures/rules/secret-committed/good/externalsecret.yaml")),
            ("secret.sops.yaml", include_str!("../../fixtures/rules/secret-committed/good/secret.sops.yaml")),
            ("public-keys.yaml", include_str!("../../fixtures/rules/secret-committed/good/public-keys.yaml")),
        ],
    },
    check: Check::Object(check),
};

/// Keys of a data field (`data`, `stringData`) that hold a committed secret. Not: an empty value
/// (`password: ""` is a placeholder); a value the chart generated at render time (`generated`, or the
/// placeholder kpath wrote in its place); public material (certificates, public keys), which is safe
/// to publish and is often kept in a Secret only because the program reads it from one.
fn committed_keys<'n>(field: &str, node: Option<&'n Node>, generated: &[Route]) -> Vec<&'n str> {
    let base64 = field == "data";
    node.map(Node::entries)
        .unwrap_or_default()
        .iter()
        .filter(|e| !e.value.is_null() && e.value.as_text().is_none_or(|t| !t.trim().is_empty()))
        .filter_map(|e| Some((e.key.as_key()?, e.value.as_text())))
        .filter(|(key, _)| !generated.contains(&Route::root().key(field).key(key)))
        .filter(|(_, value)| {
            let Some(text) = value.and_then(|v| readable(v, base64)) else { return true };
            text != crate::helm::rendered::GENERATED_TEXT && !is_public_material(&text)
        })
        .map(|(key, _)| key)
        .collect()
}

/// The text of a value: decoded when it is base64 (`data`), `None` when that does not decode to text.
fn readable(value: &str, base64: bool) -> Option<String> {
    if !base64 {
        return Some(value.to_string());
    }
    use base64::Engine;
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(compact).ok()?;
    String::from_utf8(bytes).ok()
}

/// PEM labels of public material: certificates (a CA bundle is several), CRLs and public keys
/// (RFC 7468, <https://www.rfc-editor.org/rfc/rfc7468>; `RSA PUBLIC KEY` is PKCS #1's).
const PUBLIC_PEM_LABELS: &[&str] = &["CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CRL", "PUBLIC KEY", "RSA PUBLIC KEY"];

/// Whether a value holds only public material: PEM blocks with [`PUBLIC_PEM_LABELS`] and OpenSSH public-key
/// lines (`ssh-ed25519 AAAA… comment`, also as `authorized_keys`/`known_hosts` write them), with blank and
/// `#` comment lines between them (CA bundles carry comments). Anything else (a private key block, a PEM
/// header, other text) makes the whole value count as a secret.
pub fn is_public_material(text: &str) -> bool {
    let is_base64 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut found = false;
    while let Some(line) = lines.next() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) {
            if !PUBLIC_PEM_LABELS.contains(&label) {
                return false;
            }
            let end = format!("-----END {label}-----");
            let mut body = 0;
            let mut closed = false;
            for inner in lines.by_ref() {
                if inner == end {
                    closed = true;
                    break;
                }
                if !is_base64(inner) {
                    return false;
                }
                body += inner.len();
            }
            if !closed || body == 0 {
                return false;
            }
            found = true;
        } else if is_ssh_public_key(line, &is_base64) {
            found = true;
        } else {
            return false;
        }
    }
    found
}

/// An OpenSSH public key line: a key type and its base64 blob (which starts with the type's length,
/// `AAAA`), after at most two fields of `known_hosts` hosts or `authorized_keys` options
/// (<https://man.openbsd.org/sshd.8#AUTHORIZED_KEYS_FILE_FORMAT>).
fn is_ssh_public_key(line: &str, is_base64: &dyn Fn(&str) -> bool) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let key_type = |t: &str| ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-sha2-"].iter().any(|p| t.starts_with(p));
    fields.iter().take(3).enumerate().any(|(i, t)| {
        key_type(t)
            && fields.get(i + 1).is_some_and(|blob| blob.starts_with("AAAA") && is_base64(blob) && blob.len() > 16)
    })
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
        let keys = committed_keys(field, object.root.get(field), cx.generated);
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

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBgTCCASegAwIBAgIUex0OmE8cXxNO8Mw4sAoKHGEhIb0wCgYIKoZIzj0EAwIw\nFjEUMBIGA1UEAwwLY2hlY2tvdXQtY2EwHhcNMjYxMjAxMjIzNzA5WhcNMzYxMTI4\n-----END CERTIFICATE-----\n";
    const SSH: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO24vTLm3fGOyAUDoPqN+U6aLYsvkFjCzi/1BTrxorpS deploy@checkout";

    fn b64(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn public_material_is_recognised() {
        assert!(is_public_material(CERT));
        assert!(is_public_material(&format!("# Issuer: CN=one\n{CERT}\n# Issuer: CN=two\n{CERT}")), "a CA bundle");
        assert!(is_public_material(&CERT.replace("CERTIFICATE", "PUBLIC KEY")));
        assert!(is_public_material(&CERT.replace("CERTIFICATE", "RSA PUBLIC KEY")));
        assert!(is_public_material(SSH));
        assert!(is_public_material(&format!("{SSH}\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 other\n")));
        assert!(is_public_material(&format!("github.com {}", &SSH[..SSH.len() - 16])), "known_hosts");
        for secret in [
            CERT.replace("CERTIFICATE", "PRIVATE KEY"),
            CERT.replace("CERTIFICATE", "RSA PRIVATE KEY"),
            CERT.replace("CERTIFICATE", "OPENSSH PRIVATE KEY"),
            format!("{CERT}{}", CERT.replace("CERTIFICATE", "EC PRIVATE KEY")),
            format!("hunter2\n{CERT}"),
            CERT.replace("-----END CERTIFICATE-----\n", ""),
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".to_string(),
            "ssh-rsa hunter2".to_string(),
            "hunter2".to_string(),
            String::new(),
        ] {
            assert!(!is_public_material(&secret), "{secret}");
        }
    }

    #[test]
    fn secrets_of_only_public_material_are_fine_and_private_keys_are_named() {
        let block = |pem: &str| pem.lines().map(|l| format!("    {l}\n")).collect::<String>();
        let public = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: trust}}\nstringData:\n  ca.crt: |\n{}data:\n  deploy.pub: {}\n",
            block(CERT),
            b64(SSH)
        );
        assert!(object_findings(&RULE, &public).is_empty());
        let tls = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: tls}}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
            b64(CERT),
            b64(&CERT.replace("CERTIFICATE", "PRIVATE KEY"))
        );
        let found = object_findings(&RULE, &tls);
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("(`tls.key`)"), "{}", found[0].message);
    }

    /// Runs the check with `generated` as the renderer's generated routes.
    fn findings_with_generated(text: &str, generated: &[Route]) -> Vec<crate::finding::Finding> {
        let config = crate::config::Config::default();
        let root = crate::yaml::parse_single(text).expect("parses").expect("a document");
        let object = crate::model::Object::from_root(&root).expect("an object");
        let mut found = Vec::new();
        let mut cx = ObjectCx::new("t.yaml", 0, object, &config, config.options(RULE.id));
        cx.generated = generated;
        let mut out = Emitter {
            rule: &RULE,
            severity: RULE.severity,
            file: std::sync::Arc::from("t.yaml"),
            root: Some(&root),
            document: Some(0),
            object: None,
            out: &mut found,
            emitted: 0,
        };
        check(&cx, &mut out);
        found
    }

    #[test]
    fn generated_values_are_not_committed() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata:\n  password: YWJj\n  user: YWRtaW4=\nstringData:\n  token: t0k3n\n";
        let generated = [Route::parse("data.password"), Route::parse("stringData.token")];
        let found = findings_with_generated(text, &generated);
        assert_eq!(found.len(), 1, "the literal user is still committed");
        assert!(found[0].message.contains("(`user`)"), "{}", found[0].message);
        let all = [Route::parse("data.password"), Route::parse("data.user"), Route::parse("stringData.token")];
        assert!(findings_with_generated(text, &all).is_empty());
        assert_eq!(findings_with_generated(text, &[]).len(), 1);
        // kpath's own placeholder for a generated value is no secret, whether or not the route came along.
        let placeholder = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\ndata:\n  password: {}\nstringData:\n  token: {}\n",
            crate::helm::rendered::GENERATED_BASE64,
            crate::helm::rendered::GENERATED_TEXT
        );
        assert!(object_findings(&RULE, &placeholder).is_empty());
    }

    #[test]
    fn many_keys_are_summarised() {
        let data: String = (0..7).map(|i| format!("  k{i}: dg==\n")).collect();
        let found =
            object_findings(&RULE, &format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\ndata:\n{data}"));
        assert!(found[0].message.contains("`k4` and 2 more"), "{}", found[0].message);
    }
}
