//! `/kpath …` commands in pull-request comments: Markdown-aware parsing, "did you mean" and the replies.
//!
//! A command is a line of ordinary comment text that starts (after optional whitespace) with `/kpath`.
//! Text that GitHub does not render as ordinary text is never a command: fenced and indented code
//! blocks, `<pre>`-like HTML blocks, inline code spans, block quotes (including their lazy
//! continuation lines), HTML comments, and link texts and destinations. So quoting someone's command,
//! or kpath's own comments (which write commands in code spans), never runs anything.
//!
//! The Markdown is read by `pulldown-cmark` (CommonMark with GitHub's tables, task lists and
//! strikethrough), so what counts as a command is what GitHub shows as ordinary text.

use std::fmt::Write as _;

/// At most this many commands are taken from one comment; later ones are ignored.
pub const MAX_COMMANDS: usize = 10;

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/kpath explain` (rule: `None`) or `/kpath explain RULE-ID` (a known rule id, lower-case).
    Explain { rule: Option<String> },
    /// `/kpath recheck`
    Recheck,
    /// `/kpath help`
    Help,
}

/// A `/kpath` line that is not a valid command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// `/kpath explian` → suggestion "explain"; `/kpath` alone → `given` empty, no suggestion.
    UnknownCommand { given: String, suggestion: Option<&'static str> },
    /// `/kpath explain image-lates` → suggestion "image-latest".
    UnknownRule { given: String, suggestion: Option<&'static str> },
    /// Extra words: `/kpath recheck now please` → command "recheck", extra "now please".
    UnexpectedArguments { command: &'static str, extra: String },
}

/// The commands, their arguments and descriptions, in the order `help` lists them.
const COMMANDS: &[(&str, &str, &str)] = &[
    ("explain", " RULE-ID", "why the rule matters, how to fix it, and a bad and a good example."),
    ("explain", "", "the full explanation of every rule with a finding on this pull request."),
    ("recheck", "", "review the pull request's current head again."),
    ("help", "", "this list."),
];

/// Words people use for a command, offered as "did you mean" (never accepted as the command itself).
const ALIASES: &[(&str, &str)] = &[
    ("rerun", "recheck"),
    ("re-run", "recheck"),
    ("retry", "recheck"),
    ("run", "recheck"),
    ("rescan", "recheck"),
    ("why", "explain"),
    ("describe", "explain"),
    ("?", "help"),
    ("usage", "help"),
    ("commands", "help"),
];

/// Every `/kpath …` line of the comment, in order, each parsed (at most [`MAX_COMMANDS`]; more are ignored).
pub fn parse(body: &str) -> Vec<Result<Command, CommandError>> {
    command_lines(body).iter().map(|line| parse_line(line)).collect()
}

/// The reply text for an error (Markdown), ending with the list of commands.
pub fn error_reply(error: &CommandError) -> String {
    let mut b = String::new();
    match error {
        CommandError::UnknownCommand { given, suggestion } => {
            if given.is_empty() {
                b.push_str("`/kpath` needs a command.");
            } else {
                let _ = write!(b, "I don't know {}.", code_span(&format!("/kpath {}", shorten(given))));
            }
            if let Some(s) = suggestion {
                let _ = write!(b, " Did you mean `/kpath {s}`?");
            }
        }
        CommandError::UnknownRule { given, suggestion } => {
            let _ = write!(b, "There is no rule {}.", code_span(shorten(given)));
            if let Some(s) = suggestion {
                let _ = write!(b, " Did you mean `{s}`? Reply `/kpath explain {s}`.");
            }
            b.push_str("\n\n<details><summary>All rule ids</summary>\n\n");
            let ids: Vec<String> = crate::rules::RULES.iter().map(|r| format!("`{}`", r.id)).collect();
            b.push_str(&ids.join(", "));
            b.push_str("\n\n</details>");
        }
        CommandError::UnexpectedArguments { command, extra } => {
            let takes = if *command == "explain" { "takes one rule id at most" } else { "takes no arguments" };
            let _ = write!(
                b,
                "`/kpath {command}` {takes}, so I did nothing: I don't know what to do with {}.",
                code_span(shorten(extra))
            );
        }
    }
    b.push_str("\n\n");
    b.push_str(&help_text());
    b
}

/// The `/kpath help` reply (Markdown): each command with one line of description.
pub fn help_text() -> String {
    let mut b = String::from("**kpath commands** (each on a line of its own in a pull-request comment):\n\n");
    for (word, args, doc) in COMMANDS {
        let _ = writeln!(b, "- `/kpath {word}{args}`: {doc}");
    }
    b
}

// ---------------------------------------------------------------------------------------------------
// Parsing one command line
// ---------------------------------------------------------------------------------------------------

/// Parses the visible text of a command line, which starts with `/kpath` and whitespace (or ends).
fn parse_line(line: &str) -> Result<Command, CommandError> {
    let mut words = line.split_whitespace().skip(1).map(clean_word).filter(|w| !w.is_empty());
    let Some(word) = words.next() else {
        return Err(CommandError::UnknownCommand { given: String::new(), suggestion: None });
    };
    let args: Vec<&str> = words.collect();
    let extra = |args: &[&str]| args.join(" ");
    match word.to_ascii_lowercase().as_str() {
        "explain" => {
            if args.len() > 1 {
                return Err(CommandError::UnexpectedArguments { command: "explain", extra: extra(&args[1..]) });
            }
            let Some(given) = args.first() else { return Ok(Command::Explain { rule: None }) };
            let id = given.to_lowercase();
            match crate::rules::find(&id) {
                Some(rule) => Ok(Command::Explain { rule: Some(rule.id.to_string()) }),
                None => {
                    // Nothing much longer than the longest rule id is a typo of one (and strsim is
                    // quadratic-ish on long input).
                    let suggestion = if id.len() <= 80 { crate::rules::closest(&id) } else { None };
                    Err(CommandError::UnknownRule { given: (*given).to_string(), suggestion })
                }
            }
        }
        "recheck" if args.is_empty() => Ok(Command::Recheck),
        "recheck" => Err(CommandError::UnexpectedArguments { command: "recheck", extra: extra(&args) }),
        "help" if args.is_empty() => Ok(Command::Help),
        "help" => Err(CommandError::UnexpectedArguments { command: "help", extra: extra(&args) }),
        _ => Err(CommandError::UnknownCommand { given: word.to_string(), suggestion: suggest_command(word) }),
    }
}

/// A word without the backticks around it (`` `image-latest` ``) and trailing sentence punctuation.
fn clean_word(word: &str) -> &str {
    let w = word.trim_matches('`');
    let trimmed = w.trim_end_matches(['.', ',', ';', ':', '!', '?']);
    // `?` alone stays a word (an alias of `help`).
    if trimmed.is_empty() { w } else { trimmed }
}

/// The command closest to an unknown word: an alias, else Jaro-Winkler similarity of at least 0.8.
fn suggest_command(word: &str) -> Option<&'static str> {
    if word.is_empty() || word.len() > 32 {
        return None;
    }
    let word = word.to_lowercase();
    if let Some((_, command)) = ALIASES.iter().find(|(alias, _)| *alias == word) {
        return Some(command);
    }
    ["explain", "recheck", "help"]
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

// ---------------------------------------------------------------------------------------------------
// Markdown: finding the visible `/kpath` lines
// ---------------------------------------------------------------------------------------------------

/// `/kpath` (any case) followed by whitespace or the end.
fn starts_with_kpath(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 6 && b[..6].eq_ignore_ascii_case(b"/kpath") && text[6..].chars().next().is_none_or(char::is_whitespace)
}

/// `body` with the tags that open and close CommonMark's raw HTML blocks in lower case.
fn lowercase_raw_tags(body: &str) -> String {
    let mut out = body.to_string();
    let lower = body.to_ascii_lowercase();
    for tag in ["<pre", "</pre>", "<script", "</script>", "<style", "</style>", "<textarea", "</textarea>"] {
        for (i, _) in lower.match_indices(tag) {
            // ASCII-only ranges: lowering them keeps every offset and character boundary.
            out.replace_range(i..i + tag.len(), tag);
        }
    }
    out
}

/// The visible text of every `/kpath` command line, in order, at most [`MAX_COMMANDS`].
///
/// The comment is read as GitHub reads it (CommonMark with GitHub's extensions, by `pulldown-cmark`). Only
/// ordinary text counts: code blocks, HTML blocks, block quotes, headings and tables are left out; inline
/// code and links are kept as they are written (so a line that starts with one does not start with
/// `/kpath`), with their line breaks flattened; HTML comments are removed.
fn command_lines(body: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    // CommonMark's raw HTML blocks (`<pre>`, `<script>`, `<style>`, `<textarea>`) start and end whatever the
    // tags' case; their tags are lower-cased first (same length, so offsets hold).
    let body = &lowercase_raw_tags(body);
    // `[text][ref]` to no definition is still link syntax to a reader: it is left out like a link. A lone
    // `[text]` is only brackets.
    let mut as_link = |broken: pulldown_cmark::BrokenLink<'_>| {
        use pulldown_cmark::LinkType;
        let explicit = matches!(
            broken.link_type,
            LinkType::Reference | LinkType::ReferenceUnknown | LinkType::Collapsed | LinkType::CollapsedUnknown
        );
        explicit.then_some((pulldown_cmark::CowStr::Borrowed(""), pulldown_cmark::CowStr::Borrowed("")))
    };
    let mut text = String::new();
    // Containers whose content is not ordinary text, and links being read, as depths.
    let mut hidden = 0usize;
    let mut link: Option<(usize, std::ops::Range<usize>)> = None;
    let flat = |source: &str| source.replace(['\n', '\r'], " ");
    let mut item_start = false;
    for (event, range) in Parser::new_with_broken_link_callback(body, options, Some(&mut as_link)).into_offset_iter() {
        if let Some((depth, start)) = &mut link {
            match event {
                Event::Start(Tag::Link { .. } | Tag::Image { .. }) => *depth += 1,
                Event::End(TagEnd::Link | TagEnd::Image) if *depth > 1 => *depth -= 1,
                Event::End(TagEnd::Link | TagEnd::Image) => {
                    text.push_str(&flat(&body[start.start..range.end.max(start.end)]));
                    link = None;
                }
                _ => {}
            }
            continue;
        }
        if !matches!(event, Event::Start(Tag::Item | Tag::Paragraph)) {
            item_start = false;
        }
        match event {
            Event::Start(
                Tag::BlockQuote(_)
                | Tag::CodeBlock(_)
                | Tag::HtmlBlock
                | Tag::Heading { .. }
                | Tag::Table(_)
                | Tag::FootnoteDefinition(_)
                | Tag::MetadataBlock(_),
            ) => hidden += 1,
            Event::End(
                TagEnd::BlockQuote(_)
                | TagEnd::CodeBlock
                | TagEnd::HtmlBlock
                | TagEnd::Heading(_)
                | TagEnd::Table
                | TagEnd::FootnoteDefinition
                | TagEnd::MetadataBlock(_),
            ) => {
                hidden = hidden.saturating_sub(1);
                text.push('\n');
            }
            _ if hidden > 0 => {}
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) => link = Some((1, range)),
            // Emphasis markers stay: `**/kpath recheck**` does not start with `/kpath`.
            Event::Start(Tag::Emphasis | Tag::Strong | Tag::Strikethrough) => text.push('*'),
            Event::Text(t) => {
                // An escaped character (`\/kpath`) was written not to be read as syntax: keep the escape.
                let escaped = body[range.clone()].starts_with('\\') || body[..range.start].ends_with('\\');
                if escaped && !t.starts_with('\\') {
                    text.push('\\');
                }
                text.push_str(&t);
            }
            Event::Code(_) => text.push_str(&flat(&body[range])),
            Event::SoftBreak | Event::HardBreak => text.push('\n'),
            // A list item's first line starts with its marker (`- /kpath recheck` is not a command); its
            // continuation lines start lines of their own.
            Event::Start(Tag::Item) => {
                text.push_str("\n-");
                item_start = true;
            }
            Event::Start(Tag::Paragraph) if item_start => {}
            Event::Start(Tag::Paragraph) | Event::End(TagEnd::Paragraph | TagEnd::Item) => text.push('\n'),
            // HTML in a paragraph (comments included) is not text GitHub shows.
            Event::InlineHtml(_) | Event::Html(_) => {}
            _ => {}
        }
    }
    text.lines()
        .map(str::trim_start)
        .filter(|line| starts_with_kpath(line))
        .take(MAX_COMMANDS)
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------------

/// User text echoed in a reply: at most 60 characters.
fn shorten(text: &str) -> &str {
    match text.char_indices().nth(60) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// `text` as an inline code span that its own backticks cannot break (and that never mentions or links).
fn code_span(text: &str) -> String {
    let text: String = text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
    let text = text.as_str();
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explain(rule: &str) -> Result<Command, CommandError> {
        Ok(Command::Explain { rule: Some(rule.to_string()) })
    }

    fn cmds(body: &str) -> Vec<Result<Command, CommandError>> {
        parse(body)
    }

    #[test]
    fn simple_commands() {
        assert_eq!(cmds("/kpath recheck"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("/kpath help\n"), vec![Ok(Command::Help)]);
        assert_eq!(cmds("/kpath explain"), vec![Ok(Command::Explain { rule: None })]);
        assert_eq!(cmds("/kpath explain image-latest"), vec![explain("image-latest")]);
        assert_eq!(cmds("Thanks!\n\n  /kpath   recheck  \n\nBye"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("Hi\n\t/kpath recheck"), vec![Ok(Command::Recheck)]);
        // A line of a paragraph, not only a paragraph of its own.
        assert_eq!(cmds("Fixed the probes.\n/kpath recheck\nthanks"), vec![Ok(Command::Recheck)]);
        assert!(cmds("").is_empty());
        assert!(cmds("no commands here").is_empty());
    }

    #[test]
    fn case_insensitive() {
        assert_eq!(cmds("/KPATH RECHECK"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("/Kpath Help"), vec![Ok(Command::Help)]);
        assert_eq!(cmds("/kPath EXPLAIN Image-Latest"), vec![explain("image-latest")]);
    }

    #[test]
    fn friendly_spelling() {
        assert_eq!(cmds("/kpath explain `image-latest`"), vec![explain("image-latest")]);
        assert_eq!(cmds("/kpath recheck."), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("/kpath recheck!"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("/kpath explain: image-latest"), vec![explain("image-latest")]);
        assert_eq!(cmds("/kpath recheck <!-- because the cache was stale -->"), vec![Ok(Command::Recheck)]);
    }

    #[test]
    fn fenced_code_is_ignored() {
        assert!(cmds("```\n/kpath recheck\n```").is_empty());
        assert!(cmds("~~~\n/kpath recheck\n~~~").is_empty());
        assert!(cmds("```sh\n/kpath recheck\n```").is_empty());
        assert!(cmds("  ```\n/kpath recheck\n  ```").is_empty());
        // A longer fence is only closed by one at least as long, of the same character.
        let body = "````\n```\n/kpath recheck\n```\n/kpath help\n````\n/kpath explain";
        assert_eq!(cmds(body), vec![Ok(Command::Explain { rule: None })]);
        assert!(cmds("~~~~~\n~~~\n```\n/kpath recheck\n~~~~").is_empty());
        assert_eq!(cmds("~~~\n```\n~~~\n/kpath help"), vec![Ok(Command::Help)]);
        // A closing fence has nothing after it.
        assert!(cmds("```\n``` x\n/kpath recheck").is_empty());
        // Unclosed: the rest of the comment is code.
        assert_eq!(cmds("/kpath help\n```\n/kpath recheck\n\n\n/kpath explain"), vec![Ok(Command::Help)]);
        assert!(cmds("~~~~\n/kpath recheck\n~~~\n/kpath help").is_empty());
        // A fence in a list item.
        assert!(cmds("- ```\n  /kpath recheck\n  ```").is_empty());
        assert_eq!(cmds("- ```\n  code\n/kpath recheck"), vec![Ok(Command::Recheck)]);
        // Three backticks with a backtick after them are inline code, not a fence.
        assert_eq!(cmds("``` a ` b\n/kpath recheck"), vec![Ok(Command::Recheck)]);
    }

    #[test]
    fn indented_code_is_ignored() {
        assert!(cmds("Run this:\n\n    /kpath recheck\n").is_empty());
        assert!(cmds("    /kpath recheck").is_empty());
        assert!(cmds("\t/kpath recheck").is_empty()); // a tab is four columns
        assert!(cmds("Run this:\n\n    echo\n\n    /kpath recheck\n").is_empty());
        // Indented code cannot interrupt a paragraph: this is a paragraph line.
        assert_eq!(cmds("Please\n    /kpath recheck"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("    code\n/kpath recheck"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("# Title\n    code\n\n/kpath help"), vec![Ok(Command::Help)]);
    }

    #[test]
    fn inline_code_is_ignored() {
        assert!(cmds("`/kpath recheck`").is_empty());
        assert!(cmds("Reply `/kpath explain hpa-replicas-conflict` for the full explanation.").is_empty());
        // A code span can cross lines inside a paragraph.
        assert!(cmds("Type `\n/kpath recheck\n` to recheck").is_empty());
        assert!(cmds("Type ``a ` b\n/kpath recheck\n`` to recheck").is_empty());
        // ...but not paragraphs, and an unmatched backtick run is literal.
        assert_eq!(cmds("Type `\n\n/kpath recheck\n`"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("a ``\n/kpath recheck\n`"), vec![Ok(Command::Recheck)]);
        // An escaped backtick opens nothing.
        assert_eq!(cmds("a \\`\n/kpath recheck\n`"), vec![Ok(Command::Recheck)]);
    }

    #[test]
    fn quotes_are_ignored() {
        assert!(cmds("> /kpath recheck").is_empty());
        assert!(cmds("   > /kpath recheck").is_empty());
        assert!(cmds(">/kpath recheck").is_empty());
        assert!(cmds("> > /kpath recheck").is_empty());
        assert!(cmds(">> /kpath recheck\n> > > /kpath help").is_empty());
        assert!(cmds("> quoted\n>\n> > /kpath recheck\n> > /kpath help").is_empty());
        assert_eq!(cmds("> /kpath recheck\n\n/kpath help"), vec![Ok(Command::Help)]);
        // A line straight after quoted text is a lazy continuation of the quote (GitHub shows it quoted).
        assert!(cmds("> Could you recheck?\n/kpath recheck").is_empty());
        // ...but not after a quoted blank line, heading or code.
        assert_eq!(cmds("> Could you recheck?\n>\n/kpath recheck"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("> ```\n> /kpath help\n/kpath recheck"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("> ```\n> x\n> ```\n/kpath recheck"), vec![Ok(Command::Recheck)]);
        // An indented line continues the quoted paragraph rather than starting code.
        assert!(cmds("> text\n    ```\n/kpath recheck").is_empty());
    }

    #[test]
    fn command_must_start_the_line() {
        assert!(cmds("please run /kpath recheck").is_empty());
        assert!(cmds("**/kpath recheck**").is_empty());
        assert!(cmds("- /kpath recheck").is_empty());
        assert!(cmds("# /kpath recheck").is_empty());
        assert!(cmds("\\/kpath recheck").is_empty());
        // Continuation lines of a list item start a line.
        assert_eq!(cmds("- fixed it\n  /kpath recheck"), vec![Ok(Command::Recheck)]);
    }

    #[test]
    fn no_space_is_not_a_command() {
        assert!(cmds("/kpathrecheck").is_empty());
        assert!(cmds("/kpath-recheck").is_empty());
        assert!(cmds("/kpaths help").is_empty());
        assert!(cmds("/kpat recheck").is_empty());
    }

    #[test]
    fn multiple_commands_in_order_at_most_ten() {
        let body = "/kpath explain image-latest\nand\n/kpath recheck\n\n/kpath foo\n/kpath help";
        assert_eq!(
            cmds(body),
            vec![
                explain("image-latest"),
                Ok(Command::Recheck),
                Err(CommandError::UnknownCommand { given: "foo".into(), suggestion: None }),
                Ok(Command::Help),
            ]
        );
        let many = "/kpath recheck\n".repeat(25);
        assert_eq!(cmds(&many).len(), MAX_COMMANDS);
        let many = "/kpath recheck\n\n".repeat(25);
        assert_eq!(cmds(&many).len(), MAX_COMMANDS);
    }

    #[test]
    fn unknown_command_with_suggestion() {
        let unknown =
            |given: &str, suggestion| vec![Err(CommandError::UnknownCommand { given: given.to_string(), suggestion })];
        assert_eq!(cmds("/kpath explian"), unknown("explian", Some("explain")));
        assert_eq!(cmds("/kpath Rechek"), unknown("Rechek", Some("recheck")));
        assert_eq!(cmds("/kpath check"), unknown("check", Some("recheck")));
        assert_eq!(cmds("/kpath hlep"), unknown("hlep", Some("help")));
        assert_eq!(cmds("/kpath rerun"), unknown("rerun", Some("recheck")));
        assert_eq!(cmds("/kpath approve"), unknown("approve", None));
        assert_eq!(cmds("/kpath"), unknown("", None));
        assert_eq!(cmds("/kpath   "), unknown("", None));
        assert_eq!(cmds(&format!("/kpath {}", "x".repeat(100_000))).len(), 1);
    }

    #[test]
    fn unknown_rule_with_suggestion() {
        assert_eq!(
            cmds("/kpath explain image-lates"),
            vec![Err(CommandError::UnknownRule { given: "image-lates".into(), suggestion: Some("image-latest") })]
        );
        assert_eq!(
            cmds("/kpath explain Probe-Readines-Missing"),
            vec![Err(CommandError::UnknownRule {
                given: "Probe-Readines-Missing".into(),
                suggestion: Some("probe-readiness-missing")
            })]
        );
        assert_eq!(
            cmds("/kpath explain zzz"),
            vec![Err(CommandError::UnknownRule { given: "zzz".into(), suggestion: None })]
        );
        let long = format!("/kpath explain image-latest{}", "x".repeat(1_000_000));
        assert!(matches!(&cmds(&long)[..], [Err(CommandError::UnknownRule { suggestion: None, .. })]));
    }

    #[test]
    fn extra_arguments() {
        assert_eq!(
            cmds("/kpath recheck now please"),
            vec![Err(CommandError::UnexpectedArguments { command: "recheck", extra: "now please".into() })]
        );
        assert_eq!(
            cmds("/kpath help me"),
            vec![Err(CommandError::UnexpectedArguments { command: "help", extra: "me".into() })]
        );
        assert_eq!(
            cmds("/kpath explain image-latest   please  "),
            vec![Err(CommandError::UnexpectedArguments { command: "explain", extra: "please".into() })]
        );
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        assert_eq!(cmds("Hi\r\n/kpath recheck\r\n"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("```\r\n/kpath recheck\r\n```\r\n/kpath help\r\n"), vec![Ok(Command::Help)]);
        assert_eq!(cmds("/kpath explain image-latest\r\n"), vec![explain("image-latest")]);
        assert_eq!(cmds("> /kpath help\r\n\r\n/kpath recheck\r\n"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("a\r/kpath recheck\r"), vec![Ok(Command::Recheck)]);
    }

    #[test]
    fn html_comments_are_ignored() {
        assert!(cmds("<!-- /kpath recheck -->").is_empty());
        assert!(cmds("<!--\n/kpath recheck\n-->").is_empty());
        assert!(cmds("<!--\n\n/kpath recheck\n\n-->").is_empty());
        // Unclosed: the rest of the comment.
        assert!(cmds("<!--\n/kpath recheck").is_empty());
        // Inline, across lines of a paragraph.
        assert!(cmds("Thanks <!-- note:\n/kpath recheck\n--> bye").is_empty());
        assert_eq!(cmds("<!-- x -->\n/kpath recheck"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("<!-->\n/kpath recheck"), vec![Ok(Command::Recheck)]);
        // Our own comments' fingerprint markers.
        assert_eq!(cmds("<!-- kpath:fingerprint=256855be929b195f -->\n/kpath help"), vec![Ok(Command::Help)]);
        // In a code span, `<!--` is text.
        assert_eq!(cmds("`<!--`\n/kpath recheck\n-->"), vec![Ok(Command::Recheck)]);
    }

    #[test]
    fn raw_html_blocks_are_ignored() {
        assert!(cmds("<pre>\n/kpath recheck\n</pre>").is_empty());
        assert_eq!(cmds("<PRE>\n/kpath recheck\n</PRE>\n/kpath help"), vec![Ok(Command::Help)]);
        // Other HTML shows its text.
        assert_eq!(cmds("<details>\n\n/kpath recheck\n\n</details>"), vec![Ok(Command::Recheck)]);
    }

    #[test]
    fn links_are_ignored() {
        assert!(cmds("[see\n/kpath recheck](https://example.com)").is_empty());
        assert!(cmds("![image\n/kpath recheck][ref]").is_empty());
        // A link destination never spans lines (CommonMark), so this is no link: GitHub shows the second line
        // as text, and it is read as the (mistyped) command it shows.
        assert!(matches!(
            &cmds("[a](https://example.com/\n/kpath recheck)")[..],
            [Err(CommandError::UnknownCommand { .. })]
        ));
        // Brackets that are no link are text.
        assert_eq!(cmds("[note\n/kpath recheck\nend]"), vec![Ok(Command::Recheck)]);
        assert_eq!(cmds("[docs](https://example.com)\n/kpath recheck"), vec![Ok(Command::Recheck)]);
    }

    #[test]
    fn kpaths_own_text_is_no_command() {
        assert!(parse(&help_text()).is_empty());
        let errors = [
            CommandError::UnknownCommand { given: "explian".into(), suggestion: Some("explain") },
            CommandError::UnknownCommand { given: String::new(), suggestion: None },
            CommandError::UnknownRule { given: "image-lates".into(), suggestion: Some("image-latest") },
            CommandError::UnknownRule { given: "`\n/kpath recheck".into(), suggestion: None },
            CommandError::UnexpectedArguments { command: "recheck", extra: "now please".into() },
        ];
        for e in &errors {
            assert!(parse(&error_reply(e)).is_empty(), "{}", error_reply(e));
        }
    }

    #[test]
    fn replies() {
        let reply = error_reply(&CommandError::UnknownCommand { given: "explian".into(), suggestion: Some("explain") });
        assert!(reply.starts_with("I don't know `/kpath explian`. Did you mean `/kpath explain`?\n\n"), "{reply}");
        assert!(reply.contains("`/kpath recheck`"), "{reply}");
        let reply = error_reply(&CommandError::UnknownCommand { given: String::new(), suggestion: None });
        assert!(reply.starts_with("`/kpath` needs a command.\n\n"), "{reply}");
        let reply =
            error_reply(&CommandError::UnknownRule { given: "image-lates".into(), suggestion: Some("image-latest") });
        assert!(reply.starts_with("There is no rule `image-lates`. Did you mean `image-latest`?"), "{reply}");
        assert!(reply.contains("`probe-readiness-missing`"), "{reply}");
        let reply = error_reply(&CommandError::UnexpectedArguments { command: "recheck", extra: "now please".into() });
        assert!(reply.starts_with("`/kpath recheck` takes no arguments"), "{reply}");
        assert!(reply.contains("`now please`"), "{reply}");
        // Echoed text cannot break out of its code span, and is kept short.
        let reply = error_reply(&CommandError::UnknownCommand { given: "a`b".into(), suggestion: None });
        assert!(reply.starts_with("I don't know ``/kpath a`b``."), "{reply}");
        let reply = error_reply(&CommandError::UnknownCommand { given: "é".repeat(500), suggestion: None });
        assert!(reply.len() < 2000, "{reply}");
        let help = help_text();
        for word in ["explain RULE-ID", "explain`", "recheck", "help"] {
            assert!(help.contains(&format!("`/kpath {word}")), "{help}");
        }
        assert_eq!(help.lines().filter(|l| l.starts_with("- ")).count(), COMMANDS.len());
    }

    #[test]
    fn a_megabyte_and_pathological_bodies_parse() {
        let mut body = String::new();
        while body.len() < 1_000_000 {
            body.push_str("Some text with `code` and [a link](https://example.com) <!-- c --> and > and\n");
            body.push_str("[[[[ ]( `` ``` <!-- ``x\n");
        }
        body.push_str("/kpath recheck\n");
        assert_eq!(parse(&body), vec![Ok(Command::Recheck)]);
        let pathological = [
            "`".repeat(1_000_000),
            "` ``".repeat(250_000),
            "<!--".repeat(250_000),
            "[".repeat(1_000_000),
            "](".repeat(500_000),
            "][".repeat(500_000),
            "> a\n".repeat(250_000),
            "```\n".repeat(250_000),
            "    x\n".repeat(170_000),
            "- ".repeat(500_000),
            format!("{}\n/kpath recheck", "a `b ".repeat(200_000)),
        ];
        // Each completes (pulldown-cmark is linear on these; a quadratic parser would not finish a CI run).
        // No wall-clock bound here: speed is not asserted by tests.
        for body in &pathological[..pathological.len() - 1] {
            assert!(parse(body).is_empty(), "no command in {}…", &body[..20]);
        }
        assert_eq!(parse(&pathological[pathological.len() - 1]), vec![Ok(Command::Recheck)]);
    }

    #[test]
    fn garbage_never_panics() {
        const PIECES: &[&str] = &[
            "`",
            "``",
            "```",
            "~~~",
            ">",
            "> ",
            "/kpath",
            "/kpath ",
            " ",
            "    ",
            "\t",
            "\n",
            "\r\n",
            "\r",
            "recheck",
            "explain",
            "help",
            "image-latest",
            "<!--",
            "-->",
            "<!-->",
            "[",
            "]",
            "(",
            ")",
            "\\",
            "- ",
            "1. ",
            "#",
            "<pre>",
            "</pre>",
            "é",
            "日本",
            "*",
            "x",
        ];
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..4000 {
            let n = (next() % 60) as usize;
            let body: String = (0..n).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
            let parsed = parse(&body);
            assert!(parsed.len() <= MAX_COMMANDS);
            for result in parsed {
                if let Err(e) = result {
                    let reply = error_reply(&e);
                    assert!(parse(&reply).is_empty(), "{body:?} → {reply}");
                }
            }
        }
    }
}
