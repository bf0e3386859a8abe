//! What the HTML reports (history, optimize) share: text escaping and the
//! `put!` macro for building pages in a `String`.

/// Append formatted text to a `String` (writing to a `String` cannot fail).
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($out, $($arg)*);
    }};
}
pub(crate) use put;

/// Escape text for HTML element content and (double- or single-quoted)
/// attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Light grid lines of the reports' plots.
pub const GRID: &str = "#e6e6e6";
/// Axes of the reports' plots.
pub const AXIS: &str = "#888";
/// The main data line of the reports' plots.
pub const LINE: &str = "#1f5fa8";

/// A tick step for a plot axis: 1, 2, 2.5 or 5 times a power of ten, at
/// least `raw` (1 for a step that is not a positive number).
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let base = 10f64.powf(raw.log10().floor());
    let f = raw / base;
    [1.0, 2.0, 2.5, 5.0].into_iter().find(|&n| f <= n * (1.0 + 1e-9)).unwrap_or(10.0) * base
}

#[cfg(test)]
mod tests {
    #[test]
    fn nice_steps() {
        assert_eq!(super::nice_step(0.7), 1.0);
        assert_eq!(super::nice_step(2.2), 2.5);
        assert_eq!(super::nice_step(37.0), 50.0);
        assert_eq!(super::nice_step(0.0), 1.0);
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            super::escape("<script>a & 'b' \"c\"</script>"),
            "&lt;script&gt;a &amp; &#39;b&#39; &quot;c&quot;&lt;/script&gt;"
        );
    }
}
