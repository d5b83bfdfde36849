//! Charts from outside the repository (an Argo CD `chart:` with a Helm repository or `oci://` registry, a
//! Flux HelmRelease's HelmRepository/OCIRepository), pulled **only** from sources the operator allows and
//! unpacked into a content-addressed cache, so the Argo CD and Flux renderers render them like local charts.
//!
//! What this relies on:
//! - Helm chart repositories (`index.yaml`: `entries.NAME[].version`, `urls` relative to the repository or
//!   absolute, `digest` = sha256 of the `.tgz`): <https://helm.sh/docs/topics/chart_repository/>
//! - Helm charts in OCI registries (`oci://host/path/NAME:VERSION`, `+` written `_` in tags, the chart layer's
//!   media type): <https://helm.sh/docs/topics/registries/>
//! - The OCI distribution API (manifests, blobs by digest, tag lists):
//!   <https://github.com/opencontainers/distribution-spec/blob/main/spec.md>, and its token flow (a `401` with
//!   `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, a token from the realm, the request again):
//!   <https://distribution.github.io/distribution/spec/auth/token/>
//! - Version ranges as Helm and Flux read them (Masterminds semver: `^1.2`, `~1.2`, `1.x`, `>=1 <2`, `a - b`,
//!   `||`): <https://helm.sh/docs/chart_best_practices/dependencies/#versions>,
//!   <https://fluxcd.io/flux/components/helm/helmreleases/#chart-template>
//! - Loopback registries are spoken to over plain HTTP, as Docker treats 127.0.0.0/8 and ::1 as insecure
//!   registries by default: <https://docs.docker.com/reference/cli/dockerd/#insecure-registries>
//!
//! Nothing from the repository reaches a command line: HTTP is done in-process (hyper + rustls, the stack
//! the GitHub client uses), on a thread of its own with one deadline for the whole pull, every body capped.
//! Credentials come only from the environment ([`Credential::from_env`]) and are never put in a message.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use http_body_util::BodyExt;
use hyper::body::Bytes;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::RemoteChart;
use crate::helm::{MAX_CHART_BYTES, MAX_CHART_FILE_BYTES};

/// Why a chart could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The source is not allowed: the message says which flag or variable would allow it.
    #[error("{0}")]
    NotAllowed(String),
    /// Allowed, but the pull failed (network, no such chart or version, digest mismatch, too large, bad
    /// archive): one line, naming the chart, with no credentials.
    #[error("{0}")]
    Failed(String),
}

/// Default of [`FetchSettings::timeout`]: one pull, every request of it together.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of [`FetchSettings::max_bytes`]: a chart archive (compressed); unpacked, a chart is held to
/// [`MAX_CHART_BYTES`] like a local one.
pub const DEFAULT_MAX_BYTES: u64 = 32 << 20;
/// Default of [`FetchSettings::max_index_bytes`]: large public repositories publish indexes of a few tens
/// of MiB.
pub const DEFAULT_MAX_INDEX_BYTES: u64 = 48 << 20;
/// Default of [`FetchSettings::max_cache_bytes`].
pub const DEFAULT_MAX_CACHE_BYTES: u64 = 1 << 30;
/// Default of [`FetchSettings::resolve_ttl`].
pub const DEFAULT_RESOLVE_TTL: Duration = Duration::from_secs(600);
/// Entries of a chart archive (files and directories): past this it is refused.
pub const MAX_ARCHIVE_ENTRIES: usize = 10_000;
/// An OCI manifest, a token answer, a page of tags: small JSON documents (the distribution spec suggests
/// registries refuse manifests over 4 MiB).
const MAX_DOCUMENT_BYTES: u64 = 4 << 20;
/// Redirects followed per request (blob downloads are commonly redirected once, to a storage service).
const MAX_REDIRECTS: usize = 5;
/// Pages of an OCI tag list followed.
const MAX_TAG_PAGES: usize = 20;
/// A cache entry used within this long is never evicted: another run may be rendering from it.
const EVICTION_GRACE: Duration = Duration::from_secs(600);
/// The chart layer of a Helm chart in an OCI registry.
pub const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const USER_AGENT: &str = concat!("kpath/", env!("CARGO_PKG_VERSION"));

/// How charts are pulled: what the operator allows, where they are kept, and the bounds.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Allowed chart sources (`--allow-chart-source`, `$KPATH_ALLOW_CHART_SOURCES`): URL prefixes.
    pub allowed: Vec<String>,
    /// Where pulled charts are kept (under `charts/` of it), across runs; `None`: a temporary directory of
    /// this process.
    pub cache_dir: Option<PathBuf>,
    /// Wall time of one pull (index or tags, manifest, archive, every redirect and token request).
    pub timeout: Duration,
    /// Bytes of one chart archive as downloaded.
    pub max_bytes: u64,
    /// Bytes of a Helm repository's `index.yaml`.
    pub max_index_bytes: u64,
    /// Bytes of all unpacked charts in the cache; past it the least recently used go (not those used in the
    /// last ten minutes).
    pub max_cache_bytes: u64,
    /// How long a version range (or "latest") stays resolved to the version it picked, so both sides of a
    /// review and repeated runs render the same chart; an exact version is resolved once for good.
    pub resolve_ttl: Duration,
    /// Credentials for chart sources, from the environment ([`Credential::from_env`]).
    pub credentials: Vec<Credential>,
}

impl Default for FetchSettings {
    fn default() -> FetchSettings {
        FetchSettings {
            allowed: Vec::new(),
            cache_dir: None,
            timeout: DEFAULT_TIMEOUT,
            max_bytes: DEFAULT_MAX_BYTES,
            max_index_bytes: DEFAULT_MAX_INDEX_BYTES,
            max_cache_bytes: DEFAULT_MAX_CACHE_BYTES,
            resolve_ttl: DEFAULT_RESOLVE_TTL,
            credentials: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Source URLs and the allow list
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scheme {
    Http,
    Https,
    Oci,
}

/// A chart source URL read strictly: scheme `http`, `https` or `oci`; a host of letters, digits, `.`, `-`
/// (or a bracketed IPv6 address); an optional port; a path without `.`/`..` segments. No user information,
/// query or fragment: what is matched against the allow list is exactly where kpath connects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Source {
    scheme: Scheme,
    /// Lower case.
    host: String,
    port: Option<u16>,
    /// `""` or `/a/b`, no trailing `/`.
    path: String,
}

impl Source {
    fn parse(url: &str) -> Result<Source, String> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or("not a URL (no `scheme://`)")?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "oci" => Scheme::Oci,
            _ => return Err("only `https://`, `http://` and `oci://` chart sources are supported".into()),
        };
        if rest.contains(['?', '#', '\\']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a chart source URL has no query, fragment, backslash or space".into());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(
                "the URL carries user information; credentials come only from kpath's environment (KPATH_CHART_AUTH_*)"
                    .into(),
            );
        }
        let (host, port) = split_host_port(authority)?;
        let mut segments = Vec::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            let decoded = segment.replace("%2e", ".").replace("%2E", ".");
            if decoded == "." || decoded == ".." {
                return Err("the URL's path has a `.` or `..` segment".into());
            }
            if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:@".contains(&b)) {
                return Err("the URL's path has a character a chart source does not use".into());
            }
            segments.push(segment);
        }
        let path = if segments.is_empty() { String::new() } else { format!("/{}", segments.join("/")) };
        Ok(Source { scheme, host, port, path })
    }

    fn default_port(&self) -> u16 {
        match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
            Scheme::Oci if is_loopback(&self.host) => 80,
            Scheme::Oci => 443,
        }
    }

    /// Whether `self`, as an allowed prefix, covers `other`: same scheme, host and port, and `other`'s path
    /// is this path or below it (segment by segment: `/charts` covers `/charts/x`, not `/charts-x`).
    fn covers(&self, other: &Source) -> bool {
        self.scheme == other.scheme
            && self.host == other.host
            && self.port.unwrap_or(self.default_port()) == other.port.unwrap_or(other.default_port())
            && (other.path == self.path || other.path.starts_with(&format!("{}/", self.path)))
    }

    fn shown(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Oci => "oci",
        };
        match self.port {
            Some(port) => format!("{scheme}://{}:{port}{}", self.host, self.path),
            None => format!("{scheme}://{}{}", self.host, self.path),
        }
    }

    /// What an `http(s)` request to this source's path starts with.
    fn http_base(&self) -> Target {
        let https = match self.scheme {
            Scheme::Http => false,
            Scheme::Https => true,
            Scheme::Oci => !is_loopback(&self.host),
        };
        Target { https, host: self.host.clone(), port: self.port, path: self.path.clone(), query: None }
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("an IPv6 host without its `]`")?;
        if !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') || inside.is_empty() {
            return Err("not an IPv6 address".into());
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after the IPv6 host")?),
        };
        (format!("[{}]", inside.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let valid = !host.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && !host.starts_with(['.', '-'])
            && !host.contains("..");
        if !valid {
            return Err("the URL has no valid host".into());
        }
        (host.trim_end_matches('.').to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or("the URL's port is not a number")?),
    };
    Ok((host, port))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "[::1]" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `chart.repository` starts with one of the `allowed` prefixes (each a URL; one that does not parse
/// allows nothing). Compared as parsed URLs: scheme and host in lower case, default ports filled in, paths
/// segment by segment, so `https://charts.example.com` allows neither `https://charts.example.com.evil.net`
/// nor `https://charts.example.com@evil.net` (refused: user information) nor `http://charts.example.com`.
pub fn allowed(chart: &RemoteChart, allowed: &[String]) -> bool {
    let Ok(source) = Source::parse(&chart.repository) else { return false };
    allowed.iter().filter_map(|prefix| Source::parse(prefix).ok()).any(|prefix| prefix.covers(&source))
}

/// A URL from outside the repository's text as it may be shown: without user information, query or
/// fragment, bounded (a presigned download URL's query is a credential; a repository URL may hold a password).
fn shown_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or("");
    let url = match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.find('/').map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    };
    crate::cmdline::shown(&url)
}

// ---------------------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------------------

/// A username and password for chart sources under a URL prefix.
///
/// From the environment only, never from the repository: `KPATH_CHART_AUTH_<ID>_URL` (the prefix, matched
/// like the allow list), `KPATH_CHART_AUTH_<ID>_USERNAME`, and `KPATH_CHART_AUTH_<ID>_PASSWORD` or
/// `KPATH_CHART_AUTH_<ID>_PASSWORD_FILE` (a mounted secret), for any `<ID>` (`1`, `GHCR`). The longest matching
/// prefix wins. They are sent as HTTP Basic credentials to a Helm repository, and to an OCI registry's token
/// service (or the registry, when it asks for Basic); never over plain HTTP except to a loopback address,
/// and never to another host a download is redirected to.
#[derive(Clone)]
pub struct Credential {
    prefix: Source,
    username: String,
    password: SecretString,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("prefix", &self.prefix.shown()).finish_non_exhaustive()
    }
}

impl Credential {
    /// A credential for sources under `prefix`.
    pub fn new(prefix: &str, username: &str, password: SecretString) -> Result<Credential, String> {
        let prefix = Source::parse(prefix).map_err(|why| format!("`{}`: {why}", shown_url(prefix)))?;
        Ok(Credential { prefix, username: username.to_string(), password })
    }

    /// Every `KPATH_CHART_AUTH_<ID>_*` set of this process's environment. An error (naming the variable,
    /// never a value) when a set is incomplete or its URL is not a chart source URL.
    pub fn from_env() -> Result<Vec<Credential>, String> {
        Credential::from_vars(
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    fn from_vars(vars: impl Iterator<Item = (String, String)>) -> Result<Vec<Credential>, String> {
        const PREFIX: &str = "KPATH_CHART_AUTH_";
        let vars: HashMap<String, String> = vars.filter(|(k, _)| k.starts_with(PREFIX)).collect();
        let mut ids: Vec<&str> = vars
            .keys()
            .filter_map(|k| k.strip_prefix(PREFIX)?.strip_suffix("_URL"))
            .filter(|id| !id.is_empty())
            .collect();
        ids.sort_unstable();
        let mut credentials = Vec::new();
        for id in ids {
            let name = |field: &str| format!("{PREFIX}{id}_{field}");
            let url = vars.get(&name("URL")).map_or("", String::as_str);
            let username = vars
                .get(&name("USERNAME"))
                .ok_or_else(|| format!("{} is set but {} is not", name("URL"), name("USERNAME")))?;
            let password = match (vars.get(&name("PASSWORD")), vars.get(&name("PASSWORD_FILE"))) {
                (Some(p), None) => p.trim_end_matches(['\r', '\n']).to_string(),
                (None, Some(file)) => {
                    let bytes = crate::loader::read_bounded(Path::new(file), 64 << 10)
                        .map_err(|e| format!("{}: cannot read the file it names: {e}", name("PASSWORD_FILE")))?;
                    String::from_utf8(bytes)
                        .map_err(|_| format!("{}: the file is not UTF-8", name("PASSWORD_FILE")))?
                        .trim_end_matches(['\r', '\n'])
                        .to_string()
                }
                (Some(_), Some(_)) => {
                    return Err(format!("set {} or {}, not both", name("PASSWORD"), name("PASSWORD_FILE")));
                }
                (None, None) => {
                    return Err(format!(
                        "{} is set but neither {} nor {}",
                        name("URL"),
                        name("PASSWORD"),
                        name("PASSWORD_FILE")
                    ));
                }
            };
            credentials.push(
                Credential::new(url, username, SecretString::from(password))
                    .map_err(|why| format!("{}: {why}", name("URL")))?,
            );
        }
        Ok(credentials)
    }

    fn basic(&self) -> String {
        use base64::Engine;
        let pair = format!("{}:{}", self.username, self.password.expose_secret());
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    }
}

/// The credential for `source`: the longest matching prefix.
fn credential_for<'a>(credentials: &'a [Credential], source: &Source) -> Option<&'a Credential> {
    credentials.iter().filter(|c| c.prefix.covers(source)).max_by_key(|c| c.prefix.path.len())
}

// ---------------------------------------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------------------------------------

/// A version as charts write them: `1.2.3`, `v1.2.3`, or short (`1.2` = `1.2.0`), as Helm reads them.
fn lenient_version(text: &str) -> Option<semver::Version> {
    let text = text.trim();
    let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
    if let Ok(v) = semver::Version::parse(text) {
        return Some(v);
    }
    // Short forms: pad the core before any pre-release or build part.
    let split = text.find(['-', '+']).unwrap_or(text.len());
    let (core, rest) = text.split_at(split);
    let padded = match core.split('.').count() {
        1 => format!("{core}.0.0{rest}"),
        2 => format!("{core}.0{rest}"),
        _ => return None,
    };
    semver::Version::parse(&padded).ok()
}

/// Whether `asked` names one exact version (`1.2.3`, `v1.2.3`), not a range.
fn is_exact(asked: &str) -> bool {
    let text = asked.trim();
    semver::Version::parse(text.strip_prefix(['v', 'V']).unwrap_or(text)).is_ok()
}

/// A Masterminds-style constraint (what Helm and Flux accept) as alternatives of `semver` requirements:
/// `||` separates alternatives; inside one, comparators are separated by spaces or commas; `a - b` is
/// `>=a, <=b`; a bare version (`1.2`) means exactly that (`=1.2`, i.e. any `1.2.x`), not Cargo's caret.
fn parse_range(asked: &str) -> Option<Vec<semver::VersionReq>> {
    let mut alternatives = Vec::new();
    for alternative in asked.split("||") {
        let words: Vec<&str> = alternative.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        let mut comparators: Vec<String> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            if words.get(i + 1) == Some(&"-") && i + 2 < words.len() {
                comparators.push(format!(">={}", words[i].trim_start_matches(['v', 'V'])));
                comparators.push(format!("<={}", words[i + 2].trim_start_matches(['v', 'V'])));
                i += 3;
                continue;
            }
            let mut word = words[i].to_string();
            // An operator written apart from its version (`>= 1.2`).
            if word.chars().all(|c| "<>=~^!".contains(c))
                && let Some(next) = words.get(i + 1)
            {
                word.push_str(next);
                i += 1;
            }
            let op_len = word.find(|c: char| !"<>=~^!".contains(c)).unwrap_or(word.len());
            let (op, version) = word.split_at(op_len);
            let version = version.strip_prefix(['v', 'V']).unwrap_or(version);
            let op = match op {
                "" => "=",
                "==" => "=",
                "!=" => return None,
                "~>" => "~",
                other => other,
            };
            if version == "*" || version == "x" || version == "X" {
                comparators.push("*".into());
            } else {
                comparators.push(format!("{op}{version}"));
            }
            i += 1;
        }
        if comparators.is_empty() {
            comparators.push("*".into());
        }
        alternatives.push(semver::VersionReq::parse(&comparators.join(", ")).ok()?);
    }
    Some(alternatives)
}

/// The version to pull among `available` (as the source writes them): the one written exactly as asked, else
/// the newest that satisfies the range; with nothing asked, the newest stable one (Helm's and Flux's
/// default). `Err` says why none fits.
fn select_version<'a>(asked: Option<&str>, available: &[&'a str]) -> Result<&'a str, String> {
    let asked = asked.map(str::trim).filter(|a| !a.is_empty());
    if let Some(asked) = asked
        && let Some(exact) = available.iter().find(|v| v.trim() == asked)
    {
        return Ok(exact);
    }
    let requirements = match asked {
        Some(asked) => parse_range(asked)
            .ok_or_else(|| format!("`{}` is not a version or version range", crate::cmdline::shown(asked)))?,
        None => vec![semver::VersionReq::STAR],
    };
    let best = available
        .iter()
        .filter_map(|text| Some((lenient_version(text)?, *text)))
        .filter(|(v, _)| requirements.iter().any(|r| r.matches(v)))
        .max_by(|a, b| a.0.cmp(&b.0));
    match best {
        Some((_, text)) => Ok(text),
        None => {
            let newest = available.iter().filter_map(|t| Some((lenient_version(t)?, *t))).max_by(|a, b| a.0.cmp(&b.0));
            let wanted = asked.map_or("a stable version".to_string(), |a| format!("`{}`", crate::cmdline::shown(a)));
            Err(match newest {
                Some((_, newest)) => {
                    format!("no version matches {wanted} (the newest is {})", crate::cmdline::shown(newest))
                }
                None => format!("no version matches {wanted} (none is listed)"),
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------------------

/// Where one request goes: read from a chart source, an index's `urls`, a redirect's `Location`, a token
/// realm. The query is kept for the request (presigned downloads need it) and never shown.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    https: bool,
    host: String,
    port: Option<u16>,
    path: String,
    query: Option<String>,
}

impl Target {
    /// An absolute `http(s)://` URL; user information refused.
    fn parse_absolute(url: &str) -> Result<Target, String> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or("not an absolute URL")?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(format!("`{}` is not an http(s) URL", shown_url(url))),
        };
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{}` has a space or control character", shown_url(url)));
        }
        let rest = rest.split('#').next().unwrap_or("");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(format!("`{}` carries user information", shown_url(url)));
        }
        let (host, port) = split_host_port(authority).map_err(|why| format!("`{}`: {why}", shown_url(url)))?;
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (tail, None),
        };
        Ok(Target { https, host, port, path: normalise_path(path), query })
    }

    /// `reference` resolved against this URL (RFC 3986 §5.2, for the forms indexes and servers write).
    fn join(&self, reference: &str) -> Result<Target, String> {
        let reference = reference.trim();
        if reference.contains("://") {
            return Target::parse_absolute(reference);
        }
        if let Some(rest) = reference.strip_prefix("//") {
            return Target::parse_absolute(&format!("{}://{rest}", if self.https { "https" } else { "http" }));
        }
        if reference.chars().any(|c| c.is_whitespace() || c.is_control()) || reference.contains('#') {
            return Err(format!("`{}` is not a usable URL", crate::cmdline::shown(reference)));
        }
        let (path, query) = match reference.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (reference, None),
        };
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            let dir = self.path.rsplit_once('/').map_or("", |(dir, _)| dir);
            format!("{dir}/{path}")
        };
        Ok(Target { path: normalise_path(&path), query, ..self.clone() })
    }

    fn origin(&self) -> (bool, String, u16) {
        (self.https, self.host.clone(), self.port.unwrap_or(if self.https { 443 } else { 80 }))
    }

    fn uri(&self) -> String {
        let mut uri = self.shown();
        if uri.ends_with("://") || !self.path.starts_with('/') {
            uri.push('/');
        }
        if let Some(query) = &self.query {
            uri.push('?');
            uri.push_str(query);
        }
        uri
    }

    /// Scheme, host, port and path: no query.
    fn shown(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match self.port {
            Some(port) => format!("{scheme}://{}:{port}{}", self.host, self.path),
            None => format!("{scheme}://{}{}", self.host, self.path),
        }
    }

    /// As a chart source, for choosing credentials.
    fn as_source(&self) -> Source {
        Source {
            scheme: if self.https { Scheme::Https } else { Scheme::Http },
            host: self.host.clone(),
            port: self.port,
            path: self.path.trim_end_matches('/').to_string(),
        }
    }

    fn with_path(&self, path: &str) -> Target {
        Target { path: normalise_path(path), query: None, ..self.clone() }
    }
}

/// A path with `.` and `..` segments resolved (never above the root) and one leading `/`.
fn normalise_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let trailing = path.ends_with('/') && !out.is_empty();
    format!("/{}{}", out.join("/"), if trailing { "/" } else { "" })
}

/// An `Authorization` header value and the origin it may be sent to.
struct Auth {
    header: SecretString,
    origin: (bool, String, u16),
}

impl Auth {
    fn applies(&self, target: &Target) -> bool {
        target.origin() == self.origin && (target.https || is_loopback(&target.host))
    }
}

struct Response {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<Bytes>,
>;

/// An HTTP client for one pull: every request and body read ends by `deadline`.
struct Http {
    client: Client,
    deadline: tokio::time::Instant,
    timeout: Duration,
}

/// rustls with the system's root certificates, loaded once. Without any (a minimal container), HTTPS
/// fails with a certificate error naming the host, and plain HTTP to a loopback test server still works.
fn tls_config() -> rustls::ClientConfig {
    static CONFIG: OnceLock<rustls::ClientConfig> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            use hyper_rustls::ConfigBuilderExt;
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let with_roots = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .ok()
                .and_then(|b| b.with_native_roots().ok())
                .map(|b| b.with_no_client_auth());
            with_roots.unwrap_or_else(|| {
                tracing::warn!("no system root certificates: HTTPS chart sources will fail their certificate check");
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map(|b| b.with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth())
                    .unwrap_or_else(|_| {
                        rustls::ClientConfig::builder()
                            .with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth()
                    })
            })
        })
        .clone()
}

/// The chain of an error's causes on one line (hyper's own message is only "client error (Connect)").
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

impl Http {
    fn new(timeout: Duration) -> Http {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config())
            .https_or_http()
            .enable_http1()
            .build();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Http { client, deadline: tokio::time::Instant::now() + timeout, timeout }
    }

    fn timed_out(&self, target: &Target) -> String {
        format!(
            "{}: no answer within the pull's {} limit",
            target.shown(),
            crate::helm::binary::human_duration(self.timeout)
        )
    }

    /// GETs `target`, following redirects (an `Authorization` goes only to its own origin, and never from
    /// HTTPS down to HTTP). The body is read only for a success, at most `cap` bytes.
    async fn get(&self, target: &Target, accept: &str, auth: Option<&Auth>, cap: u64) -> Result<Response, String> {
        let mut target = target.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut request = http::Request::get(target.uri())
                .header(http::header::USER_AGENT, USER_AGENT)
                .header(http::header::ACCEPT, accept);
            if let Some(auth) = auth.filter(|a| a.applies(&target)) {
                let mut value = http::HeaderValue::from_str(auth.header.expose_secret())
                    .map_err(|_| format!("{}: the credentials are not a valid header value", target.shown()))?;
                value.set_sensitive(true);
                request = request.header(http::header::AUTHORIZATION, value);
            }
            let request = request
                .body(http_body_util::Empty::<Bytes>::new())
                .map_err(|_| format!("{}: not a valid request URL", target.shown()))?;
            let response = tokio::time::timeout_at(self.deadline, self.client.request(request))
                .await
                .map_err(|_| self.timed_out(&target))?
                .map_err(|e| format!("{}: {}", target.shown(), causes(&e)))?;
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let location = response
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("{}: a redirect without a Location", target.shown()))?;
                let next = target.join(location)?;
                if target.https && !next.https {
                    return Err(format!("{}: redirected from HTTPS to plain HTTP; refused", target.shown()));
                }
                target = next;
                continue;
            }
            let (parts, mut body) = response.into_parts();
            let mut bytes = Vec::new();
            if (200..300).contains(&status) {
                let declared =
                    parts.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                let too_large = || {
                    format!(
                        "{}: larger than kpath's {} limit",
                        target.shown(),
                        crate::helm::binary::human_bytes(cap as usize)
                    )
                };
                if declared.is_some_and(|n| n > cap) {
                    return Err(too_large());
                }
                while let Some(frame) =
                    tokio::time::timeout_at(self.deadline, body.frame()).await.map_err(|_| self.timed_out(&target))?
                {
                    let frame = frame.map_err(|e| format!("{}: {}", target.shown(), causes(&e)))?;
                    if let Ok(data) = frame.into_data() {
                        if bytes.len() as u64 + data.len() as u64 > cap {
                            return Err(too_large());
                        }
                        bytes.extend_from_slice(&data);
                    }
                }
            }
            return Ok(Response { status, headers: parts.headers, body: bytes });
        }
        Err(format!("{}: more than {MAX_REDIRECTS} redirects", target.shown()))
    }
}

/// Runs `pull` with a fresh client on a thread of its own (with its own single-threaded runtime, so it works
/// whether or not the caller is inside a Tokio runtime), within `timeout`.
fn with_http<T, F, Fut>(timeout: Duration, pull: F) -> Result<T, String>
where
    T: Send,
    F: FnOnce(Http) -> Fut + Send,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the download runtime: {e}"))?;
                let result = runtime.block_on(pull(Http::new(timeout)));
                // A name lookup still blocked in the resolver's thread must not hold the pull past its deadline.
                runtime.shutdown_background();
                result
            })
            .join()
            .unwrap_or_else(|_| Err("the download thread failed".into()))
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn status_reason(status: u16) -> &'static str {
    match status {
        401 => " (unauthorised: set credentials with KPATH_CHART_AUTH_<ID>_URL/USERNAME/PASSWORD)",
        403 => " (forbidden: the credentials do not give access)",
        404 => " (not found)",
        429 => " (rate limited)",
        _ => "",
    }
}

// ---------------------------------------------------------------------------------------------------------
// Helm chart repositories
// ---------------------------------------------------------------------------------------------------------

/// What a pull found: the version it resolved to, the cache entry's key, and the archive when it had to be
/// downloaded (`None`: the entry is already in the cache).
struct Pulled {
    version: String,
    key: String,
    archive: Option<Vec<u8>>,
}

/// The cache key of a chart's content: its source, name, version and archive digest.
fn content_key(source: &Source, name: &str, version: &str, digest: &str) -> String {
    let mut key = crate::render::cache::Key::new("chart");
    key.field(source.shown().as_bytes()).field(name.as_bytes()).field(version.as_bytes()).field(digest.as_bytes());
    key.finish()
}

/// One version of a chart in an `index.yaml`.
struct IndexEntry {
    version: String,
    urls: Vec<String>,
    digest: Option<String>,
}

/// The versions `index.yaml` lists for `name`. `Err` when the text is not an index; `Ok(None)` when the
/// chart is not in it.
fn read_index(text: &str, name: &str) -> Result<Option<Vec<IndexEntry>>, String> {
    let root = crate::yaml::parse_single(text)
        .map_err(|e| format!("index.yaml does not parse (line {}: {})", e.pos.line, e.message))?
        .ok_or("index.yaml is empty")?;
    let entries = root.get("entries").filter(|e| e.is_map()).ok_or("index.yaml has no `entries` mapping")?;
    let Some(versions) = entries.get(name) else { return Ok(None) };
    let mut out = Vec::new();
    for item in versions.items() {
        let Some(version) = item.get("version").and_then(|v| v.as_text()) else { continue };
        let urls = item.get("urls").map(|u| u.items().iter().filter_map(|u| u.as_text()).map(String::from).collect());
        out.push(IndexEntry {
            version: version.to_string(),
            urls: urls.unwrap_or_default(),
            digest: item
                .get("digest")
                .and_then(|d| d.as_text())
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty()),
        });
    }
    Ok(Some(out))
}

async fn pull_helm_repository(
    http: Http,
    source: &Source,
    name: &str,
    asked: Option<&str>,
    settings: &FetchSettings,
    root: &Path,
) -> Result<Pulled, String> {
    let base = source.http_base();
    let index_url = base.with_path(&format!("{}/index.yaml", source.path));
    let auth_for = |target: &Target| {
        credential_for(&settings.credentials, &target.as_source())
            .map(|c| Auth { header: SecretString::from(c.basic()), origin: target.origin() })
    };
    let index_auth = auth_for(&index_url);
    let response = http
        .get(&index_url, "application/x-yaml, text/yaml, */*", index_auth.as_ref(), settings.max_index_bytes)
        .await?;
    if response.status != 200 {
        return Err(format!("{}: HTTP {}{}", index_url.shown(), response.status, status_reason(response.status)));
    }
    let text = String::from_utf8_lossy(&response.body);
    let entries = read_index(&text, name)
        .map_err(|why| format!("{}: {why}", index_url.shown()))?
        .ok_or_else(|| format!("the repository's index.yaml has no chart named `{}`", crate::cmdline::shown(name)))?;
    let listed: Vec<&str> = entries.iter().map(|e| e.version.as_str()).collect();
    let version = select_version(asked, &listed)?;
    let entry = entries.iter().find(|e| e.version == version).ok_or("the index changed while it was read")?;
    let published = entry.digest.as_deref().map(|d| d.strip_prefix("sha256:").unwrap_or(d).to_ascii_lowercase());
    if let Some(digest) = &published {
        let key = content_key(source, name, version, digest);
        if root.join(&key).join("chart").is_dir() {
            return Ok(Pulled { version: version.to_string(), key, archive: None });
        }
    }
    let url = entry.urls.first().ok_or_else(|| format!("the index lists no download URL for version {version}"))?;
    let archive_url = index_url.join(url)?;
    let archive_auth = auth_for(&archive_url);
    let response = http
        .get(&archive_url, "application/gzip, application/octet-stream, */*", archive_auth.as_ref(), settings.max_bytes)
        .await?;
    if response.status != 200 {
        return Err(format!("{}: HTTP {}{}", archive_url.shown(), response.status, status_reason(response.status)));
    }
    let actual = sha256_hex(&response.body);
    if let Some(expected) = &published
        && *expected != actual
    {
        return Err(format!(
            "version {version}: the archive's sha256 is {actual} but the repository's index says {expected}; \
             refused (the archive or the index was altered)"
        ));
    }
    let key = content_key(source, name, version, &actual);
    Ok(Pulled { version: version.to_string(), key, archive: Some(response.body) })
}

// ---------------------------------------------------------------------------------------------------------
// OCI registries
// ---------------------------------------------------------------------------------------------------------

/// A repository of an OCI registry, with the authorisation its requests carry once obtained.
struct Registry<'a> {
    http: &'a Http,
    base: Target,
    /// `charts/app`.
    name: String,
    credential: Option<&'a Credential>,
    auth: Option<Auth>,
}

/// A `WWW-Authenticate` challenge: its scheme and parameters (`realm`, `service`, `scope`).
fn parse_challenge(header: &str) -> (String, HashMap<String, String>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else { break };
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        params.insert(key, value.to_string());
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_ascii_lowercase(), params)
}

/// `application/x-www-form-urlencoded` for one query value.
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Registry<'_> {
    /// GETs `/v2/…` of the registry, answering one authorisation challenge.
    async fn get(&mut self, path: &str, accept: &str, cap: u64) -> Result<Response, String> {
        let target = self.base.with_path(path);
        let response = self.http.get(&target, accept, self.auth.as_ref(), cap).await?;
        if response.status != 401 || self.auth.is_some() {
            return Ok(response);
        }
        let challenge = response.header("www-authenticate").unwrap_or("").to_string();
        let (scheme, params) = parse_challenge(&challenge);
        let origin = self.base.origin();
        self.auth = match scheme.as_str() {
            "bearer" => Some(Auth { header: self.token(&params).await?, origin }),
            "basic" => match self.credential {
                Some(c) => Some(Auth { header: SecretString::from(c.basic()), origin }),
                None => {
                    return Err(format!("{}: the registry asks for credentials{}", target.shown(), status_reason(401)));
                }
            },
            _ => return Ok(response),
        };
        self.http.get(&target, accept, self.auth.as_ref(), cap).await
    }

    /// A bearer token from the challenge's realm (with the credential as Basic, if any; anonymous otherwise).
    async fn token(&self, params: &HashMap<String, String>) -> Result<SecretString, String> {
        let realm = params.get("realm").ok_or("the registry's challenge names no token realm")?;
        let mut realm = Target::parse_absolute(realm).map_err(|why| format!("the registry's token realm: {why}"))?;
        if !realm.https && !is_loopback(&realm.host) {
            return Err(format!("{}: the registry's token realm is plain HTTP; refused", realm.shown()));
        }
        let scope = params.get("scope").cloned().unwrap_or_else(|| format!("repository:{}:pull", self.name));
        let mut query = realm.query.take().map(|q| format!("{q}&")).unwrap_or_default();
        if let Some(service) = params.get("service") {
            query.push_str(&format!("service={}&", query_escape(service)));
        }
        query.push_str(&format!("scope={}", query_escape(&scope)));
        realm.query = Some(query);
        // The realm may be another host than the registry (Docker Hub's is); the registry names it, and
        // the credential is the one the operator gave for this registry.
        let auth = self.credential.map(|c| Auth { header: SecretString::from(c.basic()), origin: realm.origin() });
        let response = self.http.get(&realm, "application/json", auth.as_ref(), MAX_DOCUMENT_BYTES).await?;
        if response.status != 200 {
            return Err(format!(
                "{}: HTTP {} for a token{}",
                realm.shown(),
                response.status,
                status_reason(response.status)
            ));
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&response.body)
            .map_err(|_| format!("{}: the token answer is not the documented JSON", realm.shown()))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("{}: no token in the answer", realm.shown()))?;
        Ok(SecretString::from(format!("Bearer {token}")))
    }

    /// Every tag, following `Link: <…>; rel="next"` pages.
    async fn tags(&mut self) -> Result<Vec<String>, String> {
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let mut tags = Vec::new();
        let mut path = format!("/v2/{}/tags/list", self.name);
        for _ in 0..MAX_TAG_PAGES {
            let (route, query) = match path.split_once('?') {
                Some((r, q)) => (r.to_string(), Some(q.to_string())),
                None => (path.clone(), None),
            };
            let mut target = self.base.with_path(&route);
            target.query = query;
            let response = self.get_target(target, "application/json").await?;
            if response.status != 200 {
                return Err(format!(
                    "listing the chart's tags: HTTP {}{}",
                    response.status,
                    status_reason(response.status)
                ));
            }
            let page: TagList = serde_json::from_slice(&response.body)
                .map_err(|_| "the tag list is not the documented JSON".to_string())?;
            tags.extend(page.tags.unwrap_or_default());
            let next = response.header("link").and_then(|link| {
                let (url, rel) = link.split_once(';')?;
                rel.contains("rel=\"next\"")
                    .then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_string())
            });
            match next {
                Some(next) if next.starts_with("/v2/") => path = next,
                _ => return Ok(tags),
            }
        }
        Ok(tags)
    }

    async fn get_target(&mut self, target: Target, accept: &str) -> Result<Response, String> {
        let path = target.path.clone();
        let query = target.query.clone();
        if query.is_none() {
            return self.get(&path, accept, MAX_DOCUMENT_BYTES).await;
        }
        // Pages after the first: the authorisation is already known.
        self.http.get(&target, accept, self.auth.as_ref(), MAX_DOCUMENT_BYTES).await
    }
}

/// Whether `name` is a repository name the distribution spec allows (lower-case path components).
fn valid_repository_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        })
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !tag.starts_with(['.', '-'])
}

async fn pull_oci(
    http: Http,
    source: &Source,
    name: &str,
    asked: Option<&str>,
    settings: &FetchSettings,
    root: &Path,
) -> Result<Pulled, String> {
    let repository = format!("{}/{name}", source.path.trim_start_matches('/')).trim_start_matches('/').to_string();
    if !valid_repository_name(&repository) {
        return Err(format!("`{}` is not an OCI repository name", crate::cmdline::shown(&repository)));
    }
    let mut registry = Registry {
        http: &http,
        base: source.http_base().with_path("/"),
        name: repository.clone(),
        credential: credential_for(&settings.credentials, source),
        auth: None,
    };
    // Helm writes a version's `+` as `_` in a tag (tags cannot hold `+`).
    let version = match asked {
        Some(asked) if is_exact(asked) => asked.trim().to_string(),
        _ => {
            let tags = registry.tags().await?;
            let versions: Vec<String> = tags.iter().map(|t| t.replace('_', "+")).collect();
            let listed: Vec<&str> = versions.iter().map(String::as_str).collect();
            select_version(asked, &listed)?.to_string()
        }
    };
    let tag = version.replace('+', "_");
    if !valid_tag(&tag) {
        return Err(format!("`{}` is not a valid tag", crate::cmdline::shown(&tag)));
    }
    let response = registry.get(&format!("/v2/{repository}/manifests/{tag}"), OCI_MANIFEST, MAX_DOCUMENT_BYTES).await?;
    if response.status != 200 {
        let what = if response.status == 404 {
            format!("version {version} is not in the registry")
        } else {
            format!("HTTP {}", response.status)
        };
        return Err(format!(
            "the manifest of {version}: {what}{}",
            if response.status == 404 { "" } else { status_reason(response.status) }
        ));
    }
    // A manifest asked for by tag is checked against the digest the registry says it has.
    if let Some(digest) = response.header("docker-content-digest").and_then(|d| d.strip_prefix("sha256:"))
        && digest != sha256_hex(&response.body)
    {
        return Err(format!("the manifest of {version} does not match its digest sha256:{digest}"));
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Descriptor {
        media_type: String,
        digest: String,
        size: u64,
    }
    #[derive(serde::Deserialize)]
    struct Manifest {
        layers: Vec<Descriptor>,
    }
    let manifest: Manifest = serde_json::from_slice(&response.body)
        .map_err(|_| format!("the manifest of {version} is not an OCI image manifest"))?;
    let layer = manifest.layers.iter().find(|l| l.media_type == HELM_CHART_LAYER).ok_or_else(|| {
        format!("the artifact {version} has no Helm chart layer ({HELM_CHART_LAYER}): not a Helm chart")
    })?;
    let digest = layer
        .digest
        .strip_prefix("sha256:")
        .filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("the chart layer of {version} has no sha256 digest"))?
        .to_ascii_lowercase();
    let key = content_key(source, name, &version, &digest);
    if root.join(&key).join("chart").is_dir() {
        return Ok(Pulled { version, key, archive: None });
    }
    if layer.size > settings.max_bytes {
        return Err(format!(
            "the chart archive of {version} is {}, over kpath's {} limit",
            crate::helm::binary::human_bytes(layer.size as usize),
            crate::helm::binary::human_bytes(settings.max_bytes as usize)
        ));
    }
    let response = registry
        .get(&format!("/v2/{repository}/blobs/sha256:{digest}"), "application/octet-stream, */*", settings.max_bytes)
        .await?;
    if response.status != 200 {
        return Err(format!(
            "the chart layer of {version}: HTTP {}{}",
            response.status,
            status_reason(response.status)
        ));
    }
    let actual = sha256_hex(&response.body);
    if actual != digest {
        return Err(format!(
            "version {version}: the chart layer's sha256 is {actual}, not the sha256:{digest} it was asked by; refused"
        ));
    }
    Ok(Pulled { version, key, archive: Some(response.body) })
}

// ---------------------------------------------------------------------------------------------------------
// Unpacking
// ---------------------------------------------------------------------------------------------------------

/// A reader that fails once more than `left` bytes have come through: a gzip bomb stops at the cap.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("the archive decompresses past kpath's limit for a chart"));
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Unpacks a chart archive (`NAME/Chart.yaml`, `NAME/templates/…`) into `dest`, without its top directory.
///
/// Only regular files and directories are unpacked, under one top directory: an absolute path, a `..`
/// component, a link of either kind or a device refuses the whole archive. Each file is held to
/// [`MAX_CHART_FILE_BYTES`], all of them to [`MAX_CHART_BYTES`] and [`MAX_ARCHIVE_ENTRIES`] entries, like a
/// chart read from the repository. Returns the bytes unpacked.
fn unpack(archive: &[u8], dest: &Path) -> Result<u64, String> {
    let gz = flate2::read::GzDecoder::new(archive);
    // Headers and padding come on top of the files' bytes: 8 MiB is room for every entry's header.
    let capped = Capped { inner: gz, left: MAX_CHART_BYTES + (8 << 20) };
    let mut tar = tar::Archive::new(capped);
    let bad = |why: String| format!("the chart archive is refused: {why}");
    let entries = tar.entries().map_err(|e| bad(e.to_string()))?;
    let mut top: Option<Vec<u8>> = None;
    let mut total = 0u64;
    let mut count = 0usize;
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot write the cache: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        count += 1;
        if count > MAX_ARCHIVE_ENTRIES {
            return Err(bad(format!("more than {MAX_ARCHIVE_ENTRIES} entries")));
        }
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let shown = crate::cmdline::shown(&String::from_utf8_lossy(&raw));
        if raw.starts_with(b"/") {
            return Err(bad(format!("`{shown}` is an absolute path")));
        }
        let mut parts: Vec<&[u8]> = Vec::new();
        for part in raw.split(|b| *b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => return Err(bad(format!("`{shown}` climbs out with `..`"))),
                p if p.contains(&b'\\') || p.contains(&0) => return Err(bad(format!("`{shown}` has a backslash"))),
                p => parts.push(p),
            }
        }
        let Some((first, rest)) = parts.split_first() else { continue };
        match &top {
            None => top = Some(first.to_vec()),
            Some(t) if t.as_slice() == *first => {}
            Some(_) => return Err(bad(format!("`{shown}` is outside the chart's top directory"))),
        }
        let mut path = dest.to_path_buf();
        for part in rest {
            path.push(std::str::from_utf8(part).map_err(|_| bad(format!("`{shown}` is not a UTF-8 name")))?);
        }
        match kind {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&path).map_err(|e| format!("cannot write the cache: {e}"))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if rest.is_empty() {
                    return Err(bad(format!("`{shown}` is a file where the chart's directory should be")));
                }
                let size = entry.size();
                if size > MAX_CHART_FILE_BYTES {
                    return Err(bad(format!(
                        "`{shown}` is {}, over kpath's {} limit for a file of a chart",
                        crate::helm::binary::human_bytes(size as usize),
                        crate::helm::binary::human_bytes(MAX_CHART_FILE_BYTES as usize)
                    )));
                }
                total = total.saturating_add(size);
                if total > MAX_CHART_BYTES {
                    return Err(bad(format!(
                        "its files pass kpath's {} limit for a whole chart",
                        crate::helm::binary::human_bytes(MAX_CHART_BYTES as usize)
                    )));
                }
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| format!("cannot write the cache: {e}"))?;
                }
                // `create_new`: a second entry with the same name is refused rather than overwriting.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| bad(format!("`{shown}` cannot be written ({e}); a duplicate entry?")))?;
                let copied = std::io::copy(&mut (&mut entry).take(MAX_CHART_FILE_BYTES), &mut file)
                    .map_err(|e| bad(format!("`{shown}`: {e}")))?;
                if copied != size {
                    return Err(bad(format!("`{shown}` is cut short")));
                }
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                return Err(bad(format!("`{shown}` is a link; kpath unpacks no links from a chart archive")));
            }
            other => return Err(bad(format!("`{shown}` is a {other:?} entry, not a file or directory"))),
        }
    }
    if !dest.join("Chart.yaml").is_file() {
        return Err(bad("it has no Chart.yaml in its top directory".into()));
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------------------
// The cache
// ---------------------------------------------------------------------------------------------------------
//
// Under the cache root (`<cache_dir>/charts`, or a temporary directory of this process):
// - `<key>/chart/`: one chart as unpacked, `<key>` the content key (source, name, version, archive digest);
//   `<key>/.kpath-size` its bytes, `<key>/.kpath-used` touched on every use (the eviction order).
// - `requests/<request key>`: what a request (source, name, version asked) resolved to: the content key and
//   whether the version was exact. An exact version resolves once for good; a range or "latest" for
//   `resolve_ttl`, then again from the source (falling back to the last resolution when the source fails).
// Entries are unpacked into `.tmp-*` and renamed into place, so a reader never sees half a chart and two
// processes pulling the same chart both end with the same complete entry.

/// The cache root: `<cache_dir>/charts`, or a directory of this process under the temporary directory
/// (named like helm's sandboxes, so a later kpath sweeps it once this one is gone).
fn cache_root(settings: &FetchSettings) -> Result<PathBuf, String> {
    if let Some(dir) = &settings.cache_dir {
        let root = dir.join("charts");
        std::fs::create_dir_all(root.join("requests")).map_err(|e| format!("cannot create the chart cache: {e}"))?;
        return Ok(root);
    }
    static TEMPORARY: OnceLock<Result<crate::cleanup::OwnedDir, String>> = OnceLock::new();
    let dir = TEMPORARY
        .get_or_init(|| {
            crate::cleanup::OwnedDir::new("kpath-helm-charts-").map_err(|e| format!("no temporary directory: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)?;
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("requests")).map_err(|e| format!("cannot create the chart cache: {e}"))?;
    Ok(root)
}

/// What a request resolved to.
struct Record {
    key: String,
    exact: bool,
    age: Duration,
}

fn read_record(root: &Path, request: &str) -> Option<Record> {
    let path = root.join("requests").join(request);
    let text = String::from_utf8(crate::loader::read_bounded(&path, 4096).ok()?).ok()?;
    let mut lines = text.lines();
    let key = lines.next()?.to_string();
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let exact = lines.next() == Some("exact");
    let age = std::fs::metadata(&path).ok()?.modified().ok()?.elapsed().unwrap_or_default();
    Some(Record { key, exact, age })
}

fn write_record(root: &Path, request: &str, key: &str, exact: bool) {
    let dir = root.join("requests");
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(&dir) else { return };
    let text = format!("{key}\n{}\n", if exact { "exact" } else { "range" });
    if std::io::Write::write_all(&mut tmp, text.as_bytes()).is_ok() {
        let _ = tmp.persist(dir.join(request));
    }
}

/// The entry's chart directory, marked as used now; `None` when the entry is not (or no longer) there.
fn use_entry(root: &Path, key: &str) -> Option<PathBuf> {
    let chart = root.join(key).join("chart");
    if !chart.join("Chart.yaml").is_file() {
        return None;
    }
    let _ = std::fs::write(root.join(key).join(".kpath-used"), b"");
    Some(chart)
}

/// Unpacks `archive` as entry `key` (unless another pull got there first).
fn store(root: &Path, key: &str, archive: &[u8]) -> Result<(), String> {
    if root.join(key).join("chart").is_dir() {
        return Ok(());
    }
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(root)
        .map_err(|e| format!("cannot write the chart cache: {e}"))?;
    let bytes = unpack(archive, &tmp.path().join("chart"))?;
    std::fs::write(tmp.path().join(".kpath-size"), bytes.to_string())
        .map_err(|e| format!("cannot write the chart cache: {e}"))?;
    let _ = std::fs::write(tmp.path().join(".kpath-used"), b"");
    match std::fs::rename(tmp.path(), root.join(key)) {
        Ok(()) => Ok(()),
        // Another process renamed its copy first: the same content, keep it.
        Err(_) if root.join(key).join("chart").is_dir() => Ok(()),
        Err(e) => Err(format!("cannot write the chart cache: {e}")),
    }
}

/// Removes the least recently used entries while the cache holds more than `max` bytes (never `keep`, nor an
/// entry used within [`EVICTION_GRACE`]), and leftovers of interrupted pulls.
fn evict(root: &Path, max: u64, keep: &str) {
    let Ok(dir) = std::fs::read_dir(root) else { return };
    let mut entries = Vec::new();
    let mut total = 0u64;
    for item in dir.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        let path = item.path();
        if name.starts_with(".tmp-") || name.starts_with(".old-") {
            let stale = item.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
            if stale.is_some_and(|age| age > Duration::from_secs(3600)) {
                let _ = std::fs::remove_dir_all(&path);
            }
            continue;
        }
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let size = std::fs::read_to_string(path.join(".kpath-size"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let used =
            std::fs::metadata(path.join(".kpath-used")).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
        total = total.saturating_add(size);
        entries.push((used, size, name, path));
    }
    if total <= max {
        return;
    }
    entries.sort();
    for (used, size, name, path) in entries {
        if total <= max {
            break;
        }
        if name == keep || used.elapsed().unwrap_or_default() < EVICTION_GRACE {
            continue;
        }
        // Renamed first: a reader sees the entry whole or not at all.
        let old = root.join(format!(".old-{name}"));
        if std::fs::rename(&path, &old).is_ok() {
            let _ = std::fs::remove_dir_all(&old);
            total = total.saturating_sub(size);
        }
    }
}

/// Requests resolved by this process, so every render of a run sees the same chart; and one lock per
/// request, so threads asking for the same chart at once pull it once.
struct Resolved {
    paths: HashMap<String, PathBuf>,
    locks: HashMap<String, Arc<Mutex<()>>>,
}

fn resolved() -> &'static Mutex<Resolved> {
    static RESOLVED: OnceLock<Mutex<Resolved>> = OnceLock::new();
    RESOLVED.get_or_init(|| Mutex::new(Resolved { paths: HashMap::new(), locks: HashMap::new() }))
}

// ---------------------------------------------------------------------------------------------------------
// fetch
// ---------------------------------------------------------------------------------------------------------

/// Whether a chart name can be looked up: Helm's names are lower-case letters, digits and `-` (`_` and `.`
/// are tolerated); no `/`.
fn valid_chart_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 250
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !name.starts_with('.')
}

/// The chart unpacked in the content-addressed cache (a directory with `Chart.yaml`), pulled if needed:
/// from a Helm repository (`index.yaml`, the archive's sha256 checked against the index) or an OCI registry
/// (manifest, chart layer by media type, checked by its digest). Only when the operator allows the source.
pub fn fetch(chart: &RemoteChart, settings: &FetchSettings) -> Result<PathBuf, FetchError> {
    let asked = chart.version.as_deref().map(str::trim).filter(|v| !v.is_empty());
    let named = || {
        let version = asked.map_or(String::new(), |v| format!(" {}", crate::cmdline::shown(v)));
        format!("chart `{}`{version} from `{}`", crate::cmdline::shown(&chart.name), shown_url(&chart.repository))
    };
    let failed = |why: String| FetchError::Failed(format!("{}: {why}", named()));
    let source = Source::parse(&chart.repository).map_err(failed)?;
    if !allowed(chart, &settings.allowed) {
        return Err(FetchError::NotAllowed(format!(
            "{} was not pulled: that chart source is not allowed. The operator allows it with \
             `--allow-chart-source {}` (or in KPATH_ALLOW_CHART_SOURCES); a repository's .kpath.yml cannot",
            named(),
            source.shown()
        )));
    }
    if !valid_chart_name(&chart.name) {
        return Err(failed("not a chart name".into()));
    }
    let root = cache_root(settings).map_err(failed)?;
    let mut request = crate::render::cache::Key::new("chart-request");
    request.field(source.shown().as_bytes()).field(chart.name.as_bytes()).field(asked.unwrap_or("").as_bytes());
    let request = request.finish();
    let memo_key = format!("{}\u{0}{request}", root.display());
    let lock = {
        let mut state = resolved().lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(state.locks.entry(memo_key.clone()).or_default())
    };
    let _one_at_a_time = lock.lock().unwrap_or_else(|e| e.into_inner());
    let remembered = resolved().lock().unwrap_or_else(|e| e.into_inner()).paths.get(&memo_key).cloned();
    if let Some(path) = remembered
        && path.join("Chart.yaml").is_file()
    {
        return Ok(path);
    }
    let record = read_record(&root, &request);
    let fresh = record.as_ref().filter(|r| r.exact || r.age < settings.resolve_ttl);
    let path = match fresh.and_then(|r| use_entry(&root, &r.key)) {
        Some(path) => path,
        None => match pull(&source, chart, asked, settings, &root) {
            Ok((key, version)) => {
                write_record(&root, &request, &key, asked.is_some_and(is_exact));
                tracing::info!(chart = %crate::logtext::bounded(&chart.name), %version, source = %source.shown(), "chart ready");
                evict(&root, settings.max_cache_bytes, &key);
                use_entry(&root, &key)
                    .ok_or_else(|| failed("the cache entry vanished while it was being used".into()))?
            }
            Err(why) => {
                // The source is down or changed: the last resolution still renders what was deployed then.
                match record.and_then(|r| use_entry(&root, &r.key)) {
                    Some(path) => {
                        tracing::warn!(chart = %crate::logtext::bounded(&chart.name), reason = %crate::logtext::bounded(&why), "chart source failed; using the chart it resolved to before");
                        path
                    }
                    None => return Err(failed(why)),
                }
            }
        },
    };
    resolved().lock().unwrap_or_else(|e| e.into_inner()).paths.insert(memo_key, path.clone());
    Ok(path)
}

/// Pulls the chart (or finds its content already cached): the entry's key and the version resolved.
fn pull(
    source: &Source,
    chart: &RemoteChart,
    asked: Option<&str>,
    settings: &FetchSettings,
    root: &Path,
) -> Result<(String, String), String> {
    let pulled = with_http(settings.timeout, |http| async move {
        match source.scheme {
            Scheme::Oci => pull_oci(http, source, &chart.name, asked, settings, root).await,
            Scheme::Http | Scheme::Https => {
                pull_helm_repository(http, source, &chart.name, asked, settings, root).await
            }
        }
    })?;
    if let Some(archive) = &pulled.archive {
        store(root, &pulled.key, archive).map_err(|why| format!("version {}: {why}", pulled.version))?;
    }
    Ok((pulled.key, pulled.version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn sources_parse_strictly() {
        let ok = |url: &str| Source::parse(url).map(|s| s.shown()).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(ok("HTTPS://Charts.Example.com/"), "https://charts.example.com");
        assert_eq!(ok("https://charts.example.com./stable//x/"), "https://charts.example.com/stable/x");
        assert_eq!(ok("oci://[::1]:5000/charts"), "oci://[::1]:5000/charts");
        for bad in [
            "charts.example.com",
            "ftp://charts.example.com",
            "https://user:pw@charts.example.com",
            "https://charts.example.com/x?token=1",
            "https://charts.example.com/a/../b",
            "https://charts.example.com/a/%2E%2E/b",
            "https://charts.example.com:0",
            "https://charts.example.com:99999",
            "https://-evil/",
            "https://a..b/",
            "https://charts.example.com\\@evil.net",
            "https:///x",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
        // Default ports are filled in; a loopback registry speaks plain HTTP on 80.
        let prefix = Source::parse("oci://127.0.0.1/charts").expect("parses");
        assert!(prefix.covers(&Source::parse("oci://127.0.0.1:80/charts/app").expect("parses")));
        assert!(!Source::parse("oci://127.0.0.1:5000").expect("parses").http_base().https);
        assert!(Source::parse("oci://ghcr.io").expect("parses").http_base().https);
    }

    #[test]
    fn credentials_never_show_their_password() {
        let creds = Credential::new("https://x.example.com", "me", SecretString::from("hunter2")).expect("valid");
        assert!(!format!("{creds:?}").contains("hunter2"));
        assert!(
            Credential::new("https://me:hunter2@x.example.com", "me", SecretString::from("p"))
                .is_err_and(|e| !e.contains("hunter2"))
        );
    }

    #[test]
    fn credentials_come_from_indexed_variables() {
        let vars = |pairs: &[(&str, &str)]| {
            Credential::from_vars(
                pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>().into_iter(),
            )
        };
        let got = vars(&[
            ("KPATH_CHART_AUTH_1_URL", "https://charts.example.com"),
            ("KPATH_CHART_AUTH_1_USERNAME", "ci"),
            ("KPATH_CHART_AUTH_1_PASSWORD", "s3cret\n"),
            ("KPATH_CHART_AUTH_GHCR_URL", "oci://ghcr.io/acme"),
            ("KPATH_CHART_AUTH_GHCR_USERNAME", "bot"),
            ("KPATH_CHART_AUTH_GHCR_PASSWORD", "token"),
            ("OTHER", "x"),
        ])
        .expect("valid");
        assert_eq!(got.len(), 2);
        let source = Source::parse("https://charts.example.com/stable").expect("parses");
        assert_eq!(credential_for(&got, &source).map(|c| c.username.as_str()), Some("ci"));
        assert_eq!(credential_for(&got, &source).map(|c| c.basic()), Some("Basic Y2k6czNjcmV0".to_string()));
        assert!(credential_for(&got, &Source::parse("https://charts.example.com.evil.net").expect("parses")).is_none());

        let missing =
            vars(&[("KPATH_CHART_AUTH_X_URL", "https://a.example.com"), ("KPATH_CHART_AUTH_X_PASSWORD", "pw-value")])
                .expect_err("no username");
        assert!(missing.contains("KPATH_CHART_AUTH_X_USERNAME") && !missing.contains("pw-value"), "{missing}");
        let bad_url = vars(&[
            ("KPATH_CHART_AUTH_X_URL", "https://u:pw-value@a.example.com"),
            ("KPATH_CHART_AUTH_X_USERNAME", "u"),
            ("KPATH_CHART_AUTH_X_PASSWORD", "pw-value"),
        ])
        .expect_err("user information in the URL");
        assert!(bad_url.contains("KPATH_CHART_AUTH_X_URL") && !bad_url.contains("pw-value"), "{bad_url}");

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pw"), "from-file\n").expect("write");
        let file = dir.path().join("pw").display().to_string();
        let got = vars(&[
            ("KPATH_CHART_AUTH_F_URL", "https://f.example.com"),
            ("KPATH_CHART_AUTH_F_USERNAME", "u"),
            ("KPATH_CHART_AUTH_F_PASSWORD_FILE", &file),
        ])
        .expect("valid");
        assert_eq!(got[0].password.expose_secret(), "from-file");
    }

    #[test]
    fn versions_are_selected_as_helm_does() {
        let listed = ["1.0.0", "1.2.0", "1.2.5", "v1.3.0", "2.0.0-rc.1", "1.10", "0.9.0"];
        let pick = |asked: Option<&str>| select_version(asked, &listed);
        assert_eq!(pick(None), Ok("1.10"));
        assert_eq!(pick(Some("1.2.0")), Ok("1.2.0"));
        assert_eq!(pick(Some("v1.3.0")), Ok("v1.3.0"));
        assert_eq!(pick(Some("1.3.0")), Ok("v1.3.0"));
        assert_eq!(pick(Some("1.2")), Ok("1.2.5"), "a bare short version is that minor, not a caret");
        assert_eq!(pick(Some("~1.2")), Ok("1.2.5"));
        assert_eq!(pick(Some("^1.2")), Ok("1.10"));
        assert_eq!(pick(Some(">= 1.0.0 < 1.3.0")), Ok("1.2.5"));
        assert_eq!(pick(Some("<1")), Ok("0.9.0"));
        assert_eq!(pick(Some("2.0.0-rc.1")), Ok("2.0.0-rc.1"));
        assert_eq!(pick(Some(">=2.0.0-rc.0")), Ok("2.0.0-rc.1"));
        assert!(pick(Some("^3")).is_err_and(|e| e.contains("the newest is 2.0.0-rc.1")));
        assert!(pick(Some("not a version!")).is_err());
        assert!(is_exact("1.2.3") && is_exact("v1.2.3+build.1") && !is_exact("1.2") && !is_exact("^1.2.3"));
    }

    #[test]
    fn references_resolve_against_the_index() {
        let index = Target::parse_absolute("https://charts.example.com/stable/index.yaml").expect("parses");
        let shown = |r: &str| index.join(r).map(|t| t.uri()).unwrap_or_else(|e| e);
        assert_eq!(shown("app-1.0.0.tgz"), "https://charts.example.com/stable/app-1.0.0.tgz");
        assert_eq!(shown("./charts/app-1.0.0.tgz"), "https://charts.example.com/stable/charts/app-1.0.0.tgz");
        assert_eq!(shown("../app.tgz"), "https://charts.example.com/app.tgz");
        assert_eq!(shown("/dl/app.tgz?sig=1"), "https://charts.example.com/dl/app.tgz?sig=1");
        assert_eq!(shown("//cdn.example.com/app.tgz"), "https://cdn.example.com/app.tgz");
        assert_eq!(shown("https://github.com/acme/x/releases/app.tgz"), "https://github.com/acme/x/releases/app.tgz");
        assert!(index.join("https://u:p@evil.example.com/app.tgz").is_err());
        assert!(index.join("file:///etc/passwd").is_err());
        // What is shown never carries the query (a presigned URL's signature).
        assert_eq!(
            index.join("/dl/app.tgz?sig=1").map(|t| t.shown()),
            Ok("https://charts.example.com/dl/app.tgz".to_string())
        );
    }

    #[test]
    fn challenges_are_read() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "bearer");
        assert_eq!(params["realm"], "https://auth.example.com/token");
        assert_eq!(params["service"], "registry.example.com");
        assert_eq!(params["scope"], "repository:a/b:pull,push");
        assert_eq!(parse_challenge(r#"Basic realm="Registry""#).0, "basic");
        assert_eq!(query_escape("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }

    /// A gzipped chart archive `NAME/…` holding `files`.
    fn archive(name: &str, files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (path, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, format!("{name}/{path}"), text.as_bytes()).expect("append");
        }
        builder.into_inner().expect("tar").finish().expect("gzip")
    }

    fn chart_archive(version: &str) -> Vec<u8> {
        archive(
            "shop",
            &[
                ("Chart.yaml", &format!("apiVersion: v2\nname: shop\nversion: {version}\n")),
                ("templates/cm.yaml", "kind: ConfigMap\n"),
            ],
        )
    }

    /// An archive whose entries are written by `add` on a raw tar builder (links, odd names).
    fn raw(add: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        add(&mut builder);
        let tar = builder.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).expect("gzip");
        gz.finish().expect("gzip")
    }

    fn file(builder: &mut tar::Builder<Vec<u8>>, path: &str, size: u64, body: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, body).expect("append");
    }

    #[test]
    fn archives_unpack_without_their_top_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = unpack(&chart_archive("1.0.0"), &dir.path().join("chart")).expect("unpacks");
        assert!(dir.path().join("chart/Chart.yaml").is_file());
        assert!(dir.path().join("chart/templates/cm.yaml").is_file());
        assert_eq!(bytes, ("apiVersion: v2\nname: shop\nversion: 1.0.0\n".len() + "kind: ConfigMap\n".len()) as u64);
    }

    #[test]
    fn hostile_archives_are_refused() {
        let refused = |archive: Vec<u8>, expected: &str| {
            let dir = tempfile::tempdir().expect("tempdir");
            let err = unpack(&archive, &dir.path().join("chart")).expect_err(expected);
            assert!(err.contains(expected), "{err} (expected {expected})");
        };
        refused(
            raw(|b| {
                file(b, "shop/Chart.yaml", 3, b"a: b");
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                b.append_link(&mut header, "shop/templates/secret.yaml", "/etc/passwd").expect("link");
            }),
            "is a link",
        );
        refused(
            raw(|b| {
                file(b, "shop/Chart.yaml", 3, b"a: b");
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Link);
                header.set_size(0);
                b.append_link(&mut header, "shop/values.yaml", "shop/Chart.yaml").expect("link");
            }),
            "is a link",
        );
        refused(
            raw(|b| {
                file(b, "shop/Chart.yaml", 3, b"a: b");
                file(b, "other/Chart.yaml", 3, b"a: b");
            }),
            "outside the chart's top directory",
        );
        refused(raw(|b| file(b, "shop/values.yaml", 3, b"a: b")), "no Chart.yaml");
        refused(
            raw(|b| {
                file(b, "shop/Chart.yaml", 3, b"a: b");
                file(b, "shop/Chart.yaml", 3, b"c: d");
            }),
            "duplicate",
        );
        refused(
            raw(|b| {
                let mut header = tar::Header::new_gnu();
                header.set_size(3);
                header.set_mode(0o644);
                header.as_gnu_mut().expect("gnu").name[..17].copy_from_slice(b"/shop/Chart.yaml\0");
                header.set_cksum();
                b.append(&header, &b"a: b"[..3]).expect("append");
            }),
            "absolute path",
        );
        // A file larger than a chart file may be: refused from its header, before anything is read.
        refused(
            raw(|b| {
                file(b, "shop/Chart.yaml", 3, b"a: b");
                let mut header = tar::Header::new_gnu();
                header.set_size(MAX_CHART_FILE_BYTES + 1);
                header.set_mode(0o644);
                header.set_path("shop/big.yaml").expect("path");
                header.set_cksum();
                b.get_mut().extend_from_slice(header.as_bytes());
            }),
            "limit for a file of a chart",
        );
        refused(
            raw(|b| {
                for i in 0..=MAX_ARCHIVE_ENTRIES {
                    file(b, &format!("shop/t/{i}"), 0, b"");
                }
            }),
            "more than 10000 entries",
        );
        refused(b"not gzip at all".to_vec(), "refused");
    }

    #[test]
    fn decompression_stops_at_the_cap() {
        let mut capped = Capped { inner: std::io::repeat(0), left: 1000 };
        let mut sink = Vec::new();
        let err = std::io::copy(&mut capped, &mut sink).expect_err("capped");
        assert!(err.to_string().contains("past kpath's limit"));
        assert_eq!(sink.len(), 1000);
    }

    /// An HTTP server on 127.0.0.1 for an axum router, stopped when dropped.
    struct Fake {
        port: u16,
        _runtime: tokio::runtime::Runtime,
    }

    fn serve(app: impl FnOnce(u16) -> axum::Router) -> Fake {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("address").port();
        let app = app(port);
        runtime.spawn(async move { axum::serve(listener, app).await });
        Fake { port, _runtime: runtime }
    }

    /// The `Authorization` and query of each token request.
    type TokenRequests = Arc<Mutex<Vec<(Option<String>, String)>>>;

    /// A registry that implements only what a pull uses, as the distribution spec and the token spec
    /// describe them: `/v2/charts/shop/{tags/list,manifests/TAG,blobs/DIGEST}` answer 401 with a Bearer
    /// challenge until a token from `/token` is presented; `/token` wants `expected` as Basic credentials;
    /// the blob is a redirect to another origin (a "storage service") that records the `Authorization` it got.
    struct FakeRegistry {
        registry: Fake,
        _storage: Fake,
        token_requests: TokenRequests,
        storage_auth: Arc<Mutex<Vec<Option<String>>>>,
        hits: Arc<AtomicUsize>,
    }

    fn fake_registry(expected: Option<&'static str>, versions: &[&str]) -> FakeRegistry {
        use axum::extract::{Path as UrlPath, RawQuery};
        use axum::http::{HeaderMap, StatusCode, header};
        use axum::response::IntoResponse;
        use axum::routing::get;

        let archives: HashMap<String, Vec<u8>> = versions.iter().map(|v| (v.to_string(), chart_archive(v))).collect();
        let blobs: Arc<HashMap<String, Vec<u8>>> =
            Arc::new(archives.values().map(|a| (format!("sha256:{}", sha256_hex(a)), a.clone())).collect());
        let storage_auth = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&storage_auth);
        let stored = Arc::clone(&blobs);
        let storage = serve(move |_| {
            axum::Router::new().route(
                "/store/{digest}",
                get(move |UrlPath(digest): UrlPath<String>, headers: HeaderMap| {
                    let seen = Arc::clone(&seen);
                    let stored = Arc::clone(&stored);
                    async move {
                        seen.lock()
                            .expect("lock")
                            .push(headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("?").to_string()));
                        match stored.get(&digest) {
                            Some(blob) => blob.clone().into_response(),
                            None => StatusCode::NOT_FOUND.into_response(),
                        }
                    }
                }),
            )
        });
        let storage_port = storage.port;
        let token_requests = Arc::new(Mutex::new(Vec::new()));
        let tokens = Arc::clone(&token_requests);
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        let manifests: Arc<HashMap<String, (String, Vec<u8>)>> = Arc::new(
            archives
                .iter()
                .map(|(version, archive)| {
                    let manifest = serde_json::json!({
                        "schemaVersion": 2,
                        "mediaType": OCI_MANIFEST,
                        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": "sha256:00", "size": 2},
                        "layers": [{"mediaType": HELM_CHART_LAYER, "digest": format!("sha256:{}", sha256_hex(archive)), "size": archive.len()}],
                    })
                    .to_string()
                    .into_bytes();
                    (version.replace('+', "_"), (format!("sha256:{}", sha256_hex(&manifest)), manifest))
                })
                .collect(),
        );
        let tag_list =
            serde_json::json!({"name": "charts/shop", "tags": manifests.keys().collect::<Vec<_>>()}).to_string();
        let registry = serve(move |port| {
            let challenge = format!(
                r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:charts/shop:pull""#
            );
            let authorised = move |headers: &HeaderMap| -> Result<(), Box<axum::response::Response>> {
                if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some("Bearer good-token") {
                    Ok(())
                } else {
                    Err(Box::new(
                        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge.clone())]).into_response(),
                    ))
                }
            };
            let (a, b, c) = (authorised.clone(), authorised.clone(), authorised);
            let counted_a = Arc::clone(&counted);
            axum::Router::new()
                .route(
                    "/token",
                    get(move |headers: HeaderMap, RawQuery(query): RawQuery| {
                        let tokens = Arc::clone(&tokens);
                        async move {
                            let auth =
                                headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("?").to_string());
                            tokens.lock().expect("lock").push((auth.clone(), query.unwrap_or_default()));
                            if auth.as_deref() != expected {
                                return StatusCode::UNAUTHORIZED.into_response();
                            }
                            axum::Json(serde_json::json!({"token": "good-token"})).into_response()
                        }
                    }),
                )
                .route(
                    "/v2/charts/shop/tags/list",
                    get(move |headers: HeaderMap| {
                        let tag_list = tag_list.clone();
                        counted_a.fetch_add(1, Ordering::SeqCst);
                        async move {
                            match a(&headers) {
                                Ok(()) => ([(header::CONTENT_TYPE, "application/json")], tag_list).into_response(),
                                Err(challenge) => *challenge,
                            }
                        }
                    }),
                )
                .route(
                    "/v2/charts/shop/manifests/{tag}",
                    get(move |UrlPath(tag): UrlPath<String>, headers: HeaderMap| {
                        let manifests = Arc::clone(&manifests);
                        async move {
                            if let Err(challenge) = b(&headers) {
                                return *challenge;
                            }
                            match manifests.get(&tag) {
                                Some((digest, body)) => (
                                    [
                                        (header::CONTENT_TYPE, OCI_MANIFEST.to_string()),
                                        (header::HeaderName::from_static("docker-content-digest"), digest.clone()),
                                    ],
                                    body.clone(),
                                )
                                    .into_response(),
                                None => StatusCode::NOT_FOUND.into_response(),
                            }
                        }
                    }),
                )
                .route(
                    "/v2/charts/shop/blobs/{digest}",
                    get(move |UrlPath(digest): UrlPath<String>, headers: HeaderMap| async move {
                        if let Err(challenge) = c(&headers) {
                            return *challenge;
                        }
                        let location =
                            format!("http://127.0.0.1:{storage_port}/store/{digest}?signature=presigned-secret");
                        (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response()
                    }),
                )
        });
        FakeRegistry { registry, _storage: storage, token_requests, storage_auth, hits }
    }

    fn oci_chart(port: u16, version: Option<&str>) -> RemoteChart {
        RemoteChart {
            repository: format!("oci://127.0.0.1:{port}/charts"),
            name: "shop".into(),
            version: version.map(String::from),
        }
    }

    #[test]
    fn oci_pull_follows_the_token_flow_and_keeps_credentials_at_home() {
        let fake = fake_registry(Some("Basic Ym90OnMzY3JldA=="), &["1.0.0", "1.3.0+build.7", "2.0.0"]);
        let cache = tempfile::tempdir().expect("cache");
        let repository = format!("oci://127.0.0.1:{}/charts", fake.registry.port);
        let settings = FetchSettings {
            allowed: vec![repository.clone()],
            cache_dir: Some(cache.path().to_path_buf()),
            credentials: vec![Credential::new(&repository, "bot", SecretString::from("s3cret")).expect("valid")],
            ..FetchSettings::default()
        };
        let dir = fetch(&oci_chart(fake.registry.port, Some("^1")), &settings).expect("pulled");
        let chart_yaml = std::fs::read_to_string(dir.join("Chart.yaml")).expect("Chart.yaml");
        assert!(chart_yaml.contains("version: 1.3.0+build.7"), "{chart_yaml}");
        let tokens = fake.token_requests.lock().expect("lock").clone();
        assert!(!tokens.is_empty());
        assert!(
            tokens.iter().all(|(auth, query)| auth.as_deref() == Some("Basic Ym90OnMzY3JldA==")
                && query == "service=fake&scope=repository%3Acharts%2Fshop%3Apull"),
            "{tokens:?}"
        );
        // The storage service the blob was redirected to is another origin: it got no credentials.
        assert_eq!(fake.storage_auth.lock().expect("lock").clone(), vec![None]);
    }

    #[test]
    fn refused_oci_credentials_fail_without_showing_them() {
        let fake = fake_registry(Some("Basic b3RoZXI6b3RoZXI="), &["1.0.0"]);
        let cache = tempfile::tempdir().expect("cache");
        let repository = format!("oci://127.0.0.1:{}/charts", fake.registry.port);
        let settings = FetchSettings {
            allowed: vec![repository.clone()],
            cache_dir: Some(cache.path().to_path_buf()),
            credentials: vec![Credential::new(&repository, "bot", SecretString::from("s3cret")).expect("valid")],
            ..FetchSettings::default()
        };
        let err = fetch(&oci_chart(fake.registry.port, Some("1.0.0")), &settings).expect_err("refused");
        let FetchError::Failed(message) = err else { panic!("expected Failed, got {err:?}") };
        assert!(message.contains("chart `shop` 1.0.0") && message.contains("HTTP 401"), "{message}");
        for secret in ["s3cret", "Ym90OnMzY3JldA", "bot:"] {
            assert!(!message.contains(secret), "{message}");
        }
    }

    #[test]
    fn anonymous_oci_pulls_get_an_anonymous_token() {
        let fake = fake_registry(None, &["0.1.0"]);
        let cache = tempfile::tempdir().expect("cache");
        let settings = FetchSettings {
            allowed: vec![format!("oci://127.0.0.1:{}", fake.registry.port)],
            cache_dir: Some(cache.path().to_path_buf()),
            ..FetchSettings::default()
        };
        let dir = fetch(&oci_chart(fake.registry.port, Some("0.1.0")), &settings).expect("pulled");
        assert!(dir.join("templates/cm.yaml").is_file());
        assert_eq!(fake.token_requests.lock().expect("lock")[0].0, None);
        assert_eq!(fake.hits.load(Ordering::SeqCst), 0, "an exact version needs no tag list");
    }

    /// A Helm repository served from memory, counting requests.
    fn fake_repository(files: HashMap<String, Vec<u8>>) -> (Fake, Arc<AtomicUsize>) {
        use axum::response::IntoResponse;
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        let files = Arc::new(files);
        let fake = serve(move |_| {
            axum::Router::new().fallback(move |uri: axum::http::Uri| {
                counted.fetch_add(1, Ordering::SeqCst);
                let files = Arc::clone(&files);
                async move {
                    match files.get(uri.path()) {
                        Some(body) => body.clone().into_response(),
                        None => axum::http::StatusCode::NOT_FOUND.into_response(),
                    }
                }
            })
        });
        (fake, hits)
    }

    fn index_for(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut index = String::from("apiVersion: v1\nentries:\n  shop:\n");
        for (version, archive) in entries {
            index.push_str(&format!(
                "  - name: shop\n    version: {version}\n    digest: {}\n    urls: [shop-{version}.tgz]\n",
                sha256_hex(archive)
            ));
        }
        index.into_bytes()
    }

    #[test]
    fn a_later_run_resolves_from_disk_and_falls_back_when_the_source_fails() {
        let (one, two) = (chart_archive("1.0.0"), chart_archive("1.1.0"));
        let files = HashMap::from([
            ("/index.yaml".to_string(), index_for(&[("1.0.0", &one), ("1.1.0", &two)])),
            ("/shop-1.0.0.tgz".to_string(), one.clone()),
            ("/shop-1.1.0.tgz".to_string(), two.clone()),
        ]);
        let (fake, hits) = fake_repository(files);
        let cache = tempfile::tempdir().expect("cache");
        let url = format!("http://127.0.0.1:{}", fake.port);
        let mut settings = FetchSettings {
            allowed: vec![url.clone()],
            cache_dir: Some(cache.path().to_path_buf()),
            ..FetchSettings::default()
        };
        let exact = RemoteChart { repository: url.clone(), name: "shop".into(), version: Some("1.0.0".into()) };
        let range = RemoteChart { repository: url.clone(), name: "shop".into(), version: Some("~1".into()) };
        let first = fetch(&exact, &settings).expect("pulled");
        let ranged = fetch(&range, &settings).expect("pulled");
        let before = hits.load(Ordering::SeqCst);
        // Another process: nothing remembered in memory, only the cache on disk.
        resolved().lock().expect("lock").paths.clear();
        assert_eq!(fetch(&exact, &settings).expect("from disk"), first);
        assert_eq!(fetch(&range, &settings).expect("from disk, within the TTL"), ranged);
        assert_eq!(hits.load(Ordering::SeqCst), before, "no request");
        // Past the TTL the range is resolved again; with the source gone, the last resolution is used.
        drop(fake);
        resolved().lock().expect("lock").paths.clear();
        settings.resolve_ttl = Duration::ZERO;
        assert_eq!(fetch(&range, &settings).expect("the last resolution"), ranged);
    }

    #[test]
    fn the_cache_evicts_the_least_recently_used_beyond_its_bound() {
        let root = tempfile::tempdir().expect("root");
        let entry = |name: char, size: u64, age: u64| {
            let key: String = std::iter::repeat_n(name, 64).collect();
            let dir = root.path().join(&key);
            std::fs::create_dir_all(dir.join("chart")).expect("entry");
            std::fs::write(dir.join("chart/Chart.yaml"), "name: x\n").expect("Chart.yaml");
            std::fs::write(dir.join(".kpath-size"), size.to_string()).expect("size");
            let used = std::fs::File::create(dir.join(".kpath-used")).expect("used");
            used.set_modified(SystemTime::now() - Duration::from_secs(age)).expect("mtime");
            key
        };
        let oldest = entry('a', 600, 7200);
        let older = entry('b', 600, 3600);
        let recent = entry('c', 600, 10);
        let kept = entry('d', 600, 9000);
        evict(root.path(), 1300, &kept);
        assert!(!root.path().join(&oldest).exists() && !root.path().join(&older).exists());
        assert!(root.path().join(&recent).exists(), "used within the grace period");
        assert!(root.path().join(&kept).exists(), "the entry being returned");
    }
}
