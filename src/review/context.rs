//! The unchanged manifests beside a change, read for the cross-object rules of a review: the facts of their
//! objects (no rule runs on them, nothing is rendered), kept per git blob between reviews.
//!
//! A review checks only what the change affects, but an autoscaler the change adds relates to the unchanged
//! Deployment beside it, and a new app to the unchanged apps in its namespace. Each side's other manifests are
//! therefore read as [`ContextFile`]s: parsed once per blob (and path), then served from a process-wide cache,
//! so the App reviewing push after push of a repository parses an untouched file once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use super::run::BlobTexts;
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

/// The context of `files` (repository paths, with their blob ids) at one commit, read from the repository at
/// `git_dir` when the check asks (texts the review's discovery read are not read again: `texts`): a file is parsed only when its text may relate to the checked objects
/// ([`Relevant::may_relate`]), and kept by blob; files over the size limit, or that cannot be read, bring nothing.
pub fn from_git(git_dir: PathBuf, files: Vec<(String, git2::Oid)>, texts: Arc<BlobTexts>) -> ContextSource {
    Arc::new(move |relevant: &Relevant| {
        let Ok(repo) = git2::Repository::open_bare(&git_dir) else { return Vec::new() };
        files
            .iter()
            .filter_map(|(path, id)| {
                let key = (*id, path.clone());
                if let Some(hit) = CACHE.get(&key) {
                    return Some(hit);
                }
                let text = texts.read(&repo, *id).filter(|t| t.len() as u64 <= MAX_FILE_BYTES)?;
                if !relevant.may_relate(&text) {
                    return None;
                }
                let context = Arc::new(ContextFile::read(path, &text));
                CACHE.insert(key, context.clone());
                Some(context)
            })
            .collect()
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
