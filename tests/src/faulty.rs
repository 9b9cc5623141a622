//! An object store that fails chosen requests, for fault-injection tests: wraps a real
//! store and, deterministically, turns the n-th request of a kind (or, with a seed, a
//! random share of them) into an error before it reaches the inner store.

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

    fn check(&self, op: Op, path: &str) -> Result<()> {
        self.faults.check(op, path)
    }
}

impl Faults {
    fn check(&self, op: Op, path: &str) -> Result<()> {
        let fail = match &self.plan {
            Plan::None => false,
            Plan::Nth { ops, n } => {
                ops.contains(&op) && self.counted.fetch_add(1, Ordering::SeqCst) + 1 == *n
            }
            Plan::Random { ops, per_mille, .. } => {
                ops.contains(&op) && {
                    self.counted.fetch_add(1, Ordering::SeqCst);
                    let mut state = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = *state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    (z ^ (z >> 31)) % 1000 < *per_mille
                }
            }
        };
        if fail {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(object_store::Error::Generic {
                store: "faulty",
                source: format!("injected fault: {op:?} {path}").into(),
            });
        }
        Ok(())
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
        self.check(Op::Put, location.as_ref())?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.check(Op::Multipart, location.as_ref())?;
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultyUpload {
            inner,
            path: location.to_string(),
            faults: self.faults.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.check(Op::Get, location.as_ref())?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        if let Err(e) = self.check(Op::Delete, "(stream)") {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if let Err(e) = self.check(Op::List, prefix.map(|p| p.as_ref()).unwrap_or("")) {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.check(Op::List, prefix.map(|p| p.as_ref()).unwrap_or(""))?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.check(Op::Copy, to.as_ref())?;
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
        match self.faults.check(Op::Part, &self.path) {
            Ok(()) => self.inner.put_part(data),
            Err(e) => async move { Err(e) }.boxed(),
        }
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.faults.check(Op::Complete, &self.path)?;
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}
