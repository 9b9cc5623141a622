//! The rescale plan: what happens to every shard, before anything is written.

use std::collections::BTreeMap;

use rewind_format::{HashRange, Manifest, ShardEntry, StateEntry, StateKind};

use crate::{Error, Result};

/// Which operators get which parallelism.
#[derive(Debug, Clone, Default)]
pub struct RescaleOptions {
    /// New parallelism of every operator not named in `operators`.
    pub parallelism: Option<u32>,
    /// New parallelism per operator uid.
    pub operators: BTreeMap<String, u32>,
}

/// What happens to each shard of the source.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardAction {
    /// Copied whole (for operator state, possibly as another subtask's shard).
    Copy {
        /// The source shard.
        shard: ShardEntry,
        /// The subtask of the copy, for operator state.
        subtask: Option<u32>,
    },
    /// One new shard for a new subtask's hash range, made of the parts of the source shards
    /// that fall in it: whole row groups copied without decoding, only row groups that
    /// straddle the range's ends re-encoded.
    Recut {
        /// The new shard's hash range (a new subtask's).
        range: HashRange,
        /// The source shards that hold hashes in it, in hash order.
        sources: Vec<ShardEntry>,
    },
    /// One new shard for a new subtask's hash range of a state with delta layers (an
    /// incremental checkpoint): the rows of all layers in the range, merged and written
    /// as one plain shard.
    Merge {
        /// The new shard's hash range (a new subtask's).
        range: HashRange,
        /// The source shards of every layer that hold hashes in it.
        sources: Vec<ShardEntry>,
    },
    /// Operator state read whole and dealt out again to `parallelism` subtasks.
    Redeal {
        /// All source shards of the state, in subtask order.
        shards: Vec<ShardEntry>,
        /// The new parallelism.
        parallelism: u32,
    },
}

impl ShardAction {
    /// Bytes of the source files this action reads from (a source shard that straddles a
    /// new boundary is read by the actions on both sides).
    pub fn bytes(&self) -> u64 {
        match self {
            ShardAction::Copy { shard, .. } => shard.bytes,
            ShardAction::Recut { sources, .. } | ShardAction::Merge { sources, .. } => {
                sources.iter().map(|s| s.bytes).sum()
            }
            ShardAction::Redeal { shards, .. } => shards.iter().map(|s| s.bytes).sum(),
        }
    }
}

/// The plan for one state.
#[derive(Debug, Clone, PartialEq)]
pub struct StatePlan {
    /// State name.
    pub name: String,
    /// Its kind.
    pub kind: StateKind,
    /// For keyed state, one action per new subtask; for operator state, one per source
    /// shard copied or one for all of a state that is re-dealt.
    pub actions: Vec<ShardAction>,
}

/// The plan for one operator.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorPlan {
    /// Operator uid.
    pub uid: String,
    /// Parallelism in the source.
    pub from: u32,
    /// Parallelism in the result.
    pub to: u32,
    /// Per state.
    pub states: Vec<StatePlan>,
}

/// Everything a rescale will do.
#[derive(Debug, Clone, PartialEq)]
pub struct RescalePlan {
    /// Per operator, in manifest order.
    pub operators: Vec<OperatorPlan>,
}

impl RescalePlan {
    pub(crate) fn parallelism_of(&self, uid: &str) -> Option<u32> {
        self.operators.iter().find(|o| o.uid == uid).map(|o| o.to)
    }

    pub(crate) fn parameters(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .operators
            .iter()
            .filter(|o| o.from != o.to)
            .map(|o| {
                (
                    o.uid.clone(),
                    serde_json::json!({ "from": o.from, "to": o.to }),
                )
            })
            .collect();
        serde_json::json!({ "parallelism": map })
    }
}

/// Works out a rescale without touching any file. Fails for a parallelism of 0, an
/// unknown uid, or a request that names no new parallelism.
pub fn plan_rescale(manifest: &Manifest, options: &RescaleOptions) -> Result<RescalePlan> {
    if options.parallelism.is_none() && options.operators.is_empty() {
        return Err(Error::InvalidInput(
            "give a new parallelism for all operators or for some".into(),
        ));
    }
    for (uid, &p) in &options.operators {
        if manifest.operator(uid).is_none() {
            return Err(Error::UnknownOperator {
                uid: uid.clone(),
                known: manifest.operators.iter().map(|o| o.uid.clone()).collect(),
            });
        }
        if p == 0 {
            return Err(Error::InvalidInput(format!(
                "operator {uid:?}: parallelism must be at least 1"
            )));
        }
    }
    if options.parallelism == Some(0) {
        return Err(Error::InvalidInput("parallelism must be at least 1".into()));
    }
    let operators = manifest
        .operators
        .iter()
        .map(|op| {
            let to = options
                .operators
                .get(&op.uid)
                .copied()
                .or(options.parallelism)
                .unwrap_or(op.parallelism);
            OperatorPlan {
                uid: op.uid.clone(),
                from: op.parallelism,
                to,
                states: op
                    .states
                    .iter()
                    .map(|st| plan_state(st, op.parallelism, to))
                    .collect(),
            }
        })
        .collect();
    Ok(RescalePlan { operators })
}

fn plan_state(state: &StateEntry, from: u32, to: u32) -> StatePlan {
    let copy_all = || {
        state
            .shards
            .iter()
            .map(|s| ShardAction::Copy {
                shard: s.clone(),
                subtask: None,
            })
            .collect()
    };
    let actions = if state.shards.iter().any(|s| s.is_delta()) {
        // Layers are merged, never copied: the new savepoint holds plain shards.
        HashRange::split(to)
            .into_iter()
            .map(|range| ShardAction::Merge {
                range,
                sources: state
                    .shards
                    .iter()
                    .filter(|s| s.hash_range.is_some_and(|r| r.intersects(&range)))
                    .cloned()
                    .collect(),
            })
            .collect()
    } else if from == to {
        copy_all()
    } else if state.kind.is_keyed() {
        keyed_actions(state, to)
    } else {
        match state.redistribution {
            // One copy of subtask 0's elements per new subtask: plain file copies.
            Some(rewind_format::Redistribution::Broadcast) => state
                .shards
                .iter()
                .find(|s| s.subtask == Some(0))
                .map(|first| {
                    (0..to)
                        .map(|t| ShardAction::Copy {
                            shard: first.clone(),
                            subtask: Some(t),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            _ => {
                let mut shards = state.shards.clone();
                shards.sort_by_key(|s| s.subtask);
                vec![ShardAction::Redeal {
                    shards,
                    parallelism: to,
                }]
            }
        }
    };
    StatePlan {
        name: state.name.clone(),
        kind: state.kind,
        actions,
    }
}

/// One shard per new subtask: a source shard whose range is exactly the subtask's is copied
/// whole; otherwise the subtask's shard is cut from the source shards it overlaps.
fn keyed_actions(state: &StateEntry, to: u32) -> Vec<ShardAction> {
    let mut shards: Vec<&ShardEntry> = state
        .shards
        .iter()
        .filter(|s| s.hash_range.is_some())
        .collect();
    shards.sort_by_key(|s| s.hash_range.map(|r| r.start()));
    HashRange::split(to)
        .into_iter()
        .map(|range| {
            let sources: Vec<ShardEntry> = shards
                .iter()
                .filter(|s| s.hash_range.is_some_and(|r| r.intersects(&range)))
                .map(|s| (*s).clone())
                .collect();
            match &sources[..] {
                [only] if only.hash_range == Some(range) => ShardAction::Copy {
                    shard: only.clone(),
                    subtask: None,
                },
                _ => ShardAction::Recut { range, sources },
            }
        })
        .collect()
}
