//! The live pages that `optimize --serve` and `optimize-dashboard` serve: a
//! run's report under the live strip (`dashboard_run.html`, with
//! `dashboard_live.html` and the poller `dashboard_poll.html`), and pages of
//! text (`dashboard_message.html`). Built-in templates, every variable escaped.

use crate::optimize::record::RunRecord;
use minijinja::{context, Value};

/// What the strip offers to stop the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Nothing: the run is not running.
    None,
    /// The dashboard's form, posting the token to `/runs/<id>/stop`.
    Form,
    /// `optimize --serve`'s link to its `/stop` page.
    Link,
    /// A stop was asked for: the run stops after the attempt under way.
    Requested,
}

/// The live strip over a run's page, and what its poller needs.
#[derive(Debug, Clone)]
pub struct Strip<'a> {
    /// The dashboard's run id (a link back to the list, the stop form's
    /// target); none on `optimize --serve`'s page.
    pub id: Option<&'a str>,
    /// What the run is doing, in words.
    pub state: String,
    /// Whether the run is still going.
    pub running: bool,
    /// What stops it.
    pub stop: Stop,
    /// Lines the live log has had, and its last ones.
    pub count: u64,
    /// The last lines, shown as text.
    pub log: String,
    /// The page's version (`state.json`'s `version`): the poller reloads the
    /// page when it changes.
    pub version: serde_json::Value,
}

impl Strip<'_> {
    fn context(&self) -> Value {
        // A JSON value in the page's script: made here, no outside text; `<` escaped all the same.
        let version_js = self.version.to_string().replace('<', "\\u003c");
        context! {
            id => self.id,
            state => self.state.clone(),
            running => self.running,
            stop => match self.stop {
                Stop::None => "",
                Stop::Form => "form",
                Stop::Link => "link",
                Stop::Requested => "requested",
            },
            count => self.count,
            log => self.log.clone(),
            version_js => super::safe(version_js),
        }
    }
}

/// The run's report page (as `report.html` shows it) under the live strip.
pub fn run_page(record: &RunRecord, strip: &Strip) -> String {
    let page = super::optimize::page(record, &super::now());
    render("dashboard_run.html", context! { live => strip.context(), ..page })
}

/// A form on a message page: a token field and a button, posted to `action`.
#[derive(Debug, Clone)]
pub struct TokenForm<'a> {
    /// Where it posts.
    pub action: &'a str,
    /// The field's label.
    pub label: &'a str,
    /// The button's words.
    pub button: &'a str,
    /// A paragraph under it ([`text`], [`code`], [`link`]s).
    pub after: Vec<Value>,
}

/// A page of text: `parts` are [`text`], [`code`] and [`link`]s, escaped by
/// the template; with the live strip (and its poller) when given, and a form.
pub fn message(title: &str, parts: &[Value], strip: Option<&Strip>, form: Option<&TokenForm>) -> String {
    let form =
        form.map(|f| context! { action => f.action, label => f.label, button => f.button, after => f.after.clone() });
    render("dashboard_message.html", context! { title, parts, live => strip.map(Strip::context), form })
}

/// Plain text of a message.
pub fn text(s: &str) -> Value {
    context! { text => s, code => false, href => () }
}

/// Code in a message.
pub fn code(s: &str) -> Value {
    context! { text => s, code => true, href => () }
}

/// A link in a message.
pub fn link(href: &str, s: &str) -> Value {
    context! { text => s, code => false, href }
}

/// Render a built-in template. A failure is a bug of the templates: it is a
/// plain page saying so, not a panic of the server thread.
pub fn render(name: &str, ctx: Value) -> String {
    static TEMPLATES: std::sync::OnceLock<super::Templates> = std::sync::OnceLock::new();
    TEMPLATES.get_or_init(super::Templates::embedded).render(name, ctx).unwrap_or_else(|e| {
        format!("<!doctype html>\n<title>error</title>\n<pre>{}</pre>\n", super::escape(&format!("{e:#}")))
    })
}
