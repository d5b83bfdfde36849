//! Each side of a review, discovered from git once per tree: its files with their blob ids, and its [`Layout`].
//! A side's discovery is a pure function of what the renderers ask of its tree (the file list, and the texts
//! they read), so it is kept by the tree's id, with the questions it asked. A head whose change leaves every
//! answer as it was (no file added or removed, no changed file read, or mentioning what a scan looked for) has
//! the base's layout; only its changed files' blob ids differ. Push after push of a pull request, only the
//! change is read: the untouched part of the repository costs what looking up its tree's id costs.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use git2::{Oid, Repository};

use super::context::Manifests;
use super::git::{self, GitError};
use super::run::Layout;
use crate::render::{Renderer, Tree};

/// Every file of a commit, sorted by path, with its blob id (`None`: a symlink) at the same index.
pub struct Blobs {
    paths: Vec<String>,
    ids: Vec<Option<Oid>>,
}

impl Blobs {
    fn of(list: Vec<(String, Option<Oid>)>) -> Blobs {
        let (paths, ids) = list.into_iter().unzip();
        Blobs { paths, ids }
    }

    fn index(&self, path: &str) -> Option<usize> {
        self.paths.binary_search_by(|f| f.as_str().cmp(path)).ok()
    }
}

/// One side of a review as discovery found it.
pub struct Side {
    /// The files of the tree discovery ran on.
    blobs: Arc<Blobs>,
    /// Files whose blob ids differ from `blobs` here (a side carried over from another): by path.
    changed: Arc<BTreeMap<String, Oid>>,
    pub layout: Arc<Layout>,
    /// What discovery asked of the tree.
    asked: Arc<Asked>,
    /// The manifests of `blobs` that may be context, listed on first use (shared by the sides carried over).
    manifests: Arc<OnceLock<Arc<Manifests>>>,
}

impl Side {
    /// The context of this side: every manifest no unit reads, as [`Manifests`] of the tree discovery ran on
    /// (shared by the sides carried over from it; made with what `earlier`'s learnt, when that side has its
    /// own), and the files whose ids differ here.
    pub fn context(&self, repo: &Repository, earlier: Option<&Side>) -> (Arc<Manifests>, Arc<BTreeMap<String, Oid>>) {
        let manifests = self.manifests.get_or_init(|| {
            let files = (self.blobs.paths.iter().zip(&self.blobs.ids))
                .filter(|(path, _)| self.layout.files.contains(*path) && super::context::is_manifest(path))
                .filter_map(|(path, id)| Some((path.clone(), (*id)?)))
                .collect();
            let earlier =
                earlier.filter(|e| !Arc::ptr_eq(&e.manifests, &self.manifests)).and_then(|e| e.manifests.get());
            Arc::new(match earlier {
                Some(earlier) => Manifests::beside(repo, files, earlier),
                None => Manifests::new(files),
            })
        });
        (manifests.clone(), self.changed.clone())
    }
}

/// What a side's discovery read of its tree's files, by index in its list of files: each file read whole,
/// and each file scanned for a text, with the text. Paths that are not files of the tree are not noted: a
/// change that adds a file is never carried over.
#[derive(Default)]
struct Asked {
    whole: Vec<u32>,
    scanned: Vec<(u32, &'static str)>,
    /// Discovery read a symbolic link, whose answer depends on another file: nothing is carried over.
    links: bool,
}

impl Asked {
    fn settle(mut self) -> Asked {
        self.whole.sort_unstable();
        self.whole.dedup();
        self.scanned.sort_unstable();
        self.scanned.dedup();
        self
    }

    fn read_whole(&self, index: u32) -> bool {
        self.whole.binary_search(&index).is_ok()
    }

    /// The texts file `index` was scanned for.
    fn scanned_for(&self, index: u32) -> impl Iterator<Item = &'static str> + '_ {
        let start = self.scanned.partition_point(|(i, _)| *i < index);
        self.scanned[start..].iter().take_while(move |(i, _)| *i == index).map(|(_, needle)| *needle)
    }
}

/// A side's files read from git, as a tree the renderers find units in; it notes what they ask, and keeps each
/// text it was asked for (the renderers look at many files more than once).
struct GitTree<'r> {
    repo: &'r Repository,
    commit: Oid,
    blobs: &'r Blobs,
    texts: Vec<OnceLock<Option<Arc<str>>>>,
    asked: Mutex<Asked>,
}

impl GitTree<'_> {
    fn index(&self, path: &str) -> Option<u32> {
        self.blobs.index(path).map(|i| i as u32)
    }

    fn text(&self, index: u32) -> Option<Arc<str>> {
        let (path, id) = (&self.blobs.paths[index as usize], self.blobs.ids[index as usize]);
        self.texts[index as usize]
            .get_or_init(|| match id {
                Some(id) => super::known::blob(self.repo, id),
                None => git::read_file(self.repo, self.commit, path).ok().flatten().map(Arc::from),
            })
            .clone()
    }

    fn asked(&self, index: u32, needle: Option<&'static str>) {
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        asked.links |= self.blobs.ids[index as usize].is_none();
        match needle {
            Some(needle) => asked.scanned.push((index, needle)),
            None => asked.whole.push(index),
        }
    }
}

impl Tree for GitTree<'_> {
    fn files(&self) -> &[String] {
        &self.blobs.paths
    }

    fn read(&self, path: &str, cap: u64) -> Option<String> {
        let index = self.index(path)?;
        self.asked(index, None);
        self.text(index).filter(|t| t.len() as u64 <= cap).map(|t| t.to_string())
    }

    fn read_mentioning(&self, path: &str, cap: u64, needle: &'static str) -> Option<String> {
        let index = self.index(path)?;
        self.asked(index, Some(needle));
        self.text(index).filter(|t| t.len() as u64 <= cap && t.contains(needle)).map(|t| t.to_string())
    }
}

/// Layouts kept by (tree id, what discovery was told of the run).
type Kept = quick_cache::sync::Cache<(Oid, String), Arc<Side>, Weight>;

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<(Oid, String), Arc<Side>> for Weight {
    fn weight(&self, _: &(Oid, String), side: &Arc<Side>) -> u64 {
        // A few hundred bytes per file listed: its path and id, the units' inputs, the questions asked and
        // which namespaces it mentions in the context lists.
        (side.blobs.paths.len() as u64 + side.changed.len() as u64 + 1) * 300
    }
}

static KEPT: LazyLock<Kept> = LazyLock::new(|| Kept::with_weighter(256, 128 << 20, Weight));

/// What a side's discovery is given besides its tree.
pub struct Run<'a> {
    pub renderers: &'a [Box<dyn Renderer>],
    pub gitops: &'a crate::gitops::Settings,
    /// The Helm binary asked for (ApplicationSets' Go templates are evaluated by it).
    pub helm: Option<&'a std::path::Path>,
}

impl Run<'_> {
    /// The key a side is kept by: its tree, and everything else discovery is given.
    fn key(&self, tree: Oid) -> (Oid, String) {
        let names: Vec<&str> = self.renderers.iter().map(|r| r.name()).collect();
        (tree, format!("{names:?} {:?} {:?}", self.gitops, self.helm))
    }
}

/// The side at `commit`: kept, or listed and discovered. A side is kept only when its discovery settled.
pub fn side(repo: &Repository, commit: Oid, run: &Run<'_>) -> Result<Arc<Side>, GitError> {
    let key = run.key(root_tree(repo, commit)?);
    if let Some(side) = KEPT.get(&key) {
        return Ok(side);
    }
    let blobs = Blobs::of(git::list_blobs(repo, commit)?);
    let tree = GitTree {
        repo,
        commit,
        texts: blobs.ids.iter().map(|_| OnceLock::new()).collect(),
        blobs: &blobs,
        asked: Mutex::default(),
    };
    let layout = Layout::discover(&tree, run.renderers, run.gitops);
    let asked = tree.asked.into_inner().unwrap_or_else(|p| p.into_inner()).settle();
    let side = Arc::new(Side {
        blobs: Arc::new(blobs),
        changed: Arc::default(),
        layout: Arc::new(layout),
        asked: Arc::new(asked),
        manifests: Arc::default(),
    });
    if side.layout.settled {
        KEPT.insert(key, side.clone());
    }
    Ok(side)
}

/// Could the head of `pair` be carried over from its base ([`carried`])? Only when every changed path is a
/// regular file on both sides: a change that adds or removes a file changes the list of files discovery saw.
pub fn may_carry(repo: &Repository, pair: &git::RevisionPair, changed: &[String]) -> bool {
    let (Ok(base), Ok(head)) = (root_tree(repo, pair.merge_base), root_tree(repo, pair.head)) else { return false };
    let regular = |tree: Oid, path: &str| {
        matches!(super::known::entry(repo, tree, path, git::valid_name), Ok(Some((super::known::Kind::Blob, _))))
    };
    changed.iter().all(|path| regular(base, path) && regular(head, path))
}

/// The head side at `commit` from the base's, when the change (`changed`: every path it touches) leaves every
/// answer the base's discovery depended on as it was; `None` when it may not, and the head must be discovered.
pub fn carried(
    repo: &Repository,
    base: &Side,
    commit: Oid,
    changed: &[String],
    run: &Run<'_>,
) -> Result<Option<Arc<Side>>, GitError> {
    let key = run.key(root_tree(repo, commit)?);
    if let Some(side) = KEPT.get(&key) {
        return Ok(Some(side));
    }
    let head_tree = key.0;
    if base.asked.links {
        return Ok(None);
    }
    let mut changes = (*base.changed).clone();
    for path in changed {
        // Only a file that stays a regular file, with the same path, keeps the list of files as it was.
        let Some(index) = base.blobs.index(path) else { return Ok(None) };
        let Some(old) = base.changed.get(path).copied().or(base.blobs.ids[index]) else { return Ok(None) };
        let Ok(Some((super::known::Kind::Blob, new))) = super::known::entry(repo, head_tree, path, git::valid_name)
        else {
            return Ok(None);
        };
        let index = index as u32;
        if base.asked.read_whole(index) {
            return Ok(None);
        }
        let needles: Vec<&str> = base.asked.scanned_for(index).collect();
        let mentions = |id| match super::known::blob(repo, id) {
            Some(text) => needles.iter().any(|n| text.contains(n)),
            None => true,
        };
        if !needles.is_empty() && (mentions(old) || mentions(new)) {
            return Ok(None);
        }
        changes.insert(path.clone(), new);
    }
    let side = Arc::new(Side {
        blobs: base.blobs.clone(),
        changed: Arc::new(changes),
        layout: base.layout.clone(),
        asked: base.asked.clone(),
        manifests: base.manifests.clone(),
    });
    if side.layout.settled {
        KEPT.insert(key, side.clone());
    }
    Ok(Some(side))
}

fn root_tree(repo: &Repository, commit: Oid) -> Result<Oid, GitError> {
    repo.find_commit(commit)
        .map(|c| c.tree_id())
        .map_err(|source| GitError::Git { what: format!("cannot read commit {commit}"), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository with one commit holding `files` (`link: true` for a symbolic link), on `parent`.
    fn commit(repo: &Repository, parent: Option<Oid>, files: &[(&str, &str, bool)]) -> Oid {
        let mut index = git2::Index::new().expect("index");
        for (path, text, link) in files {
            let id = repo.blob(text.as_bytes()).expect("blob");
            let mode = if *link { 0o120000 } else { 0o100644 };
            let entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode,
                uid: 0,
                gid: 0,
                file_size: text.len() as u32,
                id,
                flags: path.len() as u16,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            index.add(&entry).expect("add");
        }
        let tree = repo.find_tree(index.write_tree_to(repo).expect("tree")).expect("tree");
        let sig = git2::Signature::now("kpath", "kpath@example.com").expect("signature");
        let parents: Vec<git2::Commit<'_>> = parent.map(|p| repo.find_commit(p).expect("parent")).into_iter().collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(None, &sig, &sig, "commit", &tree, &parents).expect("commit")
    }

    fn pair(base: Oid, head: Oid) -> git::RevisionPair {
        git::RevisionPair { merge_base: base, head, base, base_rev: "base".into(), head_rev: "head".into() }
    }

    #[test]
    fn a_head_is_carried_only_when_its_change_leaves_discoverys_answers_as_they_were() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init_bare(dir.path()).expect("repo");
        let renderers = crate::renderers::builtin(&crate::config::Config::default());
        let gitops = crate::gitops::Settings::default();
        let run = Run { renderers: &renderers, gitops: &gitops, helm: None };
        let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n";
        let kustomization = "resources: [deployment.yaml]\n";
        let base = commit(
            &repo,
            None,
            &[("app/deployment.yaml", deployment, false), ("app/kustomization.yaml", kustomization, false)],
        );
        let side_of = |commit| side(&repo, commit, &run).expect("side");
        let carry = |head: Oid, changed: &[&str]| {
            let changed: Vec<String> = changed.iter().map(|c| c.to_string()).collect();
            assert!(may_carry(&repo, &pair(base, head), &changed));
            carried(&repo, &side_of(base), head, &changed, &run).expect("carried").is_some()
        };
        // A manifest the Kustomization lists: not read by discovery, carried.
        let edited = commit(
            &repo,
            Some(base),
            &[
                ("app/deployment.yaml", &format!("{deployment}# edited\n"), false),
                ("app/kustomization.yaml", kustomization, false),
            ],
        );
        assert!(carry(edited, &["app/deployment.yaml"]));
        // The Kustomization itself: read whole by discovery, discovered again.
        let listed = commit(
            &repo,
            Some(base),
            &[("app/deployment.yaml", deployment, false), ("app/kustomization.yaml", "resources: []\n", false)],
        );
        assert!(!carry(listed, &["app/kustomization.yaml"]));
        // A manifest that now declares an Argo CD Application: the scan's answer changes.
        let declares =
            format!("{deployment}---\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: x}}\n");
        let declaring = commit(
            &repo,
            Some(base),
            &[("app/deployment.yaml", &declares, false), ("app/kustomization.yaml", kustomization, false)],
        );
        assert!(!carry(declaring, &["app/deployment.yaml"]));
        // An added file changes the list of files: not even tried.
        let added = commit(
            &repo,
            Some(base),
            &[
                ("app/deployment.yaml", deployment, false),
                ("app/kustomization.yaml", kustomization, false),
                ("app/new.yaml", "a: 1\n", false),
            ],
        );
        assert!(!may_carry(&repo, &pair(base, added), &["app/new.yaml".to_string()]));

        // Discovery that read a link read another file through it: nothing is carried from that side.
        let linked = commit(
            &repo,
            None,
            &[
                ("app/deployment.yaml", deployment, false),
                ("app/kustomization.yaml", "../shared/kustomization.txt", true),
                ("shared/kustomization.txt", kustomization, false),
            ],
        );
        let edited_target = commit(
            &repo,
            Some(linked),
            &[
                ("app/deployment.yaml", deployment, false),
                ("app/kustomization.yaml", "../shared/kustomization.txt", true),
                ("shared/kustomization.txt", "resources: []\n", false),
            ],
        );
        let changed = vec!["shared/kustomization.txt".to_string()];
        assert!(may_carry(&repo, &pair(linked, edited_target), &changed));
        assert!(carried(&repo, &side_of(linked), edited_target, &changed, &run).expect("carried").is_none());
    }
}
