//! Parquet over object_store: a reader that fetches byte ranges, and a writer that
//! computes the CRC-32C and size of a file while uploading it.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use tokio::io::AsyncWriteExt;

/// Reads one Parquet file of known size by ranged GETs.
pub(crate) struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl ObjectReader {
    /// A reader of file `relative` (of `size` bytes) of the savepoint at `location`;
    /// refuses a local file that is a symlink leading outside the savepoint.
    pub(crate) fn open(
        location: &crate::Location,
        relative: &str,
        size: u64,
    ) -> crate::Result<Self> {
        location.check_inside(relative)?;
        Ok(ObjectReader {
            store: location.store().clone(),
            path: location.child(relative),
            size,
        })
    }
}

/// The Parquet decoder panics on some malformed files (upstream bugs: a dictionary-encoded
/// page without a dictionary, for one, found by our fuzzing). A hostile shard must give an
/// error naming it, never bring the reader down, so decoding runs under these guards.
fn decoder_panicked(path: &str, panic: Box<dyn std::any::Any + Send>) -> crate::Error {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into());
    crate::Error::corrupt(
        path,
        format!("the Parquet decoder failed on this file: {message}"),
    )
}

thread_local! {
    static GUARDED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Marks this thread as decoding under a panic guard while it lives.
struct Guard;

impl Guard {
    fn enter() -> Guard {
        GUARDED.with(|g| g.set(g.get() + 1));
        Guard
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        GUARDED.with(|g| g.set(g.get().saturating_sub(1)));
    }
}

/// Whether this thread is decoding a shard under the reader's panic guard: a panic now
/// becomes a corrupt-shard error. For an application's panic hook, to stay quiet about
/// panics that are reported as errors anyway.
pub fn decoding_guarded() -> bool {
    GUARDED.with(|g| g.get() > 0)
}

/// Runs `f`, a synchronous decode of the file `path`, under the panic guard.
pub(crate) fn guarded<T>(path: &str, f: impl FnOnce() -> crate::Result<T>) -> crate::Result<T> {
    let _guard = Guard::enter();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|panic| Err(decoder_panicked(path, panic)))
}

/// `future`, with every poll under the panic guard.
fn guard_polls<F: std::future::Future>(future: F) -> impl std::future::Future<Output = F::Output> {
    let mut future = Box::pin(future);
    futures::future::poll_fn(move |cx| {
        let _guard = Guard::enter();
        future.as_mut().poll(cx)
    })
}

/// Awaits `future`, an asynchronous decode of the file `path`, under the panic guard.
pub(crate) async fn guarded_async<T>(
    path: &str,
    future: impl std::future::Future<Output = crate::Result<T>>,
) -> crate::Result<T> {
    std::panic::AssertUnwindSafe(guard_polls(future))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(decoder_panicked(path, panic)))
}

/// The batches of a Parquet stream over the file `path`, under the panic guard, with its
/// errors as [`parquet_error`] names them; it ends after the first error.
pub(crate) fn guarded_stream<S>(
    path: String,
    stream: S,
) -> futures::stream::BoxStream<'static, crate::Result<arrow_array::RecordBatch>>
where
    S: futures::Stream<Item = parquet::errors::Result<arrow_array::RecordBatch>>
        + Send
        + Unpin
        + 'static,
{
    use futures::StreamExt;
    futures::stream::unfold(Some(stream), move |state| {
        let path = path.clone();
        async move {
            let mut stream = state?;
            let next = std::panic::AssertUnwindSafe(guard_polls(stream.next()))
                .catch_unwind()
                .await;
            match next {
                Ok(Some(Ok(batch))) => Some((Ok(batch), Some(stream))),
                Ok(Some(Err(e))) => Some((Err(parquet_error(path, "reading Parquet", e)), None)),
                Ok(None) => None,
                Err(panic) => Some((Err(decoder_panicked(&path, panic)), None)),
            }
        }
    })
    .boxed()
}

/// A Parquet error reading or writing the file `path`: the store's own error when a
/// request inside it failed (a storage failure, maybe transient, never a verdict on the
/// file's bytes), else `doing` and the error, as corruption.
pub(crate) fn parquet_error(path: impl Into<String>, doing: &str, e: ParquetError) -> crate::Error {
    let path = path.into();
    let ParquetError::External(inner) = e else {
        return crate::Error::corrupt(path, format!("{doing}: {e}"));
    };
    // Requests fail as an object_store error, or as an I/O error around one (shutdown).
    match inner.downcast::<std::io::Error>() {
        Ok(io) => io_error(path, doing, *io),
        Err(inner) => store_or_corrupt(path, doing, inner),
    }
}

/// An I/O error of an upload or download of `path`: the store's error inside it when there
/// is one (a storage failure, maybe transient), else `doing` and the error, as corruption.
pub(crate) fn io_error(path: String, doing: &str, e: std::io::Error) -> crate::Error {
    match e.into_inner() {
        Some(inner) => store_or_corrupt(path, doing, inner),
        None => crate::Error::corrupt(path, format!("{doing}: I/O error")),
    }
}

fn store_or_corrupt(
    path: String,
    doing: &str,
    inner: Box<dyn std::error::Error + Send + Sync>,
) -> crate::Error {
    match inner.downcast::<object_store::Error>() {
        Ok(store) => crate::Error::storage(path, *store),
        Err(other) => crate::Error::corrupt(path, format!("{doing}: {other}")),
    }
}

fn store_error(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(store_error)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(store_error)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            // One suffix read usually holds the whole footer of a state shard.
            let metadata = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// Uploads a file through [`BufWriter`] (multipart past its buffer) and keeps its CRC-32C
/// and length, so the manifest can record them without reading the file again.
pub(crate) struct ChecksumWriter {
    inner: BufWriter,
    crc: u32,
    bytes: u64,
    shutting_down: bool,
}

impl ChecksumWriter {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, path: Path, upload_concurrency: usize) -> Self {
        ChecksumWriter {
            inner: BufWriter::new(store, path).with_max_concurrency(upload_concurrency.max(1)),
            crc: 0,
            bytes: 0,
            shutting_down: false,
        }
    }

    /// CRC-32C and length of everything written so far.
    pub(crate) fn summary(&self) -> (u32, u64) {
        (self.crc, self.bytes)
    }

    /// Gives up on the upload (aborting a multipart upload if one was started).
    pub(crate) async fn abort(&mut self) {
        // `BufWriter::abort` panics once shutdown has begun (a failed completion); then
        // there is nothing left to abort here.
        if self.shutting_down {
            return;
        }
        // Best effort: the file is not in any manifest, so a leftover is only an orphan.
        let _ = self.inner.abort().await;
    }
}

impl AsyncFileWriter for ChecksumWriter {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        self.crc = crc32c::crc32c_append(self.crc, &bs);
        self.bytes += bs.len() as u64;
        async move { self.inner.put(bs).await.map_err(store_error) }.boxed()
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        self.shutting_down = true;
        async move {
            self.inner
                .shutdown()
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use parquet::arrow::ParquetRecordBatchStreamBuilder;

    use super::*;

    /// The shard the fuzzer found (fixtures/corrupt/parquet-dictionary-page-missing): the
    /// decoder panics on it, and the guarded stream turns that into this file's error.
    /// (Readers now refuse that file earlier, for its missing `ARROW:schema`; this keeps the
    /// guard itself tested.)
    #[tokio::test]
    async fn a_decoder_panic_becomes_a_corrupt_shard_error() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/corrupt/parquet-dictionary-page-missing/savepoint"
        );
        let location = crate::Location::parse(dir).unwrap();
        let relative = "state/counter/count/00000-f0000000.parquet";
        let size = std::fs::metadata(format!("{dir}/{relative}"))
            .unwrap()
            .len();
        let reader = ObjectReader::open(&location, relative, size).unwrap();
        let stream = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .unwrap()
            .build()
            .unwrap();
        let mut batches = guarded_stream(relative.to_string(), stream);
        let mut error = None;
        while let Some(batch) = batches.next().await {
            if let Err(e) = batch {
                error = Some(e);
            }
        }
        let error = error.expect("the decoder fails on this file").to_string();
        assert!(
            error.contains("the Parquet decoder failed on this file"),
            "{error}"
        );
    }
}
