//! One interface from every result kind to every format, hyperfine style:
//! [`Results`] is what a command produced, [`Format`] where it goes, and
//! [`exporter`] gives the [`Exporter`] of a format. A command calls
//! `exporter(format).export(&results)` and writes the bytes
//! ([`super::write_output`]), or lets [`Outputs::write`] write every output
//! its flags asked for. Adding a format is a [`Format`] variant, its
//! exporter and its line in [`Outputs`] here (and its flag in
//! `flags::OutputFlags`); adding a result kind is one variant and its arm in
//! each exporter.

use super::html::Templates;
use super::{append_step_summary, write_output, Human, STEP_SUMMARY_VAR};
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
    /// The result in this format (every format renders every result kind;
    /// an error is a template that does not render, or a write error).
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
            Results::Optimize(o) => Ok(super::table::optimize_markdown(o).into_bytes()),
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
            Results::Run(r) => super::html::run::render(r, &templates, &generated)?,
            Results::Comparison(c) => super::html::compare::render(c, &templates, &generated)?,
            Results::History(h) => super::html::history::render_with(h, &templates, &generated)?,
            Results::Optimize(o) => super::html::optimize::render_with(o, &templates, &generated)?,
        };
        Ok(page.into_bytes())
    }
}

/// The files a command writes for one result: every format through
/// [`exporter`], each a PATH or `-` for stdout (`flags::OutputFlags::outputs`
/// fills it, with the command's default files).
#[derive(Debug, Clone)]
pub struct Outputs {
    /// `--json-output` (or the command's default file).
    pub json: Option<PathBuf>,
    /// `--markdown`.
    pub markdown: Option<PathBuf>,
    /// `--csv`.
    pub csv: Option<PathBuf>,
    /// `--html` (or the command's default file).
    pub html: Option<PathBuf>,
    /// `--template DIR`.
    pub templates: Option<PathBuf>,
    /// How the JSON file is named when printed (`JSON: <path>`; bench: `results`).
    pub json_label: &'static str,
    /// How the HTML file is named when printed (`HTML: <path>`; bench-history: `report`).
    pub html_label: &'static str,
}

impl Default for Outputs {
    fn default() -> Self {
        Outputs {
            json: None,
            markdown: None,
            csv: None,
            html: None,
            templates: None,
            json_label: "JSON",
            html_label: "HTML",
        }
    }
}

impl Outputs {
    /// Check what can be checked before the command runs: the `--template`
    /// files parse (one error naming the file, before minutes of measuring).
    pub fn check(&self) -> Result<()> {
        if self.html.is_some() {
            Templates::load(self.templates.as_deref())?;
        }
        Ok(())
    }

    /// Write each output asked for (JSON, HTML, Markdown, CSV), print where
    /// it went, and append the Markdown to `$GITHUB_STEP_SUMMARY` when that is
    /// set. The HTML templates are read (and checked) before anything is written.
    pub fn write(&self, results: &Results, human: &Human) -> Result<()> {
        let export = |format: Format| exporter(format).export(results);
        let html = match &self.html {
            Some(path) => Some((path, export(Format::Html { templates: self.templates.clone() })?)),
            None => None,
        };
        if let Some(path) = &self.json {
            write_output(path, &export(Format::Json)?)?;
            human.wrote(self.json_label, path);
        }
        if let Some((path, page)) = html {
            write_output(path, &page)?;
            human.wrote(self.html_label, path);
        }
        let summary = std::env::var_os(STEP_SUMMARY_VAR).is_some_and(|v| !v.is_empty());
        if self.markdown.is_some() || summary {
            let markdown = export(Format::Markdown)?;
            if let Some(path) = &self.markdown {
                write_output(path, &markdown)?;
                human.wrote("Markdown", path);
            }
            if let Some(summary) = append_step_summary(&String::from_utf8_lossy(&markdown))? {
                human.line(format!("Markdown appended to ${STEP_SUMMARY_VAR}: {}", summary.display()));
            }
        }
        if let Some(path) = &self.csv {
            write_output(path, &export(Format::Csv)?)?;
            human.wrote("CSV", path);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_kind_goes_to_every_format() {
        let run = super::super::html::run::tests::run();
        let comparison = super::super::html::compare::tests::comparison();
        let history = super::super::html::history::tests::synthetic();
        let optimize = super::super::html::optimize::tests::synthetic();
        let kinds = [
            (Results::Run(&run), "xdp__prologue"),
            (Results::Comparison(&comparison), "xdp__prologue"),
            (Results::History(&history), "xdp__ip4"),
            (Results::Optimize(&optimize), "unroll the rule loop"),
        ];
        let formats = [
            Format::Terminal { color: false },
            Format::Json,
            Format::Markdown,
            Format::Csv,
            Format::Html { templates: None },
        ];
        for (results, needle) in &kinds {
            for format in &formats {
                let bytes = exporter(format.clone())
                    .export(results)
                    .unwrap_or_else(|e| panic!("{} as {format:?}: {e:#}", results.kind()));
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.contains(needle), "{} as {format:?} lacks {needle}:\n{text}", results.kind());
                match format {
                    Format::Json => {
                        serde_json::from_str::<serde_json::Value>(&text).unwrap();
                    }
                    Format::Csv => {
                        let mut rows = ::csv::Reader::from_reader(text.as_bytes());
                        let width = rows.headers().unwrap().len();
                        assert!(rows.records().all(|r| r.unwrap().len() == width), "{text}");
                    }
                    Format::Html { .. } => assert!(text.starts_with("<!doctype html>"), "{text}"),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn an_optimize_run_s_markdown_escapes_the_model_s_titles() {
        let mut record = super::super::html::optimize::tests::synthetic();
        record.attempts[1].plan = "TITLE: <img src=x> | `x` *y*".into();
        let md = String::from_utf8(exporter(Format::Markdown).export(&Results::Optimize(&record)).unwrap()).unwrap();
        assert!(md.contains("| 1 | kept | hoist the \\<ctx\\> load \\& reuse it | -4.0 % "), "{md}");
        assert!(md.contains("\\<img src\\=x\\> \\| \\`x\\` \\*y\\*"), "{md}");
        assert!(md.contains("4 attempt(s), 1 kept: cumulative **-4.0 %**"), "{md}");
        assert_eq!(md.lines().filter(|l| l.starts_with("| ")).count(), 5, "a header and four attempts:\n{md}");
    }
}
