//! The HTTP stack under the GitHub client and how requests are made and retried: hyper + rustls under
//! octocrab, GitHub's headers and the metrics on every answer, one attempt's [`Failure`] and its wait.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{ACCEPT, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Request, Uri};
use octocrab::auth::AppAuth;
use octocrab::models::{AppId, InstallationId};
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::{AuthState, EncodingKey, OctoBody, OctocrabBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{GitHub, GitHubError, RetryPolicy};

const MEDIA_TYPE: &str = "application/vnd.github+json";
const API_VERSION: &str = "2022-11-28";
const AGENT: &str = concat!("kpath/", env!("CARGO_PKG_VERSION"));
const PER_PAGE: usize = 100;
/// Lists are read up to this many pages (10,000 items).
pub(super) const MAX_PAGES: u32 = 100;

impl GitHub {
    /// A client for `installation` of App `app_id` at `api` (`https://api.github.com`, a GitHub Enterprise
    /// Server's `https://HOST/api/v3`), with the default retries. Gets an installation token at once, so a
    /// wrong key, App id or installation fails here.
    pub async fn for_installation(
        api: &str,
        app_id: u64,
        private_key_pem: &SecretString,
        installation: u64,
    ) -> Result<GitHub, GitHubError> {
        GitHub::for_installation_with_retry(api, app_id, private_key_pem, installation, RetryPolicy::default()).await
    }

    /// [`GitHub::for_installation`] with `retry` instead of the default policy.
    pub async fn for_installation_with_retry(
        api: &str,
        app_id: u64,
        private_key_pem: &SecretString,
        installation: u64,
        retry: RetryPolicy,
    ) -> Result<GitHub, GitHubError> {
        let operation = format!("connecting to GitHub as installation {installation} of App {app_id}");
        let invalid = |message: String| GitHubError::Other { operation: operation.clone(), status: None, message };
        let (base, https) = parse_api(api).map_err(invalid)?;
        let key = EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
            .map_err(|_| invalid("the App's private key is not a PEM-encoded RSA key".to_string()))?;
        let tls = tls_config(https).map_err(invalid)?;
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build::<_, OctoBody>(connector);
        let service = tower::ServiceBuilder::new()
            .layer(BaseUriLayer::new(base))
            .map_request(graphql_on_enterprise)
            // Every answer is counted by status, and the rate limit left is kept as a gauge.
            .map_response(|response: http::Response<hyper::body::Incoming>| {
                crate::app::metrics::github_request(response.status().as_u16());
                let remaining = response.headers().get("x-ratelimit-remaining").and_then(|v| v.to_str().ok());
                if let Some(remaining) = remaining.and_then(|v| v.parse::<u64>().ok()) {
                    crate::app::metrics::github_rate_limit_remaining(remaining);
                }
                response
            })
            .map_request(|mut request: Request<OctoBody>| {
                let headers = request.headers_mut();
                headers.insert(ACCEPT, HeaderValue::from_static(MEDIA_TYPE));
                headers.insert(HeaderName::from_static("x-github-api-version"), HeaderValue::from_static(API_VERSION));
                headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
                request
            })
            .service(client);
        let Ok(app) = OctocrabBuilder::new_empty()
            .with_service(service)
            .with_auth(AuthState::App(AppAuth { app_id: AppId(app_id), key }))
            .build();
        let crab = app
            .installation(InstallationId(installation))
            .map_err(|e| invalid(format!("octocrab refused the installation: {e}")))?;
        let github = GitHub { crab, retry, api: api.to_string(), installation, budget: None };
        github.installation_token().await?;
        Ok(github)
    }
    async fn spend(&self) {
        if let Some(budget) = &self.budget {
            budget.take(self.installation).await;
        }
    }

    /// Runs `attempt` (given the number of failed attempts so far) until it succeeds, fails in a way not
    /// worth retrying, or the policy's attempts are spent.
    pub(super) async fn retrying<T, F, Fut>(&self, operation: &str, mut attempt: F) -> Result<T, GitHubError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut failed = 0;
        loop {
            let failure = match attempt(failed).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            failed += 1;
            match failure.wait(failed, &self.retry) {
                Some(wait) if wait <= self.retry.max_wait && failed < self.retry.attempts => {
                    tracing::warn!(
                        operation,
                        attempt = failed,
                        wait_ms = wait.as_millis() as u64,
                        "GitHub: {failure}; retrying"
                    );
                    (self.retry.sleep)(wait).await;
                }
                Some(wait) if wait > self.retry.max_wait => {
                    let last = format!("{failure}; asked to wait {}s, longer than kpath waits", wait.as_secs());
                    return Err(GitHubError::Unavailable { operation: operation.to_string(), attempts: failed, last });
                }
                Some(_) => {
                    let last = failure.to_string();
                    return Err(GitHubError::Unavailable { operation: operation.to_string(), attempts: failed, last });
                }
                None => return Err(failure.into_error(operation)),
            }
        }
    }

    pub(super) async fn timed<T>(&self, request: impl Future<Output = octocrab::Result<T>>) -> Result<T, Failure> {
        let answer = match tokio::time::timeout(self.retry.request_timeout, request).await {
            Ok(result) => result.map_err(Failure::from),
            Err(_) => Err(Failure::Timeout(self.retry.request_timeout)),
        };
        if let Err(Failure::Transport(_) | Failure::Timeout(_)) = &answer {
            // No answer to count by status.
            crate::app::metrics::github_request(0);
        }
        answer
    }

    pub(super) async fn get<T: DeserializeOwned>(&self, route: &str, query: &[(&str, String)]) -> Result<T, Failure> {
        if query.is_empty() {
            self.timed(self.crab.get(route, None::<&()>)).await
        } else {
            self.timed(self.crab.get(route, Some(query))).await
        }
    }

    // Every body kpath sends leaves through `post` or `patch` (GraphQL too): the one place where the
    // secrets of the reviews in flight are removed from what GitHub receives (see `crate::redact`).

    pub(super) async fn post<T: DeserializeOwned>(&self, route: &str, body: &Value) -> Result<T, Failure> {
        self.spend().await;
        let body = crate::redact::redact_registered_json(body);
        self.timed(self.crab.post(route, Some(&*body))).await
    }

    pub(super) async fn patch<T: DeserializeOwned>(&self, route: &str, body: &Value) -> Result<T, Failure> {
        self.spend().await;
        let body = crate::redact::redact_registered_json(body);
        self.timed(self.crab.patch(route, Some(&*body))).await
    }
    /// Every page of a list (up to [`MAX_PAGES`]), [`PER_PAGE`] items at a time.
    pub(super) async fn get_pages<T: DeserializeOwned>(
        &self,
        route: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<T>, Failure> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut query = query.to_vec();
            query.push(("per_page", PER_PAGE.to_string()));
            query.push(("page", page.to_string()));
            let items: Vec<T> = self.get(route, &query).await?;
            let full = items.len() >= PER_PAGE;
            all.extend(items);
            if !full {
                return Ok(all);
            }
        }
        tracing::warn!(route, pages = MAX_PAGES, "GitHub: list longer than kpath reads; the rest is ignored");
        Ok(all)
    }
}

/// One failed attempt.
#[derive(Debug)]
pub(super) enum Failure {
    /// GitHub answered with an error status.
    Status {
        status: u16,
        message: String,
        headers: HeaderMap,
    },
    /// No answer: the connection failed or broke.
    Transport(String),
    Timeout(Duration),
    /// Anything else (an answer that does not parse, a JWT that cannot be signed).
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status { status, message, .. } => write!(f, "{status}: {message}"),
            Failure::Transport(message) => write!(f, "no answer: {message}"),
            Failure::Timeout(after) => write!(f, "no answer within {}s", after.as_secs()),
            Failure::Other(message) => f.write_str(message),
        }
    }
}

impl From<octocrab::Error> for Failure {
    fn from(error: octocrab::Error) -> Failure {
        match error {
            octocrab::Error::GitHub { source, .. } => Failure::Status {
                status: source.status_code.as_u16(),
                message: source.to_string(),
                headers: source.headers.clone().unwrap_or_default(),
            },
            octocrab::Error::Hyper { source, .. } => Failure::Transport(source.to_string()),
            octocrab::Error::Service { source, .. } => Failure::Transport(source.to_string()),
            octocrab::Error::JWT { .. } => {
                Failure::Other("the App's JWT could not be signed with its private key".into())
            }
            octocrab::Error::Json { source, .. } => Failure::Other(format!("GitHub's answer does not parse: {source}")),
            octocrab::Error::Serde { source, .. } => {
                Failure::Other(format!("GitHub's answer does not parse: {source}"))
            }
            other => Failure::Other(other.to_string()),
        }
    }
}

impl Failure {
    /// How long to wait before the next attempt, after `failed` attempts; `None` when retrying cannot help.
    fn wait(&self, failed: u32, policy: &RetryPolicy) -> Option<Duration> {
        let backoff = policy.first_backoff.saturating_mul(2u32.saturating_pow(failed.saturating_sub(1)));
        match self {
            Failure::Transport(_) | Failure::Timeout(_) => Some(backoff),
            Failure::Other(_) => None,
            Failure::Status { status, headers, .. } => {
                let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
                let retry_after = number("retry-after").map(Duration::from_secs);
                let exhausted = number("x-ratelimit-remaining") == Some(0);
                let until_reset = number("x-ratelimit-reset").map(|reset| {
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                    Duration::from_secs(reset.saturating_sub(now).max(1))
                });
                match status {
                    500..=599 => Some(retry_after.unwrap_or(backoff)),
                    403 | 429 => match (retry_after, exhausted) {
                        (Some(wait), _) => Some(wait),
                        (None, true) => Some(until_reset.unwrap_or(Duration::from_secs(60))),
                        // A secondary rate limit without headers: GitHub asks for at least a minute.
                        (None, false) if *status == 429 => Some(Duration::from_secs(60).max(backoff)),
                        (None, false) => None,
                    },
                    _ => None,
                }
            }
        }
    }

    fn into_error(self, operation: &str) -> GitHubError {
        let operation = operation.to_string();
        match self {
            Failure::Status { status: 401, message, .. } => GitHubError::Unauthorized { operation, message },
            Failure::Status { status: 404, message, .. } => GitHubError::NotFound { operation, message },
            Failure::Status { status: 422, message, .. } => GitHubError::Unprocessable { operation, message },
            Failure::Status { status, message, .. } => GitHubError::Other { operation, status: Some(status), message },
            failure @ (Failure::Transport(_) | Failure::Timeout(_)) => {
                GitHubError::Unavailable { operation, attempts: 1, last: failure.to_string() }
            }
            Failure::Other(message) => GitHubError::Other { operation, status: None, message },
        }
    }
}

/// The API base: https anywhere, http only on a loopback address.
pub(crate) fn parse_api(api: &str) -> Result<(Uri, bool), String> {
    if api.contains('@') {
        // Not repeated: it may hold a password.
        return Err("the API URL must not contain credentials".to_string());
    }
    let uri: Uri = api.trim_end_matches('/').parse().map_err(|_| format!("{api:?} is not a URL"))?;
    let host = uri.host().unwrap_or("");
    if uri.query().is_some() {
        return Err(format!("{api:?}: the API URL takes no query"));
    }
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok((uri, true)),
        Some("http") if matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") => Ok((uri, false)),
        Some("http") => Err(format!("{api:?}: plain http is only allowed on a loopback address")),
        _ => Err(format!("{api:?} is not an https:// URL")),
    }
}

/// GitHub Enterprise Server answers GraphQL at `/api/graphql`, beside (not under) the REST base `/api/v3`.
fn graphql_on_enterprise(mut request: Request<OctoBody>) -> Request<OctoBody> {
    if request.uri().path() == "/api/v3/graphql" {
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/api/graphql"));
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// rustls with the system's root certificates (GitHub Enterprise Servers often have a private CA). Over
/// plain http (a local fake) no roots are needed. Also `kpath setup`'s.
pub(crate) fn tls_config(https: bool) -> Result<rustls::ClientConfig, String> {
    use hyper_rustls::ConfigBuilderExt;
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if https {
        builder.with_native_roots().map_err(|e| format!("TLS: cannot load the system's root certificates: {e}"))?
    } else {
        builder.with_root_certificates(rustls::RootCertStore::empty())
    };
    Ok(builder.with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_goes_beside_the_rest_base_on_enterprise() {
        let rewrite = |uri: &str| {
            let request = Request::builder().uri(uri).body(OctoBody::empty()).expect("request");
            graphql_on_enterprise(request).uri().to_string()
        };
        assert_eq!(rewrite("https://ghe.example.com/api/v3/graphql"), "https://ghe.example.com/api/graphql");
        assert_eq!(rewrite("https://api.github.com/graphql"), "https://api.github.com/graphql");
        assert_eq!(
            rewrite("https://ghe.example.com/api/v3/repos/o/r/pulls"),
            "https://ghe.example.com/api/v3/repos/o/r/pulls"
        );
    }
}
