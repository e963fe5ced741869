"""seer-langgraph: stepwise experience recall (SEER) for LangGraph and LangChain agents."""

from ._version import __version__
from .durability import RetryPolicy
from .errors import (
    CorruptRecordError,
    DimensionMismatchError,
    ImportValidationError,
    PoolClosedError,
    PoolError,
    PoolInUseError,
    RecordTooLargeError,
    SeerError,
    UnknownIntentError,
)
from .experience import Experience, Step, Usage, Verdict, trajectory_text
from .hygiene import HygienePolicy
from .limits import RecordLimits
from .pool import ExperiencePool, RecalledExperience, open_pool
from .redaction import Redactor
from .scoring import RecallQuery, SeerWeights, reference_top_k

__all__ = [
    "CorruptRecordError",
    "DimensionMismatchError",
    "Experience",
    "ExperiencePool",
    "HygienePolicy",
    "ImportValidationError",
    "PoolClosedError",
    "PoolError",
    "PoolInUseError",
    "RecallQuery",
    "RecalledExperience",
    "RecordLimits",
    "RecordTooLargeError",
    "Redactor",
    "RetryPolicy",
    "SeerError",
    "SeerWeights",
    "Step",
    "UnknownIntentError",
    "Usage",
    "Verdict",
    "__version__",
    "open_pool",
    "reference_top_k",
    "trajectory_text",
]
