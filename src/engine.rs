//! The check pipeline: discover → per file (in parallel) parse, find objects, run local rules and
//! extract facts → run cross-object rules over the facts → apply suppression → sorted findings.
//!
//! Pure apart from reading the input files: takes paths and a config, returns data.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::config::{Config, RuleLevel};
use crate::finding::{Finding, Location, ObjectId};
use crate::loader::{self, Input, InputKind, Skipped, TreeRoot};
use crate::model::Object;
use crate::model::facts::{self, FactSet, Facts};
use crate::redact::{self, SecretSet};
use crate::render::{self, DirTree, Namespace, Renderer, Unit};
use crate::rules::{self, DockerfileCx, Emitter, GlobalCx, IamCx, ObjectCx, Rule};
use crate::suppress::{self, IgnoreComment, SuppressionIndex};
use crate::yaml::{self, Node, Pos, Route};

/// Files larger than this are reported, not parsed: real manifests are far smaller, and it bounds
/// memory per file.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Documents of one file a worker parses and checks in a row: enough to make scheduling cheap, few
/// enough that a file of many documents spreads over every core.
const DOCUMENTS_PER_TASK: usize = 256;

#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub stats: Stats,
    #[serde(skip)]
    pub skipped: Vec<Skipped>,
    /// Set when there were units to render and their tool is missing or unusable: the reason, for the CLI to
    /// report.
    #[serde(skip)]
    pub tool_missing: Option<String>,
    /// Every checked object, when `Config::collect_objects` is set.
    #[serde(skip)]
    pub objects: Vec<CheckedObject>,
    /// Every secret value the checked files hold: reports redact them from their output.
    #[serde(skip)]
    pub secrets: SecretSet,
    /// `kpath:ignore` comments and annotations, applied by `finish`.
    #[serde(skip)]
    suppression: SuppressionIndex,
}

/// A Kubernetes object as the engine checked it (a plain manifest's document, or a rendered object), with its
/// unit and environment: what a review diffs between its two sides. Kept when `Config::collect_objects` is set.
#[derive(Debug, Clone)]
pub struct CheckedObject {
    pub id: ObjectId,
    /// The render unit it came from: a manifest's path, or a chart directory.
    pub unit: String,
    pub environment: Option<String>,
    /// The object's document.
    pub node: Node,
    /// Routes whose values a secret rule flagged: shown redacted in diffs, like Secret data.
    pub secret_routes: Vec<Route>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub files: usize,
    pub documents: usize,
    pub objects: usize,
    pub bytes: u64,
}

struct FileOutcome {
    findings: Vec<Finding>,
    /// Of the fact kinds the active rules read.
    facts: FactSet,
    /// Rules ignored through objects' `kpath/ignore` annotation: (file, document, rules).
    annotations: Vec<(String, usize, Vec<String>)>,
    /// `kpath:ignore` comments, per file (a chart contributes its templates and values files).
    comments: Vec<(String, Vec<IgnoreComment>)>,
    /// Where rendered documents came from, by the name they were checked under (`helm://…`, `kustomize://…`).
    rendered: Vec<(String, Rendered)>,
    objects: Vec<CheckedObject>,
    /// Secret values found in the file (or the chart's values files and renders).
    secrets: SecretSet,
    documents: usize,
    bytes: u64,
    /// Outcomes of groups of this file's documents checked in parallel, in document order.
    parts: Vec<FileOutcome>,
}

impl FileOutcome {
    fn new(active: &[(&'static Rule, crate::finding::Severity)]) -> FileOutcome {
        FileOutcome {
            findings: Vec::new(),
            facts: FactSet::new(&rules::fact_kinds(active.iter().map(|(rule, _)| *rule))),
            annotations: Vec::new(),
            comments: Vec::new(),
            rendered: Vec::new(),
            objects: Vec::new(),
            secrets: SecretSet::default(),
            documents: 0,
            bytes: 0,
            parts: Vec::new(),
        }
    }
}

/// Where a rendered document came from: its source map, and how to show the paths it returns.
#[derive(Clone)]
struct Rendered {
    source: Arc<dyn render::SourceMap>,
    /// The checked directory the unit was found in, to show tree paths as reports do.
    tree: Arc<TreeRoot>,
    environment: Option<String>,
}

/// One piece of work for the parallel phase: a file, or a unit to render.
enum Work<'a> {
    File(&'a Input),
    Unit { tree: &'a Arc<TreeRoot>, unit: &'a Unit, renderer: &'a dyn Renderer },
}

/// What a file that is not checked brings to the cross-object rules of a check: its objects' facts and its
/// `kpath:ignore` comments. A review reads it for the unchanged manifests beside a change, so a relation
/// between a changed object and an unchanged one (an autoscaler and its target, apps sharing a namespace) is
/// judged as `kpath check` judges it, without checking the unchanged file again.
#[derive(Debug, Default)]
pub struct ContextFile {
    /// The path findings name it by.
    pub file: Arc<str>,
    pub facts: FactSet,
    pub comments: Vec<IgnoreComment>,
    /// Rules ignored through objects' `kpath/ignore` annotation, by document.
    pub annotations: Vec<(usize, Vec<String>)>,
}

impl ContextFile {
    /// Reads a manifest's context: the facts of every Kubernetes object in it (no rule runs). Documents that
    /// do not parse or are not objects bring nothing.
    pub fn read(file: &str, text: &str) -> ContextFile {
        let file: Arc<str> = Arc::from(file);
        // Read once for every check that asks, whatever rules it runs.
        let mut facts = FactSet::new(&rules::all_fact_kinds());
        let mut annotations = Vec::new();
        let (docs, _) = yaml::parse_stream(text);
        for doc in &docs {
            let Some(root) = doc.root.as_ref().filter(|r| looks_like_kubernetes(r) && !is_tool_config(r)) else {
                continue;
            };
            let items = match root.get("items") {
                Some(items) if root.get("kind").and_then(Node::as_text).is_some_and(|k| k.ends_with("List")) => {
                    items.items()
                }
                _ => std::slice::from_ref(root),
            };
            for item in items {
                if let Some(object) = Object::from_root(item) {
                    facts.read(&object, object.pod_spec().as_ref(), &file, doc.index);
                    if let Some(ignored) = suppress::annotated(&object) {
                        annotations.push((doc.index, ignored));
                    }
                }
            }
        }
        ContextFile { comments: suppress::scan_comments(text), file, facts, annotations }
    }
}

/// Which context a check needs: the namespaces of the objects it checked (an object relates only to objects of
/// its own namespace, and to cluster-scoped definitions).
#[derive(Debug, Default, Clone)]
pub struct Relevant {
    pub namespaces: std::collections::BTreeSet<String>,
    /// Some checked object's namespace is unknown (none written, none configured): it may relate to any.
    pub any: bool,
}

impl Relevant {
    /// Could a manifest with this text hold an object that relates to the checked ones? A cheap test on the
    /// text, before it is parsed: a superset (a namespace's name anywhere in it, or objects without any
    /// namespace, or a CustomResourceDefinition, which is cluster-wide).
    pub fn may_relate(&self, text: &str) -> bool {
        self.any
            || !text.contains("namespace")
            || text.contains("CustomResourceDefinition")
            || self.namespaces.iter().any(|ns| text.contains(ns.as_str()))
    }
}

/// Gives the context files that may relate to a check's objects, once they are known.
pub type ContextSource = Arc<dyn Fn(&Relevant) -> Vec<Arc<ContextFile>> + Send + Sync>;

impl ContextFile {
    /// The same file named `name` (a review names its files under its checkout, as its checked files are).
    pub fn renamed(&self, name: &str) -> ContextFile {
        let file: Arc<str> = Arc::from(name);
        let mut facts = self.facts.clone();
        facts.move_to(&file);
        ContextFile { file, facts, comments: self.comments.clone(), annotations: self.annotations.clone() }
    }
}

/// The context of a check: files it does not check whose objects take part in its cross-object rules.
#[derive(Default, Clone)]
pub struct Context {
    pub source: Option<ContextSource>,
    /// Render units were left out of the check and of the context (a review renders only the units a change
    /// affects): a plain file's relation to an object one of them renders cannot be ruled out.
    pub partial: bool,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("source", &self.source.is_some()).field("partial", &self.partial).finish()
    }
}

/// Checks files and directories; directories are given to `renderers` to find units in (charts, Kustomize
/// roots), and files a unit reads are checked only as rendered.
pub fn check_paths(paths: &[PathBuf], config: &Config, renderers: &[Box<dyn Renderer>]) -> Report {
    check_paths_with(paths, config, renderers, &Context::default())
}

/// [`check_paths`], with `context` taking part in the cross-object rules.
pub fn check_paths_with(
    paths: &[PathBuf],
    config: &Config,
    renderers: &[Box<dyn Renderer>],
    context: &Context,
) -> Report {
    let found = loader::discover(paths, config);
    let trees: Vec<Arc<TreeRoot>> = found.trees.into_iter().map(Arc::new).collect();
    let mut report = Report::default();
    let mut units: Vec<(usize, Unit, &dyn Renderer)> = Vec::new();
    let mut problems: Vec<Finding> = Vec::new();
    let failed = rules::find(rules::render_failed::RULE.id).and_then(|rule| match config.level(rule) {
        RuleLevel::Off => None,
        RuleLevel::On(sev) => Some((rule, sev)),
    });
    let skipped = rules::find(rules::render_skipped::RULE.id).and_then(|rule| match config.level(rule) {
        RuleLevel::Off => None,
        RuleLevel::On(sev) => Some((rule, sev)),
    });
    for (t, tree) in trees.iter().enumerate() {
        let dir = DirTree::new(&tree.path, tree.files.clone(), &tree.prefix);
        let mut found_here: Vec<(Unit, &dyn Renderer)> = Vec::new();
        for renderer in renderers {
            let discovery = renderer.discover(&dir, config);
            for p in discovery.problems {
                if let Some((rule, sev)) = failed {
                    problems.push(loader_finding(rule, &tree.show(&p.file), p.pos, p.message, sev));
                }
            }
            for p in discovery.skipped {
                if let Some((rule, sev)) = skipped {
                    problems.push(loader_finding(rule, &tree.show(&p.file), p.pos, p.message, sev));
                }
            }
            found_here.extend(discovery.units.into_iter().map(|u| (u, renderer.as_ref())));
        }
        let kept = render::outermost(found_here.iter().map(|(u, _)| u.clone()).collect());
        for (unit, renderer) in found_here {
            let is_kept = kept.iter().any(|k| k.root == unit.root && k.renderer == unit.renderer);
            let ignored = loader::ignored_at(config, &format!("{}/", render::join(&tree.prefix, &unit.root)));
            if is_kept && !ignored {
                units.push((t, unit, renderer));
            }
        }
    }
    // Files a unit reads are checked as the unit renders them, not on their own.
    // One set per tree of everything its units read: a lookup per file, not one per file and unit.
    let mut read: HashMap<usize, std::collections::BTreeSet<String>> = HashMap::new();
    for (t, unit, _) in &units {
        read.entry(*t).or_default().extend(unit.inputs.iter().cloned());
    }
    let inputs: Vec<&Input> = found
        .inputs
        .iter()
        .filter(|input| match &input.tree {
            Some((t, rel)) => !read.get(t).is_some_and(|inputs| render::covers(inputs, rel)),
            None => true,
        })
        .collect();
    // Each renderer's tool is looked for once, and only when it has a unit to render.
    let mut unready: HashMap<&'static str, String> = HashMap::new();
    for (_, unit, renderer) in &units {
        if !unready.contains_key(unit.renderer)
            && let Err(e) = renderer.ready()
        {
            unready.insert(unit.renderer, e);
        }
    }
    let mut work: Vec<Work<'_>> = inputs.iter().map(|i| Work::File(i)).collect();
    for (t, unit, renderer) in &units {
        match unready.get(unit.renderer) {
            Some(reason) => {
                // Everything else is still checked; each unit that needs the missing tool says so.
                if let Some((rule, sev)) = skipped {
                    let message = format!("not rendered, so not checked: {reason}");
                    let mut f =
                        loader_finding(rule, &trees[*t].show(&unit.file), Pos { line: 1, col: 1 }, message, sev);
                    f.environments = unit.environment.iter().cloned().collect();
                    problems.push(f);
                }
                report.tool_missing.get_or_insert_with(|| reason.clone());
            }
            None => work.push(Work::Unit { tree: &trees[*t], unit, renderer: *renderer }),
        }
    }
    // Environments in the order units were found (the order `.kpath.yml` declares them, then the tree's).
    let mut order: Vec<String> = Vec::new();
    for (_, unit, _) in &units {
        if let Some(env) = &unit.environment
            && !order.contains(env)
        {
            order.push(env.clone());
        }
    }
    let mut checked = check_work(&work, config, &order, context);
    checked.findings.extend(problems);
    checked.tool_missing = report.tool_missing;
    checked.skipped = found.skipped;
    finish(&mut checked, config);
    checked
}

/// Checks files given one by one (no directory, so no units).
pub fn check_inputs(inputs: &[Input], config: &Config) -> Report {
    let work: Vec<Work<'_>> = inputs.iter().map(Work::File).collect();
    let mut report = check_work(&work, config, &[], &Context::default());
    finish(&mut report, config);
    report
}

fn check_work(work: &[Work<'_>], config: &Config, order: &[String], context: &Context) -> Report {
    let active: Vec<(&'static Rule, crate::finding::Severity)> = rules::RULES
        .iter()
        .filter_map(|r| match config.level(r) {
            RuleLevel::Off => None,
            RuleLevel::On(sev) => Some((*r, sev)),
        })
        .collect();
    let outcomes: Vec<FileOutcome> = work
        .par_iter()
        .map(|w| match w {
            Work::File(input) => check_file(input, config, &active),
            Work::Unit { tree, unit, renderer } => check_unit(tree, unit, *renderer, config, &active),
        })
        .collect();

    let mut report = Report::default();
    let mut index = SuppressionIndex::default();
    let mut rendered: HashMap<String, Rendered> = HashMap::new();
    // Sized once: growing these by doubling left up to half of each unused, on hundreds of thousands of
    // findings and facts.
    let with_parts =
        |o: &FileOutcome, count: fn(&FileOutcome) -> usize| count(o) + o.parts.iter().map(count).sum::<usize>();
    let mut all_facts = FactSet::default();
    all_facts.objects.reserve_exact(outcomes.iter().map(|o| with_parts(o, |p| p.facts.len())).sum());
    report.findings.reserve_exact(outcomes.iter().map(|o| with_parts(o, |p| p.findings.len())).sum());
    // A file checked in parallel groups brings its groups' outcomes as parts: they are taken here one by
    // one rather than first gathered into one outcome, which would hold every finding twice.
    report.stats.files += outcomes.len();
    let outcomes = outcomes.into_iter().flat_map(|mut o| {
        let parts = std::mem::take(&mut o.parts);
        std::iter::once(o).chain(parts)
    });
    for outcome in outcomes {
        report.stats.documents += outcome.documents;
        report.stats.objects += outcome.facts.len();
        report.stats.bytes += outcome.bytes;
        report.findings.extend(outcome.findings);
        for (file, comments) in outcome.comments {
            if !comments.is_empty() {
                index.comments.entry(file).or_default().extend(comments);
            }
        }
        rendered.extend(outcome.rendered);
        report.objects.extend(outcome.objects);
        report.secrets.extend(&outcome.secrets);
        for (file, document, ignored) in outcome.annotations {
            index.annotations.insert((file, document), ignored);
        }
        all_facts.extend(outcome.facts);
    }
    let relevant = || {
        let mut relevant = Relevant::default();
        for f in &all_facts.objects {
            match f.namespace.as_deref().or(config.namespace.as_deref()) {
                Some(ns) if !relevant.namespaces.contains(ns) => {
                    relevant.namespaces.insert(ns.to_string());
                }
                Some(_) => {}
                None => relevant.any = true,
            }
        }
        relevant
    };
    let context_files = context.source.as_ref().map(|source| source(&relevant())).unwrap_or_default();
    for file in &context_files {
        if !file.comments.is_empty() {
            index.comments.entry(file.file.to_string()).or_default().extend(file.comments.iter().cloned());
        }
        for (document, ignored) in &file.annotations {
            index.annotations.insert((file.file.to_string(), *document), ignored.clone());
        }
        all_facts.extend_from(&file.facts, |f| f.context = true);
    }
    let mut all_facts = Facts::new(all_facts);
    all_facts.partial = context.partial;

    // A place as a person finds it: a rendered object's source line (its template, its Kustomize patch), else
    // the file's own line.
    let show = |place: &facts::Place| -> String {
        let source = rendered.get(&*place.file).and_then(|r| {
            let first = r.source.locations(place.document, Some(&place.route), None).into_iter().next()?;
            Some(format!("{}:{}", r.tree.show(&first.file), first.line))
        });
        source.unwrap_or_else(|| format!("{}:{}", place.file, place.pos.line))
    };
    for (rule, severity) in &active {
        if let Some(check) = rule.check.global() {
            let cx = GlobalCx { facts: &all_facts, config, options: config.options(rule.id), show: &show };
            let mut emitter = Emitter {
                rule,
                severity: *severity,
                file: Arc::from(""),
                root: None,
                document: None,
                object: None,
                out: &mut report.findings,
                emitted: 0,
            };
            check(&cx, &mut emitter);
        }
    }

    // Findings on rendered objects move to the source lines that produced them.
    if !rendered.is_empty() {
        for finding in &mut report.findings {
            if let Some(source) = rendered.get(&finding.file) {
                place(finding, source);
            }
        }
        report.findings = merge_environments(std::mem::take(&mut report.findings), order);
    }
    report.suppression = index;
    report
}

/// Places a finding on a rendered object: the renderer's source locations (most direct first), then the
/// rendered position.
fn place(finding: &mut Finding, source: &Rendered) {
    let rendered =
        Location { file: finding.file.clone(), line: finding.line, column: finding.column, kind: "rendered" };
    let mut locations =
        source.source.locations(finding.document.unwrap_or(0), finding.route.as_ref(), finding.part.as_deref());
    for l in &mut locations {
        l.file = source.tree.show(&l.file);
    }
    locations.push(rendered);
    let first = &locations[0];
    finding.origin = Some(std::mem::replace(&mut finding.file, first.file.clone()));
    finding.line = first.line;
    finding.column = first.column;
    finding.locations = locations;
    if let Some(env) = &source.environment {
        finding.environments = vec![env.clone()];
    }
}

/// Merges findings that several environments produced identically (same rule, place, message and route)
/// into one listing them all.
fn merge_environments(findings: Vec<Finding>, order: &[String]) -> Vec<Finding> {
    let mut merged: Vec<Finding> = Vec::with_capacity(findings.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for finding in findings {
        if finding.environments.is_empty() {
            merged.push(finding);
            continue;
        }
        let key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{:?}",
            finding.rule,
            finding.file,
            finding.line,
            finding.column,
            finding.message,
            finding.route.as_ref().map(crate::yaml::Route::to_string),
        );
        match index.get(&key) {
            Some(&i) => {
                let existing = &mut merged[i];
                for env in &finding.environments {
                    if !existing.environments.contains(env) {
                        existing.environments.push(env.clone());
                    }
                }
                for location in finding.locations.into_iter().filter(|l| l.kind == "rendered") {
                    if !existing.locations.contains(&location) {
                        existing.locations.push(location);
                    }
                }
            }
            None => {
                index.insert(key, merged.len());
                merged.push(finding);
            }
        }
    }
    for f in &mut merged {
        f.environments.sort_by_key(|e| (order.iter().position(|o| o == e).unwrap_or(usize::MAX), e.clone()));
    }
    merged
}

/// Locations for findings that have none, suppression, and the final order.
fn finish(report: &mut Report, config: &Config) {
    let index = std::mem::take(&mut report.suppression);
    for finding in &mut report.findings {
        if finding.locations.is_empty() {
            let kind = if finding.file.contains("/templates/") && finding.rule == rules::render_failed::RULE.id {
                "template"
            } else {
                "manifest"
            };
            finding.locations.push(crate::finding::Location {
                file: finding.file.clone(),
                line: finding.line,
                column: finding.column,
                kind,
            });
        }
    }

    let today = crate::config::today();
    for finding in &mut report.findings {
        index.apply(finding, config, today);
    }
    report.findings.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.rule, &a.message).cmp(&(&b.file, b.line, b.column, b.rule, &b.message))
    });
    report.findings.dedup();
}

fn loader_finding(
    rule: &'static Rule,
    file: &str,
    pos: Pos,
    message: String,
    severity: crate::finding::Severity,
) -> Finding {
    Finding {
        rule: rule.id,
        severity,
        message,
        file: file.to_string(),
        line: pos.line,
        column: pos.col,
        route: None,
        object: None,
        help: rule.help().into(),
        suppressed: None,
        locations: Vec::new(),
        environments: Vec::new(),
        document: None,
        origin: None,
        part: None,
    }
}

fn check_file(input: &Input, config: &Config, active: &[(&'static Rule, crate::finding::Severity)]) -> FileOutcome {
    let mut out = FileOutcome::new(active);
    let invalid = active.iter().find(|(r, _)| r.id == rules::manifest_invalid::RULE.id).copied();
    let report_invalid = |out: &mut FileOutcome, pos: Pos, message: String| {
        if let Some((rule, sev)) = invalid {
            out.findings.push(loader_finding(rule, &input.display, pos, message, sev));
        }
    };

    let size = std::fs::metadata(&input.path).map(|m| m.len()).unwrap_or(0);
    if size > MAX_FILE_BYTES {
        report_invalid(
            &mut out,
            Pos { line: 1, col: 1 },
            format!(
                "file is {} MiB, over kpath's {} MiB limit per file; it was not checked",
                size >> 20,
                MAX_FILE_BYTES >> 20
            ),
        );
        return out;
    }
    let bytes = match std::fs::read(&input.path) {
        Ok(b) => b,
        Err(e) => {
            report_invalid(&mut out, Pos { line: 1, col: 1 }, format!("cannot read file: {e}"));
            return out;
        }
    };
    out.bytes = bytes.len() as u64;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|b| **b == b'\n').count() as u32 + 1;
            report_invalid(&mut out, Pos { line, col: 1 }, "file is not valid UTF-8 text; it was not checked".into());
            return out;
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let file: Arc<str> = Arc::from(input.display.as_str());

    match input.kind {
        InputKind::Dockerfile => {
            out.comments.push((input.display.clone(), suppress::scan_comments(text)));
            out.documents = 1;
            let dockerfile = crate::dockerfile::parse(text);
            // Literal secrets of `ENV`/`ARG` (whether or not their rule is on), and credentials anywhere.
            for found in rules::dockerfile_secret_env::secret_assignments(&dockerfile) {
                out.secrets.insert(&found.value);
            }
            for value in crate::secrets::credential_values(text) {
                out.secrets.insert(value);
            }
            for (pos, message) in &dockerfile.errors {
                report_invalid(&mut out, *pos, message.clone());
            }
            let dockerignore = read_dockerignore(&input.path);
            for (rule, severity) in active {
                if let Some(check) = rule.check.dockerfile() {
                    let cx = DockerfileCx {
                        file: &input.display,
                        dockerfile: &dockerfile,
                        dockerignore: dockerignore.as_deref(),
                        config,
                        options: config.options(rule.id),
                    };
                    let mut emitter = emitter(rule, *severity, &file, None, None, None, &mut out.findings);
                    check(&cx, &mut emitter);
                }
            }
        }
        InputKind::Json => {
            out.documents = 1;
            match yaml::parse_single_document(text) {
                Err(e) => {
                    redact::collect_loose(text, &mut out.secrets);
                    report_invalid(&mut out, e.pos, format!("not valid JSON: {}", e.message));
                }
                Ok(yaml::Document { root: None, .. }) => {}
                Ok(yaml::Document { root: Some(root), duplicates, .. }) => {
                    if root.get("Statement").is_some() {
                        redact::collect_tree(&root, &mut out.secrets);
                        for (rule, severity) in active {
                            if let Some(check) = rule.check.iam() {
                                let cx = IamCx {
                                    file: &input.display,
                                    root: &root,
                                    config,
                                    options: config.options(rule.id),
                                };
                                let mut emitter =
                                    emitter(rule, *severity, &file, Some(&root), None, None, &mut out.findings);
                                check(&cx, &mut emitter);
                            }
                        }
                    } else if root.get("apiVersion").is_some() || root.get("kind").is_some() {
                        check_document(&root, 0, &file, config, &[], active, &mut out);
                        report_duplicate_keys(&duplicates, &root, 0, &file, active, &mut out);
                    }
                }
            }
        }
        InputKind::Yaml => {
            // Documents are parsed and checked in groups, in parallel, one document at a time per
            // worker: each tree is dropped once its rules ran and its facts were taken, so a file of 200k
            // small objects holds a few trees, not 200k, and one huge file still uses every core.
            let chunks = yaml::chunks(text);
            let parts: Vec<(FileOutcome, bool, bool)> = chunks
                .par_chunks(DOCUMENTS_PER_TASK)
                .enumerate()
                .map(|(group_index, group)| {
                    let mut part = FileOutcome::new(active);
                    let (mut kubernetes, mut broken) = (false, false);
                    for (offset, chunk) in group.iter().enumerate() {
                        part.documents += 1;
                        match chunk.parse(group_index * DOCUMENTS_PER_TASK + offset) {
                            Err(b) => {
                                broken = true;
                                report_invalid(
                                    &mut part,
                                    b.error.pos,
                                    format!("YAML syntax error: {}", b.error.message),
                                );
                            }
                            Ok(doc) => {
                                let Some(root) = &doc.root else { continue };
                                kubernetes |= looks_like_kubernetes(root);
                                if root.is_null() {
                                    continue;
                                }
                                check_document(root, doc.index, &file, config, &[], active, &mut part);
                                report_duplicate_keys(&doc.duplicates, root, doc.index, &file, active, &mut part);
                            }
                        }
                    }
                    // Parts are all held until they are joined: none keeps what growing its vectors left unused.
                    part.findings.shrink_to_fit();
                    part.facts.shrink_to_fit();
                    (part, kubernetes, broken)
                })
                .collect();
            let kubernetes = parts.iter().any(|(_, k, _)| *k);
            let broken = parts.iter().any(|(_, _, b)| *b);
            out.parts = parts.into_iter().map(|(part, _, _)| part).collect();
            // A file none of whose documents look like Kubernetes (CI workflows, compose files,
            // Helm values) is not ours to judge: what was found in it is dropped.
            if !kubernetes && !broken {
                return FileOutcome { bytes: out.bytes, ..FileOutcome::new(active) };
            }
            out.comments.push((input.display.clone(), suppress::scan_comments(text)));
            if broken {
                // A document that does not parse is quoted by line in reports: find its secrets by shape.
                redact::collect_loose(text, &mut out.secrets);
            }
        }
    }
    out
}

/// The namespace objects without one take in a render whose unit says nothing about it: decided when the
/// release is installed. Not a namespace name (it has spaces), so it matches no object's namespace.
const AT_INSTALL: &str = "the release namespace";

/// Renders a unit and checks each rendered document under the name the renderer gives it
/// (`helm://release[/env]/templates/…`, `kustomize://root/…`); the findings are moved to source lines after
/// all rules ran.
fn check_unit(
    tree: &Arc<TreeRoot>,
    unit: &Unit,
    renderer: &dyn Renderer,
    config: &Config,
    active: &[(&'static Rule, crate::finding::Severity)],
) -> FileOutcome {
    let mut out = FileOutcome::new(active);
    let failed = active.iter().find(|(r, _)| r.id == rules::render_failed::RULE.id).copied();
    let report_failure = |out: &mut FileOutcome, problem: render::Problem| {
        if let Some((rule, sev)) = failed {
            let mut f = loader_finding(rule, &tree.show(&problem.file), problem.pos, problem.message, sev);
            f.environments = unit.environment.iter().cloned().collect();
            out.findings.push(f);
        }
    };
    let cx = render::RenderCx { dir: &tree.path, config };
    let output = match render::render_observed(renderer, unit, &cx) {
        Ok(output) => output,
        Err(problem) => {
            report_failure(&mut out, problem);
            return out;
        }
    };
    out.secrets.extend(&output.secrets);
    for problem in output.problems {
        report_failure(&mut out, problem);
    }
    if let Some((rule, sev)) = active.iter().find(|(r, _)| r.id == rules::render_skipped::RULE.id).copied() {
        for p in output.skipped {
            let mut f =
                loader_finding(rule, &tree.show(&p.file), p.pos, out.secrets.redact(&p.message).into_owned(), sev);
            f.environments = unit.environment.iter().cloned().collect();
            out.findings.push(f);
        }
    }
    for (file, text) in &output.comments {
        out.comments.push((tree.show(file), suppress::scan_comments(text)));
    }
    let unit_config = Config {
        namespace: match output.namespace {
            Namespace::Known(ns) => Some(ns),
            Namespace::AtInstall => Some(AT_INSTALL.to_string()),
            Namespace::Unknown => config.namespace.clone(),
        },
        kubernetes_version: output.kubernetes_version.unwrap_or(config.kubernetes_version),
        ..config.clone()
    };
    // Objects of different units never relate in cross-object rules: they are not deployed together.
    let scope: Arc<str> = Arc::from(
        format!("{}:{}#{}", unit.renderer, tree.show(&unit.root), unit.environment.as_deref().unwrap_or("")).as_str(),
    );
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for doc in output.docs {
        out.documents += 1;
        out.bytes += doc.text.len() as u64;
        let file: Arc<str> = Arc::from(doc.name.as_str());
        let (parsed, broken) = yaml::parse_stream(&doc.text);
        for b in broken {
            if let Some((rule, sev)) = active.iter().find(|(r, _)| r.id == rules::manifest_invalid::RULE.id) {
                let mut f = loader_finding(
                    rule,
                    &doc.name,
                    b.error.pos,
                    format!("rendered YAML does not parse: {}", b.error.message),
                    *sev,
                );
                f.document = Some(doc.index);
                out.findings.push(f);
            }
        }
        let first_fact = out.facts.len();
        let first_object = out.objects.len();
        for parsed_doc in &parsed {
            let Some(root) = &parsed_doc.root else { continue };
            if !root.is_null() {
                check_document(root, doc.index, &file, &unit_config, &doc.generated, active, &mut out);
                report_duplicate_keys(&parsed_doc.duplicates, root, doc.index, &file, active, &mut out);
            }
        }
        for fact in &mut out.facts.objects[first_fact..] {
            fact.scope = Some(scope.clone());
        }
        for object in &mut out.objects[first_object..] {
            object.unit = tree.show(&unit.root);
            object.environment = unit.environment.clone();
        }
        if seen.insert(doc.name.clone()) {
            out.rendered.push((
                doc.name,
                Rendered { source: doc.source, tree: tree.clone(), environment: unit.environment.clone() },
            ));
        }
    }
    out
}

/// `manifest-invalid` for each key a document repeats in one mapping, on the repeat, naming the first.
///
/// Rules read such a mapping as kubectl does, last value wins (`Node::get`), which is what a lenient
/// client applies; the API server's strict field validation refuses the object instead
/// (<https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation>). Either way the
/// earlier value is not what it looks like in review, so the repeat itself is the finding.
fn report_duplicate_keys(
    duplicates: &[yaml::DuplicateKey],
    root: &Node,
    document: usize,
    file: &Arc<str>,
    active: &[(&'static Rule, crate::finding::Severity)],
    out: &mut FileOutcome,
) {
    if duplicates.is_empty() {
        return;
    }
    let Some((rule, severity)) = active.iter().find(|(r, _)| r.id == rules::manifest_invalid::RULE.id) else {
        return;
    };
    let object = Object::from_root(root).map(|o| Arc::new(o.id()));
    for dup in duplicates {
        let place = if dup.mapping.0.is_empty() { "the top level".to_string() } else { format!("`{}`", dup.mapping) };
        let key: String = dup.key.chars().take(80).collect();
        let mut finding = loader_finding(
            rule,
            file,
            dup.again,
            format!(
                "key `{key}` appears again in {place} (first on line {}): the API server's strict decoding rejects \
                 the object, and kubectl keeps only the last value, so the earlier one is silently dropped; kpath \
                 checks the last one. Keep a single `{key}`",
                dup.first.line
            ),
            *severity,
        );
        finding.route = Some(dup.mapping.key(&dup.key));
        finding.object = object.clone();
        finding.document = Some(document);
        out.findings.push(finding);
    }
}

fn looks_like_kubernetes(root: &Node) -> bool {
    root.get("apiVersion").is_some() && root.get("kind").is_some()
}

/// Kinds that carry apiVersion/kind but are tool configuration, not cluster objects.
fn is_tool_config(root: &Node) -> bool {
    let api = root.get("apiVersion").and_then(Node::as_text).unwrap_or("");
    api.starts_with("kustomize.config.k8s.io/")
        || api.starts_with("skaffold/")
        || api.starts_with("config.kubernetes.io/")
}

fn check_document(
    root: &Node,
    document: usize,
    file: &Arc<str>,
    config: &Config,
    generated: &[crate::yaml::Route],
    active: &[(&'static Rule, crate::finding::Severity)],
    out: &mut FileOutcome,
) {
    if is_tool_config(root) {
        return;
    }
    redact::collect_tree(root, &mut out.secrets);
    // `kind: List` (and `…List`) holds objects under `items`, as kubectl accepts.
    if root.get("kind").and_then(Node::as_text).is_some_and(|k| k.ends_with("List"))
        && root.get("items").is_some_and(Node::is_seq)
    {
        for item in root.get("items").map(Node::items).unwrap_or_default() {
            check_object_root(item, document, file, config, generated, active, out);
        }
        return;
    }
    check_object_root(root, document, file, config, generated, active, out);
}

fn check_object_root(
    root: &Node,
    document: usize,
    file: &Arc<str>,
    config: &Config,
    generated: &[crate::yaml::Route],
    active: &[(&'static Rule, crate::finding::Severity)],
    out: &mut FileOutcome,
) {
    let Some(object) = Object::from_root(root) else {
        if let Some((rule, sev)) = active.iter().find(|(r, _)| r.id == rules::manifest_invalid::RULE.id) {
            let mut emitter = emitter(rule, *sev, file, Some(root), Some(document), None, &mut out.findings);
            rules::manifest_invalid::missing_identity(root, &mut emitter);
        }
        return;
    };
    let id = Arc::new(object.id());
    let findings_before = out.findings.len();
    let mut cx = ObjectCx::new(file, document, object, config, config.options(""));
    // Values the renderer produced at render time (a chart's random passwords) are not committed values.
    cx.generated = generated;
    for (rule, severity) in active {
        if let Some(check) = rule.check.object() {
            cx.options = config.options(rule.id);
            let mut emitter =
                emitter(rule, *severity, file, Some(root), Some(document), Some(id.clone()), &mut out.findings);
            check(&cx, &mut emitter);
        }
    }
    out.facts.read(&object, cx.pod_spec(), file, document);
    if let Some(ignored) = suppress::annotated(&object) {
        out.annotations.push((file.to_string(), document, ignored));
    }
    // What the secret rules flagged is a secret wherever it appears, whatever made the rule judge so.
    for finding in &out.findings[findings_before..] {
        if let Some(route) = finding.route.as_ref().filter(|_| rules::find(finding.rule).is_some_and(|r| r.secret)) {
            redact::collect_flagged(root, route, &mut out.secrets);
        }
    }
    if config.collect_objects {
        let secret_routes = out.findings[findings_before..]
            .iter()
            .filter(|f| rules::find(f.rule).is_some_and(|r| r.secret))
            .filter_map(|f| f.route.clone())
            .flat_map(|route| {
                // A secret rule pointing at an env var's `name` means its `value`: redact that, not the name.
                match route.0.last() {
                    Some(crate::yaml::Segment::Key(last)) if last == "name" => {
                        let mut value = route.clone();
                        value.0.pop();
                        vec![value.key("value")]
                    }
                    _ => vec![route],
                }
            })
            .collect();
        out.objects.push(CheckedObject {
            id: ObjectId::clone(&id),
            unit: file.to_string(),
            environment: None,
            node: root.clone(),
            secret_routes,
        });
    }
}

fn emitter<'a>(
    rule: &'static Rule,
    severity: crate::finding::Severity,
    file: &Arc<str>,
    root: Option<&'a Node>,
    document: Option<usize>,
    object: Option<Arc<ObjectId>>,
    out: &'a mut Vec<Finding>,
) -> Emitter<'a> {
    Emitter { rule, severity, file: file.clone(), root, document, object, out, emitted: 0 }
}

/// `Dockerfile.web` uses `Dockerfile.web.dockerignore` when present (BuildKit's rule), else the
/// `.dockerignore` beside it.
fn read_dockerignore(dockerfile: &std::path::Path) -> Option<String> {
    let dir = dockerfile.parent()?;
    let name = dockerfile.file_name()?.to_string_lossy();
    [dir.join(format!("{name}.dockerignore")), dir.join(".dockerignore")]
        .iter()
        .find_map(|p| crate::loader::read_bounded(p, MAX_FILE_BYTES).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}
