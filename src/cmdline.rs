//! Values from a repository that reach a tool's command line (release names, namespaces, paths,
//! `--set` pairs, Kubernetes versions): each is checked here against what the tool itself accepts, so
//! none can be read as an option, name a file outside the repository, or smuggle a second value in.
//!
//! The checks are the first wall; the second is how arguments are built (`--flag=value` in one
//! argument, positionals after `--`), so a value that slipped past a check is still only a value.

/// Why a value cannot be passed to a tool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

fn reject<T>(message: String) -> Result<T, Rejected> {
    Err(Rejected(message))
}

/// Shows a rejected value safely inside a message: control characters escaped, long values cut.
pub fn shown(value: &str) -> String {
    crate::logtext::bounded_to(value, 80).to_string()
}

/// One DNS-1123 label: lowercase letters, digits and `-`, starting and ending with a letter or digit.
fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// A Helm release name: DNS-1123 labels joined by dots, at most 53 characters — the rule
/// `helm install`/`helm template` enforce (<https://helm.sh/docs/chart_best_practices/conventions/>).
pub fn release_name(name: &str) -> Result<(), Rejected> {
    if name.len() > 53 || !name.split('.').all(is_dns_label) {
        return reject(format!(
            "release name `{}` is not valid: Helm accepts lowercase letters, digits, `-` and `.` (each part starting \
             and ending with a letter or digit), at most 53 characters",
            shown(name)
        ));
    }
    Ok(())
}

/// A namespace: one DNS-1123 label of at most 63 characters
/// (<https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#dns-label-names>).
pub fn namespace(name: &str) -> Result<(), Rejected> {
    if name.len() > 63 || !is_dns_label(name) {
        return reject(format!(
            "namespace `{}` is not valid: a namespace is lowercase letters, digits and `-`, starting and ending with a \
             letter or digit, at most 63 characters",
            shown(name)
        ));
    }
    Ok(())
}

/// An environment name as `.kpath.yml` declares it: it names rendered locations (`helm://shop/prod/`) and
/// appears in comments, so it is kept to letters, digits, `-`, `_` and `.`.
pub fn environment_name(name: &str) -> Result<(), Rejected> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric);
    if !ok {
        return reject(format!(
            "environment name `{}` is not valid: use letters, digits, `-`, `_` and `.`, starting with a letter or \
             digit, at most 63 characters",
            shown(name)
        ));
    }
    Ok(())
}

/// A Kubernetes version `MAJOR.MINOR` (a leading `v` and a `.PATCH` are accepted and dropped):
/// digits only, within what Kubernetes could plausibly number.
pub fn kubernetes_version(text: &str) -> Result<(u32, u32), Rejected> {
    let bare = text.trim().strip_prefix('v').unwrap_or(text.trim());
    let mut parts = bare.split('.');
    let number = |part: Option<&str>, max: u32| -> Option<u32> {
        let part = part?;
        if part.is_empty() || part.len() > 4 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok().filter(|n| *n <= max)
    };
    let major = number(parts.next(), 99);
    let minor = number(parts.next(), 999);
    let patch_ok = match parts.next() {
        None => true,
        Some(p) => number(Some(p), 9999).is_some() && parts.next().is_none(),
    };
    match (major, minor, patch_ok) {
        (Some(major), Some(minor), true) if major >= 1 => Ok((major, minor)),
        _ => reject(format!("Kubernetes version `{}` is not MAJOR.MINOR, e.g. \"1.34\"", shown(text))),
    }
}

/// A path inside the repository, relative to the file that names it: no absolute path, no `..` that
/// climbs out of `base` (the directory of that file, relative to the repository root), nothing that a
/// tool could read as an option, no control characters. Symlinks are checked where the path is used
/// (see `helm::read_chart`), since only the file system knows them.
pub fn repo_path(path: &str, base: &str) -> Result<(), Rejected> {
    if path.is_empty() {
        return reject("the path is empty".into());
    }
    if path.starts_with('-') {
        return reject(format!("path `{}` starts with `-`, which a tool would read as an option", shown(path)));
    }
    if path.chars().any(char::is_control) || path.contains('\\') {
        return reject(format!("path `{}` holds a control character or a backslash", shown(path)));
    }
    // Helm's list flags (`--values=a,b`) read their value as CSV: a comma or a quote would let one
    // path become two, the second anywhere on the machine.
    if path.contains([',', '"']) {
        return reject(format!("path `{}` holds a comma or a double quote, which Helm would split on", shown(path)));
    }
    if path.starts_with('/') || path.starts_with('~') {
        return reject(format!(
            "path `{}` is absolute; paths in `.kpath.yml` are relative to it and stay inside the repository",
            shown(path)
        ));
    }
    let mut depth: i64 = base.split('/').filter(|s| !s.is_empty() && *s != ".").count() as i64;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return reject(format!("path `{}` leads out of the repository", shown(path)));
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// A `--set` key: dotted names with optional list indices (`image.tag`, `env[0].name`) and escaped dots
/// (`podAnnotations.prometheus\.io/scrape`), so no `=` or `,` can start another pair.
pub fn set_key(key: &str) -> Result<(), Rejected> {
    let bytes = key.as_bytes();
    let escapes_ok = bytes.iter().enumerate().all(|(i, b)| *b != b'\\' || bytes.get(i + 1) == Some(&b'.'));
    let ok = !key.is_empty()
        && key.len() <= 256
        && escapes_ok
        && key.as_bytes().first().is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']' | b'/' | b'\\'));
    if !ok {
        return reject(format!(
            "`set` key `{}` is not valid: use dotted names with optional [N] indices (letters, digits, `_`, `-`, `/`)",
            shown(key)
        ));
    }
    Ok(())
}

/// A `--set` value, escaped for Helm's `key=value[,key=value]` syntax: a `,` would start another pair
/// and `\` escapes, so both are escaped; the value is then only ever text after `KEY=`.
pub fn set_value(value: &str) -> Result<String, Rejected> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return reject(format!("`set` value `{}` holds a control character", shown(value)));
    }
    if value.len() > 4096 {
        return reject("`set` value is longer than 4096 characters; put it in a values file".into());
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

/// `--NAME=VALUE` as one argument: the value can never be taken for a flag of its own.
pub fn flag(name: &str, value: &str) -> String {
    format!("--{name}={value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Members of the family "a value that a tool reads as something else".
    const HOSTILE: &[&str] = &[
        "--post-renderer=/bin/sh",
        "--post-renderer",
        "-o",
        "--output-dir=/tmp/x",
        "-f/etc/passwd",
        "--values=/etc/passwd",
        "--kubeconfig=/root/.kube/config",
        "a b",
        "a\nb",
        "a,b=c",
        "../../etc",
        "/etc/passwd",
        "",
        "UPPER",
    ];

    #[test]
    fn names_reject_every_hostile_value() {
        for value in HOSTILE {
            assert!(release_name(value).is_err(), "release {value:?}");
            assert!(namespace(value).is_err(), "namespace {value:?}");
            assert!(kubernetes_version(value).is_err(), "version {value:?}");
        }
        assert!(release_name("shop").is_ok());
        assert!(release_name("shop.v2-blue").is_ok());
        assert!(release_name(&"a".repeat(54)).is_err());
        assert!(namespace("shop-prod").is_ok());
        assert!(namespace("shop.prod").is_err());
        assert!(environment_name("-x").is_err());
        assert!(environment_name("prod_eu-1").is_ok());
    }

    #[test]
    fn versions_are_bounded_numbers() {
        assert_eq!(kubernetes_version("1.34"), Ok((1, 34)));
        assert_eq!(kubernetes_version("v1.29.3"), Ok((1, 29)));
        for bad in ["1", "1.x", "1.34.0.1", "99999999999999999999.1", "0.1", "1.-1", "1.34 --set=a=b", "1.2e3"] {
            assert!(kubernetes_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_stay_inside_the_repository() {
        assert!(repo_path("charts/shop", "").is_ok());
        assert!(repo_path("../shared/shop", "deploy").is_ok());
        assert!(repo_path("./values-prod.yaml", "").is_ok());
        for (bad, base) in [
            ("../x", ""),
            ("a/../../x", ""),
            ("../../x", "deploy"),
            ("/etc/passwd", ""),
            ("~/x", ""),
            ("-f", ""),
            ("--values=/etc/passwd", ""),
            ("a\nb", ""),
            ("x,/etc/passwd", ""),
            ("\"x\"", ""),
            ("", ""),
        ] {
            assert!(repo_path(bad, base).is_err(), "{bad:?} from {base:?}");
        }
    }

    #[test]
    fn set_pairs_cannot_add_a_pair() {
        assert!(set_key("image.tag").is_ok());
        assert!(set_key("env[0].name").is_ok());
        assert!(set_key("podAnnotations.prometheus\\.io/scrape").is_ok());
        for bad in ["a=b", "a,b", "--post-renderer", "-x", "", "a b", "a\\,b", "a\\"] {
            assert!(set_key(bad).is_err(), "{bad}");
        }
        assert_eq!(set_value("a,b=c").as_deref(), Ok("a\\,b=c"));
        assert_eq!(set_value("C:\\x").as_deref(), Ok("C:\\\\x"));
        assert!(set_value("a\nb").is_err());
        assert_eq!(flag("namespace", "-x"), "--namespace=-x");
    }
}
