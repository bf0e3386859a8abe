//! The schedule of a comparison: which case gets the next rounds, in which
//! order the two sides run in a round, and when to stop. Independent of the
//! kernel: [`adaptive`] takes its rounds from a [`RoundSource`].
//!
//! Sequential: a case is looked at after a fixed list of round counts
//! ([`looks`]) and stops as soon as its interval is [`decided`]; each look's
//! interval is at [`look_level`], so that looking several times does not
//! raise the error rate.

use super::{classify, Change, CompareConfig};
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

    /// Whether the time budget is spent; asked before each look past the
    /// first pass.
    fn out_of_time(&self) -> bool;

    /// Whether a round of `case` would end past the budget; asked before each
    /// round past the first pass. The kernel answers from the case's slowest
    /// round so far, so the last rounds end by the deadline instead of
    /// overrunning it by a round (a 65 536-element chain load takes over a
    /// second). Default: [`RoundSource::out_of_time`].
    fn no_time_for(&self, case: usize) -> bool {
        let _ = case;
        self.out_of_time()
    }

    /// The loop will measure at most `rounds` more rounds (told whenever the
    /// bound changes; it only shrinks, as cases are decided or found
    /// unmeasured). For progress displays.
    fn plan(&mut self, rounds: usize) {
        let _ = rounds;
    }

    /// Time spent measuring `case` so far, in any unit (the kernel: seconds).
    /// The loop gives the next rounds to the open case that has cost the
    /// least, so a case 50 times as slow per round (a chain load of 65 536
    /// elements) does not eat the budget of fifty others. Sources without a
    /// clock (the simulation) leave it at 0: then fewest rounds first.
    fn spent(&self, case: usize) -> f64 {
        let _ = case;
        0.0
    }
}

/// The paired rounds of one case and what the engine concluded from them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Paired {
    /// BASE samples, one per round.
    pub base: Vec<f64>,
    /// REF samples, paired with `base`.
    pub reference: Vec<f64>,
    /// REF/BASE with its interval at the per-look level ([`look_level`];
    /// `None` without a round).
    pub estimate: Option<RatioEstimate>,
    /// The verdict at `threshold_pct`.
    pub change: Option<Change>,
    /// Whether the case stopped because its interval was decided
    /// ([`decided`]), not because it reached `max_rounds` or the budget ended.
    pub decided: bool,
}

/// Factor by which a case's rounds grow from one look to the next.
pub const LOOK_GROWTH: f64 = 1.5;

/// The round counts at which the engine looks at a case's interval:
/// `min_rounds`, then × [`LOOK_GROWTH`] (rounded up to whole AB/BA pairs) up
/// to `max_rounds`. Default: 12, 18, 28, 42, 64, 80; `--quick`: 8, 12, 16.
///
/// A fixed, short list of looks is what makes the error rate controllable:
/// every look spends part of it ([`look_level`]). The first look is raised,
/// if need be, to the fewest rounds that can give an interval at the
/// per-look level (e.g. 10 at `bench-history`'s 99 % with `--quick`), so no
/// look is wasted on a case that cannot be decided yet.
pub fn looks(config: &CompareConfig) -> Vec<usize> {
    let mut first = config.min_rounds.max(1);
    // K depends on the first look and the first look on K: a few rounds of this settle it.
    for _ in 0..4 {
        let alpha = (1.0 - config.level) / looks_from(first, config).len() as f64;
        let fewest = fewest_rounds_for(alpha);
        if fewest > first {
            // Raised: to whole AB/BA pairs, as every later look.
            first = fewest + fewest % 2;
        }
    }
    looks_from(first, config)
}

/// The fewest rounds for which a Wilcoxon signed-rank interval exists at
/// two-sided `alpha`: the most extreme outcome of n rounds has probability
/// 2 / 2ⁿ, which must not exceed `alpha`; and never fewer than
/// [`paired::MIN_PAIRED_ROUNDS`].
fn fewest_rounds_for(alpha: f64) -> usize {
    let mut n = paired::MIN_PAIRED_ROUNDS;
    while 2.0 / 2f64.powi(n as i32) > alpha && n < 64 {
        n += 1;
    }
    n
}

fn looks_from(first: usize, config: &CompareConfig) -> Vec<usize> {
    let last = config.max_rounds.max(first);
    let mut out = vec![first];
    let mut n = first;
    while n < last {
        let next = (n as f64 * LOOK_GROWTH).ceil() as usize;
        n = (next + next % 2).max(n + 1).min(last);
        out.push(n);
    }
    out
}

/// The confidence level of the interval at each look: Bonferroni over the
/// [`looks`], `1 − (1 − level) / K`. The chance that the interval misses the
/// truth at *any* look is then at most `1 − level`, whatever the dependence
/// between looks, so the interval at the look where a case stopped (chosen
/// by the data) still covers with at least `level`: these are repeated
/// confidence intervals. Default: 6 looks, 99.17 % each; `--quick`: 3 looks,
/// 98.33 % each.
pub fn look_level(config: &CompareConfig) -> f64 {
    1.0 - (1.0 - config.level) / looks(config).len() as f64
}

/// Whether an interval settles its case, so it needs no more rounds:
///
/// * **beyond**: it excludes 1 and the estimate is past the threshold (the
///   verdict is `slower` or `faster`, [`classify`]);
/// * **inside**: it lies within ±`threshold_pct` (whatever the truth, it is
///   smaller than the threshold);
/// * **precise**: it is narrower than `target_ci_pct` relative to its estimate.
///
/// An estimate without a real interval (too few rounds for the level) never is.
pub fn decided(est: &RatioEstimate, config: &CompareConfig) -> bool {
    if !has_interval(est) {
        return false;
    }
    let t = config.threshold_pct / 100.0;
    let beyond = classify(est, config.threshold_pct) != Change::NoChange;
    let inside = est.lo >= 1.0 - t && est.hi <= 1.0 + t;
    let precise = relative_width_pct(est) < config.target_ci_pct;
    beyond || inside || precise
}

/// Whether `est` has a real interval: enough rounds for one at its level
/// ([`paired::paired_ratio`] collapses it onto the point otherwise).
pub fn has_interval(est: &RatioEstimate) -> bool {
    est.n >= paired::MIN_PAIRED_ROUNDS && est.lo < est.hi
}

/// Where a case stands in the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Needs more rounds.
    Open,
    /// Decided, or at `max_rounds`.
    Done,
    /// Not measured (its source gave no round).
    Unmeasured,
}

/// The engine's sequential rounds over `cases` cases.
///
/// Every case first gets `min_rounds` (the first of its [`looks`]), so a
/// short budget still covers the suite. Then, until the source is out of
/// time, the open case that has cost the least time ([`RoundSource::spent`];
/// ties: the fewest rounds, then the widest interval) is measured up to its
/// next look. A case closes as soon as its interval
/// is [`decided`] or it has `max_rounds`: rounds go where the answer is not
/// known yet. Intervals are computed at [`look_level`], which pays for
/// looking up to K times.
pub fn adaptive(cases: usize, config: &CompareConfig, source: &mut impl RoundSource) -> Result<Vec<Paired>> {
    let looks = looks(config);
    let last = *looks.last().expect("at least one look");
    let mut tracks = vec![Paired::default(); cases];
    let mut state = vec![State::Open; cases];
    let plan = |tracks: &[Paired], state: &[State]| -> usize {
        tracks.iter().zip(state).filter(|(_, s)| **s == State::Open).map(|(t, _)| last - t.base.len().min(last)).sum()
    };
    source.plan(plan(&tracks, &state));
    // Every case gets its first look, so a short budget still covers the suite.
    for case in 0..cases {
        state[case] = look(case, looks[0], last, &mut tracks[case], config, source, false)?;
        source.plan(plan(&tracks, &state));
    }
    loop {
        let next = tracks
            .iter()
            .enumerate()
            .filter(|(case, _)| state[*case] == State::Open)
            .min_by(|(i, x), (j, y)| {
                let width = |t: &Paired| t.estimate.as_ref().map(relative_width_pct).unwrap_or(f64::INFINITY);
                (source.spent(*i).total_cmp(&source.spent(*j)))
                    .then(x.base.len().cmp(&y.base.len()))
                    .then(width(y).total_cmp(&width(x)))
            })
            .map(|(case, _)| case);
        let Some(case) = next else { break };
        if source.out_of_time() {
            break;
        }
        let done = tracks[case].base.len();
        let target = looks.iter().copied().find(|&n| n > done).unwrap_or(last);
        state[case] = look(case, target, last, &mut tracks[case], config, source, true)?;
        source.plan(plan(&tracks, &state));
    }
    Ok(tracks)
}

/// Measure `case` up to `target` rounds, then look at its interval. With
/// `timed`, the look ends early when a round of the case would end past the
/// budget ([`RoundSource::no_time_for`]), and the case is done: the budget
/// does not depend on the data, so the interval at the shortened look takes
/// the place of the planned one and the count of looks is unchanged.
fn look(
    case: usize,
    target: usize,
    last: usize,
    track: &mut Paired,
    config: &CompareConfig,
    source: &mut impl RoundSource,
    timed: bool,
) -> Result<State> {
    while track.base.len() < target {
        if timed && source.no_time_for(case) {
            // No time for another round of this case: it is done; a cheaper
            // case may still fit before the deadline.
            estimate(track, config);
            track.decided = track.estimate.as_ref().is_some_and(|est| decided(est, config));
            return Ok(State::Done);
        }
        let Some((x, y)) = source.round(case, track.base.len())? else {
            estimate(track, config);
            return Ok(State::Unmeasured);
        };
        track.base.push(x);
        track.reference.push(y);
    }
    estimate(track, config);
    track.decided = track.estimate.as_ref().is_some_and(|est| decided(est, config));
    Ok(if track.decided || track.base.len() >= last { State::Done } else { State::Open })
}

/// The rounds of a case up to its first look (`min_rounds`), which every
/// measured case gets whatever its data: a plain mean over them is unbiased
/// by the stopping. The engine's suite mean rested on these until
/// [`suite_geomean_sequential`] (all rounds, stopping replayed) replaced it
/// at under half the width; the coverage simulation still compares the two
/// (measurements.md §8).
pub fn first_look<'a>(base: &'a [f64], reference: &'a [f64], config: &CompareConfig) -> (&'a [f64], &'a [f64]) {
    let n = looks(config)[0].min(base.len()).min(reference.len());
    (&base[..n], &reference[..n])
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

/// Resamples of [`suite_geomean_sequential`]'s replayed bootstrap (each
/// replays every case's looks, so it is dearer than a resample of
/// [`suite_geomean`]).
pub const SEQUENTIAL_ITERATIONS: usize = 1000;

/// The suite geometric mean on **all** rounds of every case, with an
/// interval that accounts for the sequential stopping.
///
/// A case's estimate at the look where it stopped is biased: it stopped
/// because its estimate was, at that look, clearly beyond the threshold or
/// clearly inside it. Averaged over 31 cases, a bias of a tenth of a case's
/// standard error is half the suite's, and the plain bootstrap over all
/// rounds (which takes each case's round count as fixed) covered 89–95 %
/// (doc/measurements.md §8). Here each bootstrap resample *replays the
/// engine's looks*: a case's rounds are drawn with replacement from its own
/// log-ratios, looked at by the same [`looks`], [`look_level`] and
/// [`decided`] as in [`adaptive`], and stopped where the engine would have
/// stopped; its estimate there (Hodges–Lehmann, as the point) enters the
/// resampled suite mean. The resampled means' distribution around the point
/// is that of the stopped estimator, bias included, so the interval is the
/// *basic* bootstrap one (`2·point − quantiles`) and the point is corrected
/// by the mean bias of the resamples.
///
/// A case that ended undecided (at `max_rounds`, or cut by the budget) is
/// replayed up to its own round count: the budget does not depend on its
/// data. A decided case is replayed up to the most rounds an undecided case
/// got (what the budget allowed), or `max_rounds` when every case was
/// decided.
///
/// `runtime` as for [`suite_geomean`] (an untimed same-program case is one
/// round of equal samples and stays exactly 1). Deterministic
/// ([`BOOTSTRAP_SEED`]).
pub fn suite_geomean_sequential(runtime: &[(&[f64], &[f64])], config: &CompareConfig) -> Option<RatioEstimate> {
    suite_geomean_replayed(runtime, config, SEQUENTIAL_ITERATIONS, BOOTSTRAP_SEED)
}

/// [`suite_geomean_sequential`] with its resample count and seed.
pub fn suite_geomean_replayed(
    runtime: &[(&[f64], &[f64])],
    config: &CompareConfig,
    iterations: usize,
    seed: u64,
) -> Option<RatioEstimate> {
    use rand::{Rng, SeedableRng};
    let looks = looks(config);
    let per_look = look_level(config);
    let last = *looks.last().expect("at least one look");
    // Per case: its log-ratios, its point (all rounds), and the looks a replay
    // takes with their critical values.
    type Replay = (Vec<f64>, f64, Vec<(usize, Option<usize>)>);
    let measured: Vec<(Vec<f64>, RatioEstimate)> = runtime
        .iter()
        .map(|(b, r)| paired::paired_log_ratios(b, r))
        .filter(|logs| !logs.is_empty())
        .map(|logs| {
            let est = paired::ratio_of_logs(&logs, per_look);
            (logs, est)
        })
        .collect();
    // How far a decided case could have gone had its data not decided it:
    // as far as the cases still open at the end went (the budget stopped
    // them there), or to the last look if none was.
    let open_reached = measured
        .iter()
        .filter(|(_, est)| has_interval(est) && !decided(est, config))
        .map(|(logs, _)| logs.len())
        .max()
        .unwrap_or(last);
    let cases: Vec<Replay> = measured
        .into_iter()
        .map(|(logs, est)| {
            let cap = if decided(&est, config) { open_reached.max(logs.len()) } else { logs.len() };
            let mut at: Vec<usize> = looks.iter().copied().filter(|&n| n < cap).collect();
            at.push(cap);
            let at = at.into_iter().map(|n| (n, paired::wilcoxon_critical(n, per_look))).collect();
            (logs, est.ratio.ln(), at)
        })
        .collect();
    if cases.is_empty() {
        return None;
    }
    let k = cases.len() as f64;
    let point = cases.iter().map(|c| c.1).sum::<f64>() / k;
    if iterations == 0 {
        return Some(RatioEstimate {
            ratio: point.exp(),
            lo: point.exp(),
            hi: point.exp(),
            n: cases.len(),
            level: config.level,
        });
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut means = Vec::with_capacity(iterations);
    let (mut drawn, mut walsh) = (Vec::new(), Vec::new());
    for _ in 0..iterations {
        let mut sum = 0.0;
        for (logs, _, at) in &cases {
            drawn.clear();
            let mut stopped = 0.0;
            for &(n, critical) in at {
                // A single round (an untimed same-program case) draws nothing.
                let mut draw = || if logs.len() == 1 { logs[0] } else { logs[rng.gen_range(0..logs.len())] };
                drawn.extend((drawn.len()..n).map(|_| draw()));
                let est = paired::ratio_of_logs_with(&drawn, per_look, critical, &mut walsh);
                stopped = est.ratio.ln();
                if decided(&est, config) {
                    break;
                }
            }
            sum += stopped;
        }
        means.push(sum / k);
    }
    means.sort_unstable_by(f64::total_cmp);
    let bias = means.iter().sum::<f64>() / means.len() as f64 - point;
    let alpha = 1.0 - config.level;
    let corrected = point - bias;
    let lo = (2.0 * point - crate::stats::quantile(&means, 1.0 - alpha / 2.0)).min(corrected);
    let hi = (2.0 * point - crate::stats::quantile(&means, alpha / 2.0)).max(corrected);
    Some(RatioEstimate { ratio: corrected.exp(), lo: lo.exp(), hi: hi.exp(), n: cases.len(), level: config.level })
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
    let est = paired::paired_ratio(&paired.base, &paired.reference, look_level(config));
    // Without a real interval there is no evidence either way.
    let change = if has_interval(&est) { classify(&est, config.threshold_pct) } else { Change::NoChange };
    paired.change = Some(change);
    paired.estimate = Some(est);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Cases with a true ratio and a Gaussian log-noise each, seeded; a case
    /// with `None` is not measured. Optionally out of time after `budget` rounds.
    struct Synthetic {
        cases: Vec<Option<(f64, f64)>>,
        rng: StdRng,
        rounds: usize,
        budget: usize,
        /// Every `plan` bound, with the rounds measured when it was given.
        plans: Vec<(usize, usize)>,
        /// Cost of a round per case (all 0: no clock), and the cost so far.
        costs: Vec<f64>,
        spent: Vec<f64>,
        /// Budget units a round of each case uses (1 by default), and those used.
        weights: Vec<usize>,
        used: usize,
    }

    impl Synthetic {
        fn new(cases: Vec<Option<(f64, f64)>>, budget: usize) -> Self {
            let n = cases.len();
            Synthetic {
                cases,
                rng: StdRng::seed_from_u64(7),
                rounds: 0,
                budget,
                plans: vec![],
                costs: vec![0.0; n],
                spent: vec![0.0; n],
                weights: vec![1; n],
                used: 0,
            }
        }
    }

    impl RoundSource for Synthetic {
        fn round(&mut self, case: usize, _done: usize) -> Result<Option<(f64, f64)>> {
            let Some((ratio, sigma)) = self.cases[case] else { return Ok(None) };
            self.rounds += 1;
            self.used += self.weights[case];
            self.spent[case] += self.costs[case];
            let mut noise = || (sigma * (self.rng.gen::<f64>() - 0.5) * 12f64.sqrt()).exp();
            let base = 100.0 * noise();
            Ok(Some((base, 100.0 * ratio * noise())))
        }

        fn out_of_time(&self) -> bool {
            self.used >= self.budget
        }

        fn no_time_for(&self, case: usize) -> bool {
            self.used + self.weights[case] > self.budget
        }

        fn plan(&mut self, rounds: usize) {
            self.plans.push((self.rounds, rounds));
        }

        fn spent(&self, case: usize) -> f64 {
            self.spent[case]
        }
    }

    /// A case 50 times as costly per round gets its first look and then waits
    /// until the others have spent as much time: they get the budget.
    #[test]
    fn the_next_rounds_go_to_the_case_that_cost_least() {
        let config = CompareConfig::default();
        let cases = vec![Some((1.0, 0.10)); 3];
        let mut source = Synthetic::new(cases, 36 + 60);
        source.costs = vec![50.0, 1.0, 1.0];
        let tracks = adaptive(3, &config, &mut source).unwrap();
        assert_eq!(tracks[0].base.len(), 12, "the costly case waits");
        assert!(
            tracks[1].base.len() > 12 && tracks[2].base.len() > 12,
            "{:?}",
            tracks.iter().map(|t| t.base.len()).collect::<Vec<_>>()
        );
    }

    /// Past the first pass no round starts that would end past the budget:
    /// a case whose round no longer fits is done, and the time left goes to
    /// a case whose rounds still fit. The first pass is never cut.
    #[test]
    fn no_round_ends_past_the_budget_and_the_rest_goes_to_cheaper_cases() {
        let config = CompareConfig::default();
        let cases = vec![Some((1.0, 0.10)); 3];
        // First pass: 12 × (10 + 1 + 1) = 144 units; then 30 more.
        let mut source = Synthetic::new(cases, 144 + 30);
        source.weights = vec![10, 1, 1];
        source.costs = vec![0.0, 1.0, 1.0]; // case 0 looks cheapest: it is asked first
        let tracks = adaptive(3, &config, &mut source).unwrap();
        assert_eq!(source.used, 174, "the budget is used to the unit, never past it");
        let n: Vec<usize> = tracks.iter().map(|t| t.base.len()).collect();
        // Case 0 got 3 more rounds (30 units), then cases 1 and 2 had no budget left.
        assert_eq!(n, [15, 12, 12], "{n:?}");
        assert!(tracks.iter().all(|t| t.estimate.is_some_and(|e| e.n == t.base.len())), "intervals on every round");

        // 25 units past the first pass: two rounds of case 0 (20), then 5 rounds of the cheap cases.
        let mut source = Synthetic::new(vec![Some((1.0, 0.10)); 3], 144 + 25);
        source.weights = vec![10, 1, 1];
        source.costs = vec![0.0, 1.0, 1.0];
        let tracks = adaptive(3, &config, &mut source).unwrap();
        let n: Vec<usize> = tracks.iter().map(|t| t.base.len()).collect();
        assert_eq!(source.used, 169, "{n:?}");
        assert_eq!(n[0], 14, "{n:?}");
        assert_eq!(n[1] + n[2], 24 + 5, "{n:?}");

        // A first pass larger than the budget still runs whole.
        let mut source = Synthetic::new(vec![Some((1.0, 0.10)); 3], 10);
        let tracks = adaptive(3, &config, &mut source).unwrap();
        assert!(tracks.iter().all(|t| t.base.len() == 12));
    }

    #[test]
    fn looks_grow_by_half_in_whole_pairs_up_to_max() {
        assert_eq!(looks(&CompareConfig::default()), [12, 18, 28, 42, 64, 80]);
        assert_eq!(looks(&CompareConfig::quick()), [8, 12, 16]);
        let fixed = CompareConfig { min_rounds: 120, max_rounds: 120, ..CompareConfig::default() };
        assert_eq!(looks(&fixed), [120]);
        assert!((look_level(&fixed) - 0.95).abs() < 1e-12, "one look: the level itself");
        assert!((look_level(&CompareConfig::default()) - (1.0 - 0.05 / 6.0)).abs() < 1e-12);
        assert!((look_level(&CompareConfig::quick()) - (1.0 - 0.05 / 3.0)).abs() < 1e-12);
        // bench-history's 99 % with --quick: 8 rounds cannot give a 99.67 % interval (2/256 > 0.0033).
        let history = CompareConfig { level: 0.99, ..CompareConfig::quick() };
        assert_eq!(looks(&history), [10, 16]);
        let est =
            paired::paired_ratio(&[1.0; 10], &[1.1, 1.2, 1.1, 1.3, 1.1, 1.2, 1.1, 1.3, 1.2, 1.1], look_level(&history));
        assert!(has_interval(&est), "{est:?}");
        // --min-rounds 6 at the default level: 7 looks at 99.29 % need 9 rounds, so the first
        // look is raised to 10 (whole pairs), which leaves 6 looks.
        let six = CompareConfig { min_rounds: 6, ..CompareConfig::default() };
        assert_eq!(looks(&six), [10, 16, 24, 36, 54, 80]);
    }

    /// Every case stops at the first look where its interval is decided, or
    /// at `max_rounds`; never between looks; an unmeasured case gets nothing.
    #[test]
    fn a_case_stops_at_its_first_decided_look() {
        let config = CompareConfig::default();
        let cases = vec![
            Some((1.20, 0.01)),  // far beyond the threshold: decided at the first look
            Some((1.00, 0.001)), // inside ±1 % at once
            Some((1.00, 0.10)),  // too noisy to decide: runs to max_rounds
            Some((1.025, 0.03)), // somewhere in between
            None,                // does not load
        ];
        let mut source = Synthetic::new(cases, usize::MAX);
        let tracks = adaptive(5, &config, &mut source).unwrap();
        let looks = looks(&config);
        let level = look_level(&config);
        for (i, t) in tracks.iter().enumerate().take(4) {
            let n = t.base.len();
            assert!(looks.contains(&n), "case {i} stopped between looks at {n}");
            // No earlier look was decided.
            for &l in looks.iter().filter(|&&l| l < n) {
                let est = paired::paired_ratio(&t.base[..l], &t.reference[..l], level);
                assert!(!decided(&est, &config), "case {i} was decided at {l} but went on to {n}");
            }
            let est = t.estimate.unwrap();
            assert_eq!(est.level, level, "intervals at the per-look level");
            assert_eq!(t.decided, decided(&est, &config), "case {i}");
            assert!(t.decided || n == config.max_rounds, "case {i}: undecided at {n} < max");
        }
        assert_eq!(tracks[0].base.len(), 12);
        assert_eq!(tracks[0].change, Some(Change::Slower));
        assert_eq!(tracks[1].base.len(), 12);
        assert_eq!(tracks[1].change, Some(Change::NoChange));
        assert_eq!(tracks[2].base.len(), 80);
        assert!(!tracks[2].decided);
        assert!(tracks[4].base.is_empty() && tracks[4].estimate.is_none());
    }

    /// Past the first pass, rounds go to the open case with the fewest, and
    /// the bound told to `plan` only shrinks and is never exceeded.
    #[test]
    fn rounds_go_to_undecided_cases_and_the_plan_is_an_upper_bound() {
        let config = CompareConfig::default();
        let cases = vec![Some((1.0, 0.10)), Some((1.3, 0.01)), Some((1.0, 0.10)), Some((1.0, 0.10))];
        // Enough for the first pass (48) and a few looks, not for all.
        let mut source = Synthetic::new(cases, 130);
        let tracks = adaptive(4, &config, &mut source).unwrap();
        assert_eq!(tracks[1].base.len(), 12, "the decided case got no more rounds");
        let open: Vec<usize> = [0, 2, 3].iter().map(|&i| tracks[i].base.len()).collect();
        // The budget ends the run mid-look; until then the open cases took turns.
        let (lo, hi) = (open.iter().min().unwrap(), open.iter().max().unwrap());
        assert!(hi - lo <= 14, "open cases kept within one look (28 → 42) of each other: {open:?}");
        assert!(open.iter().all(|&n| n > 12), "every open case got more: {open:?}");
        assert_eq!(source.rounds, 130, "the budget is honoured to the round past the first pass");
        let total = source.rounds;
        let mut last = usize::MAX;
        for &(done, bound) in &source.plans {
            assert!(bound <= last, "the bound grew: {:?}", source.plans);
            assert!(total - done <= bound, "measured {} after a bound of {bound}", total - done);
            last = bound;
        }
    }
}
