//! GitHub's limits on the text kpath sends, at one place: [`Field`], [`fit`], and the Markdown-aware cut.

use std::borrow::Cow;

use crate::review::plan::fingerprint_marker;

/// A text field kpath sends to GitHub. [`Field::limit`] is GitHub's documented limit, which [`fit`]
/// enforces and the fake GitHub checks (422 above it, as GitHub answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A check run's `name`.
    CheckRunName,
    /// A check run's `output.title`.
    CheckRunTitle,
    /// A check run's `output.summary` (Markdown).
    CheckRunSummary,
    /// A check run's `output.text`, the details under the summary (Markdown).
    CheckRunText,
    /// An annotation's `title`.
    AnnotationTitle,
    /// An annotation's `message` (plain text).
    AnnotationMessage,
    /// A check-run button's `label`.
    ActionLabel,
    /// A check-run button's `description`.
    ActionDescription,
    /// A check-run button's `identifier`.
    ActionIdentifier,
    /// An issue comment's `body` (the summary, replies to commands; Markdown).
    CommentBody,
    /// A review's `body` (Markdown).
    ReviewBody,
    /// A review comment's or a reply's `body` (Markdown).
    ReviewCommentBody,
}

impl Field {
    pub const ALL: [Field; 12] = [
        Field::CheckRunName,
        Field::CheckRunTitle,
        Field::CheckRunSummary,
        Field::CheckRunText,
        Field::AnnotationTitle,
        Field::AnnotationMessage,
        Field::ActionLabel,
        Field::ActionDescription,
        Field::ActionIdentifier,
        Field::CommentBody,
        Field::ReviewBody,
        Field::ReviewCommentBody,
    ];

    /// The most bytes GitHub takes in this field. Sources: the check-run endpoints
    /// (<https://docs.github.com/rest/checks/runs#update-a-check-run>: summary 65,535, annotation message
    /// and raw details "64 KB", annotation title 255 characters, action label 20, description 40,
    /// identifier 20; GitHub counts the summary in bytes, github/docs#35252) and the 65,536-character body
    /// GitHub's 422 names for comments, reviews and review comments. "64 KB" is read as 64,000, the
    /// smaller reading. GitHub documents no limit for a check run's name and title: kpath keeps them to
    /// an annotation title's 255.
    pub const fn limit(self) -> usize {
        match self {
            Field::CheckRunName | Field::CheckRunTitle | Field::AnnotationTitle => 255,
            Field::CheckRunSummary | Field::CheckRunText => 65_535,
            Field::AnnotationMessage => 64_000,
            Field::ActionLabel | Field::ActionIdentifier => 20,
            Field::ActionDescription => 40,
            Field::CommentBody | Field::ReviewBody | Field::ReviewCommentBody => 65_536,
        }
    }

    fn is_markdown(self) -> bool {
        matches!(
            self,
            Field::CheckRunSummary
                | Field::CheckRunText
                | Field::CommentBody
                | Field::ReviewBody
                | Field::ReviewCommentBody
        )
    }
}

/// Ends a short field kpath cut.
pub const TRUNCATED: &str = "…(truncated)";
/// Ends a body kpath cut, on a line of its own.
pub const TRUNCATED_NOTE: &str = "\n\n…(truncated: longer than GitHub allows)";
/// How far back from the limit a cut looks for a line's end.
const LINE_SEARCH: usize = 4096;

/// `text` as GitHub takes it in `field`: itself when it fits, else cut (see the module documentation).
pub fn fit(field: Field, text: &str) -> Cow<'_, str> {
    fit_within(field, text, field.limit())
}

/// [`fit`] into `max` bytes (at most the field's limit), for a body that shares its field with a marker.
pub(super) fn fit_within(field: Field, text: &str, max: usize) -> Cow<'_, str> {
    let max = max.min(field.limit());
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    if !field.is_markdown() {
        let multiline = text.contains('\n') && max > LINE_SEARCH;
        let room = max.saturating_sub(TRUNCATED.len() + usize::from(multiline));
        let mut end = floor_char_boundary(text, room);
        if multiline && let Some(newline) = text[..end].rfind('\n').filter(|n| end - n <= LINE_SEARCH) {
            end = newline;
        }
        let newline = if multiline { "\n" } else { "" };
        return Cow::Owned(format!("{}{newline}{TRUNCATED}", &text[..end]));
    }
    let mut room = max.saturating_sub(TRUNCATED_NOTE.len());
    // What the cut leaves open is closed after it; its closing takes room too, so the cut moves back
    // until both fit (a few rounds at most: the closing only shrinks as the text does).
    for _ in 0..8 {
        let end = markdown_cut(text, room);
        let closing = markdown_closing(&text[..end]);
        if end + closing.len() + TRUNCATED_NOTE.len() <= max {
            return Cow::Owned(format!("{}{closing}{TRUNCATED_NOTE}", &text[..end]));
        }
        room = room.saturating_sub(closing.len());
    }
    let end = floor_char_boundary(text, max.saturating_sub(TRUNCATED_NOTE.len()));
    Cow::Owned(format!("{}{TRUNCATED_NOTE}", &text[..end]))
}

/// Where to cut Markdown to keep at most `room` bytes: at the end of a line when one is within
/// [`LINE_SEARCH`] (so no link, emphasis or code span is cut in two), and before an HTML comment the cut
/// would fall inside (its rest would show as text).
fn markdown_cut(text: &str, room: usize) -> usize {
    let mut end = floor_char_boundary(text, room);
    if let Some(newline) = text[..end].rfind('\n').filter(|n| end - n <= LINE_SEARCH) {
        end = newline;
    }
    if let Some(open) = text[..end].rfind("<!--")
        && !text[open..end].contains("-->")
    {
        end = open;
    }
    end
}

/// What closes the constructs `kept` leaves open: a fenced code block (CommonMark: a line of three or more
/// backticks or tildes indented at most three spaces, closed by a line of the same character at least as
/// long) and `<details>` blocks, which the summary uses for diffs.
fn markdown_closing(kept: &str) -> String {
    let mut fence: Option<(char, usize)> = None;
    let mut details = 0usize;
    for line in kept.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let rest = &line[indent..];
        let marker = rest.chars().next().filter(|c| matches!(c, '`' | '~') && indent <= 3);
        if let Some(c) = marker {
            let run = rest.len() - rest.trim_start_matches(c).len();
            if run >= 3 {
                match fence {
                    Some((open, length)) if open == c && run >= length && rest[run..].trim().is_empty() => {
                        fence = None;
                        continue;
                    }
                    // A backtick fence's info string cannot hold a backtick.
                    None if !(c == '`' && rest[run..].contains('`')) => {
                        fence = Some((c, run));
                        continue;
                    }
                    _ => {}
                }
            }
        }
        if fence.is_none() {
            details += line.matches("<details").count();
            details = details.saturating_sub(line.matches("</details>").count());
        }
    }
    let mut closing = String::new();
    if let Some((c, length)) = fence {
        closing.push('\n');
        closing.extend(std::iter::repeat_n(c, length));
    }
    for _ in 0..details {
        closing.push_str("\n\n</details>");
    }
    closing
}

/// The largest character boundary of `text` at or before `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut end = at.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// A review comment's body fitted, its fingerprint marker kept at the end.
pub(super) fn fit_keeping_fingerprint<'a>(body: &'a str, fingerprints: &[String]) -> Cow<'a, str> {
    let field = Field::ReviewCommentBody;
    if body.len() <= field.limit() {
        return Cow::Borrowed(body);
    }
    let marker = fingerprint_marker(fingerprints);
    let text = body.strip_suffix(marker.as_str()).unwrap_or(body);
    let room = field.limit().saturating_sub(marker.len() + 1);
    Cow::Owned(format!("{}\n{marker}", fit_within(field, text, room)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::github::{CHECK_NAME, MAX_COMMENT, RERUN_ACTION};
    use crate::review::plan::fingerprints_in;

    #[test]
    fn cutting_keeps_characters_whole_and_the_fingerprint() {
        assert_eq!(fit(Field::ActionLabel, "Re-run"), "Re-run");
        let title = "é".repeat(200);
        let cut = fit(Field::AnnotationTitle, &title);
        assert!(cut.len() <= 255 && cut.ends_with(TRUNCATED) && cut.starts_with("éé"), "{cut}");
        let marker = "<!-- kpath:fingerprint=0123456789abcdef -->";
        let body = format!("{}\n\n{marker}", "y".repeat(MAX_COMMENT));
        let cut = fit_keeping_fingerprint(&body, &["0123456789abcdef".to_string()]);
        assert!(cut.len() <= MAX_COMMENT && cut.ends_with(&format!("{TRUNCATED_NOTE}\n{marker}")));
        assert_eq!(fingerprints_in(&cut), ["0123456789abcdef"]);
    }

    /// Every field, given three times its limit in two-, three- and four-byte characters, comes out within
    /// the limit, on a character boundary, marked; text within the limit is sent as it is.
    #[test]
    fn every_field_is_cut_to_githubs_limit() {
        for field in Field::ALL {
            let limit = field.limit();
            for unit in ["x", "é", "✓", "🦀", "line\n"] {
                let text = unit.repeat(3 * limit / unit.len() + 1);
                let cut = fit(field, &text);
                assert!(cut.len() <= limit, "{field:?} with {unit:?}: {} bytes", cut.len());
                assert!(cut.ends_with(TRUNCATED) || cut.ends_with(TRUNCATED_NOTE), "{field:?}: marked");
                let within = unit.repeat(limit / unit.len());
                assert!(matches!(fit(field, &within), Cow::Borrowed(_)), "{field:?}: kept whole at the limit");
            }
        }
        // What kpath itself sends always fits whole.
        for (field, text) in [
            (Field::CheckRunName, CHECK_NAME),
            (Field::ActionLabel, "Re-run"),
            (Field::ActionDescription, "Review this commit again"),
            (Field::ActionIdentifier, RERUN_ACTION),
        ] {
            assert!(matches!(fit(field, text), Cow::Borrowed(_)), "{field:?}");
        }
    }

    /// Markdown is cut at a line's end, never inside an HTML comment, and a fence or `<details>` it leaves
    /// open is closed.
    #[test]
    fn markdown_is_cut_between_its_constructs() {
        let limit = Field::CheckRunSummary.limit();
        let diff: String = (0..10_000).map(|i| format!("+line {i} with `code` and [a link](https://x)\n")).collect();
        let summary =
            format!("### kpath\n\n<details><summary>a (changed)</summary>\n\n````diff\n{diff}````\n\n</details>\n");
        let cut = fit(Field::CheckRunSummary, &summary);
        assert!(cut.len() <= limit);
        let body = cut.strip_suffix(TRUNCATED_NOTE).expect("marked");
        assert!(body.ends_with("\n````\n\n</details>"), "{}", &body[body.len() - 100..]);
        let before = body.strip_suffix("\n````\n\n</details>").expect("closed");
        assert!(before.ends_with("(https://x)"), "cut at a line's end: {}", &before[before.len() - 60..]);
        assert_eq!(markdown_closing(body), "", "nothing left open");
        // A tilde fence, and a backtick line that is not a fence (it has a backtick in its info string).
        assert_eq!(markdown_closing("~~~~yaml\na: 1\n```\n"), "\n~~~~");
        assert_eq!(markdown_closing("```not `a fence\ntext"), "");
        assert_eq!(markdown_closing("```\na\n```\n<details>\n"), "\n\n</details>");

        // A cut that would fall inside an HTML comment goes before it.
        let text = format!("{}<!-- {} -->", "a ".repeat(30_000), "hidden ".repeat(2_000));
        let cut = fit(Field::CommentBody, &text);
        assert!(!cut.contains("<!--") && cut.len() <= MAX_COMMENT, "{}", &cut[cut.len() - 60..]);
    }
}
