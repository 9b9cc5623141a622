//! Type strings: how a manifest names the Arrow type of a state column.
//!
//! The grammar (spec/FORMAT.md, "Types") is small and language-neutral:
//! `bool`, `int8`..`int64`, `uint8`..`uint64`, `float32`, `float64`, `utf8`, `large_utf8`,
//! `binary`, `large_binary`, `date32`, `timestamp[s|ms|us|ns]`, `list<T>`,
//! `struct<name: T, ...>` and `map<K, V>`.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

use crate::FormatError;

/// The canonical type string of an Arrow type, or an error for a type format v1 cannot hold.
///
/// Nullability and the names Arrow gives list items and map entries are not part of the
/// type string: they are fixed by the spec (see [`parse_type`]).
pub fn type_name(data_type: &DataType) -> Result<String, FormatError> {
    let mut out = String::new();
    write_type(data_type, &mut out)?;
    Ok(out)
}

fn write_type(dt: &DataType, out: &mut String) -> Result<(), FormatError> {
    let simple = match dt {
        DataType::Boolean => "bool",
        DataType::Int8 => "int8",
        DataType::Int16 => "int16",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::UInt8 => "uint8",
        DataType::UInt16 => "uint16",
        DataType::UInt32 => "uint32",
        DataType::UInt64 => "uint64",
        DataType::Float32 => "float32",
        DataType::Float64 => "float64",
        DataType::Utf8 => "utf8",
        DataType::LargeUtf8 => "large_utf8",
        DataType::Binary => "binary",
        DataType::LargeBinary => "large_binary",
        DataType::Date32 => "date32",
        DataType::Timestamp(unit, None) => match unit {
            TimeUnit::Second => "timestamp[s]",
            TimeUnit::Millisecond => "timestamp[ms]",
            TimeUnit::Microsecond => "timestamp[us]",
            TimeUnit::Nanosecond => "timestamp[ns]",
        },
        DataType::List(item) => {
            out.push_str("list<");
            write_type(item.data_type(), out)?;
            out.push('>');
            return Ok(());
        }
        DataType::Struct(fields) => {
            if fields.is_empty() {
                return Err(unsupported(dt, "a struct needs at least one field"));
            }
            if fields.len() > MAX_STRUCT_FIELDS {
                return Err(unsupported(
                    dt,
                    &format!("a struct has at most {MAX_STRUCT_FIELDS} fields"),
                ));
            }
            out.push_str("struct<");
            let mut names = std::collections::HashSet::new();
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                check_field_name(f.name()).map_err(|m| unsupported(dt, &m))?;
                if !names.insert(f.name()) {
                    return Err(unsupported(
                        dt,
                        &format!("duplicate struct field {:?}", f.name()),
                    ));
                }
                out.push_str(f.name());
                out.push_str(": ");
                write_type(f.data_type(), out)?;
            }
            out.push('>');
            return Ok(());
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(unsupported(dt, "map entries are not a struct"));
            };
            if kv.len() != 2 {
                return Err(unsupported(
                    dt,
                    "map entries need exactly a key and a value",
                ));
            }
            out.push_str("map<");
            write_type(kv[0].data_type(), out)?;
            out.push_str(", ");
            write_type(kv[1].data_type(), out)?;
            out.push('>');
            return Ok(());
        }
        other => return Err(unsupported(other, "not in format v1's type list")),
    };
    out.push_str(simple);
    Ok(())
}

fn unsupported(dt: &DataType, reason: &str) -> FormatError {
    FormatError::UnsupportedType {
        type_name: dt.to_string(),
        reason: reason.to_string(),
    }
}

fn check_field_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok_first = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if ok_first && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "struct field name {name:?} must match [A-Za-z_][A-Za-z0-9_]*"
        ))
    }
}

/// The Arrow type a type string names.
///
/// List items are nullable fields named `item`; struct fields are nullable; a map's entries
/// are a non-nullable struct `entries` of a non-nullable `key` and a nullable `value`,
/// unsorted.
pub fn parse_type(text: &str) -> Result<DataType, FormatError> {
    if text.len() > MAX_TYPE_LEN {
        return Err(FormatError::UnsupportedType {
            type_name: abbreviated(text),
            reason: format!("longer than {MAX_TYPE_LEN} bytes"),
        });
    }
    let mut p = Parser {
        text,
        pos: 0,
        depth: 0,
    };
    let dt = p.parse()?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(p.error("unexpected text after the type"));
    }
    Ok(dt)
}

/// Whether keys of this type can be hashed (spec: "Key hashing"): the primitive types except
/// floats, and structs of those. Floats are excluded because `0.0 == -0.0` and NaN make
/// equality and hashing disagree.
pub fn is_key_type(dt: &DataType) -> bool {
    match dt {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::Date32
        | DataType::Timestamp(_, None) => true,
        DataType::Struct(fields) => {
            !fields.is_empty() && fields.iter().all(|f| is_key_type(f.data_type()))
        }
        _ => false,
    }
}

/// The list type of format v1: nullable items named `item`.
pub fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// The map type of format v1 (see [`parse_type`]).
pub fn map_of(key: DataType, value: DataType) -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", key, false),
        Field::new("value", value, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("entries", DataType::Struct(entries), false)),
        false,
    )
}

/// Whether two Arrow types are the same format type (ignoring nullability and child names).
/// A type with no type string (outside format v1's list, or a struct field name outside
/// the grammar, or duplicate field names) is never the same as anything.
pub fn same_type(a: &DataType, b: &DataType) -> bool {
    match (type_name(a), type_name(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// A type string short enough for a one-line error: at most 60 characters, then `...`.
fn abbreviated(text: &str) -> String {
    const SHOWN: usize = 60;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

/// Deepest nesting of list, struct and map a type string may have: enough for any real
/// state, and a bound on the parser's recursion for hostile manifests.
pub const MAX_TYPE_DEPTH: usize = 32;

/// Longest type string a manifest may hold, in bytes: with [`MAX_STRUCT_FIELDS`] it bounds
/// the work a hostile manifest can cause per type.
pub const MAX_TYPE_LEN: usize = 65_536;

/// Most fields one struct type may have.
pub const MAX_STRUCT_FIELDS: usize = 4_096;

impl Parser<'_> {
    fn error(&self, reason: &str) -> FormatError {
        FormatError::UnsupportedType {
            type_name: abbreviated(self.text),
            reason: format!("{reason} at byte {}", self.pos),
        }
    }

    fn skip_ws(&mut self) {
        while self.rest().starts_with(' ') {
            self.pos += 1;
        }
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn expect(&mut self, token: char) -> Result<(), FormatError> {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len_utf8();
            Ok(())
        } else {
            Err(self.error(&format!("expected {token:?}")))
        }
    }

    fn word(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        self.pos += len;
        &self.text[start..self.pos]
    }

    fn parse(&mut self) -> Result<DataType, FormatError> {
        self.depth += 1;
        if self.depth > MAX_TYPE_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_TYPE_DEPTH} levels")));
        }
        let result = self.parse_inner();
        self.depth -= 1;
        result
    }

    fn parse_inner(&mut self) -> Result<DataType, FormatError> {
        let word = self.word().to_string();
        let dt = match word.as_str() {
            "bool" => DataType::Boolean,
            "int8" => DataType::Int8,
            "int16" => DataType::Int16,
            "int32" => DataType::Int32,
            "int64" => DataType::Int64,
            "uint8" => DataType::UInt8,
            "uint16" => DataType::UInt16,
            "uint32" => DataType::UInt32,
            "uint64" => DataType::UInt64,
            "float32" => DataType::Float32,
            "float64" => DataType::Float64,
            "utf8" => DataType::Utf8,
            "large_utf8" => DataType::LargeUtf8,
            "binary" => DataType::Binary,
            "large_binary" => DataType::LargeBinary,
            "date32" => DataType::Date32,
            "timestamp" => {
                self.expect('[')?;
                let unit = match self.word() {
                    "s" => TimeUnit::Second,
                    "ms" => TimeUnit::Millisecond,
                    "us" => TimeUnit::Microsecond,
                    "ns" => TimeUnit::Nanosecond,
                    _ => return Err(self.error("expected a time unit s, ms, us or ns")),
                };
                self.expect(']')?;
                DataType::Timestamp(unit, None)
            }
            "list" => {
                self.expect('<')?;
                let item = self.parse()?;
                self.expect('>')?;
                list_of(item)
            }
            "map" => {
                self.expect('<')?;
                let key = self.parse()?;
                self.expect(',')?;
                let value = self.parse()?;
                self.expect('>')?;
                map_of(key, value)
            }
            "struct" => {
                self.expect('<')?;
                let mut fields = Vec::new();
                let mut names = std::collections::HashSet::new();
                loop {
                    let name = self.word().to_string();
                    check_field_name(&name).map_err(|m| self.error(&m))?;
                    if !names.insert(name.clone()) {
                        return Err(self.error(&format!("duplicate struct field {name:?}")));
                    }
                    if fields.len() == MAX_STRUCT_FIELDS {
                        return Err(
                            self.error(&format!("a struct has at most {MAX_STRUCT_FIELDS} fields"))
                        );
                    }
                    self.expect(':')?;
                    fields.push(Field::new(name, self.parse()?, true));
                    self.skip_ws();
                    if self.rest().starts_with(',') {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                self.expect('>')?;
                DataType::Struct(fields.into())
            }
            "" => return Err(self.error("expected a type")),
            other => return Err(self.error(&format!("unknown type {other:?}"))),
        };
        Ok(dt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for text in [
            "bool",
            "int64",
            "uint64",
            "timestamp[ms]",
            "list<utf8>",
            "map<utf8, list<int32>>",
            "struct<count: int64, last: timestamp[us], tags: list<utf8>>",
            "struct<inner: struct<a: binary>>",
        ] {
            let dt = parse_type(text).unwrap();
            assert_eq!(type_name(&dt).unwrap(), text);
        }
        assert_eq!(
            type_name(&parse_type(" struct< a :int8 ,b: utf8 > ").unwrap()).unwrap(),
            "struct<a: int8, b: utf8>"
        );
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "int",
            "list<>",
            "list<int8",
            "struct<>",
            "struct<a: int8, a: int8>",
            "struct<1a: int8>",
            "timestamp[h]",
            "int8 x",
        ] {
            assert!(
                matches!(parse_type(bad), Err(FormatError::UnsupportedType { .. })),
                "{bad:?}"
            );
        }
        assert!(type_name(&DataType::Float16).is_err());
        let deep = format!("{}int8{}", "list<".repeat(10_000), ">".repeat(10_000));
        assert!(
            parse_type(&deep)
                .unwrap_err()
                .to_string()
                .contains("nested deeper than 32")
        );
    }

    #[test]
    fn key_types() {
        assert!(is_key_type(&DataType::Int64));
        assert!(is_key_type(
            &parse_type("struct<a: utf8, b: int32>").unwrap()
        ));
        assert!(!is_key_type(&DataType::Float64));
        assert!(!is_key_type(&parse_type("list<int8>").unwrap()));
    }

    /// An Arrow struct whose field name is outside the grammar (or repeated) has no type
    /// string, so it can never pass for the struct its rendering would spell.
    #[test]
    fn unspellable_struct_fields_never_match() {
        let declared = parse_type("struct<a: int64, b: int64>").unwrap();
        let sneaky = DataType::Struct(Fields::from(vec![Field::new(
            "a: int64, b",
            DataType::Int64,
            true,
        )]));
        assert!(type_name(&sneaky).is_err());
        assert!(!same_type(&sneaky, &declared));
        let repeated = DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("a", DataType::Int64, true),
        ]));
        assert!(type_name(&repeated).is_err());
        assert!(!same_type(&repeated, &repeated));
        assert!(parse_type("struct<a: int8, a: int8>").is_err());
    }
}
