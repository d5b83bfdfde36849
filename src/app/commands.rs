//! `/kpath …` commands in pull-request comments: Markdown-aware parsing, "did you mean" and the replies.
//!
//! A command is a line of ordinary comment text that starts (after optional whitespace) with `/kpath`.
//! Text that GitHub does not render as ordinary text is never a command: fenced and indented code
//! blocks, `<pre>`-like HTML blocks, inline code spans, block quotes (including their lazy
//! continuation lines), HTML comments, and link texts and destinations. So quoting someone's command,
//! or kpath's own comments (which write commands in code spans), never runs anything.
//!
//! The Markdown reading is a small line-based approximation of CommonMark/GFM, good for comments:
//! blocks are recognised line by line (fences, indented code, quotes, HTML comment and raw blocks,
//! headings, thematic breaks, list items), then each paragraph that holds a candidate line is scanned
//! for inline code spans, HTML comments and links, left to right as CommonMark does. It runs in linear
//! time and never panics: every slice boundary is an ASCII byte or a line end.

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

/// A line of the body: its text without the line ending, and its byte offset in the body.
#[derive(Clone, Copy)]
struct Line<'a> {
    start: usize,
    text: &'a str,
}

/// Lines split at `\n`, `\r\n` and lone `\r`.
fn lines(body: &str) -> impl Iterator<Item = Line<'_>> {
    let bytes = body.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        let start = pos;
        let mut end = start;
        while end < bytes.len() && bytes[end] != b'\n' && bytes[end] != b'\r' {
            end += 1;
        }
        pos = end;
        if pos < bytes.len() {
            pos += if bytes[pos] == b'\r' && bytes.get(pos + 1) == Some(&b'\n') { 2 } else { 1 };
        }
        Some(Line { start, text: &body[start..end] })
    })
}

/// The indentation of a line in columns (tabs to the next multiple of 4) and the text after it.
fn indent(text: &str) -> (usize, &str) {
    let mut col = 0;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b' ' => col += 1,
            b'\t' => col += 4 - col % 4,
            _ => return (col, &text[i..]),
        }
    }
    (col, "")
}

fn is_blank(text: &str) -> bool {
    text.bytes().all(|b| b == b' ' || b == b'\t')
}

/// `rest` (a line after its indentation) opens a code fence: the fence character and length.
fn fence_open(rest: &str) -> Option<(u8, usize)> {
    let c = *rest.as_bytes().first()?;
    if c != b'`' && c != b'~' {
        return None;
    }
    let len = rest.bytes().take_while(|&b| b == c).count();
    // A backtick fence's info string cannot hold a backtick (that line is inline code instead).
    (len >= 3 && !(c == b'`' && rest[len..].contains('`'))).then_some((c, len))
}

/// `rest` closes a fence of `c` × `len`: at least as long, nothing but spaces after it.
fn fence_close(rest: &str, c: u8, len: usize) -> bool {
    let n = rest.bytes().take_while(|&b| b == c).count();
    n >= len && is_blank(&rest[n..])
}

/// The raw-text HTML blocks (CommonMark type 1) whose content is never Markdown: the closing tag.
fn raw_html_open(rest: &str) -> Option<&'static str> {
    const TAGS: &[(&str, &str)] =
        &[("<pre", "</pre>"), ("<script", "</script>"), ("<style", "</style>"), ("<textarea", "</textarea>")];
    let bytes = rest.as_bytes();
    TAGS.iter().find_map(|(open, close)| {
        let n = open.len();
        let next = bytes.get(n).copied();
        (bytes.len() >= n
            && bytes[..n].eq_ignore_ascii_case(open.as_bytes())
            && matches!(next, None | Some(b' ' | b'\t' | b'>')))
        .then_some(*close)
    })
}

fn contains_ignore_ascii_case(hay: &str, needle: &str) -> bool {
    let n = needle.len();
    hay.as_bytes().windows(n).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn is_heading(rest: &str) -> bool {
    let n = rest.bytes().take_while(|&b| b == b'#').count();
    (1..=6).contains(&n) && matches!(rest.as_bytes().get(n), None | Some(b' ' | b'\t'))
}

fn is_thematic_break(rest: &str) -> bool {
    let Some(&c) = rest.as_bytes().first() else { return false };
    matches!(c, b'-' | b'*' | b'_')
        && rest.bytes().filter(|&b| b == c).count() >= 3
        && rest.bytes().all(|b| b == c || b == b' ' || b == b'\t')
}

/// A list item marker at the start of `rest`: the width of the marker with the spaces after it (so
/// the item's content starts that many columns further), and the content.
fn list_item(rest: &str) -> Option<(usize, &str)> {
    let bytes = rest.as_bytes();
    let marker = match bytes.first()? {
        b'-' | b'+' | b'*' => 1,
        b'0'..=b'9' => {
            let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 9 || !matches!(bytes.get(digits), Some(b'.' | b')')) {
                return None;
            }
            digits + 1
        }
        _ => return None,
    };
    let after = &rest[marker..];
    if !after.is_empty() && !after.starts_with([' ', '\t']) {
        return None;
    }
    let (spaces, content) = indent(after);
    // Five or more spaces after the marker: the content is indented code, starting one space in.
    let width = if (1..=4).contains(&spaces) { marker + spaces } else { marker + 1 };
    Some((width, content))
}

/// A line (indented `col` columns) that starts a block ending a block quote's paragraph instead of
/// continuing it lazily.
fn interrupts_paragraph(col: usize, rest: &str) -> bool {
    col <= 3
        && (fence_open(rest).is_some()
            || is_heading(rest)
            || is_thematic_break(rest)
            || rest.starts_with("<!--")
            || raw_html_open(rest).is_some()
            || rest.starts_with('>')
            || list_item(rest).is_some_and(|(_, content)| {
                // An empty item, or an ordered one not starting at 1, cannot interrupt a paragraph.
                let ordered = rest.starts_with(|c: char| c.is_ascii_digit());
                !content.is_empty() && (!ordered || rest.starts_with("1.") || rest.starts_with("1)"))
            }))
}

/// The content of a block-quote line after all its `>` markers (for quotes nested in quotes).
fn quote_content(mut rest: &str) -> &str {
    loop {
        rest = match rest.strip_prefix('>') {
            Some(r) => r.strip_prefix([' ', '\t']).unwrap_or(r),
            None => return rest,
        };
        let (col, r) = indent(rest);
        if col > 3 || !r.starts_with('>') {
            return rest;
        }
        rest = r;
    }
}

/// Where the line-by-line reading is.
enum Block {
    /// Between blocks or in a paragraph.
    Normal,
    /// In a fenced code block; `base` is the column of the container (a list item) it opened in.
    Fenced {
        c: u8,
        len: usize,
        base: usize,
    },
    IndentedCode,
    /// In an HTML comment block (a line starting with `<!--`), until a line holding `-->`.
    HtmlComment,
    /// In a `<pre>`/`<script>`/`<style>`/`<textarea>` block, until the closing tag.
    HtmlRaw {
        close: &'static str,
    },
    /// In a block quote. `lazy`: its last line was paragraph text, so a following line that starts
    /// no other block belongs to the quote too. `fence`: a code fence open inside the quote.
    Quote {
        lazy: bool,
        fence: Option<(u8, usize)>,
    },
}

/// The paragraph being read: its byte range and its candidate lines (start of `/kpath`, line end).
#[derive(Default)]
struct Paragraph {
    range: Option<(usize, usize)>,
    candidates: Vec<(usize, usize)>,
}

/// The visible text of every `/kpath` command line, in order, at most [`MAX_COMMANDS`].
fn command_lines(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block = Block::Normal;
    let mut para = Paragraph::default();
    for line in lines(body) {
        if out.len() >= MAX_COMMANDS {
            break;
        }
        let (col, rest) = indent(line.text);
        let blank = rest.is_empty();
        match block {
            Block::Fenced { c, len, base } => {
                if blank || col >= base {
                    if col <= base + 3 && fence_close(rest, c, len) {
                        block = Block::Normal;
                    }
                    continue;
                }
                // Less indented than the list item the fence is in: the item, and the fence, end;
                // the line is read as a new block below.
            }
            Block::HtmlComment => {
                if line.text.contains("-->") {
                    block = Block::Normal;
                }
                continue;
            }
            Block::HtmlRaw { close } => {
                if contains_ignore_ascii_case(line.text, close) {
                    block = Block::Normal;
                }
                continue;
            }
            Block::IndentedCode => {
                if blank || col >= 4 {
                    continue;
                }
            }
            Block::Quote { lazy, fence } => {
                if col <= 3 && rest.starts_with('>') {
                    block = quote_line(quote_content(rest), lazy, fence);
                    continue;
                }
                if !blank && lazy && !interrupts_paragraph(col, rest) {
                    continue; // lazy continuation of the quoted paragraph
                }
            }
            Block::Normal => {}
        }
        // Every block that did not `continue` above has ended: the line starts or continues a paragraph.
        block = normal_line(body, line, col, rest, &mut para, &mut out);
    }
    flush(body, &mut para, &mut out);
    out.truncate(MAX_COMMANDS);
    out
}

/// A line inside a block quote (its content after the markers): the quote's new state.
fn quote_line(content: &str, lazy: bool, fence: Option<(u8, usize)>) -> Block {
    let (col, rest) = indent(content);
    if let Some((c, len)) = fence {
        let fence = if col <= 3 && fence_close(rest, c, len) { None } else { fence };
        return Block::Quote { lazy: false, fence };
    }
    if rest.is_empty() {
        return Block::Quote { lazy: false, fence: None };
    }
    if col <= 3
        && let Some(f) = fence_open(rest)
    {
        return Block::Quote { lazy: false, fence: Some(f) };
    }
    let paragraph = (col >= 4 && lazy) || (col <= 3 && !is_heading(rest) && !is_thematic_break(rest));
    Block::Quote { lazy: paragraph, fence: None }
}

/// A line outside any code, comment or quote: starts a block or adds to the paragraph.
fn normal_line(
    body: &str,
    line: Line<'_>,
    col: usize,
    rest: &str,
    para: &mut Paragraph,
    out: &mut Vec<String>,
) -> Block {
    let end = line.start + line.text.len();
    if rest.is_empty() {
        flush(body, para, out);
        return Block::Normal;
    }
    if col >= 4 {
        if para.range.is_none() {
            return Block::IndentedCode;
        }
        add_line(para, line, rest, end, true);
        return Block::Normal;
    }
    if rest.starts_with('>') {
        flush(body, para, out);
        return quote_line(quote_content(rest), false, None);
    }
    if is_heading(rest) || is_thematic_break(rest) {
        flush(body, para, out);
        return Block::Normal;
    }
    if let Some(block) = block_start(rest, 0, line.text) {
        flush(body, para, out);
        return block;
    }
    if let Some((width, content)) = list_item(rest) {
        // A new item: its own paragraph, whose first line is not at the start of a line.
        flush(body, para, out);
        if let Some(block) = block_start(content, col + width, line.text) {
            return block;
        }
        add_line(para, line, rest, end, false);
        return Block::Normal;
    }
    add_line(para, line, rest, end, true);
    Block::Normal
}

/// A fence, HTML comment or raw HTML block starting at `rest` (in a container at column `base`).
fn block_start(rest: &str, base: usize, text: &str) -> Option<Block> {
    if let Some((c, len)) = fence_open(rest) {
        return Some(Block::Fenced { c, len, base });
    }
    if rest.starts_with("<!--") {
        // `<!-->` and `<!--->` are whole comments, so look for `-->` from right after `<!`.
        let closed = rest[2..].contains("-->");
        return Some(if closed { Block::Normal } else { Block::HtmlComment });
    }
    if let Some(close) = raw_html_open(rest) {
        let closed = contains_ignore_ascii_case(text, close);
        return Some(if closed { Block::Normal } else { Block::HtmlRaw { close } });
    }
    None
}

/// Adds a line to the paragraph; `at_start`: its text is at the start of the line (not after a list
/// marker), so it is a candidate when it starts with `/kpath`.
fn add_line(para: &mut Paragraph, line: Line<'_>, rest: &str, end: usize, at_start: bool) {
    let range = para.range.get_or_insert((line.start, end));
    range.1 = end;
    if at_start && starts_with_kpath(rest) {
        para.candidates.push((end - rest.len(), end));
    }
}

/// `/kpath` (any case) followed by whitespace or the end.
fn starts_with_kpath(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 6 && b[..6].eq_ignore_ascii_case(b"/kpath") && text[6..].chars().next().is_none_or(char::is_whitespace)
}

/// Ends the paragraph: its candidates outside inline code, comments and links become command lines.
fn flush(body: &str, para: &mut Paragraph, out: &mut Vec<String>) {
    let Some((start, end)) = para.range.take() else { return };
    let candidates = std::mem::take(&mut para.candidates);
    if candidates.is_empty() || out.len() >= MAX_COMMANDS {
        return;
    }
    let spans = inline_spans(body, start, end);
    for (pos, line_end) in candidates {
        if out.len() >= MAX_COMMANDS {
            break;
        }
        // Spans are sorted and disjoint: the last one starting before `pos` is the only one that can hold it.
        let i = spans.partition_point(|s| s.start < pos);
        if i > 0 && spans[i - 1].end > pos {
            continue;
        }
        // The line's visible text: HTML comments on it are removed.
        let mut text = String::new();
        let mut at = pos;
        for s in spans[i..].iter().take_while(|s| s.start < line_end) {
            if s.kind == SpanKind::Comment {
                text.push_str(&body[at..s.start]);
                at = s.end.min(line_end);
            }
        }
        if at < line_end {
            text.push_str(&body[at..line_end]);
        }
        out.push(text);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SpanKind {
    Code,
    Comment,
    Link,
}

/// A range of a paragraph that is not ordinary text.
#[derive(Debug)]
struct Span {
    start: usize,
    end: usize,
    kind: SpanKind,
}

/// Finds `needle` in `hay` from increasing positions, remembering the last hit (and that there is
/// none after it), so repeated unmatched openers cost linear time in total.
struct Finder<'a> {
    hay: &'a str,
    needle: &'static str,
    hit: Option<usize>,
    exhausted: bool,
}

impl<'a> Finder<'a> {
    fn new(hay: &'a str, needle: &'static str) -> Self {
        Finder { hay, needle, hit: None, exhausted: false }
    }

    fn find(&mut self, from: usize) -> Option<usize> {
        if let Some(h) = self.hit
            && h >= from
        {
            return Some(h);
        }
        if self.exhausted {
            return None;
        }
        // `from` is always just after an ASCII byte, so a character boundary.
        let rest = self.hay.get(from..)?;
        match rest.find(self.needle) {
            Some(p) => {
                self.hit = Some(from + p);
                self.hit
            }
            None => {
                self.exhausted = true;
                None
            }
        }
    }
}

/// Code spans, HTML comments and links of the paragraph `body[start..end]`, in order (absolute offsets).
fn inline_spans(body: &str, start: usize, end: usize) -> Vec<Span> {
    let text = &body[start..end];
    let b = text.as_bytes();
    // Every maximal backtick run, sorted by (length, start): a code span closes at the next run of
    // exactly its opener's length.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'`' {
            let n = b[i..].iter().take_while(|&&c| c == b'`').count();
            runs.push((n, i));
            i += n;
        } else {
            i += 1;
        }
    }
    runs.sort_unstable();

    let mut comment_end = Finder::new(text, "-->");
    let mut paren = Finder::new(text, ")");
    let mut bracket = Finder::new(text, "]");
    let mut openers: Vec<usize> = Vec::new();
    let mut spans = Vec::new();
    let mut push = |s: usize, e: usize, kind| spans.push(Span { start: start + s, end: start + e, kind });
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if b.get(i + 1).is_some_and(u8::is_ascii_punctuation) => i += 2,
            b'`' => {
                let n = b[i..].iter().take_while(|&&c| c == b'`').count();
                let k = runs.partition_point(|&r| r <= (n, i));
                match runs.get(k) {
                    Some(&(len, s)) if len == n => {
                        push(i, s + n, SpanKind::Code);
                        i = s + n;
                    }
                    _ => i += n,
                }
            }
            b'<' if b[i..].starts_with(b"<!--") => match comment_end.find(i + 2) {
                Some(q) => {
                    push(i, q + 3, SpanKind::Comment);
                    i = q + 3;
                }
                None => i += 4,
            },
            b'[' => {
                openers.push(i);
                i += 1;
            }
            b']' => {
                let close = match (openers.pop(), b.get(i + 1)) {
                    (Some(o), Some(b'(')) => paren.find(i + 2).map(|q| (o, q)),
                    (Some(o), Some(b'[')) => bracket.find(i + 2).map(|q| (o, q)),
                    _ => None,
                };
                match close {
                    Some((o, q)) => {
                        push(o, q + 1, SpanKind::Link);
                        i = q + 1;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    // A link's text was scanned before the link was known: drop the spans it swallowed.
    spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match merged.last() {
            Some(last) if s.start < last.end => {}
            _ => merged.push(s),
        }
    }
    merged
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
        assert!(cmds("[a](https://example.com/\n/kpath recheck)").is_empty());
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
    fn a_megabyte_parses_fast() {
        let started = std::time::Instant::now();
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
        for body in &pathological {
            let _ = parse(body);
        }
        let elapsed = started.elapsed();
        // Generous for unoptimised test builds on a busy machine; the point is "linear, not quadratic".
        assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
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
