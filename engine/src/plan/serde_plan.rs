//! Plans as JSON: a physical plan serialises whole (its nodes' configs,
//! expressions, streams and options), so it can be stored or shipped to
//! another process and run there. Arrow schemas travel as (name, SQL type,
//! nullable) columns; a WebAssembly function as its module's name, sha256
//! and signature, resolved against the modules given when reading.

use std::cell::RefCell;
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::PlanError;
use crate::plan::expr::UdfRef;
use crate::plan::physical::PhysicalPlan;
use crate::types::SqlType;
use crate::udf::{UdfModule, UdfSignature};

thread_local! {
    /// The modules `UdfRef`s resolve to while a plan is read on this thread.
    static MODULES: RefCell<Vec<Arc<UdfModule>>> = const { RefCell::new(Vec::new()) };
}

impl PhysicalPlan {
    /// The plan as JSON.
    ///
    /// # Errors
    /// A column type SQL has no name for (a bug).
    pub fn to_json(&self) -> Result<String, PlanError> {
        serde_json::to_string(self)
            .map_err(|e| PlanError::unplaced(format!("the plan cannot be written as JSON: {e}")))
    }

    /// A plan from [`PhysicalPlan::to_json`]; its WebAssembly functions are
    /// looked up in `udfs` by module sha256.
    ///
    /// # Errors
    /// Malformed JSON, or a function whose module is not among `udfs`.
    pub fn from_json(json: &str, udfs: &[Arc<UdfModule>]) -> Result<Self, PlanError> {
        MODULES.with(|m| *m.borrow_mut() = udfs.to_vec());
        let plan = serde_json::from_str(json);
        MODULES.with(|m| m.borrow_mut().clear());
        plan.map_err(|e| PlanError::unplaced(format!("the plan JSON cannot be read: {e}")))
    }
}

/// How a [`UdfRef`] is written.
#[derive(Serialize, Deserialize)]
struct UdfName {
    module: String,
    sha256: String,
    signature: UdfSignature,
}

impl Serialize for UdfRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        UdfName {
            module: self.module.name.clone(),
            sha256: self.module.sha256.clone(),
            signature: self.signature.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for UdfRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = UdfName::deserialize(d)?;
        let module = MODULES
            .with(|m| m.borrow().iter().find(|m| m.sha256 == n.sha256).cloned())
            .ok_or_else(|| {
                D::Error::custom(format!(
                    "the plan calls {} of UDF module '{}' (sha256 {}), which is not registered here; register the same module first",
                    n.signature.name, n.module, n.sha256
                ))
            })?;
        Ok(UdfRef {
            module,
            signature: n.signature,
        })
    }
}

/// `#[serde(with = "schema")]`: an Arrow schema as its columns.
pub mod schema {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Column {
        name: String,
        #[serde(rename = "type")]
        ty: SqlType,
        nullable: bool,
    }

    /// Writes the columns.
    ///
    /// # Errors
    /// A column type with no SQL name.
    pub fn serialize<S: Serializer>(schema: &SchemaRef, s: S) -> Result<S::Ok, S::Error> {
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                let ty = SqlType::from_arrow(f.data_type()).ok_or_else(|| {
                    S::Error::custom(format!("column {} has no SQL type", f.name()))
                })?;
                Ok(Column {
                    name: f.name().clone(),
                    ty,
                    nullable: f.is_nullable(),
                })
            })
            .collect::<Result<Vec<_>, S::Error>>()?;
        columns.serialize(s)
    }

    /// Reads the columns.
    ///
    /// # Errors
    /// Malformed columns.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SchemaRef, D::Error> {
        let columns = Vec::<Column>::deserialize(d)?;
        let fields: Vec<Field> = columns
            .into_iter()
            .map(|c| Field::new(c.name, c.ty.to_arrow(), c.nullable))
            .collect();
        Ok(Arc::new(Schema::new(fields)))
    }
}
