//! Where a running job's time goes, node by node: the counters the plan
//! graph of a live view is drawn from.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::JobHandle;

/// Where a running job's time goes, node by node (for a live plan graph):
/// cumulative counters, so two samples give rates and busy fractions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveNodes {
    /// The operators, in plan order.
    pub operators: Vec<OperatorLive>,
    /// Time the source waited on a full queue (it was backpressured).
    pub source_blocked: Duration,
    /// Time the sink spent writing.
    pub sink_busy: Duration,
    /// Worker threads sharing the operators.
    pub workers: usize,
    /// Windows holding state.
    pub open_windows: u64,
    /// Approximate bytes of operator state.
    pub state_bytes: u64,
    /// The largest event time read, if any.
    pub event_time_max: Option<i64>,
    /// Rows behind the watermark but within the allowed lateness (applied).
    pub late_accepted: u64,
}

/// One operator's counters in [`LiveNodes`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatorLive {
    /// Its node id in the plan graph (`PhysicalPlan::explain_json`; the
    /// source is 0).
    pub node: usize,
    /// Operator name (`filter`, `window_aggregate`, ...).
    pub name: String,
    /// Rows received.
    pub rows_in: u64,
    /// Rows emitted.
    pub rows_out: u64,
    /// Time spent in it, summed over the workers.
    pub busy: Duration,
}

impl JobHandle {
    /// Per-node counters of the plan graph.
    pub fn live(&self) -> LiveNodes {
        let m = self.metrics();
        let operators = m
            .operators
            .lock()
            .map(|ops| {
                ops.iter()
                    .map(|c| OperatorLive {
                        node: c.position().unwrap_or(0),
                        name: c.label.split_once('_').map_or("", |(_, n)| n).to_string(),
                        rows_in: c.rows_in.load(Ordering::Relaxed),
                        rows_out: c.rows_out.load(Ordering::Relaxed),
                        busy: Duration::from_nanos(c.busy_ns.load(Ordering::Relaxed)),
                    })
                    .collect()
            })
            .unwrap_or_default();
        LiveNodes {
            operators,
            source_blocked: Duration::from_micros(m.source_blocked_us.load(Ordering::Relaxed)),
            sink_busy: Duration::from_nanos(m.sink_busy_ns.load(Ordering::Relaxed)),
            workers: m.partitions.len().max(1),
            open_windows: m.total(|m| &m.open_windows),
            state_bytes: m.total(|m| &m.state_bytes),
            event_time_max: m.event_time_max(),
            late_accepted: m.total(|m| &m.late_accepted),
        }
    }
}
