//! The webhook events kpath acts on, read from GitHub's payloads: a head to review, or a pull-request
//! comment that may hold `/kpath` commands. Everything else is ignored.
//!
//! Payloads are read straight from the verified bytes into small typed structs that name only the fields
//! kpath uses; serde skips everything else without keeping it, so a 25 MB payload never becomes a tree of
//! values in memory (a `serde_json::Value` of an 18.6 MB array took 650 MB). Payloads of events kpath does
//! not act on are not parsed at all. Every field that reaches a job (and so the logs) is checked here:
//! repositories are `OWNER/NAME` as GitHub allows them, heads are commit ids, logins are logins, and a
//! comment is no longer than GitHub lets one be.
//!
//! Payload shapes: <https://docs.github.com/webhooks/webhook-events-and-payloads>.

use serde::{Deserialize, Serialize};

use crate::logtext::bounded;

/// Stored as JSON by the PostgreSQL job store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Review `head_sha` of a repository: a pull request was opened or pushed to, or a check was
    /// (re)requested. `pull` is `None` when GitHub did not say which pull request (a `check_suite`
    /// from a fork carries an empty `pull_requests` list): the PR is then found by head SHA.
    /// `requested` is true when someone asked for it (a Re-run button, a rerequest, `/kpath recheck`)
    /// rather than a push announcing the head; `reason` names the event, for logs.
    Review {
        repo: String,
        installation: Option<u64>,
        pull: Option<u64>,
        head_sha: String,
        requested: bool,
        reason: String,
    },
    /// A new comment on a pull request, from a person, that mentions `/kpath`: in the conversation
    /// (`thread: None`), or in a review thread (`thread`: the thread's first comment, which replies go to).
    Comment {
        repo: String,
        installation: Option<u64>,
        pull: u64,
        comment_id: u64,
        author: String,
        body: String,
        thread: Option<u64>,
    },
    /// An installation was created, deleted or changed: logged.
    Installation { action: String, account: String },
}

/// Why a payload of an event kpath acts on was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    /// Not JSON, or JSON of the wrong shape (serde's message, bounded: it may quote the payload).
    #[error("the payload does not parse: {0}")]
    Unreadable(String),
    /// A field kpath needs is not what GitHub sends (a repository that is not `OWNER/NAME`, a head
    /// that is not a commit id).
    #[error("the payload's {field} is not valid: {value}")]
    Invalid { field: &'static str, value: String },
}

/// The events whose payloads are read; any other event is ignored unread.
pub const HANDLED: [&str; 8] = [
    "pull_request",
    "check_suite",
    "check_run",
    "issue_comment",
    "pull_request_review_comment",
    "installation",
    "installation_repositories",
    "installation_target",
];

/// GitHub's limit on a comment's body, in characters: a longer one cannot come from GitHub.
const MAX_COMMENT_CHARS: usize = 65_536;

// What kpath reads of a payload. Every field is optional: a missing one means "not this event".

#[derive(Deserialize, Default)]
#[serde(default)]
struct Payload {
    action: Option<String>,
    number: Option<u64>,
    repository: Option<Repository>,
    installation: Option<Installation>,
    pull_request: Option<PullRequest>,
    check_suite: Option<CheckSuite>,
    check_run: Option<CheckRun>,
    issue: Option<Issue>,
    comment: Option<Comment>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Repository {
    full_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Installation {
    id: Option<u64>,
    account: Option<Login>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Login {
    login: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PullRequest {
    number: Option<u64>,
    state: Option<String>,
    head: Option<Head>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Head {
    sha: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Number {
    number: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CheckSuite {
    head_sha: Option<String>,
    pull_requests: Option<Vec<Number>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CheckRun {
    name: Option<String>,
    head_sha: Option<String>,
    pull_requests: Option<Vec<Number>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Issue {
    number: Option<u64>,
    /// Present only on pull requests' conversations; its content is not needed.
    pull_request: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Comment {
    id: Option<u64>,
    body: Option<String>,
    user: Option<Login>,
    performed_via_github_app: Option<App>,
    /// Review comments only: the thread's first comment, when this one is a reply.
    in_reply_to_id: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct App {
    slug: Option<String>,
}

/// Reads event `name` from its raw (verified) payload; `Ok(None)` for events and actions kpath does not
/// act on, which are not parsed when the event's name is enough to tell.
pub fn parse(name: &str, body: &[u8]) -> Result<Option<Event>, PayloadError> {
    if !HANDLED.contains(&name) {
        return Ok(None);
    }
    let payload: Payload =
        serde_json::from_slice(body).map_err(|e| PayloadError::Unreadable(bounded(&e.to_string()).to_string()))?;
    read(name, payload)
}

fn read(name: &str, payload: Payload) -> Result<Option<Event>, PayloadError> {
    let action = payload.action.as_deref().unwrap_or("");
    let installation = payload.installation.as_ref().and_then(|i| i.id);
    let repo = || checked_repo(payload.repository.as_ref().and_then(|r| r.full_name.as_deref()));
    let event = match (name, action) {
        ("pull_request", "opened" | "synchronize" | "reopened" | "ready_for_review") => {
            let Some(pr) = &payload.pull_request else { return Ok(None) };
            if pr.state.as_deref() == Some("closed") {
                return Ok(None);
            }
            Event::Review {
                repo: repo()?,
                installation,
                pull: pr.number.or(payload.number),
                head_sha: checked_sha(pr.head.as_ref().and_then(|h| h.sha.as_deref()))?,
                requested: false,
                reason: format!("pull_request.{action}"),
            }
        }
        ("check_suite", "requested" | "rerequested") => {
            let Some(suite) = &payload.check_suite else { return Ok(None) };
            let Some(pulls) = &suite.pull_requests else { return Ok(None) };
            Event::Review {
                repo: repo()?,
                installation,
                pull: pulls.first().and_then(|p| p.number),
                head_sha: checked_sha(suite.head_sha.as_deref())?,
                requested: action == "rerequested",
                reason: format!("check_suite.{action}"),
            }
        }
        ("check_run", "rerequested" | "requested_action") => {
            let Some(run) = &payload.check_run else { return Ok(None) };
            // Only our own check run (named `kpath`) and its buttons; other apps' runs are theirs.
            if run.name.as_deref() != Some("kpath") {
                return Ok(None);
            }
            Event::Review {
                repo: repo()?,
                installation,
                pull: run.pull_requests.as_ref().and_then(|l| l.first()).and_then(|p| p.number),
                head_sha: checked_sha(run.head_sha.as_deref())?,
                requested: true,
                reason: format!("check_run.{action}"),
            }
        }
        (name @ ("issue_comment" | "pull_request_review_comment"), "created") => {
            let Some(comment) = &payload.comment else { return Ok(None) };
            let in_thread = name == "pull_request_review_comment";
            let pull = if in_thread {
                payload.pull_request.as_ref().and_then(|p| p.number)
            } else {
                // Comments on plain issues carry no `pull_request` key.
                match &payload.issue {
                    Some(issue) if issue.pull_request.is_some() => issue.number,
                    _ => return Ok(None),
                }
            };
            let user = comment.user.as_ref();
            let login = user.and_then(|u| u.login.as_deref()).unwrap_or("");
            let is_bot = user.and_then(|u| u.kind.as_deref()) == Some("Bot")
                || login.ends_with("[bot]")
                || comment.performed_via_github_app.as_ref().is_some_and(|a| a.slug.is_some());
            let body = comment.body.as_deref().unwrap_or("");
            if is_bot || !contains_ignoring_ascii_case(body, "/kpath") {
                return Ok(None);
            }
            if body.chars().count() > MAX_COMMENT_CHARS {
                return Err(invalid("comment.body", &format!("{} bytes, over GitHub's limit", body.len())));
            }
            let (Some(pull), Some(comment_id)) = (pull, comment.id) else { return Ok(None) };
            Event::Comment {
                repo: repo()?,
                installation,
                pull,
                comment_id,
                author: checked_login("comment.user.login", login)?,
                body: body.to_string(),
                // GitHub answers replies only to a thread's first comment.
                thread: in_thread.then(|| comment.in_reply_to_id.unwrap_or(comment_id)),
            }
        }
        ("installation" | "installation_repositories" | "installation_target", _) => {
            let account =
                payload.installation.as_ref().and_then(|i| i.account.as_ref()).and_then(|a| a.login.as_deref());
            // Only logged: bounded rather than checked.
            Event::Installation {
                action: bounded(action).to_string(),
                account: bounded(account.unwrap_or("")).to_string(),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}

fn invalid(field: &'static str, value: &str) -> PayloadError {
    PayloadError::Invalid { field, value: bounded(value).to_string() }
}

/// `OWNER/NAME` as GitHub allows them: an owner of at most 39 letters, digits and hyphens, a name of at
/// most 100 letters, digits, `-`, `_` and `.` (not `.` or `..`).
fn checked_repo(full_name: Option<&str>) -> Result<String, PayloadError> {
    let full_name = full_name.unwrap_or("");
    let owner_ok =
        |o: &str| !o.is_empty() && o.len() <= 39 && o.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 100
            && n != "."
            && n != ".."
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match full_name.split_once('/') {
        Some((owner, name)) if owner_ok(owner) && name_ok(name) => Ok(full_name.to_string()),
        _ => Err(invalid("repository.full_name", full_name)),
    }
}

/// A commit id: 40 hexadecimal digits (SHA-1), or 64 (SHA-256 repositories).
fn checked_sha(sha: Option<&str>) -> Result<String, PayloadError> {
    let sha = sha.unwrap_or("");
    if matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(sha.to_ascii_lowercase())
    } else {
        Err(invalid("head sha", sha))
    }
}

/// A GitHub login (at most 39 letters, digits and hyphens), or an App's `name[bot]`; empty when GitHub
/// sent none.
fn checked_login(field: &'static str, login: &str) -> Result<String, PayloadError> {
    let name = login.strip_suffix("[bot]").unwrap_or(login);
    if name.len() <= 39 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(login.to_string())
    } else {
        Err(invalid(field, login))
    }
}

fn contains_ignoring_ascii_case(text: &str, needle: &str) -> bool {
    text.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::app::testing::testbed::{adapt, example};

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn parse_value(name: &str, payload: &Value) -> Result<Option<Event>, PayloadError> {
        parse(name, &serde_json::to_vec(payload).expect("JSON"))
    }

    /// GitHub's own examples of every event kpath acts on are read.
    #[test]
    fn githubs_examples_are_read() {
        let mut pr = adapt(example("pull_request", "opened"));
        pr["pull_request"]["head"]["sha"] = json!(SHA);
        let Some(Event::Review { repo, pull, head_sha, requested: false, reason, .. }) =
            parse_value("pull_request", &pr).expect("valid")
        else {
            panic!("a review")
        };
        assert_eq!((repo.as_str(), head_sha.as_str(), reason.as_str()), ("octo/gitops", SHA, "pull_request.opened"));
        assert!(pull.is_some());

        let mut suite = adapt(example("check_suite", "requested"));
        suite["check_suite"]["head_sha"] = json!(SHA);
        suite["check_suite"]["pull_requests"] = json!([{ "number": 19 }]);
        assert!(matches!(
            parse_value("check_suite", &suite),
            Ok(Some(Event::Review { pull: Some(19), requested: false, .. }))
        ));

        let mut run = adapt(example("check_run", "requested_action"));
        run["check_run"]["name"] = json!("kpath");
        run["check_run"]["head_sha"] = json!(SHA);
        assert!(matches!(parse_value("check_run", &run), Ok(Some(Event::Review { requested: true, .. }))));
        run["check_run"]["name"] = json!("other-app");
        assert_eq!(parse_value("check_run", &run), Ok(None));

        let mut comment = adapt(example("issue_comment", "created"));
        comment["issue"]["pull_request"] = json!({ "url": "https://api.github.com/repos/octo/gitops/pulls/1" });
        comment["comment"]["body"] = json!("/KPATH recheck");
        comment["comment"]["user"]["type"] = json!("User");
        comment["comment"]["performed_via_github_app"] = Value::Null;
        assert!(matches!(parse_value("issue_comment", &comment), Ok(Some(Event::Comment { .. }))));
        comment["issue"].as_object_mut().expect("object").remove("pull_request");
        assert_eq!(parse_value("issue_comment", &comment), Ok(None), "a plain issue");

        let mut reply = adapt(example("pull_request_review_comment", "created"));
        reply["comment"]["body"] = json!("/kpath explain image-latest");
        reply["comment"]["id"] = json!(5_000_000_001u64);
        reply["comment"]["in_reply_to_id"] = json!(4_900_000_000u64);
        reply["comment"]["user"]["type"] = json!("User");
        assert!(matches!(
            parse_value("pull_request_review_comment", &reply),
            Ok(Some(Event::Comment { thread: Some(4_900_000_000), comment_id: 5_000_000_001, pull: 2, .. }))
        ));
        // A thread's first comment is its own thread.
        reply["comment"]["in_reply_to_id"] = Value::Null;
        assert!(matches!(
            parse_value("pull_request_review_comment", &reply),
            Ok(Some(Event::Comment { thread: Some(5_000_000_001), .. }))
        ));

        let installation = example("installation", "created");
        assert!(matches!(parse_value("installation", &installation), Ok(Some(Event::Installation { .. }))));
    }

    /// Events kpath does not act on are not even parsed; a hostile payload of one it does is an error
    /// whose message is bounded, or is ignored, never a panic.
    #[test]
    fn hostile_payloads_are_errors_or_ignored() {
        assert_eq!(parse("push", b"not json at all"), Ok(None));
        assert_eq!(parse("ping", b"[1,2,3]"), Ok(None));
        assert!(matches!(parse("pull_request", b"{"), Err(PayloadError::Unreadable(_))));
        let array = format!("[{}]", vec!["{\"a\":1}"; 10_000].join(","));
        assert!(matches!(parse("pull_request", array.as_bytes()), Err(PayloadError::Unreadable(_))));
        // serde quotes a mistyped string: the message stays bounded.
        let long = "x".repeat(100_000);
        let error = parse_value("pull_request", &json!({ "action": "opened", "number": long })).unwrap_err();
        assert!(error.to_string().len() < 1_000, "{} bytes", error.to_string().len());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(parse("check_suite", format!("{{\"x\":{deep}}}").as_bytes()), Ok(None)), "skipped");
        assert!(parse("check_suite", format!("{{\"check_suite\":{deep}}}").as_bytes()).is_err());

        let mut pr = adapt(example("pull_request", "opened"));
        pr["pull_request"]["head"]["sha"] = json!(SHA);
        for (path, value) in [
            (&["repository", "full_name"][..], json!(format!("o/{}", "n".repeat(60_000)))),
            (&["repository", "full_name"][..], json!("o/n\u{1b}[2J")),
            (&["repository", "full_name"][..], json!("../etc")),
            (&["pull_request", "head", "sha"][..], json!("--upload-pack=sh")),
            (&["pull_request", "head", "sha"][..], json!("0".repeat(10_000))),
        ] {
            let mut payload = pr.clone();
            let (last, parents) = path.split_last().expect("path");
            let mut target = &mut payload;
            for key in parents {
                target = &mut target[*key];
            }
            target[*last] = value;
            let error = parse_value("pull_request", &payload).unwrap_err();
            let text = error.to_string();
            assert!(matches!(error, PayloadError::Invalid { .. }), "{text}");
            assert!(text.len() < 400 && !text.contains('\u{1b}'), "bounded and escaped: {text}");
        }
    }
}
