//! Text from outside kpath (request headers, event names, delivery ids, repository names, error messages
//! that may quote a payload, configuration values quoted in an error) made fit for one line: control and invisible formatting characters
//! escaped, so a value cannot start a forged line or hide text, and the length bounded, so a 60 KB header
//! is not a 60 KB line.

use std::fmt;

/// The most characters of one value that reach a log line.
pub const MAX_LOG_CHARS: usize = 256;

/// `text` as it goes into a log line: see [`bounded`].
#[derive(Clone, Copy)]
pub struct Bounded<'a>(&'a str, usize);

/// `text` escaped (`\n`, `\u{1b}`, bidirectional overrides…) and cut after [`MAX_LOG_CHARS`] characters
/// of output, with `…` and the full length in bytes when cut. Formats with `{}` or tracing's `%`.
pub fn bounded(text: &str) -> Bounded<'_> {
    Bounded(text, MAX_LOG_CHARS)
}

/// Like [`bounded`], cut after `max` characters of output.
pub fn bounded_to(text: &str, max: usize) -> Bounded<'_> {
    Bounded(text, max)
}

/// Characters that change how the rest of a line reads without being visible: Unicode's format
/// characters that reorder text (bidirectional embeddings, overrides and isolates) and line separators.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

impl fmt::Display for Bounded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut written = 0;
        for c in self.0.chars() {
            let escaped = c.is_control() || is_invisible(c);
            let width = if escaped { c.escape_default().count() } else { 1 };
            if written + width > self.1 {
                return write!(f, "…({} bytes)", self.0.len());
            }
            written += width;
            if escaped {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Bounded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged_and_control_characters_are_escaped() {
        assert_eq!(bounded("d3f1-42").to_string(), "d3f1-42");
        assert_eq!(bounded("é ✓").to_string(), "é ✓");
        assert_eq!(bounded("a\nINFO forged\r\u{1b}[2J").to_string(), "a\\nINFO forged\\r\\u{1b}[2J");
        assert_eq!(bounded("abc\u{202e}fed").to_string(), "abc\\u{202e}fed");
    }

    #[test]
    fn long_text_is_cut_with_its_length() {
        let shown = bounded(&"x".repeat(60_000)).to_string();
        assert!(shown.starts_with(&"x".repeat(MAX_LOG_CHARS)), "{shown}");
        assert!(shown.ends_with("…(60000 bytes)"), "{shown}");
        assert!(shown.chars().count() < MAX_LOG_CHARS + 40);
        // Escapes count towards the bound.
        let shown = bounded(&"\n".repeat(10_000)).to_string();
        assert!(shown.chars().count() < MAX_LOG_CHARS + 40, "{shown}");
        let exactly = "y".repeat(MAX_LOG_CHARS);
        assert_eq!(bounded(&exactly).to_string(), exactly);
    }
}
