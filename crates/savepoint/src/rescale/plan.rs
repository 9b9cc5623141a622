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
    /// A keyed shard cut into pieces at new subtask boundaries.
    Split {
        /// The source shard.
        shard: ShardEntry,
        /// The hash ranges of the pieces, in order.
        pieces: Vec<HashRange>,
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
    /// Bytes of source files this action reads.
    pub fn bytes(&self) -> u64 {
        match self {
            ShardAction::Copy { shard, .. } | ShardAction::Split { shard, .. } => shard.bytes,
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
    /// One action per source shard (or one for all of an operator state that is re-dealt).
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
    let actions = if from == to {
        copy_all()
    } else if state.kind.is_keyed() {
        let boundaries: Vec<u64> = HashRange::split(to)
            .iter()
            .skip(1)
            .map(|r| r.start())
            .collect();
        state
            .shards
            .iter()
            .map(|shard| {
                let Some(range) = shard.hash_range else {
                    return ShardAction::Copy {
                        shard: shard.clone(),
                        subtask: None,
                    };
                };
                let cuts: Vec<u64> = boundaries
                    .iter()
                    .copied()
                    .filter(|&b| range.start() < b && b <= range.end())
                    .collect();
                if cuts.is_empty() {
                    return ShardAction::Copy {
                        shard: shard.clone(),
                        subtask: None,
                    };
                }
                let mut pieces = Vec::with_capacity(cuts.len() + 1);
                let mut start = range.start();
                for b in cuts {
                    pieces.extend(HashRange::new(start, b - 1));
                    start = b;
                }
                pieces.extend(HashRange::new(start, range.end()));
                ShardAction::Split {
                    shard: shard.clone(),
                    pieces,
                }
            })
            .collect()
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
