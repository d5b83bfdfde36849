//! Remote charts pulled only from allowed sources (`kpath::gitops::remote`): a real Helm chart repository
//! (charts packaged and indexed by the pinned Helm) served by the test on 127.0.0.1, and a real OCI registry
//! (Debian's `docker-registry`, see `scripts/install-docker-registry`) the pinned Helm pushes to.

#[path = "support/bin.rs"]
mod bin;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use kpath::gitops::RemoteChart;
use kpath::gitops::remote::{FetchError, FetchSettings, allowed, fetch};

/// A static file server on 127.0.0.1 for one directory, counting the requests it answers.
struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("address").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, counted, stopping) = (dir.to_path_buf(), Arc::clone(&hits), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                serve(stream, &dir);
            }
        });
        Server { port, hits, stop, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server thread");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(mut stream: TcpStream, dir: &Path) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_string();
    let file = dir.join(path.trim_start_matches('/'));
    let answer = if path.contains("..") { None } else { std::fs::read(&file).ok() };
    let _ = match answer {
        Some(body) => {
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            stream.write_all(&body)
        }
        None => stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

/// `helm ARGS` with the pinned Helm and throw-away home directories.
fn helm(args: &[&str], cwd: &Path) -> String {
    let home = cwd.join(".helm-home");
    let out = Command::new(bin::pinned_helm())
        .args(args)
        .current_dir(cwd)
        .env("HOME", &home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("helm runs");
    assert!(out.status.success(), "helm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A chart `shop` packaged at each of `versions` into `work/repo/` (each version's ConfigMap says which it
/// is); returns the repository directory, not yet indexed.
fn packaged(work: &Path, versions: &[&str]) -> PathBuf {
    let repo = work.join("repo");
    std::fs::create_dir_all(&repo).expect("repo dir");
    for version in versions {
        let chart = work.join("src").join(version).join("shop");
        bin::write(&chart, "Chart.yaml", &format!("apiVersion: v2\nname: shop\nversion: {version}\n"));
        bin::write(&chart, "values.yaml", "replicas: 2\n");
        bin::write(
            &chart,
            "templates/cm.yaml",
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop\ndata:\n  version: \"{version}\"\n"),
        );
        helm(&["package", chart.to_str().expect("utf-8 path"), "-d", repo.to_str().expect("utf-8 path")], work);
    }
    repo
}

/// A served Helm repository with `shop` at 1.0.0, 1.2.0 and 2.0.0 (relative `urls`).
fn repository() -> (tempfile::TempDir, Server) {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = packaged(work.path(), &["1.0.0", "1.2.0", "2.0.0"]);
    helm(&["repo", "index", repo.to_str().expect("utf-8 path")], work.path());
    let server = Server::start(&repo);
    (work, server)
}

fn chart(repository: &str, name: &str, version: Option<&str>) -> RemoteChart {
    RemoteChart { repository: repository.to_string(), name: name.to_string(), version: version.map(String::from) }
}

fn settings(allowed: &[&str], cache: &Path) -> FetchSettings {
    FetchSettings {
        allowed: allowed.iter().map(|s| s.to_string()).collect(),
        cache_dir: Some(cache.to_path_buf()),
        ..FetchSettings::default()
    }
}

fn version_of(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("templates/cm.yaml")).expect("the chart's template");
    text.lines().find_map(|l| l.trim().strip_prefix("version: ")).expect("a version line").trim_matches('"').to_string()
}

#[test]
fn an_allowed_chart_is_pulled_and_unpacked() {
    let (_work, server) = repository();
    let cache = tempfile::tempdir().expect("cache");
    let dir = fetch(&chart(&server.url(), "shop", Some("1.2.0")), &settings(&[&server.url()], cache.path()))
        .expect("the chart is pulled");
    assert!(dir.starts_with(cache.path()), "{}", dir.display());
    assert!(std::fs::read_to_string(dir.join("Chart.yaml")).expect("Chart.yaml").contains("version: 1.2.0"));
    assert!(dir.join("values.yaml").is_file());
    assert_eq!(version_of(&dir), "1.2.0");
}

#[test]
fn a_source_that_is_not_allowed_is_not_contacted_and_names_the_flag() {
    let (_work, server) = repository();
    let cache = tempfile::tempdir().expect("cache");
    let err =
        fetch(&chart(&server.url(), "shop", Some("1.2.0")), &settings(&["https://charts.example.com"], cache.path()))
            .expect_err("not allowed");
    let FetchError::NotAllowed(message) = err else { panic!("expected NotAllowed, got {err:?}") };
    assert!(message.contains("--allow-chart-source"), "{message}");
    assert!(message.contains("KPATH_ALLOW_CHART_SOURCES"), "{message}");
    assert!(message.contains("`shop`"), "{message}");
    assert_eq!(server.hits(), 0, "a source that is not allowed is never contacted");
}

#[test]
fn a_digest_mismatch_is_refused_naming_the_chart() {
    let (work, server) = repository();
    // The archive of 1.2.0 replaced after indexing: its sha256 no longer matches the index.
    let repo = work.path().join("repo");
    std::fs::copy(repo.join("shop-2.0.0.tgz"), repo.join("shop-1.2.0.tgz")).expect("swap the archive");
    let cache = tempfile::tempdir().expect("cache");
    let err = fetch(&chart(&server.url(), "shop", Some("1.2.0")), &settings(&[&server.url()], cache.path()))
        .expect_err("a digest mismatch");
    let FetchError::Failed(message) = err else { panic!("expected Failed, got {err:?}") };
    assert!(message.contains("chart `shop`"), "{message}");
    assert!(message.contains("sha256"), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
}

#[test]
fn a_cached_chart_needs_no_network_once_the_server_is_gone() {
    let (_work, mut server) = repository();
    let cache = tempfile::tempdir().expect("cache");
    let wanted = chart(&server.url(), "shop", Some("1.0.0"));
    let settings = settings(&[&server.url()], cache.path());
    let first = fetch(&wanted, &settings).expect("pulled");
    let hits = server.hits();
    server.stop();
    let second = fetch(&wanted, &settings).expect("from the cache");
    assert_eq!(first, second);
    assert_eq!(version_of(&second), "1.0.0");
    assert_eq!(server.hits(), hits);
}

#[test]
fn version_ranges_pick_the_newest_match() {
    let (_work, server) = repository();
    let cache = tempfile::tempdir().expect("cache");
    let settings = settings(&[&server.url()], cache.path());
    for (asked, expected) in [
        (Some("^1.0"), "1.2.0"),
        (Some("1.x"), "1.2.0"),
        (Some(">=1 <2"), "1.2.0"),
        (Some(">=1.0.0, <2.0.0"), "1.2.0"),
        (Some("~1.0"), "1.0.0"),
        (Some("1.0.0 - 1.1.0"), "1.0.0"),
        (Some("^1 || ^2"), "2.0.0"),
        (None, "2.0.0"),
        (Some("*"), "2.0.0"),
    ] {
        let dir = fetch(&chart(&server.url(), "shop", asked), &settings).unwrap_or_else(|e| panic!("{asked:?}: {e}"));
        assert_eq!(version_of(&dir), expected, "{asked:?}");
    }
    let err = fetch(&chart(&server.url(), "shop", Some("^3")), &settings).expect_err("no 3.x");
    assert!(err.to_string().contains("no version matches `^3` (the newest is 2.0.0)"), "{err}");
    let err = fetch(&chart(&server.url(), "cart", None), &settings).expect_err("no such chart");
    assert!(err.to_string().contains("no chart named `cart`"), "{err}");
}

#[test]
fn absolute_urls_in_the_index_are_followed() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = packaged(work.path(), &["3.1.0"]);
    let server = Server::start(&repo);
    // Absolute `urls` under another path of the same server.
    let moved = repo.join("archives");
    std::fs::create_dir_all(&moved).expect("archives dir");
    std::fs::rename(repo.join("shop-3.1.0.tgz"), moved.join("shop-3.1.0.tgz")).expect("move");
    helm(
        &["repo", "index", moved.to_str().expect("utf-8"), "--url", &format!("{}/archives", server.url())],
        work.path(),
    );
    std::fs::rename(moved.join("index.yaml"), repo.join("index.yaml")).expect("index at the root");
    let index = std::fs::read_to_string(repo.join("index.yaml")).expect("index");
    assert!(index.contains(&format!("{}/archives/shop-3.1.0.tgz", server.url())), "{index}");
    let cache = tempfile::tempdir().expect("cache");
    let dir = fetch(&chart(&server.url(), "shop", None), &settings(&[&server.url()], cache.path())).expect("pulled");
    assert_eq!(version_of(&dir), "3.1.0");
}

#[test]
fn prefix_confusion_is_refused() {
    let allow = |prefix: &str, repository: &str| allowed(&chart(repository, "shop", None), &[prefix.to_string()]);
    assert!(allow("https://charts.example.com", "https://charts.example.com"));
    assert!(allow("https://charts.example.com/", "https://CHARTS.example.com/stable/"));
    assert!(allow("https://charts.example.com", "https://charts.example.com:443/stable"));
    assert!(allow("https://charts.example.com/stable", "https://charts.example.com/stable/x"));
    assert!(allow("oci://ghcr.io/acme", "oci://ghcr.io/acme/charts"));
    assert!(!allow("https://charts.example.com", "https://charts.example.com.evil.net"));
    assert!(!allow("https://charts.example.com", "https://charts.example.com@evil.net/"));
    assert!(!allow("https://charts.example.com", "https://evil.net/https://charts.example.com"));
    assert!(!allow("https://charts.example.com", "http://charts.example.com"));
    assert!(!allow("https://charts.example.com", "https://charts.example.com:8443"));
    assert!(!allow("https://charts.example.com/stable", "https://charts.example.com/stable-evil"));
    assert!(!allow("https://charts.example.com/stable", "https://charts.example.com/stable/../private"));
    assert!(!allow("https://charts.example.com/stable", "https://charts.example.com/stable/%2e%2e/private"));
    assert!(!allow("oci://ghcr.io/acme", "https://ghcr.io/acme"));
    assert!(!allow("oci://ghcr.io/acme", "oci://ghcr.io/acme-evil/charts"));
    assert!(!allow("not a url", "https://charts.example.com"));

    // And through `fetch`, against a live server: the look-alike path is never contacted.
    let (_work, server) = repository();
    let cache = tempfile::tempdir().expect("cache");
    let err = fetch(
        &chart(&format!("{}/charts-evil", server.url()), "shop", None),
        &settings(&[&format!("{}/charts", server.url())], cache.path()),
    )
    .expect_err("not under the allowed path");
    assert!(matches!(err, FetchError::NotAllowed(_)), "{err:?}");
    assert_eq!(server.hits(), 0);
}

/// A gzipped tar with one entry per `(name, body)`, names written raw into the header (so `../x` can be).
fn raw_archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, body) in entries {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(body);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).expect("gzip");
    gz.finish().expect("gzip")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn an_archive_with_a_parent_entry_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let archive = raw_archive(&[
        ("shop/Chart.yaml", b"apiVersion: v2\nname: shop\nversion: 1.0.0\n"),
        ("shop/../../escaped.txt", b"outside"),
    ]);
    std::fs::write(work.path().join("shop-1.0.0.tgz"), &archive).expect("archive");
    let index = format!(
        "apiVersion: v1\nentries:\n  shop:\n  - name: shop\n    version: 1.0.0\n    digest: {}\n    urls:\n    - shop-1.0.0.tgz\n",
        sha256_hex(&archive)
    );
    std::fs::write(work.path().join("index.yaml"), index).expect("index");
    let server = Server::start(work.path());
    let cache = tempfile::tempdir().expect("cache");
    let err = fetch(&chart(&server.url(), "shop", Some("1.0.0")), &settings(&[&server.url()], cache.path()))
        .expect_err("refused");
    let FetchError::Failed(message) = err else { panic!("expected Failed, got {err:?}") };
    assert!(message.contains("chart `shop`") && message.contains("`..`"), "{message}");
    let escaped: Vec<_> = walk(cache.path()).into_iter().filter(|p| p.ends_with("escaped.txt")).collect();
    assert!(escaped.is_empty(), "{escaped:?}");
    assert!(!cache.path().join("escaped.txt").exists() && !cache.path().join("charts/escaped.txt").exists());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn concurrent_pulls_of_one_chart_share_one_entry() {
    let (_work, server) = repository();
    let cache = tempfile::tempdir().expect("cache");
    let settings = settings(&[&server.url()], cache.path());
    let wanted = chart(&server.url(), "shop", Some("2.0.0"));
    let dirs: Vec<PathBuf> = std::thread::scope(|scope| {
        let pulls: Vec<_> = (0..4).map(|_| scope.spawn(|| fetch(&wanted, &settings))).collect();
        pulls.into_iter().map(|p| p.join().expect("no panic").expect("pulled")).collect()
    });
    assert!(dirs.windows(2).all(|w| w[0] == w[1]), "{dirs:?}");
    let entries = std::fs::read_dir(cache.path().join("charts"))
        .expect("cache root")
        .flatten()
        .filter(|e| e.file_name().len() == 64)
        .count();
    assert_eq!(entries, 1);
}

/// Debian's `docker-registry` (the CNCF distribution registry), unpacked project-locally by
/// `scripts/install-docker-registry` (or `$KPATH_DOCKER_REGISTRY`).
fn pinned_registry() -> PathBuf {
    let path = std::env::var_os("KPATH_DOCKER_REGISTRY").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/docker-registry/usr/bin/docker-registry")
    });
    assert!(path.is_file(), "the registry is missing: run `bash scripts/install-docker-registry`");
    path
}

/// A running registry on 127.0.0.1, stopped when dropped.
struct Registry {
    child: std::process::Child,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry(dir: &Path) -> Registry {
    let port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("storage").display()
        ),
    )
    .expect("config");
    let child = Command::new(pinned_registry())
        .args(["serve", config.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the registry starts");
    let registry = Registry { child, port };
    // Ready when it answers the distribution API's base endpoint.
    for _ in 0..500 {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.") {
                return registry;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the registry did not start");
}

#[test]
fn a_chart_is_pulled_from_a_real_oci_registry() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = packaged(work.path(), &["1.0.0", "1.4.2"]);
    let registry = start_registry(work.path());
    let target = format!("oci://127.0.0.1:{}/charts", registry.port);
    for version in ["1.0.0", "1.4.2"] {
        let archive = repo.join(format!("shop-{version}.tgz"));
        helm(&["push", archive.to_str().expect("utf-8"), &target, "--plain-http"], work.path());
    }
    let cache = tempfile::tempdir().expect("cache");
    let allowing = settings(&[&target], cache.path());
    let exact = fetch(&chart(&target, "shop", Some("1.0.0")), &allowing).expect("exact version");
    assert_eq!(version_of(&exact), "1.0.0");
    let ranged = fetch(&chart(&target, "shop", Some("^1.2")), &allowing).expect("a range, from the tag list");
    assert_eq!(version_of(&ranged), "1.4.2");
    let err = fetch(&chart(&target, "shop", Some("9.9.9")), &allowing).expect_err("no such version");
    assert!(err.to_string().contains("9.9.9 is not in the registry"), "{err}");
    let err = fetch(&chart(&target, "shop", None), &settings(&["oci://127.0.0.1/charts"], cache.path()))
        .expect_err("another port is another source");
    assert!(matches!(err, FetchError::NotAllowed(_)), "{err:?}");
}

/// `kpath check` of a repository whose Flux HelmRelease and Argo CD Application deploy `shop` from the served
/// repository: rendered when the operator allows the source (the chart's ConfigMap is checked, its values
/// placed on the declaring object's lines), a `render-skipped` notice naming the flag when not.
#[test]
fn declared_remote_charts_render_only_from_allowed_sources() {
    let (_work, server) = repository();
    let url = format!("http://127.0.0.1:{}", server.port);
    let deploy = tempfile::tempdir().expect("tempdir");
    bin::git(deploy.path(), &["init", "-q"]);
    bin::git(deploy.path(), &["remote", "add", "origin", "https://github.com/acme/deploy.git"]);
    bin::write(
        deploy.path(),
        "clusters/prod/shop.yaml",
        &format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: charts\n  namespace: shop\nspec:\n  url: {url}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: shop\n  namespace: shop\nspec:\n  chart:\n    spec:\n      chart: shop\n      version: \"^1.0\"\n      sourceRef:\n        kind: HelmRepository\n        name: charts\n  values:\n    replicas: 3\n"
        ),
    );
    bin::write(
        deploy.path(),
        "apps/shop.yaml",
        &format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: shop-argo\nspec:\n  source:\n    repoURL: {url}\n    chart: shop\n    targetRevision: 2.0.0\n  destination:\n    namespace: shop-argo\n"
        ),
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_dir = cache.path().to_string_lossy().into_owned();
    let check = |extra: &[(&str, &str)]| -> serde_json::Value {
        let run = bin::kpath_with(&["check", ".", "--format", "json", "--cache-dir", &cache_dir], deploy.path(), extra);
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
    };
    let rules = |report: &serde_json::Value| -> Vec<(String, String, Vec<String>)> {
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| {
                let envs = f["environments"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|e| e.as_str().map(String::from)).collect());
                (
                    f["rule"].as_str().unwrap_or("").to_string(),
                    f["file"].as_str().unwrap_or("").to_string(),
                    envs.unwrap_or_default(),
                )
            })
            .collect()
    };

    let refused = check(&[("KPATH_ALLOW_CHART_SOURCES", "")]);
    let found = rules(&refused);
    assert_eq!(found.iter().filter(|(r, _, _)| r == "render-skipped").count(), 2, "{found:?}");
    assert!(refused.to_string().contains("--allow-chart-source"), "{refused}");
    assert_eq!(server.hits.load(Ordering::SeqCst), 0, "a source that is not allowed is never contacted");

    let allowed = check(&[("KPATH_ALLOW_CHART_SOURCES", &url)]);
    let found = rules(&allowed);
    assert!(found.iter().all(|(r, _, _)| r != "render-skipped" && r != "render-failed"), "{found:?}");
    assert!(server.hits.load(Ordering::SeqCst) > 0);
    // The charts rendered: their objects were checked in each environment.
    assert!(allowed["summary"]["objects"].as_u64().unwrap_or(0) >= 2, "{allowed}");
}
