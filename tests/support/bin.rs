//! Shared by the integration tests that run the `kpath` binary: the pinned Helm, running kpath, and
//! repositories written by the test. Each test file takes it with `#[path = "support/bin.rs"] mod bin;`.

// Each test binary uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned Helm that `scripts/test` installs (or `$KPATH_HELM`).
pub fn pinned_helm() -> PathBuf {
    let path = std::env::var_os("KPATH_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/helm-3.17.3/bin/helm"));
    assert!(path.is_file(), "the pinned helm is missing: run `bash scripts/test`, which installs it");
    path
}

/// The pinned kubectl that `scripts/test` installs (`$KPATH_KUBECTL`), whose kustomize renders Kustomizations.
pub fn pinned_kubectl() -> PathBuf {
    let path = std::env::var_os("KPATH_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/kubectl-1.37.1/bin/kubectl"));
    assert!(path.is_file(), "the pinned kubectl is missing: run `bash scripts/test`, which installs it");
    path
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `kpath ARGS` in `cwd`, with the pinned Helm and kubectl and `extra` environment variables.
pub fn kpath_with(args: &[&str], cwd: &Path, extra: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kpath"));
    command.args(args).current_dir(cwd).env("KPATH_HELM", pinned_helm()).env("KPATH_KUBECTL", pinned_kubectl());
    for name in ["KPATH_MAX_RENDER_TIMEOUT", "KPATH_MAX_RENDER_OUTPUT", "KPATH_MAX_RENDER_CONCURRENCY"] {
        command.env_remove(name);
    }
    for (name, value) in extra {
        command.env(name, value);
    }
    let out = command.output().expect("kpath runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `kpath ARGS` in `cwd`, with the pinned Helm.
pub fn kpath(args: &[&str], cwd: &Path) -> Run {
    kpath_with(args, cwd, &[])
}

/// Writes `text` to `root/name`, creating directories.
pub fn write(root: &Path, name: &str, text: &str) {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A temporary repository root (marked by `.git`, so `.kpath.yml` is looked up no higher) holding `files`.
pub fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(".git")).expect("mark repository root");
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    dir
}

/// `git ARGS` in `dir` with a fixed identity; its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=kpath", "-c", "user.email=kpath@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The findings of a JSON report (`kpath check` or `kpath review`) that count: those not suppressed.
pub fn counted(report: &serde_json::Value) -> Vec<&serde_json::Value> {
    report["findings"].as_array().expect("findings").iter().filter(|f| f["suppressed"].is_null()).collect()
}
