//! Projection pushdown on the source side: decode only the columns a query
//! reads, and hand the query batches in the stream's full schema whose other
//! columns are NULL (never read, so never wrong).

use std::sync::Arc;

use arrow::array::{ArrayRef, new_null_array};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::error::ConnectorError;

/// The columns of a stream a source decodes.
#[derive(Debug, Clone)]
pub struct Projection {
    full: SchemaRef,
    /// The schema decoded: the kept columns, in stream order.
    decoded: SchemaRef,
    /// Per stream column, its index in `decoded` (`None`: not decoded).
    index: Vec<Option<usize>>,
}

impl Projection {
    /// Decodes `columns` of `full` (every column when `None`). A
    /// non-nullable column is always decoded: it cannot be left NULL.
    pub fn new(full: &SchemaRef, columns: Option<&[usize]>) -> Self {
        let keep =
            |i: usize| columns.is_none_or(|c| c.contains(&i)) || !full.field(i).is_nullable();
        let mut fields = Vec::new();
        let mut index = Vec::with_capacity(full.fields().len());
        for (i, f) in full.fields().iter().enumerate() {
            if keep(i) {
                index.push(Some(fields.len()));
                fields.push(f.clone());
            } else {
                index.push(None);
            }
        }
        Self {
            full: full.clone(),
            decoded: Arc::new(Schema::new_with_metadata(fields, full.metadata().clone())),
            index,
        }
    }

    /// The schema to decode into.
    pub fn decoded_schema(&self) -> &SchemaRef {
        &self.decoded
    }

    /// Whether every column is decoded.
    pub fn is_all(&self) -> bool {
        self.index.iter().all(Option::is_some)
    }

    /// A decoded batch in the stream's full schema (NULL columns for the rest).
    ///
    /// # Errors
    /// The batch does not have the decoded schema (a bug).
    pub fn expand(&self, batch: RecordBatch) -> Result<RecordBatch, ConnectorError> {
        if self.is_all() {
            return Ok(batch);
        }
        let n = batch.num_rows();
        let columns: Vec<ArrayRef> = self
            .index
            .iter()
            .zip(self.full.fields())
            .map(|(i, f)| match i {
                Some(i) => batch.column(*i).clone(),
                None => new_null_array(f.data_type(), n),
            })
            .collect();
        RecordBatch::try_new(self.full.clone(), columns).map_err(|e| ConnectorError::Arrow {
            context: "projecting decoded columns".into(),
            source: e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array};
    use arrow::datatypes::{DataType, Field};

    #[test]
    fn unread_columns_come_back_null() {
        let full: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Int64, false),
        ]));
        let p = Projection::new(&full, Some(&[0]));
        // the non-nullable column is decoded anyway
        assert_eq!(p.decoded_schema().fields().len(), 2);
        let decoded = RecordBatch::try_new(
            p.decoded_schema().clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(Int64Array::from(vec![3, 4])),
            ],
        )
        .unwrap();
        let out = p.expand(decoded).unwrap();
        assert_eq!(out.schema(), full);
        assert_eq!(out.column(1).null_count(), 2);
        assert!(Projection::new(&full, None).is_all());
    }
}
