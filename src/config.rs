//! `.kpath.yml`: per-rule severity and options, ignore globs, the Kubernetes version, a default
//! namespace, and waivers. Unknown keys are errors that name the line, so a typo never silently
//! turns a rule off.

use std::collections::BTreeMap;
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::cmdline;
use crate::finding::{ObjectId, Severity};
use crate::rules::{self, OptionValue};
use crate::yaml::{self, Node, NodeKind, Pos};

pub const FILE_NAME: &str = ".kpath.yml";
pub const DEFAULT_KUBERNETES_VERSION: (u32, u32) = (1, 34);

#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleLevel {
    Off,
    On(Severity),
}

/// One rule's options, typed: each was read by its [`rules::OptionKind`] when the configuration loaded
/// (a value of the wrong type is a [`ConfigError`]), and the defaults when the rule's defaults were.
#[derive(Debug, Default, Clone)]
pub struct RuleOptions {
    values: BTreeMap<&'static str, (OptionValue, String)>,
}

impl RuleOptions {
    /// The rule's defaults. Each default reads as its option's kind (a test checks every rule's).
    fn for_rule(rule: &rules::Rule) -> RuleOptions {
        let values = rule
            .options
            .iter()
            .filter_map(|o| {
                let node = yaml::parse_single(o.default).ok().flatten()?;
                Some((o.name, (o.kind.read(&node).ok()?, shown_node(&node))))
            })
            .collect();
        RuleOptions { values }
    }

    fn value(&self, name: &str) -> Option<&OptionValue> {
        self.values.get(name).map(|(v, _)| v)
    }

    /// The option's value as written (`"100Gi"`, `"2m"`, a list as `[a, b]`), for messages.
    pub fn text(&self, name: &str) -> String {
        self.shown(name)
    }

    /// The option's value as written, for messages.
    pub fn shown(&self, name: &str) -> String {
        self.values.get(name).map(|(_, shown)| shown.clone()).unwrap_or_default()
    }

    /// A [`rules::OptionKind::Quantity`] option.
    pub fn quantity(&self, name: &str) -> Option<crate::quantity::Quantity> {
        match self.value(name) {
            Some(OptionValue::Quantity(q)) => Some(*q),
            _ => None,
        }
    }

    /// A [`rules::OptionKind::Duration`] option, in milliseconds.
    pub fn duration_ms(&self, name: &str) -> Option<u64> {
        match self.value(name) {
            Some(OptionValue::Duration(ms)) => Some(*ms),
            _ => None,
        }
    }

    /// A [`rules::OptionKind::Number`] option.
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.value(name) {
            Some(OptionValue::Number(n)) => Some(*n),
            _ => None,
        }
    }

    /// A [`rules::OptionKind::Strings`] option.
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            Some(OptionValue::Strings(list)) => list.clone(),
            _ => Vec::new(),
        }
    }
}

/// A scalar as written, a list as `[a, b]`.
fn shown_node(node: &Node) -> String {
    if node.is_seq() {
        let items: Vec<&str> = node.items().iter().filter_map(Node::as_text).collect();
        format!("[{}]", items.join(", "))
    } else {
        node.as_text().unwrap_or("").to_string()
    }
}

#[derive(Debug, Clone)]
pub struct Waiver {
    pub rule: String,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub file: Option<GlobSet>,
    /// The `file` glob as written.
    pub file_pattern: Option<String>,
    pub reason: String,
    /// `YYYY-MM-DD`, compared as a date.
    pub expires: Option<(i32, u32, u32)>,
    pub line: u32,
}

impl Waiver {
    pub fn matches(&self, rule: &str, file: &str, object: Option<&ObjectId>) -> bool {
        if self.rule != rule && self.rule != "*" {
            return false;
        }
        if let Some(glob) = &self.file
            && !glob.is_match(file)
        {
            return false;
        }
        let field_ok = |want: &Option<String>, have: Option<&str>| match want {
            None => true,
            Some(w) => have.is_some_and(|h| glob_match(w, h)),
        };
        field_ok(&self.kind, object.map(|o| o.kind.as_str()))
            && field_ok(&self.name, object.map(|o| o.name.as_str()))
            && field_ok(&self.namespace, object.and_then(|o| o.namespace.as_deref()))
    }

    pub fn expired(&self, today: (i32, u32, u32)) -> bool {
        self.expires.is_some_and(|e| e < today)
    }
}

fn glob_match(pattern: &str, text: &str) -> bool {
    Glob::new(pattern).map(|g| g.compile_matcher().is_match(text)).unwrap_or(pattern == text)
}

/// A release `.kpath.yml` declares for a chart (`helm.releases[]`).
#[derive(Debug, Clone, Default)]
pub struct HelmRelease {
    /// Chart directory, relative to the configuration file.
    pub chart: String,
    pub name: Option<String>,
    pub namespace: Option<String>,
    /// Values files relative to the chart, applied after its `values.yaml`.
    pub values: Vec<String>,
    pub set: Vec<(String, String)>,
    /// The line of this file that writes each `set` entry, in the same order: findings on a value it sets
    /// are placed there.
    pub set_lines: Vec<u32>,
    pub kubernetes_version: Option<(u32, u32)>,
    pub environments: Vec<HelmEnvironment>,
}

#[derive(Debug, Clone, Default)]
pub struct HelmEnvironment {
    pub name: String,
    pub values: Vec<String>,
    pub set: Vec<(String, String)>,
    /// See [`HelmRelease::set_lines`].
    pub set_lines: Vec<u32>,
    pub namespace: Option<String>,
}

/// `review:` settings for `kpath review`.
#[derive(Debug, Clone)]
pub struct ReviewSettings {
    /// New findings at or above this severity fail the review (default `error`).
    pub fail_on: Severity,
    /// Routes left out of object diffs (`metadata.annotations["deploy/time"]`; a `*` key matches any).
    pub ignore_routes: Vec<String>,
}

impl Default for ReviewSettings {
    fn default() -> ReviewSettings {
        ReviewSettings { fail_on: Severity::Error, ignore_routes: Vec::new() }
    }
}

/// `helm:` settings.
#[derive(Debug, Clone)]
pub struct HelmSettings {
    pub timeout: std::time::Duration,
    pub max_output: usize,
    pub concurrency: usize,
    pub cache_dir: Option<std::path::PathBuf>,
    /// `cache_dir` came from `.kpath.yml` (a path relative to it), not from the operator.
    pub cache_dir_from_file: bool,
    pub releases: Vec<HelmRelease>,
    /// The helm binary to use (`--helm`); found on `$KPATH_HELM` or PATH when unset.
    pub binary: Option<std::path::PathBuf>,
    /// The kubectl whose built-in kustomize renders Kustomizations (`--kubectl`); found on `$KPATH_KUBECTL` or
    /// PATH when unset.
    pub kubectl: Option<std::path::PathBuf>,
    /// The lines of `.kpath.yml` that set the resource bounds, for messages about clamping them.
    pub requested: RequestedBounds,
    /// Memory one render may use, and all renders at once: set by the operator only (see [`Ceilings`]).
    pub memory_per_render: u64,
    pub memory_total: u64,
}

/// Where `.kpath.yml` set a resource bound (its line), if it did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestedBounds {
    pub timeout: Option<u32>,
    pub max_output: Option<u32>,
    pub concurrency: Option<u32>,
}

/// A render's wall-clock limit unless `.kpath.yml` asks for another (within the operator's ceiling).
/// Real charts render in well under a second (the largest public ones in two); eight seconds leaves room
/// on a loaded machine while a template that loops is stopped, and the whole check ends, within ten.
pub const DEFAULT_RENDER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);
pub const DEFAULT_RENDER_OUTPUT: usize = 64 << 20;

impl Default for HelmSettings {
    fn default() -> HelmSettings {
        HelmSettings {
            timeout: DEFAULT_RENDER_TIMEOUT,
            max_output: DEFAULT_RENDER_OUTPUT,
            concurrency: cores(),
            cache_dir: default_cache_dir(),
            cache_dir_from_file: false,
            releases: Vec::new(),
            binary: None,
            kubectl: None,
            requested: RequestedBounds::default(),
            memory_per_render: crate::helm::DEFAULT_MEMORY_PER_RENDER,
            memory_total: crate::helm::DEFAULT_MEMORY_TOTAL,
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// The most a repository may ask for, set by whoever runs kpath (`kpath serve --max-render-*`, or the
/// `KPATH_MAX_RENDER_*` variables for `check` and `review`). `.kpath.yml` is repository content: its
/// bounds are clamped to these, so a pull request cannot buy itself an hour of CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ceilings {
    pub render_timeout: std::time::Duration,
    pub render_output: usize,
    pub render_concurrency: usize,
    /// Memory one render may use (Helm's heap); all renders at once may use twice that.
    pub render_memory: u64,
}

impl Default for Ceilings {
    fn default() -> Ceilings {
        Ceilings {
            render_timeout: std::time::Duration::from_secs(60),
            render_output: 256 << 20,
            render_concurrency: cores(),
            render_memory: crate::helm::DEFAULT_MEMORY_PER_RENDER,
        }
    }
}

/// One operator setting that could not be read: `NAME problem`.
#[derive(Debug, thiserror::Error)]
#[error("{name} {problem}")]
pub struct CeilingError {
    pub name: &'static str,
    pub problem: String,
}

impl Ceilings {
    /// The ceilings from explicit values (flags), else the `KPATH_MAX_RENDER_*` variables, else the
    /// defaults: `timeout`, `output`, `concurrency`, `memory` in that order.
    pub fn resolve(flags: [Option<&str>; 4], env: &dyn Fn(&str) -> Option<String>) -> Result<Ceilings, CeilingError> {
        let mut ceilings = Ceilings::default();
        let pick =
            |i: usize, name: &str| flags[i].map(str::to_string).or_else(|| env(name).filter(|v| !v.trim().is_empty()));
        if let Some(t) = pick(0, "KPATH_MAX_RENDER_TIMEOUT") {
            ceilings.render_timeout = bounded_duration(&t, MAX_CONFIG_DURATION)
                .map_err(|problem| CeilingError { name: "KPATH_MAX_RENDER_TIMEOUT", problem })?;
        }
        if let Some(t) = pick(1, "KPATH_MAX_RENDER_OUTPUT") {
            ceilings.render_output = bounded_size(&t, MAX_CONFIG_SIZE)
                .map_err(|problem| CeilingError { name: "KPATH_MAX_RENDER_OUTPUT", problem })?;
        }
        if let Some(t) = pick(2, "KPATH_MAX_RENDER_CONCURRENCY") {
            ceilings.render_concurrency =
                t.trim().parse::<usize>().ok().filter(|n| (1..=MAX_CONFIG_CONCURRENCY).contains(n)).ok_or_else(
                    || CeilingError {
                        name: "KPATH_MAX_RENDER_CONCURRENCY",
                        problem: format!(
                            "must be a number from 1 to {MAX_CONFIG_CONCURRENCY}, not {:?}",
                            cmdline::shown(&t)
                        ),
                    },
                )?;
        }
        if let Some(t) = pick(3, "KPATH_MAX_RENDER_MEMORY") {
            let bytes = bounded_size(&t, MAX_CONFIG_SIZE)
                .map_err(|problem| CeilingError { name: "KPATH_MAX_RENDER_MEMORY", problem })?;
            if bytes < 64 << 20 {
                return Err(CeilingError {
                    name: "KPATH_MAX_RENDER_MEMORY",
                    problem: "must be at least 64Mi: helm needs about 50 MiB to render a small chart".into(),
                });
            }
            ceilings.render_memory = bytes as u64;
        }
        Ok(ceilings)
    }
}

/// `$XDG_CACHE_HOME/kpath/renders`, else `~/.cache/kpath/renders`.
fn default_cache_dir() -> Option<std::path::PathBuf> {
    let base =
        std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(std::path::PathBuf::from).or_else(|| {
            std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| std::path::PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("kpath").join("renders"))
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from (for messages), if from a file.
    pub source: Option<String>,
    /// Directory of the configuration file: `ignore` and waiver `file` globs are relative to it.
    pub base_dir: Option<std::path::PathBuf>,
    pub kubernetes_version: (u32, u32),
    /// The namespace a deploy tool sets for objects that have none (Argo CD destination, `kubectl -n`).
    pub namespace: Option<String>,
    pub ignore: GlobSet,
    pub ignore_patterns: Vec<String>,
    pub levels: BTreeMap<&'static str, RuleLevel>,
    pub options: BTreeMap<&'static str, RuleOptions>,
    pub waivers: Vec<Waiver>,
    pub helm: HelmSettings,
    pub review: ReviewSettings,
    /// Argo CD and Flux: this repository's URLs, the cluster inventory, the chart sources the operator allows.
    pub gitops: crate::gitops::Settings,
    /// Return every checked object in the report (for `kpath review`'s object diff).
    pub collect_objects: bool,
    /// What kpath changed in this configuration before using it (bounds clamped to the operator's
    /// ceilings), as sentences for the review summary and `kpath check`'s stderr.
    pub notes: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            source: None,
            base_dir: None,
            kubernetes_version: DEFAULT_KUBERNETES_VERSION,
            namespace: None,
            ignore: GlobSet::empty(),
            ignore_patterns: Vec::new(),
            levels: BTreeMap::new(),
            options: rules::RULES.iter().map(|r| (r.id, RuleOptions::for_rule(r))).collect(),
            waivers: Vec::new(),
            helm: HelmSettings::default(),
            review: ReviewSettings::default(),
            gitops: crate::gitops::Settings::default(),
            collect_objects: false,
            notes: Vec::new(),
        }
    }
}

impl Config {
    pub fn level(&self, rule: &rules::Rule) -> RuleLevel {
        self.levels.get(rule.id).copied().unwrap_or(RuleLevel::On(rule.severity))
    }

    pub fn options(&self, rule_id: &str) -> &RuleOptions {
        static EMPTY: std::sync::OnceLock<RuleOptions> = std::sync::OnceLock::new();
        self.options.get(rule_id).unwrap_or_else(|| EMPTY.get_or_init(RuleOptions::default))
    }

    /// Bounds the resource settings by the operator's ceilings, saying what was lowered and where it was asked for.
    pub fn clamp(&mut self, ceilings: &Ceilings) {
        use crate::helm::binary::{human_bytes, human_duration};
        self.helm.memory_per_render = ceilings.render_memory;
        self.helm.memory_total = ceilings.render_memory.saturating_mul(2);
        let file = self.source.clone().unwrap_or_else(|| FILE_NAME.to_string());
        let notes = &mut self.notes;
        // Says that `setting`, asked for on `line`, was lowered from `asked` to the ceiling.
        let mut lowered = |setting: &str, line: Option<u32>, asked: String, ceiling: String| {
            let at = line.map(|l| format!("{file}:{l}: ")).unwrap_or_default();
            notes.push(format!(
                "{at}helm.{setting} {asked} is above the ceiling set for this kpath ({ceiling}); {ceiling} is used"
            ));
        };
        let helm = &mut self.helm;
        if helm.timeout > ceilings.render_timeout {
            let (asked, ceiling) = (human_duration(helm.timeout), human_duration(ceilings.render_timeout));
            lowered("timeout", helm.requested.timeout, asked, ceiling);
            helm.timeout = ceilings.render_timeout;
        }
        if helm.max_output > ceilings.render_output {
            let (asked, ceiling) = (human_bytes(helm.max_output), human_bytes(ceilings.render_output));
            lowered("maxOutput", helm.requested.max_output, asked, ceiling);
            helm.max_output = ceilings.render_output;
        }
        if helm.concurrency > ceilings.render_concurrency {
            // The default (the number of cores) is no request of the repository's: lowered silently.
            if helm.requested.concurrency.is_some() {
                let (asked, ceiling) = (helm.concurrency.to_string(), ceilings.render_concurrency.to_string());
                lowered("concurrency", helm.requested.concurrency, asked, ceiling);
            }
            helm.concurrency = ceilings.render_concurrency;
        }
    }

    pub fn is_ignored(&self, relative_path: &str) -> bool {
        self.ignore.is_match(relative_path)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let display = path.display().to_string();
        let text = read_config_text(path).map_err(|message| ConfigError {
            file: display.clone(),
            line: 0,
            col: 0,
            message,
        })?;
        Config::parse(&text, &display)
    }

    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let err =
            |pos: Pos, message: String| ConfigError { file: file.to_string(), line: pos.line, col: pos.col, message };
        let root = yaml::parse_single(text).map_err(|e| err(e.pos, format!("not valid YAML: {}", e.message)))?;
        let mut config = Config { source: Some(file.to_string()), ..Config::default() };
        let Some(root) = root else { return Ok(config) };
        if !root.is_map() {
            return Err(err(root.pos, "expected a mapping at the top level".into()));
        }
        for entry in root.entries() {
            let key = entry.key.as_key().unwrap_or("");
            let value = &entry.value;
            match key {
                "kubernetesVersion" => {
                    let text = value.as_text().unwrap_or("");
                    config.kubernetes_version = cmdline::kubernetes_version(text)
                        .map_err(|e| err(value.pos, format!("kubernetesVersion: {e}")))?;
                }
                "namespace" => {
                    let ns = text_of(value, "namespace", &err)?;
                    cmdline::namespace(&ns).map_err(|e| err(value.pos, e.to_string()))?;
                    config.namespace = Some(ns);
                }
                "ignore" => {
                    let mut builder = GlobSetBuilder::new();
                    for item in value.items() {
                        let pattern = item
                            .as_text()
                            .ok_or_else(|| err(item.pos, "ignore entries must be glob strings".into()))?;
                        builder
                            .add(Glob::new(pattern).map_err(|e| err(item.pos, format!("bad glob `{pattern}`: {e}")))?);
                        config.ignore_patterns.push(pattern.to_string());
                    }
                    if !value.is_seq() && !value.is_null() {
                        return Err(err(value.pos, "ignore must be a list of globs".into()));
                    }
                    config.ignore = builder.build().map_err(|e| err(value.pos, e.to_string()))?;
                }
                "rules" => parse_rules(value, &mut config, &err)?,
                "helm" => parse_helm(value, &mut config.helm, &err)?,
                "review" => parse_review(value, &mut config.review, &err)?,
                "gitops" => parse_gitops(value, &mut config.gitops, &err)?,
                "waivers" => {
                    for item in value.items() {
                        config.waivers.push(parse_waiver(item, &err)?);
                    }
                    if !value.is_seq() && !value.is_null() {
                        return Err(err(value.pos, "waivers must be a list".into()));
                    }
                }
                other => {
                    return Err(err(
                        entry.key.pos,
                        format!(
                            "unknown key `{other}` (expected one of: kubernetesVersion, namespace, ignore, rules, waivers, helm, review, gitops)"
                        ),
                    ));
                }
            }
        }
        Ok(config)
    }
}

fn parse_level(value: &Node) -> Option<RuleLevel> {
    // `off` is a boolean to YAML 1.1; accept it either way.
    match (value.as_bool(), value.as_text()) {
        (Some(false), _) | (_, Some("off")) => Some(RuleLevel::Off),
        (_, Some(t)) => Severity::parse(t).map(RuleLevel::On),
        _ => None,
    }
}

fn parse_rules(node: &Node, config: &mut Config, err: &dyn Fn(Pos, String) -> ConfigError) -> Result<(), ConfigError> {
    if !node.is_map() {
        return Err(err(node.pos, "rules must map rule ids to a severity or to options".into()));
    }
    for entry in node.entries() {
        let id = entry.key.as_key().unwrap_or("");
        let Some(rule) = rules::find(id) else {
            let hint = rules::closest(id).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
            return Err(err(entry.key.pos, format!("unknown rule `{id}`{hint}")));
        };
        match &entry.value.kind {
            NodeKind::Scalar(_) => {
                let level = parse_level(&entry.value).ok_or_else(|| {
                    err(entry.value.pos, "severity must be one of off, notice, warning, error".into())
                })?;
                config.levels.insert(rule.id, level);
            }
            NodeKind::Map(opts) => {
                let options = config.options.entry(rule.id).or_insert_with(|| RuleOptions::for_rule(rule));
                for opt in opts {
                    let name = opt.key.as_key().unwrap_or("");
                    if name == "severity" {
                        let level = parse_level(&opt.value).ok_or_else(|| {
                            err(opt.value.pos, "severity must be one of off, notice, warning, error".into())
                        })?;
                        config.levels.insert(rule.id, level);
                    } else if let Some(option) = rule.options.iter().find(|o| o.name == name) {
                        let value = option.kind.read(&opt.value).map_err(|problem| {
                            err(opt.value.pos, format!("option `{name}` of rule `{}` {problem}", rule.id))
                        })?;
                        options.values.insert(option.name, (value, shown_node(&opt.value)));
                    } else {
                        let known: Vec<&str> =
                            std::iter::once("severity").chain(rule.options.iter().map(|o| o.name)).collect();
                        let hint = known
                            .iter()
                            .map(|k| (strsim::jaro_winkler(name, k), *k))
                            .filter(|(score, _)| *score > 0.7)
                            .max_by(|a, b| a.0.total_cmp(&b.0))
                            .map(|(_, k)| format!("did you mean `{k}`? "))
                            .unwrap_or_default();
                        return Err(err(
                            opt.key.pos,
                            format!(
                                "unknown option `{name}` for rule `{}` ({hint}known: {})",
                                rule.id,
                                known.join(", ")
                            ),
                        ));
                    }
                }
            }
            NodeKind::Seq(_) => return Err(err(entry.value.pos, "expected a severity or a mapping of options".into())),
        }
    }
    Ok(())
}

fn parse_waiver(node: &Node, err: &dyn Fn(Pos, String) -> ConfigError) -> Result<Waiver, ConfigError> {
    if !node.is_map() {
        return Err(err(node.pos, "a waiver is a mapping with rule, reason and an optional selector".into()));
    }
    let mut waiver = Waiver {
        rule: String::new(),
        kind: None,
        name: None,
        namespace: None,
        file: None,
        file_pattern: None,
        reason: String::new(),
        expires: None,
        line: node.pos.line,
    };
    for entry in node.entries() {
        let key = entry.key.as_key().unwrap_or("");
        let text = entry.value.as_text().map(str::to_string);
        let need = |t: Option<String>| t.ok_or_else(|| err(entry.value.pos, format!("`{key}` must be a string")));
        match key {
            "rule" => {
                let id = need(text)?;
                if id != "*" && rules::find(&id).is_none() {
                    let hint = rules::closest(&id).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
                    return Err(err(entry.value.pos, format!("unknown rule `{id}`{hint}")));
                }
                waiver.rule = id;
            }
            "kind" => waiver.kind = Some(need(text)?),
            "name" => waiver.name = Some(need(text)?),
            "namespace" => waiver.namespace = Some(need(text)?),
            "file" => {
                let pattern = need(text)?;
                let glob =
                    Glob::new(&pattern).map_err(|e| err(entry.value.pos, format!("bad glob `{pattern}`: {e}")))?;
                waiver.file = GlobSetBuilder::new().add(glob).build().ok();
                waiver.file_pattern = Some(pattern);
            }
            "reason" => waiver.reason = need(text)?,
            "expires" => {
                let t = need(text)?;
                waiver.expires = Some(
                    parse_date(&t)
                        .ok_or_else(|| err(entry.value.pos, format!("expires `{t}` is not a date (YYYY-MM-DD)")))?,
                );
            }
            other => {
                return Err(err(
                    entry.key.pos,
                    format!(
                        "unknown waiver key `{other}` (expected rule, kind, name, namespace, file, reason, expires)"
                    ),
                ));
            }
        }
    }
    if waiver.rule.is_empty() {
        return Err(err(node.pos, "a waiver needs a `rule`".into()));
    }
    if waiver.reason.trim().is_empty() {
        return Err(err(node.pos, "a waiver needs a `reason`: say why the rule does not apply".into()));
    }
    Ok(waiver)
}

type ErrFn<'a> = &'a dyn Fn(Pos, String) -> ConfigError;

fn text_of(node: &Node, what: &str, err: ErrFn<'_>) -> Result<String, ConfigError> {
    node.as_text()
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| err(node.pos, format!("{what} must be a string")))
}

fn list_of(node: &Node, what: &str, err: ErrFn<'_>) -> Result<Vec<String>, ConfigError> {
    if !node.is_seq() {
        return Err(err(node.pos, format!("{what} must be a list")));
    }
    node.items().iter().map(|i| text_of(i, what, err)).collect()
}

fn namespace_of(node: &Node, err: ErrFn<'_>) -> Result<String, ConfigError> {
    let ns = text_of(node, "namespace", err)?;
    cmdline::namespace(&ns).map_err(|r| err(node.pos, r.to_string()))?;
    Ok(ns)
}

/// Values files of a release, relative to its chart: each must stay inside the repository. That they
/// lie inside the chart is checked when it renders.
fn values_of(node: &Node, err: ErrFn<'_>) -> Result<Vec<String>, ConfigError> {
    if !node.is_seq() {
        return Err(err(node.pos, "values must be a list".into()));
    }
    node.items()
        .iter()
        .map(|item| {
            let path = text_of(item, "values", err)?;
            cmdline::repo_path(&path, "").map_err(|r| err(item.pos, format!("values: {r}")))?;
            Ok(path)
        })
        .collect()
}

/// `.kpath.yml` is a short file; one larger than this is refused unread.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// A configuration file's text, at most [`MAX_CONFIG_BYTES`].
pub fn read_config_text(path: &Path) -> Result<String, String> {
    let bytes = crate::loader::read_bounded(path, MAX_CONFIG_BYTES).map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

/// The longest duration, and the largest size, `.kpath.yml` may name at all; the operator's
/// [`Ceilings`] then bound what is used. Anything beyond is a typo or an attack, so it is an error.
const MAX_CONFIG_DURATION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
const MAX_CONFIG_SIZE: usize = 16 << 30;
const MAX_CONFIG_CONCURRENCY: usize = 1024;

/// A Go-style duration (`90s`, `2m`) above zero and at most `max`, without overflow however long the text.
pub fn bounded_duration(text: &str, max: std::time::Duration) -> Result<std::time::Duration, String> {
    let shown = cmdline::shown(text);
    let ms = crate::quantity::parse_duration_ms(text)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("`{shown}` is not a duration such as 60s or 2m"))?;
    let duration = std::time::Duration::from_millis(ms);
    if duration > max {
        return Err(format!(
            "`{shown}` is longer than the most kpath accepts ({})",
            crate::helm::binary::human_duration(max)
        ));
    }
    Ok(duration)
}

/// A Kubernetes-style size (`64Mi`, `1G`) of at least one byte and at most `max` bytes.
pub fn bounded_size(text: &str, max: usize) -> Result<usize, String> {
    let shown = cmdline::shown(text);
    let q = crate::quantity::parse_quantity(text)
        .filter(|q| q.millis() >= 1000)
        .ok_or_else(|| format!("`{shown}` is not a size such as 64Mi"))?;
    let bytes = usize::try_from(q.millis() / 1000).unwrap_or(usize::MAX);
    if bytes > max {
        return Err(format!(
            "`{shown}` is larger than the most kpath accepts ({})",
            crate::helm::binary::human_bytes(max)
        ));
    }
    Ok(bytes)
}

fn set_of(node: &Node, err: ErrFn<'_>) -> Result<Vec<(String, String)>, ConfigError> {
    if !node.is_map() {
        return Err(err(node.pos, "set must map keys to values, e.g. {image.tag: \"1.2.3\"}".into()));
    }
    node.entries()
        .iter()
        .map(|e| {
            let key = text_of(&e.key, "a set key", err)?;
            cmdline::set_key(&key).map_err(|r| err(e.key.pos, r.to_string()))?;
            let value = e
                .value
                .as_text()
                .map(str::to_string)
                .ok_or_else(|| err(e.value.pos, "set values must be scalars".into()))?;
            cmdline::set_value(&value).map_err(|r| err(e.value.pos, r.to_string()))?;
            Ok((key, value))
        })
        .collect()
}

fn parse_helm(node: &Node, helm: &mut HelmSettings, err: ErrFn<'_>) -> Result<(), ConfigError> {
    if !node.is_map() {
        return Err(err(node.pos, "helm must be a mapping".into()));
    }
    for entry in node.entries() {
        let value = &entry.value;
        match entry.key.as_key().unwrap_or("") {
            "timeout" => {
                let t = text_of(value, "timeout", err)?;
                helm.timeout =
                    bounded_duration(&t, MAX_CONFIG_DURATION).map_err(|m| err(value.pos, format!("timeout {m}")))?;
                helm.requested.timeout = Some(value.pos.line);
            }
            "maxOutput" => {
                let t = text_of(value, "maxOutput", err)?;
                helm.max_output =
                    bounded_size(&t, MAX_CONFIG_SIZE).map_err(|m| err(value.pos, format!("maxOutput {m}")))?;
                helm.requested.max_output = Some(value.pos.line);
            }
            "concurrency" => {
                helm.concurrency = value
                    .as_int()
                    .filter(|n| (1..=MAX_CONFIG_CONCURRENCY as i128).contains(n))
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        err(value.pos, format!("concurrency must be a whole number from 1 to {MAX_CONFIG_CONCURRENCY}"))
                    })?;
                helm.requested.concurrency = Some(value.pos.line);
            }
            "cacheDir" => {
                let dir = text_of(value, "cacheDir", err)?;
                cmdline::repo_path(&dir, "").map_err(|r| {
                    err(value.pos, format!("cacheDir: {r} (a cache outside the repository is set with --cache-dir)"))
                })?;
                helm.cache_dir = Some(std::path::PathBuf::from(dir));
                helm.cache_dir_from_file = true;
            }
            "releases" => {
                if !value.is_seq() {
                    return Err(err(value.pos, "releases must be a list".into()));
                }
                for item in value.items() {
                    helm.releases.push(parse_release(item, err)?);
                }
            }
            other => {
                return Err(err(
                    entry.key.pos,
                    format!(
                        "unknown helm key `{other}` (expected timeout, maxOutput, concurrency, cacheDir, releases)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `gitops:` — `repoURLs` (other URLs of this repository, for Argo CD and Flux sources) and `clusters` (the
/// inventory Argo CD's cluster generator reads). Which chart sources may be pulled is the operator's choice
/// (`--allow-chart-source`), never the repository's: `allowChartSources` here is refused with that reason.
fn parse_gitops(node: &Node, gitops: &mut crate::gitops::Settings, err: ErrFn<'_>) -> Result<(), ConfigError> {
    if !node.is_map() {
        return Err(err(node.pos, "gitops must be a mapping".into()));
    }
    for entry in node.entries() {
        let value = &entry.value;
        match entry.key.as_key().unwrap_or("") {
            "repoURLs" => {
                for item in value.items() {
                    let url = item.as_text().unwrap_or("");
                    let normal = crate::gitops::repo::normalise(url).ok_or_else(|| {
                        err(item.pos, format!("`{}` is not a git repository URL", cmdline::shown(url)))
                    })?;
                    gitops.repositories.insert(normal);
                }
                if !value.is_seq() {
                    return Err(err(value.pos, "gitops.repoURLs must be a list of URLs".into()));
                }
            }
            "clusters" => {
                if !value.is_seq() {
                    return Err(err(value.pos, "gitops.clusters must be a list of clusters".into()));
                }
                for item in value.items() {
                    gitops.clusters.push(parse_cluster(item, err)?);
                }
            }
            "allowChartSources" => {
                return Err(err(
                    entry.key.pos,
                    "which chart sources kpath may download from is the operator's setting \
                     (`--allow-chart-source`, KPATH_ALLOW_CHART_SOURCES), not the repository's"
                        .into(),
                ));
            }
            other => {
                return Err(err(
                    entry.key.pos,
                    format!("unknown key `gitops.{other}` (expected one of: repoURLs, clusters)"),
                ));
            }
        }
    }
    Ok(())
}

fn parse_cluster(node: &Node, err: ErrFn<'_>) -> Result<crate::gitops::Cluster, ConfigError> {
    if !node.is_map() {
        return Err(err(node.pos, "a cluster is a mapping with `name` and `server`".into()));
    }
    let mut cluster = crate::gitops::Cluster {
        name: String::new(),
        server: String::new(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    };
    for entry in node.entries() {
        let value = &entry.value;
        match entry.key.as_key().unwrap_or("") {
            "name" => cluster.name = text_of(value, "name", err)?,
            "server" => cluster.server = text_of(value, "server", err)?,
            key @ ("labels" | "annotations") => {
                if !value.is_map() {
                    return Err(err(value.pos, format!("cluster {key} must be a mapping of strings")));
                }
                let map = if key == "labels" { &mut cluster.labels } else { &mut cluster.annotations };
                for e in value.entries() {
                    let k = e.key.as_key().unwrap_or("").to_string();
                    let v = e.value.as_text().ok_or_else(|| err(e.value.pos, format!("`{k}` must be a string")))?;
                    map.insert(k, v.to_string());
                }
            }
            other => {
                return Err(err(
                    entry.key.pos,
                    format!("unknown cluster key `{other}` (expected one of: name, server, labels, annotations)"),
                ));
            }
        }
    }
    if cluster.name.is_empty() || cluster.server.is_empty() {
        return Err(err(node.pos, "a cluster needs both `name` and `server`".into()));
    }
    Ok(cluster)
}

fn parse_review(node: &Node, review: &mut ReviewSettings, err: ErrFn<'_>) -> Result<(), ConfigError> {
    if !node.is_map() {
        return Err(err(node.pos, "review must be a mapping".into()));
    }
    for entry in node.entries() {
        let value = &entry.value;
        match entry.key.as_key().unwrap_or("") {
            "failOn" => {
                review.fail_on = value
                    .as_text()
                    .and_then(Severity::parse)
                    .ok_or_else(|| err(value.pos, "failOn must be one of notice, warning, error".into()))?;
            }
            "ignoreRoutes" => review.ignore_routes = list_of(value, "ignoreRoutes", err)?,
            other => {
                return Err(err(
                    entry.key.pos,
                    format!("unknown review key `{other}` (expected failOn, ignoreRoutes)"),
                ));
            }
        }
    }
    Ok(())
}

fn parse_release(node: &Node, err: ErrFn<'_>) -> Result<HelmRelease, ConfigError> {
    if !node.is_map() {
        return Err(err(node.pos, "a release is a mapping with at least `chart`".into()));
    }
    let mut release = HelmRelease::default();
    for entry in node.entries() {
        let value = &entry.value;
        match entry.key.as_key().unwrap_or("") {
            "chart" => {
                let chart = text_of(value, "chart", err)?;
                cmdline::repo_path(&chart, "").map_err(|r| err(value.pos, format!("chart: {r}")))?;
                release.chart = chart;
            }
            "name" => {
                let name = text_of(value, "name", err)?;
                cmdline::release_name(&name).map_err(|r| err(value.pos, r.to_string()))?;
                release.name = Some(name);
            }
            "namespace" => release.namespace = Some(namespace_of(value, err)?),
            "values" => release.values = values_of(value, err)?,
            "set" => {
                release.set = set_of(value, err)?;
                release.set_lines = value.entries().iter().map(|e| e.key.pos.line).collect();
            }
            "kubernetesVersion" => {
                let t = text_of(value, "kubernetesVersion", err)?;
                release.kubernetes_version = Some(
                    cmdline::kubernetes_version(&t).map_err(|r| err(value.pos, format!("kubernetesVersion: {r}")))?,
                );
            }
            "environments" => {
                if !value.is_map() {
                    return Err(err(value.pos, "environments must map names to {values, set, namespace}".into()));
                }
                for env in value.entries() {
                    let name = text_of(&env.key, "an environment name", err)?;
                    cmdline::environment_name(&name).map_err(|r| err(env.key.pos, r.to_string()))?;
                    if !env.value.is_map() && !env.value.is_null() {
                        return Err(err(env.value.pos, "an environment maps to {values, set, namespace}".into()));
                    }
                    let mut environment = HelmEnvironment { name, ..Default::default() };
                    for field in env.value.entries() {
                        match field.key.as_key().unwrap_or("") {
                            "values" => environment.values = values_of(&field.value, err)?,
                            "set" => {
                                environment.set = set_of(&field.value, err)?;
                                environment.set_lines = field.value.entries().iter().map(|e| e.key.pos.line).collect();
                            }
                            "namespace" => environment.namespace = Some(namespace_of(&field.value, err)?),
                            other => {
                                return Err(err(
                                    field.key.pos,
                                    format!("unknown environment key `{other}` (expected values, set, namespace)"),
                                ));
                            }
                        }
                    }
                    release.environments.push(environment);
                }
            }
            other => {
                return Err(err(
                    entry.key.pos,
                    format!(
                        "unknown release key `{other}` (expected chart, name, namespace, values, set, kubernetesVersion, environments)"
                    ),
                ));
            }
        }
    }
    if release.chart.is_empty() {
        return Err(err(node.pos, "a release needs `chart`: the chart directory, relative to this file".into()));
    }
    Ok(release)
}

/// One difference between two configurations, in words, and whether it lets more through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    pub text: String,
    /// Turns a rule off, lowers a severity, adds a waiver or an ignore glob, or raises a bound: once
    /// merged, findings that block today would not.
    pub weakens: bool,
}

/// Repository text shown inside a code span in a sentence: no backticks, no line breaks, bounded.
fn quoted(text: &str) -> String {
    format!("`{}`", cmdline::shown(text).replace('`', "'"))
}

/// What changes from `base` to `head`, rule by rule and setting by setting, weakening changes first.
pub fn describe_change(base: &Config, head: &Config) -> Vec<ConfigChange> {
    use crate::helm::binary::{human_bytes, human_duration};
    let mut out = Vec::new();
    let mut push = |weakens: bool, text: String| out.push(ConfigChange { text, weakens });
    for rule in rules::RULES {
        match (base.level(rule), head.level(rule)) {
            (a, b) if a == b => {}
            (RuleLevel::On(_), RuleLevel::Off) => push(true, format!("turns off `{}`", rule.id)),
            (RuleLevel::Off, RuleLevel::On(s)) => push(false, format!("turns on `{}` at {s}", rule.id)),
            (RuleLevel::On(a), RuleLevel::On(b)) => {
                let verb = if b < a { "lowers" } else { "raises" };
                push(b < a, format!("{verb} `{}` from {a} to {b}", rule.id));
            }
            _ => {}
        }
        for option in rule.options {
            let (a, b) = (base.options(rule.id).shown(option.name), head.options(rule.id).shown(option.name));
            if a != b {
                push(
                    true,
                    format!("changes `{}` option `{}` from {} to {}", rule.id, option.name, quoted(&a), quoted(&b)),
                );
            }
        }
    }
    let waiver_key = |w: &Waiver| {
        (w.rule.clone(), w.kind.clone(), w.name.clone(), w.namespace.clone(), w.file_pattern.clone(), w.expires)
    };
    let base_waivers: Vec<_> = base.waivers.iter().map(waiver_key).collect();
    let head_waivers: Vec<_> = head.waivers.iter().map(waiver_key).collect();
    for (w, key) in head.waivers.iter().zip(&head_waivers) {
        if !base_waivers.contains(key) {
            let mut selector = Vec::new();
            for (what, value) in
                [("kind", &w.kind), ("name", &w.name), ("namespace", &w.namespace), ("file", &w.file_pattern)]
            {
                if let Some(v) = value {
                    selector.push(format!("{what} {}", quoted(v)));
                }
            }
            let scope = if selector.is_empty() { "everything".to_string() } else { selector.join(", ") };
            push(true, format!("adds a waiver of {} for {scope}: {}", quoted(&w.rule), quoted(&w.reason)));
        }
    }
    for (w, key) in base.waivers.iter().zip(&base_waivers) {
        if !head_waivers.contains(key) {
            push(false, format!("removes a waiver of {}", quoted(&w.rule)));
        }
    }
    for pattern in head.ignore_patterns.iter().filter(|p| !base.ignore_patterns.contains(p)) {
        push(true, format!("ignores the paths {}", quoted(pattern)));
    }
    for pattern in base.ignore_patterns.iter().filter(|p| !head.ignore_patterns.contains(p)) {
        push(false, format!("stops ignoring the paths {}", quoted(pattern)));
    }
    if base.review.fail_on != head.review.fail_on {
        let weakens = head.review.fail_on > base.review.fail_on;
        push(weakens, format!("changes review.failOn from {} to {}", base.review.fail_on, head.review.fail_on));
    }
    for route in head.review.ignore_routes.iter().filter(|r| !base.review.ignore_routes.contains(r)) {
        push(true, format!("hides {} from object diffs", quoted(route)));
    }
    if base.kubernetes_version != head.kubernetes_version {
        let (a, b) = (base.kubernetes_version, head.kubernetes_version);
        push(false, format!("changes kubernetesVersion from {}.{} to {}.{}", a.0, a.1, b.0, b.1));
    }
    if base.namespace != head.namespace {
        let show = |n: &Option<String>| n.as_deref().map_or_else(|| "none".to_string(), quoted);
        push(false, format!("changes namespace from {} to {}", show(&base.namespace), show(&head.namespace)));
    }
    let (a, b) = (&base.helm, &head.helm);
    if a.timeout != b.timeout {
        push(
            b.timeout > a.timeout,
            format!("changes helm.timeout from {} to {}", human_duration(a.timeout), human_duration(b.timeout)),
        );
    }
    if a.max_output != b.max_output {
        push(
            b.max_output > a.max_output,
            format!("changes helm.maxOutput from {} to {}", human_bytes(a.max_output), human_bytes(b.max_output)),
        );
    }
    if a.concurrency != b.concurrency {
        push(
            b.concurrency > a.concurrency,
            format!("changes helm.concurrency from {} to {}", a.concurrency, b.concurrency),
        );
    }
    // Releases hold only plain data, so their debug form compares them field by field.
    if format!("{:?}", base.helm.releases) != format!("{:?}", head.helm.releases) {
        push(false, "changes helm.releases (which charts render with which values and environments)".to_string());
    }
    out.sort_by_key(|c| !c.weakens);
    out
}

pub fn parse_date(text: &str) -> Option<(i32, u32, u32)> {
    let mut parts = text.trim().split('-');
    let y = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    (parts.next().is_none() && (1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// Today's date in UTC, from the system clock (civil-from-days, Howard Hinnant's algorithm).
pub fn today() -> (i32, u32, u32) {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_name_the_line() {
        let e = Config::parse("kubernetesVersion: \"1.30\"\nrulez: {}\n", ".kpath.yml").expect_err("error");
        assert_eq!((e.line, e.col), (2, 1));
        assert!(e.message.contains("unknown key `rulez`"), "{e}");
        let e = Config::parse("rules:\n  volume-oversized:\n    maxx: 1Gi\n", ".kpath.yml").expect_err("error");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("known: severity, max"), "{e}");
        let e = Config::parse("rules:\n  image-latst: off\n", "c").expect_err("error");
        assert!(e.message.contains("did you mean `image-latest`"), "{e}");
    }

    #[test]
    fn rule_options_are_typed() {
        // Every rule's defaults read as their option's kind.
        for rule in rules::RULES {
            for option in rule.options {
                let node = yaml::parse_single(option.default).ok().flatten().unwrap_or_else(|| panic!("{}", rule.id));
                assert!(option.kind.read(&node).is_ok(), "{}.{} default {:?}", rule.id, option.name, option.default);
            }
        }
        let bad = [
            ("volume-oversized", "max: banana", "a Kubernetes quantity"),
            ("volume-oversized", "max: 0", "a Kubernetes quantity"),
            ("volume-oversized", "max: [1Gi]", "not a list"),
            ("keda-trigger-too-fine", "minRateWindow: soon", "a duration"),
            ("keda-trigger-too-fine", "minThreshold: -1", "a number"),
            ("keda-trigger-too-fine", "minPollingInterval: {a: 1}", "not a mapping"),
            ("dockerfile-base-not-minimal", "allow: [[a]]", "a list of strings"),
        ];
        for (rule, option, expected) in bad {
            let text = format!("rules:\n  {rule}:\n    {option}\n");
            let e = Config::parse(&text, ".kpath.yml").expect_err(&text);
            assert_eq!(e.line, 3, "{e}");
            assert!(e.message.contains(expected) && e.message.contains(rule), "{e}");
        }
        let c = Config::parse(
            "rules:\n  volume-oversized: {max: 2Ti}\n  keda-trigger-too-fine: {minRateWindow: 5m, minThreshold: 0.5}\n  \
             dockerfile-base-not-minimal: {allow: registry.example.com/base/*}\n",
            "c",
        )
        .expect("valid");
        assert_eq!(c.options("volume-oversized").quantity("max"), crate::quantity::parse_quantity("2Ti"));
        assert_eq!(c.options("keda-trigger-too-fine").duration_ms("minRateWindow"), Some(300_000));
        assert_eq!(c.options("keda-trigger-too-fine").number("minThreshold"), Some(0.5));
        assert_eq!(c.options("keda-trigger-too-fine").number("minPollingInterval"), Some(15.0), "the default");
        assert_eq!(c.options("dockerfile-base-not-minimal").list("allow"), ["registry.example.com/base/*"]);
        let e = Config::parse("rules:\n  volume-oversized:\n    maks: 1Gi\n", "c").expect_err("error");
        assert!(e.message.contains("did you mean `max`"), "{e}");
    }

    #[test]
    fn levels_options_and_waivers() {
        let c = Config::parse(
            "kubernetesVersion: 1.29\nrules:\n  resources-cpu-limit: off\n  image-latest: error\n  volume-oversized: {max: 1Ti}\nwaivers:\n  - rule: secret-committed\n    name: legacy-*\n    reason: migrating\n    expires: 2020-01-01\n",
            "c",
        )
        .expect("valid");
        assert_eq!(c.kubernetes_version, (1, 29));
        let cpu = rules::find("resources-cpu-limit").expect("rule");
        assert_eq!(c.level(cpu), RuleLevel::Off);
        assert_eq!(c.options("volume-oversized").text("max"), "1Ti");
        assert_eq!(c.options("volume-oversized").text("nope"), "");
        let w = &c.waivers[0];
        assert!(w.expired((2026, 1, 1)));
        let id =
            ObjectId { api_version: "v1".into(), kind: "Secret".into(), namespace: None, name: "legacy-db".into() };
        assert!(w.matches("secret-committed", "a.yaml", Some(&id)));
        assert!(!w.matches("image-latest", "a.yaml", Some(&id)));
    }

    #[test]
    fn helm_settings() {
        let c = Config::parse(
            "helm:\n  timeout: 2s\n  maxOutput: 1Mi\n  releases:\n    - chart: charts/shop\n      set: {image.tag: \"1.2\"}\n      environments:\n        prod: {values: [values-prod.yaml], namespace: shop-prod}\n",
            "c",
        )
        .expect("valid");
        assert_eq!(c.helm.timeout, std::time::Duration::from_secs(2));
        assert_eq!(c.helm.max_output, 1 << 20);
        let r = &c.helm.releases[0];
        assert_eq!(r.set, vec![("image.tag".to_string(), "1.2".to_string())]);
        assert_eq!(r.environments[0].name, "prod");
        assert_eq!(r.environments[0].namespace.as_deref(), Some("shop-prod"));
        let e = Config::parse("helm:\n  releases:\n    - chart: x\n      valuez: []\n", "c").expect_err("error");
        assert_eq!(e.line, 4);
        assert!(e.message.contains("unknown release key `valuez`"), "{e}");
        let e = Config::parse("helm:\n  timeout: soon\n", "c").expect_err("error");
        assert_eq!(e.line, 2);
    }

    /// Every `.kpath.yml` value that reaches a command line, tried with members of the family "a value a
    /// tool reads as an option or a path out of the repository": each is an error on its own line.
    #[test]
    fn command_line_values_are_checked_where_they_are_written() {
        let hostile = ["--post-renderer=/bin/sh", "-o", "--values=/etc/passwd", "/etc/passwd", "../../etc", "a,b=c"];
        let places: [(&str, u32); 9] = [
            ("helm:\n  releases:\n    - chart: charts/shop\n      name: \"{v}\"\n", 4),
            ("helm:\n  releases:\n    - chart: charts/shop\n      namespace: \"{v}\"\n", 4),
            ("helm:\n  releases:\n    - chart: \"{v}\"\n", 3),
            ("helm:\n  releases:\n    - chart: charts/shop\n      values: [\"{v}\"]\n", 4),
            ("helm:\n  releases:\n    - chart: charts/shop\n      set: {\"{v}\": 1}\n", 4),
            ("helm:\n  releases:\n    - chart: charts/shop\n      kubernetesVersion: \"{v}\"\n", 4),
            (
                "helm:\n  releases:\n    - chart: charts/shop\n      environments:\n        prod:\n          namespace: \"{v}\"\n",
                6,
            ),
            ("namespace: \"{v}\"\n", 1),
            ("kubernetesVersion: \"{v}\"\n", 1),
        ];
        for (template, line) in places {
            for value in hostile {
                let text = template.replace("{v}", value);
                // `../../etc` is a fine chart path from the config's own point of view only inside the repo.
                match Config::parse(&text, ".kpath.yml") {
                    Err(e) => assert_eq!(e.line, line, "{text}\n{e}"),
                    Ok(_) => panic!("accepted {value:?} in:\n{text}"),
                }
            }
        }
        let e = Config::parse("helm:\n  cacheDir: /home/x/.ssh\n", "c").expect_err("absolute cache dir");
        assert_eq!(e.line, 2);
        let e = Config::parse("helm:\n  releases:\n    - chart: c\n      environments:\n        \"-x\": {}\n", "c")
            .expect_err("environment name");
        assert_eq!(e.line, 5);
    }

    #[test]
    fn absurd_bounds_are_errors_not_overflows() {
        for (text, line) in [
            ("helm:\n  timeout: 99999999999999999999h\n", 2),
            ("helm:\n  timeout: 25h\n", 2),
            ("helm:\n  maxOutput: 99999999999999999999999999999999999999Ei\n", 2),
            ("helm:\n  maxOutput: 17Gi\n", 2),
            ("helm:\n  concurrency: 99999999999999999999\n", 2),
            ("helm:\n  concurrency: 0\n", 2),
        ] {
            let e = Config::parse(text, ".kpath.yml").expect_err(text);
            assert_eq!((e.file.as_str(), e.line), (".kpath.yml", line), "{e}");
        }
    }

    #[test]
    fn bounds_are_clamped_to_the_operator_ceilings() {
        let mut c =
            Config::parse("helm:\n  timeout: 10m\n  maxOutput: 1Gi\n  concurrency: 64\n", ".kpath.yml").expect("valid");
        let env = |name: &str| match name {
            "KPATH_MAX_RENDER_TIMEOUT" => Some("30s".to_string()),
            _ => None,
        };
        let ceilings = Ceilings::resolve([None, Some("128Mi"), Some("2"), Some("512Mi")], &env).expect("ceilings");
        assert_eq!(ceilings.render_timeout, std::time::Duration::from_secs(30));
        c.clamp(&ceilings);
        assert_eq!(c.helm.timeout, std::time::Duration::from_secs(30));
        assert_eq!(c.helm.max_output, 128 << 20);
        assert_eq!(c.helm.concurrency, 2);
        assert_eq!((c.helm.memory_per_render, c.helm.memory_total), (512 << 20, 1 << 30));
        assert_eq!(c.notes.len(), 3, "{:?}", c.notes);
        assert!(c.notes[0].starts_with(".kpath.yml:2: helm.timeout 600s is above"), "{:?}", c.notes);
        let bad = Ceilings::resolve([Some("forever"), None, None, None], &|_| None).expect_err("bad ceiling");
        assert_eq!(bad.name, "KPATH_MAX_RENDER_TIMEOUT");
        let bad = Ceilings::resolve([None, None, None, Some("1Mi")], &|_| None).expect_err("too little memory");
        assert_eq!(bad.name, "KPATH_MAX_RENDER_MEMORY");
        // Within the ceilings nothing changes and nothing is said.
        let mut c = Config::parse("helm:\n  timeout: 5s\n", ".kpath.yml").expect("valid");
        c.clamp(&Ceilings::default());
        assert_eq!((c.helm.timeout, c.notes.len()), (std::time::Duration::from_secs(5), 0));
    }

    #[test]
    fn weakening_changes_are_named() {
        let base = Config::parse("rules:\n  image-latest: error\nreview:\n  failOn: warning\n", "c").expect("base");
        let head = Config::parse(
            "rules:\n  image-latest: off\n  namespace-default: warning\n  volume-oversized: {max: 1Pi}\nreview:\n  failOn: error\nignore: [\"apps/**\"]\nwaivers:\n  - rule: secret-committed\n    reason: later\nhelm:\n  timeout: 5m\n",
            "c",
        )
        .expect("head");
        let changes = describe_change(&base, &head);
        let texts: Vec<&str> = changes.iter().map(|c| c.text.as_str()).collect();
        for expected in [
            "turns off `image-latest`",
            "lowers `namespace-default` from error to warning",
            "changes `volume-oversized` option `max` from `100Gi` to `1Pi`",
            "adds a waiver of `secret-committed` for everything: `later`",
            "ignores the paths `apps/**`",
            "changes review.failOn from warning to error",
            "changes helm.timeout from 8s to 300s",
        ] {
            assert!(texts.contains(&expected), "missing {expected:?} in {texts:?}");
        }
        assert!(changes.iter().all(|c| c.weakens), "{changes:?}");
        let back = describe_change(&head, &base);
        assert!(back.iter().any(|c| !c.weakens && c.text == "turns on `image-latest` at error"), "{back:?}");
        assert!(describe_change(&base, &base).is_empty());
    }

    #[test]
    fn today_is_plausible() {
        let (y, m, d) = today();
        assert!(y >= 2024 && (1..=12).contains(&m) && (1..=31).contains(&d));
        assert_eq!(parse_date("2026-02-30"), Some((2026, 2, 30)));
        assert_eq!(parse_date("tomorrow"), None);
    }
}
