//! `kubectl kustomize` output: split into objects, each object's provenance read from kustomize's
//! annotations (`config.kubernetes.io/origin`), and those annotations removed again so the rules check
//! exactly what `kubectl kustomize` prints without `buildMetadata`.
//!
//! The annotations are documented at
//! <https://kubectl.docs.kubernetes.io/references/kustomize/kustomization/buildmetadata/>.

use crate::yaml::{self, Node};

/// kustomize's annotation naming the file (or generator) an object came from.
pub const ORIGIN: &str = "config.kubernetes.io/origin";
/// kustomize's annotation listing the transformers that changed an object.
pub const TRANSFORMATIONS: &str = "alpha.config.kubernetes.io/transformations";

/// Where kustomize says an object came from, paths relative to the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A resource file.
    Resource {
        path: String,
    },
    /// Made by a generator (`ConfigMapGenerator`, `SecretGenerator`, `HelmChartInflationGenerator`) of a
    /// Kustomization.
    Generated {
        kustomization: String,
        by: String,
    },
    Unknown,
}

/// One object of the output.
#[derive(Debug, Clone)]
pub struct Object {
    /// The object as `kubectl kustomize` prints it without provenance annotations.
    pub text: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub origin: Origin,
}

/// Which annotations to remove: those kpath asked for and the user's Kustomizations did not.
#[derive(Debug, Clone, Copy)]
pub struct Strip {
    pub origin: bool,
    pub transformations: bool,
}

/// Splits the output into objects. `to_tree` turns a path kustomize wrote (relative to the directory it
/// built) into a path relative to the tree.
///
/// Provenance annotations that are kept (the user's own `buildMetadata` asked for them) get their paths
/// written relative to `root` again, as `kubectl kustomize ROOT` would write them (kpath builds through a
/// wrapper directory beside the root).
pub fn objects(stdout: &str, strip: Strip, to_tree: &dyn Fn(&str) -> Option<String>, root: &str) -> Vec<Object> {
    let relocate = |path: &str| to_tree(path).map(|p| relative(root, &p));
    split(stdout)
        .into_iter()
        .filter(|doc| !doc.trim().is_empty())
        .map(|doc| {
            let root = yaml::parse_single(&doc).ok().flatten();
            let text_of = |path: &[&str]| {
                root.as_ref().and_then(|r| r.get_path(path)).and_then(Node::as_text).unwrap_or_default().to_string()
            };
            let origin = root
                .as_ref()
                .and_then(|r| r.get_path(&["metadata", "annotations", ORIGIN]))
                .and_then(Node::as_text)
                .map_or(Origin::Unknown, |text| origin(text, to_tree));
            Object {
                api_version: text_of(&["apiVersion"]),
                kind: text_of(&["kind"]),
                name: text_of(&["metadata", "name"]),
                origin,
                text: strip_annotations(&doc, strip, &relocate),
            }
        })
        .collect()
}

/// Documents of a stream: kustomize writes `---` alone on a line between objects (a line that starts a
/// block scalar's content is indented, so `---` at column 0 is always a separator).
fn split(stdout: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in stdout.split_inclusive('\n') {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(last) = docs.last_mut() {
            last.push_str(line);
        }
    }
    docs
}

fn origin(text: &str, to_tree: &dyn Fn(&str) -> Option<String>) -> Origin {
    let Some(root) = yaml::parse_single(text).ok().flatten() else { return Origin::Unknown };
    if let Some(path) = root.get("path").and_then(Node::as_text) {
        // A resource from a remote base carries `repo:` too; kpath never renders those.
        if root.get("repo").is_none() {
            return to_tree(path).map_or(Origin::Unknown, |path| Origin::Resource { path });
        }
        return Origin::Unknown;
    }
    let configured_in = root.get("configuredIn").and_then(Node::as_text).and_then(to_tree);
    let by = root.get_path(&["configuredBy", "kind"]).and_then(Node::as_text);
    match (configured_in, by) {
        (Some(kustomization), Some(by)) => Origin::Generated { kustomization, by: by.to_string() },
        _ => Origin::Unknown,
    }
}

/// The object's text without the provenance annotations `strip` names (and without `annotations:` when
/// nothing else is left in it). kustomize writes `metadata.annotations` as a block mapping at two spaces,
/// each annotation at four and its value's further lines deeper. In provenance annotations that stay, the
/// `path:` and `configuredIn:` values go through `relocate`.
pub fn strip_annotations(doc: &str, strip: Strip, relocate: &dyn Fn(&str) -> Option<String>) -> String {
    let lines: Vec<&str> = doc.split_inclusive('\n').collect();
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let blank = |l: &str| l.trim().is_empty();
    let Some(meta) = lines.iter().position(|l| l.trim_end() == "metadata:") else { return doc.to_string() };
    let meta_end = (meta + 1..lines.len()).find(|&i| !blank(lines[i]) && indent(lines[i]) == 0).unwrap_or(lines.len());
    let Some(ann) = (meta + 1..meta_end).find(|&i| lines[i].trim_end() == "  annotations:") else {
        return doc.to_string();
    };
    let ann_end = (ann + 1..meta_end).find(|&i| !blank(lines[i]) && indent(lines[i]) <= 2).unwrap_or(meta_end);
    // The annotation entries: each from its key line (indent 4) up to the next one.
    let starts: Vec<usize> = (ann + 1..ann_end).filter(|&i| indent(lines[i]) == 4 && !blank(lines[i])).collect();
    let mut kept: Vec<String> = Vec::new();
    let mut changed = false;
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(ann_end);
        let key = lines[start].trim_start();
        let origin = key.starts_with(&format!("{ORIGIN}:"));
        let transformations = key.starts_with(&format!("{TRANSFORMATIONS}:"));
        if (strip.origin && origin) || (strip.transformations && transformations) {
            changed = true;
            continue;
        }
        for line in &lines[start..end] {
            let moved = (origin || transformations).then(|| relocated(line, relocate)).flatten();
            changed |= moved.is_some();
            kept.push(moved.unwrap_or_else(|| line.to_string()));
        }
    }
    if !changed {
        return doc.to_string();
    }
    let mut out = String::with_capacity(doc.len());
    lines[..ann].iter().for_each(|l| out.push_str(l));
    if !kept.is_empty() {
        out.push_str(lines[ann]);
        kept.iter().for_each(|l| out.push_str(l));
    }
    lines[ann_end..].iter().for_each(|l| out.push_str(l));
    out
}

/// A `path: …` or `configuredIn: …` line of a provenance annotation with its path relocated.
fn relocated(line: &str, relocate: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let body = line.trim_start();
    let lead = &line[..line.len() - body.len()];
    let (dash, body) = match body.strip_prefix("- ") {
        Some(rest) => ("- ", rest),
        None => ("", body),
    };
    let (key, value) = body.split_once(": ")?;
    if key != "path" && key != "configuredIn" {
        return None;
    }
    let end = if value.ends_with('\n') { "\n" } else { "" };
    let moved = relocate(value.trim_end())?;
    Some(format!("{lead}{dash}{key}: {moved}{end}"))
}

/// `to` (relative to the tree) as a path relative to the directory `from` (relative to the tree).
pub fn relative(from: &str, to: &str) -> String {
    let from: Vec<&str> = from.split('/').filter(|p| !p.is_empty()).collect();
    let to: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
}

/// The file name `kubectl kustomize -o DIR` gives an object: `[group_]version_kind_name.yaml`, lowercase
/// kind; characters that cannot be in a file name become `_`.
pub fn file_name(object: &Object) -> String {
    let gv = object.api_version.replace('/', "_");
    let name: String = object
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':') { c } else { '_' })
        .collect();
    format!("{gv}_{}_{name}.yaml", object.kind.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANNOTATED: &str = "apiVersion: v1
kind: Service
metadata:
  annotations:
    alpha.config.kubernetes.io/transformations: |
      - configuredIn: ../tree/overlays/prod/kustomization.yaml
        configuredBy:
          apiVersion: builtin
          kind: NamespaceTransformer
    config.kubernetes.io/origin: |
      path: ../tree/base/service.yaml
    team.example.com/owner: |
      a
      b
  name: web
spec:
  ports:
  - port: 80
---
apiVersion: v1
data:
  A: b
kind: ConfigMap
metadata:
  annotations:
    config.kubernetes.io/origin: |
      configuredIn: ../tree/overlays/prod/kustomization.yaml
      configuredBy:
        apiVersion: builtin
        kind: ConfigMapGenerator
  name: cfg-abc
";

    fn to_tree(path: &str) -> Option<String> {
        crate::kustomize::normalize("kpath-root", path)?.strip_prefix("tree/").map(str::to_string)
    }

    #[test]
    fn provenance_is_read_and_removed() {
        let all = Strip { origin: true, transformations: true };
        let objects = objects(ANNOTATED, all, &to_tree, "overlays/prod");
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].origin, Origin::Resource { path: "base/service.yaml".into() });
        assert_eq!(
            objects[0].text,
            "apiVersion: v1\nkind: Service\nmetadata:\n  annotations:\n    team.example.com/owner: |\n      a\n      b\n  name: web\nspec:\n  ports:\n  - port: 80\n"
        );
        assert_eq!(
            objects[1].origin,
            Origin::Generated {
                kustomization: "overlays/prod/kustomization.yaml".into(),
                by: "ConfigMapGenerator".into()
            }
        );
        assert_eq!(objects[1].text, "apiVersion: v1\ndata:\n  A: b\nkind: ConfigMap\nmetadata:\n  name: cfg-abc\n");
        assert_eq!(file_name(&objects[1]), "v1_configmap_cfg-abc.yaml");
    }

    #[test]
    fn annotations_the_user_asked_for_are_kept() {
        let keep_origin = Strip { origin: false, transformations: true };
        let objects = objects(ANNOTATED, keep_origin, &to_tree, "overlays/prod");
        assert!(objects[0].text.contains(ORIGIN) && !objects[0].text.contains(TRANSFORMATIONS));
        // As `kubectl kustomize overlays/prod` writes it.
        assert!(objects[0].text.contains("      path: ../../base/service.yaml\n"), "{}", objects[0].text);
        let none = Strip { origin: false, transformations: false };
        let kept = strip_annotations(ANNOTATED, none, &|_| None);
        assert_eq!(kept, ANNOTATED);
        let root = |p: &str| to_tree(p).map(|p| relative("overlays/prod", &p));
        let kept = strip_annotations(ANNOTATED, none, &root);
        assert!(kept.contains("      - configuredIn: kustomization.yaml\n"), "{kept}");
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative("overlays/prod", "base/service.yaml"), "../../base/service.yaml");
        assert_eq!(relative("overlays/prod", "overlays/prod/kustomization.yaml"), "kustomization.yaml");
        assert_eq!(relative("", "a/b.yaml"), "a/b.yaml");
    }
}
