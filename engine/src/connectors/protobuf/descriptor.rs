//! Messages as Eddy reads them, from a compiled descriptor set
//! (`protoc --include_imports --descriptor_set_out=bids.desc bids.proto`):
//! a `FileDescriptorSet`, itself a protobuf message, read with [`super::wire`].

use std::collections::HashMap;

use super::wire::{Raw, Reader};

/// A field's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Double,
    Float,
    /// int32, int64, uint32 (as varints)
    Int,
    /// uint64 (a varint past `i64::MAX` does not fit BIGINT)
    UInt64,
    /// sint32, sint64 (zigzag varints)
    SInt,
    /// fixed32 / sfixed32
    Fixed32 {
        signed: bool,
    },
    /// fixed64 / sfixed64
    Fixed64 {
        signed: bool,
    },
    Bool,
    String,
    Bytes,
    /// An enum: its values' numbers and names.
    Enum(Vec<(i32, String)>),
    /// `google.protobuf.Timestamp`
    Timestamp,
    /// `google.protobuf.*Value`: the wrapped type, NULL when absent.
    Wrapper(Box<Kind>),
    /// Another message (nested: not read).
    Message(String),
}

impl Kind {
    pub(crate) fn describe(&self) -> String {
        match self {
            Kind::Double => "double".into(),
            Kind::Float => "float".into(),
            Kind::Int => "an int32/int64/uint32".into(),
            Kind::UInt64 => "uint64".into(),
            Kind::SInt => "a sint32/sint64".into(),
            Kind::Fixed32 { .. } => "a fixed32/sfixed32".into(),
            Kind::Fixed64 { .. } => "a fixed64/sfixed64".into(),
            Kind::Bool => "bool".into(),
            Kind::String => "string".into(),
            Kind::Bytes => "bytes".into(),
            Kind::Enum(_) => "an enum".into(),
            Kind::Timestamp => "google.protobuf.Timestamp".into(),
            Kind::Wrapper(k) => format!("a wrapper of {}", k.describe()),
            Kind::Message(m) => format!("the nested message {m}"),
        }
    }
}

/// A field of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldDef {
    pub(crate) name: String,
    pub(crate) number: u32,
    pub(crate) kind: Kind,
    pub(crate) repeated: bool,
    /// Whether an absent field is NULL (`optional`, proto2, messages and
    /// wrappers) rather than its type's default (proto3's scalars).
    pub(crate) presence: bool,
}

/// A message type: its full name (no leading dot) and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageDef {
    pub(crate) name: String,
    pub(crate) fields: Vec<FieldDef>,
    /// Its index path among its file's message types (the Confluent wire
    /// format's message indexes).
    pub(crate) index_path: Vec<i64>,
}

impl MessageDef {
    /// The field a column reads: the same name, else the same name in another case.
    pub(crate) fn field_of(&self, column: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.name == column)
            .or_else(|| {
                self.fields
                    .iter()
                    .position(|f| f.name.eq_ignore_ascii_case(column))
            })
    }
}

/// Raw descriptor of a message before its field types are resolved.
struct RawMessage {
    fields: Vec<RawField>,
    index_path: Vec<i64>,
    proto3: bool,
}

struct RawField {
    name: String,
    number: u32,
    label: u64,
    ty: u64,
    type_name: String,
    proto3_optional: bool,
}

fn text(raw: Raw<'_>) -> Result<String, String> {
    match raw {
        Raw::Len(b) => String::from_utf8(b.to_vec()).map_err(|_| "a name is not UTF-8".into()),
        _ => Err("a descriptor's name has the wrong wire type".into()),
    }
}

fn number(raw: Raw<'_>) -> u64 {
    match raw {
        Raw::Varint(v) => v,
        _ => 0,
    }
}

fn field(bytes: &[u8]) -> Result<RawField, String> {
    let mut f = RawField {
        name: String::new(),
        number: 0,
        label: 1,
        ty: 0,
        type_name: String::new(),
        proto3_optional: false,
    };
    let mut r = Reader::new(bytes);
    while !r.at_end() {
        match r.field()? {
            (1, v) => f.name = text(v)?,
            (3, v) => f.number = number(v) as u32,
            (4, v) => f.label = number(v),
            (5, v) => f.ty = number(v),
            (6, v) => f.type_name = text(v)?,
            (17, v) => f.proto3_optional = number(v) != 0,
            _ => {}
        }
    }
    Ok(f)
}

fn enum_values(bytes: &[u8]) -> Result<(String, Vec<(i32, String)>), String> {
    let (mut name, mut values) = (String::new(), Vec::new());
    let mut r = Reader::new(bytes);
    while !r.at_end() {
        match r.field()? {
            (1, v) => name = text(v)?,
            (2, Raw::Len(b)) => {
                let (mut n, mut num) = (String::new(), 0i32);
                let mut vr = Reader::new(b);
                while !vr.at_end() {
                    match vr.field()? {
                        (1, v) => n = text(v)?,
                        (2, v) => num = number(v) as i32,
                        _ => {}
                    }
                }
                values.push((num, n));
            }
            _ => {}
        }
    }
    Ok((name, values))
}

/// Every message and enum of the set, by full name (`.pkg.Msg`).
#[derive(Default)]
struct Types {
    messages: HashMap<String, RawMessage>,
    enums: HashMap<String, Vec<(i32, String)>>,
}

fn message(
    bytes: &[u8],
    scope: &str,
    index_path: Vec<i64>,
    proto3: bool,
    types: &mut Types,
) -> Result<(), String> {
    let mut name = String::new();
    let mut fields = Vec::new();
    let mut nested = Vec::new();
    let mut r = Reader::new(bytes);
    while !r.at_end() {
        match r.field()? {
            (1, v) => name = text(v)?,
            (2, Raw::Len(b)) => fields.push(field(b)?),
            (3, Raw::Len(b)) => nested.push(b),
            (4, Raw::Len(b)) => {
                let (n, values) = enum_values(b)?;
                nested_enum(&mut types.enums, &format!("{scope}.{name}"), n, values);
            }
            _ => {}
        }
    }
    let full = format!("{scope}.{name}");
    for (i, b) in nested.into_iter().enumerate() {
        let mut path = index_path.clone();
        path.push(i as i64);
        message(b, &full, path, proto3, types)?;
    }
    types.messages.insert(
        full,
        RawMessage {
            fields,
            index_path,
            proto3,
        },
    );
    Ok(())
}

fn nested_enum(
    enums: &mut HashMap<String, Vec<(i32, String)>>,
    scope: &str,
    name: String,
    values: Vec<(i32, String)>,
) {
    enums.insert(format!("{scope}.{name}"), values);
}

/// Reads a `FileDescriptorSet` and returns the message `name` (`pkg.Msg`).
///
/// # Errors
/// Bytes that are no descriptor set, or no message of that name (the
/// names it has are listed).
pub(crate) fn message_from_set(set: &[u8], name: &str) -> Result<MessageDef, String> {
    let mut types = Types::default();
    let mut r = Reader::new(set);
    while !r.at_end() {
        let (n, v) = r
            .field()
            .map_err(|e| format!("not a compiled descriptor set: {e}"))?;
        if let (1, Raw::Len(file)) = (n, v) {
            read_file(file, &mut types)?;
        }
    }
    resolve(&types, name)
}

fn read_file(file: &[u8], types: &mut Types) -> Result<(), String> {
    let (mut package, mut syntax) = (String::new(), String::new());
    let mut messages = Vec::new();
    let mut enums = Vec::new();
    let mut r = Reader::new(file);
    while !r.at_end() {
        match r.field()? {
            (2, v) => package = text(v)?,
            (4, Raw::Len(b)) => messages.push(b),
            (5, Raw::Len(b)) => enums.push(b),
            (12, v) => syntax = text(v)?,
            _ => {}
        }
    }
    let scope = if package.is_empty() {
        String::new()
    } else {
        format!(".{package}")
    };
    for b in enums {
        let (n, values) = enum_values(b)?;
        nested_enum(&mut types.enums, &scope, n, values);
    }
    for (i, b) in messages.into_iter().enumerate() {
        message(b, &scope, vec![i as i64], syntax == "proto3", types)?;
    }
    Ok(())
}

fn resolve(types: &Types, name: &str) -> Result<MessageDef, String> {
    let key = format!(".{}", name.trim_start_matches('.'));
    let Some(m) = types.messages.get(&key) else {
        let mut names: Vec<&str> = types
            .messages
            .keys()
            .map(|k| k.trim_start_matches('.'))
            .filter(|k| !k.starts_with("google.protobuf."))
            .collect();
        names.sort_unstable();
        return Err(format!(
            "the descriptor set has no message '{name}' (it has: {})",
            names.join(", ")
        ));
    };
    let fields = m
        .fields
        .iter()
        .map(|f| {
            let kind = kind_of(f, types);
            let message_like =
                matches!(kind, Kind::Timestamp | Kind::Wrapper(_) | Kind::Message(_));
            FieldDef {
                name: f.name.clone(),
                number: f.number,
                repeated: f.label == 3,
                presence: message_like || f.proto3_optional || !m.proto3,
                kind,
            }
        })
        .collect();
    Ok(MessageDef {
        name: key.trim_start_matches('.').to_string(),
        fields,
        index_path: m.index_path.clone(),
    })
}

fn kind_of(f: &RawField, types: &Types) -> Kind {
    match f.ty {
        1 => Kind::Double,
        2 => Kind::Float,
        3 | 5 | 13 => Kind::Int,
        4 => Kind::UInt64,
        6 => Kind::Fixed64 { signed: false },
        7 => Kind::Fixed32 { signed: false },
        8 => Kind::Bool,
        9 => Kind::String,
        12 => Kind::Bytes,
        15 => Kind::Fixed32 { signed: true },
        16 => Kind::Fixed64 { signed: true },
        17 | 18 => Kind::SInt,
        14 => Kind::Enum(types.enums.get(&f.type_name).cloned().unwrap_or_default()),
        11 => well_known(&f.type_name)
            .unwrap_or_else(|| Kind::Message(f.type_name.trim_start_matches('.').to_string())),
        _ => Kind::Message(format!("a group ({})", f.type_name)),
    }
}

/// The well-known types Eddy reads as scalars.
pub(crate) fn well_known(type_name: &str) -> Option<Kind> {
    Some(match type_name.trim_start_matches('.') {
        "google.protobuf.Timestamp" => Kind::Timestamp,
        "google.protobuf.DoubleValue" => Kind::Wrapper(Box::new(Kind::Double)),
        "google.protobuf.FloatValue" => Kind::Wrapper(Box::new(Kind::Float)),
        "google.protobuf.Int64Value"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value" => Kind::Wrapper(Box::new(Kind::Int)),
        "google.protobuf.UInt64Value" => Kind::Wrapper(Box::new(Kind::UInt64)),
        "google.protobuf.BoolValue" => Kind::Wrapper(Box::new(Kind::Bool)),
        "google.protobuf.StringValue" => Kind::Wrapper(Box::new(Kind::String)),
        "google.protobuf.BytesValue" => Kind::Wrapper(Box::new(Kind::Bytes)),
        _ => return None,
    })
}
