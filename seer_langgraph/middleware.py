"""SEER as a middleware for ``langchain.agents.create_agent`` (the ``agents`` extra).

Before each model call it recalls the top-k past trajectories for the history so far and adds
them to the system prompt; tool exceptions become tool messages the model can read; after the
agent finishes, the run is judged and successes are committed.

Example:
    >>> from langchain.agents import create_agent
    >>> from seer_langgraph import open_pool
    >>> from seer_langgraph.middleware import SeerMiddleware
    >>> from seer_langgraph.testing import ScriptedChatModel
    >>> pool = open_pool(":memory:")
    >>> seer = SeerMiddleware(pool, evaluator=lambda run: run.answer == "4")
    >>> agent = create_agent(ScriptedChatModel(responses=["4"]), tools=[], middleware=[seer])
    >>> out = agent.invoke({"messages": [("user", "2+2?")]})
    >>> out["seer_committed_id"] is not None, pool.count()
    (True, 1)
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import SystemMessage, ToolMessage
from langgraph.config import get_config
from langgraph.types import Command

from .config import SeerConfig
from .evaluators import Evaluator, RunRecord, as_evaluator
from .history import message_text
from .intent import IntentClassifier, IntentSet
from .nodes import _Commit, _done_tools, _examples, _must_call, _Recall, _system_message, _tool_rounds, format_tool_error
from .pool import ExperiencePool
from .state import SeerFields

__all__ = ["SeerAgentState", "SeerMiddleware"]


class SeerAgentState(AgentState, SeerFields):
    """``create_agent``'s state plus SEER's fields (see :class:`~seer_langgraph.state.SeerFields`)."""


def _config() -> dict[str, Any]:
    try:
        return dict(get_config())
    except RuntimeError:  # outside a runnable context
        return {}


class SeerMiddleware(AgentMiddleware[SeerAgentState]):
    """Stepwise experience recall around each model call, commit after the agent.

    Args:
        pool: the experience pool.
        evaluator: decides success (see :mod:`seer_langgraph.evaluators`); without one nothing is
            committed unless ``SeerConfig(commit_unjudged=True)``.
        intents: optional intent label set (``{name: description}`` or an ``IntentSet``).
        intent_model: the chat model that classifies intent (falls back to embeddings).
        config: k, weights, mode, ... (:class:`~seer_langgraph.config.SeerConfig`).
    """

    state_schema = SeerAgentState

    def __init__(
        self,
        pool: ExperiencePool,
        *,
        evaluator: Evaluator | Callable[[RunRecord], Any] | None = None,
        intents: IntentSet | dict[str, str] | None = None,
        intent_model: BaseChatModel | None = None,
        config: SeerConfig | None = None,
    ) -> None:
        super().__init__()
        self.pool = pool
        self.config = config or SeerConfig()
        if isinstance(intents, dict):
            intents = IntentSet.from_dict(intents)
        classifier = IntentClassifier(intents, model=intent_model, embeddings=pool.embeddings) if intents else None
        self._recall = _Recall(pool, self.config, classifier)
        self._commit = _Commit(pool, as_evaluator(evaluator), self.config)

    @property
    def name(self) -> str:
        return "SeerMiddleware"

    # recall before every model call
    def before_model(self, state: SeerAgentState, runtime: Any) -> dict[str, Any] | None:
        return self._recall.sync(dict(state), _config()) or None

    async def abefore_model(self, state: SeerAgentState, runtime: Any) -> dict[str, Any] | None:
        return await self._recall.asynch(dict(state), _config()) or None

    # examples into the system prompt
    def _with_examples(self, request: ModelRequest) -> ModelRequest:
        base = message_text(request.system_message) if request.system_message is not None else ""
        cfg = self.config.model_copy(update={"system_prompt": base})
        messages = list(request.messages)
        examples = _examples(request.state)
        done = _done_tools(messages) if examples else []
        text = message_text(_system_message(messages, examples, done, cfg))
        if text:
            request = request.override(system_message=SystemMessage(text))
        if request.tools and _must_call(_tool_rounds(messages), examples, done, cfg):
            request = request.override(tool_choice="any")
        return request

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> Any:
        return handler(self._with_examples(request))

    async def awrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]) -> Any:
        return await handler(self._with_examples(request))

    # tool errors become messages the model can read
    @staticmethod
    def _error(request: ToolCallRequest, exc: Exception) -> ToolMessage:
        call = request.tool_call
        return ToolMessage(format_tool_error(exc), tool_call_id=call["id"], name=call["name"], status="error")

    def wrap_tool_call(self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], ToolMessage | Command]) -> ToolMessage | Command:
        try:
            return handler(request)
        except Exception as exc:
            return self._error(request, exc)

    async def awrap_tool_call(
        self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command]]
    ) -> ToolMessage | Command:
        try:
            return await handler(request)
        except Exception as exc:
            return self._error(request, exc)

    # judge and commit after the agent
    def after_agent(self, state: SeerAgentState, runtime: Any) -> dict[str, Any] | None:
        return self._commit.sync(dict(state), _config())

    async def aafter_agent(self, state: SeerAgentState, runtime: Any) -> dict[str, Any] | None:
        return await self._commit.asynch(dict(state), _config())
