//! Parsing serializer snapshots into the types they stand for.

use super::*;
use crate::java::{Parse, Reader};

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
