//! Runs one rule's check on text the way the engine does, for the rules' unit tests.
//!
//! Each `*_findings` function builds the context the rule's kind of check takes (an object, the facts
//! of a stream, an IAM policy, a Dockerfile) and an [`Emitter`] filled in as the engine fills it, then
//! returns what the rule found. The accessors and builders below keep the tests short.

use std::sync::Arc;

use crate::config::{Config, RuleLevel};
use crate::finding::{Finding, ObjectId};
use crate::model::Object;
use crate::model::facts::{FactSet, Facts};
use crate::rules::{DockerfileCx, Emitter, GlobalCx, IamCx, ObjectCx, Rule, manifest_invalid};
use crate::yaml::Node;

/// The `.dockerignore` that [`dockerfile_findings`] uses: one that excludes everything but `src`.
const DOCKERIGNORE: &str = "*\n!src\n";

/// Runs an object rule over every document of `yaml` with the default configuration.
pub(crate) fn object_findings(rule: &'static Rule, yaml: &str) -> Vec<Finding> {
    object_findings_with(rule, yaml, &Config::default())
}

/// Runs an object rule over every document of `yaml`. Empty documents are skipped; a document that is
/// not an object goes to `manifest-invalid` as in the engine, and is a mistake in any other rule's test.
pub(crate) fn object_findings_with(rule: &'static Rule, yaml: &str, config: &Config) -> Vec<Finding> {
    let Some(check) = rule.check.object() else { panic!("{} is not an object rule", rule.id) };
    let mut found = Vec::new();
    for (document, root) in &documents(yaml) {
        let object = Object::from_root(root);
        let id = object.as_ref().map(Object::id);
        let mut out = emitter(rule, config, "t.yaml", Some(root), Some(*document), id, &mut found);
        match object {
            Some(object) => {
                check(&ObjectCx::new("t.yaml", *document, object, config, config.options(rule.id)), &mut out)
            }
            None if rule.id == manifest_invalid::RULE.id => manifest_invalid::missing_identity(root, &mut out),
            None => panic!("test document {document} has no apiVersion, kind and name"),
        }
    }
    found
}

/// Runs a global rule over the facts of every object of `yaml` with the default configuration.
pub(crate) fn global_findings(rule: &'static Rule, yaml: &str) -> Vec<Finding> {
    global_findings_with(rule, yaml, &Config::default())
}

/// Runs a global rule over the facts of every object of `yaml`.
pub(crate) fn global_findings_with(rule: &'static Rule, yaml: &str, config: &Config) -> Vec<Finding> {
    let Some(check) = rule.check.global() else { panic!("{} is not a global rule", rule.id) };
    let file: Arc<str> = Arc::from("t.yaml");
    let kinds = crate::rules::fact_kinds([rule]);
    let mut set = FactSet::new(&kinds);
    for (document, root) in &documents(yaml) {
        let object = Object::from_root(root)
            .unwrap_or_else(|| panic!("test document {document} has no apiVersion, kind and name"));
        set.read(&object, object.pod_spec().as_ref(), &file, *document);
    }
    let facts = Facts::new(set);
    let mut found = Vec::new();
    let show = |place: &crate::model::facts::Place| format!("{}:{}", place.file, place.pos.line);
    let cx = GlobalCx { facts: &facts, config, options: config.options(rule.id), show: &show };
    check(&cx, &mut emitter(rule, config, "", None, None, None, &mut found));
    found
}

/// Runs an IAM rule over one JSON policy document.
pub(crate) fn iam_findings(rule: &'static Rule, json: &str) -> Vec<Finding> {
    let Some(check) = rule.check.iam() else { panic!("{} is not an IAM rule", rule.id) };
    let root = crate::yaml::parse_single(json).expect("test JSON parses").expect("test JSON is not empty");
    let config = Config::default();
    let mut found = Vec::new();
    let cx = IamCx { file: "p.json", root: &root, config: &config, options: config.options(rule.id) };
    check(&cx, &mut emitter(rule, &config, "p.json", Some(&root), None, None, &mut found));
    found
}

/// Runs a Dockerfile rule with the default configuration and a `.dockerignore` that excludes things.
pub(crate) fn dockerfile_findings(rule: &'static Rule, text: &str) -> Vec<Finding> {
    dockerfile_findings_with(rule, text, Some(DOCKERIGNORE), &Config::default())
}

/// Runs a Dockerfile rule with the given `.dockerignore` (`None`: there is none) and configuration.
pub(crate) fn dockerfile_findings_with(
    rule: &'static Rule,
    text: &str,
    dockerignore: Option<&str>,
    config: &Config,
) -> Vec<Finding> {
    let Some(check) = rule.check.dockerfile() else { panic!("{} is not a Dockerfile rule", rule.id) };
    let dockerfile = crate::dockerfile::parse(text);
    let cx = DockerfileCx {
        file: "Dockerfile",
        dockerfile: &dockerfile,
        dockerignore,
        config,
        options: config.options(rule.id),
    };
    let mut found = Vec::new();
    check(&cx, &mut emitter(rule, config, "Dockerfile", None, None, None, &mut found));
    found
}

/// The non-empty documents of a YAML stream with their index; the test text must parse.
fn documents(yaml: &str) -> Vec<(usize, Node)> {
    let (docs, broken) = crate::yaml::parse_stream(yaml);
    assert!(broken.is_empty(), "test YAML does not parse: {broken:?}");
    docs.into_iter().filter_map(|d| Some((d.index, d.root.filter(|r| !r.is_null())?))).collect()
}

/// The emitter the engine would hand `rule` for `file`, at the severity `config` gives the rule.
fn emitter<'a>(
    rule: &'static Rule,
    config: &Config,
    file: &str,
    root: Option<&'a Node>,
    document: Option<usize>,
    object: Option<ObjectId>,
    out: &'a mut Vec<Finding>,
) -> Emitter<'a> {
    let severity = match config.level(rule) {
        RuleLevel::On(severity) => severity,
        RuleLevel::Off => rule.severity,
    };
    Emitter { rule, severity, file: Arc::from(file), root, document, object: object.map(Arc::new), out, emitted: 0 }
}

/// The findings' messages, in order.
pub(crate) fn messages(found: &[Finding]) -> Vec<String> {
    found.iter().map(|f| f.message.clone()).collect()
}

/// The findings' routes, printed (empty for a finding without one).
pub(crate) fn routes(found: &[Finding]) -> Vec<String> {
    found.iter().map(|f| f.route.as_ref().map(ToString::to_string).unwrap_or_default()).collect()
}

/// Each finding's line and message.
pub(crate) fn lines_and_messages(found: &[Finding]) -> Vec<(u32, String)> {
    found.iter().map(|f| (f.line, f.message.clone())).collect()
}

/// Each finding as `<line>: <message>`.
pub(crate) fn numbered(found: &[Finding]) -> Vec<String> {
    found.iter().map(|f| format!("{}: {}", f.line, f.message)).collect()
}

/// Each finding as `<route> <message>`.
pub(crate) fn routed(found: &[Finding]) -> Vec<String> {
    routes(found).into_iter().zip(found).map(|(route, f)| format!("{route} {}", f.message)).collect()
}

/// A workload of `kind` (Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob) named `t` in namespace
/// `t`, whose pod spec is `pod_spec`, written at column 0.
pub(crate) fn workload(kind: &str, pod_spec: &str) -> String {
    let (api, head, depth) = match kind {
        "Pod" => ("v1", "spec:\n", 1),
        "Deployment" | "StatefulSet" | "DaemonSet" => ("apps/v1", "spec:\n  template:\n    spec:\n", 3),
        "Job" => ("batch/v1", "spec:\n  template:\n    spec:\n", 3),
        "CronJob" => (
            "batch/v1",
            "spec:\n  schedule: \"0 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n",
            5,
        ),
        other => panic!("no template for {other}"),
    };
    let body = indent(pod_spec, depth);
    format!("apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: t\n  namespace: t\n{head}{body}")
}

/// A Deployment whose single container `app` also has `container_fields` (YAML written at column 0).
pub(crate) fn deployment(container_fields: &str) -> String {
    let fields = indent(container_fields, 2);
    workload("Deployment", &format!("containers:\n  - name: app\n    image: registry.example.com/app:1.0.0\n{fields}"))
}

/// `text` with every line indented by `depth` levels of two spaces.
pub(crate) fn indent(text: &str, depth: usize) -> String {
    let indent = "  ".repeat(depth);
    text.lines().map(|l| format!("{indent}{l}\n")).collect()
}
