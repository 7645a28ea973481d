//! A validated, compiled UDF module and the functions it describes.

use eddy_udf_abi::{AGG_PREFIX, AbiType, CALL_PREFIX, DESCRIBE_PREFIX, EXPORT_ABI_VERSION};
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::types::SqlType;
use crate::udf::instance::{Limits, UdfInstance};
use crate::udf::{UdfError, UdfLimits, engine};

/// What a function does in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UdfKind {
    /// A boolean predicate usable in WHERE (and anywhere a BOOLEAN goes).
    Filter,
    /// A value per row.
    Scalar,
    /// A value per group (and window), from update/merge/finish.
    Aggregate,
}

/// One function's SQL signature, from the module's self-description.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct UdfSignature {
    /// The SQL name.
    pub name: String,
    /// Filter or scalar.
    pub kind: UdfKind,
    /// Argument types.
    pub args: Vec<SqlType>,
    /// Whether each argument accepts NULL (`Option<T>` in Rust).
    pub nullable: Vec<bool>,
    /// Result type.
    pub ret: SqlType,
}

impl UdfKind {
    /// As written in listings.
    pub fn name(self) -> &'static str {
        match self {
            UdfKind::Filter => "filter",
            UdfKind::Scalar => "scalar",
            UdfKind::Aggregate => "aggregate",
        }
    }
}

impl std::fmt::Display for UdfSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let args: Vec<String> = self.args.iter().map(|t| t.to_string()).collect();
        write!(f, "{}({}) -> {}", self.name, args.join(", "), self.ret)
    }
}

/// A compiled module: validated once, instantiated per operator.
#[derive(Clone)]
pub struct UdfModule {
    /// Its registered name.
    pub name: String,
    /// sha256 of its bytes, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: usize,
    /// The functions it exports.
    pub functions: Vec<UdfSignature>,
    /// Whether each aggregate can retract rows (probed at load; absent when
    /// the probe failed).
    pub retract: std::collections::BTreeMap<String, bool>,
    /// Compiled and linked once (no imports): instantiating it is cheap.
    pub(crate) pre: wasmtime::InstancePre<Limits>,
    pub(crate) limits: UdfLimits,
}

impl std::fmt::Debug for UdfModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdfModule")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("functions", &self.functions)
            .finish()
    }
}

/// The raw self-description a `__eddy_describe_*` export returns.
#[derive(Deserialize)]
struct Described {
    abi: u32,
    name: String,
    kind: UdfKind,
    args: Vec<DescribedArg>,
    ret: Option<String>,
}

#[derive(Deserialize)]
struct DescribedArg {
    #[serde(rename = "type")]
    ty: String,
    nullable: bool,
}

fn sql_type(name: &str) -> Option<SqlType> {
    Some(match AbiType::from_name(name)? {
        AbiType::BigInt => SqlType::BigInt,
        AbiType::Double => SqlType::Double,
        AbiType::Boolean => SqlType::Boolean,
        AbiType::Varchar => SqlType::Varchar,
    })
}

/// Why SQL could not call a function named `name`, if it could not: it
/// must be an unquoted identifier (a letter, then letters, digits and
/// `_`, at most 64), and not a column every window query has.
fn uncallable(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return Some("a name starts with a letter");
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some("a name holds only letters, digits and _");
    }
    if name.len() > 64 {
        return Some("a name has at most 64 characters");
    }
    let lower = name.to_ascii_lowercase();
    if ["window_start", "window_end", "window_time"].contains(&lower.as_str()) {
        return Some("it is the name of a window column");
    }
    None
}

/// The ABI version this host speaks.
pub const ABI_VERSION: u32 = eddy_udf_abi::ABI_VERSION;

impl UdfModule {
    /// Validates and compiles `bytes`, checks the ABI marker and reads the
    /// functions' self-descriptions.
    ///
    /// # Errors
    /// [`UdfError::TooLarge`], [`UdfError::Invalid`] (not WebAssembly, or it
    /// imports functions the host does not give), [`UdfError::Abi`] (no or
    /// another ABI version, a malformed description).
    pub fn load(name: &str, bytes: &[u8], limits: UdfLimits) -> Result<Arc<Self>, UdfError> {
        if bytes.len() > limits.module_bytes {
            return Err(UdfError::TooLarge {
                name: name.into(),
                size: bytes.len(),
                limit: limits.module_bytes,
            });
        }
        let engine = engine(&limits)?;
        let module = wasmtime::Module::new(&engine, bytes).map_err(|e| UdfError::Invalid {
            name: name.into(),
            reason: format!("{e:#}"),
        })?;
        if let Some(import) = module.imports().next() {
            return Err(UdfError::Invalid {
                name: name.into(),
                reason: format!(
                    "it imports {}::{}, but UDFs get no host functions (no WASI, files or network); build with --target wasm32-unknown-unknown",
                    import.module(),
                    import.name()
                ),
            });
        }
        let abi = |reason: String| UdfError::Abi {
            name: name.into(),
            reason,
        };
        let exports: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
        if !exports.iter().any(|e| e == EXPORT_ABI_VERSION) {
            return Err(abi(
                "no Eddy ABI marker (__eddy_abi_version): build it with the eddy-udf SDK and mark functions with #[eddy_udf::scalar] or #[eddy_udf::filter]".into(),
            ));
        }
        let sha256 = hex(&Sha256::digest(bytes));
        let pre = wasmtime::Linker::new(&engine)
            .instantiate_pre(&module)
            .map_err(|e| UdfError::Invalid {
                name: name.into(),
                reason: format!("{e:#}"),
            })?;
        let mut probe = UdfModule {
            name: name.into(),
            sha256,
            size: bytes.len(),
            functions: Vec::new(),
            retract: std::collections::BTreeMap::new(),
            pre,
            limits,
        };
        // checks the ABI marker first
        let mut instance = UdfInstance::new(&probe).map_err(|e| match e {
            e @ UdfError::Abi { .. } => e,
            other => abi(format!("cannot be instantiated: {other}")),
        })?;
        let mut functions = Vec::new();
        for export in exports
            .iter()
            .filter_map(|e| e.strip_prefix(DESCRIBE_PREFIX))
        {
            let text = instance
                .describe(export)
                .map_err(|e| abi(format!("the description of {export} fails: {e}")))?;
            let d: Described = serde_json::from_str(&text)
                .map_err(|e| abi(format!("the description of {export} is malformed: {e}")))?;
            if d.abi != ABI_VERSION || d.name != export {
                return Err(abi(format!(
                    "the description of {export} does not match it"
                )));
            }
            if let Some(why) = uncallable(&d.name) {
                return Err(abi(format!(
                    "it exports a function SQL cannot call, '{}': {why}; rename it in the module (the eddy-udf macros check names)",
                    d.name.escape_default()
                )));
            }
            let entry = if d.kind == UdfKind::Aggregate {
                format!("{AGG_PREFIX}update_{export}")
            } else {
                format!("{CALL_PREFIX}{export}")
            };
            if !exports.contains(&entry) {
                return Err(abi(format!("{export} is described but has no entry point")));
            }
            let unknown = |t: &str| abi(format!("{export} uses an unknown type {t}"));
            let args = d
                .args
                .iter()
                .map(|a| sql_type(&a.ty).ok_or_else(|| unknown(&a.ty)))
                .collect::<Result<Vec<_>, _>>()?;
            let ret_name = d.ret.unwrap_or_default();
            let ret = sql_type(&ret_name).ok_or_else(|| unknown(&ret_name))?;
            if d.kind == UdfKind::Filter && ret != SqlType::Boolean {
                return Err(abi(format!("filter {export} must return BOOLEAN")));
            }
            functions.push(UdfSignature {
                name: d.name,
                kind: d.kind,
                args,
                nullable: d.args.iter().map(|a| a.nullable).collect(),
                ret,
            });
        }
        if functions.is_empty() {
            return Err(abi(
                "it exports no function (no __eddy_describe_* export)".into()
            ));
        }
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        probe.retract = functions
            .iter()
            .filter_map(|f| {
                crate::udf::try_call::probe_retract(&mut instance, f).map(|r| (f.name.clone(), r))
            })
            .collect();
        probe.functions = functions;
        Ok(Arc::new(probe))
    }

    /// The limits its instances run under.
    pub fn limits(&self) -> UdfLimits {
        self.limits
    }

    /// The signature of `function`, if the module has it.
    pub fn function(&self, function: &str) -> Option<&UdfSignature> {
        self.functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(function))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod name_tests {
    use super::uncallable;

    #[test]
    fn only_names_sql_can_call_are_accepted() {
        for ok in ["median", "p90", "in_region", "Geo_Dist2"] {
            assert_eq!(uncallable(ok), None, "{ok}");
        }
        for bad in [
            "",
            "_private",
            "a b",
            "9lives",
            "x-y",
            "window_start",
            "WINDOW_END",
            "é",
        ] {
            assert!(uncallable(bad).is_some(), "{bad:?} accepted");
        }
        assert!(uncallable(&"a".repeat(65)).is_some());
    }
}
