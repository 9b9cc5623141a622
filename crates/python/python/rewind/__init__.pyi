"""Type stubs of the rewind package (the native module rewind._rewind, re-exported)."""

from typing import Any, Iterable, Optional

import pyarrow

__all__ = [
    "open",
    "analyze",
    "Savepoint",
    "SavepointError",
    "NotFoundError",
    "CorruptError",
    "UnsupportedError",
    "InvalidInputError",
    "StorageError",
]

def open(url: str) -> Savepoint:
    """Opens the savepoint at `url`: a local path or a file://, s3://, gs:// or az:// URL
    (credentials from the environment, as for the `rewind` command). A canonical Apache
    Flink savepoint (its directory or `_metadata`) is read through the importer, in
    memory: nothing is written.

    Raises NotFoundError, CorruptError, UnsupportedError, InvalidInputError or
    StorageError."""

def analyze(
    url: str,
    baseline: Optional[str] = None,
    top: int = 10,
    operator: Optional[str] = None,
    state: Optional[str] = None,
) -> dict[str, Any]:
    """What `rewind analyze URL --json` reports (docs/json.md), without `json_version`:
    findings first, then per state its rows, bytes, skew, largest keys, value statistics
    and timers; with `baseline` (an older savepoint of the same job), growth. `top`
    largest keys per state; `operator` and `state` narrow it to one operator or state.
    Opens savepoints as `open` does and raises what it raises."""

class Savepoint:
    """An open savepoint: its checked manifest, and its state to read."""

    @property
    def url(self) -> str:
        """The URL or path it was opened with."""
    @property
    def operators(self) -> list[str]:
        """The operators' uids, in the manifest's order."""
    @property
    def states(self) -> list[tuple[str, str]]:
        """Every state as (uid, state name), the arguments `read` takes."""
    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest as `_manifest.json` holds it (spec/FORMAT.md)."""
    @property
    def lineage(self) -> dict[str, Any]:
        """Where the savepoint came from: operation, parent, parameters."""
    def read(
        self,
        uid: str,
        state: str,
        keys: Optional[Iterable[Any] | pyarrow.Array] = None,
        with_hash: bool = False,
    ) -> pyarrow.Table:
        """The rows of state `uid`/`state`, with the columns `rewind state` shows (key,
        namespace or map key, value; timers: domain and timestamp). `keys` (a list, or a
        pyarrow array, of the state's key type; a struct key is a dict) reads only those
        keys' rows, opening only the files that can hold them. `with_hash` also gives
        each row's `key_hash` (first column).

        Raises NotFoundError (no such operator or state), CorruptError (a damaged
        shard), InvalidInputError (keys of the wrong type, or keys for operator state)."""
    def batches(
        self,
        uid: str,
        state: str,
        keys: Optional[Iterable[Any] | pyarrow.Array] = None,
        with_hash: bool = False,
        batch_size: Optional[int] = None,
    ) -> pyarrow.RecordBatchReader:
        """The rows `read` gives, streamed in batches of up to `batch_size` rows (default
        8192), so a state larger than memory can be processed. A damaged shard met while
        streaming raises the same CorruptError `read` would."""

class SavepointError(Exception):
    """Base class of every error rewind raises; the message is the `rewind` command's
    one-line error."""

class NotFoundError(SavepointError):
    """Nothing to read where asked: no savepoint (or an unfinished one), no such operator
    or state."""

class CorruptError(SavepointError):
    """The savepoint is damaged: a manifest that breaks the format's rules, a missing,
    truncated or unreadable file."""

class UnsupportedError(SavepointError):
    """A valid savepoint this build cannot read: a newer format, unknown reader features,
    a Flink savepoint the importer refuses."""

class InvalidInputError(SavepointError):
    """A request that cannot be carried out as given: a malformed URL, keys of the wrong
    type."""

class StorageError(SavepointError):
    """The object store failed: network, permissions, a missing bucket."""
