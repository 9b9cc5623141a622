//! Version 1: views and clicks per post and minute.

use rewind_engine::{AggregateFunction, Job, WindowResult, Windows};
use serde::{Deserialize, Serialize};

use crate::{Action, AppArgs, PostEvent, STATS_UID, WINDOW};

/// The job's name.
pub const NAME: &str = "post-analytics";

/// The window accumulator (window state, a struct column in savepoints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Views in the window.
    pub views: u64,
    /// Clicks in the window.
    pub clicks: u64,
}

/// One output line: a post's counts in one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostStats {
    /// The post.
    pub post: i64,
    /// Window start, ms since the epoch.
    pub start: i64,
    /// Window end (exclusive), ms since the epoch.
    pub end: i64,
    /// Views.
    pub views: u64,
    /// Clicks.
    pub clicks: u64,
}

/// Counts views and clicks.
pub struct CountActions;

impl AggregateFunction for CountActions {
    type In = PostEvent;
    type Acc = Counts;
    type Out = Counts;

    fn create(&self) -> Counts {
        Counts::default()
    }

    fn add(&self, acc: &mut Counts, e: &PostEvent) {
        match e.action {
            Action::View => acc.views += 1,
            Action::Click => acc.clicks += 1,
        }
    }

    fn merge(&self, a: Counts, b: Counts) -> Counts {
        Counts {
            views: a.views + b.views,
            clicks: a.clicks + b.clicks,
        }
    }

    fn result(&self, acc: &Counts) -> Counts {
        *acc
    }
}

/// Version 1's job.
pub fn job(args: &AppArgs) -> rewind_engine::Result<Job> {
    let stats = crate::post_events(NAME, args)?
        .key_by(|e: &PostEvent| e.post)
        .window(Windows::tumbling(WINDOW))
        .aggregate("post stats", CountActions)
        .uid(STATS_UID)
        .map(|r: WindowResult<i64, Counts>| PostStats {
            post: r.key,
            start: r.start,
            end: r.end,
            views: r.value.views,
            clicks: r.value.clicks,
        });
    crate::sink(stats, args)
}
