//! A Kafka source's position: per partition, the offset after the last
//! message read, and the offsets committed, so a commit only moves forward.
//! The runtime decides which recorded position may be committed (see
//! `job/source_stage.rs`); the connector knows nothing of the query.

use std::collections::BTreeMap;

use crate::connectors::Position;

/// A partition: (topic, partition).
type Key = (String, i32);

/// Positions read and committed, per (topic, partition).
#[derive(Debug, Default)]
pub struct OffsetTracker {
    /// The offset after the last message read.
    next: BTreeMap<Key, i64>,
    /// Last offset committed (or known to be committed at start).
    committed: BTreeMap<Key, i64>,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages of a partition up to `last` were read (messages come in
    /// offset order, but for a reset, which may go back).
    pub fn read(&mut self, topic: &str, partition: i32, last: i64) {
        self.next.insert((topic.to_string(), partition), last + 1);
    }

    /// The partition's position was reset to `offset` (out of its log's
    /// range): its commits go on from there, even backwards. A position
    /// recorded before the reset and committed after it may still move the
    /// commit forward again; a restart then reports it out of range once more.
    pub fn reset(&mut self, topic: &str, partition: i32, offset: i64) {
        let key = (topic.to_string(), partition);
        self.committed.insert(key.clone(), offset);
        self.next.insert(key, offset);
    }

    /// Records the offset a partition starts from, so nothing before it is
    /// committed again.
    pub fn started_at(&mut self, topic: &str, partition: i32, offset: i64) {
        let key = (topic.to_string(), partition);
        self.committed.insert(key.clone(), offset);
        self.next.entry(key).or_insert(offset);
    }

    /// The position now.
    pub fn position(&self) -> Position {
        Position {
            splits: self
                .next
                .iter()
                .map(|((t, p), o)| (t.clone(), *p, *o))
                .collect(),
        }
    }

    /// The offsets of `position` that move a partition's commit forward.
    pub fn commit(&mut self, position: &Position) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for (topic, partition, offset) in &position.splits {
            let key = (topic.clone(), *partition);
            if self.committed.get(&key).is_none_or(|&d| *offset > d) {
                self.committed.insert(key, *offset);
                out.push((topic.clone(), *partition, *offset));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_moves_each_partition_forward_only() {
        let mut t = OffsetTracker::new();
        t.started_at("t", 0, 0);
        t.read("t", 0, 9);
        t.read("t", 1, 19);
        let early = t.position();
        t.read("t", 0, 29);
        let late = t.position();
        assert_eq!(
            t.commit(&early),
            [("t".to_string(), 0, 10), ("t".to_string(), 1, 20)]
        );
        assert!(t.commit(&early).is_empty());
        assert_eq!(t.commit(&late), [("t".to_string(), 0, 30)]);
        // an older position never moves a commit back
        assert!(t.commit(&early).is_empty());
    }

    #[test]
    fn nothing_before_the_start_is_committed_again() {
        let mut t = OffsetTracker::new();
        t.started_at("t", 0, 50);
        let p = t.position();
        assert!(t.commit(&p).is_empty());
    }
}
