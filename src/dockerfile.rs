//! A Dockerfile parser that keeps line numbers: instructions (with `\` continuations, comments between
//! continued lines, heredocs and the `# escape=` directive), their exec or shell form, and build stages.
//!
//! Hand-written because no maintained crate keeps positions and tolerates odd input: a broken line is
//! reported and parsing continues with the next instruction.

use std::collections::HashMap;

use crate::yaml::Pos;

#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// Upper-cased keyword (`RUN`, `COPY`, …).
    pub keyword: String,
    /// Flags written before the arguments (`--from=build`, `--mount=type=cache,target=/root/.npm`).
    pub flags: Vec<String>,
    /// Arguments with continuations joined (a single space replaces each `\`+newline).
    pub args: String,
    /// Exec form (`["a", "b"]`) when the arguments are a JSON array of strings.
    pub exec: Option<Vec<String>>,
    /// Heredoc bodies (`RUN <<EOF ... EOF`), in order.
    pub heredocs: Vec<String>,
    /// First and last line of the instruction.
    pub line: u32,
    pub end_line: u32,
    /// Index of the stage this instruction belongs to (`None` before the first `FROM`).
    pub stage: Option<usize>,
}

impl Instruction {
    pub fn pos(&self) -> Pos {
        Pos { line: self.line, col: 1 }
    }

    /// The shell text this instruction runs: the shell form, plus heredoc bodies.
    pub fn shell_text(&self) -> String {
        let mut text = if self.exec.is_some() { String::new() } else { self.args.clone() };
        for body in &self.heredocs {
            text.push('\n');
            text.push_str(body);
        }
        text
    }

    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags.iter().find_map(|f| f.strip_prefix("--")?.strip_prefix(name)?.strip_prefix('='))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The image the stage starts from (`golang:1.22`, `scratch`, or another stage's name).
    pub base: String,
    /// `AS name`, lower-cased as Docker treats it.
    pub name: Option<String>,
    /// Index of the stage's `FROM` in [`Dockerfile::instructions`].
    pub from_index: usize,
    /// One past the stage's last instruction in [`Dockerfile::instructions`]: a stage's instructions are
    /// the contiguous range `from_index..end_index`.
    pub end_index: usize,
    /// The earlier stage this one builds on (`FROM build`), resolved once while parsing so that following a
    /// chain of stages is linear however long the chain is.
    pub parent: Option<usize>,
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dockerfile {
    pub instructions: Vec<Instruction>,
    pub stages: Vec<Stage>,
    /// Lines that are not instructions, with a message (kpath reports them as `manifest-invalid`).
    pub errors: Vec<(Pos, String)>,
    /// `# kpath:ignore` comments are handled by the suppression layer from the raw text.
    pub escape: char,
    /// Stage names (lower-cased) → index of the stage that declares them.
    names: HashMap<String, usize>,
}

impl Dockerfile {
    pub fn final_stage(&self) -> Option<&Stage> {
        self.stages.last()
    }

    /// Instructions of stage `index`.
    pub fn stage_instructions(&self, index: usize) -> impl Iterator<Item = &Instruction> {
        let range = self.stages.get(index).map_or(0..0, |s| s.from_index..s.end_index);
        self.instructions.get(range).unwrap_or_default().iter()
    }

    /// Instructions of the final stage (the image that ships).
    pub fn final_instructions(&self) -> impl Iterator<Item = &Instruction> {
        self.stage_instructions(self.stages.len().wrapping_sub(1))
    }

    /// Is `base` the name of a stage (so not an image)?
    pub fn is_stage_name(&self, base: &str) -> bool {
        self.names.contains_key(&base.to_ascii_lowercase())
    }

    /// Stage indices the shipped image is made of, from the first image-based stage to the final stage:
    /// `FROM builder` in the final stage inherits everything `builder` put in its image.
    pub fn final_chain(&self) -> Vec<usize> {
        let mut chain = Vec::new();
        let mut next = self.stages.len().checked_sub(1);
        while let Some(index) = next {
            chain.push(index);
            // Parents always come earlier, so this ends; the guard only protects against a future bug.
            next = self.stages.get(index).and_then(|s| s.parent).filter(|p| *p < index);
        }
        chain.reverse();
        chain
    }
}

/// Longest text a variable expansion may produce. Docker expands `ARG`s as it goes, so a chain of
/// `ARG B=${A}${A}` lines doubles at each step; past this, kpath treats the value as unknown instead of
/// building gigabytes of text.
pub const MAX_EXPANSION: usize = 4096;

impl Dockerfile {
    /// The `ARG`s declared before the first `FROM` (the only ones `FROM` lines may use), each expanded
    /// with the ones before it as Docker does. A name without a default, or one whose expansion is too
    /// long, is absent.
    pub fn global_args(&self) -> HashMap<String, String> {
        let mut vars: HashMap<String, String> = HashMap::new();
        for inst in self.instructions.iter().take_while(|i| i.stage.is_none()).filter(|i| i.keyword == "ARG") {
            for word in inst.args.split_whitespace() {
                let Some((name, value)) = word.split_once('=') else {
                    vars.remove(word);
                    continue;
                };
                let value = value.trim_matches(|c| c == '"' || c == '\'');
                match substitute(value, &vars) {
                    Some(expanded) => vars.insert(name.to_string(), expanded),
                    None => vars.remove(name),
                };
            }
        }
        vars
    }
}

/// Replaces `$NAME`, `${NAME}` and `${NAME:-default}` with their values in one pass (values are not
/// expanded again, so the work is linear). Unknown names are left as written. `None` when the result
/// would exceed [`MAX_EXPANSION`].
pub fn substitute(text: &str, vars: &HashMap<String, String>) -> Option<String> {
    if !text.contains('$') {
        return (text.len() <= MAX_EXPANSION).then(|| text.to_string());
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        let after = &rest[idx + 1..];
        let (reference, replacement) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => {
                    let body = &inner[..end];
                    let (name, default) = match body.split_once(":-") {
                        Some((n, d)) => (n, Some(d)),
                        None => (body, None),
                    };
                    let value = vars.get(name).filter(|v| !v.is_empty() || default.is_none()).map(String::as_str);
                    (&after[..end + 2], value.or(default))
                }
                None => (after, None),
            }
        } else {
            let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..len], vars.get(&after[..len]).map(String::as_str))
        };
        match replacement {
            Some(value) => out.push_str(value),
            None => {
                out.push('$');
                out.push_str(reference);
            }
        }
        if out.len() > MAX_EXPANSION {
            return None;
        }
        rest = &after[reference.len()..];
    }
    out.push_str(rest);
    (out.len() <= MAX_EXPANSION).then_some(out)
}

const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Instructions whose arguments may hold heredocs (BuildKit reads `<<EOF` only on these; elsewhere `<<` is
/// text, for instance a shell redirection in `CMD`).
/// <https://docs.docker.com/reference/dockerfile/#here-documents>
const HEREDOC_KEYWORDS: &[&str] = &["RUN", "COPY", "ADD"];

/// Instructions that accept a JSON array (exec form) as their arguments.
const JSON_KEYWORDS: &[&str] = &["RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"];

pub fn parse(text: &str) -> Dockerfile {
    let mut df = Dockerfile { escape: '\\', ..Dockerfile::default() };
    let lines: Vec<&str> = text.lines().collect();
    // Parser directives: only at the very top, before any instruction or other comment.
    for (n, line) in lines.iter().enumerate() {
        let t = line.trim();
        let Some(directive) = t.strip_prefix('#') else { break };
        let directive = directive.trim();
        match directive.split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("escape") => match v.trim() {
                "`" => df.escape = '`',
                "\\" => {}
                other => df.errors.push((
                    Pos { line: n as u32 + 1, col: 1 },
                    format!(
                        "invalid escape character `{}` in the `# escape=` directive: Docker accepts only `\\` or \
                         `` ` ``, and refuses to build",
                        truncate(other, 10)
                    ),
                )),
            },
            Some((k, _)) if k.trim().eq_ignore_ascii_case("syntax") || k.trim().eq_ignore_ascii_case("check") => {}
            _ => break,
        }
    }
    let escape = df.escape;
    let mut i = 0usize;
    while i < lines.len() {
        let start = i;
        let first = lines[i].trim_start();
        i += 1;
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        // Join continuation lines; comment lines inside a continuation are dropped, as BuildKit does.
        let mut logical = String::new();
        let mut current = lines[start].trim();
        loop {
            match current.strip_suffix(escape) {
                Some(body) => {
                    logical.push_str(body.trim_end());
                    logical.push(' ');
                    // Skip comment and empty lines inside the continuation.
                    while i < lines.len() && {
                        let t = lines[i].trim();
                        t.starts_with('#') || t.is_empty()
                    } {
                        i += 1;
                    }
                    if i >= lines.len() {
                        break;
                    }
                    current = lines[i].trim();
                    i += 1;
                }
                None => {
                    logical.push_str(current);
                    break;
                }
            }
        }
        let end_line = i as u32;
        let line = start as u32 + 1;
        let at = Pos { line, col: 1 };
        let (keyword, rest) = match logical.split_once(char::is_whitespace) {
            Some((k, r)) => (k, r.trim()),
            None => (logical.as_str(), ""),
        };
        let keyword = keyword.to_ascii_uppercase();
        if !KEYWORDS.contains(&keyword.as_str()) {
            df.errors.push((at, format!("`{}` is not a Dockerfile instruction", truncate(keyword.as_str(), 40))));
            continue;
        }
        let (flags, args) = split_flags(rest);
        // Heredocs: `<<EOF` or `<<-EOF` (quoted delimiters too). Bodies follow the instruction line.
        let mut heredocs = Vec::new();
        let mut heredoc_end = end_line;
        if HEREDOC_KEYWORDS.contains(&keyword.as_str()) {
            for delimiter in heredoc_delimiters(&args) {
                let mut body = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    if l.trim() == delimiter {
                        closed = true;
                        break;
                    }
                    body.push_str(l);
                    body.push('\n');
                }
                if !closed {
                    df.errors.push((
                        at,
                        format!(
                            "the heredoc `<<{}` of this `{keyword}` is never closed: no line `{}` follows, so the \
                             rest of the file is read as its body and Docker refuses to build",
                            truncate(&delimiter, 40),
                            truncate(&delimiter, 40)
                        ),
                    ));
                }
                heredoc_end = i as u32;
                heredocs.push(body);
            }
        }
        let exec = if JSON_KEYWORDS.contains(&keyword.as_str()) { parse_exec(&args) } else { None };
        if exec.is_none()
            && JSON_KEYWORDS.contains(&keyword.as_str())
            && let Some(problem) = broken_json_form(&args)
        {
            df.errors.push((at, format!("`{keyword}` {problem}")));
        }
        if let Some(problem) = argument_problem(&keyword, &args, exec.as_deref(), &heredocs) {
            df.errors.push((at, problem));
        }
        let stage = if keyword == "FROM" {
            let mut words = args.split_whitespace();
            let base = words.next().unwrap_or("").to_string();
            let name = match (words.next(), words.next(), words.next()) {
                (None, _, _) => None,
                (Some(as_kw), Some(name), None) if as_kw.eq_ignore_ascii_case("as") => {
                    let name = name.to_ascii_lowercase();
                    if !valid_stage_name(&name) {
                        df.errors.push((
                            at,
                            format!(
                                "`{}` is not a valid stage name: Docker wants a letter followed by letters, digits, \
                                 `-`, `_` or `.`",
                                truncate(&name, 40)
                            ),
                        ));
                    }
                    Some(name)
                }
                _ => {
                    if !base.is_empty() {
                        df.errors.push((
                            at,
                            "`FROM` takes an image and optionally `AS name` (`FROM golang:1.22 AS build`); Docker \
                             refuses anything else"
                                .to_string(),
                        ));
                    }
                    None
                }
            };
            let index = df.stages.len();
            if let Some(previous) = df.stages.last_mut() {
                previous.end_index = df.instructions.len();
            }
            // The base names a stage only when that stage comes earlier (a later one is an image).
            let parent = df.names.get(&base.to_ascii_lowercase()).copied();
            if let Some(name) = &name {
                if let Some(&first) = df.names.get(name) {
                    let first_line = df.stages.get(first).map_or(0, |s| s.line);
                    df.errors.push((
                        at,
                        format!(
                            "stage name `{}` is used twice (first on line {first_line}); Docker refuses to build",
                            truncate(name, 40)
                        ),
                    ));
                } else {
                    df.names.insert(name.clone(), index);
                }
            }
            let from_index = df.instructions.len();
            df.stages.push(Stage { base, name, from_index, end_index: from_index + 1, parent, line });
            Some(index)
        } else {
            if df.stages.is_empty() && keyword != "ARG" {
                df.errors.push((
                    at,
                    format!(
                        "`{keyword}` comes before any `FROM`: only `ARG` may precede the first `FROM`, and Docker \
                         refuses to build"
                    ),
                ));
            }
            df.stages.len().checked_sub(1)
        };
        df.instructions.push(Instruction { keyword, flags, args, exec, heredocs, line, end_line: heredoc_end, stage });
    }
    if let Some(last) = df.stages.last_mut() {
        last.end_index = df.instructions.len();
    }
    if df.stages.is_empty() && df.errors.is_empty() {
        let message = if df.instructions.is_empty() {
            "the Dockerfile has no instructions; Docker refuses to build it"
        } else {
            "the Dockerfile has no `FROM`, so there is no stage to build and Docker refuses it"
        };
        df.errors.push((Pos { line: 1, col: 1 }, message.to_string()));
    }
    df
}

/// Docker's rule for stage names: a letter, then letters, digits, `-`, `_` or `.`.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Arguments Docker refuses for this instruction (missing, too few, or of the wrong form), as a message.
/// Docker's own checks: <https://docs.docker.com/reference/dockerfile/>.
fn argument_problem(keyword: &str, args: &str, exec: Option<&[String]>, heredocs: &[String]) -> Option<String> {
    let words = args.split_whitespace().count();
    let empty = args.trim().is_empty();
    match keyword {
        // `CMD` and `ENTRYPOINT` without arguments are accepted (they clear the inherited value).
        "CMD" | "ENTRYPOINT" => None,
        "FROM" if empty => Some("`FROM` names no image: every stage starts from an image (or `scratch`)".into()),
        "COPY" | "ADD" => {
            let count = exec.map_or(words, <[String]>::len);
            (count < 2 && heredocs.is_empty())
                .then(|| format!("`{keyword}` needs at least a source and a destination (`{keyword} src/ /app/`)"))
        }
        "SHELL" if exec.is_none() && !empty => {
            Some("`SHELL` must be written as a JSON array (`SHELL [\"/bin/bash\", \"-c\"]`)".into())
        }
        "ENV" if !empty && !args.split_whitespace().next().is_some_and(|w| w.contains('=')) && words < 2 => {
            Some("`ENV` needs a value (`ENV NAME=value`)".into())
        }
        "ENV" | "LABEL" | "ARG" if args.trim_start().starts_with('=') => {
            Some(format!("`{keyword}` has an empty name before `=`"))
        }
        "HEALTHCHECK" if !empty => {
            let kind = args.split_whitespace().next().unwrap_or("");
            (!kind.eq_ignore_ascii_case("CMD") && !kind.eq_ignore_ascii_case("NONE")).then(|| {
                format!(
                    "`HEALTHCHECK` is followed by `{}`; Docker wants `HEALTHCHECK [options] CMD …` or \
                     `HEALTHCHECK NONE`",
                    truncate(kind, 40)
                )
            })
        }
        "ONBUILD" if !empty => {
            let trigger = args.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" | "FROM" | "MAINTAINER" => {
                    Some(format!("`{trigger}` is not allowed as an `ONBUILD` trigger"))
                }
                t if !KEYWORDS.contains(&t) => {
                    Some(format!("`ONBUILD {}` does not name a Dockerfile instruction", truncate(t, 40)))
                }
                _ => None,
            }
        }
        _ if empty => Some(format!("`{keyword}` has no arguments; Docker refuses to build")),
        _ => None,
    }
}

/// Why arguments that start like a JSON array are not one, when Docker would run them as a shell
/// command instead (`CMD ["app` runs `/bin/sh -c '["app'`). A shell test (`RUN [ -f x ] && …`) is fine.
fn broken_json_form(args: &str) -> Option<String> {
    let t = args.trim();
    if !t.starts_with('[') {
        return None;
    }
    // `[ … ]` and `[[ … ]]` are the shell's test commands, not a JSON array.
    let mut words = t.split_whitespace();
    let close = match words.next() {
        Some("[") => "]",
        Some("[[") => "]]",
        _ => "",
    };
    if !close.is_empty() && words.any(|w| w.trim_end_matches(';') == close) {
        return None;
    }
    let why = match serde_json::from_str::<serde_json::Value>(t) {
        Ok(serde_json::Value::Array(_)) => "is a JSON array, but not of strings only".to_string(),
        Ok(_) => "is not a JSON array".to_string(),
        Err(e) if e.is_eof() => "starts a JSON array that is never closed".to_string(),
        Err(e) => format!("is not a valid JSON array ({e})"),
    };
    Some(format!(
        "{why}, so Docker runs the text as a shell command (`/bin/sh -c '[…'`) instead of the program it names; \
         write it as a JSON array of double-quoted strings"
    ))
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_string() } else { text.chars().take(max).collect::<String>() + "…" }
}

fn split_flags(rest: &str) -> (Vec<String>, String) {
    let mut flags = Vec::new();
    let mut remaining = rest.trim_start();
    while remaining.starts_with("--") {
        let end = remaining.find(char::is_whitespace).unwrap_or(remaining.len());
        flags.push(remaining[..end].to_string());
        remaining = remaining[end..].trim_start();
    }
    (flags, remaining.to_string())
}

fn heredoc_delimiters(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = args;
    while let Some(idx) = rest.find("<<") {
        let after = &rest[idx + 2..];
        let after = after.strip_prefix('-').unwrap_or(after);
        let word: String = after
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !word.is_empty() && word.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') {
            out.push(word);
        }
        rest = &rest[idx + 2..];
    }
    out
}

/// Exec form: a JSON array of strings. Anything else is shell form.
fn parse_exec(args: &str) -> Option<Vec<String>> {
    let t = args.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_forms_and_lines() {
        let df = parse(
            "# syntax=docker/dockerfile:1\nFROM golang:1.22 AS Build\nRUN go build \\\n  # a comment\n  -o /app .\n\nFROM gcr.io/distroless/static\nCOPY --from=build /app /app\nCMD [\"/app\"]\n",
        );
        assert!(df.errors.is_empty(), "{:?}", df.errors);
        assert_eq!(df.stages.len(), 2);
        assert_eq!(df.stages[0].name.as_deref(), Some("build"));
        let run = &df.instructions[1];
        assert_eq!((run.line, run.end_line), (3, 5));
        assert_eq!(run.args, "go build -o /app .");
        let copy = &df.instructions[3];
        assert_eq!(copy.flag("from"), Some("build"));
        assert_eq!(df.instructions[4].exec.as_deref(), Some(&["/app".to_string()][..]));
        assert_eq!(df.final_instructions().count(), 3);
    }

    #[test]
    fn heredocs_and_odd_input() {
        let df = parse("FROM alpine\nRUN <<EOF\napk add curl\nEOF\nbogus line\nRUN echo \\\n");
        assert_eq!(df.instructions[1].heredocs, vec!["apk add curl\n".to_string()]);
        assert_eq!(df.errors.len(), 1);
        assert_eq!(df.errors[0].0.line, 5);
        assert_eq!(df.instructions.len(), 3);
    }

    /// The first error of `text`: its line and message.
    fn first_error(text: &str) -> (u32, String) {
        let df = parse(text);
        let (pos, message) = df.errors.first().cloned().unwrap_or_else(|| panic!("no error for {text:?}"));
        (pos.line, message)
    }

    #[test]
    fn every_broken_shape_is_an_error_on_its_line() {
        for (text, line, needle) in [
            ("FROM alpine\nRUN <<EOF\napk add curl\n", 2, "heredoc `<<EOF` of this `RUN` is never closed"),
            ("FROM alpine\nCOPY <<EOF <<END /app/\na\nEOF\nb\n", 2, "`<<END`"),
            ("FROM alpine\nCMD [\"unterminated\n", 2, "never closed"),
            ("FROM alpine\nENTRYPOINT ['/app']\n", 2, "not a valid JSON array"),
            ("FROM alpine\nCMD [\"/app\", 1]\n", 2, "not of strings only"),
            ("FROM alpine\nVOLUME [\"/data\"\n", 2, "never closed"),
            ("FROM\n", 1, "`FROM` names no image"),
            ("FROM alpine AS\n", 1, "`FROM` takes an image and optionally `AS name`"),
            ("FROM alpine AS a b\n", 1, "`FROM` takes an image"),
            ("FROM alpine AS 1st\n", 1, "not a valid stage name"),
            ("FROM alpine AS a\nFROM alpine AS A\n", 2, "used twice (first on line 1)"),
            ("RUN make\nFROM alpine\n", 1, "comes before any `FROM`"),
            ("ARG V=1\n", 1, "no `FROM`"),
            ("# only a comment\n\n", 1, "no instructions"),
            ("FROM alpine\nRUN\n", 2, "`RUN` has no arguments"),
            ("FROM alpine\nRUN --mount=type=cache,target=/root/.cache\n", 2, "`RUN` has no arguments"),
            ("FROM alpine\nCOPY app\n", 2, "at least a source and a destination"),
            ("FROM alpine\nCOPY [\"app\"]\n", 2, "at least a source and a destination"),
            ("FROM alpine\nWORKDIR\n", 2, "`WORKDIR` has no arguments"),
            ("FROM alpine\nENV PATH\n", 2, "`ENV` needs a value"),
            ("FROM alpine\nENV =x\n", 2, "empty name"),
            ("FROM alpine\nSHELL /bin/bash -c\n", 2, "JSON array"),
            ("FROM alpine\nHEALTHCHECK --interval=5s curl -f localhost\n", 2, "`HEALTHCHECK` is followed by `curl`"),
            ("FROM alpine\nONBUILD FROM debian\n", 2, "not allowed as an `ONBUILD` trigger"),
            ("FROM alpine\nONBUILD BOGUS x\n", 2, "does not name a Dockerfile instruction"),
            ("# escape=x\nFROM alpine\n", 1, "invalid escape character"),
            ("FROM alpine\nRUN echo hi\nbogus line\n", 3, "`BOGUS` is not a Dockerfile instruction"),
        ] {
            let (got_line, message) = first_error(text);
            assert_eq!(got_line, line, "{text:?}: {message}");
            assert!(message.contains(needle), "{text:?}: {message}");
        }
    }

    #[test]
    fn valid_odd_forms_are_not_errors() {
        for text in [
            "FROM alpine\nRUN [ -f /etc/os-release ] && echo ok\n",
            "FROM alpine\nRUN [[ -f /x ]] || true\n",
            "FROM alpine\nCMD\nENTRYPOINT []\n",
            "ARG BASE=alpine\nFROM ${BASE} AS build\nFROM build\nENV A=1 B=2\nENV LEGACY value with spaces\n",
            "FROM alpine\nHEALTHCHECK NONE\nONBUILD RUN make\nCOPY <<EOF /etc/motd\nhello\nEOF\n",
            // `<<` outside RUN/COPY/ADD is text (a shell redirection), not a heredoc.
            "FROM alpine\nCMD cat <<EOF\nEXPOSE 80\n",
        ] {
            let df = parse(text);
            assert!(df.errors.is_empty(), "{text:?}: {:?}", df.errors);
        }
    }

    #[test]
    fn a_long_stage_chain_is_followed_through_parent_links() {
        let mut text = String::from("FROM golang:1.22 AS s0\nRUN go build\n");
        for i in 1..40_000 {
            text.push_str(&format!("FROM s{} AS s{i}\n", i - 1));
        }
        let df = parse(&text);
        assert!(df.errors.is_empty(), "{:?}", df.errors.first());
        let chain = df.final_chain();
        assert_eq!(chain.len(), 40_000);
        assert_eq!((chain[0], chain[39_999]), (0, 39_999));
        assert_eq!(df.stages[39_999].parent, Some(39_998));
        assert_eq!(df.stage_instructions(0).count(), 2);
        assert_eq!(df.final_instructions().count(), 1);
        assert!(df.is_stage_name("S123"));
    }

    #[test]
    fn a_stage_named_later_is_an_image_not_a_parent() {
        let df = parse("FROM build\nFROM alpine AS build\n");
        assert_eq!(df.stages[0].parent, None);
        assert_eq!(df.final_chain(), vec![1]);
    }

    #[test]
    fn arg_expansion_is_single_pass_and_capped() {
        // Each ARG doubles the previous one: 2^60 bytes if expanded naively.
        let mut text = String::from("ARG A0=xxxxxxxx\n");
        for i in 1..60 {
            text.push_str(&format!("ARG A{i}=${{A{}}}${{A{}}}\n", i - 1, i - 1));
        }
        text.push_str("FROM ${A59}\n");
        let vars = parse(&text).global_args();
        assert_eq!(vars.get("A3").map(String::len), Some(64));
        assert_eq!(vars.get("A9").map(String::len), Some(MAX_EXPANSION));
        assert!(!vars.contains_key("A10"), "past the cap the value is unknown");
        // Later values refer to unknown ones and stay partly unexpanded; none passes the cap.
        assert!(vars.values().all(|v| v.len() <= MAX_EXPANSION));
        assert!(vars.get("A59").is_none_or(|v| v.contains('$')));
        let mut vars = HashMap::new();
        vars.insert("IMG".to_string(), "node".to_string());
        assert_eq!(substitute("$IMG:${TAG:-20}-$IMGX", &vars).as_deref(), Some("node:20-$IMGX"));
    }

    #[test]
    fn escape_directive() {
        let df = parse("# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir `\n  c:\\\n");
        assert_eq!(df.instructions[1].args, "dir c:\\");
    }
}
