//! Test-only: every Markdown body kpath posts to GitHub, rendered as GitHub renders it, and checked for
//! structure — for the bundled demo review and for a generated pull request of 5,000 findings with hostile
//! texts.
//!
//! GitHub renders comments and check-run output as GitHub Flavored Markdown (tables, strikethrough, autolinks,
//! task lists; <https://github.github.com/gfm/>) and lets a sanitised subset of raw HTML through (`<details>`,
//! `<summary>`, `<sub>`, `<br>`, comments). `comrak` implements the same specification, so its syntax tree is
//! what a reader sees. On that tree (and on its HTML) every body must:
//!
//! - hold no raw HTML but the tags kpath writes itself and its own `<!-- kpath:… -->` markers: text from the
//!   repository (`<img src=x onerror=…>`, `</details>`, `<!--`) is always escaped;
//! - open and close `<details>` in pairs, never closing one it did not open;
//! - close every fenced code block, so nothing after it (a heading, a section) is swallowed into code;
//! - keep its headings headings (the verdict, each section), and its markers HTML comments;
//! - fit GitHub's limits: a check run's summary and text 65,535 bytes, a comment 65,536.

use std::collections::BTreeSet;
use std::path::Path;

use comrak::nodes::{AstNode, NodeValue};
use comrak::{Arena, Options, format_html, parse_document};

use super::model::{ChangeKind, DiffLines, ObjectChange, ReviewFinding, Status};
use super::plan::{self, Links, PlanInput, ReviewPlan};
use crate::app::commands::{self, CommandError};
use crate::app::github::{Field, SUMMARY_MARKER};
use crate::app::worker;
use crate::finding::{Finding, Location, ObjectId, Suppression};
use crate::rules;

/// GitHub's flavour: GFM's extensions, raw HTML passed through (GitHub then sanitises it; kpath must not rely
/// on that, which is what the checks below make sure of).
fn gfm() -> Options<'static> {
    let mut options = Options::default();
    options.extension.table = true;
    options.extension.strikethrough = true;
    options.extension.autolink = true;
    options.extension.tasklist = true;
    options.render.r#unsafe = true;
    options
}

/// Raw HTML kpath writes on purpose; anything else in an HTML node came from somewhere else.
const ALLOWED_TAGS: &[&str] = &["<details>", "</details>", "<summary>", "</summary>", "<sub>", "</sub>", "<br>"];

/// Elements the rendered HTML may contain: what GFM itself produces, and [`ALLOWED_TAGS`].
const ALLOWED_ELEMENTS: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "code",
    "pre",
    "strong",
    "em",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "details",
    "summary",
    "br",
    "hr",
    "blockquote",
    "del",
    "input",
    "sub",
];

/// A kpath marker: `<!-- kpath:NAME… -->` with only the characters kpath writes in it.
fn is_marker(comment: &str) -> bool {
    comment.strip_prefix("<!-- kpath:").and_then(|rest| rest.strip_suffix(" -->")).is_some_and(|inner| {
        !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_alphanumeric() || b"=:,-_".contains(&b))
    })
}

/// What is left of raw HTML once kpath's own tags and markers are taken out.
fn foreign_html(literal: &str) -> String {
    let mut rest = literal.to_string();
    while let Some(start) = rest.find("<!--") {
        let end = rest[start..].find("-->").map_or(rest.len(), |e| start + e + 3);
        if !is_marker(&rest[start..end]) {
            break;
        }
        rest.replace_range(start..end, "");
    }
    for tag in ALLOWED_TAGS {
        rest = rest.replace(tag, "");
    }
    rest
}

/// The visible text of a node (its text and code descendants).
fn text_of<'a>(node: &'a AstNode<'a>) -> String {
    let mut out = String::new();
    for n in node.descendants() {
        match &n.data.borrow().value {
            NodeValue::Text(t) => out.push_str(t),
            NodeValue::Code(c) => out.push_str(&c.literal),
            _ => {}
        }
    }
    out
}

/// One body as GitHub would show it.
struct Body {
    what: String,
    text: String,
    limit: usize,
    /// Headings the body must show as headings (their text starts with these), in order.
    headings: Vec<String>,
    /// A marker that must stay an HTML comment.
    marker: Option<String>,
}

impl Body {
    fn new(what: impl Into<String>, text: impl Into<String>, limit: usize) -> Body {
        Body { what: what.into(), text: text.into(), limit, headings: Vec::new(), marker: None }
    }

    fn headings(mut self, headings: &[&str]) -> Body {
        self.headings.extend(headings.iter().map(|h| h.to_string()));
        self
    }

    fn marker(mut self, marker: &str) -> Body {
        self.marker = Some(marker.to_string());
        self
    }
}

/// Checks one body; the structure it found (headings) is returned for further assertions.
fn check(body: &Body) -> Vec<String> {
    let what = &body.what;
    let text = &body.text;
    assert!(text.len() <= body.limit, "{what}: {} bytes, over GitHub's {}", text.len(), body.limit);
    let options = gfm();
    let arena = Arena::new();
    let root = parse_document(&arena, text, &options);
    let mut headings = Vec::new();
    let mut depth: i64 = 0;
    let mut markers = Vec::new();
    for node in root.descendants() {
        let value = node.data.borrow().value.clone();
        match value {
            NodeValue::HtmlBlock(ref block) => html_node(what, &block.literal, &mut depth, &mut markers),
            NodeValue::HtmlInline(ref literal) => html_node(what, literal, &mut depth, &mut markers),
            NodeValue::CodeBlock(ref code) => {
                assert!(
                    !code.fenced || code.closed,
                    "{what}: a code fence is never closed: {}",
                    excerpt(&code.literal)
                );
            }
            NodeValue::Heading(_) => headings.push(text_of(node)),
            _ => {}
        }
    }
    assert_eq!(depth, 0, "{what}: <details> opened and never closed");
    let mut from = 0;
    for expected in &body.headings {
        // A heading's text, its leading mark (❌, ✅, ⚠️) aside.
        let starts = |h: &String| h.trim_start_matches(|c: char| !c.is_alphanumeric()).starts_with(expected.as_str());
        match headings[from..].iter().position(starts) {
            Some(at) => from += at + 1,
            None => panic!("{what}: no heading {expected:?} (in order) among {headings:?}"),
        }
    }
    if let Some(marker) = &body.marker {
        assert!(
            markers.iter().any(|m: &String| m.starts_with(marker.as_str())),
            "{what}: {marker} is not an HTML comment"
        );
        assert_eq!(text.matches(marker.as_str()).count(), 1, "{what}: {marker} more than once (forged?)");
    }

    let mut html = String::new();
    if let Err(error) = format_html(root, &options, &mut html) {
        panic!("{what}: cannot render: {error}");
    }
    for element in elements(&html) {
        assert!(ALLOWED_ELEMENTS.contains(&element.as_str()), "{what}: renders a <{element}> element");
    }
    if let Some(marker) = &body.marker {
        assert!(html.contains(marker.as_str()), "{what}: {marker} is not in the HTML as a comment");
    }
    headings
}

fn html_node(what: &str, literal: &str, depth: &mut i64, markers: &mut Vec<String>) {
    let foreign = foreign_html(literal);
    assert!(!foreign.contains('<'), "{what}: raw HTML that kpath did not write: {}", excerpt(literal));
    for (at, _) in literal.match_indices("<!-- kpath:") {
        markers.push(literal[at..].to_string());
    }
    // In document order: a close before its open would end a block kpath did not start.
    let mut rest = literal;
    while let Some(at) = rest.find("details>") {
        let closing = rest[..at].ends_with("</");
        *depth += if closing { -1 } else { 1 };
        assert!(*depth >= 0, "{what}: </details> without its <details>: {}", excerpt(literal));
        rest = &rest[at + "details>".len()..];
    }
}

/// The names of the elements an HTML text opens or closes (comments skipped).
fn elements(html: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let name: String =
            rest.trim_start_matches('/').chars().take_while(char::is_ascii_alphanumeric).collect::<String>();
        out.insert(name.to_ascii_lowercase());
    }
    out
}

fn excerpt(text: &str) -> String {
    crate::logtext::bounded(text).to_string()
}

/// Every body the App posts for `plan` on a first review, and the texts of its check run; `headings` are those
/// the summary must show.
fn posted_bodies(plan: &ReviewPlan) -> Vec<Body> {
    let posted = worker::posted(plan);
    let mut summary_headings = vec!["kpath: ".to_string()];
    for section in [
        "Configuration",
        "New findings not on a changed line",
        "New findings commented inline",
        "New findings suppressed in this change",
        "Fixed",
        "Rendered changes",
        "Findings not commented inline",
    ] {
        if posted.summary.contains(&format!("\n#### {section}\n")) {
            summary_headings.push(section.to_string());
        }
    }
    let summary_headings: Vec<&str> = summary_headings.iter().map(String::as_str).collect();
    let mut bodies = vec![
        Body::new("the check run's summary", posted.summary.clone(), Field::CheckRunSummary.limit())
            .headings(&summary_headings),
        Body::new("the summary comment", format!("{SUMMARY_MARKER}\n{}", posted.comment), Field::CommentBody.limit())
            .headings(&summary_headings)
            .marker(SUMMARY_MARKER),
    ];
    if let Some(text) = &posted.text {
        bodies.push(
            Body::new("the check run's text", text.clone(), Field::CheckRunText.limit())
                .headings(&["Rendered changes"]),
        );
    }
    // Every comment the plan holds: later reviews post those the cap held back.
    for comment in &plan.comments {
        bodies.push(
            Body::new(format!("the comment on {}:{}", comment.path, comment.line), comment.body.clone(), {
                Field::ReviewCommentBody.limit()
            })
            .marker(&crate::review::plan::fingerprint_marker(&comment.fingerprints)),
        );
    }
    bodies
}

/// Hostile texts a repository can put into a message, a name, a path or a reason.
const HOSTILE: &[&str] = &[
    "<img src=x onerror=alert(1)>",
    "</details><img src=x onerror=alert(1)>",
    "<details><summary>open",
    "<!-- kpath:fingerprint=0000000000000000 -->",
    "<!-- hidden",
    "-->",
    "```\n#### injected heading\n```",
    "````",
    "~~~",
    "`unclosed code",
    "``<script>alert(1)</script>``",
    "<script>alert(1)</script>",
    "| a | b |\n|---|---|",
    "*unclosed _emphasis",
    "[a link](javascript:alert(1))",
    "<sub>",
    "&lt;already escaped&gt; &amp;",
    "\u{202e}reversed\u{200b}",
    "line one\r\nline two\n\n#### heading",
    "<a href=\"https://evil.example\">click</a>",
    "<style>body{display:none}</style>",
];

fn hostile(i: usize) -> &'static str {
    HOSTILE[i % HOSTILE.len()]
}

/// A finding of the `i`th rule with hostile texts everywhere the repository writes.
fn generated_finding(i: usize) -> Finding {
    let rule = &rules::RULES[i % rules::RULES.len()];
    let file = match i % 4 {
        0 => format!("apps/app-{}/deployment.yaml", i % 40),
        1 => format!("apps/{}/x.yaml", hostile(i).replace(['\n', '\r'], " ")),
        2 => format!("charts/c-{}/values.yaml", i % 7),
        _ => format!("a](javascript:alert(1))/`{}`.yaml", i % 3),
    };
    let line = 1 + (i / 10) as u32 % 5_000;
    let mut message = format!("{} {} {}", rule.summary, hostile(i), hostile(i + 7));
    if i.is_multiple_of(97) {
        // An absurdly long message: cut to length, never across a construct.
        message.push_str(&format!("{}`{}", "<details>`x`".repeat(800), "y".repeat(5_000)));
    }
    Finding {
        rule: rule.id,
        severity: rule.severity,
        message,
        file: file.clone(),
        line,
        column: 1,
        route: None,
        object: (!i.is_multiple_of(5)).then(|| {
            std::sync::Arc::new(ObjectId {
                api_version: "apps/v1".to_string(),
                kind: if i.is_multiple_of(11) { hostile(i).to_string() } else { "Deployment".to_string() },
                namespace: Some(hostile(i + 3).to_string()),
                name: format!("web-{i}-{}", hostile(i + 5)),
            })
        }),
        help: format!("{} {}", rule.help(), hostile(i + 11)).into(),
        suppressed: (i % 50 == 3)
            .then(|| Suppression { kind: "comment", reason: format!("because {}", hostile(i + 13)) }),
        locations: vec![Location { file, line, column: 1, kind: "manifest" }],
        part: None,
        environments: if i.is_multiple_of(3) {
            vec![hostile(i + 2).to_string(), "prod".to_string()]
        } else {
            Vec::new()
        },
        document: Some(0),
        origin: None,
    }
}

/// A unified diff whose lines hold fences, `</details>` and HTML, as an object's YAML may.
fn generated_diff(i: usize) -> String {
    let mut diff = String::from("@@ -1,3 +1,3 @@\n metadata:\n");
    for n in 0..(1 + i % 60) {
        diff.push_str(&format!("-  note: \"{}\"\n", hostile(i + n).replace(['\n', '\r'], " ")));
        diff.push_str(&format!("+  note: \"{} {n}\"\n", hostile(i + n + 1).replace(['\n', '\r'], " ")));
        diff.push_str("+  fence: |\n+    ```\n+    ````\n+    </details>\n");
    }
    diff
}

/// A pull request of 5,000 new, existing and fixed findings (most on changed lines), 400 changed objects and 30
/// environments whose cost moves, all named with hostile texts.
fn generated_plan() -> ReviewPlan {
    let mut diff = DiffLines::default();
    let findings: Vec<ReviewFinding> = (0..5_000)
        .map(|i| {
            let finding = generated_finding(i);
            if i % 4 != 2 {
                diff.added.entry(finding.file.clone()).or_default().insert(finding.line);
            }
            let status = match i % 10 {
                8 => Status::Existing,
                9 => Status::Fixed,
                _ => Status::New,
            };
            ReviewFinding { finding, status, fingerprint: format!("{i:016x}") }
        })
        .collect();
    let changes: Vec<ObjectChange> = (0..400)
        .map(|i| ObjectChange {
            object: ObjectId {
                api_version: "v1".to_string(),
                kind: "ConfigMap".to_string(),
                namespace: Some(hostile(i + 1).to_string()),
                name: format!("cm-{i}-{}", hostile(i)),
            },
            unit: format!("charts/{}", hostile(i / 10).replace(['\n', '\r'], " ")),
            environment: (i % 2 == 0).then(|| hostile(i + 4).to_string()),
            kind: [ChangeKind::Added, ChangeKind::Removed, ChangeKind::Changed][i % 3],
            diff: generated_diff(i),
        })
        .collect();
    let costs = (0..30)
        .map(|i| super::cost::EnvironmentCost {
            unit: format!("apps/{}", hostile(i)),
            environment: Some(hostile(i + 1).to_string()),
            base: super::cost::Requests { cpu: (100, 200), memory: (1 << 30, 1 << 31) },
            head: super::cost::Requests { cpu: (300, 300), memory: (1 << 29, 1 << 32) },
        })
        .collect();
    // Suggestions quote the head's lines: give them hostile ones too.
    let head_line = |_: &str, line: u32| Some(format!("  image: {}", hostile(line as usize).replace('\n', " ")));
    plan::build(PlanInput {
        findings,
        changes,
        diff: &diff,
        fail_on: crate::finding::Severity::Error,
        head_line: &head_line,
        nothing_relevant: false,
        config_notes: (0..5).map(|i| format!("`.kpath.yml` {}", hostile(i))).collect(),
        secrets: Default::default(),
        costs,
        links: Links {
            head: Some("0123456789abcdef0123456789abcdef01234567".to_string()),
            web: Some("https://github.com/owner/repo".to_string()),
        },
    })
}

#[test]
fn a_generated_pull_request_of_5000_hostile_findings_renders_whole() {
    let plan = generated_plan();
    assert!(plan.comments.len() > 1_000, "most findings are on changed lines: {}", plan.comments.len());
    let posted = worker::posted(&plan);
    assert_eq!(posted.inline.len(), worker::MAX_INLINE_COMMENTS);
    let bodies = posted_bodies(&plan);
    for body in &bodies {
        check(body);
    }
    // The findings past the cap are in the summary, as many as fit, the rest counted; the plan's own summary gave
    // way for them (it filled GitHub's limit on its own).
    let summary = check(&bodies[0]);
    assert!(summary.iter().any(|h| h == "Findings not commented inline"), "{summary:?}");
    assert!(posted.summary.contains("more, not shown here"), "the rest is counted");
    assert!(posted.text.is_some_and(|t| t.contains("more diffs, left out")), "the text counts what it left out");
}

/// A summary the object diffs fill to GitHub's limit, with findings past the inline cap: whole diffs give way for
/// them, the cut between two `<details>`, and nothing is left open.
#[test]
fn a_summary_full_of_diffs_gives_way_between_whole_diffs() {
    let mut diff = DiffLines::default();
    let findings: Vec<ReviewFinding> = (0..40)
        .map(|i| {
            let mut finding = generated_finding(i * 4);
            finding.file = format!("apps/a{i}.yaml");
            finding.locations[0].file = finding.file.clone();
            diff.added.entry(finding.file.clone()).or_default().insert(finding.line);
            ReviewFinding { finding, status: Status::New, fingerprint: format!("{i:016x}") }
        })
        .collect();
    let changes: Vec<ObjectChange> = (0..120)
        .map(|i| ObjectChange {
            object: ObjectId {
                api_version: "v1".to_string(),
                kind: "ConfigMap".to_string(),
                namespace: None,
                name: format!("cm-{i}"),
            },
            unit: format!("charts/c{}", i / 20),
            environment: None,
            kind: ChangeKind::Changed,
            diff: generated_diff(10 + i % 7),
        })
        .collect();
    let plan = plan::build(PlanInput {
        findings,
        changes,
        diff: &diff,
        fail_on: crate::finding::Severity::Error,
        head_line: &|_: &str, _: u32| None,
        nothing_relevant: false,
        config_notes: Vec::new(),
        secrets: Default::default(),
        costs: Vec::new(),
        links: Links::default(),
    });
    assert!(plan.summary.len() > 60_000, "the diffs fill the plan's summary: {}", plan.summary.len());
    let posted = worker::posted(&plan);
    for body in posted_bodies(&plan) {
        check(&body);
    }
    let summary = check(&posted_bodies(&plan)[0]);
    for section in ["Rendered changes", "Findings not commented inline"] {
        assert!(summary.iter().any(|h| h == section), "{section} in {summary:?}");
    }
    let rendered = posted.summary.split("#### Rendered changes").nth(1).unwrap_or("");
    let kept = rendered.split("#### Findings not commented inline").next().unwrap_or("");
    assert!(kept.contains("</details>") && kept.contains("Shortened to stay within GitHub's size limit"), "{kept}");
}

#[test]
fn check_run_failures_and_replies_render_whole() {
    let head = "0123456789abcdef0123456789abcdef01234567";
    let mut bodies = vec![
        Body::new("gave up", worker::gave_up_summary(head, 3), Field::CheckRunSummary.limit()),
        Body::new("superseded", worker::superseded_summary(head, "fedcba9876543210"), Field::CheckRunSummary.limit()),
        Body::new("interrupted", worker::INTERRUPTED_SUMMARY, Field::CheckRunSummary.limit()),
        Body::new("fixed reply", worker::fixed_reply(head), Field::ReviewCommentBody.limit())
            .marker(crate::app::github::FIXED_MARKER),
        Body::new("help", commands::help_text(), Field::CommentBody.limit()),
        Body::new("explain without findings", worker::rules_reply(&[]), Field::CommentBody.limit()),
    ];
    let all: Vec<(&'static rules::Rule, usize)> = rules::RULES.iter().enumerate().map(|(i, r)| (*r, i + 1)).collect();
    bodies.push(Body::new("explain without a rule id", worker::rules_reply(&all), Field::CommentBody.limit()));
    for rule in rules::RULES {
        // "Bad" is the bad example, or "Bad → good" when the good one is shown as its change.
        let mut headings = vec![rule.id, "Why this matters", "How to fix it", "Bad"];
        if !rule.options.is_empty() {
            headings.push("Options");
        }
        bodies.push(
            Body::new(format!("/kpath explain {}", rule.id), rule.explanation_markdown(), Field::CommentBody.limit())
                .headings(&headings),
        );
    }
    for (i, text) in HOSTILE.iter().enumerate() {
        // A repository's error (a broken `.kpath.yml` quoting its keys) shown on a failed check run.
        let public = format!("invalid configuration: .kpath.yml:{i}:1: unknown key {text}");
        bodies.push(
            Body::new(format!("failed {i}"), worker::failed_summary(&public, "c0ffee"), Field::CheckRunSummary.limit())
                .headings(&["kpath could not review this commit"]),
        );
        bodies.push(Body::new(format!("unreadable {i}"), worker::summary_unreadable(text), Field::CommentBody.limit()));
        // Replies to what people type: the unknown word and the did-you-mean come from the comment.
        for typed in [
            format!("/kpath explian {text}"),
            format!("/kpath {text}"),
            format!("/kpath explain image-lates{text}"),
            format!("/kpath recheck {text}"),
            format!("/kpath explain {text}"),
        ] {
            for parsed in commands::parse(&typed) {
                if let Err(error) = parsed {
                    bodies.push(Body::new(
                        format!("reply to {typed:?}"),
                        commands::error_reply(&error),
                        Field::CommentBody.limit(),
                    ));
                }
            }
        }
        for error in [
            CommandError::UnknownCommand { given: text.to_string(), suggestion: Some("explain") },
            CommandError::UnknownRule { given: text.to_string(), suggestion: Some("image-latest") },
            CommandError::UnexpectedArguments { command: "recheck", extra: text.to_string() },
        ] {
            bodies.push(Body::new(format!("{error:?}"), commands::error_reply(&error), Field::CommentBody.limit()));
        }
    }
    bodies.push(Body::new(
        "a command with nothing after it",
        commands::error_reply(&CommandError::UnknownCommand { given: String::new(), suggestion: None }),
        Field::CommentBody.limit(),
    ));
    assert!(bodies.len() > 100);
    for body in &bodies {
        check(body);
    }
}

/// The bundled demo pull request (`scripts/demo`), reviewed with the real Helm and kubectl
/// (`KPATH_HELM`, `KPATH_KUBECTL`).
#[test]
fn the_demo_review_renders_whole() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let source = super::run::Source::Dirs { base: demo.join("base"), head: demo.join("head") };
    let options = super::run::Options { no_cache: true, ..Default::default() };
    let plan = match super::run::review(&source, &options) {
        Ok(plan) => plan,
        Err(error) => panic!("the demo review: {error}"),
    };
    assert!(plan.comments.len() >= 5, "{:?}", plan.comments);
    let bodies = posted_bodies(&plan);
    for body in &bodies {
        check(body);
    }
    let summary = check(&bodies[0]);
    assert!(summary.first().is_some_and(|h| h.starts_with("❌ kpath:")), "{summary:?}");
    for section in ["Units and environments", "New findings commented inline", "Rendered changes"] {
        assert!(summary.iter().any(|h| h == section), "{section} in {summary:?}");
    }
}

/// The checks themselves: they catch what they are meant to.
#[test]
fn the_checks_catch_broken_bodies() {
    let broken = [
        "a <img src=x onerror=alert(1)> b",
        "<details><summary>x</summary>\n\ntext\n",
        "</details>\n\n<details>",
        "### heading\n\n````diff\n+x\n```\n\n#### Rendered changes\n",
        "text <!-- kpath:fingerprint=<b> -->",
        "<script>alert(1)</script>",
    ];
    for text in broken {
        let caught = std::panic::catch_unwind(|| check(&Body::new("broken", text, 1 << 16)));
        assert!(caught.is_err(), "not caught: {text:?}");
    }
    let too_long = Body::new("long", "x".repeat(70_000), Field::CommentBody.limit());
    assert!(std::panic::catch_unwind(|| check(&too_long)).is_err());
    let swallowed = Body::new("swallowed", "````\ncode\n```\n\n#### Fixed\n", 1 << 16).headings(&["Fixed"]);
    assert!(std::panic::catch_unwind(|| check(&swallowed)).is_err());
    let fine = Body::new(
        "fine",
        "### ✅ kpath: ok\n\n<details><summary>a &lt;b&gt;</summary>\n\n```diff\n+x\n```\n\n</details>\n\n\
         <!-- kpath:fingerprint=00ff -->",
        1 << 16,
    )
    .headings(&["kpath: ok"])
    .marker("<!-- kpath:fingerprint=00ff -->");
    check(&fine);
}
