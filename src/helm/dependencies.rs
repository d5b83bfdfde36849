//! `file://` chart dependencies: `Chart.yaml` may name a chart elsewhere in the repository
//! (`repository: file://../common`). Helm resolves them only in `helm dependency build`; kpath renders
//! offline, so it copies such a chart into the sandboxed chart's `charts/` itself, read with the same
//! bounds as the chart (sizes checked before reading, symlinks followed only inside the dependency), and
//! never from outside the tree the chart lives in.
//! (<https://helm.sh/docs/helm/helm_dependency/> — "file://" repositories.)

use std::path::{Component, Path, PathBuf};

use crate::yaml::{self, Node};

/// How deep `file://` dependencies may nest (a chart, its dependency, theirs, …).
pub const MAX_DEPTH: usize = 8;

/// A `file://` dependency of a `Chart.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDependency {
    /// The chart's name (`dependencies[].name`): the directory it takes under `charts/`.
    pub name: String,
    /// The path after `file://`, relative to the chart's directory.
    pub path: String,
    /// The line of its `repository:`.
    pub line: u32,
}

/// The `file://` dependencies of a `Chart.yaml`, in order.
pub fn parse(chart_yaml_text: &str) -> Vec<FileDependency> {
    let Ok(Some(root)) = yaml::parse_single(chart_yaml_text) else { return Vec::new() };
    let Some(deps) = root.get("dependencies") else { return Vec::new() };
    deps.items()
        .iter()
        .filter_map(|dep| {
            let repository = dep.entry("repository")?;
            let path = repository.value.as_text()?.trim().strip_prefix("file://")?;
            Some(FileDependency {
                name: dep.get("name").and_then(Node::as_text).unwrap_or("").to_string(),
                path: path.to_string(),
                line: repository.value.pos.line,
            })
        })
        .collect()
}

/// The `file://` dependencies of a `Chart.yaml` as (path relative to the chart directory, line of its
/// `repository:`): what a unit reads besides its own chart.
pub fn file_dependencies(chart_yaml_text: &str) -> Vec<(String, u32)> {
    parse(chart_yaml_text).into_iter().map(|d| (d.path, d.line)).collect()
}

/// Whether a dependency name can be a directory under `charts/`: one plain path component.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
}

/// `to` relative to `from`, both absolute and canonical (`/r/charts/a`, `/r/libs/b` → `../../libs/b`).
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component<'_>> = from.components().collect();
    let to: Vec<Component<'_>> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to[common..] {
        out.push(c.as_os_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_dependencies_are_listed_with_their_line() {
        let text = "apiVersion: v2\nname: shop\nversion: 1.0.0\ndependencies:\n  - name: common\n    version: 1.x\n    repository: file://../common\n  - name: redis\n    repository: https://charts.example.com\n  - name: lib\n    repository: \"file://./libs/lib\"\n";
        assert_eq!(file_dependencies(text), vec![("../common".to_string(), 7), ("./libs/lib".to_string(), 11)]);
        assert_eq!(parse(text)[0].name, "common");
        assert!(file_dependencies("not: [yaml").is_empty());
        assert!(file_dependencies("dependencies: 3\n").is_empty());
    }

    #[test]
    fn names_are_one_path_component() {
        assert!(valid_name("common"));
        for bad in ["", ".", "..", "../x", "a/b", ".hidden"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/r/charts/a"), Path::new("/r/libs/b")), PathBuf::from("../../libs/b"));
        assert_eq!(relative(Path::new("/r/a"), Path::new("/r/a/sub")), PathBuf::from("sub"));
    }
}
