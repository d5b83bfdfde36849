//! Git's smart HTTP protocol for tests: repositories under a directory served on 127.0.0.1 through
//! `git http-backend` (the real git server), behind HTTP Basic auth as GitHub's git endpoint expects
//! for apps (`x-access-token:<installation token>`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;

pub struct Served {
    pub url: String,
    count: Arc<AtomicUsize>,
}

impl Served {
    pub fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

struct Git {
    root: PathBuf,
    token: String,
    count: Arc<AtomicUsize>,
}

/// Serves the repositories under `root` (`owner/name.git`) until the test's runtime ends.
pub async fn serve(root: PathBuf, token: String) -> Served {
    let count = Arc::new(AtomicUsize::new(0));
    let state = Arc::new(Git { root, token, count: count.clone() });
    let app = Router::new().fallback(handle).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Served { url: format!("http://{addr}"), count }
}

fn authorised(headers: &HeaderMap, token: &str) -> bool {
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Basic {expected}"))
}

async fn handle(State(git): State<Arc<Git>>, request: Request) -> Response {
    git.count.fetch_add(1, Ordering::SeqCst);
    if !authorised(request.headers(), &git.token) {
        let mut response = Response::new(Body::from("authentication required\n"));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response.headers_mut().insert("www-authenticate", HeaderValue::from_static("Basic realm=\"GitHub\""));
        return response;
    }
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    backend(git.root.clone(), parts.method.as_str(), &parts.uri, &parts.headers, body).await
}

/// Answers one smart-HTTP request for the repositories under `root` with `git http-backend` (the caller
/// has checked the credentials).
pub async fn backend(root: PathBuf, method: &str, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Response {
    let method = method.to_string();
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("git")
            .arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GIT_PROJECT_ROOT", &root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", &method)
            .env("PATH_INFO", &path)
            .env("QUERY_STRING", &query)
            .env("CONTENT_TYPE", &content_type)
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_USER", "x-access-token")
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(&body)?;
        }
        child.wait_with_output()
    })
    .await;
    let Ok(Ok(output)) = output else {
        let mut response = Response::new(Body::from("git http-backend failed\n"));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return response;
    };
    cgi_response(&output.stdout)
}

/// Turns a CGI response (headers, blank line, body) into an HTTP response.
fn cgi_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (head, body) = match split {
        Some((i, n)) => (&raw[..i], &raw[i + n..]),
        None => (&raw[..0], raw),
    };
    let mut response = Response::new(Body::from(body.to_vec()));
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(200);
            *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
        } else if let (Ok(name), Ok(value)) =
            (axum::http::HeaderName::try_from(name.trim()), HeaderValue::from_str(value))
        {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
