//! The rule catalogue: one rule per file, each a static [`Rule`] whose documentation is data on the rule.
//!
//! `kpath rules`, `kpath explain`, the SARIF rule descriptions and (later) `/kpath explain` all read the
//! same fields. Each rule's bad and good examples are fixture directories under `fixtures/rules/<id>/`;
//! a test runs every one of them (bad → exactly that rule, good → nothing).

use std::sync::Arc;

use crate::config::{Config, RuleOptions};
use crate::dockerfile::Dockerfile;
use crate::finding::{Finding, ObjectId, Severity};
use crate::model::Object;
use crate::model::facts::{FactKind, Facts, ObjectFacts, Place, Spot};
use crate::yaml::{Node, Pos, Route};

mod api_deprecated;
mod aws_static_credentials;
mod dockerfile_base_not_minimal;
mod dockerfile_no_dockerignore;
mod dockerfile_package_cache;
pub(crate) mod dockerfile_secret_env;
mod dockerfile_shell_form_cmd;
mod dockerfile_single_stage_build;
pub mod fix;
mod hpa_min_replicas;
mod hpa_missing_requests;
mod hpa_replicas_conflict;
mod hpa_target_missing;
mod iam_trust_policy_duplicate_key;
mod iam_trust_policy_unscoped;
mod image_latest;
mod keda_trigger_too_fine;
mod log_to_file;
pub(crate) mod manifest_invalid;
mod namespace_default;
mod namespace_missing;
mod namespace_shared;
mod prestop_sleep;
mod probe_liveness_checks_dependencies;
mod probe_liveness_missing;
mod probe_readiness_missing;
pub(crate) mod render_failed;
pub(crate) mod render_skipped;
mod resources_cpu_limit;
mod resources_memory_limit;
mod resources_request_above_limit;
mod resources_requests_missing;
pub mod scale;
mod secret_committed;
mod secret_in_configmap;
mod secret_in_env;
mod shell_pid1;
#[cfg(test)]
pub(crate) mod testing;
mod volume_hostpath;
mod volume_local_pv;
mod volume_oversized;

/// Every rule, in the order `kpath rules` lists them (grouped by guideline section).
pub static RULES: &[&Rule] = &[
    &dockerfile_base_not_minimal::RULE,
    &dockerfile_single_stage_build::RULE,
    &dockerfile_package_cache::RULE,
    &dockerfile_no_dockerignore::RULE,
    &dockerfile_shell_form_cmd::RULE,
    &log_to_file::RULE,
    &probe_readiness_missing::RULE,
    &probe_liveness_missing::RULE,
    &probe_liveness_checks_dependencies::RULE,
    &prestop_sleep::RULE,
    &shell_pid1::RULE,
    &secret_in_env::RULE,
    &secret_in_configmap::RULE,
    &secret_committed::RULE,
    &dockerfile_secret_env::RULE,
    &aws_static_credentials::RULE,
    &iam_trust_policy_duplicate_key::RULE,
    &iam_trust_policy_unscoped::RULE,
    &namespace_default::RULE,
    &namespace_missing::RULE,
    &namespace_shared::RULE,
    &volume_hostpath::RULE,
    &volume_local_pv::RULE,
    &volume_oversized::RULE,
    &resources_requests_missing::RULE,
    &resources_memory_limit::RULE,
    &resources_request_above_limit::RULE,
    &resources_cpu_limit::RULE,
    &hpa_replicas_conflict::RULE,
    &hpa_min_replicas::RULE,
    &hpa_missing_requests::RULE,
    &hpa_target_missing::RULE,
    &keda_trigger_too_fine::RULE,
    &api_deprecated::RULE,
    &image_latest::RULE,
    &manifest_invalid::RULE,
    &render_failed::RULE,
    &render_skipped::RULE,
];

pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.id == id)
}

/// The rule id closest to `id`, for "did you mean".
pub fn closest(id: &str) -> Option<&'static str> {
    RULES
        .iter()
        .map(|r| (strsim::jaro_winkler(id, r.id), r.id))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, id)| id)
}

/// A rule: its documentation and its check.
pub struct Rule {
    /// Stable kebab-case id, used in config, suppressions and fingerprints. Never renamed.
    pub id: &'static str,
    /// The golden-path guideline section this rule enforces.
    pub section: &'static str,
    pub severity: Severity,
    /// One line, shown by `kpath rules` and as the SARIF short description.
    pub summary: &'static str,
    /// Markdown: what is wrong and why it matters, in our own words.
    pub why: &'static str,
    /// Markdown: how to fix it; the first sentence is used as the `help:` of each finding.
    pub fix: &'static str,
    /// True when findings of this rule are about secret material: reports never quote the source line.
    pub secret: bool,
    pub options: &'static [RuleOption],
    /// The fix as a GitHub suggestion, when it is a mechanical edit of the commented line (or of a few lines
    /// around it): their replacement (empty deletes them). Each is tested by applying it and checking again.
    pub suggest: Option<fn(&fix::FixCx<'_>) -> Option<fix::Suggestion>>,
    pub bad: Example,
    pub good: Example,
    pub check: Check,
}

/// A configurable threshold of a rule (`.kpath.yml` → `rules.<id>.<name>`), typed: a value of the wrong
/// type is a configuration error naming its line when the configuration loads.
pub struct RuleOption {
    pub name: &'static str,
    pub kind: OptionKind,
    /// Default, written as it would be in YAML (`"100Gi"`, `"15"`, `"[]"`); it must read as `kind`.
    pub default: &'static str,
    pub doc: &'static str,
}

/// The type of a rule option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// A Kubernetes quantity above zero (`500Gi`, `1Ti`).
    Quantity,
    /// A duration above zero (`90s`, `2m`, `1h30m`), as Prometheus and Go write them.
    Duration,
    /// A number, zero or more (`15`, `0.5`).
    Number,
    /// A list of strings (`[a, "b/*"]`); a lone string is a list of one.
    Strings,
}

/// A rule option's value, read once when the configuration loads.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    Quantity(crate::quantity::Quantity),
    /// Milliseconds.
    Duration(u64),
    Number(f64),
    Strings(Vec<String>),
}

impl OptionKind {
    /// What a value of this kind looks like, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            OptionKind::Quantity => "a Kubernetes quantity such as 500Gi",
            OptionKind::Duration => "a duration such as 90s or 2m",
            OptionKind::Number => "a number of zero or more, such as 15",
            OptionKind::Strings => "a list of strings, such as [a, b]",
        }
    }

    /// Reads `node` as a value of this kind; the error says what was expected.
    pub fn read(self, node: &Node) -> Result<OptionValue, String> {
        let scalar = || node.as_text().filter(|_| !node.is_seq() && !node.is_map()).map(str::trim);
        let value = match self {
            OptionKind::Quantity => {
                scalar().and_then(crate::quantity::parse_quantity).filter(|q| q.0 > 0).map(OptionValue::Quantity)
            }
            OptionKind::Duration => {
                scalar().and_then(crate::quantity::parse_duration_ms).filter(|ms| *ms > 0).map(OptionValue::Duration)
            }
            OptionKind::Number => scalar()
                .and_then(|t| t.parse::<f64>().ok())
                .filter(|n| n.is_finite() && *n >= 0.0)
                .map(OptionValue::Number),
            OptionKind::Strings if node.is_seq() => node
                .items()
                .iter()
                .map(|i| i.as_text().filter(|_| !i.is_seq() && !i.is_map()).map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(OptionValue::Strings),
            OptionKind::Strings if node.is_null() => Some(OptionValue::Strings(Vec::new())),
            OptionKind::Strings => scalar().map(|t| OptionValue::Strings(vec![t.to_string()])),
        };
        value.ok_or_else(|| {
            let shown = if node.is_seq() {
                "a list".to_string()
            } else if node.is_map() {
                "a mapping".to_string()
            } else {
                format!("`{}`", crate::cmdline::shown(node.as_text().unwrap_or("")))
            };
            format!("must be {}, not {shown}", self.expected())
        })
    }
}

/// A fixture directory: files and their text, embedded at build time.
pub struct Example {
    pub dir: &'static str,
    pub files: &'static [(&'static str, &'static str)],
}

/// How a rule looks at its input.
#[derive(Clone, Copy)]
pub enum Check {
    /// Once per Kubernetes object.
    Object(fn(&ObjectCx<'_>, &mut Emitter<'_>)),
    /// Once per Dockerfile.
    Dockerfile(fn(&DockerfileCx<'_>, &mut Emitter<'_>)),
    /// Once per IAM policy document (JSON).
    Iam(fn(&IamCx<'_>, &mut Emitter<'_>)),
    /// Once over the facts of all objects checked together.
    Global(Global),
    /// Once per Kubernetes object and once per Dockerfile (e.g. logging to a file from either).
    ObjectAndDockerfile(fn(&ObjectCx<'_>, &mut Emitter<'_>), fn(&DockerfileCx<'_>, &mut Emitter<'_>)),
    /// Once per object, and once over all facts (e.g. env set directly, or through `envFrom`).
    ObjectAndGlobal(fn(&ObjectCx<'_>, &mut Emitter<'_>), Global),
    /// Raised by the loader, not by a check of its own (e.g. a chart that was not rendered).
    Loader,
}

type ObjectFn = fn(&ObjectCx<'_>, &mut Emitter<'_>);
type DockerfileFn = fn(&DockerfileCx<'_>, &mut Emitter<'_>);
type IamFn = fn(&IamCx<'_>, &mut Emitter<'_>);
type GlobalFn = fn(&GlobalCx<'_>, &mut Emitter<'_>);

/// A check over all objects checked together, and the facts it reads of each object (read only while a rule
/// that reads them is on).
#[derive(Clone, Copy)]
pub struct Global {
    pub run: GlobalFn,
    pub reads: &'static [&'static FactKind],
}

impl Check {
    pub fn object(self) -> Option<ObjectFn> {
        match self {
            Check::Object(f) | Check::ObjectAndDockerfile(f, _) | Check::ObjectAndGlobal(f, _) => Some(f),
            _ => None,
        }
    }

    pub fn dockerfile(self) -> Option<DockerfileFn> {
        match self {
            Check::Dockerfile(f) | Check::ObjectAndDockerfile(_, f) => Some(f),
            _ => None,
        }
    }

    pub fn iam(self) -> Option<IamFn> {
        match self {
            Check::Iam(f) => Some(f),
            _ => None,
        }
    }

    pub fn global(self) -> Option<GlobalFn> {
        match self {
            Check::Global(g) | Check::ObjectAndGlobal(_, g) => Some(g.run),
            _ => None,
        }
    }

    /// The fact kinds the rule's global check reads.
    pub fn reads(self) -> &'static [&'static FactKind] {
        match self {
            Check::Global(g) | Check::ObjectAndGlobal(_, g) => g.reads,
            _ => &[],
        }
    }
}

/// The fact kinds these rules read, each once.
pub fn fact_kinds<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Vec<&'static FactKind> {
    let mut kinds: Vec<&'static FactKind> = Vec::new();
    for kind in rules.into_iter().flat_map(|r| r.check.reads()) {
        if !kinds.iter().any(|k| k.name == kind.name) {
            kinds.push(kind);
        }
    }
    kinds
}

/// The fact kinds any rule reads (a context file read once for every check, whatever its rules).
pub fn all_fact_kinds() -> Vec<&'static FactKind> {
    fact_kinds(RULES.iter().copied())
}

pub struct ObjectCx<'a> {
    pub file: &'a str,
    pub document: usize,
    pub object: Object<'a>,
    pub config: &'a Config,
    pub options: &'a RuleOptions,
    /// Routes whose values the renderer produced at render time (a chart's `randAlphaNum` password):
    /// they are not committed values. Empty for a file checked as written.
    pub generated: &'a [Route],
    /// The object's pod spec and containers, read once and shared by every rule.
    pod: Option<crate::model::PodSpec<'a>>,
}

impl<'a> ObjectCx<'a> {
    pub fn new(
        file: &'a str,
        document: usize,
        object: Object<'a>,
        config: &'a Config,
        options: &'a RuleOptions,
    ) -> Self {
        ObjectCx { file, document, object, config, options, generated: &[], pod: object.pod_spec() }
    }

    /// The pod spec of a workload (Pod, Deployment, CronJob, Rollout …), if the object has one.
    pub fn pod_spec(&self) -> Option<&crate::model::PodSpec<'a>> {
        self.pod.as_ref()
    }
}

pub struct DockerfileCx<'a> {
    pub file: &'a str,
    pub dockerfile: &'a Dockerfile,
    /// The `.dockerignore` that applies (`<name>.dockerignore` beside it, else `.dockerignore`), if any.
    pub dockerignore: Option<&'a str>,
    pub config: &'a Config,
    pub options: &'a RuleOptions,
}

pub struct IamCx<'a> {
    pub file: &'a str,
    pub root: &'a Node,
    pub config: &'a Config,
    pub options: &'a RuleOptions,
}

pub struct GlobalCx<'a> {
    pub facts: &'a Facts,
    pub config: &'a Config,
    pub options: &'a RuleOptions,
    /// Where a person finds a place (`file:line`): for a rendered object, the source line that produced it.
    pub show: &'a (dyn Fn(&Place) -> String + Sync),
}

impl GlobalCx<'_> {
    /// The other object of a cross-object finding, as its message names it: `` (`apps/web/hpa.yaml:1`)``.
    pub fn at(&self, object: &ObjectFacts) -> String {
        format!(" (`{}`)", (self.show)(&object.place()))
    }
}

/// Collects a rule's findings, resolving routes to positions while the tree is at hand.
pub struct Emitter<'a> {
    pub(crate) rule: &'static Rule,
    pub(crate) severity: Severity,
    pub(crate) file: Arc<str>,
    pub(crate) root: Option<&'a Node>,
    pub(crate) document: Option<usize>,
    pub(crate) object: Option<Arc<ObjectId>>,
    pub(crate) out: &'a mut Vec<Finding>,
    /// Findings this emitter has produced (see [`MAX_FINDINGS_PER_DOCUMENT`]).
    pub(crate) emitted: usize,
}

/// At most this many findings of one rule in one document (or Dockerfile, or policy); past it one more
/// says how the rest were left out. No real manifest comes near it, but a generated one (a Deployment
/// with 100,000 containers) would otherwise make millions of findings and gigabytes of reports.
pub const MAX_FINDINGS_PER_DOCUMENT: usize = 1_000;

impl Emitter<'_> {
    /// A finding at a route of the current document (the key's line for a mapping entry; the nearest
    /// existing ancestor when the field is missing).
    pub fn at(&mut self, route: Route, message: impl Into<String>) {
        let pos = self.root.map(|root| route.locate(root).0).unwrap_or(Pos { line: 1, col: 1 });
        self.push(pos, Some(route), message.into(), None);
    }

    /// Like [`Emitter::at`] for a finding about one part of the scalar at `route` ([`Finding::part`]: the
    /// tag of an image, one credential in a URL), so a rendered value built from several references is
    /// placed on the one that produced that part.
    pub fn at_part(&mut self, route: Route, part: &str, message: impl Into<String>) {
        let pos = self.root.map(|root| route.locate(root).0).unwrap_or(Pos { line: 1, col: 1 });
        self.push(pos, Some(route), message.into(), None);
        // Past the cap the last finding is the "more than …" one (or none was added).
        if !part.is_empty()
            && self.emitted <= MAX_FINDINGS_PER_DOCUMENT
            && let Some(last) = self.out.last_mut()
        {
            last.part = Some(part.to_string());
        }
    }

    /// Like [`Emitter::at`] with a help text specific to this finding.
    pub fn at_with_help(&mut self, route: Route, message: impl Into<String>, help: impl Into<String>) {
        let pos = self.root.map(|root| route.locate(root).0).unwrap_or(Pos { line: 1, col: 1 });
        self.push(pos, Some(route), message.into(), Some(help.into()));
    }

    /// A finding at a position of the current file (Dockerfiles, JSON).
    pub fn at_pos(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(pos, None, message.into(), None);
    }

    /// A finding at an already-resolved place (global rules).
    /// A finding at a place of `object`'s document, about that object.
    pub fn at_fact(&mut self, object: &ObjectFacts, spot: &Spot, message: impl Into<String>) {
        self.at_place(&object.at(spot), &object.id(), message);
    }

    pub fn at_place(&mut self, place: &Place, object: &ObjectId, message: impl Into<String>) {
        self.out.push(Finding {
            rule: self.rule.id,
            severity: self.severity,
            message: message.into(),
            file: place.file.to_string(),
            line: place.pos.line,
            column: place.pos.col,
            route: Some(place.route.clone()),
            object: Some(Arc::new(object.clone())),
            help: self.rule.help().into(),
            suppressed: None,
            locations: Vec::new(),
            environments: Vec::new(),
            document: Some(place.document),
            origin: None,
            part: None,
        });
    }

    /// Takes back this rule's findings that the whole context disproves: a global check learns what a
    /// check of one object could not know (a CustomResourceDefinition elsewhere says its kind is
    /// cluster-scoped). Only findings of this emitter's rule are touched.
    pub fn withdraw(&mut self, disproved: impl Fn(&Finding) -> bool) {
        let id = self.rule.id;
        self.out.retain(|f| f.rule != id || !disproved(f));
    }

    fn push(&mut self, pos: Pos, route: Option<Route>, message: String, help: Option<String>) {
        self.emitted += 1;
        if self.emitted > MAX_FINDINGS_PER_DOCUMENT + 1 {
            return;
        }
        let message = if self.emitted == MAX_FINDINGS_PER_DOCUMENT + 1 {
            format!(
                "`{}` found more than {MAX_FINDINGS_PER_DOCUMENT} problems in this document; the rest are not listed",
                self.rule.id
            )
        } else {
            message
        };
        self.out.push(Finding {
            rule: self.rule.id,
            severity: self.severity,
            message,
            file: self.file.to_string(),
            line: pos.line,
            column: pos.col,
            route,
            object: self.object.clone(),
            help: help.map_or_else(|| self.rule.help().into(), Into::into),
            suppressed: None,
            locations: Vec::new(),
            environments: Vec::new(),
            document: self.document,
            origin: None,
            part: None,
        });
    }
}

impl Rule {
    /// The first sentence of [`Rule::fix`], used as each finding's `help`.
    pub fn help(&self) -> &'static str {
        let text = self.fix.trim();
        let end = text.find(". ").map(|i| i + 1).or_else(|| text.find('\n')).unwrap_or(text.len());
        text[..end].trim()
    }

    /// The whole explanation as Markdown: the text `kpath explain` prints and the GitHub App posts.
    pub fn explanation_markdown(&self) -> String {
        use std::fmt::Write;
        let mut md = String::new();
        let _ = writeln!(md, "## `{}` ({})\n", self.id, self.severity);
        let _ = writeln!(md, "{}\n", self.summary);
        let _ = writeln!(md, "Guideline section: *{}*\n", self.section);
        let _ = writeln!(md, "### Why this matters\n\n{}\n", self.why.trim());
        let _ = writeln!(md, "### How to fix it\n\n{}\n", self.fix.trim());
        let shown = |name: &str| !name.starts_with(".kpath");
        let good_of = |name: &str| self.good.files.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
        // A file the good example changes only a little is shown once, as the change from bad to good: a reader
        // sees what differs instead of comparing two whole manifests.
        let small_change = |bad: &str, good: &str| {
            let diff = similar::TextDiff::from_lines(bad, good);
            let changed = diff.iter_all_changes().filter(|c| c.tag() != similar::ChangeTag::Equal).count();
            changed > 0 && changed * 2 <= bad.lines().count().max(good.lines().count())
        };
        let mut as_diff: Vec<&str> = Vec::new();
        for (name, bad) in self.bad.files.iter().filter(|(n, _)| shown(n)) {
            if let Some(good) = good_of(name)
                && small_change(bad, good)
            {
                as_diff.push(name);
            }
        }
        if !as_diff.is_empty() {
            let _ = writeln!(md, "### Bad → good\n");
            for name in &as_diff {
                let (Some(bad), Some(good)) =
                    (self.bad.files.iter().find(|(n, _)| n == name).map(|(_, t)| *t), good_of(name))
                else {
                    continue;
                };
                let diff = similar::TextDiff::from_lines(bad, good);
                let text = diff.unified_diff().context_radius(3).to_string();
                let _ = writeln!(md, "`{name}`\n\n```diff\n{}\n```\n", text.trim_end());
            }
        }
        for (title, example) in [("Bad", &self.bad), ("Good", &self.good)] {
            let files: Vec<&(&str, &str)> =
                example.files.iter().filter(|(n, _)| shown(n) && !as_diff.contains(n)).collect();
            if files.is_empty() {
                continue;
            }
            let _ = writeln!(md, "### {title}\n");
            for (name, text) in files {
                let same_in_bad = title == "Good" && self.bad.files.iter().any(|(n, t)| n == name && t == text);
                if same_in_bad {
                    let _ = writeln!(md, "`{name}`: as in the bad example.\n");
                    continue;
                }
                let lang = if name.ends_with(".json") {
                    "json"
                } else if name.contains("ockerfile") || name.ends_with("ontainerfile") {
                    "dockerfile"
                } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                    "yaml"
                } else {
                    ""
                };
                let _ = writeln!(md, "`{name}`\n\n```{lang}\n{}\n```\n", text.trim_end());
            }
        }
        if !self.options.is_empty() {
            let _ = writeln!(md, "### Options (`.kpath.yml` → `rules.{}`)\n", self.id);
            for opt in self.options {
                let _ =
                    writeln!(md, "- `{}` ({}, default `{}`): {}", opt.name, opt.kind.expected(), opt.default, opt.doc);
            }
            md.push('\n');
        }
        let _ = writeln!(
            md,
            "Silence one occurrence with `# kpath:ignore {} <reason>` on the line or the line above, or \
             the annotation `kpath/ignore: \"{}\"` on the object.",
            self.id, self.id
        );
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables of one fact kind read in different places (a check's files, a review's context) join by the
    /// kind's name: two kinds must never share one.
    #[test]
    fn fact_kinds_are_named_uniquely() {
        let mut seen: Vec<(&str, *const FactKind)> = Vec::new();
        for rule in RULES {
            for kind in rule.check.reads() {
                match seen.iter().find(|(name, _)| *name == kind.name) {
                    Some((_, at)) => assert!(std::ptr::eq(*at, *kind), "two fact kinds are named `{}`", kind.name),
                    None => seen.push((kind.name, *kind)),
                }
            }
        }
        assert_eq!(all_fact_kinds().len(), seen.len());
        assert!(seen.len() >= 6, "{seen:?}");
    }
}
