//! One interface from every result kind to every format, hyperfine style:
//! [`Results`] is what a command produced, [`Format`] where it goes, and
//! [`exporter`] gives the [`Exporter`] of a format. A command calls
//! `exporter(format).export(&results)` and writes the bytes
//! ([`super::write_output`]); adding a format is one exporter here, adding a
//! result kind one variant and its arm in each exporter.

use super::html::Templates;
use crate::history::History;
use crate::optimize::record::RunRecord;
use anyhow::Result;
use bench_harness::engine::Comparison;
use bench_harness::results::RunResults;
use std::path::PathBuf;

/// A result, of any kind a command produces.
#[derive(Debug, Clone, Copy)]
pub enum Results<'a> {
    /// One tree's run of the suite (`bench`).
    Run(&'a RunResults),
    /// Two revisions compared (`bench-compare`).
    Comparison(&'a Comparison),
    /// A range of commits (`bench-history`).
    History(&'a History),
    /// A model-driven optimize run (`optimize`).
    Optimize(&'a RunRecord),
}

impl Results<'_> {
    /// What the result is, for messages (`a comparison`).
    pub fn kind(&self) -> &'static str {
        match self {
            Results::Run(_) => "a run",
            Results::Comparison(_) => "a comparison",
            Results::History(_) => "a history",
            Results::Optimize(_) => "an optimize run",
        }
    }
}

/// An output format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The human output: tables and summary lines (`color`: ANSI colors).
    Terminal {
        /// Whether the output takes ANSI colors (`--color`).
        color: bool,
    },
    /// The result's versioned JSON schema.
    Json,
    /// GitHub-flavoured Markdown, for a pull-request comment or a job summary.
    Markdown,
    /// RFC 4180 CSV, one row per case (and commit, or attempt).
    Csv,
    /// A self-contained HTML page.
    Html {
        /// `--template DIR`: templates replacing the embedded ones.
        templates: Option<PathBuf>,
    },
}

/// Turns a result into the bytes of one format.
pub trait Exporter {
    /// The result in this format; an error for a result kind the format
    /// does not render.
    fn export(&self, results: &Results) -> Result<Vec<u8>>;
}

/// The exporter of `format`.
pub fn exporter(format: Format) -> Box<dyn Exporter> {
    match format {
        Format::Terminal { color } => Box::new(Terminal { color }),
        Format::Json => Box::new(Json),
        Format::Markdown => Box::new(Markdown),
        Format::Csv => Box::new(Csv),
        Format::Html { templates } => Box::new(Html { templates }),
    }
}

fn unsupported(format: &str, results: &Results) -> anyhow::Error {
    anyhow::anyhow!("{format} is not available for {}", results.kind())
}

struct Json;

impl Exporter for Json {
    fn export(&self, results: &Results) -> Result<Vec<u8>> {
        Ok(match results {
            Results::Run(r) => serde_json::to_vec_pretty(r)?,
            Results::Comparison(c) => serde_json::to_vec_pretty(c)?,
            Results::History(h) => serde_json::to_vec_pretty(h)?,
            Results::Optimize(o) => serde_json::to_vec_pretty(o)?,
        })
    }
}

struct Terminal {
    color: bool,
}

impl Exporter for Terminal {
    fn export(&self, results: &Results) -> Result<Vec<u8>> {
        let text = match results {
            Results::Run(r) => super::table::run(r, self.color),
            Results::Comparison(c) => {
                format!("{}\n{}", super::report::compare_table(c, self.color), super::report::summary(c).trim_end())
            }
            Results::History(h) => super::table::history(h),
            Results::Optimize(o) => super::table::optimize(o),
        };
        Ok(text.into_bytes())
    }
}

struct Markdown;

impl Exporter for Markdown {
    fn export(&self, results: &Results) -> Result<Vec<u8>> {
        match results {
            Results::Run(r) => Ok(super::table::run_markdown(r).into_bytes()),
            Results::Comparison(c) => Ok(super::report::markdown(c).into_bytes()),
            Results::History(h) => Ok(crate::history::markdown::render(h).into_bytes()),
            other => Err(unsupported("Markdown", other)),
        }
    }
}

struct Csv;

impl Exporter for Csv {
    fn export(&self, results: &Results) -> Result<Vec<u8>> {
        match results {
            Results::Run(r) => super::report::run_csv(r),
            Results::Comparison(c) => super::report::compare_csv(c),
            Results::History(h) => super::csv::history(h),
            Results::Optimize(o) => super::csv::optimize(o),
        }
    }
}

struct Html {
    templates: Option<PathBuf>,
}

impl Exporter for Html {
    fn export(&self, results: &Results) -> Result<Vec<u8>> {
        let templates = Templates::load(self.templates.as_deref())?;
        let generated = super::html::now();
        let page = match results {
            Results::Comparison(c) => super::html::compare::render(c, &templates, &generated)?,
            Results::History(h) => super::html::history::render_with(h, &templates, &generated)?,
            Results::Optimize(o) => super::html::optimize::render_with(o, &templates, &generated)?,
            other => return Err(unsupported("HTML", other)),
        };
        Ok(page.into_bytes())
    }
}
