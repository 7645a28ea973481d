//! Top-N kept up to date (a ranking without a window): `ROW_NUMBER()`,
//! `RANK()` or `DENSE_RANK()` `OVER (PARTITION BY ... ORDER BY ...)` with
//! a bound on the rank, over an append-only or an updating input. After
//! each batch, for each partition it changed, the rows that left the top
//! are withdrawn (`-D`), the rows that entered it are added (`+I`), and —
//! when the rank is in the output — a row whose rank changed is withdrawn
//! with the old rank (`-U`) and added with the new (`+U`). Deduplication
//! (`ROW_NUMBER() ... ORDER BY t DESC` kept `<= 1`) is the case N = 1.
//!
//! Each partition keeps its rows sorted by (order keys, arrival). Over an
//! append-only input only the rows ranked within the bound are kept: a row
//! pushed out never comes back. Over an updating input every row is kept,
//! because a withdrawal can bring a lower row back into the top.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray, UInt64Array};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::error::{ExecError, ExecResult};
use crate::exec::changelog::{INSERT, UPDATE_AFTER, UPDATE_BEFORE};
use crate::exec::grouped_state::{state_batch, state_value};
use crate::exec::operator::{Collector, Message, Operator, OperatorState};
use crate::exec::top_n::ranking_params;
use crate::exec::ttl::{CLOCK_PART, Expiry};
use crate::plan::explain::Params;
use crate::plan::logical::{RankKind, SortKey};
use crate::plan::physical::{BuildContext, NodeKind};
use crate::types::format_interval_ms;

/// A row that left the top.
pub const DELETE: &str = "-D";

/// A top-N kept up to date, emitting a changelog.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UpdatingTopNNode {
    /// Input columns.
    #[serde(with = "crate::plan::serde_plan::schema")]
    pub input_schema: SchemaRef,
    /// Output columns: the input's (without its `_op`), the rank, `_op`.
    #[serde(with = "crate::plan::serde_plan::schema")]
    pub output_schema: SchemaRef,
    /// The input's `_op` column, when the input is a changelog.
    pub op: Option<usize>,
    /// Partition columns (with their names, for EXPLAIN).
    pub partition: Vec<(usize, String)>,
    /// Sort keys (with their names).
    pub order: Vec<(SortKey, String)>,
    /// Rows ranked at most this are kept.
    pub limit: usize,
    /// Ranking function.
    pub kind: RankKind,
    /// Whether a query reads the rank: if not, a row whose rank changes
    /// stays as it is.
    pub rank_shown: bool,
    /// A partition not updated for this many ms of event time is dropped.
    #[serde(default)]
    pub ttl: Option<i64>,
}

impl NodeKind for UpdatingTopNNode {
    fn updating(&self, _input: bool) -> bool {
        true
    }

    fn explain(&self) -> (&'static str, Params) {
        let kept = if self.op.is_some() {
            "every row (the input updates)"
        } else {
            "the top rows"
        };
        let mut params = ranking_params(self.kind, &self.partition, &self.order, self.limit);
        params.push(("keeps".to_string(), kept.to_string()));
        if let Some(t) = self.ttl {
            params.push(("state_ttl".to_string(), format_interval_ms(t)));
        }
        ("UpdatingTopN", params)
    }

    fn output_schema(&self, _input: &SchemaRef) -> SchemaRef {
        self.output_schema.clone()
    }

    fn build(&self, _ctx: &BuildContext<'_>) -> ExecResult<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(UpdatingTopNOp::new(self)?)))
    }
}

/// One row of a partition: its order key and its columns, encoded in one
/// allocation, and its arrival number.
struct Entry {
    /// The order key's bytes, then the row's.
    data: Box<[u8]>,
    split: u32,
    seq: u64,
}

impl Entry {
    fn new(order: &[u8], row: &[u8], seq: u64) -> Self {
        let mut data = Vec::with_capacity(order.len() + row.len());
        data.extend_from_slice(order);
        data.extend_from_slice(row);
        Self {
            data: data.into_boxed_slice(),
            split: order.len() as u32,
            seq,
        }
    }

    fn order(&self) -> &[u8] {
        &self.data[..self.split as usize]
    }

    fn row(&self) -> &[u8] {
        &self.data[self.split as usize..]
    }
}

/// A partition's rows, sorted by (order, seq), and when it was last updated
/// (the watermark then, under a TTL). A deduplication's one row is kept
/// inline.
struct Part {
    entries: SmallVec<[Entry; 1]>,
    stamp: i64,
}

impl Default for Part {
    fn default() -> Self {
        Self {
            entries: SmallVec::new(),
            // not yet updated under any watermark
            stamp: i64::MIN,
        }
    }
}

/// A row of a partition's top as ranked at one moment: its arrival number
/// and rank.
#[derive(Clone, Copy)]
struct Ranked {
    seq: u64,
    rank: i64,
}

/// What a batch changed: each partition it touched (in order of first
/// change) as the batch row that first did (its key is that row's) and its
/// top before the batch (a range of `before`); and the rows that left their
/// partitions, by partition (its index in `parts`) and arrival number (a
/// partition's own: after a rescale two partitions' may be equal), for the
/// `-D` and `-U` rows.
#[derive(Default)]
struct Touched {
    parts: Vec<(u32, std::ops::Range<usize>)>,
    before: Vec<Ranked>,
    gone: FxHashMap<(u32, u64), Entry>,
}

/// The operator.
pub(crate) struct UpdatingTopNOp {
    partition: Vec<usize>,
    order: Vec<usize>,
    /// Input columns kept in rows (all but `_op`).
    payload: Vec<usize>,
    op: Option<usize>,
    limit: usize,
    kind: RankKind,
    rank_shown: bool,
    schema: SchemaRef,
    partition_rows: RowConverter,
    order_rows: RowConverter,
    payload_rows: RowConverter,
    /// Per partition key, its rows.
    parts: FxHashMap<Box<[u8]>, Part>,
    seq: u64,
    /// Under `SET 'state.ttl'`, the clock that drops idle partitions.
    expiry: Option<Expiry>,
}

impl UpdatingTopNOp {
    fn new(node: &UpdatingTopNNode) -> ExecResult<Self> {
        let input = &node.input_schema;
        let err = |e| ExecError::arrow("top-n keys", e);
        let field = |c: usize| SortField::new(input.field(c).data_type().clone());
        let partition: Vec<usize> = node.partition.iter().map(|(c, _)| *c).collect();
        let payload: Vec<usize> = (0..input.fields().len())
            .filter(|&c| Some(c) != node.op)
            .collect();
        let order_rows = RowConverter::new(
            node.order
                .iter()
                .map(|(k, _)| {
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
        Ok(Self {
            partition_rows: RowConverter::new(partition.iter().map(|&c| field(c)).collect())
                .map_err(err)?,
            payload_rows: RowConverter::new(payload.iter().map(|&c| field(c)).collect())
                .map_err(err)?,
            order_rows,
            partition,
            order: node.order.iter().map(|(k, _)| k.column).collect(),
            payload,
            op: node.op,
            limit: node.limit,
            kind: node.kind,
            rank_shown: node.rank_shown,
            schema: node.output_schema.clone(),
            parts: FxHashMap::default(),
            seq: 0,
            expiry: node.ttl.map(Expiry::new),
        })
    }

    /// Applies rows given in the input's layout (`columns`); restored rows
    /// come with their arrival numbers and (under a TTL) their partitions'
    /// stamps. Returns the rows' partition keys and what changed.
    fn apply(
        &mut self,
        columns: &[ArrayRef],
        restored: Option<(&UInt64Array, Option<&Int64Array>)>,
    ) -> ExecResult<(Option<Rows>, Touched)> {
        let err = |e| ExecError::arrow("top-n", e);
        let pick = |idx: &[usize]| idx.iter().map(|&c| columns[c].clone()).collect::<Vec<_>>();
        // without PARTITION BY every row is of the one partition (the row
        // format gives no rows for no columns)
        let keys: Option<Rows> = if self.partition.is_empty() {
            None
        } else {
            Some(
                self.partition_rows
                    .convert_columns(&pick(&self.partition))
                    .map_err(err)?,
            )
        };
        let orders = self
            .order_rows
            .convert_columns(&pick(&self.order))
            .map_err(err)?;
        let payload = self
            .payload_rows
            .convert_columns(&pick(&self.payload))
            .map_err(err)?;
        let ops = self.op.map(|c| columns[c].as_string::<i32>().clone());
        let mut touched = Touched::default();
        // the partitions already touched (keys borrowed from `keys`), with
        // their index in `touched.parts`
        let mut seen: FxHashMap<&[u8], u32> = Default::default();
        let append_only = self.op.is_none();
        let now = self.expiry.as_ref().map_or(i64::MIN, Expiry::now);
        for i in 0..payload.num_rows() {
            let key: &[u8] = keys.as_ref().map_or(&[], |k| k.row(i).data());
            let part = match self.parts.get_mut(key) {
                Some(p) => p,
                None => self.parts.entry(key.into()).or_default(),
            };
            let next = touched.parts.len() as u32;
            let t = *seen.entry(key).or_insert(next);
            if t == next {
                // its top before the batch (none for a new partition)
                let start = touched.before.len();
                top(self.kind, self.limit, &part.entries, &mut touched.before);
                touched.parts.push((i as u32, start..touched.before.len()));
            }
            part.stamp = match restored {
                Some((_, Some(stamps))) => part.stamp.max(stamps.value(i)),
                _ => now,
            };
            let entries = &mut part.entries;
            let order = orders.row(i);
            let row = payload.row(i);
            let withdrawn = ops
                .as_ref()
                .is_some_and(|o| o.is_valid(i) && matches!(o.value(i), "-U" | "-D"));
            if withdrawn {
                let from = entries.partition_point(|e| e.order() < order.as_ref());
                if let Some(at) = entries[from..]
                    .iter()
                    .take_while(|e| e.order() == order.as_ref())
                    .position(|e| e.row() == row.as_ref())
                {
                    let e = entries.remove(from + at);
                    touched.gone.insert((t, e.seq), e);
                }
                continue;
            }
            let seq = match restored {
                Some((s, _)) => s.value(i),
                None => {
                    self.seq += 1;
                    self.seq - 1
                }
            };
            let at = entries.partition_point(|e| (e.order(), e.seq) < (order.as_ref(), seq));
            entries.insert(at, Entry::new(order.as_ref(), row.as_ref(), seq));
            if append_only && entries.len() > self.limit {
                // rows past the bound never come back
                let kept = kept(self.kind, self.limit, entries);
                for e in entries.drain(kept..) {
                    touched.gone.insert((t, e.seq), e);
                }
            }
        }
        drop(seen);
        Ok((keys, touched))
    }

    /// The changelog of the partitions changed: per partition, what left
    /// its top, then what entered it.
    fn changes(
        &mut self,
        keys: Option<&Rows>,
        touched: &Touched,
    ) -> ExecResult<Option<RecordBatch>> {
        let mut rows: Vec<(&[u8], i64, &'static str)> = Vec::new();
        let mut after: Vec<Ranked> = Vec::new();
        let mut emptied: Vec<&[u8]> = Vec::new();
        for (t, (first, range)) in touched.parts.iter().enumerate() {
            let key: &[u8] = keys.map_or(&[], |k| k.row(*first as usize).data());
            let entries: &[Entry] = self.parts.get(key).map_or(&[], |p| &p.entries);
            if entries.is_empty() {
                emptied.push(key);
            }
            after.clear();
            top(self.kind, self.limit, entries, &mut after);
            let before = &touched.before[range.clone()];
            let find =
                |list: &[Ranked], seq: u64| list.iter().find(|r| r.seq == seq).map(|r| r.rank);
            // a row still kept, or one that left during the batch
            let row_of = |seq: u64| -> ExecResult<&[u8]> {
                entries
                    .iter()
                    .find(|e| e.seq == seq)
                    .or_else(|| touched.gone.get(&(t as u32, seq)))
                    .map(Entry::row)
                    .ok_or_else(|| ExecError::Internal("a top-n row vanished".into()))
            };
            for b in before {
                match find(&after, b.seq) {
                    Some(r) if r == b.rank || !self.rank_shown => {}
                    Some(_) => rows.push((row_of(b.seq)?, b.rank, UPDATE_BEFORE)),
                    None => rows.push((row_of(b.seq)?, b.rank, DELETE)),
                }
            }
            for a in &after {
                match find(before, a.seq) {
                    Some(r) if r == a.rank || !self.rank_shown => {}
                    Some(_) => rows.push((row_of(a.seq)?, a.rank, UPDATE_AFTER)),
                    None => rows.push((row_of(a.seq)?, a.rank, INSERT)),
                }
            }
        }
        let out = if rows.is_empty() {
            None
        } else {
            let parser = self.payload_rows.parser();
            let mut columns = self
                .payload_rows
                .convert_rows(rows.iter().map(|(r, _, _)| parser.parse(r)))
                .map_err(|e| ExecError::arrow("top-n output", e))?;
            columns.push(Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|(_, r, _)| *r),
            )));
            columns.push(Arc::new(StringArray::from_iter_values(
                rows.iter().map(|(_, _, o)| *o),
            )));
            Some(
                RecordBatch::try_new(self.schema.clone(), columns)
                    .map_err(|e| ExecError::arrow("top-n output", e))?,
            )
        };
        for key in emptied {
            self.parts.remove(key);
        }
        Ok(out)
    }
}

impl Operator for UpdatingTopNOp {
    fn name(&self) -> &'static str {
        "updating_top_n"
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> ExecResult<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let (keys, touched) = self.apply(batch.columns(), None)?;
        if let Some(b) = self.changes(keys.as_ref(), &touched)? {
            out.push(Message::Batch(b));
        }
        Ok(())
    }

    /// Parts: `seq` (one row: the next arrival number) and `rows`: every
    /// row kept, as the partition keys (`key0`, ...), the input columns
    /// but `_op` (`v0`, ...), the arrival number (`seq`) and, under a TTL,
    /// its partition's `stamp`; under a TTL also its clock (`ttl_clock`).
    fn snapshot(&mut self) -> ExecResult<OperatorState> {
        let err = |e| ExecError::arrow("top-n snapshot", e);
        let mut out = OperatorState::default();
        let seq = Arc::new(Int64Array::from(vec![self.seq as i64])) as ArrayRef;
        out.push("seq", state_batch(vec![("seq".into(), seq)], 1)?);
        if let Some(e) = &self.expiry {
            out.push(CLOCK_PART, e.snapshot()?);
        }
        let entries: Vec<(&Entry, i64)> = self
            .parts
            .values()
            .flat_map(|p| p.entries.iter().map(|e| (e, p.stamp)))
            .collect();
        if entries.is_empty() {
            return Ok(out);
        }
        let parser = self.payload_rows.parser();
        let values = self
            .payload_rows
            .convert_rows(entries.iter().map(|(e, _)| parser.parse(e.row())))
            .map_err(err)?;
        let mut columns: Vec<(String, ArrayRef)> = Vec::new();
        for (i, &c) in self.partition.iter().enumerate() {
            let at =
                self.payload.iter().position(|&p| p == c).ok_or_else(|| {
                    ExecError::Internal("a top-n partition column is its _op".into())
                })?;
            columns.push((format!("key{i}"), values[at].clone()));
        }
        for (j, v) in values.into_iter().enumerate() {
            columns.push((format!("v{j}"), v));
        }
        let seqs = UInt64Array::from_iter_values(entries.iter().map(|(e, _)| e.seq));
        columns.push(("seq".into(), Arc::new(seqs)));
        if self.expiry.is_some() {
            let stamps = Int64Array::from_iter_values(entries.iter().map(|(_, s)| *s));
            columns.push(("stamp".into(), Arc::new(stamps)));
        }
        out.push("rows", state_batch(columns, entries.len())?);
        Ok(out)
    }

    fn restore(&mut self, state: OperatorState) -> ExecResult<()> {
        // after a rescale each old worker's `seq` comes: go on after all
        for part in state.parts("seq") {
            self.seq = self.seq.max(state_value(part, "seq")? as u64);
        }
        if let (Some(e), Some(clock)) = (&mut self.expiry, state.parts(CLOCK_PART).next()) {
            e.restore(clock)?;
        }
        let np = self.partition.len();
        for part in state.parts("rows") {
            let n = part.num_rows();
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.payload.len() + 1);
            let mut values = part.columns()[np..np + self.payload.len()].iter();
            let width = self.payload.len() + usize::from(self.op.is_some());
            for c in 0..width {
                if Some(c) == self.op {
                    columns.push(Arc::new(StringArray::from(vec![INSERT; n])));
                } else {
                    columns.push(values.next().cloned().ok_or_else(|| {
                        ExecError::Internal("a top-n state part lacks a column".into())
                    })?);
                }
            }
            let seqs = part
                .column_by_name("seq")
                .and_then(|c| c.as_primitive_opt::<arrow::datatypes::UInt64Type>())
                .cloned()
                .ok_or_else(|| ExecError::Internal("a top-n state part lacks its seq".into()))?;
            let stamps = part
                .column_by_name("stamp")
                .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>());
            self.apply(&columns, Some((&seqs, stamps)))?;
        }
        Ok(())
    }

    fn handle_watermark(&mut self, watermark: i64, out: &mut Collector) -> ExecResult<()> {
        if let Some(e) = &mut self.expiry
            && let Some(cutoff) = e.advance(watermark)
        {
            // silently, as Flink: the rows emitted stay downstream
            self.parts.retain(|_, p| !e.expired(p.stamp, cutoff));
        }
        out.push(Message::Watermark(watermark));
        Ok(())
    }

    fn rescalable(&self) -> bool {
        true
    }
}

/// The rank of each row of a partition, in order.
fn ranks(kind: RankKind, entries: &[Entry]) -> impl Iterator<Item = (usize, i64)> + '_ {
    let (mut rank, mut dense) = (0i64, 0i64);
    entries.iter().enumerate().map(move |(j, e)| {
        let tie = j > 0 && entries[j - 1].order() == e.order();
        if !tie {
            rank = j as i64 + 1;
            dense += 1;
        }
        let r = match kind {
            RankKind::RowNumber => j as i64 + 1,
            RankKind::Rank => rank,
            RankKind::DenseRank => dense,
        };
        (j, r)
    })
}

/// The rows of a partition ranked within the bound, with their ranks, added to `out`.
fn top(kind: RankKind, limit: usize, entries: &[Entry], out: &mut Vec<Ranked>) {
    out.extend(
        ranks(kind, entries)
            .take_while(|&(_, r)| r <= limit as i64)
            .map(|(j, rank)| Ranked {
                seq: entries[j].seq,
                rank,
            }),
    );
}

/// How many rows of a partition rank within the bound.
fn kept(kind: RankKind, limit: usize, entries: &[Entry]) -> usize {
    ranks(kind, entries)
        .take_while(|&(_, r)| r <= limit as i64)
        .count()
}
