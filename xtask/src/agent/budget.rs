//! [`Budget`]: `--budget-usd`, checked *before* every model call.
//!
//! How the next call is estimated: before any call has been made, the estimate is the worst case
//! the caller computes (prompt size at the input price plus the call's full `max_tokens` at the
//! output price), so the first call can never overshoot. Once calls have been made, the worst case
//! is far too pessimistic (a thinking budget is rarely spent in full), so the estimate becomes the
//! larger of the average call and the last call: conversations grow, and the last call is the best
//! guide to the size of the next one.

use super::AgentError;
use serde::{Deserialize, Serialize};

/// Money spent on model calls, and the limit it may not pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// The limit in US dollars; `None` for no limit.
    pub limit_usd: Option<f64>,
    /// US dollars spent so far.
    pub spent_usd: f64,
    /// Model calls recorded so far.
    pub calls: u64,
    /// The cost of the last recorded call.
    pub last_call_usd: f64,
}

impl Budget {
    /// A budget of `limit_usd` dollars (`None`: unlimited), nothing spent yet.
    pub fn new(limit_usd: Option<f64>) -> Self {
        Budget { limit_usd, ..Budget::default() }
    }

    /// Fail with [`AgentError::BudgetExceeded`] when a call costing `estimated_next_call_usd` would
    /// take spending past the limit.
    pub fn check_before_call(&self, estimated_next_call_usd: f64) -> Result<(), AgentError> {
        match self.limit_usd {
            Some(limit) if self.spent_usd + estimated_next_call_usd > limit => {
                Err(AgentError::BudgetExceeded { spent: self.spent_usd, budget: limit })
            }
            _ => Ok(()),
        }
    }

    /// The estimate for the next call (see the module documentation); `worst_case_usd` is used
    /// until a call has been recorded.
    pub fn estimate_next_call(&self, worst_case_usd: f64) -> f64 {
        if self.calls == 0 {
            worst_case_usd
        } else {
            (self.spent_usd / self.calls as f64).max(self.last_call_usd)
        }
    }

    /// Record a call that cost `cost_usd`.
    pub fn record(&mut self, cost_usd: f64) {
        self.spent_usd += cost_usd;
        self.calls += 1;
        self.last_call_usd = cost_usd;
    }

    /// Dollars left before the limit, `None` when unlimited.
    pub fn remaining_usd(&self) -> Option<f64> {
        self.limit_usd.map(|l| (l - self.spent_usd).max(0.0))
    }
}

/// A [`Budget`] several clients charge (a run's proposal and implementation models).
#[derive(Debug, Clone, Default)]
pub struct SharedBudget(std::sync::Arc<std::sync::Mutex<Budget>>);

impl SharedBudget {
    /// Share `budget`.
    pub fn new(budget: Budget) -> Self {
        SharedBudget(std::sync::Arc::new(std::sync::Mutex::new(budget)))
    }

    /// The budget as it stands.
    pub fn get(&self) -> Budget {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a call that cost `cost_usd` (see [`Budget::record`]).
    pub fn record(&self, cost_usd: f64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).record(cost_usd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_budget_is_one_budget() {
        let a = SharedBudget::new(Budget::new(Some(1.0)));
        let b = a.clone();
        a.record(0.6);
        b.record(0.3);
        assert!((a.get().spent_usd - 0.9).abs() < 1e-12 && b.get().calls == 2);
        assert!(b.get().check_before_call(0.2).is_err());
    }

    #[test]
    fn unlimited_never_stops() {
        let b = Budget { spent_usd: 1e9, ..Budget::new(None) };
        assert!(b.check_before_call(1e9).is_ok());
        assert_eq!(b.remaining_usd(), None);
    }

    #[test]
    fn stops_before_a_call_that_would_exceed() {
        let mut b = Budget::new(Some(1.0));
        assert!(b.check_before_call(0.9).is_ok());
        assert!(b.check_before_call(1.0).is_ok());
        match b.check_before_call(1.01) {
            Err(AgentError::BudgetExceeded { spent, budget }) => assert_eq!((spent, budget), (0.0, 1.0)),
            other => panic!("expected BudgetExceeded, got {other:?}"),
        }
        b.record(0.6);
        assert!(b.check_before_call(0.4).is_ok());
        assert!(b.check_before_call(0.41).is_err());
        assert!((b.remaining_usd().unwrap() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn estimate_uses_worst_case_then_history() {
        let mut b = Budget::new(Some(10.0));
        assert_eq!(b.estimate_next_call(3.0), 3.0);
        b.record(0.2);
        b.record(0.1);
        assert!((b.estimate_next_call(3.0) - 0.15).abs() < 1e-12, "average beats a smaller last call");
        b.record(0.9);
        assert!((b.estimate_next_call(3.0) - 0.9).abs() < 1e-12, "a growing last call beats the average");
    }
}
