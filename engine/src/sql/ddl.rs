//! `CREATE STREAM`: checks a declaration and turns it into a [`StreamDef`].

use std::sync::Arc;

use arrow::datatypes::{Field, Schema};
use sqlparser::ast::{self, BinaryOperator, Spanned};

use crate::catalog::{Options, StreamDef, WatermarkSpec};
use crate::connectors;
use crate::error::{PlanError, PlanResult, SqlPos};
use crate::sql::literal::interval_ms;
use crate::sql::parser::{CreateStream, span_pos};
use crate::types::SqlType;

/// Builds and validates a stream definition.
///
/// # Errors
/// Unsupported types, duplicate columns, a bad watermark, or connector
/// options the connector rejects.
pub(crate) fn create_stream(c: &CreateStream) -> PlanResult<StreamDef> {
    let name = c.name.value.clone();
    let mut fields: Vec<Field> = Vec::new();
    for col in &c.columns {
        let ty = SqlType::from_sql(&col.data_type).ok_or_else(|| {
            PlanError::new(
                format!(
                    "unsupported type {} for column '{}'",
                    col.data_type, col.name.value
                ),
                col.type_pos,
            )
            .with_hint(super::typing::TYPES_HINT)
        })?;
        if fields
            .iter()
            .any(|f| f.name().eq_ignore_ascii_case(&col.name.value))
        {
            return Err(PlanError::new(
                format!("column '{}' is declared twice", col.name.value),
                span_pos(col.name.span),
            ));
        }
        fields.push(Field::new(col.name.value.clone(), ty.to_arrow(), true));
    }
    let connector = c
        .options
        .iter()
        .find(|(k, _, _)| k.eq_ignore_ascii_case("connector"))
        .and_then(|(_, v, _)| connectors::registry::find(v));
    let system = connector.map_or_else(Vec::new, |c| c.system_fields());
    if let Some(connector) = connector.filter(|_| !system.is_empty()) {
        let is_system = |n: &str| system.iter().any(|f| f.name().eq_ignore_ascii_case(n));
        if let Some(col) = c.columns.iter().find(|col| is_system(&col.name.value)) {
            let names: Vec<&str> = system.iter().map(|f| f.name().as_str()).collect();
            return Err(PlanError::new(
                format!(
                    "column '{}' is a system column of {} streams and cannot be declared",
                    col.name.value,
                    connector.name()
                ),
                span_pos(col.name.span),
            )
            .with_hint(format!(
                "leave it out: {} are always there",
                names.join(", ")
            )));
        }
        if !fields.is_empty() {
            fields.extend(system);
        }
    }
    let options = Options::new(
        name.clone(),
        c.options.iter().map(|(k, v, _)| (k.clone(), v.clone())),
    );
    let connector_err = |e: crate::error::ConnectorError| {
        let pos = connector_error_pos(c, &e.to_string());
        PlanError::new(e.to_string(), pos)
    };
    let event_time =
        crate::catalog::EventTimeOptions::from_options(&options).map_err(connector_err)?;
    for k in &c.primary_key {
        if !c
            .columns
            .iter()
            .any(|col| col.name.value.eq_ignore_ascii_case(&k.value))
        {
            return Err(PlanError::new(
                format!(
                    "PRIMARY KEY column '{}' is not a declared column of '{name}'",
                    k.value
                ),
                span_pos(k.span),
            )
            .with_hint("the key lists columns declared before it"));
        }
    }
    let mut def = StreamDef {
        name: name.clone(),
        schema: Arc::new(Schema::new(fields)),
        watermark: None,
        primary_key: c.primary_key.iter().map(|k| k.value.clone()).collect(),
        options,
        event_time,
        pos: c.pos,
    };
    connectors::validate(&def).map_err(connector_err)?;
    if def.schema.fields().is_empty() {
        // a sink may leave its columns to the query that feeds it
        if let Some(schema) = connectors::inferred_schema(&def).map_err(connector_err)? {
            def.schema = schema;
        }
    }
    if let Some(w) = &c.watermark {
        def.watermark = Some(watermark(&def, w)?);
    }
    Ok(def)
}

/// Points a connector error at the option it names, if any.
fn connector_error_pos(c: &CreateStream, message: &str) -> SqlPos {
    c.options
        .iter()
        .find(|(k, _, _)| message.contains(&format!("'{}'", k.to_ascii_lowercase())))
        .map_or(c.pos, |(_, _, p)| *p)
}

fn watermark(def: &StreamDef, w: &crate::sql::parser::WatermarkDef) -> PlanResult<WatermarkSpec> {
    let col = &w.column.value;
    let field = def
        .schema
        .fields()
        .iter()
        .find(|f| f.name().eq_ignore_ascii_case(col))
        .ok_or_else(|| {
            PlanError::new(
                format!("WATERMARK FOR unknown column '{col}'"),
                span_pos(w.column.span),
            )
            .with_hint("the watermark column must be one of the stream's TIMESTAMP columns")
        })?;
    if SqlType::from_arrow(field.data_type()) != Some(SqlType::Timestamp) {
        return Err(PlanError::new(
            format!("WATERMARK column '{col}' must be a TIMESTAMP"),
            span_pos(w.column.span),
        )
        .with_hint(format!(
            "declare '{col}' as TIMESTAMP (JSON: epoch milliseconds or RFC 3339 text)"
        )));
    }
    let hint = format!("write WATERMARK FOR {col} AS {col} - INTERVAL '5' SECOND");
    let is_col =
        |e: &ast::Expr| matches!(e, ast::Expr::Identifier(i) if i.value.eq_ignore_ascii_case(col));
    let delay_ms = match &w.expr {
        e if is_col(e) => 0,
        ast::Expr::BinaryOp {
            left,
            op: BinaryOperator::Minus,
            right,
        } if is_col(left) => match right.as_ref() {
            ast::Expr::Interval(iv) => interval_ms(iv, span_pos(right.span()))?,
            other => {
                return Err(PlanError::new(
                    format!("the watermark delay must be an INTERVAL, not {other}"),
                    span_pos(other.span()),
                )
                .with_hint(hint));
            }
        },
        other => {
            return Err(PlanError::new(
                format!("unsupported watermark expression {other}"),
                span_pos(other.span()).or(w.pos),
            )
            .with_hint(hint));
        }
    };
    if delay_ms < 0 {
        return Err(
            PlanError::new("the watermark delay must not be negative", w.pos).with_hint(hint),
        );
    }
    Ok(WatermarkSpec {
        column: field.name().clone(),
        delay_ms,
    })
}

trait OrPos {
    fn or(self, other: SqlPos) -> SqlPos;
}

impl OrPos for SqlPos {
    fn or(self, other: SqlPos) -> SqlPos {
        if self.is_known() { self } else { other }
    }
}
