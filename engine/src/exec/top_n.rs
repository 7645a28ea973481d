//! Top-N per window: rows are buffered per window end; when the watermark
//! (minus the allowed lateness) passes a window's end, its rows are ranked
//! per partition and those ranked `<= limit` are emitted with their rank.
//! A buffer that grows past a few times what it must keep is pruned to its
//! current top rows, so memory stays proportional to N × partitions.
//!
//! Ranking sorts by (partition, order keys, arrival): ties of `ROW_NUMBER`
//! are broken by arrival order; `RANK` and `DENSE_RANK` give ties one rank.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, UInt32Array, UInt64Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::{Schema, SchemaRef, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};

use crate::error::{ExecError, ExecResult};
use crate::exec::aggregate::{Rejects, state_batch, state_value};
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{Collector, Message, Operator, OperatorState};
use crate::plan::explain::{Params, list, with_lateness};
use crate::plan::logical::{Lateness, RankKind, SortKey};
use crate::plan::physical::{BuildContext, NodeKind};

/// Top-N per window and partition, emitted when the window closes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TopNNode {
    /// Input columns.
    #[serde(with = "crate::plan::serde_plan::schema")]
    pub input_schema: SchemaRef,
    /// Output columns: the input's, then the rank.
    #[serde(with = "crate::plan::serde_plan::schema")]
    pub output_schema: SchemaRef,
    /// Input column with the window end.
    pub window_end: usize,
    /// Partition columns (with their names, for EXPLAIN).
    pub partition: Vec<(usize, String)>,
    /// Sort keys (with their names).
    pub order: Vec<(SortKey, String)>,
    /// Rows ranked at most this are kept.
    pub limit: usize,
    /// Ranking function.
    pub kind: RankKind,
    /// When windows close.
    pub lateness: Lateness,
}

impl NodeKind for TopNNode {
    fn updating(&self, _input: bool) -> bool {
        false
    }

    fn explain(&self) -> (&'static str, Params) {
        let mut params = ranking_params(self.kind, &self.partition, &self.order, self.limit);
        with_lateness(&mut params, &self.lateness);
        ("TopN", params)
    }

    fn output_schema(&self, _input: &SchemaRef) -> SchemaRef {
        self.output_schema.clone()
    }

    fn build(&self, ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(TopNOp::new(
            &self.input_schema,
            self.window_end,
            self.partition.iter().map(|(c, _)| *c).collect(),
            self.order.iter().map(|(k, _)| *k).collect(),
            self.limit,
            self.kind,
            self.output_schema.clone(),
            self.lateness,
            ctx.metrics.clone(),
        )?)))
    }
}

/// How a top-N ranks, for EXPLAIN.
pub(crate) fn ranking_params(
    kind: RankKind,
    partition: &[(usize, String)],
    order: &[(SortKey, String)],
    limit: usize,
) -> Params {
    let order = order
        .iter()
        .map(|(k, n)| format!("{n} {}", if k.descending { "DESC" } else { "ASC" }));
    vec![
        ("rank".to_string(), format!("{}()", kind.name())),
        (
            "partition".to_string(),
            list(partition.iter().map(|(_, n)| n.clone())),
        ),
        ("order".to_string(), list(order)),
        ("limit".to_string(), limit.to_string()),
    ]
}

/// Rows of one window waiting for it to close.
#[derive(Default)]
struct Pending {
    batches: Vec<RecordBatch>,
    rows: usize,
    /// Rows left after the last pruning (prune again at twice that).
    kept: usize,
}

/// The top-N operator.
pub(crate) struct TopNOp {
    window_end: usize,
    partition: Vec<usize>,
    order: Vec<SortKey>,
    limit: usize,
    kind: RankKind,
    /// Output: the input columns, then the rank.
    schema: SchemaRef,
    /// Input schema plus an arrival sequence column (for ties).
    buffered: SchemaRef,
    partition_rows: RowConverter,
    order_rows: RowConverter,
    windows: BTreeMap<i64, Pending>,
    seq: u64,
    rejects: Rejects,
}

impl TopNOp {
    /// # Errors
    /// Column types the row format cannot sort (a planner bug).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input: &SchemaRef,
        window_end: usize,
        partition: Vec<usize>,
        order: Vec<SortKey>,
        limit: usize,
        kind: RankKind,
        schema: SchemaRef,
        lateness: Lateness,
        metrics: Arc<QueryMetrics>,
    ) -> ExecResult<Self> {
        let err = |e| ExecError::arrow("top-n keys", e);
        let partition_rows = RowConverter::new(
            partition
                .iter()
                .map(|&c| SortField::new(input.field(c).data_type().clone()))
                .collect(),
        )
        .map_err(err)?;
        let order_rows = RowConverter::new(
            order
                .iter()
                .map(|k| {
                    SortField::new_with_options(
                        input.field(k.column).data_type().clone(),
                        arrow::compute::SortOptions {
                            descending: k.descending,
                            nulls_first: k.nulls_first,
                        },
                    )
                })
                .collect(),
        )
        .map_err(err)?;
        let mut fields: Vec<_> = input.fields().iter().cloned().collect();
        fields.push(Arc::new(arrow::datatypes::Field::new(
            "__arrival",
            arrow::datatypes::DataType::UInt64,
            false,
        )));
        Ok(Self {
            window_end,
            partition,
            order,
            limit,
            kind,
            schema,
            buffered: Arc::new(Schema::new(fields)),
            partition_rows,
            order_rows,
            windows: BTreeMap::new(),
            seq: 0,
            rejects: Rejects::new(lateness, metrics),
        })
    }

    /// Ranks `batch` (buffered rows) per partition; returns the rows ranked
    /// `<= limit`, in (partition, rank) order, with their ranks.
    fn rank(&self, batch: &RecordBatch) -> ExecResult<(UInt32Array, Int64Array)> {
        let err = |e| ExecError::arrow("top-n", e);
        let cols = |idx: &mut dyn Iterator<Item = usize>| -> Vec<ArrayRef> {
            idx.map(|c| batch.column(c).clone()).collect()
        };
        let parts = self
            .partition_rows
            .convert_columns(&cols(&mut self.partition.iter().copied()))
            .map_err(err)?;
        let orders = self
            .order_rows
            .convert_columns(&cols(&mut self.order.iter().map(|k| k.column)))
            .map_err(err)?;
        let arrival = batch
            .column(batch.num_columns() - 1)
            .as_primitive::<arrow::datatypes::UInt64Type>();
        let mut idx: Vec<u32> = (0..batch.num_rows() as u32).collect();
        idx.sort_unstable_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            parts
                .row(a)
                .cmp(&parts.row(b))
                .then_with(|| orders.row(a).cmp(&orders.row(b)))
                .then_with(|| arrival.value(a).cmp(&arrival.value(b)))
        });
        let (mut keep, mut ranks) = (Vec::new(), Vec::new());
        let (mut number, mut rank, mut dense) = (0i64, 0i64, 0i64);
        for (j, &i) in idx.iter().enumerate() {
            let i = i as usize;
            let prev = (j > 0).then(|| idx[j - 1] as usize);
            let same_partition = prev.is_some_and(|p| parts.row(p) == parts.row(i));
            if !same_partition {
                (number, rank, dense) = (0, 0, 0);
            }
            number += 1;
            let tie = same_partition && prev.is_some_and(|p| orders.row(p) == orders.row(i));
            if !tie {
                rank = number;
                dense += 1;
            }
            let r = match self.kind {
                RankKind::RowNumber => number,
                RankKind::Rank => rank,
                RankKind::DenseRank => dense,
            };
            if r <= self.limit as i64 {
                keep.push(i as u32);
                ranks.push(r);
            }
        }
        Ok((UInt32Array::from(keep), Int64Array::from(ranks)))
    }

    /// All of a window's buffered rows in one batch.
    fn gather(&self, p: &Pending) -> ExecResult<RecordBatch> {
        concat_batches(&self.buffered, &p.batches).map_err(|e| ExecError::arrow("top-n", e))
    }

    /// Keeps only a window's current top rows.
    fn prune(&self, p: &mut Pending) -> ExecResult<()> {
        let all = self.gather(p)?;
        let (keep, _) = self.rank(&all)?;
        let kept = take_record_batch(&all, &keep).map_err(|e| ExecError::arrow("top-n", e))?;
        p.rows = kept.num_rows();
        p.kept = p.rows;
        p.batches = vec![kept];
        Ok(())
    }

    fn close_until(&mut self, until: i64, out: &mut Collector) -> ExecResult<()> {
        while let Some(entry) = self.windows.first_entry() {
            if *entry.key() > until {
                break;
            }
            let p = entry.remove();
            let all = self.gather(&p)?;
            let (keep, ranks) = self.rank(&all)?;
            let rows = take_record_batch(&all, &keep).map_err(|e| ExecError::arrow("top-n", e))?;
            let mut columns = rows.columns().to_vec();
            columns.pop(); // the arrival sequence
            columns.push(Arc::new(ranks));
            let batch = RecordBatch::try_new(self.schema.clone(), columns)
                .map_err(|e| ExecError::arrow("top-n output", e))?;
            out.push(Message::Batch(batch));
        }
        Ok(())
    }
}

impl Operator for TopNOp {
    fn name(&self) -> &'static str {
        "top_n"
    }

    /// Parts: `clock` (see [`Rejects::snapshot`]), `seq` (one row: the next
    /// arrival number) and one `window` per open window: its buffered rows
    /// with their arrival numbers (the input columns, then `__arrival`).
    fn snapshot(&mut self) -> ExecResult<OperatorState> {
        let mut out = OperatorState::default();
        out.push("clock", self.rejects.snapshot()?);
        let seq = Arc::new(Int64Array::from(vec![self.seq as i64])) as ArrayRef;
        out.push("seq", state_batch(vec![("seq".into(), seq)], 1)?);
        for p in self.windows.values() {
            out.push("window", self.gather(p)?);
        }
        Ok(out)
    }

    fn restore(&mut self, state: OperatorState) -> ExecResult<()> {
        self.rejects.restore(state.part("clock")?)?;
        self.seq = state_value(state.part("seq")?, "seq")? as u64;
        for part in state.parts("window") {
            let end = part
                .column(self.window_end)
                .as_primitive_opt::<TimestampMillisecondType>()
                .filter(|e| !e.is_empty() && e.is_valid(0))
                .map(|e| e.value(0))
                .ok_or_else(|| ExecError::Internal("a top-n window without its end".into()))?;
            let batch = RecordBatch::try_new(self.buffered.clone(), part.columns().to_vec())
                .map_err(|e| ExecError::arrow("restoring top-n", e))?;
            let rows = batch.num_rows();
            self.windows.insert(
                end,
                Pending {
                    batches: vec![batch],
                    rows,
                    kept: rows,
                },
            );
        }
        Ok(())
    }

    fn retained_event_time(&self) -> Option<i64> {
        // its input is window results: hold every source row while any wait
        (!self.windows.is_empty()).then_some(i64::MIN)
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let ends = batch
            .column(self.window_end)
            .as_primitive_opt::<TimestampMillisecondType>()
            .cloned()
            .ok_or_else(|| ExecError::Internal("top-n window end is not a TIMESTAMP".into()))?;
        let arrival = UInt64Array::from_iter_values(self.seq..self.seq + n as u64);
        self.seq += n as u64;
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(arrival));
        let tagged = RecordBatch::try_new(self.buffered.clone(), columns)
            .map_err(|e| ExecError::arrow("top-n", e))?;
        // rows by window end
        let mut by_end: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        for i in 0..n {
            if ends.is_null(i) {
                self.rejects.null_time(i);
            } else if ends.value(i) <= self.rejects.closed_until() {
                self.rejects.late(i);
            } else {
                by_end.entry(ends.value(i)).or_default().push(i as u32);
            }
        }
        self.rejects.finish(&batch, &ends, out)?;
        for (end, idx) in by_end {
            let part = if idx.len() == n {
                tagged.clone()
            } else {
                take_record_batch(&tagged, &UInt32Array::from(idx))
                    .map_err(|e| ExecError::arrow("top-n", e))?
            };
            let mut p = self.windows.remove(&end).unwrap_or_default();
            p.rows += part.num_rows();
            p.batches.push(part);
            if p.rows > (2 * p.kept).max(4 * self.limit + 8192) {
                self.prune(&mut p)?;
            }
            self.windows.insert(end, p);
        }
        Ok(())
    }

    fn handle_watermark(&mut self, watermark: i64, out: &mut Collector) -> ExecResult<()> {
        if let Some(closed) = self.rejects.advance(watermark) {
            self.close_until(closed, out)?;
        }
        out.push(Message::Watermark(watermark));
        Ok(())
    }

    fn on_close(&mut self, out: &mut Collector) -> ExecResult<()> {
        self.close_until(i64::MAX, out)
    }
}
