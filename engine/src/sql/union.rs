//! `UNION ALL`: the rows of several queries, each reading its own stream.
//! Columns pair up by position and take the first query's names; each
//! pair must have a common type (numbers widen), and a query whose rows
//! update earlier ones cannot take part yet. `UNION` without `ALL` (which
//! removes duplicates) is refused with the way to write it.

use sqlparser::ast;

use crate::error::{PlanError, PlanResult, SqlPos};
use crate::plan::expr::Expr;
use crate::plan::logical::{LogicalPlan, OP_COLUMN};
use crate::sql::parser::{QueryStatement, pos_of};
use crate::sql::typing::coerce;
use crate::types::SqlType;

use super::query::{Planner, unsupported};

impl Planner<'_> {
    /// Plans `left op right` (the body of `q`).
    pub(super) fn set_operation(
        &self,
        q: &QueryStatement,
        (left, op, quantifier, right): (
            &ast::SetExpr,
            ast::SetOperator,
            ast::SetQuantifier,
            &ast::SetExpr,
        ),
    ) -> PlanResult<LogicalPlan> {
        let pos = q.pos;
        if op != ast::SetOperator::Union {
            return Err(unsupported(&format!("{op}"), pos));
        }
        if quantifier != ast::SetQuantifier::All {
            return Err(PlanError::new(
                "UNION without ALL removes duplicate rows, which Eddy does not do yet",
                pos,
            )
            .with_hint("write UNION ALL (rows of both sides, duplicates kept)"));
        }
        if let Some(w) = &q.window {
            return Err(PlanError::new(
                "a WINDOW clause does not apply to a UNION ALL as a whole",
                w.pos,
            )
            .with_hint(
                "window each side: SELECT ... FROM TUMBLE(s, ts, INTERVAL '10' SECOND) ...",
            ));
        }
        let mut inputs = Vec::new();
        for side in [left, right] {
            let side_pos = pos_of(side);
            let query = ast::Query {
                body: Box::new(side.clone()),
                ..(*q.query).clone()
            };
            let plan = self.plan(&QueryStatement {
                query: Box::new(ast::Query {
                    order_by: None,
                    limit_clause: None,
                    ..query
                }),
                window: None,
                emit: q.emit,
                pos: side_pos,
            })?;
            if plan.schema().index_of(OP_COLUMN).is_ok() {
                return Err(PlanError::new(
                    "a side of UNION ALL gives a changelog (rows that update earlier ones), which cannot be combined yet",
                    side_pos,
                )
                .with_hint("window its aggregate with EMIT FINAL, so each row is final"));
            }
            // a side that is itself a UNION ALL adds its inputs
            match plan {
                LogicalPlan::Union { inputs: more } => {
                    inputs.extend(more.into_iter().map(|p| (p, side_pos)));
                }
                other => inputs.push((other, side_pos)),
            }
        }
        conform(inputs)
    }
}

/// The union of `inputs`, each cast to the columns' common types.
fn conform(inputs: Vec<(LogicalPlan, SqlPos)>) -> PlanResult<LogicalPlan> {
    let schemas: Vec<_> = inputs.iter().map(|(p, _)| p.schema()).collect();
    let width = schemas[0].fields().len();
    let mut types: Vec<SqlType> = vec![SqlType::Null; width];
    for (schema, (_, at)) in schemas.iter().zip(&inputs) {
        if schema.fields().len() != width {
            return Err(PlanError::new(
                format!(
                    "each side of UNION ALL must give the same number of columns: {width} and {}",
                    schema.fields().len()
                ),
                *at,
            )
            .with_hint("select the same columns, in the same order, on every side"));
        }
        for (c, f) in schema.fields().iter().enumerate() {
            let t = SqlType::from_arrow(f.data_type()).unwrap_or(SqlType::Varchar);
            types[c] = SqlType::common(types[c], t).ok_or_else(|| {
                PlanError::new(
                    format!(
                        "column {} of UNION ALL ('{}') is {} on one side and {t} on another",
                        c + 1,
                        schemas[0].field(c).name(),
                        types[c]
                    ),
                    *at,
                )
                .with_hint("CAST one side to the other's type")
            })?;
        }
    }
    let names: Vec<String> = schemas[0]
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let plans = inputs
        .into_iter()
        .zip(&schemas)
        .map(|((plan, _), schema)| {
            let same = schema
                .fields()
                .iter()
                .zip(&types)
                .all(|(f, t)| SqlType::from_arrow(f.data_type()) == Some(*t));
            if same {
                return plan;
            }
            let exprs = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let ty = SqlType::from_arrow(f.data_type()).unwrap_or(SqlType::Varchar);
                    let col = Expr::column(i, f.name().clone(), ty);
                    (coerce(col, types[i]), names[i].clone())
                })
                .collect();
            LogicalPlan::Project {
                input: Box::new(plan),
                exprs,
            }
        })
        .collect();
    Ok(LogicalPlan::Union { inputs: plans })
}
