//! Fetching what a review needs from GitHub into a cache of bare repositories, one per repository:
//! only the requested commits (shallow by default), over HTTPS with the installation token, never a
//! work-tree checkout. `kpath review`'s git layer then reads both sides from the cache.

use std::path::{Path, PathBuf};

use git2::{FetchOptions, RemoteCallbacks, Repository};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot prepare the repository cache at {path}: {source}")]
    Cache { path: PathBuf, source: git2::Error },
    #[error("fetching {what} from {repo} failed: {source}")]
    Fetch { repo: String, what: String, source: git2::Error },
    #[error("`{0}` is not a repository name (owner/name)")]
    Name(String),
}

/// Bare repositories under one directory: `<root>/<owner>/<name>.git`.
#[derive(Debug, Clone)]
pub struct RepoCache {
    root: PathBuf,
}

impl RepoCache {
    pub fn new(root: impl Into<PathBuf>) -> RepoCache {
        RepoCache { root: root.into() }
    }

    /// The bare repository of `repo` (`owner/name`), created on first use.
    pub fn open(&self, repo: &str) -> Result<(Repository, PathBuf), FetchError> {
        let (owner, name) = repo.split_once('/').ok_or_else(|| FetchError::Name(repo.to_string()))?;
        let safe = |s: &str| {
            !s.is_empty() && !s.starts_with('.') && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if !safe(owner) || !safe(name) {
            return Err(FetchError::Name(repo.to_string()));
        }
        let path = self.root.join(owner).join(format!("{name}.git"));
        let cache_error = |source| FetchError::Cache { path: path.clone(), source };
        let repository = match Repository::open_bare(&path) {
            Ok(r) => r,
            Err(_) => Repository::init_bare(&path).map_err(cache_error)?,
        };
        Ok((repository, path))
    }

    /// Fetches `refspecs` (e.g. `+<sha>:refs/kpath/head`, `+refs/pull/7/head:refs/kpath/pull/7`) from
    /// `url` into the cache, authenticating as GitHub Apps do (`x-access-token` + installation token).
    /// `depth` makes the fetch shallow; `None` fetches whole history.
    pub fn fetch(
        &self,
        repo: &str,
        url: &str,
        token: Option<&SecretString>,
        refspecs: &[String],
        depth: Option<i32>,
    ) -> Result<PathBuf, FetchError> {
        let (repository, path) = self.open(repo)?;
        let mut callbacks = RemoteCallbacks::new();
        let mut attempts = 0;
        callbacks.credentials(move |_url, _user, _allowed| {
            attempts += 1;
            match (token, attempts) {
                // libgit2 asks again after a rejected credential: give up instead of looping.
                (Some(token), 1) => git2::Cred::userpass_plaintext("x-access-token", token.expose_secret()),
                _ => Err(git2::Error::from_str("the installation token was not accepted")),
            }
        });
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks);
        if let Some(depth) = depth {
            options.depth(depth);
        }
        let mut remote = repository.remote_anonymous(url).map_err(|source| FetchError::Fetch {
            repo: repo.to_string(),
            what: "the remote".into(),
            source,
        })?;
        let specs: Vec<&str> = refspecs.iter().map(String::as_str).collect();
        remote.fetch(&specs, Some(&mut options), None).map_err(|source| FetchError::Fetch {
            repo: repo.to_string(),
            what: specs.join(" "),
            source,
        })?;
        Ok(path)
    }

    /// Deletes the cached repository of `repo` when it holds more than `max_bytes` (old heads' objects
    /// accumulate, and nothing in it is needed once fetched again: fetches are shallow). Returns whether
    /// it was deleted.
    pub fn trim(&self, repo: &str, max_bytes: u64) -> bool {
        let Some((owner, name)) = repo.split_once('/') else { return false };
        let path = self.root.join(owner).join(format!("{name}.git"));
        let size: u64 = walkdir::WalkDir::new(&path)
            .into_iter()
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        size > max_bytes && path.starts_with(&self.root) && std::fs::remove_dir_all(&path).is_ok()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testing::git_http;
    use crate::app::testing::testbed::git;

    /// A served repository `acme/shop` with a main commit and a pull request ref.
    fn served() -> (tempfile::TempDir, String, String) {
        let root = tempfile::tempdir().expect("tempdir");
        let work = root.path().join("work");
        std::fs::create_dir_all(&work).expect("mkdir");
        git(&work, &["init", "-q"]);
        std::fs::write(work.join("app.yaml"), "a: 1\n").expect("write");
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "base"]);
        let base = git(&work, &["rev-parse", "HEAD"]);
        git(&work, &["checkout", "-q", "-b", "feature"]);
        std::fs::write(work.join("app.yaml"), "a: 2\n").expect("write");
        git(&work, &["commit", "-q", "-am", "change"]);
        let head = git(&work, &["rev-parse", "HEAD"]);
        let bare = root.path().join("served/acme/shop.git");
        git(root.path(), &["clone", "-q", "--bare", work.to_str().expect("utf-8"), bare.to_str().expect("utf-8")]);
        git(&bare, &["update-ref", "refs/pull/7/head", &head]);
        // GitHub lets clients fetch a commit by SHA; so does this server.
        git(&bare, &["config", "uploadpack.allowReachableSHA1InWant", "true"]);
        (root, base, head)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn fetches_a_pull_request_head_over_smart_http_with_the_token() {
        let (root, base, head) = served();
        let server = git_http::serve(root.path().join("served"), "installation-token".into()).await;
        let cache = RepoCache::new(root.path().join("cache"));
        let url = format!("{}/acme/shop.git", server.url);
        let token: SecretString = "installation-token".to_string().into();
        let refspecs = vec!["+refs/pull/7/head:refs/kpath/pull/7".to_string(), format!("+{base}:refs/kpath/base")];
        let result =
            tokio::task::spawn_blocking(move || cache.fetch("acme/shop", &url, Some(&token), &refspecs, Some(2)))
                .await
                .expect("joined");
        let path = result.expect("fetch works");
        let repo = Repository::open_bare(&path).expect("bare");
        let fetched = repo.refname_to_id("refs/kpath/pull/7").expect("pull ref");
        assert_eq!(fetched.to_string(), head);
        assert!(repo.workdir().is_none(), "never a work tree");
        assert!(server.requests() > 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_wrong_token_is_a_clear_error_not_a_loop() {
        let (root, _base, _head) = served();
        let server = git_http::serve(root.path().join("served"), "installation-token".into()).await;
        let cache = RepoCache::new(root.path().join("cache"));
        let url = format!("{}/acme/shop.git", server.url);
        let token: SecretString = "stale-token".to_string().into();
        let result = tokio::task::spawn_blocking(move || {
            cache.fetch("acme/shop", &url, Some(&token), &["+refs/pull/7/head:refs/kpath/pull/7".to_string()], None)
        })
        .await
        .expect("joined");
        let error = result.expect_err("rejected").to_string();
        assert!(error.contains("acme/shop"), "{error}");
        assert!(!error.contains("stale-token"), "the token never appears in messages: {error}");
    }

    #[test]
    fn a_repository_past_its_size_is_trimmed() {
        let root = tempfile::tempdir().expect("tempdir");
        let cache = RepoCache::new(root.path());
        let (_, path) = cache.open("acme/shop").expect("created");
        std::fs::write(path.join("objects/pack-filler"), vec![0u8; 10_000]).expect("write");
        assert!(!cache.trim("acme/shop", 1_000_000), "under the limit: kept");
        assert!(path.exists());
        assert!(cache.trim("acme/shop", 5_000), "over it: deleted");
        assert!(!path.exists());
        assert!(cache.open("acme/shop").is_ok(), "and made again on the next fetch");
    }

    #[test]
    fn repository_names_are_checked() {
        let root = tempfile::tempdir().expect("tempdir");
        let cache = RepoCache::new(root.path());
        for bad in ["nope", "../x/y", "a/..", "a/.git", "a/b/c"] {
            assert!(cache.open(bad).is_err(), "{bad}");
        }
        assert!(cache.open("acme/shop-2.0").is_ok());
    }
}
