//! How the API shows a query's progress, live nodes and checkpoints.

use super::queries::now_ms;

/// A query's progress as the API shows it (in views and live events).
pub(crate) fn progress_json(p: &crate::Progress) -> serde_json::Value {
    serde_json::json!({
        "records_in": p.records_in,
        "records_out": p.records_out,
        "rate": p.rate(),
        "watermark": p.watermark,
        // how far event time is behind the wall clock (as /metrics reports it)
        "lag_ms": p.watermark.map(|w| now_ms().saturating_sub(w)),
        "late": p.late_dropped,
        "malformed": p.malformed,
        "elapsed_ms": p.elapsed.as_millis() as u64,
        "checkpoints": checkpoints_json(&p.checkpoints),
    })
}

/// Where a running query's time goes, node by node (`node` ids are those
/// of the plan graph). Counters are cumulative: two samples give rates and
/// busy fractions (the UI colours the bottleneck from them).
pub(crate) fn live_json(l: &crate::job::LiveNodes) -> serde_json::Value {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    serde_json::json!({
        "operators": l.operators.iter().map(|o| serde_json::json!({
            "node": o.node,
            "name": o.name,
            "rows_in": o.rows_in,
            "rows_out": o.rows_out,
            "busy_ms": ms(o.busy),
        })).collect::<Vec<_>>(),
        "source_blocked_ms": ms(l.source_blocked),
        "sink_busy_ms": ms(l.sink_busy),
        "workers": l.workers,
        "open_windows": l.open_windows,
        "state_bytes": l.state_bytes,
        "event_time_max": l.event_time_max,
        "late_accepted": l.late_accepted,
    })
}

/// A query's checkpoints as the API shows them (`null` without any).
pub(crate) fn checkpoints_json(c: &crate::job::CheckpointStats) -> serde_json::Value {
    if c.last.is_none() && c.restored.is_none() {
        return serde_json::Value::Null;
    }
    serde_json::json!({
        "completed": c.completed,
        "last": c.last.as_ref().map(|l| serde_json::json!({
            "id": l.id,
            "bytes": l.bytes,
            "files": l.files,
            "duration_ms": l.took.as_millis() as u64,
            "age_ms": l.at.elapsed().as_millis() as u64,
        })),
        "restored": c.restored.map(|(id, took)| serde_json::json!({
            "id": id,
            "recovery_ms": took.as_millis() as u64,
        })),
    })
}
