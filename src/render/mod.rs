//! The renderer layer: what every renderer (Helm, Kustomize, …) implements so the engine can find render
//! units in a tree of files, render them with the real tool, and place findings on the source line a person
//! would change. The engine takes a list of renderers and names none of them.
//!
//! A renderer answers three questions:
//! - [`Renderer::discover`]: which **units** a tree holds (what to render, with which inputs, under which
//!   environment name), and which files those units read (they are not checked as stand-alone files);
//! - [`Renderer::render`]: the rendered documents of one unit, produced by the real tool through the one
//!   sandboxed process runner (`crate::helm::binary::run`), each with a [`SourceMap`];
//! - through [`Unit::inputs`], which units a changed path feeds (the review's affected units).

pub mod cache;
pub mod slots;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::finding::Location;
use crate::redact::SecretSet;
use crate::yaml::{Pos, Route};

/// `dir/rel` for tree paths (`""` is the tree's root), without resolving anything.
pub fn join(dir: &str, rel: &str) -> String {
    match (dir, rel) {
        ("", rel) => rel.to_string(),
        (dir, "") => dir.to_string(),
        (dir, rel) => format!("{}/{rel}", dir.trim_end_matches('/')),
    }
}

/// `dir/rel` with `.` and `..` resolved; `None` when it climbs above the tree's root.
pub fn resolve(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// A tree of files a renderer discovers units in: a checked directory, or one side of a review read from git.
pub trait Tree {
    /// Every file of the tree, relative to its root, `/`-separated, sorted.
    fn files(&self) -> &[String];
    /// A file's text (lossy UTF-8), or `None` when it is missing or larger than `cap` bytes.
    fn read(&self, path: &str, cap: u64) -> Option<String>;
    /// A file's text when it mentions `needle` (`None` when it does not, or as [`Tree::read`]): for scans that
    /// look for one kind of object in every file. A tree that keeps its texts need not copy the others, and a
    /// review learns that the scan depended on no more than whether the file mentions `needle`.
    fn read_mentioning(&self, path: &str, cap: u64, needle: &'static str) -> Option<String> {
        self.read(path, cap).filter(|t| t.contains(needle))
    }
    /// The tree's root relative to the repository (the directory of `.kpath.yml`); `""` when it is the root.
    /// Paths in `.kpath.yml` are relative to the repository.
    fn prefix(&self) -> &str {
        ""
    }
    /// Whether the tree has this file.
    fn has(&self, path: &str) -> bool {
        self.files().binary_search_by(|f| f.as_str().cmp(path)).is_ok()
    }
    /// Files under a directory (`""` = all), in order.
    fn under<'a>(&'a self, dir: &str) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        if dir.is_empty() {
            return Box::new(self.files().iter());
        }
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let start = self.files().partition_point(|f| f.as_str() < prefix.as_str());
        Box::new(self.files()[start..].iter().take_while(move |f| f.starts_with(&prefix)))
    }
}

/// A directory on disk as a [`Tree`].
pub struct DirTree {
    pub root: std::path::PathBuf,
    pub files: Vec<String>,
    /// See [`Tree::prefix`].
    pub prefix: String,
}

impl DirTree {
    /// Lists `root`'s files (links out of `root` and `.git` skipped).
    pub fn new(root: &Path, files: Vec<String>, prefix: &str) -> DirTree {
        let mut files = files;
        files.sort();
        files.dedup();
        DirTree { root: root.to_path_buf(), files, prefix: prefix.to_string() }
    }
}

impl Tree for DirTree {
    fn files(&self) -> &[String] {
        &self.files
    }

    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn read(&self, path: &str, cap: u64) -> Option<String> {
        if !self.has(path) {
            return None;
        }
        crate::loader::read_bounded(&self.root.join(path), cap).ok().map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

/// A tree of files held in memory, for the renderers' unit tests.
#[cfg(test)]
pub(crate) struct MemTree {
    pub files: Vec<String>,
    pub texts: std::collections::BTreeMap<String, String>,
    pub prefix: String,
}

#[cfg(test)]
impl MemTree {
    /// A tree of `(path, text)` files at the repository's root.
    pub fn new(files: &[(&str, &str)]) -> MemTree {
        let texts: std::collections::BTreeMap<String, String> =
            files.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
        MemTree { files: texts.keys().cloned().collect(), texts, prefix: String::new() }
    }
}

#[cfg(test)]
impl Tree for MemTree {
    fn files(&self) -> &[String] {
        &self.files
    }
    fn read(&self, path: &str, cap: u64) -> Option<String> {
        self.texts.get(path).filter(|t| t.len() as u64 <= cap).cloned()
    }
    fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// One thing to render: a chart release in an environment, a Kustomize root, …
#[derive(Clone)]
pub struct Unit {
    /// The renderer that discovered it ([`Renderer::name`]).
    pub renderer: &'static str,
    /// The directory it renders, relative to the tree (`charts/shop`, `deploy/overlays/prod`; `""` = the root).
    pub root: String,
    /// The file that declares the unit (`charts/shop/Chart.yaml`, `deploy/prod/kustomization.yaml`): problems
    /// with the unit as a whole are placed on it.
    pub file: String,
    /// The environment name reports show (`prod`, `deploy/overlays/prod`), when it is one of several renders
    /// or names a deployment.
    pub environment: Option<String>,
    /// What the render reads, relative to the tree: files, and directories written with a trailing `/`
    /// (everything under them). A change to any of them affects the unit; none of them is checked as a
    /// stand-alone file.
    pub inputs: BTreeSet<String>,
    /// Renderer-specific detail (the Helm release, the Kustomize root's parsed references).
    pub detail: Arc<dyn std::any::Any + Send + Sync>,
    /// Declared by a controller's object (an Argo CD Application, a Flux Kustomization or HelmRelease): the
    /// plain units whose root it reads (the chart, the Kustomize root it deploys) are rendered only through
    /// it, as it deploys them, and not once more on their own.
    pub declared: bool,
}

impl fmt::Debug for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unit")
            .field("renderer", &self.renderer)
            .field("root", &self.root)
            .field("environment", &self.environment)
            .field("inputs", &self.inputs)
            .finish_non_exhaustive()
    }
}

impl Unit {
    /// Whether a change to `path` (relative to the tree) feeds this unit.
    pub fn reads(&self, path: &str) -> bool {
        covers(&self.inputs, path)
    }
}

/// Whether a set of inputs (files, and directories written with a trailing `/`; `""` is the tree's root)
/// holds `path`: one lookup per ancestor directory, whatever the number of inputs.
pub fn covers(inputs: &BTreeSet<String>, path: &str) -> bool {
    if inputs.contains(path) || inputs.contains("") {
        return true;
    }
    let mut end = 0;
    while let Some(slash) = path[end..].find('/') {
        end += slash + 1;
        if inputs.contains(&path[..end]) {
            return true;
        }
    }
    false
}

/// What a renderer found in a tree.
#[derive(Debug, Default)]
pub struct Discovery {
    pub units: Vec<Unit>,
    /// Problems found without rendering (a Kustomization that does not parse), as `render-failed` findings.
    pub problems: Vec<Problem>,
    /// What was found but cannot be rendered offline (a source in another repository, a plugin), with the
    /// reason, as `render-skipped` notices where it is declared.
    pub skipped: Vec<Problem>,
}

/// A problem with a unit, reported as `render-failed` where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The file, relative to the tree.
    pub file: String,
    pub pos: Pos,
    pub message: String,
}

impl Problem {
    pub fn at(file: impl Into<String>, line: u32, message: impl Into<String>) -> Problem {
        Problem { file: file.into(), pos: Pos { line: line.max(1), col: 1 }, message: message.into() }
    }
}

/// Where the objects of a unit are applied, for the namespace rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Namespace {
    /// Nothing says: objects without a namespace go wherever they are applied.
    #[default]
    Unknown,
    /// This namespace (a Helm release's, a Kustomize root's `namespace:`).
    Known(String),
    /// Decided when installed (`helm install -n …`): objects that take the release's namespace are neither
    /// missing one nor in `default`.
    AtInstall,
}

/// The environment a renderer renders in: the tree's root on disk and the run's settings.
pub struct RenderCx<'a> {
    /// The tree's root directory on disk; unit roots and inputs are relative to it.
    pub dir: &'a Path,
    pub config: &'a Config,
}

/// One rendered document, ready to check.
pub struct Doc {
    /// The name findings on the rendered document carry until they are placed (`helm://release/templates/x.yaml`,
    /// `kustomize://deploy/overlays/prod/…`): the `rendered` location.
    pub name: String,
    /// Index among the documents of `name`.
    pub index: usize,
    pub text: String,
    /// Routes whose values the tool produced at render time (random passwords, generated keys): they are
    /// not committed values, and are not reported by the secret rules.
    pub generated: Vec<Route>,
    pub source: Arc<dyn SourceMap>,
}

/// What rendering one unit produced.
#[derive(Default)]
pub struct Output {
    pub docs: Vec<Doc>,
    /// Problems that did not stop the render.
    pub problems: Vec<Problem>,
    /// Parts that could not be rendered offline (`render-skipped` notices), while the rest was.
    pub skipped: Vec<Problem>,
    /// Where objects without a namespace are applied.
    pub namespace: Namespace,
    /// Kubernetes version the unit targets, when the renderer knows one.
    pub kubernetes_version: Option<(u32, u32)>,
    /// Secret values the unit's inputs hold (values files, `--set`, generator literals): reports redact them.
    pub secrets: SecretSet,
    /// Source files whose `# kpath:ignore` comments apply to findings placed in them: (path relative to the
    /// tree, text).
    pub comments: Vec<(String, Arc<str>)>,
}

/// Places findings on a rendered document back on the source lines that produced them.
pub trait SourceMap: Send + Sync {
    /// The places a finding at `route` of document `index` can be fixed, most direct first, paths relative
    /// to the tree (the `rendered` place is added by the engine). Empty when nothing was found: a location
    /// is only reported when the key was really found in the source. `part` is the part of the scalar the
    /// finding is about ([`crate::finding::Finding::part`]), for values built from several sources.
    fn locations(&self, index: usize, route: Option<&Route>, part: Option<&str>) -> Vec<Location>;
}

/// A renderer: Helm, Kustomize, and (next) Argo CD and Flux objects.
pub trait Renderer: Send + Sync {
    /// Short name, used in unit names and messages (`helm`, `kustomize`).
    fn name(&self) -> &'static str;
    /// The units a tree holds.
    fn discover(&self, tree: &dyn Tree, config: &Config) -> Discovery;
    /// Checks that the tool is usable, once per run, before the first render (an error is shown to the
    /// user: what is missing and how to install it).
    fn ready(&self) -> Result<(), String>;
    /// Renders one unit; `Err` is a problem that stopped the render (a `render-failed` finding).
    fn render(&self, unit: &Unit, cx: &RenderCx<'_>) -> Result<Output, Problem>;
}

/// Told how long each render took, by renderer name: set once by whoever exports metrics (`kpath serve`), so
/// this layer times renders without depending on the app that reports them.
static RENDER_OBSERVER: std::sync::OnceLock<fn(&'static str, Duration)> = std::sync::OnceLock::new();

/// Sets the function told each render's renderer and duration; only the first call counts.
pub fn set_render_observer(observer: fn(&'static str, Duration)) {
    let _ = RENDER_OBSERVER.set(observer);
}

/// [`Renderer::render`], timed for the observer when one is set.
pub fn render_observed(renderer: &dyn Renderer, unit: &Unit, cx: &RenderCx<'_>) -> Result<Output, Problem> {
    let Some(observer) = RENDER_OBSERVER.get() else { return renderer.render(unit, cx) };
    let started = Instant::now();
    let output = renderer.render(unit, cx);
    observer(renderer.name(), started.elapsed());
    output
}

/// Drops units whose root another unit reads (a Kustomize base is rendered in the overlays that use it; a
/// chart inlined with `helmCharts:` is rendered where it is inlined; a chart or root an Argo CD or Flux object
/// deploys is rendered as that object deploys it), so each object is checked as deployed. Declared units
/// are never dropped for a plain unit, and several declared units may deploy the same root.
pub fn outermost(units: Vec<Unit>) -> Vec<Unit> {
    // What reading a unit's root looks like in another unit's inputs: its directory, or its declaring file.
    // Indexed once, then each unit's inputs are looked up: linear in the inputs, not quadratic in the units.
    let mut by_marker: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
    for (i, unit) in units.iter().enumerate() {
        let dir = if unit.root.is_empty() { String::new() } else { format!("{}/", unit.root) };
        for name in ["kustomization.yaml", "kustomization.yml", "Kustomization", "Chart.yaml"] {
            by_marker.entry(format!("{dir}{name}")).or_default().push(i);
        }
        by_marker.entry(dir).or_default().push(i);
    }
    let mut keep = vec![true; units.len()];
    for (j, other) in units.iter().enumerate() {
        for input in &other.inputs {
            let Some(read) = by_marker.get(input) else { continue };
            for &i in read {
                let unit = &units[i];
                let dropped = i != j
                    && match (unit.declared, other.declared) {
                        (false, false) => other.root != unit.root,
                        (false, true) => true,
                        (true, _) => false,
                    };
                if dropped {
                    keep[i] = false;
                }
            }
        }
    }
    units.into_iter().zip(keep).filter_map(|(u, k)| k.then_some(u)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(root: &str, inputs: &[&str]) -> Unit {
        Unit {
            renderer: "test",
            root: root.into(),
            file: format!("{root}/Chart.yaml"),
            environment: None,
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            detail: Arc::new(()),
            declared: false,
        }
    }

    #[test]
    fn a_unit_reads_its_files_and_everything_under_its_directories() {
        let u = unit("charts/shop", &["charts/shop/", "values/prod.yaml"]);
        assert!(u.reads("charts/shop/templates/x.yaml"));
        assert!(u.reads("values/prod.yaml"));
        assert!(!u.reads("charts/shopping/Chart.yaml"));
        assert!(!u.reads("values/prod.yaml.bak"));
    }

    #[test]
    fn units_read_by_another_unit_are_not_rendered_alone() {
        let units = vec![
            unit("base", &["base/kustomization.yaml", "base/d.yaml"]),
            unit("overlays/prod", &["overlays/prod/kustomization.yaml", "base/kustomization.yaml", "base/d.yaml"]),
            unit("charts/web", &["charts/web/"]),
        ];
        let kept: Vec<String> = outermost(units).into_iter().map(|u| u.root).collect();
        assert_eq!(kept, vec!["overlays/prod".to_string(), "charts/web".to_string()]);
    }

    #[test]
    fn a_root_a_controller_deploys_is_rendered_only_as_deployed() {
        let mut prod = unit("charts/web", &["charts/web/", "apps/prod.yaml"]);
        prod.declared = true;
        let mut staging = unit("charts/web", &["charts/web/", "apps/staging.yaml"]);
        staging.declared = true;
        let units = vec![unit("charts/web", &["charts/web/"]), prod, staging, unit("charts/api", &["charts/api/"])];
        let kept: Vec<(String, bool)> = outermost(units).into_iter().map(|u| (u.root, u.declared)).collect();
        assert_eq!(kept, vec![("charts/web".into(), true), ("charts/web".into(), true), ("charts/api".into(), false)]);
    }
}
