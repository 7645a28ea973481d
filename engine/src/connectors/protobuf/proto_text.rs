//! `.proto` source, as a schema registry holds Protobuf schemas: read into
//! the same [`MessageDef`] a descriptor set gives (the part Eddy reads:
//! `syntax`, `package`, messages with their fields, nested messages and
//! enums; options, imports and reserved ranges are skipped), and written
//! for a sink's columns.

use std::collections::HashMap;

use arrow::datatypes::Schema;

use super::descriptor::{FieldDef, Kind, MessageDef, well_known};
use crate::types::SqlType;

/// The tokens of `.proto` source: words, numbers, quoted strings, symbols.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '"' || c == '\'' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(b[start..i.min(b.len())].iter().collect());
        } else if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' || c == '+' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || matches!(b[i], '_' | '.' | '-' | '+')) {
                i += 1;
            }
            out.push(b[start..i].iter().collect());
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

/// A field as written: label, type, name, number.
type RawField = (String, String, String, u32);

/// A message or enum as parsed, before references are resolved.
#[derive(Default)]
struct Parsed {
    /// full name (`.pkg.Outer.Inner`), fields, index path
    messages: Vec<(String, Vec<RawField>, Vec<i64>)>,
    enums: HashMap<String, Vec<(i32, String)>>,
    proto3: bool,
}

struct Cursor {
    t: Vec<String>,
    i: usize,
}

impl Cursor {
    fn peek(&self) -> &str {
        self.t.get(self.i).map_or("", String::as_str)
    }
    fn next(&mut self) -> String {
        let s = self.peek().to_string();
        self.i += 1;
        s
    }
    fn expect(&mut self, s: &str) -> Result<(), String> {
        let got = self.next();
        if got == s {
            Ok(())
        } else {
            Err(format!("expected '{s}', found '{got}'"))
        }
    }
    /// Skips to the end of a statement (`;`) or a `{ ... }` block.
    fn skip_statement(&mut self) {
        let mut depth = 0;
        while self.i < self.t.len() {
            match self.next().as_str() {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth <= 0 {
                        return;
                    }
                }
                ";" if depth == 0 => return,
                _ => {}
            }
        }
    }
}

fn parse_enum(c: &mut Cursor, scope: &str, out: &mut Parsed) -> Result<(), String> {
    let name = c.next();
    c.expect("{")?;
    let mut values = Vec::new();
    while c.peek() != "}" && c.i < c.t.len() {
        if matches!(c.peek(), "option" | "reserved") {
            c.skip_statement();
            continue;
        }
        let v = c.next();
        c.expect("=")?;
        let n: i32 = c
            .next()
            .parse()
            .map_err(|_| format!("enum value {v} has no number"))?;
        values.push((n, v));
        c.skip_statement();
    }
    c.expect("}")?;
    out.enums.insert(format!("{scope}.{name}"), values);
    Ok(())
}

fn parse_message(
    c: &mut Cursor,
    scope: &str,
    path: Vec<i64>,
    out: &mut Parsed,
) -> Result<(), String> {
    let name = c.next();
    let full = format!("{scope}.{name}");
    c.expect("{")?;
    let mut fields = Vec::new();
    let mut nested = 0;
    while c.peek() != "}" && c.i < c.t.len() {
        match c.peek() {
            "message" => {
                c.next();
                let mut p = path.clone();
                p.push(nested);
                nested += 1;
                parse_message(c, &full, p, out)?;
            }
            "enum" => {
                c.next();
                parse_enum(c, &full, out)?;
            }
            "option" | "reserved" | "extensions" | "extend" | ";" => c.skip_statement(),
            "oneof" => {
                // a oneof's fields have presence: read them as optional
                c.next();
                c.next();
                c.expect("{")?;
                while c.peek() != "}" && c.i < c.t.len() {
                    if c.peek() == "option" {
                        c.skip_statement();
                        continue;
                    }
                    let (ty, n, num) = field_rest(c)?;
                    fields.push(("optional".into(), ty, n, num));
                }
                c.expect("}")?;
            }
            _ => {
                let label = match c.peek() {
                    "optional" | "repeated" | "required" => c.next(),
                    _ => String::new(),
                };
                let (ty, n, num) = field_rest(c)?;
                fields.push((label, ty, n, num));
            }
        }
    }
    c.expect("}")?;
    out.messages.push((full, fields, path));
    Ok(())
}

/// `type name = number [options];` (a `map<k, v>` type is kept whole).
fn field_rest(c: &mut Cursor) -> Result<(String, String, u32), String> {
    let mut ty = c.next();
    if ty == "map" {
        while c.peek() != ">" && c.i < c.t.len() {
            c.next();
        }
        c.next();
        ty = "map".into();
    }
    let name = c.next();
    c.expect("=")?;
    let number = c
        .next()
        .parse()
        .map_err(|_| format!("field '{name}' has no number"))?;
    c.skip_statement();
    Ok((ty, name, number))
}

/// Reads `.proto` source and returns message `name` (`pkg.Msg`; the first
/// message of the file when `None`).
///
/// # Errors
/// Source this reader does not understand, or no such message.
pub(crate) fn message_from_text(text: &str, name: Option<&str>) -> Result<MessageDef, String> {
    let mut c = Cursor {
        t: tokens(text),
        i: 0,
    };
    let mut out = Parsed::default();
    let mut package = String::new();
    let mut top = 0;
    while c.i < c.t.len() {
        match c.next().as_str() {
            "syntax" => {
                c.expect("=")?;
                out.proto3 = c.next().contains("proto3");
                c.skip_statement();
            }
            "package" => {
                package = c.next();
                c.skip_statement();
            }
            "message" => {
                parse_message(&mut c, &scope(&package), vec![top], &mut out)?;
                top += 1;
            }
            "enum" => parse_enum(&mut c, &scope(&package), &mut out)?,
            "import" | "option" | "service" | "extend" => c.skip_statement(),
            ";" => {}
            other => return Err(format!("unexpected '{other}' in the .proto source")),
        }
    }
    let wanted = match name {
        Some(n) => format!(".{}", n.trim_start_matches('.')),
        None => out
            .messages
            .iter()
            .find(|(_, _, p)| p == &[0])
            .map(|(n, _, _)| n.clone())
            .ok_or("the .proto source has no message")?,
    };
    let Some((full, fields, path)) = out.messages.iter().find(|(n, _, _)| *n == wanted) else {
        let names: Vec<&str> = out
            .messages
            .iter()
            .map(|(n, _, _)| n.trim_start_matches('.'))
            .collect();
        return Err(format!(
            "the schema has no message '{}' (it has: {})",
            wanted.trim_start_matches('.'),
            names.join(", ")
        ));
    };
    let fields = fields
        .iter()
        .map(|(label, ty, name, number)| {
            let kind = resolve(ty, full, &out);
            let message_like =
                matches!(kind, Kind::Timestamp | Kind::Wrapper(_) | Kind::Message(_));
            FieldDef {
                name: name.clone(),
                number: *number,
                repeated: label == "repeated" || ty == "map",
                presence: message_like || label == "optional" || !out.proto3,
                kind,
            }
        })
        .collect();
    Ok(MessageDef {
        name: full.trim_start_matches('.').to_string(),
        fields,
        index_path: path.clone(),
    })
}

fn scope(package: &str) -> String {
    if package.is_empty() {
        String::new()
    } else {
        format!(".{package}")
    }
}

/// A field type's kind: a scalar, a well-known type, or a message or enum
/// found from the innermost scope out.
fn resolve(ty: &str, scope: &str, out: &Parsed) -> Kind {
    let scalar = match ty {
        "double" => Some(Kind::Double),
        "float" => Some(Kind::Float),
        "int32" | "int64" | "uint32" => Some(Kind::Int),
        "uint64" => Some(Kind::UInt64),
        "sint32" | "sint64" => Some(Kind::SInt),
        "fixed32" => Some(Kind::Fixed32 { signed: false }),
        "sfixed32" => Some(Kind::Fixed32 { signed: true }),
        "fixed64" => Some(Kind::Fixed64 { signed: false }),
        "sfixed64" => Some(Kind::Fixed64 { signed: true }),
        "bool" => Some(Kind::Bool),
        "string" => Some(Kind::String),
        "bytes" => Some(Kind::Bytes),
        "map" => Some(Kind::Message("map".into())),
        _ => None,
    };
    if let Some(k) = scalar {
        return k;
    }
    if let Some(k) = well_known(ty) {
        return k;
    }
    let mut s = scope.to_string();
    loop {
        let candidate = if ty.starts_with('.') {
            ty.to_string()
        } else {
            format!("{s}.{ty}")
        };
        if let Some(values) = out.enums.get(&candidate) {
            return Kind::Enum(values.clone());
        }
        if out.messages.iter().any(|(n, _, _)| *n == candidate) {
            return Kind::Message(candidate.trim_start_matches('.').to_string());
        }
        match s.rfind('.') {
            Some(i) if !ty.starts_with('.') => s.truncate(i),
            _ => return Kind::Message(ty.to_string()),
        }
    }
}

/// `.proto` source for a sink's columns: message `name` in package `eddy`,
/// every field `optional` (so NULL survives), `TIMESTAMP` a
/// `google.protobuf.Timestamp`, `DECIMAL` its text.
pub(crate) fn text_of_columns(name: &str, schema: &Schema) -> String {
    let mut out = String::from(
        "syntax = \"proto3\";\npackage eddy;\nimport \"google/protobuf/timestamp.proto\";\n\n",
    );
    let message: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    out.push_str(&format!("message {message} {{\n"));
    for (i, f) in schema.fields().iter().enumerate() {
        let (label, ty) = match SqlType::from_arrow(f.data_type()) {
            Some(SqlType::Boolean) => ("optional ", "bool"),
            Some(SqlType::Int) => ("optional ", "int32"),
            Some(SqlType::BigInt | SqlType::Interval) => ("optional ", "int64"),
            Some(SqlType::Double) => ("optional ", "double"),
            Some(SqlType::Timestamp) => ("", "google.protobuf.Timestamp"),
            _ => ("optional ", "string"),
        };
        out.push_str(&format!("  {label}{ty} {} = {};\n", f.name(), i + 1));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_protoc_would() {
        let text = r#"
            // a comment
            syntax = "proto3";
            package shop.v1;
            import "google/protobuf/timestamp.proto";
            option java_package = "x";
            enum Side { SIDE_UNKNOWN = 0; BUY = 1 [deprecated = true]; }
            message Other { string a = 1; }
            message Order {
              /* block */ int64 id = 1;
              optional string note = 2 [json_name = "n"];
              Side side = 3;
              google.protobuf.Timestamp at = 4;
              repeated int32 tags = 5;
              map<string, int64> counts = 6;
              Other other = 7;
              reserved 8, 9;
              oneof pick { string a = 10; int64 b = 11; }
              message Inner { bool x = 1; }
              Inner inner = 12;
            }"#;
        let m = message_from_text(text, Some("shop.v1.Order")).unwrap();
        assert_eq!(m.index_path, [1]);
        let f = |n: &str| m.fields[m.field_of(n).unwrap()].clone();
        assert_eq!((f("id").kind, f("id").presence), (Kind::Int, false));
        assert!(f("note").presence);
        assert_eq!(
            f("side").kind,
            Kind::Enum(vec![(0, "SIDE_UNKNOWN".into()), (1, "BUY".into())])
        );
        assert_eq!(f("at").kind, Kind::Timestamp);
        assert!(f("tags").repeated && f("counts").repeated);
        assert_eq!(f("other").kind, Kind::Message("shop.v1.Other".into()));
        assert_eq!(f("inner").kind, Kind::Message("shop.v1.Order.Inner".into()));
        assert!(f("b").presence);
        assert_eq!(f("b").number, 11);
        let first = message_from_text(text, None).unwrap();
        assert_eq!(first.name, "shop.v1.Other");
        assert!(
            message_from_text(text, Some("shop.v1.Nope"))
                .unwrap_err()
                .contains("it has: ")
        );
    }

    #[test]
    fn the_text_of_columns_reads_back() {
        use arrow::datatypes::{DataType, Field, TimeUnit};
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("amount", DataType::Decimal128(12, 2), true),
        ]);
        let m = message_from_text(&text_of_columns("my-out", &schema), None).unwrap();
        assert_eq!(m.name, "eddy.my_out");
        let kinds: Vec<(Kind, bool)> = m
            .fields
            .iter()
            .map(|f| (f.kind.clone(), f.presence))
            .collect();
        assert_eq!(
            kinds,
            [
                (Kind::Int, true),
                (Kind::Timestamp, true),
                (Kind::String, true)
            ]
        );
    }
}
