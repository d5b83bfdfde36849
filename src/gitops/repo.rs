//! Which repository a controller's `repoURL`/`url` points at: every URL form of a git repository
//! (`https://host/owner/repo(.git)`, `git@host:owner/repo`, `ssh://git@host[:port]/owner/repo`) reduced to
//! one comparable form, so an object that deploys from "this repository" is recognised whatever form it
//! was written in.

/// `host/path` in lower case, without scheme, user, port, `.git` or trailing `/`: the form two URLs of the
/// same repository share. `None` for what is not a repository URL (a Helm repository path is still one;
/// callers compare, they do not trust).
pub fn normalise(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    let (host, path) = if let Some((scheme, rest)) = url.split_once("://") {
        if !matches!(scheme.to_ascii_lowercase().as_str(), "https" | "http" | "ssh" | "git" | "git+ssh" | "ssh+git") {
            return None;
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        // `ssh://git@host:22/…`: the port is not part of the repository's name.
        let host = host.split(':').next().unwrap_or(host);
        (host, path)
    } else if let Some((user_host, path)) = url.split_once(':') {
        // scp-like: `git@github.com:owner/repo.git`.
        if user_host.contains('/') || path.starts_with("//") {
            return None;
        }
        let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
        (host, path)
    } else {
        return None;
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).trim_end_matches('/');
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some(format!("{}/{}", host.to_ascii_lowercase(), path.to_ascii_lowercase()))
}

/// Whether `url` is one of `repositories` (each already [`normalise`]d).
pub fn is_one_of(url: &str, repositories: &std::collections::BTreeSet<String>) -> bool {
    normalise(url).is_some_and(|u| repositories.contains(&u))
}

/// The URL of the git remote `origin` of the repository holding `path`, if any.
pub fn origin_of(path: &std::path::Path) -> Option<String> {
    let repo = git2::Repository::discover(path).ok()?;
    let remote = repo.find_remote("origin").ok()?;
    remote.url().ok().map(str::to_string)
}

/// The URLs a GitHub repository (`owner/name`) is known by, for a review run by the App.
pub fn github(api_host: &str, full_name: &str) -> Option<String> {
    normalise(&format!("https://{api_host}/{full_name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_one_repository_is_the_same() {
        let forms = [
            "https://github.com/Acme/Deploy.git",
            "https://github.com/acme/deploy",
            "https://github.com/acme/deploy/",
            "http://github.com/acme/deploy.git",
            "git@github.com:acme/deploy.git",
            "git@github.com:acme/deploy",
            "ssh://git@github.com/acme/deploy.git",
            "ssh://git@github.com:22/acme/deploy",
            "https://token@github.com/acme/deploy.git",
        ];
        for form in forms {
            assert_eq!(normalise(form).as_deref(), Some("github.com/acme/deploy"), "{form}");
        }
    }

    #[test]
    fn other_repositories_and_non_urls_differ() {
        assert_ne!(normalise("https://github.com/acme/deploy-2"), normalise("https://github.com/acme/deploy"));
        assert_ne!(normalise("https://gitlab.com/acme/deploy"), normalise("https://github.com/acme/deploy"));
        assert_eq!(normalise(""), None);
        assert_eq!(normalise("file:///tmp/x"), None);
        assert_eq!(normalise("./local"), None);
        assert_eq!(normalise("https://github.com"), None);
    }
}
