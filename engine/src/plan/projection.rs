//! Projection pushdown: which columns of the scanned stream a query reads,
//! so a source decodes only those (the others arrive as NULL columns, never
//! read).

use std::collections::BTreeSet;

use crate::catalog::LatePolicy;
use crate::plan::expr::Expr;
use crate::plan::logical::LogicalPlan;

/// The stream columns `root` reads (every output column of `root` is
/// taken as needed), ascending.
pub fn source_columns(root: &LogicalPlan) -> Vec<usize> {
    let all = (0..root.schema().fields().len()).collect();
    needed(root, all).into_iter().collect()
}

fn add(set: &mut BTreeSet<usize>, expr: &Expr) {
    let mut cols = Vec::new();
    expr.columns(&mut cols);
    set.extend(cols);
}

/// The stream columns needed for `plan` to produce its columns `out`.
fn needed(plan: &LogicalPlan, mut out: BTreeSet<usize>) -> BTreeSet<usize> {
    match plan {
        LogicalPlan::Scan { stream } => {
            // a dead letter carries the whole input row
            if stream.event_time.late_policy == LatePolicy::DeadLetter {
                return (0..stream.schema.fields().len()).collect();
            }
            // the watermark reads the event-time column whether or not the query does
            if let Some(c) = stream
                .watermark
                .as_ref()
                .and_then(|w| stream.schema.index_of(&w.column).ok())
            {
                out.insert(c);
            }
            out
        }
        LogicalPlan::Filter { input, predicate } => {
            add(&mut out, predicate);
            needed(input, out)
        }
        LogicalPlan::Project { input, exprs } => {
            let mut from = BTreeSet::new();
            for i in out {
                if let Some((e, _)) = exprs.get(i) {
                    add(&mut from, e);
                }
            }
            needed(input, from)
        }
        LogicalPlan::Aggregate {
            input,
            window,
            keys,
            aggs,
            ..
        } => {
            let mut from = BTreeSet::new();
            if let Some(w) = window {
                from.insert(w.time_column);
            }
            for (k, _) in keys {
                add(&mut from, k);
            }
            for a in aggs {
                a.inputs().into_iter().for_each(|e| add(&mut from, e));
            }
            needed(input, from)
        }
        LogicalPlan::RowWindow {
            input,
            partition,
            time_column,
            calls,
            ..
        } => {
            let width = input.schema().fields().len();
            let mut from: BTreeSet<usize> = out.into_iter().filter(|&c| c < width).collect();
            from.insert(*time_column);
            for (p, _) in partition {
                add(&mut from, p);
            }
            for c in calls {
                c.inputs().into_iter().for_each(|e| add(&mut from, e));
            }
            needed(input, from)
        }
        // the first input reads the plan's own source
        LogicalPlan::Union { inputs } => needed(&inputs[0], out),
        LogicalPlan::Join {
            left,
            left_keys,
            filter,
            ..
        } => {
            let width = left.schema().fields().len();
            let mut from: BTreeSet<usize> = out.into_iter().filter(|&c| c < width).collect();
            for (k, _) in left_keys {
                add(&mut from, k);
            }
            if let Some(f) = filter {
                let mut cols = Vec::new();
                f.columns(&mut cols);
                from.extend(cols.into_iter().filter(|&c| c < width));
            }
            if let Some(t) = left.event_time() {
                from.insert(t);
            }
            if let Some((e, _)) = left.window_end() {
                from.insert(e);
            }
            needed(left, from)
        }
        LogicalPlan::TopN {
            input,
            window_end,
            partition,
            order,
            ..
        } => {
            let width = input.schema().fields().len();
            let mut from: BTreeSet<usize> = match window_end {
                Some(end) => out
                    .into_iter()
                    .filter(|&c| c < width)
                    .chain([*end])
                    .collect(),
                // it keeps whole rows: a withdrawn row is found by all its values
                None => (0..width).collect(),
            };
            from.extend(partition.iter().copied());
            from.extend(order.iter().map(|k| k.column));
            needed(input, from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(query: &str) -> Vec<usize> {
        let mut catalog = crate::Catalog::default();
        let stmts = catalog
            .plan_script(&format!(
                "CREATE STREAM s (a BIGINT, b DOUBLE, c VARCHAR, d BIGINT, t TIMESTAMP,
                   WATERMARK FOR t AS t) WITH (connector = 'file', path = 'x');
                 {query}"
            ))
            .unwrap();
        match stmts.last() {
            Some(crate::PlannedStatement::Query(q)) => source_columns(&q.root),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_query_reads_only_what_it_names_and_the_event_time() {
        assert_eq!(columns("SELECT a FROM s"), [0, 4]);
        assert_eq!(columns("SELECT a FROM s WHERE c = 'x'"), [0, 2, 4]);
        assert_eq!(
            columns(
                "SELECT d, COUNT(*) AS n FROM TUMBLE(s, t, INTERVAL '1' SECOND) GROUP BY d, window_start, window_end"
            ),
            [3, 4]
        );
        assert_eq!(
            columns(
                "SELECT a, SUM(b) OVER (PARTITION BY a ORDER BY t ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s FROM s"
            ),
            [0, 1, 4]
        );
        assert_eq!(columns("SELECT * FROM s"), [0, 1, 2, 3, 4]);
    }
}
