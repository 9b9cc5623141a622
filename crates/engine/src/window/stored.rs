//! How window contents are stored in the `windows` state. A window of fixed size (tumbling,
//! sliding) stores its accumulator alone: its end is its start (the namespace) plus the
//! size. A session window stores `{end, acc}`, built column by column. Savepoints of
//! release 0.1.0 stored `{end, acc}` for every window; they restore unchanged.

use std::marker::PhantomData;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array, StructArray};
use arrow_schema::{DataType, FieldRef};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::key::Key;
use crate::keyed::{
    NsKey, StateValue, ValueCodec, evolve_column, value_field, values_from_array, values_to_array,
};

/// A window's state in memory: its end and its accumulator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Slot<A> {
    pub end: i64,
    pub acc: A,
}

/// The codec of windows of one size (ms): the stored value is the accumulator.
pub(crate) struct FixedWindows<A> {
    pub size: i64,
    pub acc: PhantomData<fn() -> A>,
}

impl<K: Key, A: StateValue> ValueCodec<NsKey<K>, Slot<A>> for FixedWindows<A> {
    fn field(&self) -> Result<FieldRef> {
        value_field::<A>()
    }

    fn encode(&self, values: &[&Slot<A>]) -> Result<ArrayRef> {
        let accs: Vec<&A> = values.iter().map(|s| &s.acc).collect();
        values_to_array(&accs)
    }

    fn decode(&self, rows: &[NsKey<K>], column: &ArrayRef) -> Result<Vec<Slot<A>>> {
        let acc_type = value_field::<A>()?.data_type().clone();
        if column.data_type() != &acc_type && is_end_and_acc(column.data_type()) {
            // Written by release 0.1.0: every window as `{end, acc}`, with its timers. The
            // stored end tells which timer fires it; the operator then gives the window the
            // job's size (`derive_timers`), as windows stored since get.
            return SessionWindows::<A>::default().decode(rows, column);
        }
        let column = evolve_column("value", column, &acc_type)?;
        let accs = values_from_array::<A>(&column)?;
        Ok(rows
            .iter()
            .zip(accs)
            .map(|(row, acc)| Slot {
                end: row.ns.saturating_add(self.size),
                acc,
            })
            .collect())
    }
}

fn is_end_and_acc(stored: &DataType) -> bool {
    matches!(stored, DataType::Struct(fields)
        if fields.len() == 2 && fields[0].name() == "end" && fields[1].name() == "acc")
}

/// The codec of session windows: the stored value is `{end, acc}`.
pub(crate) struct SessionWindows<A>(PhantomData<fn() -> A>);

impl<A> Default for SessionWindows<A> {
    fn default() -> Self {
        SessionWindows(PhantomData)
    }
}

impl<R, A: StateValue> ValueCodec<R, Slot<A>> for SessionWindows<A> {
    fn field(&self) -> Result<FieldRef> {
        value_field::<Slot<A>>()
    }

    fn encode(&self, values: &[&Slot<A>]) -> Result<ArrayRef> {
        let field = value_field::<Slot<A>>()?;
        let DataType::Struct(fields) = field.data_type() else {
            return values_to_array(values);
        };
        let ends = Int64Array::from_iter_values(values.iter().map(|s| s.end));
        let accs: Vec<&A> = values.iter().map(|s| &s.acc).collect();
        let accs = values_to_array(&accs)?;
        // Column by column; through serde only if the accumulator's column is not of the
        // traced type (it always is: both come from the same tracing).
        match StructArray::try_new(fields.clone(), vec![Arc::new(ends), accs], None) {
            Ok(array) => Ok(Arc::new(array)),
            Err(_) => values_to_array(values),
        }
    }

    fn decode(&self, _: &[R], column: &ArrayRef) -> Result<Vec<Slot<A>>> {
        let column = evolve_column("value", column, value_field::<Slot<A>>()?.data_type())?;
        values_from_array(&column)
    }
}
