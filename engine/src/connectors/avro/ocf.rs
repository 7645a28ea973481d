//! Avro object container files written by the `file` sink: a header (the
//! magic `Obj\x01`, the schema and codec `null` in the file metadata, a
//! 16-byte sync marker), then one block per batch (its row count, its byte
//! size, the rows' Avro bodies, the sync marker). Every write ends at a
//! block boundary, so the file sink's checkpoints (a length the file is cut
//! back to on restore) keep it a valid container file.
//!
//! The sync marker is derived from the path and the schema, so a restarted
//! run appends blocks the header written before still frames.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_avro::writer::format::AvroBinaryFormat;
use arrow_avro::writer::{Encoder, WriterBuilder};
use sha2::Digest;

use super::SchemaSource;
use crate::error::ConnectorError;

/// Encodes a file sink's batches as container-file blocks.
pub struct OcfEncoder {
    encoder: Encoder,
    header: Option<Vec<u8>>,
    sync: [u8; 16],
    stream: String,
}

fn long(v: i64, out: &mut Vec<u8>) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    long(b.len() as i64, out);
    out.extend_from_slice(b);
}

impl OcfEncoder {
    /// An encoder of batches of `schema` into the file at `path`, with the
    /// schema `source` gives (`avro.schema`) or the columns'.
    ///
    /// # Errors
    /// A given schema the columns do not match.
    pub fn new(
        stream: &str,
        path: &str,
        schema: &SchemaRef,
        source: &SchemaSource,
    ) -> Result<Self, ConnectorError> {
        let (text, with_schema) = super::encode::writer_schema(stream, schema, source)?;
        let encoder = WriterBuilder::new(with_schema)
            .build_encoder::<AvroBinaryFormat>()
            .map_err(|e| ConnectorError::Config {
                stream: stream.to_string(),
                message: format!("the Avro schema: {e}"),
            })?;
        let digest = sha2::Sha256::digest(format!("{path}\n{text}").as_bytes());
        let mut sync = [0u8; 16];
        sync.copy_from_slice(&digest[..16]);
        let mut header = b"Obj\x01".to_vec();
        long(2, &mut header);
        bytes(b"avro.schema", &mut header);
        bytes(text.as_bytes(), &mut header);
        bytes(b"avro.codec", &mut header);
        bytes(b"null", &mut header);
        long(0, &mut header);
        header.extend_from_slice(&sync);
        Ok(Self {
            encoder,
            header: Some(header),
            sync,
            stream: stream.to_string(),
        })
    }

    /// The header, the first time (a reopened file has it already).
    pub fn take_header(&mut self) -> Option<Vec<u8>> {
        self.header.take()
    }

    /// Appends `batch` as one block (nothing for no rows).
    ///
    /// # Errors
    /// A value the schema cannot hold.
    pub fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ConnectorError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let rows = super::encode::encode_rows(&mut self.encoder, &self.stream, batch)?;
        long(rows.len() as i64, out);
        bytes(rows.bytes(), out);
        out.extend_from_slice(&self.sync);
        Ok(())
    }
}
