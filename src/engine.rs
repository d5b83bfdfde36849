//! The check pipeline: discover → per file (in parallel) parse, find objects, run local rules and
//! extract facts → run cross-object rules over the facts → apply suppression → sorted findings.
//!
//! Pure apart from reading the input files: takes paths and a config, returns data.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::config::{Config, RuleLevel};
use crate::finding::{Finding, ObjectId};
use crate::helm::check::RenderedSource;
use crate::loader::{self, Input, InputKind, Skipped};
use crate::model::Object;
use crate::model::facts::{self, Facts, ObjectFacts};
use crate::redact::{self, SecretSet};
use crate::rules::{self, DockerfileCx, Emitter, GlobalCx, IamCx, ObjectCx, Rule};
use crate::suppress::{self, IgnoreComment, SuppressionIndex};
use crate::yaml::{self, Node, Pos};

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
    /// Set when there were charts to render and no usable helm: the reason, for the CLI to report.
    #[serde(skip)]
    pub helm_missing: Option<String>,
    /// Every checked object, when `Config::collect_objects` is set.
    #[serde(skip)]
    pub objects: Vec<crate::review::model::ReviewedObject>,
    /// Every secret value the checked files hold: reports redact them from their output.
    #[serde(skip)]
    pub secrets: SecretSet,
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
    facts: Vec<ObjectFacts>,
    /// `kpath:ignore` comments, per file (a chart contributes its templates and values files).
    comments: Vec<(String, Vec<IgnoreComment>)>,
    /// Where rendered Helm documents came from, by their `helm://` name.
    rendered: Vec<(String, RenderedSource)>,
    objects: Vec<crate::review::model::ReviewedObject>,
    /// Secret values found in the file (or the chart's values files and renders).
    secrets: SecretSet,
    documents: usize,
    bytes: u64,
    /// Outcomes of groups of this file's documents checked in parallel, in document order.
    parts: Vec<FileOutcome>,
}

impl FileOutcome {
    fn empty() -> FileOutcome {
        FileOutcome {
            findings: Vec::new(),
            facts: Vec::new(),
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

/// Checks files and directories.
pub fn check_paths(paths: &[PathBuf], config: &Config) -> Report {
    let (inputs, skipped) = loader::discover(paths, config);
    let mut report = check_inputs(&inputs, config);
    report.skipped = skipped;
    report
}

pub fn check_inputs(inputs: &[Input], config: &Config) -> Report {
    let active: Vec<(&'static Rule, crate::finding::Severity)> = rules::RULES
        .iter()
        .filter_map(|r| match config.level(r) {
            RuleLevel::Off => None,
            RuleLevel::On(sev) => Some((*r, sev)),
        })
        .collect();
    // Helm is looked for once, and only when there is a chart to render.
    let helm = inputs
        .iter()
        .any(|i| i.kind == InputKind::HelmChart)
        .then(|| crate::helm::binary::find(config.helm.binary.as_deref()));
    let outcomes: Vec<FileOutcome> =
        inputs.par_iter().map(|input| check_file(input, config, &active, helm.as_ref())).collect();

    let mut report = Report { helm_missing: helm.and_then(Result::err).map(|e| e.to_string()), ..Report::default() };
    let mut index = SuppressionIndex::default();
    let mut rendered: HashMap<String, RenderedSource> = HashMap::new();
    // Sized once: growing these by doubling left up to half of each unused, on hundreds of thousands of
    // findings and facts.
    let with_parts =
        |o: &FileOutcome, count: fn(&FileOutcome) -> usize| count(o) + o.parts.iter().map(count).sum::<usize>();
    let mut all_facts = Vec::with_capacity(outcomes.iter().map(|o| with_parts(o, |p| p.facts.len())).sum());
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
        for f in &outcome.facts {
            if !f.ignored_rules.is_empty() {
                index.annotations.insert((f.place.file.to_string(), f.place.document), f.ignored_rules.clone());
            }
        }
        all_facts.extend(outcome.facts);
    }
    let all_facts = Facts::new(all_facts);

    for (rule, severity) in &active {
        if let Some(check) = rule.check.global() {
            let cx = GlobalCx { facts: &all_facts, config, options: config.options(rule.id) };
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

    // Findings on rendered Helm objects move to the values and template lines that produced them.
    if !rendered.is_empty() {
        for finding in &mut report.findings {
            if let Some(source) = rendered.get(&finding.file) {
                crate::helm::check::place(finding, source);
            }
        }
        let order = crate::helm::check::environment_order(config);
        report.findings = crate::helm::check::merge_environments(std::mem::take(&mut report.findings), &order);
    }

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
    report
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
        help: rule.help().to_string(),
        suppressed: None,
        locations: Vec::new(),
        environments: Vec::new(),
        document: None,
        origin: None,
    }
}

type HelmLookup = Result<crate::helm::Helm, crate::helm::binary::FindError>;

fn check_file(
    input: &Input,
    config: &Config,
    active: &[(&'static Rule, crate::finding::Severity)],
    helm: Option<&HelmLookup>,
) -> FileOutcome {
    let mut out = FileOutcome::empty();
    let invalid = active.iter().find(|(r, _)| r.id == rules::manifest_invalid::RULE.id).copied();
    let report_invalid = |out: &mut FileOutcome, pos: Pos, message: String| {
        if let Some((rule, sev)) = invalid {
            out.findings.push(loader_finding(rule, &input.display, pos, message, sev));
        }
    };

    if input.kind == InputKind::HelmChart {
        check_chart(input, config, active, helm, &mut out);
        return out;
    }

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
    // A Kustomization beside the file sets its namespace, unless the configuration already does.
    let kustomized;
    let config = match (&input.namespace, &config.namespace) {
        (Some(ns), None) => {
            kustomized = Config { namespace: Some(ns.clone()), ..config.clone() };
            &kustomized
        }
        _ => config,
    };
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
                        check_document(&root, 0, &file, config, active, &mut out);
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
                    let mut part = FileOutcome::empty();
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
                                check_document(root, doc.index, &file, config, active, &mut part);
                                report_duplicate_keys(&doc.duplicates, root, doc.index, &file, active, &mut part);
                            }
                        }
                    }
                    (part, kubernetes, broken)
                })
                .collect();
            let kubernetes = parts.iter().any(|(_, k, _)| *k);
            let broken = parts.iter().any(|(_, _, b)| *b);
            out.parts = parts.into_iter().map(|(part, _, _)| part).collect();
            // A file none of whose documents look like Kubernetes (CI workflows, compose files,
            // Helm values) is not ours to judge: what was found in it is dropped.
            if !kubernetes && !broken {
                return FileOutcome { bytes: out.bytes, ..FileOutcome::empty() };
            }
            out.comments.push((input.display.clone(), suppress::scan_comments(text)));
            if broken {
                // A document that does not parse is quoted by line in reports: find its secrets by shape.
                redact::collect_loose(text, &mut out.secrets);
            }
        }
        InputKind::HelmChart => {}
    }
    out
}

/// Renders a chart's units and checks the rendered objects as if they were files named
/// `helm://release[/env]/templates/…`; the findings are moved to source lines after all rules ran.
fn check_chart(
    input: &Input,
    config: &Config,
    active: &[(&'static Rule, crate::finding::Severity)],
    helm: Option<&HelmLookup>,
    out: &mut FileOutcome,
) {
    let failed = active.iter().find(|(r, _)| r.id == rules::render_failed::RULE.id).copied();
    let report_failure = |out: &mut FileOutcome, problem: &crate::helm::RenderProblem, env: Option<&String>| {
        if let Some((rule, sev)) = failed {
            let mut f = loader_finding(
                rule,
                &format!("{}/{}", input.display, problem.file),
                problem.pos,
                problem.message.clone(),
                sev,
            );
            f.environments = env.into_iter().cloned().collect();
            out.findings.push(f);
        }
    };
    let helm = match helm {
        Some(Ok(helm)) => helm,
        Some(Err(e)) => {
            let problem = crate::helm::RenderProblem {
                file: "Chart.yaml".into(),
                pos: Pos { line: 1, col: 1 },
                message: e.to_string(),
            };
            report_failure(out, &problem, None);
            return;
        }
        None => return,
    };
    let limits = crate::helm::Limits {
        timeout: config.helm.timeout,
        max_output: config.helm.max_output,
        concurrency: config.helm.concurrency,
        cache_dir: config.helm.cache_dir.clone(),
        memory_per_render: config.helm.memory_per_render,
        memory_total: config.helm.memory_total,
    };
    let mut scanned: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut values_scanned: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    for unit in crate::helm::units(&input.path, &input.display, config) {
        // Before rendering: a render that fails may quote values in its error (`required`, `fail`).
        collect_values_secrets(&unit, &mut values_scanned, &mut out.secrets);
        // Objects without a namespace are installed into the release's namespace.
        let unit_config = Config {
            namespace: Some(unit.namespace.clone().unwrap_or_else(|| crate::helm::RELEASE_NAMESPACE.to_string())),
            kubernetes_version: unit.kubernetes_version,
            ..config.clone()
        };
        let crate::helm::check::UnitRender { docs, problems } =
            match crate::helm::check::render_unit(helm, &unit, &limits) {
                Ok(rendered) => rendered,
                Err(problem) => {
                    report_failure(out, &problem, unit.environment.as_ref());
                    continue;
                }
            };
        for problem in &problems {
            report_failure(out, problem, unit.environment.as_ref());
        }
        for crate::helm::check::UnitDoc { pseudo, index, text, source } in docs {
            out.documents += 1;
            out.bytes += text.len() as u64;
            if scanned.insert(source.template_display.clone()) {
                out.comments.push((source.template_display.clone(), suppress::scan_comments(&source.template_text)));
                for (path, values_text, _) in source.values.iter() {
                    if scanned.insert(path.clone()) {
                        out.comments.push((path.clone(), suppress::scan_comments(values_text)));
                    }
                }
            }
            let file: Arc<str> = Arc::from(pseudo.as_str());
            let (parsed, broken) = yaml::parse_stream(&text);
            for b in broken {
                if let Some((rule, sev)) = active.iter().find(|(r, _)| r.id == rules::manifest_invalid::RULE.id) {
                    let mut f = loader_finding(
                        rule,
                        &pseudo,
                        b.error.pos,
                        format!("rendered YAML does not parse: {}", b.error.message),
                        *sev,
                    );
                    f.document = Some(index);
                    out.findings.push(f);
                }
            }
            let first_fact = out.facts.len();
            let first_object = out.objects.len();
            for doc in &parsed {
                let Some(root) = &doc.root else { continue };
                if !root.is_null() {
                    check_document(root, index, &file, &unit_config, active, out);
                    report_duplicate_keys(&doc.duplicates, root, index, &file, active, out);
                }
            }
            if let Some(env) = &unit.environment {
                let scope: Arc<str> = Arc::from(format!("{}/{env}", unit.release).as_str());
                for fact in &mut out.facts[first_fact..] {
                    fact.scope = Some(scope.clone());
                }
            }
            for object in &mut out.objects[first_object..] {
                object.unit = input.display.clone();
                object.environment = unit.environment.clone();
            }
            out.rendered.push((pseudo, source));
        }
    }
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
    let object = Object::from_root(root).map(|o| o.id());
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

/// Secrets of a render unit's values: sensitive settings of the chart's (and its subcharts') `values.yaml`,
/// of the unit's values files and of its `--set` overrides.
fn collect_values_secrets(
    unit: &crate::helm::RenderUnit,
    scanned: &mut std::collections::HashSet<PathBuf>,
    secrets: &mut SecretSet,
) {
    let subcharts = walkdir::WalkDir::new(&unit.chart_dir)
        .follow_links(false)
        .max_depth(8)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && matches!(e.file_name().to_str(), Some("values.yaml" | "values.yml")))
        .map(|e| e.into_path());
    let files: Vec<PathBuf> = subcharts.chain(unit.values.iter().map(|v| unit.chart_dir.join(v))).collect();
    for path in files {
        if !scanned.insert(path.clone()) {
            continue;
        }
        if std::fs::metadata(&path).map_or(true, |m| m.len() > MAX_FILE_BYTES) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let (docs, broken) = yaml::parse_stream(&text);
        for root in docs.iter().filter_map(|d| d.root.as_ref()) {
            redact::collect_tree(root, secrets);
        }
        if !broken.is_empty() {
            redact::collect_loose(&text, secrets);
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
            check_object_root(item, document, file, config, active, out);
        }
        return;
    }
    check_object_root(root, document, file, config, active, out);
}

fn check_object_root(
    root: &Node,
    document: usize,
    file: &Arc<str>,
    config: &Config,
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
    let id = object.id();
    let findings_before = out.findings.len();
    let mut cx = ObjectCx::new(file, document, object, config, config.options(""));
    for (rule, severity) in active {
        if let Some(check) = rule.check.object() {
            cx.options = config.options(rule.id);
            let mut emitter =
                emitter(rule, *severity, file, Some(root), Some(document), Some(id.clone()), &mut out.findings);
            check(&cx, &mut emitter);
        }
    }
    out.facts.push(facts::extract_with_pod(&object, cx.pod_spec(), file, document));
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
        out.objects.push(crate::review::model::ReviewedObject {
            id: id.clone(),
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
    object: Option<ObjectId>,
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
