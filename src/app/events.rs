//! The webhook events kpath acts on, read from GitHub's payloads: a head to review, or a pull-request
//! comment that may hold `/kpath` commands. Everything else is ignored.
//!
//! Payload shapes: <https://docs.github.com/webhooks/webhook-events-and-payloads>.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// A new comment on a pull request, from a person, that mentions `/kpath`.
    Comment { repo: String, installation: Option<u64>, pull: u64, comment_id: u64, author: String, body: String },
    /// An installation was created, deleted or changed: logged.
    Installation { action: String, account: String },
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn number(v: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_u64()
}

/// Reads an event; `None` for events and actions kpath does not act on.
pub fn parse(name: &str, payload: &Value) -> Option<Event> {
    let action = text(payload, &["action"]).unwrap_or("");
    let repo = || text(payload, &["repository", "full_name"]).map(str::to_string);
    let installation = number(payload, &["installation", "id"]);
    match (name, action) {
        ("pull_request", "opened" | "synchronize" | "reopened" | "ready_for_review") => {
            let pr = payload.get("pull_request")?;
            if text(pr, &["state"]) == Some("closed") {
                return None;
            }
            Some(Event::Review {
                repo: repo()?,
                installation,
                pull: number(pr, &["number"]).or_else(|| number(payload, &["number"])),
                head_sha: text(pr, &["head", "sha"])?.to_string(),
                requested: false,
                reason: format!("pull_request.{action}"),
            })
        }
        ("check_suite", "requested" | "rerequested") => {
            let suite = payload.get("check_suite")?;
            Some(Event::Review {
                repo: repo()?,
                installation,
                pull: suite.get("pull_requests")?.as_array()?.first().and_then(|p| number(p, &["number"])),
                head_sha: text(suite, &["head_sha"])?.to_string(),
                requested: action == "rerequested",
                reason: format!("check_suite.{action}"),
            })
        }
        ("check_run", "rerequested" | "requested_action") => {
            let run = payload.get("check_run")?;
            // Only our own check run (named `kpath`) and its buttons; other apps' runs are theirs.
            if text(run, &["name"]) != Some("kpath") {
                return None;
            }
            Some(Event::Review {
                repo: repo()?,
                installation,
                pull: run
                    .get("pull_requests")
                    .and_then(Value::as_array)
                    .and_then(|l| l.first())
                    .and_then(|p| number(p, &["number"])),
                head_sha: text(run, &["head_sha"])?.to_string(),
                requested: true,
                reason: format!("check_run.{action}"),
            })
        }
        ("issue_comment", "created") => {
            let issue = payload.get("issue")?;
            // Comments on plain issues carry no `pull_request` key.
            issue.get("pull_request")?;
            let comment = payload.get("comment")?;
            let is_bot = text(comment, &["user", "type"]) == Some("Bot")
                || text(comment, &["user", "login"]).is_some_and(|l| l.ends_with("[bot]"))
                || text(comment, &["performed_via_github_app", "slug"]).is_some();
            let body = text(comment, &["body"]).unwrap_or("");
            if is_bot || !body.to_ascii_lowercase().contains("/kpath") {
                return None;
            }
            Some(Event::Comment {
                repo: repo()?,
                installation,
                pull: number(issue, &["number"])?,
                comment_id: number(comment, &["id"])?,
                author: text(comment, &["user", "login"]).unwrap_or("").to_string(),
                body: body.to_string(),
            })
        }
        ("installation" | "installation_repositories" | "installation_target", _) => Some(Event::Installation {
            action: action.to_string(),
            account: text(payload, &["installation", "account", "login"]).unwrap_or("").to_string(),
        }),
        _ => None,
    }
}
