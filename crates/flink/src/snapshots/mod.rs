//! Serializer snapshots: how Flink describes each state's types (in the keyed-state and
//! operator-state headers), parsed into [`Ty`] ([`read`]) and generated from Arrow types
//! for state that did not come from Flink ([`write`]). `LAYOUT.md`, section 4, describes
//! the bytes. Kryo's snapshots are recognised here; decoding Kryo values belongs beside
//! the built-in serializers' in `crate::values`.

mod read;
mod write;

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields};

pub(crate) use read::snapshot_proxy;
pub(crate) use write::{namespace_ty_of, proxy, ty_of};

/// A type as a built-in Flink serializer writes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    Bool,
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
    Char,
    Str,
    Bytes,
    /// `int[]`, `long[]`, ...: `i32 n` + elements.
    PrimArray(Box<Ty>),
    /// `String[]`.
    StrArray,
    /// VoidNamespace, GlobalWindow: one byte.
    Void,
    TimeWindow,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    Tuple(Vec<Ty>),
    Row(bool, Vec<Ty>),
    Pojo(Vec<(String, Ty)>),
    Nullable(i32, Box<Ty>),
    Enum(Vec<String>),
    Timer(Box<Ty>, Box<Ty>),
    /// A TTL wrapper: `i64` last access, then the value.
    Ttl(Box<Ty>),
    /// Known to the header, not decodable without the JVM (Kryo, Avro, Java, Value types).
    Opaque(String),
}

/// A serializer snapshot: the class Flink names, and the type it stands for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshot {
    pub class: String,
    pub ty: Ty,
}

/// Magic numbers of composite snapshots, their nested snapshots and LinkedOptionalMaps
/// (read and written here).
pub(crate) const COMPOSITE_MAGIC: i32 = 911_108;
pub(crate) const NESTED_MAGIC: i32 = 1_333_245;
pub(crate) const OPTIONAL_MAP_MAGIC: i64 = 0x04F2_C69A_3D70;

impl Ty {
    /// A short name of the type for messages.
    pub fn describe(&self) -> String {
        match self {
            Ty::Opaque(class) => class.clone(),
            Ty::Pojo(_) => "POJO".into(),
            other => format!("{other:?}")
                .split('(')
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    }

    /// The Arrow type a value of this type becomes.
    pub fn data_type(&self) -> Result<DataType, String> {
        let field = |name: &str, t: &Ty| -> Result<Arc<Field>, String> {
            Ok(Arc::new(Field::new(name, t.data_type()?, true)))
        };
        Ok(match self {
            Ty::Bool => DataType::Boolean,
            Ty::I8 => DataType::Int8,
            Ty::I16 => DataType::Int16,
            Ty::I32 => DataType::Int32,
            Ty::Enum(_) => DataType::Utf8,
            Ty::I64 => DataType::Int64,
            Ty::F32 => DataType::Float32,
            Ty::F64 => DataType::Float64,
            Ty::Char | Ty::Str => DataType::Utf8,
            Ty::Bytes => DataType::Binary,
            Ty::PrimArray(e) | Ty::List(e) => DataType::List(field("item", e)?),
            Ty::StrArray => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            Ty::Void => return Err("the void namespace has no type".into()),
            Ty::TimeWindow => DataType::Struct(Fields::from(vec![
                Field::new("start", DataType::Int64, true),
                Field::new("end", DataType::Int64, true),
            ])),
            Ty::Map(k, v) => DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", k.data_type()?, true),
                    Field::new("value", v.data_type()?, true),
                ])),
                true,
            ))),
            Ty::Tuple(fs) | Ty::Row(_, fs) => {
                if fs.is_empty() {
                    return Err("an empty tuple has no type".into());
                }
                DataType::Struct(
                    fs.iter()
                        .enumerate()
                        .map(|(i, t)| field(&format!("f{i}"), t))
                        .collect::<Result<Vec<_>, _>>()?
                        .into(),
                )
            }
            Ty::Pojo(fs) => {
                if fs.is_empty() {
                    return Err("a POJO without fields has no type".into());
                }
                DataType::Struct(
                    fs.iter()
                        .map(|(n, t)| field(n, t))
                        .collect::<Result<Vec<_>, _>>()?
                        .into(),
                )
            }
            Ty::Nullable(_, t) | Ty::Ttl(t) => t.data_type()?,
            Ty::Timer(..) => return Err("timers are not values".into()),
            Ty::Opaque(class) => return Err(format!("values of {class} need the JVM")),
        })
    }

    /// Whether every value has the same length (Flink's `getLength() >= 0`).
    pub fn fixed_length(&self) -> bool {
        match self {
            Ty::Bool | Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64 | Ty::F32 | Ty::F64 | Ty::Char => true,
            Ty::Void | Ty::TimeWindow | Ty::Enum(_) => true,
            Ty::Tuple(fs) => fs.iter().all(Ty::fixed_length),
            _ => false,
        }
    }
}
