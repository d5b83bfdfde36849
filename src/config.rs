//! `.kpath.yml`: per-rule severity and options, ignore globs, the Kubernetes version, a default
//! namespace, and waivers. Unknown keys are errors that name the line, so a typo never silently
//! turns a rule off.

use std::collections::BTreeMap;
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::finding::{ObjectId, Severity};
use crate::rules;
use crate::yaml::{self, Node, NodeKind, Pos};

pub const FILE_NAME: &str = ".kpath.yml";
pub const DEFAULT_KUBERNETES_VERSION: (u32, u32) = (1, 34);

#[derive(Debug, thiserror::Error)]
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

#[derive(Debug, Default, Clone)]
pub struct RuleOptions {
    values: BTreeMap<String, Node>,
    /// Defaults parsed once here: rules read their options for every object, and parsing the default's
    /// YAML each time was a visible share of checking many small objects.
    defaults: BTreeMap<&'static str, Node>,
}

impl RuleOptions {
    fn for_rule(rule: &rules::Rule) -> RuleOptions {
        let defaults =
            rule.options.iter().filter_map(|o| Some((o.name, yaml::parse_single(o.default).ok().flatten()?))).collect();
        RuleOptions { values: BTreeMap::new(), defaults }
    }

    fn raw(&self, name: &str) -> Option<&Node> {
        self.values.get(name).or_else(|| self.defaults.get(name))
    }

    /// A scalar option as text (`"100Gi"`, `"2m"`, `"15"`).
    pub fn text(&self, name: &str) -> String {
        self.raw(name).and_then(|n| n.as_text().map(str::to_string)).unwrap_or_default()
    }

    pub fn number(&self, name: &str) -> f64 {
        self.text(name).parse().unwrap_or(0.0)
    }

    /// A list option (`[a, b]`), or a single scalar as a list of one.
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.raw(name) {
            Some(n) if n.is_seq() => n.items().iter().filter_map(|i| i.as_text().map(str::to_string)).collect(),
            Some(n) => n.as_text().filter(|t| !t.is_empty()).map(|t| vec![t.to_string()]).unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Waiver {
    pub rule: String,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub file: Option<GlobSet>,
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
    pub kubernetes_version: Option<(u32, u32)>,
    pub environments: Vec<HelmEnvironment>,
}

#[derive(Debug, Clone, Default)]
pub struct HelmEnvironment {
    pub name: String,
    pub values: Vec<String>,
    pub set: Vec<(String, String)>,
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
    pub releases: Vec<HelmRelease>,
    /// The helm binary to use (`--helm`); found on `$KPATH_HELM` or PATH when unset.
    pub binary: Option<std::path::PathBuf>,
}

impl Default for HelmSettings {
    fn default() -> HelmSettings {
        HelmSettings {
            timeout: std::time::Duration::from_secs(60),
            max_output: 64 << 20,
            concurrency: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            cache_dir: default_cache_dir(),
            releases: Vec::new(),
            binary: None,
        }
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
    /// Return every checked object in the report (for `kpath review`'s object diff).
    pub collect_objects: bool,
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
            collect_objects: false,
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

    pub fn is_ignored(&self, relative_path: &str) -> bool {
        self.ignore.is_match(relative_path)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: display.clone(),
            line: 0,
            col: 0,
            message: format!("cannot read: {e}"),
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
                    config.kubernetes_version = parse_version(text).ok_or_else(|| {
                        err(value.pos, format!("kubernetesVersion `{text}` is not MAJOR.MINOR, e.g. \"1.34\""))
                    })?;
                }
                "namespace" => {
                    config.namespace = Some(
                        value
                            .as_text()
                            .filter(|t| !t.is_empty())
                            .ok_or_else(|| err(value.pos, "namespace must be a string".into()))?
                            .to_string(),
                    );
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
                            "unknown key `{other}` (expected one of: kubernetesVersion, namespace, ignore, rules, waivers, helm, review)"
                        ),
                    ));
                }
            }
        }
        Ok(config)
    }
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let text = text.trim().trim_start_matches('v');
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
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
                    } else if rule.options.iter().any(|o| o.name == name) {
                        options.values.insert(name.to_string(), opt.value.clone());
                    } else {
                        let known: Vec<&str> =
                            std::iter::once("severity").chain(rule.options.iter().map(|o| o.name)).collect();
                        return Err(err(
                            opt.key.pos,
                            format!("unknown option `{name}` for rule `{}` (known: {})", rule.id, known.join(", ")),
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

fn set_of(node: &Node, err: ErrFn<'_>) -> Result<Vec<(String, String)>, ConfigError> {
    if !node.is_map() {
        return Err(err(node.pos, "set must map keys to values, e.g. {image.tag: \"1.2.3\"}".into()));
    }
    node.entries()
        .iter()
        .map(|e| {
            let key = text_of(&e.key, "a set key", err)?;
            let value = e
                .value
                .as_text()
                .map(str::to_string)
                .ok_or_else(|| err(e.value.pos, "set values must be scalars".into()))?;
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
                let ms = crate::quantity::parse_duration_ms(&t)
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| err(value.pos, format!("timeout `{t}` is not a duration such as 60s or 2m")))?;
                helm.timeout = std::time::Duration::from_millis(ms);
            }
            "maxOutput" => {
                let t = text_of(value, "maxOutput", err)?;
                let q = crate::quantity::parse_quantity(&t)
                    .filter(|q| q.millis() >= 1000)
                    .ok_or_else(|| err(value.pos, format!("maxOutput `{t}` is not a size such as 64Mi")))?;
                helm.max_output = usize::try_from(q.millis() / 1000).unwrap_or(usize::MAX);
            }
            "concurrency" => {
                helm.concurrency = value
                    .as_int()
                    .filter(|n| *n >= 1)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| err(value.pos, "concurrency must be a whole number, at least 1".into()))?;
            }
            "cacheDir" => helm.cache_dir = Some(std::path::PathBuf::from(text_of(value, "cacheDir", err)?)),
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
            "chart" => release.chart = text_of(value, "chart", err)?,
            "name" => release.name = Some(text_of(value, "name", err)?),
            "namespace" => release.namespace = Some(text_of(value, "namespace", err)?),
            "values" => release.values = list_of(value, "values", err)?,
            "set" => release.set = set_of(value, err)?,
            "kubernetesVersion" => {
                let t = text_of(value, "kubernetesVersion", err)?;
                release.kubernetes_version = Some(
                    parse_version(&t)
                        .ok_or_else(|| err(value.pos, format!("kubernetesVersion `{t}` is not MAJOR.MINOR")))?,
                );
            }
            "environments" => {
                if !value.is_map() {
                    return Err(err(value.pos, "environments must map names to {values, set, namespace}".into()));
                }
                for env in value.entries() {
                    let mut environment =
                        HelmEnvironment { name: text_of(&env.key, "an environment name", err)?, ..Default::default() };
                    for field in env.value.entries() {
                        match field.key.as_key().unwrap_or("") {
                            "values" => environment.values = list_of(&field.value, "values", err)?,
                            "set" => environment.set = set_of(&field.value, err)?,
                            "namespace" => environment.namespace = Some(text_of(&field.value, "namespace", err)?),
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

    #[test]
    fn today_is_plausible() {
        let (y, m, d) = today();
        assert!(y >= 2024 && (1..=12).contains(&m) && (1..=31).contains(&d));
        assert_eq!(parse_date("2026-02-30"), Some((2026, 2, 30)));
        assert_eq!(parse_date("tomorrow"), None);
    }
}
