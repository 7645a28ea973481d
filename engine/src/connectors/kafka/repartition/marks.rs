//! How a stage-2 reader combines the watermark records it reads into its
//! stage's watermark. A source partition's watermark is the smallest read
//! for it from every repartition partition the reader consumes (so no row
//! is overtaken by a watermark written after it), and the stage's is the
//! smallest over the source's partitions — leaving out those whose latest
//! record, in every repartition partition read, says they are idle (no
//! input for the source's `idle_timeout`), as one process leaves an idle
//! partition out. When every partition is idle, event time goes on from the
//! furthest one. The end of time (`i64::MAX`) needs every partition there.

use std::collections::HashMap;

/// The watermark records read so far.
pub(super) struct Marks {
    /// Per repartition partition read, per source partition (slot): the
    /// largest watermark read (`i64::MIN`: none yet) and whether the
    /// latest record said idle.
    by_partition: HashMap<i32, Vec<(i64, bool)>>,
    sources: usize,
    /// The watermark last given.
    pub current: i64,
}

impl Marks {
    /// For `sources` source partitions, read from repartition `partitions`.
    pub fn new(sources: usize, partitions: &[i32]) -> Self {
        Self {
            by_partition: partitions
                .iter()
                .map(|&p| (p, vec![(i64::MIN, false); sources]))
                .collect(),
            sources,
            current: i64::MIN,
        }
    }

    /// Folds in a record read from repartition partition `partition` about
    /// source slots `slots`; the stage's watermark when it advanced.
    pub fn fold(
        &mut self,
        partition: i32,
        slots: &[usize],
        watermark: i64,
        idle: bool,
    ) -> Option<i64> {
        let marks = self.by_partition.get_mut(&partition)?;
        for &s in slots {
            if let Some(m) = marks.get_mut(s) {
                *m = (m.0.max(watermark), idle);
            }
        }
        let combined = self.combined();
        (combined > self.current).then(|| {
            self.current = combined;
            combined
        })
    }

    fn combined(&self) -> i64 {
        let slots: Vec<(i64, bool)> = (0..self.sources)
            .map(|s| {
                let of = || self.by_partition.values().map(move |m| m[s]);
                let watermark = of().map(|m| m.0).min().unwrap_or(i64::MIN);
                (watermark, of().all(|m| m.1))
            })
            .collect();
        // partitions at their end hold nothing back; the end needs them all
        let open: Vec<(i64, bool)> = slots.into_iter().filter(|(w, _)| *w < i64::MAX).collect();
        if open.is_empty() {
            return i64::MAX;
        }
        let active = open.iter().filter(|(_, idle)| !idle).map(|(w, _)| *w).min();
        let furthest = open.iter().map(|(w, _)| *w).max();
        active.or(furthest).unwrap_or(i64::MIN)
    }

    /// What a checkpoint keeps.
    pub fn state(&self) -> (serde_json::Value, serde_json::Value) {
        let marks = self
            .by_partition
            .iter()
            .map(|(p, m)| (p.to_string(), m.iter().map(|x| x.0).collect::<Vec<_>>()))
            .collect::<HashMap<_, _>>();
        let idle = self
            .by_partition
            .iter()
            .map(|(p, m)| (p.to_string(), m.iter().map(|x| x.1).collect::<Vec<_>>()))
            .collect::<HashMap<_, _>>();
        (serde_json::json!(marks), serde_json::json!(idle))
    }

    /// Back from a checkpoint's `marks` and `idle` (a checkpoint written
    /// before idle flags existed has none: not idle).
    pub fn restore(&mut self, marks: &serde_json::Value, idle: &serde_json::Value) {
        let Some(marks) = marks.as_object() else {
            return;
        };
        for (p, m) in marks {
            let (Ok(p), Some(m)) = (p.parse::<i32>(), m.as_array()) else {
                continue;
            };
            let values: Vec<i64> = m.iter().filter_map(serde_json::Value::as_i64).collect();
            if values.len() != self.sources {
                continue;
            }
            let flags = idle[p.to_string().as_str()].as_array();
            let restored = values
                .into_iter()
                .enumerate()
                .map(|(s, w)| {
                    let idle = flags.and_then(|f| f.get(s)?.as_bool()).unwrap_or(false);
                    (w, idle)
                })
                .collect();
            self.by_partition.insert(p, restored);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_source_partition_does_not_hold_the_watermark() {
        // two source partitions, read from repartition partitions 0 and 1
        let mut m = Marks::new(2, &[0, 1]);
        assert_eq!(m.fold(0, &[0], 100, false), None);
        assert_eq!(m.fold(1, &[0], 100, false), None);
        assert_eq!(m.fold(0, &[1], 50, false), None);
        // slot 1 has been read from partition 0 only: the minimum waits
        assert_eq!(m.fold(1, &[1], 50, false), Some(50));
        // slot 1 goes idle, as partition 0 has read so far: still counted
        assert_eq!(m.fold(0, &[1], 60, true), None);
        // idle in every partition read: left out, slot 0 leads
        assert_eq!(m.fold(1, &[1], 60, true), Some(100));
        assert_eq!(m.fold(0, &[0], 150, false), None);
        assert_eq!(m.fold(1, &[0], 150, false), Some(150));
        // slot 1 is back (rows again): counted again, the watermark waits
        assert_eq!(m.fold(0, &[1], 60, false), None);
        assert_eq!(m.fold(0, &[0], 200, false), None);
        assert_eq!(m.fold(1, &[0], 200, false), None);
        assert_eq!(m.current, 150);
        // every slot idle: event time goes on from the furthest
        m.fold(0, &[1], 60, true);
        m.fold(1, &[1], 60, true);
        m.fold(0, &[0], 210, true);
        assert_eq!(m.fold(1, &[0], 210, true), Some(210));
        // the end needs every source partition at the end, idle or not
        m.fold(0, &[0], i64::MAX, false);
        assert_eq!(m.fold(1, &[0], i64::MAX, false), None);
        m.fold(0, &[1], i64::MAX, false);
        assert_eq!(m.fold(1, &[1], i64::MAX, false), Some(i64::MAX));
    }

    #[test]
    fn idle_flags_come_back_from_a_checkpoint() {
        let mut m = Marks::new(2, &[0]);
        m.fold(0, &[0], 10, true);
        m.fold(0, &[1], 20, false);
        let (marks, idle) = m.state();
        let mut back = Marks::new(2, &[0]);
        back.restore(&marks, &idle);
        assert_eq!(back.by_partition, m.by_partition);
        // a checkpoint of a build without idle flags
        let mut old = Marks::new(2, &[0]);
        old.restore(&marks, &serde_json::Value::Null);
        assert_eq!(old.by_partition[&0], vec![(10, false), (20, false)]);
    }
}
