//! The Argo CD and Flux renderers: each declared deployment ([`Declared`]) is a render unit named by its
//! environment, whose sources are rendered by the Helm and Kustomize code the plain renderers use (with the
//! values, overrides and namespace the controller's object gives), or read as plain manifests.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::{Chart, Controller, Declared, DirectorySource, HelmSource, KustomizeSource, Settings, Source};
use crate::config::Config;
use crate::finding::Location;
use crate::helm::check::HelmRenderer;
use crate::helm::{ExtraValues, RenderUnit};
use crate::kustomize::{Kustomize, Overrides};
use crate::render::{Discovery, Doc, Namespace, Output, Problem, RenderCx, Renderer, SourceMap, Tree, Unit};
use crate::yaml::{self, Node, Route};

/// A manifest file larger than this is not read as a directory source's file.
const MAX_MANIFEST_BYTES: u64 = 8 << 20;

/// Finds the deployments one controller's objects declare in a tree.
pub type Finder = fn(&dyn Tree, &Settings, Option<&crate::helm::Helm>) -> (Vec<Declared>, Vec<Problem>, Vec<Problem>);

/// The renderer of one controller's deployments.
pub struct Deployments {
    controller: Controller,
    find: Finder,
    helm: HelmRenderer,
    kustomize: Kustomize,
    helm_binary: Option<PathBuf>,
    /// The pinned Helm, for what discovery evaluates with it (ApplicationSet Go templates).
    template_helm: OnceLock<Option<crate::helm::Helm>>,
}

impl Deployments {
    pub fn new(controller: Controller, find: Finder, config: &Config) -> Deployments {
        Deployments {
            controller,
            find,
            helm: HelmRenderer::new(config.helm.binary.clone()),
            kustomize: Kustomize::new(config.helm.kubectl.clone()),
            helm_binary: config.helm.binary.clone(),
            template_helm: OnceLock::new(),
        }
    }
}

/// What a unit of this renderer renders: the deployment, and the plain units of the roots it deploys.
struct Detail {
    declared: Declared,
    /// Kustomize units by root path (the tool's own discovery of each root the deployment builds).
    kustomize: HashMap<String, Unit>,
}

impl Renderer for Deployments {
    fn name(&self) -> &'static str {
        self.controller.name()
    }

    fn discover(&self, tree: &dyn Tree, config: &Config) -> Discovery {
        let helm = self.template_helm.get_or_init(|| crate::helm::binary::find(self.helm_binary.as_deref()).ok());
        let (declared, problems, skipped) = (self.find)(tree, &config.gitops, helm.as_ref());
        // A Kustomization's patch file holds a partial object (an overlay's values for a HelmRelease): it
        // declares nothing on its own.
        let patches = crate::kustomize::patch_files(tree);
        let declared: Vec<Declared> = declared.into_iter().filter(|d| !patches.contains(&d.at.file)).collect();
        let problems = problems.into_iter().filter(|p| !patches.contains(&p.file)).collect();
        let skipped = skipped.into_iter().filter(|p| !patches.contains(&p.file)).collect();
        let mut out = Discovery { problems, skipped, ..Discovery::default() };
        if declared.is_empty() {
            return out;
        }
        // One name declared in several places (`flux-system/apps` in each cluster's directory) is several
        // environments: each is told apart by the directory that declares it.
        let mut declared = declared;
        let mut counts: HashMap<String, usize> = HashMap::new();
        for d in &declared {
            *counts.entry(d.name.clone()).or_default() += 1;
        }
        for d in &mut declared {
            if counts.get(&d.name).is_some_and(|n| *n > 1) {
                let dir = d.at.file.rsplit_once('/').map_or(".", |(dir, _)| dir);
                d.name = format!("{} ({dir})", d.name);
            }
        }
        // The plain tools' units, to know what each deployed root reads.
        let charts = self.helm.discover(tree, config).units;
        let wanted: Vec<String> = declared
            .iter()
            .flat_map(|d| &d.sources)
            .filter_map(|s| match s {
                Source::Kustomize(k) if !k.generate => Some(k.path.clone()),
                _ => None,
            })
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect();
        let roots = crate::kustomize::units_at(tree, &wanted);
        for declared in declared {
            let mut inputs = declared.inputs.clone();
            let mut kustomize: HashMap<String, Unit> = HashMap::new();
            let mut root: Option<String> = None;
            for source in &declared.sources {
                match source {
                    Source::Helm(HelmSource { chart: Chart::Local { dir }, .. }) => {
                        match charts.iter().find(|u| u.root == *dir) {
                            Some(chart) => inputs.extend(chart.inputs.iter().cloned()),
                            None => {
                                inputs.insert(dir_input(dir));
                            }
                        }
                        root.get_or_insert_with(|| dir.clone());
                    }
                    Source::Kustomize(k) => {
                        let unit = match roots.iter().find(|u| u.root == k.path) {
                            Some(unit) if !k.generate => unit.clone(),
                            _ => crate::kustomize::generated_root(
                                &k.path,
                                manifests_under(tree, &k.path, true, None, None),
                                &declared.at.file,
                            ),
                        };
                        inputs.extend(unit.inputs.iter().cloned());
                        kustomize.insert(k.path.clone(), unit);
                        root.get_or_insert_with(|| k.path.clone());
                    }
                    Source::Directory(d) => {
                        if d.recurse {
                            inputs.insert(dir_input(&d.path));
                        } else {
                            inputs.extend(manifests_under(tree, &d.path, false, None, None));
                            // A file added to the directory is read too.
                            inputs.insert(dir_input(&d.path));
                        }
                        root.get_or_insert_with(|| d.path.clone());
                    }
                    Source::Helm(HelmSource { chart: Chart::Remote(_), .. }) | Source::Skipped { .. } => {}
                }
            }
            let root =
                root.unwrap_or_else(|| declared.at.file.rsplit_once('/').map_or(String::new(), |(d, _)| d.to_string()));
            out.units.push(Unit {
                renderer: self.controller.name(),
                root,
                file: declared.at.file.clone(),
                environment: Some(declared.name.clone()),
                inputs,
                detail: Arc::new(Detail { declared, kustomize }),
                declared: true,
            });
        }
        out
    }

    fn ready(&self) -> Result<(), String> {
        // Each source asks for its tool when it renders: a deployment of plain manifests needs none.
        Ok(())
    }

    fn render(&self, unit: &Unit, cx: &RenderCx<'_>) -> Result<Output, Problem> {
        let Some(detail) = unit.detail.downcast_ref::<Detail>() else {
            return Err(Problem::at(&unit.file, 1, "not a unit of this renderer"));
        };
        let declared = &detail.declared;
        let mut output = Output {
            namespace: declared.namespace.clone().map_or(Namespace::Unknown, Namespace::Known),
            kubernetes_version: Some(cx.config.kubernetes_version),
            ..Output::default()
        };
        for source in &declared.sources {
            let rendered = match source {
                Source::Helm(helm) => self.render_helm(declared, helm, cx),
                Source::Kustomize(k) => self.render_kustomize(declared, k, detail, cx),
                Source::Directory(d) => Ok(render_directory(d, cx)),
                Source::Skipped { at, reason } => {
                    output.skipped.push(Problem { file: at.file.clone(), pos: at.pos, message: reason.clone() });
                    continue;
                }
            };
            match rendered {
                Ok(part) => {
                    output.docs.extend(part.docs);
                    output.problems.extend(part.problems);
                    output.skipped.extend(part.skipped);
                    output.secrets.extend(&part.secrets);
                    output.comments.extend(part.comments);
                    if output.namespace == Namespace::Unknown {
                        output.namespace = part.namespace;
                    }
                }
                // One source that fails does not hide the others of a multi-source deployment.
                Err(problem) if declared.sources.len() > 1 => output.problems.push(problem),
                Err(problem) => return Err(problem),
            }
        }
        if !declared.relocate.is_empty() {
            let moves: Arc<HashMap<(String, u32), super::At>> = Arc::new(
                declared.relocate.iter().map(|(file, line, at)| ((file.clone(), *line), at.clone())).collect(),
            );
            for doc in &mut output.docs {
                doc.source = Arc::new(Relocated { inner: doc.source.clone(), moves: moves.clone() });
            }
        }
        Ok(output)
    }
}

/// Moves locations on lines whose value was written elsewhere ([`Declared::relocate`]) to that place.
struct Relocated {
    inner: Arc<dyn SourceMap>,
    moves: Arc<HashMap<(String, u32), super::At>>,
}

impl SourceMap for Relocated {
    fn locations(&self, index: usize, route: Option<&Route>, part: Option<&str>) -> Vec<Location> {
        let mut out = self.inner.locations(index, route, part);
        for location in &mut out {
            if let Some(at) = self.moves.get(&(location.file.clone(), location.line)) {
                location.file = at.file.clone();
                location.line = at.pos.line;
                location.column = at.pos.col;
            }
        }
        out
    }
}

impl Deployments {
    fn render_helm(&self, declared: &Declared, helm: &HelmSource, cx: &RenderCx<'_>) -> Result<Output, Problem> {
        let remote = matches!(helm.chart, Chart::Remote(_));
        let (chart_dir, display) = match &helm.chart {
            Chart::Local { dir } => (cx.dir.join(dir), dir.clone()),
            Chart::Remote(chart) => {
                let settings = super::remote::FetchSettings {
                    allowed: cx.config.gitops.allowed_chart_sources.clone(),
                    cache_dir: cx.config.helm.cache_dir.clone(),
                    credentials: super::remote::Credential::from_env().unwrap_or_default(),
                    ..super::remote::FetchSettings::default()
                };
                match super::remote::fetch(chart, &settings) {
                    Ok(dir) => (dir, remote_display(chart)),
                    Err(super::remote::FetchError::NotAllowed(reason)) => return Ok(not_checked(&helm.at, reason)),
                    Err(super::remote::FetchError::Failed(reason)) => {
                        return Err(Problem { file: helm.at.file.clone(), pos: helm.at.pos, message: reason });
                    }
                }
            }
        };
        if let Err(reason) = self.helm.ready() {
            return Ok(not_rendered(&helm.at, &reason));
        }
        let mut set = Vec::new();
        let mut set_string = Vec::new();
        let mut set_at = Vec::new();
        for s in &helm.set {
            if s.string { &mut set_string } else { &mut set }.push((s.key.clone(), s.value.clone()));
            set_at.push((s.key.clone(), s.at.file.clone(), s.at.pos.line));
        }
        let unit = RenderUnit {
            chart_dir,
            chart_display: display.clone(),
            release: helm.release.clone(),
            namespace: declared.namespace.clone(),
            environment: Some(declared.name.clone()),
            values: Vec::new(),
            set,
            extra_values: helm
                .values
                .iter()
                .map(|v| ExtraValues { display: v.file.clone(), text: values_text(v, cx), aligned: v.aligned })
                .collect(),
            set_string,
            set_at,
            kubernetes_version: cx.config.kubernetes_version,
            tree_root: Some(cx.dir.to_path_buf()),
        };
        let mut output = self.helm.render_release(unit, &display, cx)?;
        if remote {
            // A remote chart's templates are not files of the repository: what is not placed on a values line
            // is placed on the object that deploys the chart.
            for doc in &mut output.docs {
                doc.source =
                    Arc::new(Declaring { inner: doc.source.clone(), outside: display.clone(), at: helm.at.clone() });
            }
            output.comments.retain(|(file, _)| !file.starts_with(&display));
        }
        for values in &helm.values {
            output.comments.push((values.file.clone(), Arc::from(values_text(values, cx).as_str())));
        }
        if !helm.post_render.is_empty() {
            // Flux applies its post-renderers' patches to what Helm rendered, in order.
            let texts: Vec<String> = output.docs.iter().map(|d| d.text.clone()).collect();
            let patches: Vec<String> = helm.post_render.iter().map(|p| p.yaml.clone()).collect();
            match self.kustomize.patch_documents(&texts, &patches, cx) {
                Ok(patched) => {
                    let docs = std::mem::take(&mut output.docs);
                    output.docs = docs
                        .into_iter()
                        .zip(patched)
                        .filter_map(|(mut doc, text)| {
                            doc.text = text?;
                            Some(doc)
                        })
                        .collect();
                }
                Err(message) => {
                    let at = &helm.post_render[0].at;
                    return Err(Problem { file: at.file.clone(), pos: at.pos, message });
                }
            }
        }
        Ok(output)
    }

    fn render_kustomize(
        &self,
        declared: &Declared,
        k: &KustomizeSource,
        detail: &Detail,
        cx: &RenderCx<'_>,
    ) -> Result<Output, Problem> {
        if let Err(reason) = self.kustomize.ready() {
            return Ok(not_rendered(&k.at, &reason));
        }
        let Some(unit) = detail.kustomize.get(&k.path) else {
            return Err(Problem::at(&declared.at.file, declared.at.pos.line, format!("`{}` was not found", k.path)));
        };
        let post_build: Option<crate::kustomize::PostBuild> = k.substitute.clone().map(|vars| {
            Box::new(move |text: &str| super::flux::substitute(text, &vars)) as crate::kustomize::PostBuild
        });
        let overrides = Overrides {
            name_prefix: k.name_prefix.clone(),
            name_suffix: k.name_suffix.clone(),
            namespace: k.namespace.clone(),
            images: k.images.clone(),
            patches: k.patches.iter().map(|p| p.yaml.clone()).collect(),
            post_build,
        };
        self.kustomize.render_with(unit, cx, &overrides)
    }
}

/// A source whose tool is missing: a `render-skipped` notice, as for the plain renderers.
fn not_rendered(at: &super::At, reason: &str) -> Output {
    not_checked(at, format!("not rendered, so not checked: {reason}"))
}

fn not_checked(at: &super::At, message: String) -> Output {
    Output { skipped: vec![Problem { file: at.file.clone(), pos: at.pos, message }], ..Output::default() }
}

/// How a remote chart's files are shown: `CHART@VERSION from SOURCE/`, never a path of the repository.
fn remote_display(chart: &super::RemoteChart) -> String {
    let version = chart.version.as_deref().map_or(String::new(), |v| format!("@{v}"));
    format!("{}{version} from {}", chart.name, chart.repository.trim_end_matches('/'))
}

/// The source map of a chart from outside the repository: its own locations in the repository (values
/// lines), else the object that deploys it.
struct Declaring {
    inner: Arc<dyn SourceMap>,
    outside: String,
    at: super::At,
}

impl SourceMap for Declaring {
    fn locations(&self, index: usize, route: Option<&Route>, part: Option<&str>) -> Vec<Location> {
        let mut out: Vec<Location> = self
            .inner
            .locations(index, route, part)
            .into_iter()
            .filter(|l| !l.file.starts_with(&self.outside))
            .collect();
        out.push(Location {
            file: self.at.file.clone(),
            line: self.at.pos.line,
            column: self.at.pos.col,
            kind: "declared",
        });
        out
    }
}

/// A values input's text: as given, or (when discovery left it to the render) the file's.
fn values_text(values: &super::Values, cx: &RenderCx<'_>) -> String {
    if !values.text.is_empty() {
        return values.text.clone();
    }
    crate::loader::read_bounded(&cx.dir.join(&values.file), MAX_MANIFEST_BYTES)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn dir_input(dir: &str) -> String {
    if dir.is_empty() { String::new() } else { format!("{dir}/") }
}

/// The YAML and JSON files under `dir` (directly in it unless `recurse`), filtered by Argo CD's
/// `include`/`exclude` globs (matched against the path relative to `dir`, as Argo CD does).
fn manifests_under(
    tree: &dyn Tree,
    dir: &str,
    recurse: bool,
    include: Option<&str>,
    exclude: Option<&str>,
) -> Vec<String> {
    let glob = |pattern: Option<&str>| {
        pattern
            .and_then(|p| globset::GlobBuilder::new(p).literal_separator(false).build().ok())
            .map(|g| g.compile_matcher())
    };
    let (include, exclude) = (glob(include), glob(exclude));
    tree.under(dir)
        .filter(|f| {
            let rel = if dir.is_empty() { f.as_str() } else { &f[dir.len() + 1..] };
            let manifest = rel.ends_with(".yaml") || rel.ends_with(".yml") || rel.ends_with(".json");
            let file_name = rel.rsplit('/').next().unwrap_or(rel);
            manifest
                && (recurse || !rel.contains('/'))
                && !file_name.starts_with('.')
                && include.as_ref().is_none_or(|g| g.is_match(rel) || g.is_match(file_name))
                && !exclude.as_ref().is_some_and(|g| g.is_match(rel) || g.is_match(file_name))
        })
        .cloned()
        .collect()
}

/// A directory source: its manifests as they are written, each document checked where it is.
fn render_directory(d: &DirectorySource, cx: &RenderCx<'_>) -> Output {
    let mut output = Output::default();
    let files: Vec<String> = {
        let listed = crate::render::DirTree::new(cx.dir, list_files(cx.dir, &d.path), "");
        manifests_under(&listed, &d.path, d.recurse, d.include.as_deref(), d.exclude.as_deref())
    };
    for file in files {
        let Ok(bytes) = crate::loader::read_bounded(&cx.dir.join(&file), MAX_MANIFEST_BYTES) else {
            output.problems.push(Problem::at(&file, 1, format!("`{file}` could not be read, or is too large")));
            continue;
        };
        let text: Arc<str> = Arc::from(String::from_utf8_lossy(&bytes).as_ref());
        let source = Arc::new(PlainFile { file: file.clone(), text: Arc::clone(&text), parsed: OnceLock::new() });
        for (index, chunk) in yaml::chunks(&text).iter().enumerate() {
            output.docs.push(Doc {
                name: format!("{file}#argocd"),
                index,
                text: chunk.text().to_string(),
                generated: Vec::new(),
                source: source.clone(),
            });
        }
        output.comments.push((file, text));
    }
    output
}

/// Files under a directory on disk, relative to `root` (links not followed).
fn list_files(root: &std::path::Path, dir: &str) -> Vec<String> {
    let base = root.join(dir);
    walkdir::WalkDir::new(&base)
        .follow_links(false)
        .max_depth(32)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.path().strip_prefix(root).ok().map(|p| p.to_string_lossy().replace('\\', "/")))
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect()
}

/// A manifest file checked as written: a route is found in the document itself.
struct PlainFile {
    file: String,
    text: Arc<str>,
    parsed: OnceLock<Vec<Option<Node>>>,
}

impl SourceMap for PlainFile {
    fn locations(&self, index: usize, route: Option<&Route>, _part: Option<&str>) -> Vec<Location> {
        let docs = self.parsed.get_or_init(|| yaml::parse_stream(&self.text).0.into_iter().map(|d| d.root).collect());
        let Some(Some(doc)) = docs.get(index) else {
            return vec![Location { file: self.file.clone(), line: 1, column: 1, kind: "resource" }];
        };
        let pos = match route.map(|r| r.locate(doc)) {
            Some((pos, _)) => pos,
            None => doc.pos,
        };
        vec![Location { file: self.file.clone(), line: pos.line, column: pos.col, kind: "resource" }]
    }
}

fn flux_finder(
    tree: &dyn Tree,
    settings: &Settings,
    _helm: Option<&crate::helm::Helm>,
) -> (Vec<Declared>, Vec<Problem>, Vec<Problem>) {
    let (declared, problems) = super::flux::declared(tree, settings);
    (declared, problems, Vec::new())
}

/// Every built-in controller renderer.
pub fn renderers(config: &Config) -> Vec<Box<dyn Renderer>> {
    vec![
        Box::new(Deployments::new(Controller::ArgoCd, super::argocd::find, config)),
        Box::new(Deployments::new(Controller::Flux, flux_finder, config)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_sources_take_manifests_with_argo_cd_globs() {
        let tree = crate::render::MemTree::new(
            &["app/a.yaml", "app/b.yml", "app/c.json", "app/notes.txt", "app/sub/d.yaml", "app/.hidden.yaml"]
                .map(|f| (f, "")),
        );
        assert_eq!(manifests_under(&tree, "app", false, None, None), vec!["app/a.yaml", "app/b.yml", "app/c.json"]);
        assert_eq!(manifests_under(&tree, "app", true, None, None).len(), 4);
        assert_eq!(manifests_under(&tree, "app", true, Some("*.yaml"), Some("sub/*")), vec!["app/a.yaml"]);
        assert_eq!(
            manifests_under(&tree, "app", false, Some("{a.yaml,c.json}"), None),
            vec!["app/a.yaml", "app/c.json"]
        );
    }
}
