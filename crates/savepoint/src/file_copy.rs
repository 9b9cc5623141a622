//! Copying one whole file between savepoint locations: a server-side copy where both are
//! on one store, else streamed through this process. Storage plumbing below the writer.

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;

use crate::{Error, Location, Result};

/// Copies one file, with the store's own copy when both sides are on the same store.
pub(crate) async fn copy_file(
    from: &Location,
    from_path: &str,
    to: &Location,
    to_path: &str,
) -> Result<()> {
    from.check_inside(from_path)?;
    let src = from.child(from_path);
    let dst = to.child(to_path);
    if to.same_store(from) {
        return to
            .store()
            .copy(&src, &dst)
            .await
            .map_err(|e| Error::storage(to.describe(to_path), e));
    }
    let mut body = from
        .store()
        .get(&src)
        .await
        .map_err(|e| Error::storage(from.describe(from_path), e))?
        .into_stream();
    let mut upload = BufWriter::new(to.store().clone(), dst);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::storage(from.describe(from_path), e))?;
        upload
            .put(chunk)
            .await
            .map_err(|e| Error::storage(to.describe(to_path), e))?;
    }
    upload
        .shutdown()
        .await
        .map_err(|e| crate::parquet_io::io_error(to.describe(to_path), "upload failed", e))
}
