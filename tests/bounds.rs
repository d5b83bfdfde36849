//! Hostile charts and repositories are bounded, and kpath leaves nothing behind: Helm memory bombs
//! become `render-failed` findings, a huge chart file is named without being read, and however
//! `kpath check` or `kpath review` ends (SIGTERM, SIGINT, SIGKILL) the helm it started is gone and
//! its temporary directories are removed. Everything hostile is generated here, with the pinned helm.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const IN_DEFAULT: &str = include_str!("../fixtures/rules/namespace-default/bad/deployment.yaml");

/// The helm the tests render with: `KPATH_HELM` if set, else the project-local pinned install.
fn helm() -> PathBuf {
    let path = match std::env::var_os("KPATH_HELM") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/helm-3.17.3/bin/helm"),
    };
    assert!(path.is_file(), "the pinned helm is missing: run `bash scripts/test` (looked for {})", path.display());
    path
}

/// A repository (`.git` marks its root) with the given files, and a private temporary directory for
/// kpath (its `TMPDIR`), so the test sees exactly the directories this run created.
struct Workspace {
    _root: tempfile::TempDir,
    repo: PathBuf,
    tmp: PathBuf,
}

fn workspace(files: &[(&str, &str)]) -> Workspace {
    let root = tempfile::tempdir().expect("tempdir");
    let repo = root.path().join("repo");
    let tmp = root.path().join("tmp");
    std::fs::create_dir_all(repo.join(".git")).expect("repo");
    std::fs::create_dir_all(&tmp).expect("tmp");
    for (name, text) in files {
        let path = repo.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    Workspace { _root: root, repo, tmp }
}

fn chart_yaml(name: &str) -> String {
    format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n")
}

fn kpath(ws: &Workspace, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kpath"));
    command.args(args).current_dir(&ws.repo).env("KPATH_HELM", helm()).env("TMPDIR", &ws.tmp);
    command
}

/// `kpath check --format json --no-cache .`: the report, which must be JSON.
fn check(ws: &Workspace) -> Value {
    let out = kpath(ws, &["check", "--format", "json", "--no-cache", "."]).output().expect("kpath runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}):\nstdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    })
}

/// (rule, file, message) of every finding.
fn findings(report: &Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (text(&f["rule"]), text(&f["file"]), text(&f["message"]))
        })
        .collect()
}

fn render_failure(report: &Value, file: &str) -> String {
    let all = findings(report);
    all.iter()
        .find(|(rule, at, _)| rule == "render-failed" && at == file)
        .map(|(_, _, message)| message.clone())
        .unwrap_or_else(|| panic!("no render-failed on {file}: {all:?}"))
}

/// Names of kpath's directories left in the private temporary directory.
fn leftovers(ws: &Workspace) -> Vec<String> {
    std::fs::read_dir(&ws.tmp)
        .expect("tmp")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("kpath-"))
        .collect()
}

#[test]
fn a_template_that_builds_a_huge_list_fails_on_its_memory_limit_and_the_rest_is_checked() {
    let ws = workspace(&[
        ("charts/bomb/Chart.yaml", &chart_yaml("bomb")),
        ("charts/bomb/templates/list.yaml", "{{- $all := until 300000000 }}\nn: {{ len $all }}\n"),
        ("deploy/app.yaml", IN_DEFAULT),
    ]);
    let report = check(&ws);
    let message = render_failure(&report, "charts/bomb/Chart.yaml");
    assert!(message.contains("384 MiB memory limit"), "{message}");
    assert!(findings(&report).iter().any(|(rule, file, _)| rule == "namespace-default" && file == "deploy/app.yaml"));
    assert!(leftovers(&ws).is_empty(), "{:?}", leftovers(&ws));
}

#[test]
fn tpl_that_expands_itself_through_values_fails_on_its_memory_limit() {
    let ws = workspace(&[
        ("charts/tpl-bomb/Chart.yaml", &chart_yaml("tpl-bomb")),
        ("charts/tpl-bomb/values.yaml", "again: \"{{ tpl .Values.again . }}{{ tpl .Values.again . }}\"\n"),
        ("charts/tpl-bomb/templates/cm.yaml", "x: {{ tpl .Values.again . }}\n"),
    ]);
    let report = check(&ws);
    let message = render_failure(&report, "charts/tpl-bomb/Chart.yaml");
    assert!(message.contains("memory limit"), "{message}");
}

#[test]
fn a_chart_file_over_the_size_limit_is_named_and_not_read() {
    let ws = workspace(&[
        ("charts/heavy/Chart.yaml", &chart_yaml("heavy")),
        ("charts/heavy/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"),
    ]);
    // 1 GiB that costs no disk: a sparse file. Reading it whole would cost 1 GiB of memory.
    let huge = std::fs::File::create(ws.repo.join("charts/heavy/files.bin")).expect("create");
    huge.set_len(1 << 30).expect("sparse file");
    let report = check(&ws);
    let message = render_failure(&report, "charts/heavy/files.bin");
    assert!(message.contains("1024 MiB") && message.contains("16 MiB limit"), "{message}");
}

/// A chart whose template loops for minutes without memory or output.
fn endless(name: &str) -> [(String, String); 2] {
    [
        (format!("charts/{name}/Chart.yaml"), chart_yaml(name)),
        (
            format!("charts/{name}/templates/loop.yaml"),
            "{{- range $i := until 100000 }}{{- range $j := until 100000 }}{{- end }}{{- end }}\n".to_string(),
        ),
    ]
}

/// Polls `condition` until it holds, for at most 60 s.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The parent pid and state of a process, from `/proc/<pid>/stat`; None once it is gone.
fn stat(pid: u32) -> Option<(u32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = text.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((rest.next()?.parse().ok()?, state))
}

/// Gone, or a zombie nobody reaped yet (its parent died; the container's init may not reap).
fn dead(pid: u32) -> bool {
    stat(pid).is_none_or(|(_, state)| state == 'Z' || state == 'X')
}

/// The `helm template` process `kpath` started.
fn helm_child_of(kpath: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_string_lossy().parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let is_template = cmdline.split(|b| *b == 0).any(|a| a == b"template");
        (is_template && stat(pid)?.0 == kpath).then_some(pid)
    })
}

/// Starts `kpath args` on the workspace, waits until its helm renders, and sends `signal` to kpath.
/// Returns helm's pid and kpath's exit status.
fn interrupt(ws: &Workspace, args: &[&str], signal: i32) -> (u32, std::process::ExitStatus) {
    let mut child: Child = kpath(ws, args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("kpath starts");
    let mut helm = None;
    eventually("kpath runs helm", || {
        helm = helm_child_of(child.id());
        helm.is_some() || child.try_wait().ok().flatten().is_some()
    });
    let Some(helm) = helm else { panic!("kpath ended before rendering: {:?}", child.try_wait()) };
    assert!(!leftovers(ws).is_empty(), "helm runs in a kpath directory of TMPDIR");
    // SAFETY: kill has no memory effects; the pid is our own child, not yet reaped.
    let sent = unsafe { libc::kill(libc::pid_t::try_from(child.id()).expect("pid"), signal) };
    assert_eq!(sent, 0, "signal sent");
    let mut status = None;
    eventually("kpath exits", || {
        status = child.try_wait().expect("wait");
        status.is_some()
    });
    eventually("helm is gone", || dead(helm));
    (helm, status.expect("exited"))
}

fn died_of(status: std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&status)
}

#[test]
fn sigterm_during_check_kills_helm_and_removes_the_temporary_directories() {
    let files = endless("endless-term");
    let ws = workspace(&[(&files[0].0, &files[0].1), (&files[1].0, &files[1].1)]);
    let (_, status) = interrupt(&ws, &["check", "--no-cache", "."], libc::SIGTERM);
    assert_eq!(died_of(status), Some(libc::SIGTERM), "{status:?}");
    assert!(leftovers(&ws).is_empty(), "{:?}", leftovers(&ws));
}

#[test]
fn sigint_during_check_kills_helm_and_removes_the_temporary_directories() {
    let files = endless("endless-int");
    let ws = workspace(&[(&files[0].0, &files[0].1), (&files[1].0, &files[1].1)]);
    let (_, status) = interrupt(&ws, &["check", "--no-cache", "."], libc::SIGINT);
    assert_eq!(died_of(status), Some(libc::SIGINT), "{status:?}");
    assert!(leftovers(&ws).is_empty(), "{:?}", leftovers(&ws));
}

#[test]
fn after_sigkill_helm_dies_with_kpath_and_the_next_kpath_removes_what_was_left() {
    let files = endless("endless-kill");
    let ws = workspace(&[(&files[0].0, &files[0].1), (&files[1].0, &files[1].1)]);
    let (_, status) = interrupt(&ws, &["check", "--no-cache", "."], libc::SIGKILL);
    assert_eq!(died_of(status), Some(libc::SIGKILL), "{status:?}");
    // A killed process cannot clean up: its directory stays until the next kpath starts.
    let left = leftovers(&ws);
    assert!(left.iter().all(|n| n.starts_with("kpath-helm-")) && !left.is_empty(), "{left:?}");
    let empty = ws.repo.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let next = kpath(&ws, &["check", "empty"]).output().expect("kpath runs");
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
    assert!(leftovers(&ws).is_empty(), "{:?}", leftovers(&ws));
}

/// Commits the files (a full snapshot) on `branch`, with `parent`.
fn commit(repo: &git2::Repository, branch: &str, parent: Option<git2::Oid>, files: &[(&str, &str)]) -> git2::Oid {
    let mut index = git2::Index::new().expect("index");
    for (path, text) in files {
        let id = repo.blob(text.as_bytes()).expect("blob");
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            file_size: 0,
            id,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index.add(&entry).expect("add");
    }
    let tree = repo.find_tree(index.write_tree_to(repo).expect("tree")).expect("tree");
    let sig = git2::Signature::new("Test", "test@example.com", &git2::Time::new(1_700_000_000, 0)).expect("sig");
    let parents: Vec<git2::Commit<'_>> = parent.iter().map(|p| repo.find_commit(*p).expect("parent")).collect();
    let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
    repo.commit(Some(&format!("refs/heads/{branch}")), &sig, &sig, "commit", &tree, &parents).expect("commit")
}

#[test]
fn sigterm_during_review_kills_helm_and_removes_the_review_directory() {
    let ws = workspace(&[]);
    std::fs::remove_dir_all(ws.repo.join(".git")).expect("plain directory");
    let repo = git2::Repository::init(&ws.repo).expect("git init");
    let base = commit(&repo, "main", None, &[("README.md", "shop\n")]);
    let files = endless("endless-review");
    commit(&repo, "pr", Some(base), &[("README.md", "shop\n"), (&files[0].0, &files[0].1), (&files[1].0, &files[1].1)]);
    let (_, status) =
        interrupt(&ws, &["review", "--repo", ".", "--base", "main", "--head", "pr", "--no-cache"], libc::SIGTERM);
    assert_eq!(died_of(status), Some(libc::SIGTERM), "{status:?}");
    assert!(leftovers(&ws).is_empty(), "{:?}", leftovers(&ws));
}

#[test]
fn a_blob_over_the_size_limit_is_reported_by_name_without_being_inflated() {
    let ws = workspace(&[]);
    std::fs::remove_dir_all(ws.repo.join(".git")).expect("plain directory");
    let repo = git2::Repository::init(&ws.repo).expect("git init");
    let base = commit(&repo, "main", None, &[("README.md", "shop\n"), ("old.yaml", "a: 1\n")]);
    // 64 MiB of YAML that zlib packs into ~64 KiB, beside a deleted file (a rename candidate).
    let huge = "key: value\n".repeat((64 << 20) / 11);
    commit(&repo, "pr", Some(base), &[("README.md", "shop\n"), ("deploy/huge.yaml", &huge)]);
    drop(huge);
    let out = kpath(&ws, &["review", "--repo", ".", "--base", "main", "--head", "pr", "--format", "json"])
        .output()
        .expect("kpath runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("deploy/huge.yaml") && stdout.contains("over kpath's 16 MiB limit per file"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(leftovers(&ws).is_empty(), "{:?}", leftovers(&ws));
}
