//! Finds what to check under the given paths and says what each file is: Kubernetes YAML/JSON,
//! Dockerfile or IAM policy JSON; lists each checked directory's files as a tree for the renderers to find
//! units in. Skips `.git` and configured ignores, and survives symlink loops and unreadable entries (they are
//! reported, never fatal).

use std::path::{Path, PathBuf};

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// `.yaml`/`.yml`: Kubernetes manifests (non-Kubernetes YAML is recognised and skipped later).
    Yaml,
    /// `.json`: a Kubernetes manifest or an IAM policy, decided by content.
    Json,
    Dockerfile,
}

#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    /// Path for reports: as reached from the command line, `/`-separated.
    pub display: String,
    pub kind: InputKind,
    /// The tree (index into [`Found::trees`]) and path inside it, for files found in a checked directory.
    pub tree: Option<(usize, String)>,
}

/// A checked directory: every file in it, for the renderers to find units in.
#[derive(Debug, Clone)]
pub struct TreeRoot {
    pub path: PathBuf,
    /// The directory as reports show it (`""` for `.`).
    pub display: String,
    /// The directory's path relative to the configuration's directory (`""` when it is that directory).
    pub prefix: String,
    /// Every file under it (ignored ones included: a render may read them), relative, `/`-separated, sorted.
    pub files: Vec<String>,
}

impl TreeRoot {
    /// How reports show a path of this tree.
    pub fn show(&self, rel: &str) -> String {
        crate::render::join(&self.display, rel)
    }
}

/// What [`discover`] found.
#[derive(Debug, Default)]
pub struct Found {
    pub inputs: Vec<Input>,
    pub trees: Vec<TreeRoot>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

pub fn classify(path: &Path) -> Option<InputKind> {
    let name = path.file_name()?.to_str()?;
    let lower = name.to_ascii_lowercase();
    if name == crate::config::FILE_NAME || name == ".kpath.yaml" {
        return None;
    }
    if lower == "dockerfile"
        || lower == "containerfile"
        || lower.ends_with(".dockerfile")
        || lower.ends_with(".containerfile")
        || (lower.starts_with("dockerfile.") && !lower.ends_with(".dockerignore"))
    {
        return Some(InputKind::Dockerfile);
    }
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        return Some(InputKind::Yaml);
    }
    if lower.ends_with(".json") {
        return Some(InputKind::Json);
    }
    None
}

fn display_path(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

/// Walks `paths` and returns the inputs in a stable order, and each directory's files.
pub fn discover(paths: &[PathBuf], config: &Config) -> Found {
    let mut inputs = Vec::new();
    let mut skipped = Vec::new();
    let mut trees = Vec::new();
    for root in paths {
        let meta = match std::fs::metadata(root) {
            Ok(m) => m,
            Err(e) => {
                skipped.push(Skipped { path: display_path(root), reason: format!("cannot read: {e}") });
                continue;
            }
        };
        if meta.is_file() {
            match classify(root) {
                Some(kind) => inputs.push(Input { path: root.clone(), display: display_path(root), kind, tree: None }),
                None => skipped
                    .push(Skipped { path: display_path(root), reason: "not a manifest, Dockerfile or policy".into() }),
            }
            continue;
        }
        // Ignore globs are relative to the configuration's directory when the root lies inside it.
        let prefix = config
            .base_dir
            .as_ref()
            .and_then(|base| std::fs::canonicalize(base).ok())
            .and_then(|base| std::fs::canonicalize(root).ok()?.strip_prefix(&base).ok().map(Path::to_path_buf))
            .unwrap_or_default();
        // Links are followed only while they stay inside the checked directory: a repository's link to
        // `/proc/self/environ` or a CI runner's credentials must not be read (and quoted) as a manifest.
        let inside = std::fs::canonicalize(root).ok();
        let tree_index = trees.len();
        let display = display_path(root);
        let mut tree = TreeRoot {
            path: root.clone(),
            display: if display == "." { String::new() } else { display },
            prefix: display_path(&prefix),
            files: Vec::new(),
        };
        let mut walker = walkdir::WalkDir::new(root).follow_links(true).sort_by_file_name().into_iter();
        loop {
            let entry = match walker.next() {
                None => break,
                Some(Ok(entry)) => entry,
                Some(Err(e)) => {
                    let path = e.path().map(display_path).unwrap_or_else(|| display_path(root));
                    let reason = if e.loop_ancestor().is_some() {
                        "symlink loop: this directory links back to one of its parents".to_string()
                    } else {
                        format!("cannot read: {e}")
                    };
                    skipped.push(Skipped { path, reason });
                    continue;
                }
            };
            let path = entry.path();
            if entry.path_is_symlink()
                && !std::fs::canonicalize(path)
                    .is_ok_and(|target| inside.as_ref().is_some_and(|i| target.starts_with(i)))
            {
                skipped.push(Skipped {
                    path: display_path(path),
                    reason: "a symbolic link out of the checked directory; not followed".into(),
                });
                if entry.file_type().is_dir() {
                    walker.skip_current_dir();
                }
                continue;
            }
            // The path as ignore globs see it: relative to the configuration's directory.
            let in_tree = path.strip_prefix(root).unwrap_or(path);
            let rel = display_path(&prefix.join(in_tree));
            if entry.file_type().is_dir() {
                if entry.depth() > 0 && entry.file_name() == ".git" {
                    walker.skip_current_dir();
                }
                continue;
            }
            let tree_rel = display_path(in_tree);
            tree.files.push(tree_rel.clone());
            // Ignored files stay in the tree (a render may read them) but are not checked.
            if ignored_at(config, &rel) {
                continue;
            }
            if let Some(kind) = classify(path) {
                inputs.push(Input {
                    path: path.to_path_buf(),
                    display: display_path(path),
                    kind,
                    tree: Some((tree_index, tree_rel)),
                });
            }
        }
        tree.files.sort();
        tree.files.dedup();
        trees.push(tree);
    }
    inputs.sort_by(|a, b| a.display.cmp(&b.display));
    inputs.dedup_by(|a, b| a.display == b.display);
    Found { inputs, trees, skipped }
}

/// Whether a path (relative to the configuration's directory) or one of its directories is ignored.
pub fn ignored_at(config: &Config, rel: &str) -> bool {
    if config.is_ignored(rel) {
        return true;
    }
    let mut end = 0;
    while let Some(slash) = rel[end..].find('/') {
        end += slash;
        let dir = &rel[..end];
        if config.is_ignored(dir) || config.is_ignored(&format!("{dir}/")) {
            return true;
        }
        end += 1;
    }
    false
}

/// A file's bytes, reading at most `cap` of them: a file that holds more is an error, and what lies past the
/// cap is never read (a size checked beforehand can grow before the read).
pub fn read_bounded(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(std::io::Error::other(format!("larger than {} MiB", cap >> 20)));
    }
    Ok(bytes)
}
