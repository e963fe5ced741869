"""Errors raised by seer-langgraph. Each says what is wrong and where."""

from __future__ import annotations

__all__ = [
    "DimensionMismatchError",
    "ImportValidationError",
    "PoolClosedError",
    "PoolError",
    "SeerError",
    "UnknownIntentError",
]


class SeerError(Exception):
    """Base class of every error raised by seer-langgraph."""


class PoolError(SeerError):
    """The experience pool could not do what was asked."""


class PoolClosedError(PoolError):
    """An operation was attempted on a closed pool."""


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
