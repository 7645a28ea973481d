//! Name resolution: the columns a SQL expression may refer to.

use crate::error::{PlanError, SqlPos};
use crate::plan::expr::Expr;

/// One column visible to expressions.
#[derive(Debug, Clone)]
pub(crate) struct ScopeColumn {
    /// Name (matched case-insensitively).
    pub name: String,
    /// Stream name or alias that may qualify it.
    pub qualifiers: Vec<String>,
    /// The expression a reference resolves to.
    pub expr: Expr,
    /// Left out of `SELECT *` (system columns, window bounds).
    pub hidden: bool,
}

/// The columns visible in one query level.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    pub columns: Vec<ScopeColumn>,
    /// Registered WebAssembly modules whose functions SQL may call.
    pub udfs: std::sync::Arc<Vec<std::sync::Arc<crate::udf::UdfModule>>>,
}

impl Scope {
    /// The UDF called `name` (case-insensitive), if one is registered.
    pub fn udf(
        &self,
        name: &str,
    ) -> Option<(
        std::sync::Arc<crate::udf::UdfModule>,
        crate::udf::UdfSignature,
    )> {
        self.udfs
            .iter()
            .find_map(|m| m.function(name).map(|f| (m.clone(), f.clone())))
    }

    /// The names of the functions the modules give.
    pub fn udf_names(&self) -> Vec<&str> {
        self.udfs
            .iter()
            .flat_map(|m| m.functions.iter().map(|f| f.name.as_str()))
            .collect()
    }

    /// Adds a column.
    pub fn push(&mut self, name: impl Into<String>, qualifiers: Vec<String>, expr: Expr) {
        self.columns.push(ScopeColumn {
            name: name.into(),
            qualifiers,
            expr,
            hidden: false,
        });
    }

    /// Marks the last column pushed as left out of `SELECT *`.
    pub fn hide_last(&mut self) {
        if let Some(c) = self.columns.last_mut() {
            c.hidden = true;
        }
    }

    /// Resolves `[qualifier.]name`.
    pub fn resolve(
        &self,
        qualifier: Option<&str>,
        name: &str,
        pos: SqlPos,
    ) -> Result<Expr, PlanError> {
        let matches: Vec<&ScopeColumn> = self
            .columns
            .iter()
            .filter(|c| c.name.eq_ignore_ascii_case(name))
            .filter(|c| {
                qualifier.is_none_or(|q| c.qualifiers.iter().any(|cq| cq.eq_ignore_ascii_case(q)))
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.expr.clone()),
            [] => {
                let shown = match qualifier {
                    Some(q) => format!("{q}.{name}"),
                    None => name.to_string(),
                };
                let mut err = PlanError::new(format!("unknown column '{shown}'"), pos);
                let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
                err = match closest(name, &names) {
                    Some(s) => err.with_hint(format!(
                        "did you mean '{s}'? available columns: {}",
                        names.join(", ")
                    )),
                    None => err.with_hint(format!("available columns: {}", names.join(", "))),
                };
                Err(err)
            }
            _ => Err(
                PlanError::new(format!("column reference '{name}' is ambiguous"), pos)
                    .with_hint("qualify it with the stream name or alias"),
            ),
        }
    }
}

/// The candidate closest to `name` by edit distance, if it is close enough
/// to be a plausible typo.
pub(crate) fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&name, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d < name.len() && *d <= (name.len().max(c.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The name an object name stands for: its parts' values joined by `.`,
/// without quotes. Names are matched case-insensitively whether quoted or
/// not (`"bids"`, `BIDS` and `bids` are one stream); quotes let a name hold
/// spaces or a keyword (docs/sql.md).
pub(crate) fn object_name(name: &sqlparser::ast::ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part.as_ident() {
            Some(i) => i.value.clone(),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SqlType;

    #[test]
    fn suggests_close_names() {
        assert_eq!(closest("pric", &["price", "auction"]), Some("price"));
        assert_eq!(closest("zzzzzz", &["price", "auction"]), None);
    }

    #[test]
    fn unknown_column_lists_candidates() {
        let mut s = Scope::default();
        s.push(
            "price",
            vec!["bids".into()],
            Expr::column(0, "price", SqlType::Double),
        );
        let e = s.resolve(None, "prise", SqlPos::new(1, 8)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown column 'prise' at line 1, column 8\nhint: did you mean 'price'? available columns: price"
        );
        assert!(s.resolve(Some("bids"), "PRICE", SqlPos::default()).is_ok());
    }
}
