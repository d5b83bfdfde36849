//! GitHub's REST API as GitHub publishes it (npm `@octokit/openapi`), for tests: checks that a request kpath
//! sends to a fake GitHub is one GitHub would accept (method, path, JSON body).
//!
//! The description is `generated/api.github.com.deref.json` of the pinned package, installed by
//! `scripts/install-npm` into `.tools/npm` (found through `$KPATH_NPM`, else `<crate>/.tools/npm`). It is
//! large (about 70 MB), so it is read once per test process, keeping only what requests are checked
//! against: each operation's method, path template, path parameters and JSON request schema. A schema is
//! compiled (JSON Schema draft 4, formats checked) the first time a request needs it.
//!
//! The description is OpenAPI 3.0, so its schemas are adapted before compiling: `nullable: true` becomes
//! "or null". They are also made stricter in one way GitHub is not: an object schema that lists its
//! `properties` and says nothing about others rejects other properties (GitHub ignores them, so a misspelt
//! field would otherwise be lost silently). Schemas that combine objects (`allOf`, or `anyOf`/`oneOf`
//! next to `properties`) are left open, since closing them would reject valid bodies.
//!
//! GraphQL is not in the description: `POST /graphql` (or `/api/graphql`, GitHub Enterprise Server's
//! address) is accepted when the body is an object with a string `query` and nothing but optional
//! `variables` (an object or null) and `operationName` (a string or null); its operation id is `graphql`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};

/// Where in the npm package the description is.
const PACKAGE_DIR: &str = "node_modules/@octokit/openapi";
const DESCRIPTION: &str = "generated/api.github.com.deref.json";
/// How many schema errors a failed check names.
const MAX_ERRORS: usize = 5;
/// How long one error may be (a failed `oneOf` quotes the whole value).
const MAX_ERROR_CHARS: usize = 300;

/// GitHub's REST API: its operations, indexed by the first segment of their path template.
pub struct OpenApi {
    /// Which description this is, for messages: `api.github.com (@octokit/openapi 23.0.2)`.
    source: String,
    operations: Vec<Operation>,
    /// Operations by the literal first segment of their path template (`repos`, `app`, ...).
    by_first_segment: HashMap<String, Vec<usize>>,
    /// Operations whose path template starts with a parameter (none today; checked for every path).
    by_parameter: Vec<usize>,
}

struct Operation {
    id: String,
    /// Upper case: `GET`, `POST`, ...
    method: String,
    template: String,
    segments: Vec<Segment>,
    /// Path parameters' schemas by name.
    parameters: HashMap<String, Value>,
    body: Option<Body>,
}

struct Body {
    required: bool,
    /// The media types the operation takes, for messages when none is JSON.
    media_types: Vec<String>,
    json: Option<Schema>,
}

// `original` and `examples` are read by this module's tests only.
#[cfg_attr(not(test), allow(dead_code))]
struct Schema {
    /// As published (OpenAPI 3.0).
    original: Value,
    /// Adapted to JSON Schema (see the module documentation).
    schema: Value,
    /// GitHub's own examples of the body.
    examples: Vec<Value>,
    compiled: OnceLock<Result<jsonschema::Validator, String>>,
}

/// One `/`-separated segment of a path template.
#[derive(Debug)]
enum Segment {
    Literal(String),
    /// `{name}`; `multi` (`x-multi-segment`) when the value may contain `/` (a branch, a file path).
    Parameter {
        name: String,
        multi: bool,
    },
    /// Literals and parameters within one segment: `{base}...{head}`.
    Mixed(Vec<Piece>),
}

#[derive(Debug)]
enum Piece {
    Literal(String),
    Parameter(String),
}

impl Segment {
    /// How specific a segment is, lowest first: a request segment matched by a literal beats one matched
    /// by a parameter.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Mixed(_) => 1,
            Segment::Parameter { multi: false, .. } => 2,
            Segment::Parameter { multi: true, .. } => 3,
        }
    }
}

/// A match of a request path against one template: per request segment, the rank of the template segment
/// that matched it (compared lexicographically, lower is more specific), and the parameters' values.
struct Match {
    ranks: Vec<u8>,
    captures: Vec<(String, String)>,
}

impl OpenApi {
    /// The api.github.com description, loaded once.
    pub fn github() -> &'static OpenApi {
        static GITHUB: OnceLock<OpenApi> = OnceLock::new();
        GITHUB.get_or_init(|| {
            let npm = std::env::var_os("KPATH_NPM")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/npm"));
            let package = npm.join(PACKAGE_DIR);
            let file = package.join(DESCRIPTION);
            let text = std::fs::read(&file).unwrap_or_else(|e| {
                panic!("{}: {e}; run `bash scripts/test`, which installs GitHub's OpenAPI description", file.display())
            });
            let version = std::fs::read(package.join("package.json"))
                .ok()
                .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
                .and_then(|p| p["version"].as_str().map(str::to_string))
                .unwrap_or_else(|| "?".to_string());
            let source = format!("api.github.com (@octokit/openapi {version})");
            OpenApi::parse(&text, source).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        })
    }

    /// Reads a dereferenced OpenAPI 3.0 description (no `$ref`s).
    fn parse(text: &[u8], source: String) -> Result<OpenApi, String> {
        let doc: raw::Document = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        let mut api =
            OpenApi { source, operations: Vec::new(), by_first_segment: HashMap::new(), by_parameter: Vec::new() };
        for (template, item) in doc.paths {
            let operations = [
                ("GET", item.get),
                ("PUT", item.put),
                ("POST", item.post),
                ("DELETE", item.delete),
                ("PATCH", item.patch),
                ("HEAD", item.head),
                ("OPTIONS", item.options),
                ("TRACE", item.trace),
            ];
            for (method, op) in operations {
                let Some(op) = op else { continue };
                let path_parameters: Vec<&raw::Parameter> =
                    item.parameters.iter().chain(&op.parameters).filter(|p| p.location == "path").collect();
                let segments = template
                    .strip_prefix('/')
                    .ok_or_else(|| format!("path {template} does not start with /"))?
                    .split('/')
                    .map(|s| parse_segment(s, &path_parameters))
                    .collect::<Vec<_>>();
                let body = op.request_body.map(|b| {
                    let media_types = b.content.keys().cloned().collect();
                    let json = b.content.get("application/json").and_then(|m| m.schema.as_ref()).map(|s| {
                        let mut schema = s.clone();
                        adapt(&mut schema, true);
                        let original = s.clone();
                        let media = &b.content["application/json"];
                        let examples = media
                            .example
                            .iter()
                            .chain(media.examples.values().filter_map(|e| e.value.as_ref()))
                            .cloned()
                            .collect();
                        Schema { original, schema, examples, compiled: OnceLock::new() }
                    });
                    Body { required: b.required, media_types, json }
                });
                let index = api.operations.len();
                match segments.first() {
                    Some(Segment::Literal(first)) => api.by_first_segment.entry(first.clone()).or_default().push(index),
                    _ => api.by_parameter.push(index),
                }
                api.operations.push(Operation {
                    id: op.operation_id,
                    method: method.to_string(),
                    template: template.clone(),
                    segments,
                    parameters: path_parameters.iter().map(|p| (p.name.clone(), p.schema.clone())).collect(),
                    body,
                });
            }
        }
        Ok(api)
    }

    /// Checks one request. `path` is the request path without the API base (e.g. `/repos/o/r/check-runs/5`),
    /// query string allowed and ignored; a GitHub Enterprise Server `/api/v3` prefix is stripped. Ok(operation_id)
    /// when some operation matches the method and path template (`/repos/{owner}/{repo}/check-runs/{check_run_id}`;
    /// literal segments are preferred over parameters when both match), the path parameters fit their schemas
    /// (an integer id is an integer), and the JSON body (if any) validates against that operation's
    /// `application/json` request schema; Err(message) naming the method, path, and the first schema errors
    /// otherwise.
    pub fn check(&self, method: &str, path: &str, body: Option<&Value>) -> Result<String, String> {
        let method = method.to_ascii_uppercase();
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let request = format!("{method} {path}");
        if path == "/graphql" || path == "/api/graphql" {
            return check_graphql(&method, body).map_err(|e| format!("{request}: {e}"));
        }
        let path = path.strip_prefix("/api/v3").filter(|p| p.starts_with('/')).unwrap_or(path);
        let Some(segments) = path.strip_prefix('/').map(|p| p.split('/').collect::<Vec<_>>()) else {
            return Err(format!("{request}: the path does not start with /"));
        };
        let candidates = match segments.first().and_then(|s| self.by_first_segment.get(*s)) {
            Some(indexed) => indexed.iter().chain(&self.by_parameter),
            None => [].iter().chain(&self.by_parameter),
        };
        let mut best: Option<(&Operation, Match)> = None;
        let mut other_methods: Vec<(&str, &str)> = Vec::new();
        for op in candidates.map(|&i| &self.operations[i]) {
            let Some(found) = match_segments(&op.segments, &segments) else { continue };
            if op.method != method {
                other_methods.push((&op.method, &op.template));
            } else if best.as_ref().is_none_or(|(_, b)| found.ranks < b.ranks) {
                best = Some((op, found));
            }
        }
        let Some((op, found)) = best else {
            if other_methods.is_empty() {
                return Err(format!("{request}: no operation of {} has this path", self.source));
            }
            let others: Vec<String> = other_methods.iter().map(|(m, t)| format!("{m} {t}")).collect();
            return Err(format!(
                "{request}: {} has no {method} operation for this path, only {}",
                self.source,
                others.join(", ")
            ));
        };
        let at = format!("{request} ({} {}, {})", op.method, op.template, op.id);
        for (name, value) in &found.captures {
            if let Some(schema) = op.parameters.get(name) {
                check_parameter(name, value, schema).map_err(|e| format!("{at}: {e}"))?;
            }
        }
        match (&op.body, body) {
            (None, None) => {}
            (None, Some(_)) => return Err(format!("{at}: the operation takes no request body, but one was sent")),
            (Some(b), None) if b.required => {
                return Err(format!("{at}: the operation requires a request body ({})", b.media_types.join(", ")));
            }
            (Some(_), None) => {}
            (Some(Body { json: None, media_types, .. }), Some(_)) => {
                return Err(format!("{at}: the operation takes {}, not JSON", media_types.join(", ")));
            }
            (Some(Body { json: Some(schema), .. }), Some(body)) => {
                let errors = schema.errors(body).map_err(|e| format!("{at}: {e}"))?;
                if !errors.is_empty() {
                    return Err(format!(
                        "{at}: the JSON body does not match GitHub's request schema:\n  {}",
                        errors.join("\n  ")
                    ));
                }
            }
        }
        Ok(op.id.clone())
    }
}

impl Schema {
    /// The first few ways `body` does not fit; empty when it fits.
    fn errors(&self, body: &Value) -> Result<Vec<String>, String> {
        let validator = self.compiled.get_or_init(|| compile(&self.schema)).as_ref()?;
        Ok(errors(validator, body))
    }
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| format!("GitHub's request schema does not compile: {e}"))
}

fn errors(validator: &jsonschema::Validator, body: &Value) -> Vec<String> {
    validator
        .iter_errors(body)
        .take(MAX_ERRORS)
        .map(|e| {
            let at = e.instance_path().to_string();
            let mut error = format!("{}: {e}", if at.is_empty() { "(the body)" } else { &at });
            if let Some((cut, _)) = error.char_indices().nth(MAX_ERROR_CHARS) {
                error.truncate(cut);
                error.push('…');
            }
            error
        })
        .collect()
}

fn parse_segment(segment: &str, parameters: &[&raw::Parameter]) -> Segment {
    let whole = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')).filter(|n| !n.contains(['{', '}']));
    if let Some(name) = whole {
        let multi = parameters.iter().any(|p| p.name == name && p.multi_segment);
        return Segment::Parameter { name: name.to_string(), multi };
    }
    if !segment.contains('{') {
        return Segment::Literal(segment.to_string());
    }
    let mut pieces = Vec::new();
    let mut rest = segment;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}').unwrap_or(rest.len() - 1);
                pieces.push(Piece::Parameter(rest[1..end].to_string()));
                rest = &rest[end + 1..];
            }
            Some(start) => {
                pieces.push(Piece::Literal(rest[..start].to_string()));
                rest = &rest[start..];
            }
            None => {
                pieces.push(Piece::Literal(rest.to_string()));
                rest = "";
            }
        }
    }
    Segment::Mixed(pieces)
}

/// The most specific way `request` matches `template`, if any.
fn match_segments(template: &[Segment], request: &[&str]) -> Option<Match> {
    let (first, rest) = match template.split_first() {
        None => return request.is_empty().then(|| Match { ranks: Vec::new(), captures: Vec::new() }),
        Some(split) => split,
    };
    let mut best: Option<Match> = None;
    let mut consider = |taken: usize, captures: Vec<(String, String)>| {
        if let Some(mut tail) = match_segments(rest, &request[taken..]) {
            let mut ranks = vec![first.rank(); taken];
            ranks.append(&mut tail.ranks);
            if best.as_ref().is_none_or(|b| ranks < b.ranks) {
                let mut all = captures;
                all.append(&mut tail.captures);
                best = Some(Match { ranks, captures: all });
            }
        }
    };
    match first {
        Segment::Literal(literal) => {
            if request.first().is_some_and(|s| s == literal) {
                consider(1, Vec::new());
            }
        }
        Segment::Parameter { name, multi } => {
            let most = if *multi { request.len() } else { request.len().min(1) };
            for taken in 1..=most {
                if request[..taken].iter().all(|s| !s.is_empty()) {
                    consider(taken, vec![(name.clone(), request[..taken].join("/"))]);
                }
            }
        }
        Segment::Mixed(pieces) => {
            if let Some(captures) = request.first().and_then(|s| match_pieces(pieces, s)) {
                consider(1, captures);
            }
        }
    }
    best
}

/// Matches one segment against literals and parameters (each parameter at least one character).
fn match_pieces(pieces: &[Piece], segment: &str) -> Option<Vec<(String, String)>> {
    match pieces.split_first() {
        None => segment.is_empty().then(Vec::new),
        Some((Piece::Literal(literal), rest)) => match_pieces(rest, segment.strip_prefix(literal.as_str())?),
        Some((Piece::Parameter(name), rest)) => {
            segment.char_indices().skip(1).map(|(i, _)| i).chain([segment.len()]).find_map(|end| {
                let mut captures = match_pieces(rest, &segment[end..])?;
                captures.insert(0, (name.clone(), segment[..end].to_string()));
                Some(captures)
            })
        }
    }
}

/// Whether a path parameter's (percent-encoded) value fits its schema's type and enum.
fn check_parameter(name: &str, value: &str, schema: &Value) -> Result<(), String> {
    let decoded = percent_decode(value);
    let typed = match schema["type"].as_str() {
        Some("integer") => decoded.parse::<i64>().ok().map(Value::from),
        Some("number") => decoded.parse::<f64>().ok().map(Value::from),
        Some("boolean") => decoded.parse::<bool>().ok().map(Value::from),
        _ => Some(Value::String(decoded.clone())),
    };
    let Some(typed) = typed else {
        return Err(format!("path parameter {name} is {value:?}, not of type {}", schema["type"]));
    };
    if let Some(allowed) = schema["enum"].as_array().filter(|allowed| !allowed.contains(&typed)) {
        return Err(format!("path parameter {name} is {value:?}, not one of {}", Value::from(allowed.clone())));
    }
    Ok(())
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// GraphQL requests (not in the REST description): a POST of an object with a string `query`.
fn check_graphql(method: &str, body: Option<&Value>) -> Result<String, String> {
    if method != "POST" {
        return Err("GitHub's GraphQL API takes POST only".to_string());
    }
    let Some(Value::Object(body)) = body else {
        return Err("a GraphQL request's body is a JSON object".to_string());
    };
    if !body.get("query").is_some_and(Value::is_string) {
        return Err("a GraphQL request's body has a string `query`".to_string());
    }
    for (key, value) in body {
        let fits = match key.as_str() {
            "query" => true,
            "variables" => value.is_object() || value.is_null(),
            "operationName" => value.is_string() || value.is_null(),
            _ => return Err(format!("a GraphQL request's body has no `{key}` (only query, variables, operationName)")),
        };
        if !fits {
            return Err(format!("a GraphQL request's `{key}` is {value}, not an object (variables) or string"));
        }
    }
    Ok("graphql".to_string())
}

/// Turns an OpenAPI 3.0 schema into JSON Schema (draft 4), with closed objects if `close`; see the module
/// documentation.
fn adapt(schema: &mut Value, close: bool) {
    adapt_part(schema, close, close);
}

/// `closable` is false where the schema is one part of a combined object.
fn adapt_part(schema: &mut Value, close: bool, closable: bool) {
    let Value::Object(map) = schema else { return };
    let combined = ["allOf", "anyOf", "oneOf"].iter().any(|k| map.contains_key(*k));
    let has_properties = map.contains_key("properties");
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        properties.values_mut().for_each(|p| adapt_part(p, close, close));
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = map.get_mut(key) {
            adapt_part(child, close, close);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(parts)) = map.get_mut(key) {
            let closable = close && key != "allOf" && !has_properties;
            parts.iter_mut().for_each(|p| adapt_part(p, close, closable));
        }
    }
    if closable && has_properties && !combined && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".to_string(), Value::Bool(false));
    }
    if map.remove("nullable") == Some(Value::Bool(true)) {
        if let Some(Value::Array(allowed)) = map.get_mut("enum")
            && !allowed.contains(&Value::Null)
        {
            allowed.push(Value::Null);
        }
        match map.get("type").cloned() {
            Some(Value::String(t)) => {
                map.insert("type".to_string(), json!([t, "null"]));
            }
            Some(_) => {}
            None if !map.contains_key("enum") => {
                let inner = Value::Object(std::mem::take(map));
                *schema = json!({ "anyOf": [{ "type": "null" }, inner] });
            }
            None => {}
        }
    }
}

/// The parts of the OpenAPI document that are read; the rest (responses, webhooks, texts) is skipped.
mod raw {
    use super::*;

    #[derive(Deserialize)]
    pub(super) struct Document {
        pub paths: BTreeMap<String, PathItem>,
    }

    #[derive(Deserialize)]
    pub(super) struct PathItem {
        pub get: Option<Operation>,
        pub put: Option<Operation>,
        pub post: Option<Operation>,
        pub delete: Option<Operation>,
        pub patch: Option<Operation>,
        pub head: Option<Operation>,
        pub options: Option<Operation>,
        pub trace: Option<Operation>,
        #[serde(default)]
        pub parameters: Vec<Parameter>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Operation {
        pub operation_id: String,
        #[serde(default)]
        pub parameters: Vec<Parameter>,
        pub request_body: Option<RequestBody>,
    }

    #[derive(Deserialize)]
    pub(super) struct Parameter {
        pub name: String,
        #[serde(rename = "in")]
        pub location: String,
        #[serde(default)]
        pub schema: Value,
        #[serde(rename = "x-multi-segment", default)]
        pub multi_segment: bool,
    }

    #[derive(Deserialize)]
    pub(super) struct RequestBody {
        #[serde(default)]
        pub required: bool,
        #[serde(default)]
        pub content: BTreeMap<String, MediaType>,
    }

    #[derive(Deserialize)]
    pub(super) struct MediaType {
        pub schema: Option<Value>,
        pub example: Option<Value>,
        #[serde(default)]
        pub examples: BTreeMap<String, Example>,
    }

    #[derive(Deserialize)]
    pub(super) struct Example {
        pub value: Option<Value>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn check(method: &str, path: &str, body: Option<Value>) -> Result<String, String> {
        OpenApi::github().check(method, path, body.as_ref())
    }

    fn rejected(method: &str, path: &str, body: Option<Value>) -> String {
        match check(method, path, body) {
            Ok(id) => panic!("{method} {path} was accepted as {id}"),
            Err(e) => e,
        }
    }

    #[test]
    fn creating_a_check_run() {
        let body = json!({"name": "kpath", "head_sha": SHA, "status": "in_progress"});
        assert_eq!(check("POST", "/repos/o/r/check-runs", Some(body)), Ok("checks/create".to_string()));
    }

    #[test]
    fn completing_a_check_run_with_annotations() {
        let body = json!({
            "status": "completed",
            "conclusion": "failure",
            "completed_at": "2025-01-02T03:04:05Z",
            "output": {
                "title": "kpath: 1 finding",
                "summary": "One finding.",
                "annotations": [{
                    "path": "deploy/app.yaml",
                    "start_line": 3,
                    "end_line": 4,
                    "annotation_level": "warning",
                    "message": "no resource limits",
                }],
            },
        });
        assert_eq!(check("PATCH", "/repos/o/r/check-runs/5", Some(body)), Ok("checks/update".to_string()));
    }

    #[test]
    fn reviewing_a_pull_request() {
        let body = json!({
            "commit_id": SHA,
            "event": "COMMENT",
            "body": "kpath found 1 thing",
            "comments": [{"path": "deploy/app.yaml", "line": 9, "side": "RIGHT", "body": "no limits"}],
        });
        assert_eq!(check("POST", "/repos/o/r/pulls/3/reviews", Some(body)), Ok("pulls/create-review".to_string()));
    }

    #[test]
    fn comments_reactions_and_reads() {
        let comment = || Some(json!({"body": "done"}));
        assert_eq!(check("POST", "/repos/o/r/issues/3/comments", comment()), Ok("issues/create-comment".into()));
        assert_eq!(check("PATCH", "/repos/o/r/issues/comments/7", comment()), Ok("issues/update-comment".into()));
        assert_eq!(
            check("POST", "/repos/o/r/issues/comments/7/reactions", Some(json!({"content": "eyes"}))),
            Ok("reactions/create-for-issue-comment".into())
        );
        assert_eq!(check("GET", "/repos/o/r/pulls/3", None), Ok("pulls/get".into()));
        assert_eq!(check("get", "/repos/o/r/pulls/3?per_page=100", None), Ok("pulls/get".into()));
        assert_eq!(
            check("POST", "/app/installations/1/access_tokens", None),
            Ok("apps/create-installation-access-token".into())
        );
        assert_eq!(
            check("POST", "/app/installations/1/access_tokens", Some(json!({"repositories": ["r"]}))),
            Ok("apps/create-installation-access-token".into())
        );
        assert_eq!(check("GET", "/repos/o/r/compare/a...b", None), Ok("repos/compare-commits".into()));
    }

    #[test]
    fn literal_segments_beat_parameters_and_multi_segment_parameters_span_slashes() {
        // `/repos/{owner}/{repo}/pulls/comments/{comment_id}` over `/repos/{owner}/{repo}/pulls/{pull_number}/...`.
        assert_eq!(check("GET", "/repos/o/r/pulls/comments/7", None), Ok("pulls/get-review-comment".into()));
        assert_eq!(check("GET", "/repos/o/r/commits/heads/main/check-runs", None), Ok("checks/list-for-ref".into()));
        assert_eq!(check("GET", "/repos/o/r/contents/deploy/app.yaml", None), Ok("repos/get-content".into()));
        assert_eq!(check("GET", "/repos/o/r/commits/abc", None), Ok("repos/get-commit".into()));
    }

    #[test]
    fn enterprise_prefix_and_graphql() {
        assert_eq!(check("GET", "/api/v3/repos/o/r/pulls/3", None), Ok("pulls/get".into()));
        let query = json!({"query": "query { viewer { login } }", "variables": {}});
        assert_eq!(check("POST", "/graphql", Some(query.clone())), Ok("graphql".into()));
        assert_eq!(check("POST", "/api/graphql", Some(query.clone())), Ok("graphql".into()));
        assert!(rejected("POST", "/api/v3/graphql", Some(query)).contains("no operation"));
        assert!(rejected("POST", "/graphql", Some(json!({"query": 1}))).contains("string `query`"));
        assert!(rejected("GET", "/graphql", None).contains("POST only"));
    }

    #[test]
    fn unknown_path_is_rejected() {
        let error = rejected("GET", "/repos/o/r/check-runz/5", None);
        assert!(error.starts_with("GET /repos/o/r/check-runz/5: no operation of api.github.com"), "{error}");
        rejected("GET", "/nope", None);
        rejected("GET", "/repos/o/r/pulls/3/", None);
        rejected("GET", "repos/o/r/pulls/3", None);
    }

    #[test]
    fn wrong_method_is_rejected() {
        let error = rejected("DELETE", "/repos/o/r/check-runs/5", None);
        assert!(error.contains("no DELETE operation"), "{error}");
        assert!(error.contains("PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}"), "{error}");
    }

    #[test]
    fn path_parameters_fit_their_types() {
        let error = rejected("GET", "/repos/o/r/pulls/three", None);
        assert!(error.contains("pull_number"), "{error}");
    }

    #[test]
    fn bad_check_run_status_is_rejected() {
        let body = json!({"name": "kpath", "head_sha": SHA, "status": "bogus"});
        let error = rejected("POST", "/repos/o/r/check-runs", Some(body));
        assert!(error.starts_with("POST /repos/o/r/check-runs (POST /repos/{owner}/{repo}/check-runs, checks/create)"));
        assert!(error.contains("/status: \"bogus\""), "{error}");
    }

    #[test]
    fn review_comment_line_must_be_an_integer() {
        let body = json!({
            "commit_id": SHA,
            "event": "COMMENT",
            "comments": [{"path": "a.yaml", "line": "nine", "side": "RIGHT", "body": "x"}],
        });
        let error = rejected("POST", "/repos/o/r/pulls/3/reviews", Some(body));
        assert!(error.contains("/comments/0/line"), "{error}");
    }

    #[test]
    fn annotation_level_must_be_known() {
        let body = json!({"output": {"title": "t", "summary": "s", "annotations": [{
            "path": "a.yaml", "start_line": 1, "end_line": 1, "annotation_level": "error", "message": "m",
        }]}});
        let error = rejected("PATCH", "/repos/o/r/check-runs/5", Some(body));
        assert!(error.contains("/output/annotations/0/annotation_level"), "{error}");
    }

    #[test]
    fn missing_required_name_is_rejected() {
        let error = rejected("POST", "/repos/o/r/check-runs", Some(json!({"head_sha": SHA})));
        assert!(error.contains("\"name\" is a required property"), "{error}");
    }

    #[test]
    fn unknown_properties_and_bodies_are_rejected() {
        let body =
            json!({"name": "kpath", "head_sha": SHA, "output": {"title": "t", "summary": "s", "annotation": []}});
        let error = rejected("POST", "/repos/o/r/check-runs", Some(body));
        assert!(error.contains("annotation"), "{error}");
        let error = rejected("GET", "/repos/o/r/pulls/3", Some(json!({})));
        assert!(error.contains("takes no request body"), "{error}");
        let error = rejected("POST", "/repos/o/r/check-runs", None);
        assert!(error.contains("requires a request body"), "{error}");
    }

    #[test]
    fn nullable_fields_accept_null() {
        // `milestone` is `integer` or `string`, nullable.
        let body = json!({"title": "t", "milestone": null});
        assert_eq!(check("PATCH", "/repos/o/r/issues/3", Some(body)), Ok("issues/update".into()));
    }

    /// GitHub's own examples of request bodies fit the schemas as adapted here, except where the
    /// description contradicts itself or the examples send properties the schemas do not list.
    #[test]
    fn github_examples_fit_the_adapted_schemas() {
        // Examples that do not fit the published schema itself (GitHub's mistakes).
        let wrong = [
            "codespaces/set-repositories-for-secret-for-authenticated-user", // ids as strings
            "orgs/create-issue-field",                                       // options lack `priority`
            "projects/add-field-for-org",                                    // fits no `oneOf` branch
            "projects/add-field-for-user",
            "security-advisories/update-repository-advisory", // an array where an object is due
            "users/create-public-ssh-key-for-authenticated-user", // the key lacks its `ssh-` prefix
            "users/create-ssh-signing-key-for-authenticated-user",
        ];
        // Examples with properties the schema does not list, which closing objects rejects.
        let unlisted = [
            "codespaces/create-with-pr-for-authenticated-user", // repository_id, ref
            "codespaces/publish-for-authenticated-user",        // repository
            "copilot-spaces/update-for-org",                    // resources_attributes[].id, _destroy
            "copilot-spaces/update-for-user",
            "migrations/update-import",    // human_name
            "orgs/list-attestations-bulk", // predicateType
            "users/list-attestations-bulk",
        ];
        let api = OpenApi::github();
        let (mut checked, mut failing_open, mut failing_closed) = (0, Vec::new(), Vec::new());
        for op in &api.operations {
            let Some(Body { json: Some(schema), .. }) = &op.body else { continue };
            let mut open = schema.original.clone();
            adapt(&mut open, false);
            let open = compile(&open).unwrap_or_else(|e| panic!("{}: {e}", op.id));
            for example in &schema.examples {
                checked += 1;
                let closed_errors = schema.errors(example).unwrap_or_else(|e| panic!("{}: {e}", op.id));
                let open_errors = errors(&open, example);
                if !open_errors.is_empty() {
                    failing_open.push(format!("{}: {}", op.id, open_errors.join("; ")));
                } else if !closed_errors.is_empty() {
                    failing_closed.push(format!("{}: {}", op.id, closed_errors.join("; ")));
                }
            }
        }
        assert!(checked > 300, "only {checked} examples");
        let unexpected = |failing: &[String], known: &[&str]| -> Vec<String> {
            failing.iter().filter(|f| !known.iter().any(|k| f.starts_with(&format!("{k}: ")))).cloned().collect()
        };
        assert_eq!(unexpected(&failing_open, &wrong), Vec::<String>::new(), "examples that do not fit the schema");
        assert_eq!(unexpected(&failing_closed, &unlisted), Vec::<String>::new(), "examples with unlisted properties");
        // The exceptions are still needed (drop them when a new description fixes its examples).
        for known in wrong.iter().chain(&unlisted) {
            let failing = failing_open.iter().chain(&failing_closed).any(|f| f.starts_with(&format!("{known}: ")));
            assert!(failing, "{known}'s examples fit now");
        }
    }
}
