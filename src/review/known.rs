//! What reviews have read from git, kept by object id for the life of the process: each tree's entries and
//! each blob's text. A git id names its content, so a subtree or file that several reviews share (the untouched
//! part of a repository, push after push of a pull request in `kpath serve`) is read and inflated once, and a
//! review's cost follows what its change touched rather than the size of the repository.
//!
//! Both caches are bounded by weight (roughly the bytes they keep) and evict what was least used. Only what
//! an id fully determines is kept: a tree's entries and a blob's text, never "missing" or "unreadable", which
//! depend on the repository asked.

use std::sync::{Arc, LazyLock};

use git2::{ObjectType, Oid, Repository};

/// What one entry of a tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tree,
    Blob,
    /// A symbolic link (a blob whose text is the link's target).
    Link,
}

/// A tree's entries kpath uses (regular files, links, subtrees; not submodules, nor names refused by
/// `accept`), in the tree's order.
pub type Entries = Arc<[(Box<str>, Kind, Oid)]>;

/// Most bytes of tree entries kept.
const TREE_WEIGHT: u64 = 32 << 20;
/// Most bytes of blob text kept.
const TEXT_WEIGHT: u64 = 64 << 20;
/// Roughly what a cache entry costs beyond its bytes.
const OVERHEAD: u64 = 64;

#[derive(Clone)]
struct TreeWeight;

impl quick_cache::Weighter<Oid, Entries> for TreeWeight {
    fn weight(&self, _: &Oid, entries: &Entries) -> u64 {
        OVERHEAD + entries.iter().map(|(name, _, _)| name.len() as u64 + 40).sum::<u64>()
    }
}

#[derive(Clone)]
struct TextWeight;

impl quick_cache::Weighter<Oid, Arc<str>> for TextWeight {
    fn weight(&self, _: &Oid, text: &Arc<str>) -> u64 {
        OVERHEAD + text.len() as u64
    }
}

static TREES: LazyLock<quick_cache::sync::Cache<Oid, Entries, TreeWeight>> =
    LazyLock::new(|| quick_cache::sync::Cache::with_weighter(50_000, TREE_WEIGHT, TreeWeight));

static TEXTS: LazyLock<quick_cache::sync::Cache<Oid, Arc<str>, TextWeight>> =
    LazyLock::new(|| quick_cache::sync::Cache::with_weighter(50_000, TEXT_WEIGHT, TextWeight));

/// The entries of tree `id` whose names `accept` takes (the same function for every call: the entries are
/// kept by the tree's id alone).
pub fn tree(repo: &Repository, id: Oid, accept: fn(&str) -> bool) -> Result<Entries, git2::Error> {
    if let Some(entries) = TREES.get(&id) {
        return Ok(entries);
    }
    let tree = repo.find_tree(id)?;
    let entries: Entries = tree
        .iter()
        .filter_map(|entry| {
            let name = entry.name().ok().filter(|n| accept(n))?;
            let kind = match entry.kind() {
                Some(ObjectType::Tree) => Kind::Tree,
                Some(ObjectType::Blob) if entry.filemode() == i32::from(git2::FileMode::Link) => Kind::Link,
                Some(ObjectType::Blob) => Kind::Blob,
                _ => return None,
            };
            Some((Box::from(name), kind, entry.id()))
        })
        .collect();
    TREES.insert(id, entries.clone());
    Ok(entries)
}

/// The entry at `path` (`/`-separated, relative) under tree `root`, walking kept trees (see [`tree`]).
pub fn entry(
    repo: &Repository,
    root: Oid,
    path: &str,
    accept: fn(&str) -> bool,
) -> Result<Option<(Kind, Oid)>, git2::Error> {
    let mut at = (Kind::Tree, root);
    for part in path.split('/') {
        if at.0 != Kind::Tree {
            return Ok(None);
        }
        let entries = tree(repo, at.1, accept)?;
        let Some((_, kind, id)) = entries.iter().find(|(name, _, _)| &**name == part) else { return Ok(None) };
        at = (*kind, *id);
    }
    Ok(Some(at))
}

/// Blob `id`'s text (lossy UTF-8), read with `read` when it is not kept yet; `None` (never kept) when `read`
/// has none: too large, or missing from this repository.
pub fn text(id: Oid, read: impl FnOnce() -> Option<String>) -> Option<Arc<str>> {
    if let Some(text) = TEXTS.get(&id) {
        return Some(text);
    }
    let text: Arc<str> = Arc::from(read()?);
    TEXTS.insert(id, text.clone());
    Some(text)
}

/// A regular file's text by its blob id, up to [`super::git::MAX_BLOB_BYTES`], kept as [`text`] keeps it.
pub fn blob(repo: &Repository, id: Oid) -> Option<Arc<str>> {
    text(id, || super::git::read_blob(repo, id, super::git::MAX_BLOB_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept_all(_: &str) -> bool {
        true
    }

    #[test]
    fn a_tree_and_a_blob_are_read_once_and_then_served_by_id_whatever_the_repository() {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = Repository::init_bare(dir.path()).expect("repo");
        let blob = repo.blob(b"kind: ConfigMap\n").expect("blob");
        let mut builder = repo.treebuilder(None).expect("builder");
        builder.insert("cm.yaml", blob, 0o100644).expect("insert");
        builder.insert("link", repo.blob(b"cm.yaml").expect("blob"), 0o120000).expect("insert");
        let id = builder.write().expect("tree");

        let entries = tree(&repo, id, accept_all).expect("entries");
        assert_eq!(entry(&repo, id, "cm.yaml", accept_all).expect("entry"), Some((Kind::Blob, blob)));
        assert_eq!(entry(&repo, id, "cm.yaml/x", accept_all).expect("entry"), None);
        assert_eq!(entry(&repo, id, "absent", accept_all).expect("entry"), None);
        let kinds: Vec<(&str, Kind)> = entries.iter().map(|(n, k, _)| (&**n, *k)).collect();
        assert_eq!(kinds, [("cm.yaml", Kind::Blob), ("link", Kind::Link)]);
        // Another repository without the objects gets them by id alone.
        let other_dir = tempfile::tempdir().expect("temp dir");
        let other = Repository::init_bare(other_dir.path()).expect("repo");
        assert!(other.find_tree(id).is_err());
        assert_eq!(tree(&other, id, accept_all).expect("kept").len(), 2);

        let read = |repo: &Repository| repo.find_blob(blob).ok().map(|b| String::from_utf8_lossy(b.content()).into());
        assert_eq!(text(blob, || read(&repo)).as_deref(), Some("kind: ConfigMap\n"));
        assert_eq!(text(blob, || read(&other)).as_deref(), Some("kind: ConfigMap\n"));
        // What a repository cannot read is not remembered as missing.
        let absent = Oid::hash_object(ObjectType::Blob, b"elsewhere").expect("id");
        assert_eq!(text(absent, || None), None);
        assert_eq!(text(absent, || Some("found".into())).as_deref(), Some("found"));
    }
}
