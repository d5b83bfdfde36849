//! The unchanged manifests beside a change, read for the cross-object rules of a review: the facts of their
//! objects (no rule runs on them, nothing is rendered), kept per git blob between reviews.
//!
//! A review checks only what the change affects, but an autoscaler the change adds relates to the unchanged
//! Deployment beside it, and a new app to the unchanged apps in its namespace. Each side's other manifests are
//! therefore read as [`ContextFile`]s: parsed once per blob (and path), then served from a process-wide cache,
//! so the App reviewing push after push of a repository parses an untouched file once.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use super::discovery::Side;
use crate::engine::{ContextFile, ContextSource, MAX_FILE_BYTES, Relevant};
use crate::loader::{self, InputKind};

/// Most weight the cache holds: roughly the bytes of the facts kept.
const CACHE_WEIGHT: u64 = 64 << 20;
/// Files the cache expects to hold, for its sizing.
const CACHE_ITEMS: usize = 20_000;

/// Approximate bytes of a context file's facts.
#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<(git2::Oid, String), Arc<ContextFile>> for Weight {
    fn weight(&self, key: &(git2::Oid, String), value: &Arc<ContextFile>) -> u64 {
        (key.1.len() + 64 + value.facts.len() * 512 + value.comments.len() * 64) as u64
    }
}

type Cache = quick_cache::sync::Cache<(git2::Oid, String), Arc<ContextFile>, Weight>;

static CACHE: LazyLock<Cache> = LazyLock::new(|| Cache::with_weighter(CACHE_ITEMS, CACHE_WEIGHT, Weight));

/// Is this a file whose objects can relate to others (a YAML or JSON manifest)?
pub fn is_manifest(path: &str) -> bool {
    matches!(loader::classify(Path::new(path)), Some(InputKind::Yaml | InputKind::Json))
}

/// The manifests of one side of a review that may be context, with what earlier checks learnt of their texts,
/// so that a check's context is found from its namespaces without reading every file of the repository again:
/// which files relate to objects of any namespace, and which mention each namespace asked about so far.
pub struct Manifests {
    /// Repository path and blob id, sorted by path.
    files: Vec<(String, git2::Oid)>,
    /// Files any check may relate to: no `namespace` in their text (an object whose namespace is set where it
    /// is applied), or a CustomResourceDefinition (cluster-wide). Found on first use.
    unscoped: OnceLock<Vec<u32>>,
    /// For each namespace asked about, the files whose text mentions it (up to [`NAMESPACES_KEPT`] namespaces,
    /// and [`Manifests::most_kept`] files in all).
    mentioning: Mutex<HashMap<String, Arc<[u32]>>>,
}

/// Most namespaces whose files a side's [`Manifests`] keeps.
const NAMESPACES_KEPT: usize = 1024;

impl Manifests {
    /// The manifests `files` (path and blob id, sorted); nothing is read until a check asks.
    pub fn new(files: Vec<(String, git2::Oid)>) -> Manifests {
        Manifests { files, unscoped: OnceLock::new(), mentioning: Mutex::default() }
    }

    /// The manifests `files`, with what `earlier` (another side's, of the same repository) learnt of the files
    /// both have, same path and same blob: only the others are read.
    pub fn beside(repo: &git2::Repository, files: Vec<(String, git2::Oid)>, earlier: &Manifests) -> Manifests {
        let manifests = Manifests::new(files);
        // Where each of the earlier files is here, if it is; and the files that are new here.
        let mut here: Vec<Option<u32>> = vec![None; earlier.files.len()];
        let mut fresh: Vec<u32> = Vec::new();
        let mut i = 0;
        for (j, (path, id)) in manifests.files.iter().enumerate() {
            while earlier.files.get(i).is_some_and(|(p, _)| p < path) {
                i += 1;
            }
            match earlier.files.get(i) {
                Some((p, e)) if p == path && e == id => here[i] = Some(j as u32),
                _ => fresh.push(j as u32),
            }
        }
        let carry = |known: &[u32], test: &dyn Fn(&str) -> bool| -> Vec<u32> {
            let mut out: Vec<u32> = known.iter().filter_map(|e| here.get(*e as usize).copied().flatten()).collect();
            out.extend(fresh.iter().copied().filter(|f| manifests.passes(repo, *f, test)));
            out.sort_unstable();
            out
        };
        if let Some(unscoped) = earlier.unscoped.get() {
            let _ = manifests.unscoped.set(carry(unscoped, &|t| Relevant::default().may_relate(t)));
        }
        let known = earlier.mentioning.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let learnt: HashMap<String, Arc<[u32]>> =
            known.iter().map(|(ns, files)| (ns.clone(), carry(files, &|t| t.contains(ns.as_str())).into())).collect();
        *manifests.mentioning.lock().unwrap_or_else(|p| p.into_inner()) = learnt;
        manifests
    }

    /// Most file indexes the namespace lists hold in all: a few per file, so what a side keeps stays in
    /// proportion to its files whatever its texts mention.
    fn most_kept(&self) -> usize {
        (self.files.len() * 4).max(1 << 16)
    }

    /// Does file `index`'s text pass `test`? A file over the size limit, or that cannot be read, passes none.
    fn passes(&self, repo: &git2::Repository, index: u32, test: &dyn Fn(&str) -> bool) -> bool {
        let id = self.files[index as usize].1;
        super::known::blob(repo, id).is_some_and(|t| t.len() as u64 <= MAX_FILE_BYTES && test(&t))
    }

    /// The indexes of the files whose text passes `test`.
    fn scan(&self, repo: &git2::Repository, test: impl Fn(&str) -> bool) -> Vec<u32> {
        (0..self.files.len() as u32).filter(|i| self.passes(repo, *i, &test)).collect()
    }

    /// The files that may relate to a check's objects ([`Relevant::may_relate`] of their texts): those that
    /// name no namespace or define a resource, and those that mention one of the check's namespaces. Every
    /// file, when some checked object's namespace is unknown.
    fn candidates(&self, repo: &git2::Repository, relevant: &Relevant) -> Vec<u32> {
        if relevant.any {
            return (0..self.files.len() as u32).collect();
        }
        let mut out = self.unscoped.get_or_init(|| self.scan(repo, |t| Relevant::default().may_relate(t))).clone();
        for ns in &relevant.namespaces {
            let known = self.mentioning.lock().unwrap_or_else(|p| p.into_inner()).get(ns).cloned();
            let files = match known {
                Some(files) => files,
                None => {
                    let files: Arc<[u32]> = self.scan(repo, |t| t.contains(ns.as_str())).into();
                    let mut kept = self.mentioning.lock().unwrap_or_else(|p| p.into_inner());
                    let held: usize = kept.values().map(|f| f.len()).sum();
                    if kept.len() < NAMESPACES_KEPT && held + files.len() <= self.most_kept() {
                        kept.insert(ns.clone(), files.clone());
                    }
                    files
                }
            };
            out.extend(files.iter());
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// One file's context, parsed once per blob and path and then kept.
fn parsed(path: &str, id: git2::Oid, text: impl FnOnce() -> Option<Arc<str>>) -> Option<Arc<ContextFile>> {
    let key = (id, path.to_string());
    if let Some(hit) = CACHE.get(&key) {
        return Some(hit);
    }
    let context = Arc::new(ContextFile::read(path, &text()?));
    CACHE.insert(key, context.clone());
    Some(context)
}

/// The context of one side of a review, read from the repository at `git_dir` when the check asks: the side's
/// manifests no unit reads, except `exclude` (the files the check itself reads). What the `earlier` side's
/// context learnt of the files both sides share is not learnt again. A file is parsed only when its
/// text may relate to the checked objects ([`Relevant::may_relate`]), and kept by blob; files over the size
/// limit, or that cannot be read, bring nothing.
pub fn from_git(
    git_dir: PathBuf,
    side: Arc<Side>,
    earlier: Option<Arc<Side>>,
    exclude: BTreeSet<String>,
) -> ContextSource {
    Arc::new(move |relevant: &Relevant| {
        let Ok(repo) = git2::Repository::open_bare(&git_dir) else { return Vec::new() };
        let (manifests, changed) = side.context(&repo, earlier.as_deref());
        let read = |id: git2::Oid| {
            super::known::blob(&repo, id).filter(|t| t.len() as u64 <= MAX_FILE_BYTES && relevant.may_relate(t))
        };
        let mut out: Vec<Arc<ContextFile>> = manifests
            .candidates(&repo, relevant)
            .into_iter()
            .filter_map(|i| manifests.files.get(i as usize))
            .filter(|(path, _)| !exclude.contains(path) && !changed.contains_key(path))
            .filter_map(|(path, id)| parsed(path, *id, || read(*id)))
            .collect();
        // Files changed since the indexed tree, as they are on this side.
        for (path, id) in changed.iter() {
            let indexed = manifests.files.binary_search_by(|(f, _)| f.cmp(path)).is_ok();
            if indexed && !exclude.contains(path) {
                out.extend(parsed(path, *id, || read(*id)));
            }
        }
        out
    })
}

/// The context of `files` (paths under `root`), read from disk (`--base-dir`/`--head-dir`) when the check asks;
/// links are not followed out of `root`.
pub fn from_dir(root: PathBuf, files: Vec<String>) -> ContextSource {
    Arc::new(move |relevant: &Relevant| {
        let Ok(inside) = std::fs::canonicalize(&root) else { return Vec::new() };
        files
            .iter()
            .filter_map(|path| {
                let real = std::fs::canonicalize(root.join(path)).ok()?;
                if !real.starts_with(&inside) {
                    return None;
                }
                let bytes =
                    loader::read_bounded(&real, MAX_FILE_BYTES).ok().filter(|b| b.len() as u64 <= MAX_FILE_BYTES)?;
                let text = String::from_utf8_lossy(&bytes);
                relevant.may_relate(&text).then(|| Arc::new(ContextFile::read(path, &text)))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relevant(namespaces: &[&str]) -> Relevant {
        Relevant { namespaces: namespaces.iter().map(|n| n.to_string()).collect(), any: false }
    }

    #[test]
    fn manifests_made_beside_another_sides_find_what_fresh_ones_find() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = git2::Repository::init_bare(dir.path()).expect("repo");
        let blob = |text: &str| repo.blob(text.as_bytes()).expect("blob");
        let cm = |name: &str, ns: &str| format!("kind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n");
        let shared = [
            ("a/cm.yaml", blob(&cm("a", "shop"))),
            ("b/cm.yaml", blob(&cm("b", "blue"))),
            ("c/crd.yaml", blob("kind: CustomResourceDefinition\nmetadata: {name: x, namespace: y}\n")),
            ("d/plain.yaml", blob("kind: ConfigMap\nmetadata: {name: d}\n")),
        ];
        let earlier_files: Vec<(String, git2::Oid)> = shared
            .iter()
            .map(|(p, id)| (p.to_string(), *id))
            .chain([("e/gone.yaml".to_string(), blob(&cm("e", "shop")))])
            .collect();
        let earlier = Manifests::new(earlier_files);
        for ns in [&["shop"][..], &["blue", "green"]] {
            earlier.candidates(&repo, &relevant(ns));
        }
        // Here: one file changed namespace, one is new, one is gone.
        let mut files: Vec<(String, git2::Oid)> = shared.iter().map(|(p, id)| (p.to_string(), *id)).collect();
        files[1].1 = blob(&cm("b", "shop"));
        files.push(("f/new.yaml".to_string(), blob(&cm("f", "green"))));
        let beside = Manifests::beside(&repo, files.clone(), &earlier);
        let fresh = Manifests::new(files);
        for ns in [&["shop"][..], &["blue"], &["green"], &["blue", "green"], &["other"]] {
            let (ours, theirs) = (beside.candidates(&repo, &relevant(ns)), fresh.candidates(&repo, &relevant(ns)));
            assert_eq!(ours, theirs, "{ns:?}");
        }
        assert_eq!(
            fresh.candidates(&repo, &relevant(&["shop"])),
            [0, 1, 2, 3],
            "a, b (moved to shop), the CRD, the plain one"
        );
    }
}
