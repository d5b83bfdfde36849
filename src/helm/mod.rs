//! Helm charts: what to render (releases × environments), rendering with the real `helm` in a
//! sandbox, a content-addressed render cache, splitting the output by template, and turning Helm's
//! errors into positions in the chart.

pub mod binary;
pub mod check;
mod file_errors;
pub mod sourcemap;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::{Config, HelmRelease};
use crate::yaml::{self, Node, Pos};
pub use binary::Helm;

/// One `helm template` invocation: a chart, a release, maybe an environment.
#[derive(Debug, Clone)]
pub struct RenderUnit {
    /// The chart directory on disk.
    pub chart_dir: PathBuf,
    /// The chart directory as reports show it (`charts/shop`).
    pub chart_display: String,
    pub release: String,
    pub namespace: String,
    pub environment: Option<String>,
    /// Values files relative to the chart, in the order Helm applies them (after `values.yaml`).
    pub values: Vec<String>,
    /// `--set` overrides, in order.
    pub set: Vec<(String, String)>,
    pub kubernetes_version: (u32, u32),
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

/// The render units of a chart: the releases `.kpath.yml` declares for it (once per environment),
/// or, without any, the chart once with its own values, release name = chart name.
pub fn units(chart_dir: &Path, chart_display: &str, config: &Config) -> Vec<RenderUnit> {
    let chart_name = release_from_chart_name(&chart_name(chart_dir).unwrap_or_else(|| {
        chart_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "chart".into())
    }));
    let canonical = std::fs::canonicalize(chart_dir).ok();
    let declared: Vec<&HelmRelease> = config
        .helm
        .releases
        .iter()
        .filter(|r| {
            let path = config.base_dir.as_deref().unwrap_or(Path::new(".")).join(&r.chart);
            canonical.is_some() && std::fs::canonicalize(path).ok() == canonical
        })
        .collect();
    let default_namespace = config.namespace.clone().unwrap_or_else(|| "default".to_string());
    let base = |r: Option<&HelmRelease>| RenderUnit {
        chart_dir: chart_dir.to_path_buf(),
        chart_display: chart_display.to_string(),
        release: r.and_then(|r| r.name.clone()).unwrap_or_else(|| chart_name.clone()),
        namespace: r.and_then(|r| r.namespace.clone()).unwrap_or_else(|| default_namespace.clone()),
        environment: None,
        values: r.map(|r| r.values.clone()).unwrap_or_default(),
        set: r.map(|r| r.set.clone()).unwrap_or_default(),
        kubernetes_version: r.and_then(|r| r.kubernetes_version).unwrap_or(config.kubernetes_version),
    };
    if declared.is_empty() {
        return vec![base(None)];
    }
    let mut out = Vec::new();
    for release in declared {
        if release.environments.is_empty() {
            out.push(base(Some(release)));
            continue;
        }
        for env in &release.environments {
            let mut unit = base(Some(release));
            unit.environment = Some(env.name.clone());
            unit.values.extend(env.values.iter().cloned());
            unit.set.extend(env.set.iter().cloned());
            if let Some(ns) = &env.namespace {
                unit.namespace = ns.clone();
            }
            out.push(unit);
        }
    }
    out
}

fn chart_name(dir: &Path) -> Option<String> {
    let text = read_chart_text(&dir.join("Chart.yaml"))?;
    let root = yaml::parse_single(&text).ok()??;
    root.get("name").and_then(Node::as_text).map(str::to_string)
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
        let by_memory = self.memory_total / self.memory_per_render.max(1);
        usize::try_from(by_memory).unwrap_or(usize::MAX).min(self.concurrency).max(1)
    }
}

/// Renders a unit: from the cache when the chart, values, options and helm version are unchanged.
pub fn render(helm: &Helm, unit: &RenderUnit, limits: &Limits) -> Result<Rendered, RenderProblem> {
    let chart = read_chart(&unit.chart_dir)?;
    let key = cache_key(helm, unit, &chart);
    if let Some(text) = cache_get(&key, limits.cache_dir.as_deref()) {
        return Ok(Rendered { docs: split_output(&text), problems: chart.problems });
    }
    let _permit = Permit::acquire(limits.slots());
    let sandbox = binary::Sandbox::new().map_err(|e| at_chart(format!("cannot create a temporary directory: {e}")))?;
    let chart_copy = sandbox.path().join("chart");
    write_chart(&chart, &chart_copy).map_err(|e| at_chart(format!("cannot copy the chart for rendering: {e}")))?;
    let args = template_args(unit, &chart, &chart_copy)?;
    let output = binary::run(&helm.path, &args, &sandbox, &limits.run_limits())
        .map_err(|e| at_chart(format!("`helm template` {e}")))?;
    if !output.success {
        return Err(parse_error(&output.stderr, &chart_copy, &unit.chart_dir));
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    cache_put(&key, &text, limits.cache_dir.as_deref());
    Ok(Rendered { docs: split_output(&text), problems: chart.problems })
}

/// The arguments of `helm template` for a unit. Every value that came from the repository is checked
/// again here (whatever built the unit), passed as `--flag=value` in one argument, and the two
/// positionals come after `--`: nothing a repository writes can be read as an option of Helm's, such as
/// `--post-renderer`, which would run a program.
fn template_args(unit: &RenderUnit, chart: &ChartFiles, chart_copy: &Path) -> Result<Vec<String>, RenderProblem> {
    use crate::cmdline::{self, flag};
    let bad = |what: &str, e: cmdline::Rejected| at_chart(format!("not rendered: {what}: {e}"));
    cmdline::release_name(&unit.release).map_err(|e| bad("release", e))?;
    cmdline::namespace(&unit.namespace).map_err(|e| bad("namespace", e))?;
    let (major, minor) = unit.kubernetes_version;
    let version = cmdline::kubernetes_version(&format!("{major}.{minor}")).map_err(|e| bad("kubernetesVersion", e))?;
    let mut args: Vec<String> = vec![
        "template".into(),
        flag("namespace", &unit.namespace),
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
    for (key, value) in &unit.set {
        cmdline::set_key(key).map_err(|e| bad("set", e))?;
        let value = cmdline::set_value(value).map_err(|e| bad("set", e))?;
        args.push(flag("set", &format!("{key}={value}")));
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

/// Bounds how many `helm` processes run at once.
struct Permit;

static RUNNING: OnceLock<(Mutex<usize>, Condvar)> = OnceLock::new();

impl Permit {
    fn acquire(limit: usize) -> Permit {
        let (lock, cv) = RUNNING.get_or_init(|| (Mutex::new(0), Condvar::new()));
        let mut running = lock.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= limit {
            running = cv.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((lock, cv)) = RUNNING.get() {
            let mut running = lock.lock().unwrap_or_else(|e| e.into_inner());
            *running = running.saturating_sub(1);
            cv.notify_one();
        }
    }
}

/// A chart read into memory: its files (relative path, bytes), and the symlinks that were refused.
struct ChartFiles {
    files: Vec<(String, Vec<u8>)>,
    problems: Vec<RenderProblem>,
}

/// Reads every file of the chart, each at most [`MAX_CHART_FILE_BYTES`] and all together at most
/// [`MAX_CHART_BYTES`] (checked before reading: past either, the chart is not rendered and the
/// problem names the file). Symlinks are followed only when they resolve inside the chart:
/// a link out of it (to `/etc/passwd`, to another chart, to the CI runner's secrets) is refused and
/// reported, and the chart renders without it.
fn read_chart(dir: &Path) -> Result<ChartFiles, RenderProblem> {
    let root = std::fs::canonicalize(dir).map_err(|e| at_chart(format!("cannot read the chart: {e}")))?;
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut total: u64 = 0;
    let mut walker = walkdir::WalkDir::new(&root).follow_links(false).sort_by_file_name().into_iter();
    while let Some(entry) = walker.next() {
        let Ok(entry) = entry else { continue };
        let rel = entry.path().strip_prefix(&root).unwrap_or(entry.path()).to_string_lossy().replace('\\', "/");
        if entry.depth() > 0 && entry.file_type().is_dir() && entry.file_name() == ".git" {
            walker.skip_current_dir();
            continue;
        }
        let real = if entry.path_is_symlink() {
            match std::fs::canonicalize(entry.path()) {
                Ok(target) if target.starts_with(&root) && target.is_file() => target,
                Ok(target) => {
                    let why = if target.starts_with(&root) { "a directory link" } else { "a link out of the chart" };
                    problems.push(RenderProblem {
                        file: rel.clone(),
                        pos: Pos { line: 1, col: 1 },
                        message: format!(
                            "`{rel}` is {why}; kpath does not follow it, and rendered the chart without it"
                        ),
                    });
                    continue;
                }
                Err(_) => {
                    problems.push(RenderProblem {
                        file: rel.clone(),
                        pos: Pos { line: 1, col: 1 },
                        message: format!("`{rel}` is a broken symlink; the chart was rendered without it"),
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
        let size = std::fs::metadata(&real).map_err(|e| at_chart(format!("cannot read `{rel}`: {e}")))?.len();
        total = total.saturating_add(size);
        let over = |message: String| RenderProblem { file: rel.clone(), pos: Pos { line: 1, col: 1 }, message };
        if size > MAX_CHART_FILE_BYTES {
            return Err(over(format!(
                "`{rel}` is {}, over kpath's {} limit for a file of a chart; the chart was not rendered",
                mebibytes(size),
                mebibytes(MAX_CHART_FILE_BYTES)
            )));
        }
        if total > MAX_CHART_BYTES {
            return Err(over(format!(
                "the chart's files pass kpath's {} limit for a whole chart at `{rel}`; the chart was not rendered",
                mebibytes(MAX_CHART_BYTES)
            )));
        }
        let bytes = crate::loader::read_bounded(&real, MAX_CHART_FILE_BYTES)
            .map_err(|e| over(format!("cannot read `{rel}`: {e}")))?;
        files.push((rel, bytes));
    }
    Ok(ChartFiles { files, problems })
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
const CACHE_FORMAT: &str = "kpath-render-1";

fn cache_key(helm: &Helm, unit: &RenderUnit, chart: &ChartFiles) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(CACHE_FORMAT.as_bytes());
    field(helm.version.as_bytes());
    field(unit.release.as_bytes());
    field(unit.namespace.as_bytes());
    field(format!("{}.{}", unit.kubernetes_version.0, unit.kubernetes_version.1).as_bytes());
    for v in &unit.values {
        field(v.as_bytes());
    }
    for (k, v) in &unit.set {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    for (rel, bytes) in &chart.files {
        field(rel.as_bytes());
        field(bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Renders kept in memory, up to this many bytes in all; the disk cache has no such bound.
const MEMORY_CACHE_BYTES: usize = 256 << 20;

#[derive(Default)]
struct MemoryCache {
    renders: HashMap<String, Arc<str>>,
    bytes: usize,
}

static MEMORY: OnceLock<Mutex<MemoryCache>> = OnceLock::new();

fn cache_get(key: &str, dir: Option<&Path>) -> Option<String> {
    let memory = MEMORY.get_or_init(Mutex::default);
    if let Some(text) = memory.lock().ok()?.renders.get(key) {
        return Some(text.to_string());
    }
    let text = std::fs::read_to_string(dir?.join(format!("{key}.yaml"))).ok()?;
    remember(key, &text);
    Some(text)
}

fn remember(key: &str, text: &str) {
    let memory = MEMORY.get_or_init(Mutex::default);
    let Ok(mut cache) = memory.lock() else { return };
    if cache.bytes + text.len() > MEMORY_CACHE_BYTES {
        cache.renders.clear();
        cache.bytes = 0;
    }
    cache.bytes += text.len();
    cache.renders.insert(key.to_string(), Arc::from(text));
}

fn cache_put(key: &str, text: &str, dir: Option<&Path>) {
    remember(key, text);
    let Some(dir) = dir else { return };
    // Write-then-rename: a reader never sees half a render, whatever runs in parallel.
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else { return };
    if std::io::Write::write_all(&mut tmp, text.as_bytes()).is_ok() {
        let _ = tmp.persist(dir.join(format!("{key}.yaml")));
    }
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
            docs.push(RenderedDoc { template, index: *index, text: body });
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
        let first = names.split(',').next().unwrap_or("").trim();
        let pos = dependency_line(chart_dir, first).unwrap_or(Pos { line: 1, col: 1 });
        return RenderProblem {
            file: "Chart.yaml".into(),
            pos,
            message: format!(
                "{message}: vendor the dependency (`helm dependency build` and commit `charts/`); kpath renders offline and never downloads charts"
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
            namespace: "shop".into(),
            environment: None,
            values: vec!["values-prod.yaml".into()],
            set: vec![("image.tag".into(), "1.2".into())],
            kubernetes_version: (1, 30),
        }
    }

    fn chart() -> ChartFiles {
        ChartFiles {
            files: vec![("Chart.yaml".into(), Vec::new()), ("values-prod.yaml".into(), Vec::new())],
            problems: Vec::new(),
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
            ("namespace", |u, v| u.namespace = v.into()),
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
