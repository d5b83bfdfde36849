//! A Kustomization file read with kpath's own YAML tree: every file or directory it refers to, with the
//! line of the reference, and the parts the source map needs (patches, images, generators, namespace,
//! Helm charts). Nothing is resolved or read here: `discover` does that.
//!
//! Fields follow the Kustomization reference
//! (<https://kubectl.docs.kubernetes.io/references/kustomize/kustomization/>), legacy fields included
//! (`bases`, `patchesStrategicMerge`, `patchesJson6902`, `env`).

use crate::render::Problem;
use crate::yaml::{self, Node, NodeKind, Pos, Style};

/// The names kustomize looks for in a directory, in its order.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Which field a reference is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Resource,
    Base,
    Component,
    Patch,
    PatchStrategicMerge,
    PatchJson6902,
    GeneratorEnv,
    GeneratorFile,
    HelmValues,
    /// A chart directory of `helmCharts` (`<chartHome>/<name>`).
    HelmChart,
    Crd,
    Replacement,
    Configuration,
    Openapi,
    /// `generators`, `transformers`, `validators`: plugin configurations (files or Kustomizations).
    Plugin,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Resource => "resources",
            Field::Base => "bases",
            Field::Component => "components",
            Field::Patch => "patches",
            Field::PatchStrategicMerge => "patchesStrategicMerge",
            Field::PatchJson6902 => "patchesJson6902",
            Field::GeneratorEnv => "generator envs",
            Field::GeneratorFile => "generator files",
            Field::HelmValues => "helmCharts values",
            Field::HelmChart => "helmCharts",
            Field::Crd => "crds",
            Field::Replacement => "replacements",
            Field::Configuration => "configurations",
            Field::Openapi => "openapi",
            Field::Plugin => "generators/transformers/validators",
        }
    }

    /// Whether a directory written here is another Kustomization (rendered as part of this one).
    pub fn may_be_kustomization(self) -> bool {
        matches!(self, Field::Resource | Field::Base | Field::Component | Field::Plugin)
    }
}

/// A path a Kustomization reads, as written (relative to the Kustomization's directory, or remote).
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub field: Field,
    pub path: String,
    pub pos: Pos,
}

/// Where a patch's text is.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchBody {
    /// A file, relative to the Kustomization's directory.
    File(String),
    /// Written inside the Kustomization. `first_line` is the Kustomization's line of the text's first line,
    /// when the text is a block scalar (`patch: |-`), so lines inside it can be placed exactly.
    Inline { text: String, first_line: Option<u32> },
}

/// `target:` of a patch: which objects it applies to. `name` is a regular expression for kustomize; kpath
/// compares it as text (see the source map).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Target {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub annotation_selector: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub body: PatchBody,
    pub target: Option<Target>,
    /// The entry's position (the line shown for the patch as a whole).
    pub pos: Pos,
}

/// An `images:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
    pub pos: Pos,
    /// The line that sets what runs: `digest:`, else `newTag:`, else `newName:` (the entry when none is set).
    pub set_pos: Pos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratorKind {
    ConfigMap,
    Secret,
}

impl GeneratorKind {
    /// The kind of object it generates.
    pub fn object_kind(self) -> &'static str {
        match self {
            GeneratorKind::ConfigMap => "ConfigMap",
            GeneratorKind::Secret => "Secret",
        }
    }
}

/// `KEY=VALUE` of a generator's `literals`.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub key: String,
    pub value: String,
    pub pos: Pos,
}

/// A `files:` entry: the data key (`key=path`, or the file's name) and the file.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorFile {
    pub key: String,
    pub path: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generator {
    pub kind: GeneratorKind,
    pub name: String,
    pub pos: Pos,
    pub literals: Vec<Literal>,
    pub envs: Vec<(String, Pos)>,
    pub files: Vec<GeneratorFile>,
}

/// A `helmCharts:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmChart {
    pub name: String,
    pub repo: Option<String>,
    pub version: Option<String>,
    pub pos: Pos,
}

/// One Kustomization file, read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Kustomization {
    /// The file, relative to the tree.
    pub file: String,
    /// Its directory, relative to the tree (`""` = the tree's root).
    pub dir: String,
    /// `kind: Component`.
    pub component: bool,
    pub namespace: Option<(String, Pos)>,
    pub name_prefix: Option<(String, Pos)>,
    pub name_suffix: Option<(String, Pos)>,
    /// Everything it reads, in the order written.
    pub references: Vec<Reference>,
    pub patches: Vec<Patch>,
    pub images: Vec<Image>,
    pub generators: Vec<Generator>,
    pub helm_charts: Vec<HelmChart>,
    /// `helmGlobals.chartHome` (default `charts`), relative to the Kustomization's directory.
    pub chart_home: String,
    /// `buildMetadata` as written.
    pub build_metadata: Vec<String>,
    /// Top-level keys and their positions (to place kustomize's errors about a field).
    pub keys: Vec<(String, Pos)>,
}

/// Reads a Kustomization's text; `file` is its path relative to the tree.
pub fn parse(file: &str, text: &str) -> Result<Kustomization, Problem> {
    let dir = file.rsplit_once('/').map_or("", |(d, _)| d).to_string();
    let root = match yaml::parse_single(text) {
        Ok(Some(root)) => root,
        Ok(None) => Node { pos: Pos { line: 1, col: 1 }, kind: NodeKind::Map(Vec::new()) },
        Err(e) => {
            return Err(Problem {
                file: file.into(),
                pos: e.pos,
                message: format!("Kustomization does not parse: {e}"),
            });
        }
    };
    if !root.is_map() {
        return Err(Problem::at(file, root.pos.line, "a Kustomization must be a mapping of fields"));
    }
    let mut k = Kustomization {
        file: file.to_string(),
        dir,
        chart_home: "charts".into(),
        keys: root.entries().iter().filter_map(|e| Some((e.key.as_key()?.to_string(), e.key.pos))).collect(),
        ..Kustomization::default()
    };
    k.component = root.get("kind").and_then(Node::as_text) == Some("Component");
    let text_at = |key: &str| root.entry(key).and_then(|e| Some((e.value.as_text()?.to_string(), e.key.pos)));
    k.namespace = text_at("namespace").filter(|(ns, _)| !ns.is_empty());
    k.name_prefix = text_at("namePrefix").filter(|(p, _)| !p.is_empty());
    k.name_suffix = text_at("nameSuffix").filter(|(s, _)| !s.is_empty());
    for (key, field) in [
        ("resources", Field::Resource),
        ("bases", Field::Base),
        ("components", Field::Component),
        ("crds", Field::Crd),
        ("configurations", Field::Configuration),
        ("generators", Field::Plugin),
        ("transformers", Field::Plugin),
        ("validators", Field::Plugin),
    ] {
        for item in root.get(key).map(Node::items).unwrap_or_default() {
            // A plugin configuration may be written inline (a mapping): nothing to read then.
            if let Some(path) = item.as_text() {
                k.references.push(Reference { field, path: path.to_string(), pos: item.pos });
            }
        }
    }
    if let Some(path) = root.get_path(&["openapi", "path"]).and_then(Node::as_text) {
        let pos = root.get("openapi").and_then(|o| o.entry("path")).map_or(Pos::default(), |e| e.key.pos);
        k.references.push(Reference { field: Field::Openapi, path: path.to_string(), pos });
    }
    for item in root.get("replacements").map(Node::items).unwrap_or_default() {
        if let Some(entry) = item.entry("path")
            && let Some(path) = entry.value.as_text()
        {
            k.references.push(Reference { field: Field::Replacement, path: path.to_string(), pos: entry.key.pos });
        }
    }
    read_patches(&root, &mut k);
    for item in root.get("images").map(Node::items).unwrap_or_default() {
        let text = |key: &str| item.get(key).and_then(Node::as_text).map(str::to_string);
        if let Some(name) = text("name") {
            k.images.push(Image {
                name,
                new_name: text("newName"),
                new_tag: text("newTag"),
                digest: text("digest"),
                pos: item.pos,
                set_pos: ["digest", "newTag", "newName"]
                    .iter()
                    .find_map(|key| item.entry(key).map(|e| e.key.pos))
                    .unwrap_or(item.pos),
            });
        }
    }
    for (key, kind) in [("configMapGenerator", GeneratorKind::ConfigMap), ("secretGenerator", GeneratorKind::Secret)] {
        for item in root.get(key).map(Node::items).unwrap_or_default() {
            let generator = read_generator(item, kind);
            for (path, pos) in &generator.envs {
                k.references.push(Reference { field: Field::GeneratorEnv, path: path.clone(), pos: *pos });
            }
            for f in &generator.files {
                k.references.push(Reference { field: Field::GeneratorFile, path: f.path.clone(), pos: f.pos });
            }
            k.generators.push(generator);
        }
    }
    if let Some(home) = root.get_path(&["helmGlobals", "chartHome"]).and_then(Node::as_text) {
        k.chart_home = home.trim_end_matches('/').to_string();
    }
    for item in root.get("helmCharts").map(Node::items).unwrap_or_default() {
        let text = |key: &str| item.get(key).and_then(Node::as_text).map(str::to_string);
        let Some(name) = text("name") else { continue };
        // With a repository and a version, kustomize keeps (and would pull) the chart in
        // `<chartHome>/<name>-<version>/<name>`; otherwise it reads `<chartHome>/<name>`.
        let in_home = match (text("repo"), text("version")) {
            (Some(_), Some(version)) => format!("{name}-{version}/{name}"),
            _ => name.clone(),
        };
        let chart_dir = if k.chart_home.is_empty() { in_home } else { format!("{}/{in_home}", k.chart_home) };
        k.references.push(Reference { field: Field::HelmChart, path: chart_dir, pos: item.pos });
        if let Some(e) = item.entry("valuesFile")
            && let Some(path) = e.value.as_text()
        {
            k.references.push(Reference { field: Field::HelmValues, path: path.to_string(), pos: e.key.pos });
        }
        for v in item.get("additionalValuesFiles").map(Node::items).unwrap_or_default() {
            if let Some(path) = v.as_text() {
                k.references.push(Reference { field: Field::HelmValues, path: path.to_string(), pos: v.pos });
            }
        }
        k.helm_charts.push(HelmChart { name, repo: text("repo"), version: text("version"), pos: item.pos });
    }
    k.build_metadata = match root.get("buildMetadata") {
        Some(node) => node.items().iter().filter_map(Node::as_text).map(str::to_string).collect(),
        None => Vec::new(),
    };
    Ok(k)
}

fn read_patches(root: &Node, k: &mut Kustomization) {
    for item in root.get("patches").map(Node::items).unwrap_or_default() {
        let target = item.get("target").map(read_target);
        if let Some(e) = item.entry("path")
            && let Some(path) = e.value.as_text()
        {
            k.references.push(Reference { field: Field::Patch, path: path.to_string(), pos: e.key.pos });
            k.patches.push(Patch { body: PatchBody::File(path.to_string()), target, pos: e.key.pos });
        } else if let Some(e) = item.entry("patch") {
            k.patches.push(Patch { body: inline(&e.value, Some(e.key.pos.line)), target, pos: item.pos });
        }
    }
    for item in root.get("patchesStrategicMerge").map(Node::items).unwrap_or_default() {
        let Some(text) = item.as_text() else { continue };
        // kustomize takes an entry that holds YAML as the patch itself, and anything else as a file.
        if text.contains('\n') {
            k.patches.push(Patch { body: inline(item, None), target: None, pos: item.pos });
        } else {
            k.references.push(Reference { field: Field::PatchStrategicMerge, path: text.to_string(), pos: item.pos });
            k.patches.push(Patch { body: PatchBody::File(text.to_string()), target: None, pos: item.pos });
        }
    }
    for item in root.get("patchesJson6902").map(Node::items).unwrap_or_default() {
        let target = item.get("target").map(read_target);
        if let Some(e) = item.entry("path")
            && let Some(path) = e.value.as_text()
        {
            k.references.push(Reference { field: Field::PatchJson6902, path: path.to_string(), pos: e.key.pos });
            k.patches.push(Patch { body: PatchBody::File(path.to_string()), target, pos: e.key.pos });
        } else if let Some(e) = item.entry("patch") {
            k.patches.push(Patch { body: inline(&e.value, Some(e.key.pos.line)), target, pos: item.pos });
        }
    }
}

/// An inline patch: its text and, for a block scalar, the line its text starts on. A block scalar's text
/// starts on the line after its `|` header, which is the key's line (`patch: |-`); without a key, the
/// parser's position of the scalar is its first line. A block scalar keeps every line, blank ones included,
/// so line N of the text is that line + N - 1.
fn inline(node: &Node, key_line: Option<u32>) -> PatchBody {
    let text = node.as_text().unwrap_or_default().to_string();
    let block = node.scalar().is_some_and(|s| s.style == Style::Block);
    let first_line = block.then(|| key_line.map_or(node.pos.line, |line| line + 1));
    PatchBody::Inline { text, first_line }
}

fn read_target(node: &Node) -> Target {
    let text = |key: &str| node.get(key).and_then(Node::as_text).map(str::to_string);
    Target {
        group: text("group"),
        version: text("version"),
        kind: text("kind"),
        name: text("name"),
        namespace: text("namespace"),
        label_selector: text("labelSelector"),
        annotation_selector: text("annotationSelector"),
    }
}

fn read_generator(item: &Node, kind: GeneratorKind) -> Generator {
    let name = item.get("name").and_then(Node::as_text).unwrap_or_default().to_string();
    let mut generator =
        Generator { kind, name, pos: item.pos, literals: Vec::new(), envs: Vec::new(), files: Vec::new() };
    for literal in item.get("literals").map(Node::items).unwrap_or_default() {
        let Some(text) = literal.as_text() else { continue };
        let (key, value) = text.split_once('=').unwrap_or((text, ""));
        generator.literals.push(Literal { key: key.trim().to_string(), value: unquote(value), pos: literal.pos });
    }
    for env in item.get("envs").map(Node::items).unwrap_or_default() {
        if let Some(path) = env.as_text() {
            generator.envs.push((path.to_string(), env.pos));
        }
    }
    if let Some(env) = item.get("env")
        && let Some(path) = env.as_text()
    {
        generator.envs.push((path.to_string(), env.pos));
    }
    for file in item.get("files").map(Node::items).unwrap_or_default() {
        let Some(text) = file.as_text() else { continue };
        let (key, path) = match text.split_once('=') {
            Some((key, path)) => (key.trim().to_string(), path.trim().to_string()),
            None => (text.rsplit('/').next().unwrap_or(text).to_string(), text.to_string()),
        };
        generator.files.push(GeneratorFile { key, path, pos: file.pos });
    }
    generator
}

/// kustomize drops one pair of surrounding quotes from a literal's value (`KEY="a b"`).
fn unquote(value: &str) -> String {
    let bytes = value.as_bytes();
    if bytes.len() >= 2 && (bytes[0] == b'"' || bytes[0] == b'\'') && bytes[bytes.len() - 1] == bytes[0] {
        value[1..value.len() - 1].to_string()
    } else {
        value.to_string()
    }
}

/// `KEY=VALUE` lines of an env file (`#` comments and blank lines skipped), each with its 1-based line.
pub fn env_lines(text: &str) -> Vec<(String, String, u32)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            Some((key.trim().to_string(), unquote(value.trim_end()), i as u32 + 1))
        })
        .collect()
}

/// Whether a reference names something kustomize would fetch (a Git repository or a URL) rather than a
/// local path. kpath never fetches: such a root is not rendered.
pub fn is_remote(path: &str) -> bool {
    const HOSTS: [&str; 4] = ["github.com/", "gitlab.com/", "bitbucket.org/", "dev.azure.com/"];
    if path.contains("://")
        || path.starts_with("git@")
        || path.starts_with("git::")
        || HOSTS.iter().any(|h| path.starts_with(h))
        || ["?ref=", "&ref=", "?version=", "?timeout=", "?submodules="].iter().any(|q| path.contains(q))
    {
        return true;
    }
    // `example.com/org/repo//dir`: a first segment that is a host name (a dot, and a top-level domain of
    // letters). Local directories rarely look like that; `discover` also checks the tree first.
    let first = path.split('/').next().unwrap_or("");
    path.contains('/')
        && first.contains('.')
        && first.rsplit('.').next().is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &str = r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop
namePrefix: prod-
resources:
- ../../base
- extra.yaml
bases:
- ../legacy
components:
- ../../components/tls
patches:
- path: replicas.yaml
- path: ops.yaml
  target:
    kind: Deployment
    name: web
- patch: |-
    - op: replace
      path: /spec/replicas
      value: 3
  target:
    kind: Deployment
patchesStrategicMerge:
- smp.yaml
patchesJson6902:
- target: {group: apps, version: v1, kind: Deployment, name: web}
  path: json.yaml
configMapGenerator:
- name: cfg
  literals:
  - LOG_LEVEL=debug
  - QUOTED="a b"
  envs:
  - app.env
  files:
  - config.json
  - key.pem=certs/tls.key
secretGenerator:
- name: creds
  env: creds.env
images:
- name: nginx
  newTag: "1.27"
helmGlobals:
  chartHome: vendor
helmCharts:
- name: redis
  repo: https://charts.example.com
  valuesFile: redis-values.yaml
  additionalValuesFiles:
  - redis-prod.yaml
crds:
- crds/thing.yaml
replacements:
- path: repl.yaml
configurations:
- conf.yaml
openapi:
  path: schema.json
buildMetadata: [originAnnotations]
"#;

    fn refs(k: &Kustomization) -> Vec<(Field, &str, u32)> {
        k.references.iter().map(|r| (r.field, r.path.as_str(), r.pos.line)).collect()
    }

    #[test]
    fn every_reference_is_read_with_its_line() {
        let k = parse("deploy/overlays/prod/kustomization.yaml", ALL).expect("parses");
        assert_eq!(k.dir, "deploy/overlays/prod");
        assert_eq!(k.namespace, Some(("shop".into(), Pos { line: 3, col: 1 })));
        assert_eq!(k.name_prefix.as_ref().map(|p| p.0.as_str()), Some("prod-"));
        assert_eq!(
            refs(&k),
            vec![
                (Field::Resource, "../../base", 6),
                (Field::Resource, "extra.yaml", 7),
                (Field::Base, "../legacy", 9),
                (Field::Component, "../../components/tls", 11),
                (Field::Crd, "crds/thing.yaml", 54),
                (Field::Configuration, "conf.yaml", 58),
                (Field::Openapi, "schema.json", 60),
                (Field::Replacement, "repl.yaml", 56),
                (Field::Patch, "replicas.yaml", 13),
                (Field::Patch, "ops.yaml", 14),
                (Field::PatchStrategicMerge, "smp.yaml", 25),
                (Field::PatchJson6902, "json.yaml", 28),
                (Field::GeneratorEnv, "app.env", 35),
                (Field::GeneratorFile, "config.json", 37),
                (Field::GeneratorFile, "certs/tls.key", 38),
                (Field::GeneratorEnv, "creds.env", 41),
                (Field::HelmChart, "vendor/redis", 48),
                (Field::HelmValues, "redis-values.yaml", 50),
                (Field::HelmValues, "redis-prod.yaml", 52),
            ]
        );
        assert_eq!(k.patches.len(), 5);
        let PatchBody::Inline { text, first_line } = &k.patches[2].body else { panic!("inline patch") };
        assert!(text.starts_with("- op: replace"), "{text}");
        assert_eq!(*first_line, Some(19));
        assert_eq!(k.patches[1].target.as_ref().and_then(|t| t.name.as_deref()), Some("web"));
        let cfg = &k.generators[0];
        assert_eq!((cfg.kind, cfg.name.as_str(), cfg.pos.line), (GeneratorKind::ConfigMap, "cfg", 30));
        assert_eq!(
            cfg.literals[0],
            Literal { key: "LOG_LEVEL".into(), value: "debug".into(), pos: Pos { line: 32, col: 5 } }
        );
        assert_eq!(cfg.literals[1].value, "a b");
        assert_eq!(cfg.files[1].key, "key.pem");
        assert_eq!(cfg.files[0].key, "config.json");
        assert_eq!(k.generators[1].kind, GeneratorKind::Secret);
        assert_eq!(k.images[0].new_tag.as_deref(), Some("1.27"));
        assert_eq!(k.images[0].pos.line, 43);
        assert_eq!(k.helm_charts[0].repo.as_deref(), Some("https://charts.example.com"));
        assert_eq!(k.build_metadata, vec!["originAnnotations".to_string()]);
    }

    #[test]
    fn broken_kustomizations_are_problems_at_their_line() {
        let e = parse("k/kustomization.yaml", "resources:\n- a.yaml\n  - b: [\n").expect_err("broken");
        assert_eq!(e.file, "k/kustomization.yaml");
        assert!(e.pos.line >= 2, "{e:?}");
        let e = parse("k/kustomization.yaml", "- a\n- b\n").expect_err("not a mapping");
        assert_eq!(e.pos.line, 1);
        assert!(parse("kustomization.yaml", "").is_ok());
    }

    #[test]
    fn remote_references_are_recognised() {
        for remote in [
            "https://github.com/org/repo//deploy?ref=v1",
            "github.com/org/repo/deploy?ref=main",
            "git::https://example.com/org/repo.git",
            "ssh://git@example.com/org/repo.git",
            "git@github.com:org/repo.git//base",
            "example.com/org/repo//base",
            "../base?ref=v2",
        ] {
            assert!(is_remote(remote), "{remote}");
        }
        for local in ["../../base", "base", "deployment.yaml", "v1.2/base", "./x.yaml", "app.d/config"] {
            assert!(!is_remote(local), "{local}");
        }
    }

    #[test]
    fn env_files_keep_their_lines() {
        let lines = env_lines("# comment\n\nA=1\nB=\"two\"\nC\n");
        assert_eq!(
            lines,
            vec![("A".into(), "1".into(), 3), ("B".into(), "two".into(), 4), ("C".into(), String::new(), 5)]
        );
    }
}
