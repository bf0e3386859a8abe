//! The HTML pages (bench-compare, bench-history, optimize): minijinja
//! templates with auto-escaping, one stylesheet, plots from [`super::svg`].
//!
//! The templates live in `xtask/templates/` and are embedded in the binary
//! (`include_str!`), so a report is one offline file from any working
//! directory. `--template DIR` replaces any of them by a file of the same name
//! in DIR. A template's variables are escaped for HTML by minijinja (the
//! templates are `.html`): commit subjects, case names, bfcli's and the
//! model's messages cannot inject markup. The only markup passed in is the
//! SVG of the plots, marked safe, which [`super::svg`] escapes itself.
//!
//! Each page module turns its result into a plain context (strings already
//! formatted by [`super::format`]) and renders its template.

pub mod compare;
pub mod history;
pub mod live;
pub mod optimize;
pub mod run;

use crate::planted::{self, Refused, Unread};
use anyhow::{Context as _, Result};
use minijinja::{Environment, UndefinedBehavior, Value};
use std::path::Path;

/// Escape text for HTML element content and (double- or single-quoted)
/// attribute values (the plots' text; the templates escape by themselves).
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

/// The embedded templates, by name (the names `--template DIR` overrides).
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../../templates/base.html")),
    ("style.css", include_str!("../../../templates/style.css")),
    ("compare.html", include_str!("../../../templates/compare.html")),
    ("history.html", include_str!("../../../templates/history.html")),
    ("optimize.html", include_str!("../../../templates/optimize.html")),
    ("run.html", include_str!("../../../templates/run.html")),
    ("dashboard.html", include_str!("../../../templates/dashboard.html")),
    ("dashboard_message.html", include_str!("../../../templates/dashboard_message.html")),
    ("dashboard_run.html", include_str!("../../../templates/dashboard_run.html")),
    ("dashboard_live.html", include_str!("../../../templates/dashboard_live.html")),
    ("dashboard_poll.html", include_str!("../../../templates/dashboard_poll.html")),
];

/// The largest template file `--template DIR` may hold.
const MAX_TEMPLATE: u64 = 1 << 20;

/// The page templates: the embedded ones, or a directory's files in their place.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates::embedded()
    }
}

impl Templates {
    /// The embedded templates.
    pub fn embedded() -> Templates {
        Templates::load(None).expect("the embedded templates are valid")
    }

    /// The embedded templates, each replaced by `dir`'s file of the same name
    /// when there is one (`--template DIR`). A file is opened without
    /// following a link and must be a regular file: the directory may be
    /// someone else's. A file that does not parse is one error naming it.
    pub fn load(dir: Option<&Path>) -> Result<Templates> {
        let mut env = Environment::new();
        // A template that names an unknown variable fails, instead of printing nothing.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        // Strings escaped by [`escape`], as the plots are: the same five
        // characters, and `/` left alone (paths and commit subjects stay readable).
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(s) if matches!(state.auto_escape(), minijinja::AutoEscape::Html) && !value.is_safe() => {
                out.write_str(&escape(s)).map_err(|_| minijinja::Error::from(minijinja::ErrorKind::WriteFailure))
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        for &(name, embedded) in TEMPLATES {
            let source = match dir {
                Some(dir) => read_override(&dir.join(name))?.unwrap_or_else(|| embedded.to_owned()),
                None => embedded.to_owned(),
            };
            env.add_template_owned(name, source).with_context(|| match dir {
                Some(dir) => format!(
                    "template {} does not parse; fix it, or remove it to use the built-in one",
                    dir.join(name).display()
                ),
                None => format!("built-in template {name}"),
            })?;
        }
        Ok(Templates { env })
    }

    /// Render template `name` with `context`.
    pub fn render(&self, name: &str, context: Value) -> Result<String> {
        let template = self.env.get_template(name)?;
        template.render(context).map_err(|e| anyhow::anyhow!("cannot render template {name}: {e:#}"))
    }
}

/// A template file of `--template DIR`, when it exists.
fn read_override(path: &Path) -> Result<Option<String>> {
    let shown = path.display();
    match planted::read(path, MAX_TEMPLATE) {
        Ok(text) => Ok(Some(text)),
        Err(why) if why.is_missing() => Ok(None),
        Err(Unread::Refused(Refused::Link)) => {
            anyhow::bail!("template {shown} is a symbolic link: refusing to follow it; copy the file instead")
        }
        Err(Unread::Refused(Refused::NotRegular)) => {
            anyhow::bail!("template {shown} is not a regular file: remove it or replace it by a file")
        }
        Err(Unread::TooLarge) => anyhow::bail!("template {shown} is larger than 1 MiB: is it a template?"),
        Err(Unread::Refused(Refused::Io(e)) | Unread::Io(e)) => anyhow::bail!("cannot read template {shown}: {e}"),
        Err(Unread::NotText) => anyhow::bail!("cannot read template {shown} (is it UTF-8 text?)"),
    }
}

/// Markup made here (an SVG plot, a coloured diff), inserted as is.
pub fn safe(markup: String) -> Value {
    Value::from_safe_string(markup)
}

/// A unified diff as markup: one `<span>` per line, classed by kind
/// (`file`, `hunk`, `add`, `del`, `ctx`) for the stylesheet; each line escaped.
pub fn diff(text: &str) -> Value {
    let mut out = String::with_capacity(text.len() * 5 / 4 + 64);
    for line in text.lines() {
        let class = if line.starts_with("diff --git") || line.starts_with("+++") || line.starts_with("---") {
            "file"
        } else if line.starts_with("@@") {
            "hunk"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else {
            "ctx"
        };
        let text = if line.is_empty() { " ".to_owned() } else { escape(line) };
        out.push_str(&format!("<span class=\"{class}\">{text}</span>"));
    }
    safe(out)
}

/// An HTML id for a case's section (letters, digits, `-` and `_` only).
pub fn case_id(case: &str) -> String {
    let safe: String =
        case.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    format!("case-{safe}")
}

/// The flags of a case as badge words: `set`, `log`, `userspace` (upstream's).
pub fn flag_words(flags: &bench_harness::suite::Flags) -> Vec<&'static str> {
    let mut out = vec![];
    if flags.use_set {
        out.push("set");
    }
    if flags.use_log {
        out.push("log");
    }
    if flags.userspace_only {
        out.push("userspace");
    }
    out
}

/// The generation date shown on a page.
pub fn now() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S %z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>a & 'b' \"c\"</script>"),
            "&lt;script&gt;a &amp; &#39;b&#39; &quot;c&quot;&lt;/script&gt;"
        );
        assert_eq!(case_id("a b/<c>"), "case-a-b--c-");
    }

    #[test]
    fn templates_escape_outside_text_but_not_the_plots() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compare.html"),
            "{% extends \"base.html\" %}{% block body %}<p>{{ text }}</p><a title=\"{{ text }}\">x</a>{{ plot }}{% endblock %}",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let hostile = "<img src=x onerror=alert(1)> \"q\" 'a' & </p><script>";
        let page = t.render("compare.html", context! { text => hostile, plot => safe("<svg></svg>".into()) }).unwrap();
        assert!(
            page.contains(
                "<p>&lt;img src=x onerror=alert(1)&gt; &quot;q&quot; &#39;a&#39; &amp; &lt;/p&gt;&lt;script&gt;</p>"
            ),
            "{page}"
        );
        assert!(page.contains("title=\"&lt;img src=x onerror=alert(1)&gt; &quot;q&quot;"), "{page}");
        assert!(!page.contains("<img") && page.contains("<svg></svg>"), "{page}");
        // The override took the embedded stylesheet through `base.html`.
        assert!(page.contains("--slower"));
        // A missing variable is an error, not an empty string.
        assert!(t.render("compare.html", context! { text => "x" }).is_err());
    }

    #[test]
    fn overrides_are_regular_files_and_must_parse() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere.html");
        std::fs::write(&elsewhere, "{{ secret }}").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("history.html")).unwrap();
        let err = format!("{:#}", Templates::load(Some(dir.path())).err().unwrap());
        assert!(err.contains("history.html is a symbolic link"), "{err}");
        std::fs::remove_file(dir.path().join("history.html")).unwrap();
        std::fs::write(dir.path().join("optimize.html"), "{% if %}").unwrap();
        let err = format!("{:#}", Templates::load(Some(dir.path())).err().unwrap());
        assert!(err.contains("optimize.html does not parse"), "{err}");
        std::fs::remove_file(dir.path().join("optimize.html")).unwrap();
        // No override at all: the embedded templates.
        assert!(Templates::load(Some(dir.path())).is_ok());
    }
}
