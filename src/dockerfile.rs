//! A Dockerfile parser that keeps line numbers: instructions (with `\` continuations, comments between
//! continued lines, heredocs and the `# escape=` directive), their exec or shell form, and build stages.
//!
//! Hand-written because no maintained crate keeps positions and tolerates odd input: a broken line is
//! reported and parsing continues with the next instruction.

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
}

impl Dockerfile {
    pub fn final_stage(&self) -> Option<&Stage> {
        self.stages.last()
    }

    /// Instructions of stage `index`.
    pub fn stage_instructions(&self, index: usize) -> impl Iterator<Item = &Instruction> {
        self.instructions.iter().filter(move |i| i.stage == Some(index))
    }

    /// Instructions of the final stage (the image that ships).
    pub fn final_instructions(&self) -> impl Iterator<Item = &Instruction> {
        let last = self.stages.len().checked_sub(1);
        self.instructions.iter().filter(move |i| last.is_some() && i.stage == last)
    }

    /// Is `base` the name of an earlier stage (so not an image)?
    pub fn is_stage_name(&self, base: &str) -> bool {
        let base = base.to_ascii_lowercase();
        self.stages.iter().any(|s| s.name.as_deref() == Some(base.as_str()))
    }
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

pub fn parse(text: &str) -> Dockerfile {
    let mut df = Dockerfile { escape: '\\', ..Dockerfile::default() };
    let lines: Vec<&str> = text.lines().collect();
    // Parser directives: only at the very top, before any instruction or other comment.
    for line in &lines {
        let t = line.trim();
        let Some(directive) = t.strip_prefix('#') else { break };
        let directive = directive.trim();
        match directive.split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("escape") => {
                if v.trim() == "`" {
                    df.escape = '`';
                }
            }
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
        let (keyword, rest) = match logical.split_once(char::is_whitespace) {
            Some((k, r)) => (k, r.trim()),
            None => (logical.as_str(), ""),
        };
        let keyword = keyword.to_ascii_uppercase();
        if !KEYWORDS.contains(&keyword.as_str()) {
            df.errors.push((
                Pos { line: start as u32 + 1, col: 1 },
                format!("`{}` is not a Dockerfile instruction", truncate(keyword.as_str(), 40)),
            ));
            continue;
        }
        let (flags, args) = split_flags(rest);
        // Heredocs: `<<EOF` or `<<-EOF` (quoted delimiters too). Bodies follow the instruction line.
        let mut heredocs = Vec::new();
        let mut heredoc_end = end_line;
        for delimiter in heredoc_delimiters(&args) {
            let mut body = String::new();
            while i < lines.len() {
                let l = lines[i];
                i += 1;
                if l.trim() == delimiter {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            heredoc_end = i as u32;
            heredocs.push(body);
        }
        let exec = parse_exec(&args);
        let stage = if keyword == "FROM" {
            let mut words = args.split_whitespace();
            let base = words.next().unwrap_or("").to_string();
            let name = match (words.next(), words.next()) {
                (Some(as_kw), Some(name)) if as_kw.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
                _ => None,
            };
            df.stages.push(Stage { base, name, from_index: df.instructions.len(), line: start as u32 + 1 });
            Some(df.stages.len() - 1)
        } else {
            df.stages.len().checked_sub(1)
        };
        df.instructions.push(Instruction {
            keyword,
            flags,
            args,
            exec,
            heredocs,
            line: start as u32 + 1,
            end_line: heredoc_end,
            stage,
        });
    }
    df
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

    #[test]
    fn escape_directive() {
        let df = parse("# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir `\n  c:\\\n");
        assert_eq!(df.instructions[1].args, "dir c:\\");
    }
}
