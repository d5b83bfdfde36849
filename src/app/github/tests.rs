//! Tests of the GitHub client against the fake GitHub.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use secrecy::ExposeSecret;

use super::graphql::THREADS_QUERY;
use super::*;
use crate::app::testing::fake_github::{
    AuthKind, FakeGitHub, Fault, Pull, TEST_APP_ID, TEST_INSTALLATION, TEST_ONLY_APP_PRIVATE_KEY, TEST_REPO, User,
};

const HEAD: &str = "1111111111111111111111111111111111111111";
const BASE: &str = "2222222222222222222222222222222222222222";
const MERGE_BASE: &str = "3333333333333333333333333333333333333333";
const PR: u64 = 7;

type Waits = Arc<Mutex<Vec<Duration>>>;

/// Retries that record their waits instead of sleeping.
fn no_sleep(waits: &Waits) -> RetryPolicy {
    let waits = waits.clone();
    RetryPolicy::default().with_sleep(move |wait| {
        waits.lock().unwrap().push(wait);
        Box::pin(async {})
    })
}

fn key() -> SecretString {
    SecretString::from(TEST_ONLY_APP_PRIVATE_KEY.to_string())
}

async fn connect(api: &str, app_id: u64, installation: u64, waits: &Waits) -> Result<GitHub, GitHubError> {
    GitHub::for_installation_with_retry(api, app_id, &key(), installation, no_sleep(waits)).await
}

struct Setup {
    fake: FakeGitHub,
    github: GitHub,
    waits: Waits,
}

impl Setup {
    fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap().clone()
    }

    fn route(&self, rest: &str) -> String {
        format!("/repos/{TEST_REPO}{rest}")
    }
}

/// A fake with pull request #7 (HEAD on BASE) and a client connected to it.
async fn setup() -> Setup {
    let fake = FakeGitHub::start().await;
    let mut pull = Pull::new(PR, HEAD, BASE);
    pull.merge_base = MERGE_BASE.to_string();
    fake.add_pull(TEST_REPO, pull);
    let waits = Waits::default();
    let github = connect(fake.url(), TEST_APP_ID, TEST_INSTALLATION, &waits).await.expect("connects to the fake");
    Setup { fake, github, waits }
}

fn inline(path: &str, line: u32, fingerprint: &str) -> InlineComment {
    InlineComment {
        path: path.to_string(),
        line,
        start_line: None,
        side: "RIGHT",
        body: format!("**error** `some-rule`: something\n\n<!-- kpath:fingerprint={fingerprint} -->"),
        rules: vec!["some-rule"],
        fingerprints: vec![fingerprint.to_string()],
    }
}

fn annotations(n: usize) -> Vec<Annotation> {
    (0..n)
        .map(|i| Annotation {
            path: format!("apps/app{i}/deployment.yaml"),
            start_line: 3,
            end_line: 4,
            annotation_level: if i % 2 == 0 { "failure" } else { "warning" },
            title: format!("rule-{i}"),
            message: format!("finding {i}"),
        })
        .collect()
}

#[tokio::test]
async fn installation_token_is_exchanged_once_and_sent_on_every_request() {
    let s = setup().await;
    let token = s.github.installation_token().await.unwrap();
    assert!(token.expose_secret().starts_with("ghs_fake"), "a token the fake issued");
    s.github.pull(TEST_REPO, PR).await.unwrap();
    s.github.pull(TEST_REPO, PR).await.unwrap();
    let requests = s.fake.requests();
    let exchanges: Vec<_> = requests.iter().filter(|r| r.route().starts_with("/app/")).collect();
    assert_eq!(exchanges.len(), 1, "the token is cached: {requests:#?}");
    assert_eq!(exchanges[0].route(), format!("/app/installations/{TEST_INSTALLATION}/access_tokens"));
    assert_eq!((exchanges[0].auth_scheme.as_deref(), exchanges[0].auth), (Some("Bearer"), AuthKind::AppJwt));
    assert_eq!(exchanges[0].status, 201);
    let api: Vec<_> = requests.iter().filter(|r| r.route().starts_with("/repos/")).collect();
    assert_eq!(api.len(), 2);
    for r in api {
        assert_eq!(r.auth, AuthKind::InstallationToken, "{r:?}");
        assert!(matches!(r.auth_scheme.as_deref(), Some("Bearer" | "token")), "{r:?}");
        assert_eq!(r.status, 200);
    }
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn a_failed_token_exchange_is_retried() {
    let fake = FakeGitHub::start().await;
    fake.fail_next("POST", "/app/installations/", 503, 1);
    let waits = Waits::default();
    let github = connect(fake.url(), TEST_APP_ID, TEST_INSTALLATION, &waits).await.unwrap();
    assert_eq!(*waits.lock().unwrap(), [Duration::from_secs(1)]);
    assert_eq!(fake.requests_to("POST", "/app/").len(), 2);
    let token = github.installation_token().await.unwrap();
    assert!(token.expose_secret().starts_with("ghs_fake"));
    assert!(!format!("{github:?}").contains(token.expose_secret()), "the token is not in Debug output");
    fake.assert_no_violations();
}

#[tokio::test]
async fn pull_requests_of_forks_are_found_by_head_commit() {
    let s = setup().await;
    let fork_head = "4444444444444444444444444444444444444444";
    let mut fork = Pull::new(8, fork_head, BASE);
    fork.head_repo = Some("someone/gitops".to_string());
    fork.head_ref = "patch-1".to_string();
    fork.draft = true;
    s.fake.add_pull(TEST_REPO, fork);
    let mut closed = Pull::new(9, fork_head, BASE);
    closed.state = "closed";
    s.fake.add_pull(TEST_REPO, closed);

    let info = s.github.pull(TEST_REPO, 8).await.unwrap();
    assert_eq!(
        info,
        PullInfo {
            number: 8,
            state: PullState::Open,
            draft: true,
            head_sha: fork_head.to_string(),
            head_ref: "patch-1".to_string(),
            head_repo: Some("someone/gitops".to_string()),
            base_ref: "main".to_string(),
            base_sha: BASE.to_string(),
        }
    );
    assert_eq!(s.github.pull(TEST_REPO, 9).await.unwrap().state, PullState::Closed);
    assert_eq!(s.github.pulls_for_commit(TEST_REPO, fork_head).await.unwrap(), vec![8]);
    assert_eq!(s.github.pulls_for_commit(TEST_REPO, HEAD).await.unwrap(), vec![PR]);
    assert_eq!(s.github.pulls_for_commit(TEST_REPO, BASE).await.unwrap(), Vec::<u64>::new());
    assert_eq!(s.github.merge_base(TEST_REPO, BASE, HEAD).await.unwrap(), MERGE_BASE);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn check_run_completed_with_120_annotations_takes_three_patches() {
    let s = setup().await;
    let id = s.github.start_check_run(TEST_REPO, HEAD).await.unwrap();
    {
        let world = s.fake.world();
        let run = world.check_runs.iter().find(|r| r.id == id).unwrap();
        assert_eq!((run.name.as_str(), run.status.as_str(), run.head_sha.as_str()), ("kpath", "in_progress", HEAD));
    }
    let all = annotations(120);
    s.github
        .complete_check_run(TEST_REPO, id, &Conclusion::Failure, "3 new errors", "### kpath", None, &all)
        .await
        .unwrap();

    let patches = s.fake.requests_to("PATCH", &s.route(&format!("/check-runs/{id}")));
    let sizes: Vec<usize> = patches
        .iter()
        .map(|p| p.body.as_ref().and_then(|b| b["output"]["annotations"].as_array()).map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [50, 50, 20]);
    let completing: Vec<bool> =
        patches.iter().map(|p| p.body.as_ref().is_some_and(|b| b.get("conclusion").is_some())).collect();
    assert_eq!(completing, [false, false, true], "the conclusion comes with the last batch");
    let world = s.fake.world();
    let run = world.check_runs.iter().find(|r| r.id == id).unwrap();
    assert_eq!((run.status.as_str(), run.conclusion.as_deref()), ("completed", Some("failure")));
    assert_eq!(run.title.as_deref(), Some("3 new errors"));
    assert_eq!(run.annotations.len(), 120);
    assert_eq!(run.annotations[119]["title"], "rule-119");
    assert_eq!(
        run.actions,
        vec![json!({"label": "Re-run", "description": "Review this commit again", "identifier": "rerun"})]
    );
    drop(world);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn check_run_without_annotations_is_one_patch() {
    let s = setup().await;
    let id = s.github.start_check_run(TEST_REPO, HEAD).await.unwrap();
    s.github.complete_check_run(TEST_REPO, id, &Conclusion::Neutral, "Nothing to review", "", None, &[]).await.unwrap();
    assert_eq!(s.fake.requests_to("PATCH", &s.route("/check-runs/")).len(), 1);
    assert_eq!(s.fake.world().check_runs[0].conclusion.as_deref(), Some("neutral"));
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn check_run_summary_over_the_limit_is_cut() {
    let s = setup().await;
    let id = s.github.start_check_run(TEST_REPO, HEAD).await.unwrap();
    // Two bytes per character: the cut must land on a character boundary.
    let summary = "é".repeat(40_000);
    s.github.complete_check_run(TEST_REPO, id, &Conclusion::Success, "ok", &summary, None, &[]).await.unwrap();
    let stored = s.fake.world().check_runs[0].summary.clone().unwrap();
    assert!(stored.len() <= MAX_CHECK_SUMMARY && stored.chars().count() <= MAX_CHECK_SUMMARY);
    assert!(stored.starts_with("éé") && stored.ends_with(TRUNCATED_NOTE), "{}", &stored[stored.len() - 80..]);

    let id = s.github.start_check_run(TEST_REPO, BASE).await.unwrap();
    let summary = "x".repeat(MAX_CHECK_SUMMARY);
    s.github.complete_check_run(TEST_REPO, id, &Conclusion::Success, "ok", &summary, None, &[]).await.unwrap();
    assert_eq!(s.fake.world().check_runs[1].summary.as_deref(), Some(summary.as_str()), "at the limit: kept whole");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn retried_check_run_creation_and_annotations_are_not_duplicated() {
    let s = setup().await;
    s.fake.inject(Fault::new("POST", &s.route("/check-runs"), 502, 1).after_applying());
    let id = s.github.start_check_run(TEST_REPO, HEAD).await.unwrap();
    assert_eq!(s.fake.world().check_runs.len(), 1, "the run the failed attempt made is reused");
    assert_eq!(s.fake.world().check_runs[0].id, id);

    s.fake.inject(Fault::new("PATCH", &s.route("/check-runs/"), 502, 2).after_applying());
    s.github.complete_check_run(TEST_REPO, id, &Conclusion::Failure, "t", "s", None, &annotations(60)).await.unwrap();
    let world = s.fake.world();
    assert_eq!(world.check_runs[0].annotations.len(), 60);
    assert_eq!(world.check_runs[0].status, "completed");
    drop(world);
    assert_eq!(s.fake.requests_to("PATCH", &s.route("/check-runs/")).len(), 2, "both batches landed at once");
    assert_eq!(s.waits(), [Duration::from_secs(1); 3], "one retry for the creation and each batch");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn sticky_summary_is_created_once_then_edited_in_place() {
    let s = setup().await;
    // Someone quoting the marker does not make their comment ours.
    s.fake.add_issue_comment(TEST_REPO, PR, User::human("alice"), &format!("{SUMMARY_MARKER}\nquoted"));
    s.github.upsert_summary(TEST_REPO, PR, "### ❌ kpath: 1 new error").await.unwrap();
    s.github.upsert_summary(TEST_REPO, PR, "### ✅ kpath: no new findings").await.unwrap();
    s.github.upsert_summary(TEST_REPO, PR, "### ✅ kpath: no new findings").await.unwrap();
    let world = s.fake.world();
    let ours: Vec<_> = world.issue_comments.iter().filter(|c| c.user == User::bot()).collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].body, format!("{SUMMARY_MARKER}\n### ✅ kpath: no new findings"));
    assert_eq!(
        world.issue_comments.iter().find(|c| c.user.login == "alice").unwrap().body,
        format!("{SUMMARY_MARKER}\nquoted")
    );
    drop(world);
    let comments = s.route(&format!("/issues/{PR}/comments"));
    assert_eq!(s.fake.requests_to("POST", &comments).len(), 1);
    assert_eq!(s.fake.requests_to("PATCH", &s.route("/issues/comments/")).len(), 1, "unchanged: not edited again");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn review_is_posted_with_line_and_side_and_its_fingerprints_read_back() {
    let s = setup().await;
    // A human comment carrying a marker is not one of ours.
    s.fake.add_review_comment(
        TEST_REPO,
        PR,
        User::human("bob"),
        "a.yaml",
        1,
        "<!-- kpath:fingerprint=feedfeedfeedfeed -->",
    );
    let comments =
        [inline("apps/a/deployment.yaml", 9, "0123456789abcdef"), inline("apps/b/values.yaml", 3, "fedcba9876543210")];
    s.github.post_review(TEST_REPO, PR, HEAD, &comments).await.unwrap();

    let ids: Vec<u64> = {
        let world = s.fake.world();
        assert_eq!(world.reviews.len(), 1);
        let review = &world.reviews[0];
        assert_eq!((review.repo.as_str(), review.pull), (TEST_REPO, PR));
        assert_eq!((review.event.as_str(), review.commit_id.as_deref()), ("COMMENT", Some(HEAD)));
        assert!(review.body.len() < 200, "the review's own body is short: {}", review.body);
        let posted: Vec<(&str, Option<u64>, &str)> = world
            .review_comments
            .iter()
            .filter(|c| c.review_id == Some(review.id))
            .map(|c| (c.path.as_str(), c.line, c.side.as_str()))
            .collect();
        assert_eq!(posted, [("apps/a/deployment.yaml", Some(9), "RIGHT"), ("apps/b/values.yaml", Some(3), "RIGHT")]);
        world.review_comments.iter().filter(|c| c.review_id.is_some()).map(|c| c.id).collect()
    };

    let fingerprints: Vec<(u64, Vec<String>)> =
        s.github.kpath_comments(TEST_REPO, PR).await.unwrap().into_iter().map(|c| (c.id, c.fingerprints)).collect();
    assert_eq!(
        fingerprints,
        [(ids[0], vec!["0123456789abcdef".to_string()]), (ids[1], vec!["fedcba9876543210".to_string()])]
    );
    // Posting the same findings again (the next push) adds nothing; a new one is posted alone.
    s.github.post_review(TEST_REPO, PR, HEAD, &comments).await.unwrap();
    assert_eq!(s.fake.world().reviews.len(), 1);
    let more = [comments[0].clone(), inline("apps/c/hpa.yaml", 5, "aaaaaaaaaaaaaaaa")];
    s.github.post_review(TEST_REPO, PR, HEAD, &more).await.unwrap();
    let world = s.fake.world();
    assert_eq!(world.reviews.len(), 2);
    assert_eq!(world.review_comments.iter().filter(|c| c.review_id == Some(world.reviews[1].id)).count(), 1);
    drop(world);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn review_answered_502_after_it_was_stored_is_not_duplicated() {
    let s = setup().await;
    s.fake.inject(Fault::new("POST", &s.route(&format!("/pulls/{PR}/reviews")), 502, 1).after_applying());
    let comments = [inline("a.yaml", 1, "0123456789abcdef"), inline("b.yaml", 2, "1123456789abcdef")];
    s.github.post_review(TEST_REPO, PR, HEAD, &comments).await.unwrap();
    let world = s.fake.world();
    assert_eq!((world.reviews.len(), world.review_comments.len()), (1, 2));
    drop(world);
    assert_eq!(s.fake.requests_to("POST", &s.route("/pulls/")).len(), 1, "the retry found the comments posted");
    assert_eq!(s.waits(), [Duration::from_secs(1)]);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn review_refused_with_422_is_unprocessable_and_not_retried() {
    let s = setup().await;
    s.fake.fail_next("POST", &s.route(&format!("/pulls/{PR}/reviews")), 422, 1);
    let error =
        s.github.post_review(TEST_REPO, PR, HEAD, &[inline("a.yaml", 1, "0123456789abcdef")]).await.unwrap_err();
    assert!(matches!(error, GitHubError::Unprocessable { .. }), "{error:?}");

    // GitHub's own reason: a line that is not part of the diff.
    let mut pull = Pull::new(8, HEAD, BASE);
    pull.commentable = Some(BTreeMap::from([("a.yaml".to_string(), BTreeSet::from([3]))]));
    s.fake.add_pull(TEST_REPO, pull);
    let error = s.github.post_review(TEST_REPO, 8, HEAD, &[inline("a.yaml", 9, "0123456789abcdef")]).await.unwrap_err();
    assert!(
        matches!(&error, GitHubError::Unprocessable { message, .. } if message.contains("part of the diff")),
        "{error}"
    );
    s.github.post_review(TEST_REPO, 8, HEAD, &[inline("a.yaml", 3, "0123456789abcdef")]).await.unwrap();
    assert!(s.waits().is_empty());
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn comment_after_a_502_is_posted_exactly_once() {
    let s = setup().await;
    let route = s.route(&format!("/issues/{PR}/comments"));
    s.fake.fail_next("POST", &route, 502, 1);
    s.github.comment(TEST_REPO, PR, "first").await.unwrap();
    // The answer lost after GitHub stored the comment.
    s.fake.inject(Fault::new("POST", &route, 502, 1).after_applying());
    s.github.comment(TEST_REPO, PR, "second").await.unwrap();
    let bodies: Vec<String> = s.fake.world().issue_comments.iter().map(|c| c.body.clone()).collect();
    assert_eq!(bodies, ["first", "second"]);
    assert_eq!(s.fake.requests_to("POST", &route).len(), 3);
    assert_eq!(s.waits(), [Duration::from_secs(1), Duration::from_secs(1)]);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn replies_and_reactions() {
    let s = setup().await;
    let thread = s.fake.add_review_comment(TEST_REPO, PR, User::human("carol"), "a.yaml", 4, "/kpath explain");
    s.fake.inject(Fault::new("POST", &s.route("/pulls/"), 502, 1).after_applying());
    s.github.reply_to_review_comment(TEST_REPO, PR, thread, "Here is why.").await.unwrap();
    {
        let world = s.fake.world();
        let replies: Vec<_> = world.review_comments.iter().filter(|c| c.in_reply_to_id == Some(thread)).collect();
        assert_eq!(replies.len(), 1, "retried once, posted once");
        assert_eq!((replies[0].body.as_str(), replies[0].user.clone()), ("Here is why.", User::bot()));
    }

    let comment = s.fake.add_issue_comment(TEST_REPO, PR, User::human("carol"), "/kpath recheck");
    s.github.react(TEST_REPO, comment, "eyes").await.unwrap();
    s.github.react(TEST_REPO, comment, "eyes").await.unwrap();
    let world = s.fake.world();
    assert_eq!(world.reactions.len(), 1);
    assert_eq!((world.reactions[0].comment_id, world.reactions[0].content.as_str()), (comment, "eyes"));
    drop(world);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn rate_limits_are_waited_out_as_github_asks() {
    let s = setup().await;
    let pull = s.route(&format!("/pulls/{PR}"));
    s.fake.inject(Fault::new("GET", &pull, 403, 1).header("retry-after", "7"));
    s.github.pull(TEST_REPO, PR).await.unwrap();
    s.fake.inject(Fault::new("GET", &pull, 429, 1));
    s.github.pull(TEST_REPO, PR).await.unwrap();
    let reset = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 30;
    s.fake.inject(
        Fault::new("GET", &pull, 403, 1)
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", &reset.to_string()),
    );
    s.github.pull(TEST_REPO, PR).await.unwrap();
    let waits = s.waits();
    assert_eq!(waits[..2], [Duration::from_secs(7), Duration::from_secs(60)]);
    assert!((Duration::from_secs(25)..=Duration::from_secs(30)).contains(&waits[2]), "{waits:?}");

    // Longer than kpath waits: given up at once, not retried early.
    s.fake.inject(Fault::new("GET", &pull, 429, 1).header("retry-after", "3600"));
    let error = s.github.pull(TEST_REPO, PR).await.unwrap_err();
    assert!(matches!(error, GitHubError::Unavailable { attempts: 1, .. }), "{error:?}");
    // A plain 403 is a permission problem, not a rate limit.
    s.fake.fail_next("GET", &pull, 403, 1);
    let error = s.github.pull(TEST_REPO, PR).await.unwrap_err();
    assert!(matches!(error, GitHubError::Other { status: Some(403), .. }), "{error:?}");
    assert_eq!(s.waits().len(), 3);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_unavailable() {
    let s = setup().await;
    let pull = s.route(&format!("/pulls/{PR}"));
    s.fake.fail_next("GET", &pull, 502, 10);
    let error = s.github.pull(TEST_REPO, PR).await.unwrap_err();
    assert!(matches!(error, GitHubError::Unavailable { attempts: 4, .. }), "{error:?}");
    assert_eq!(s.waits(), [1, 2, 4].map(Duration::from_secs));
    assert_eq!(s.fake.requests_to("GET", &pull).len(), 4);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn credentials_and_missing_things_are_told_apart() {
    let fake = FakeGitHub::start().await;
    let waits = Waits::default();
    let error = connect(fake.url(), TEST_APP_ID + 1, TEST_INSTALLATION, &waits).await.unwrap_err();
    assert!(matches!(error, GitHubError::Unauthorized { .. }), "wrong App id: {error:?}");
    let error = connect(fake.url(), TEST_APP_ID, 12345, &waits).await.unwrap_err();
    assert!(matches!(error, GitHubError::NotFound { .. }), "unknown installation: {error:?}");
    let not_a_key = SecretString::from("not a key".to_string());
    let error = GitHub::for_installation(fake.url(), TEST_APP_ID, &not_a_key, TEST_INSTALLATION).await.unwrap_err();
    assert!(matches!(error, GitHubError::Other { .. }), "{error:?}");
    assert!(!error.to_string().contains("not a key"), "the key is not repeated: {error}");

    let github = connect(fake.url(), TEST_APP_ID, TEST_INSTALLATION, &waits).await.unwrap();
    let error = github.pull(TEST_REPO, 404).await.unwrap_err();
    assert!(matches!(error, GitHubError::NotFound { .. }), "{error:?}");
    let error = github.pull("someone/else", 1).await.unwrap_err();
    assert!(matches!(error, GitHubError::NotFound { .. }), "not in the installation: {error:?}");
    assert!(waits.lock().unwrap().is_empty());
    fake.assert_no_violations();
}

#[tokio::test]
async fn enterprise_server_base_path_is_kept() {
    let fake = FakeGitHub::start().await;
    fake.add_pull(TEST_REPO, Pull::new(PR, HEAD, BASE));
    let waits = Waits::default();
    let github = connect(&format!("{}/api/v3/", fake.url()), TEST_APP_ID, TEST_INSTALLATION, &waits).await.unwrap();
    github.comment(TEST_REPO, PR, "hello").await.unwrap();
    let paths: Vec<String> = fake.requests().iter().map(|r| r.route().to_string()).collect();
    assert_eq!(
        paths,
        [
            format!("/api/v3/app/installations/{TEST_INSTALLATION}/access_tokens"),
            format!("/api/v3/repos/{TEST_REPO}/issues/{PR}/comments"),
        ]
    );
    fake.assert_no_violations();
}

#[tokio::test]
async fn bad_arguments_fail_before_any_request() {
    let s = setup().await;
    let before = s.fake.requests().len();
    for repo in ["noslash", "a/b/c", "../x", "o/", "o/r?x=1", "o/r#1"] {
        let error = s.github.pull(repo, 1).await.unwrap_err();
        assert!(matches!(error, GitHubError::Other { status: None, .. }), "{repo}: {error:?}");
    }
    assert_eq!(s.fake.requests().len(), before);
    let waits = Waits::default();
    for api in ["http://example.com", "ftp://127.0.0.1", "not a url", "https://", "https://u:secret@example.com"] {
        let error = connect(api, TEST_APP_ID, TEST_INSTALLATION, &waits).await.unwrap_err();
        assert!(matches!(error, GitHubError::Other { status: None, .. }), "{api}: {error:?}");
        assert!(!error.to_string().contains("secret"), "{error}");
    }
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn calls_can_run_on_spawned_tasks() {
    let s = setup().await;
    let github = Arc::new(s.github);
    let task = tokio::spawn({
        let github = github.clone();
        async move { github.upsert_summary(TEST_REPO, PR, "summary").await }
    });
    task.await.unwrap().unwrap();
    s.fake.assert_no_violations();
}

/// Every call's future is `Send`, so jobs can run them on the multi-threaded runtime.
#[allow(dead_code)]
fn futures_are_send(github: &GitHub, comments: &[InlineComment], annotations: &[Annotation]) {
    fn send<T: Send>(_: T) {}
    send(GitHub::for_installation("", 1, &key(), 1));
    send(github.installation_token());
    send(github.pull("", 1));
    send(github.pulls_for_commit("", ""));
    send(github.merge_base("", "", ""));
    send(github.start_check_run("", ""));
    send(github.complete_check_run("", 1, &Conclusion::Success, "", "", None, annotations));
    send(github.kpath_comments("", 1));
    send(github.commentable_lines("", 1));
    send(github.resolve_threads("", 1, &[]));
    send(github.post_review("", 1, "", comments));
    send(github.upsert_summary("", 1, ""));
    send(github.reply_to_review_comment("", 1, 1, ""));
    send(github.react("", 1, ""));
    send(github.comment("", 1, ""));
}

#[test]
fn fingerprints_are_read_from_the_marker_only() {
    assert_eq!(fingerprints_in("x\n<!-- kpath:fingerprint=0123456789abcdef -->"), ["0123456789abcdef"]);
    // Findings sharing a line share a comment: its marker lists them all.
    assert_eq!(fingerprints_in("x\n<!-- kpath:fingerprint=aaaa,bbbb -->"), ["aaaa", "bbbb"]);
    // The last marker counts (the plan puts it at the end).
    assert_eq!(fingerprints_in("<!-- kpath:fingerprint=aaaa --> y <!-- kpath:fingerprint=bbbb -->"), ["bbbb"]);
    // Escaped by the plan when it came from the repository: not a marker.
    let none: [&str; 0] = [];
    assert_eq!(fingerprints_in("&lt;!-- kpath:fingerprint=ffff --&gt;"), none);
    assert_eq!(fingerprints_in("<!-- kpath:fingerprint= -->"), none);
    assert_eq!(fingerprints_in("<!-- kpath:fingerprint=a b -->"), none);
    assert_eq!(fingerprints_in("<!-- kpath:fingerprint=a,,b -->"), none);
    assert_eq!(fingerprints_in("<!-- kpath:fingerprint=abc"), none);
}

/// Oversized findings and comments go through the client to the fake GitHub (which answers 422 above
/// any limit, as GitHub does) and what it stored is within every limit.
#[tokio::test]
async fn oversized_findings_and_comments_are_stored_within_githubs_limits() {
    let s = setup().await;
    let id = s.github.start_check_run(TEST_REPO, HEAD).await.unwrap();
    let mut huge = annotations(3);
    // The issue's example: an annotation message of 92,375 characters.
    huge[0].message = format!("{}\n", "value: é\n".repeat(10_000)).chars().take(92_375).collect();
    huge[1].title = "t".repeat(10_000);
    huge[2].message = "🦀".repeat(50_000);
    let summary = format!("```yaml\n{}", "key: value\n".repeat(20_000));
    let title = "a title from a hostile file name ".repeat(100);
    s.github.complete_check_run(TEST_REPO, id, &Conclusion::Failure, &title, &summary, None, &huge).await.unwrap();

    let mut comment = inline("apps/a/deployment.yaml", 9, "0123456789abcdef");
    comment.body = format!("{}\n\n<!-- kpath:fingerprint=0123456789abcdef -->", "**error** ".repeat(20_000));
    s.github.post_review(TEST_REPO, PR, HEAD, &[comment]).await.unwrap();
    s.github.upsert_summary(TEST_REPO, PR, &"| a | b |\n".repeat(20_000)).await.unwrap();
    s.github.comment(TEST_REPO, PR, &"é".repeat(70_000)).await.unwrap();
    let thread = s.fake.add_review_comment(TEST_REPO, PR, User::human("carol"), "a.yaml", 4, "/kpath explain");
    s.github.reply_to_review_comment(TEST_REPO, PR, thread, &"✓".repeat(70_000)).await.unwrap();

    let world = s.fake.world();
    let run = &world.check_runs[0];
    assert!(run.title.as_deref().is_some_and(|t| t.len() <= 255 && t.ends_with(TRUNCATED)));
    let stored_summary = run.summary.as_deref().unwrap();
    assert!(stored_summary.len() <= 65_535 && stored_summary.ends_with(&format!("\n```{TRUNCATED_NOTE}")));
    assert_eq!(run.annotations.len(), 3);
    for annotation in &run.annotations {
        let (message, title) = (annotation["message"].as_str().unwrap(), annotation["title"].as_str().unwrap());
        assert!(message.len() <= 64_000 && title.len() <= 255, "{} / {}", message.len(), title.len());
    }
    assert!(run.annotations[0]["message"].as_str().unwrap().ends_with(&format!("\n{TRUNCATED}")));
    let review_comment = world.review_comments.iter().find(|c| c.review_id.is_some()).unwrap();
    assert!(review_comment.body.len() <= MAX_COMMENT);
    assert_eq!(fingerprints_in(&review_comment.body), ["0123456789abcdef"]);
    for c in &world.issue_comments {
        assert!(c.body.len() <= MAX_COMMENT && c.body.ends_with(TRUNCATED_NOTE), "{}", c.body.len());
    }
    assert!(world.issue_comments[0].body.starts_with(SUMMARY_MARKER));
    let reply = world.review_comments.iter().find(|c| c.in_reply_to_id == Some(thread)).unwrap();
    assert!(reply.body.len() <= MAX_COMMENT && reply.body.ends_with(TRUNCATED_NOTE));
    drop(world);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn threads_are_found_by_ids_above_32_bits() {
    let s = setup().await;
    let first = s.fake.add_review_comment(TEST_REPO, PR, User::bot(), "a.yaml", 3, "first");
    let second = s.fake.add_review_comment(TEST_REPO, PR, User::bot(), "b.yaml", 4, "second");
    assert!(first > i32::MAX as u64 && second > i32::MAX as u64, "ids as large as github.com's: {first}");
    assert_eq!(s.github.resolve_threads(TEST_REPO, PR, &[second]).await.unwrap(), 1);
    let resolved: Vec<(u64, bool)> = s.fake.world().review_comments.iter().map(|c| (c.id, c.resolved)).collect();
    assert_eq!(resolved, [(first, false), (second, true)]);
    // The deprecated 32-bit field is answered as github.com answers it: null, with an error.
    let (owner, name) = TEST_REPO.split_once('/').unwrap();
    let old = json!({ "query": THREADS_QUERY.replace("fullDatabaseId", "databaseId"),
        "variables": { "owner": owner, "name": name, "number": PR, "cursor": null } });
    let error = s.github.graphql::<Value>(&old).await.unwrap_err();
    assert!(format!("{error:?}").contains("32-bit"), "{error:?}");
    s.fake.assert_no_violations();
}

#[test]
fn commentable_lines_are_read_from_patches() {
    let patch = "@@ -1,3 +1,4 @@\n a\n-b\n+c\n+d\n e\n@@ -20,2 +21,2 @@ spec:\n x\n\\ No newline at end of file\n+y";
    assert_eq!(right_side_lines(patch).into_iter().collect::<Vec<_>>(), [1, 2, 3, 4, 21, 22]);
    assert!(right_side_lines("Binary files differ").is_empty());
}

#[test]
fn refs_are_encoded_for_the_path() {
    assert_eq!(encode_ref("feature/x-1.2"), "feature/x-1.2");
    assert_eq!(encode_ref("a b#?%"), "a%20b%23%3F%25");
}
