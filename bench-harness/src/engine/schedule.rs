//! The schedule of a comparison: which case gets the next rounds, in which
//! order the two sides run in a round, and when to stop. Independent of the
//! kernel: [`adaptive`] takes its rounds from a [`RoundSource`].

use super::{classify, Change, CompareConfig, BATCH};
use crate::error::Result;
use crate::program::Program;
use crate::stats::paired::{self, RatioEstimate};

/// Where the adaptive loop gets its rounds from: the kernel in [`run`](super::run), a
/// noise model in the coverage simulation ([`crate::coverage`]), so that the
/// simulation runs the engine's own decisions.
pub trait RoundSource {
    /// Measure round `done` (0-based, counted per case) of case `case`:
    /// `(base, reference)`, or `None` if the case is not measured (it failed
    /// to load on a side).
    fn round(&mut self, case: usize, done: usize) -> Result<Option<(f64, f64)>>;

    /// Whether the time budget is spent; asked before each batch past the
    /// first pass.
    fn out_of_time(&self) -> bool;
}

/// The paired rounds of one case and what the engine concluded from them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Paired {
    /// BASE samples, one per round.
    pub base: Vec<f64>,
    /// REF samples, paired with `base`.
    pub reference: Vec<f64>,
    /// REF/BASE with its interval (`None` without a round).
    pub estimate: Option<RatioEstimate>,
    /// The verdict at `threshold_pct`.
    pub change: Option<Change>,
}

/// The engine's adaptive rounds over `cases` cases: every case first gets
/// `min_rounds`; then, until the source is out of time, the case with the
/// widest interval (relative to its estimate) gets [`BATCH`] more, until every
/// interval is narrower than `target_ci_pct` or has `max_rounds`.
pub fn adaptive(cases: usize, config: &CompareConfig, source: &mut impl RoundSource) -> Result<Vec<Paired>> {
    let mut tracks = vec![Paired::default(); cases];
    let mut measured = vec![true; cases];
    // Every case gets its minimum first, so a short budget still covers the suite.
    for (case, track) in tracks.iter_mut().enumerate() {
        for _ in 0..config.min_rounds {
            match source.round(case, track.base.len())? {
                Some((x, y)) => {
                    track.base.push(x);
                    track.reference.push(y);
                }
                None => measured[case] = false,
            }
        }
        estimate(track, config);
    }
    loop {
        let widest = tracks
            .iter()
            .enumerate()
            .filter(|(case, t)| measured[*case] && t.base.len() < config.max_rounds)
            .filter_map(|(case, t)| t.estimate.map(|est| (relative_width_pct(&est), case)))
            .filter(|(w, _)| *w > config.target_ci_pct)
            .max_by(|x, y| x.0.total_cmp(&y.0));
        let Some((_, case)) = widest else { break };
        if source.out_of_time() {
            break;
        }
        let track = &mut tracks[case];
        for _ in 0..BATCH.min(config.max_rounds - track.base.len()) {
            let Some((x, y)) = source.round(case, track.base.len())? else {
                measured[case] = false;
                break;
            };
            track.base.push(x);
            track.reference.push(y);
        }
        estimate(track, config);
    }
    Ok(tracks)
}

/// Resamples of the suite geometric mean's bootstrap.
pub const BOOTSTRAP_ITERATIONS: usize = 2000;

/// Seed of the suite geometric mean's bootstrap: the same samples always
/// give the same interval.
pub const BOOTSTRAP_SEED: u64 = 0x5eed;

/// The suite summary as the engine computes it: [`paired::geometric_mean`]
/// of the runtime cases' paired rounds at `config.level`.
pub fn suite_geomean(runtime: &[(&[f64], &[f64])], config: &CompareConfig) -> Option<RatioEstimate> {
    paired::geometric_mean(runtime, config.level, BOOTSTRAP_ITERATIONS, BOOTSTRAP_SEED)
}

/// The loaded copies of one case's programs, per side, and the order in
/// which the engine uses them.
pub struct Copies {
    base: Vec<Program>,
    reference: Vec<Program>,
}

impl Copies {
    /// Copies loaded beforehand, as many on each side (at least one).
    ///
    /// # Panics
    ///
    /// If the sides hold different numbers of copies, or none.
    pub fn new(base: Vec<Program>, reference: Vec<Program>) -> Self {
        assert!(!base.is_empty() && base.len() == reference.len(), "copies come in pairs");
        Copies { base, reference }
    }

    /// The `(base, reference)` copies for round `done` of the case, as
    /// [`copy_slot`] assigns them: each copy pair serves one round; past the
    /// copies loaded beforehand, the slot is refilled from `load` first.
    pub fn for_round(
        &mut self,
        done: usize,
        load: impl FnOnce() -> Result<(Program, Program)>,
    ) -> Result<(&Program, &Program)> {
        let (slot, fresh) = copy_slot(done, self.base.len());
        if fresh {
            (self.base[slot], self.reference[slot]) = load()?;
        }
        Ok((&self.base[slot], &self.reference[slot]))
    }
}

/// Which of `copies` loaded copy pairs serves round `done` of a case, and
/// whether that slot must first be refilled with a freshly loaded pair.
///
/// Every round gets a copy pair no other round used. A program's JIT
/// placement shifts all its samples by a few %; rounds sharing a copy would
/// share that offset, and the Wilcoxon interval, which takes rounds as
/// independent, would come out too narrow (89 % coverage and 9–10 % A/A
/// false verdicts in the simulation when an AB/BA pair shared its copies,
/// doc/measurements.md §7). With one copy pair per round the offsets are
/// part of each round's own noise. The coverage simulation
/// ([`crate::coverage`]) draws placement offsets by this same schedule.
pub fn copy_slot(done: usize, copies: usize) -> (usize, bool) {
    let copies = copies.max(1);
    (done % copies, done >= copies)
}

/// Round `done` of a case in ABBA order: base first in even rounds,
/// reference first in odd ones. Returns `(base, reference)`.
pub fn abba(
    done: usize,
    mut base: impl FnMut() -> Result<f64>,
    mut reference: impl FnMut() -> Result<f64>,
) -> Result<(f64, f64)> {
    if done % 2 == 0 {
        let x = base()?;
        Ok((x, reference()?))
    } else {
        let y = reference()?;
        Ok((base()?, y))
    }
}

/// Interval width relative to the estimate, in %: a +200 % change measured
/// to ±1 % of itself is as settled as a 0 % change measured to ±1 %.
fn relative_width_pct(est: &RatioEstimate) -> f64 {
    (est.hi - est.lo) / est.ratio * 100.0
}

fn estimate(paired: &mut Paired, config: &CompareConfig) {
    if paired.base.is_empty() {
        return;
    }
    let est = paired::paired_ratio(&paired.base, &paired.reference, config.level);
    paired.change = Some(classify(&est, config.threshold_pct));
    paired.estimate = Some(est);
}
