//! Helm charts: what to render (releases × environments), rendering with the real `helm` in a
//! sandbox, a content-addressed render cache, splitting the output by template, and turning Helm's
//! errors into positions in the chart.

pub mod binary;
pub mod check;
pub mod dependencies;
mod file_errors;
pub mod rendered;
pub mod sourcemap;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::yaml::{self, Node, Pos, Route};
pub use binary::Helm;
pub use dependencies::file_dependencies;
pub use rendered::RELEASE_NAMESPACE;

/// One `helm template` invocation: a chart, a release, maybe an environment.
#[derive(Debug, Clone)]
pub struct RenderUnit {
    /// The chart directory on disk.
    pub chart_dir: PathBuf,
    /// The chart directory as reports show it (`charts/shop`).
    pub chart_display: String,
    pub release: String,
    /// The release namespace, when `.kpath.yml` names one (the release's, its environment's, or the
    /// top-level `namespace`). `None`: it is decided at install (`helm install -n …`); the chart is rendered
    /// into [`RELEASE_NAMESPACE`] and that namespace is removed from the objects again.
    pub namespace: Option<String>,
    pub environment: Option<String>,
    /// Values files relative to the chart, in the order Helm applies them (after `values.yaml`).
    pub values: Vec<String>,
    /// `--set` overrides, in order.
    pub set: Vec<(String, String)>,
    /// Values that are not files of the chart (an environment's values file elsewhere in the repository, an
    /// Argo CD Application's inline `valuesObject`, a Flux HelmRelease's `values`), applied after `values`, in
    /// order. Written beside the chart copy, never inside it.
    pub extra_values: Vec<ExtraValues>,
    /// `--set-string` overrides, in order (after `set`, as Helm applies them).
    pub set_string: Vec<(String, String)>,
    /// Where each override of `set`/`set_string` is written (key, file, line), to place findings on it.
    pub set_at: Vec<(String, String, u32)>,
    pub kubernetes_version: (u32, u32),
    /// The tree the chart lives in (the repository, or one side of a review): `file://` dependencies
    /// are read only inside it. `None`: only inside the chart's own directory.
    pub tree_root: Option<PathBuf>,
}

/// Values from outside the chart.
#[derive(Debug, Clone)]
pub struct ExtraValues {
    /// The file they are shown in, relative to the tree.
    pub display: String,
    /// The YAML Helm reads.
    pub text: String,
    /// Whether `text`'s lines are `display`'s lines (a key found in it is placed there).
    pub aligned: bool,
}

impl RenderUnit {
    /// `helm://release[/env]/`: the prefix of rendered locations of this unit.
    pub fn rendered_prefix(&self) -> String {
        match &self.environment {
            Some(env) => format!("helm://{}/{}/", self.release, env),
            None => format!("helm://{}/", self.release),
        }
    }
}

/// The tree a chart found on disk lives in: the configuration's directory when it holds the chart (a
/// review's side is written there), else the nearest ancestor with `.git` (the repository).
pub(crate) fn tree_root(chart_dir: &Path, config: &Config) -> Option<PathBuf> {
    let chart = std::fs::canonicalize(chart_dir).ok()?;
    if let Some(base) = config.base_dir.as_deref().and_then(|b| std::fs::canonicalize(b).ok())
        && chart.starts_with(&base)
    {
        return Some(base);
    }
    chart.ancestors().find(|dir| dir.join(".git").exists()).map(Path::to_path_buf)
}

/// One document of `helm template` output, with the template that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedDoc {
    /// The template's path inside the chart (`templates/deployment.yaml`,
    /// `charts/redis/templates/master.yaml`).
    pub template: String,
    /// 0-based index among the documents this template produced.
    pub index: usize,
    pub text: String,
    /// Routes of Secret values the chart generated at render time (`data.password` from `randAlphaNum`):
    /// they differed between two renders, and `text` holds a placeholder there (see [`render`]).
    pub generated: Vec<Route>,
}

/// A problem found while rendering, placed in the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderProblem {
    /// Path inside the chart (`templates/deployment.yaml`, `Chart.yaml`).
    pub file: String,
    pub pos: Pos,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Rendered {
    pub docs: Vec<RenderedDoc>,
    /// Problems that did not stop the render (a symlink that was not followed).
    pub problems: Vec<RenderProblem>,
    /// The release namespace is decided at install (the unit names none): objects without a namespace,
    /// and those whose `{{ .Release.Namespace }}` was removed, go into the release's namespace.
    pub namespace_at_install: bool,
    /// `file://` dependencies copied into the chart: (path inside the rendered chart, `charts/common/`;
    /// the directory it came from, relative to the chart directory, `../common/`). Templates under the
    /// first are read from the second.
    pub file_dependencies: Vec<(String, String)>,
}

/// Render settings from the configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeout: Duration,
    pub max_output: usize,
    pub concurrency: usize,
    pub cache_dir: Option<PathBuf>,
    /// Bytes of memory one render may use (helm's data segment); past it the render fails.
    pub memory_per_render: u64,
    /// Bytes of memory all renders running at once may use together: no more than
    /// `memory_total / memory_per_render` renders run at once (nor more than `concurrency`).
    pub memory_total: u64,
}

/// Default of [`Limits::memory_per_render`]. Measured with helm 3.17: a typical chart renders in
/// ~45 MiB; the `until 300000000` and `tpl`-recursion bombs stop at ~370 MiB of RSS.
pub const DEFAULT_MEMORY_PER_RENDER: u64 = 384 << 20;
/// Default of [`Limits::memory_total`]: two renders at once, under 1 GiB with kpath itself.
pub const DEFAULT_MEMORY_TOTAL: u64 = 768 << 20;
/// A chart file larger than this is not read, and the chart is not rendered (Helm would load it).
pub const MAX_CHART_FILE_BYTES: u64 = 16 << 20;
/// All files of one chart together: past this the chart is not rendered.
pub const MAX_CHART_BYTES: u64 = 64 << 20;

impl Limits {
    /// The bounds of one `helm template` run.
    pub fn run_limits(&self) -> binary::RunLimits {
        binary::RunLimits { timeout: self.timeout, max_output: self.max_output, memory: self.memory_per_render }
    }

    /// How many renders may run at once.
    fn slots(&self) -> usize {
        crate::render::slots::limit(self.memory_total, self.memory_per_render, self.concurrency)
    }
}

/// What rendering a unit produced, as cached: the documents, or Helm's own error placed in the chart.
/// Failures that depend on kpath's limits or the machine (a timeout, the output cap, no temporary
/// directory) are not cached: the next run tries again.
type Outcome = Result<Vec<RenderedDoc>, RenderProblem>;

/// Renders a unit: from the cache when the chart (with its `file://` dependencies), values, options and
/// helm binary are unchanged, so a cached check starts no process and copies nothing into a sandbox.
///
/// **Generated values.** A chart may generate a Secret's value at render time (`randAlphaNum`,
/// `genPrivateKey`, a `lookup` that falls back to one of those): that value is not in the repository, so
/// `secret-committed` must not report it, while a value written in the chart or its values files still is.
/// kpath finds them by rendering a second time and comparing the Secrets: a scalar that differs between
/// the two renders came from the template, not from the repository. Tracing each value through the
/// template language instead would mean re-implementing Go templates, Sprig and Helm's `include`/`tpl`
/// scoping (values pass through helpers, `dict`s, `tpl` strings, subcharts); comparing two real renders
/// needs none of it and cannot disagree with Helm. The second render runs only when a template (helpers
/// and subcharts included; a packaged subchart counts as one that may) calls a generating function
/// ([`rendered::GENERATING_FUNCTIONS`]) and the first render holds a Secret, and both renders are cached as
/// one result. Generated values are listed in [`RenderedDoc::generated`] and replaced by a stable
/// placeholder in the text, so reviews do not show a new random value on every run.
pub fn render(helm: &Helm, unit: &RenderUnit, limits: &Limits) -> Result<Rendered, RenderProblem> {
    let chart = read_chart(&unit.chart_dir, unit.tree_root.as_deref())?;
    let key = cache_key(helm, unit, &chart);
    let outcome = match cache_get(&key, limits) {
        Some(outcome) => outcome,
        None => {
            let outcome = Arc::new(render_fresh(helm, unit, &chart, limits)?);
            cache_put(&key, &outcome, limits.cache_dir.as_deref());
            outcome
        }
    };
    match outcome.as_ref() {
        Ok(docs) => Ok(Rendered {
            docs: docs.clone(),
            problems: chart.problems,
            namespace_at_install: unit.namespace.is_none(),
            file_dependencies: chart.copied,
        }),
        Err(problem) => Err(problem.clone()),
    }
}

/// Renders with helm (once, or twice for charts that generate Secret values). `Err` is a failure that is not
/// cached; `Ok(Err)` is Helm's own error, cached like a render.
fn render_fresh(helm: &Helm, unit: &RenderUnit, chart: &ChartFiles, limits: &Limits) -> Result<Outcome, RenderProblem> {
    // Helm's version is asked only when a render fails, to tell "this helm is too old" from the chart's own
    // error: a render that succeeds needs no second helm process (a cold check costs one helm start-up, as
    // bare `helm template` does). Helm 2 fails on kpath's arguments, so an unsupported helm never passes
    // silently. A render by a helm that turns out unusable is discarded, not cached.
    let outcome = render_with(helm, unit, chart, limits);
    if matches!(outcome, Ok(Ok(_))) {
        return outcome;
    }
    match helm.check_version() {
        Ok(_) => outcome,
        Err(e) => Err(at_chart(e.to_string())),
    }
}

fn render_with(helm: &Helm, unit: &RenderUnit, chart: &ChartFiles, limits: &Limits) -> Result<Outcome, RenderProblem> {
    let _slot = crate::render::slots::Slot::acquire(limits.slots());
    let sandbox = binary::Sandbox::new().map_err(|e| at_chart(format!("cannot create a temporary directory: {e}")))?;
    let chart_copy = sandbox.path().join("chart");
    write_chart(chart, &chart_copy).map_err(|e| at_chart(format!("cannot copy the chart for rendering: {e}")))?;
    for (index, extra) in unit.extra_values.iter().enumerate() {
        std::fs::write(sandbox.path().join(extra_values_name(index)), &extra.text)
            .map_err(|e| at_chart(format!("cannot write values for rendering: {e}")))?;
    }
    let args = template_args(unit, chart, &chart_copy)?;
    let once = || -> Result<Outcome, RenderProblem> {
        let output = binary::run(&helm.path, &args, &sandbox, &limits.run_limits())
            .map_err(|e| at_chart(format!("`helm template` {e}")))?;
        if !output.success {
            let problem = parse_error(&output.stderr, &chart_copy, &unit.chart_dir);
            return Ok(Err(in_dependency(problem, &chart.copied)));
        }
        let mut docs = split_output(&String::from_utf8_lossy(&output.stdout));
        if unit.namespace.is_none() {
            for doc in &mut docs {
                doc.text = rendered::remove_release_namespace(&doc.text).0;
            }
        }
        Ok(Ok(docs))
    };
    // A chart that may generate values is rendered twice; when a second render may run now (a free slot), both
    // run at once, so the comparison costs no more wall time than one render.
    let second_slot = may_generate(chart).then(|| crate::render::slots::Slot::try_acquire(limits.slots())).flatten();
    let (first, second) = match second_slot {
        Some(_slot) => std::thread::scope(|scope| {
            // Each thread spawns and waits for its own helm (the parent-death signal is tied to that thread).
            let again = scope.spawn(once);
            let first = once();
            (first, Some(again.join().unwrap_or_else(|_| Err(at_chart("the second render crashed".into())))))
        }),
        None => (once(), None),
    };
    let mut docs = match first? {
        Ok(docs) => docs,
        Err(problem) => return Ok(Err(problem)),
    };
    if may_generate(chart) && docs.iter().any(holds_secret) {
        let again = match second {
            Some(again) => again,
            None => once(),
        };
        // Helm's own error on the second render (it cannot differ from the first but for a generated
        // value) leaves the first render as it is.
        if let Ok(again) = again? {
            mark_generated(&mut docs, &again);
        }
    }
    Ok(Ok(docs))
}

/// The sandbox file (beside the chart copy) that holds the `index`th [`ExtraValues`].
fn extra_values_name(index: usize) -> String {
    format!("kpath-values-{index}.yaml")
}

/// Whether a template of the chart (its own, its helpers', its subcharts') calls a generating function. A
/// packaged subchart (`charts/*.tgz`) is not unpacked to look: it counts as one that may.
fn may_generate(chart: &ChartFiles) -> bool {
    chart.files.iter().any(|(rel, bytes)| {
        let packaged = rel.starts_with("charts/") && (rel.ends_with(".tgz") || rel.ends_with(".tar.gz"));
        let template = rel.starts_with("templates/") || rel.contains("/templates/");
        packaged || (template && rendered::calls_generating_function(&String::from_utf8_lossy(bytes)))
    })
}

fn holds_secret(doc: &RenderedDoc) -> bool {
    doc.text.contains("Secret")
        && yaml::parse_stream(&doc.text).0.iter().filter_map(|d| d.root.as_ref()).any(rendered::is_secret)
}

/// Compares each Secret of the first render with the same document of the second; differing values are
/// listed as generated and replaced by their placeholder.
fn mark_generated(docs: &mut [RenderedDoc], again: &[RenderedDoc]) {
    let second: HashMap<(&str, usize), &str> =
        again.iter().map(|d| ((d.template.as_str(), d.index), d.text.as_str())).collect();
    for doc in docs {
        let Some(other) = second.get(&(doc.template.as_str(), doc.index)) else { continue };
        if !doc.text.contains("Secret") {
            continue;
        }
        let routes = rendered::differing_secret_values(&doc.text, other);
        if !routes.is_empty() {
            doc.text = rendered::replace_generated(&doc.text, &routes);
            doc.generated = routes;
        }
    }
}

/// A problem Helm placed in a `file://` dependency copied into the chart (`charts/common/templates/x.yaml`)
/// is placed where that file really is (`../common/templates/x.yaml`).
fn in_dependency(mut problem: RenderProblem, copied: &[(String, String)]) -> RenderProblem {
    if let Some((inside, from)) = copied.iter().rev().find(|(inside, _)| problem.file.starts_with(inside.as_str())) {
        problem.file = format!("{from}{}", &problem.file[inside.len()..]);
    }
    problem
}

/// The arguments of `helm template` for a unit. Every value that came from the repository is checked
/// again here (whatever built the unit), passed as `--flag=value` in one argument, and the two
/// positionals come after `--`: nothing a repository writes can be read as an option of Helm's, such as
/// `--post-renderer`, which would run a program.
fn template_args(unit: &RenderUnit, chart: &ChartFiles, chart_copy: &Path) -> Result<Vec<String>, RenderProblem> {
    use crate::cmdline::{self, flag};
    let bad = |what: &str, e: cmdline::Rejected| at_chart(format!("not rendered: {what}: {e}"));
    cmdline::release_name(&unit.release).map_err(|e| bad("release", e))?;
    let namespace = unit.namespace.as_deref().unwrap_or(RELEASE_NAMESPACE);
    cmdline::namespace(namespace).map_err(|e| bad("namespace", e))?;
    let (major, minor) = unit.kubernetes_version;
    let version = cmdline::kubernetes_version(&format!("{major}.{minor}")).map_err(|e| bad("kubernetesVersion", e))?;
    let mut args: Vec<String> = vec![
        "template".into(),
        flag("namespace", namespace),
        flag("kube-version", &format!("{}.{}.0", version.0, version.1)),
        "--include-crds".into(),
        "--skip-tests".into(),
    ];
    for values in &unit.values {
        cmdline::repo_path(values, "").map_err(|e| bad("values", e))?;
        let normal = values.trim_start_matches("./");
        if !chart.files.iter().any(|(rel, _)| rel == normal) {
            return Err(at_chart(format!("values file `{}` is not in the chart directory", cmdline::shown(values))));
        }
        args.push(flag("values", &chart_copy.join(normal).to_string_lossy()));
    }
    for index in 0..unit.extra_values.len() {
        let path = chart_copy.with_file_name(extra_values_name(index));
        args.push(flag("values", &path.to_string_lossy()));
    }
    for (key, value) in &unit.set {
        cmdline::set_key(key).map_err(|e| bad("set", e))?;
        let value = cmdline::set_value(value).map_err(|e| bad("set", e))?;
        args.push(flag("set", &format!("{key}={value}")));
    }
    for (key, value) in &unit.set_string {
        cmdline::set_key(key).map_err(|e| bad("set-string", e))?;
        let value = cmdline::set_value(value).map_err(|e| bad("set-string", e))?;
        args.push(flag("set-string", &format!("{key}={value}")));
    }
    args.push("--".into());
    args.push(unit.release.clone());
    args.push(chart_copy.to_string_lossy().into_owned());
    Ok(args)
}

/// A release name Helm accepts, made from a chart's name (which a repository writes freely): lowercase,
/// other characters turned into `-`, trimmed to 53 characters.
fn release_from_chart_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    out.truncate(53);
    let out = out.split('.').map(|p| p.trim_matches('-')).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(".");
    if crate::cmdline::release_name(&out).is_ok() { out } else { "release".to_string() }
}

fn at_chart(message: String) -> RenderProblem {
    RenderProblem { file: "Chart.yaml".into(), pos: Pos { line: 1, col: 1 }, message }
}

/// A chart read into memory: its files (relative path, bytes), with its `file://` dependencies under
/// `charts/`, and the symlinks that were refused.
#[derive(Default)]
struct ChartFiles {
    files: Vec<(String, Vec<u8>)>,
    problems: Vec<RenderProblem>,
    /// `file://` dependencies copied in: (path inside the chart, source directory relative to the chart).
    copied: Vec<(String, String)>,
    /// Bytes of every file read so far.
    total: u64,
}

/// Reads every file of the chart, each at most [`MAX_CHART_FILE_BYTES`] and all together at most
/// [`MAX_CHART_BYTES`] (checked before reading: past either, the chart is not rendered and the
/// problem names the file). Symlinks are followed only when they resolve inside the chart:
/// a link out of it (to `/etc/passwd`, to another chart, to the CI runner's secrets) is refused and
/// reported, and the chart renders without it.
///
/// `file://` dependencies that `charts/` does not already hold are read the same way (links only inside
/// the dependency, sizes counted with the chart's), and only inside `tree_root` (the chart's own
/// directory when `None`): a dependency elsewhere is a problem on its `repository:` line.
fn read_chart(dir: &Path, tree_root: Option<&Path>) -> Result<ChartFiles, RenderProblem> {
    let root = std::fs::canonicalize(dir).map_err(|e| at_chart(format!("cannot read the chart: {e}")))?;
    let tree = match tree_root {
        Some(tree) => std::fs::canonicalize(tree).map_err(|e| at_chart(format!("cannot read the repository: {e}")))?,
        None => root.clone(),
    };
    let mut chart = ChartFiles::default();
    read_tree(&root, "", "", &mut chart)?;
    let mut chain = vec![root.clone()];
    add_file_dependencies(&root, &root, "", &tree, &mut chart, &mut chain)?;
    Ok(chart)
}

/// Reads the files under `fs_root` into `chart` as `inside` + their relative path; problems name them as
/// `shown` + their relative path (where they are, relative to the chart directory).
fn read_tree(fs_root: &Path, inside: &str, shown: &str, chart: &mut ChartFiles) -> Result<(), RenderProblem> {
    let mut walker = walkdir::WalkDir::new(fs_root).follow_links(false).sort_by_file_name().into_iter();
    while let Some(entry) = walker.next() {
        let Ok(entry) = entry else { continue };
        let rel = entry.path().strip_prefix(fs_root).unwrap_or(entry.path()).to_string_lossy().replace('\\', "/");
        if entry.depth() > 0 && entry.file_type().is_dir() && entry.file_name() == ".git" {
            walker.skip_current_dir();
            continue;
        }
        let named = format!("{shown}{rel}");
        let real = if entry.path_is_symlink() {
            match std::fs::canonicalize(entry.path()) {
                Ok(target) if target.starts_with(fs_root) && target.is_file() => target,
                Ok(target) => {
                    let why = if target.starts_with(fs_root) { "a directory link" } else { "a link out of the chart" };
                    chart.problems.push(RenderProblem {
                        file: named.clone(),
                        pos: Pos { line: 1, col: 1 },
                        message: format!(
                            "`{named}` is {why}; kpath does not follow it, and rendered the chart without it"
                        ),
                    });
                    continue;
                }
                Err(_) => {
                    chart.problems.push(RenderProblem {
                        file: named.clone(),
                        pos: Pos { line: 1, col: 1 },
                        message: format!("`{named}` is a broken symlink; the chart was rendered without it"),
                    });
                    continue;
                }
            }
        } else if entry.file_type().is_file() {
            entry.path().to_path_buf()
        } else {
            continue;
        };
        // Sizes are checked before reading: a chart is copied into memory whole (and Helm would load
        // it whole too), so one huge file must not cost its size in memory.
        let size = std::fs::metadata(&real).map_err(|e| at_chart(format!("cannot read `{named}`: {e}")))?.len();
        chart.total = chart.total.saturating_add(size);
        let over = |message: String| RenderProblem { file: named.clone(), pos: Pos { line: 1, col: 1 }, message };
        if size > MAX_CHART_FILE_BYTES {
            return Err(over(format!(
                "`{named}` is {}, over kpath's {} limit for a file of a chart; the chart was not rendered",
                mebibytes(size),
                mebibytes(MAX_CHART_FILE_BYTES)
            )));
        }
        if chart.total > MAX_CHART_BYTES {
            return Err(over(format!(
                "the chart's files pass kpath's {} limit for a whole chart at `{named}`; the chart was not rendered",
                mebibytes(MAX_CHART_BYTES)
            )));
        }
        let bytes = crate::loader::read_bounded(&real, MAX_CHART_FILE_BYTES)
            .map_err(|e| over(format!("cannot read `{named}`: {e}")))?;
        chart.files.push((format!("{inside}{rel}"), bytes));
    }
    Ok(())
}

/// Copies the `file://` dependencies of the chart read at `inside` (whose directory is `dir`) into
/// `inside/charts/NAME/`, then theirs, at most [`dependencies::MAX_DEPTH`] deep; `chain` holds the
/// directories being copied, so a cycle is refused rather than followed.
fn add_file_dependencies(
    dir: &Path,
    top: &Path,
    inside: &str,
    tree: &Path,
    chart: &mut ChartFiles,
    chain: &mut Vec<PathBuf>,
) -> Result<(), RenderProblem> {
    let chart_yaml = format!("{inside}Chart.yaml");
    let Some(text) =
        chart.files.iter().find(|(rel, _)| *rel == chart_yaml).map(|(_, b)| String::from_utf8_lossy(b).into_owned())
    else {
        return Ok(());
    };
    let shown = shown_dir(top, dir);
    for dep in dependencies::parse(&text) {
        let name = crate::cmdline::shown(&dep.name);
        let path = crate::cmdline::shown(&dep.path);
        let at = |message: String| RenderProblem {
            file: format!("{shown}Chart.yaml"),
            pos: Pos { line: dep.line, col: 1 },
            message: format!("dependency `{name}` (`file://{path}`): {message}"),
        };
        if !dependencies::valid_name(&dep.name) {
            return Err(at("its `name` cannot be a directory under `charts/`".into()));
        }
        let under = format!("{inside}charts/{}/", dep.name);
        let packaged = format!("{inside}charts/{}-", dep.name);
        let vendored = chart.files.iter().any(|(rel, _)| {
            rel.starts_with(&under) || (rel.starts_with(&packaged) && !rel[packaged.len()..].contains('/'))
        });
        if vendored {
            continue;
        }
        let Ok(target) = std::fs::canonicalize(dir.join(&dep.path)) else {
            return Err(at("no such directory".into()));
        };
        if !target.starts_with(tree) {
            return Err(at(
                "it is outside the repository; kpath reads no chart from outside it (vendor it under `charts/`)".into(),
            ));
        }
        if chain.contains(&target) {
            return Err(at("the dependencies form a cycle".into()));
        }
        if chain.len() > dependencies::MAX_DEPTH {
            return Err(at(format!("dependencies nest more than {} deep", dependencies::MAX_DEPTH)));
        }
        if !target.join("Chart.yaml").is_file() {
            return Err(at("it has no `Chart.yaml`".into()));
        }
        let from = shown_dir(top, &target);
        read_tree(&target, &under, &from, chart)?;
        chart.copied.push((under.clone(), from));
        chain.push(target.clone());
        add_file_dependencies(&target, top, &under, tree, chart, chain)?;
        chain.pop();
    }
    Ok(())
}

/// A directory relative to the chart's, as problems name it: `""` for the chart, `../common/` for a dependency.
fn shown_dir(top: &Path, dir: &Path) -> String {
    let rel = dependencies::relative(top, dir).to_string_lossy().replace('\\', "/");
    if rel.is_empty() { rel } else { format!("{rel}/") }
}

fn mebibytes(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    }
}

/// A chart's text file, if it is at most [`MAX_CHART_FILE_BYTES`] (lossy UTF-8).
pub(crate) fn read_chart_text(path: &Path) -> Option<String> {
    crate::loader::read_bounded(path, MAX_CHART_FILE_BYTES).ok().map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn write_chart(chart: &ChartFiles, to: &Path) -> std::io::Result<()> {
    for (rel, bytes) in &chart.files {
        let path = to.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)?;
    }
    Ok(())
}

/// Version of the cache's content format: bump when what is cached changes meaning.
const CACHE_FORMAT: &str = "kpath-render-2";

/// The cache key: everything a render depends on. The binary is identified by its canonical path, size
/// and modification time ([`Helm::identity`]), not by asking it its version, so computing the key starts
/// no process.
fn cache_key(helm: &Helm, unit: &RenderUnit, chart: &ChartFiles) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(CACHE_FORMAT.as_bytes());
    field(helm.identity.as_bytes());
    field(unit.release.as_bytes());
    match &unit.namespace {
        Some(namespace) => {
            field(b"namespace");
            field(namespace.as_bytes());
        }
        None => field(b"namespace at install"),
    }
    field(format!("{}.{}", unit.kubernetes_version.0, unit.kubernetes_version.1).as_bytes());
    for v in &unit.values {
        field(v.as_bytes());
    }
    for (k, v) in &unit.set {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    field(b"extra values");
    for extra in &unit.extra_values {
        field(extra.text.as_bytes());
    }
    field(b"set-string");
    for (k, v) in &unit.set_string {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    for (rel, bytes) in &chart.files {
        field(rel.as_bytes());
        field(bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// An outcome as the disk cache stores it (JSON).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CacheEntry {
    format: String,
    #[serde(default)]
    docs: Vec<CachedDoc>,
    #[serde(default)]
    failed: Option<CachedProblem>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CachedDoc {
    template: String,
    index: usize,
    text: String,
    /// Each route as its segments: a string is a key, a number an index.
    generated: Vec<Vec<CachedSegment>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum CachedSegment {
    Index(usize),
    Key(String),
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CachedProblem {
    file: String,
    line: u32,
    col: u32,
    message: String,
}

impl CacheEntry {
    fn from_outcome(outcome: &Outcome) -> CacheEntry {
        let (docs, failed) = match outcome {
            Ok(docs) => (docs.iter().map(CachedDoc::from_doc).collect(), None),
            Err(p) => (
                Vec::new(),
                Some(CachedProblem {
                    file: p.file.clone(),
                    line: p.pos.line,
                    col: p.pos.col,
                    message: p.message.clone(),
                }),
            ),
        };
        CacheEntry { format: CACHE_FORMAT.to_string(), docs, failed }
    }

    fn into_outcome(self) -> Option<Outcome> {
        if self.format != CACHE_FORMAT {
            return None;
        }
        Some(match self.failed {
            Some(p) => Err(RenderProblem { file: p.file, pos: Pos { line: p.line, col: p.col }, message: p.message }),
            None => Ok(self.docs.into_iter().map(CachedDoc::into_doc).collect()),
        })
    }
}

impl CachedDoc {
    fn from_doc(doc: &RenderedDoc) -> CachedDoc {
        let generated = doc
            .generated
            .iter()
            .map(|route| {
                route
                    .0
                    .iter()
                    .map(|seg| match seg {
                        yaml::Segment::Key(k) => CachedSegment::Key(k.to_string()),
                        yaml::Segment::Index(i) => CachedSegment::Index(*i),
                    })
                    .collect()
            })
            .collect();
        CachedDoc { template: doc.template.clone(), index: doc.index, text: doc.text.clone(), generated }
    }

    fn into_doc(self) -> RenderedDoc {
        let generated = self
            .generated
            .into_iter()
            .map(|segments| {
                Route(
                    segments
                        .into_iter()
                        .map(|seg| match seg {
                            CachedSegment::Key(k) => yaml::Segment::Key(k.as_str().into()),
                            CachedSegment::Index(i) => yaml::Segment::Index(i),
                        })
                        .collect(),
                )
            })
            .collect();
        RenderedDoc { template: self.template, index: self.index, text: self.text, generated }
    }
}

/// A render from the renderers' cache (`crate::render::cache`, memory then disk), stored as JSON.
fn cache_get(key: &str, limits: &Limits) -> Option<Arc<Outcome>> {
    let text = crate::render::cache::get("helm", key, limits.cache_dir.as_deref())?;
    let entry: CacheEntry = serde_json::from_str(&text).ok()?;
    Some(Arc::new(entry.into_outcome()?))
}

fn cache_put(key: &str, outcome: &Arc<Outcome>, dir: Option<&Path>) {
    let Ok(text) = serde_json::to_string(&CacheEntry::from_outcome(outcome)) else { return };
    crate::render::cache::put("helm", key, &text, dir);
}

/// Splits `helm template` output into documents, each with the template it came from (the
/// `# Source:` comment Helm writes above each one).
pub fn split_output(text: &str) -> Vec<RenderedDoc> {
    let mut docs: Vec<RenderedDoc> = Vec::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut current: Option<(String, String)> = None;
    let mut flush = |current: &mut Option<(String, String)>, docs: &mut Vec<RenderedDoc>| {
        if let Some((template, body)) = current.take()
            && !body.trim().is_empty()
        {
            let index = counts.entry(template.clone()).or_insert(0);
            docs.push(RenderedDoc { template, index: *index, text: body, generated: Vec::new() });
            *index += 1;
        }
    };
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" {
            flush(&mut current, &mut docs);
            continue;
        }
        if let Some(source) = bare.strip_prefix("# Source: ")
            && current.as_ref().is_none_or(|(_, body)| body.trim().is_empty())
        {
            // `shop/templates/x.yaml`: drop the chart-name prefix Helm puts first.
            let template = source.split_once('/').map_or(source, |(_, rest)| rest).to_string();
            current = Some((template, String::new()));
            continue;
        }
        match &mut current {
            Some((_, body)) => body.push_str(line),
            None => current = Some((String::from("(unknown template)"), line.to_string())),
        }
    }
    flush(&mut current, &mut docs);
    docs
}

/// Turns Helm's error output into a position in the chart: the template file and line for template
/// errors, the dependency's line in Chart.yaml for a missing dependency, `Chart.yaml` otherwise.
pub fn parse_error(stderr: &str, chart_copy: &Path, chart_dir: &Path) -> RenderProblem {
    let copy = chart_copy.to_string_lossy();
    let message = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Error:"))
        .unwrap_or_else(|| stderr.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("helm template failed"))
        .trim_start_matches("Error: ")
        .replace(copy.as_ref(), ".");
    if let Some(problem) = file_errors::locate(&message, chart_dir) {
        return problem;
    }
    // `execution error at (shop/templates/x.yaml:7:26): …`, `parse error at (shop/templates/x.yaml:3): …`,
    // `template: shop/templates/x.yaml:12:20: executing …`.
    // `…x.yaml:9: unclosed action started at shop/templates/x.yaml:8`: the line to fix is where it started.
    if let Some(started) = message.split("started at ").nth(1) {
        let mut parts = started.splitn(3, ':');
        if let (Some(path), Some(Ok(line))) = (parts.next(), parts.next().map(|l| l.trim().parse::<u32>())) {
            let file = path.split_once('/').map_or(path, |(_, r)| r).to_string();
            return RenderProblem { file, pos: Pos { line, col: 1 }, message: message.clone() };
        }
    }
    for marker in [" at (", "template: "] {
        if let Some(idx) = message.find(marker) {
            let rest = &message[idx + marker.len()..];
            let mut parts = rest.splitn(4, [':', ')']);
            let (Some(path), Some(line)) = (parts.next(), parts.next()) else { continue };
            let Ok(line) = line.trim().parse::<u32>() else { continue };
            let col = parts.next().and_then(|c| c.trim().parse::<u32>().ok()).unwrap_or(1);
            let file = path.split_once('/').map_or(path, |(_, r)| r).to_string();
            return RenderProblem { file, pos: Pos { line, col }, message: message.clone() };
        }
    }
    // `YAML parse error on shop/templates/x.yaml: …yaml: line 5: …` — the line is in the rendered
    // output, not the template, so the template is named without inventing a line.
    if let Some(rest) = message.split("YAML parse error on ").nth(1) {
        let path = rest.split(':').next().unwrap_or("");
        let file = path.split_once('/').map_or(path, |(_, r)| r).to_string();
        return RenderProblem {
            file,
            pos: Pos { line: 1, col: 1 },
            message: format!("{message} (the line number is in the rendered output of this template)"),
        };
    }
    // `found in Chart.yaml, but missing in charts/ directory: redis, postgresql`.
    if let Some(names) = message.split("missing in charts/ directory:").nth(1) {
        let mut names = names.split(',').map(str::trim).filter(|n| !n.is_empty());
        let first = names.next().unwrap_or("");
        let others: Vec<String> = names.map(|n| format!("`{}`", crate::cmdline::shown(n))).collect();
        let line = dependency_line(chart_dir, first);
        let also = if others.is_empty() { String::new() } else { format!(" (nor is {})", others.join(", ")) };
        let at = line.map(|p| format!(" (Chart.yaml line {})", p.line)).unwrap_or_default();
        return RenderProblem {
            file: "Chart.yaml".into(),
            pos: line.unwrap_or(Pos { line: 1, col: 1 }),
            message: format!(
                "dependency `{}`{at} is not in `charts/`{also}: kpath renders offline and never downloads charts, so \
                 vendor it (`helm dependency build`, then commit `charts/`), or point its `repository:` at a chart in \
                 this repository with `file://`",
                crate::cmdline::shown(first)
            ),
        };
    }
    RenderProblem { file: "Chart.yaml".into(), pos: Pos { line: 1, col: 1 }, message }
}

fn dependency_line(chart_dir: &Path, name: &str) -> Option<Pos> {
    let text = read_chart_text(&chart_dir.join("Chart.yaml"))?;
    let root = yaml::parse_single(&text).ok()??;
    let deps = root.get("dependencies")?;
    deps.items().iter().find(|d| d.get("name").and_then(Node::as_text) == Some(name)).map(|d| d.pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_split_by_template() {
        let text = "---\n# Source: shop/templates/svc.yaml\napiVersion: v1\nkind: Service\n---\n# Source: shop/templates/cm.yaml\na: 1\n---\n# Source: shop/templates/cm.yaml\nb: 2\n---\n# Source: shop/charts/redis/templates/m.yaml\nc: 3\n";
        let docs = split_output(text);
        let summary: Vec<(&str, usize, &str)> =
            docs.iter().map(|d| (d.template.as_str(), d.index, d.text.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                ("templates/svc.yaml", 0, "apiVersion: v1\nkind: Service\n"),
                ("templates/cm.yaml", 0, "a: 1\n"),
                ("templates/cm.yaml", 1, "b: 2\n"),
                ("charts/redis/templates/m.yaml", 0, "c: 3\n"),
            ]
        );
    }

    fn unit() -> RenderUnit {
        RenderUnit {
            chart_dir: PathBuf::from("charts/shop"),
            chart_display: "charts/shop".into(),
            release: "shop".into(),
            namespace: Some("shop".into()),
            environment: None,
            values: vec!["values-prod.yaml".into()],
            set: vec![("image.tag".into(), "1.2".into())],
            extra_values: Vec::new(),
            set_string: Vec::new(),
            set_at: Vec::new(),
            kubernetes_version: (1, 30),
            tree_root: None,
        }
    }

    fn chart() -> ChartFiles {
        ChartFiles {
            files: vec![("Chart.yaml".into(), Vec::new()), ("values-prod.yaml".into(), Vec::new())],
            ..ChartFiles::default()
        }
    }

    /// Whatever a unit holds, `helm template` sees only its own flags as `--flag=value` before `--`, and
    /// exactly the release and the chart after it.
    fn assert_no_option_injected(args: &[String], copy: &Path) {
        let split = args.iter().position(|a| a == "--").expect("a `--` before the positionals");
        for arg in &args[1..split] {
            let known = ["--namespace=", "--kube-version=", "--values=", "--set="].iter().any(|f| arg.starts_with(f))
                || arg == "--include-crds"
                || arg == "--skip-tests";
            assert!(known, "unexpected argument {arg:?} in {args:?}");
        }
        assert_eq!(args.len(), split + 3, "{args:?}");
        assert_eq!(args[split + 2], copy.to_string_lossy());
    }

    #[test]
    fn every_argument_position_refuses_options() {
        let copy = Path::new("/sandbox/chart");
        let good = template_args(&unit(), &chart(), copy).expect("a valid unit");
        assert_no_option_injected(&good, copy);
        assert!(good.contains(&"--set=image.tag=1.2".to_string()), "{good:?}");
        let hostile = [
            "--post-renderer=/bin/sh",
            "--post-renderer",
            "-o",
            "--output-dir=/tmp/x",
            "-f/etc/passwd",
            "--values=/etc/passwd",
            "../../../etc/passwd",
            "/etc/passwd",
            "a b",
            "x\n--post-renderer=/bin/sh",
        ];
        type Mutate = fn(&mut RenderUnit, &str);
        let positions: [(&str, Mutate); 6] = [
            ("release", |u, v| u.release = v.into()),
            ("namespace", |u, v| u.namespace = Some(v.into())),
            ("values", |u, v| u.values = vec![v.into()]),
            ("set key", |u, v| u.set = vec![(v.into(), "1".into())]),
            ("set value", |u, v| u.set = vec![("a".into(), v.into())]),
            ("environment values", |u, v| u.values.push(v.into())),
        ];
        for (position, mutate) in positions {
            for value in hostile {
                let mut u = unit();
                mutate(&mut u, value);
                match template_args(&u, &chart(), copy) {
                    Err(problem) => assert_eq!(problem.file, "Chart.yaml", "{position} {value:?}"),
                    // Only a `--set` value may pass, escaped, inside its own `--set=` argument.
                    Ok(args) => {
                        assert_eq!(position, "set value", "{value:?} passed as {position}: {args:?}");
                        assert_no_option_injected(&args, copy);
                        assert!(!value.contains(',') || args.iter().any(|a| a.contains("\\,")));
                    }
                }
            }
        }
        let mut u = unit();
        u.kubernetes_version = (0, 1);
        assert!(template_args(&u, &chart(), copy).is_err());
        u.kubernetes_version = (u32::MAX, 1);
        assert!(template_args(&u, &chart(), copy).is_err());
    }

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (rel, text) in files {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
    }

    fn chart_yaml(name: &str, deps: &[(&str, &str)]) -> String {
        let deps: String =
            deps.iter().map(|(n, r)| format!("  - name: {n}\n    version: 0.1.0\n    repository: {r}\n")).collect();
        let deps = if deps.is_empty() { String::new() } else { format!("dependencies:\n{deps}") };
        format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n{deps}")
    }

    fn paths(chart: &ChartFiles) -> Vec<&str> {
        chart.files.iter().map(|(rel, _)| rel.as_str()).collect()
    }

    #[test]
    fn file_dependencies_are_copied_under_charts_nested_and_only_inside_the_tree() {
        let top = tempfile::tempdir().expect("tempdir");
        let repo = top.path().join("repo");
        write(
            &repo,
            &[
                ("app/Chart.yaml", &chart_yaml("app", &[("lib", "file://../lib"), ("redis", "https://x.example")])),
                ("app/templates/a.yaml", "a: 1\n"),
                ("lib/Chart.yaml", &chart_yaml("lib", &[("base", "file://../base")])),
                ("lib/templates/l.yaml", "l: 1\n"),
                ("base/Chart.yaml", &chart_yaml("base", &[])),
                ("base/templates/b.yaml", "b: 1\n"),
            ],
        );
        let chart = read_chart(&repo.join("app"), Some(&repo)).expect("reads");
        assert_eq!(
            paths(&chart),
            [
                "Chart.yaml",
                "templates/a.yaml",
                "charts/lib/Chart.yaml",
                "charts/lib/templates/l.yaml",
                "charts/lib/charts/base/Chart.yaml",
                "charts/lib/charts/base/templates/b.yaml",
            ]
        );
        assert_eq!(
            chart.copied,
            [
                ("charts/lib/".to_string(), "../lib/".to_string()),
                ("charts/lib/charts/base/".to_string(), "../base/".to_string())
            ]
        );
        // Without a tree root, only the chart's own directory is readable.
        let p = read_chart(&repo.join("app"), None).err().expect("refused");
        assert_eq!((p.file.as_str(), p.pos.line), ("Chart.yaml", 7));
        assert!(p.message.contains("outside the repository"), "{}", p.message);
        // A dependency of a dependency that leaves the tree is placed in that dependency's Chart.yaml.
        write(&repo, &[("base/Chart.yaml", &chart_yaml("base", &[("far", "file://../../outside")]))]);
        write(top.path(), &[("outside/Chart.yaml", &chart_yaml("far", &[]))]);
        let p = read_chart(&repo.join("app"), Some(&repo)).err().expect("refused");
        assert_eq!((p.file.as_str(), p.pos.line), ("../base/Chart.yaml", 7), "{}", p.message);
    }

    #[test]
    fn vendored_dependencies_win_and_cycles_and_links_out_are_refused() {
        let repo = tempfile::tempdir().expect("tempdir");
        let repo = repo.path();
        write(
            repo,
            &[
                ("app/Chart.yaml", &chart_yaml("app", &[("lib", "file://../lib")])),
                ("app/charts/lib/Chart.yaml", &chart_yaml("lib", &[])),
                ("lib/Chart.yaml", &chart_yaml("lib", &[("app", "file://../app")])),
                ("lib/templates/l.yaml", "l: 1\n"),
            ],
        );
        let chart = read_chart(&repo.join("app"), Some(repo)).expect("reads");
        assert_eq!(paths(&chart), ["Chart.yaml", "charts/lib/Chart.yaml"], "charts/ already holds `lib`");
        std::fs::remove_dir_all(repo.join("app/charts")).expect("rm");
        let p = read_chart(&repo.join("app"), Some(repo)).err().expect("a cycle");
        assert!(p.message.contains("cycle") && p.file == "../lib/Chart.yaml", "{p:?}");
        write(repo, &[("lib/Chart.yaml", &chart_yaml("lib", &[])), ("secret.txt", "hunter2\n")]);
        std::os::unix::fs::symlink("../../secret.txt", repo.join("lib/templates/s.yaml")).expect("symlink");
        let chart = read_chart(&repo.join("app"), Some(repo)).expect("reads");
        assert!(!paths(&chart).iter().any(|p| p.ends_with("s.yaml")), "{:?}", paths(&chart));
        assert_eq!(chart.problems.len(), 1);
        assert_eq!(chart.problems[0].file, "../lib/templates/s.yaml");
        assert!(chart.problems[0].message.contains("link out of the chart"));
    }

    #[test]
    fn chart_names_become_valid_release_names() {
        assert_eq!(release_from_chart_name("shop"), "shop");
        assert_eq!(release_from_chart_name("My_Chart"), "my-chart");
        let hostile = release_from_chart_name("--post-renderer=/bin/sh");
        assert!(crate::cmdline::release_name(&hostile).is_ok() && !hostile.starts_with('-'), "{hostile}");
        assert_eq!(release_from_chart_name("---"), "release");
        assert_eq!(release_from_chart_name(&"a".repeat(80)).len(), 53);
    }

    #[test]
    fn errors_are_placed() {
        let copy = Path::new("/tmp/sandbox/chart");
        let dir = Path::new("/nonexistent");
        let e =
            parse_error("Error: execution error at (shop/templates/deployment.yaml:7:26): db is required\n", copy, dir);
        assert_eq!((e.file.as_str(), e.pos), ("templates/deployment.yaml", Pos { line: 7, col: 26 }));
        let e = parse_error("Error: parse error at (shop/templates/x.yaml:3): unclosed action\n", copy, dir);
        assert_eq!((e.file.as_str(), e.pos.line), ("templates/x.yaml", 3));
        let e = parse_error(
            "Error: template: shop/charts/sub/templates/d.yaml:12:20: executing \"shop/charts/sub/templates/d.yaml\" at <.Values.a.b>: nil pointer\n",
            copy,
            dir,
        );
        assert_eq!((e.file.as_str(), e.pos), ("charts/sub/templates/d.yaml", Pos { line: 12, col: 20 }));
        let e = parse_error(
            "Error: YAML parse error on shop/templates/x.yaml: error converting YAML to JSON: yaml: line 5: bad\n",
            copy,
            dir,
        );
        assert_eq!((e.file.as_str(), e.pos.line), ("templates/x.yaml", 1));
        assert!(e.message.contains("rendered output"));
        let e = parse_error(
            "Error: An error occurred while checking for chart dependencies. You may need to run `helm dependency build` to fetch missing dependencies: found in Chart.yaml, but missing in charts/ directory: redis\n",
            copy,
            dir,
        );
        assert_eq!(e.file, "Chart.yaml");
        assert!(e.message.contains("redis") && e.message.contains("vendor"), "{}", e.message);
        let e = parse_error("Error: something at /tmp/sandbox/chart/values.yaml went wrong\n", copy, dir);
        assert!(!e.message.contains("/tmp/sandbox"), "sandbox paths are not shown: {}", e.message);
    }
}
