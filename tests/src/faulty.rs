//! An object store that fails, cuts off or delays chosen requests, for fault-injection
//! tests: wraps a real store and, deterministically, turns the n-th request of a kind (or,
//! with a seed, a random share of them) into an error before it reaches the inner store,
//! cuts the n-th off halfway (half the bytes arrive, then the connection drops), or makes
//! every request of some kinds slow.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};

/// The kinds of request a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A single put (also the manifest's create-only put).
    Put,
    /// Starting a multipart upload.
    Multipart,
    /// One part of a multipart upload.
    Part,
    /// Completing a multipart upload.
    Complete,
    /// A get (whole or ranged).
    Get,
    /// A list.
    List,
    /// A delete.
    Delete,
    /// A copy.
    Copy,
}

/// Which requests fail.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Nothing fails (counting only).
    None,
    /// The `n`-th request (1-based, counted over all ops in `ops`) fails.
    Nth {
        /// The kinds counted.
        ops: Vec<Op>,
        /// Which one fails.
        n: u64,
    },
    /// Each request of `ops` fails with probability `per_mille / 1000`, decided by a
    /// generator seeded with `seed` (the same seed fails the same requests).
    Random {
        /// The kinds that may fail.
        ops: Vec<Op>,
        /// Failures per thousand requests.
        per_mille: u64,
        /// The generator's seed.
        seed: u64,
    },
    /// The `n`-th request of `ops` is cut off: a get delivers the first half of its body,
    /// then the connection drops; a put or part reaches the store whole, but its reply is
    /// lost, so the caller sees an error for a write that happened. (Object stores never
    /// keep half a put: a PUT is whole or absent, and parts are assembled only whole.)
    CutOff {
        /// The kinds counted.
        ops: Vec<Op>,
        /// Which one is cut off.
        n: u64,
    },
    /// Every request of `ops` waits `delay` before it reaches the inner store.
    Slow {
        /// The kinds slowed down.
        ops: Vec<Op>,
        /// How long each waits.
        delay: std::time::Duration,
    },
}

/// What happens to one request.
enum Verdict {
    Pass,
    CutOff,
}

/// The wrapper. Clone the `Arc` you give it to the code under test.
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Faults>,
}

/// The plan and its counters, shared with the store's multipart uploads.
#[derive(Debug)]
struct Faults {
    plan: Plan,
    counted: AtomicU64,
    rng: Mutex<u64>,
    injected: AtomicU64,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({}, {:?})", self.inner, self.faults.plan)
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl FaultyStore {
    /// Wraps `inner` with `plan`.
    pub fn new(inner: Arc<dyn ObjectStore>, plan: Plan) -> Arc<FaultyStore> {
        let seed = match &plan {
            Plan::Random { seed, .. } => *seed,
            _ => 0,
        };
        Arc::new(FaultyStore {
            inner,
            faults: Arc::new(Faults {
                plan,
                counted: AtomicU64::new(0),
                rng: Mutex::new(seed),
                injected: AtomicU64::new(0),
            }),
        })
    }

    /// Requests of the plan's kinds seen so far.
    pub fn counted(&self) -> u64 {
        self.faults.counted.load(Ordering::SeqCst)
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.faults.injected.load(Ordering::SeqCst)
    }

    async fn check(&self, op: Op, path: &str) -> Result<Verdict> {
        self.faults.check(op, path).await
    }
}

impl Faults {
    /// Counts the request and fails it, or says whether to cut it off, as the plan says;
    /// a slow plan's delay is served here.
    async fn check(&self, op: Op, path: &str) -> Result<Verdict> {
        if let Plan::Slow { ops, delay } = &self.plan {
            if ops.contains(&op) {
                self.counted.fetch_add(1, Ordering::SeqCst);
                self.injected.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(*delay).await;
            }
            return Ok(Verdict::Pass);
        }
        self.decide(op, path)
    }

    fn decide(&self, op: Op, path: &str) -> Result<Verdict> {
        let nth = |ops: &Vec<Op>, n: u64| {
            ops.contains(&op) && self.counted.fetch_add(1, Ordering::SeqCst) + 1 == n
        };
        let (fail, cut) = match &self.plan {
            Plan::None | Plan::Slow { .. } => (false, false),
            Plan::Nth { ops, n } => (nth(ops, *n), false),
            Plan::CutOff { ops, n } => (false, nth(ops, *n)),
            Plan::Random { ops, per_mille, .. } => {
                let fail = ops.contains(&op) && {
                    self.counted.fetch_add(1, Ordering::SeqCst);
                    let mut state = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = *state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    (z ^ (z >> 31)) % 1000 < *per_mille
                };
                (fail, false)
            }
        };
        if fail || cut {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        if fail {
            return Err(injected(op, path, "fault"));
        }
        Ok(if cut { Verdict::CutOff } else { Verdict::Pass })
    }
}

fn injected(op: Op, path: &str, what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: format!("injected {what}: {op:?} {path}").into(),
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if let Verdict::CutOff = self.check(Op::Put, location.as_ref()).await? {
            self.inner.put_opts(location, payload, opts).await?;
            return Err(injected(Op::Put, location.as_ref(), "cut-off"));
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.check(Op::Multipart, location.as_ref()).await?;
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultyUpload {
            inner,
            path: location.to_string(),
            faults: self.faults.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if options.head && matches!(self.faults.plan, Plan::CutOff { .. }) {
            // A head has no body to cut off.
            return self.inner.get_opts(location, options).await;
        }
        let verdict = self.check(Op::Get, location.as_ref()).await?;
        let mut result = self.inner.get_opts(location, options).await?;
        if let Verdict::CutOff = verdict {
            // Half the body arrives, then the connection drops.
            let keep = (result.range.end - result.range.start) / 2;
            let path = location.to_string();
            let (meta, range, attributes, extensions) = (
                result.meta.clone(),
                result.range.clone(),
                result.attributes.clone(),
                result.extensions.clone(),
            );
            let body = result.into_stream();
            let cut =
                futures::stream::unfold((body, keep, false), move |(mut body, mut left, done)| {
                    let path = path.clone();
                    async move {
                        if done {
                            return None;
                        }
                        match body.next().await {
                            Some(Ok(chunk)) if (chunk.len() as u64) < left => {
                                left -= chunk.len() as u64;
                                Some((Ok(chunk), (body, left, false)))
                            }
                            Some(Ok(chunk)) if left > 0 => {
                                let part = chunk.slice(..left as usize);
                                Some((Ok(part), (body, 0, false)))
                            }
                            Some(Err(e)) => Some((Err(e), (body, 0, true))),
                            _ => Some((Err(injected(Op::Get, &path, "cut-off")), (body, 0, true))),
                        }
                    }
                });
            result = GetResult {
                payload: object_store::GetResultPayload::Stream(cut.boxed()),
                meta,
                range,
                attributes,
                extensions,
            };
        }
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let faults = self.faults.clone();
        let inner = self.inner.clone();
        futures::stream::once(async move {
            match faults.check(Op::Delete, "(stream)").await {
                Ok(_) => inner.delete_stream(locations),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let faults = self.faults.clone();
        let inner = self.inner.clone();
        let prefix = prefix.cloned();
        futures::stream::once(async move {
            let path = prefix.as_ref().map(|p| p.to_string()).unwrap_or_default();
            match faults.check(Op::List, &path).await {
                Ok(_) => inner.list(prefix.as_ref()),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.check(Op::List, prefix.map(|p| p.as_ref()).unwrap_or(""))
            .await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.check(Op::Copy, to.as_ref()).await?;
        self.inner.copy_opts(from, to, options).await
    }
}

#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    path: String,
    faults: Arc<Faults>,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        // Decided now, in order; a slow plan's delay runs with the upload.
        let verdict = self.faults.decide(Op::Part, &self.path);
        let slow = match &self.faults.plan {
            Plan::Slow { ops, delay } if ops.contains(&Op::Part) => Some(*delay),
            _ => None,
        };
        match verdict {
            Ok(Verdict::Pass) => {
                let upload = self.inner.put_part(data);
                async move {
                    if let Some(delay) = slow {
                        tokio::time::sleep(delay).await;
                    }
                    upload.await
                }
                .boxed()
            }
            Ok(Verdict::CutOff) => {
                let upload = self.inner.put_part(data);
                let error = injected(Op::Part, &self.path, "cut-off");
                async move {
                    upload.await?;
                    Err(error)
                }
                .boxed()
            }
            Err(e) => async move { Err(e) }.boxed(),
        }
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.faults.check(Op::Complete, &self.path).await?;
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}
