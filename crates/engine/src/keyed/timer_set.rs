//! The timers of one keyed operator subtask in one time domain.
//!
//! Timers are grouped by timestamp, and each group is a hash set of (key, namespace)
//! behind an `Arc`, as keyed state's buckets are:
//! - setting or deleting a timer is a hash-set operation on its group (window operators
//!   set one timer per window, so every key's window shares one group);
//! - cloning the set (the synchronous part of a checkpoint) copies one pointer per
//!   distinct timestamp, and the first change to a group after a clone copies that group;
//! - a group that comes due is sorted once by (key, namespace) and fired in that order, so
//!   firing is deterministic whatever the hash sets' layout (a restored job fires as an
//!   uninterrupted one does). Fired timers leave their group together when the group is
//!   through (a removal per timer, each a cache miss in a large group, was a tenth of a
//!   window count's time); until then the sorted queue tells which fired.

use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::HashSet;

use crate::key::Key;

/// One timestamp's timers. hashbrown's default hasher: std's SipHash cost 5% of a window
/// count in timer deletes alone.
type Group<K> = Arc<HashSet<(K, i64)>>;

pub(crate) struct TimerSet<K: Key> {
    groups: BTreeMap<i64, Group<K>>,
    len: usize,
    firing: Option<Firing<K>>,
}

/// The due group being fired.
struct Firing<K> {
    time: i64,
    /// Its timers in firing order; those before `next` fired but are still in the group
    /// (so the fired ones are always in the group), the rest are all in it too.
    queue: Vec<(K, i64)>,
    next: usize,
}

impl<K: Key> Firing<K> {
    fn fired(&self) -> &[(K, i64)] {
        &self.queue[..self.next]
    }
}

impl<K: Key> Clone for TimerSet<K> {
    fn clone(&self) -> Self {
        let mut groups = self.groups.clone();
        if let Some(f) = &self.firing {
            remove_fired(&mut groups, f);
        }
        TimerSet {
            groups,
            len: self.len,
            firing: None,
        }
    }
}

/// Takes `firing`'s fired timers out of its group: the whole group at once when nothing
/// else is left in it.
fn remove_fired<K: Key>(groups: &mut BTreeMap<i64, Group<K>>, firing: &Firing<K>) {
    let fired = firing.fired();
    if fired.is_empty() {
        return;
    }
    let Some(group) = groups.get_mut(&firing.time) else {
        return;
    };
    if group.len() == fired.len() {
        groups.remove(&firing.time);
        return;
    }
    let group = Arc::make_mut(group);
    for timer in fired {
        group.remove(timer);
    }
    if group.is_empty() {
        groups.remove(&firing.time);
    }
}

impl<K: Key> Default for TimerSet<K> {
    fn default() -> Self {
        TimerSet {
            groups: BTreeMap::new(),
            len: 0,
            firing: None,
        }
    }
}

impl<K: Key> TimerSet<K> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Sets the timer; returns whether it was not set yet.
    pub(crate) fn insert(&mut self, timestamp: i64, key: K, namespace: i64) -> bool {
        self.settle_firing(timestamp);
        let group = Arc::make_mut(self.groups.entry(timestamp).or_default());
        let added = group.insert((key, namespace));
        if added {
            self.len += 1;
            // A timer set at the time being fired fires in this round too.
            if self.firing.as_ref().is_some_and(|f| f.time == timestamp) {
                self.firing = None;
            }
        }
        added
    }

    /// Deletes the timer; returns whether it was set.
    pub(crate) fn remove(&mut self, timestamp: i64, key: &K, namespace: i64) -> bool {
        self.settle_firing(timestamp);
        let Some(group) = self.groups.get_mut(&timestamp) else {
            return false;
        };
        // Look before copying a group a snapshot shares.
        let timer = (key.clone(), namespace);
        if !group.contains(&timer) {
            return false;
        }
        let group = Arc::make_mut(group);
        group.remove(&timer);
        self.len -= 1;
        if group.is_empty() {
            self.groups.remove(&timestamp);
        }
        // Not fired yet (fired ones left the group above): it leaves the queue too.
        if let Some(f) = self.firing.as_mut().filter(|f| f.time == timestamp)
            && let Ok(at) = f.queue.binary_search(&timer)
        {
            f.queue.remove(at);
        }
        true
    }

    /// Before a change at `timestamp` while its group fires: the fired timers leave it.
    fn settle_firing(&mut self, timestamp: i64) {
        if let Some(f) = self.firing.as_mut().filter(|f| f.time == timestamp) {
            remove_fired(&mut self.groups, f);
            f.queue.drain(..f.next);
            f.next = 0;
        }
    }

    /// Whether the timer is set.
    pub(crate) fn contains(&self, timestamp: i64, key: &K, namespace: i64) -> bool {
        let timer = (key.clone(), namespace);
        let fired = self
            .firing
            .as_ref()
            .filter(|f| f.time == timestamp)
            .is_some_and(|f| f.fired().binary_search(&timer).is_ok());
        !fired
            && self
                .groups
                .get(&timestamp)
                .is_some_and(|g| g.contains(&timer))
    }

    /// The earliest timestamp a timer is set for.
    pub(crate) fn next_time(&self) -> Option<i64> {
        self.groups.first_key_value().map(|(t, _)| *t)
    }

    /// Removes and returns the next timer due at `now`: the earliest timestamp first, and
    /// within one timestamp by (key, namespace).
    pub(crate) fn pop_due(&mut self, now: i64) -> Option<(i64, K, i64)> {
        loop {
            let (&time, _) = self.groups.first_key_value()?;
            if time > now {
                return None;
            }
            // An earlier timer was set while a later group fired: that group's fired
            // timers leave it first.
            if self.firing.as_ref().is_some_and(|f| f.time != time) {
                self.finish_firing();
                continue;
            }
            let group = self.groups.get(&time)?;
            let firing = match &mut self.firing {
                Some(f) if f.time == time => f,
                _ => {
                    let mut queue: Vec<(K, i64)> = group.iter().cloned().collect();
                    queue.sort_unstable();
                    self.firing.insert(Firing {
                        time,
                        queue,
                        next: 0,
                    })
                }
            };
            if let Some(timer) = firing.queue.get(firing.next) {
                firing.next += 1;
                let (key, namespace) = timer.clone();
                self.len -= 1;
                if firing.next == firing.queue.len() {
                    self.finish_firing();
                }
                return Some((time, key, namespace));
            }
            // Fired through (timers set meanwhile start a new round, sorted again).
            self.finish_firing();
        }
    }

    /// The group fired through: its fired timers leave it.
    fn finish_firing(&mut self) {
        if let Some(f) = self.firing.take() {
            remove_fired(&mut self.groups, &f);
        }
    }

    /// Every timestamp with its timers as (key, namespace), earliest first.
    pub(crate) fn groups(&self) -> impl Iterator<Item = (i64, &HashSet<(K, i64)>)> {
        self.groups.iter().map(|(t, g)| (*t, g.as_ref()))
    }

    /// The timers at `timestamp`.
    pub(crate) fn group(&self, timestamp: i64) -> Option<&HashSet<(K, i64)>> {
        self.groups.get(&timestamp).map(|g| g.as_ref())
    }

    /// Every timer as (timestamp, key, namespace), in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (i64, &K, i64)> {
        self.groups
            .iter()
            .flat_map(|(t, g)| g.iter().map(move |(k, ns)| (*t, k, *ns)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    type Model = BTreeSet<(i64, i64, i64)>;

    #[derive(Debug, Clone)]
    enum Step {
        Insert(i64, i64, i64),
        Remove(i64, i64, i64),
        Pop(i64),
        Snapshot,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..8i64, 0..6i64, 0..2i64).prop_map(|(t, k, n)| Step::Insert(t, k, n)),
            (0..8i64, 0..6i64, 0..2i64).prop_map(|(t, k, n)| Step::Remove(t, k, n)),
            (0..8i64).prop_map(Step::Pop),
            Just(Step::Snapshot),
        ]
    }

    proptest! {
        /// The set behaves as an ordered set of (timestamp, key, namespace), and snapshots
        /// keep what they saw whatever happens after.
        #[test]
        fn behaves_as_an_ordered_set(steps in proptest::collection::vec(step(), 0..80)) {
            let mut set = TimerSet::<i64>::default();
            let mut model = Model::new();
            let mut snapshots: Vec<(TimerSet<i64>, Model)> = Vec::new();
            for s in steps {
                match s {
                    Step::Insert(t, k, n) => {
                        prop_assert_eq!(set.contains(t, &k, n), model.contains(&(t, k, n)));
                        prop_assert_eq!(set.insert(t, k, n), model.insert((t, k, n)));
                    }
                    Step::Remove(t, k, n) => {
                        prop_assert_eq!(set.contains(t, &k, n), model.contains(&(t, k, n)));
                        prop_assert_eq!(set.remove(t, &k, n), model.remove(&(t, k, n)));
                    }
                    Step::Pop(now) => {
                        let expected = model.first().copied().filter(|(t, _, _)| *t <= now);
                        if let Some(e) = expected {
                            model.remove(&e);
                        }
                        prop_assert_eq!(set.pop_due(now), expected);
                    }
                    Step::Snapshot => snapshots.push((set.clone(), model.clone())),
                }
                prop_assert_eq!(set.len(), model.len());
                prop_assert_eq!(set.next_time(), model.first().map(|(t, _, _)| *t));
            }
            for (snapshot, seen) in snapshots {
                let got: Model = snapshot.iter().map(|(t, k, n)| (t, *k, n)).collect();
                prop_assert_eq!(got, seen);
            }
        }
    }

    /// A timer set while its timestamp is being fired fires in the same round.
    #[test]
    fn a_timer_set_while_firing_fires_in_the_same_round() {
        let mut set = TimerSet::<i64>::default();
        set.insert(5, 2, 0);
        set.insert(5, 3, 0);
        assert_eq!(set.pop_due(5), Some((5, 2, 0)));
        set.insert(5, 1, 0);
        set.remove(5, &3, 0);
        assert_eq!(set.pop_due(5), Some((5, 1, 0)));
        assert_eq!(set.pop_due(5), None);
        assert_eq!(set.len(), 0);
    }
}
