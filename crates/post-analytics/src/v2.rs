//! Version 2: as version 1, with views and clicks split into organic and paid.
//!
//! Same uids as version 1, so it restores v1's savepoints. Its accumulator is v1's with
//! fields added; the engine fills them with their defaults when it restores v1's windows,
//! and `split_complete` stays false for those windows: their paid events before the
//! upgrade were counted only in the totals.

use rewind_engine::{AggregateFunction, Job, WindowResult, Windows};
use serde::{Deserialize, Serialize};

use crate::{Action, AppArgs, PostEvent, STATS_UID, WINDOW};

/// The job's name.
pub const NAME: &str = "post-analytics";

/// The window accumulator: v1's fields, then the new ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Views in the window.
    pub views: u64,
    /// Clicks in the window.
    pub clicks: u64,
    /// Paid views (since the window was created by v2).
    #[serde(default)]
    pub paid_views: u64,
    /// Paid clicks (since the window was created by v2).
    #[serde(default)]
    pub paid_clicks: u64,
    /// Whether v2 saw all of the window's events (false for windows restored from v1).
    #[serde(default)]
    pub split_complete: bool,
}

/// Views and clicks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Views.
    pub views: u64,
    /// Clicks.
    pub clicks: u64,
}

/// One output line: a post's counts in one window, split by origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostStats {
    /// The post.
    pub post: i64,
    /// Window start, ms since the epoch.
    pub start: i64,
    /// Window end (exclusive), ms since the epoch.
    pub end: i64,
    /// All views.
    pub views: u64,
    /// All clicks.
    pub clicks: u64,
    /// Organic views and clicks.
    pub organic: Split,
    /// Paid views and clicks.
    pub paid: Split,
    /// False when the window was open at the upgrade: the split covers only its events
    /// after it, and paid events before it are counted as organic.
    pub split_complete: bool,
}

/// Counts views and clicks, and the paid ones apart.
pub struct CountByOrigin;

impl AggregateFunction for CountByOrigin {
    type In = PostEvent;
    type Acc = Counts;
    type Out = Counts;

    fn create(&self) -> Counts {
        Counts {
            split_complete: true,
            ..Counts::default()
        }
    }

    fn add(&self, acc: &mut Counts, e: &PostEvent) {
        match (e.action, e.paid) {
            (Action::View, false) => acc.views += 1,
            (Action::Click, false) => acc.clicks += 1,
            (Action::View, true) => {
                acc.views += 1;
                acc.paid_views += 1;
            }
            (Action::Click, true) => {
                acc.clicks += 1;
                acc.paid_clicks += 1;
            }
        }
    }

    fn merge(&self, a: Counts, b: Counts) -> Counts {
        Counts {
            views: a.views + b.views,
            clicks: a.clicks + b.clicks,
            paid_views: a.paid_views + b.paid_views,
            paid_clicks: a.paid_clicks + b.paid_clicks,
            split_complete: a.split_complete && b.split_complete,
        }
    }

    fn result(&self, acc: &Counts) -> Counts {
        *acc
    }
}

impl From<WindowResult<i64, Counts>> for PostStats {
    fn from(r: WindowResult<i64, Counts>) -> PostStats {
        let c = r.value;
        PostStats {
            post: r.key,
            start: r.start,
            end: r.end,
            views: c.views,
            clicks: c.clicks,
            organic: Split {
                views: c.views - c.paid_views,
                clicks: c.clicks - c.paid_clicks,
            },
            paid: Split {
                views: c.paid_views,
                clicks: c.paid_clicks,
            },
            split_complete: c.split_complete,
        }
    }
}

/// Version 2's job.
pub fn job(args: &AppArgs) -> rewind_engine::Result<Job> {
    let stats = crate::post_events(NAME, args)?
        .key_by(|e: &PostEvent| e.post)
        .window(Windows::tumbling(WINDOW))
        .aggregate("post stats", CountByOrigin)
        .uid(STATS_UID)
        .map(PostStats::from);
    crate::sink(stats, args)
}
