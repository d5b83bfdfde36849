//! What kpath's fuzz targets share: running the real check pipeline (parse → rules → cross-object rules →
//! every report format) on one fuzzed file, the invariants every run must keep, and the size-aware
//! [`Shape`]s that turn a few fuzzed numbers into large inputs (many documents or stages, deep nesting,
//! long chains, repeated keys), so quadratic or exponential cost shows up as a libFuzzer timeout or
//! out-of-memory instead of hiding behind small inputs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use kpath::config::Config;
use kpath::engine::{self, Report};
use kpath::loader::{self, Input};

/// The engine reads files, so each fuzzed input is written to a private directory of this process
/// (`$TMPDIR/kpath-fuzz/<pid>`). Directories of processes that have ended (libFuzzer's fork mode starts
/// many) are removed when the next process starts.
fn workdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::temp_dir().join("kpath-fuzz");
        if let Ok(entries) = std::fs::read_dir(&base) {
            for entry in entries.flatten() {
                let pid = entry.file_name().to_string_lossy().into_owned();
                if !Path::new("/proc").join(&pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("the fuzzing scratch directory can be created");
        dir
    })
}

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(Config::default)
}

/// Checks `text` as a file called `name` (`Dockerfile`, `policy.json`, `manifest.yaml`, …) through
/// `engine::check_inputs`, renders the report in every format, checks the invariants, and returns it.
pub fn check_file(name: &str, text: &[u8]) -> Report {
    let path = workdir().join(name);
    std::fs::write(&path, text).expect("the fuzzed file can be written");
    let kind = loader::classify(&path).expect("fuzz targets use names kpath checks");
    let display = path.to_string_lossy().into_owned();
    let input = Input { path: path.clone(), display: display.clone(), kind, tree: None };
    let report = engine::check_inputs(&[input], config());
    // Every output format, while the file is there to quote from (the text report prints source lines).
    // `KPATH_FUZZ_REPORTS=0` leaves them out, to tell the engine's cost from the reports' when measuring.
    if std::env::var_os("KPATH_FUZZ_REPORTS").is_none_or(|v| v != "0") {
        let _ = kpath::report::text::render(&report, false, true);
        let _ = kpath::report::json::render(&report);
        let _ = kpath::report::sarif::render(&report);
        let _ = kpath::report::github::render(&report);
    }
    let _ = std::fs::remove_file(&path);
    assert_positions(&report, &display, text);
    report
}

/// Positions come from the parser, so a finding on this file points at a line it has (a final line
/// break does not start another line: GitHub could not annotate that one), column at least 1.
fn assert_positions(report: &Report, display: &str, text: &[u8]) {
    // Line breaks as YAML counts them: `\n`, `\r\n`, and a lone `\r`.
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let breaks =
        body.iter().enumerate().filter(|&(i, &b)| b == b'\n' || (b == b'\r' && body.get(i + 1) != Some(&b'\n')));
    let lines = breaks.count() as u32 + 1;
    for f in &report.findings {
        if f.file != display {
            continue;
        }
        assert!(
            f.line >= 1 && f.line <= lines && f.column >= 1,
            "{} at {}:{} is outside a file of {lines} lines: {}",
            f.rule,
            f.line,
            f.column,
            f.message
        );
    }
}

/// How many: `mantissa << (exponent % 18)`, so small and very large counts are both a few bytes away
/// (and the zeros libFuzzer starts from are small inputs).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Count {
    mantissa: u8,
    exponent: u8,
}

impl Count {
    pub fn get(self, max: usize) -> usize {
        ((self.mantissa as usize) << (self.exponent % 18)).min(max)
    }
}

/// A short fuzzed text spliced into generated inputs (a value, a key, a word).
#[derive(Arbitrary, Debug, Clone)]
pub struct Bit(String);

impl Bit {
    fn get(&self) -> &str {
        let s = self.0.as_str();
        match s.char_indices().nth(64) {
            Some((i, _)) => &s[..i],
            None => s,
        }
    }
}

/// Big inputs built from a few fuzzed numbers: the families of issue 9 section 3 (and their neighbours).
/// Files stay under the engine's 16 MiB limit so the parsers, not the size check, are what runs.
#[derive(Arbitrary, Debug, Clone)]
pub enum Shape {
    /// `count` small Kubernetes objects in one YAML stream (`---` separated), `bit` in each.
    YamlDocuments { count: Count, kind: u8, bit: Bit },
    /// Mappings or sequences nested `depth` deep (block or flow style) around a Deployment.
    YamlNesting { depth: Count, flow: bool, seq: bool, bit: Bit },
    /// One mapping with `keys` keys, only `distinct` of them different (repeated keys).
    YamlWideMap { keys: Count, distinct: u8, bit: Bit },
    /// An anchored mapping of `keys` entries merged (`<<: *base`) into `merges` mappings, each with its
    /// own `keys` entries overriding some.
    YamlMergeKeys { keys: Count, merges: Count },
    /// A chain of anchors, each aliasing the previous one `fanout` times (an alias bomb family).
    YamlAliasChain { links: Count, fanout: u8 },
    /// `depth` anchors nested around a flow sequence of `items` items, with no alias (anchored copies).
    YamlNestedAnchors { depth: u8, items: Count },
    /// A Deployment with `containers` containers, each with `env` variables (many objects' worth of fields).
    YamlManyContainers { containers: Count, env: Count, bit: Bit },
    /// A flow-style Deployment on one line with `containers` containers, each using `:latest` and a secret
    /// env value: many findings on one long line (the text report quotes that line for each).
    YamlOneLine { containers: Count, json: bool },
    /// A value of `len` bytes made of one credential-shaped token repeated (`eyJ-`, `AKIA`, `ghp_`, `://`,
    /// `-----BEGIN `, …) or of the fuzzed bit, under a sensitive name, in a ConfigMap, an env var, a
    /// ConfigMap file (`application.properties`), a Secret or a Dockerfile `ENV`: the secret detectors'
    /// scans over long values.
    SecretValue { len: Count, token: u8, place: u8, bit: Bit },
    /// One scalar of `len` bytes in the given style (plain, quoted, literal block, folded).
    YamlLongScalar { len: Count, style: u8, bit: Bit },
    /// `count` stages; each `FROM`s the previous (a chain) or an image, named or not.
    DockerStages { count: Count, chain: bool, named: bool, copy_from: bool },
    /// `count` `ARG`/`ENV` lines, each referring to the previous one.
    DockerArgEnvChain { count: Count, env: bool, bit: Bit },
    /// One instruction continued over `count` lines, with comment lines between them.
    DockerContinuations { count: Count, comments: bool },
    /// `count` heredocs on one `RUN`, the last one possibly unterminated.
    DockerHeredocs { count: Count, terminated: bool },
    /// `count` `RUN` lines, each with `words` `&&`-joined commands (shell analysis).
    DockerLongRun { count: Count, words: Count, bit: Bit },
    /// An IAM trust policy with `count` statements and `dup` repeated keys in each.
    IamStatements { count: Count, dup: u8, principals: Count },
    /// An IAM policy with a condition nested `depth` deep.
    IamNesting { depth: Count },
    /// A `/kpath` comment: `lines` command lines inside `quote` levels of block quote, with `ticks` backticks
    /// and `brackets` `[` opened before them, optionally inside a fence.
    Commands { lines: Count, quote: u8, ticks: Count, brackets: Count, fence: bool, bit: Bit },
}

/// What a [`Shape`] becomes: a file to check, or a comment to parse.
pub enum Generated {
    File { name: &'static str, text: String },
    Comment(String),
}

/// The engine refuses files over 16 MiB; generated ones stay below.
const MAX_BYTES: usize = 15 << 20;

fn repeat_until(out: &mut String, count: usize, mut line: impl FnMut(&mut String, usize)) {
    for i in 0..count {
        if out.len() > MAX_BYTES {
            break;
        }
        line(out, i);
    }
}

/// A YAML-safe rendering of a fuzzed bit (double-quoted, escaped), so shapes keep their structure.
fn quoted(bit: &Bit) -> String {
    let mut s = String::from("\"");
    for c in bit.get().chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(s, "\\u{:04x}", c as u32 & 0xffff);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// A bit reduced to one word of `[A-Za-z0-9_.-]` (never empty).
fn word(bit: &Bit) -> String {
    let w: String = bit.get().chars().filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c)).take(20).collect();
    if w.is_empty() { "x".into() } else { w }
}

/// Prefixes the credential detectors look for, and separators that restart their scans.
const TOKENS: &[&str] = &[
    "eyJ-",
    "eyJ",
    "AKIA",
    "ASIA-",
    "ghp_",
    "github_pat_-",
    "xoxb-",
    "sk_live_-",
    "://",
    "a://b:c@",
    "-----BEGIN ",
    "-----BEGIN PRIVATE KEY",
    "password=",
    "${",
    "$(",
    "#",
    "\\",
    "'",
    "- ",
];

const KINDS: &[&str] = &["ConfigMap", "Deployment", "Service", "Secret", "HorizontalPodAutoscaler", "Pod"];

impl Shape {
    pub fn generate(&self) -> Generated {
        let mut s = String::new();
        match self {
            Shape::YamlDocuments { count, kind, bit } => {
                let kind = KINDS[*kind as usize % KINDS.len()];
                let v = quoted(bit);
                repeat_until(&mut s, count.get(300_000), |s, i| {
                    let _ =
                        write!(s, "---\napiVersion: v1\nkind: {kind}\nmetadata:\n  name: o{i}\n  labels: {{a: {v}}}\n");
                });
                yaml(s)
            }
            Shape::YamlNesting { depth, flow, seq, bit } => {
                let depth = depth.get(100_000);
                s.push_str("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: deep\nspec:\n  x:");
                if *flow {
                    let (open, close) = if *seq { ("[", "]") } else { ("{a: ", "}") };
                    s.push(' ');
                    repeat_until(&mut s, depth, |s, _| s.push_str(open));
                    s.push_str(&quoted(bit));
                    repeat_until(&mut s, depth, |s, _| s.push_str(close));
                } else {
                    repeat_until(&mut s, depth, |s, i| {
                        s.push('\n');
                        s.push_str(&" ".repeat(i + 4));
                        s.push_str(if *seq { "- " } else { "a:" });
                    });
                    let _ = write!(s, " {}", quoted(bit));
                }
                s.push('\n');
                yaml(s)
            }
            Shape::YamlWideMap { keys, distinct, bit } => {
                let distinct = (*distinct as usize).max(1);
                let v = quoted(bit);
                s.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: wide\ndata:\n");
                repeat_until(&mut s, keys.get(1_000_000), |s, i| {
                    let _ = writeln!(s, "  k{}: {v}", i % distinct);
                });
                yaml(s)
            }
            Shape::YamlMergeKeys { keys, merges } => {
                let keys = keys.get(200_000);
                s.push_str("base: &base\n");
                repeat_until(&mut s, keys, |s, i| {
                    let _ = writeln!(s, "  k{i}: v");
                });
                s.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: merged\ndata:\n");
                repeat_until(&mut s, merges.get(10_000), |s, m| {
                    let _ = writeln!(s, "  m{m}:\n    <<: *base");
                    for i in (0..keys).step_by(2) {
                        let _ = writeln!(s, "    k{i}: own");
                    }
                });
                yaml(s)
            }
            Shape::YamlAliasChain { links, fanout } => {
                let fanout = (*fanout as usize % 16).max(1);
                s.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: aliases\ndata:\n  a0: &a0 [x]\n");
                repeat_until(&mut s, links.get(100_000), |s, i| {
                    let _ = write!(s, "  a{}: &a{} [", i + 1, i + 1);
                    for f in 0..fanout {
                        let _ = write!(s, "{}*a{i}", if f > 0 { ", " } else { "" });
                    }
                    s.push_str("]\n");
                });
                yaml(s)
            }
            Shape::YamlNestedAnchors { depth, items } => {
                s.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: anchors\ndata:\n  x: ");
                for d in 0..*depth {
                    let _ = write!(s, "&a{d} [");
                }
                repeat_until(&mut s, items.get(2_000_000), |s, i| s.push_str(if i > 0 { ", x" } else { "x" }));
                s.push_str(&"]".repeat(*depth as usize));
                s.push('\n');
                yaml(s)
            }
            Shape::YamlManyContainers { containers, env, bit } => {
                let env = env.get(2_000);
                let v = quoted(bit);
                s.push_str("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: many\nspec:\n  template:\n    spec:\n      containers:\n");
                // Capped: every container yields ~8 findings, and 20k containers (1 MB) already take ~1 GB
                // with the four reports; that family is measured on its own (findings are not capped).
                repeat_until(&mut s, containers.get(5_000), |s, c| {
                    let _ = writeln!(s, "        - name: c{c}\n          image: nginx:latest\n          env:");
                    for e in 0..env {
                        if s.len() > MAX_BYTES {
                            break;
                        }
                        let _ = writeln!(s, "            - name: PASSWORD_{e}\n              value: {v}");
                    }
                });
                yaml(s)
            }
            Shape::YamlOneLine { containers, json } => {
                let q = |k: &str| if *json { format!("\"{k}\"") } else { k.to_string() };
                let _ = write!(
                    s,
                    "{{{}: {}, {}: {}, {}: {{{}: {}}}, {}: {{{}: {{{}: {{{}: [",
                    q("apiVersion"),
                    q("apps/v1"),
                    q("kind"),
                    q("Deployment"),
                    q("metadata"),
                    q("name"),
                    q("one"),
                    q("spec"),
                    q("template"),
                    q("spec"),
                    q("containers")
                );
                repeat_until(&mut s, containers.get(200_000), |s, i| {
                    let _ = write!(
                        s,
                        "{}{{{}: {}, {}: \"nginx:latest\", {}: [{{{}: {}, {}: \"hunter2hunter2\"}}]}}",
                        if i > 0 { ", " } else { "" },
                        q("name"),
                        q(&format!("c{i}")),
                        q("image"),
                        q("env"),
                        q("name"),
                        q("DB_PASSWORD"),
                        q("value")
                    );
                });
                s.push_str("]}}}}\n");
                if *json { Generated::File { name: "deployment.json", text: s } } else { yaml(s) }
            }
            Shape::SecretValue { len, token, place, bit } => {
                let unit = match TOKENS.get(*token as usize % (TOKENS.len() + 1)) {
                    Some(t) => t.to_string(),
                    None => bit.get().replace(['\n', '\r', '"', '\\'], " "),
                };
                let unit = if unit.is_empty() { "x".to_string() } else { unit };
                let value = unit.repeat(len.get(MAX_BYTES - 400) / unit.len() + 1);
                let value = value.trim_end();
                let v = format!("\"{value}\"");
                match place % 5 {
                    0 => {
                        let _ = writeln!(
                            s,
                            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  DB_PASSWORD: {v}"
                        );
                    }
                    1 => {
                        let _ = writeln!(
                            s,
                            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: a\n      image: a:1\n      env:\n        - name: API_TOKEN\n          value: {v}"
                        );
                    }
                    2 => {
                        let _ = writeln!(
                            s,
                            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  application.properties: |\n    db.password={value}\n    token: {value}"
                        );
                    }
                    3 => {
                        let _ = writeln!(
                            s,
                            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: {v}"
                        );
                    }
                    _ => {
                        let _ =
                            writeln!(s, "FROM alpine:3.20\nENV API_KEY={v}\nARG SECRET_TOKEN={value}\nCMD [\"/app\"]");
                        return docker(s);
                    }
                }
                yaml(s)
            }
            Shape::YamlLongScalar { len, style, bit } => {
                let len = len.get(MAX_BYTES - 200);
                let w = word(bit);
                let unit = w.repeat(len / w.len().max(1) + 1);
                let body = &unit[..len.min(unit.len())];
                s.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: long\ndata:\n  k:");
                match style % 4 {
                    0 => {
                        let _ = writeln!(s, " {body}");
                    }
                    1 => {
                        let _ = writeln!(s, " \"{body}\"");
                    }
                    2 => {
                        let _ = writeln!(s, " |\n    {body}");
                    }
                    _ => {
                        let _ = writeln!(s, " >\n    {body}");
                    }
                }
                yaml(s)
            }
            Shape::DockerStages { count, chain, named, copy_from } => {
                repeat_until(&mut s, count.get(400_000), |s, i| {
                    let base = if *chain && i > 0 { format!("s{}", i - 1) } else { "alpine:3.20".to_string() };
                    let _ = write!(s, "FROM {base}");
                    if *named {
                        let _ = write!(s, " AS s{i}");
                    }
                    s.push('\n');
                    if *copy_from && i > 0 {
                        let _ = writeln!(s, "COPY --from=s{} /a /a", i - 1);
                    }
                });
                s.push_str("USER app\nCMD [\"/app\"]\n");
                docker(s)
            }
            Shape::DockerArgEnvChain { count, env, bit } => {
                let keyword = if *env { "ENV" } else { "ARG" };
                let _ = writeln!(s, "ARG V0={}", word(bit));
                s.push_str("FROM alpine:${V0}\n");
                repeat_until(&mut s, count.get(500_000), |s, i| {
                    let _ = writeln!(s, "{keyword} V{}=${{V{i}}}x", i + 1);
                });
                s.push_str("RUN echo $V1\nCMD [\"/app\"]\n");
                docker(s)
            }
            Shape::DockerContinuations { count, comments } => {
                s.push_str("FROM alpine:3.20\nRUN apk add \\\n");
                repeat_until(&mut s, count.get(1_000_000), |s, i| {
                    if *comments {
                        s.push_str("# c\n\n");
                    }
                    let _ = writeln!(s, "  p{i} \\");
                });
                s.push_str("  last\n");
                docker(s)
            }
            Shape::DockerHeredocs { count, terminated } => {
                let count = count.get(200_000);
                s.push_str("FROM alpine:3.20\nRUN");
                repeat_until(&mut s, count, |s, i| {
                    let _ = write!(s, " <<E{i}");
                });
                s.push('\n');
                repeat_until(&mut s, count, |s, i| {
                    let _ = writeln!(s, "echo {i}");
                    if *terminated || i + 1 < count {
                        let _ = writeln!(s, "E{i}");
                    }
                });
                docker(s)
            }
            Shape::DockerLongRun { count, words, bit } => {
                let words = words.get(100_000);
                let w = word(bit);
                s.push_str("FROM debian:12\n");
                repeat_until(&mut s, count.get(100_000), |s, _| {
                    s.push_str("RUN apt-get install -y");
                    for i in 0..words {
                        if s.len() > MAX_BYTES {
                            break;
                        }
                        let _ = write!(s, " && {w}{i} > /var/log/{w}.log");
                    }
                    s.push('\n');
                });
                docker(s)
            }
            Shape::IamStatements { count, dup, principals } => {
                let principals = principals.get(10_000);
                s.push_str("{\"Version\": \"2012-10-17\", \"Statement\": [");
                repeat_until(&mut s, count.get(200_000), |s, i| {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str("{\"Effect\": \"Allow\", \"Action\": \"sts:AssumeRoleWithWebIdentity\"");
                    for _ in 0..*dup {
                        s.push_str(", \"Effect\": \"Allow\"");
                    }
                    s.push_str(", \"Principal\": {\"Federated\": [");
                    for p in 0..principals {
                        if s.len() > MAX_BYTES {
                            break;
                        }
                        let _ = write!(s, "{}\"arn:aws:iam::1:oidc-provider/p{p}\"", if p > 0 { ", " } else { "" });
                    }
                    s.push_str("]}}");
                });
                s.push_str("]}\n");
                Generated::File { name: "policy.json", text: s }
            }
            Shape::IamNesting { depth } => {
                let depth = depth.get(1_000_000);
                s.push_str("{\"Statement\": [{\"Effect\": \"Allow\", \"Principal\": \"*\", \"Condition\": ");
                repeat_until(&mut s, depth, |s, _| s.push_str("{\"a\": "));
                s.push_str("\"x\"");
                repeat_until(&mut s, depth, |s, _| s.push('}'));
                s.push_str("}]}\n");
                Generated::File { name: "policy.json", text: s }
            }
            Shape::Commands { lines, quote, ticks, brackets, fence, bit } => {
                let prefix = "> ".repeat(*quote as usize % 64);
                if *fence {
                    let _ = writeln!(s, "{prefix}```");
                }
                s.push_str(&"`".repeat(ticks.get(1_000_000)));
                s.push_str(&"[".repeat(brackets.get(1_000_000)));
                s.push('\n');
                repeat_until(&mut s, lines.get(200_000), |s, i| {
                    let _ = writeln!(s, "{prefix}/kpath explain {}{i}", bit.get());
                });
                Generated::Comment(s)
            }
        }
    }
}

fn yaml(text: String) -> Generated {
    Generated::File { name: "manifest.yaml", text }
}

fn docker(text: String) -> Generated {
    Generated::File { name: "Dockerfile", text }
}

/// Parses a `/kpath` comment and renders every reply, as the App does for a comment event.
pub fn run_commands(body: &str) {
    let parsed = kpath::app::commands::parse(body);
    assert!(parsed.len() <= kpath::app::commands::MAX_COMMANDS, "{} commands taken from one comment", parsed.len());
    for result in &parsed {
        if let Err(error) = result {
            let _ = kpath::app::commands::error_reply(error);
        }
    }
}
