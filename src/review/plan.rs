//! The review plan: findings classified by fingerprint (new, existing, fixed), and what a GitHub App
//! posts for them (inline comments on changed lines, check-run annotations, a summary with the
//! rendered object diffs), built as data with no I/O.
//!
//! Choices the App relies on:
//!
//! - A fingerprint never contains a line number or a message, so moving lines or rewording a rule
//!   keeps a finding "existing". Several findings with the same fingerprint are matched as a
//!   multiset, in report order: with one at base and two at head, the second head one is new.
//! - A comment is only ever placed on one of the finding's own locations inside the pull request's diff:
//!   a line it added or changed, else an unchanged line its hunks show (GitHub accepts comments there); a new
//!   finding with no such location goes to the summary instead, never to a nearby line. Findings placed on
//!   one line share one comment, most severe first.
//! - The summary stays within GitHub's 65,536-character limit ([`MAX_SUMMARY`], measured in bytes,
//!   which is never less than characters). The verdict and the findings sections are kept; object
//!   diffs are dropped whole, the largest first, so that as many changed objects as possible stay
//!   visible, and a line says how many were left out.
//! - Text from the repository (object names inside messages, suppression reasons) is escaped so it
//!   cannot open HTML, hide text or forge the fingerprint marker. Source lines of secret rules are
//!   never quoted, and only their masked form enters a fingerprint.
//! - Every secret value of the review (`SecretSet`) is redacted from the findings' texts before anything
//!   is built from them (so cutting an item to length never leaves half a secret), and every renderer's
//!   output passes [`ReviewPlan::redact`] on its way out.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::model::{ChangeKind, DiffLines, ObjectChange, ReviewFinding, Status};
use crate::finding::{Finding, Severity};
use crate::redact::SecretSet;
use crate::report::text::mask_line;
use crate::rules;

/// GitHub's limit on a check run's summary (and on a comment body).
pub const MAX_SUMMARY: usize = 65_536;

/// Which side of the pull request a source line is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Base,
    Head,
}

/// Starts the hidden marker that ends each inline comment: `<!-- kpath:fingerprint=… -->`.
pub const FINGERPRINT_MARKER: &str = "<!-- kpath:fingerprint=";

/// A review comment on one line of the pull request's diff: every new finding placed on that line, most
/// severe first, so a reader is told once per line.
#[derive(Debug, Clone, Serialize)]
pub struct InlineComment {
    pub path: String,
    /// The line it is on: the last of its lines when it spans several.
    pub line: u32,
    /// The first of its lines when it spans several (a multi-line suggestion), as GitHub's `start_line`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u32>,
    /// Always `RIGHT`: comments go on the head side of the diff.
    pub side: &'static str,
    pub body: String,
    /// The rules of its findings, in the order the body shows them.
    pub rules: Vec<&'static str>,
    /// Its findings' fingerprints, in the same order; the body's marker lists them.
    pub fingerprints: Vec<String>,
}

/// The fingerprint marker that ends a comment about these findings.
pub fn fingerprint_marker(fingerprints: &[String]) -> String {
    format!("{FINGERPRINT_MARKER}{} -->", fingerprints.join(","))
}

/// The fingerprints of the last fingerprint marker in a comment body (several, comma-separated, when
/// findings share a line); none when the marker is missing or malformed (a fingerprint is 1–64 ASCII
/// letters or digits).
pub fn fingerprints_in(body: &str) -> Vec<String> {
    let Some(start) = body.rfind(FINGERPRINT_MARKER) else { return Vec::new() };
    let rest = &body[start + FINGERPRINT_MARKER.len()..];
    let Some(end) = rest.find(" -->") else { return Vec::new() };
    let list: Vec<&str> = rest[..end].split(',').collect();
    let valid = |f: &&str| !f.is_empty() && f.len() <= 64 && f.bytes().all(|b| b.is_ascii_alphanumeric());
    if list.len() > MAX_PER_LINE * 4 || !list.iter().all(valid) {
        return Vec::new();
    }
    list.into_iter().map(str::to_string).collect()
}

/// Most lines a suggestion replaces.
const MAX_SUGGESTION_LINES: u32 = 20;

/// Most findings one inline comment holds; the rest of a crowded line's findings go to the summary.
pub const MAX_PER_LINE: usize = 8;

impl InlineComment {
    /// The comment as a reader sees it: without the fingerprint marker.
    pub fn visible_body(&self) -> &str {
        self.body.rsplit_once(FINGERPRINT_MARKER).map_or(self.body.as_str(), |(text, _)| text).trim_end()
    }
}

/// A check-run annotation.
#[derive(Debug, Clone, Serialize)]
pub struct Annotation {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    /// `failure`, `warning` or `notice`.
    pub annotation_level: &'static str,
    pub title: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Conclusion {
    Success,
    Failure,
    Neutral,
}

/// Unsuppressed findings per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub new: usize,
    pub existing: usize,
    pub fixed: usize,
}

/// Everything the App posts for one pull request.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewPlan {
    pub conclusion: Conclusion,
    /// The check run's title (`2 new errors, 1 warning`).
    pub title: String,
    /// The check run's summary, Markdown, at most [`MAX_SUMMARY`] bytes.
    pub summary: String,
    pub comments: Vec<InlineComment>,
    pub annotations: Vec<Annotation>,
    pub findings: Vec<ReviewFinding>,
    pub changes: Vec<ObjectChange>,
    pub counts: Counts,
    /// Every secret value of both sides: never serialised, removed from every rendering.
    #[serde(skip)]
    pub secrets: Arc<SecretSet>,
    /// What [`ReviewPlan::summary`] was assembled from, to assemble it again (`None` for a plan made by hand).
    #[serde(skip)]
    pub(crate) parts: Option<Arc<SummaryParts>>,
}

/// The pieces of a summary, kept so the App can assemble it again once it knows which comments it posted.
#[derive(Debug, Clone)]
pub(crate) struct SummaryParts {
    top: String,
    sections: Vec<Section>,
    trim_order: [usize; 5],
    /// Where the inline section is in `sections`, and the fingerprint of each of its items.
    inline: (usize, Vec<String>),
    groups: Vec<Group>,
    nothing_relevant: bool,
}

impl ReviewPlan {
    /// The summary, its list of findings commented inline without those of `held_back` (comments the App did not
    /// post: past its cap, or on lines GitHub does not show).
    pub fn summary_without(&self, held_back: &[InlineComment]) -> String {
        let Some(parts) = &self.parts else { return self.summary.clone() };
        let gone: std::collections::HashSet<&str> =
            held_back.iter().flat_map(|c| c.fingerprints.iter().map(String::as_str)).collect();
        let mut sections = parts.sections.clone();
        let (at, fingerprints) = &parts.inline;
        if let Some(section) = sections.get_mut(*at) {
            let items = std::mem::take(&mut section.items);
            section.items = items
                .into_iter()
                .zip(fingerprints)
                .filter(|(_, f)| !gone.contains(f.as_str()))
                .map(|(i, _)| i)
                .collect();
        }
        assemble(&parts.top, &mut sections, &parts.trim_order, &parts.groups, parts.nothing_relevant)
    }

    /// A rendering of the plan without any secret value of the review: the last step of every output.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.secrets.redact(text)
    }
}

/// Environments listed in the summary's cost table; the rest are counted.
const MAX_COST_ROWS: usize = 20;

pub struct PlanInput<'a> {
    pub findings: Vec<ReviewFinding>,
    pub changes: Vec<ObjectChange>,
    /// Lines the pull request added or changed (head side).
    pub diff: &'a DiffLines,
    /// Lowest severity of a new finding that fails the check.
    pub fail_on: Severity,
    /// A head source line (`file`, 1-based `line`), for suggestions.
    pub head_line: &'a dyn Fn(&str, u32) -> Option<String>,
    /// No render unit was affected by the change.
    pub nothing_relevant: bool,
    /// What the summary says about the configuration: which one judged the change, what a changed
    /// `.kpath.yml` would do once merged, bounds lowered to the operator's ceilings. Plain sentences
    /// with code spans; the first is the lead.
    pub config_notes: Vec<String>,
    /// Every secret value of both sides.
    pub secrets: Arc<SecretSet>,
    /// Environments whose requested CPU and memory the change moves ([`super::cost`]).
    pub costs: Vec<super::cost::EnvironmentCost>,
    /// The head commit reviewed (the summary names it), and where its files are shown on GitHub
    /// (`https://github.com/OWNER/REPO`): every `file:line` of the summary then links to that line at that commit.
    pub links: Links,
}

/// Where the summary's places link to.
#[derive(Debug, Clone, Default)]
pub struct Links {
    pub head: Option<String>,
    /// The repository's web address (`https://github.com/OWNER/REPO`), when the review is for GitHub.
    pub web: Option<String>,
}

impl Links {
    /// `file:line` as a code span, linked to that line at the head commit when the repository's address is known.
    fn place(&self, file: &str, line: u32) -> String {
        let text = code_span(&format!("{file}:{line}"));
        match (&self.web, &self.head) {
            (Some(web), Some(head)) if !file.contains("://") => {
                let path: String = file.split('/').map(url_segment).collect::<Vec<_>>().join("/");
                format!("[{text}]({web}/blob/{head}/{path}#L{line})")
            }
            _ => text,
        }
    }

    /// A file or directory of the repository as a code span, linked to it at the head commit when known.
    fn place_file(&self, file: &str) -> String {
        let text = code_span(if file.is_empty() { "." } else { file });
        match (&self.web, &self.head) {
            (Some(web), Some(head)) if !file.contains("://") => {
                let path: String = file.split('/').map(url_segment).collect::<Vec<_>>().join("/");
                format!("[{text}]({web}/tree/{head}/{path})")
            }
            _ => text,
        }
    }

    /// The head commit as the summary names it.
    fn commit(&self) -> Option<String> {
        let head = self.head.as_deref()?;
        let short = code_span(&head[..head.len().min(12)]);
        Some(match &self.web {
            Some(web) => format!("[{short}]({web}/commit/{head})"),
            None => short,
        })
    }
}

/// A path segment for a URL: unreserved characters kept, everything else percent-encoded.
fn url_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Fingerprints and classification
// ---------------------------------------------------------------------------------------------

/// A short stable id: rule + object identity (group/kind/namespace/name, not the apiVersion's
/// version) + route + environments; for findings without an object, rule + file + the trimmed source
/// line (`line_text`, masked for secret rules). Never the line number or the message.
pub fn fingerprint(f: &Finding, line_text: Option<&str>) -> String {
    let mut canon = String::from("kpath-fingerprint-v1\n");
    let mut field = |name: &str, value: &str| {
        // Length-prefixed, so no value can imitate a field boundary.
        let _ = writeln!(canon, "{name}={}:{value}", value.len());
    };
    field("rule", f.rule);
    match &f.object {
        Some(o) => {
            field("group", o.group());
            field("kind", &o.kind);
            field("namespace", o.namespace.as_deref().unwrap_or(""));
            field("name", &o.name);
        }
        None => {
            field("file", &f.file);
            let text = line_text.map(str::trim).unwrap_or("");
            if is_secret(f.rule) {
                field("line", &mask_line(text));
            } else {
                field("line", text);
            }
        }
    }
    field("route", &f.route.as_ref().map(ToString::to_string).unwrap_or_default());
    let mut environments: Vec<&str> = f.environments.iter().map(String::as_str).collect();
    environments.sort_unstable();
    environments.dedup();
    for env in environments {
        field("environment", env);
    }
    let digest = Sha256::digest(canon.as_bytes());
    digest.iter().take(8).fold(String::with_capacity(16), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// Head findings become [`Status::New`] (fingerprint absent at base) or [`Status::Existing`]; base
/// findings absent at head become [`Status::Fixed`]. Equal fingerprints are matched as a multiset in
/// report order. Order of the result: head findings as given, then the fixed ones as given.
/// Suppressed findings keep their status; [`build`] never counts them as failures.
pub fn classify(
    base: Vec<Finding>,
    head: Vec<Finding>,
    line_text: &dyn Fn(Side, &str, u32) -> Option<String>,
) -> Vec<ReviewFinding> {
    let fp_of = |side: Side, f: &Finding| {
        let text = if f.object.is_none() { line_text(side, &f.file, f.line) } else { None };
        fingerprint(f, text.as_deref())
    };
    let base: Vec<(Finding, String)> = base
        .into_iter()
        .map(|f| {
            let fp = fp_of(Side::Base, &f);
            (f, fp)
        })
        .collect();
    let mut unmatched: HashMap<String, usize> = HashMap::new();
    for (_, fp) in &base {
        *unmatched.entry(fp.clone()).or_default() += 1;
    }
    let mut matched: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(head.len() + base.len());
    for f in head {
        let fp = fp_of(Side::Head, &f);
        let status = match unmatched.get_mut(&fp) {
            Some(n) if *n > 0 => {
                *n -= 1;
                *matched.entry(fp.clone()).or_default() += 1;
                Status::Existing
            }
            _ => Status::New,
        };
        out.push(ReviewFinding { finding: f, status, fingerprint: fp });
    }
    // The first `matched` base occurrences of a fingerprint were carried over; the rest are fixed.
    for (f, fp) in base {
        match matched.get_mut(&fp) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.push(ReviewFinding { finding: f, status: Status::Fixed, fingerprint: fp }),
        }
    }
    out
}

fn is_secret(rule: &str) -> bool {
    rules::find(rule).is_some_and(|r| r.secret)
}

// ---------------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------------

/// A place in a repository file (never a rendered position such as `helm://…` or `kustomize://…`).
#[derive(Debug, Clone, Copy)]
struct Place<'f> {
    file: &'f str,
    line: u32,
    kind: &'static str,
}

/// Where a finding can be commented on, most direct first: its locations without the rendered ones
/// (rendered names, `renderer://…`, are not files); the finding's own position when it has no locations.
fn places(f: &Finding) -> Vec<Place<'_>> {
    let is_file = |file: &str, kind: &str| kind != "rendered" && !file.contains("://") && !file.is_empty();
    if f.locations.is_empty() {
        return if is_file(&f.file, "manifest") && f.line > 0 {
            vec![Place { file: &f.file, line: f.line, kind: "manifest" }]
        } else {
            Vec::new()
        };
    }
    f.locations
        .iter()
        .filter(|l| is_file(&l.file, l.kind) && l.line > 0)
        .map(|l| Place { file: &l.file, line: l.line, kind: l.kind })
        .collect()
}

/// Where a finding is shown in the summary and the terminal: its first real place, else its own
/// first location (a rendered name), else its own position.
fn shown_at(f: &Finding) -> (String, u32) {
    match (places(f).first(), f.locations.first()) {
        (Some(p), _) => (p.file.to_string(), p.line),
        (None, Some(l)) => (l.file.clone(), l.line),
        (None, None) => (f.file.clone(), f.line),
    }
}

fn counts_new(f: &ReviewFinding) -> bool {
    f.status == Status::New && f.finding.counts()
}

#[derive(Debug, Clone, Copy, Default)]
struct BySeverity {
    errors: usize,
    warnings: usize,
    notices: usize,
}

impl BySeverity {
    fn add(&mut self, s: Severity) {
        match s {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
            Severity::Notice => self.notices += 1,
        }
    }

    /// `2 new errors, 1 warning`, for the severities at or above `min`; `None` when there are none.
    fn describe(&self, min: Severity) -> Option<String> {
        self.list(min, "new ")
    }

    fn list(&self, min: Severity, first_prefix: &str) -> Option<String> {
        let mut parts = Vec::new();
        for (n, sev, word) in [
            (self.errors, Severity::Error, "error"),
            (self.warnings, Severity::Warning, "warning"),
            (self.notices, Severity::Notice, "notice"),
        ] {
            if n > 0 && sev >= min {
                let new = if parts.is_empty() { first_prefix } else { "" };
                parts.push(format!("{n} {new}{}", plural_word(n, word)));
            }
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

fn plural_word(n: usize, word: &str) -> String {
    if n == 1 { word.to_string() } else { format!("{word}s") }
}

/// Which new findings block at `fail_on`: `at error level`, `at warning level or above`.
fn level_phrase(fail_on: Severity) -> &'static str {
    match fail_on {
        Severity::Error => "at error level",
        Severity::Warning => "at warning level or above",
        Severity::Notice => "at any level",
    }
}

pub fn build(input: PlanInput<'_>) -> ReviewPlan {
    let PlanInput {
        mut findings,
        changes,
        diff,
        fail_on,
        head_line,
        nothing_relevant,
        config_notes,
        secrets,
        costs,
        links,
    } = input;
    // Texts from the repository lose their secrets before anything is built (and cut) from them.
    for f in &mut findings {
        secrets.redact_in_place(&mut f.finding.message);
        if let std::borrow::Cow::Owned(clean) = secrets.redact(&f.finding.help) {
            f.finding.help = clean.into();
        }
        if let Some(s) = &mut f.finding.suppressed {
            secrets.redact_in_place(&mut s.reason);
        }
    }

    let mut counts = Counts::default();
    let mut new_by_severity = BySeverity::default();
    for f in findings.iter().filter(|f| f.finding.counts()) {
        match f.status {
            Status::New => {
                counts.new += 1;
                new_by_severity.add(f.finding.severity);
            }
            Status::Existing => counts.existing += 1,
            Status::Fixed => counts.fixed += 1,
        }
    }
    let failing = findings.iter().any(|f| counts_new(f) && f.finding.severity >= fail_on);
    let conclusion = if failing {
        Conclusion::Failure
    } else if nothing_relevant {
        Conclusion::Neutral
    } else {
        Conclusion::Success
    };
    let title = match (conclusion, new_by_severity.describe(Severity::Notice)) {
        (_, Some(all)) => all,
        (Conclusion::Neutral, None) => "Nothing to review".to_string(),
        (_, None) => "No new findings".to_string(),
    };

    // New, unsuppressed findings in the order they are shown: by place, then rule.
    let mut new: Vec<&ReviewFinding> = findings.iter().filter(|f| counts_new(f)).collect();
    // Errors first, then warnings, then notices (each by place): the inline comments are capped by the App, and
    // what is cut must never be an error in favour of a notice.
    new.sort_by_cached_key(|f| {
        let (file, line) = shown_at(&f.finding);
        (std::cmp::Reverse(f.finding.severity), file, line, f.finding.rule, f.fingerprint.clone())
    });

    let mut annotations = Vec::new();
    let mut off_diff: Vec<&ReviewFinding> = Vec::new();
    let mut inline: Vec<(&ReviewFinding, String, u32)> = Vec::new();
    // Findings per commented line, lines in the order of their first (most severe) finding.
    let mut lines: Vec<((&str, u32), Vec<OnLine<'_>>)> = Vec::new();
    let mut line_index: HashMap<(&str, u32), usize> = HashMap::new();
    for f in &new {
        let places = places(&f.finding);
        // A line the change added, else any line GitHub shows in the diff's hunks (a template line next to
        // a removed guard), else the summary.
        let at = places
            .iter()
            .find(|p| diff.contains(p.file, p.line))
            .or_else(|| places.iter().find(|p| diff.in_hunk(p.file, p.line)));
        let slot = at.and_then(|p| {
            let key = (p.file, p.line);
            let i = *line_index.entry(key).or_insert_with(|| {
                lines.push((key, Vec::new()));
                lines.len() - 1
            });
            (lines[i].1.len() < MAX_PER_LINE).then_some((i, *p))
        });
        match slot {
            Some((i, p)) => {
                // A suggestion quotes source lines: none when they hold a secret. One that spans several lines
                // is a multi-line comment, which GitHub takes only inside the diff's hunks.
                let suggestion = suggestion(&f.finding, p, head_line)
                    .filter(|s| !secrets.occurs_in(&s.text))
                    .filter(|s| s.first <= p.line && p.line <= s.last && s.last - s.first < MAX_SUGGESTION_LINES)
                    .filter(|s| s.first == s.last || (s.first..=s.last).all(|l| diff.in_hunk(p.file, l)));
                lines[i].1.push((f, suggestion));
                inline.push((f, p.file.to_string(), p.line));
            }
            None => off_diff.push(f),
        }
        if let Some(p) = places.first() {
            annotations.push(Annotation {
                path: p.file.to_string(),
                start_line: p.line,
                end_line: p.line,
                annotation_level: match f.finding.severity {
                    Severity::Error => "failure",
                    Severity::Warning => "warning",
                    Severity::Notice => "notice",
                },
                title: f.finding.rule.to_string(),
                message: format!("{}\n\n{}", f.finding.message, f.finding.help),
            });
        }
    }
    let comments: Vec<InlineComment> = lines
        .into_iter()
        .map(|((path, line), findings)| {
            // The suggestion shown (the first) decides the lines the comment spans.
            let range = findings.iter().find_map(|(_, s)| s.as_ref()).map_or((line, line), |s| (s.first, s.last));
            InlineComment {
                path: path.to_string(),
                line: range.1,
                start_line: (range.0 < range.1).then_some(range.0),
                side: "RIGHT",
                body: comment_body(&findings),
                rules: findings.iter().map(|(f, _)| f.finding.rule).collect(),
                fingerprints: findings.iter().map(|(f, _)| f.fingerprint.clone()).collect(),
            }
        })
        .collect();

    // --- The summary ---
    let verdict = match conclusion {
        Conclusion::Failure => {
            format!("### ❌ kpath: {}", new_by_severity.describe(fail_on).unwrap_or_else(|| "new findings".to_string()))
        }
        Conclusion::Success => format!("### ✅ kpath: no new findings {}", level_phrase(fail_on)),
        Conclusion::Neutral => {
            "### ⚪ kpath: nothing to review (no manifest, chart or Dockerfile is affected by this change)".to_string()
        }
    };
    let mut top = format!("{verdict}\n\n");
    let detail = new_by_severity.list(Severity::Notice, "").map(|d| format!(" ({d})")).unwrap_or_default();
    let _ = write!(
        top,
        "**New:** {}{detail} · **Existing:** {} · **Fixed:** {}",
        counts.new, counts.existing, counts.fixed
    );
    let suppressed_new: Vec<&ReviewFinding> =
        findings.iter().filter(|f| f.status == Status::New && !f.finding.counts()).collect();
    if !suppressed_new.is_empty() {
        let _ = write!(top, " · **Suppressed in this change:** {}", suppressed_new.len());
    }
    top.push('\n');
    if let Some(commit) = links.commit() {
        let _ = writeln!(top, "\nReviewed at {commit}.");
    }
    if counts.existing > 0 {
        top.push_str(
            "\nExisting findings were there before this change and do not block it; `kpath check` lists them.\n",
        );
    }
    // Each render unit and environment the change affects, with its mark: the reviewer's map of the change.
    let units = unit_statuses(&changes, &new, fail_on);
    top.push_str(&secrets.redact(&units_table(&units, &links)));
    // What the change costs, per environment: small (a row per environment whose requests move, capped).
    top.push_str(&secrets.redact(&super::cost::table(&costs, MAX_COST_ROWS)));

    let mut off_section = Section::new(
        "New findings not on a changed line",
        Some(
            "These are introduced by this change but point at lines it did not touch (for example a values \
             key a changed template now reads), so they are listed here instead of inline.",
        ),
        "see the check run's annotations, or run `kpath review` locally",
    );
    off_section.items = off_diff.iter().map(|f| finding_item(f, true, &links)).collect();
    let mut inline_section =
        Section::new(INLINE_SECTION, None, "see the review comments, or run `kpath review` locally");
    let inline_fingerprints: Vec<String> = inline.iter().map(|(f, ..)| f.fingerprint.clone()).collect();
    inline_section.items = inline
        .iter()
        .map(|(f, file, line)| {
            format!("**{}** `{}` at {}", f.finding.severity, f.finding.rule, links.place(file, *line))
        })
        .collect();
    let mut suppressed_section =
        Section::new("New findings suppressed in this change", None, "run `kpath review` locally");
    suppressed_section.items = suppressed_new
        .iter()
        .map(|f| {
            let mut item = finding_item(f, false, &links);
            if let Some(s) = &f.finding.suppressed {
                let _ = write!(item, " (suppressed by {}: {})", s.kind, md_inline(&s.reason));
            }
            item
        })
        .collect();
    let mut fixed_section = Section::new("Fixed", None, "run `kpath review` locally");
    let mut fixed: Vec<&ReviewFinding> =
        findings.iter().filter(|f| f.status == Status::Fixed && f.finding.counts()).collect();
    fixed.sort_by_cached_key(|f| {
        let (file, line) = shown_at(&f.finding);
        (file, line, f.finding.rule)
    });
    // Fixed findings are places of the base: shown, not linked to the head.
    fixed_section.items = fixed.iter().map(|f| finding_item(f, false, &Links::default())).collect();

    let mut config_section = Section::new("Configuration", None, "run `kpath review` locally");
    config_section.items = config_notes
        .iter()
        .map(|note| {
            let mut item = md_inline(&secrets.redact(note));
            truncate(&mut item, MAX_ITEM);
            item
        })
        .collect();

    // Display order, and the order in which they give way when the summary is too long (last first).
    let mut sections = vec![config_section, off_section, inline_section, suppressed_section, fixed_section];
    let trim_order = [2, 4, 3, 1, 0];

    let groups = object_groups(&changes, &units);
    let parts = SummaryParts {
        top,
        sections: sections.clone(),
        trim_order,
        inline: (sections.iter().position(|s| s.title == INLINE_SECTION).unwrap_or(usize::MAX), inline_fingerprints),
        groups,
        nothing_relevant,
    };
    let summary = assemble(&parts.top, &mut sections, &trim_order, &parts.groups, nothing_relevant);

    ReviewPlan {
        conclusion,
        title,
        summary,
        comments,
        annotations,
        findings,
        changes,
        counts,
        secrets,
        parts: Some(Arc::new(parts)),
    }
}

/// Every rendered change of the plan as a full diff, per unit and environment, for the check run's details
/// (GitHub shows them under the summary): whole diffs only, within `max` bytes, the rest counted. Where the
/// summary had to leave diffs out for its own limit, they are here.
pub fn rendered_changes(plan: &ReviewPlan, max: usize) -> String {
    let changed: Vec<&ObjectChange> = plan.changes.iter().filter(|c| c.kind != ChangeKind::Unchanged).collect();
    if changed.is_empty() {
        return String::new();
    }
    let budget = max.saturating_sub(MORE_LINE);
    let mut out = String::from("## Rendered changes\n");
    let mut heading: Option<(&str, Option<&str>)> = None;
    let mut left_out = 0;
    for c in &changed {
        let mut piece = String::new();
        let group = (c.unit.as_str(), c.environment.as_deref());
        if heading != Some(group) {
            let name = match group.1 {
                Some(env) => format!("{} · {}", code_span(group.0), code_span(env)),
                None => code_span(group.0),
            };
            let _ = write!(piece, "\n### {name}\n");
        }
        let diff = plan.redact(&c.diff);
        let fence = fence_for(&diff);
        let kind = match c.kind {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            _ => "changed",
        };
        let _ = write!(
            piece,
            "\n{} {} ({kind})\n\n{fence}diff\n{}\n{fence}\n",
            md_inline(&c.object.kind),
            code_span(&c.object.name),
            diff.trim_end()
        );
        if out.len() + piece.len() > budget {
            left_out += 1;
            continue;
        }
        heading = Some(group);
        out.push_str(&piece);
    }
    if left_out > 0 {
        let _ = write!(
            out,
            "\n…and {left_out} more diffs, left out to stay within GitHub's limit: run `kpath review` locally.\n"
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Inline comments
// ---------------------------------------------------------------------------------------------

/// The first sentence of a rule's text (like [`rules::Rule::help`]).
/// The first sentence of a rule's text: up to the first ". " outside a code span (`COPY . .` is not
/// the end of a sentence), or the first line.
fn first_sentence(text: &str) -> &str {
    let text = text.trim();
    let mut in_code = false;
    let mut end = None;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'`' => in_code = !in_code,
            b'\n' => {
                end = Some(i);
                break;
            }
            b'.' if !in_code && text.as_bytes().get(i + 1) == Some(&b' ') => {
                end = Some(i + 1);
                break;
            }
            _ => {}
        }
    }
    text[..end.unwrap_or(text.len())].trim()
}

/// A finding commented on a line, with its suggestion.
type OnLine<'f> = (&'f ReviewFinding, Option<rules::fix::Suggestion>);

/// An inline comment: for each finding on the line, the one-line message, the fix and its suggestion visible
/// (one suggestion per comment: two would edit the same line); environments; why it matters and how to learn
/// more folded behind `<details>` (a reviewer reads the first lines, a learner opens it).
fn comment_body(findings: &[OnLine<'_>]) -> String {
    let mut b = String::new();
    let mut suggested = false;
    for (i, (f, suggestion)) in findings.iter().enumerate() {
        let finding = &f.finding;
        if i > 0 {
            b.push_str("---\n\n");
        }
        let mut message = md_inline(&finding.message);
        truncate(&mut message, MAX_ITEM);
        let _ = writeln!(b, "**{}** `{}`: {message}\n", finding.severity, finding.rule);
        let _ = writeln!(b, "**Fix:** {}\n", md_inline(&finding.help));
        if let Some(s) = suggestion.as_ref().map(|s| s.text.as_str()).filter(|_| !suggested) {
            suggested = true;
            let fence = fence_for(s);
            if s.is_empty() {
                let _ = writeln!(b, "{fence}suggestion\n{fence}\n");
            } else {
                let _ = writeln!(b, "{fence}suggestion\n{s}\n{fence}\n");
            }
        }
        if !finding.environments.is_empty() {
            let envs: Vec<String> = finding.environments.iter().map(|e| code_span(e)).collect();
            let _ = writeln!(b, "Environments: {}\n", envs.join(", "));
        }
    }
    let _ = writeln!(b, "<details><summary>Why</summary>\n");
    let mut rules_seen: Vec<&str> = Vec::new();
    for (f, _) in findings {
        if rules_seen.contains(&f.finding.rule) {
            continue;
        }
        rules_seen.push(f.finding.rule);
        let why = rules::find(f.finding.rule).map(|r| first_sentence(r.why)).unwrap_or("");
        if findings.len() == 1 {
            let _ = writeln!(b, "{why}\n");
        } else {
            let _ = writeln!(b, "- `{}`: {why}", f.finding.rule);
        }
    }
    if findings.len() > 1 {
        b.push('\n');
    }
    let explain: Vec<String> = rules_seen.iter().map(|r| format!("`/kpath explain {r}`")).collect();
    let _ = writeln!(b, "Reply {} for the full explanation.\n\n</details>\n", explain.join(" or "));
    let fingerprints: Vec<String> = findings.iter().map(|(f, _)| f.fingerprint.clone()).collect();
    b.push_str(&fingerprint_marker(&fingerprints));
    b
}

/// A GitHub suggestion (the replacement text of the commented line; empty deletes it), from the rule's own
/// fix. Never for secret rules: a suggestion quotes the source line.
fn suggestion(
    f: &Finding,
    at: Place<'_>,
    head_line: &dyn Fn(&str, u32) -> Option<String>,
) -> Option<rules::fix::Suggestion> {
    if is_secret(f.rule) {
        return None;
    }
    let suggest = rules::find(f.rule)?.suggest?;
    suggest(&rules::fix::FixCx { finding: f, file: at.file, line: at.line, kind: at.kind, head_line })
}

// ---------------------------------------------------------------------------------------------
// The summary
// ---------------------------------------------------------------------------------------------

/// The summary's list of the findings commented inline.
const INLINE_SECTION: &str = "New findings commented inline";
/// Longest list item, so one absurd message cannot take the whole summary.
const MAX_ITEM: usize = 2_000;
/// Room kept for the "… and N more" line of a trimmed section.
const MORE_LINE: usize = 200;
/// Room kept for the line saying how many object diffs were left out.
const LEFT_OUT_NOTE: usize = 300;

#[derive(Debug, Clone)]
struct Section {
    title: &'static str,
    intro: Option<&'static str>,
    items: Vec<String>,
    omitted: usize,
    hint: &'static str,
}

impl Section {
    fn new(title: &'static str, intro: Option<&'static str>, hint: &'static str) -> Section {
        Section { title, intro, items: Vec::new(), omitted: 0, hint }
    }

    fn head_len(&self) -> usize {
        self.title.len() + self.intro.map_or(0, |i| i.len() + 2) + 8
    }

    fn render(&self, out: &mut String) {
        if self.items.is_empty() && self.omitted == 0 {
            return;
        }
        let _ = writeln!(out, "\n#### {}\n", self.title);
        if let Some(intro) = self.intro {
            let _ = writeln!(out, "{intro}\n");
        }
        for item in &self.items {
            let _ = writeln!(out, "- {item}");
        }
        if self.omitted > 0 {
            let _ = writeln!(out, "- … and {} more ({})", self.omitted, self.hint);
        }
    }

    fn cost(&self) -> usize {
        if self.items.is_empty() && self.omitted == 0 {
            return 0;
        }
        self.head_len()
            + self.items.iter().map(|i| i.len() + 3).sum::<usize>()
            + if self.omitted > 0 { MORE_LINE } else { 0 }
    }
}

/// One summary line for a finding: severity, rule, place, message, environments.
fn finding_item(f: &ReviewFinding, with_environments: bool, links: &Links) -> String {
    let (file, line) = shown_at(&f.finding);
    let mut item = format!("**{}** `{}` at {}", f.finding.severity, f.finding.rule, links.place(&file, line));
    if f.status == Status::Fixed {
        item.push_str(" (base)");
    }
    let _ = write!(item, ": {}", md_inline(&f.finding.message));
    if with_environments && !f.finding.environments.is_empty() {
        let envs: Vec<String> = f.finding.environments.iter().map(|e| code_span(e)).collect();
        let _ = write!(item, " (environments: {})", envs.join(", "));
    }
    truncate(&mut item, MAX_ITEM);
    item
}

#[derive(Debug, Clone)]
struct Group {
    header: String,
    entries: Vec<String>,
}

/// Changed, added and removed objects per render unit and environment, each a collapsible diff.
/// What one render unit and environment (or a file checked on its own) comes to in this change.
#[derive(Debug, Default)]
struct UnitStatus {
    /// Its objects are rendered and diffed (a Dockerfile's findings have no objects).
    has_objects: bool,
    added: usize,
    removed: usize,
    changed: usize,
    new: BySeverity,
    blocking: bool,
}

impl UnitStatus {
    /// ❌ new findings that fail the review, ⚠️ new findings that do not, ✅ none.
    fn mark(&self) -> &'static str {
        if self.blocking {
            "❌"
        } else if self.new.errors + self.new.warnings + self.new.notices > 0 {
            "⚠️"
        } else {
            "✅"
        }
    }
}

/// A unit's key: its root (a chart, a Kustomize root, a manifest's path) and environment.
type UnitKey = (String, Option<String>);

/// Every unit and environment of the change's objects, and the files of new findings outside any, with what
/// changed and the new findings of each. A finding of an environment belongs to that environment of the unit
/// its places lie in (or, when its places are elsewhere — Flux values inline in a HelmRelease —, to every unit
/// with that environment); a finding without environments to its file.
fn unit_statuses(changes: &[ObjectChange], new: &[&ReviewFinding], fail_on: Severity) -> BTreeMap<UnitKey, UnitStatus> {
    let mut units: BTreeMap<UnitKey, UnitStatus> = BTreeMap::new();
    for c in changes {
        let status = units.entry((c.unit.clone(), c.environment.clone())).or_default();
        status.has_objects = true;
        match c.kind {
            ChangeKind::Added => status.added += 1,
            ChangeKind::Removed => status.removed += 1,
            ChangeKind::Changed => status.changed += 1,
            ChangeKind::Unchanged => {}
        }
    }
    let within = |file: &str, unit: &str| file == unit || file.strip_prefix(unit).is_some_and(|r| r.starts_with('/'));
    for f in new {
        let finding = &f.finding;
        let mut keys: Vec<UnitKey> = Vec::new();
        for env in &finding.environments {
            let of_env: Vec<&UnitKey> = units.keys().filter(|(_, e)| e.as_deref() == Some(env.as_str())).collect();
            let placed: Vec<&UnitKey> = of_env
                .iter()
                .copied()
                .filter(|(unit, e)| {
                    e.as_deref() == Some(unit.as_str())
                        || finding.locations.iter().any(|l| within(&l.file, unit))
                        || within(&finding.file, unit)
                })
                .collect();
            keys.extend(if placed.is_empty() { of_env } else { placed }.into_iter().cloned());
        }
        if keys.is_empty() {
            keys.push((shown_at(finding).0, None));
        }
        keys.sort();
        keys.dedup();
        for key in keys {
            let status = units.entry(key).or_default();
            status.new.add(finding.severity);
            status.blocking |= finding.severity >= fail_on;
        }
    }
    units
}

/// Most rows of the units table; the rest are counted.
const MAX_UNIT_ROWS: usize = 30;

/// The units table: a mark, the unit and environment, what changed, the new findings. Blocking units first.
fn units_table(units: &BTreeMap<UnitKey, UnitStatus>, links: &Links) -> String {
    if units.is_empty() {
        return String::new();
    }
    let mut rows: Vec<(&UnitKey, &UnitStatus)> = units.iter().collect();
    rows.sort_by_key(|(_, s)| match s.mark() {
        "❌" => 0,
        "⚠️" => 1,
        _ => 2,
    });
    let mut out = String::from(
        "\n#### Units and environments\n\n| | Unit | Environment | Objects | New findings |\n|---|---|---|---|---|\n",
    );
    for ((unit, env), status) in rows.iter().take(MAX_UNIT_ROWS) {
        let env = env.as_deref().filter(|e| e != unit).map(code_span).unwrap_or_else(|| "—".to_string());
        let mut objects: Vec<String> = Vec::new();
        for (n, word) in [(status.added, "added"), (status.changed, "changed"), (status.removed, "removed")] {
            if n > 0 {
                objects.push(format!("{n} {word}"));
            }
        }
        let objects = match (status.has_objects, objects.is_empty()) {
            (false, _) => "—".to_string(),
            (true, true) => "no change".to_string(),
            (true, false) => objects.join(", "),
        };
        let findings = status.new.list(Severity::Notice, "").unwrap_or_else(|| "none".to_string());
        let unit = links.place_file(unit).replace('|', "\\|");
        let _ = writeln!(out, "| {} | {unit} | {} | {objects} | {findings} |", status.mark(), env.replace('|', "\\|"));
    }
    if rows.len() > MAX_UNIT_ROWS {
        let _ = writeln!(out, "\n…and {} more units.", rows.len() - MAX_UNIT_ROWS);
    }
    out
}

fn object_groups(changes: &[ObjectChange], units: &BTreeMap<UnitKey, UnitStatus>) -> Vec<Group> {
    let mut by_unit: BTreeMap<(&str, Option<&str>), Vec<&ObjectChange>> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.kind != ChangeKind::Unchanged) {
        by_unit.entry((c.unit.as_str(), c.environment.as_deref())).or_default().push(c);
    }
    by_unit
        .into_iter()
        .map(|((unit, env), mut list)| {
            list.sort_by(|a, b| a.object.cmp(&b.object));
            let mark = units
                .get(&(unit.to_string(), env.map(str::to_string)))
                .map(|s| format!("{} ", s.mark()))
                .unwrap_or_default();
            // A Kustomize root is its own environment: named once.
            let header = match env.filter(|e| *e != unit) {
                Some(env) => format!("{mark}**{}** · environment {}\n\n", code_span(unit), code_span(env)),
                None => format!("{mark}**{}**\n\n", code_span(unit)),
            };
            let entries = list
                .iter()
                .map(|c| {
                    let diff = c.diff.trim_end_matches('\n');
                    let fence = fence_for(diff);
                    format!(
                        "<details><summary>{} ({})</summary>\n\n{fence}diff\n{diff}\n{fence}\n\n</details>\n\n",
                        html(&c.object.to_string()),
                        change_word(c.kind)
                    )
                })
                .collect();
            Group { header, entries }
        })
        .collect()
}

fn change_word(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "added",
        ChangeKind::Removed => "removed",
        ChangeKind::Changed => "changed",
        ChangeKind::Unchanged => "unchanged",
    }
}

const RENDERED_HEADING: &str = "\n#### Rendered changes\n\n";

/// The whole summary within [`MAX_SUMMARY`]: findings sections are trimmed only when they alone do not
/// fit; object diffs are dropped whole, largest first.
fn assemble(
    top: &str,
    sections: &mut [Section],
    trim_order: &[usize],
    groups: &[Group],
    nothing_relevant: bool,
) -> String {
    let show_rendered = !nothing_relevant || !groups.is_empty();
    let rendered_fixed = if show_rendered { RENDERED_HEADING.len() + LEFT_OUT_NOTE } else { 0 };
    let mut total = top.len() + sections.iter().map(Section::cost).sum::<usize>() + rendered_fixed;
    for &i in trim_order {
        let Some(section) = sections.get_mut(i) else { continue };
        while total > MAX_SUMMARY {
            let before = section.cost();
            if section.items.pop().is_none() {
                break;
            }
            section.omitted += 1;
            total = total - before + section.cost();
        }
    }

    let mut out = String::from(top);
    for s in sections.iter() {
        s.render(&mut out);
    }
    if show_rendered {
        out.push_str(RENDERED_HEADING);
        if groups.is_empty() {
            out.push_str("No rendered object changed.\n");
        } else {
            let budget = MAX_SUMMARY.saturating_sub(out.len() + LEFT_OUT_NOTE);
            let (kept, left_out) = keep_diffs(groups, budget);
            for (g, group) in groups.iter().enumerate() {
                let chosen: Vec<&String> =
                    group.entries.iter().enumerate().filter(|(e, _)| kept[g][*e]).map(|(_, s)| s).collect();
                if chosen.is_empty() {
                    continue;
                }
                out.push_str(&group.header);
                for entry in chosen {
                    out.push_str(entry);
                }
            }
            if left_out > 0 {
                let _ = writeln!(
                    out,
                    "_{} {} left out to keep this summary under GitHub's 65,536-character limit; \
                     run `kpath review` locally to see {}._",
                    left_out,
                    if left_out == 1 { "object diff was" } else { "object diffs were" },
                    if left_out == 1 { "it" } else { "them" },
                );
            }
        }
    }
    truncate(&mut out, MAX_SUMMARY);
    out
}

/// Which entries fit in `budget` bytes, dropping the largest first; and how many were dropped.
fn keep_diffs(groups: &[Group], budget: usize) -> (Vec<Vec<bool>>, usize) {
    let mut kept: Vec<Vec<bool>> = groups.iter().map(|g| vec![true; g.entries.len()]).collect();
    let mut alive: Vec<usize> = groups.iter().map(|g| g.entries.len()).collect();
    let mut total: usize =
        groups.iter().map(|g| g.header.len() + g.entries.iter().map(String::len).sum::<usize>()).sum();
    let mut order: Vec<(usize, usize)> =
        groups.iter().enumerate().flat_map(|(g, group)| (0..group.entries.len()).map(move |e| (g, e))).collect();
    // Largest first; ties dropped from the end, so the first objects listed are the last to go.
    order.sort_by(|a, b| {
        let size = |&(g, e): &(usize, usize)| groups[g].entries[e].len();
        size(b).cmp(&size(a)).then(b.cmp(a))
    });
    let mut left_out = 0;
    for (g, e) in order {
        if total <= budget {
            break;
        }
        kept[g][e] = false;
        left_out += 1;
        total -= groups[g].entries[e].len();
        alive[g] -= 1;
        if alive[g] == 0 {
            total -= groups[g].header.len();
        }
    }
    (kept, left_out)
}

/// Cuts `text` to at most `max` bytes at a character boundary, marking the cut.
fn truncate(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    const MARK: &str = "…";
    let mut end = max.saturating_sub(MARK.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(MARK);
}

// ---------------------------------------------------------------------------------------------
// Markdown escaping
// ---------------------------------------------------------------------------------------------

/// Text from the repository, made safe for one line of Markdown: newlines become spaces, and `<`, `>`
/// and `&` outside code spans become entities (no HTML, no hidden comments, no forged markers).
/// Code spans (matching backtick runs, as CommonMark pairs them) are kept: their content is literal.
pub(crate) fn md_inline(text: &str) -> String {
    let text: String = text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            let run = rest.len() - rest.trim_start_matches('`').len();
            let after = &rest[run..];
            if let Some(close) = find_run(after, run) {
                out.push_str(&rest[..run + close + run]);
                rest = &rest[run + close + run..];
            } else {
                for _ in 0..run {
                    out.push_str("\\`");
                }
                rest = after;
            }
            continue;
        }
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            _ => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Offset of the first run of exactly `n` backticks in `text`.
fn find_run(text: &str, n: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'`' {
            let start = i;
            while i < bytes.len() && bytes[i] == b'`' {
                i += 1;
            }
            if i - start == n {
                return Some(start);
            }
        } else {
            i += 1;
        }
    }
    None
}

fn longest_backtick_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// An inline code span that holds any text (one line).
fn code_span(text: &str) -> String {
    let text: String = text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
    let ticks = "`".repeat(longest_backtick_run(&text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// A code fence longer than any backtick run in `content`.
fn fence_for(content: &str) -> String {
    "`".repeat((longest_backtick_run(content) + 1).max(3))
}

fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Renderers
// ---------------------------------------------------------------------------------------------

/// The summary as posted on the check run (the same text as `plan.summary`).
pub fn render_markdown(plan: &ReviewPlan) -> String {
    plan.summary.clone()
}

/// For a terminal: the verdict, new findings with `file:line`, fixed findings, the counts and the
/// changed objects.
pub fn render_text(plan: &ReviewPlan) -> String {
    let mut out = String::new();
    let _ = match plan.conclusion {
        Conclusion::Failure => writeln!(out, "kpath review: fail: {}\n", plan.title),
        Conclusion::Success => writeln!(out, "kpath review: pass: {}\n", plan.title),
        Conclusion::Neutral if plan.counts.new == 0 => {
            writeln!(out, "kpath review: nothing to review (no manifest, chart or Dockerfile is affected)\n")
        }
        Conclusion::Neutral => writeln!(out, "kpath review: nothing relevant changed: {}\n", plan.title),
    };

    // Where each new finding was commented, by fingerprint (several findings may share one).
    let mut commented: HashMap<&str, Vec<(&str, u32)>> = HashMap::new();
    for c in plan.comments.iter().rev() {
        for fingerprint in &c.fingerprints {
            commented.entry(fingerprint.as_str()).or_default().push((c.path.as_str(), c.line));
        }
    }
    let mut new: Vec<&ReviewFinding> = plan.findings.iter().filter(|f| f.status == Status::New).collect();
    new.sort_by_cached_key(|f| {
        let (file, line) = shown_at(&f.finding);
        (!f.finding.counts(), file, line, f.finding.rule)
    });
    for f in new {
        let finding = &f.finding;
        let comment =
            if finding.counts() { commented.get_mut(f.fingerprint.as_str()).and_then(Vec::pop) } else { None };
        let ((file, line), where_) = match comment {
            Some((file, line)) => ((file.to_string(), line), "commented inline"),
            None if finding.counts() => (shown_at(finding), "not on a changed line"),
            None => (shown_at(finding), "suppressed"),
        };
        let _ = writeln!(out, "{}[{}]: {}", finding.severity, finding.rule, finding.message);
        let _ = writeln!(out, " --> {file}:{line} ({where_})");
        if !finding.environments.is_empty() {
            let _ = writeln!(out, "  = environments: {}", finding.environments.join(", "));
        }
        if let Some(s) = &finding.suppressed {
            let _ = writeln!(out, "  = suppressed ({}): {}", s.kind, s.reason);
        } else {
            let _ = writeln!(out, "  = help: {}", finding.help);
        }
        out.push('\n');
    }
    let fixed: Vec<&ReviewFinding> =
        plan.findings.iter().filter(|f| f.status == Status::Fixed && f.finding.counts()).collect();
    if !fixed.is_empty() {
        out.push_str("fixed:\n");
        for f in fixed {
            let (file, line) = shown_at(&f.finding);
            let _ = writeln!(
                out,
                "  {}[{}] {file}:{line} (base): {}",
                f.finding.severity, f.finding.rule, f.finding.message
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{} new, {} existing, {} fixed", plan.counts.new, plan.counts.existing, plan.counts.fixed);
    let mut changed: Vec<&ObjectChange> = plan.changes.iter().filter(|c| c.kind != ChangeKind::Unchanged).collect();
    if !changed.is_empty() {
        changed.sort_by(|a, b| (&a.unit, &a.environment, &a.object).cmp(&(&b.unit, &b.environment, &b.object)));
        out.push_str("\nchanged objects:\n");
        for c in changed {
            let env = c.environment.as_deref().filter(|e| *e != c.unit).map(|e| format!(", {e}")).unwrap_or_default();
            let _ = writeln!(out, "  {:<8} {} ({}{env})", change_word(c.kind), c.object, c.unit);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::finding::{Location, ObjectId, Suppression};
    use crate::yaml::Route;

    fn object(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectId {
        ObjectId {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    fn deployment(name: &str) -> ObjectId {
        object("apps/v1", "Deployment", Some("shop"), name)
    }

    /// A finding of `rule` on a plain file, with the rule's severity and help.
    fn finding(rule: &'static str, file: &str, line: u32, object: Option<ObjectId>, route: Option<&str>) -> Finding {
        let r = rules::find(rule).expect("known rule");
        Finding {
            rule: r.id,
            severity: r.severity,
            message: format!("{rule} message"),
            file: file.to_string(),
            line,
            column: 1,
            route: route.map(Route::parse),
            object: object.map(std::sync::Arc::new),
            help: r.help().into(),
            suppressed: None,
            locations: vec![Location { file: file.to_string(), line, column: 1, kind: "manifest" }],
            environments: Vec::new(),
            document: Some(0),
            origin: None,
            part: None,
        }
    }

    fn review(f: Finding, status: Status, fingerprint: &str) -> ReviewFinding {
        ReviewFinding { finding: f, status, fingerprint: fingerprint.to_string() }
    }

    fn diff_of(lines: &[(&str, u32)]) -> DiffLines {
        let mut d = DiffLines::default();
        for (file, line) in lines {
            d.added.entry(file.to_string()).or_default().insert(*line);
        }
        d
    }

    fn no_lines(_: &str, _: u32) -> Option<String> {
        None
    }

    /// `head_line` over in-memory files.
    fn lines_of<'a>(files: &'a [(&'a str, &'a str)]) -> impl Fn(&str, u32) -> Option<String> + 'a {
        move |file, line| {
            let (_, text) = files.iter().find(|(name, _)| *name == file)?;
            text.lines().nth(line.checked_sub(1)? as usize).map(str::to_string)
        }
    }

    fn plan(findings: Vec<ReviewFinding>, diff: &DiffLines, head: &dyn Fn(&str, u32) -> Option<String>) -> ReviewPlan {
        build(PlanInput {
            findings,
            changes: Vec::new(),
            diff,
            fail_on: Severity::Error,
            head_line: head,
            nothing_relevant: false,
            config_notes: Vec::new(),
            secrets: Default::default(),
            costs: Vec::new(),
            links: Links::default(),
        })
    }

    #[test]
    fn errors_are_commented_before_warnings_so_the_cap_never_drops_an_error_for_a_notice() {
        let mut findings = Vec::new();
        let mut lines = Vec::new();
        for i in 0..30u32 {
            findings.push(review(finding("image-latest", "a.yaml", i + 1, None, None), Status::New, &format!("w{i}")));
            lines.push(("a.yaml", i + 1));
        }
        for i in 0..3u32 {
            findings.push(review(finding("secret-in-env", "z.yaml", i + 1, None, None), Status::New, &format!("e{i}")));
            lines.push(("z.yaml", i + 1));
        }
        let diff = diff_of(&lines);
        let p = plan(findings, &diff, &no_lines);
        let first: Vec<&str> = p.comments.iter().take(3).map(|c| c.rules[0]).collect();
        assert_eq!(first, vec!["secret-in-env"; 3]);
        let commentable: std::collections::HashMap<String, std::collections::BTreeSet<u32>> =
            [("a.yaml", 1..=30), ("z.yaml", 1..=3)].into_iter().map(|(f, r)| (f.to_string(), r.collect())).collect();
        let (inline, demoted) = crate::app::worker::choose_inline(&p.comments, &[], &commentable);
        assert_eq!(inline.iter().filter(|c| c.rules == ["secret-in-env"]).count(), 3);
        assert!(demoted.iter().all(|c| c.rules == ["image-latest"]));
    }

    // --- fingerprints ---

    #[test]
    fn fingerprint_ignores_line_numbers_and_message_wording() {
        let a = finding("hpa-replicas-conflict", "d.yaml", 7, Some(deployment("web")), Some("spec.replicas"));
        let mut b = a.clone();
        b.line = 19;
        b.column = 5;
        b.locations[0].line = 19;
        b.message = "completely reworded".to_string();
        b.help = "other help".into();
        assert_eq!(fingerprint(&a, None), fingerprint(&b, None));
        assert_eq!(fingerprint(&a, None).len(), 16);
        assert!(fingerprint(&a, None).bytes().all(|c| c.is_ascii_hexdigit()));

        // Without an object: the source line's text, not its number.
        let base_text = "FROM ubuntu:22.04\nRUN apt-get update && apt-get install -y curl\n";
        let head_text =
            "# syntax=docker/dockerfile:1\n\nFROM ubuntu:22.04\n  RUN apt-get update && apt-get install -y curl\n";
        let c = finding("dockerfile-package-cache", "Dockerfile", 2, None, None);
        let mut d = c.clone();
        d.line = 4;
        d.message = "reworded".to_string();
        let line = |text: &str, n: u32| text.lines().nth(n as usize - 1).map(str::to_string);
        assert_eq!(fingerprint(&c, line(base_text, 2).as_deref()), fingerprint(&d, line(head_text, 4).as_deref()));
        assert_ne!(fingerprint(&c, Some("RUN apt-get install -y curl")), fingerprint(&c, Some("RUN apk add curl")));
    }

    #[test]
    fn fingerprint_is_object_identity_without_the_api_version() {
        let a =
            finding("image-latest", "d.yaml", 3, Some(object("apps/v1beta2", "Deployment", Some("shop"), "web")), None);
        let b =
            finding("image-latest", "other.yaml", 30, Some(object("apps/v1", "Deployment", Some("shop"), "web")), None);
        assert_eq!(fingerprint(&a, None), fingerprint(&b, None), "same group, kind, namespace, name");
        for other in [
            object("extensions/v1beta1", "Deployment", Some("shop"), "web"),
            object("apps/v1", "StatefulSet", Some("shop"), "web"),
            object("apps/v1", "Deployment", Some("other"), "web"),
            object("apps/v1", "Deployment", None, "web"),
            object("apps/v1", "Deployment", Some("shop"), "api"),
        ] {
            let c = finding("image-latest", "d.yaml", 3, Some(other.clone()), None);
            assert_ne!(fingerprint(&a, None), fingerprint(&c, None), "{other}");
        }
        let d = finding("probe-liveness-missing", "d.yaml", 3, Some(deployment("web")), None);
        assert_ne!(fingerprint(&b, None), fingerprint(&d, None), "rule");
    }

    #[test]
    fn fingerprint_differs_per_environment_and_route() {
        let base = finding(
            "image-latest",
            "d.yaml",
            3,
            Some(deployment("web")),
            Some("spec.template.spec.containers[0].image"),
        );
        let mut route = base.clone();
        route.route = Some(Route::parse("spec.template.spec.containers[1].image"));
        assert_ne!(fingerprint(&base, None), fingerprint(&route, None));

        let mut staging = base.clone();
        staging.environments = vec!["staging".to_string()];
        let mut prod = base.clone();
        prod.environments = vec!["prod".to_string()];
        let mut both = base.clone();
        both.environments = vec!["staging".to_string(), "prod".to_string()];
        let mut both_reordered = base.clone();
        both_reordered.environments = vec!["prod".to_string(), "staging".to_string()];
        let fps: BTreeSet<String> = [&base, &staging, &prod, &both].iter().map(|f| fingerprint(f, None)).collect();
        assert_eq!(fps.len(), 4);
        assert_eq!(fingerprint(&both, None), fingerprint(&both_reordered, None));
    }

    #[test]
    fn fingerprint_of_a_secret_line_uses_the_masked_line() {
        // Without an object (secret rules on files that are not objects): a hash of the raw line
        // would let anyone try guesses of a weak secret against the posted marker.
        let f = finding("secret-in-env", "env.yaml", 3, None, None);
        assert_eq!(fingerprint(&f, Some("  PASSWORD: hunter2")), fingerprint(&f, Some("  PASSWORD: hunter3")));
    }

    // --- classification ---

    #[test]
    fn classify_new_existing_fixed() {
        let base_files: &[(&str, &str)] = &[("Dockerfile", "FROM ubuntu\nRUN apt-get install -y curl\n")];
        let head_files: &[(&str, &str)] =
            &[("Dockerfile", "# moved down\nFROM ubuntu\nRUN apt-get install -y curl\nRUN apt-get install -y jq\n")];
        let base_lines = lines_of(base_files);
        let head_lines = lines_of(head_files);
        let line_text = |side: Side, file: &str, line: u32| match side {
            Side::Base => base_lines(file, line),
            Side::Head => head_lines(file, line),
        };
        let base = vec![
            finding("hpa-replicas-conflict", "d.yaml", 7, Some(deployment("web")), Some("spec.replicas")),
            finding("namespace-default", "d.yaml", 4, Some(deployment("old")), Some("metadata.namespace")),
            finding("dockerfile-package-cache", "Dockerfile", 2, None, None),
        ];
        let mut moved = base[0].clone();
        moved.line = 12;
        let mut suppressed = finding("probe-liveness-missing", "d.yaml", 20, Some(deployment("web")), Some("x"));
        suppressed.suppressed = Some(Suppression { kind: "comment", reason: "pinned by CD".to_string() });
        let head = vec![
            moved,
            finding("dockerfile-package-cache", "Dockerfile", 3, None, None),
            finding("dockerfile-package-cache", "Dockerfile", 4, None, None),
            suppressed,
        ];
        let got = classify(base, head, &line_text);
        let statuses: Vec<(&str, u32, Status)> =
            got.iter().map(|f| (f.finding.rule, f.finding.line, f.status)).collect();
        assert_eq!(
            statuses,
            vec![
                ("hpa-replicas-conflict", 12, Status::Existing),
                ("dockerfile-package-cache", 3, Status::Existing),
                ("dockerfile-package-cache", 4, Status::New),
                ("probe-liveness-missing", 20, Status::New),
                ("namespace-default", 4, Status::Fixed),
            ]
        );
        // A suppressed new finding keeps its status but never fails the check.
        let p = plan(got, &DiffLines::default(), &no_lines);
        assert_eq!(p.counts, Counts { new: 1, existing: 2, fixed: 1 });
        // The only unsuppressed new finding is a warning; the suppressed new error does not fail.
        assert_eq!(p.conclusion, Conclusion::Success);
    }

    #[test]
    fn equal_fingerprints_are_matched_as_a_multiset() {
        let f = finding("image-latest", "d.yaml", 3, Some(deployment("web")), Some("a"));
        let never = |_: Side, _: &str, _: u32| None;
        let got = classify(vec![f.clone(), f.clone()], vec![f.clone()], &never);
        let statuses: Vec<Status> = got.iter().map(|f| f.status).collect();
        assert_eq!(statuses, vec![Status::Existing, Status::Fixed]);
        let got = classify(vec![f.clone()], vec![f.clone(), f.clone()], &never);
        let statuses: Vec<Status> = got.iter().map(|f| f.status).collect();
        assert_eq!(statuses, vec![Status::Existing, Status::New]);
    }

    // --- comment placement ---

    /// A Helm finding: values key, template line, rendered position.
    fn helm_finding(rule: &'static str, values_line: u32, template_line: u32) -> Finding {
        let mut f =
            finding(rule, "charts/shop/values.yaml", values_line, Some(deployment("shop")), Some("spec.replicas"));
        f.locations = vec![
            Location { file: "charts/shop/values.yaml".to_string(), line: values_line, column: 1, kind: "values" },
            Location {
                file: "charts/shop/templates/deployment.yaml".to_string(),
                line: template_line,
                column: 3,
                kind: "template",
            },
            Location {
                file: "helm://shop/prod/templates/deployment.yaml".to_string(),
                line: 10,
                column: 3,
                kind: "rendered",
            },
        ];
        f.environments = vec!["staging".to_string(), "prod".to_string()];
        f
    }

    #[test]
    fn comment_goes_on_the_first_location_on_a_changed_line() {
        let f = helm_finding("hpa-replicas-conflict", 1, 9);
        // The values line is untouched, the template line changed: comment on the template.
        let diff = diff_of(&[("charts/shop/templates/deployment.yaml", 9), ("charts/shop/values.yaml", 2)]);
        let p = plan(vec![review(f.clone(), Status::New, "fp1")], &diff, &no_lines);
        assert_eq!(p.comments.len(), 1);
        assert_eq!((p.comments[0].path.as_str(), p.comments[0].line), ("charts/shop/templates/deployment.yaml", 9));
        assert_eq!(p.comments[0].side, "RIGHT");
        assert_eq!(p.comments[0].fingerprints, ["fp1"]);
        assert!(!p.summary.contains("not on a changed line"), "{}", p.summary);
        // The annotation is at the first real location, on a changed line or not.
        assert_eq!(p.annotations.len(), 1);
        assert_eq!((p.annotations[0].path.as_str(), p.annotations[0].start_line), ("charts/shop/values.yaml", 1));
        assert_eq!(p.annotations[0].annotation_level, "failure");
        assert_eq!(p.annotations[0].title, "hpa-replicas-conflict");
        assert!(p.annotations[0].message.contains(f.help.as_ref()));

        // Both changed: the values key wins.
        let diff = diff_of(&[("charts/shop/templates/deployment.yaml", 9), ("charts/shop/values.yaml", 1)]);
        let p = plan(vec![review(f, Status::New, "fp1")], &diff, &no_lines);
        assert_eq!((p.comments[0].path.as_str(), p.comments[0].line), ("charts/shop/values.yaml", 1));
    }

    #[test]
    fn an_untouched_line_inside_a_hunk_is_commented_when_no_location_was_added() {
        // The change removed a guard around `replicas:` in the template: the values line and the template line
        // are both untouched, but the template line is shown in the diff's hunk.
        let f = helm_finding("hpa-replicas-conflict", 1, 9);
        let mut diff = diff_of(&[("charts/shop/templates/deployment.yaml", 20)]);
        diff.context.insert("charts/shop/templates/deployment.yaml".to_string(), BTreeSet::from([8, 9, 10]));
        let p = plan(vec![review(f.clone(), Status::New, "fp1")], &diff, &no_lines);
        assert_eq!((p.comments[0].path.as_str(), p.comments[0].line), ("charts/shop/templates/deployment.yaml", 9));
        assert!(!p.summary.contains("not on a changed line"), "{}", p.summary);
        // An added line wins over a hunk line, whatever the order of the locations.
        diff.context.insert("charts/shop/values.yaml".to_string(), BTreeSet::from([1]));
        diff.added.insert("charts/shop/templates/deployment.yaml".to_string(), BTreeSet::from([9]));
        let p = plan(vec![review(f.clone(), Status::New, "fp1")], &diff, &no_lines);
        assert_eq!((p.comments[0].path.as_str(), p.comments[0].line), ("charts/shop/templates/deployment.yaml", 9));
        // Outside every hunk: the summary.
        let p = plan(vec![review(f, Status::New, "fp1")], &diff_of(&[("other.yaml", 1)]), &no_lines);
        assert!(p.comments.is_empty());
        assert!(p.summary.contains("not on a changed line"), "{}", p.summary);
    }

    #[test]
    fn findings_on_one_line_share_one_comment_most_severe_first() {
        let values = "replicaCount: 3\n";
        let mut warning = helm_finding("image-latest", 1, 9);
        warning.message = "the image has no tag".to_string();
        let error = helm_finding("hpa-replicas-conflict", 1, 9);
        let other = helm_finding("namespace-default", 2, 4);
        let diff = diff_of(&[("charts/shop/values.yaml", 1), ("charts/shop/values.yaml", 2)]);
        let files = [("charts/shop/values.yaml", values)];
        let p = plan(
            vec![
                review(warning, Status::New, "fpw"),
                review(error, Status::New, "fpe"),
                review(other, Status::New, "fpo"),
            ],
            &diff,
            &lines_of(&files),
        );
        assert_eq!(p.comments.len(), 2, "{:#?}", p.comments);
        let shared = &p.comments[0];
        assert_eq!((shared.path.as_str(), shared.line), ("charts/shop/values.yaml", 1));
        assert_eq!(shared.rules, ["hpa-replicas-conflict", "image-latest"]);
        assert_eq!(shared.fingerprints, ["fpe", "fpw"]);
        let body = shared.visible_body();
        let error_at = body.find("`hpa-replicas-conflict`").expect("the error");
        let warning_at = body.find("`image-latest`").expect("the warning");
        assert!(error_at < warning_at, "{body}");
        assert_eq!(body.matches("<details>").count(), 1, "one `Why` block: {body}");
        assert!(body.contains("`/kpath explain hpa-replicas-conflict` or `/kpath explain image-latest`"), "{body}");
        assert!(body.matches("```suggestion").count() <= 1, "{body}");
        assert!(shared.body.ends_with("<!-- kpath:fingerprint=fpe,fpw -->"), "{}", shared.body);
        // The summary still lists each finding commented inline.
        let inline = p.summary.split("#### New findings commented inline").nth(1).unwrap_or("");
        let inline = inline.split("\n#### ").next().unwrap_or("");
        assert_eq!(inline.lines().filter(|l| l.starts_with("- ")).count(), 3, "{}", p.summary);
    }

    #[test]
    fn the_summary_again_without_held_back_comments_lists_only_what_was_commented() {
        let diff = diff_of(&[("charts/shop/values.yaml", 1), ("charts/shop/values.yaml", 2)]);
        let files = [("charts/shop/values.yaml", "replicaCount: 3\nimage: x\n")];
        let p = plan(
            vec![
                review(helm_finding("hpa-replicas-conflict", 1, 9), Status::New, "fp1"),
                review(helm_finding("namespace-default", 2, 4), Status::New, "fp2"),
            ],
            &diff,
            &lines_of(&files),
        );
        let inline_items = |summary: &str| -> Vec<String> {
            let Some(section) = summary.split("#### New findings commented inline").nth(1) else { return Vec::new() };
            let section = section.split("\n#### ").next().unwrap_or("");
            section.lines().filter(|l| l.starts_with("- ")).map(str::to_string).collect()
        };
        assert_eq!(inline_items(&p.summary).len(), 2, "{}", p.summary);
        assert_eq!(p.summary_without(&[]), p.summary);
        let held = |fp: &str| {
            p.comments.iter().filter(|c| c.fingerprints.iter().any(|f| f == fp)).cloned().collect::<Vec<_>>()
        };
        let one = p.summary_without(&held("fp1"));
        let kept = inline_items(&one);
        assert_eq!(kept.len(), 1, "{one}");
        assert!(kept[0].contains("`namespace-default`"), "{one}");
        let none = p.summary_without(&[held("fp1"), held("fp2")].concat());
        assert!(!none.contains("commented inline"), "{none}");
        // Everything else is as it was.
        let (before, inline_and_after) =
            p.summary.split_once("\n#### New findings commented inline").expect("the inline section");
        let after = inline_and_after.find("\n#### ").map_or("", |at| &inline_and_after[at..]);
        assert_eq!(none, format!("{before}{after}"));
    }

    #[test]
    fn a_crowded_line_sends_the_rest_to_the_summary() {
        let findings: Vec<ReviewFinding> = (0..MAX_PER_LINE + 3)
            .map(|i| review(finding("image-latest", "a.yaml", 1, None, None), Status::New, &format!("f{i}")))
            .collect();
        let p = plan(findings, &diff_of(&[("a.yaml", 1)]), &no_lines);
        assert_eq!(p.comments.len(), 1);
        assert_eq!(p.comments[0].fingerprints.len(), MAX_PER_LINE);
        let off = p.summary.split("#### New findings not on a changed line").nth(1).unwrap_or("");
        let off = off.split("\n#### ").next().unwrap_or("");
        assert_eq!(off.lines().filter(|l| l.starts_with("- ")).count(), 3, "{}", p.summary);
    }

    #[test]
    fn rendered_positions_are_never_commented() {
        let mut f = helm_finding("image-latest", 3, 9);
        f.locations.retain(|l| l.kind == "rendered");
        f.file = "helm://shop/prod/templates/deployment.yaml".to_string();
        let diff = diff_of(&[("helm://shop/prod/templates/deployment.yaml", 10)]);
        let p = plan(vec![review(f, Status::New, "fp1")], &diff, &no_lines);
        assert!(p.comments.is_empty());
        assert!(p.annotations.is_empty(), "an annotation needs a repository file");
        assert!(p.summary.contains("not on a changed line"), "{}", p.summary);
        assert!(p.summary.contains("`helm://shop/prod/templates/deployment.yaml:10`"), "{}", p.summary);
    }

    #[test]
    fn new_findings_off_the_diff_go_to_the_summary() {
        let f = finding("namespace-default", "apps/web.yaml", 5, Some(deployment("web")), Some("metadata.namespace"));
        let diff = diff_of(&[("apps/web.yaml", 4), ("apps/web.yaml", 6), ("other.yaml", 5)]);
        let p = plan(vec![review(f, Status::New, "fp1")], &diff, &no_lines);
        assert!(p.comments.is_empty(), "never on a neighbouring line");
        assert!(p.summary.contains("#### New findings not on a changed line"), "{}", p.summary);
        assert!(p.summary.contains("**error** `namespace-default` at `apps/web.yaml:5`: namespace-default message"));
        assert!(!p.summary.contains("commented inline"));
        assert_eq!(p.annotations.len(), 1);
    }

    #[test]
    fn existing_fixed_and_suppressed_findings_get_no_comment() {
        let diff = diff_of(&[("d.yaml", 1), ("d.yaml", 2), ("d.yaml", 3)]);
        let mut suppressed = finding("namespace-default", "d.yaml", 3, Some(deployment("c")), None);
        suppressed.suppressed = Some(Suppression { kind: "waiver", reason: "legacy <b>app</b>".to_string() });
        let findings = vec![
            review(finding("namespace-default", "d.yaml", 1, Some(deployment("a")), None), Status::Existing, "a"),
            review(finding("namespace-default", "d.yaml", 2, Some(deployment("b")), None), Status::Fixed, "b"),
            review(suppressed, Status::New, "c"),
        ];
        let p = plan(findings, &diff, &no_lines);
        assert!(p.comments.is_empty());
        assert!(p.annotations.is_empty());
        assert_eq!(p.conclusion, Conclusion::Success);
        assert_eq!(p.counts, Counts { new: 0, existing: 1, fixed: 1 });
        assert!(p.summary.contains("#### Fixed"), "{}", p.summary);
        assert!(p.summary.contains("#### New findings suppressed in this change"), "{}", p.summary);
        assert!(p.summary.contains("(suppressed by waiver: legacy &lt;b&gt;app&lt;/b&gt;)"), "{}", p.summary);
    }

    /// A small deterministic generator (xorshift), for property-style tests without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn comments_only_ever_target_changed_lines() {
        const FILES: &[&str] =
            &["a.yaml", "b/values.yaml", "b/templates/d.yaml", "helm://b/templates/d.yaml", "Dockerfile"];
        const KINDS: &[&str] = &["values", "template", "rendered", "manifest"];
        const RULES: &[&str] = &["hpa-replicas-conflict", "namespace-default", "image-latest", "secret-in-env"];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let source = |_: &str, line: u32| {
            Some(if line.is_multiple_of(2) { "  replicas: 3" } else { "  namespace: default" }.to_string())
        };
        for round in 0..300 {
            let mut diff = DiffLines::default();
            for _ in 0..rng.below(40) {
                let file = FILES[rng.below(FILES.len() as u64) as usize];
                let lines = if rng.below(3) == 0 { &mut diff.context } else { &mut diff.added };
                lines.entry(file.to_string()).or_default().insert(1 + rng.below(30) as u32);
            }
            let mut findings = Vec::new();
            for i in 0..rng.below(30) {
                let rule = RULES[rng.below(RULES.len() as u64) as usize];
                let mut f = finding(rule, "a.yaml", 1, Some(deployment(&format!("w{i}"))), None);
                f.locations = (0..rng.below(4))
                    .map(|_| Location {
                        file: FILES[rng.below(FILES.len() as u64) as usize].to_string(),
                        line: rng.below(31) as u32,
                        column: 1,
                        kind: KINDS[rng.below(KINDS.len() as u64) as usize],
                    })
                    .collect();
                f.file = FILES[rng.below(FILES.len() as u64) as usize].to_string();
                f.line = rng.below(31) as u32;
                if rng.below(5) == 0 {
                    f.suppressed = Some(Suppression { kind: "comment", reason: "r".to_string() });
                }
                let status = [Status::New, Status::Existing, Status::Fixed][rng.below(3) as usize];
                findings.push(review(f, status, &format!("fp{i}")));
            }
            let p = plan(findings.clone(), &diff, &source);
            let mut commented = 0;
            let mut lines_seen = std::collections::HashSet::new();
            for c in &p.comments {
                assert!(
                    diff.in_hunk(&c.path, c.line),
                    "round {round}: comment on {}:{} outside the diff",
                    c.path,
                    c.line
                );
                assert!(lines_seen.insert((c.path.clone(), c.line)), "round {round}: one comment per line");
                assert!(!c.path.starts_with("helm://"), "round {round}");
                assert!(!c.fingerprints.is_empty() && c.fingerprints.len() <= MAX_PER_LINE);
                assert!(c.body.ends_with(&fingerprint_marker(&c.fingerprints)));
                assert_eq!(fingerprints_in(&c.body), c.fingerprints);
                for fingerprint in &c.fingerprints {
                    let f = findings.iter().find(|f| &f.fingerprint == fingerprint).expect("comment of a finding");
                    assert_eq!(f.status, Status::New);
                    assert!(f.finding.counts());
                    // The first location on a changed line, else the first in a hunk (the finding's own
                    // position when it has no locations).
                    let own =
                        Location { file: f.finding.file.clone(), line: f.finding.line, column: 1, kind: "manifest" };
                    let candidates = if f.finding.locations.is_empty() {
                        std::slice::from_ref(&own)
                    } else {
                        &f.finding.locations[..]
                    };
                    let real = |l: &&Location| l.kind != "rendered" && !l.file.starts_with("helm://");
                    let first = candidates
                        .iter()
                        .filter(real)
                        .find(|l| diff.contains(&l.file, l.line))
                        .or_else(|| candidates.iter().filter(real).find(|l| diff.in_hunk(&l.file, l.line)))
                        .expect("a commented finding has a location in the diff");
                    assert_eq!((first.file.as_str(), first.line), (c.path.as_str(), c.line), "round {round}");
                    if f.finding.rule == "secret-in-env" {
                        assert!(!c.body.contains("suggestion"), "round {round}: {}", c.body);
                    }
                    commented += 1;
                }
            }
            let new = findings.iter().filter(|f| f.status == Status::New && f.finding.counts()).count();
            let off = p
                .summary
                .split("#### New findings not on a changed line")
                .nth(1)
                .map(|s| s.split("\n#### ").next().unwrap_or("").lines().filter(|l| l.starts_with("- ")).count())
                .unwrap_or(0);
            assert_eq!(commented + off, new, "round {round}: every new finding is commented or listed\n{}", p.summary);
            assert!(p.summary.len() <= MAX_SUMMARY);
        }
    }

    // --- comment bodies and suggestions ---

    /// The text of the ```suggestion block of a body, if any.
    fn suggestion_of(body: &str) -> Option<String> {
        let start = body.find("```suggestion\n")? + "```suggestion\n".len();
        let end = start + body[start..].find("```")?;
        Some(body[start..end].trim_end_matches('\n').to_string())
    }

    #[test]
    fn comment_body_says_what_why_and_how() {
        let f = finding("hpa-replicas-conflict", "d.yaml", 7, Some(deployment("web")), Some("spec.replicas"));
        let diff = diff_of(&[("d.yaml", 7)]);
        let p = plan(vec![review(f, Status::New, "0123456789abcdef")], &diff, &no_lines);
        let body = &p.comments[0].body;
        assert!(body.starts_with("**error** `hpa-replicas-conflict`: hpa-replicas-conflict message"), "{body}");
        assert!(body.contains("**Fix:** Delete `spec.replicas` from the workload"), "{body}");
        // Why it matters is one click away, with how to learn more.
        let why = body.split("<details><summary>Why</summary>").nth(1).unwrap_or_default();
        assert!(why.contains("Once an autoscaler owns a workload, the replica count is the autoscaler's to change, and it moves it up and down with load.\n"), "{body}");
        assert!(why.contains("Reply `/kpath explain hpa-replicas-conflict` for the full explanation."), "{body}");
        assert!(why.contains("</details>"), "{body}");
        assert!(body.ends_with("<!-- kpath:fingerprint=0123456789abcdef -->"), "{body}");
        assert_eq!(suggestion_of(body), None, "no source line: no suggestion");
    }

    #[test]
    fn replicas_line_suggestion_deletes_it() {
        let files: &[(&str, &str)] = &[
            ("d.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3 # old\n"),
            ("charts/shop/values.yaml", "replicaCount: 2\nautoscaling:\n  enabled: true\n"),
            ("charts/shop/templates/deployment.yaml", "spec:\n  replicas: {{ .Values.replicaCount }}\n"),
        ];
        let head = lines_of(files);
        let f = finding("hpa-replicas-conflict", "d.yaml", 6, Some(deployment("web")), Some("spec.replicas"));
        let p = plan(vec![review(f, Status::New, "fp")], &diff_of(&[("d.yaml", 6)]), &head);
        assert_eq!(suggestion_of(&p.comments[0].body).as_deref(), Some(""), "{}", p.comments[0].body);
        assert!(p.comments[0].body.contains("```suggestion\n```\n"));

        // A values key line: delete it.
        let f = helm_finding("hpa-replicas-conflict", 1, 2);
        let p = plan(vec![review(f.clone(), Status::New, "fp")], &diff_of(&[("charts/shop/values.yaml", 1)]), &head);
        assert_eq!(suggestion_of(&p.comments[0].body).as_deref(), Some(""));
        // The template's `replicas:` line: delete it.
        let p = plan(
            vec![review(f.clone(), Status::New, "fp")],
            &diff_of(&[("charts/shop/templates/deployment.yaml", 2)]),
            &head,
        );
        assert_eq!(suggestion_of(&p.comments[0].body).as_deref(), Some(""));
        // A mapping key (deleting it would break the YAML): no suggestion.
        let p = plan(
            vec![review(helm_finding("hpa-replicas-conflict", 2, 2), Status::New, "fp")],
            &diff_of(&[("charts/shop/values.yaml", 2)]),
            &head,
        );
        assert_eq!(suggestion_of(&p.comments[0].body), None);
        // A line that is not `replicas:` in a manifest: no suggestion.
        let f = finding("hpa-replicas-conflict", "d.yaml", 4, Some(deployment("web")), Some("spec.replicas"));
        let p = plan(vec![review(f, Status::New, "fp")], &diff_of(&[("d.yaml", 4)]), &head);
        assert_eq!(suggestion_of(&p.comments[0].body), None);
    }

    #[test]
    fn namespace_default_suggests_the_app_name() {
        let manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout-api\n  namespace: default\n  labels:\n    app.kubernetes.io/name: checkout\n";
        let two_docs = "apiVersion: v1\nkind: Service\nmetadata:\n  name: other\n  labels: {app: other}\n  namespace: \"default\" # chosen\n---\nkind: ConfigMap\nmetadata:\n  labels:\n    app: not-this-one\n";
        let templated = "metadata:\n  name: web\n  namespace: default\n  labels:\n    app: {{ .Release.Name }}\n";
        let files: &[(&str, &str)] = &[("m.yaml", manifest), ("two.yaml", two_docs), ("t.yaml", templated)];
        let head = lines_of(files);
        let case = |file: &str, line: u32, name: &str| {
            let f = finding("namespace-default", file, line, Some(deployment(name)), Some("metadata.namespace"));
            let p = plan(vec![review(f, Status::New, "fp")], &diff_of(&[(file, line)]), &head);
            suggestion_of(&p.comments[0].body)
        };
        assert_eq!(case("m.yaml", 5, "checkout-api").as_deref(), Some("  namespace: checkout"));
        // Labels in flow style are not read; the document boundary is respected; quotes and comment kept.
        assert_eq!(case("two.yaml", 6, "other").as_deref(), Some("  namespace: \"other\" # chosen"));
        // A templated label is not a name: the object's name instead.
        assert_eq!(case("t.yaml", 3, "web").as_deref(), Some("  namespace: web"));
        // Not a namespace line: nothing.
        assert_eq!(case("m.yaml", 4, "checkout-api"), None);
        // No valid name at all: nothing.
        assert_eq!(case("t.yaml", 3, "Web_App"), None);
    }

    #[test]
    fn image_latest_gets_no_suggestion() {
        let files: &[(&str, &str)] = &[("d.yaml", "      - image: nginx:latest\n")];
        let head = lines_of(files);
        let f = finding("image-latest", "d.yaml", 1, Some(deployment("web")), None);
        let p = plan(vec![review(f, Status::New, "fp")], &diff_of(&[("d.yaml", 1)]), &head);
        assert_eq!(suggestion_of(&p.comments[0].body), None);
        assert!(!p.comments[0].body.contains("nginx:latest"));
    }

    #[test]
    fn secret_rule_bodies_never_quote_the_line() {
        let files: &[(&str, &str)] = &[("d.yaml", "        - name: PASSWORD\n          value: hunter2-s3cret\n")];
        let head = lines_of(files);
        for rule in ["secret-in-env", "secret-in-configmap", "secret-committed", "aws-static-credentials"] {
            let mut f = finding(
                rule,
                "d.yaml",
                2,
                Some(deployment("web")),
                Some("spec.template.spec.containers[0].env[0].value"),
            );
            f.message =
                "env var `PASSWORD` of container `web` has a literal value that looks like a password".to_string();
            let p = plan(vec![review(f, Status::New, "fp")], &diff_of(&[("d.yaml", 2)]), &head);
            let json = serde_json::to_string(&p).expect("plan serializes");
            assert!(!json.contains("hunter2"), "{rule}: {json}");
            assert!(!render_text(&p).contains("hunter2"));
            assert_eq!(suggestion_of(&p.comments[0].body), None);
        }
    }

    #[test]
    fn repository_text_cannot_open_html_or_forge_a_marker() {
        let mut f = finding("namespace-default", "d.yaml", 5, Some(deployment("web")), None);
        f.message =
            "Deployment `a<b>` is in <!-- kpath:fingerprint=ffffffffffffffff --> <img src=x> ``a`b``".to_string();
        let p = plan(vec![review(f, Status::New, "fp")], &diff_of(&[("d.yaml", 5)]), &no_lines);
        let body = &p.comments[0].body;
        assert!(body.contains("`a<b>`"), "code spans stay literal: {body}");
        assert!(body.contains("&lt;!-- kpath:fingerprint=ffffffffffffffff --&gt; &lt;img src=x&gt; ``a`b``"), "{body}");
        assert_eq!(body.matches("<!--").count(), 1, "{body}");
        assert_eq!(md_inline("x ` y < z"), "x \\` y &lt; z");
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`a"), "`` `a ``");
        assert_eq!(fence_for("x\n```\ny"), "````");
    }

    // --- conclusion and title ---

    #[test]
    fn conclusion_rules() {
        let error = finding("namespace-default", "d.yaml", 5, Some(deployment("a")), None);
        let warning = finding("image-latest", "d.yaml", 9, Some(deployment("b")), None);
        let notice = finding("resources-cpu-limit", "d.yaml", 12, Some(deployment("c")), None);
        let run = |findings: Vec<ReviewFinding>, fail_on: Severity, nothing_relevant: bool| {
            build(PlanInput {
                findings,
                changes: Vec::new(),
                diff: &DiffLines::default(),
                fail_on,
                head_line: &no_lines,
                nothing_relevant,
                config_notes: Vec::new(),
                secrets: Default::default(),
                costs: Vec::new(),
                links: Links::default(),
            })
        };
        let p = run(
            vec![
                review(error.clone(), Status::New, "1"),
                review(error.clone(), Status::New, "2"),
                review(warning.clone(), Status::New, "3"),
            ],
            Severity::Error,
            false,
        );
        assert_eq!(p.conclusion, Conclusion::Failure);
        assert_eq!(p.title, "2 new errors, 1 warning");
        assert!(p.summary.starts_with("### ❌ kpath: 2 new errors\n"), "{}", p.summary);

        let p = run(vec![review(warning.clone(), Status::New, "3")], Severity::Error, false);
        assert_eq!(p.conclusion, Conclusion::Success);
        assert_eq!(p.title, "1 new warning");
        assert!(p.summary.starts_with("### ✅ kpath: no new findings at error level\n"), "{}", p.summary);

        let p = run(
            vec![review(warning.clone(), Status::New, "3"), review(notice.clone(), Status::New, "4")],
            Severity::Warning,
            false,
        );
        assert_eq!(p.conclusion, Conclusion::Failure);
        assert!(p.summary.starts_with("### ❌ kpath: 1 new warning\n"), "{}", p.summary);
        assert_eq!(p.title, "1 new warning, 1 notice");

        let p = run(vec![review(notice.clone(), Status::New, "4")], Severity::Warning, false);
        assert_eq!(p.conclusion, Conclusion::Success);
        assert!(p.summary.starts_with("### ✅ kpath: no new findings at warning level or above\n"));

        // Existing and fixed errors never fail; suppressed new ones neither.
        let mut suppressed = error.clone();
        suppressed.suppressed = Some(Suppression { kind: "comment", reason: "r".to_string() });
        let p = run(
            vec![
                review(error.clone(), Status::Existing, "1"),
                review(error.clone(), Status::Fixed, "2"),
                review(suppressed, Status::New, "3"),
            ],
            Severity::Notice,
            false,
        );
        assert_eq!(p.conclusion, Conclusion::Success);
        assert_eq!(p.title, "No new findings");

        let p = run(Vec::new(), Severity::Error, true);
        assert_eq!(p.conclusion, Conclusion::Neutral);
        assert_eq!(p.title, "Nothing to review");
        assert!(p.summary.starts_with("### ⚪ kpath: nothing to review"), "{}", p.summary);
        assert!(!p.summary.contains("Rendered changes"));
        assert!(render_text(&p).starts_with("kpath review: nothing to review"), "{}", render_text(&p));

        // A failing finding wins over "nothing relevant".
        let p = run(vec![review(error, Status::New, "1")], Severity::Error, true);
        assert_eq!(p.conclusion, Conclusion::Failure);

        let json = serde_json::to_value(&p).expect("plan serializes");
        assert_eq!(json["conclusion"], "failure");
        assert_eq!(json["counts"]["new"], 1);
        assert_eq!(json["findings"][0]["status"], "new");
    }

    // --- the summary ---

    fn change(unit: &str, env: Option<&str>, name: &str, kind: ChangeKind, diff: String) -> ObjectChange {
        ObjectChange {
            object: deployment(name),
            unit: unit.to_string(),
            environment: env.map(str::to_string),
            kind,
            diff,
        }
    }

    fn object_diff(name: &str, lines: usize) -> String {
        let mut d = format!("@@ -1,{lines} +1,{lines} @@\n metadata:\n   name: {name}\n");
        for i in 0..lines {
            let _ = writeln!(d, "-  key{i}: old\n+  key{i}: new");
        }
        d
    }

    #[test]
    fn summary_with_a_huge_diff_keeps_the_verdict_and_every_finding() {
        let changes: Vec<ObjectChange> = (0..4000)
            .map(|i| {
                let env = ["staging", "prod"][i % 2];
                change(
                    "charts/shop",
                    Some(env),
                    &format!("obj-{i:04}"),
                    ChangeKind::Changed,
                    object_diff(&format!("obj-{i:04}"), 1 + i % 13),
                )
            })
            .chain([change("apps/x.yaml", None, "same", ChangeKind::Unchanged, String::new())])
            .collect();
        let mut findings = Vec::new();
        let mut diff_lines = Vec::new();
        for i in 0..40u32 {
            let f =
                finding("namespace-default", &format!("apps/f{i}.yaml"), 5, Some(deployment(&format!("app{i}"))), None);
            if i.is_multiple_of(2) {
                diff_lines.push((format!("apps/f{i}.yaml"), 5));
            }
            findings.push(review(f, if i % 10 == 9 { Status::Fixed } else { Status::New }, &format!("fp{i}")));
        }
        let diff_refs: Vec<(&str, u32)> = diff_lines.iter().map(|(f, l)| (f.as_str(), *l)).collect();
        let diff = diff_of(&diff_refs);
        let p = build(PlanInput {
            findings,
            changes,
            diff: &diff,
            fail_on: Severity::Error,
            head_line: &no_lines,
            nothing_relevant: false,
            config_notes: Vec::new(),
            secrets: Default::default(),
            costs: Vec::new(),
            links: Links::default(),
        });
        assert!(p.summary.len() <= MAX_SUMMARY, "{}", p.summary.len());
        assert!(p.summary.len() > MAX_SUMMARY - 5_000, "the room is used: {}", p.summary.len());
        assert!(p.summary.starts_with("### ❌ kpath: 36 new errors\n"), "{}", &p.summary[..200]);
        for i in 0..40 {
            assert!(p.summary.contains(&format!("`apps/f{i}.yaml:5`")), "finding {i} is listed");
        }
        assert!(p.summary.contains("#### New findings not on a changed line"));
        assert!(p.summary.contains("#### New findings commented inline"));
        assert!(p.summary.contains("#### Fixed"));
        let shown = p.summary.matches("<details>").count();
        assert!(shown > 50 && shown < 4000, "{shown}");
        assert!(
            p.summary.contains(&format!("_{} object diffs were left out to keep this summary under GitHub's 65,536-character limit; run `kpath review` locally to see them._", 4000 - shown)),
            "{}",
            &p.summary[p.summary.len() - 400..]
        );
        assert_eq!(p.summary.matches("<details>").count(), p.summary.matches("</details>").count());
        // The largest diffs went first: every diff shown is no larger than any left out.
        assert!(!p.summary.contains("key12: new"), "the largest diffs are left out");
        assert!(p.summary.contains("obj-0000"), "the smallest are kept");
        assert_eq!(render_markdown(&p), p.summary);
        assert_eq!(p.changes.len(), 4001);
    }

    #[test]
    fn rendered_changes_are_whole_diffs_within_the_limit() {
        let change = |i: usize| ObjectChange {
            object: crate::finding::ObjectId {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: None,
                name: format!("cm{i}"),
            },
            unit: "charts/shop".into(),
            environment: Some("prod".into()),
            kind: ChangeKind::Changed,
            diff: format!("-a: 1\n+a: {}\n", "x".repeat(5_000)),
        };
        let mut p = plan(Vec::new(), &diff_of(&[]), &no_lines);
        p.changes = (0..40).map(change).collect();
        let text = rendered_changes(&p, 65_535);
        assert!(text.len() <= 65_535, "{} bytes", text.len());
        assert_eq!(text.matches("```diff").count() * 2, text.matches("```").count(), "every fence closed");
        assert!(text.contains("more diffs, left out"), "the rest is counted");
        assert_eq!(text.matches("### `charts/shop` · `prod`").count(), 1, "one heading per environment");
    }

    #[test]
    fn summary_with_thousands_of_findings_stays_within_the_limit() {
        let findings: Vec<ReviewFinding> = (0..5000)
            .map(|i| {
                let f = finding(
                    "namespace-default",
                    &format!("apps/some/long/path/f{i}.yaml"),
                    5,
                    Some(deployment(&format!("app{i}"))),
                    None,
                );
                review(f, Status::New, &format!("fp{i}"))
            })
            .collect();
        let p = build(PlanInput {
            findings,
            changes: vec![change("apps", None, "x", ChangeKind::Added, object_diff("x", 3))],
            diff: &DiffLines::default(),
            fail_on: Severity::Error,
            head_line: &no_lines,
            nothing_relevant: false,
            config_notes: Vec::new(),
            secrets: Default::default(),
            costs: Vec::new(),
            links: Links::default(),
        });
        assert!(p.summary.len() <= MAX_SUMMARY, "{}", p.summary.len());
        assert!(p.summary.starts_with("### ❌ kpath: 5000 new errors\n"));
        assert!(
            p.summary.contains("more (see the check run's annotations, or run `kpath review` locally)"),
            "{}",
            &p.summary[p.summary.len() - 600..]
        );
        assert!(p.summary.contains("_1 object diff was left out"), "{}", &p.summary[p.summary.len() - 600..]);
        assert_eq!(p.annotations.len(), 5000);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let mut s = "é".repeat(100);
        truncate(&mut s, 51);
        assert!(s.len() <= 51 && s.ends_with('…'));
    }

    fn sample_plan() -> ReviewPlan {
        let files: &[(&str, &str)] = &[(
            "apps/checkout/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\n  namespace: default\n  labels:\n    app: checkout\nspec:\n  replicas: 3\n",
        )];
        let head = lines_of(files);
        let path = "apps/checkout/deployment.yaml";
        let mut ns = finding(
            "namespace-default",
            path,
            5,
            Some(object("apps/v1", "Deployment", Some("default"), "checkout")),
            Some("metadata.namespace"),
        );
        ns.message = "Deployment `checkout` is in the `default` namespace".to_string();
        let mut replicas = finding(
            "hpa-replicas-conflict",
            path,
            9,
            Some(object("apps/v1", "Deployment", Some("default"), "checkout")),
            Some("spec.replicas"),
        );
        replicas.message = "Deployment `checkout` sets `spec.replicas` but is scaled by HorizontalPodAutoscaler `checkout`: every apply resets the replica count the autoscaler chose; remove it and let `minReplicas` set the floor".to_string();
        let mut helm = helm_finding("image-latest", 3, 12);
        helm.message = "container `web` image `nginx:latest` is not pinned".to_string();
        let mut fixed = finding(
            "probe-readiness-missing",
            path,
            14,
            Some(object("apps/v1", "Deployment", Some("default"), "checkout")),
            None,
        );
        fixed.message = "container `checkout` has no readinessProbe".to_string();
        let existing = finding(
            "resources-cpu-limit",
            path,
            20,
            Some(object("apps/v1", "Deployment", Some("default"), "checkout")),
            None,
        );
        let findings = vec![
            review(ns, Status::New, "1111111111111111"),
            review(replicas, Status::New, "2222222222222222"),
            review(helm, Status::New, "3333333333333333"),
            review(existing, Status::Existing, "4444444444444444"),
            review(fixed, Status::Fixed, "5555555555555555"),
        ];
        let changes = vec![
            change(
                "apps/checkout/deployment.yaml",
                None,
                "checkout",
                ChangeKind::Changed,
                "@@ -6,3 +6,3 @@\n spec:\n-  replicas: 2\n+  replicas: 3\n".to_string(),
            ),
            change(
                "charts/shop",
                Some("prod"),
                "shop",
                ChangeKind::Added,
                "@@ -0,0 +1,2 @@\n+kind: Deployment\n+```\n".to_string(),
            ),
            change("charts/shop", Some("prod"), "same", ChangeKind::Unchanged, String::new()),
        ];
        let diff = diff_of(&[(path, 5), (path, 9), ("charts/shop/values.yaml", 7)]);
        build(PlanInput {
            findings,
            changes,
            diff: &diff,
            fail_on: Severity::Error,
            head_line: &head,
            nothing_relevant: false,
            config_notes: Vec::new(),
            secrets: Default::default(),
            costs: Vec::new(),
            links: Links::default(),
        })
    }

    #[test]
    fn first_sentences_skip_periods_in_code() {
        assert_eq!(first_sentence("`COPY . .` copies everything. Then more."), "`COPY . .` copies everything.");
        assert_eq!(first_sentence("One line\nanother"), "One line");
        assert_eq!(first_sentence("No end"), "No end");
    }

    #[test]
    fn summary_snapshot() {
        let p = sample_plan();
        assert_eq!(p.comments.len(), 2);
        insta::assert_snapshot!("summary", render_markdown(&p));
    }

    #[test]
    fn comment_snapshots() {
        let p = sample_plan();
        let bodies: Vec<String> = p.comments.iter().map(|c| format!("{}:{}\n{}", c.path, c.line, c.body)).collect();
        insta::assert_snapshot!("comments", bodies.join("\n\n---\n\n"));
    }

    #[test]
    fn text_snapshot() {
        insta::assert_snapshot!("text", render_text(&sample_plan()));
    }
}
