//! Serializer snapshots for state that did not come from Flink (bootstrapped, edited into
//! a new type, migrated, or written by the Rewind engine): Flink's built-in serializers
//! chosen from the Arrow types, written as Flink writes their snapshots.

use arrow_schema::{DataType, Fields};

use super::{COMPOSITE_MAGIC, NESTED_MAGIC, OPTIONAL_MAP_MAGIC, Ty};
use crate::java::Out;
const BASE: &str = "org.apache.flink.api.common.typeutils.base.";

/// The Flink type for values of Arrow type `dt`; `pojo` is the class to give a struct.
/// `Err` names what has no Flink counterpart.
pub(crate) fn ty_of(dt: &DataType, pojo: Option<&str>) -> Result<Ty, String> {
    Ok(match dt {
        DataType::Boolean => Ty::Bool,
        DataType::Int8 => Ty::I8,
        DataType::Int16 => Ty::I16,
        DataType::Int32 => Ty::I32,
        DataType::Int64 => Ty::I64,
        DataType::Float32 => Ty::F32,
        DataType::Float64 => Ty::F64,
        DataType::Utf8 | DataType::LargeUtf8 => Ty::Str,
        DataType::Binary | DataType::LargeBinary => Ty::Bytes,
        DataType::List(item) | DataType::LargeList(item) => {
            Ty::List(Box::new(ty_of(item.data_type(), None)?))
        }
        DataType::Struct(fields) if pojo.is_some() => {
            let mut fs = fields
                .iter()
                .map(|f| Ok((f.name().clone(), ty_of(f.data_type(), None)?)))
                .collect::<Result<Vec<_>, String>>()?;
            // Flink's POJO serializer orders fields by name.
            fs.sort_by(|a, b| a.0.cmp(&b.0));
            Ty::Pojo(fs)
        }
        DataType::Struct(fields) if is_tuple(fields) => Ty::Tuple(
            fields
                .iter()
                .map(|f| ty_of(f.data_type(), None))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Struct(_) => {
            return Err(
                "a struct (give the POJO class with --pojo UID/STATE=CLASS, or name its fields f0, f1, ... for a Flink Tuple)"
                    .into(),
            );
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            return Err(format!(
                "{dt} (Java has no unsigned integers: convert it first with `rewind migrate --cast`)"
            ));
        }
        other => return Err(format!("{other} (no built-in Flink serializer)")),
    })
}

/// A namespace type: a window struct `{start, end}` of int64 is Flink's `TimeWindow`.
pub(crate) fn namespace_ty_of(dt: &DataType) -> Result<Ty, String> {
    if let DataType::Struct(fs) = dt {
        let names: Vec<&str> = fs.iter().map(|f| f.name().as_str()).collect();
        if names == ["start", "end"] && fs.iter().all(|f| f.data_type() == &DataType::Int64) {
            return Ok(Ty::TimeWindow);
        }
    }
    ty_of(dt, None)
}

fn is_tuple(fields: &Fields) -> bool {
    !fields.is_empty()
        && fields.len() <= 25
        && fields
            .iter()
            .enumerate()
            .all(|(i, f)| f.name() == &format!("f{i}"))
}

/// `ty`'s snapshot preceded by the format version (`TypeSerializerSnapshotSerializationUtil`).
pub(crate) fn proxy(ty: &Ty, pojo: Option<&str>, out: &mut Out) -> Result<(), String> {
    out.i32(2);
    snapshot(ty, pojo, out)
}

fn simple(class: &str, out: &mut Out) -> Result<(), String> {
    out.utf(class)?;
    out.i32(3);
    Ok(())
}

fn composite(
    class: &str,
    outer_version: i32,
    outer: impl FnOnce(&mut Out) -> Result<(), String>,
    nested: &[&Ty],
    out: &mut Out,
) -> Result<(), String> {
    out.utf(class)?;
    out.i32(3);
    out.i32(COMPOSITE_MAGIC);
    out.i32(outer_version);
    outer(out)?;
    out.i32(NESTED_MAGIC);
    out.i32(1);
    out.len_i32(nested.len())?;
    for t in nested {
        snapshot(t, None, out)?;
    }
    Ok(())
}

/// A versioned snapshot: class name, version, body.
fn snapshot(ty: &Ty, pojo: Option<&str>, out: &mut Out) -> Result<(), String> {
    let base = |name: &str| format!("{BASE}{name}Serializer${name}SerializerSnapshot");
    match ty {
        Ty::Bool => simple(&base("Boolean"), out),
        Ty::I8 => simple(&base("Byte"), out),
        Ty::I16 => simple(&base("Short"), out),
        Ty::I32 => simple(&base("Int"), out),
        Ty::I64 => simple(&base("Long"), out),
        Ty::F32 => simple(&base("Float"), out),
        Ty::F64 => simple(&base("Double"), out),
        Ty::Char => simple(&base("Char"), out),
        Ty::Str => simple(&base("String"), out),
        Ty::Bytes => simple(
            &format!(
                "{BASE}array.BytePrimitiveArraySerializer$BytePrimitiveArraySerializerSnapshot"
            ),
            out,
        ),
        Ty::Void => simple(
            "org.apache.flink.runtime.state.VoidNamespaceSerializer$VoidNamespaceSerializerSnapshot",
            out,
        ),
        Ty::TimeWindow => simple(
            "org.apache.flink.streaming.api.windowing.windows.TimeWindow$Serializer$TimeWindowSerializerSnapshot",
            out,
        ),
        Ty::List(item) => composite(
            &format!("{BASE}ListSerializerSnapshot"),
            1,
            |_| Ok(()),
            &[item],
            out,
        ),
        Ty::Map(k, v) => composite(
            &format!("{BASE}MapSerializerSnapshot"),
            1,
            |_| Ok(()),
            &[k, v],
            out,
        ),
        Ty::Timer(k, n) => composite(
            "org.apache.flink.streaming.api.operators.TimerSerializerSnapshot",
            2,
            |_| Ok(()),
            &[k, n],
            out,
        ),
        Ty::Tuple(fs) => {
            let class = format!("org.apache.flink.api.java.tuple.Tuple{}", fs.len());
            let nested: Vec<&Ty> = fs.iter().collect();
            composite(
                "org.apache.flink.api.java.typeutils.runtime.TupleSerializerSnapshot",
                2,
                |o| o.utf(&class),
                &nested,
                out,
            )
        }
        Ty::Pojo(fs) => {
            let class = pojo.ok_or("a POJO without a class name")?;
            out.utf("org.apache.flink.api.java.typeutils.runtime.PojoSerializerSnapshot")?;
            out.i32(2);
            out.utf(class)?;
            out.i64(OPTIONAL_MAP_MAGIC);
            out.len_i32(fs.len())?;
            for (name, t) in fs {
                out.utf(name)?;
                // The field, as Flink identifies it: declaring class and name.
                let mut key = Out::default();
                key.utf(class)?;
                key.utf(name)?;
                out.bool(true);
                out.len_i32(key.buf.len())?;
                out.bytes(&key.buf);
                let mut value = Out::default();
                snapshot(t, None, &mut value)?;
                out.bool(true);
                out.len_i32(value.buf.len())?;
                out.bytes(&value.buf);
            }
            for _ in 0..2 {
                out.i64(OPTIONAL_MAP_MAGIC);
                out.i32(0);
            }
            Ok(())
        }
        other => Err(format!(
            "no Flink serializer snapshot is generated for {}",
            other.describe()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::java::Reader;
    use crate::keyed;

    /// The counter sample's header entry for `count`, as Flink wrote it.
    const COUNT_META: &[u8] = include_bytes!(
        "../../../../fixtures/flink/java-hashmap-canonical-n100000/savepoint-d4c30c-92ca55030761/2eca17de-db5d-456d-a3e4-6879f9b3739d"
    );

    #[test]
    fn generated_entries_equal_flinks_own() {
        let mut r = Reader::new(COUNT_META);
        let header = keyed::header(&mut r).unwrap();
        let count = header.states.iter().find(|s| s.name == "count").unwrap();
        let generated =
            crate::keyed::state_meta_bytes("count", Some("VALUE"), &Ty::Void, &Ty::I64, None)
                .unwrap();
        assert_eq!(generated, count.raw);
        let timers = header
            .states
            .iter()
            .find(|s| s.name.starts_with("_timer_state/event"))
            .unwrap();
        let timer = Ty::Timer(Box::new(Ty::I64), Box::new(Ty::Void));
        let generated =
            crate::keyed::state_meta_bytes(&timers.name, None, &Ty::Void, &timer, None).unwrap();
        assert_eq!(generated, timers.raw);
        let mut key = Out::default();
        proxy(&Ty::I64, None, &mut key).unwrap();
        assert_eq!(key.buf, header.key_raw);
    }

    #[test]
    fn generated_snapshots_parse_back() {
        let pojo = Ty::Pojo(vec![("avg".into(), Ty::F64), ("total".into(), Ty::I64)]);
        for ty in [
            Ty::Str,
            Ty::Bytes,
            Ty::List(Box::new(Ty::I32)),
            Ty::Map(Box::new(Ty::Str), Box::new(Ty::I64)),
            Ty::Tuple(vec![Ty::I32, Ty::Str]),
            pojo,
        ] {
            let mut out = Out::default();
            proxy(&ty, Some("com.example.Stats"), &mut out).unwrap();
            let parsed = crate::snapshots::snapshot_proxy(&mut Reader::new(&out.buf)).unwrap();
            assert_eq!(parsed.ty, ty);
        }
    }

    #[test]
    fn unsigned_types_are_refused_with_the_way_out() {
        let e = ty_of(&DataType::UInt64, None).unwrap_err();
        assert!(e.contains("rewind migrate --cast"), "{e}");
    }
}
