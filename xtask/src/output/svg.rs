//! The one plot module of every HTML report: inline SVG written by hand.
//!
//! Not a plotting crate: plotters' SVG backend needs a font backend
//! (`ttf`/`ab_glyph`, with system fonts or an embedded font file) just to
//! measure the axis labels it lays out, while an SVG `<text>` element lets the
//! browser pick and size the font itself. The plots need only lines,
//! rectangles, circles and text, so a few hundred lines of SVG are simpler
//! than the dependency, keep each report one offline file, and are
//! deterministic. Every text drawn (tooltips, labels) goes through
//! [`escape`]; the pages insert the returned SVG as markup.
//!
//! Three plots: [`series`] (a value per commit, with a secondary panel:
//! bench-history), [`steps`] (a cumulative level per attempt: optimize) and
//! [`forest`] (each case's Δ with its interval: bench-compare).

use super::html::escape;
use bench_harness::engine::Change;

/// Append formatted text to a `String` (writing to a `String` cannot fail).
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($out, $($arg)*);
    }};
}

/// Light grid lines.
pub const GRID: &str = "#e6e6e6";
/// Axes.
pub const AXIS: &str = "#888";
/// The main data line.
pub const LINE: &str = "#1f5fa8";
/// A significant slowdown (the stylesheet's `--slower`).
pub const SLOWER: &str = "#c62828";
/// A significant speedup (the stylesheet's `--faster`).
pub const FASTER: &str = "#2e7d32";
/// A failure of a case, a build or a step.
pub const FAILURE: &str = "#ef6c00";
/// Neither: no change, no plan, not measured.
pub const NEUTRAL: &str = "#9e9e9e";

/// The colour of a verdict.
pub fn change_color(change: Change) -> &'static str {
    match change {
        Change::Slower => SLOWER,
        Change::Faster => FASTER,
        Change::NoChange => AXIS,
    }
}

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

// ---- series: a value per commit (bench-history) -----------------------------
//
// Layout, in viewBox units (the SVG scales to the page width): a main panel
// (median line, p05–p95 band, markers), an optional secondary panel below
// it sharing the x axis (a step line, e.g. instruction counts), and the
// commit labels under the last panel, rotated. Commit `i` is drawn at the
// centre of slot `i` of `n` equal slots, so failed commits keep their place
// and show as gaps.

/// A measured value with its spread.
pub struct Mark {
    pub mid: f64,
    pub lo: f64,
    pub hi: f64,
    /// Tooltip (raw text, escaped when drawn).
    pub tip: String,
    /// Where the point links to (a commit page), if anywhere.
    pub href: Option<String>,
}

/// What to draw at one commit.
pub enum Slot {
    Value(Mark),
    /// The commit did not build (tooltip).
    BuildFailed(String),
    /// The value failed at this commit (tooltip).
    CaseFailed(String),
    /// Nothing to show.
    Empty,
}

/// A significant change at a commit.
pub struct Highlight {
    pub index: usize,
    pub change: Change,
    /// Short annotation drawn above the plot.
    pub text: String,
    pub tip: String,
    /// Changes merged into this highlight.
    pub count: usize,
}

/// A second panel: one optional value (with tooltip) per commit.
pub struct Secondary {
    pub title: String,
    pub values: Vec<Option<(f64, String)>>,
}

pub struct Plot<'a> {
    /// Commit labels, one per slot.
    pub labels: &'a [String],
    pub slots: Vec<Slot>,
    pub y_title: String,
    pub highlights: Vec<Highlight>,
    pub secondary: Option<Secondary>,
    /// Draw a darker line at y = 0.
    pub zero_line: bool,
}

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 14.0;
/// Two rows of change annotations.
const TOP: f64 = 30.0;
const MAIN_H: f64 = 200.0;
const GAP: f64 = 14.0;
const SECOND_H: f64 = 64.0;
const LABELS_H: f64 = 58.0;

const INSNS: &str = "#7b4fa0";
const FAILED: &str = NEUTRAL;
const CASE_FAILED: &str = FAILURE;
const TEXT: &str = "#555";

fn color(change: Change) -> &'static str {
    change_color(change)
}

/// A y axis: the range it covers and its tick step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub step: f64,
}

impl Axis {
    /// An axis covering `lo..=hi` with about `ticks` round ticks.
    pub fn new(lo: f64, hi: f64, ticks: usize, integer: bool) -> Self {
        let (mut lo, mut hi) = (lo, hi);
        if !(lo.is_finite() && hi.is_finite()) {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
            (lo, hi) = (lo - pad, hi + pad);
        } else {
            // A little air so that the data does not touch the frame.
            let pad = (hi - lo) * 0.04;
            (lo, hi) = (lo - pad, hi + pad);
        }
        let mut step = nice_step((hi - lo) / ticks.max(1) as f64);
        if integer {
            step = step.ceil().max(1.0);
        }
        Axis { lo: (lo / step).floor() * step, hi: (hi / step).ceil() * step, step }
    }

    fn ticks(&self) -> Vec<f64> {
        let count = ((self.hi - self.lo) / self.step + 1e-6).floor() as usize;
        (0..=count).map(|k| self.lo + k as f64 * self.step).collect()
    }

    /// Tick label: as many decimals as the step needs.
    fn label(&self, v: f64) -> String {
        let decimals = (-self.step.log10().floor()).clamp(0.0, 6.0) as usize;
        let v = if v.abs() < self.step * 1e-9 { 0.0 } else { v };
        format!("{v:.decimals$}")
    }
}

/// A vertical panel: its top, height and axis.
struct Panel {
    top: f64,
    height: f64,
    axis: Axis,
}

impl Panel {
    fn y(&self, v: f64) -> f64 {
        self.top + (self.axis.hi - v) / (self.axis.hi - self.axis.lo) * self.height
    }

    fn bottom(&self) -> f64 {
        self.top + self.height
    }

    /// Frame, grid, tick labels and rotated title.
    fn draw_frame(&self, out: &mut String, title: &str, zero_line: bool) {
        let right = WIDTH - RIGHT;
        for t in self.axis.ticks() {
            let y = self.y(t);
            put!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{right}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{GRID}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"{TEXT}\">{}</text>\n",
                LEFT - 6.0,
                y + 4.0,
                self.axis.label(t)
            );
        }
        if zero_line && self.axis.lo < 0.0 && self.axis.hi > 0.0 {
            let y = self.y(0.0);
            put!(out, "<line x1=\"{LEFT}\" x2=\"{right}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{AXIS}\"/>\n");
        }
        put!(
            out,
            "<rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"{AXIS}\"/>\n",
            self.top,
            right - LEFT,
            self.height
        );
        let cy = self.top + self.height / 2.0;
        put!(
            out,
            "<text transform=\"translate(14 {cy:.1}) rotate(-90)\" font-size=\"11.5\" text-anchor=\"middle\" \
             fill=\"{TEXT}\">{}</text>\n",
            escape(title)
        );
    }
}

/// Runs of consecutive indices where `present` holds.
fn runs(n: usize, present: impl Fn(usize) -> bool) -> Vec<std::ops::Range<usize>> {
    let mut out = vec![];
    let mut start = None;
    for i in 0..=n {
        match (i < n && present(i), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// The plot as an `<svg>` element.
pub fn series(plot: &Plot) -> String {
    let n = plot.labels.len().max(1);
    let slot_w = (WIDTH - LEFT - RIGHT) / n as f64;
    let x = |i: usize| LEFT + (i as f64 + 0.5) * slot_w;
    let r = (slot_w * 0.22).clamp(1.6, 3.5);

    let values: Vec<&Mark> =
        plot.slots.iter().filter_map(|s| if let Slot::Value(m) = s { Some(m) } else { None }).collect();
    let lo = values.iter().map(|m| m.lo.min(m.mid)).fold(f64::INFINITY, f64::min);
    let hi = values.iter().map(|m| m.hi.max(m.mid)).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if plot.zero_line { (lo.min(0.0), hi.max(0.0)) } else { (lo, hi) };
    let main = Panel { top: TOP, height: MAIN_H, axis: Axis::new(lo, hi, 5, false) };
    let second = plot.secondary.as_ref().map(|s| {
        let lo = s.values.iter().flatten().map(|v| v.0).fold(f64::INFINITY, f64::min);
        let hi = s.values.iter().flatten().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max);
        (Panel { top: main.bottom() + GAP, height: SECOND_H, axis: Axis::new(lo, hi, 2, true) }, s)
    });
    let plots_bottom = second.as_ref().map_or(main.bottom(), |(p, _)| p.bottom());
    let height = plots_bottom + LABELS_H;

    let mut out = String::with_capacity(16 * 1024);
    put!(
        out,
        "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height:.0}\" \
         role=\"img\" aria-label=\"{}\">\n",
        escape(&plot.y_title)
    );

    // Backgrounds first: failed commits and changes span every panel.
    for (i, slot) in plot.slots.iter().enumerate() {
        if let Slot::BuildFailed(tip) = slot {
            put!(
                out,
                "<rect x=\"{:.1}\" y=\"{TOP}\" width=\"{slot_w:.1}\" height=\"{:.1}\" fill=\"{FAILED}\" \
                 fill-opacity=\"0.28\"><title>{}</title></rect>\n",
                x(i) - slot_w / 2.0,
                plots_bottom - TOP,
                escape(tip)
            );
        }
    }
    for h in &plot.highlights {
        put!(
            out,
            "<rect x=\"{:.1}\" y=\"{TOP}\" width=\"{slot_w:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.13\"/>\n",
            x(h.index) - slot_w / 2.0,
            plots_bottom - TOP,
            color(h.change)
        );
    }

    main.draw_frame(&mut out, &plot.y_title, plot.zero_line);
    if values.is_empty() {
        put!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"middle\" fill=\"{TEXT}\">\
             not measured at any commit</text>\n",
            (LEFT + WIDTH - RIGHT) / 2.0,
            main.top + main.height / 2.0
        );
    }

    // p05–p95 band and median line, broken at gaps.
    let mark = |i: usize| match plot.slots.get(i) {
        Some(Slot::Value(m)) => Some(m),
        _ => None,
    };
    for run in runs(plot.slots.len(), |i| mark(i).is_some()) {
        let marks: Vec<(usize, &Mark)> = run.clone().filter_map(|i| Some((i, mark(i)?))).collect();
        if marks.len() == 1 {
            let (i, m) = marks[0];
            put!(
                out,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"{LINE}\" stroke-opacity=\"0.45\" \
                 stroke-width=\"{3:.1}\"/>\n",
                x(i),
                main.y(m.lo),
                main.y(m.hi),
                (r * 1.2).max(1.5)
            );
            continue;
        }
        let upper = marks.iter().map(|(i, m)| format!("{:.1},{:.1}", x(*i), main.y(m.hi)));
        let lower = marks.iter().rev().map(|(i, m)| format!("{:.1},{:.1}", x(*i), main.y(m.lo)));
        let band: Vec<String> = upper.chain(lower).collect();
        put!(out, "<polygon points=\"{}\" fill=\"{LINE}\" fill-opacity=\"0.18\"/>\n", band.join(" "));
        let line: Vec<String> = marks.iter().map(|(i, m)| format!("{:.1},{:.1}", x(*i), main.y(m.mid))).collect();
        put!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{LINE}\" stroke-width=\"1.8\" stroke-linejoin=\"round\"/>\n",
            line.join(" ")
        );
    }
    // Points with tooltips, failure markers.
    for (i, slot) in plot.slots.iter().enumerate() {
        match slot {
            Slot::Value(m) => {
                let circle = format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"{LINE}\"><title>{}</title></circle>",
                    x(i),
                    main.y(m.mid),
                    escape(&m.tip)
                );
                match &m.href {
                    Some(href) => put!(out, "<a href=\"{}\">{circle}</a>\n", escape(href)),
                    None => put!(out, "{circle}\n"),
                }
            }
            Slot::BuildFailed(tip) => cross(&mut out, x(i), main.bottom() - 9.0, FAILED, tip),
            Slot::CaseFailed(tip) => cross(&mut out, x(i), main.bottom() - 9.0, CASE_FAILED, tip),
            Slot::Empty => {}
        }
    }
    // Change points: a ring around the point, and the Δ above the plot
    // (alternating between two rows when annotations would collide).
    let mut row_end = [f64::NEG_INFINITY; 2];
    let mut highlights: Vec<&Highlight> = plot.highlights.iter().collect();
    highlights.sort_by_key(|h| h.index);
    for h in highlights {
        let c = color(h.change);
        let cx = x(h.index);
        if let Some(m) = mark(h.index) {
            put!(
                out,
                "<circle cx=\"{cx:.1}\" cy=\"{:.1}\" r=\"{:.1}\" fill=\"{c}\" stroke=\"#fff\" stroke-width=\"1.2\">\
                 <title>{}</title></circle>\n",
                main.y(m.mid),
                r + 2.2,
                escape(&h.tip)
            );
        }
        let half = 3.5 * h.text.chars().count() as f64;
        let row = if row_end[0] < cx - half {
            0
        } else if row_end[1] < cx - half {
            1
        } else {
            0
        };
        row_end[row] = cx + half + 4.0;
        put!(
            out,
            "<text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"11.5\" font-weight=\"600\" text-anchor=\"middle\" \
             fill=\"{c}\"><title>{}</title>{}</text>\n",
            if row == 0 { 12.0 } else { 25.0 },
            escape(&h.tip),
            escape(&h.text)
        );
    }

    if let Some((panel, s)) = &second {
        panel.draw_frame(&mut out, &s.title, false);
        let value = |i: usize| s.values.get(i).and_then(Option::as_ref);
        // Step line: flat across each commit's slot, vertical at changes.
        for run in runs(s.values.len(), |i| value(i).is_some()) {
            let mut d = String::new();
            for i in run {
                let (v, _) = value(i).expect("in a run");
                let (x0, y) = (x(i) - slot_w / 2.0, panel.y(*v));
                if d.is_empty() {
                    put!(d, "M{x0:.1},{y:.1}");
                } else {
                    put!(d, "V{y:.1}");
                }
                put!(d, "H{:.1}", x0 + slot_w);
            }
            put!(out, "<path d=\"{d}\" fill=\"none\" stroke=\"{INSNS}\" stroke-width=\"1.8\"/>\n");
        }
        let mut previous: Option<f64> = None;
        for i in 0..s.values.len() {
            let Some((v, tip)) = value(i) else { continue };
            put!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{:.1}\" fill=\"{INSNS}\"><title>{}</title></circle>\n",
                x(i),
                panel.y(*v),
                (r * 0.8).max(1.4),
                escape(tip)
            );
            // Label each change of the count with its new value.
            if previous.is_some_and(|p| p != *v) {
                let above = panel.y(*v) - 5.0 > panel.top + 8.0;
                put!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"{INSNS}\">{}</text>\n",
                    x(i),
                    if above { panel.y(*v) - 5.0 } else { panel.y(*v) + 13.0 },
                    format!("{v:.0}")
                );
            }
            previous = Some(*v);
        }
    }

    // Commit labels: thinned to fit, change points always shown.
    let max_labels = ((WIDTH - LEFT - RIGHT) / 13.0).floor().max(1.0) as usize;
    let every = plot.labels.len().div_ceil(max_labels).max(1);
    let highlighted = |i: usize| plot.highlights.iter().find(|h| h.index == i);
    let near_highlight = |i: usize| plot.highlights.iter().any(|h| h.index != i && h.index.abs_diff(i) < every);
    for (i, label) in plot.labels.iter().enumerate() {
        let (fill, weight) = match highlighted(i) {
            Some(h) => (color(h.change), "600"),
            None if i % every == 0 && !near_highlight(i) => (TEXT, "normal"),
            None => continue,
        };
        let fill = if matches!(plot.slots.get(i), Some(Slot::BuildFailed(_))) { FAILED } else { fill };
        put!(
            out,
            "<text transform=\"translate({:.1} {:.1}) rotate(-45)\" font-size=\"10.5\" font-weight=\"{weight}\" \
             text-anchor=\"end\" fill=\"{fill}\" font-family=\"ui-monospace, Menlo, Consolas, monospace\">{}</text>\n",
            x(i) + 3.0,
            plots_bottom + 12.0,
            escape(label)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// An × marker with a tooltip.
fn cross(out: &mut String, cx: f64, cy: f64, stroke: &str, tip: &str) {
    let d = 4.0;
    put!(
        out,
        "<path d=\"M{:.1},{:.1}l{d2},{d2}m0,-{d2}l-{d2},{d2}\" stroke=\"{stroke}\" stroke-width=\"2.2\" \
         fill=\"none\"><title>{}</title></path>\n",
        cx - d,
        cy - d,
        escape(tip),
        d2 = 2.0 * d
    );
}

// ---- steps: a cumulative level per attempt (optimize) -----------------------

/// One attempt on the [`steps`] plot.
pub struct StepPoint {
    /// The cumulative Δ % after this attempt (the line's level).
    pub level: f64,
    /// Its colour (by outcome).
    pub color: &'static str,
    /// Whether the attempt moved the line (kept): drawn larger, no ring.
    pub kept: bool,
    /// Where a measured attempt would have landed (Δ %, with its interval).
    pub landed: Option<(f64, f64, f64)>,
    /// Tooltip of its dot (raw text).
    pub tip: String,
    /// Tooltip of its ring (raw text).
    pub ring_tip: String,
    /// The dot's link (an anchor of the page).
    pub href: String,
}

/// A step line from the baseline (0 %) through each attempt's cumulative
/// level, with each measured attempt's interval and, for one not kept, a
/// ring where it would have landed.
pub fn steps(points: &[StepPoint], y_title: &str) -> String {
    const WIDTH: f64 = 1000.0;
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 14.0;
    const H: f64 = 240.0;
    const BOTTOM: f64 = 42.0;
    const TEXT: &str = "#555";

    let levels: Vec<f64> = std::iter::once(0.0).chain(points.iter().map(|p| p.level)).collect();
    let mut lo = levels.iter().copied().fold(0.0, f64::min);
    let mut hi = levels.iter().copied().fold(0.0, f64::max);
    for (m, l, h) in points.iter().filter_map(|p| p.landed) {
        lo = lo.min(l).min(m);
        hi = hi.max(h).max(m);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        (lo, hi) = (-1.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(0.25);
    let step = nice_step((hi - lo + 2.0 * pad) / 5.0);
    let (lo, hi) = (((lo - pad) / step).floor() * step, ((hi + pad) / step).ceil() * step);
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * H;
    let n = points.len() + 1;
    let slot = (WIDTH - LEFT - RIGHT) / n as f64;
    let x = |i: usize| LEFT + (i as f64 + 0.5) * slot;
    let r = (slot * 0.22).clamp(2.2, 5.0);

    let mut out = String::with_capacity(8 * 1024);
    put!(
        out,
        "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {:.0}\" role=\"img\" \
         aria-label=\"{}\">\n",
        TOP + H + BOTTOM,
        escape(y_title)
    );
    let decimals = (0..4).find(|&d| (step * 10f64.powi(d)).fract().abs() < 1e-6).unwrap_or(4) as usize;
    let ticks = ((hi - lo) / step + 1e-6).floor() as usize;
    for k in 0..=ticks {
        let v = lo + k as f64 * step;
        let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
        let yy = y(v);
        let stroke = if v == 0.0 { AXIS } else { GRID };
        let label = if v == 0.0 { "0".to_owned() } else { format!("{v:+.decimals$}") };
        put!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"{stroke}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"{TEXT}\">{label}</text>\n",
            WIDTH - RIGHT,
            LEFT - 6.0,
            yy + 4.0
        );
    }
    put!(
        out,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{H}\" fill=\"none\" stroke=\"{AXIS}\"/>\n\
         <text transform=\"translate(16 {:.1}) rotate(-90)\" font-size=\"11.5\" text-anchor=\"middle\" \
         fill=\"{TEXT}\">{}</text>\n",
        WIDTH - LEFT - RIGHT,
        TOP + H / 2.0,
        escape(y_title)
    );
    // X labels: every attempt, or every k-th when there are many.
    let every = nice_step(n as f64 / 25.0).ceil().max(1.0) as usize;
    for i in (0..n).filter(|i| i % every == 0) {
        let label = if i == 0 { "base".to_owned() } else { format!("#{i}") };
        put!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"{TEXT}\">{label}</text>\n",
            x(i),
            TOP + H + 16.0
        );
    }
    put!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11.5\" text-anchor=\"middle\" fill=\"{TEXT}\">attempt</text>\n",
        (LEFT + WIDTH - RIGHT) / 2.0,
        TOP + H + 34.0
    );
    // Measured attempts: interval whisker, and a ring where one not kept would have landed.
    for (i, p) in points.iter().enumerate() {
        let Some((m, l, h)) = p.landed else { continue };
        let (c, xi) = (p.color, x(i + 1));
        put!(
            out,
            "<line x1=\"{xi:.1}\" x2=\"{xi:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{c}\" stroke-opacity=\"0.55\" \
             stroke-width=\"2\"/>\n",
            y(l),
            y(h)
        );
        if !p.kept {
            put!(
                out,
                "<line x1=\"{xi:.1}\" x2=\"{xi:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{c}\" stroke-opacity=\"0.5\" \
                 stroke-dasharray=\"2 2\"/>\n<circle cx=\"{xi:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"#fff\" \
                 stroke=\"{c}\" stroke-width=\"1.5\"><title>{}</title></circle>\n",
                y(levels[i + 1]),
                y(m),
                y(m),
                escape(&p.ring_tip)
            );
        }
    }
    // The cumulative step line.
    let mut d = format!("M{:.1},{:.1}", x(0), y(levels[0]));
    for (i, &c) in levels.iter().enumerate().skip(1) {
        put!(d, " H{:.1} V{:.1}", x(i), y(c));
    }
    put!(out, "<path d=\"{d}\" fill=\"none\" stroke=\"{LINE}\" stroke-width=\"2\" stroke-linejoin=\"round\"/>\n");
    put!(
        out,
        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"{LINE}\"><title>baseline</title></circle>\n",
        x(0),
        y(0.0)
    );
    for (i, p) in points.iter().enumerate() {
        let rr = if p.kept { r + 1.2 } else { r };
        put!(
            out,
            "<a href=\"{}\"><circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{rr:.1}\" fill=\"{}\" stroke=\"#fff\" \
             stroke-width=\"1\"><title>{}</title></circle></a>\n",
            escape(&p.href),
            x(i + 1),
            y(levels[i + 1]),
            p.color,
            escape(&p.tip)
        );
    }
    out.push_str("</svg>\n");
    out
}
/// One row of a forest plot: a case's Δ % with its interval, coloured by the
/// engine's verdict.
#[derive(Debug, Clone)]
pub struct ForestRow {
    /// The case's name, drawn left of its row.
    pub name: String,
    /// The panel the row is drawn in: rows of one unit share an axis
    /// (`per packet (ns)`, `chain load (ms)`); rows keep their order within it.
    pub panel: String,
    /// Δ % and its interval, when measured on both sides.
    pub estimate: Option<(f64, f64, f64)>,
    /// The engine's verdict (its colour); `None` when not measured.
    pub change: Option<Change>,
    /// Tooltip (raw text).
    pub tip: String,
}

/// The x range of one forest panel: every dot and the threshold band, and the
/// whiskers up to one more such width on each side, so that one very wide
/// interval (a noisy chain load) cannot squeeze every other row into a few
/// pixels. Whiskers beyond it are clamped and end in an arrow.
fn forest_range(rows: &[&ForestRow], t: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (-t, t);
    for (m, _, _) in rows.iter().filter_map(|r| r.estimate) {
        lo = lo.min(m);
        hi = hi.max(m);
    }
    let span = (hi - lo).max(1.0);
    let (cap_lo, cap_hi) = (lo - span, hi + span);
    for (_, l, h) in rows.iter().filter_map(|r| r.estimate) {
        lo = lo.min(l.max(cap_lo));
        hi = hi.max(h.min(cap_hi));
    }
    if !(lo.is_finite() && hi.is_finite()) || hi - lo <= 0.0 {
        (lo, hi) = (-1.0, 1.0);
    }
    (lo, hi)
}

/// A forest plot: one row per case, its Δ % as a dot with its interval as a
/// whisker, coloured by verdict, over the shaded band `±threshold_pct` where
/// no verdict is given whatever the interval, and the line of no change.
/// Rows are drawn in panels by [`ForestRow::panel`], each with its own axis
/// (a heading names a panel when there are several); a whisker that leaves
/// its panel's axis ends in an arrow (the tooltip keeps the interval).
pub fn forest(rows: &[ForestRow], threshold_pct: f64) -> String {
    const WIDTH: f64 = 1000.0;
    const LEFT: f64 = 260.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 10.0;
    const ROW: f64 = 22.0;
    const AXIS_H: f64 = 40.0;
    const HEAD: f64 = 22.0;
    const TEXT: &str = "#555";

    let mut panels: Vec<(&str, Vec<&ForestRow>)> = vec![];
    for row in rows {
        match panels.iter_mut().find(|(p, _)| *p == row.panel) {
            Some((_, members)) => members.push(row),
            None => panels.push((&row.panel, vec![row])),
        }
    }
    if panels.is_empty() {
        panels.push(("", vec![]));
    }
    let headed = panels.len() > 1;
    let height: f64 =
        panels.iter().map(|(_, r)| if headed { HEAD } else { 0.0 } + ROW * r.len().max(1) as f64 + AXIS_H).sum::<f64>()
            + TOP;

    let mut out = String::with_capacity(4 * 1024 + rows.len() * 512);
    put!(
        out,
        "<svg class=\"plot forest\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" \
         aria-label=\"Δ % of each case with its interval\">\n"
    );
    let t = threshold_pct.abs();
    let mut top = TOP;
    for (panel, members) in &panels {
        if headed {
            put!(
                out,
                "<text class=\"panel\" x=\"{LEFT:.1}\" y=\"{:.1}\" font-size=\"12\" font-weight=\"600\" fill=\"#222\">{}</text>\n",
                top + 14.0,
                escape(panel)
            );
            top += HEAD;
        }
        let h = ROW * members.len().max(1) as f64;
        let (lo, hi) = forest_range(members, t);
        let pad = (hi - lo) * 0.05;
        let step = nice_step((hi - lo + 2.0 * pad) / 6.0);
        let (lo, hi) = (((lo - pad) / step).floor() * step, ((hi + pad) / step).ceil() * step);
        let x = |v: f64| LEFT + (v.clamp(lo, hi) - lo) / (hi - lo) * (WIDTH - LEFT - RIGHT);
        let y = |i: usize| top + (i as f64 + 0.5) * ROW;
        // The threshold band: inside it, no verdict.
        put!(
            out,
            "<rect class=\"band\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{AXIS}\" \
             fill-opacity=\"0.15\"><title>{}</title></rect>\n",
            x(-t),
            x(t) - x(-t),
            escape(&format!("±{t} %: below the threshold, no verdict"))
        );
        let ticks = ((hi - lo) / step + 1e-6).floor() as usize;
        let decimals = (-step.log10().floor()).clamp(0.0, 4.0) as usize;
        for k in 0..=ticks {
            let v = lo + k as f64 * step;
            let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
            let stroke = if v == 0.0 { AXIS } else { GRID };
            let label = if v == 0.0 { "0".to_owned() } else { format!("{v:+.decimals$}") };
            put!(
                out,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{top:.1}\" y2=\"{1:.1}\" stroke=\"{stroke}\"/>\
                 <text x=\"{0:.1}\" y=\"{2:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"{TEXT}\">{label}</text>\n",
                x(v),
                top + h,
                top + h + 15.0
            );
        }
        put!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11.5\" text-anchor=\"middle\" fill=\"{TEXT}\">\
             Δ % REF vs BASE (paired; right is slower)</text>\n",
            (LEFT + WIDTH - RIGHT) / 2.0,
            top + h + 32.0
        );
        for (i, row) in members.iter().enumerate() {
            let yy = y(i);
            put!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11.5\" text-anchor=\"end\" fill=\"#222\" \
                 font-family=\"ui-monospace, Menlo, Consolas, monospace\">{}</text>\n",
                LEFT - 8.0,
                yy + 4.0,
                escape(&row.name)
            );
            match (row.estimate, row.change) {
                (Some((m, l, hh)), Some(change)) => {
                    let c = if change == Change::NoChange { NEUTRAL } else { change_color(change) };
                    // An end beyond the axis: an arrow head at the edge, pointing out.
                    let mut arrows = String::new();
                    if l < lo {
                        let e = x(lo);
                        put!(arrows, "<path class=\"clamped\" d=\"M{e:.1},{yy:.1}l7,-4.5v9z\" fill=\"{c}\"/>");
                    }
                    if hh > hi {
                        let e = x(hi);
                        put!(arrows, "<path class=\"clamped\" d=\"M{e:.1},{yy:.1}l-7,-4.5v9z\" fill=\"{c}\"/>");
                    }
                    put!(
                        out,
                        "<g class=\"{}\"><title>{}</title><line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" \
                         stroke=\"{c}\" stroke-width=\"2.2\"/>{arrows}<circle cx=\"{:.1}\" cy=\"{yy:.1}\" r=\"4.5\" fill=\"{c}\"/></g>\n",
                        super::format::change_code(Some(change), true),
                        escape(&row.tip),
                        x(l),
                        x(hh),
                        x(m)
                    );
                }
                _ => put!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{FAILURE}\"><title>{}</title>not measured</text>\n",
                    LEFT + 6.0,
                    yy + 4.0,
                    escape(&row.tip)
                ),
            }
        }
        top += h + AXIS_H;
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round_and_cover_the_data() {
        let a = Axis::new(11.3, 14.9, 5, false);
        assert!(a.lo <= 11.3 && a.hi >= 14.9, "{a:?}");
        assert_eq!(a.step, 1.0);
        assert_eq!(a.label(12.0), "12");
        let flat = Axis::new(120.0, 120.0, 2, true);
        assert!(flat.lo < 120.0 && flat.hi > 120.0 && flat.step >= 1.0, "{flat:?}");
        let small = Axis::new(0.012, 0.018, 5, false);
        assert_eq!(small.label(small.lo + small.step), format!("{:.3}", small.lo + small.step));
        assert_eq!(runs(5, |i| i != 2), vec![0..2, 3..5]);
    }
}

#[cfg(test)]
mod forest_tests {
    use super::*;

    #[test]
    fn the_band_and_every_interval_are_inside_the_axis() {
        let rows = vec![
            ForestRow {
                name: "a<b>".into(),
                panel: "per packet (ns)".into(),
                estimate: Some((12.0, 10.0, 14.0)),
                change: Some(Change::Slower),
                tip: "t&".into(),
            },
            ForestRow {
                name: "c".into(),
                panel: "per packet (ns)".into(),
                estimate: None,
                change: None,
                tip: "why".into(),
            },
        ];
        let svg = forest(&rows, 1.0);
        assert!(svg.contains("a&lt;b&gt;") && svg.contains("t&amp;") && !svg.contains("a<b>"));
        assert!(svg.contains("<rect class=\"band\""));
        assert!(svg.contains(&format!("stroke=\"{SLOWER}\"")));
        assert!(svg.contains(">not measured</text>"));
        // Every x coordinate lies in the plot's width.
        let xs: Vec<f64> = svg
            .split(['"', ' '])
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0].ends_with("x1=") || w[0].ends_with("x2=") || w[0].ends_with("cx="))
            .filter_map(|w| w[1].parse().ok())
            .collect();
        assert!(!xs.is_empty() && xs.iter().all(|x| (0.0..=1000.0).contains(x)), "{xs:?}");
    }

    fn row(name: &str, panel: &str, m: f64, l: f64, h: f64) -> ForestRow {
        ForestRow {
            name: name.into(),
            panel: panel.into(),
            estimate: Some((m, l, h)),
            change: Some(Change::NoChange),
            tip: name.into(),
        }
    }

    /// The x coordinates of the dots (`cx`), in row order.
    fn dots(svg: &str) -> Vec<f64> {
        svg.split("cx=\"").skip(1).map(|s| s[..s.find('"').unwrap()].parse().unwrap()).collect()
    }

    #[test]
    fn each_unit_gets_its_own_axis_and_a_wide_interval_is_clamped_with_an_arrow() {
        // Two runtime cases 1 % apart, a chain load measured ±60 %.
        let rows = vec![
            row("xdp", "per packet (ns)", 0.5, 0.2, 0.8),
            row("tc", "per packet (ns)", 1.5, 1.2, 1.8),
            row("load", "chain load (ms)", 10.0, -50.0, 70.0),
        ];
        let svg = forest(&rows, 1.0);
        assert!(svg.contains(">per packet (ns)</text>") && svg.contains(">chain load (ms)</text>"), "{svg}");
        assert_eq!(svg.matches("<rect class=\"band\"").count(), 2, "one band per panel");
        let x = dots(&svg);
        // The runtime cases' dots stay far apart on their own axis (740 px of plot width).
        assert!(x[1] - x[0] > 100.0, "{x:?}");
        // The load's ±60 % whisker is cut at its own axis, with an arrow at each end.
        assert_eq!(svg.matches("class=\"clamped\"").count(), 2, "{svg}");

        // With the runtime cases on one axis, the ±60 % whisker is cut with arrows at both
        // ends, and the dots 1 point apart stay apart.
        let rows = vec![
            row("xdp", "per packet (ns)", 0.5, 0.2, 0.8),
            row("tc", "per packet (ns)", 1.5, 1.2, 1.8),
            row("noisy", "per packet (ns)", 2.0, -60.0, 64.0),
        ];
        let svg = forest(&rows, 1.0);
        assert_eq!(svg.matches("class=\"clamped\"").count(), 2, "{svg}");
        assert!(!svg.contains("font-weight=\"600\""), "one panel: no heading");
        let x = dots(&svg);
        assert!(x[1] - x[0] > 40.0, "unclamped they would be 6 px apart: {x:?}");
        assert!(svg.contains("<title>noisy</title>"), "the tooltip keeps the row");
    }
}
