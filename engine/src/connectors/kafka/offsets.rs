//! Which offsets may be committed: the at-least-once bookkeeping of a Kafka
//! source.
//!
//! Every polled batch leaves, per partition, a *chunk*: its offset range,
//! the largest event time among its rows, and the checkpoint epoch it was
//! read in. A checkpoint barrier follows the rows through the operators;
//! when the sink has written everything before it, it answers with the
//! earliest event time any operator still holds in state (`retained`; none
//! when nothing is held). A chunk read before that barrier is then done if
//! all its rows are older than `retained`: their windows have been emitted
//! (or they were dropped as late). A partition's commit offset is the first
//! offset of its oldest chunk not yet done, or, when every chunk is done,
//! the offset after the last message read.

use std::collections::{HashMap, VecDeque};

/// One batch's rows of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chunk {
    /// First offset.
    first: i64,
    /// Largest event time of its rows (`i64::MIN` when none has one that
    /// matters, `i64::MAX` when the stream has no event time).
    max_time: i64,
    /// The checkpoint epoch it was read in: barrier `epoch` follows it.
    epoch: u64,
}

#[derive(Debug, Default)]
struct Partition {
    chunks: VecDeque<Chunk>,
    /// The offset after the last message read.
    next: Option<i64>,
    /// Last offset committed (or known to be committed at start).
    committed: Option<i64>,
}

/// Offsets read and done, per (topic, partition).
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<(String, i32), Partition>,
    /// The epoch chunks read now belong to.
    epoch: u64,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self {
            partitions: HashMap::new(),
            epoch: 1,
        }
    }

    /// Messages `first..=last` of a partition were read; `max_time` as in
    /// the chunk's doc.
    pub fn read(&mut self, topic: &str, partition: i32, first: i64, last: i64, max_time: i64) {
        let epoch = self.epoch;
        let p = self.partition(topic, partition);
        p.chunks.push_back(Chunk {
            first,
            max_time,
            epoch,
        });
        p.next = Some(p.next.map_or(last + 1, |n| n.max(last + 1)));
    }

    /// Records the offset a partition starts from, so nothing before it is
    /// committed again.
    pub fn started_at(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self.partition(topic, partition);
        p.committed = Some(offset);
        p.next.get_or_insert(offset);
    }

    fn partition(&mut self, topic: &str, partition: i32) -> &mut Partition {
        self.partitions
            .entry((topic.to_string(), partition))
            .or_default()
    }

    /// Starts a checkpoint: the rows read so far are before its barrier.
    /// Returns the barrier's id.
    pub fn barrier(&mut self) -> u64 {
        let id = self.epoch;
        self.epoch += 1;
        id
    }

    /// Barrier `id` came back with `retained` (see the module doc): returns
    /// the offsets that may now be committed, each the next offset to read,
    /// only those that moved.
    pub fn done(&mut self, id: u64, retained: Option<i64>) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for ((topic, partition), p) in &mut self.partitions {
            while let Some(c) = p.chunks.front() {
                let finished = c.epoch <= id && retained.is_none_or(|r| c.max_time < r);
                if !finished {
                    break;
                }
                p.chunks.pop_front();
            }
            let commit = match p.chunks.front() {
                Some(c) => Some(c.first),
                None => p.next,
            };
            if let Some(c) = commit
                && p.committed.is_none_or(|done| c > done)
            {
                p.committed = Some(c);
                out.push((topic.clone(), *partition, c));
            }
        }
        out.sort();
        out
    }

    /// Chunks waiting for their windows, over all partitions.
    #[cfg(test)]
    pub fn pending_chunks(&self) -> usize {
        self.partitions.values().map(|p| p.chunks.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_what_the_barrier_covers_and_the_state_released() {
        let mut t = OffsetTracker::new();
        t.started_at("t", 0, 0);
        t.read("t", 0, 0, 9, 1_000);
        t.read("t", 0, 10, 19, 5_000);
        let b1 = t.barrier();
        t.read("t", 0, 20, 29, 6_000);
        // a window from 4_000 is still open: offsets 10.. are held
        assert_eq!(t.done(b1, Some(4_000)), [("t".to_string(), 0, 10)]);
        // nothing moved
        assert!(t.done(b1, Some(4_000)).is_empty());
        // state empty, but rows 20.. came after the barrier
        assert_eq!(t.done(b1, None), [("t".to_string(), 0, 20)]);
        let b2 = t.barrier();
        assert_eq!(t.done(b2, None), [("t".to_string(), 0, 30)]);
        assert_eq!(t.pending_chunks(), 0);
    }

    #[test]
    fn an_old_row_behind_a_new_one_holds_the_commit() {
        let mut t = OffsetTracker::new();
        t.read("t", 1, 5, 5, 9_000);
        t.read("t", 1, 6, 6, 1_000);
        let b = t.barrier();
        // the window holding 9_000 is open; 1_000 is done but behind it
        assert_eq!(t.done(b, Some(8_000)), [("t".to_string(), 1, 5)]);
        assert_eq!(t.done(b, Some(10_000)), [("t".to_string(), 1, 7)]);
    }

    #[test]
    fn nothing_before_the_start_is_committed_again() {
        let mut t = OffsetTracker::new();
        t.started_at("t", 0, 50);
        let b = t.barrier();
        assert!(t.done(b, None).is_empty());
    }
}
