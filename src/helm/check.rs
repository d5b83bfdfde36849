//! Helm as a renderer (`crate::render::Renderer`): a chart's units (releases × environments from
//! `.kpath.yml`, or the chart once), each rendered with the real `helm`, and a source map from rendered
//! routes to the values and template lines a person edits.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::sourcemap::{self, LocationKind, SourceLocation, Template, ValuesFile};
use super::{Helm, Limits, RenderUnit};
use crate::config::{Config, HelmRelease};
use crate::finding::Location;
use crate::redact::SecretSet;
use crate::render::{self, Discovery, Namespace, Output, Problem, RenderCx, Renderer, Tree, Unit};
use crate::yaml::{self, Node, Route};

/// The Helm renderer. The binary is looked for once, when the first chart is rendered.
pub struct HelmRenderer {
    binary: Option<PathBuf>,
    found: OnceLock<Result<Helm, String>>,
}

impl HelmRenderer {
    /// A renderer using `binary` (`--helm`), else `$KPATH_HELM`, else `helm` on PATH.
    pub fn new(binary: Option<PathBuf>) -> HelmRenderer {
        HelmRenderer { binary, found: OnceLock::new() }
    }

    fn helm(&self) -> Result<&Helm, String> {
        self.found
            .get_or_init(|| super::binary::find(self.binary.as_deref()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// What a Helm unit renders: one release of a chart in one environment.
#[derive(Debug, Clone)]
struct Release {
    release: String,
    /// `None`: decided at install.
    namespace: Option<String>,
    values: Vec<String>,
    set: Vec<(String, String)>,
    /// Where each `set` entry is written: (key, `.kpath.yml` relative to the tree, line).
    set_at: Vec<(String, String, u32)>,
    kubernetes_version: (u32, u32),
}

impl Renderer for HelmRenderer {
    fn name(&self) -> &'static str {
        "helm"
    }

    fn discover(&self, tree: &dyn Tree, config: &Config) -> Discovery {
        let mut charts: Vec<&str> = tree
            .files()
            .iter()
            .filter_map(|f| if f == "Chart.yaml" { Some("") } else { f.strip_suffix("/Chart.yaml") })
            .collect();
        charts.sort_by_key(|d| d.len());
        // Outermost charts only: a chart under another's directory is its subchart.
        let mut outer: Vec<&str> = Vec::new();
        for dir in charts {
            if !outer.iter().any(|o| o.is_empty() || dir.starts_with(&format!("{o}/"))) {
                outer.push(dir);
            }
        }
        let mut out = Discovery::default();
        for root in outer {
            let chart_yaml = render::join(root, "Chart.yaml");
            let name = tree
                .read(&chart_yaml, super::MAX_CHART_FILE_BYTES)
                .and_then(|text| yaml::parse_single(&text).ok().flatten())
                .and_then(|r| r.get("name").and_then(Node::as_text).map(str::to_string))
                .unwrap_or_else(|| root.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("chart").to_string());
            let chart_name = super::release_from_chart_name(&name);
            // `.kpath.yml` paths (`./charts/shop/`) compared with tree paths, both resolved.
            let in_repo = render::resolve(tree.prefix(), root);
            let declared: Vec<&HelmRelease> = config
                .helm
                .releases
                .iter()
                .filter(|r| in_repo.is_some() && render::resolve("", &r.chart) == in_repo)
                .collect();
            let mut inputs: BTreeSet<String> =
                BTreeSet::from([if root.is_empty() { String::new() } else { format!("{root}/") }]);
            // In-repository `file://` dependencies are rendered with the chart: a change to them affects it.
            let chart_text = tree.read(&chart_yaml, super::MAX_CHART_FILE_BYTES).unwrap_or_default();
            for (dependency, _) in super::file_dependencies(&chart_text) {
                // One outside the tree is refused when the chart renders.
                if let Some(dir) = render::resolve(root, &dependency).filter(|d| !d.is_empty()) {
                    inputs.insert(format!("{dir}/"));
                }
            }
            let config_file = config_in_tree(tree, config);
            let set_at = |set: &[(String, String)], lines: &[u32]| -> Vec<(String, String, u32)> {
                let Some(file) = &config_file else { return Vec::new() };
                set.iter().zip(lines).map(|((key, _), line)| (key.clone(), file.clone(), *line)).collect()
            };
            let base = |r: Option<&HelmRelease>| Release {
                release: r.and_then(|r| r.name.clone()).unwrap_or_else(|| chart_name.clone()),
                namespace: r.and_then(|r| r.namespace.clone()).or_else(|| config.namespace.clone()),
                values: r.map(|r| r.values.clone()).unwrap_or_default(),
                set: r.map(|r| r.set.clone()).unwrap_or_default(),
                set_at: r.map(|r| set_at(&r.set, &r.set_lines)).unwrap_or_default(),
                kubernetes_version: r.and_then(|r| r.kubernetes_version).unwrap_or(config.kubernetes_version),
            };
            let unit = |release: Release, environment: Option<String>| Unit {
                renderer: "helm",
                root: root.to_string(),
                file: chart_yaml.clone(),
                environment,
                inputs: inputs.clone(),
                detail: Arc::new(release),
                declared: false,
            };
            if declared.is_empty() {
                out.units.push(unit(base(None), None));
                continue;
            }
            for r in declared {
                if r.environments.is_empty() {
                    out.units.push(unit(base(Some(r)), None));
                    continue;
                }
                for env in &r.environments {
                    let mut release = base(Some(r));
                    release.values.extend(env.values.iter().cloned());
                    release.set.extend(env.set.iter().cloned());
                    release.set_at.extend(set_at(&env.set, &env.set_lines));
                    if let Some(ns) = &env.namespace {
                        release.namespace = Some(ns.clone());
                    }
                    out.units.push(unit(release, Some(env.name.clone())));
                }
            }
        }
        out
    }

    fn ready(&self) -> Result<(), String> {
        self.helm().map(|_| ())
    }

    fn render(&self, unit: &Unit, cx: &RenderCx<'_>) -> Result<Output, Problem> {
        let Some(release) = unit.detail.downcast_ref::<Release>() else {
            return Err(Problem::at(unit.file.clone(), 1, "not a Helm unit"));
        };
        let config = cx.config;
        let helm_unit = RenderUnit {
            chart_dir: cx.dir.join(&unit.root),
            chart_display: unit.root.clone(),
            release: release.release.clone(),
            namespace: release.namespace.clone(),
            environment: unit.environment.clone(),
            values: release.values.clone(),
            set: release.set.clone(),
            extra_values: Vec::new(),
            set_string: Vec::new(),
            set_at: release.set_at.clone(),
            kubernetes_version: release.kubernetes_version,
            // `file://` dependencies are read inside the repository (the configuration's directory, else the git
            // work tree), not only inside the checked directory.
            tree_root: super::tree_root(&cx.dir.join(&unit.root), config).or_else(|| Some(cx.dir.to_path_buf())),
        };
        self.render_release(helm_unit, &unit.root, cx)
    }
}

impl HelmRenderer {
    /// Renders a release built by another renderer (an Argo CD Application's or a Flux HelmRelease's chart,
    /// values and overrides): `root` is the chart's directory as the tree shows it, problems are placed in it.
    pub fn render_release(&self, helm_unit: RenderUnit, root: &str, cx: &RenderCx<'_>) -> Result<Output, Problem> {
        let at_chart = |file: &str, pos: crate::yaml::Pos, message: String| Problem {
            file: render::join(root, file),
            pos,
            message,
        };
        let helm = self.helm().map_err(|e| Problem::at(render::join(root, "Chart.yaml"), 1, e))?;
        let config = cx.config;
        let limits = Limits {
            timeout: config.helm.timeout,
            max_output: config.helm.max_output,
            concurrency: config.helm.concurrency,
            cache_dir: config.helm.cache_dir.clone(),
            memory_per_render: config.helm.memory_per_render,
            memory_total: config.helm.memory_total,
        };
        let mut output = Output {
            namespace: helm_unit.namespace.clone().map_or(Namespace::AtInstall, Namespace::Known),
            kubernetes_version: Some(helm_unit.kubernetes_version),
            ..Output::default()
        };
        // Before rendering: a render that fails may quote values in its error (`required`, `fail`); the caller
        // redacts with these secrets whatever happens.
        collect_values_secrets(&helm_unit, &mut output.secrets);
        let UnitRender { docs, problems, namespace_at_install } = match render_unit(helm, &helm_unit, &limits) {
            Ok(rendered) => rendered,
            Err(problem) => {
                let mut p = at_chart(&problem.file, problem.pos, problem.message);
                // The secrets travel in the message's redaction: a failure still reports what it collected.
                p.message = output.secrets.redact(&p.message).into_owned();
                return Err(p);
            }
        };
        if namespace_at_install {
            output.namespace = Namespace::AtInstall;
        }
        output.problems = problems.into_iter().map(|p| at_chart(&p.file, p.pos, p.message)).collect();
        output.skipped = cluster_lookups(&helm_unit.chart_dir)
            .into_iter()
            .map(|(rel, line)| {
                at_chart(
                    &rel,
                    crate::yaml::Pos { line, col: 1 },
                    "`lookup` reads the live cluster; offline it finds nothing, so what this template renders from \
                     it was checked without the cluster's data"
                        .to_string(),
                )
            })
            .collect();
        let mut commented: HashSet<String> = HashSet::new();
        for UnitDoc { pseudo, index, text, generated, source } in docs {
            if commented.insert(source.template_display.clone()) {
                output.comments.push((source.template_display.clone(), source.template_text.clone()));
                for (path, values_text, _) in source.values.iter() {
                    if commented.insert(path.clone()) {
                        output.comments.push((path.clone(), Arc::from(values_text.as_str())));
                    }
                }
            }
            output.docs.push(render::Doc { name: pseudo, index, text, generated, source: Arc::new(source) });
        }
        Ok(output)
    }
}

/// `.kpath.yml` as a path relative to the tree (`../.kpath.yml` when the checked directory is below it), to
/// place findings on its `set` lines; `None` without a configuration file.
fn config_in_tree(tree: &dyn Tree, config: &Config) -> Option<String> {
    let name = Path::new(config.source.as_deref()?).file_name()?.to_str()?;
    let prefix: Vec<&str> = tree.prefix().split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if prefix.contains(&"..") {
        return None;
    }
    Some(format!("{}{name}", "../".repeat(prefix.len())))
}

/// Templates of a chart (and its unpacked subcharts) that call `lookup`: (path relative to the chart, the
/// first line that calls it). Helm renders `lookup` as empty offline.
fn cluster_lookups(chart_dir: &Path) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let templates = walkdir::WalkDir::new(chart_dir)
        .follow_links(false)
        .max_depth(8)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().components().any(|c| c.as_os_str() == "templates"));
    for entry in templates {
        let Some(text) = super::read_chart_text(entry.path()) else { continue };
        if !text.contains("lookup") {
            continue;
        }
        let calls = |line: &str| {
            line.match_indices("lookup").any(|(i, _)| {
                let before = line[..i].chars().next_back();
                let after = line[i + "lookup".len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '$')
                    && after.is_some_and(char::is_whitespace)
                    && line[..i].contains("{{")
            })
        };
        if let Some(n) = text.lines().position(calls) {
            let rel = entry.path().strip_prefix(chart_dir).unwrap_or(entry.path()).to_string_lossy().replace('\\', "/");
            out.push((rel, u32::try_from(n + 1).unwrap_or(u32::MAX)));
        }
    }
    out
}

/// Secrets of a render unit's values: sensitive settings of the chart's (and its subcharts') `values.yaml`,
/// of the unit's values files and of its `--set` overrides.
fn collect_values_secrets(unit: &RenderUnit, secrets: &mut SecretSet) {
    let subcharts = walkdir::WalkDir::new(&unit.chart_dir)
        .follow_links(false)
        .max_depth(8)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && matches!(e.file_name().to_str(), Some("values.yaml" | "values.yml")))
        .map(|e| e.into_path());
    for extra in &unit.extra_values {
        let (docs, broken) = yaml::parse_stream(&extra.text);
        for root in docs.iter().filter_map(|d| d.root.as_ref()) {
            crate::redact::collect_tree(root, secrets);
        }
        if !broken.is_empty() {
            crate::redact::collect_loose(&extra.text, secrets);
        }
    }
    for (key, value) in &unit.set_string {
        let last = key.rsplit('.').next().unwrap_or(key);
        if crate::secrets::is_sensitive_assignment(last, value) {
            secrets.insert(value);
        }
    }
    let files: Vec<PathBuf> = subcharts.chain(unit.values.iter().map(|v| unit.chart_dir.join(v))).collect();
    let mut scanned: HashSet<PathBuf> = HashSet::new();
    for path in files {
        if !scanned.insert(path.clone()) {
            continue;
        }
        let Some(text) = super::read_chart_text(&path) else { continue };
        let (docs, broken) = yaml::parse_stream(&text);
        for root in docs.iter().filter_map(|d| d.root.as_ref()) {
            crate::redact::collect_tree(root, secrets);
        }
        if !broken.is_empty() {
            crate::redact::collect_loose(&text, secrets);
        }
    }
    for (key, value) in &unit.set {
        let last = key.rsplit('.').next().unwrap_or(key);
        if crate::secrets::is_sensitive_assignment(last, value) {
            secrets.insert(value);
        }
        for credential in crate::secrets::credential_values(value) {
            secrets.insert(credential);
        }
    }
}

/// Where a rendered template's documents came from: enough to map a route back to source lines.
#[derive(Debug, Clone)]
pub struct RenderedSource {
    /// The template as reports show it (`charts/shop/templates/deployment.yaml`).
    pub template_display: String,
    pub template_text: Arc<str>,
    /// Values files that reach this template, increasing precedence: (display path, text, prefix).
    pub values: Arc<Vec<(String, String, Vec<String>)>>,
    /// Their trees, parsed once when a finding first needs them and shared by every template that
    /// reaches the same values files.
    pub parsed_values: Arc<std::sync::OnceLock<Vec<Option<crate::yaml::Node>>>>,
}

/// Values files that reach a template, in increasing precedence. For a subchart template
/// (`charts/redis/templates/…`) the subchart's own `values.yaml` comes first, then the parent's files
/// with the subchart's name as prefix.
pub fn values_for(unit: &RenderUnit, template: &str, deps: &[(String, String)]) -> Vec<(String, String, Vec<String>)> {
    // charts/a/charts/b/templates/x.yaml → subchart chain [a, b].
    let mut chain: Vec<&str> = Vec::new();
    let mut rest = template;
    while let Some(after) = rest.strip_prefix("charts/") {
        let Some((name, tail)) = after.split_once('/') else { break };
        chain.push(name);
        rest = tail;
    }
    let mut out = Vec::new();
    let mut add = |rel: String, prefix: Vec<String>| {
        let rel = from_dependency(&rel, deps);
        if let Some(text) = super::read_chart_text(&unit.chart_dir.join(&rel)) {
            out.push((shown(&unit.chart_display, &rel), text, prefix));
        }
    };
    // Innermost chart first (lowest precedence): its own values.yaml, no prefix. Each enclosing
    // chart's values.yaml reaches it under the names of the charts below that one.
    for depth in (1..=chain.len()).rev() {
        let dir: String = chain[..depth].iter().map(|c| format!("charts/{c}/")).collect();
        add(format!("{dir}values.yaml"), chain[depth..].iter().map(|c| c.to_string()).collect());
    }
    // The chart's values.yaml, then the release's and environment's files: under the whole chain.
    let full: Vec<String> = chain.iter().map(|c| c.to_string()).collect();
    add("values.yaml".to_string(), full.clone());
    for rel in &unit.values {
        add(rel.clone(), full.clone());
    }
    for extra in unit.extra_values.iter().filter(|e| e.aligned) {
        out.push((extra.display.clone(), extra.text.clone(), full.clone()));
    }
    // Overrides last: they win over every file, and a finding on a value one sets is placed on its line.
    for (key, file, line) in &unit.set_at {
        // The value Helm takes for the key: `--set-string` is applied after `--set`, and the last one wins.
        let value = unit.set_string.iter().rev().chain(unit.set.iter().rev()).find(|(k, _)| k == key);
        if let Some(text) = set_placement(key, value.map_or("", |(_, v)| v.as_str()), *line) {
            out.push((file.clone(), text, full.clone()));
        }
    }
    out
}

/// A values text that has `key` (`image.tag`) set to `value` on line `line` and nothing else, to place
/// findings on the line that sets it with `--set`/`parameters`: only for placement, never given to Helm (the
/// value is kept as text, as Helm prints it, so a finding about part of a value can tell it). `None` for keys
/// with list indices or escapes, which are not placed.
fn set_placement(key: &str, value: &str, line: u32) -> Option<String> {
    if key.is_empty() || key.contains(['[', ']', '\\']) || line == 0 {
        return None;
    }
    let mut flow = serde_json::Value::String(value.to_string()).to_string();
    for part in key.rsplit('.') {
        if part.is_empty() {
            return None;
        }
        flow = format!("{{{}: {flow}}}", serde_json::Value::String(part.to_string()));
    }
    Some(format!("{}{flow}\n", "\n".repeat(line as usize - 1)))
}

impl render::SourceMap for RenderedSource {
    /// The values line, then the template line; the template file itself when no key matched.
    fn locations(&self, index: usize, route: Option<&Route>, part: Option<&str>) -> Vec<Location> {
        let mut locations: Vec<Location> = Vec::new();
        if let Some(route) = route {
            let values: Vec<ValuesFile<'_>> = self
                .values
                .iter()
                .map(|(path, text, prefix)| ValuesFile { path, text, prefix: prefix.clone() })
                .collect();
            let template = Template { path: &self.template_display, text: &self.template_text };
            for SourceLocation { file, line, column, kind } in
                sourcemap::map_route_parsed(&template, &values, &self.parsed_values, index, route, part)
            {
                let kind = match kind {
                    LocationKind::Values => "values",
                    LocationKind::Template => "template",
                };
                locations.push(Location { file, line, column, kind });
            }
        }
        if !locations.iter().any(|l| l.kind == "template") {
            // No key matched: the template file itself is still where the object comes from.
            locations.push(Location { file: self.template_display.clone(), line: 1, column: 1, kind: "template" });
        }
        locations
    }
}

/// One rendered document, ready to check.
pub struct UnitDoc {
    /// `helm://release[/env]/templates/…`: the name the document is checked under.
    pub pseudo: String,
    /// Index among the documents its template produced.
    pub index: usize,
    pub text: String,
    /// Routes whose values Helm generated at render time.
    pub generated: Vec<Route>,
    pub source: RenderedSource,
}

/// What rendering one unit produced.
pub struct UnitRender {
    pub docs: Vec<UnitDoc>,
    /// The release namespace is decided at install: objects without one take it.
    pub namespace_at_install: bool,
    /// Problems that did not stop the render.
    pub problems: Vec<super::RenderProblem>,
}

/// Renders one unit into documents that know where they came from.
pub fn render_unit(helm: &Helm, unit: &RenderUnit, limits: &Limits) -> Result<UnitRender, super::RenderProblem> {
    let rendered = super::render(helm, unit, limits)?;
    let mut docs = Vec::with_capacity(rendered.docs.len());
    let mut sources: HashMap<String, RenderedSource> = HashMap::new();
    // Templates of the same (sub)chart are reached by the same values files: read and parse them once
    // per chart, not once per template.
    type SharedValues =
        (Arc<Vec<(String, String, Vec<String>)>>, Arc<std::sync::OnceLock<Vec<Option<crate::yaml::Node>>>>);
    let mut by_chart: HashMap<String, SharedValues> = HashMap::new();
    for doc in rendered.docs {
        let pseudo = format!("{}{}", unit.rendered_prefix(), doc.template);
        let source = sources
            .entry(doc.template.clone())
            .or_insert_with(|| {
                let chart = doc.template.rsplit_once("templates/").map_or("", |(chart, _)| chart).to_string();
                let (values, parsed_values) = by_chart
                    .entry(chart)
                    .or_insert_with(|| {
                        (Arc::new(values_for(unit, &doc.template, &rendered.file_dependencies)), Arc::default())
                    })
                    .clone();
                let source_rel = from_dependency(&doc.template, &rendered.file_dependencies);
                RenderedSource {
                    template_display: shown(&unit.chart_display, &source_rel),
                    template_text: Arc::from(read_text(&unit.chart_dir.join(&source_rel)).as_str()),
                    values,
                    parsed_values,
                }
            })
            .clone();
        docs.push(UnitDoc { pseudo, index: doc.index, text: doc.text, generated: doc.generated, source });
    }
    Ok(UnitRender { docs, problems: rendered.problems, namespace_at_install: rendered.namespace_at_install })
}

/// A path inside the rendered chart, as a path relative to the chart directory: files of a `file://` dependency
/// (`charts/common/templates/x.yaml`) live where the dependency does (`../common/templates/x.yaml`).
/// A chart file as reports show it: the chart's directory joined with `rel` (`../common/…` for a dependency).
fn shown(chart_display: &str, rel: &str) -> String {
    render::resolve(chart_display, rel).unwrap_or_else(|| render::join(chart_display, rel))
}

fn from_dependency(rel: &str, deps: &[(String, String)]) -> String {
    for (inside, from) in deps {
        if let Some(rest) = rel.strip_prefix(inside.as_str()) {
            return format!("{from}{rest}");
        }
    }
    rel.to_string()
}

fn read_text(path: &Path) -> String {
    super::read_chart_text(path).unwrap_or_default()
}
