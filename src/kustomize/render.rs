//! Rendering one root: its inputs copied into a sandbox (links out of the tree refused, sizes bounded), a
//! wrapper Kustomization that turns kustomize's provenance annotations on, `kubectl kustomize` through the
//! one process runner, the result cached by content (failures too), and kustomize's errors placed on the
//! line of the reference they are about.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::kustomization::{Field, GeneratorKind, PatchBody};
use super::output::{self, Strip};
use super::sourcemap::{ObjectSource, UnitSources};
use super::{Kustomize, Overrides, RootDetail, normalize};
use crate::helm::binary::{RunLimits, Sandbox};
use crate::helm::{MAX_CHART_BYTES, MAX_CHART_FILE_BYTES};
use crate::redact::SecretSet;
use crate::render::{Doc, Namespace, Output, Problem, RenderCx, Unit, cache, slots};
use crate::yaml::Pos;

/// Version of what the cache holds for a root: bump when its meaning changes.
const CACHE_FORMAT: &str = "kpath-kustomize-2";
/// Where the root's inputs are written in the sandbox, and the wrapper Kustomization beside them.
const TREE: &str = "tree";
const WRAPPER: &str = "kpath-root";

pub(super) fn render(k: &Kustomize, unit: &Unit, cx: &RenderCx<'_>, overrides: &Overrides) -> Result<Output, Problem> {
    let detail = unit
        .detail
        .downcast_ref::<RootDetail>()
        .ok_or_else(|| Problem::at(&unit.root, 1, "not a unit of the Kustomize renderer"))?;
    if detail.unused_component {
        return Ok(Output::default());
    }
    if let Some(problem) = detail.problems.first() {
        return Err(problem.clone());
    }
    let at_root = |message: String| Problem::at(&detail.kustomization, 1, message);
    // The cache is keyed by the binary's identity: a warm render starts no process (not even `kubectl version`).
    let kubectl_path = super::binary::locate(k.explicit.as_deref()).map_err(|e| at_root(e.to_string()))?;
    let kubectl_identity = crate::helm::binary::identity(&kubectl_path)
        .map_err(|e| at_root(format!("`{}` is not a usable kubectl: {e}", kubectl_path.display())))?;
    let helm = match detail.uses_helm {
        true => Some(
            k.checked_helm(cx.config)
                .map_err(|e| at_root(format!("this root inflates Helm charts (`helmCharts:`), but {e}")))?,
        ),
        false => None,
    };
    let files = read_inputs(cx.dir, unit, detail)?;
    let (major, minor) = cx.config.kubernetes_version;
    let kube_version = crate::cmdline::kubernetes_version(&format!("{major}.{minor}"))
        .map_err(|e| at_root(format!("not rendered: {e}")))?;
    let mut wrapper = wrapper_text(unit, detail, overrides);
    // A generated Kustomization is part of what is rendered: in the cache key through the wrapper's text.
    if !detail.generated.is_empty() {
        wrapper.push_str(&format!("# generated:\n# {}\n", generated_kustomization(unit, detail).replace('\n', "\n# ")));
    }
    let mut key = cache::Key::new(super::NAME);
    key.field(CACHE_FORMAT.as_bytes())
        .field(wrapper.as_bytes())
        .field(kubectl_identity.as_bytes())
        .field(helm.as_ref().map_or("", |h| h.identity.as_str()).as_bytes())
        .field(format!("{}.{}", kube_version.0, kube_version.1).as_bytes())
        .field(unit.root.as_bytes());
    for (path, bytes) in &files {
        key.field(path.as_bytes()).field(bytes);
    }
    let key = key.finish();
    let cache_dir = cx.config.helm.cache_dir.as_deref();
    let stdout = match cache::get(super::NAME, &key, cache_dir).and_then(|entry| decode(&entry)) {
        Some(result) => result?,
        None => {
            let kubectl = k.checked_kubectl().map_err(at_root)?;
            let result = run(kubectl, helm.as_ref(), kube_version, unit, detail, &wrapper, &files, cx)?;
            cache::put(super::NAME, &key, &encode(&result), cache_dir);
            result?
        }
    };
    let stdout = match &overrides.post_build {
        Some(post_build) => post_build(&stdout).map_err(at_root)?,
        None => stdout,
    };
    let mut output = build_output(&stdout, unit, detail, files);
    if let Some(namespace) = &overrides.namespace {
        output.namespace = Namespace::Known(namespace.clone());
    }
    Ok(output)
}

/// A finished render, for the cache: `ok` and the output, or `err` and the problem.
fn encode(result: &Result<String, Problem>) -> String {
    match result {
        Ok(stdout) => format!("ok\n{stdout}"),
        Err(p) => format!("err\n{}\n{}\n{}\n{}", p.file, p.pos.line, p.pos.col, p.message),
    }
}

fn decode(entry: &str) -> Option<Result<String, Problem>> {
    if let Some(stdout) = entry.strip_prefix("ok\n") {
        return Some(Ok(stdout.to_string()));
    }
    let mut parts = entry.strip_prefix("err\n")?.splitn(4, '\n');
    let file = parts.next()?.to_string();
    let line = parts.next()?.parse().ok()?;
    let col = parts.next()?.parse().ok()?;
    let message = parts.next()?.to_string();
    Some(Err(Problem { file, pos: Pos { line, col }, message }))
}

/// The line that names `path` (relative to the tree) in one of the root's Kustomizations.
fn reference_to(detail: &RootDetail, path: &str) -> Option<(String, Pos)> {
    detail.closure.iter().find_map(|k| {
        k.references.iter().find_map(|r| {
            let target = normalize(&k.dir, &r.path)?;
            let dir_input = path.strip_prefix(&target).is_some_and(|rest| rest.starts_with('/'));
            (target == path || dir_input).then(|| (k.file.clone(), r.pos))
        })
    })
}

/// Reads every input of the root from disk: each file at most [`MAX_CHART_FILE_BYTES`], all together at
/// most [`MAX_CHART_BYTES`], sizes checked before reading; a link that resolves out of the tree is refused.
/// Inputs that do not exist are left out (kustomize then names them, and the error is placed).
fn read_inputs(dir: &Path, unit: &Unit, detail: &RootDetail) -> Result<Vec<(String, Vec<u8>)>, Problem> {
    let root = std::fs::canonicalize(dir)
        .map_err(|e| Problem::at(&detail.kustomization, 1, format!("cannot read the repository: {e}")))?;
    let mut paths: Vec<String> = Vec::new();
    for input in &unit.inputs {
        match input.strip_suffix('/') {
            Some(sub) => {
                let base = root.join(sub);
                let mut walker = walkdir::WalkDir::new(&base).follow_links(false).sort_by_file_name().into_iter();
                while let Some(Ok(entry)) = walker.next() {
                    if entry.file_type().is_dir() && entry.file_name() == ".git" {
                        walker.skip_current_dir();
                        continue;
                    }
                    if entry.file_type().is_dir() {
                        continue;
                    }
                    let rel =
                        entry.path().strip_prefix(&base).unwrap_or(entry.path()).to_string_lossy().replace('\\', "/");
                    paths.push(format!("{sub}/{rel}"));
                }
            }
            None => paths.push(input.clone()),
        }
    }
    let mut files = Vec::with_capacity(paths.len());
    let mut total: u64 = 0;
    for path in paths {
        let on_disk = root.join(&path);
        let Ok(meta) = std::fs::symlink_metadata(&on_disk) else { continue };
        let problem = |message: String| {
            let (file, pos) = reference_to(detail, &path).unwrap_or((path.clone(), Pos { line: 1, col: 1 }));
            Problem { file, pos, message }
        };
        let real = if meta.file_type().is_symlink() {
            match std::fs::canonicalize(&on_disk) {
                Ok(target) if target.starts_with(&root) && target.is_file() => target,
                _ => {
                    return Err(problem(format!(
                        "`{path}` is a link out of the repository (or to a directory, or broken); kpath does not \
                         follow it, so this root was not rendered"
                    )));
                }
            }
        } else if meta.is_file() {
            on_disk
        } else {
            continue;
        };
        let size = std::fs::metadata(&real).map_err(|e| problem(format!("cannot read `{path}`: {e}")))?.len();
        total = total.saturating_add(size);
        if size > MAX_CHART_FILE_BYTES {
            return Err(problem(format!(
                "`{path}` is {} MiB, over kpath's {} MiB limit for one file; this root was not rendered",
                size >> 20,
                MAX_CHART_FILE_BYTES >> 20
            )));
        }
        if total > MAX_CHART_BYTES {
            return Err(problem(format!(
                "the files of this root pass kpath's {} MiB limit at `{path}`; it was not rendered",
                MAX_CHART_BYTES >> 20
            )));
        }
        let bytes = crate::loader::read_bounded(&real, MAX_CHART_FILE_BYTES)
            .map_err(|e| problem(format!("cannot read `{path}`: {e}")))?;
        files.push((path, bytes));
    }
    Ok(files)
}

/// Runs `kubectl kustomize` on the copied root. `Err` is a problem that must not be cached (a limit or a
/// failure to start); `Ok(Err)` is kustomize's own error, placed.
#[allow(clippy::too_many_arguments)] // One call site; the pieces are the render's own.
fn run(
    kubectl: &super::binary::Kubectl,
    helm: Option<&crate::helm::Helm>,
    kube_version: (u32, u32),
    unit: &Unit,
    detail: &RootDetail,
    wrapper_yaml: &str,
    files: &[(String, Vec<u8>)],
    cx: &RenderCx<'_>,
) -> Result<Result<String, Problem>, Problem> {
    let settings = &cx.config.helm;
    let at_root = |message: String| Problem::at(&detail.kustomization, 1, message);
    let _slot =
        slots::Slot::acquire(slots::limit(settings.memory_total, settings.memory_per_render, settings.concurrency));
    let sandbox = Sandbox::new().map_err(|e| at_root(format!("cannot create a temporary directory: {e}")))?;
    let copy = |e: std::io::Error| at_root(format!("cannot copy the root for rendering: {e}"));
    let tree = sandbox.path().join(TREE);
    for (path, bytes) in files {
        let to = tree.join(path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(copy)?;
        }
        std::fs::write(to, bytes).map_err(copy)?;
    }
    std::fs::create_dir_all(tree.join(&unit.root)).map_err(copy)?;
    if !detail.generated.is_empty() {
        std::fs::write(tree.join(&unit.root).join("kustomization.yaml"), generated_kustomization(unit, detail))
            .map_err(copy)?;
    }
    let wrapper = sandbox.path().join(WRAPPER);
    std::fs::create_dir_all(&wrapper).map_err(copy)?;
    std::fs::write(wrapper.join("kustomization.yaml"), wrapper_yaml).map_err(copy)?;
    let args = arguments(helm, kube_version, &wrapper);
    let limits =
        RunLimits { timeout: settings.timeout, max_output: settings.max_output, memory: settings.memory_per_render };
    let out = crate::helm::binary::run(&kubectl.path, &args, &sandbox, &limits)
        .map_err(|e| at_root(format!("`kubectl kustomize` {e}")))?;
    if !out.success {
        return Ok(Err(place_error(&out.stderr, sandbox.path(), detail, files)));
    }
    Ok(Ok(String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The wrapper Kustomization: the root as its only resource (or component), with origin annotations. The
/// user's files stay byte for byte as written.
///
/// Only `originAnnotations`: kustomize 5.8's `transformerAnnotations` list every transformer of every
/// Kustomization on every object, whether it changed the object or not (measured: an overlay whose plain
/// output is 810 bytes prints 5,710 with them, 1,370 with origins only), so they place nothing and would
/// bring large roots to the output cap sooner.
/// The Kustomization a controller generates for a directory without one (Flux does): every manifest under
/// it, by its path relative to the directory (kustomize reads resources only inside a Kustomization's
/// directory).
fn generated_kustomization(unit: &Unit, detail: &RootDetail) -> String {
    let quoted = |text: &str| serde_json::Value::String(text.to_string()).to_string();
    let mut out = "resources:\n".to_string();
    for file in &detail.generated {
        let rel = if unit.root.is_empty() {
            file.as_str()
        } else {
            file.strip_prefix(&format!("{}/", unit.root)).unwrap_or(file)
        };
        out.push_str(&format!("- {}\n", quoted(rel)));
    }
    out
}

fn wrapper_text(unit: &Unit, detail: &RootDetail, overrides: &Overrides) -> String {
    // A JSON string is a YAML string: whatever a path or a value is, it stays one value.
    let quoted = |text: &str| serde_json::Value::String(text.to_string()).to_string();
    let target = if unit.root.is_empty() { format!("../{TREE}") } else { format!("../{TREE}/{}", unit.root) };
    let field = if detail.closure.first().is_some_and(|k| k.component) { "components" } else { "resources" };
    let mut out = format!("{field}:\n- {}\n", quoted(&target));
    out.push_str("buildMetadata: [originAnnotations]\n");
    if let Some(prefix) = &overrides.name_prefix {
        out.push_str(&format!("namePrefix: {}\n", quoted(prefix)));
    }
    if let Some(suffix) = &overrides.name_suffix {
        out.push_str(&format!("nameSuffix: {}\n", quoted(suffix)));
    }
    if let Some(namespace) = &overrides.namespace {
        out.push_str(&format!("namespace: {}\n", quoted(namespace)));
    }
    // Entries are YAML mappings written by the controller's object, indented under their list item.
    out.push_str(&wrapper_lists(overrides));
    out
}

/// `kubectl kustomize` arguments: each option as one `--flag=value`, the directory (kpath's own sandbox
/// path, never a repository value) after `--`.
fn arguments(helm: Option<&crate::helm::Helm>, kube_version: (u32, u32), wrapper: &Path) -> Vec<String> {
    use crate::cmdline::flag;
    let mut args = vec!["kustomize".to_string()];
    if let Some(helm) = helm {
        args.push("--enable-helm".into());
        args.push(flag("helm-command", &helm.path.to_string_lossy()));
        args.push(flag("helm-kube-version", &format!("{}.{}.0", kube_version.0, kube_version.1)));
    }
    args.push("--".into());
    args.push(wrapper.to_string_lossy().into_owned());
    args
}

/// kustomize's error, without sandbox paths, placed on the reference it is about.
fn place_error(stderr: &str, sandbox: &Path, detail: &RootDetail, files: &[(String, Vec<u8>)]) -> Problem {
    let message = clean_message(stderr, sandbox);
    let (file, pos) = locate_error(&message, detail, files)
        .unwrap_or_else(|| (detail.kustomization.clone(), Pos { line: 1, col: 1 }));
    Problem { file, pos, message: format!("`kubectl kustomize` failed: {message}") }
}

fn clean_message(stderr: &str, sandbox: &Path) -> String {
    let sandbox = sandbox.to_string_lossy();
    // kustomize's errors can span lines (a patch's configuration is quoted whole): the message is everything
    // from the first `error:` on, on one line.
    let start = stderr.find("error:").or_else(|| stderr.find("Error:")).unwrap_or(0);
    let joined: Vec<&str> = stderr[start..].lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let joined = joined.join(" ");
    let line = if joined.is_empty() { "kustomize failed without a message" } else { joined.as_str() };
    let line = line.trim_start_matches("error:").trim_start_matches("Error:").trim();
    let mut text = line
        .replace(&format!("{sandbox}/{TREE}/"), "")
        .replace(&format!("{sandbox}/{TREE}"), ".")
        .replace(&format!("{sandbox}/{WRAPPER}"), "(the root)")
        .replace(sandbox.as_ref(), "(sandbox)")
        .replace(&format!("../{TREE}/"), "");
    if text.len() > 2000 {
        let mut cut = 2000;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// The Kustomization line an error is about: the reference kustomize was reading (the innermost one named),
/// the patch it could not apply, or the field it did not know.
fn locate_error(message: &str, detail: &RootDetail, files: &[(String, Vec<u8>)]) -> Option<(String, Pos)> {
    let quoted_after = |text: &str, marker: &str, close: char| -> Vec<(usize, String)> {
        text.match_indices(marker)
            .filter_map(|(i, m)| {
                let rest = &text[i + m.len()..];
                rest.find(close).map(|end| (i, rest[..end].to_string()))
            })
            .collect()
    };
    // `accumulating resources from 'missing.yaml'`, inside `recursed accumulation of path 'overlays/prod'`.
    if let Some((at, reference)) = quoted_after(message, "accumulating resources from '", '\'').pop() {
        let dir = quoted_after(&message[..at], "recursed accumulation of path '", '\'').pop().map(|(_, d)| d);
        let dir = dir.map(|d| if d == "." { String::new() } else { d });
        let found = detail
            .closure
            .iter()
            .filter(|k| dir.as_ref().is_none_or(|d| *d == k.dir))
            .chain(detail.closure.iter())
            .find_map(|k| k.references.iter().find(|r| r.path == reference).map(|r| (k.file.clone(), r.pos)));
        if found.is_some() {
            return found;
        }
    }
    // `failed to get the patch file from path(nope.yaml)`.
    for (_, path) in quoted_after(message, "path(", ')') {
        let found = detail.closure.iter().find_map(|k| {
            k.references
                .iter()
                .find(|r| {
                    matches!(r.field, Field::Patch | Field::PatchStrategicMerge | Field::PatchJson6902)
                        && r.path == path
                })
                .map(|r| (k.file.clone(), r.pos))
        });
        if found.is_some() {
            return found;
        }
    }
    // `no resource matches strategic merge patch "Deployment.v1.apps/nothere.[noNs]"`.
    if let Some((_, id)) = quoted_after(message, "strategic merge patch \"", '"').pop() {
        let kind = id.split('.').next().unwrap_or_default();
        let name = id.split_once('/').map_or("", |(_, r)| r.split(".[").next().unwrap_or(r));
        let texts: HashMap<&str, String> =
            files.iter().map(|(p, b)| (p.as_str(), String::from_utf8_lossy(b).into_owned())).collect();
        for k in &detail.closure {
            for patch in &k.patches {
                let text = match &patch.body {
                    PatchBody::File(path) => normalize(&k.dir, path).and_then(|p| texts.get(p.as_str()).cloned()),
                    PatchBody::Inline { text, .. } => Some(text.clone()),
                };
                let names_it = text.is_some_and(|t| {
                    crate::yaml::parse_stream(&t).0.iter().filter_map(|d| d.root.as_ref()).any(|root| {
                        root.get("kind").and_then(crate::yaml::Node::as_text) == Some(kind)
                            && root.get_path(&["metadata", "name"]).and_then(crate::yaml::Node::as_text) == Some(name)
                    })
                });
                if names_it {
                    return Some((k.file.clone(), patch.pos));
                }
            }
        }
    }
    // `json: unknown field "resourcez"`.
    if let Some((_, field)) = quoted_after(message, "unknown field \"", '"').pop() {
        let found = detail
            .closure
            .iter()
            .find_map(|k| k.keys.iter().find(|(key, _)| *key == field).map(|(_, pos)| (k.file.clone(), *pos)));
        if found.is_some() {
            return found;
        }
    }
    // Any other quoted path that a Kustomization names, the innermost (last) first.
    let mut quoted = quoted_after(message, "'", '\'');
    quoted.extend(quoted_after(message, "\"", '"'));
    quoted.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
    quoted.iter().find_map(|(_, text)| {
        detail
            .closure
            .iter()
            .find_map(|k| k.references.iter().find(|r| r.path == *text).map(|r| (k.file.clone(), r.pos)))
    })
}

/// The documents, namespace, secrets and comment sources of a successful render.
fn build_output(stdout: &str, unit: &Unit, detail: &RootDetail, files: Vec<(String, Vec<u8>)>) -> Output {
    let asked = |what: &str| detail.closure.iter().any(|k| k.build_metadata.iter().any(|b| b == what));
    let strip = Strip { origin: !asked("originAnnotations"), transformations: !asked("transformerAnnotations") };
    let to_tree = |path: &str| -> Option<String> {
        let joined = normalize(WRAPPER, path)?;
        if joined == TREE {
            return Some(String::new());
        }
        joined.strip_prefix(&format!("{TREE}/")).map(str::to_string)
    };
    let objects = output::objects(stdout, strip, &to_tree, &unit.root);
    let texts: HashMap<String, Arc<str>> = files
        .into_iter()
        .filter_map(|(path, bytes)| Some((path, Arc::from(String::from_utf8(bytes).ok()?.as_str()))))
        .collect();
    let mut output = Output {
        namespace: match detail.closure.first().and_then(|k| k.namespace.as_ref()) {
            Some((ns, _)) => Namespace::Known(ns.clone()),
            None => Namespace::Unknown,
        },
        secrets: generator_secrets(detail, &texts),
        ..Output::default()
    };
    let mut comments: Vec<(String, Arc<str>)> = texts.iter().map(|(p, t)| (p.clone(), Arc::clone(t))).collect();
    comments.sort_by(|a, b| a.0.cmp(&b.0));
    output.comments = comments;
    let shared = Arc::new(UnitSources::new(detail.closure.clone(), texts));
    let root = if unit.root.is_empty() { "." } else { unit.root.as_str() };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for object in objects {
        let name = format!("kustomize://{root}/{}", output::file_name(&object));
        let index = seen.entry(name.clone()).or_insert(0);
        let text = object.text.clone();
        output.docs.push(Doc {
            name,
            index: *index,
            text,
            generated: Vec::new(),
            source: Arc::new(ObjectSource::new(Arc::clone(&shared), object)),
        });
        *index += 1;
    }
    output
}

/// Generator values that are secrets: every value of a `secretGenerator` (as written and base64-encoded, as
/// the rendered Secret holds it), and `configMapGenerator` values that look like credentials or sit under
/// a sensitive key.
fn generator_secrets(detail: &RootDetail, texts: &HashMap<String, Arc<str>>) -> SecretSet {
    let mut secrets = SecretSet::new();
    for k in &detail.closure {
        for generator in &k.generators {
            let mut pairs: Vec<(String, String)> =
                generator.literals.iter().map(|l| (l.key.clone(), l.value.clone())).collect();
            for (path, _) in &generator.envs {
                if let Some(text) = normalize(&k.dir, path).and_then(|p| texts.get(&p)) {
                    pairs.extend(super::kustomization::env_lines(text).into_iter().map(|(key, value, _)| (key, value)));
                }
            }
            match generator.kind {
                GeneratorKind::Secret => {
                    for (_, value) in &pairs {
                        secrets.insert_with_base64(value);
                    }
                    for file in &generator.files {
                        if let Some(text) = normalize(&k.dir, &file.path).and_then(|p| texts.get(&p)) {
                            secrets.insert_with_base64(text);
                        }
                    }
                }
                GeneratorKind::ConfigMap => {
                    for (key, value) in &pairs {
                        if crate::secrets::is_sensitive_assignment(key, value) {
                            secrets.insert(value);
                        }
                        for credential in crate::secrets::credential_values(value) {
                            secrets.insert(credential);
                        }
                    }
                }
            }
        }
    }
    secrets
}

/// Applies Kustomize patches to documents another tool rendered (Flux's `postRenderers`), with the real
/// kustomize: each document comes back patched, matched to its input by kind, namespace and name (kustomize
/// neither adds nor renames objects for a patch). A document a patch deletes (`$patch: delete`) comes back
/// `None`. `Err` is why kustomize refused.
pub(super) fn patch_documents(
    k: &Kustomize,
    docs: &[String],
    patches: &[String],
    cx: &RenderCx<'_>,
) -> Result<Vec<Option<String>>, String> {
    let kubectl = k.checked_kubectl()?;
    let settings = &cx.config.helm;
    let _slot =
        slots::Slot::acquire(slots::limit(settings.memory_total, settings.memory_per_render, settings.concurrency));
    let sandbox = Sandbox::new().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let dir = sandbox.path().join(WRAPPER);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot write the rendered objects: {e}"))?;
    let mut stream = String::new();
    for doc in docs {
        stream.push_str("---\n");
        stream.push_str(doc);
        if !doc.ends_with('\n') {
            stream.push('\n');
        }
    }
    std::fs::write(dir.join("rendered.yaml"), stream).map_err(|e| format!("cannot write the rendered objects: {e}"))?;
    let wrapper = Overrides { patches: patches.to_vec(), ..Overrides::default() };
    let mut kustomization = "resources:\n- rendered.yaml\n".to_string();
    let listed = wrapper_lists(&wrapper);
    kustomization.push_str(&listed);
    std::fs::write(dir.join("kustomization.yaml"), kustomization)
        .map_err(|e| format!("cannot write the rendered objects: {e}"))?;
    let limits =
        RunLimits { timeout: settings.timeout, max_output: settings.max_output, memory: settings.memory_per_render };
    let args = arguments(None, cx.config.kubernetes_version, &dir);
    let out = crate::helm::binary::run(&kubectl.path, &args, &sandbox, &limits)
        .map_err(|e| format!("`kubectl kustomize` {e}"))?;
    if !out.success {
        return Err(format!("the post-renderer patches do not apply: {}", clean_message(&out.stderr, sandbox.path())));
    }
    let patched = String::from_utf8_lossy(&out.stdout).into_owned();
    let identity = |text: &str| -> Option<(String, String, String)> {
        let root = crate::yaml::parse_single(text).ok().flatten()?;
        let field = |path: &[&str]| root.get_path(path).and_then(crate::yaml::Node::as_text).unwrap_or("").to_string();
        Some((field(&["kind"]), field(&["metadata", "namespace"]), field(&["metadata", "name"])))
    };
    let mut by_identity: HashMap<(String, String, String), String> = HashMap::new();
    for chunk in crate::yaml::chunks(&patched) {
        let text = chunk.text().trim_start_matches("---\n").to_string();
        if let Some(id) = identity(&text) {
            by_identity.insert(id, text);
        }
    }
    Ok(docs.iter().map(|doc| identity(doc).and_then(|id| by_identity.remove(&id))).collect())
}

/// `images:` and `patches:` of a set of overrides, as Kustomization lines.
fn wrapper_lists(overrides: &Overrides) -> String {
    let mut out = String::new();
    let list = |out: &mut String, field: &str, entries: &[String]| {
        if entries.is_empty() {
            return;
        }
        out.push_str(&format!("{field}:\n"));
        for entry in entries {
            for (i, line) in entry.lines().enumerate() {
                out.push_str(if i == 0 { "- " } else { "  " });
                out.push_str(line);
                out.push('\n');
            }
        }
    };
    list(&mut out, "images", &overrides.images);
    list(&mut out, "patches", &overrides.patches);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_entries_round_trip() {
        let ok: Result<String, Problem> = Ok("apiVersion: v1\n".into());
        assert_eq!(decode(&encode(&ok)), Some(ok));
        let err: Result<String, Problem> =
            Err(Problem { file: "k/kustomization.yaml".into(), pos: Pos { line: 4, col: 3 }, message: "a\nb".into() });
        assert_eq!(decode(&encode(&err)), Some(err));
        assert_eq!(decode("junk"), None);
    }

    #[test]
    fn sandbox_paths_never_reach_a_message() {
        let sandbox = Path::new("/tmp/kpath-helm-1-x");
        let stderr = "error: accumulating resources: accumulation err='accumulating resources from '../tree/broken': \
                      '/tmp/kpath-helm-1-x/tree/broken' must resolve to a file': recursed accumulation of path \
                      '/tmp/kpath-helm-1-x/tree/broken': lstat /tmp/kpath-helm-1-x/tree/broken/missing.yaml\n";
        let message = clean_message(stderr, sandbox);
        assert!(!message.contains("/tmp/kpath-helm"), "{message}");
        assert!(message.contains("'broken/missing.yaml") || message.contains("broken/missing.yaml"), "{message}");
    }

    #[test]
    fn arguments_are_single_flags_and_the_directory_follows_a_double_dash() {
        let helm = crate::helm::Helm { path: "/opt/helm".into(), identity: "v3.17.3".into() };
        let args = arguments(Some(&helm), (1, 30), Path::new("/tmp/s/kpath-root"));
        assert_eq!(
            args,
            vec![
                "kustomize",
                "--enable-helm",
                "--helm-command=/opt/helm",
                "--helm-kube-version=1.30.0",
                "--",
                "/tmp/s/kpath-root"
            ]
        );
        assert_eq!(arguments(None, (1, 30), Path::new("/w")), vec!["kustomize", "--", "/w"]);
    }
}
