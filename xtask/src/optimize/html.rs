//! The HTML report of an optimize run (placeholder).

use super::record::RunRecord;

/// Render the run as one self-contained HTML page.
pub fn render(record: &RunRecord) -> String {
    format!("<!doctype html><title>bfperf optimize {}</title><p>{} attempts</p>", record.run_id, record.attempts.len())
}
