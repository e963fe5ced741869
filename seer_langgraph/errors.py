"""Errors raised by seer-langgraph. Each says what is wrong and where."""

from __future__ import annotations

__all__ = [
    "CorruptRecordError",
    "DimensionMismatchError",
    "ImportValidationError",
    "PoolClosedError",
    "PoolError",
    "PoolInUseError",
    "RecordTooLargeError",
    "SeerError",
    "UnknownIntentError",
]


class SeerError(Exception):
    """Base class of every error raised by seer-langgraph."""


class PoolError(SeerError):
    """The experience pool could not do what was asked."""


class PoolClosedError(PoolError):
    """An operation was attempted on a closed pool."""


class PoolInUseError(PoolError):
    """An embedded pool directory is opened by another process (one opener per directory)."""


class RecordTooLargeError(PoolError, ValueError):
    """An experience exceeds a configured size limit (see :class:`seer_langgraph.limits.RecordLimits`)."""


class CorruptRecordError(PoolError, ValueError):
    """A stored record fails validation (its content no longer matches its content hash)."""


class DimensionMismatchError(PoolError, ValueError):
    """The embeddings' dimension differs from the dimension of the existing collection."""


class UnknownIntentError(SeerError, ValueError):
    """An intent label that is not in the configured label set."""


class ImportValidationError(PoolError, ValueError):
    """A JSONL file failed validation; nothing was imported. ``errors`` lists ``(line, message)``."""

    def __init__(self, path: str, errors: list[tuple[int, str]]):
        self.path = path
        self.errors = errors
        shown = "\n".join(f"  {path}:{line}: {msg}" for line, msg in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(
            f"{len(errors)} invalid line(s) in {path}; nothing was imported "
            f"(pass skip_invalid=True to import the valid lines):\n{shown}{more}"
        )
