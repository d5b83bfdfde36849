//! How `kpath serve` writes its log: JSON lines for log collectors, or text for a person at a terminal
//! (`--log-format json|text`, `KPATH_LOG_FORMAT`; by default JSON unless stderr is a terminal), filtered by
//! `KPATH_LOG` (an `EnvFilter` directive, default `info`), and redacted with the secrets of the reviews in
//! flight before a line is written ([`crate::redact::RedactingWriter`]).
//!
//! ANSI colour codes are written only in text mode to a terminal: a collector reading a pipe would store
//! them as `\x1b[…m` noise. Values that come from outside kpath are bounded before they are logged with
//! [`crate::logtext::bounded`] (escaped, at most 256 characters), so no field of a line is unbounded.
//!
//! The JSON layout is tracing-subscriber's
//! (<https://docs.rs/tracing-subscriber/0.3/tracing_subscriber/fmt/format/struct.Json.html>): one object
//! per line with `timestamp`, `level`, `fields` (the event's fields, its text under `message`), `target`,
//! and `span`/`spans` (the fields of the spans the event is in).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use super::serve::SettingError;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// tracing-subscriber's human-readable lines (coloured only on a terminal).
    Text,
}

/// The format from `--log-format` (`flag`), else `KPATH_LOG_FORMAT` from `env`, else JSON unless stderr is a
/// terminal (`terminal`). Case and surrounding blanks do not matter; anything but `json` or `text` is an error
/// that names the setting.
pub fn resolve_format(
    flag: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    terminal: bool,
) -> Result<LogFormat, SettingError> {
    let chosen = flag.map(str::to_string).or_else(|| env("KPATH_LOG_FORMAT")).filter(|v| !v.trim().is_empty());
    let Some(value) = chosen else { return Ok(if terminal { LogFormat::Text } else { LogFormat::Json }) };
    match value.trim().to_ascii_lowercase().as_str() {
        "json" => Ok(LogFormat::Json),
        "text" => Ok(LogFormat::Text),
        _ => Err(SettingError {
            name: "KPATH_LOG_FORMAT (--log-format)".to_string(),
            problem: format!("must be json or text, not {:?}", crate::logtext::bounded_to(&value, 40).to_string()),
        }),
    }
}

/// The filter from `KPATH_LOG` (for example `info`, `kpath=debug`); `info` when unset or not a valid filter.
fn filter(env: &dyn Fn(&str) -> Option<String>) -> EnvFilter {
    env("KPATH_LOG")
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}

/// The subscriber `kpath serve` logs through, writing to `writer` (redacted by the caller's choice of
/// writer); `terminal` says whether the writer is a terminal, which alone allows colour.
pub fn subscriber<W>(
    format: LogFormat,
    terminal: bool,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        // The target (kpath's module) is kept in JSON, where a collector can filter on it.
        LogFormat::Json => Box::new(builder.json().with_ansi(false).finish()),
        LogFormat::Text => Box::new(builder.with_ansi(terminal).with_target(false).finish()),
    }
}

/// Sets up the process's log from the flag and the environment: the format ([`resolve_format`]), the
/// `KPATH_LOG` filter, lines redacted and written to stderr. A bad format is an error naming the setting; a
/// second call (a logger already set) changes nothing.
pub fn init(flag: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<LogFormat, SettingError> {
    let terminal = std::io::stderr().is_terminal();
    let format = resolve_format(flag, env, terminal)?;
    let writer = crate::redact::RedactingWriter::new(std::io::stderr);
    // Err only when a logger is already set (tests, or a second call): that one stays.
    let _ = tracing::subscriber::set_global_default(subscriber(format, terminal, filter(env), writer));
    Ok(format)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    fn env(pairs: &[(&'static str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<&'static str, String> = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_format_is_the_flag_else_the_variable_else_json_unless_a_terminal() {
        let none = env(&[]);
        assert_eq!(resolve_format(None, &none, false).ok(), Some(LogFormat::Json));
        assert_eq!(resolve_format(None, &none, true).ok(), Some(LogFormat::Text));
        let text = env(&[("KPATH_LOG_FORMAT", " TEXT\n")]);
        assert_eq!(resolve_format(None, &text, false).ok(), Some(LogFormat::Text));
        assert_eq!(resolve_format(Some("json"), &text, true).ok(), Some(LogFormat::Json), "the flag wins");
        let blank = env(&[("KPATH_LOG_FORMAT", " ")]);
        assert_eq!(resolve_format(None, &blank, true).ok(), Some(LogFormat::Text), "blank is unset");
    }

    #[test]
    fn a_bad_format_names_the_setting_in_one_bounded_line() {
        let error = resolve_format(Some("yaml"), &env(&[]), false).map_err(|e| e.to_string());
        assert_eq!(error, Err("KPATH_LOG_FORMAT (--log-format) must be json or text, not \"yaml\"".to_string()));
        let long = format!("x\n{}", "y".repeat(10_000));
        let error = resolve_format(None, &env(&[("KPATH_LOG_FORMAT", &long)]), false).expect_err("refused").to_string();
        assert!(error.starts_with("KPATH_LOG_FORMAT (--log-format) must be json or text"), "{error}");
        assert!(!error.contains('\n') && error.len() < 200, "{error}");
    }

    /// What the subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
        }
    }

    /// Logs one event inside a span through the configured subscriber (redacting writer included).
    fn log_through(format: LogFormat, terminal: bool, directive: &str) -> String {
        let captured = Captured::default();
        let sink = captured.clone();
        let writer = crate::redact::RedactingWriter::new(move || sink.clone());
        let filter = filter(&env(&[("KPATH_LOG", directive)]));
        tracing::subscriber::with_default(subscriber(format, terminal, filter, writer), || {
            let span = tracing::info_span!("job", repo = "octo/gitops", pull = 7_u64);
            let _entered = span.enter();
            tracing::info!(delivery = "d-1", token = "kpath-test-log-secret-4711", "queued");
            tracing::debug!("not at info");
        });
        captured.text()
    }

    /// A JSON line parses, has tracing-subscriber's layout (level, fields.message, the span's fields), carries
    /// no escape code, and a registered secret is redacted in it.
    #[test]
    fn json_lines_parse_and_carry_no_escape_codes() {
        let mut secrets = crate::redact::SecretSet::default();
        secrets.insert("kpath-test-log-secret-4711");
        let _registration = crate::redact::register(Arc::new(secrets));
        let text = log_through(LogFormat::Json, false, "info");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "only the info line: {text}");
        assert!(!text.contains('\x1b'), "{text:?}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON object");
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["fields"]["message"], "queued", "{line}");
        assert_eq!(line["fields"]["delivery"], "d-1", "{line}");
        assert_eq!(line["fields"]["token"], crate::redact::MARKER, "{line}");
        assert_eq!(line["span"]["repo"], "octo/gitops", "{line}");
        assert_eq!(line["span"]["pull"], 7, "{line}");
        assert!(line["timestamp"].is_string() && line["target"].is_string(), "{line}");
        // `KPATH_LOG` decides what is written.
        assert!(log_through(LogFormat::Json, false, "debug").lines().count() == 2);
    }

    #[test]
    fn text_is_coloured_only_on_a_terminal() {
        let piped = log_through(LogFormat::Text, false, "info");
        assert!(piped.contains("queued") && piped.contains("delivery=\"d-1\""), "{piped}");
        assert!(!piped.contains('\x1b'), "{piped:?}");
        assert!(serde_json::from_str::<serde_json::Value>(piped.trim()).is_err());
        let terminal = log_through(LogFormat::Text, true, "info");
        assert!(terminal.contains('\x1b'), "{terminal:?}");
    }
}
