"""seer-langgraph: stepwise experience recall (SEER) for LangGraph and LangChain agents."""

from ._version import __version__
from .errors import (
    DimensionMismatchError,
    ImportValidationError,
    PoolClosedError,
    PoolError,
    SeerError,
    UnknownIntentError,
)
from .experience import Experience, Step, Usage, Verdict, trajectory_text
from .pool import ExperiencePool, RecalledExperience, open_pool
from .scoring import RecallQuery, SeerWeights, reference_top_k

__all__ = [
    "DimensionMismatchError",
    "Experience",
    "ExperiencePool",
    "ImportValidationError",
    "PoolClosedError",
    "PoolError",
    "RecallQuery",
    "RecalledExperience",
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
