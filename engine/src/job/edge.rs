//! The two ends of the edges between stage instances. [`Output`] sends a
//! stage instance's messages on (routing rows by key hash on a hash edge,
//! broadcasting watermarks, barriers and the end); [`Inputs`] receives an
//! instance's messages from all its senders and aligns them: the watermark
//! is the minimum over the senders, a barrier passes once every sender has
//! sent it (messages a sender sends after its barrier wait until then), and
//! the end passes once every sender has ended.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::error::{ExecError, ExecResult};
use crate::exec::exchange::Router;
use crate::exec::metrics::QueryMetrics;
use crate::exec::operator::{CheckpointBarrier, Message};

/// What travels on an edge.
pub(crate) struct Envelope {
    /// The sender's number at the receiver.
    pub from: usize,
    pub message: Message,
    /// For a batch on a hash edge: the rows of it the receiver owns. The
    /// receiver takes them out on its own thread, so the instances of a
    /// stage gather their rows in parallel and the sender only routes.
    pub rows: Option<UInt32Array>,
}

impl Envelope {
    /// A whole message from sender `from`.
    pub fn new(from: usize, message: Message) -> Self {
        Self {
            from,
            message,
            rows: None,
        }
    }

    /// The message, with a batch cut down to the receiver's rows.
    fn open(self) -> ExecResult<(usize, Message)> {
        match (self.message, self.rows) {
            (Message::Batch(b), Some(rows)) => {
                let mine =
                    take_record_batch(&b, &rows).map_err(|e| ExecError::arrow("exchange", e))?;
                Ok((self.from, Message::Batch(mine)))
            }
            (m, _) => Ok((self.from, m)),
        }
    }
}

/// The sending end of one edge, for one instance of the upstream stage.
pub(crate) struct Output {
    /// This instance's sender number at the receivers.
    from: usize,
    targets: Vec<Sender<Envelope>>,
    /// Set on a hash edge.
    router: Option<Router>,
    /// Time spent blocked on a full queue is added here.
    metrics: Option<Arc<QueryMetrics>>,
}

impl Output {
    /// Sends to `targets` as sender `from`, routing rows with `router` (a
    /// hash edge) or to the first target.
    pub fn new(from: usize, targets: Vec<Sender<Envelope>>, router: Option<Router>) -> Self {
        Self {
            from,
            targets,
            router,
            metrics: None,
        }
    }

    /// Records time blocked on a full queue in `metrics.source_blocked_us`.
    pub fn with_metrics(mut self, metrics: Arc<QueryMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// How many messages wait in the first target's queue.
    pub fn queued(&self) -> usize {
        self.targets.first().map_or(0, Sender::len)
    }

    /// Sends a message on; `false` once the receivers have gone.
    ///
    /// # Errors
    /// Routing rows failed (hashing the keys).
    pub fn send(&self, message: Message) -> ExecResult<bool> {
        match message {
            Message::Batch(b) => self.route(b),
            m @ (Message::Watermark(_) | Message::Barrier(_) | Message::End) => {
                for t in 0..self.targets.len() {
                    if !self.send_to(t, m.clone()) {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            m @ (Message::DeadLetter(_) | Message::Malformed(_)) => Ok(self.send_to(0, m)),
        }
    }

    fn route(&self, batch: RecordBatch) -> ExecResult<bool> {
        let Some(router) = &self.router else {
            return Ok(self.send_to(0, Message::Batch(batch)));
        };
        for (p, rows) in router.route(&batch)?.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let rows = (rows.len() < batch.num_rows()).then(|| UInt32Array::from(rows));
            if !self.send_envelope(
                p,
                Envelope {
                    from: self.from,
                    message: Message::Batch(batch.clone()),
                    rows,
                },
            ) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn send_to(&self, t: usize, message: Message) -> bool {
        self.send_envelope(t, Envelope::new(self.from, message))
    }

    /// Sends to target `t`, recording time blocked on its full queue.
    fn send_envelope(&self, t: usize, envelope: Envelope) -> bool {
        let tx = &self.targets[t];
        let blocked = (self.metrics.is_some() && tx.is_full()).then(Instant::now);
        let ok = tx.send(envelope).is_ok();
        if let (Some(t), Some(m)) = (blocked, &self.metrics) {
            QueryMetrics::add(&m.source_blocked_us, t.elapsed().as_micros() as u64);
        }
        ok
    }
}

/// Per-sender state at a receiver.
#[derive(Debug, Clone, Copy)]
struct SenderState {
    watermark: i64,
    ended: bool,
    /// Has sent the pending barrier; what it sends next waits.
    at_barrier: bool,
}

/// The receiving end of a stage instance: every sender's messages, aligned.
///
/// A stage whose first operator takes several inputs (a join, UNION ALL)
/// has one *port* per input edge: messages come out tagged with their
/// port, and each port's watermark is the minimum over its own senders
/// (a port whose senders all ended is at the end of time); barriers and
/// the end are aligned over every sender.
pub(crate) struct Inputs {
    rx: Receiver<Envelope>,
    senders: Vec<SenderState>,
    /// The port of each sender.
    ports: Vec<usize>,
    /// The watermark passed on per port: the minimum over its senders
    /// still running.
    watermarks: Vec<i64>,
    /// A barrier some senders have sent and others not yet.
    pending: Option<CheckpointBarrier>,
    /// Messages from senders at the pending barrier, in arrival order.
    parked: VecDeque<(usize, Message)>,
    /// Parked messages released by the last barrier, to handle before new ones.
    replay: VecDeque<(usize, Message)>,
    /// Aligned messages ready to hand out, with their port.
    ready: VecDeque<(usize, Message)>,
    ended: bool,
}

impl Inputs {
    /// Receives from `senders` senders on `rx`, all on port 0.
    #[cfg(test)]
    pub fn new(rx: Receiver<Envelope>, senders: usize) -> Self {
        Self::with_ports(rx, vec![0; senders.max(1)])
    }

    /// Receives on `rx` from senders `0..ports.len()`, sender `i` on port
    /// `ports[i]`.
    pub fn with_ports(rx: Receiver<Envelope>, mut ports: Vec<usize>) -> Self {
        if ports.is_empty() {
            ports.push(0);
        }
        let n = ports.iter().max().map_or(1, |m| m + 1);
        Self {
            rx,
            senders: vec![
                SenderState {
                    watermark: i64::MIN,
                    ended: false,
                    at_barrier: false,
                };
                ports.len()
            ],
            ports,
            watermarks: vec![i64::MIN; n],
            pending: None,
            parked: VecDeque::new(),
            replay: VecDeque::new(),
            ready: VecDeque::new(),
            ended: false,
        }
    }

    /// How many envelopes wait in the queue.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }

    /// The next aligned message; `None` after [`Message::End`] was handed out
    /// or when the senders went away without ending (a stop or a failure).
    ///
    /// # Errors
    /// Taking a hash edge's rows out of their batch failed.
    #[cfg(test)]
    pub fn next(&mut self) -> ExecResult<Option<Message>> {
        // without a time limit the wait never times out
        Ok(self.receive(None)?.unwrap_or(None).map(|(_, m)| m))
    }

    /// [`Inputs::next`], waiting at most `wait`: `Ok(Err(()))` when nothing
    /// came in that time (the caller may do timed work and call again).
    ///
    /// # Errors
    /// Taking a hash edge's rows out of their batch failed.
    pub fn next_within(
        &mut self,
        wait: Duration,
    ) -> ExecResult<Result<Option<(usize, Message)>, ()>> {
        self.receive(Some(wait))
    }

    fn receive(
        &mut self,
        wait: Option<Duration>,
    ) -> ExecResult<Result<Option<(usize, Message)>, ()>> {
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Ok(Ok(Some(m)));
            }
            if self.ended {
                return Ok(Ok(None));
            }
            let (from, message) = match self.replay.pop_front() {
                Some(e) => e,
                None => {
                    let received = match wait {
                        None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                        Some(d) => self.rx.recv_timeout(d),
                    };
                    match received {
                        Ok(e) => e.open()?,
                        Err(RecvTimeoutError::Timeout) => return Ok(Err(())),
                        Err(RecvTimeoutError::Disconnected) => return Ok(Ok(None)),
                    }
                }
            };
            self.accept(from, message);
        }
    }

    fn accept(&mut self, from: usize, message: Message) {
        let Some(state) = self.senders.get(from).copied() else {
            // a sender number out of range is a wiring bug: treat it as sender 0
            return self.accept(0, message);
        };
        if state.at_barrier {
            self.parked.push_back((from, message));
            return;
        }
        match message {
            Message::Watermark(w) => {
                self.senders[from].watermark = state.watermark.max(w);
                self.advance_watermark(self.ports[from]);
            }
            Message::Barrier(b) => {
                self.senders[from].at_barrier = true;
                match &mut self.pending {
                    Some(p) => p.hold(b.held_since),
                    None => self.pending = Some(b),
                }
                self.release_barrier();
            }
            Message::End => {
                self.senders[from].ended = true;
                self.advance_watermark(self.ports[from]);
                self.release_barrier();
                if self.senders.iter().all(|s| s.ended) {
                    self.ready.push_back((0, Message::End));
                    self.ended = true;
                }
            }
            m @ (Message::Batch(_) | Message::DeadLetter(_) | Message::Malformed(_)) => {
                self.ready.push_back((self.ports[from], m))
            }
        }
    }

    /// Passes on a new minimum watermark of `port` over its senders still
    /// running; with several ports, one whose senders all ended is at the
    /// end of time (the other inputs go on).
    fn advance_watermark(&mut self, port: usize) {
        let mut running = self
            .senders
            .iter()
            .zip(&self.ports)
            .filter(|(s, p)| **p == port && !s.ended)
            .map(|(s, _)| s.watermark)
            .peekable();
        let min = match running.peek() {
            Some(_) => running.min(),
            None if self.watermarks.len() > 1 => Some(i64::MAX),
            None => None,
        };
        if let Some(min) = min
            && min > self.watermarks[port]
        {
            self.watermarks[port] = min;
            self.ready.push_back((port, Message::Watermark(min)));
        }
    }

    /// Passes the pending barrier on once every running sender has sent it.
    fn release_barrier(&mut self) {
        if self.pending.is_none() || self.senders.iter().any(|s| !s.ended && !s.at_barrier) {
            return;
        }
        if let Some(b) = self.pending.take() {
            self.ready.push_back((0, Message::Barrier(b)));
        }
        for s in &mut self.senders {
            s.at_barrier = false;
        }
        // what the senders sent after the barrier comes next, before new input
        let parked = std::mem::take(&mut self.parked);
        for e in parked.into_iter().rev() {
            self.replay.push_front(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::unbounded;

    fn drain(inputs: &mut Inputs) -> Vec<String> {
        let mut out = Vec::new();
        while !inputs.ready.is_empty() || !inputs.rx.is_empty() || !inputs.replay.is_empty() {
            match inputs.next().unwrap() {
                Some(Message::Watermark(w)) => out.push(format!("w{w}")),
                Some(Message::Barrier(b)) => out.push(format!("B{}", b.id)),
                Some(Message::End) => out.push("end".into()),
                Some(Message::Malformed(l)) => out.push(l.join("")),
                Some(_) => out.push("?".into()),
                None => break,
            }
        }
        out
    }

    fn line(s: &str) -> Message {
        Message::Malformed(vec![s.to_string()])
    }

    #[test]
    fn the_watermark_is_the_minimum_over_running_senders() {
        let (tx, rx) = unbounded();
        let mut inputs = Inputs::new(rx, 2);
        tx.send(Envelope::new(0, Message::Watermark(10))).unwrap();
        tx.send(Envelope::new(1, Message::Watermark(5))).unwrap();
        tx.send(Envelope::new(1, Message::Watermark(20))).unwrap();
        tx.send(Envelope::new(0, Message::End)).unwrap();
        tx.send(Envelope::new(1, Message::Watermark(30))).unwrap();
        tx.send(Envelope::new(1, Message::End)).unwrap();
        assert_eq!(drain(&mut inputs), ["w5", "w10", "w20", "w30", "end"]);
        assert!(inputs.next().unwrap().is_none());
    }

    #[test]
    fn a_barrier_passes_once_every_sender_sent_it_and_later_input_waits() {
        let (tx, rx) = unbounded();
        let mut inputs = Inputs::new(rx, 2);
        let barrier = |id, held| {
            Message::Barrier(CheckpointBarrier {
                id,
                held_since: held,
            })
        };
        tx.send(Envelope::new(0, line("a1"))).unwrap();
        tx.send(Envelope::new(0, barrier(1, Some(50)))).unwrap();
        tx.send(Envelope::new(0, line("a2"))).unwrap(); // after sender 0's barrier: waits
        tx.send(Envelope::new(1, line("b1"))).unwrap();
        tx.send(Envelope::new(1, barrier(1, Some(40)))).unwrap();
        tx.send(Envelope::new(1, line("b2"))).unwrap();
        assert_eq!(drain(&mut inputs), ["a1", "b1", "B1", "a2", "b2"]);
    }

    #[test]
    fn barriers_merge_what_their_senders_hold() {
        let (tx, rx) = unbounded();
        let mut inputs = Inputs::new(rx, 2);
        for (from, held) in [(0, Some(50)), (1, Some(40))] {
            tx.send(Envelope::new(
                from,
                Message::Barrier(CheckpointBarrier {
                    id: 7,
                    held_since: held,
                }),
            ))
            .unwrap();
        }
        match inputs.next().unwrap() {
            Some(Message::Barrier(b)) => assert_eq!(
                b,
                CheckpointBarrier {
                    id: 7,
                    held_since: Some(40)
                }
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_port_has_its_own_watermark() {
        let (tx, rx) = unbounded();
        // senders 0 and 1 on port 0, sender 2 on port 1
        let mut inputs = Inputs::with_ports(rx, vec![0, 0, 1]);
        tx.send(Envelope::new(0, Message::Watermark(10))).unwrap();
        tx.send(Envelope::new(2, Message::Watermark(3))).unwrap();
        tx.send(Envelope::new(1, Message::Watermark(7))).unwrap();
        tx.send(Envelope::new(2, Message::End)).unwrap();
        tx.send(Envelope::new(2 - 2, line("x"))).unwrap();
        let mut got = Vec::new();
        for _ in 0..4 {
            match inputs.receive(None).unwrap() {
                Ok(Some((port, Message::Watermark(w)))) => got.push(format!("{port}:w{w}")),
                Ok(Some((port, Message::Malformed(l)))) => got.push(format!("{port}:{}", l[0])),
                other => panic!("{other:?}"),
            }
        }
        // port 1 ended: it is at the end of time, port 0 goes on
        assert_eq!(
            got,
            ["1:w3", "0:w7", format!("1:w{}", i64::MAX).as_str(), "0:x"]
        );
    }

    #[test]
    fn senders_that_go_away_without_ending_stop_the_input() {
        let (tx, rx) = unbounded();
        let mut inputs = Inputs::new(rx, 2);
        tx.send(Envelope::new(0, Message::End)).unwrap();
        drop(tx);
        assert!(inputs.next().unwrap().is_none());
    }
}
