//! Decoding chunks of JSON lines on several threads, with the results handed
//! back in input order: the rows, their order and the watermarks they make
//! are exactly those of one decoder, only sooner.

use std::collections::VecDeque;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use crate::connectors::json::{Decoded, JsonDecoder};
use crate::error::ConnectorError;

type Reply = Result<Decoded, ConnectorError>;

/// A result, and the chunk's buffer back for reuse.
type Answer = (Reply, Vec<u8>);

/// One chunk to decode: whole lines, the number of the first, where to answer.
struct Job {
    chunk: Vec<u8>,
    first_line: u64,
    reply: Sender<Answer>,
}

/// Decoders on threads of their own (or one inline), results in order.
pub(crate) struct DecodePool {
    jobs: Option<Sender<Job>>,
    /// With one decoder: decode on the caller's thread.
    inline: Option<JsonDecoder>,
    /// Answers still to come, oldest first.
    in_flight: VecDeque<Receiver<Answer>>,
    /// Buffers of decoded chunks, for the next reads (no fresh allocation
    /// and page faults per chunk).
    spare: Vec<Vec<u8>>,
    /// Chunks that may be in flight at once.
    capacity: usize,
    threads: Vec<JoinHandle<()>>,
}

impl DecodePool {
    /// `threads` decoders made by `make` (one: no thread, decode inline).
    ///
    /// # Errors
    /// A decoder cannot be made, or a thread cannot be started.
    pub fn new(
        name: &str,
        threads: usize,
        make: impl Fn() -> Result<JsonDecoder, ConnectorError>,
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
        let (tx, rx) = unbounded::<Job>();
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let mut decoder = make()?;
            let rx = rx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("eddy-decode-{i}"))
                .spawn(move || {
                    for job in rx.iter() {
                        let result = decoder.decode(&job.chunk, job.first_line);
                        let _ = job.reply.send((result, job.chunk));
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
            // two chunks per decoder: one decoding, one waiting
            capacity: threads * 2,
            threads: handles,
        })
    }

    /// Whether another chunk may be submitted.
    pub fn has_room(&self) -> bool {
        self.in_flight.len() < self.capacity
    }

    /// Whether no result is still to come.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Decodes `chunk` (whole lines; its first is line `first_line`).
    pub fn submit(&mut self, chunk: Vec<u8>, first_line: u64) {
        let (reply, answer) = bounded(1);
        match (&mut self.inline, &self.jobs) {
            (Some(d), _) => {
                let _ = reply.send((d.decode(&chunk, first_line), chunk));
            }
            (None, Some(jobs)) => {
                let _ = jobs.send(Job {
                    chunk,
                    first_line,
                    reply,
                });
            }
            (None, None) => {}
        }
        self.in_flight.push_back(answer);
    }

    /// The oldest result, waiting for it; `None` when nothing is in flight.
    pub fn next(&mut self) -> Option<Reply> {
        let answer = self.in_flight.pop_front()?;
        Some(match answer.recv() {
            Ok((reply, mut buffer)) => {
                buffer.clear();
                self.spare.push(buffer);
                reply
            }
            Err(_) => Err(ConnectorError::Io {
                context: "a decoding thread stopped".into(),
                source: std::io::Error::other("the decoder panicked (a bug in Eddy)"),
            }),
        })
    }

    /// An empty buffer, reused from a decoded chunk when there is one.
    pub fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }
}

impl Drop for DecodePool {
    fn drop(&mut self) {
        // closing the queue ends the threads once their current chunk is done
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
