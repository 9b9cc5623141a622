"""Read Rewind savepoints, and canonical Apache Flink savepoints, into pyarrow.

>>> import rewind
>>> sp = rewind.open("s3://bucket/savepoints/sp-42")
>>> sp.states
[('counter', 'count')]
>>> table = sp.read("counter", "count")          # a pyarrow.Table
>>> for batch in sp.batches("counter", "count"):  # bounded memory
...     ...

``rewind.analyze(url)`` gives what ``rewind analyze URL --json`` reports, as a dict.

Errors are ``rewind.SavepointError`` subclasses, chosen by what the caller can do:
``NotFoundError``, ``CorruptError``, ``UnsupportedError``, ``InvalidInputError`` and
``StorageError``; the message is the ``rewind`` command's one-line error.
"""

from ._rewind import (
    CorruptError,
    InvalidInputError,
    NotFoundError,
    Savepoint,
    SavepointError,
    StorageError,
    UnsupportedError,
    analyze,
    open,
)

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
