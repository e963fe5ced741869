"""SEER settings shared by the nodes, the prebuilt agent and the middleware.

Example:
    >>> from seer_langgraph.config import SeerConfig
    >>> SeerConfig(k=2, mode="query").k
    2
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .scoring import RecallMode, SeerWeights

__all__ = ["DEFAULT_SYSTEM_PROMPT", "SeerConfig"]

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant that solves tasks by calling tools. Call one tool at a time when a "
    "later call needs an earlier result. When you have the answer, reply with it plainly."
)


class SeerConfig(BaseModel):
    """How recall and commit behave.

    A run may override the tenant with ``config={"configurable": {"seer_tenant": "acme"}}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(default=4, ge=0, le=64, description="How many past trajectories to recall (paper: 4).")
    weights: SeerWeights = Field(default_factory=SeerWeights)
    mode: RecallMode = Field(default="stepwise", description="'stepwise' recalls before every model step; 'query' once.")
    min_score: float | None = Field(default=None, description="Drop recalled records scoring below this.")
    max_steps: int = Field(default=8, ge=1, description="Tool rounds before the model must answer.")
    render_observation_chars: int = Field(default=600, ge=0, description="Observation length in rendered examples (0 = all).")
    require_tool_first: bool = Field(
        default=False,
        description="Make the first model step of a turn call a tool (tool_choice='any'): keeps a small model from "
        "answering from an example's values instead of looking its own up.",
    )
    follow_examples: bool = Field(
        default=False,
        description="Not in the paper (this library's option): while the best recalled example that went the same way "
        "so far made another call at this point, require a tool call at this step (tool_choice='any'), so a small "
        "model does not answer halfway through a multi-step method. No examples (k=0), no effect.",
    )
    render_style: Literal["json", "hermes", "plain"] = Field(
        default="json", description="How example calls are written in the prompt (see seer_langgraph.render)."
    )
    tenant: str | None = Field(default=None, description="Tenant of recall and commit (default: the pool's).")
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    commit_unjudged: bool = Field(
        default=False, description="Commit runs no evaluator judged (off: only verified successes enter the pool)."
    )
