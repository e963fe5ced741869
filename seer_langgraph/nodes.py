"""SEER's three LangGraph nodes (and the model node that uses their examples).

- :func:`make_recall_node`: before every model step, builds H_t from the messages, recalls the
  top-k past trajectories and puts them in state (``seer_examples``);
- :func:`make_agent_node`: calls the model with the examples rendered in the system prompt;
- :func:`make_tools_node`: runs tool calls through LangGraph's ``ToolNode``, turns exceptions and
  unparseable calls into tool messages the model can read, records the steps;
- :func:`make_commit_node`: judges the finished run, commits successes, records outcomes.

Each returns a runnable with sync and async paths; the async paths never block the event loop.
Collaborators (pool, model, evaluator) are arguments: two agents with two pools can share a
process. :func:`seer_langgraph.graph.add_seer` wires them into your builder.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp
from langgraph.prebuilt import ToolNode

from .config import SeerConfig
from .evaluators import Evaluator, RunRecord, as_evaluator
from .experience import Experience, Step, Verdict, trajectory_text, validate_tenant
from .history import message_text, read_run, turn_start
from .intent import IntentClassifier
from .limits import clip_history_text
from .pool import ExperiencePool, RecalledExperience
from .render import example_next_tool, system_prompt_with_examples

__all__ = [
    "STEP_LIMIT_NOTE",
    "format_tool_error",
    "make_agent_node",
    "make_commit_node",
    "make_recall_node",
    "make_tools_node",
    "must_call_tool",
    "resolve_tenant",
    "route_after_agent",
    "seer_system_message",
]

logger = logging.getLogger(__name__)

STEP_LIMIT_NOTE = "You have used all the tool calls allowed for this task. Answer now with what you have."


def resolve_tenant(pool: ExperiencePool, cfg: SeerConfig, config: RunnableConfig | None) -> str:
    """The run's tenant: ``configurable.seer_tenant``, else the SEER config's, else the pool's."""
    tenant = ((config or {}).get("configurable") or {}).get("seer_tenant") or cfg.tenant or pool.tenant
    return validate_tenant(tenant)


def format_tool_error(exc: Exception) -> str:
    """The tool message a model sees when a tool raised."""
    return f"Error: {type(exc).__name__}: {exc}. Check the arguments and try again, or use another tool."


# -- recall -------------------------------------------------------------------------------------
class _Recall:
    def __init__(self, pool: ExperiencePool, cfg: SeerConfig, classifier: IntentClassifier | None):
        self.pool = pool
        self.cfg = cfg
        self.classifier = classifier

    def _plan(self, state: dict[str, Any]) -> tuple[dict[str, Any], str, list[Step], bool]:
        """The turn's reset fields (on a new turn), the request, the steps so far, and whether to recall."""
        messages: list[BaseMessage] = state["messages"]
        start = turn_start(messages)
        view = read_run(messages)
        turn_id = (messages[start].id or str(start)) if start >= 0 else None
        update: dict[str, Any] = {}
        if turn_id != state.get("seer_turn"):
            update = {
                "seer_turn": turn_id,
                "seer_request": view.request,
                "seer_intent": None,
                "seer_steps": None,
                "seer_recalled_ids": None,
                "seer_examples": [],
                "seer_verdict": None,
                "seer_committed_id": None,
                "seer_commit_status": None,
                "seer_commit_error": None,
            }
        # query mode recalls once per turn, on the request; stepwise before every model step
        wanted = self.cfg.k > 0 and bool(view.request.strip()) and (self.cfg.mode == "stepwise" or bool(update))
        return update, view.request, view.steps, wanted

    def _text(self, request: str, steps: list[Step]) -> str:
        limits = getattr(self.pool, "limits", None)
        max_chars = getattr(limits, "max_query_chars", None)
        if self.cfg.mode == "query":
            return request[:max_chars] if max_chars else request
        request, steps = clip_history_text(request, steps, max_chars)  # a huge history is clipped, not refused
        return trajectory_text(request, steps)

    def _query_args(self, steps: list[Step], intent: str | None, config: RunnableConfig) -> dict[str, Any]:
        """Everything recall needs besides the text: tools so far, intent, k, weights, mode, tenant."""
        return {
            "tools": [s.tool for s in steps],
            "intent": intent,
            "k": self.cfg.k,
            "weights": self.cfg.weights,
            "min_score": self.cfg.min_score,
            "mode": self.cfg.mode,
            "tenant": resolve_tenant(self.pool, self.cfg, config),
        }

    def _finish(self, update: dict[str, Any], recalled: list[RecalledExperience]) -> dict[str, Any]:
        update["seer_examples"] = [r.model_dump(mode="json") for r in recalled]
        update["seer_recalled_ids"] = [r.id for r in recalled]
        return update

    def sync(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        update, request, steps, wanted = self._plan(state)
        intent = update["seer_intent"] if update else state.get("seer_intent")
        if update and self.classifier is not None and request.strip():
            try:
                intent = update["seer_intent"] = self.classifier.classify(request).label
            except Exception as exc:  # no intent alignment this turn, rather than no answer
                logger.warning("SEER intent classification failed (%s: %s); continuing without an intent", type(exc).__name__, exc)
        if not wanted:
            return update
        try:
            recalled = self.pool.recall(self._text(request, steps), **self._query_args(steps, intent, config))
        except Exception as exc:  # the agent answers without examples rather than failing
            logger.warning("SEER recall failed (%s: %s); continuing without examples", type(exc).__name__, exc)
            recalled = []
        return self._finish(update, recalled)

    async def asynch(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        update, request, steps, wanted = self._plan(state)
        intent = update["seer_intent"] if update else state.get("seer_intent")
        if update and self.classifier is not None and request.strip():
            try:
                intent = update["seer_intent"] = (await self.classifier.aclassify(request)).label
            except Exception as exc:
                logger.warning("SEER intent classification failed (%s: %s); continuing without an intent", type(exc).__name__, exc)
        if not wanted:
            return update
        try:
            recalled = await self.pool.arecall(self._text(request, steps), **self._query_args(steps, intent, config))
        except Exception as exc:
            logger.warning("SEER recall failed (%s: %s); continuing without examples", type(exc).__name__, exc)
            recalled = []
        return self._finish(update, recalled)


def make_recall_node(
    pool: ExperiencePool, config: SeerConfig | None = None, classifier: IntentClassifier | None = None
) -> RunnableLambda:
    """The recall node: H_t from the messages -> top-k experiences in ``seer_examples``.

    On a new turn it also resets the turn's fields and classifies the intent (once).
    Recall failures are logged and the model runs without examples.
    """
    r = _Recall(pool, config or SeerConfig(), classifier)
    return RunnableLambda(r.sync, afunc=r.asynch, name="seer_recall")


# -- model --------------------------------------------------------------------------------------
def _examples(state: dict[str, Any]) -> list[RecalledExperience]:
    return [RecalledExperience.model_validate(e) for e in state.get("seer_examples") or []]


def _tool_rounds(messages: Sequence[BaseMessage]) -> int:
    """Model steps of the current turn that called tools."""
    start = turn_start(messages)
    return sum(1 for m in messages[start + 1 :] if isinstance(m, AIMessage) and (m.tool_calls or m.invalid_tool_calls))


def _done_tools(messages: Sequence[BaseMessage]) -> list[str]:
    """The current turn's successful tool chain so far."""
    return [s.tool for s in read_run(messages).steps if not s.error] if messages else []


def _system_message(messages: Sequence[BaseMessage], examples: Sequence[RecalledExperience], done: Sequence[str], cfg: SeerConfig) -> SystemMessage:
    base = message_text(messages[0]) if messages and isinstance(messages[0], SystemMessage) else cfg.system_prompt
    return SystemMessage(system_prompt_with_examples(base, examples, cfg.render_observation_chars, cfg.render_style, done=done))


def _must_call(rounds: int, examples: Sequence[RecalledExperience], done: Sequence[str], config: SeerConfig) -> bool:
    if rounds == 0:
        return config.require_tool_first
    return config.follow_examples and example_next_tool(examples, done) is not None


def seer_system_message(state: dict[str, Any], config: SeerConfig | None = None) -> SystemMessage:
    """The system message with the recalled examples, for a model node of your own.

    Uses your own leading system message as the base prompt when the messages have one.
    """
    messages = state.get("messages") or []
    examples = _examples(state)
    return _system_message(messages, examples, _done_tools(messages) if examples else [], config or SeerConfig())


def must_call_tool(messages: Sequence[BaseMessage], examples: Sequence[RecalledExperience], config: SeerConfig) -> bool:
    """Whether this model step must call a tool: the first step with ``require_tool_first``, a
    later one with ``follow_examples`` while the best matching example made another call here.
    """
    return _must_call(_tool_rounds(messages), examples, _done_tools(messages) if examples else [], config)


class _Agent:
    def __init__(self, model: BaseChatModel, tools: Sequence[BaseTool | Callable[..., Any]], cfg: SeerConfig):
        self.cfg = cfg
        self.model = model
        self.with_tools = model.bind_tools(list(tools)) if tools else model
        self.must_call = model.bind_tools(list(tools), tool_choice="any") if tools else self.with_tools

    def _inputs(self, state: dict[str, Any]) -> tuple[Any, list[BaseMessage]]:
        messages: list[BaseMessage] = state["messages"]
        examples = _examples(state)  # validated and read once per step, for the prompt and the call rule
        rest = [m for m in messages if not isinstance(m, SystemMessage)]
        done = _done_tools(rest) if examples else []
        system = _system_message(messages, examples, done, self.cfg)
        rounds = _tool_rounds(rest)
        if rounds >= self.cfg.max_steps:
            system = SystemMessage(f"{message_text(system)}\n\n{STEP_LIMIT_NOTE}")
            return self.model, [system, *rest]
        return (self.must_call if _must_call(rounds, examples, done, self.cfg) else self.with_tools), [system, *rest]

    def sync(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        runnable, messages = self._inputs(state)
        return {"messages": [runnable.invoke(messages, config)]}

    async def asynch(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        runnable, messages = self._inputs(state)
        return {"messages": [await runnable.ainvoke(messages, config)]}


def make_agent_node(
    model: BaseChatModel, tools: Sequence[BaseTool | Callable[..., Any]], config: SeerConfig | None = None
) -> RunnableLambda:
    """The model node: the examples go into the system prompt, tools are bound with ``bind_tools``.

    After ``max_steps`` tool rounds the model is called without tools and told to answer.
    """
    a = _Agent(model, tools, config or SeerConfig())
    return RunnableLambda(a.sync, afunc=a.asynch, name="seer_agent")


def route_after_agent(tools_node: str, commit_node: str) -> Callable[[dict[str, Any]], str]:
    """Edge function: to the tools node if the last AI message calls tools, else to commit."""

    def route(state: dict[str, Any]) -> str:
        last = state["messages"][-1]
        if isinstance(last, AIMessage) and (last.tool_calls or last.invalid_tool_calls):
            return tools_node
        return commit_node

    return route


# -- tools --------------------------------------------------------------------------------------
class _Tools:
    def __init__(self, tools: Sequence[BaseTool | Callable[..., Any]], handle_errors: Any):
        self.node = ToolNode(list(tools), handle_tool_errors=handle_errors)

    @staticmethod
    def _invalid(last: AIMessage) -> list[ToolMessage]:
        out = []
        for i, bad in enumerate(last.invalid_tool_calls):
            name = bad.get("name") or "unknown"
            out.append(
                ToolMessage(
                    content=(
                        f"Error: your call to {name!r} could not be read ({bad.get('error') or 'malformed arguments'}). "
                        "Call the tool again with a JSON object of arguments that matches its schema."
                    ),
                    tool_call_id=bad.get("id") or f"invalid_call_{i}",
                    name=name,
                    status="error",
                )
            )
        return out

    @staticmethod
    def _steps(last: AIMessage, results: list[BaseMessage]) -> list[dict[str, Any]]:
        by_id = {m.tool_call_id: m for m in results if isinstance(m, ToolMessage)}
        steps = []
        calls = list(last.tool_calls) + [
            {"name": c.get("name") or "unknown", "args": {"raw": c.get("args")}, "id": c.get("id") or f"invalid_call_{i}"}
            for i, c in enumerate(last.invalid_tool_calls)
        ]
        for call in calls:
            msg = by_id.get(call.get("id") or "")
            if msg is None:
                continue
            args = call.get("args")
            step = Step(
                tool=str(call.get("name") or "").strip() or "unknown",  # a model may emit a call with no name
                args=dict(args) if isinstance(args, dict) else {"raw": args},
                observation=message_text(msg) if not isinstance(msg.content, str) else msg.content,
                error=msg.status == "error",
            )
            steps.append(step.model_dump(mode="json"))
        return steps

    def _last(self, state: dict[str, Any]) -> AIMessage | None:
        last = state["messages"][-1]
        return last if isinstance(last, AIMessage) else None

    def sync(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        last = self._last(state)
        if last is None:
            return {}
        results: list[BaseMessage] = []
        if last.tool_calls:
            results = list(self.node.invoke({"messages": state["messages"]}, config)["messages"])
        results += self._invalid(last)
        return {"messages": results, "seer_steps": self._steps(last, results)}

    async def asynch(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        last = self._last(state)
        if last is None:
            return {}
        results: list[BaseMessage] = []
        if last.tool_calls:
            results = list((await self.node.ainvoke({"messages": state["messages"]}, config))["messages"])
        results += self._invalid(last)
        return {"messages": results, "seer_steps": self._steps(last, results)}


def make_tools_node(
    tools: Sequence[BaseTool | Callable[..., Any]], handle_errors: bool | str | Callable[[Exception], str] = format_tool_error
) -> RunnableLambda:
    """The tool-execution node: LangGraph's ``ToolNode`` plus step recording.

    A tool that raises, an unknown tool and an unparseable call each become a ``ToolMessage``
    with ``status="error"`` that tells the model what went wrong; the step is recorded with
    ``error=True``.
    """
    t = _Tools(tools, handle_errors)
    return RunnableLambda(t.sync, afunc=t.asynch, name="seer_tools")


# -- reflect / commit ---------------------------------------------------------------------------
class _Commit:
    def __init__(self, pool: ExperiencePool, evaluator: Evaluator | None, cfg: SeerConfig):
        self.pool = pool
        self.evaluator = evaluator
        self.cfg = cfg

    def _run(self, state: dict[str, Any], tenant: str) -> RunRecord:
        view = read_run(state["messages"])
        try:
            recorded = [Step.model_validate(s) for s in state.get("seer_steps") or []]
        except Exception as exc:  # steps put in the state by other code: read them from the messages
            logger.warning("SEER ignored unreadable seer_steps in the state (%s); using the messages", exc)
            recorded = []
        return RunRecord(
            request=view.request,
            answer=view.answer,
            steps=recorded or view.steps,
            intent=state.get("seer_intent"),
            reference=state.get("seer_reference"),
            tenant=tenant,
        )

    def _no_judge(self) -> Verdict:
        return Verdict(success=self.cfg.commit_unjudged, source="none", reason="no evaluator is configured")

    def _experience(self, run: RunRecord, verdict: Verdict) -> tuple[Experience | None, str | None]:
        """The experience to commit (None when the run is not a success) and why it could not be built."""
        if not (verdict.success and run.answer and run.request.strip()):
            return None, None
        try:
            return (
                Experience(
                    request=run.request,
                    steps=run.steps,
                    answer=run.answer,
                    intent=run.intent,
                    tenant=run.tenant or "default",
                    verdict=verdict,
                ),
                None,
            )
        except Exception as exc:  # e.g. a step the model produced that is not a valid record
            logger.warning("SEER could not build an experience from the run (%s: %s); nothing is committed", type(exc).__name__, exc)
            return None, f"invalid run: {type(exc).__name__}: {exc}"

    def _judge_failed(self, exc: Exception) -> Verdict:
        name = type(self.evaluator).__name__
        logger.warning("SEER evaluator %s failed (%s: %s); the run is not committed", name, type(exc).__name__, exc)
        return Verdict(success=False, source=f"error:{name}", reason=f"evaluator failed: {type(exc).__name__}: {exc}")

    def _judge(self, run: RunRecord) -> Verdict:
        if self.evaluator is None:
            return self._no_judge()
        try:
            return self.evaluator.evaluate(run)
        except GraphBubbleUp:  # an interrupt (human feedback) must reach LangGraph
            raise
        except Exception as exc:
            return self._judge_failed(exc)

    async def _ajudge(self, run: RunRecord) -> Verdict:
        if self.evaluator is None:
            return self._no_judge()
        try:
            return await self.evaluator.aevaluate(run)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            return self._judge_failed(exc)

    @staticmethod
    def _commit_failed(exp: Experience, exc: Exception) -> tuple[str | None, str, str]:
        logger.error(
            "SEER could not commit experience %s (%s: %s); it is not stored (see seer_commit_error in the state)",
            exp.id,
            type(exc).__name__,
            exc,
        )
        return None, "failed", f"{type(exc).__name__}: {exc}"

    def _store(self, exp: Experience | None, tenant: str) -> tuple[str | None, str | None, str | None]:
        """(committed id, status, error) -- a failing pool never fails the run."""
        if exp is None:
            return None, None, None
        try:
            res = self.pool.commit(exp, tenant=tenant)
        except Exception as exc:
            return self._commit_failed(exp, exc)
        return res.id, res.status, None

    async def _astore(self, exp: Experience | None, tenant: str) -> tuple[str | None, str | None, str | None]:
        if exp is None:
            return None, None, None
        try:
            res = await self.pool.acommit(exp, tenant=tenant)
        except Exception as exc:
            return self._commit_failed(exp, exc)
        return res.id, res.status, None

    @staticmethod
    def _result(verdict: Verdict, committed: str | None, status: str | None = None, error: str | None = None) -> dict[str, Any]:
        return {
            "seer_verdict": verdict.model_dump(mode="json"),
            "seer_committed_id": committed,
            "seer_commit_status": status,
            "seer_commit_error": error,
        }

    def sync(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        tenant = resolve_tenant(self.pool, self.cfg, config)
        run = self._run(state, tenant)
        verdict = self._judge(run)
        exp, error = self._experience(run, verdict)
        committed, status, commit_error = self._store(exp, tenant)
        try:
            self.pool.record_outcome(state.get("seer_recalled_ids") or [], verdict.success, tenant=tenant)
        except Exception as exc:
            logger.warning("could not record recall outcomes (%s)", exc)
        return self._result(verdict, committed, status or ("failed" if error else None), commit_error or error)

    async def asynch(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        tenant = resolve_tenant(self.pool, self.cfg, config)
        run = self._run(state, tenant)
        verdict = await self._ajudge(run)
        exp, error = self._experience(run, verdict)
        committed, status, commit_error = await self._astore(exp, tenant)
        try:
            await self.pool.arecord_outcome(state.get("seer_recalled_ids") or [], verdict.success, tenant=tenant)
        except Exception as exc:
            logger.warning("could not record recall outcomes (%s)", exc)
        return self._result(verdict, committed, status or ("failed" if error else None), commit_error or error)


def make_commit_node(
    pool: ExperiencePool, evaluator: Evaluator | Callable[[RunRecord], Any] | None = None, config: SeerConfig | None = None
) -> RunnableLambda:
    """The reflect/commit node: evaluate the finished turn, commit it if it succeeded.

    Also counts one recall and its outcome on every experience recalled during the turn. With no
    evaluator nothing is committed unless ``SeerConfig(commit_unjudged=True)``.
    """
    c = _Commit(pool, as_evaluator(evaluator), config or SeerConfig())
    return RunnableLambda(c.sync, afunc=c.asynch, name="seer_commit")
