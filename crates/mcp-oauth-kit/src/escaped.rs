//! Text a client chose (a metadata-document `client_id`, a path, a user id), as it goes into a
//! log line: line breaks, terminal escapes, other control and format characters (bidi
//! overrides) and backslashes are written as Rust escapes (`\n`, `\u{1b}`), so that a value
//! can neither end its line and forge the next one nor restyle an operator's terminal.
//! Ordinary text, quotes included, is written as it is.

use std::fmt::{self, Write as _};

/// Displays its text escaped (see the module): `tracing::info!(client_id = %Escaped(id), …)`.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            let escape = c.escape_debug();
            if escape.len() == 1 || c == '"' || c == '\'' {
                f.write_char(c)?;
            } else {
                write!(f, "{escape}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_format_characters_are_escaped() {
        let rows = [
            ("https://app.example.com/c.json", "https://app.example.com/c.json"),
            ("a\nb", "a\\nb"),
            ("a\r\nb", "a\\r\\nb"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("x\u{85}y\u{2028}z\u{2029}", "x\\u{85}y\\u{2028}z\\u{2029}"),
            ("evil\u{202e}txt.exe", "evil\\u{202e}txt.exe"),
            ("back\\slash", "back\\\\slash"),
            ("say \"hi\" 'there'", "say \"hi\" 'there'"),
            ("Zoë 東京", "Zoë 東京"),
        ];
        for (raw, shown) in rows {
            assert_eq!(Escaped(raw).to_string(), shown, "{raw:?}");
        }
    }
}
