//! Decoding on several threads, with the results handed back in input
//! order: the rows, their order and the watermarks they make are exactly
//! those of one decoder, only sooner. File sources hand it chunks of whole
//! JSON lines, Kafka sources their polled batches.

use std::collections::VecDeque;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use crate::error::ConnectorError;

/// A decoder the pool runs: one per thread.
pub(crate) trait Decode: Send + 'static {
    /// What is decoded (handed back afterwards, for reuse).
    type Input: Send + 'static;
    /// What comes out.
    type Output: Send + 'static;

    /// Decodes one input.
    ///
    /// # Errors
    /// Input the source's `format.on_error` policy does not let through.
    fn decode(&mut self, input: &Self::Input) -> Result<Self::Output, ConnectorError>;
}

/// A result, and the input back for reuse.
type Answer<D> = (
    Result<<D as Decode>::Output, ConnectorError>,
    <D as Decode>::Input,
);

/// A decoded input: the output and the input back.
type Done<D> = Result<(<D as Decode>::Output, <D as Decode>::Input), ConnectorError>;

/// One input to decode and where to answer.
struct Job<D: Decode> {
    input: D::Input,
    reply: Sender<Answer<D>>,
}

/// Decoders on threads of their own (or one inline), results in order.
pub(crate) struct DecodePool<D: Decode> {
    jobs: Option<Sender<Job<D>>>,
    /// With one decoder: decode on the caller's thread.
    inline: Option<D>,
    /// Answers still to come, oldest first.
    in_flight: VecDeque<Receiver<Answer<D>>>,
    /// Inputs decoded, for the next reads (no fresh allocation and page
    /// faults per input).
    spare: Vec<D::Input>,
    /// Inputs that may be in flight at once.
    capacity: usize,
    threads: Vec<JoinHandle<()>>,
}

impl<D: Decode> DecodePool<D> {
    /// `threads` decoders made by `make` (one: no thread, decode inline).
    ///
    /// # Errors
    /// A decoder cannot be made, or a thread cannot be started.
    pub fn new(
        name: &str,
        threads: usize,
        make: impl Fn() -> Result<D, ConnectorError>,
    ) -> Result<Self, ConnectorError> {
        if threads <= 1 {
            return Ok(Self {
                jobs: None,
                inline: Some(make()?),
                in_flight: VecDeque::new(),
                spare: Vec::new(),
                capacity: 1,
                threads: Vec::new(),
            });
        }
        let (tx, rx) = unbounded::<Job<D>>();
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let mut decoder = make()?;
            let rx = rx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("eddy-decode-{i}"))
                .spawn(move || {
                    for job in rx.iter() {
                        let result = decoder.decode(&job.input);
                        let _ = job.reply.send((result, job.input));
                    }
                })
                .map_err(|e| ConnectorError::Io {
                    context: format!("{name}: starting a decoding thread"),
                    source: e,
                })?;
            handles.push(handle);
        }
        Ok(Self {
            jobs: Some(tx),
            inline: None,
            in_flight: VecDeque::new(),
            spare: Vec::new(),
            // two inputs per decoder: one decoding, one waiting
            capacity: threads * 2,
            threads: handles,
        })
    }

    /// Whether another input may be submitted.
    pub fn has_room(&self) -> bool {
        self.in_flight.len() < self.capacity
    }

    /// Whether no result is still to come.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Decodes `input` (inline, or on a decoding thread).
    pub fn submit(&mut self, input: D::Input) {
        let (reply, answer) = bounded(1);
        match (&mut self.inline, &self.jobs) {
            (Some(d), _) => {
                let _ = reply.send((d.decode(&input), input));
            }
            (None, Some(jobs)) => {
                let _ = jobs.send(Job { input, reply });
            }
            (None, None) => {}
        }
        self.in_flight.push_back(answer);
    }

    /// Whether the oldest result has arrived.
    pub fn ready(&self) -> bool {
        self.in_flight.front().is_some_and(|a| !a.is_empty())
    }

    /// The oldest result with its input, waiting for it; `None` when
    /// nothing is in flight. Hand the input back with [`Self::recycle`].
    pub fn next(&mut self) -> Option<Done<D>> {
        let answer = self.in_flight.pop_front()?;
        Some(match answer.recv() {
            Ok((Ok(out), input)) => Ok((out, input)),
            Ok((Err(e), input)) => {
                self.spare.push(input);
                Err(e)
            }
            Err(_) => Err(ConnectorError::Io {
                context: "a decoding thread stopped".into(),
                source: std::io::Error::other("the decoder panicked (a bug in Eddy)"),
            }),
        })
    }

    /// Keeps a decoded input for reuse.
    pub fn recycle(&mut self, input: D::Input) {
        self.spare.push(input);
    }

    /// An input to fill, reused from a decoded one when there is one
    /// (not cleared).
    pub fn spare(&mut self) -> Option<D::Input> {
        self.spare.pop()
    }
}

impl<D: Decode> Drop for DecodePool<D> {
    fn drop(&mut self) {
        // closing the queue ends the threads once their current input is done
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
