//! Untrusted text on its way out: commit subjects, model output, a remote
//! host's messages and bfcli's error lines reach a terminal and a Markdown
//! comment. A terminal obeys escape sequences (ESC, CSI, OSC: retitle the
//! window, rewrite earlier lines, hide text); Markdown turns punctuation into
//! links, images, mentions and HTML. Both are neutralised here, in one place.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is shown as an escape rather than sent to the terminal: C0
/// controls (ESC among them), DEL, C1 controls (CSI U+009B acts as `ESC [`),
/// the bidirectional overrides and isolates (text shown in an order other
/// than its bytes'), and the Unicode line and paragraph separators.
fn is_hostile(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_hostile(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if !is_hostile(c) || keep(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// `s` for one line of a terminal: every control character, newlines and
/// tabs included, shown as a visible escape (`\x1b`, `\n`, `\u{9b}`).
pub fn line(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// `s` for a terminal, keeping its newlines and tabs (a multi-line message,
/// e.g. an error with a log tail); every other control character escaped.
pub fn block(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n' || c == '\t')
}

/// `body` as a fenced Markdown code block (info string `lang`): the fence is
/// longer than any run of backticks in `body`, so nothing in it can close the
/// block early; control characters are escaped as by [`block`].
pub fn fenced(lang: &str, body: &str) -> String {
    let body = block(body);
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let newline = if body.ends_with('\n') { "" } else { "\n" };
    format!("{fence}{lang}\n{body}{newline}{fence}\n")
}

/// `s` as literal Markdown text on one line (a table cell, a heading): control
/// characters escaped as by [`line`], then every ASCII punctuation character
/// backslash-escaped, so nothing in it becomes code, emphasis, a link, an
/// image, HTML, a table column or a heading, whatever the renderer (CommonMark
/// and GitHub's accept a backslash before any ASCII punctuation).
pub fn markdown(s: &str) -> String {
    let s = line(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_become_visible() {
        // Clear screen, retitle the window (OSC), an 8-bit CSI, a hidden bidi override.
        let hostile = "fix\x1b[2J\x1b]0;pwned\x07 this\u{9b}31m\u{202E}txt.exe\r\n\tnext";
        assert_eq!(line(hostile), "fix\\x1b[2J\\x1b]0;pwned\\x07 this\\u{9b}31m\\u{202e}txt.exe\\r\\n\\tnext");
        assert_eq!(block(hostile), "fix\\x1b[2J\\x1b]0;pwned\\x07 this\\u{9b}31m\\u{202e}txt.exe\\r\n\tnext");
        assert!(!line(hostile).chars().any(char::is_control));
        // Ordinary text, accents, emoji and CJK are left alone (and not copied).
        for ok in ["cgen: prologue — faster ✓ 日本語", ""] {
            assert!(matches!(line(ok), Cow::Borrowed(_)), "{ok}");
            assert_eq!(block(ok), ok);
        }
        assert_eq!(line("\0\x7f"), "\\x00\\x7f");
    }

    #[test]
    fn markdown_text_stays_text() {
        let subject = "fix `x` | *y* <img src=x onerror=alert(1)> [a](http://e) ![i](u) @team #12 \\";
        let md = markdown(subject);
        assert_eq!(
            md,
            "fix \\`x\\` \\| \\*y\\* \\<img src\\=x onerror\\=alert\\(1\\)\\> \\[a\\]\\(http\\:\\/\\/e\\) \\!\\[i\\]\\(u\\) \\@team \\#12 \\\\"
        );
        // Every special character is escaped: none stands alone.
        let bare =
            md.char_indices().filter(|&(i, c)| c.is_ascii_punctuation() && c != '\\' && !md[..i].ends_with('\\'));
        assert_eq!(bare.count(), 0, "{md}");
        assert_eq!(markdown("a\x1b[31mb\nc"), "a\\\\x1b\\[31mb\\\\nc");
        assert_eq!(markdown("plain words 123"), "plain words 123");
    }
}
