//! Sink output between staging and commit, per sink subtask, kept in output order.
//!
//! A subtask numbers its chunks in output order (`seq`). A chunk is staged either by the
//! subtask as output accumulates or, for the rest at a barrier, by the coordinator. Staged
//! chunks wait for a checkpoint that completes; a checkpoint that fails leaves them (and
//! chunks it could not stage) for the next one. After a checkpoint completes, its chunks
//! are committed in order; a chunk whose commit fails, and every later chunk of its
//! subtask, is retried after the next checkpoint, and every checkpoint records them so
//! that a restore commits them too.

use std::collections::HashMap;

use crate::Result;
use crate::sink::Sink;

/// The state in which a sink's staged, not yet committed, output is recorded.
pub(crate) const SINK_PENDING: &str = "pending_commits";

/// A sink subtask: (stage index, subtask).
pub(crate) type SinkSubtask = (usize, u32);

/// A sink subtask's output at a barrier: the chunks it staged since the last one, as
/// (seq, token), and the rest of its lines, numbered as its next chunk.
pub(crate) struct SubtaskOutput {
    pub staged: Vec<(u64, String)>,
    pub rest: Option<(u64, Vec<u8>)>,
}

#[derive(Default)]
pub(crate) struct PendingOutput {
    /// Staged chunks of no completed checkpoint yet: (seq, token).
    staged: HashMap<SinkSubtask, Vec<(u64, String)>>,
    /// Chunks a checkpoint could not stage: (seq, lines).
    unstaged: HashMap<SinkSubtask, Vec<(u64, Vec<u8>)>>,
    /// Chunks of completed checkpoints not committed yet: (checkpoint, seq, token).
    uncommitted: HashMap<SinkSubtask, Vec<(u64, u64, String)>>,
}

/// How a checkpoint records a chunk to commit: `<checkpoint>:<token>`. Checkpoints of
/// earlier versions recorded the token alone (see [`parse_record`]).
fn record(checkpoint: u64, token: &str) -> String {
    format!("{checkpoint}:{token}")
}

/// A recorded chunk: its checkpoint (`default` when the record has none) and token.
pub(crate) fn parse_record(record: &str, default: u64) -> (u64, &str) {
    match record.split_once(':') {
        Some((checkpoint, token)) => match checkpoint.parse() {
            Ok(c) => (c, token),
            Err(_) => (default, record),
        },
        None => (default, record),
    }
}

impl PendingOutput {
    /// A subtask's acknowledgement: the chunks it staged, and the rest of its output.
    pub(crate) fn add(&mut self, key: SinkSubtask, output: SubtaskOutput) {
        self.staged.entry(key).or_default().extend(output.staged);
        if let Some(rest) = output.rest.filter(|(_, lines)| !lines.is_empty()) {
            self.unstaged.entry(key).or_default().push(rest);
        }
    }

    /// Stages every chunk not staged yet; the first error is returned, and what failed
    /// stays for the next checkpoint.
    pub(crate) fn stage(
        &mut self,
        sink_of: impl Fn(usize) -> Option<std::sync::Arc<dyn Sink>>,
    ) -> Result<()> {
        let mut failure = None;
        for (key, chunks) in self.unstaged.iter_mut() {
            let Some(sink) = sink_of(key.0) else {
                continue;
            };
            let mut kept = Vec::new();
            for (seq, lines) in chunks.drain(..) {
                match sink.stage(key.1, seq, &lines) {
                    Ok(token) => self.staged.entry(*key).or_default().push((seq, token)),
                    Err(e) => {
                        failure.get_or_insert(e);
                        kept.push((seq, lines));
                    }
                }
            }
            *chunks = kept;
        }
        self.unstaged.retain(|_, chunks| !chunks.is_empty());
        failure.map_or(Ok(()), Err)
    }

    /// What checkpoint `checkpoint` records for `key`: its staged chunks and those of
    /// earlier checkpoints not committed yet, in order.
    pub(crate) fn records(&self, checkpoint: u64, key: SinkSubtask) -> Vec<String> {
        let mut all: Vec<(u64, u64, &str)> = self
            .uncommitted
            .get(&key)
            .into_iter()
            .flatten()
            .map(|(c, seq, t)| (*c, *seq, t.as_str()))
            .collect();
        all.extend(
            self.staged
                .get(&key)
                .into_iter()
                .flatten()
                .map(|(seq, t)| (checkpoint, *seq, t.as_str())),
        );
        all.sort_by_key(|(c, seq, _)| (*c, *seq));
        all.into_iter().map(|(c, _, t)| record(c, t)).collect()
    }

    /// Checkpoint `checkpoint` completed: commits its chunks and those left from before,
    /// each subtask's in order, stopping at a subtask's first failure (the rest is
    /// retried next time). Returns the first error.
    pub(crate) fn commit(
        &mut self,
        checkpoint: u64,
        sink_of: impl Fn(usize) -> Option<std::sync::Arc<dyn Sink>>,
    ) -> Option<(u64, crate::EngineError)> {
        for (key, chunks) in self.staged.drain() {
            let list = self.uncommitted.entry(key).or_default();
            list.extend(chunks.into_iter().map(|(seq, t)| (checkpoint, seq, t)));
        }
        let mut failure = None;
        for (key, list) in self.uncommitted.iter_mut() {
            let Some(sink) = sink_of(key.0) else {
                list.clear();
                continue;
            };
            list.sort_by_key(|(c, seq, _)| (*c, *seq));
            let mut done = 0;
            for (c, _, token) in list.iter() {
                if let Err(e) = sink.commit(*c, token) {
                    failure.get_or_insert((*c, e));
                    break;
                }
                done += 1;
            }
            list.drain(..done);
        }
        self.uncommitted.retain(|_, list| !list.is_empty());
        failure
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::EngineError;

    /// A sink that records what it stages and commits, failing the calls it is told to.
    #[derive(Default)]
    struct Recorder {
        committed: Mutex<Vec<String>>,
        fail_stage: Mutex<Vec<u64>>,
        fail_commit: Mutex<Vec<String>>,
    }

    impl Sink for Recorder {
        fn stage(&self, subtask: u32, seq: u64, chunk: &[u8]) -> Result<String> {
            let mut fail = self.fail_stage.lock().unwrap();
            if let Some(i) = fail.iter().position(|s| *s == seq) {
                fail.remove(i);
                return Err(EngineError::Internal("stage failed".into()));
            }
            Ok(format!(
                "{subtask}.{seq}.{}",
                String::from_utf8_lossy(chunk)
            ))
        }
        fn commit(&self, _checkpoint: u64, token: &str) -> Result<()> {
            let mut fail = self.fail_commit.lock().unwrap();
            if let Some(i) = fail.iter().position(|t| t == token) {
                fail.remove(i);
                return Err(EngineError::Internal("commit failed".into()));
            }
            self.committed.lock().unwrap().push(token.to_string());
            Ok(())
        }
    }

    fn out(staged: Vec<(u64, String)>, rest: Option<(u64, &[u8])>) -> SubtaskOutput {
        SubtaskOutput {
            staged,
            rest: rest.map(|(seq, lines)| (seq, lines.to_vec())),
        }
    }

    fn of(sink: &Arc<Recorder>) -> impl Fn(usize) -> Option<Arc<dyn Sink>> + '_ {
        move |_| Some(sink.clone() as Arc<dyn Sink>)
    }

    #[test]
    fn a_rest_that_failed_to_stage_is_committed_in_its_place() {
        let sink = Arc::new(Recorder::default());
        let mut pending = PendingOutput::default();
        sink.fail_stage.lock().unwrap().push(1);
        // Checkpoint 1: chunk 0 staged by the subtask, the rest (1) fails to stage.
        pending.add((0, 0), out(vec![(0, "0.0.a".into())], Some((1, b"b"))));
        assert!(pending.stage(of(&sink)).is_err());
        // Checkpoint 2: chunk 2 staged by the subtask, rest 3; both checkpoints' output
        // commits in output order.
        pending.add((0, 0), out(vec![(2, "0.2.c".into())], Some((3, b"d"))));
        pending.stage(of(&sink)).unwrap();
        assert_eq!(
            pending.records(2, (0, 0)),
            ["2:0.0.a", "2:0.1.b", "2:0.2.c", "2:0.3.d"]
        );
        assert!(pending.commit(2, of(&sink)).is_none());
        assert_eq!(
            *sink.committed.lock().unwrap(),
            ["0.0.a", "0.1.b", "0.2.c", "0.3.d"]
        );
        assert!(pending.records(3, (0, 0)).is_empty());
    }

    #[test]
    fn a_failed_commit_holds_back_later_chunks_and_is_recorded_until_done() {
        let sink = Arc::new(Recorder::default());
        let mut pending = PendingOutput::default();
        sink.fail_commit.lock().unwrap().push("0.1.b".into());
        pending.add(
            (0, 0),
            out(
                vec![(0, "0.0.a".into()), (1, "0.1.b".into())],
                Some((2, b"c")),
            ),
        );
        pending.stage(of(&sink)).unwrap();
        let (checkpoint, _) = pending.commit(5, of(&sink)).unwrap();
        assert_eq!(checkpoint, 5);
        assert_eq!(*sink.committed.lock().unwrap(), ["0.0.a"]);
        // The next checkpoint records the two left with their own checkpoint, then its own.
        pending.add((0, 0), out(vec![], Some((3, b"d"))));
        pending.stage(of(&sink)).unwrap();
        assert_eq!(
            pending.records(6, (0, 0)),
            ["5:0.1.b", "5:0.2.c", "6:0.3.d"]
        );
        assert!(pending.commit(6, of(&sink)).is_none());
        assert_eq!(
            *sink.committed.lock().unwrap(),
            ["0.0.a", "0.1.b", "0.2.c", "0.3.d"]
        );
    }

    #[test]
    fn records_of_earlier_versions_have_no_checkpoint() {
        assert_eq!(
            parse_record("7:00001-0000000003-ab", 9),
            (7, "00001-0000000003-ab")
        );
        assert_eq!(
            parse_record("part-00000000000000000003-00001-0badcafe.jsonl", 3),
            (3, "part-00000000000000000003-00001-0badcafe.jsonl")
        );
    }
}
