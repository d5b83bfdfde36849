//! Flux objects read as declared deployments: each Flux `Kustomization` (kustomize.toolkit.fluxcd.io)
//! whose source is this repository becomes a Kustomize source with the overrides it adds, and each
//! `HelmRelease` (helm.toolkit.fluxcd.io) a chart released with its values, read from the sources
//! (`GitRepository`, `HelmRepository`, `OCIRepository`, `HelmChart`) and the ConfigMaps/Secrets the
//! tree holds. Also Flux's post-build variable substitution ([`substitute`]).
//!
//! Read from Flux's documentation, not from running it:
//! - Kustomization: <https://fluxcd.io/flux/components/kustomize/kustomizations/>
//! - HelmRelease: <https://fluxcd.io/flux/components/helm/helmreleases/>
//! - Sources: <https://fluxcd.io/flux/components/source/gitrepositories/>,
//!   <https://fluxcd.io/flux/components/source/helmrepositories/>,
//!   <https://fluxcd.io/flux/components/source/ocirepositories/>,
//!   <https://fluxcd.io/flux/components/source/helmcharts/>
//! - Variable substitution: <https://fluxcd.io/flux/components/kustomize/kustomizations/#post-build-variable-substitution>
//!   and the expression table of <https://github.com/fluxcd/pkg/blob/main/envsubst/README.md>.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::gitops::{
    At, Chart, Controller, Declared, HelmSource, KustomizeSource, Patch, RemoteChart, SetValue, Settings, Source,
    Values,
};
use crate::render::{Problem, Tree, resolve};
use crate::yaml::{Node, NodeKind, Pos, Style, Value};

/// Largest manifest read (a Flux object, a ConfigMap): bigger files are not Flux configuration.
const MAX_MANIFEST: u64 = 2 << 20;
/// Largest values or variables file read.
const MAX_VALUES: u64 = 8 << 20;
/// Helm's limit on release names; Flux shortens longer default names (see [`release_name`]).
const MAX_RELEASE_NAME: usize = 53;

/// Every deployment the Flux objects of a tree declare, and problems found reading them.
pub fn declared(tree: &dyn Tree, settings: &Settings) -> (Vec<Declared>, Vec<Problem>) {
    let mut reader = Reader::new(tree, settings);
    reader.scan();
    let mut out = Vec::new();
    let kustomizations: Vec<usize> =
        reader.objs.iter().enumerate().filter(|(_, o)| o.is(KUSTOMIZE, "Kustomization")).map(|(i, _)| i).collect();
    for i in kustomizations {
        if let Some(d) = reader.kustomization(i) {
            out.push(d);
        }
    }
    let releases: Vec<usize> =
        reader.objs.iter().enumerate().filter(|(_, o)| o.is(HELM, "HelmRelease")).map(|(i, _)| i).collect();
    for i in releases {
        if let Some(d) = reader.helm_release(i) {
            out.push(d);
        }
    }
    (out, reader.problems)
}

const KUSTOMIZE: &str = "kustomize.toolkit.fluxcd.io/";
const HELM: &str = "helm.toolkit.fluxcd.io/";
const SOURCE: &str = "source.toolkit.fluxcd.io/";

/// One Flux object of the tree.
struct Obj {
    file: String,
    api: String,
    kind: String,
    name: String,
    namespace: Option<String>,
    root: Node,
    /// Its `kind:` line.
    at: At,
}

impl Obj {
    fn is(&self, group: &str, kind: &str) -> bool {
        self.api.starts_with(group) && self.kind == kind
    }

    fn spec(&self) -> Option<&Node> {
        self.root.get("spec")
    }
}

/// A ConfigMap or Secret of the tree (a manifest, or made by a kustomize generator), for `valuesFrom`
/// and `substituteFrom`.
struct DataObj {
    /// The declaring file (the manifest, or the kustomization that generates it).
    file: String,
    kind: String,
    name: String,
    namespace: Option<String>,
    entries: Vec<DataEntry>,
    /// Files read to know its data.
    inputs: BTreeSet<String>,
    /// A SOPS-encrypted manifest (a top-level `sops:` key): its values are not readable.
    encrypted: bool,
}

struct DataEntry {
    key: String,
    value: String,
    /// The value as values YAML aligned to the lines of `file` (its own file, or a block scalar of the
    /// manifest with the rest blanked), when that reads the same as `value`.
    aligned: Option<(String, String)>,
    at: At,
}

/// Why a source cannot be rendered offline.
type Skip = String;

struct Reader<'t> {
    tree: &'t dyn Tree,
    settings: &'t Settings,
    objs: Vec<Obj>,
    problems: Vec<Problem>,
    texts: HashMap<String, Option<String>>,
    data: Option<Vec<DataObj>>,
    /// Tree directories (with `/`) a Flux Kustomization of this repository applies, with its target
    /// namespace: where an object without a namespace lands.
    applied: Vec<(String, String)>,
    /// The file of the object being read: references resolve to the nearest object.
    current: String,
}

impl<'t> Reader<'t> {
    fn new(tree: &'t dyn Tree, settings: &'t Settings) -> Reader<'t> {
        Reader {
            tree,
            settings,
            objs: Vec::new(),
            problems: Vec::new(),
            texts: HashMap::new(),
            data: None,
            applied: Vec::new(),
            current: String::new(),
        }
    }

    fn read(&mut self, path: &str, cap: u64) -> Option<String> {
        if let Some(t) = self.texts.get(path) {
            return t.clone();
        }
        let t = self.tree.read(path, cap);
        self.texts.insert(path.to_string(), t.clone());
        t
    }

    /// Collects the Flux objects of every YAML file that mentions `fluxcd.io`, except files a kustomization
    /// uses as patches (a partial HelmRelease that overlays a base one is not an object of its own).
    fn scan(&mut self) {
        let patches = self.patch_files();
        let files: Vec<String> =
            self.tree.files().iter().filter(|f| is_yaml(f) && !patches.contains(f.as_str())).cloned().collect();
        for file in files {
            let Some(text) = self.tree.read_mentioning(&file, MAX_MANIFEST, "fluxcd.io") else { continue };
            self.texts.insert(file.clone(), Some(text.clone()));
            let (docs, _broken) = crate::yaml::parse_stream(&text);
            for doc in docs {
                let Some(root) = doc.root else { continue };
                let Some(api) = root.get("apiVersion").and_then(Node::as_text) else { continue };
                if !api.contains(".fluxcd.io/") {
                    continue;
                }
                let api = api.to_string();
                let Some(kind) = root.get("kind").and_then(Node::as_text).map(str::to_string) else { continue };
                let at = root
                    .entry("kind")
                    .map(|e| At::new(&file, e.key.pos.line, e.key.pos.col))
                    .unwrap_or_else(|| At::new(&file, doc.start_line, 1));
                let name = root.get_path(&["metadata", "name"]).and_then(Node::as_text).map(str::to_string);
                let Some(name) = name.filter(|n| !n.is_empty()) else {
                    if matches!(kind.as_str(), "Kustomization" | "HelmRelease") {
                        self.problems.push(problem(&at, format!("this Flux {kind} has no metadata.name")));
                    }
                    continue;
                };
                let namespace = root
                    .get_path(&["metadata", "namespace"])
                    .and_then(Node::as_text)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string);
                self.objs.push(Obj { file: file.clone(), api, kind, name, namespace, root, at });
            }
        }
        // Where each Kustomization of this repository applies, for objects that name no namespace.
        let mut applied = Vec::new();
        for o in self.objs.iter().filter(|o| o.is(KUSTOMIZE, "Kustomization")) {
            let Some(spec) = o.spec() else { continue };
            let Some(ns) = spec.get("targetNamespace").and_then(Node::as_text) else { continue };
            let path = spec.get("path").and_then(Node::as_text).unwrap_or("");
            let Some(path) = resolve("", path) else { continue };
            let Ok(dir) = repo_to_tree(self.tree.prefix(), &path) else { continue };
            applied.push((if dir.is_empty() { String::new() } else { format!("{dir}/") }, ns.to_string()));
        }
        self.applied = applied;
    }

    /// Files the kustomizations of the tree apply as patches (`patches[].path`, `patchesStrategicMerge`,
    /// `patchesJson6902[].path`).
    fn patch_files(&mut self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let files: Vec<String> = self.tree.files().iter().filter(|f| is_kustomization(f)).cloned().collect();
        for file in files {
            let Some(text) = self.read(&file, MAX_MANIFEST) else { continue };
            if !text.contains("atches") {
                continue;
            }
            let Ok(Some(root)) = crate::yaml::parse_single(&text) else { continue };
            let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
            let items = |key: &str| root.get(key).map(Node::items).unwrap_or(&[]).to_vec();
            let mut paths: Vec<String> = Vec::new();
            for key in ["patches", "patchesJson6902"] {
                paths.extend(
                    items(key).iter().filter_map(|p| p.get("path").and_then(Node::as_text)).map(str::to_string),
                );
            }
            // A strategic-merge entry is a path or an inline patch (which has several lines).
            paths.extend(
                items("patchesStrategicMerge")
                    .iter()
                    .filter_map(Node::as_text)
                    .filter(|t| !t.contains('\n'))
                    .map(str::to_string),
            );
            out.extend(paths.iter().filter_map(|p| resolve(dir, p)));
        }
        out
    }

    /// The namespace an object lands in: its own, else the target namespace of the Flux Kustomization
    /// that applies its file, else `default` (where Kubernetes puts a namespaced object that names none).
    fn namespace_of(&self, o: &Obj) -> String {
        if let Some(ns) = &o.namespace {
            return ns.clone();
        }
        self.applied
            .iter()
            .filter(|(dir, _)| o.file.starts_with(dir.as_str()))
            .max_by_key(|(dir, _)| dir.len())
            .map(|(_, ns)| ns.clone())
            .unwrap_or_else(|| "default".to_string())
    }

    /// A source object by kind and name, in `namespace` (or naming no namespace).
    /// When several match (one repository, several clusters: `clusters/prod/…`, `clusters/staging/…`),
    /// the one nearest to the object being read.
    fn find(&self, group: &str, kind: &str, name: &str, namespace: &str) -> Option<&Obj> {
        let candidates = || self.objs.iter().filter(|o| o.is(group, kind) && o.name == name);
        candidates()
            .filter(|o| o.namespace.as_deref() == Some(namespace))
            .max_by_key(|o| std::cmp::Reverse(distance(&self.current, &o.file)))
            .or_else(|| {
                candidates()
                    .filter(|o| o.namespace.is_none())
                    .max_by_key(|o| std::cmp::Reverse(distance(&self.current, &o.file)))
            })
    }

    // ----- Kustomization -----

    fn kustomization(&mut self, i: usize) -> Option<Declared> {
        self.current = self.objs[i].file.clone();
        let o = &self.objs[i];
        let namespace = self.namespace_of(o);
        let name = format!("{namespace}/{}", o.name);
        let at = o.at.clone();
        let file = o.file.clone();
        let mut inputs = BTreeSet::from([file.clone()]);
        let Some(spec) = o.spec().filter(|s| s.is_map()) else {
            self.problems.push(problem(&at, format!("Flux Kustomization {name} has no spec mapping")));
            return None;
        };
        let spec = spec.clone();
        let target_namespace = match opt_string(&file, &spec, "targetNamespace") {
            Ok(v) => v,
            Err(p) => return self.fail(p),
        };
        let declared = |sources: Vec<Source>, inputs: BTreeSet<String>| Declared {
            relocate: Vec::new(),
            controller: Controller::Flux,
            name: name.clone(),
            at: at.clone(),
            namespace: target_namespace.clone(),
            sources,
            inputs,
        };
        let Some(source_ref) = spec.get("sourceRef").filter(|s| s.is_map()) else {
            let pos = spec.entry("sourceRef").map_or(at.pos, |e| e.key.pos);
            return self.fail(Problem {
                file,
                pos,
                message: format!("Flux Kustomization {name} has no spec.sourceRef"),
            });
        };
        let src_at = At::new(&file, source_ref.pos.line, source_ref.pos.col);
        let path_entry = spec.entry("path");
        let path_at = path_entry.map_or(at.clone(), |e| At::new(&file, e.key.pos.line, e.key.pos.col));
        let raw_path = match path_entry.map(|e| &e.value) {
            None => String::new(),
            Some(v) if v.is_null() => String::new(),
            Some(v) => match v.as_text() {
                Some(t) => t.to_string(),
                None => {
                    return self.fail(problem(&path_at, "spec.path of a Flux Kustomization must be a string".into()));
                }
            },
        };
        let root = match self.source_root(source_ref, &namespace, &mut inputs) {
            Ok(root) => root,
            Err(reason) => return Some(declared(vec![Source::Skipped { at: src_at, reason }], inputs)),
        };
        let dir = match resolve("", &raw_path) {
            None => Err(format!("spec.path `{raw_path}` climbs out of the repository")),
            Some(p) => repo_to_tree(self.tree.prefix(), &crate::render::join(&root, &p)),
        };
        let dir = match dir {
            Ok(d) => d,
            Err(reason) => return Some(declared(vec![Source::Skipped { at: path_at, reason }], inputs)),
        };
        if self.tree.under(&dir).next().is_none() && self.settings.repositories.is_empty() {
            // The source was only taken to be this repository (the bootstrap source, no known URL): a missing
            // path may mean that guess is wrong, so it is said, not failed.
            let reason = format!(
                "spec.path `{raw_path}` is not in the checked tree; kpath took the source to be this repository \
                 without knowing its URL (list it under `gitops.repoURLs` to have a missing path fail)"
            );
            return Some(declared(vec![Source::Skipped { at: path_at, reason }], inputs));
        }
        if self.tree.under(&dir).next().is_none() {
            return self.fail(problem(
                &path_at,
                format!("spec.path `{raw_path}` of Flux Kustomization {name} is not a directory of the repository"),
            ));
        }
        let generate = !["kustomization.yaml", "kustomization.yml", "Kustomization"]
            .iter()
            .any(|k| self.tree.has(&crate::render::join(&dir, k)));
        if spec.get("decryption").is_some_and(|d| !d.is_null())
            && let Some(encrypted) = self.encrypted_under(&dir)
        {
            let reason = format!(
                "SOPS-encrypted values cannot be decrypted offline ({encrypted} is encrypted; spec.decryption)"
            );
            return Some(declared(vec![Source::Skipped { at: path_at, reason }], inputs));
        }
        let mut src = KustomizeSource {
            path: dir,
            namespace: target_namespace.clone(),
            generate,
            at: path_at,
            ..KustomizeSource::default()
        };
        for (field, slot) in [("namePrefix", &mut src.name_prefix), ("nameSuffix", &mut src.name_suffix)] {
            match opt_string(&file, &spec, field) {
                Ok(v) => *slot = v,
                Err(p) => return self.fail(p),
            }
        }
        let text = self.read(&file, MAX_MANIFEST).unwrap_or_default();
        for item in list(&file, &spec, "images", &mut self.problems) {
            src.images.push(standalone(&text, item));
        }
        for item in list(&file, &spec, "patches", &mut self.problems) {
            src.patches.push(Patch { yaml: standalone(&text, item), at: At::new(&file, item.pos.line, item.pos.col) });
        }
        match self.post_build(&file, &spec, &namespace, &mut inputs) {
            Ok(vars) => src.substitute = vars,
            Err(skip) => return Some(declared(vec![Source::Skipped { at: skip.0, reason: skip.1 }], inputs)),
        }
        Some(declared(vec![Source::Kustomize(src)], inputs))
    }

    fn fail(&mut self, p: Problem) -> Option<Declared> {
        self.problems.push(p);
        None
    }

    /// The directory of this repository a Kustomization's `sourceRef` holds (`""`: the whole repository);
    /// `Err` says what the source is instead.
    fn source_root(&self, source_ref: &Node, namespace: &str, inputs: &mut BTreeSet<String>) -> Result<String, Skip> {
        if source_ref.get("kind").and_then(Node::as_text) != Some("ExternalArtifact") {
            return self.this_repository(source_ref, namespace, inputs).map(|()| String::new());
        }
        let name = source_ref.get("name").and_then(Node::as_text).unwrap_or("");
        let ns = source_ref.get("namespace").and_then(Node::as_text).unwrap_or(namespace);
        self.artifact_root(name, ns, inputs)
    }

    /// An ExternalArtifact an ArtifactGenerator of the tree makes from this repository, when it is a view
    /// of one directory of it: every `copy` takes a whole directory (`@alias/dir/**`) of this repository
    /// to the same place relative to one root (`@artifact/sub/` from `root/sub`), so paths inside the
    /// artifact, relative references included, are paths under that root.
    /// <https://fluxoperator.dev/docs/crd/artifactgenerator>
    fn artifact_root(&self, name: &str, ns: &str, inputs: &mut BTreeSet<String>) -> Result<String, Skip> {
        let what = format!("the source is ExternalArtifact {ns}/{name}");
        let generated = self
            .objs
            .iter()
            .filter_map(|o| {
                if !(o.api.starts_with("source.extensions.fluxcd.io/") && o.kind == "ArtifactGenerator") {
                    return None;
                }
                let artifacts = o.spec()?.get("artifacts")?.items();
                let artifact = artifacts.iter().find(|a| a.get("name").and_then(Node::as_text) == Some(name))?;
                (self.namespace_of(o) == ns).then_some((o, artifact))
            })
            .min_by_key(|(o, _)| distance(&self.current, &o.file));
        let Some((generator, artifact)) = generated else {
            return Err(format!("{what}, made by no ArtifactGenerator of the repository"));
        };
        let gen_ns = self.namespace_of(generator);
        let sources = generator.spec().and_then(|s| s.get("sources")).map(Node::items).unwrap_or(&[]);
        let rearranged = || format!("{what}, which does not keep the repository's layout: kpath cannot map its paths");
        let mut root: Option<String> = None;
        let mut ours = BTreeSet::new();
        for copy in artifact.get("copy").map(Node::items).unwrap_or(&[]) {
            let from = copy.get("from").and_then(Node::as_text).unwrap_or("");
            let to = copy.get("to").and_then(Node::as_text).unwrap_or("");
            let Some((alias, rest)) = from.strip_prefix('@').and_then(|f| f.split_once('/')) else {
                return Err(rearranged());
            };
            let dir = match rest {
                "**" => "",
                r => r.strip_suffix("/**").ok_or_else(rearranged)?,
            };
            let to_dir = to.strip_prefix("@artifact/").ok_or_else(rearranged)?.trim_end_matches('/');
            let (Some(dir), Some(to_dir)) = (resolve("", dir), resolve("", to_dir)) else { return Err(rearranged()) };
            let base = if to_dir.is_empty() {
                dir.clone()
            } else if dir == to_dir {
                String::new()
            } else {
                dir.strip_suffix(&format!("/{to_dir}")).ok_or_else(rearranged)?.to_string()
            };
            if root.as_ref().is_some_and(|r| *r != base) {
                return Err(rearranged());
            }
            root = Some(base);
            let source = sources.iter().find(|s| s.get("alias").and_then(Node::as_text) == Some(alias));
            let kind = source.and_then(|s| s.get("kind")).and_then(Node::as_text).unwrap_or("");
            let src_name = source.and_then(|s| s.get("name")).and_then(Node::as_text).unwrap_or("");
            let src_ns = source.and_then(|s| s.get("namespace")).and_then(Node::as_text).unwrap_or(&gen_ns);
            let r = map_of(&[("kind", kind), ("name", src_name), ("namespace", src_ns)]);
            self.this_repository(&r, src_ns, &mut ours).map_err(|e| format!("{what}, copied from elsewhere: {e}"))?;
        }
        let Some(root) = root else { return Err(format!("{what}, which copies nothing")) };
        inputs.extend(ours);
        inputs.insert(generator.file.clone());
        Ok(root)
    }

    /// `Ok` when a Kustomization's `sourceRef` is this repository; `Err` says what it is instead.
    fn this_repository(&self, source_ref: &Node, namespace: &str, inputs: &mut BTreeSet<String>) -> Result<(), Skip> {
        let kind = source_ref.get("kind").and_then(Node::as_text).unwrap_or("");
        let name = source_ref.get("name").and_then(Node::as_text).unwrap_or("");
        let ns = source_ref.get("namespace").and_then(Node::as_text).unwrap_or(namespace);
        if kind != "GitRepository" {
            return Err(format!(
                "the source is {kind} {ns}/{name}, not this repository: kpath renders only what this repository holds"
            ));
        }
        let bootstrap = name == "flux-system" && ns == "flux-system";
        match self.find(SOURCE, "GitRepository", name, ns) {
            Some(git) => {
                let url = git.spec().and_then(|s| s.get("url")).and_then(Node::as_text).unwrap_or("");
                let ours = if self.settings.repositories.is_empty() {
                    // kpath does not know this repository's URL: the source `flux bootstrap` creates
                    // (flux-system/flux-system) is the repository that holds it.
                    bootstrap
                } else {
                    crate::gitops::repo::is_one_of(url, &self.settings.repositories)
                };
                if !ours {
                    return Err(format!(
                        "the source is GitRepository {ns}/{name} ({url}), not this repository: kpath renders only \
                         what this repository holds"
                    ));
                }
                inputs.insert(git.file.clone());
                Ok(())
            }
            // Not in the tree: only the bootstrap source is known to be this repository.
            None if bootstrap => Ok(()),
            None => Err(format!(
                "the source GitRepository {ns}/{name} is not in the repository, so kpath cannot tell that it is this \
                 repository"
            )),
        }
    }

    /// A file under `dir` that SOPS encrypted (a YAML/JSON file with a top-level `sops` key, a dotenv
    /// file with `sops_` keys).
    fn encrypted_under(&mut self, dir: &str) -> Option<String> {
        let files: Vec<String> = self.tree.under(dir).cloned().collect();
        for f in files {
            let Some(text) = self.read(&f, MAX_VALUES) else { continue };
            if is_encrypted(&f, &text) {
                return Some(f);
            }
        }
        None
    }

    /// The variables of `postBuild`: `None` when it defines none (Flux then substitutes nothing).
    #[allow(clippy::type_complexity)]
    fn post_build(
        &mut self,
        file: &str,
        spec: &Node,
        namespace: &str,
        inputs: &mut BTreeSet<String>,
    ) -> Result<Option<BTreeMap<String, String>>, (At, Skip)> {
        let Some(post) = spec.get("postBuild").filter(|p| p.is_map()) else { return Ok(None) };
        let inline = post.get("substitute").filter(|s| s.is_map());
        let from = post.get("substituteFrom").map(Node::items).unwrap_or(&[]);
        if inline.is_none_or(|m| m.entries().is_empty()) && from.is_empty() {
            return Ok(None);
        }
        let mut vars = BTreeMap::new();
        // Later `substituteFrom` objects overwrite earlier ones; inline `substitute` overwrites them all.
        for item in from {
            let at = At::new(file, item.pos.line, item.pos.col);
            let kind = item.get("kind").and_then(Node::as_text).unwrap_or("");
            let name = item.get("name").and_then(Node::as_text).unwrap_or("");
            let optional = item.get("optional").and_then(Node::as_bool).unwrap_or(false);
            if !matches!(kind, "ConfigMap" | "Secret") {
                self.problems.push(problem(&at, format!("substituteFrom kind `{kind}` is not ConfigMap or Secret")));
                continue;
            }
            match self.data_obj(kind, name, namespace) {
                Some(d) if d.encrypted => {
                    return Err((at, format!("SOPS-encrypted values cannot be decrypted offline ({kind} {name})")));
                }
                Some(d) => {
                    inputs.extend(d.inputs.iter().cloned());
                    for e in &d.entries {
                        vars.insert(e.key.clone(), e.value.clone());
                    }
                }
                None if optional => {}
                None => {
                    return Err((
                        at,
                        format!(
                            "substituteFrom {kind} {namespace}/{name} is not in the repository (it may be created in \
                             the cluster): kpath cannot know its variables"
                        ),
                    ));
                }
            }
        }
        for e in inline.map(Node::entries).unwrap_or(&[]) {
            let (Some(k), Some(v)) = (e.key.as_key(), e.value.as_text()) else { continue };
            vars.insert(k.to_string(), v.to_string());
        }
        Ok(Some(vars))
    }

    // ----- ConfigMaps and Secrets -----

    fn data_obj(&mut self, kind: &str, name: &str, namespace: &str) -> Option<&DataObj> {
        if self.data.is_none() {
            let index = self.index_data();
            self.data = Some(index);
        }
        let data = self.data.as_ref()?;
        let near = |d: &&DataObj| std::cmp::Reverse(distance(&self.current, &d.file));
        let candidates = || data.iter().filter(|d| d.kind == kind && d.name == name);
        candidates()
            .filter(|d| d.namespace.as_deref() == Some(namespace))
            .max_by_key(near)
            .or_else(|| candidates().filter(|d| d.namespace.is_none()).max_by_key(near))
    }

    /// Every ConfigMap and Secret of the tree: manifests, and kustomize generators.
    fn index_data(&mut self) -> Vec<DataObj> {
        let mut out = Vec::new();
        let files: Vec<String> =
            self.tree.files().iter().filter(|f| is_yaml(f) || is_kustomization(f)).cloned().collect();
        for file in files {
            let Some(text) = self.read(&file, MAX_MANIFEST) else { continue };
            let generator = is_kustomization(&file) && text.contains("Generator");
            if !generator && !text.contains("ConfigMap") && !text.contains("Secret") {
                continue;
            }
            let (docs, _) = crate::yaml::parse_stream(&text);
            for doc in docs {
                let Some(root) = doc.root else { continue };
                if generator {
                    for (key, kind) in [("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")] {
                        for g in root.get(key).map(Node::items).unwrap_or(&[]) {
                            if let Some(d) = self.generated(&file, &root, g, kind) {
                                out.push(d);
                            }
                        }
                    }
                    continue;
                }
                let kind = root.get("kind").and_then(Node::as_text).unwrap_or("");
                if !matches!(kind, "ConfigMap" | "Secret")
                    || root.get("apiVersion").and_then(Node::as_text) != Some("v1")
                {
                    continue;
                }
                let Some(name) = root.get_path(&["metadata", "name"]).and_then(Node::as_text) else { continue };
                out.push(manifest_data(&file, &text, &root, kind, name));
            }
        }
        out
    }

    /// A ConfigMap/Secret a kustomize generator makes (`literals`, `files`, `envs`).
    fn generated(&mut self, file: &str, kustomization: &Node, g: &Node, kind: &str) -> Option<DataObj> {
        let name = g.get("name").and_then(Node::as_text)?.to_string();
        let namespace =
            g.get("namespace").or_else(|| kustomization.get("namespace")).and_then(Node::as_text).map(str::to_string);
        let dir = file.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        let mut d = DataObj {
            file: file.to_string(),
            kind: kind.to_string(),
            name,
            namespace,
            entries: Vec::new(),
            inputs: BTreeSet::from([file.to_string()]),
            encrypted: false,
        };
        for lit in g.get("literals").map(Node::items).unwrap_or(&[]) {
            let Some((k, v)) = lit.as_text().and_then(|t| t.split_once('=')) else { continue };
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            d.entries.push(DataEntry {
                key: k.to_string(),
                value: v.to_string(),
                aligned: None,
                at: At::new(file, lit.pos.line, lit.pos.col),
            });
        }
        for f in g.get("files").map(Node::items).unwrap_or(&[]) {
            let Some(spec) = f.as_text() else { continue };
            let (key, rel) = match spec.split_once('=') {
                Some((k, p)) => (k.to_string(), p),
                None => (spec.rsplit('/').next().unwrap_or(spec).to_string(), spec),
            };
            let Some(path) = resolve(&dir, rel) else { continue };
            let Some(text) = self.read(&path, MAX_VALUES) else { continue };
            d.encrypted |= is_encrypted(&path, &text);
            d.inputs.insert(path.clone());
            d.entries.push(DataEntry {
                key,
                value: text.clone(),
                aligned: Some((path.clone(), text)),
                at: At::new(&path, 1, 1),
            });
        }
        for e in g.get("envs").map(Node::items).unwrap_or(&[]) {
            let Some(path) = e.as_text().and_then(|rel| resolve(&dir, rel)) else { continue };
            let Some(text) = self.read(&path, MAX_VALUES) else { continue };
            d.encrypted |= is_encrypted(&path, &text);
            d.inputs.insert(path.clone());
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let Some((k, v)) = line.split_once('=') else { continue };
                d.entries.push(DataEntry {
                    key: k.trim().to_string(),
                    value: v.to_string(),
                    aligned: None,
                    at: At::new(&path, n as u32 + 1, 1),
                });
            }
        }
        Some(d)
    }

    // ----- HelmRelease -----

    fn helm_release(&mut self, i: usize) -> Option<Declared> {
        self.current = self.objs[i].file.clone();
        let o = &self.objs[i];
        let namespace = self.namespace_of(o);
        let object_name = o.name.clone();
        let name = format!("{namespace}/{object_name}");
        let at = o.at.clone();
        let file = o.file.clone();
        let Some(spec) = o.spec().filter(|s| s.is_map()).cloned() else {
            return self.fail(problem(&at, format!("HelmRelease {name} has no spec mapping")));
        };
        let target_namespace = match opt_string(&file, &spec, "targetNamespace") {
            Ok(v) => v,
            Err(p) => return self.fail(p),
        };
        let release = match opt_string(&file, &spec, "releaseName") {
            Ok(Some(r)) => r,
            Ok(None) => release_name(target_namespace.as_deref(), &object_name),
            Err(p) => return self.fail(p),
        };
        let release_namespace = target_namespace.clone().unwrap_or_else(|| namespace.clone());
        let mut inputs = BTreeSet::from([file.clone()]);
        let declared = |sources: Vec<Source>, inputs: BTreeSet<String>| Declared {
            relocate: Vec::new(),
            controller: Controller::Flux,
            name: name.clone(),
            at: at.clone(),
            namespace: Some(release_namespace.clone()),
            sources,
            inputs,
        };
        let (chart_key, chart_node) = match (spec.entry("chart"), spec.entry("chartRef")) {
            (Some(e), None) => ("chart", e),
            (None, Some(e)) => ("chartRef", e),
            (Some(_), Some(e)) => {
                let p = Problem {
                    file,
                    pos: e.key.pos,
                    message: format!("HelmRelease {name} sets both spec.chart and spec.chartRef (Flux takes one)"),
                };
                return self.fail(p);
            }
            (None, None) => {
                return self.fail(problem(&at, format!("HelmRelease {name} has neither spec.chart nor spec.chartRef")));
            }
        };
        let source_at = At::new(&file, chart_node.key.pos.line, chart_node.key.pos.col);
        if !chart_node.value.is_map() {
            return self.fail(problem(&source_at, format!("spec.{chart_key} of HelmRelease {name} must be a mapping")));
        }
        let chart = if chart_key == "chart" {
            self.chart_template(&file, &chart_node.value, &namespace, &mut inputs)
        } else {
            self.chart_ref(&chart_node.value, &namespace, &mut inputs)
        };
        let (chart, mut values) = match chart {
            Ok(c) => c,
            Err(Failure::Skip(reason)) => {
                return Some(declared(vec![Source::Skipped { at: source_at, reason }], inputs));
            }
            Err(Failure::Problem(p)) => return self.fail(p),
        };
        let text = self.read(&file, MAX_MANIFEST).unwrap_or_default();
        let mut set = Vec::new();
        // `valuesFrom` in order, then inline `values` over them; `targetPath` values over everything
        // (Helm's `--set`, applied after every values file).
        for item in list(&file, &spec, "valuesFrom", &mut self.problems).to_vec() {
            match self.values_from(&file, &item, &namespace, &mut inputs) {
                Ok(Some(ValuesInput::Values(v))) => values.push(v),
                Ok(Some(ValuesInput::Set(s))) => set.push(s),
                Ok(None) => {}
                Err(Failure::Skip(reason)) => {
                    let at = At::new(&file, item.pos.line, item.pos.col);
                    return Some(declared(vec![Source::Skipped { at, reason }], inputs));
                }
                Err(Failure::Problem(p)) => return self.fail(p),
            }
        }
        if let Some(e) = spec.entry("values").filter(|e| !e.value.is_null()) {
            let at = At::new(&file, e.key.pos.line, e.key.pos.col);
            if !e.value.is_map() {
                return self.fail(problem(&at, format!("spec.values of HelmRelease {name} must be a mapping")));
            }
            values.push(match aligned(&text, &e.value) {
                Some(text) => Values { file: file.clone(), text, aligned: true, at },
                None => Values { file: file.clone(), text: to_json(&e.value), aligned: false, at },
            });
        }
        let mut post_render = Vec::new();
        for (n, pr) in list(&file, &spec, "postRenderers", &mut self.problems).iter().enumerate() {
            let Some(k) = pr.get("kustomize") else { continue };
            for item in k.get("patches").map(Node::items).unwrap_or(&[]) {
                post_render
                    .push(Patch { yaml: standalone(&text, item), at: At::new(&file, item.pos.line, item.pos.col) });
            }
            // v2beta1 forms, still read by the v2beta API versions.
            for item in k.get("patchesStrategicMerge").map(Node::items).unwrap_or(&[]) {
                let yaml = format!("{{\"patch\": {}}}", json_string(&to_json(item)));
                post_render.push(Patch { yaml, at: At::new(&file, item.pos.line, item.pos.col) });
            }
            for item in k.get("patchesJson6902").map(Node::items).unwrap_or(&[]) {
                let (Some(target), Some(ops)) = (item.get("target"), item.get("patch")) else { continue };
                let yaml = format!("{{\"patch\": {}, \"target\": {}}}", json_string(&to_json(ops)), to_json(target));
                post_render.push(Patch { yaml, at: At::new(&file, item.pos.line, item.pos.col) });
            }
            if k.get("images").is_some_and(|i| !i.items().is_empty()) {
                // The model has no place for post-render image overrides: say so rather than render
                // different images than Flux deploys.
                let at = At::new(&file, pr.pos.line, pr.pos.col);
                let reason = format!(
                    "postRenderers[{n}].kustomize.images is not supported yet: the release would render with \
                     other images than Flux deploys"
                );
                return Some(declared(vec![Source::Skipped { at, reason }], inputs));
            }
        }
        let src = HelmSource { chart, release, values, set, post_render, at: source_at };
        Some(declared(vec![Source::Helm(src)], inputs))
    }

    /// `spec.chart`: a HelmChart template (`spec.chart.spec.{chart,version,sourceRef,valuesFiles}`) or an
    /// OCIRepository template (`kind: OCIRepository`, `spec.chart.spec.{url,ref}`).
    fn chart_template(
        &mut self,
        file: &str,
        chart: &Node,
        namespace: &str,
        inputs: &mut BTreeSet<String>,
    ) -> Result<(Chart, Vec<Values>), Failure> {
        let Some(spec) = chart.get("spec").filter(|s| s.is_map()) else {
            let at = At::new(file, chart.pos.line, chart.pos.col);
            return Err(Failure::Problem(problem(&at, "spec.chart has no spec mapping".into())));
        };
        match chart.get("kind").and_then(Node::as_text).unwrap_or("HelmChart") {
            "HelmChart" => self.helm_chart_spec(file, spec, namespace, inputs),
            "OCIRepository" => oci_chart(file, spec).map(|c| (c, Vec::new())),
            other => Err(Failure::Skip(format!("spec.chart.kind `{other}` is not one kpath can render"))),
        }
    }

    /// `spec.chartRef`: an OCIRepository or a HelmChart object.
    fn chart_ref(
        &mut self,
        r: &Node,
        namespace: &str,
        inputs: &mut BTreeSet<String>,
    ) -> Result<(Chart, Vec<Values>), Failure> {
        let kind = r.get("kind").and_then(Node::as_text).unwrap_or("");
        let name = r.get("name").and_then(Node::as_text).unwrap_or("");
        let ns = r.get("namespace").and_then(Node::as_text).unwrap_or(namespace).to_string();
        if !matches!(kind, "OCIRepository" | "HelmChart") {
            return Err(Failure::Skip(format!(
                "spec.chartRef is {kind} {ns}/{name}: kpath cannot tell which chart it holds"
            )));
        }
        let Some(o) = self.find(SOURCE, kind, name, &ns) else {
            return Err(Failure::Skip(format!("spec.chartRef {kind} {ns}/{name} is not in the repository")));
        };
        let (ofile, spec) = (o.file.clone(), o.spec().cloned().unwrap_or(null_node()));
        inputs.insert(ofile.clone());
        if kind == "OCIRepository" {
            return oci_chart(&ofile, &spec).map(|c| (c, Vec::new()));
        }
        self.helm_chart_spec(&ofile, &spec, &ns, inputs)
    }

    /// A HelmChart spec (`chart`, `version`, `sourceRef`, `valuesFiles`), in `file`, whose `sourceRef`
    /// defaults to `namespace`.
    fn helm_chart_spec(
        &mut self,
        file: &str,
        spec: &Node,
        namespace: &str,
        inputs: &mut BTreeSet<String>,
    ) -> Result<(Chart, Vec<Values>), Failure> {
        let at = At::new(file, spec.pos.line, spec.pos.col);
        let Some(chart) = spec.get("chart").and_then(Node::as_text).filter(|c| !c.is_empty()) else {
            return Err(Failure::Problem(problem(&at, "the chart spec has no `chart`".into())));
        };
        let version = spec.get("version").and_then(Node::as_text).filter(|v| !v.is_empty() && *v != "*");
        let Some(source_ref) = spec.get("sourceRef").filter(|s| s.is_map()) else {
            return Err(Failure::Problem(problem(&at, "the chart spec has no `sourceRef`".into())));
        };
        let kind = source_ref.get("kind").and_then(Node::as_text).unwrap_or("");
        let name = source_ref.get("name").and_then(Node::as_text).unwrap_or("");
        let ns = source_ref.get("namespace").and_then(Node::as_text).unwrap_or(namespace).to_string();
        let values_files = spec.get("valuesFiles").map(Node::items).unwrap_or(&[]);
        match kind {
            "HelmRepository" => {
                let Some(repo) = self.find(SOURCE, "HelmRepository", name, &ns) else {
                    return Err(Failure::Skip(format!("HelmRepository {ns}/{name} is not in the repository")));
                };
                let rspec = repo.spec();
                let url = rspec.and_then(|s| s.get("url")).and_then(Node::as_text).unwrap_or("").trim().to_string();
                let oci = rspec.and_then(|s| s.get("type")).and_then(Node::as_text) == Some("oci");
                let rfile = repo.file.clone();
                if url.is_empty() {
                    let at = repo.at.clone();
                    return Err(Failure::Problem(problem(&at, format!("HelmRepository {ns}/{name} has no spec.url"))));
                }
                if oci != url.starts_with("oci://") {
                    return Err(Failure::Skip(format!(
                        "HelmRepository {ns}/{name}: `type: oci` and an oci:// URL go together ({url})"
                    )));
                }
                if !values_files.is_empty() {
                    return Err(Failure::Skip(
                        "valuesFiles of a chart from a Helm repository are read from the chart package: not \
                         supported yet"
                            .into(),
                    ));
                }
                inputs.insert(rfile);
                let repository = url.trim_end_matches('/').to_string();
                Ok((
                    Chart::Remote(RemoteChart {
                        repository,
                        name: chart.to_string(),
                        version: version.map(str::to_string),
                    }),
                    Vec::new(),
                ))
            }
            "GitRepository" => {
                let mut ours = BTreeSet::new();
                let r = map_of(&[("kind", "GitRepository"), ("name", name), ("namespace", &ns)]);
                self.this_repository(&r, &ns, &mut ours).map_err(Failure::Skip)?;
                inputs.extend(ours);
                let dir = resolve("", chart)
                    .ok_or_else(|| format!("chart path `{chart}` climbs out of the repository"))
                    .and_then(|p| repo_to_tree(self.tree.prefix(), &p))
                    .map_err(Failure::Skip)?;
                if !self.tree.has(&crate::render::join(&dir, "Chart.yaml")) {
                    return Err(Failure::Skip(format!("chart directory `{chart}` has no Chart.yaml")));
                }
                let mut values = Vec::new();
                for vf in values_files {
                    let vat = At::new(file, vf.pos.line, vf.pos.col);
                    let Some(rel) = vf.as_text() else { continue };
                    let path = resolve("", rel)
                        .ok_or_else(|| format!("values file `{rel}` climbs out of the repository"))
                        .and_then(|p| repo_to_tree(self.tree.prefix(), &p))
                        .map_err(Failure::Skip)?;
                    let Some(text) = self.read(&path, MAX_VALUES) else {
                        if spec.get("ignoreMissingValuesFiles").and_then(Node::as_bool) == Some(true) {
                            continue;
                        }
                        return Err(Failure::Skip(format!("values file `{rel}` is not in the repository")));
                    };
                    inputs.insert(path.clone());
                    values.push(Values { file: path, text, aligned: true, at: vat });
                }
                Ok((Chart::Local { dir }, values))
            }
            other => Err(Failure::Skip(format!(
                "the chart comes from {other} {ns}/{name}, not this repository or a Helm repository"
            ))),
        }
    }

    /// One `valuesFrom` entry.
    fn values_from(
        &mut self,
        file: &str,
        item: &Node,
        namespace: &str,
        inputs: &mut BTreeSet<String>,
    ) -> Result<Option<ValuesInput>, Failure> {
        let at = At::new(file, item.pos.line, item.pos.col);
        let kind = item.get("kind").and_then(Node::as_text).unwrap_or("");
        let Some(name) = item.get("name").and_then(Node::as_text) else {
            return Err(Failure::Problem(problem(&at, "a valuesFrom entry has no name".into())));
        };
        if !matches!(kind, "ConfigMap" | "Secret") {
            return Err(Failure::Problem(problem(&at, format!("valuesFrom kind `{kind}` is not ConfigMap or Secret"))));
        }
        let key = item.get("valuesKey").and_then(Node::as_text).unwrap_or("values.yaml").to_string();
        let target = item.get("targetPath").and_then(Node::as_text).filter(|t| !t.is_empty()).map(str::to_string);
        let optional = item.get("optional").and_then(Node::as_bool).unwrap_or(false);
        let literal = item.get("literal").and_then(Node::as_bool).unwrap_or(false);
        let Some(d) = self.data_obj(kind, name, namespace) else {
            if optional {
                return Ok(None);
            }
            return Err(Failure::Skip(format!(
                "valuesFrom {kind} {namespace}/{name} is not in the repository (it may be created in the cluster): \
                 kpath cannot know these values"
            )));
        };
        if d.encrypted {
            return Err(Failure::Skip(format!("SOPS-encrypted values cannot be decrypted offline ({kind} {name})")));
        }
        inputs.extend(d.inputs.iter().cloned());
        // Flux fails the release when the key is missing, even for an optional reference.
        let Some(entry) = d.entries.iter().rev().find(|e| e.key == key) else {
            return Err(Failure::Skip(format!(
                "{kind} {namespace}/{name} has no key `{key}`: Flux fails this release"
            )));
        };
        if let Some(path) = target {
            // The value is written on the ConfigMap's (Secret's) key: a finding on it is placed there, where it
            // is changed, not on the `valuesFrom` entry that points at it.
            let at = entry.at.clone();
            return Ok(Some(ValuesInput::Set(SetValue { key: path, value: entry.value.clone(), string: literal, at })));
        }
        Ok(Some(ValuesInput::Values(match &entry.aligned {
            Some((f, text)) => Values { file: f.clone(), text: text.clone(), aligned: true, at: entry.at.clone() },
            None => {
                Values { file: entry.at.file.clone(), text: entry.value.clone(), aligned: false, at: entry.at.clone() }
            }
        })))
    }
}

enum ValuesInput {
    Values(Values),
    Set(SetValue),
}

enum Failure {
    Skip(Skip),
    Problem(Problem),
}

/// A chart in an OCI registry, from an OCIRepository spec (`url`, `ref.tag`/`ref.semver`/`ref.digest`).
fn oci_chart(file: &str, spec: &Node) -> Result<Chart, Failure> {
    let at = At::new(file, spec.pos.line.max(1), spec.pos.col.max(1));
    let url = spec.get("url").and_then(Node::as_text).unwrap_or("").trim().trim_end_matches('/');
    let Some(rest) = url.strip_prefix("oci://") else {
        return Err(Failure::Problem(problem(&at, format!("OCIRepository url `{url}` is not an oci:// URL"))));
    };
    let Some((repo, name)) = rest.rsplit_once('/').filter(|(r, n)| !r.is_empty() && !n.is_empty()) else {
        return Err(Failure::Problem(problem(&at, format!("OCIRepository url `{url}` names no chart"))));
    };
    let r = spec.get("ref");
    let text = |k: &str| r.and_then(|r| r.get(k)).and_then(Node::as_text).filter(|t| !t.is_empty());
    // Precedence documented for `.spec.ref`: digest, then semver, then tag; no ref means `latest`.
    if let Some(digest) = text("digest") {
        return Err(Failure::Skip(format!(
            "the chart is pinned by digest ({digest}): kpath cannot pull a chart by digest"
        )));
    }
    let version = text("semver").or(text("tag")).map(str::to_string);
    let version = match version.as_deref() {
        Some("latest") | None => None,
        Some(_) => version,
    };
    Ok(Chart::Remote(RemoteChart { repository: format!("oci://{repo}"), name: name.to_string(), version }))
}

/// The data of a ConfigMap/Secret manifest.
fn manifest_data(file: &str, text: &str, root: &Node, kind: &str, name: &str) -> DataObj {
    let namespace = root.get_path(&["metadata", "namespace"]).and_then(Node::as_text).map(str::to_string);
    let mut entries = Vec::new();
    let secret = kind == "Secret";
    let fields: &[&str] = if secret { &["data", "stringData"] } else { &["data"] };
    for field in fields {
        for e in root.get(field).map(Node::entries).unwrap_or(&[]) {
            let Some(key) = e.key.as_key() else { continue };
            let Some(raw) = e.value.as_text() else { continue };
            let at = At::new(file, e.key.pos.line, e.key.pos.col);
            if secret && *field == "data" {
                let compact: String = raw.split_whitespace().collect();
                let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact) else { continue };
                let value = String::from_utf8_lossy(&bytes).into_owned();
                entries.push(DataEntry { key: key.to_string(), value, aligned: None, at });
                continue;
            }
            let aligned = aligned_block_scalar(text, &e.key, &e.value).map(|t| (file.to_string(), t));
            entries.push(DataEntry { key: key.to_string(), value: raw.to_string(), aligned, at });
        }
    }
    DataObj {
        file: file.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        namespace,
        entries,
        inputs: BTreeSet::from([file.to_string()]),
        encrypted: root.get("sops").is_some(),
    }
}

/// The release name Flux gives a HelmRelease without `releaseName`: `[targetNamespace-]name`, and when
/// that is longer than Helm's 53 characters, its first 40 characters, `-`, and the first 12 hex digits
/// of its SHA-256 (the "Release name" note of the HelmRelease documentation).
pub fn release_name(target_namespace: Option<&str>, name: &str) -> String {
    let full = match target_namespace.filter(|t| !t.is_empty()) {
        Some(t) => format!("{t}-{name}"),
        None => name.to_string(),
    };
    if full.len() <= MAX_RELEASE_NAME {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let head: String = full.chars().take(40).collect();
    format!("{head}-{hex}")
}

/// How far apart two files of the tree are: the directories to climb from one to reach the other's.
fn distance(a: &str, b: &str) -> usize {
    let dirs = |p: &str| -> Vec<String> {
        p.split('/').rev().skip(1).collect::<Vec<_>>().into_iter().rev().map(str::to_string).collect()
    };
    let (a, b) = (dirs(a), dirs(b));
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    a.len() + b.len() - 2 * common
}

fn problem(at: &At, message: String) -> Problem {
    Problem { file: at.file.clone(), pos: at.pos, message }
}

fn is_yaml(f: &str) -> bool {
    f.ends_with(".yaml") || f.ends_with(".yml")
}

fn is_kustomization(f: &str) -> bool {
    matches!(f.rsplit('/').next(), Some("kustomization.yaml" | "kustomization.yml" | "Kustomization"))
}

/// Whether SOPS encrypted this file: YAML with a top-level `sops:` key, JSON with a `"sops"` key, a
/// dotenv file with `sops_` keys (how SOPS stores its metadata in each format).
fn is_encrypted(file: &str, text: &str) -> bool {
    if file.ends_with(".json") {
        return text.contains("\"sops\"") && text.contains("\"mac\"");
    }
    if file.ends_with(".env") || file.contains(".env.") {
        return text.lines().any(|l| l.starts_with("sops_mac="));
    }
    text.lines().any(|l| l == "sops:" || l.starts_with("sops: ") || l.starts_with("sops:\t"))
}

/// A path of the repository as a path of the tree (whose root may be a directory of the repository).
fn repo_to_tree(prefix: &str, path: &str) -> Result<String, Skip> {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return Ok(path.to_string());
    }
    if path == prefix {
        return Ok(String::new());
    }
    match path.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) {
        Some(rest) => Ok(rest.to_string()),
        None => Err(format!("`{path}` is outside the checked directory `{prefix}`")),
    }
}

/// An optional string field of a mapping; a mapping or list there is a problem.
fn opt_string(file: &str, map: &Node, key: &str) -> Result<Option<String>, Problem> {
    let Some(e) = map.entry(key) else { return Ok(None) };
    if e.value.is_null() {
        return Ok(None);
    }
    match e.value.as_text() {
        Some(t) => Ok(Some(t.to_string())).map(|s| s.filter(|s: &String| !s.is_empty())),
        None => {
            Err(Problem { file: file.to_string(), pos: e.key.pos, message: format!("spec.{key} must be a string") })
        }
    }
}

/// The items of a list field; anything else there is a problem.
fn list<'n>(file: &str, map: &'n Node, key: &str, problems: &mut Vec<Problem>) -> &'n [Node] {
    let Some(e) = map.entry(key) else { return &[] };
    if e.value.is_null() {
        return &[];
    }
    if !e.value.is_seq() {
        problems.push(Problem {
            file: file.to_string(),
            pos: e.key.pos,
            message: format!("spec.{key} must be a list"),
        });
        return &[];
    }
    e.value.items()
}

// ----- Node text: aligned extraction, stand-alone YAML, JSON -----

fn null_node() -> Node {
    Node {
        pos: Pos { line: 1, col: 1 },
        kind: NodeKind::Scalar(crate::yaml::Scalar { text: String::new(), style: Style::Plain, tag: None }),
    }
}

/// A mapping of strings (a made-up `sourceRef`).
fn map_of(pairs: &[(&str, &str)]) -> Node {
    let scalar = |t: &str| Node {
        pos: Pos { line: 1, col: 1 },
        kind: NodeKind::Scalar(crate::yaml::Scalar { text: t.to_string(), style: Style::Quoted, tag: None }),
    };
    let entries = pairs.iter().map(|(k, v)| crate::yaml::Entry { key: scalar(k), value: scalar(v) }).collect();
    Node { pos: Pos { line: 1, col: 1 }, kind: NodeKind::Map(entries) }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// The lines (0-based, inclusive) a block node starting at `node.pos` spans: the following lines that
/// are more indented than the node's column (or, for a sequence, its `- ` items), trailing blank and
/// comment lines left out.
fn span(lines: &[&str], node: &Node) -> Option<(usize, usize)> {
    let first = (node.pos.line as usize).checked_sub(1)?;
    lines.get(first)?;
    let col = (node.pos.col as usize).saturating_sub(1);
    let mut last = first;
    for (i, line) in lines.iter().enumerate().skip(first + 1) {
        if is_blank_or_comment(line) {
            continue;
        }
        let ind = indent_of(line);
        let belongs = if node.is_seq() {
            ind > col || (ind == col && (line[ind..].starts_with("- ") || line[ind..].trim_end() == "-"))
        } else {
            ind >= col && !(ind == 0 && (line.starts_with("---") || line.starts_with("...")))
        };
        if !belongs {
            break;
        }
        last = i;
    }
    Some((first, last))
}

/// `text` with every line blanked except those of `node` (and, on its first line, what precedes it), so
/// the result parses to `node` at the same lines and columns; `None` when it would not read the same.
fn aligned(text: &str, node: &Node) -> Option<String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let (first, last) = span(&lines, node)?;
    let col = (node.pos.col as usize).saturating_sub(1);
    let mut out = String::with_capacity(text.len());
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if i == first {
            let chars: Vec<char> = line.chars().collect();
            out.extend(std::iter::repeat_n(' ', col.min(chars.len())));
            out.extend(chars.iter().skip(col));
        } else if i > first && i <= last {
            out.push_str(line);
        }
    }
    let parsed = crate::yaml::parse_single(&out).ok()??;
    same(&parsed, node).then_some(out)
}

/// A block scalar (`values.yaml: |`) as YAML aligned to its lines in `text`: the content lines kept
/// where they are, everything else blanked; `None` when that does not read as the scalar's content does.
fn aligned_block_scalar(text: &str, key: &Node, value: &Node) -> Option<String> {
    let s = value.scalar()?;
    if s.style != Style::Block {
        return None;
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let key_indent = (key.pos.col as usize).saturating_sub(1);
    // The `key: |` line; the scalar's own position is where its content starts or ends.
    let header = (key.pos.line as usize).checked_sub(1)?;
    let mut last = header;
    for (i, line) in lines.iter().enumerate().skip(header + 1) {
        if line.trim().is_empty() {
            continue;
        }
        if indent_of(line) <= key_indent {
            break;
        }
        last = i;
    }
    if last == header {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if i > header && i <= last {
            out.push_str(line);
        }
    }
    let want = crate::yaml::parse_single(&s.text).ok()?;
    let got = crate::yaml::parse_single(&out).ok()?;
    match (want, got) {
        (Some(w), Some(g)) if same(&w, &g) => Some(out),
        _ => None,
    }
}

/// A list item as YAML that stands alone (its lines, re-indented to column 1); JSON when its text
/// cannot be cut out as it reads (flow style, anchors).
fn standalone(text: &str, node: &Node) -> String {
    let cut = || -> Option<String> {
        let lines: Vec<&str> = text.split('\n').collect();
        let (first, last) = span(&lines, node)?;
        let col = (node.pos.col as usize).saturating_sub(1);
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate().take(last + 1).skip(first) {
            let line: String = if i == first { line.chars().skip(col).collect() } else { line.to_string() };
            let strip = if i == first { 0 } else { col.min(indent_of(&line)) };
            out.push_str(line.get(strip..).unwrap_or(""));
            out.push('\n');
        }
        let parsed = crate::yaml::parse_single(&out).ok()??;
        same(&parsed, node).then_some(out)
    };
    cut().unwrap_or_else(|| to_json(node) + "\n")
}

/// Whether two nodes hold the same data (positions aside).
fn same(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (NodeKind::Scalar(x), NodeKind::Scalar(y)) => {
            x.text == y.text && (x.style == Style::Plain) == (y.style == Style::Plain) && x.tag == y.tag
        }
        (NodeKind::Seq(x), NodeKind::Seq(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (NodeKind::Map(x), NodeKind::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(&p.key, &q.key) && same(&p.value, &q.value))
        }
        _ => false,
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A node as JSON (which YAML readers read as the same data).
fn to_json(node: &Node) -> String {
    match &node.kind {
        NodeKind::Scalar(s) => match s.value() {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) if f.is_finite() => {
                serde_json::Number::from_f64(f).map_or_else(|| json_string(&s.text), |n| n.to_string())
            }
            Value::Float(_) => json_string(&s.text),
            Value::Str(t) => json_string(t),
        },
        NodeKind::Seq(items) => format!("[{}]", items.iter().map(to_json).collect::<Vec<_>>().join(", ")),
        NodeKind::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|e| format!("{}: {}", json_string(e.key.as_text().unwrap_or("")), to_json(&e.value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

// ----- Post-build variable substitution -----

/// Flux's post-build variable substitution on rendered YAML text (`${var}`, `${var:=default}`, `$${var}`
/// escape, and the other bash-like forms Flux documents), document by document; documents labelled or
/// annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` are left alone. A variable no one
/// defines becomes the empty string (Flux's default, without its `StrictPostBuildSubstitutions` gate).
/// `Err` names the variable or expression that is malformed.
///
/// Flux substitutes in each object's YAML text, after kustomize build (so `${quote}${id}${quote}` can
/// make a quoted string): this does the same on each document's text.
/// <https://fluxcd.io/flux/components/kustomize/kustomizations/#post-build-variable-substitution>
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    for name in vars.keys() {
        if !valid_name(name) {
            return Err(format!(
                "variable name `{name}` is invalid: Flux takes letters, digits and `_`, not starting with a digit"
            ));
        }
    }
    let mut out = String::with_capacity(text.len());
    for doc in split_documents(text) {
        if !doc.contains('$') || substitution_disabled(doc) {
            out.push_str(doc);
            continue;
        }
        let mut x = Expander { vars, chars: doc.chars().collect(), i: 0, depth: 0 };
        out.push_str(&x.top()?);
    }
    Ok(out)
}

/// `^[_[:alpha:]][_[:alpha:][:digit:]]*$`, the rule Flux checks variable names against.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The documents of a stream, each with the `---` line that opens it.
fn split_documents(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let marker = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        if marker && offset > start {
            docs.push(&text[start..offset]);
            start = offset;
        }
        offset += line.len();
    }
    if start < text.len() {
        docs.push(&text[start..]);
    }
    docs
}

/// Whether a document opts out with `kustomize.toolkit.fluxcd.io/substitute: disabled` (a label or an
/// annotation).
fn substitution_disabled(doc: &str) -> bool {
    const KEY: &str = "kustomize.toolkit.fluxcd.io/substitute";
    if !doc.contains(KEY) {
        return false;
    }
    let Ok(Some(root)) = crate::yaml::parse_single(doc) else { return false };
    ["annotations", "labels"].iter().any(|field| {
        root.get_path(&["metadata", field, KEY])
            .and_then(Node::as_text)
            .is_some_and(|v| v.eq_ignore_ascii_case("disabled"))
    })
}

/// Deepest nesting of `${…}` inside defaults and patterns.
const MAX_NESTING: usize = 64;

struct Expander<'v> {
    vars: &'v BTreeMap<String, String>,
    chars: Vec<char>,
    i: usize,
    depth: usize,
}

impl Expander<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    /// Text outside expressions: `$$` is one `$` (so `$${var}` stays `${var}`), `${` opens an expression,
    /// anything else (`$var` included) is kept.
    fn top(&mut self) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.peek(0) {
            match (c, self.peek(1)) {
                ('$', Some('$')) => {
                    out.push('$');
                    self.i += 2;
                }
                ('$', Some('{')) => out.push_str(&self.expression()?),
                _ => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        Ok(out)
    }

    /// The expression text from `start` on, for messages.
    fn snippet(&self, start: usize) -> String {
        let end = self.chars[start..]
            .iter()
            .position(|c| *c == '}' || *c == '\n')
            .map_or(self.chars.len(), |p| start + p + 1);
        self.chars[start..end.min(start + 80)].iter().collect()
    }

    fn error(&self, start: usize, what: &str) -> String {
        format!("`{}`: {what}", self.snippet(start))
    }

    fn ident(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek(0).filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.i += 1;
        }
        name
    }

    fn close(&mut self, start: usize) -> Result<(), String> {
        if self.peek(0) == Some('}') {
            self.i += 1;
            Ok(())
        } else {
            Err(self.error(start, "missing closing brace"))
        }
    }

    /// An argument up to one of `stops` (not consumed), with nested `${…}` expanded; `escapes`: `\/`,
    /// `\\` and `$$` stand for `/`, `\` and `$` (pattern and replacement arguments).
    fn argument(&mut self, start: usize, stops: &[char], escapes: bool) -> Result<String, String> {
        let mut out = String::new();
        loop {
            let Some(c) = self.peek(0) else { return Err(self.error(start, "missing closing brace")) };
            if stops.contains(&c) {
                return Ok(out);
            }
            match (c, self.peek(1)) {
                ('$', Some('{')) => out.push_str(&self.expression()?),
                ('\\', Some(n @ ('/' | '\\'))) if escapes => {
                    out.push(n);
                    self.i += 2;
                }
                ('$', Some('$')) if escapes => {
                    out.push('$');
                    self.i += 2;
                }
                _ => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// One `${…}`, the cursor on its `$`.
    fn expression(&mut self) -> Result<String, String> {
        let start = self.i;
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error(start, "expressions nested too deep"));
        }
        self.i += 2;
        let out = self.expression_body(start);
        self.depth -= 1;
        out
    }

    fn expression_body(&mut self, start: usize) -> Result<String, String> {
        if self.peek(0) == Some('#') {
            self.i += 1;
            let name = self.ident();
            if name.is_empty() {
                return Err(self.error(start, "bad substitution"));
            }
            self.close(start)?;
            return Ok(self.value(&name).map_or(0, |v| v.chars().count()).to_string());
        }
        let name = self.ident();
        if name.is_empty() {
            return Err(self.error(start, "unable to parse variable name"));
        }
        let value = self.value(&name).map(str::to_string);
        let set = value.is_some();
        let value = value.unwrap_or_default();
        match self.peek(0) {
            Some('}') => {
                self.i += 1;
                Ok(value)
            }
            Some(':') => match self.peek(1) {
                Some('=' | '-') => {
                    self.i += 2;
                    let default = self.argument(start, &['}'], false)?;
                    self.close(start)?;
                    Ok(if value.is_empty() { default } else { value })
                }
                Some('?' | '+') => Err(self.error(start, "this form is not supported by Flux")),
                _ => {
                    self.i += 1;
                    let offset = self.argument(start, &[':', '}'], false)?;
                    let length = if self.peek(0) == Some(':') {
                        self.i += 1;
                        Some(self.argument(start, &['}'], false)?)
                    } else {
                        None
                    };
                    self.close(start)?;
                    Ok(substring(&value, &offset, length.as_deref()))
                }
            },
            Some('=' | '-') => {
                self.i += 1;
                let default = self.argument(start, &['}'], false)?;
                self.close(start)?;
                Ok(if set { value } else { default })
            }
            Some(c @ (',' | '^')) => {
                self.i += 1;
                let all = self.peek(0) == Some(c);
                if all {
                    self.i += 1;
                }
                self.close(start)?;
                Ok(change_case(&value, c == '^', all))
            }
            Some('/') => {
                self.i += 1;
                let mode = match self.peek(0) {
                    Some(m @ ('/' | '#' | '%')) => {
                        self.i += 1;
                        m
                    }
                    _ => '1',
                };
                let pattern = self.argument(start, &['/', '}'], true)?;
                let replacement = if self.peek(0) == Some('/') {
                    self.i += 1;
                    self.argument(start, &['}'], true)?
                } else {
                    String::new()
                };
                self.close(start)?;
                Ok(replace(&value, &pattern, &replacement, mode))
            }
            Some(c @ ('#' | '%')) => {
                self.i += 1;
                let longest = self.peek(0) == Some(c);
                if longest {
                    self.i += 1;
                }
                let pattern = self.argument(start, &['}'], false)?;
                self.close(start)?;
                Ok(trim(&value, &pattern, c == '#', longest))
            }
            _ => Err(self.error(start, "missing closing brace")),
        }
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

/// `${var:offset[:length]}`, bash-like: a negative offset counts from the end, a negative length stops
/// that many characters before the end; an offset or length that is not a number leaves the value.
fn substring(value: &str, offset: &str, length: Option<&str>) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len() as i64;
    let Ok(offset) = offset.trim().parse::<i64>() else { return value.to_string() };
    let from = if offset < 0 { (n + offset).max(0) } else { offset.min(n) };
    let to = match length.map(|l| l.trim().parse::<i64>()) {
        None => n,
        Some(Err(_)) => return value.to_string(),
        Some(Ok(l)) if l < 0 => n + l,
        Some(Ok(l)) => from.saturating_add(l).min(n),
    };
    if to <= from {
        return String::new();
    }
    chars[from as usize..to as usize].iter().collect()
}

fn change_case(value: &str, upper: bool, all: bool) -> String {
    let conv = |s: &str| if upper { s.to_uppercase() } else { s.to_lowercase() };
    if all {
        return conv(value);
    }
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => conv(&first.to_string()) + chars.as_str(),
        None => String::new(),
    }
}

/// `${var/p/r}` (first), `${var//p/r}` (all), `${var/#p/r}` (prefix), `${var/%p/r}` (suffix): the
/// pattern is a plain string here, as in Flux.
fn replace(value: &str, pattern: &str, replacement: &str, mode: char) -> String {
    match mode {
        '/' if !pattern.is_empty() => value.replace(pattern, replacement),
        '#' if value.starts_with(pattern) => format!("{replacement}{}", &value[pattern.len()..]),
        '%' if value.ends_with(pattern) => format!("{}{replacement}", &value[..value.len() - pattern.len()]),
        '1' if !pattern.is_empty() => value.replacen(pattern, replacement, 1),
        _ => value.to_string(),
    }
}

/// `${var#p}`, `${var##p}`, `${var%p}`, `${var%%p}`: strips the shortest or longest non-empty prefix
/// (suffix) matching the glob `p` (`*` and `?` do not match `/`, `[…]` classes).
fn trim(value: &str, pattern: &str, prefix: bool, longest: bool) -> String {
    let Some(mut tokens) = glob_tokens(pattern) else { return value.to_string() };
    let mut chars: Vec<char> = value.chars().collect();
    if !prefix {
        chars.reverse();
        tokens.reverse();
    }
    let ends = matching_prefixes(&tokens, &chars);
    let cut = if longest { ends.iter().rev().find(|&&k| k > 0) } else { ends.iter().find(|&&k| k > 0) };
    let Some(&cut) = cut else { return value.to_string() };
    let mut rest: Vec<char> = chars[cut..].to_vec();
    if !prefix {
        rest.reverse();
    }
    rest.into_iter().collect()
}

#[derive(Clone, Debug)]
enum Glob {
    Char(char),
    One,
    Star,
    Class { ranges: Vec<(char, char)>, negated: bool },
}

impl Glob {
    fn matches(&self, c: char) -> bool {
        match self {
            Glob::Char(x) => *x == c,
            Glob::One => c != '/',
            Glob::Star => c != '/',
            Glob::Class { ranges, negated } => ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated,
        }
    }
}

/// A glob pattern's tokens; `None` when it is malformed (an open `[`).
fn glob_tokens(pattern: &str) -> Option<Vec<Glob>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => out.push(Glob::Star),
            '?' => out.push(Glob::One),
            '\\' => {
                i += 1;
                out.push(Glob::Char(*chars.get(i)?));
            }
            '[' => {
                i += 1;
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let mut lo = *chars.get(i)?;
                    if lo == ']' && !ranges.is_empty() {
                        break;
                    }
                    if lo == '\\' {
                        i += 1;
                        lo = *chars.get(i)?;
                    }
                    let mut hi = lo;
                    if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|c| *c != ']') {
                        i += 2;
                        hi = chars[i];
                        if hi == '\\' {
                            i += 1;
                            hi = *chars.get(i)?;
                        }
                    }
                    ranges.push((lo, hi));
                    i += 1;
                }
                out.push(Glob::Class { ranges, negated });
            }
            c => out.push(Glob::Char(c)),
        }
        i += 1;
    }
    Some(out)
}

/// Every `k` such that the pattern matches `s[..k]`, ascending (one pass, O(pattern × text)).
fn matching_prefixes(tokens: &[Glob], s: &[char]) -> Vec<usize> {
    // reach[k]: the tokens seen so far match s[..k].
    let mut reach = vec![false; s.len() + 1];
    reach[0] = true;
    for t in tokens {
        let mut next = vec![false; s.len() + 1];
        match t {
            Glob::Star => {
                for k in 0..=s.len() {
                    next[k] = reach[k] || (k > 0 && next[k - 1] && t.matches(s[k - 1]));
                }
            }
            _ => {
                for k in 1..=s.len() {
                    next[k] = reach[k - 1] && t.matches(s[k - 1]);
                }
            }
        }
        reach = next;
    }
    reach.iter().enumerate().filter(|(_, r)| **r).map(|(k, _)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::render::MemTree as Mem;

    fn tree(files: &[(&str, &str)]) -> Mem {
        Mem::new(files)
    }

    fn run(t: &Mem) -> (Vec<Declared>, Vec<Problem>) {
        declared(t, &Settings::default())
    }

    fn one<'a>(ds: &'a [Declared], name: &str) -> &'a Declared {
        ds.iter().find(|d| d.name == name).unwrap_or_else(|| panic!("no {name} in {ds:#?}"))
    }

    fn kustomize(d: &Declared) -> &KustomizeSource {
        match &d.sources[..] {
            [Source::Kustomize(k)] => k,
            other => panic!("not a Kustomize source: {other:#?}"),
        }
    }

    fn helm(d: &Declared) -> &HelmSource {
        match &d.sources[..] {
            [Source::Helm(h)] => h,
            other => panic!("not a Helm source: {other:#?}"),
        }
    }

    fn skipped(d: &Declared) -> &str {
        match &d.sources[..] {
            [Source::Skipped { reason, .. }] => reason,
            other => panic!("not skipped: {other:#?}"),
        }
    }

    /// The 1-based line of the first line of `text` that contains `needle`.
    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).map(|i| i + 1).unwrap_or_else(|| panic!("{needle} not in {text}"))
    }

    const SYNC: &str = "\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m
  url: ssh://git@github.com/acme/fleet
  ref:
    branch: main
";

    const APPS: &str = "\
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./apps/prod
  prune: true
  targetNamespace: shop
  namePrefix: prod-
  nameSuffix: -v1
  images:
    - name: web
      newTag: \"1.2.3\"
  patches:
    - patch: |
        - op: replace
          path: /spec/replicas
          value: 3
      target:
        kind: Deployment
        name: web
  postBuild:
    substitute:
      cluster: prod
      region: eu-1
    substituteFrom:
      - kind: ConfigMap
        name: cluster-vars
      - kind: Secret
        name: cluster-secrets
      - kind: ConfigMap
        name: maybe
        optional: true
";

    const VARS: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cluster-vars
  namespace: flux-system
data:
  region: from-configmap
  domain: example.com
---
apiVersion: v1
kind: Secret
metadata:
  name: cluster-secrets
  namespace: flux-system
data:
  token: czNjcjN0
stringData:
  user: admin
";

    fn fleet() -> Vec<(&'static str, &'static str)> {
        vec![
            ("clusters/prod/flux-system/gotk-sync.yaml", SYNC),
            ("clusters/prod/apps.yaml", APPS),
            ("clusters/prod/vars.yaml", VARS),
            ("apps/prod/deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"),
        ]
    }

    #[test]
    fn a_kustomization_of_this_repository_reads_every_field() {
        let (ds, problems) = run(&tree(&fleet()));
        assert!(problems.is_empty(), "{problems:?}");
        let d = one(&ds, "flux-system/apps");
        assert_eq!(d.controller, Controller::Flux);
        assert_eq!(d.namespace.as_deref(), Some("shop"));
        assert_eq!(d.at, At::new("clusters/prod/apps.yaml", 3, 1));
        let k = kustomize(d);
        assert_eq!(k.path, "apps/prod");
        assert_eq!(k.namespace.as_deref(), Some("shop"));
        assert_eq!(k.name_prefix.as_deref(), Some("prod-"));
        assert_eq!(k.name_suffix.as_deref(), Some("-v1"));
        assert!(k.generate, "apps/prod has no kustomization.yaml");
        assert_eq!(k.at.pos.line, 12);
        assert_eq!(k.images, vec!["name: web\nnewTag: \"1.2.3\"\n".to_string()]);
        assert_eq!(k.patches.len(), 1);
        let patch = crate::yaml::parse_single(&k.patches[0].yaml).ok().flatten().expect("patch parses");
        assert_eq!(patch.get_path(&["target", "name"]).and_then(Node::as_text), Some("web"));
        assert!(patch.get("patch").and_then(Node::as_text).is_some_and(|p| p.contains("op: replace")));
        assert_eq!(k.patches[0].at.pos.line, 21);
        let vars = k.substitute.as_ref().expect("variables");
        // Inline `substitute` wins over `substituteFrom`; Secret `data` is base64, `stringData` plain.
        assert_eq!(vars.get("region").map(String::as_str), Some("eu-1"));
        assert_eq!(vars.get("cluster").map(String::as_str), Some("prod"));
        assert_eq!(vars.get("domain").map(String::as_str), Some("example.com"));
        assert_eq!(vars.get("token").map(String::as_str), Some("s3cr3t"));
        assert_eq!(vars.get("user").map(String::as_str), Some("admin"));
        let inputs: Vec<&str> = d.inputs.iter().map(String::as_str).collect();
        assert_eq!(
            inputs,
            ["clusters/prod/apps.yaml", "clusters/prod/flux-system/gotk-sync.yaml", "clusters/prod/vars.yaml"]
        );
    }

    #[test]
    fn a_kustomization_with_a_kustomization_file_is_not_generated_and_without_post_build_substitutes_nothing() {
        let t = tree(&[
            (
                "clusters/c.yaml",
                "apiVersion: kustomize.toolkit.fluxcd.io/v1beta2\nkind: Kustomization\nmetadata:\n  name: infra\n\
                 spec:\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n    namespace: flux-system\n  \
                 path: infra\n",
            ),
            ("infra/kustomization.yaml", "resources: []\n"),
        ]);
        let (ds, problems) = run(&t);
        assert!(problems.is_empty(), "{problems:?}");
        // No namespace written and none applied from above: Kubernetes' `default`.
        let d = one(&ds, "default/infra");
        let k = kustomize(d);
        assert!(!k.generate);
        assert_eq!(k.path, "infra");
        assert!(k.substitute.is_none());
        assert_eq!(d.namespace, None);
    }

    #[test]
    fn kustomize_config_kustomizations_are_not_flux_objects() {
        let t = tree(&[(
            "k/kustomization.yaml",
            "# see fluxcd.io\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n",
        )]);
        let (ds, problems) = run(&t);
        assert!(ds.is_empty() && problems.is_empty());
    }

    #[test]
    fn the_repository_is_recognised_by_url_when_kpath_knows_it() {
        let mut files: Vec<(&str, &str)> = fleet();
        let t = tree(&files);
        let mut settings = Settings::default();
        settings.repositories.insert("github.com/acme/fleet".into());
        let (ds, _) = declared(&t, &settings);
        kustomize(one(&ds, "flux-system/apps"));
        settings.repositories = BTreeSet::from(["github.com/acme/other".to_string()]);
        let (ds, _) = declared(&t, &settings);
        let reason = skipped(one(&ds, "flux-system/apps"));
        assert!(reason.contains("GitRepository flux-system/flux-system") && reason.contains("not this repository"));
        // Without the GitRepository in the tree, only the bootstrap name says it is this repository.
        files.remove(0);
        let (ds, _) = run(&tree(&files));
        kustomize(one(&ds, "flux-system/apps"));
    }

    #[test]
    fn sources_that_are_not_this_repository_are_skipped_with_the_reason() {
        let k = |name: &str, kind: &str, src: &str| {
            format!(
                "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n  \
                 namespace: flux-system\nspec:\n  sourceRef:\n    kind: {kind}\n    name: {src}\n  path: ./apps/prod\n"
            )
        };
        let text = [
            k("oci", "OCIRepository", "manifests"),
            k("bucket", "Bucket", "b"),
            k("other", "GitRepository", "podinfo"),
            k("artifact", "ExternalArtifact", "apps"),
        ]
        .concat();
        let mut files: Vec<(&str, &str)> = fleet();
        files.push(("clusters/prod/more.yaml", &text));
        let (ds, problems) = run(&tree(&files));
        assert!(problems.is_empty(), "{problems:?}");
        assert!(
            skipped(one(&ds, "flux-system/oci")).contains("OCIRepository flux-system/manifests, not this repository")
        );
        assert!(skipped(one(&ds, "flux-system/bucket")).contains("Bucket flux-system/b"));
        assert!(
            skipped(one(&ds, "flux-system/other"))
                .contains("GitRepository flux-system/podinfo is not in the repository")
        );
        assert!(skipped(one(&ds, "flux-system/artifact")).contains("ExternalArtifact flux-system/apps, made by no"));
    }

    #[test]
    fn an_external_artifact_that_keeps_the_repository_layout_maps_to_its_directory() {
        let generator = "\
apiVersion: source.extensions.fluxcd.io/v1beta1
kind: ArtifactGenerator
metadata:
  name: flux-system
  namespace: flux-system
spec:
  sources:
    - alias: monorepo
      kind: GitRepository
      name: flux-system
  artifacts:
    - name: apps
      copy:
        - from: \"@monorepo/apps/base/**\"
          to: \"@artifact/base/\"
        - from: \"@monorepo/apps/production/**\"
          to: \"@artifact/production/\"
    - name: infrastructure
      copy:
        - from: \"@monorepo/infrastructure/**\"
          to: \"@artifact/\"
    - name: shuffled
      copy:
        - from: \"@monorepo/apps/base/**\"
          to: \"@artifact/production/\"
";
        let k = |name: &str, artifact: &str, path: &str| {
            format!(
                "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n  \
                 namespace: flux-system\nspec:\n  sourceRef:\n    kind: ExternalArtifact\n    name: {artifact}\n  \
                 path: {path}\n"
            )
        };
        let ks = [
            k("apps", "apps", "./production"),
            k("infra", "infrastructure", "./controllers"),
            k("odd", "shuffled", "./production"),
        ]
        .concat();
        let files: Vec<(&str, &str)> = vec![
            ("clusters/prod/artifacts.yaml", generator),
            ("clusters/prod/ks.yaml", &ks),
            ("apps/production/kustomization.yaml", "resources: [../base/podinfo]\n"),
            ("apps/base/podinfo/kustomization.yaml", "resources: []\n"),
            ("infrastructure/controllers/kustomization.yaml", "resources: []\n"),
        ];
        let (ds, problems) = run(&tree(&files));
        assert!(problems.is_empty(), "{problems:?}");
        let apps = one(&ds, "flux-system/apps");
        assert_eq!(kustomize(apps).path, "apps/production");
        assert!(apps.inputs.contains("clusters/prod/artifacts.yaml"));
        assert_eq!(kustomize(one(&ds, "flux-system/infra")).path, "infrastructure/controllers");
        assert!(skipped(one(&ds, "flux-system/odd")).contains("does not keep the repository's layout"));
    }

    #[test]
    fn a_required_substitute_from_object_that_is_missing_skips_and_an_optional_one_does_not() {
        let files = vec![
            ("clusters/prod/flux-system/gotk-sync.yaml", SYNC),
            ("clusters/prod/apps.yaml", APPS),
            ("apps/prod/deploy.yaml", "kind: Deployment\n"),
        ];
        let (ds, _) = run(&tree(&files));
        let reason = skipped(one(&ds, "flux-system/apps"));
        assert!(reason.contains("ConfigMap flux-system/cluster-vars is not in the repository"), "{reason}");
        let only_optional = APPS
            .replace("      - kind: ConfigMap\n        name: cluster-vars\n", "")
            .replace("      - kind: Secret\n        name: cluster-secrets\n", "");
        let files =
            vec![("clusters/prod/apps.yaml", only_optional.as_str()), ("apps/prod/deploy.yaml", "kind: Deployment\n")];
        let (ds, _) = run(&tree(&files));
        let vars = kustomize(one(&ds, "flux-system/apps")).substitute.clone().expect("substitution on");
        assert_eq!(vars.len(), 2);
    }

    #[test]
    fn decryption_skips_only_when_the_path_holds_encrypted_files() {
        let apps = APPS.replace("  prune: true\n", "  prune: true\n  decryption:\n    provider: sops\n");
        let mut files: Vec<(&str, &str)> = fleet();
        files[1].1 = &apps;
        let (ds, _) = run(&tree(&files));
        kustomize(one(&ds, "flux-system/apps"));
        files.push(("apps/prod/secret.yaml", "kind: Secret\ndata:\n  a: ENC[AES256_GCM,data:x]\nsops:\n  mac: x\n"));
        let (ds, _) = run(&tree(&files));
        let reason = skipped(one(&ds, "flux-system/apps"));
        assert!(reason.contains("SOPS-encrypted values cannot be decrypted offline") && reason.contains("secret.yaml"));
    }

    #[test]
    fn malformed_kustomizations_are_problems_at_their_line() {
        let bad = "\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: a
spec:
  sourceRef:
    kind: GitRepository
    name: flux-system
  path:
    nested: true
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: b
spec:
  path: ./x
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: c
spec:
  sourceRef:
    kind: GitRepository
    name: flux-system
    namespace: flux-system
  path: ./does/not/exist
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: d
spec: [1, 2]
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: e
spec:
  sourceRef:
    kind: GitRepository
    name: flux-system
    namespace: flux-system
  path: ../../etc
";
        let (ds, problems) = run(&tree(&[("flux/bad.yaml", bad)]));
        let lines: Vec<(u32, &str)> = problems.iter().map(|p| (p.pos.line, p.message.as_str())).collect();
        assert_eq!(problems.len(), 3, "{lines:?}");
        assert!(problems.iter().all(|p| p.file == "flux/bad.yaml"));
        assert!(lines[0].0 == 9 && lines[0].1.contains("spec.path"), "{lines:?}");
        assert!(lines[1].0 == 13 && lines[1].1.contains("no spec.sourceRef"), "{lines:?}");
        assert!(lines[2].0 == 31 && lines[2].1.contains("no spec mapping"), "{lines:?}");
        // Only guessed to be this repository (no URL known): a missing path is said, not failed.
        assert!(ds.iter().any(
            |d| matches!(&d.sources[..], [Source::Skipped { reason, .. }] if reason.contains("not in the checked tree"))
        ));
        // Known by its URL: the missing path fails, as Flux fails it.
        let known = Settings {
            repositories: std::collections::BTreeSet::from(["github.com/acme/deploy".to_string()]),
            ..Settings::default()
        };
        let source = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  url: https://github.com/acme/deploy\n";
        let (_, problems) = declared(&tree(&[("flux/bad.yaml", bad), ("flux/source.yaml", source)]), &known);
        assert!(problems.iter().any(|p| p.pos.line == 28 && p.message.contains("not a directory")), "{problems:?}");
        assert!(skipped(one(&ds, "default/e")).contains("climbs out of the repository"));
    }

    #[test]
    fn a_tree_below_the_repository_root_maps_paths_and_skips_what_is_outside() {
        let apps = APPS.replace("./apps/prod", "./deploy/apps/prod");
        let mut t =
            tree(&[("apps.yaml", apps.as_str()), ("apps/prod/d.yaml", "kind: Deployment\n"), ("vars.yaml", VARS)]);
        t.prefix = "deploy".into();
        let (ds, problems) = run(&t);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(kustomize(one(&ds, "flux-system/apps")).path, "apps/prod");
        let outside = APPS.replace("./apps/prod", "./other/prod");
        t.texts.insert("apps.yaml".into(), outside);
        let (ds, _) = run(&t);
        assert!(skipped(one(&ds, "flux-system/apps")).contains("outside the checked directory `deploy`"));
    }

    const RELEASE: &str = "\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: shop
spec:
  interval: 10m
  chart:
    spec:
      chart: ./charts/web
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
      valuesFiles:
        - ./charts/web/values-prod.yaml
  valuesFrom:
    - kind: ConfigMap
      name: web-values
    - kind: ConfigMap
      name: web-generated
      valuesKey: prod.yaml
    - kind: Secret
      name: web-secret
      valuesKey: values.yaml
    - kind: Secret
      name: web-secret
      valuesKey: password
      targetPath: auth.password
    - kind: ConfigMap
      name: not-here
      optional: true
  values:
    # inline values win over valuesFrom
    replicaCount: 2
    image:
      tag: \"1.0\"
  postRenderers:
    - kustomize:
        patches:
          - target:
              kind: Deployment
            patch: |
              - op: add
                path: /metadata/labels/team
                value: shop
";

    const VALUES_CM: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-values
  namespace: shop
data:
  values.yaml: |
    ingress:
      enabled: true
    resources: {}
";

    fn release_files() -> Vec<(&'static str, &'static str)> {
        vec![
            ("clusters/prod/flux-system/gotk-sync.yaml", SYNC),
            ("apps/web/release.yaml", RELEASE),
            ("apps/web/values-cm.yaml", VALUES_CM),
            (
                "apps/web/kustomization.yaml",
                "resources:\n  - release.yaml\nconfigMapGenerator:\n  - name: web-generated\n    files:\n      \
                 - prod.yaml=values/prod.yaml\n",
            ),
            ("apps/web/values/prod.yaml", "# prod\nresources:\n  limits:\n    memory: 1Gi\n"),
            (
                "apps/web/secret.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web-secret\ndata:\n  values.yaml: ZGI6IHtob3N0OiBkYn0K\n  \
                 password: aHVudGVyMg==\n",
            ),
            ("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n"),
            ("charts/web/values-prod.yaml", "replicaCount: 1\n"),
        ]
    }

    #[test]
    fn a_helm_release_of_a_local_chart_with_every_values_source() {
        let (ds, problems) = run(&tree(&release_files()));
        assert!(problems.is_empty(), "{problems:?}");
        let d = one(&ds, "shop/web");
        assert_eq!(d.namespace.as_deref(), Some("shop"));
        let h = helm(d);
        assert_eq!(h.chart, Chart::Local { dir: "charts/web".into() });
        assert_eq!(h.release, "web");
        assert_eq!(h.at, At::new("apps/web/release.yaml", 8, 3));
        let files: Vec<&str> = h.values.iter().map(|v| v.file.as_str()).collect();
        // valuesFiles, then valuesFrom in order, then inline values.
        assert_eq!(
            files,
            [
                "charts/web/values-prod.yaml",
                "apps/web/values-cm.yaml",
                "apps/web/values/prod.yaml",
                "apps/web/secret.yaml",
                "apps/web/release.yaml"
            ]
        );
        // The literal ConfigMap's block: aligned to the ConfigMap file.
        let cm = &h.values[1];
        assert!(cm.aligned);
        assert_eq!(line_of(&cm.text, "ingress:"), line_of(VALUES_CM, "ingress:"));
        assert_eq!(cm.text.lines().count(), VALUES_CM.lines().count());
        let parsed = crate::yaml::parse_single(&cm.text).ok().flatten().expect("parses");
        assert_eq!(parsed.get_path(&["ingress", "enabled"]).and_then(Node::as_bool), Some(true));
        // The generated ConfigMap: its file, as it is.
        let generated = &h.values[2];
        assert!(generated.aligned);
        assert!(generated.text.starts_with("# prod\n"));
        // The Secret's base64 data: decoded, not aligned.
        let secret = &h.values[3];
        assert!(!secret.aligned);
        assert_eq!(secret.text, "db: {host: db}\n");
        assert_eq!(secret.at, At::new("apps/web/secret.yaml", 6, 3));
        // Inline values: the file with everything but the values blanked, keys at their own lines.
        let inline = &h.values[4];
        assert!(inline.aligned);
        assert_eq!(line_of(&inline.text, "replicaCount"), line_of(RELEASE, "replicaCount"));
        assert_eq!(line_of(&inline.text, "tag:"), line_of(RELEASE, "tag:"));
        assert!(!inline.text.contains("kind:") && !inline.text.contains("postRenderers"));
        let root = crate::yaml::parse_single(&inline.text).ok().flatten().expect("parses");
        let replicas = root.entry("replicaCount").expect("key");
        assert_eq!(replicas.key.pos, Pos { line: line_of(RELEASE, "replicaCount") as u32, col: 5 });
        assert_eq!(root.get_path(&["image", "tag"]).and_then(Node::as_str), Some("1.0"));
        // targetPath: a `--set`, applied over everything.
        assert_eq!(h.set.len(), 1);
        assert_eq!(
            (h.set[0].key.as_str(), h.set[0].value.as_str(), h.set[0].string),
            ("auth.password", "hunter2", false)
        );
        assert_eq!(h.post_render.len(), 1);
        let patch = crate::yaml::parse_single(&h.post_render[0].yaml).ok().flatten().expect("patch parses");
        assert_eq!(patch.get_path(&["target", "kind"]).and_then(Node::as_text), Some("Deployment"));
        let inputs: Vec<&str> = d.inputs.iter().map(String::as_str).collect();
        assert_eq!(
            inputs,
            [
                "apps/web/kustomization.yaml",
                "apps/web/release.yaml",
                "apps/web/secret.yaml",
                "apps/web/values-cm.yaml",
                "apps/web/values/prod.yaml",
                "charts/web/values-prod.yaml",
                "clusters/prod/flux-system/gotk-sync.yaml"
            ]
        );
    }

    #[test]
    fn references_resolve_to_the_nearest_object_and_patch_files_are_not_objects() {
        let staging_vars = VARS.replace("from-configmap", "staging").replace("example.com", "staging.example.com");
        let files: Vec<(&str, &str)> = vec![
            ("clusters/prod/apps.yaml", APPS),
            ("clusters/prod/vars.yaml", VARS),
            ("clusters/staging/apps.yaml", APPS),
            ("clusters/staging/vars.yaml", &staging_vars),
            ("apps/prod/deploy.yaml", "kind: Deployment\n"),
            ("apps/prod/kustomization.yaml", "resources: [deploy.yaml]\npatches:\n  - path: release-patch.yaml\n"),
            (
                "apps/prod/release-patch.yaml",
                "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\nspec:\n  chart:\n    \
                 spec:\n      version: 2.0.0\n",
            ),
        ];
        let (ds, problems) = run(&tree(&files));
        assert!(problems.is_empty(), "{problems:?}");
        let domains: Vec<(&str, &str)> = ds
            .iter()
            .map(|d| {
                let vars = kustomize(d).substitute.as_ref().expect("vars");
                (d.at.file.as_str(), vars.get("domain").map(String::as_str).unwrap_or(""))
            })
            .collect();
        assert_eq!(
            domains,
            [("clusters/prod/apps.yaml", "example.com"), ("clusters/staging/apps.yaml", "staging.example.com")]
        );
    }

    #[test]
    fn a_required_values_from_that_is_missing_skips_the_release() {
        let mut files = release_files();
        files.retain(|(p, _)| *p != "apps/web/values-cm.yaml");
        let (ds, _) = run(&tree(&files));
        let d = one(&ds, "shop/web");
        assert!(skipped(d).contains("ConfigMap shop/web-values is not in the repository"));
        let missing_key = RELEASE.replace("valuesKey: prod.yaml", "valuesKey: nope.yaml");
        let mut files: Vec<(&str, &str)> = release_files();
        files[1].1 = &missing_key;
        let (ds, _) = run(&tree(&files));
        assert!(skipped(one(&ds, "shop/web")).contains("has no key `nope.yaml`"));
    }

    fn repo_release(chart: &str, extra: &str) -> String {
        format!(
            "{extra}---\napiVersion: helm.toolkit.fluxcd.io/v2beta2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n  \
             namespace: apps\nspec:\n  targetNamespace: prod\n{chart}"
        )
    }

    #[test]
    fn a_helm_release_from_helm_repositories_and_oci_registries() {
        let https = "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: podinfo\n  \
                     namespace: apps\nspec:\n  url: https://stefanprodan.github.io/podinfo/\n";
        let chart = "  chart:\n    spec:\n      chart: podinfo\n      version: '6.5.*'\n      sourceRef:\n        kind: \
                     HelmRepository\n        name: podinfo\n";
        let (ds, problems) = run(&tree(&[("r.yaml", &repo_release(chart, https))]));
        assert!(problems.is_empty(), "{problems:?}");
        let d = one(&ds, "apps/podinfo");
        assert_eq!(d.namespace.as_deref(), Some("prod"));
        let h = helm(d);
        assert_eq!(h.release, "prod-podinfo");
        assert_eq!(
            h.chart,
            Chart::Remote(RemoteChart {
                repository: "https://stefanprodan.github.io/podinfo".into(),
                name: "podinfo".into(),
                version: Some("6.5.*".into())
            })
        );
        let oci = https.replace(
            "url: https://stefanprodan.github.io/podinfo/",
            "type: oci\n  url: oci://ghcr.io/stefanprodan/charts",
        );
        let (ds, _) = run(&tree(&[("r.yaml", &repo_release(chart, &oci))]));
        let Chart::Remote(r) = &helm(one(&ds, "apps/podinfo")).chart else { panic!("remote") };
        assert_eq!((r.repository.as_str(), r.name.as_str()), ("oci://ghcr.io/stefanprodan/charts", "podinfo"));
        // chartRef to an OCIRepository: the chart is the URL's last segment, the version its semver.
        let repo = "---\napiVersion: source.toolkit.fluxcd.io/v1beta2\nkind: OCIRepository\nmetadata:\n  name: podinfo\n  \
                    namespace: apps\nspec:\n  url: oci://ghcr.io/stefanprodan/charts/podinfo\n  ref:\n    semver: '>= 6.0.0'\n";
        let chart_ref = "  chartRef:\n    kind: OCIRepository\n    name: podinfo\n";
        let (ds, _) = run(&tree(&[("r.yaml", &repo_release(chart_ref, repo))]));
        let d = one(&ds, "apps/podinfo");
        assert_eq!(
            helm(d).chart,
            Chart::Remote(RemoteChart {
                repository: "oci://ghcr.io/stefanprodan/charts".into(),
                name: "podinfo".into(),
                version: Some(">= 6.0.0".into())
            })
        );
        assert!(d.inputs.contains("r.yaml"));
        // The OCIRepository template form of spec.chart, with a tag.
        let template = "  chart:\n    kind: OCIRepository\n    spec:\n      url: oci://ghcr.io/org/charts/app\n      \
                        ref:\n        tag: 1.2.3\n";
        let (ds, _) = run(&tree(&[("r.yaml", &repo_release(template, ""))]));
        let Chart::Remote(r) = &helm(one(&ds, "apps/podinfo")).chart else { panic!("remote") };
        assert_eq!(
            (r.repository.as_str(), r.name.as_str(), r.version.as_deref()),
            ("oci://ghcr.io/org/charts", "app", Some("1.2.3"))
        );
        // A digest-pinned chart is skipped.
        let pinned = repo.replace("semver: '>= 6.0.0'", "digest: sha256:abc");
        let (ds, _) = run(&tree(&[("r.yaml", &repo_release(chart_ref, &pinned))]));
        assert!(skipped(one(&ds, "apps/podinfo")).contains("pinned by digest"));
    }

    #[test]
    fn a_chart_ref_to_a_helm_chart_resolves_its_source() {
        let objs = "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmChart\nmetadata:\n  name: podinfo\n  \
                    namespace: apps\nspec:\n  chart: podinfo\n  version: 6.0.0\n  sourceRef:\n    kind: HelmRepository\n    \
                    name: charts\n---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: \
                    charts\n  namespace: apps\nspec:\n  url: https://charts.example.com\n";
        let chart_ref = "  chartRef:\n    kind: HelmChart\n    name: podinfo\n";
        let (ds, problems) = run(&tree(&[("r.yaml", &repo_release(chart_ref, objs))]));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            helm(one(&ds, "apps/podinfo")).chart,
            Chart::Remote(RemoteChart {
                repository: "https://charts.example.com".into(),
                name: "podinfo".into(),
                version: Some("6.0.0".into())
            })
        );
        let (ds, _) = run(&tree(&[("r.yaml", &repo_release(chart_ref, ""))]));
        assert!(skipped(one(&ds, "apps/podinfo")).contains("HelmChart apps/podinfo is not in the repository"));
    }

    #[test]
    fn helm_release_problems_and_hostile_chart_paths() {
        let (ds, problems) = run(&tree(&[("r.yaml", &repo_release("  values: {}\n", ""))]));
        assert!(ds.is_empty());
        assert!(problems[0].message.contains("neither spec.chart nor spec.chartRef"), "{problems:?}");
        let escaping = "  chart:\n    spec:\n      chart: ../../etc\n      sourceRef:\n        kind: GitRepository\n        \
                        name: flux-system\n        namespace: flux-system\n";
        let (ds, _) = run(&tree(&[("r.yaml", &repo_release(escaping, ""))]));
        assert!(skipped(one(&ds, "apps/podinfo")).contains("climbs out of the repository"));
        let no_chart = escaping.replace("../../etc", "./charts/none");
        let (ds, _) = run(&tree(&[("r.yaml", &repo_release(&no_chart, ""))]));
        assert!(skipped(one(&ds, "apps/podinfo")).contains("has no Chart.yaml"));
        let bucket = escaping.replace("GitRepository", "Bucket");
        let (ds, _) = run(&tree(&[("r.yaml", &repo_release(&bucket, ""))]));
        assert!(skipped(one(&ds, "apps/podinfo")).contains("Bucket flux-system/flux-system"));
    }

    #[test]
    fn release_names_follow_the_documented_composition_and_shortening() {
        assert_eq!(release_name(None, "web"), "web");
        assert_eq!(release_name(Some("prod"), "web"), "prod-web");
        // The name of the documentation's example. Its shortened form there keeps 42 characters, not the
        // 40 the same note (and helm-controller's code) says, so the result is 53 characters long.
        let long = release_name(Some("a-very-lengthy-target-namespace"), "with-a-nice-object-name");
        assert_eq!(long, "a-very-lengthy-target-namespace-with-a-n-97af5d7f41f3");
        assert_eq!(long.len(), 53);
    }

    #[test]
    fn flow_style_patches_fall_back_to_json() {
        let node =
            crate::yaml::parse_single("patches: [{patch: 'a: 1', target: {kind: X}}]\n").ok().flatten().expect("p");
        let item = &node.get("patches").expect("patches").items()[0];
        let yaml = standalone("patches: [{patch: 'a: 1', target: {kind: X}}]\n", item);
        let parsed = crate::yaml::parse_single(&yaml).ok().flatten().expect("parses");
        assert_eq!(parsed.get_path(&["target", "kind"]).and_then(Node::as_text), Some("X"));
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn substitution_follows_the_documented_forms() {
        let v = vars(&[("env", "prod"), ("empty", ""), ("name", "my-App.v1"), ("path", "a/b/c.tar.gz")]);
        let s = |t: &str| substitute(t, &v).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(s("a: ${env}\n"), "a: prod\n");
        assert_eq!(s("a: ${missing}\n"), "a: \n");
        assert_eq!(s("${missing:=dev} ${env:=dev} ${empty:=dev}"), "dev prod dev");
        assert_eq!(s("${missing:-dev} ${empty:-dev}"), "dev dev");
        // Without the colon only an unset variable takes the default.
        assert_eq!(s("${missing=dev}|${empty=dev}|${missing-x}|${empty-x}"), "dev||x|");
        assert_eq!(s("$${env} $$HOME $env ${env}$"), "${env} $HOME $env prod$");
        assert_eq!(s("${#env} ${name^} ${name^^} ${name,} ${name,,}"), "4 My-App.v1 MY-APP.V1 my-App.v1 my-app.v1");
        assert_eq!(s("${name:3} ${name:3:3} ${name:-2} ${name: -2} ${name:1:-1}"), "App.v1 App my-App.v1 v1 y-App.v");
        assert_eq!(
            s("${name/-/_} ${path//\\//_} ${name/#my/our} ${name/%v1/v2}"),
            "my_App.v1 a_b_c.tar.gz our-App.v1 my-App.v2"
        );
        // Patterns match as Go's path.Match does (Flux's envsubst): `*` stops at `/`, unlike bash.
        assert_eq!(s("${path#*/} ${path##*/} ${path%.*} ${path%%.*}"), "b/c.tar.gz b/c.tar.gz a/b/c.tar a/b/c");
        assert_eq!(s("${name##*.} ${path##*.} ${path#a/[a-c]/} ${path%.t?r.gz}"), "v1 a/b/c.tar.gz c.tar.gz a/b/c");
        assert_eq!(s("${missing:=${env}-x}"), "prod-x");
        assert_eq!(s("id: ${q}${env}${q}"), "id: prod");
    }

    #[test]
    fn substitution_is_per_document_and_honours_the_disabled_opt_out() {
        let v = vars(&[("x", "1")]);
        let text = "a: ${x}\n---\nmetadata:\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\nb: ${x}\n\
                    ---\nmetadata:\n  labels:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\nc: $${x}\n---\nd: ${x}\n";
        let out = substitute(text, &v).expect("ok");
        assert_eq!(
            out,
            "a: 1\n---\nmetadata:\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\nb: ${x}\n\
             ---\nmetadata:\n  labels:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\nc: $${x}\n---\nd: 1\n"
        );
    }

    #[test]
    fn malformed_variables_and_expressions_are_errors_that_name_them() {
        let err = substitute("a: 1", &vars(&[("bad-name", "x")])).expect_err("invalid name");
        assert!(err.contains("`bad-name`"), "{err}");
        let err = substitute("a: 1", &vars(&[("1st", "x")])).expect_err("invalid name");
        assert!(err.contains("`1st`"), "{err}");
        let err = substitute("a: ${x\n", &vars(&[])).expect_err("open");
        assert!(err.contains("${x") && err.contains("missing closing brace"), "{err}");
        let err = substitute("a: ${}\n", &vars(&[])).expect_err("empty");
        assert!(err.contains("variable name"), "{err}");
        let err = substitute("a: ${x:+y}\n", &vars(&[])).expect_err("unsupported");
        assert!(err.contains("not supported"), "{err}");
        let deep = format!("{}{}", "${a:=".repeat(200), "}".repeat(200));
        assert!(substitute(&deep, &vars(&[])).is_err());
    }
}
