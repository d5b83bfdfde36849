//! Kustomize: the second renderer. Every directory with a Kustomization is read; a **root** (a
//! Kustomization no other one uses as a resource, base or component) is a render unit whose environment is
//! its path. Roots are rendered by the kustomize built into the real `kubectl`, in a sandbox, with
//! kustomize's own provenance annotations turned on to place findings (see [`sourcemap`]); the
//! annotations are removed from what the rules check.

pub mod binary;
pub mod kustomization;
mod output;
mod render;
pub mod sourcemap;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use crate::config::Config;
use crate::render::{Discovery, Problem, RenderCx, Renderer, Tree, Unit};
use kustomization::{Field, Kustomization};

/// The renderer's name, in units and messages.
pub const NAME: &str = "kustomize";

/// A Kustomization file larger than this is not read (a Problem names it).
pub const MAX_KUSTOMIZATION_BYTES: u64 = 1 << 20;

/// The Kustomize renderer.
pub struct Kustomize {
    /// `--kubectl`, when given.
    explicit: Option<PathBuf>,
    /// kubectl's version check, done once, when the first root is rendered.
    kubectl: OnceLock<Result<binary::Kubectl, String>>,
    /// Helm, found and checked once per `--helm` path, for roots with `helmCharts:`.
    helm: Mutex<HashMap<Option<PathBuf>, Result<crate::helm::Helm, String>>>,
}

impl Kustomize {
    /// A renderer that uses `kubectl` (else `$KPATH_KUBECTL`, else `kubectl` on PATH).
    pub fn new(kubectl: Option<PathBuf>) -> Kustomize {
        Kustomize { explicit: kubectl, kubectl: OnceLock::new(), helm: Mutex::new(HashMap::new()) }
    }

    /// The renderer a configuration asks for (`--kubectl`).
    pub fn from_config(config: &Config) -> Kustomize {
        Kustomize::new(config.helm.kubectl.clone())
    }

    fn checked_kubectl(&self) -> Result<&binary::Kubectl, String> {
        self.kubectl
            .get_or_init(|| {
                binary::locate(self.explicit.as_deref())
                    .and_then(|path| binary::check(&path))
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn checked_helm(&self, config: &Config) -> Result<crate::helm::Helm, String> {
        let key = config.helm.binary.clone();
        let mut found = self.helm.lock().unwrap_or_else(|e| e.into_inner());
        found
            .entry(key)
            .or_insert_with(|| crate::helm::binary::find(config.helm.binary.as_deref()).map_err(|e| e.to_string()))
            .clone()
    }
}

impl Renderer for Kustomize {
    fn name(&self) -> &'static str {
        NAME
    }

    fn discover(&self, tree: &dyn Tree, _config: &Config) -> Discovery {
        discover(tree)
    }

    fn ready(&self) -> Result<(), String> {
        binary::locate(self.explicit.as_deref()).map(|_| ()).map_err(|e| e.to_string())
    }

    fn render(&self, unit: &Unit, cx: &RenderCx<'_>) -> Result<crate::render::Output, Problem> {
        render::render(self, unit, cx, &Overrides::default())
    }
}

impl Kustomize {
    /// Renders a root (a unit of this renderer's, or [`generated_root`]) as a controller deploys it: with the
    /// overrides an Argo CD Application or a Flux Kustomization adds on top of the root's own Kustomization.
    pub fn render_with(
        &self,
        unit: &Unit,
        cx: &RenderCx<'_>,
        overrides: &Overrides,
    ) -> Result<crate::render::Output, Problem> {
        render::render(self, unit, cx, overrides)
    }

    /// Applies Kustomize `patches` entries to documents rendered by another tool (Flux `postRenderers`):
    /// each document patched, `None` where a patch deleted it. `Err` says why kustomize refused.
    pub fn patch_documents(
        &self,
        docs: &[String],
        patches: &[String],
        cx: &RenderCx<'_>,
    ) -> Result<Vec<Option<String>>, String> {
        render::patch_documents(self, docs, patches, cx)
    }
}

/// A transformation of kustomize's output text (`Err`: why it failed).
pub type PostBuild = Box<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// What a controller adds when it builds a root: applied by the wrapper Kustomization kpath renders through,
/// as kustomize applies an overlay's fields to its resources.
#[derive(Default)]
pub struct Overrides {
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub namespace: Option<String>,
    /// `images:` entries, each a YAML mapping.
    pub images: Vec<String>,
    /// `patches:` entries, each a YAML mapping (`patch:`, `target:`).
    pub patches: Vec<String>,
    /// Applied to kustomize's output before it is checked (Flux's post-build variable substitution); `Err` is
    /// a problem at the root.
    pub post_build: Option<PostBuild>,
}

/// A unit for a directory without a Kustomization that a controller builds as one (Flux generates a
/// Kustomization listing every manifest under the path): `files` are those manifests, `declared_in` the object
/// that deploys it (problems are placed there).
pub fn generated_root(path: &str, files: Vec<String>, declared_in: &str) -> Unit {
    let detail = RootDetail {
        kustomization: declared_in.to_string(),
        closure: Vec::new(),
        problems: Vec::new(),
        uses_helm: false,
        unused_component: false,
        generated: files.clone(),
    };
    Unit {
        renderer: NAME,
        root: path.to_string(),
        file: declared_in.to_string(),
        environment: None,
        inputs: files.into_iter().collect(),
        detail: Arc::new(detail),
        declared: false,
    }
}

/// What a root reads, kept on its [`Unit`] for rendering and placing findings.
#[derive(Debug)]
pub struct RootDetail {
    /// The root's Kustomization file.
    pub kustomization: String,
    /// Every Kustomization the root reads, the root first, then in the order kustomize reaches them.
    pub closure: Vec<Arc<Kustomization>>,
    /// What stops the render before kubectl runs (a Kustomization that does not parse, a reference out of
    /// the tree or to a remote repository, a cycle, a chart that is not vendored), in the order found.
    pub problems: Vec<Problem>,
    /// Whether some Kustomization inflates a Helm chart (`helmCharts:`).
    pub uses_helm: bool,
    /// The root is a `kind: Component` no Kustomization uses: it deploys nothing on its own, so it is not
    /// rendered (kustomize cannot build it alone); its files are still its inputs, so they are not checked as
    /// stand-alone manifests, and a root that starts using it renders them.
    pub unused_component: bool,
    /// The directory has no Kustomization: these files are its resources (see [`generated_root`]).
    pub generated: Vec<String>,
}

/// How a reference resolved.
enum Resolved {
    /// Another Kustomization: its directory.
    Kustomization(String),
    File(String),
    /// A directory read whole (a chart of `helmCharts:`), with a trailing `/`.
    Directory(String),
    /// Nothing at that path (kubectl will say so, at the reference's line); still an input, so adding it
    /// affects the unit.
    Missing(String),
    Remote,
    Refused(Problem),
}

/// The Kustomizations of a tree, each read once: by directory.
struct Index {
    /// Directory → the Kustomization file there, read (or why not).
    by_dir: BTreeMap<String, Result<Arc<Kustomization>, Problem>>,
    file_of: BTreeMap<String, String>,
}

fn kustomization_file_in(tree: &dyn Tree, dir: &str) -> Option<String> {
    kustomization::FILE_NAMES.iter().map(|n| join_dir(dir, n)).find(|f| tree.has(f))
}

fn join_dir(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
}

fn read_all(tree: &dyn Tree) -> Index {
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for file in tree.files() {
        let (dir, name) = file.rsplit_once('/').unwrap_or(("", file.as_str()));
        if kustomization::FILE_NAMES.contains(&name) {
            dirs.insert(dir.to_string());
        }
    }
    let mut index = Index { by_dir: BTreeMap::new(), file_of: BTreeMap::new() };
    for dir in dirs {
        let Some(file) = kustomization_file_in(tree, &dir) else { continue };
        let read = match tree.read(&file, MAX_KUSTOMIZATION_BYTES) {
            Some(text) => kustomization::parse(&file, &text).map(Arc::new),
            None => Err(Problem::at(
                &file,
                1,
                format!("`{file}` could not be read, or is larger than {} KiB", MAX_KUSTOMIZATION_BYTES >> 10),
            )),
        };
        index.file_of.insert(dir.clone(), file);
        index.by_dir.insert(dir, read);
    }
    index
}

pub(crate) use crate::render::resolve as normalize;

fn resolve(tree: &dyn Tree, index: &Index, k: &Kustomization, r: &kustomization::Reference) -> Resolved {
    let shown = crate::cmdline::shown(&r.path);
    if r.path.starts_with('/') || r.path.starts_with('~') {
        return Resolved::Refused(Problem {
            file: k.file.clone(),
            pos: r.pos,
            message: format!(
                "`{shown}` in `{}` is an absolute path; kpath reads only files inside the repository",
                r.field.name()
            ),
        });
    }
    let Some(path) = normalize(&k.dir, r.path.split('?').next().unwrap_or(&r.path)) else {
        if kustomization::is_remote(&r.path) {
            return Resolved::Remote;
        }
        return Resolved::Refused(Problem {
            file: k.file.clone(),
            pos: r.pos,
            message: format!(
                "`{shown}` in `{}` leads out of the repository; kpath reads only files inside it",
                r.field.name()
            ),
        });
    };
    let remote = kustomization::is_remote(&r.path);
    if !remote || r.path.starts_with("./") || r.path.starts_with("../") {
        if r.field.may_be_kustomization() && index.by_dir.contains_key(&path) {
            return Resolved::Kustomization(path);
        }
        if tree.has(&path) {
            return Resolved::File(path);
        }
        if r.field == Field::HelmChart && tree.under(&path).next().is_some() {
            return Resolved::Directory(format!("{path}/"));
        }
    }
    if remote {
        return Resolved::Remote;
    }
    Resolved::Missing(path)
}

/// The units of a tree: one per root Kustomization.
pub fn discover(tree: &dyn Tree) -> Discovery {
    let index = read_all(tree);
    // Which Kustomizations another one uses (as a resource, base, component or plugin configuration).
    let mut used: BTreeSet<String> = BTreeSet::new();
    for (dir, k) in &index.by_dir {
        let Ok(k) = k else { continue };
        for r in &k.references {
            if let Resolved::Kustomization(other) = resolve(tree, &index, k, r)
                && &other != dir
            {
                used.insert(other);
            }
        }
    }
    let mut discovery = Discovery::default();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for dir in index.by_dir.keys().filter(|d| !used.contains(*d)) {
        let (unit, reached) = root_unit(tree, &index, dir);
        covered.extend(reached);
        discovery.units.push(unit);
    }
    // Kustomizations that no root reaches use each other in a cycle: nothing renders them, so their
    // problems are reported here.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for dir in index.by_dir.keys() {
        if covered.contains(dir) {
            continue;
        }
        let (unit, reached) = root_unit(tree, &index, dir);
        if let Some(detail) = unit.detail.downcast_ref::<RootDetail>() {
            for p in &detail.problems {
                if seen.insert(format!("{}:{}:{}", p.file, p.pos.line, p.message)) {
                    discovery.problems.push(p.clone());
                }
            }
        }
        covered.extend(reached);
    }
    discovery
}

/// Files that some Kustomization of the tree uses as a patch: partial objects (a HelmRelease with only the
/// values an overlay changes), which are not objects of their own.
pub fn patch_files(tree: &dyn Tree) -> BTreeSet<String> {
    let index = read_all(tree);
    let mut out = BTreeSet::new();
    for k in index.by_dir.values().filter_map(|k| k.as_ref().ok()) {
        for r in &k.references {
            if matches!(r.field, Field::Patch | Field::PatchStrategicMerge | Field::PatchJson6902)
                && let Some(path) = normalize(&k.dir, &r.path)
            {
                out.insert(path);
            }
        }
    }
    out
}

/// The units of the Kustomizations in `dirs` (whether or not another Kustomization uses them: a controller
/// may deploy a base on its own), each rendered as a root; directories without a Kustomization are left out.
pub fn units_at(tree: &dyn Tree, dirs: &[String]) -> Vec<Unit> {
    let index = read_all(tree);
    dirs.iter().filter(|d| index.by_dir.contains_key(d.as_str())).map(|d| root_unit(tree, &index, d).0).collect()
}

/// The unit of the Kustomization in `root_dir` and the directories of every Kustomization it reaches.
fn root_unit(tree: &dyn Tree, index: &Index, root_dir: &str) -> (Unit, Vec<String>) {
    let mut walk = Walk {
        tree,
        index,
        inputs: BTreeSet::new(),
        closure: Vec::new(),
        problems: Vec::new(),
        uses_helm: false,
        visited: BTreeSet::new(),
        stack: Vec::new(),
    };
    walk.visit(root_dir);
    let reached: Vec<String> = walk.visited.iter().cloned().collect();
    let file = index.file_of.get(root_dir).cloned().unwrap_or_default();
    let detail = RootDetail {
        kustomization: file.clone(),
        closure: walk.closure,
        problems: walk.problems,
        uses_helm: walk.uses_helm,
        unused_component: matches!(index.by_dir.get(root_dir), Some(Ok(k)) if k.component),
        generated: Vec::new(),
    };
    let environment = if root_dir.is_empty() { ".".to_string() } else { root_dir.to_string() };
    let unit = Unit {
        renderer: NAME,
        root: root_dir.to_string(),
        file,
        environment: Some(environment),
        inputs: walk.inputs,
        detail: Arc::new(detail),
        declared: false,
    };
    (unit, reached)
}

/// A depth-first walk over the Kustomizations a root reaches.
struct Walk<'a> {
    tree: &'a dyn Tree,
    index: &'a Index,
    inputs: BTreeSet<String>,
    closure: Vec<Arc<Kustomization>>,
    problems: Vec<Problem>,
    uses_helm: bool,
    visited: BTreeSet<String>,
    /// The directories on the current path from the root, to tell a cycle.
    stack: Vec<String>,
}

impl Walk<'_> {
    fn visit(&mut self, dir: &str) {
        if !self.visited.insert(dir.to_string()) {
            return;
        }
        if let Some(file) = self.index.file_of.get(dir) {
            self.inputs.insert(file.clone());
        }
        let k = match self.index.by_dir.get(dir) {
            Some(Ok(k)) => Arc::clone(k),
            Some(Err(problem)) => {
                self.problems.push(problem.clone());
                return;
            }
            None => return,
        };
        self.closure.push(Arc::clone(&k));
        self.stack.push(dir.to_string());
        if !k.helm_charts.is_empty() {
            self.uses_helm = true;
        }
        for r in &k.references {
            match resolve(self.tree, self.index, &k, r) {
                Resolved::Kustomization(other) => {
                    if let Some(at) = self.stack.iter().position(|d| *d == other) {
                        let mut cycle: Vec<&str> = self.stack[at..].iter().map(|d| display_dir(d)).collect();
                        cycle.push(display_dir(&other));
                        self.problems.push(Problem {
                            file: k.file.clone(),
                            pos: r.pos,
                            message: format!(
                                "`{}` closes a cycle of Kustomizations ({}); kustomize cannot build it",
                                crate::cmdline::shown(&r.path),
                                cycle.join(" → ")
                            ),
                        });
                        continue;
                    }
                    self.visit(&other);
                }
                Resolved::File(path) | Resolved::Missing(path) => {
                    if r.field == Field::HelmChart {
                        self.chart_missing(&k, r, &path);
                        self.inputs.insert(format!("{path}/"));
                    } else {
                        self.inputs.insert(path);
                    }
                }
                Resolved::Directory(path) => {
                    self.inputs.insert(path);
                }
                Resolved::Remote => self.problems.push(Problem {
                    file: k.file.clone(),
                    pos: r.pos,
                    message: format!(
                        "`{}` in `{}` is a remote reference; kpath renders offline and never fetches, so this \
                         root was not rendered (vendor it into the repository to have it checked)",
                        crate::cmdline::shown(&r.path),
                        r.field.name()
                    ),
                }),
                Resolved::Refused(problem) => self.problems.push(problem),
            }
        }
        self.stack.pop();
    }

    /// A chart of `helmCharts:` that is not in the repository: kustomize would download it.
    fn chart_missing(&mut self, k: &Kustomization, r: &kustomization::Reference, path: &str) {
        let chart = k.helm_charts.iter().find(|c| c.pos == r.pos);
        if chart.is_some_and(|c| c.repo.is_some()) {
            self.problems.push(Problem {
                file: k.file.clone(),
                pos: r.pos,
                message: format!(
                    "the chart is not vendored at `{path}/`; kpath renders offline and never downloads charts \
                     (`helm pull --untar` it into that directory and commit it)"
                ),
            });
        }
    }
}

fn display_dir(dir: &str) -> &str {
    if dir.is_empty() { "." } else { dir }
}

#[cfg(test)]
mod tests;
