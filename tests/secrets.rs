//! No secret in any output: the canary corpus (`tests/support/canaries.rs`) is checked and reviewed in
//! every format, and no canary may appear in anything kpath prints (stdout and stderr).

#[path = "support/bin.rs"]
mod bin;
#[path = "support/canaries.rs"]
mod canaries;

use std::path::Path;

/// stdout and stderr of `kpath ARGS`, run in `cwd`.
fn kpath(args: &[&str], cwd: &Path) -> (i32, String) {
    let run = bin::kpath(args, cwd);
    (run.code, format!("{}\n{}", run.stdout, run.stderr))
}

fn write(root: &Path, files: &[(String, String)]) {
    for (path, text) in files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, text).expect("write");
    }
}

#[test]
fn no_canary_in_any_check_output() {
    let corpus = canaries::corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &corpus.head);
    let mut failures = Vec::new();
    for args in [
        &["check", "--no-cache", "--format", "text", "--show-suppressed"][..],
        &["check", "--no-cache", "--format", "text", "--color", "always"],
        &["check", "--no-cache", "--format", "json"],
        &["check", "--no-cache", "--format", "sarif"],
        &["check", "--no-cache", "--format", "github"],
    ] {
        let (code, output) = kpath(args, dir.path());
        assert_eq!(code, 1, "{args:?}: the corpus has errors\n{output}");
        let leaks = corpus.leaks(&output);
        if !leaks.is_empty() {
            failures.push(format!("{args:?} leaked {leaks:?}\n{output}"));
        }
        // The corpus really exercises the places: each of these findings quotes or names one of them.
        for rule in ["dockerfile-secret-env", "render-failed", "secret-in-env", "manifest-invalid", "image-latest"] {
            assert!(output.contains(rule), "{args:?}: no `{rule}` finding\n{output}");
        }
        assert!(output.contains("[redacted]"), "{args:?}: nothing was redacted\n{output}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn no_canary_in_any_review_output() {
    let corpus = canaries::corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, head) = (dir.path().join("base"), dir.path().join("head"));
    write(&base, &corpus.base);
    write(&head, &corpus.head);
    let (base, head) = (base.to_string_lossy().into_owned(), head.to_string_lossy().into_owned());
    let mut failures = Vec::new();
    for format in ["markdown", "json", "text", "github"] {
        let args = ["review", "--no-cache", "--base-dir", &base, "--head-dir", &head, "--format", format];
        let (code, output) = kpath(&args, dir.path());
        assert_eq!(code, 1, "{format}: the corpus has new errors\n{output}");
        let leaks = corpus.leaks(&output);
        if !leaks.is_empty() {
            failures.push(format!("{format} leaked {leaks:?}\n{output}"));
        }
        if format != "text" {
            // The Secret's changed key is named, the unchanged ones are not said to change.
            assert!(
                output.contains("password: \\\"[redacted, changed]\\\"")
                    || output.contains("password: \"[redacted, changed]\""),
                "{format}: the changed key is not named\n{output}"
            );
            assert!(output.contains("db-new") && output.contains("db-old"), "{format}: the renamed Secret\n{output}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
