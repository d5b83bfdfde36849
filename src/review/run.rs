//! Running a review: find what the pull request touched, check only those units at base and head
//! (materialising them from git into temporary directories, never the user's work tree), diff the
//! objects, classify findings, and build the plan.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::plan::{self, PlanInput, ReviewPlan, Side};
use super::{git, objdiff};
use crate::config::{self, Config};
use crate::engine::{self, Report};
use crate::finding::Severity;
use crate::loader;
use crate::redact::MARKER;
use crate::render::{DirTree, Renderer, Tree, Unit};
use crate::yaml::Route;

/// Where base and head come from.
pub enum Source {
    Git {
        repo: PathBuf,
        base: String,
        head: String,
    },
    /// Two commits fetched by the App (shallow): `merge_base` is already the merge-base of the pull
    /// request's base and head, as GitHub's compare API gave it.
    Fetched {
        repo: PathBuf,
        merge_base: String,
        head: String,
    },
    Dirs {
        base: PathBuf,
        head: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Git(#[from] git::GitError),
    #[error("{0}")]
    Io(String),
    #[error("invalid configuration: {0}")]
    Config(#[from] config::ConfigError),
}

/// Whose `.kpath.yml` judges both sides of a review.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConfigFrom {
    /// The base side's: the configuration already merged. A pull request cannot weaken the gate that
    /// judges it; its own configuration takes effect once merged. What the App always uses.
    #[default]
    Base,
    /// The head side's, for trying a configuration change locally.
    Head,
}

/// Settings of a review run that come from the command line (or the App's operator).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub fail_on: Option<Severity>,
    pub helm: Option<PathBuf>,
    pub kubectl: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub no_cache: bool,
    pub config_from: ConfigFrom,
    /// The operator's bounds on what `.kpath.yml` may ask for.
    pub ceilings: config::Ceilings,
    /// The URLs this repository is known by ([`crate::gitops::repo::normalise`]d): its `origin`, or the GitHub
    /// repository the App reviews. Argo CD and Flux sources naming one of them are rendered.
    pub repositories: BTreeSet<String>,
    /// Chart sources the operator allows downloading from (`--allow-chart-source`).
    pub allowed_chart_sources: Vec<String>,
    /// The repository's web address (`https://github.com/OWNER/REPO`), when the review is posted there: the
    /// summary links each place to its line at the head commit.
    pub web: Option<String>,
}

/// The render units, checkable files and context of one side of the review, by repository path.
#[derive(Debug, Default)]
pub struct Layout {
    /// Render units (charts, Kustomize roots), as the renderers find them, outermost only.
    pub units: Vec<Unit>,
    /// Files kpath checks on their own: manifests, Dockerfiles, policies no unit reads.
    pub files: BTreeSet<String>,
    /// `.dockerignore` files: context that travels with checked files.
    pub context: BTreeSet<String>,
    /// Discovery reported no problem, so the layout follows from the tree alone (a problem may come from a
    /// tool's time limit, which another try need not meet).
    pub settled: bool,
}

fn is_context(name: &str) -> bool {
    name.ends_with(".dockerignore")
}

/// A unit's identity across the two sides of a review: one root may be deployed in several environments.
fn unit_key(unit: &Unit) -> (String, String, String) {
    (unit.renderer.to_string(), unit.root.clone(), unit.environment.clone().unwrap_or_default())
}

impl Layout {
    /// Asks every renderer for the units of `tree`; files no unit reads are checked on their own. Of the
    /// configuration only what decides which units exist matters (`gitops`: which URLs are this repository).
    pub fn discover(tree: &dyn Tree, renderers: &[Box<dyn Renderer>], gitops: &crate::gitops::Settings) -> Layout {
        let config = Config { gitops: gitops.clone(), ..Config::default() };
        let mut units = Vec::new();
        let mut settled = true;
        for renderer in renderers {
            let found = renderer.discover(tree, &config);
            settled &= found.problems.is_empty();
            units.extend(found.units);
        }
        let units = crate::render::outermost(units);
        let read: BTreeSet<String> = units.iter().flat_map(|u| u.inputs.iter().cloned()).collect();
        let mut layout = Layout { units, settled, ..Layout::default() };
        for file in tree.files() {
            if file.split('/').any(|s| s == ".git") || crate::render::covers(&read, file) {
                continue;
            }
            let name = file.rsplit('/').next().unwrap_or(file);
            if name == config::FILE_NAME || name == ".kpath.yaml" {
                continue;
            }
            if is_context(name) {
                layout.context.insert(file.clone());
            } else if loader::classify(Path::new(file)).is_some() {
                layout.files.insert(file.clone());
            }
        }
        layout
    }

    /// The units that read a path.
    pub fn units_reading<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a Unit> + 'a {
        self.units.iter().filter(move |u| u.reads(path))
    }
}

/// What the change affects.
#[derive(Debug, Default)]
pub struct Affected {
    /// Units, by renderer, root and environment.
    pub units: BTreeSet<(String, String, String)>,
    pub files: BTreeSet<String>,
}

impl Affected {
    pub fn is_empty(&self) -> bool {
        self.units.is_empty() && self.files.is_empty()
    }
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// The render units whose inputs changed (on either side: a unit the change removes or adds is affected too),
/// and the stand-alone files that changed. When the head's configuration governs (`config_governs`), a change
/// to `.kpath.yml` affects everything it configures; when the base's does, it affects nothing until it is merged.
pub fn affected(base: &Layout, head: &Layout, changed: &[String], config_governs: bool) -> Affected {
    let mut out = Affected::default();
    if config_governs && changed.iter().any(|p| p == config::FILE_NAME || p == ".kpath.yaml") {
        for layout in [base, head] {
            out.units.extend(layout.units.iter().map(unit_key));
            out.files.extend(layout.files.iter().cloned());
        }
        return out;
    }
    for path in changed {
        let mut read = false;
        for layout in [base, head] {
            for unit in layout.units_reading(path) {
                out.units.insert(unit_key(unit));
                read = true;
            }
        }
        if read {
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        if is_context(name) {
            // A `.dockerignore` affects the Dockerfiles beside it.
            let dir = dir_of(path);
            for layout in [base, head] {
                out.files.extend(layout.files.iter().filter(|f| dir_of(f) == dir).cloned());
            }
        } else if head.files.contains(path) || base.files.contains(path) {
            out.files.insert(path.clone());
        }
    }
    out
}

/// Files and directories to write for one side: the affected units' inputs, the affected files with their
/// context, and `.kpath.yml`.
fn side_paths(layout: &Layout, affected: &Affected) -> (Vec<String>, Vec<String>) {
    let mut files: Vec<String> = affected.files.iter().filter(|f| layout.files.contains(*f)).cloned().collect();
    let dirs_of_files: BTreeSet<&str> = files.iter().map(|f| dir_of(f)).collect();
    let context: Vec<String> = layout.context.iter().filter(|c| dirs_of_files.contains(dir_of(c))).cloned().collect();
    files.extend(context);
    files.push(config::FILE_NAME.to_string());
    let mut dirs = Vec::new();
    for unit in layout.units.iter().filter(|u| affected.units.contains(&unit_key(u))) {
        for input in &unit.inputs {
            match input.strip_suffix('/') {
                Some(dir) => dirs.push(dir.to_string()),
                None if input.is_empty() => dirs.push(String::new()),
                None => files.push(input.clone()),
            }
        }
    }
    (files, dirs)
}

/// The manifests of a side that the change does not affect and no unit reads: the context its cross-object rules
/// see beside the affected ones. None when nothing is affected.
fn context_paths<'l>(layout: &'l Layout, affected: &Affected) -> BTreeSet<&'l str> {
    if affected.is_empty() {
        return BTreeSet::new();
    }
    layout
        .files
        .iter()
        .filter(|f| !affected.files.contains(*f) && super::context::is_manifest(f))
        .map(String::as_str)
        .collect()
}

/// Does the side have render units the change does not affect (not rendered, so not in the context)?
fn is_partial(layout: &Layout, affected: &Affected) -> bool {
    layout.units.iter().any(|u| !affected.units.contains(&unit_key(u)))
}

/// Copies the selected files and directories of `from` into `to` (for `--base-dir/--head-dir`, so both kinds
/// of source are checked alike). Links are not followed out of `from`.
fn copy_selected(from: &Path, files: &[String], dirs: &[String], to: &Path) -> std::io::Result<()> {
    let inside = std::fs::canonicalize(from)?;
    let wanted = |rel: &str| {
        files.iter().any(|f| f == rel)
            || dirs.iter().any(|d| d.is_empty() || rel.starts_with(&format!("{}/", d.trim_end_matches('/'))))
    };
    for rel in walk(from) {
        if !wanted(&rel) {
            continue;
        }
        let source = from.join(&rel);
        let Ok(real) = std::fs::canonicalize(&source) else { continue };
        if !real.starts_with(&inside) || !real.is_file() {
            continue;
        }
        let target = to.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::metadata(&real)?.len() > engine::MAX_FILE_BYTES {
            continue;
        }
        std::fs::copy(&real, &target)?;
    }
    Ok(())
}

/// Runs the review.
pub fn review(source: &Source, options: &Options) -> Result<ReviewPlan, ReviewError> {
    let work = crate::cleanup::OwnedDir::new("kpath-review-").map_err(|e| ReviewError::Io(e.to_string()))?;
    let head_governs = options.config_from == ConfigFrom::Head;
    let resolved = match source {
        Source::Git { repo, base, head } => Ok(git::resolve(repo, base, head)?),
        Source::Fetched { repo, merge_base, head } => Ok(git::resolve_known(repo, merge_base, head)?),
        Source::Dirs { base, head } => Err((base, head)),
    };
    let mut tools = Config::default();
    tools.helm.binary = options.helm.clone();
    let renderers = crate::renderers::builtin(&tools);
    let base_root = work.path().join("base");
    let head_root = work.path().join("head");
    for root in [&base_root, &head_root] {
        std::fs::create_dir_all(root).map_err(|e| ReviewError::Io(e.to_string()))?;
    }
    let mut head_commit: Option<String> = None;
    // The unchanged manifests of each side (base, head), for the cross-object rules.
    let mut contexts: [engine::Context; 2] = Default::default();
    let (diff, affected) = match resolved {
        Ok((repository, pair)) => {
            head_commit = Some(pair.head.to_string());
            let (changed, diff) = git::changes(&repository, &pair)?;
            let base_config = git::read_file(&repository, pair.merge_base, config::FILE_NAME)
                .ok()
                .flatten()
                .filter(|text| text.len() <= 1 << 20);
            let gitops = discovery_settings(base_config, options);
            let git_dir = repository.path().to_path_buf();
            let run = super::discovery::Run { renderers: &renderers, gitops: &gitops, helm: options.helm.as_deref() };
            let (base, head) = if super::discovery::may_carry(&repository, &pair, &changed) {
                let base = super::discovery::side(&repository, pair.merge_base, &run)?;
                let head = match super::discovery::carried(&repository, &base, pair.head, &changed, &run)? {
                    Some(head) => head,
                    None => super::discovery::side(&repository, pair.head, &run)?,
                };
                (base, head)
            } else {
                // The change adds or removes files: the head is discovered on a second thread, with its own
                // handle on the repository (a handle is not shared between threads), while the base is.
                std::thread::scope(|scope| {
                    let head = scope.spawn(|| -> Result<_, ReviewError> {
                        let repository = git2::Repository::open_bare(&git_dir)
                            .map_err(|source| git::GitError::Open { path: git_dir.clone(), source })?;
                        Ok(super::discovery::side(&repository, pair.head, &run)?)
                    });
                    let base = super::discovery::side(&repository, pair.merge_base, &run);
                    let head = head
                        .join()
                        .unwrap_or_else(|_| Err(ReviewError::Io("the head side's discovery crashed".into())));
                    Ok::<_, ReviewError>((base?, head?))
                })?
            };
            let (base_layout, head_layout) = (&*base.layout, &*head.layout);
            let affected = affected(base_layout, head_layout, &changed, head_governs);
            for (layout, commit, root) in
                [(base_layout, pair.merge_base, &base_root), (head_layout, pair.head, &head_root)]
            {
                let (files, dirs) = side_paths(layout, &affected);
                git::materialize(&repository, commit, &files, &dirs, root)?;
            }
            let sides = [(&base, None, base_layout), (&head, Some(base.clone()), head_layout)];
            for (index, (side, earlier, layout)) in sides.into_iter().enumerate() {
                contexts[index] = engine::Context {
                    source: (!affected.is_empty()).then(|| {
                        super::context::from_git(git_dir.clone(), side.clone(), earlier, affected.files.clone())
                    }),
                    partial: is_partial(layout, &affected),
                };
            }
            (diff, affected)
        }
        Err((base, head)) => {
            let (changed, diff) = git::dir_changes(base, head)
                .map_err(|e| ReviewError::Io(format!("cannot compare directories: {e}")))?;
            let base_tree = DirTree::new(base, walk(base), "");
            let gitops = discovery_settings(base_tree.read(config::FILE_NAME, 1 << 20), options);
            let base_layout = Layout::discover(&base_tree, &renderers, &gitops);
            let head_layout = Layout::discover(&DirTree::new(head, walk(head), ""), &renderers, &gitops);
            let affected = affected(&base_layout, &head_layout, &changed, head_governs);
            for (side, (layout, from, root)) in
                [(&base_layout, base, &base_root), (&head_layout, head, &head_root)].into_iter().enumerate()
            {
                let (files, dirs) = side_paths(layout, &affected);
                copy_selected(from, &files, &dirs, root)
                    .map_err(|e| ReviewError::Io(format!("cannot copy `{}`: {e}", from.display())))?;
                let files: Vec<String> = context_paths(layout, &affected).into_iter().map(str::to_string).collect();
                contexts[side] = engine::Context {
                    source: (!files.is_empty()).then(|| super::context::from_dir(from.clone(), files)),
                    partial: is_partial(layout, &affected),
                };
            }
            (diff, affected)
        }
    };

    // Both sides are judged by one configuration, so a change is measured by one yardstick: the base's
    // unless asked otherwise, so a pull request cannot weaken the gate that judges it.
    let base_config = read_config(&base_root);
    let head_config = read_config(&head_root);
    let mut config_notes: Vec<String> = Vec::new();
    let mut config = match options.config_from {
        ConfigFrom::Head => head_config.clone()?.map(|(c, _)| c).unwrap_or_default(),
        ConfigFrom::Base => match &base_config {
            Ok(c) => c.clone().map(|(c, _)| c).unwrap_or_default(),
            Err(e) => {
                config_notes.push(format!(
                    "The base branch's `.kpath.yml` is invalid ({e}), so this review used kpath's defaults."
                ));
                Config::default()
            }
        },
    };
    config_notes.extend(config_change_notes(&base_config, &head_config, options.config_from));
    config.clamp(&options.ceilings);
    config_notes.extend(config.notes.iter().cloned());
    config.collect_objects = true;
    if options.helm.is_some() {
        config.helm.binary = options.helm.clone();
    }
    if options.kubectl.is_some() {
        config.helm.kubectl = options.kubectl.clone();
    }
    if let Some(dir) = &options.cache_dir {
        config.helm.cache_dir = Some(dir.clone());
    }
    config.gitops.repositories.extend(options.repositories.iter().cloned());
    config.gitops.allowed_chart_sources = options.allowed_chart_sources.clone();
    if options.no_cache {
        config.helm.cache_dir = None;
    }
    let fail_on = options.fail_on.unwrap_or(config.review.fail_on);

    let renderers = crate::renderers::builtin(&config);
    let check_side = |root: &Path, context: &engine::Context| -> Report {
        let mut side_config = config.clone();
        side_config.base_dir = Some(root.to_path_buf());
        // What `.kpath.yml` leaves out of checks is left out of the context too.
        // Named under the side's checkout like its checked files, so places compare alike (and reports show them
        // as the repository has them, once `relativise` is done).
        let ignore = config.clone();
        let prefix = format!("{}/", root.to_string_lossy().replace('\\', "/").trim_end_matches('/'));
        let context = engine::Context {
            source: context.source.clone().map(|source| -> engine::ContextSource {
                Arc::new(move |relevant: &engine::Relevant| {
                    source(relevant)
                        .into_iter()
                        .filter(|f| !loader::ignored_at(&ignore, &f.file))
                        .map(|f| Arc::new(f.renamed(&format!("{prefix}{}", f.file))))
                        .collect()
                })
            }),
            partial: context.partial,
        };
        let mut report = engine::check_paths_with(&[root.to_path_buf()], &side_config, &renderers, &context);
        relativise(&mut report, root);
        report
    };
    let base_report = check_side(&base_root, &contexts[0]);
    let head_report = check_side(&head_root, &contexts[1]);
    if let Some(reason) = head_report.tool_missing.clone().or(base_report.tool_missing.clone()) {
        return Err(ReviewError::Io(format!("this change touches what kpath renders, but {reason}")));
    }

    // One set for both sides: a secret removed by the change is as secret as one it adds.
    let mut secrets = base_report.secrets.clone();
    secrets.extend(&head_report.secrets);
    let secrets = std::sync::Arc::new(secrets);
    let ignore: Vec<Route> = config.review.ignore_routes.iter().map(|r| Route::parse(r)).collect();
    let changes = objdiff::diff_objects(&base_report.objects, &head_report.objects, &ignore, &secrets);
    let costs = super::cost::costs(&base_report.objects, &head_report.objects);
    // Source lines feed fingerprints (hashes must not be of a secret) and suggestions (which must not
    // quote one): they are read redacted.
    let read_line = |root: &Path, file: &str, line: u32| -> Option<String> {
        // A file over the size limit was not checked (its finding says so): it is not read either.
        let path = root.join(file);
        if std::fs::metadata(&path).ok()?.len() > engine::MAX_FILE_BYTES {
            return None;
        }
        let text = std::fs::read_to_string(path).ok()?;
        let line = text.lines().nth(line.checked_sub(1)? as usize)?;
        Some(secrets.redact(line).into_owned())
    };
    let line_text = |side: Side, file: &str, line: u32| match side {
        Side::Base => read_line(&base_root, file, line),
        Side::Head => read_line(&head_root, file, line),
    };
    let findings = plan::classify(base_report.findings, head_report.findings, &line_text);
    let head_line = |file: &str, line: u32| read_line(&head_root, file, line).filter(|l| !l.contains(MARKER));
    Ok(plan::build(PlanInput {
        findings,
        changes,
        diff: &diff,
        fail_on,
        head_line: &head_line,
        // Files kpath would check by name but that hold nothing it judges (a CI workflow is YAML, not a
        // manifest) are not relevant either.
        nothing_relevant: affected.is_empty()
            || (affected.units.is_empty() && base_report.stats.documents + head_report.stats.documents == 0),
        config_notes,
        secrets: secrets.clone(),
        costs,
        links: plan::Links { head: head_commit, web: options.web.clone() },
    }))
}

/// What discovery needs of the run and the base's `.kpath.yml`: the repository's URLs (the operator's, and
/// the configuration's `gitops.repoURLs`) and the cluster inventory. The base's, like the gate itself.
fn discovery_settings(base_config: Option<String>, options: &Options) -> crate::gitops::Settings {
    let mut settings =
        base_config.and_then(|text| Config::parse(&text, config::FILE_NAME).ok()).map(|c| c.gitops).unwrap_or_default();
    settings.repositories.extend(options.repositories.iter().cloned());
    settings.allowed_chart_sources = options.allowed_chart_sources.clone();
    settings
}

type ConfigRead = Result<Option<(Config, String)>, config::ConfigError>;

/// One side's `.kpath.yml` (with its text), if it has one. Errors name the file as the repository
/// does, never the temporary directory it was written to.
fn read_config(root: &Path) -> ConfigRead {
    let path = root.join(config::FILE_NAME);
    if !path.is_file() {
        return Ok(None);
    }
    let text = config::read_config_text(&path).map_err(|message| config::ConfigError {
        file: config::FILE_NAME.to_string(),
        line: 0,
        col: 0,
        message,
    })?;
    Ok(Some((Config::parse(&text, config::FILE_NAME)?, text)))
}

/// What the summary says when the pull request changes `.kpath.yml`.
fn config_change_notes(base: &ConfigRead, head: &ConfigRead, from: ConfigFrom) -> Vec<String> {
    let text = |c: &ConfigRead| c.as_ref().ok().and_then(|c| c.as_ref().map(|(_, t)| t.clone()));
    let base_text = text(base);
    let head_text = text(head);
    if base_text == head_text && base.is_ok() == head.is_ok() {
        return Vec::new();
    }
    let mut notes = Vec::new();
    let lead = match from {
        ConfigFrom::Base => {
            "This change edits `.kpath.yml`. It takes effect once merged: this review judged both sides by the              base branch's configuration."
        }
        ConfigFrom::Head => {
            "This change edits `.kpath.yml`, and this review judged both sides by the changed configuration              (`--config-from head`)."
        }
    };
    notes.push(lead.to_string());
    match (base, head) {
        (_, Err(e)) => notes.push(format!("The changed `.kpath.yml` is invalid and kpath would stop on it: {e}")),
        (Ok(b), Ok(h)) => {
            let empty = Config::default();
            let b = b.as_ref().map_or(&empty, |(c, _)| c);
            let h = h.as_ref().map_or(&empty, |(c, _)| c);
            let changes = config::describe_change(b, h);
            if changes.is_empty() {
                notes.push("It changes nothing that affects findings.".to_string());
            }
            for change in changes {
                let mark = if change.weakens { "⚠️ weakens the gate: " } else { "" };
                notes.push(format!("{mark}it {}", change.text));
            }
        }
        (Err(_), Ok(_)) => notes.push("It repairs the base branch's invalid configuration.".to_string()),
    }
    notes
}

/// Repository paths of every file under `root` (skipping `.git`).
fn walk(root: &Path) -> Vec<String> {
    walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.path().strip_prefix(root).ok().map(|p| p.to_string_lossy().replace('\\', "/")))
        .collect()
}

/// Turns the paths of a side's report back into repository paths.
fn relativise(report: &mut Report, root: &Path) {
    let prefix = format!("{}/", root.to_string_lossy().replace('\\', "/").trim_end_matches('/'));
    let strip = |s: &mut String| {
        if let Some(rest) = s.strip_prefix(&prefix) {
            *s = rest.to_string();
        }
    };
    for f in &mut report.findings {
        strip(&mut f.file);
        // Cross-object messages name the other object's place: as the repository has it, never the checkout's.
        if f.message.contains(&prefix) {
            f.message = f.message.replace(&prefix, "");
        }
        if let Some(o) = &mut f.origin {
            strip(o);
        }
        for l in &mut f.locations {
            strip(&mut l.file);
        }
    }
    for o in &mut report.objects {
        strip(&mut o.unit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn layout_and_affected_units() {
        let all = files(&[
            "apps/a/deploy.yaml",
            "apps/a/Dockerfile",
            "apps/a/.dockerignore",
            "apps/b/deploy.yaml",
            "charts/shop/Chart.yaml",
            "charts/shop/values.yaml",
            "charts/shop/charts/redis/Chart.yaml",
            "charts/shop/templates/d.yaml",
            "README.md",
            ".kpath.yml",
        ]);
        // Only paths matter to discovery here: the tree's root does not exist, so no file is read.
        let tree = DirTree::new(Path::new("/nonexistent-kpath-tree"), all, "");
        let renderers = crate::renderers::builtin(&Config::default());
        let layout = Layout::discover(&tree, &renderers, &crate::gitops::Settings::default());
        let roots: Vec<&str> = layout.units.iter().map(|u| u.root.as_str()).collect();
        assert_eq!(roots, vec!["charts/shop"]);
        assert_eq!(
            layout.files,
            BTreeSet::from([
                "apps/a/Dockerfile".to_string(),
                "apps/a/deploy.yaml".to_string(),
                "apps/b/deploy.yaml".to_string()
            ])
        );
        let a = affected(
            &layout,
            &layout,
            &files(&["charts/shop/charts/redis/values.yaml", "apps/a/.dockerignore"]),
            false,
        );
        assert_eq!(a.units, BTreeSet::from([("helm".to_string(), "charts/shop".to_string(), String::new())]));
        assert_eq!(a.files, BTreeSet::from(["apps/a/Dockerfile".to_string(), "apps/a/deploy.yaml".to_string()]));
        let none = affected(&layout, &layout, &files(&["README.md"]), true);
        assert!(none.is_empty());
        assert!(affected(&layout, &layout, &files(&[".kpath.yml"]), false).is_empty());
        let everything = affected(&layout, &layout, &files(&[".kpath.yml"]), true);
        assert_eq!(everything.files.len(), 3);
        assert_eq!(everything.units.len(), 1);
    }
}
