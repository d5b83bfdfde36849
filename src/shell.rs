//! Shell command analysis for container commands and Dockerfile `RUN`/`CMD`/`ENTRYPOINT`.
//!
//! A small hand-written tokenizer splits a POSIX-ish shell script into simple commands across `&&`,
//! `||`, `;`, `|`, `&` and newlines, respecting single and double quotes, backslash escapes, `$(…)`,
//! `${…}` and backticks, and collects each command's redirections (`>`, `>>`, `2>`, `&>`, `2>&1`, …).
//! It is not a shell: compound commands (`if`, `while`, `case`) are flattened into the simple commands
//! they contain, which is all the rules need (what runs last, what writes where).
//!
//! Helpers on top answer the questions the rules ask: is this argv a `sh -c` invocation and where is
//! its script, is the last command `exec`-ed, which files does a command write (`> file`, `tee file`),
//! and is a path a log sink (`/dev/stdout`) rather than a file.

/// The operator that ends a simple command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sep {
    /// `;`, a newline, or a grouping boundary (`(`, `)`).
    Seq,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `|` or `|&`
    Pipe,
    /// `&`: the command runs in the background.
    Background,
}

/// A redirection of a simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The file descriptor written before the operator (`2` in `2>`), if any.
    pub fd: Option<u32>,
    /// The operator: `>`, `>>`, `>|`, `>&`, `&>`, `&>>`, `<`, `<<`, `<<-`, `<<<`, `<&`, `<>`.
    pub op: String,
    /// The target word with quotes removed (`/var/log/app.log`, `1` for `2>&1`, the heredoc delimiter).
    pub target: String,
}

impl Redirect {
    /// Does this redirection send output somewhere (rather than read input)?
    pub fn is_output(&self) -> bool {
        self.op.starts_with('>') || self.op.starts_with('&')
    }

    /// Is this a descriptor duplication or close (`2>&1`, `>&2`, `>&-`) rather than a file?
    pub fn is_dup(&self) -> bool {
        self.op == ">&"
            && (self.target == "-" || (!self.target.is_empty() && self.target.bytes().all(|b| b.is_ascii_digit())))
    }

    /// Does output go to a real file (not a descriptor, a device or a variable we cannot resolve)?
    pub fn writes_file(&self) -> bool {
        self.is_output()
            && !self.is_dup()
            && !self.target.is_empty()
            && !is_log_sink(&self.target)
            && !is_unresolved(&self.target)
    }

    /// Does this redirection carry standard error (`2>`, `&>`, `>&file`)?
    pub fn includes_stderr(&self) -> bool {
        self.fd == Some(2) || self.op.starts_with('&') || (self.op == ">&" && !self.is_dup())
    }
}

/// One simple command: its words (quotes removed) and redirections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCommand {
    /// All words as written (minus quotes), including leading reserved words and `NAME=value` assignments.
    pub words: Vec<String>,
    pub redirects: Vec<Redirect>,
    /// The operator after this command; `None` for the last command of the script.
    pub sep: Option<Sep>,
}

/// Reserved words that may open a simple command inside a compound one.
const LEADING_RESERVED: &[&str] = &["{", "!", "if", "then", "elif", "else", "while", "until", "do", "time"];

impl SimpleCommand {
    fn is_empty(&self) -> bool {
        self.words.is_empty() && self.redirects.is_empty()
    }

    /// Index of the first word that is neither a leading reserved word nor an assignment.
    fn argv_start(&self) -> usize {
        self.words
            .iter()
            .position(|w| !LEADING_RESERVED.contains(&w.as_str()) && !is_assignment(w))
            .unwrap_or(self.words.len())
    }

    /// The command and its arguments: leading reserved words (`then`, `do`, …) and `NAME=value`
    /// assignments skipped.
    pub fn argv(&self) -> &[String] {
        &self.words[self.argv_start()..]
    }

    /// The `NAME=value` assignments written before the command.
    pub fn assignments(&self) -> Vec<(&str, &str)> {
        let end = self.argv_start();
        self.words[..end].iter().filter_map(|w| if is_assignment(w) { w.split_once('=') } else { None }).collect()
    }

    /// The program's base name (`apt-get` for `/usr/bin/apt-get`), if there is a command.
    pub fn program(&self) -> Option<&str> {
        self.argv().first().map(|w| basename(w))
    }

    /// Is the command `exec`-ed (`exec app …`, `exec -a name app`)? A bare `exec` that only sets up
    /// redirections replaces nothing and does not count.
    pub fn is_exec(&self) -> bool {
        self.exec_argv().is_some()
    }

    /// The argv that `exec` replaces the shell with, when the command is `exec`-ed.
    pub fn exec_argv(&self) -> Option<&[String]> {
        let argv = self.argv();
        if argv.first().map(String::as_str) != Some("exec") {
            return None;
        }
        let mut i = 1;
        while let Some(w) = argv.get(i) {
            match w.as_str() {
                "-a" => i += 2,
                "--" => {
                    i += 1;
                    break;
                }
                w if w.starts_with('-') && w.len() > 1 => i += 1,
                _ => break,
            }
        }
        argv.get(i..).filter(|rest| !rest.is_empty())
    }

    /// The command run, with an `exec` prefix removed.
    pub fn effective_argv(&self) -> &[String] {
        self.exec_argv().unwrap_or_else(|| self.argv())
    }

    /// Files this command writes to through redirections (not devices or descriptors).
    pub fn file_redirects(&self) -> impl Iterator<Item = &Redirect> {
        self.redirects.iter().filter(|r| r.writes_file())
    }

    /// Files `tee` writes to, when this command is `tee` (log sinks excluded).
    pub fn tee_files(&self) -> Vec<&str> {
        let argv = self.effective_argv();
        if argv.first().map(|w| basename(w)) != Some("tee") {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut options_done = false;
        for w in &argv[1..] {
            if !options_done && w == "--" {
                options_done = true;
            } else if !options_done && w.starts_with('-') && w.len() > 1 {
            } else if !is_log_sink(w) && !is_unresolved(w) && !w.is_empty() {
                out.push(w.as_str());
            }
        }
        out
    }
}

/// `NAME=value` with a valid shell variable name.
pub fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

/// The last path component (`sh` for `/bin/sh`).
pub fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Targets that are not files on the container's disk: the standard streams, descriptors, devices.
pub fn is_log_sink(target: &str) -> bool {
    let t = target.trim();
    t == "-"
        || t == "&1"
        || t == "&2"
        || t.eq_ignore_ascii_case("stdout")
        || t.eq_ignore_ascii_case("stderr")
        || t.starts_with("/dev/")
        || (t.starts_with("/proc/") && t.contains("/fd/"))
}

/// A target built from a variable or command substitution, whose value we cannot know.
fn is_unresolved(target: &str) -> bool {
    target.contains('$') || target.contains('`')
}

/// Splits a script into simple commands. Never fails: unterminated quotes end at the end of input.
pub fn parse(script: &str) -> Vec<SimpleCommand> {
    parse_shaped(script).0
}

/// Like [`parse`], and whether the script groups commands with `(` or `)` (a subshell), which the
/// flat list of simple commands does not show.
fn parse_shaped(script: &str) -> (Vec<SimpleCommand>, bool) {
    let mut lexer = Lexer { chars: script.chars().collect(), i: 0, heredocs: Vec::new(), grouped: false };
    let mut commands = Vec::new();
    let mut current = SimpleCommand::default();
    while let Some(token) = lexer.next_token() {
        match token {
            Token::Word(w) => current.words.push(w),
            Token::Redirect(r) => {
                if r.op.starts_with("<<") && r.op != "<<<" && !r.target.is_empty() {
                    lexer.heredocs.push((r.target.clone(), r.op == "<<-"));
                }
                current.redirects.push(r);
            }
            Token::Sep(sep) => {
                if !current.is_empty() {
                    current.sep = Some(sep);
                    commands.push(std::mem::take(&mut current));
                } else if sep == Sep::Background
                    && let Some(last) = commands.last_mut()
                {
                    last.sep = Some(sep);
                }
            }
        }
    }
    if !current.is_empty() {
        commands.push(current);
    }
    (commands, lexer.grouped)
}

/// Reserved words and keywords that make a command compound rather than simple.
const COMPOUND_WORDS: &[&str] = &[
    "{", "}", "!", "if", "then", "elif", "else", "fi", "while", "until", "do", "done", "for", "in", "case", "esac",
    "select", "function", "time", "coproc", "[[", "((",
];

/// Builtins: a shell runs them itself, so a script made of one of them keeps the shell running (`.`,
/// `source` and `eval` run more script; `wait` waits for children).
const BUILTINS: &[&str] = &[
    ".", ":", "[", "alias", "bg", "break", "builtin", "cd", "command", "continue", "declare", "echo", "eval", "exit",
    "export", "false", "fg", "getopts", "hash", "jobs", "kill", "let", "local", "printf", "pwd", "read", "readonly",
    "return", "set", "shift", "source", "test", "times", "trap", "true", "type", "typeset", "ulimit", "umask",
    "unalias", "unset", "wait",
];

/// The script's only command, when the script is one simple command that runs a program: no list
/// (`;`, `&&`, `||`, newline between commands), no pipeline, no background `&`, no subshell or compound
/// command, no builtin. A trailing `;` or newline is allowed.
pub fn lone_command(script: &str) -> Option<SimpleCommand> {
    let (mut commands, grouped) = parse_shaped(script);
    if grouped || commands.len() != 1 {
        return None;
    }
    let command = commands.pop()?;
    if !matches!(command.sep, None | Some(Sep::Seq)) {
        return None;
    }
    let first = command.words.first()?;
    if COMPOUND_WORDS.contains(&first.as_str()) {
        return None;
    }
    let program = command.argv().first()?;
    if BUILTINS.contains(&program.as_str()) || program == "exec" {
        return None;
    }
    Some(command)
}

/// Does `shell` (a base name), started with the options `options`, replace itself with the lone
/// command of its `-c` script, so that the command is PID 1 and receives SIGTERM itself?
///
/// Measured, not assumed (bash 5.2, Debian's dash 0.5.12, busybox 1.35 ash):
/// - bash execs a lone simple command (its "one shot" optimisation, in every version in use), but not
///   when the command has a redirection, runs as a login shell (`-l`, `--login`) or interactively (`-i`);
/// - busybox `ash` execs the last command of a `-c` script, redirections included;
/// - `sh` is dash on Debian and Ubuntu images, and Debian's dash forks and waits even for a lone
///   command; it is bash on Red Hat images and busybox on Alpine. Unknown, so it does not count;
/// - dash, zsh, ksh and mksh are not counted either (dash forks as above; the others were not measured).
pub fn execs_lone_command(shell: &str, options: &[String], command: &SimpleCommand) -> bool {
    match shell {
        "bash" => {
            let login_or_interactive = options.iter().any(|o| {
                o == "--login"
                    || o == "--interactive"
                    || (o.starts_with('-') && !o.starts_with("--") && (o.contains('l') || o.contains('i')))
            });
            !login_or_interactive && command.redirects.is_empty()
        }
        "ash" => true,
        _ => false,
    }
}

/// The command that runs last in a script: closing words of compound commands (`fi`, `}`, `esac`) are
/// skipped, so `if …; then exec a; else exec b; fi` ends with `exec b`. A loop ends with `done`, which
/// is never `exec`-ed.
pub fn last_command(commands: &[SimpleCommand]) -> Option<&SimpleCommand> {
    commands.iter().rev().find(|c| {
        let argv = c.argv();
        (!argv.is_empty() || !c.redirects.is_empty())
            && !matches!(argv, [w] if matches!(w.as_str(), "fi" | "}" | "esac"))
    })
}

/// Does the script hand its process over to the last command (`… && exec app`)?
pub fn ends_in_exec(commands: &[SimpleCommand]) -> bool {
    last_command(commands).is_some_and(|c| c.is_exec() && c.sep != Some(Sep::Background))
}

/// Does the script install a handler for SIGTERM (`trap 'kill $pid' TERM`)? Then the shell forwards
/// or handles the signal itself.
pub fn traps_term(commands: &[SimpleCommand]) -> bool {
    commands.iter().any(|c| {
        let argv = c.argv();
        argv.first().map(String::as_str) == Some("trap")
            && argv.iter().skip(2).any(|w| matches!(w.to_ascii_uppercase().as_str(), "TERM" | "SIGTERM" | "15"))
    })
}

/// Shells that run a script given with `-c`.
pub const SHELLS: &[&str] = &["sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"];

/// A `sh -c SCRIPT` invocation found in an argv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellInvocation<'a> {
    /// Index of the shell in the argv (after an `env` prefix).
    pub shell_index: usize,
    /// Index of the script argument.
    pub script_index: usize,
    pub script: &'a str,
}

/// Recognises `sh -c SCRIPT` (also `/bin/bash -ec`, `bash -o pipefail -c`, `/usr/bin/env bash -c`).
pub fn shell_invocation(argv: &[String]) -> Option<ShellInvocation<'_>> {
    let mut i = 0;
    if argv.first().is_some_and(|w| basename(w) == "env") {
        i = 1;
        while let Some(w) = argv.get(i) {
            if w == "-u" || w == "--unset" {
                i += 2;
            } else if (w.starts_with('-') && w.len() > 1) || is_assignment(w) {
                i += 1;
            } else {
                break;
            }
        }
    }
    let shell_index = i;
    let shell = argv.get(shell_index)?;
    if !SHELLS.contains(&basename(shell)) {
        return None;
    }
    let mut has_c = false;
    i += 1;
    while let Some(w) = argv.get(i) {
        if w == "--" {
            i += 1;
            break;
        }
        if w.starts_with("--") {
            i += 1;
            continue;
        }
        if (w.starts_with('-') || w.starts_with('+')) && w.len() > 1 {
            if w.starts_with('-') && w.contains('c') {
                has_c = true;
            }
            // `-o pipefail` / `-O extglob` take the next word.
            i += if w.contains('o') || w.contains('O') { 2 } else { 1 };
            continue;
        }
        break;
    }
    if !has_c {
        return None;
    }
    let script = argv.get(i)?;
    Some(ShellInvocation { shell_index, script_index: i, script })
}

/// The `NAME=value` pairs of a Dockerfile `ENV` (both `ENV A=1 B="x y"` and the legacy `ENV A 1`).
pub fn env_assignments(args: &str) -> Vec<(String, String)> {
    let words: Vec<String> = parse(args)
        .into_iter()
        .flat_map(|c| c.words.into_iter().chain(c.redirects.into_iter().map(|r| r.target)))
        .collect();
    match words.first() {
        Some(first) if !first.contains('=') => {
            let value = args.trim_start().get(first.len()..).unwrap_or("").trim();
            let value = value.trim_matches(|c| c == '"' || c == '\'');
            vec![(first.clone(), value.to_string())]
        }
        _ => words.iter().filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

/// The shell scripts a Dockerfile instruction runs in shell form: its arguments and each heredoc body.
/// Bodies are returned separately because, in the joined text, the `<<EOF` marker would swallow them.
/// Exec-form arguments are not included (they are an argv, not a script).
pub fn dockerfile_scripts(inst: &crate::dockerfile::Instruction) -> Vec<&str> {
    let mut out = Vec::new();
    if inst.exec.is_none() {
        out.push(inst.args.as_str());
    }
    out.extend(inst.heredocs.iter().map(String::as_str));
    out
}

/// Does a command line mention something secret-looking (`--password`, `TOKEN=`)? Rules then describe
/// the command without quoting it.
pub fn mentions_secret(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "apikey", "api_key", "api-key", "credential", "private", "auth"]
        .iter()
        .any(|w| lower.contains(w))
}

enum Token {
    Word(String),
    Redirect(Redirect),
    Sep(Sep),
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    /// Heredoc delimiters waiting for the end of the line (`strip tabs` for `<<-`).
    heredocs: Vec<(String, bool)>,
    /// A `(` or `)` was read: the script has a subshell or a grouping.
    grouped: bool,
}

fn is_meta(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>')
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.i + offset).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn skip_blanks(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r') => self.i += 1,
                Some('\\') if self.peek_at(1) == Some('\n') => self.i += 2,
                _ => break,
            }
        }
    }

    /// Skips heredoc bodies that start after the newline just consumed.
    fn skip_heredoc_bodies(&mut self) {
        for (delimiter, strip_tabs) in std::mem::take(&mut self.heredocs) {
            while self.i < self.chars.len() {
                let start = self.i;
                while self.peek().is_some_and(|c| c != '\n') {
                    self.i += 1;
                }
                let line: String = self.chars[start..self.i].iter().collect();
                if self.peek() == Some('\n') {
                    self.i += 1;
                }
                let line = if strip_tabs { line.trim_start_matches('\t') } else { line.as_str() };
                if line.trim_end_matches('\r') == delimiter {
                    break;
                }
            }
        }
    }

    fn next_token(&mut self) -> Option<Token> {
        loop {
            self.skip_blanks();
            let c = self.peek()?;
            let token = match c {
                '\n' => {
                    self.i += 1;
                    self.skip_heredoc_bodies();
                    Token::Sep(Sep::Seq)
                }
                ';' => {
                    self.i += 1;
                    while matches!(self.peek(), Some(';' | '&')) {
                        self.i += 1;
                    }
                    Token::Sep(Sep::Seq)
                }
                '&' => match self.peek_at(1) {
                    Some('&') => {
                        self.i += 2;
                        Token::Sep(Sep::And)
                    }
                    Some('>') => Token::Redirect(self.read_redirect(None)),
                    _ => {
                        self.i += 1;
                        Token::Sep(Sep::Background)
                    }
                },
                '|' => {
                    self.i += 1;
                    match self.peek() {
                        Some('|') => {
                            self.i += 1;
                            Token::Sep(Sep::Or)
                        }
                        Some('&') => {
                            self.i += 1;
                            Token::Sep(Sep::Pipe)
                        }
                        _ => Token::Sep(Sep::Pipe),
                    }
                }
                '(' | ')' => {
                    self.i += 1;
                    self.grouped = true;
                    Token::Sep(Sep::Seq)
                }
                '<' | '>' => Token::Redirect(self.read_redirect(None)),
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.i += 1;
                    }
                    continue;
                }
                _ => {
                    let (word, quoted) = self.read_word();
                    if !quoted
                        && !word.is_empty()
                        && word.len() <= 4
                        && word.bytes().all(|b| b.is_ascii_digit())
                        && matches!(self.peek(), Some('<' | '>'))
                    {
                        Token::Redirect(self.read_redirect(word.parse().ok()))
                    } else {
                        Token::Word(word)
                    }
                }
            };
            return Some(token);
        }
    }

    fn read_redirect(&mut self, fd: Option<u32>) -> Redirect {
        let mut op = String::new();
        match self.bump() {
            Some('&') => {
                op.push('&');
                if self.peek() == Some('>') {
                    op.push('>');
                    self.i += 1;
                }
                if self.peek() == Some('>') {
                    op.push('>');
                    self.i += 1;
                }
            }
            Some('>') => {
                op.push('>');
                if let Some(c @ ('>' | '|' | '&')) = self.peek() {
                    op.push(c);
                    self.i += 1;
                }
            }
            Some('<') => {
                op.push('<');
                match self.peek() {
                    Some('<') => {
                        op.push('<');
                        self.i += 1;
                        if let Some(c @ ('<' | '-')) = self.peek() {
                            op.push(c);
                            self.i += 1;
                        }
                    }
                    Some(c @ ('&' | '>')) => {
                        op.push(c);
                        self.i += 1;
                    }
                    _ => {}
                }
            }
            Some(c) => op.push(c),
            None => {}
        }
        self.skip_blanks();
        let target = match self.peek() {
            Some(c) if !is_meta(c) => self.read_word().0,
            _ => String::new(),
        };
        Redirect { fd, op, target }
    }

    /// Reads one word, removing quotes and escapes; substitutions are kept as written.
    fn read_word(&mut self) -> (String, bool) {
        let mut out = String::new();
        let mut quoted = false;
        while let Some(c) = self.peek() {
            if is_meta(c) {
                break;
            }
            match c {
                '\\' => {
                    self.i += 1;
                    match self.bump() {
                        Some('\n') => {}
                        Some(n) => {
                            out.push(n);
                            quoted = true;
                        }
                        None => out.push('\\'),
                    }
                }
                '\'' => {
                    quoted = true;
                    self.i += 1;
                    while let Some(n) = self.bump() {
                        if n == '\'' {
                            break;
                        }
                        out.push(n);
                    }
                }
                '"' => {
                    quoted = true;
                    self.i += 1;
                    while let Some(n) = self.peek() {
                        match n {
                            '"' => {
                                self.i += 1;
                                break;
                            }
                            '\\' => {
                                self.i += 1;
                                match self.bump() {
                                    Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                                    Some('\n') => {}
                                    Some(e) => {
                                        out.push('\\');
                                        out.push(e);
                                    }
                                    None => out.push('\\'),
                                }
                            }
                            '$' => self.read_dollar(&mut out),
                            '`' => self.read_backticks(&mut out),
                            _ => {
                                out.push(n);
                                self.i += 1;
                            }
                        }
                    }
                }
                '$' => self.read_dollar(&mut out),
                '`' => self.read_backticks(&mut out),
                _ => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        (out, quoted)
    }

    /// `$name`, `${…}` or `$(…)`, copied as written (at least the `$` is consumed).
    fn read_dollar(&mut self, out: &mut String) {
        out.push('$');
        self.i += 1;
        let (open, close) = match self.peek() {
            Some('(') => ('(', ')'),
            Some('{') => ('{', '}'),
            _ => return,
        };
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        while let Some(c) = self.bump() {
            out.push(c);
            match quote {
                Some(q) => {
                    if c == q {
                        quote = None;
                    } else if c == '\\'
                        && q == '"'
                        && let Some(n) = self.bump()
                    {
                        out.push(n);
                    }
                }
                None => {
                    if c == '\'' || c == '"' {
                        quote = Some(c);
                    } else if c == '\\' {
                        if let Some(n) = self.bump() {
                            out.push(n);
                        }
                    } else if c == open {
                        depth += 1;
                    } else if c == close {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return;
                        }
                    }
                }
            }
        }
    }

    fn read_backticks(&mut self, out: &mut String) {
        out.push('`');
        self.i += 1;
        while let Some(c) = self.bump() {
            out.push(c);
            if c == '\\' {
                if let Some(n) = self.bump() {
                    out.push(n);
                }
            } else if c == '`' {
                return;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn argvs(script: &str) -> Vec<Vec<String>> {
        parse(script).iter().map(|c| c.argv().to_vec()).collect()
    }

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn splits_on_operators_and_newlines() {
        let cmds = parse("a 1 && b 2 || c; d | e & f\ng");
        let words: Vec<_> = cmds.iter().map(|c| c.words.join(" ")).collect();
        assert_eq!(words, ["a 1", "b 2", "c", "d", "e", "f", "g"]);
        let seps: Vec<_> = cmds.iter().map(|c| c.sep).collect();
        assert_eq!(
            seps,
            [
                Some(Sep::And),
                Some(Sep::Or),
                Some(Sep::Seq),
                Some(Sep::Pipe),
                Some(Sep::Background),
                Some(Sep::Seq),
                None
            ]
        );
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(argvs(r#"echo 'a && b' "c; d" e\ f"#), vec![strings(&["echo", "a && b", "c; d", "e f"])]);
        assert_eq!(
            argvs(r#"echo "say \"hi\" $(date +%s; true)""#),
            vec![strings(&["echo", "say \"hi\" $(date +%s; true)"])]
        );
        assert_eq!(argvs("echo $(a | b) ${X:-y} `c; d`"), vec![strings(&["echo", "$(a | b)", "${X:-y}", "`c; d`"])]);
        assert_eq!(argvs("a \\\n  b"), vec![strings(&["a", "b"])]);
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for s in ["'abc", "\"abc", "$(abc", "${", "`x", "a \\", ">", "2>", "&", "|", ";;", "<<", "&>", "(((", "\"\\"] {
            let _ = parse(s);
        }
        assert!(parse("").is_empty());
        assert!(parse("  # only a comment\n").is_empty());
    }

    /// Deterministic pseudo-random scripts over the characters the lexer treats specially.
    pub(crate) fn odd_strings(count: usize, alphabet: &[&str]) -> Vec<String> {
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        (0..count)
            .map(|_| {
                let len = (next() % 16) as usize;
                (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect()
            })
            .collect()
    }

    #[test]
    fn random_scripts_do_not_panic() {
        let alphabet = [
            "a", " ", "'", "\"", "\\", "$", "(", ")", "{", "}", "`", "<", ">", "&", "|", ";", "#", "\n", "-", "=", "2",
            "exec ", "sh -c ", "<<EOF\n", "EOF", "é",
        ];
        for script in odd_strings(20_000, &alphabet) {
            let commands = parse(&script);
            let _ = ends_in_exec(&commands);
            let _ = traps_term(&commands);
            for c in &commands {
                let _ = (c.argv(), c.assignments(), c.tee_files(), c.file_redirects().count());
            }
            let _ = env_assignments(&script);
            let argv: Vec<String> = script.split(' ').map(str::to_string).collect();
            let _ = shell_invocation(&argv);
        }
    }

    #[test]
    fn redirections() {
        let cmds = parse("app > /var/log/app.log 2>&1");
        let r = &cmds[0].redirects;
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].fd, r[0].op.as_str(), r[0].target.as_str()), (None, ">", "/var/log/app.log"));
        assert!(r[0].writes_file());
        assert_eq!((r[1].fd, r[1].op.as_str(), r[1].target.as_str()), (Some(2), ">&", "1"));
        assert!(r[1].is_dup() && !r[1].writes_file());

        let cmds = parse("app 2>>/tmp/err.txt &>> both.log >/dev/stdout >\"$LOG\"");
        let r = &cmds[0].redirects;
        assert_eq!(r[0].fd, Some(2));
        assert_eq!(r[0].op, ">>");
        assert!(r[0].writes_file() && r[0].includes_stderr());
        assert_eq!(r[1].op, "&>>");
        assert!(r[1].writes_file() && r[1].includes_stderr());
        assert!(!r[2].writes_file());
        assert!(!r[3].writes_file(), "unresolved variables are not judged");
        assert_eq!(cmds[0].argv(), strings(&["app"]));
    }

    #[test]
    fn tee_targets() {
        let cmds = parse("app 2>&1 | tee -a /var/log/app.log /dev/stderr");
        assert_eq!(cmds[1].tee_files(), ["/var/log/app.log"]);
        assert!(cmds[0].tee_files().is_empty());
    }

    #[test]
    fn exec_detection() {
        assert!(ends_in_exec(&parse("exec app --port 80")));
        assert!(ends_in_exec(&parse("./migrate && exec ./server")));
        assert!(ends_in_exec(&parse("FOO=1 exec -a name app")));
        assert!(!ends_in_exec(&parse("./migrate && ./server")));
        assert!(!ends_in_exec(&parse("exec > /tmp/x")));
        assert!(!ends_in_exec(&parse("exec app | tee x")));
        assert!(!ends_in_exec(&parse("exec app &")));
        assert!(!ends_in_exec(&parse("while true; do sleep 1; done")));
        assert!(ends_in_exec(&parse("if [ -n \"$X\" ]; then exec a; else exec b; fi")));
        assert!(ends_in_exec(&parse("set -e\nprepare\nexec \"$@\"\n")));
        assert!(ends_in_exec(&parse("a; exec b # start\n\n")));
    }

    #[test]
    fn lone_commands() {
        let lone = |s: &str| lone_command(s).map(|c| c.argv().to_vec());
        assert_eq!(lone("./server --port 80"), Some(strings(&["./server", "--port", "80"])));
        assert_eq!(lone("FOO=1 app\n"), Some(strings(&["app"])));
        assert_eq!(lone("app; # trailing\n"), Some(strings(&["app"])));
        assert!(lone_command("app > /tmp/x").is_some_and(|c| c.redirects.len() == 1));
        for script in [
            "a && b",
            "a; b",
            "a\nb",
            "a | b",
            "a &",
            "(a)",
            "{ a; }",
            "if a; then b; fi",
            "! a",
            "time a",
            "while true; do a; done",
            ". ./env.sh",
            "source x",
            "eval a",
            "wait",
            "exec a",
            "",
            "# only",
        ] {
            assert!(lone(script).is_none(), "{script:?}");
        }
        let opts = |o: &[&str]| strings(o);
        let cmd = lone_command("app").unwrap_or_default();
        assert!(execs_lone_command("bash", &opts(&["-ec"]), &cmd));
        assert!(execs_lone_command("bash", &opts(&["-o", "pipefail", "-c"]), &cmd));
        assert!(!execs_lone_command("bash", &opts(&["-lc"]), &cmd));
        assert!(!execs_lone_command("bash", &opts(&["--login", "-c"]), &cmd));
        assert!(!execs_lone_command("sh", &opts(&["-c"]), &cmd));
        assert!(!execs_lone_command("dash", &opts(&["-c"]), &cmd));
        let redirected = lone_command("app 2>&1").unwrap_or_default();
        assert!(!execs_lone_command("bash", &opts(&["-c"]), &redirected));
        assert!(execs_lone_command("ash", &opts(&["-c"]), &redirected));
    }

    #[test]
    fn trap_detection() {
        assert!(traps_term(&parse("trap 'kill -TERM $pid' TERM INT; app & pid=$!; wait $pid")));
        assert!(!traps_term(&parse("trap cleanup EXIT; app")));
    }

    #[test]
    fn heredoc_bodies_are_skipped() {
        let cmds = parse("cat <<EOF > /etc/app.conf\nexec nothing\nEOF\nexec app");
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0].redirects[0].op, "<<");
        assert!(ends_in_exec(&cmds));
    }

    #[test]
    fn dockerfile_heredoc_scripts() {
        let df = crate::dockerfile::parse("FROM alpine\nRUN <<EOF\napk add curl\nEOF\nRUN [\"a\"]\n");
        assert_eq!(dockerfile_scripts(&df.instructions[1]), ["<<EOF", "apk add curl\n"]);
        let commands: Vec<_> = dockerfile_scripts(&df.instructions[1]).into_iter().flat_map(parse).collect();
        assert_eq!(commands.last().and_then(SimpleCommand::program), Some("apk"));
        assert!(dockerfile_scripts(&df.instructions[2]).is_empty());
    }

    #[test]
    fn shell_invocations() {
        let argv = strings(&["/bin/sh", "-c", "exec app"]);
        assert_eq!(shell_invocation(&argv).map(|s| (s.script_index, s.script)), Some((2, "exec app")));
        let argv = strings(&["bash", "-euo", "pipefail", "-c", "app"]);
        assert_eq!(shell_invocation(&argv).map(|s| s.script_index), Some(4));
        let argv = strings(&["/usr/bin/env", "FOO=1", "bash", "-lc", "app"]);
        assert_eq!(shell_invocation(&argv).map(|s| (s.shell_index, s.script_index)), Some((2, 4)));
        assert!(shell_invocation(&strings(&["sh", "script.sh"])).is_none());
        assert!(shell_invocation(&strings(&["sh", "-c"])).is_none());
        assert!(shell_invocation(&strings(&["tini", "--", "sh", "-c", "app"])).is_none());
        assert!(shell_invocation(&[]).is_none());
    }

    #[test]
    fn sinks() {
        for s in ["/dev/stdout", "/dev/stderr", "/proc/1/fd/1", "/proc/self/fd/2", "/dev/null", "-"] {
            assert!(is_log_sink(s), "{s}");
        }
        assert!(!is_log_sink("/var/log/app.log"));
    }

    #[test]
    fn env_pairs() {
        assert_eq!(
            env_assignments(r#"A=1 B="x y" C=/var/log/c.log"#),
            vec![("A".into(), "1".into()), ("B".into(), "x y".into()), ("C".into(), "/var/log/c.log".into())]
        );
        assert_eq!(env_assignments("LOG_FILE /var/log/app.log"), vec![("LOG_FILE".into(), "/var/log/app.log".into())]);
        assert!(env_assignments("").is_empty());
    }

    #[test]
    fn assignments_and_reserved_words() {
        let cmds = parse("DEBIAN_FRONTEND=noninteractive apt-get install -y curl");
        assert_eq!(cmds[0].program(), Some("apt-get"));
        assert_eq!(cmds[0].assignments(), vec![("DEBIAN_FRONTEND", "noninteractive")]);
        let cmds = parse("if true; then /usr/bin/pip install x; fi");
        assert_eq!(cmds[1].program(), Some("pip"));
    }
}
