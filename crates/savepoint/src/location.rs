//! Where a savepoint lives: an object store and a root prefix in it.

use std::fmt;
use std::sync::{Arc, OnceLock};

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, RetryConfig};
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use crate::{Error, Result};

/// A savepoint's root: the store that holds it and the prefix of its files.
///
/// Build one from a user's string with [`Location::parse`] (a local path or a `file://`,
/// `memory://`, `s3://`, `gs://` or `az://` URL), or from a store you configured yourself
/// with [`Location::new`].
#[derive(Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    root: Path,
    display: String,
    /// Which store this is (`file://`, `memory://`, `s3://bucket`, ...): two locations with
    /// the same key can copy objects server-side.
    store_key: String,
    /// On local disk, the root as a directory: symlinks are followed there, even outside
    /// the root, so reads check where a file really is.
    local_root: Option<std::path::PathBuf>,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Location")
            .field("url", &self.display)
            .finish()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// Up to `range.end - range.start` bytes of a local file from `range.start`, read into
/// spare capacity (no zero-filling first).
fn read_local(file: &std::path::Path, range: std::ops::Range<u64>) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let length = range.end.saturating_sub(range.start);
    let mut opened = std::fs::File::open(file)?;
    opened.seek(SeekFrom::Start(range.start))?;
    let mut data = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    opened.take(length).read_to_end(&mut data)?;
    Ok(data)
}

/// The one in-memory store of this process, so that `memory://` URLs opened twice see the
/// same objects (useful in tests and demos; it is gone when the process ends).
fn process_memory_store() -> Arc<dyn ObjectStore> {
    static STORE: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
    STORE.get_or_init(|| Arc::new(InMemory::new())).clone()
}

/// Timeouts and retries of cloud stores, from the environment:
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `REWIND_STORE_TIMEOUT` | timeout of one request, e.g. `30s` | `30s` |
/// | `REWIND_STORE_CONNECT_TIMEOUT` | timeout of connecting | `5s` |
/// | `REWIND_STORE_RETRIES` | retries of a failed request (with exponential backoff) | `10` |
/// | `REWIND_STORE_RETRY_TIMEOUT` | give up retrying a request after this long | `3m` |
struct NetworkSettings {
    timeout: Option<String>,
    connect_timeout: Option<String>,
    retry: RetryConfig,
}

/// Refuses, before any request, an S3 location with no credential source configured:
/// otherwise the client falls back to the cloud instance-metadata address and the user
/// sees its refusal (`PUT http://169.254.169.254/latest/api/token ... 403`) after retries.
/// On a cloud instance with a role, `REWIND_AWS_INSTANCE_METADATA=1` (or the AWS SDKs'
/// `AWS_EC2_METADATA_DISABLED=false`) allows that fallback.
fn check_aws_credentials() -> std::result::Result<(), String> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let is = |name: &str, values: &[&str]| {
        std::env::var(name).is_ok_and(|v| values.contains(&v.to_ascii_lowercase().as_str()))
    };
    let configured = set("AWS_ACCESS_KEY_ID")
        || set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        || is("AWS_SKIP_SIGNATURE", &["true", "1"])
        || is("REWIND_AWS_INSTANCE_METADATA", &["true", "1"])
        || is("AWS_EC2_METADATA_DISABLED", &["false", "0"]);
    if configured {
        Ok(())
    } else {
        Err(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
             (or AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN); on a cloud instance with a role \
             set REWIND_AWS_INSTANCE_METADATA=1; for a public bucket AWS_SKIP_SIGNATURE=true"
                .into(),
        )
    }
}

impl NetworkSettings {
    fn from_env() -> Result<NetworkSettings> {
        let duration = |name: &str| -> Result<Option<String>> {
            match std::env::var(name) {
                Ok(v) => {
                    humantime::parse_duration(&v)
                        .map_err(|e| Error::InvalidInput(format!("{name}={v}: {e}")))?;
                    Ok(Some(v))
                }
                Err(_) => Ok(None),
            }
        };
        let mut retry = RetryConfig {
            backoff: BackoffConfig::default(),
            ..RetryConfig::default()
        };
        if let Ok(v) = std::env::var("REWIND_STORE_RETRIES") {
            retry.max_retries = v
                .parse()
                .map_err(|e| Error::InvalidInput(format!("REWIND_STORE_RETRIES={v}: {e}")))?;
        }
        if let Some(v) = duration("REWIND_STORE_RETRY_TIMEOUT")? {
            retry.retry_timeout = humantime::parse_duration(&v)
                .map_err(|e| Error::InvalidInput(format!("REWIND_STORE_RETRY_TIMEOUT={v}: {e}")))?;
        }
        Ok(NetworkSettings {
            timeout: duration("REWIND_STORE_TIMEOUT")?,
            connect_timeout: duration("REWIND_STORE_CONNECT_TIMEOUT")?,
            retry,
        })
    }

    fn client_options(&self) -> Vec<(ClientConfigKey, String)> {
        let mut out = Vec::new();
        if let Some(t) = &self.timeout {
            out.push((ClientConfigKey::Timeout, t.clone()));
        }
        if let Some(t) = &self.connect_timeout {
            out.push((ClientConfigKey::ConnectTimeout, t.clone()));
        }
        out
    }
}

impl Location {
    /// A location in a store you built, e.g. with custom client options.
    /// `display` is how errors and lineage name it (usually its URL).
    pub fn new(store: Arc<dyn ObjectStore>, root: Path, display: impl Into<String>) -> Self {
        let display = display.into();
        Location {
            store_key: format!("{:p}", Arc::as_ptr(&store)),
            store,
            root,
            display,
            local_root: None,
        }
    }

    fn with_store_key(mut self, key: String) -> Self {
        self.store_key = key;
        self
    }

    /// Whether objects can be copied from `other` to `self` with the store's own copy.
    pub fn same_store(&self, other: &Location) -> bool {
        self.store_key == other.store_key
    }

    /// Parses a local path or URL.
    ///
    /// Cloud stores take their credentials and options from the standard environment
    /// variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`), as their own tools do. Local files are
    /// written with fsync, so a committed savepoint survives a power cut.
    pub fn parse(text: &str) -> Result<Location> {
        let bad = |why: String| Error::InvalidInput(format!("{text}: {why}"));
        if !text.contains("://") {
            return Self::local(std::path::Path::new(text), text);
        }
        let url = Url::parse(text).map_err(|e| bad(format!("invalid URL: {e}")))?;
        let key = url.path().trim_start_matches('/');
        let root = Path::parse(key).map_err(|e| bad(format!("invalid object path: {e}")))?;
        let display = text.trim_end_matches('/').to_string();
        let bucket_url = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|()| bad("not a local file URL".into()))?;
                return Self::local(&path, text);
            }
            "memory" => {
                // memory://name/prefix: the host is part of the key space.
                let mut full = url.host_str().unwrap_or_default().to_string();
                if !key.is_empty() {
                    full = format!("{full}/{key}");
                }
                let root = Path::parse(full).map_err(|e| bad(format!("invalid path: {e}")))?;
                return Ok(Location::new(process_memory_store(), root, display)
                    .with_store_key("memory://".into()));
            }
            "s3" | "s3a" => {
                check_aws_credentials().map_err(bad)?;
                let settings = NetworkSettings::from_env()?;
                let mut builder = AmazonS3Builder::from_env()
                    .with_url(bucket_url.clone())
                    .with_retry(settings.retry.clone());
                for (key, value) in settings.client_options() {
                    builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
                }
                Arc::new(builder.build().map_err(|e| bad(e.to_string()))?)
            }
            "gs" => {
                let settings = NetworkSettings::from_env()?;
                let mut builder = GoogleCloudStorageBuilder::from_env()
                    .with_url(bucket_url.clone())
                    .with_retry(settings.retry.clone());
                for (key, value) in settings.client_options() {
                    builder = builder.with_config(GoogleConfigKey::Client(key), value);
                }
                Arc::new(builder.build().map_err(|e| bad(e.to_string()))?)
            }
            "az" | "abfs" | "abfss" => {
                let settings = NetworkSettings::from_env()?;
                let mut builder = MicrosoftAzureBuilder::from_env()
                    .with_url(text)
                    .with_retry(settings.retry.clone());
                for (key, value) in settings.client_options() {
                    builder = builder.with_config(AzureConfigKey::Client(key), value);
                }
                Arc::new(builder.build().map_err(|e| bad(e.to_string()))?)
            }
            other => {
                return Err(bad(format!(
                    "unsupported scheme {other:?}; use a local path, file://, memory://, s3://, gs:// or az://"
                )));
            }
        };
        let endpoint = std::env::var("AWS_ENDPOINT").unwrap_or_default();
        Ok(Location::new(store, root, display).with_store_key(format!("{bucket_url} {endpoint}")))
    }

    fn local(path: &std::path::Path, text: &str) -> Result<Location> {
        let absolute =
            std::path::absolute(path).map_err(|e| Error::InvalidInput(format!("{text}: {e}")))?;
        // `absolute` keeps `..`; object paths may not contain it, so resolve it lexically
        // (as a shell does for `cd ../x`).
        let mut clean = std::path::PathBuf::new();
        for part in absolute.components() {
            match part {
                std::path::Component::ParentDir => {
                    clean.pop();
                }
                std::path::Component::CurDir => {}
                other => clean.push(other),
            }
        }
        let absolute = clean;
        let root = Path::from_absolute_path(&absolute)
            .map_err(|e| Error::InvalidInput(format!("{text}: {e}")))?;
        let store = LocalFileSystem::new().with_fsync(true);
        let mut location = Location::new(Arc::new(store), root, text.trim_end_matches('/'))
            .with_store_key("file://".into());
        location.local_root = Some(absolute);
        Ok(location)
    }

    /// Refuses a file of this savepoint that is, on local disk, a symlink (or under one)
    /// leading outside the root: a savepoint must not make its readers read other files.
    pub(crate) fn check_inside(&self, relative: &str) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let (Ok(real_root), Ok(real)) = (root.canonicalize(), root.join(relative).canonicalize())
        else {
            // Missing files are reported where they are read.
            return Ok(());
        };
        if real.starts_with(&real_root) {
            Ok(())
        } else {
            Err(Error::corrupt(
                self.describe(relative),
                format!(
                    "a symlink leads outside the savepoint (to {})",
                    real.display()
                ),
            ))
        }
    }

    /// Bytes `range` of a file. On local disk read straight into a new buffer (the
    /// store's own read zero-fills its buffer first: a tenth of a rescale's CPU).
    pub(crate) async fn get_range(
        &self,
        relative: &str,
        range: std::ops::Range<u64>,
    ) -> Result<bytes::Bytes> {
        let Some(root) = &self.local_root else {
            return self
                .store
                .get_range(&self.child(relative), range)
                .await
                .map_err(|e| Error::storage(self.describe(relative), e));
        };
        let file = root.join(relative);
        let described = self.describe(relative);
        let wanted = range.clone();
        let read = tokio::task::spawn_blocking(move || read_local(&file, wanted))
            .await
            .map_err(|e| Error::Internal(format!("a read of {described} stopped: {e}")))?;
        match read {
            Ok(data) if data.len() as u64 == range.end - range.start => Ok(data.into()),
            Ok(_) => Err(Error::corrupt(
                described,
                format!(
                    "bytes {}..{} are past the end of the file",
                    range.start, range.end
                ),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::storage(
                described.clone(),
                object_store::Error::NotFound {
                    path: described,
                    source: Box::new(e),
                },
            )),
            Err(e) => Err(Error::storage(
                described,
                object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: Box::new(e),
                },
            )),
        }
    }

    /// The root folder on local disk, for a local location.
    pub(crate) fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The root prefix inside the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The object path of `relative` (a manifest path, already checked by the format rules).
    pub fn child(&self, relative: &str) -> Path {
        relative
            .split('/')
            .fold(self.root.clone(), |p, segment| p.clone().join(segment))
    }

    /// How errors name the file `relative` inside this savepoint.
    pub fn describe(&self, relative: &str) -> String {
        format!("{}/{relative}", self.display)
    }

    /// The location of the folder `relative` below this one (a path found by listing this
    /// location, e.g. a checkpoint in a checkpoint directory); "" is this location.
    pub fn join(&self, relative: &str) -> Result<Location> {
        if relative.is_empty() {
            return Ok(self.clone());
        }
        rewind_format::check_relative_path(relative)
            .map_err(|e| Error::InvalidInput(format!("{}: {e}", self.describe(relative))))?;
        let mut out = self.clone();
        out.root = self.child(relative);
        out.display = self.describe(relative);
        out.local_root = self.local_root.as_ref().map(|r| r.join(relative));
        Ok(out)
    }

    /// The folder `name` next to this one (same parent): where a checkpoint finds the
    /// files it shares with an earlier checkpoint of its job. `name` is one portable
    /// segment, checked by the manifest rules.
    pub fn sibling(&self, name: &str) -> Result<Location> {
        if name.contains('/') {
            return Err(Error::InvalidInput(format!(
                "{}: a sibling folder name has no '/': {name:?}",
                self.display
            )));
        }
        self.parent()
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "{}: a savepoint at the top of its store has no sibling folder {name:?}",
                    self.display
                ))
            })?
            .join(name)
    }

    /// The folder holding this one; `None` at the top of the store.
    pub fn parent(&self) -> Option<Location> {
        let depth = self.root.parts().count();
        if depth == 0 {
            return None;
        }
        let mut out = self.clone();
        out.root = self.root.parts().take(depth - 1).collect();
        out.display = match self.display.rsplit_once('/') {
            Some((up, _)) => up.to_string(),
            None => String::new(),
        };
        out.local_root = self
            .local_root
            .as_ref()
            .and_then(|r| r.parent())
            .map(|p| p.to_path_buf());
        Some(out)
    }

    /// The last folder name of the root ("" at the top of a store): what other
    /// checkpoints of the job name this one by.
    pub fn folder_name(&self) -> String {
        self.root
            .parts()
            .next_back()
            .map(|p| p.as_ref().to_string())
            .unwrap_or_default()
    }

    /// The path of `full` relative to the root, if it is inside it.
    pub fn relative(&self, full: &Path) -> Option<String> {
        full.prefix_match(&self.root).map(|parts| {
            parts
                .map(|p| p.as_ref().to_string())
                .collect::<Vec<_>>()
                .join("/")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_range_reads_match_the_store_and_name_a_short_or_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.bin"), b"0123456789").unwrap();
        let l = Location::parse(dir.path().to_str().unwrap()).unwrap();
        let ours = l.get_range("f.bin", 2..5).await.unwrap();
        let store = l.store().get_range(&l.child("f.bin"), 2..5).await.unwrap();
        assert_eq!((&ours[..], &store[..]), (&b"234"[..], &b"234"[..]));
        let short = l.get_range("f.bin", 8..12).await.unwrap_err();
        assert!(matches!(short, Error::Corrupt { .. }), "{short}");
        let text = short.to_string();
        assert!(
            text.contains("f.bin") && text.contains("past the end"),
            "{text}"
        );
        let missing = l.get_range("g.bin", 0..1).await.unwrap_err();
        assert!(
            matches!(
                missing,
                Error::Storage {
                    error: object_store::Error::NotFound { .. },
                    ..
                }
            ),
            "{missing}"
        );
    }

    #[test]
    fn parses_local_and_memory() {
        let l = Location::parse("/tmp/x/sp/").unwrap();
        assert_eq!(l.root().as_ref(), "tmp/x/sp");
        assert_eq!(
            l.child("state/a/b.parquet").as_ref(),
            "tmp/x/sp/state/a/b.parquet"
        );
        assert_eq!(l.to_string(), "/tmp/x/sp");
        let up = Location::parse("/tmp/x/../y/./sp").unwrap();
        assert_eq!(up.root().as_ref(), "tmp/y/sp");
        let m = Location::parse("memory://bucket/sp1").unwrap();
        assert_eq!(m.root().as_ref(), "bucket/sp1");
        assert_eq!(
            m.relative(&Path::from("bucket/sp1/state/x")).as_deref(),
            Some("state/x")
        );
        assert!(Location::parse("ftp://host/x").is_err());
    }
}
