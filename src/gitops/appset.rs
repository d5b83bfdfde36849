//! Argo CD ApplicationSet expansion, offline and in-process: the generators (list, git directories and
//! files read from the tree, cluster from the `.kpath.yml` inventory, matrix, merge) produce parameter sets,
//! and the `spec.template` is filled with each set the way the ApplicationSet controller fills it, so every
//! generated Application can be rendered and checked like a written one.
//!
//! Read from Argo CD's documentation (and its controller's source where the documentation is silent):
//! - generators: <https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Generators/>
//! - templates: <https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Template/>
//! - Go templates: <https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/GoTemplate/>
//!
//! Argo CD substitutes parameters in each string of the template separately. So does this module: every
//! string scalar of `spec.template` that holds `{{` is evaluated on its own, and written back in the file's
//! text as a YAML scalar of the same style (re-quoted when the value needs it), so the generated text keeps
//! the file's line numbers. Default (fasttemplate) substitution is done here; `goTemplate: true` strings are
//! evaluated by the real Go template engine of the pinned Helm (one `helm template` per ApplicationSet, in a
//! sandbox, the parameters in a values file), never by a hand-written interpreter.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::gitops::{At, Settings, repo};
use crate::render::{Problem, Tree};
use crate::yaml::{self, Node, NodeKind, Pos, Style};

/// Most Applications one ApplicationSet may generate; past it the expansion is a problem (an accidental
/// matrix of two large generators should not render for an hour).
pub const MAX_GENERATED: usize = 10_000;
/// Largest git files generator file read.
pub const MAX_GENERATOR_FILE_BYTES: u64 = 1 << 20;
/// Most files one git files generator reads.
const MAX_GENERATOR_FILES: usize = 10_000;
/// Deepest matrix/merge nesting followed (Argo CD itself allows two levels).
const MAX_NESTING: usize = 8;
/// Bounds of the one Helm run that evaluates an ApplicationSet's Go templates.
const HELM_TIMEOUT: Duration = Duration::from_secs(60);
const HELM_MAX_OUTPUT: usize = 64 << 20;

/// The label every Argo CD cluster Secret carries; cluster selectors see it, and so do the
/// `metadata.labels.*` parameters (<https://argo-cd.readthedocs.io/en/stable/operator-manual/declarative-setup/#clusters>).
const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";

/// One Application an ApplicationSet generates.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The generated Application's `metadata.name`.
    pub name: String,
    /// The ApplicationSet file's full text with the lines of its `spec.template` mapping substituted with
    /// this parameter set, and every other line blank (same number of lines): `yaml::parse_single(text)`
    /// gives the template mapping (`metadata`, `spec`) at the same line numbers as in the file (columns shift
    /// only where a substitution changed a line's length).
    pub text: String,
    /// Tree files this Application was generated from besides the ApplicationSet file (a git files
    /// generator's config file), relative to the tree.
    pub inputs: BTreeSet<String>,
    /// Template lines whose whole value is one parameter, with where that parameter's value is written (a list
    /// element's line): what a person edits to change the value on that line.
    pub origins: Vec<(u32, At)>,
}

/// What expanding one ApplicationSet gave.
#[derive(Debug, Default)]
pub struct Expansion {
    pub generated: Vec<Generated>,
    /// Files every generated Application depends on (the ApplicationSet file itself).
    pub inputs: BTreeSet<String>,
    /// What stops expansion, placed (`render-failed` findings). When there is one, `generated` is empty:
    /// Argo CD generates nothing from an ApplicationSet whose generation fails.
    pub problems: Vec<Problem>,
    /// What cannot be expanded offline, with the reason and where (`render-skipped` notices). Generators
    /// that could be expanded still are.
    pub skipped: Vec<(At, String)>,
}

/// Expands the ApplicationSet that is document `document` of `file` (whose whole text is `text`).
///
/// `settings` gives this repository's URLs (git generators read only this repository, from `tree`) and
/// the cluster inventory; `helm` evaluates `goTemplate: true` templates (`None`: such ApplicationSets are
/// skipped with the reason).
pub fn expand(
    tree: &dyn Tree,
    file: &str,
    text: &str,
    document: usize,
    settings: &Settings,
    helm: Option<&crate::helm::Helm>,
) -> Expansion {
    let mut expansion = Expansion { inputs: BTreeSet::from([file.to_string()]), ..Expansion::default() };
    match expand_inner(tree, file, text, document, settings, helm, &mut expansion.skipped) {
        Ok(generated) => expansion.generated = generated,
        Err(Stop::Problem(problem)) => expansion.problems.push(problem),
        Err(Stop::Skip(at, reason)) => expansion.skipped.push((at, reason)),
    }
    expansion
}

/// Why expansion stopped.
enum Stop {
    Problem(Problem),
    Skip(At, String),
}

type Params = Map<String, Value>;
/// Where each parameter's value is written: parameter → place.
type Origins = BTreeMap<String, At>;

/// One parameter set, with what it was read from.
#[derive(Debug, Clone, Default)]
struct Set {
    params: Params,
    inputs: BTreeSet<String>,
    /// `goTemplate` `values` of the generator, evaluated with the set's parameters in the Helm run:
    /// (key, template, line of the template).
    values: Vec<(String, String, u32)>,
    /// Where each parameter's value is written, when it is written in the ApplicationSet (a list element).
    origins: Origins,
}

struct Cx<'a> {
    tree: &'a dyn Tree,
    file: &'a str,
    settings: &'a Settings,
    go: bool,
    nested_selectors: bool,
    /// Directories of the repository the tree shows, in the order Argo CD lists them.
    dirs: Option<Vec<String>>,
}

impl Cx<'_> {
    fn problem(&self, pos: Pos, message: impl Into<String>) -> Stop {
        Stop::Problem(Problem {
            file: self.file.to_string(),
            pos: Pos { line: pos.line.max(1), col: pos.col.max(1) },
            message: message.into(),
        })
    }

    fn skip(&self, pos: Pos, reason: impl Into<String>) -> Stop {
        Stop::Skip(At::new(self.file, pos.line, pos.col), reason.into())
    }
}

fn expand_inner(
    tree: &dyn Tree,
    file: &str,
    text: &str,
    document: usize,
    settings: &Settings,
    helm: Option<&crate::helm::Helm>,
    skipped: &mut Vec<(At, String)>,
) -> Result<Vec<Generated>, Stop> {
    let placed = |pos: Pos, message: String| Stop::Problem(Problem { file: file.to_string(), pos, message });
    let chunks = yaml::chunks(text);
    let Some(chunk) = chunks.get(document) else {
        return Err(placed(Pos { line: 1, col: 1 }, format!("{file} has no YAML document {document}")));
    };
    let doc = chunk
        .parse(document)
        .map_err(|b| placed(b.error.pos, format!("ApplicationSet does not parse: {}", b.error.message)))?;
    let Some(root) = doc.root else {
        return Err(placed(Pos { line: doc.start_line, col: 1 }, "the ApplicationSet document is empty".into()));
    };
    let kind_pos = root.entry("kind").map_or(root.pos, |e| e.key.pos);
    let Some(spec) = root.get("spec").filter(|s| s.is_map()) else {
        return Err(placed(kind_pos, "ApplicationSet has no `spec` mapping".into()));
    };
    let go = spec.get("goTemplate").and_then(Node::as_bool).unwrap_or(false);
    let mut cx = Cx {
        tree,
        file,
        settings,
        go,
        nested_selectors: spec.get("applyNestedSelectors").and_then(Node::as_bool).unwrap_or(false),
        dirs: None,
    };
    let Some(template_entry) = spec.entry("template") else {
        return Err(cx.problem(kind_pos, "ApplicationSet has no `spec.template`"));
    };
    let template = &template_entry.value;
    if !template.is_map() {
        return Err(cx.problem(template.pos, "`spec.template` is not a mapping"));
    }
    if let Some(patch) = spec.entry("templatePatch") {
        return Err(cx.skip(
            patch.key.pos,
            "`templatePatch` is not expanded offline yet: the generated Applications would not be the ones Argo CD creates",
        ));
    }
    let options = go_options(&cx, spec)?;
    if go && helm.is_none() {
        return Err(cx.skip(
            spec.entry("goTemplate").map_or(kind_pos, |e| e.key.pos),
            "`goTemplate: true` templates are evaluated with Helm's Go template engine, and no helm was found",
        ));
    }
    let Some(generators) = spec.get("generators").filter(|g| g.is_seq()) else {
        return Err(cx.problem(kind_pos, "ApplicationSet has no `spec.generators` list"));
    };

    // Every top-level generator adds its parameter sets; one that cannot be expanded offline is reported
    // and the others still expand.
    let mut sets = Vec::new();
    for generator in generators.items() {
        match generate(&mut cx, generator, 0, None) {
            Ok(more) => sets.extend(more),
            Err(Stop::Skip(at, reason)) => skipped.push((at, reason)),
            Err(problem) => return Err(problem),
        }
        if sets.len() > MAX_GENERATED {
            return Err(
                cx.problem(generator.pos, format!("the generators give more than {MAX_GENERATED} parameter sets"))
            );
        }
    }

    let fields = template_fields(text, template, template_entry.key.pos);
    let region = template_region(text, template, template_entry.key.pos);
    let values: Vec<Vec<String>> = if go {
        let Some(helm) = helm else { return Ok(Vec::new()) };
        evaluate_go(&cx, helm, &fields, &sets, &options)?
    } else {
        let mut all = Vec::with_capacity(sets.len());
        for set in &sets {
            let mut one = Vec::with_capacity(fields.len());
            for field in &fields {
                one.push(fasttemplate(&field.text, &set.params).map_err(|e| cx.problem(field.pos, e))?);
            }
            all.push(one);
        }
        all
    };

    let lines: Vec<&str> = text.split('\n').collect();
    let mut generated = Vec::with_capacity(sets.len());
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let name_pos = template.get("metadata").and_then(|m| m.entry("name")).map_or(template.pos, |e| e.value.pos);
    for (set, values) in sets.into_iter().zip(values) {
        let text = fill(&lines, &region, &fields, &values);
        let name = match yaml::parse_single(&text) {
            Ok(Some(node)) => node.get_path(&["metadata", "name"]).and_then(Node::as_text).map(str::to_string),
            Ok(None) => None,
            Err(e) => {
                return Err(cx.problem(e.pos, format!("a generated Application is not valid YAML: {}", e.message)));
            }
        };
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Err(cx.problem(name_pos, "a generated Application has no `metadata.name`"));
        };
        if names.insert(name.clone(), generated.len()).is_some() {
            return Err(cx.problem(
                name_pos,
                format!(
                    "the ApplicationSet generates two Applications named `{name}`: Argo CD refuses duplicate names"
                ),
            ));
        }
        let origins = fields
            .iter()
            .filter_map(|field| {
                let parameter = single_parameter(&field.text)?;
                Some((field.pos.line, set.origins.get(&parameter)?.clone()))
            })
            .collect();
        generated.push(Generated { name, text, inputs: set.inputs, origins });
    }
    Ok(generated)
}

/// `goTemplateOptions`, checked: Go's template engine accepts only the `missingkey` option.
fn go_options(cx: &Cx<'_>, spec: &Node) -> Result<Vec<String>, Stop> {
    let mut options = Vec::new();
    for item in spec.get("goTemplateOptions").map(Node::items).unwrap_or_default() {
        let option = item.as_text().unwrap_or_default();
        if !matches!(option, "missingkey=default" | "missingkey=invalid" | "missingkey=zero" | "missingkey=error") {
            return Err(cx.problem(item.pos, format!("unknown goTemplateOptions entry `{option}`")));
        }
        options.push(option.to_string());
    }
    Ok(options)
}

// ---------------------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------------------

/// The parameter sets of one generator entry (`- list: …`, `- git: …`), `depth` levels inside matrix/merge
/// generators; `outer` is the first matrix child's parameter set when this is the second child.
fn generate(cx: &mut Cx<'_>, entry: &Node, depth: usize, outer: Option<&Params>) -> Result<Vec<Set>, Stop> {
    if depth > MAX_NESTING {
        return Err(cx.problem(entry.pos, format!("generators nested more than {MAX_NESTING} levels deep")));
    }
    if !entry.is_map() {
        return Err(cx.problem(entry.pos, "a generator is not a mapping"));
    }
    // The second child of a matrix may use the first child's parameters in any of its strings
    // (https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Generators-Matrix/).
    let interpolated;
    let entry = match outer {
        Some(outer) if mentions_template(entry) => {
            if cx.go {
                return Err(cx.skip(
                    entry.pos,
                    "a matrix generator whose second generator uses the first one's parameters is expanded \
                     offline only with the default templating, not with `goTemplate: true`",
                ));
            }
            interpolated = interpolate(entry, outer).map_err(|(pos, e)| cx.problem(pos, e))?;
            &interpolated
        }
        _ => entry,
    };
    let kinds: Vec<&yaml::Entry> = entry.entries().iter().filter(|e| e.key.as_key() != Some("selector")).collect();
    if kinds.is_empty() {
        return Err(cx.problem(entry.pos, "a generator entry names no generator"));
    }
    if depth > 0 && kinds.len() > 1 {
        return Err(cx.problem(entry.pos, "a matrix or merge child names more than one generator"));
    }
    let mut sets = Vec::new();
    for kind in kinds {
        let name = kind.key.as_key().unwrap_or_default();
        let spec = &kind.value;
        if let Some(template) = spec.entry("template")
            && !template.value.entries().is_empty()
        {
            return Err(cx.skip(
                template.key.pos,
                "a generator's own `template` override is not expanded offline yet (its Applications would be \
                 made from two merged templates)",
            ));
        }
        let more = match name {
            "list" => list(cx, spec)?,
            "git" => git(cx, spec, depth)?,
            "clusters" => clusters(cx, spec, depth)?,
            "matrix" => matrix(cx, spec, depth)?,
            "merge" => merge(cx, spec, depth)?,
            "scmProvider" | "pullRequest" | "clusterDecisionResource" | "plugin" => {
                return Err(
                    cx.skip(kind.key.pos, format!("the `{name}` generator asks a service kpath does not call offline"))
                );
            }
            other => return Err(cx.skip(kind.key.pos, format!("unknown generator `{other}`"))),
        };
        sets.extend(more);
    }
    // A post-selector keeps the sets whose flattened parameters match; inside a matrix or merge only with
    // `applyNestedSelectors: true`
    // (https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Generators-Post-Selector/).
    if let Some(selector) = entry.get("selector")
        && (depth == 0 || cx.nested_selectors)
    {
        let mut kept = Vec::new();
        for set in sets {
            if !set.values.is_empty() && selector_mentions_values(selector) {
                return Err(cx.skip(
                    selector.pos,
                    "a selector on `values.*` of a `goTemplate` generator is not evaluated offline",
                ));
            }
            let labels = flatten(&set.params);
            if selector_matches(selector, &labels).map_err(|(pos, e)| cx.problem(pos, e))? {
                kept.push(set);
            }
        }
        sets = kept;
    }
    Ok(sets)
}

/// The list generator: `elements` (and `elementsYaml`)
/// (<https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Generators-List/>).
fn list(cx: &Cx<'_>, spec: &Node) -> Result<Vec<Set>, Stop> {
    let mut sets = Vec::new();
    for element in spec.get("elements").map(Node::items).unwrap_or_default() {
        if !element.is_map() {
            return Err(cx.problem(element.pos, "a list generator element is not a mapping"));
        }
        let mut params = Params::new();
        let mut origins = BTreeMap::new();
        element_origins(cx.file, element, "", &mut origins);
        if cx.go {
            if let Value::Object(object) = to_json(element).map_err(|(pos, e)| cx.problem(pos, e))? {
                params = object;
            }
        } else {
            // The default templating takes only strings: Argo CD refuses any other value
            // (`values` is a mapping of strings, flattened to `values.<key>`).
            for e in element.entries() {
                let key = e.key.as_key().unwrap_or_default();
                if key == "values" && e.value.is_map() {
                    for v in e.value.entries() {
                        let text = string_value(cx, &v.value, "a list element's `values` entry")?;
                        params.insert(format!("values.{}", v.key.as_key().unwrap_or_default()), Value::String(text));
                    }
                } else {
                    let text = string_value(cx, &e.value, &format!("list element value `{key}`"))?;
                    params.insert(key.to_string(), Value::String(text));
                }
            }
        }
        sets.push(Set { params, origins, ..Set::default() });
    }
    if let Some(raw) = spec.get("elementsYaml") {
        let Some(text) = raw.as_text() else {
            return Err(cx.problem(raw.pos, "`elementsYaml` is not a string"));
        };
        let (docs, broken) = yaml::parse_stream(text);
        if let Some(b) = broken.first() {
            return Err(cx.problem(raw.pos, format!("`elementsYaml` does not parse: {}", b.error.message)));
        }
        if let Some(node) = docs.into_iter().next().and_then(|d| d.root) {
            if !node.is_seq() {
                return Err(cx.problem(raw.pos, "`elementsYaml` is not a list of mappings"));
            }
            for item in node.items() {
                match to_json(item) {
                    Ok(Value::Object(params)) => sets.push(Set { params, ..Set::default() }),
                    Ok(_) => return Err(cx.problem(raw.pos, "an `elementsYaml` element is not a mapping")),
                    Err((_, e)) => return Err(cx.problem(raw.pos, e)),
                }
            }
        }
    }
    Ok(sets)
}

/// Where each (dotted) key of a list element is written: `tag` → the line of `tag: latest`.
fn element_origins(file: &str, node: &Node, prefix: &str, out: &mut BTreeMap<String, At>) {
    for e in node.entries() {
        let key = format!("{prefix}{}", e.key.as_key().unwrap_or_default());
        if e.value.is_map() {
            element_origins(file, &e.value, &format!("{key}."), out);
        } else {
            out.insert(key, At::new(file, e.value.pos.line, e.value.pos.col));
        }
    }
}

/// The one parameter a template string is made of (`{{tag}}`, `'{{ .tag }}'`, `v{{.image.tag}}`), when it
/// has exactly one action and that action names a parameter.
fn single_parameter(text: &str) -> Option<String> {
    let start = text.find("{{")?;
    let end = text[start..].find("}}")? + start;
    if text[end + 2..].contains("{{") {
        return None;
    }
    let inner = text[start + 2..end].trim_matches(|c: char| c == '-' || c.is_whitespace());
    let name = inner.strip_prefix('.').unwrap_or(inner);
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    plain.then(|| name.to_string())
}

fn string_value(cx: &Cx<'_>, node: &Node, what: &str) -> Result<String, Stop> {
    match node.scalar() {
        Some(s) if matches!(s.value(), yaml::Value::Str(_)) => Ok(s.text.clone()),
        _ => Err(cx.problem(
            node.pos,
            format!("{what} is not a string: Argo CD's default templating takes only strings (quote it, or use `goTemplate: true`)"),
        )),
    }
}

/// The git generator, reading this repository's tree
/// (<https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Generators-Git/>).
fn git(cx: &mut Cx<'_>, spec: &Node, depth: usize) -> Result<Vec<Set>, Stop> {
    let url_node = spec.get("repoURL");
    let url = url_node.and_then(Node::as_text).unwrap_or_default();
    let at = url_node.map_or(spec.pos, |n| n.pos);
    if url.is_empty() {
        return Err(cx.problem(spec.pos, "the git generator has no `repoURL`"));
    }
    if cx.settings.repositories.is_empty() {
        return Err(cx.skip(
            at,
            format!("the git generator reads `{url}`, and this repository's URL is unknown (set `gitops.repoURLs` in .kpath.yml)"),
        ));
    }
    if !repo::is_one_of(url, &cx.settings.repositories) {
        return Err(
            cx.skip(at, format!("the git generator reads another repository (`{url}`), which kpath does not fetch"))
        );
    }
    let prefix = spec.get("pathParamPrefix").and_then(Node::as_text).unwrap_or_default().to_string();
    let values = string_map(cx, spec.get("values"))?;
    if cx.go && depth > 0 && !values.is_empty() {
        return Err(cx.skip(
            spec.pos,
            "`values` of a git generator inside a matrix or merge are not evaluated offline with `goTemplate: true`",
        ));
    }
    let directories = spec.get("directories").map(Node::items).unwrap_or_default();
    let files = spec.get("files").map(Node::items).unwrap_or_default();
    let mut sets = Vec::new();
    if !directories.is_empty() {
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for item in directories {
            let Some(pattern) = item.get("path").and_then(Node::as_text) else {
                return Err(cx.problem(item.pos, "a git `directories` entry has no `path`"));
            };
            outside_tree(cx, pattern, item.pos)?;
            if item.get("exclude").and_then(Node::as_bool).unwrap_or(false) {
                exclude.push(pattern.to_string());
            } else {
                include.push(pattern.to_string());
            }
        }
        let dirs = cx.dirs.get_or_insert_with(|| repository_dirs(cx.tree)).clone();
        // Exclusions win over inclusions, whatever their order.
        for dir in dirs {
            let matches = |p: &String| path_match(p, &dir);
            if include.iter().any(matches) && !exclude.iter().any(matches) {
                let params = directory_params(&dir, &prefix, cx.go);
                sets.push(with_values(cx, params, &values)?);
            }
            if sets.len() > MAX_GENERATED {
                return Err(
                    cx.problem(spec.pos, format!("the git generator gives more than {MAX_GENERATED} directories"))
                );
            }
        }
    } else if !files.is_empty() {
        let mut patterns = Vec::new();
        for item in files {
            let Some(pattern) = item.get("path").and_then(Node::as_text) else {
                return Err(cx.problem(item.pos, "a git `files` entry has no `path`"));
            };
            outside_tree(cx, pattern, item.pos)?;
            patterns.push(pattern.to_string());
        }
        let tree_prefix = cx.tree.prefix().trim_matches('/').to_string();
        let mut matched: Vec<(String, String)> = cx
            .tree
            .files()
            .iter()
            .map(|f| (crate::render::join(&tree_prefix, f), f.clone()))
            .filter(|(repo_path, _)| patterns.iter().any(|p| pathspec_match(p, repo_path)))
            .collect();
        matched.sort();
        if matched.len() > MAX_GENERATOR_FILES {
            return Err(
                cx.problem(spec.pos, format!("the git generator matches more than {MAX_GENERATOR_FILES} files"))
            );
        }
        for (repo_path, tree_path) in matched {
            let Some(content) = cx.tree.read(&tree_path, MAX_GENERATOR_FILE_BYTES) else {
                return Err(cx.problem(
                    spec.pos,
                    format!(
                        "the git generator's file {tree_path} cannot be read or is larger than {} bytes",
                        MAX_GENERATOR_FILE_BYTES
                    ),
                ));
            };
            let objects =
                file_objects(&tree_path, &content).map_err(|e| cx.problem(spec.pos, format!("{tree_path}: {e}")))?;
            for (object, origins) in objects {
                let params = file_params(&repo_path, object, &prefix, cx.go);
                let mut set = with_values(cx, params, &values)?;
                set.inputs.insert(tree_path.clone());
                set.origins = origins;
                sets.push(set);
                if sets.len() > MAX_GENERATED {
                    return Err(cx.problem(
                        spec.pos,
                        format!("the git generator gives more than {MAX_GENERATED} parameter sets"),
                    ));
                }
            }
        }
    } else {
        return Err(cx.problem(spec.pos, "the git generator has neither `directories` nor `files`"));
    }
    Ok(sets)
}

/// A git generator path the tree cannot show: the tree is a sub-directory of the repository, and the
/// pattern reaches outside it.
fn outside_tree(cx: &Cx<'_>, pattern: &str, pos: Pos) -> Result<(), Stop> {
    let prefix = cx.tree.prefix().trim_matches('/');
    if prefix.is_empty() {
        return Ok(());
    }
    let literal: Vec<&str> =
        pattern.split('/').take_while(|segment| !segment.contains(['*', '?', '[', '\\'])).collect();
    let literal = literal.join("/");
    if literal == prefix || literal.starts_with(&format!("{prefix}/")) {
        return Ok(());
    }
    Err(cx.skip(pos, format!("the git generator path `{pattern}` reaches outside the checked directory `{prefix}`")))
}

fn string_map(cx: &Cx<'_>, node: Option<&Node>) -> Result<Vec<(String, String, u32)>, Stop> {
    let mut out = Vec::new();
    for e in node.map(Node::entries).unwrap_or_default() {
        let Some(text) = e.value.as_text() else {
            return Err(cx.problem(e.value.pos, "a `values` entry is not a string"));
        };
        out.push((e.key.as_key().unwrap_or_default().to_string(), text.to_string(), e.value.pos.line));
    }
    Ok(out)
}

/// Adds the generator's `values` (templated with the set's own parameters) as `values.<key>`.
fn with_values(cx: &Cx<'_>, mut params: Params, values: &[(String, String, u32)]) -> Result<Set, Stop> {
    if values.is_empty() {
        return Ok(Set { params, ..Set::default() });
    }
    if cx.go {
        return Ok(Set { params, values: values.to_vec(), ..Set::default() });
    }
    let mut add = Vec::new();
    for (key, template, line) in values {
        let text = fasttemplate(template, &params).map_err(|e| cx.problem(Pos { line: *line, col: 1 }, e))?;
        add.push((format!("values.{key}"), Value::String(text)));
    }
    params.extend(add);
    Ok(Set { params, ..Set::default() })
}

/// Directories of the repository the tree shows, in the order Argo CD's repository server walks them
/// (depth first, names in order), without the root and without any directory whose name starts with `.`.
fn repository_dirs(tree: &dyn Tree) -> Vec<String> {
    let prefix = tree.prefix().trim_matches('/');
    let mut dirs: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut add_ancestors = |path: &str| {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for end in 1..segments.len() {
            if segments[..end].iter().any(|s| s.starts_with('.')) {
                break;
            }
            dirs.insert(segments[..end].iter().map(|s| s.to_string()).collect());
        }
    };
    for file in tree.files() {
        add_ancestors(&crate::render::join(prefix, file));
    }
    // Ordering by segment lists is a depth-first walk with names in order.
    dirs.into_iter().map(|segments| segments.join("/")).collect()
}

fn directory_params(dir: &str, prefix: &str, go: bool) -> Params {
    let base = dir.rsplit('/').next().unwrap_or(dir).to_string();
    let segments: Vec<&str> = dir.split('/').collect();
    let mut params = Params::new();
    if go {
        let mut path = Params::new();
        path.insert("path".into(), Value::String(dir.to_string()));
        path.insert("basename".into(), Value::String(base.clone()));
        path.insert("basenameNormalized".into(), Value::String(normalize(&base)));
        path.insert("segments".into(), Value::Array(segments.iter().map(|s| Value::String(s.to_string())).collect()));
        put_path(&mut params, prefix, path);
    } else {
        let name = path_param_name(prefix);
        params.insert(name.clone(), Value::String(dir.to_string()));
        params.insert(format!("{name}.basename"), Value::String(base.clone()));
        params.insert(format!("{name}.basenameNormalized"), Value::String(normalize(&base)));
        for (i, segment) in segments.iter().enumerate().filter(|(_, s)| !s.is_empty()) {
            params.insert(format!("{name}[{i}]"), Value::String(segment.to_string()));
        }
    }
    params
}

fn file_params(file: &str, object: Params, prefix: &str, go: bool) -> Params {
    let dir = match file.rsplit_once('/') {
        Some((dir, _)) => dir.to_string(),
        None => ".".to_string(),
    };
    let base = dir.rsplit('/').next().unwrap_or(&dir).to_string();
    let filename = file.rsplit('/').next().unwrap_or(file).to_string();
    let segments: Vec<String> = dir.split('/').map(str::to_string).collect();
    if go {
        let mut params = object;
        let mut path = Params::new();
        path.insert("path".into(), Value::String(dir.clone()));
        path.insert("basename".into(), Value::String(base.clone()));
        path.insert("filename".into(), Value::String(filename.clone()));
        path.insert("basenameNormalized".into(), Value::String(normalize(&base)));
        path.insert("filenameNormalized".into(), Value::String(normalize(&filename)));
        path.insert("segments".into(), Value::Array(segments.into_iter().map(Value::String).collect()));
        put_path(&mut params, prefix, path);
        params
    } else {
        let mut params: Params = flatten(&object).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let name = path_param_name(prefix);
        params.insert(name.clone(), Value::String(dir.clone()));
        params.insert(format!("{name}.basename"), Value::String(base.clone()));
        params.insert(format!("{name}.filename"), Value::String(filename.clone()));
        params.insert(format!("{name}.basenameNormalized"), Value::String(normalize(&base)));
        params.insert(format!("{name}.filenameNormalized"), Value::String(normalize(&filename)));
        for (i, segment) in segments.iter().enumerate().filter(|(_, s)| !s.is_empty()) {
            params.insert(format!("{name}[{i}]"), Value::String(segment.clone()));
        }
        params
    }
}

fn path_param_name(prefix: &str) -> String {
    if prefix.is_empty() { "path".to_string() } else { format!("{prefix}.path") }
}

fn put_path(params: &mut Params, prefix: &str, path: Params) {
    if prefix.is_empty() {
        params.insert("path".into(), Value::Object(path));
    } else {
        let mut inner = Params::new();
        inner.insert("path".into(), Value::Object(path));
        params.insert(prefix.to_string(), Value::Object(inner));
    }
}

/// The objects a git files generator file holds: a list of mappings, or one mapping (its first YAML
/// document, as Argo CD reads it), each with where its values are written in `file`.
fn file_objects(file: &str, content: &str) -> Result<Vec<(Params, Origins)>, String> {
    let (docs, broken) = yaml::parse_stream(content);
    let first = docs.into_iter().next();
    if let Some(b) = broken.first()
        && first.as_ref().is_none_or(|d| d.index > b.index)
    {
        return Err(format!("does not parse (line {}): {}", b.error.pos.line, b.error.message));
    }
    let Some(root) = first.and_then(|d| d.root) else { return Ok(Vec::new()) };
    let origins = |node: &Node| {
        let mut out = BTreeMap::new();
        element_origins(file, node, "", &mut out);
        out
    };
    match to_json(&root).map_err(|(_, e)| e)? {
        Value::Object(object) => Ok(vec![(object, origins(&root))]),
        Value::Array(items) => items
            .into_iter()
            .zip(root.items())
            .map(|(item, node)| match item {
                Value::Object(object) => Ok((object, origins(node))),
                _ => Err("holds a list whose items are not all mappings".to_string()),
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err("is neither a mapping nor a list of mappings".into()),
    }
}

/// The cluster generator over the `.kpath.yml` inventory
/// (<https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Generators-Cluster/>).
///
/// The inventory stands for the cluster Secrets Argo CD would list; it is taken as complete: the local
/// `in-cluster` is a cluster only when the inventory lists it.
fn clusters(cx: &Cx<'_>, spec: &Node, depth: usize) -> Result<Vec<Set>, Stop> {
    if cx.settings.clusters.is_empty() {
        return Err(cx.skip(
            spec.pos,
            "the cluster generator needs the list of clusters: declare them in `.kpath.yml` under `gitops.clusters`",
        ));
    }
    let values = string_map(cx, spec.get("values"))?;
    if cx.go && depth > 0 && !values.is_empty() {
        return Err(cx.skip(
            spec.pos,
            "`values` of a cluster generator inside a matrix or merge are not evaluated offline with `goTemplate: true`",
        ));
    }
    let mut sets = Vec::new();
    for cluster in &cx.settings.clusters {
        let mut labels = cluster.labels.clone();
        labels.entry(SECRET_TYPE_LABEL.to_string()).or_insert_with(|| "cluster".to_string());
        if let Some(selector) = spec.get("selector")
            && !selector_matches(selector, &labels).map_err(|(pos, e)| cx.problem(pos, e))?
        {
            continue;
        }
        let mut params = Params::new();
        params.insert("name".into(), Value::String(cluster.name.clone()));
        params.insert("nameNormalized".into(), Value::String(normalize(&cluster.name)));
        params.insert("server".into(), Value::String(cluster.server.clone()));
        if cx.go {
            let mut meta = Params::new();
            let strings = |m: &BTreeMap<String, String>| {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
            };
            if !cluster.annotations.is_empty() {
                meta.insert("annotations".into(), strings(&cluster.annotations));
            }
            meta.insert("labels".into(), strings(&labels));
            params.insert("metadata".into(), Value::Object(meta));
        } else {
            for (k, v) in &cluster.annotations {
                params.insert(format!("metadata.annotations.{k}"), Value::String(v.clone()));
            }
            for (k, v) in &labels {
                params.insert(format!("metadata.labels.{k}"), Value::String(v.clone()));
            }
        }
        sets.push(with_values(cx, params, &values)?);
    }
    Ok(sets)
}

/// The matrix generator: every combination of its two children's sets, the second child evaluated once per
/// set of the first (<https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Generators-Matrix/>).
fn matrix(cx: &mut Cx<'_>, spec: &Node, depth: usize) -> Result<Vec<Set>, Stop> {
    let children = spec.get("generators").map(Node::items).unwrap_or_default();
    if children.len() != 2 {
        return Err(
            cx.problem(spec.pos, format!("a matrix generator needs exactly two generators, it has {}", children.len()))
        );
    }
    let first = generate(cx, &children[0], depth + 1, None)?;
    let templated = mentions_template(&children[1]);
    let shared = if templated { None } else { Some(generate(cx, &children[1], depth + 1, None)?) };
    let mut out = Vec::new();
    for a in &first {
        let seconds = match &shared {
            Some(sets) => sets.clone(),
            None => generate(cx, &children[1], depth + 1, Some(&a.params))?,
        };
        for b in seconds {
            let params = if cx.go {
                // The first child's parameters win (mergo.Merge with override, first child last).
                let mut merged = b.params.clone();
                deep_merge(&mut merged, &a.params);
                merged
            } else {
                let mut merged = a.params.clone();
                for (k, v) in b.params {
                    match merged.get(&k) {
                        Some(existing) if *existing != v => {
                            return Err(cx.problem(
                                spec.pos,
                                format!(
                                    "both generators of the matrix set the parameter `{k}` with different values (`{}`, `{}`)",
                                    text_of(existing),
                                    text_of(&v)
                                ),
                            ));
                        }
                        _ => {
                            merged.insert(k, v);
                        }
                    }
                }
                merged
            };
            let mut inputs = a.inputs.clone();
            inputs.extend(b.inputs);
            let mut origins = b.origins.clone();
            origins.extend(a.origins.clone());
            out.push(Set { params, inputs, values: Vec::new(), origins });
            if out.len() > MAX_GENERATED {
                return Err(cx.problem(
                    spec.pos,
                    format!("the matrix generator gives more than {MAX_GENERATED} parameter sets"),
                ));
            }
        }
    }
    Ok(out)
}

/// The merge generator: the first child's sets, each overridden by the sets of later children with the
/// same values of `mergeKeys` (<https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Generators-Merge/>).
fn merge(cx: &mut Cx<'_>, spec: &Node, depth: usize) -> Result<Vec<Set>, Stop> {
    let children = spec.get("generators").map(Node::items).unwrap_or_default();
    if children.len() < 2 {
        return Err(cx.problem(spec.pos, "a merge generator needs at least two generators"));
    }
    let keys: BTreeSet<String> = spec
        .get("mergeKeys")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .filter_map(Node::as_text)
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        return Err(cx.problem(spec.pos, "a merge generator needs at least one of `mergeKeys`"));
    }
    let key_of = |set: &Set| {
        let key: Map<String, Value> =
            keys.iter().map(|k| (k.clone(), set.params.get(k).cloned().unwrap_or(Value::Null))).collect();
        Value::Object(key).to_string()
    };
    let unique = |cx: &Cx<'_>, sets: &[Set], child: &Node| -> Result<BTreeMap<String, usize>, Stop> {
        let mut by_key = BTreeMap::new();
        for (i, set) in sets.iter().enumerate() {
            let key = key_of(set);
            if by_key.insert(key.clone(), i).is_some() {
                return Err(cx.problem(
                    child.pos,
                    format!("the merge generator's parameter sets are not unique by `mergeKeys` (twice {key})"),
                ));
            }
        }
        Ok(by_key)
    };
    let mut base = generate(cx, &children[0], depth + 1, None)?;
    let base_keys = unique(cx, &base, &children[0])?;
    for child in &children[1..] {
        let sets = generate(cx, child, depth + 1, None)?;
        let by_key = unique(cx, &sets, child)?;
        for (key, &i) in &base_keys {
            if let Some(&j) = by_key.get(key) {
                let over = &sets[j];
                if cx.go {
                    deep_merge(&mut base[i].params, &over.params);
                } else {
                    for (k, v) in &over.params {
                        base[i].params.insert(k.clone(), v.clone());
                    }
                }
                let more = over.inputs.clone();
                base[i].inputs.extend(more);
                let values = over.values.clone();
                base[i].values.extend(values);
                let origins = over.origins.clone();
                base[i].origins.extend(origins);
            }
        }
    }
    Ok(base)
}

/// Merges `over` into `base`, `over` winning, mappings merged key by key (mergo.Merge with override).
fn deep_merge(base: &mut Params, over: &Params) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether any string of a generator holds `{{` (it uses the first matrix child's parameters).
fn mentions_template(node: &Node) -> bool {
    match &node.kind {
        NodeKind::Scalar(s) => s.text.contains("{{"),
        NodeKind::Seq(items) => items.iter().any(mentions_template),
        NodeKind::Map(entries) => entries.iter().any(|e| mentions_template(&e.key) || mentions_template(&e.value)),
    }
}

/// The generator with the first matrix child's parameters substituted in its strings (keys too).
fn interpolate(node: &Node, params: &Params) -> Result<Node, (Pos, String)> {
    let kind = match &node.kind {
        NodeKind::Scalar(s) => {
            let mut s = s.clone();
            s.text = fasttemplate(&s.text, params).map_err(|e| (node.pos, e))?;
            NodeKind::Scalar(s)
        }
        NodeKind::Seq(items) => NodeKind::Seq(items.iter().map(|i| interpolate(i, params)).collect::<Result<_, _>>()?),
        NodeKind::Map(entries) => NodeKind::Map(
            entries
                .iter()
                .map(|e| Ok(yaml::Entry { key: interpolate(&e.key, params)?, value: interpolate(&e.value, params)? }))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(Node { pos: node.pos, kind })
}

// ---------------------------------------------------------------------------------------------------------
// Values, selectors, names
// ---------------------------------------------------------------------------------------------------------

/// A YAML node as the JSON Argo CD reads (scalars resolved the way sigs.k8s.io/yaml resolves them).
fn to_json(node: &Node) -> Result<Value, (Pos, String)> {
    Ok(match &node.kind {
        NodeKind::Scalar(s) => match s.value() {
            yaml::Value::Null => Value::Null,
            yaml::Value::Bool(b) => Value::Bool(b),
            yaml::Value::Int(i) => match i64::try_from(i) {
                Ok(i) => Value::from(i),
                Err(_) => serde_json::Number::from_f64(i as f64).map_or(Value::Null, Value::Number),
            },
            yaml::Value::Float(f) => match serde_json::Number::from_f64(f) {
                Some(n) => Value::Number(n),
                None => return Err((node.pos, format!("`{}` is not a number JSON can hold", s.text))),
            },
            yaml::Value::Str(t) => Value::String(t.to_string()),
        },
        NodeKind::Seq(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        NodeKind::Map(entries) => {
            let mut map = Map::new();
            for e in entries {
                map.insert(e.key.as_key().unwrap_or_default().to_string(), to_json(&e.value)?);
            }
            Value::Object(map)
        }
    })
}

/// Parameters flattened to `a.b.0` keys with Go's `%v` text of each value, as Argo CD flattens them for
/// selectors and for the default templating of git files.
fn flatten(params: &Params) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    walk(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&if prefix.is_empty() { i.to_string() } else { format!("{prefix}.{i}") }, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), go_text(other));
            }
        }
    }
    let mut out = BTreeMap::new();
    for (k, v) in params {
        walk(k, v, &mut out);
    }
    out
}

/// Go's `fmt.Sprintf("%v", v)` of a JSON-decoded value (numbers are float64 in Go).
fn go_text(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        other => other.to_string(),
    }
}

/// `%v` of a float64: `%g` with the shortest digits, so exponent form when the exponent is below -4 or at
/// least 6 (<https://pkg.go.dev/fmt>: "%v for floating point is %g"; strconv uses 6 digits as the limit
/// for the shortest form). A 7-digit number in a git files generator file becomes `1.234567e+06`, as in
/// Argo CD.
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// Argo CD's name normalisation (`path.basenameNormalized`, `nameNormalized`, `normalize`): lower case,
/// every character but `a-z0-9-.` turned into `-`, at most 253 bytes, `-` and `.` trimmed from both ends.
pub fn normalize(name: &str) -> String {
    let mut out: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' { c } else { '-' })
        .collect();
    out.truncate(253);
    out.trim_matches(['-', '.']).to_string()
}

fn selector_mentions_values(selector: &Node) -> bool {
    let keys = selector.get("matchLabels").map(Node::entries).unwrap_or_default().iter().filter_map(|e| e.key.as_key());
    let exprs = selector
        .get("matchExpressions")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.get("key")?.as_text());
    keys.chain(exprs).any(|k| k.starts_with("values."))
}

/// A Kubernetes label selector (`matchLabels`, `matchExpressions` with In, NotIn, Exists, DoesNotExist)
/// against labels (<https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors>).
fn selector_matches(selector: &Node, labels: &BTreeMap<String, String>) -> Result<bool, (Pos, String)> {
    for e in selector.get("matchLabels").map(Node::entries).unwrap_or_default() {
        let key = e.key.as_key().unwrap_or_default();
        if labels.get(key).map(String::as_str) != Some(e.value.as_text().unwrap_or_default()) {
            return Ok(false);
        }
    }
    for expr in selector.get("matchExpressions").map(Node::items).unwrap_or_default() {
        let key = expr.get("key").and_then(Node::as_text).unwrap_or_default();
        let operator = expr.get("operator").and_then(Node::as_text).unwrap_or_default();
        let values: Vec<&str> =
            expr.get("values").map(Node::items).unwrap_or_default().iter().filter_map(Node::as_text).collect();
        let value = labels.get(key);
        let ok = match operator {
            "In" | "NotIn" if values.is_empty() => {
                return Err((expr.pos, format!("the selector's `{operator}` on `{key}` has no values")));
            }
            "In" => value.is_some_and(|v| values.contains(&v.as_str())),
            "NotIn" => value.is_none_or(|v| !values.contains(&v.as_str())),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => return Err((expr.pos, format!("unknown selector operator `{other}`"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------------------
// Path matching
// ---------------------------------------------------------------------------------------------------------

/// Go's `path.Match`, as the directory generator matches directories: `*` and `?` stop at `/`.
fn path_match(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    pattern.len() == path.len() && pattern.iter().zip(&path).all(|(p, s)| wildmatch(p, s))
}

/// A git pathspec, as the files generator lists files by default (`git ls-files -- PATTERN`): a pattern
/// without wildcards names a file or a directory; with wildcards, `*` also matches `/` (this is the
/// "greedy" globbing Argo CD documents:
/// <https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Generators-Git-File-Globbing/>).
fn pathspec_match(pattern: &str, path: &str) -> bool {
    let pattern = pattern.trim_start_matches("./");
    if !pattern.contains(['*', '?', '[', '\\']) {
        let dir = pattern.trim_end_matches('/');
        return path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'));
    }
    wildmatch(pattern, path)
}

/// Glob match of one string: `*` any run, `?` one character, `[...]` / `[^...]` / `[!...]` classes with
/// ranges, `\` escapes. Iterative, backtracking only to the last `*`: linear-ish time on hostile patterns.
fn wildmatch(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    while pi < p.len() && p[pi] == '*' {
                        pi += 1;
                    }
                    star = Some((pi, ti));
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class(&p, pi, t[ti])
                        && matched
                    {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A `[...]` class at `p[start]`: whether `c` is in it, and the index after it; `None` if unterminated.
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('^' | '!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let mut lo = p[i];
        if lo == '\\' && i + 1 < p.len() {
            i += 1;
            lo = p[i];
        }
        let mut hi = lo;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
            hi = p[i + 2];
            i += 2;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
        i += 1;
    }
    None
}

// ---------------------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------------------

/// Argo CD's default templating of one string (fasttemplate with `{{`/`}}`): a tag whose trimmed name is a
/// string parameter is replaced, any other tag stays as written; a `{{` without `}}` is an error.
fn fasttemplate(text: &str, params: &Params) -> Result<String, String> {
    // Argo CD leaves strings alone unless a line holds `{{…}}`.
    if !text.lines().any(|l| l.find("{{").is_some_and(|s| l[s..].contains("}}"))) {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("`{{{{` without a closing `}}}}` in the template string `{text}`"));
        };
        let tag = &after[..end];
        match params.get(tag.trim()) {
            Some(Value::String(v)) if !tag.trim().is_empty() => out.push_str(v),
            _ => {
                out.push_str("{{");
                out.push_str(tag);
                out.push_str("}}");
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A string of the template that holds `{{`, and where its text is in the file.
#[derive(Debug)]
struct Field {
    pos: Pos,
    text: String,
    style: Style,
    /// The original plain scalar resolves as a string (it must stay one).
    span: Span,
}

#[derive(Debug)]
enum Span {
    /// On one line (0-based), bytes `start..end`.
    Inline { line: usize, start: usize, end: usize },
    /// From byte `start` of `line` to the end of line `last` (inclusive): the lines after the first are
    /// blanked when the value is written back on the first.
    Lines { line: usize, start: usize, last: usize },
}

/// The lines (0-based, inclusive) the template mapping occupies, and the column (bytes) its first line
/// starts at.
#[derive(Debug)]
struct Region {
    first: usize,
    first_col: usize,
    last: usize,
}

fn template_region(text: &str, template: &Node, key: Pos) -> Region {
    let lines: Vec<&str> = text.split('\n').collect();
    let first = (template.pos.line as usize).saturating_sub(1);
    let first_col = lines.get(first).map_or(0, |l| byte_at(l, template.pos.col));
    let key_indent = (key.col as usize).saturating_sub(1);
    let mut last = first;
    for (i, line) in lines.iter().enumerate().skip(first + 1) {
        let bare = line.trim_end_matches('\r');
        let trimmed = bare.trim_start();
        if bare == "---" || bare.starts_with("--- ") || bare == "..." {
            break;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if bare.len() - trimmed.len() <= key_indent {
            break;
        }
        last = i;
    }
    Region { first, first_col, last }
}

/// Byte offset of 1-based character column `col` in `line`.
fn byte_at(line: &str, col: u32) -> usize {
    line.char_indices().nth((col as usize).saturating_sub(1)).map_or(line.len(), |(i, _)| i)
}

/// The template's strings that hold `{{`, in document order.
fn template_fields(text: &str, template: &Node, key: Pos) -> Vec<Field> {
    let lines: Vec<&str> = text.split('\n').collect();
    let region = template_region(text, template, key);
    let mut scalars = Vec::new();
    let mut positions = Vec::new();
    let mut stack = vec![template];
    while let Some(node) = stack.pop() {
        positions.push(node.pos);
        match &node.kind {
            NodeKind::Scalar(s) => {
                if s.text.contains("{{") {
                    scalars.push((node.pos, s));
                }
            }
            NodeKind::Seq(items) => stack.extend(items.iter().rev()),
            NodeKind::Map(entries) => {
                for e in entries.iter().rev() {
                    stack.push(&e.value);
                    stack.push(&e.key);
                }
            }
        }
    }
    positions.sort();
    scalars.sort_by_key(|(pos, _)| *pos);
    let mut fields = Vec::new();
    for (pos, scalar) in scalars {
        let line_no = (pos.line as usize).saturating_sub(1);
        let Some(line) = lines.get(line_no) else { continue };
        let start = byte_at(line, pos.col);
        let inline_end = match scalar.style {
            Style::Quoted => quoted_end(&line[start..]).map(|n| start + n),
            Style::Plain if line[start..].starts_with(scalar.text.as_str()) => Some(start + scalar.text.len()),
            _ => None,
        };
        let span = match inline_end {
            Some(end) => Span::Inline { line: line_no, start, end },
            None if scalar.style == Style::Block => {
                // The node starts at its content; the `|`/`>` header is on an earlier line (after the key or
                // the `- `), and the value is written there.
                let floor = positions
                    .iter()
                    .rev()
                    .find(|p| **p < pos)
                    .map_or(region.first, |p| (p.line as usize).saturating_sub(1));
                let header = (floor..=line_no).rev().find_map(|i| block_header(lines.get(i)?).map(|at| (i, at)));
                let Some((header_line, at)) = header else { continue };
                let next = positions.iter().find(|p| **p > pos && p.line > pos.line).map(|p| p.line as usize - 1);
                let last = next.map_or(region.last, |n| n.saturating_sub(1)).max(line_no);
                Span::Lines { line: header_line, start: at, last }
            }
            None => {
                // Up to the line before the next node of the template (or the template's end).
                let next = positions.iter().find(|p| **p > pos && p.line > pos.line).map(|p| p.line as usize - 1);
                let last = next.map_or(region.last, |n| n.saturating_sub(1)).max(line_no);
                Span::Lines { line: line_no, start, last }
            }
        };
        fields.push(Field { pos, text: scalar.text.clone(), style: scalar.style, span });
    }
    fields
}

/// Byte offset of a block scalar header (`|`, `>-`, `|2+` …) that ends `line` (before any comment).
fn block_header(line: &str) -> Option<usize> {
    let bare = line.trim_end_matches('\r');
    let bare = match bare.find(" #") {
        Some(comment) => &bare[..comment],
        None => bare,
    }
    .trim_end();
    let token_start = bare.rfind([' ', '\t']).map_or(0, |i| i + 1);
    let token = &bare[token_start..];
    let mut chars = token.chars();
    let first = chars.next()?;
    (matches!(first, '|' | '>') && chars.all(|c| c.is_ascii_digit() || c == '+' || c == '-')).then_some(token_start)
}

/// Length in bytes of the quoted scalar at the start of `s`, when it closes on this line.
fn quoted_end(s: &str) -> Option<usize> {
    let quote = s.chars().next()?;
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            ('\'', b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            ('\'', b'\'') | ('"', b'"') => return Some(i + 1),
            ('"', b'\\') => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// The generated text: every line blank but the template's, its templated strings replaced by `values`.
fn fill(lines: &[&str], region: &Region, fields: &[Field], values: &[String]) -> String {
    let mut out: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            if i < region.first || i > region.last {
                String::new()
            } else if i == region.first {
                let keep = line.get(region.first_col..).unwrap_or("");
                format!("{}{keep}", " ".repeat(line[..region.first_col.min(line.len())].chars().count()))
            } else {
                line.to_string()
            }
        })
        .collect();
    // Right to left, so earlier byte offsets on a line stay valid.
    for (field, value) in fields.iter().zip(values).rev() {
        match field.span {
            Span::Inline { line, start, end } => {
                let Some(current) = out.get_mut(line) else { continue };
                if let Some(original) = lines.get(line).and_then(|l| l.get(start..end)) {
                    let written = scalar_text(field, original, value);
                    if current.get(start..end) == Some(original) {
                        current.replace_range(start..end, &written);
                    }
                }
            }
            Span::Lines { line, start, last } => {
                if let Some(current) = out.get_mut(line) {
                    let cut = start.min(current.len());
                    if current.is_char_boundary(cut) {
                        current.truncate(cut);
                        current.push_str(&json_string(value));
                    }
                }
                for blank in out.iter_mut().take(last + 1).skip(line + 1) {
                    blank.clear();
                }
            }
        }
    }
    out.join("\n")
}

fn json_string(value: &str) -> String {
    Value::String(value.to_string()).to_string()
}

/// `value` written as a YAML scalar in place of `original`, in the same style when that keeps it the
/// same string.
fn scalar_text(field: &Field, original: &str, value: &str) -> String {
    let simple = !value.chars().any(|c| c.is_control());
    match field.style {
        Style::Quoted if original.starts_with('\'') && simple => format!("'{}'", value.replace('\'', "''")),
        Style::Plain if simple && plain_is_safe(value) => value.to_string(),
        _ => json_string(value),
    }
}

/// Whether `value` written plain reads back as the same string, in block or flow context.
fn plain_is_safe(value: &str) -> bool {
    let Some(first) = value.chars().next() else { return false };
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || value.trim() != value {
        return false;
    }
    if value.contains(": ") || value.contains(" #") || value.ends_with(':') || value.contains(['[', ']', '{', '}', ','])
    {
        return false;
    }
    matches!(yaml::scalar::resolve_plain(value), yaml::Value::Str(_))
}

// ---------------------------------------------------------------------------------------------------------
// Go templates, through Helm
// ---------------------------------------------------------------------------------------------------------

/// Functions Helm's template engine has and Argo CD's does not: a template calling one fails in Argo CD.
const HELM_ONLY_FUNCTIONS: [&str; 7] =
    ["include", "tpl", "required", "lookup", "toToml", "fromJsonArray", "getHostByName"];

/// The words of `{{ … }}` actions that name functions (not fields, variables or string contents), with
/// their byte ranges.
fn action_words(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while let Some(open) = text[i..].find("{{").map(|o| i + o + 2) {
        let Some(close) = text[open..].find("}}").map(|c| open + c) else { break };
        let mut j = open;
        while j < close {
            match bytes[j] {
                b'"' => {
                    j += 1;
                    while j < close && bytes[j] != b'"' {
                        j += if bytes[j] == b'\\' { 2 } else { 1 };
                    }
                    j += 1;
                }
                b'`' => {
                    j += 1;
                    while j < close && bytes[j] != b'`' {
                        j += 1;
                    }
                    j += 1;
                }
                b'\'' => {
                    j += 1;
                    while j < close && bytes[j] != b'\'' {
                        j += if bytes[j] == b'\\' { 2 } else { 1 };
                    }
                    j += 1;
                }
                b'/' if bytes.get(j + 1) == Some(&b'*') => {
                    j = text[j..close].find("*/").map_or(close, |e| j + e + 2);
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let start = j;
                    while j < close && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                        j += 1;
                    }
                    let before = text[..start].trim_end_matches(' ').as_bytes().last().copied();
                    let attached = start > 0 && matches!(bytes[start - 1], b'.' | b'$');
                    if !attached && before != Some(b'.') {
                        words.push((start, j));
                    }
                }
                _ => j += 1,
            }
        }
        i = close.min(text.len());
        if i + 2 > text.len() {
            break;
        }
        i += 2;
    }
    words
}

/// A field's Go template made ready for Helm: `normalize` (an Argo CD function Helm lacks) calls
/// kpath's named template; functions Argo CD lacks, or `slugify`, stop here.
fn prepare_go(cx: &Cx<'_>, text: &str, pos: Pos) -> Result<String, Stop> {
    let mut out = text.to_string();
    for (start, end) in action_words(text).into_iter().rev() {
        let word = &text[start..end];
        if HELM_ONLY_FUNCTIONS.contains(&word) {
            return Err(cx.problem(pos, format!("the Go template calls `{word}`, a function Argo CD does not define")));
        }
        match word {
            "slugify" => {
                return Err(
                    cx.skip(pos, "the Go template calls Argo CD's `slugify`, which kpath does not evaluate offline")
                );
            }
            "define" | "block" => {
                return Err(
                    cx.skip(pos, format!("the Go template uses `{word}`, which kpath does not evaluate offline"))
                );
            }
            "normalize" => out.replace_range(start..end, "include \"kpath.normalize\""),
            _ => {}
        }
    }
    Ok(out)
}

/// Evaluates every templated string of the template with every parameter set, in one Helm run: each
/// string becomes a named template of a throw-away chart, and one template renders all of them for all
/// sets as JSON strings (JSON escapes `<`, so Go's `<no value>` survives Helm's removal of it).
fn evaluate_go(
    cx: &Cx<'_>,
    helm: &crate::helm::Helm,
    fields: &[Field],
    sets: &[Set],
    options: &[String],
) -> Result<Vec<Vec<String>>, Stop> {
    // `values` only matter through the template's strings.
    if sets.is_empty() || fields.is_empty() {
        return Ok(vec![Vec::new(); sets.len()]);
    }
    let first_pos = fields.first().map_or(Pos { line: 1, col: 1 }, |f| f.pos);
    let failed =
        |e: std::io::Error| cx.problem(first_pos, format!("could not prepare the Go template evaluation: {e}"));
    let sandbox = crate::helm::binary::Sandbox::new().map_err(failed)?;
    let chart = sandbox.path().join("appset");
    let templates = chart.join("templates");
    std::fs::create_dir_all(&templates).map_err(failed)?;
    std::fs::write(chart.join("Chart.yaml"), "apiVersion: v2\nname: kpath-appset\nversion: 0.1.0\n").map_err(failed)?;
    std::fs::write(
        templates.join("_kpath.tpl"),
        // Argo CD's `normalize` (see [`normalize`]).
        "{{- define \"kpath.normalize\" -}}\n{{- regexReplaceAll \"[^-a-z0-9.]\" (lower (toString .)) \"-\" | trunc 253 | trimAll \"-.\" -}}\n{{- end -}}\n",
    )
    .map_err(failed)?;
    let mut names = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let body = prepare_go(cx, &field.text, field.pos)?;
        std::fs::write(
            templates.join(format!("_f{i}.tpl")),
            format!("{{{{- define \"kpath.f{i}\" }}}}{body}{{{{ end -}}}}"),
        )
        .map_err(failed)?;
        names.push(Value::String(format!("kpath.f{i}")));
    }
    // Each distinct `values` template once.
    let mut value_defs: Vec<(String, u32)> = Vec::new();
    let mut value_sets = Vec::with_capacity(sets.len());
    for set in sets {
        let mut refs = Vec::new();
        for (key, template, line) in &set.values {
            let index = match value_defs.iter().position(|(t, l)| t == template && l == line) {
                Some(i) => i,
                None => {
                    let pos = Pos { line: *line, col: 1 };
                    let body = prepare_go(cx, template, pos)?;
                    let i = value_defs.len();
                    std::fs::write(
                        templates.join(format!("_v{i}.tpl")),
                        format!("{{{{- define \"kpath.v{i}\" }}}}{body}{{{{ end -}}}}"),
                    )
                    .map_err(failed)?;
                    value_defs.push((template.clone(), *line));
                    i
                }
            };
            refs.push(Value::Array(vec![Value::String(key.clone()), Value::String(format!("kpath.v{index}"))]));
        }
        let mut entry = Map::new();
        entry.insert("p".into(), Value::Object(set.params.clone()));
        entry.insert("v".into(), Value::Array(refs));
        value_sets.push(Value::Object(entry));
    }
    std::fs::write(
        templates.join("out.yaml"),
        "kpath:\n{{- range $e := .Values.sets }}\n{{- $p := $e.p }}\n{{- if $e.v }}\n{{- $vals := dict }}\n\
         {{- range $e.v }}{{- $_ := set $vals (index . 0) (include (index . 1) $e.p) }}{{- end }}\n\
         {{- $p = set (deepCopy $e.p) \"values\" $vals }}\n{{- end }}\n\
         {{- range $f := $.Values.fields }}\n- {{ include $f $p | toJson }}\n{{- end }}\n{{- end }}\n",
    )
    .map_err(failed)?;
    let mut values = Map::new();
    values.insert("sets".into(), Value::Array(value_sets));
    values.insert("fields".into(), Value::Array(names));
    let values_path = sandbox.path().join("values.json");
    std::fs::write(&values_path, Value::Object(values).to_string()).map_err(failed)?;

    let args = vec![
        "template".to_string(),
        "kpath-appset".to_string(),
        chart.display().to_string(),
        "--values".to_string(),
        values_path.display().to_string(),
    ];
    let limits = crate::helm::binary::RunLimits {
        timeout: HELM_TIMEOUT,
        max_output: HELM_MAX_OUTPUT,
        memory: crate::helm::DEFAULT_MEMORY_PER_RENDER,
    };
    let out = crate::helm::binary::run(&helm.path, &args, &sandbox, &limits)
        .map_err(|e| cx.problem(first_pos, format!("evaluating the ApplicationSet's Go templates: helm {e}")))?;
    if !out.success {
        return Err(go_error(cx, fields, &value_defs, &out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut results = Vec::with_capacity(sets.len() * fields.len());
    for line in stdout.lines() {
        if let Some(json) = line.strip_prefix("- ") {
            match serde_json::from_str::<String>(json) {
                Ok(s) => results.push(s),
                Err(e) => {
                    return Err(cx.problem(first_pos, format!("unexpected output of the Go template evaluation: {e}")));
                }
            }
        }
    }
    if results.len() != sets.len() * fields.len() {
        return Err(cx.problem(first_pos, "unexpected output of the Go template evaluation (wrong number of strings)"));
    }
    let strict = options.iter().any(|o| o == "missingkey=error");
    let mut all = Vec::with_capacity(sets.len());
    let mut results = results.into_iter();
    for _ in sets {
        let one: Vec<String> = results.by_ref().take(fields.len()).collect();
        if strict && let Some(i) = one.iter().position(|v| v.contains("<no value>")) {
            return Err(cx.problem(
                fields[i].pos,
                "the Go template reads a parameter this parameter set does not have, and `goTemplateOptions` has \
                 `missingkey=error`",
            ));
        }
        all.push(one);
    }
    Ok(all)
}

/// A failed Helm run as a problem on the string whose template failed (Helm names its `_fN.tpl` file).
fn go_error(cx: &Cx<'_>, fields: &[Field], value_defs: &[(String, u32)], stderr: &str) -> Stop {
    let message = stderr
        .lines()
        .find(|l| l.starts_with("Error:"))
        .unwrap_or_else(|| stderr.lines().next().unwrap_or(""))
        .trim_start_matches("Error:")
        .trim();
    // The innermost file named is where it failed.
    let mut place = None;
    let mut rest_at = 0;
    for (kind, marker) in [('f', "templates/_f"), ('v', "templates/_v")] {
        let mut from = 0;
        while let Some(at) = message[from..].find(marker).map(|a| from + a) {
            let after = &message[at + marker.len()..];
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            let line: String =
                after.get(digits.len() + 5..).unwrap_or("").chars().take_while(char::is_ascii_digit).collect();
            if let (Ok(i), Ok(l)) = (digits.parse::<usize>(), line.parse::<u32>())
                && at >= rest_at
            {
                place = Some((kind, i, l));
                rest_at = at;
            }
            from = at + marker.len();
        }
    }
    let detail = message[rest_at..]
        .split_once(": ")
        .map_or(message, |(_, rest)| rest)
        .replace("kpath.f", "string ")
        .replace("kpath.v", "value ");
    let pos = match place {
        Some(('f', i, l)) => fields.get(i).map(|f| Pos { line: f.pos.line + l.saturating_sub(1), col: f.pos.col }),
        Some((_, i, _)) => value_defs.get(i).map(|(_, line)| Pos { line: *line, col: 1 }),
        None => None,
    }
    .unwrap_or_else(|| fields.first().map_or(Pos { line: 1, col: 1 }, |f| f.pos));
    cx.problem(pos, format!("the ApplicationSet's Go template fails: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_made_of_one_parameter_names_it() {
        assert_eq!(single_parameter("{{tag}}").as_deref(), Some("tag"));
        assert_eq!(single_parameter("v{{ .image.tag }}").as_deref(), Some("image.tag"));
        assert_eq!(single_parameter("{{- .env -}}").as_deref(), Some("env"));
        assert_eq!(single_parameter("{{ .a }}-{{ .b }}"), None);
        assert_eq!(single_parameter("{{ .a | upper }}"), None);
        assert_eq!(single_parameter("plain"), None);
    }
    use crate::gitops::Cluster;

    /// A tree held in memory.
    use crate::render::MemTree as Mem;

    fn settings() -> Settings {
        let cluster = |name: &str, server: &str, env: &str| Cluster {
            name: name.into(),
            server: server.into(),
            labels: BTreeMap::from([("env".to_string(), env.to_string())]),
            annotations: BTreeMap::new(),
        };
        Settings {
            repositories: BTreeSet::from(["github.com/acme/deploy".to_string()]),
            clusters: vec![
                cluster("prod-eu", "https://prod-eu.example.com", "prod"),
                cluster("Staging_1", "https://staging.example.com", "staging"),
            ],
            ..Settings::default()
        }
    }

    const FILE: &str = "apps/appset.yaml";

    /// Expands the ApplicationSet `text` (document 0) in a tree holding it and `files`.
    fn run(text: &str, files: &[(&str, &str)]) -> Expansion {
        let mut all = files.to_vec();
        all.push((FILE, text));
        expand(&Mem::new(&all), FILE, text, 0, &settings(), None)
    }

    fn names(e: &Expansion) -> Vec<&str> {
        e.generated.iter().map(|g| g.name.as_str()).collect()
    }

    fn appset(generators: &str, template: &str) -> String {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: set\nspec:\n  generators:\n{generators}  template:\n{template}"
        )
    }

    const TEMPLATE: &str = "    metadata:\n      name: '{{name}}-app'\n    spec:\n      project: default\n      source:\n        repoURL: https://github.com/acme/deploy.git\n        path: 'envs/{{name}}'\n      destination:\n        namespace: '{{name}}'\n";

    fn get(g: &Generated, route: &[&str]) -> (String, u32) {
        let root = yaml::parse_single(&g.text).expect("parses").expect("a document");
        let node = root.get_path(route).expect("route");
        (node.as_text().unwrap_or_default().to_string(), node.pos.line)
    }

    #[test]
    fn a_list_generator_fills_the_template_at_the_file_s_lines() {
        let text = appset("  - list:\n      elements:\n      - name: dev\n      - name: prod\n", TEMPLATE);
        let e = run(&text, &[]);
        assert!(e.problems.is_empty() && e.skipped.is_empty(), "{e:?}");
        assert_eq!(names(&e), ["dev-app", "prod-app"]);
        let g = &e.generated[1];
        assert_eq!(g.text.lines().count(), text.lines().count());
        let file_line = |needle: &str| text.lines().position(|l| l.contains(needle)).expect("line") as u32 + 1;
        assert_eq!(get(g, &["metadata", "name"]), ("prod-app".into(), file_line("name: '{{name}}-app'")));
        assert_eq!(get(g, &["spec", "source", "path"]), ("envs/prod".into(), file_line("path: 'envs")));
        assert_eq!(get(g, &["spec", "project"]), ("default".into(), file_line("project:")));
        // Everything outside the template is blank.
        assert!(!g.text.contains("generators") && !g.text.contains("ApplicationSet"));
        assert_eq!(e.inputs, BTreeSet::from([FILE.to_string()]));
    }

    #[test]
    fn values_that_would_change_the_yaml_are_requoted() {
        let template = "    metadata:\n      name: 'app-{{n}}'\n      annotations:\n        a: x-{{v}}\n        b: \"{{v}}\"\n        c: '{{q}}'\n    spec: {}\n";
        let text = appset(
            "  - list:\n      elements:\n      - n: one\n        v: 'a: b # c'\n        q: \"it's\"\n",
            template,
        );
        let e = run(&text, &[]);
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        let g = &e.generated[0];
        assert_eq!(get(g, &["metadata", "annotations", "a"]).0, "x-a: b # c");
        assert_eq!(get(g, &["metadata", "annotations", "b"]).0, "a: b # c");
        assert_eq!(get(g, &["metadata", "annotations", "c"]).0, "it's");
    }

    #[test]
    fn unknown_tags_stay_as_written_and_an_unclosed_tag_is_a_problem() {
        let template = "    metadata:\n      name: 'app-{{name}}-{{ other }}'\n    spec: {}\n";
        let e = run(&appset("  - list:\n      elements:\n      - name: a\n", template), &[]);
        assert_eq!(names(&e), ["app-a-{{ other }}"]);
        let template = "    metadata:\n      name: 'app-{{name}}-{{oops'\n    spec: {}\n";
        let text = appset("  - list:\n      elements:\n      - name: a\n", template);
        let e = run(&text, &[]);
        assert!(e.generated.is_empty());
        assert_eq!(e.problems.len(), 1);
        assert_eq!(e.problems[0].pos.line, 12, "{:?}", e.problems);
        assert!(e.problems[0].message.contains("without a closing"), "{:?}", e.problems);
    }

    #[test]
    fn default_templating_refuses_a_list_value_that_is_not_a_string() {
        let text = appset("  - list:\n      elements:\n      - name: a\n        replicas: 3\n", TEMPLATE);
        let e = run(&text, &[]);
        assert!(e.generated.is_empty());
        assert_eq!((e.problems[0].file.as_str(), e.problems[0].pos.line), (FILE, 10));
        assert!(e.problems[0].message.contains("`replicas` is not a string"), "{:?}", e.problems);
    }

    #[test]
    fn git_directories_with_exclusions_and_path_parameters() {
        let generators = "  - git:\n      repoURL: git@github.com:acme/deploy.git\n      revision: HEAD\n      directories:\n      - path: 'apps/*'\n      - path: apps/skip\n        exclude: true\n";
        let template = "    metadata:\n      name: '{{path.basename}}'\n      labels:\n        top: '{{path[0]}}'\n        norm: '{{path.basenameNormalized}}'\n    spec:\n      source:\n        path: '{{path}}'\n";
        let files = [
            ("apps/web/kustomization.yaml", ""),
            ("apps/Api_V2/deploy/x.yaml", ""),
            ("apps/skip/x.yaml", ""),
            ("apps/.hidden/x.yaml", ""),
            ("other/y.yaml", ""),
        ];
        let e = run(&appset(generators, template), &files);
        assert!(e.problems.is_empty() && e.skipped.is_empty(), "{e:?}");
        assert_eq!(names(&e), ["Api_V2", "web"]);
        let g = &e.generated[0];
        assert_eq!(get(g, &["spec", "source", "path"]).0, "apps/Api_V2");
        assert_eq!(get(g, &["metadata", "labels", "top"]).0, "apps");
        assert_eq!(get(g, &["metadata", "labels", "norm"]).0, "api-v2");
    }

    #[test]
    fn git_files_give_flattened_keys_and_the_file_as_an_input() {
        let generators = "  - git:\n      repoURL: https://github.com/acme/deploy\n      files:\n      - path: 'clusters/**/config.json'\n";
        let template = "    metadata:\n      name: '{{cluster.name}}-{{path.basename}}'\n      labels:\n        file: '{{path.filename}}'\n        first: '{{path[0]}}'\n        account: '{{aws_account}}'\n        zone: '{{zones.0}}'\n    spec:\n      destination:\n        server: '{{cluster.address}}'\n";
        let config = r#"{"aws_account": 123456, "zones": ["a", "b"], "cluster": {"name": "eng-dev", "address": "https://1.2.3.4"}}"#;
        let list = "- cluster: {name: one, address: https://one}\n  aws_account: '1'\n  zones: [z]\n- cluster: {name: two, address: https://two}\n  aws_account: '2'\n  zones: [z]\n";
        let files = [
            ("clusters/eng/dev/config.json", config),
            ("clusters/eng/multi/config.json", list),
            ("clusters/x.yaml", ""),
        ];
        let e = run(&appset(generators, template), &files);
        assert!(e.problems.is_empty() && e.skipped.is_empty(), "{e:?}");
        assert_eq!(names(&e), ["eng-dev-dev", "one-multi", "two-multi"]);
        let g = &e.generated[0];
        assert_eq!(get(g, &["spec", "destination", "server"]).0, "https://1.2.3.4");
        assert_eq!(get(g, &["metadata", "labels", "account"]).0, "123456");
        assert_eq!(get(g, &["metadata", "labels", "zone"]).0, "a");
        assert_eq!(get(g, &["metadata", "labels", "file"]).0, "config.json");
        assert_eq!(get(g, &["metadata", "labels", "first"]).0, "clusters");
        assert_eq!(g.inputs, BTreeSet::from(["clusters/eng/dev/config.json".to_string()]));
        assert_eq!(e.generated[2].inputs, BTreeSet::from(["clusters/eng/multi/config.json".to_string()]));
    }

    #[test]
    fn a_git_generator_on_another_repository_is_skipped_and_the_others_still_expand() {
        let generators = "  - git:\n      repoURL: https://github.com/acme/other.git\n      directories:\n      - path: '*'\n  - scmProvider:\n      github:\n        organization: acme\n  - list:\n      elements:\n      - name: a\n";
        let e = run(&appset(generators, TEMPLATE), &[("a/b.yaml", "")]);
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        assert_eq!(names(&e), ["a-app"]);
        assert_eq!(e.skipped.len(), 2);
        assert_eq!((e.skipped[0].0.file.as_str(), e.skipped[0].0.pos.line), (FILE, 8));
        assert!(e.skipped[0].1.contains("another repository"), "{:?}", e.skipped);
        assert!(e.skipped[1].1.contains("`scmProvider`"), "{:?}", e.skipped);
    }

    #[test]
    fn a_matrix_of_git_directories_and_a_list_that_uses_their_parameters() {
        let generators = "  - matrix:\n      generators:\n      - git:\n          repoURL: https://github.com/acme/deploy\n          directories:\n          - path: 'apps/*'\n      - list:\n          elements:\n          - env: dev\n            ns: '{{path.basename}}-dev'\n          - env: prod\n            ns: '{{path.basename}}-prod'\n";
        let template = "    metadata:\n      name: '{{path.basename}}-{{env}}'\n    spec:\n      destination:\n        namespace: '{{ns}}'\n";
        let e = run(&appset(generators, template), &[("apps/api/a.yaml", ""), ("apps/web/a.yaml", "")]);
        assert!(e.problems.is_empty() && e.skipped.is_empty(), "{e:?}");
        assert_eq!(names(&e), ["api-dev", "api-prod", "web-dev", "web-prod"]);
        assert_eq!(get(&e.generated[3], &["spec", "destination", "namespace"]).0, "web-prod");
    }

    #[test]
    fn a_matrix_whose_children_disagree_on_a_parameter_is_a_problem() {
        let generators = "  - matrix:\n      generators:\n      - list:\n          elements:\n          - name: a\n      - list:\n          elements:\n          - name: b\n";
        let e = run(&appset(generators, TEMPLATE), &[]);
        assert!(e.generated.is_empty());
        assert!(e.problems[0].message.contains("`name`"), "{:?}", e.problems);
        assert_eq!(e.problems[0].pos.line, 8);
    }

    #[test]
    fn merge_overrides_the_first_generator_s_sets_by_merge_key() {
        let generators = "  - merge:\n      mergeKeys: [name]\n      generators:\n      - list:\n          elements:\n          - {name: a, path: base-a}\n          - {name: b, path: base-b}\n      - list:\n          elements:\n          - {name: b, path: special-b}\n          - {name: c, path: ignored}\n";
        let template = "    metadata:\n      name: '{{name}}'\n    spec:\n      source:\n        path: '{{path}}'\n";
        let e = run(&appset(generators, template), &[]);
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        assert_eq!(names(&e), ["a", "b"]);
        assert_eq!(get(&e.generated[0], &["spec", "source", "path"]).0, "base-a");
        assert_eq!(get(&e.generated[1], &["spec", "source", "path"]).0, "special-b");
    }

    #[test]
    fn merge_keys_must_be_unique() {
        let generators = "  - merge:\n      mergeKeys: [name]\n      generators:\n      - list:\n          elements:\n          - {name: a}\n          - {name: a}\n      - list:\n          elements: []\n";
        let e = run(&appset(generators, TEMPLATE), &[]);
        assert!(e.problems[0].message.contains("not unique"), "{:?}", e.problems);
    }

    #[test]
    fn the_cluster_generator_reads_the_inventory_with_its_selector() {
        let generators = "  - clusters:\n      selector:\n        matchExpressions:\n        - {key: env, operator: In, values: [staging, dev]}\n      values:\n        tier: 'x-{{name}}'\n";
        let template = "    metadata:\n      name: 'app-{{nameNormalized}}'\n      labels:\n        env: '{{metadata.labels.env}}'\n        tier: '{{values.tier}}'\n        type: '{{metadata.labels.argocd.argoproj.io/secret-type}}'\n    spec:\n      destination:\n        server: '{{server}}'\n";
        let e = run(&appset(generators, template), &[]);
        assert!(e.problems.is_empty() && e.skipped.is_empty(), "{e:?}");
        assert_eq!(names(&e), ["app-staging-1"]);
        let g = &e.generated[0];
        assert_eq!(get(g, &["spec", "destination", "server"]).0, "https://staging.example.com");
        assert_eq!(get(g, &["metadata", "labels", "env"]).0, "staging");
        assert_eq!(get(g, &["metadata", "labels", "tier"]).0, "x-Staging_1");
        assert_eq!(get(g, &["metadata", "labels", "type"]).0, "cluster");

        let all = run(&appset("  - clusters: {}\n", TEMPLATE.replace("{{name}}", "{{nameNormalized}}").as_str()), &[]);
        assert_eq!(names(&all), ["prod-eu-app", "staging-1-app"]);
    }

    #[test]
    fn the_cluster_generator_without_an_inventory_is_skipped() {
        let text = appset("  - clusters: {}\n", TEMPLATE);
        let e = expand(&Mem::new(&[(FILE, &text)]), FILE, &text, 0, &Settings::default(), None);
        assert!(e.generated.is_empty() && e.problems.is_empty());
        assert!(e.skipped[0].1.contains("gitops.clusters"), "{:?}", e.skipped);
    }

    #[test]
    fn a_post_selector_filters_parameter_sets() {
        let generators = "  - list:\n      elements:\n      - {name: a, tier: web}\n      - {name: b, tier: db}\n    selector:\n      matchLabels:\n        tier: db\n";
        let e = run(&appset(generators, TEMPLATE), &[]);
        assert_eq!(names(&e), ["b-app"]);
    }

    #[test]
    fn the_application_set_of_a_multi_document_file_keeps_its_lines() {
        let one = appset("  - list:\n      elements:\n      - name: a\n", TEMPLATE);
        let text = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: argocd\n---\n{one}---\napiVersion: v1\nkind: ConfigMap\n"
        );
        let e = expand(&Mem::new(&[(FILE, &text)]), FILE, &text, 1, &settings(), None);
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        let g = &e.generated[0];
        let line = text.lines().position(|l| l.contains("path: 'envs")).expect("line") as u32 + 1;
        assert_eq!(get(g, &["spec", "source", "path"]), ("envs/a".into(), line));
        assert_eq!(g.text.lines().count(), text.lines().count());
        assert!(!g.text.contains("ConfigMap") && !g.text.contains("Namespace"));
    }

    #[test]
    fn duplicate_names_are_a_problem_on_the_name() {
        let e = run(&appset("  - list:\n      elements:\n      - name: a\n      - name: a\n", TEMPLATE), &[]);
        assert!(e.generated.is_empty());
        assert_eq!(e.problems[0].pos.line, 13, "{:?}", e.problems);
        assert!(e.problems[0].message.contains("two Applications named `a-app`"));
    }

    #[test]
    fn zero_parameter_sets_generate_nothing_quietly() {
        let e = run(&appset("  - list:\n      elements: []\n", TEMPLATE), &[]);
        assert!(e.generated.is_empty() && e.problems.is_empty() && e.skipped.is_empty());
    }

    #[test]
    fn what_cannot_be_expanded_offline_is_skipped_with_a_reason() {
        let go = appset("  - list:\n      elements:\n      - name: a\n", TEMPLATE)
            .replace("spec:\n  generators", "spec:\n  goTemplate: true\n  generators");
        let e = run(&go, &[]);
        assert!(e.skipped[0].1.contains("no helm"), "{:?}", e.skipped);
        let patch = format!(
            "{}  templatePatch: |\n    spec: {{}}\n",
            appset("  - list:\n      elements:\n      - name: a\n", TEMPLATE)
        );
        let e = run(&patch, &[]);
        assert!(e.skipped[0].1.contains("templatePatch"), "{:?}", e.skipped);
        let own = appset(
            "  - list:\n      elements:\n      - name: a\n      template:\n        metadata:\n          name: x\n",
            TEMPLATE,
        );
        assert!(run(&own, &[]).skipped[0].1.contains("own `template`"));
    }

    #[test]
    fn a_broken_application_set_is_a_placed_problem() {
        let e = run("kind: ApplicationSet\nspec:\n  generators: [\n", &[]);
        assert_eq!(e.problems.len(), 1);
        assert!(e.problems[0].message.contains("does not parse"));
        let e = run("kind: ApplicationSet\nspec:\n  generators: []\n", &[]);
        assert!(e.problems[0].message.contains("spec.template"), "{:?}", e.problems);
    }

    #[test]
    fn block_scalars_are_rewritten_on_their_first_line() {
        let template = "    metadata:\n      name: '{{name}}'\n    spec:\n      source:\n        helm:\n          values: |\n            env: {{name}}\n            other: x\n      project: default\n";
        let e = run(&appset("  - list:\n      elements:\n      - name: a\n", template), &[]);
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        let g = &e.generated[0];
        assert_eq!(get(g, &["spec", "source", "helm", "values"]).0, "env: a\nother: x\n");
        assert_eq!(get(g, &["spec", "project"]).1, 19);
    }

    #[test]
    fn globs() {
        assert!(path_match("apps/*", "apps/web"));
        assert!(!path_match("apps/*", "apps/web/x"));
        assert!(path_match("d/[fg]", "d/g"));
        assert!(!path_match("d/[^fg]", "d/g"));
        assert!(path_match("*", "top"));
        assert!(pathspec_match("clusters/*.json", "clusters/a/b/c.json"));
        assert!(pathspec_match("clusters/**/config.json", "clusters/a/config.json"));
        assert!(pathspec_match("clusters", "clusters/a.json"));
        assert!(!pathspec_match("clusters", "clusters2/a.json"));
        assert!(!wildmatch("*a*a*a*a*a*a*a*b", &"a".repeat(200)));
        assert!(wildmatch("a?c", "abc"));
        assert!(!wildmatch("[", "["));
    }

    #[test]
    fn normalisation_and_go_number_text() {
        assert_eq!(normalize("Staging_1"), "staging-1");
        assert_eq!(normalize("-.a.b-"), "a.b");
        assert_eq!(normalize("é"), "");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(-1000000.0), "-1e+06");
        assert_eq!(go_float(0.00001), "1e-05");
    }

    #[test]
    fn go_template_words() {
        let text = "{{ .a.include | normalize }} {{ \"normalize\" }} {{ normalize $x.y }}";
        let words: Vec<&str> = action_words(text).into_iter().map(|(s, e)| &text[s..e]).collect();
        assert_eq!(words, ["normalize", "normalize"]);
    }
}
