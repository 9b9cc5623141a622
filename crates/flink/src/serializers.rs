//! Serializer snapshots (how Flink describes each state's types in the keyed-state
//! header) and the values of Flink's built-in serializers, decoded into plain values.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields};

use crate::bytes::{Parse, Reader};

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
/// (read here, written by `export::snapshots`).
pub(crate) const COMPOSITE_MAGIC: i32 = 911_108;
pub(crate) const NESTED_MAGIC: i32 = 1_333_245;
pub(crate) const OPTIONAL_MAP_MAGIC: i64 = 0x04F2_C69A_3D70;

/// `i32 2` then a versioned snapshot (TypeSerializerSnapshotSerializationUtil).
pub(crate) fn snapshot_proxy(r: &mut Reader<'_>) -> Parse<Snapshot> {
    let version = r.i32()?;
    if version != 2 {
        return r.fail(format!(
            "serializer snapshot format {version} (only 2, Flink 1.17+, is read)"
        ));
    }
    snapshot(r)
}

fn short(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

fn primitive(name: &str) -> Option<Ty> {
    Some(match name {
        "Boolean" => Ty::Bool,
        "Byte" => Ty::I8,
        "Short" => Ty::I16,
        "Int" | "Integer" => Ty::I32,
        "Long" => Ty::I64,
        "Float" => Ty::F32,
        "Double" => Ty::F64,
        "Char" | "Character" => Ty::Char,
        "String" => Ty::Str,
        _ => return None,
    })
}

/// A versioned snapshot: class name, version, and a class-specific body with no length
/// prefix, so an unknown class ends the parse.
fn snapshot(r: &mut Reader<'_>) -> Parse<Snapshot> {
    let class = r.utf()?;
    let version = r.i32()?;
    let s = short(&class).to_string();
    let simple = |r: &mut Reader<'_>| -> Parse<()> {
        if version < 3 {
            r.utf()?;
        }
        Ok(())
    };
    let ty = if let Some(p) = s
        .strip_suffix("SerializerSnapshot")
        .and_then(|x| x.split('$').next())
        .and_then(|x| x.strip_suffix("Serializer"))
        .and_then(primitive)
    {
        simple(r)?;
        p
    } else if s == "BytePrimitiveArraySerializer$BytePrimitiveArraySerializerSnapshot" {
        simple(r)?;
        Ty::Bytes
    } else if let Some(elem) = s
        .split('$')
        .next()
        .and_then(|x| x.strip_suffix("PrimitiveArraySerializer"))
        .and_then(primitive)
    {
        simple(r)?;
        Ty::PrimArray(Box::new(elem))
    } else if s == "StringArraySerializer$StringArraySerializerSnapshot" {
        simple(r)?;
        Ty::StrArray
    } else if s == "VoidNamespaceSerializer$VoidNamespaceSerializerSnapshot"
        || s == "GlobalWindow$Serializer$GlobalWindowSerializerSnapshot"
    {
        simple(r)?;
        Ty::Void
    } else if s == "TimeWindow$Serializer$TimeWindowSerializerSnapshot" {
        simple(r)?;
        Ty::TimeWindow
    } else if s == "PojoSerializerSnapshot" {
        pojo(r)?
    } else if s == "EnumSerializer$EnumSerializerSnapshot" {
        r.utf()?;
        let n = r.count(2, "enum constants")?;
        let mut names = Vec::with_capacity(n);
        for _ in 0..n {
            names.push(r.utf()?);
        }
        Ty::Enum(names)
    } else if s == "KryoSerializerSnapshot" {
        r.utf()?;
        for _ in 0..3 {
            optional_map(r)?;
        }
        Ty::Opaque(class.clone())
    } else if s.ends_with("ValueSerializer$ValueSerializerSnapshot")
        || s.contains("AvroSerializerSnapshot")
        || s.ends_with("CopyableValueSerializerSnapshot")
    {
        r.utf()?;
        Ty::Opaque(class.clone())
    } else if s == "JavaSerializer$JavaSerializerSnapshot" {
        simple(r)?;
        Ty::Opaque(class.clone())
    } else {
        return composite(r, &class, version);
    };
    Ok(Snapshot { class, ty })
}

fn composite(r: &mut Reader<'_>, class: &str, version: i32) -> Parse<Snapshot> {
    let s = short(class);
    let known = [
        "MapSerializerSnapshot",
        "ListSerializerSnapshot",
        "SetSerializerSnapshot",
        "TimerSerializerSnapshot",
        "ArrayListSerializerSnapshot",
        "TupleSerializerSnapshot",
        "RowSerializer$RowSerializerSnapshot",
        "NullableSerializer$NullableSerializerSnapshot",
        "TtlStateFactory$TtlSerializerSnapshot",
        "GenericArraySerializerSnapshot",
    ];
    if !known.contains(&s) {
        return r.fail(format!("unknown serializer snapshot class {class}"));
    }
    let outer_version = if version >= 3 {
        if r.i32()? != COMPOSITE_MAGIC {
            return r.fail(format!("{class}: bad composite snapshot magic"));
        }
        r.i32()?
    } else {
        version
    };
    let mut row_kind = false;
    let mut padding = 0;
    match s {
        "TupleSerializerSnapshot" | "GenericArraySerializerSnapshot" => {
            r.utf()?;
        }
        "RowSerializer$RowSerializerSnapshot" => {
            row_kind = if outer_version >= 4 {
                r.bool()?
            } else {
                outer_version == 3
            };
        }
        "NullableSerializer$NullableSerializerSnapshot" => padding = r.i32()?,
        _ => {}
    }
    if r.i32()? != NESTED_MAGIC {
        return r.fail(format!("{class}: bad nested snapshots magic"));
    }
    if r.i32()? != 1 {
        return r.fail(format!("{class}: unknown nested snapshots version"));
    }
    let n = r.count(6, "nested serializers")?;
    let mut nested = Vec::with_capacity(n);
    for _ in 0..n {
        nested.push(snapshot(r)?.ty);
    }
    let arity = |want: usize, r: &Reader<'_>| -> Parse<()> {
        if nested.len() == want {
            Ok(())
        } else {
            r.fail(format!(
                "{class}: {} nested serializers, expected {want}",
                nested.len()
            ))
        }
    };
    let ty = match s {
        "MapSerializerSnapshot" => {
            arity(2, r)?;
            Ty::Map(Box::new(nested[0].clone()), Box::new(nested[1].clone()))
        }
        "ListSerializerSnapshot" | "ArrayListSerializerSnapshot" => {
            arity(1, r)?;
            Ty::List(Box::new(nested[0].clone()))
        }
        "SetSerializerSnapshot" | "GenericArraySerializerSnapshot" => {
            arity(1, r)?;
            // Elements carry a presence flag; read as a list of nullable elements.
            Ty::List(Box::new(Ty::Nullable(-1, Box::new(nested[0].clone()))))
        }
        "TimerSerializerSnapshot" => {
            arity(2, r)?;
            Ty::Timer(Box::new(nested[0].clone()), Box::new(nested[1].clone()))
        }
        "TtlStateFactory$TtlSerializerSnapshot" => {
            arity(2, r)?;
            Ty::Ttl(Box::new(nested[1].clone()))
        }
        "NullableSerializer$NullableSerializerSnapshot" => {
            arity(1, r)?;
            Ty::Nullable(padding, Box::new(nested[0].clone()))
        }
        "RowSerializer$RowSerializerSnapshot" => Ty::Row(row_kind, nested),
        _ => Ty::Tuple(nested),
    };
    Ok(Snapshot {
        class: class.to_string(),
        ty,
    })
}

/// An entry of a LinkedOptionalMap: its name and value frame (absent when the class is gone).
type Frame<'a> = (String, Option<&'a [u8]>);

/// The entries of a LinkedOptionalMap (key frames skipped).
fn optional_map<'a>(r: &mut Reader<'a>) -> Parse<Vec<Frame<'a>>> {
    if r.i64()? != OPTIONAL_MAP_MAGIC {
        return r.fail("bad optional map magic");
    }
    let n = r.count(4, "map entries")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.utf()?;
        if r.bool()? {
            let len = r.count(1, "key frame")?;
            r.bytes(len)?;
        }
        let value = if r.bool()? {
            let len = r.count(1, "value frame")?;
            Some(r.bytes(len)?)
        } else {
            None
        };
        out.push((name, value));
    }
    Ok(out)
}

fn pojo(r: &mut Reader<'_>) -> Parse<Ty> {
    let class = r.utf()?;
    let fields = optional_map(r)?;
    let mut out = Vec::with_capacity(fields.len());
    for (name, frame) in fields {
        let Some(frame) = frame else {
            return r.fail(format!(
                "POJO {class}: field {name} has no serializer (class changed?)"
            ));
        };
        let mut inner = Reader::new(frame);
        let ty = snapshot(&mut inner)
            .or_else(|_| snapshot_proxy(&mut Reader::new(frame)))?
            .ty;
        out.push((name, ty));
    }
    optional_map(r)?;
    optional_map(r)?;
    Ok(Ty::Pojo(out))
}

impl Ty {
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
