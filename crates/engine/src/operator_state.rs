//! Operator (non-keyed) list state: each parallel subtask of an operator keeps a list of
//! elements, written as the spec's `operator_list` state and dealt out again on restore at
//! any parallelism by its redistribution mode.

use arrow_array::RecordBatch;
use arrow_schema::{Field, Schema};
use rewind_savepoint::StateSpec;
use rewind_savepoint::format::{HashRange, Redistribution};

use crate::keyed::{StateValue, value_field, values_from_array, values_to_array};
use crate::operator::{ErasedOp, Rec, StateSnapshot};
use crate::{EngineError, Result};

/// A function over a non-keyed stream whose subtasks each keep a list of elements, like
/// Flink's `CheckpointedFunction` with operator `ListState`: a source offset table, a
/// buffer, a set of seen ids. On restore each subtask gets the elements its
/// [`redistribution`](Self::redistribution) deals it: `Split` divides all elements among
/// the subtasks, `Union` gives each all of them, `Broadcast` gives each old subtask 0's.
pub trait OperatorFunction: Send + 'static {
    /// Input records.
    type In: Send + 'static;
    /// Output records.
    type Out: Send + 'static;
    /// The list's elements (a struct becomes a struct column).
    type Element: StateValue;
    /// The state's name in savepoints.
    fn state_name(&self) -> &str;
    /// How the list is dealt out on restore.
    fn redistribution(&self) -> Redistribution;
    /// Called once after a restore, before the first record, with this subtask's elements.
    fn restore(&mut self, elements: Vec<Self::Element>);
    /// Handles one record.
    fn process(&mut self, input: Self::In, out: &mut Vec<Self::Out>);
    /// The subtask's list now, for a checkpoint.
    fn snapshot(&self) -> Vec<Self::Element>;
}

/// A subtask running an [`OperatorFunction`].
pub(crate) struct OperatorOp<F: OperatorFunction> {
    pub f: F,
    /// Elements restored but not yet handed to the function.
    pub restored: Option<Vec<F::Element>>,
}

impl<F: OperatorFunction> OperatorOp<F> {
    fn deliver(&mut self) {
        if let Some(elements) = self.restored.take() {
            self.f.restore(elements);
        }
    }
}

impl<F: OperatorFunction> ErasedOp for OperatorOp<F> {
    fn process(&mut self, rec: Rec, out: &mut Vec<Rec>) -> Result<()> {
        self.deliver();
        let ts = rec.timestamp();
        let mut produced = Vec::new();
        self.f.process(rec.downcast::<F::In>()?, &mut produced);
        out.extend(produced.into_iter().map(|o| Rec::new(o, ts)));
        Ok(())
    }

    fn snapshot(&mut self, _at: crate::operator::SnapshotAt) -> Vec<Box<dyn StateSnapshot>> {
        let elements = match &self.restored {
            Some(pending) => pending.clone(),
            None => self.f.snapshot(),
        };
        vec![Box::new(ListSnapshot {
            name: self.f.state_name().to_string(),
            mode: self.f.redistribution(),
            elements,
        })]
    }

    fn restore(&mut self, state: &str, batch: &RecordBatch) -> Result<()> {
        if state != self.f.state_name() {
            return Err(EngineError::Restore(format!(
                "no state {state:?} in this operator"
            )));
        }
        let value = batch
            .column_by_name("value")
            .ok_or_else(|| EngineError::Restore("operator list without value column".into()))?;
        let value =
            crate::keyed::evolve_column("value", value, value_field::<F::Element>()?.data_type())?;
        let elements = values_from_array::<F::Element>(&value)?;
        self.restored.get_or_insert_with(Vec::new).extend(elements);
        Ok(())
    }
}

struct ListSnapshot<E> {
    name: String,
    mode: Redistribution,
    elements: Vec<E>,
}

impl<E: StateValue> ListSnapshot<E> {
    /// Every row, in one part.
    fn rows(&self) -> Result<crate::operator::Part> {
        let refs: Vec<&E> = self.elements.iter().collect();
        let field: Field = value_field::<E>()?.as_ref().clone();
        let batch = RecordBatch::try_new(
            std::sync::Arc::new(Schema::new(vec![field])),
            vec![values_to_array::<E>(&refs)?],
        )
        .map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok((Vec::new(), batch))
    }
}

impl<E: StateValue> StateSnapshot for ListSnapshot<E> {
    fn state(&self) -> &str {
        &self.name
    }

    fn spec(&self) -> Result<StateSpec> {
        Ok(StateSpec::operator_list(
            &self.name,
            value_field::<E>()?.data_type().clone(),
            self.mode,
        ))
    }

    fn parts(&self, _range: HashRange) -> crate::operator::Parts<'_> {
        Box::new(std::iter::once(self.rows()))
    }
}
