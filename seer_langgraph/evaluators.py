"""Evaluators decide whether a finished run succeeded; only successes are committed.

- :class:`ReferenceMatch`: exact, normalized, numeric or contains match against a reference answer;
- :class:`LLMJudge`: a chat model judges the run, with a reference (as in the paper) or without;
- :class:`EnvironmentReward`: a reward the harness computes (e.g. tau-bench's database check);
- :class:`HumanFeedback`: pauses the graph with LangGraph ``interrupt`` until a person approves;
- :class:`CallableEvaluator`: any function of the run.

Example:
    >>> from seer_langgraph.evaluators import ReferenceMatch, RunRecord
    >>> run = RunRecord(request="2+3?", answer="The sum is 5.", reference="5")
    >>> ReferenceMatch(mode="numeric").evaluate(run).success
    True
    >>> ReferenceMatch(mode="exact").evaluate(run).success
    False
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import string
from typing import Any, Callable, Literal, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field

from .experience import Step, Verdict, trajectory_text

__all__ = [
    "BaseEvaluator",
    "CallableEvaluator",
    "EnvironmentReward",
    "Evaluator",
    "HumanFeedback",
    "LLMJudge",
    "ReferenceMatch",
    "RunRecord",
    "as_evaluator",
]

logger = logging.getLogger(__name__)


class RunRecord(BaseModel):
    """A finished run as an evaluator sees it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    request: str
    answer: str | None = None
    steps: list[Step] = Field(default_factory=list)
    intent: str | None = None
    reference: Any = None
    tenant: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class Evaluator(Protocol):
    """Anything with ``evaluate(run) -> Verdict`` and ``aevaluate(run) -> Verdict``."""

    def evaluate(self, run: RunRecord) -> Verdict: ...

    async def aevaluate(self, run: RunRecord) -> Verdict: ...


class BaseEvaluator:
    """Base class: implement :meth:`evaluate`; the async twin runs it in a worker thread."""

    def evaluate(self, run: RunRecord) -> Verdict:
        raise NotImplementedError

    async def aevaluate(self, run: RunRecord) -> Verdict:
        return await asyncio.to_thread(self.evaluate, run)


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _normalize(text: str) -> str:
    text = str(text).casefold()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _numbers(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in _NUMBER.findall(str(text))]


class ReferenceMatch(BaseEvaluator):
    """Compare the answer with ``run.reference``.

    Modes: ``exact`` (after stripping whitespace), ``normalized`` (case, punctuation, articles and
    spacing ignored; the default), ``contains`` (the normalized reference is a phrase of the
    normalized answer), ``numeric`` (the *last* number in the answer equals the reference within
    ``rel_tol``/``abs_tol``; strict by default, so a nearly-right number by a wrong method fails).
    A reference may also be a list of acceptable answers.
    """

    def __init__(self, mode: Literal["exact", "normalized", "contains", "numeric"] = "normalized", *, rel_tol: float = 1e-6, abs_tol: float = 1e-9):
        if mode not in ("exact", "normalized", "contains", "numeric"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol

    def _one(self, answer: str, ref: Any) -> bool:
        if self.mode == "exact":
            return answer.strip() == str(ref).strip()
        if self.mode == "normalized":
            return _normalize(answer) == _normalize(ref)
        if self.mode == "contains":
            a, r = f" {_normalize(answer)} ", f" {_normalize(ref)} "
            return r.strip() != "" and r in a
        nums = _numbers(answer)
        refs = [float(ref)] if isinstance(ref, (int, float)) else _numbers(str(ref))
        if not nums or len(refs) != 1:
            return False
        return math.isclose(nums[-1], refs[0], rel_tol=self.rel_tol, abs_tol=self.abs_tol)

    def evaluate(self, run: RunRecord) -> Verdict:
        source = f"reference:{self.mode}"
        if run.reference is None:
            return Verdict(success=False, source=source, reason="no reference answer was given for this run")
        if not run.answer:
            return Verdict(success=False, source=source, reason="the run ended without an answer")
        refs = run.reference if isinstance(run.reference, (list, tuple)) else [run.reference]
        ok = any(self._one(run.answer, r) for r in refs)
        reason = "answer matches the reference" if ok else f"answer {run.answer!r} does not match {run.reference!r}"
        return Verdict(success=ok, source=source, score=1.0 if ok else 0.0, reason=reason)


class _Judgement(BaseModel):
    success: bool = Field(description="True only if the run fully and correctly solved the request.")
    reason: str = Field(description="One sentence of justification.")


class LLMJudge(BaseEvaluator):
    """A chat model judges the run. With ``use_reference=True`` (the paper's setting) it compares
    the answer with ``run.reference``; without, it judges the request, steps and answer alone.

    A judge that fails or answers unclearly yields a failure verdict: when in doubt, nothing is
    committed.
    """

    def __init__(self, model: BaseChatModel, *, use_reference: bool = True, instructions: str = ""):
        self.model = model
        self.use_reference = use_reference
        self.instructions = instructions

    @property
    def source(self) -> str:
        return "llm-judge:reference" if self.use_reference else "llm-judge:reference-free"

    def _messages(self, run: RunRecord) -> list[Any]:
        rules = (
            "You grade an AI agent's run. Be strict: succeed only if the final answer is fully correct "
            "and was obtained from the tool results shown, not guessed. "
            + ("Compare the final answer with the reference answer. " if self.use_reference else "")
            + self.instructions
        )
        body = trajectory_text(run.request, run.steps, run.answer or "(no answer)")
        if self.use_reference:
            body += f"\nReference answer: {run.reference}"
        return [SystemMessage(rules), HumanMessage(body + "\n\nDid the run succeed?")]

    def _verdict(self, out: Any) -> Verdict:
        if isinstance(out, _Judgement):
            return Verdict(success=out.success, source=self.source, score=float(out.success), reason=out.reason)
        if isinstance(out, dict) and "success" in out:
            return Verdict(success=bool(out["success"]), source=self.source, reason=str(out.get("reason", "")))
        text = str(getattr(out, "content", out)).strip().lower()
        if re.match(r"^\W*(yes|pass|success|correct|true)\b", text):
            return Verdict(success=True, source=self.source, score=1.0, reason=text[:200])
        return Verdict(success=False, source=self.source, score=0.0, reason=text[:200] or "empty judgement")

    def _check(self, run: RunRecord) -> Verdict | None:
        if self.use_reference and run.reference is None:
            return Verdict(success=False, source=self.source, reason="no reference answer was given for this run")
        if not run.answer:
            return Verdict(success=False, source=self.source, reason="the run ended without an answer")
        return None

    def evaluate(self, run: RunRecord) -> Verdict:
        early = self._check(run)
        if early:
            return early
        try:
            try:
                out = self.model.with_structured_output(_Judgement).invoke(self._messages(run))
            except NotImplementedError:
                out = self.model.invoke(self._messages(run))
            return self._verdict(out)
        except Exception as exc:
            logger.warning("the LLM judge failed (%s); the run is not committed", exc)
            return Verdict(success=False, source=self.source, reason=f"judge failed: {exc}")

    async def aevaluate(self, run: RunRecord) -> Verdict:
        early = self._check(run)
        if early:
            return early
        try:
            try:
                out = await self.model.with_structured_output(_Judgement).ainvoke(self._messages(run))
            except NotImplementedError:
                out = await self.model.ainvoke(self._messages(run))
            return self._verdict(out)
        except Exception as exc:
            logger.warning("the LLM judge failed (%s); the run is not committed", exc)
            return Verdict(success=False, source=self.source, reason=f"judge failed: {exc}")


class EnvironmentReward(BaseEvaluator):
    """Success when ``reward(run) >= threshold`` (e.g. tau-bench's database-state reward)."""

    def __init__(self, reward: Callable[[RunRecord], float], threshold: float = 1.0):
        self.reward = reward
        self.threshold = threshold

    def evaluate(self, run: RunRecord) -> Verdict:
        value = float(self.reward(run))
        return Verdict(success=value >= self.threshold, source="environment", score=value, reason=f"reward {value:g} (threshold {self.threshold:g})")


class HumanFeedback(BaseEvaluator):
    """Ask a person through LangGraph ``interrupt`` (the graph needs a checkpointer).

    Resume with ``Command(resume="approve")`` / ``"reject"``, a bool, or
    ``{"approved": bool, "reason": "..."}``.
    """

    def evaluate(self, run: RunRecord) -> Verdict:
        from langgraph.types import interrupt

        answer = interrupt(
            {
                "question": "Did this run succeed? Resume with 'approve' or 'reject'.",
                "request": run.request,
                "steps": [s.model_dump(mode="json") for s in run.steps],
                "answer": run.answer,
            }
        )
        reason = ""
        if isinstance(answer, dict):
            reason = str(answer.get("reason", ""))
            answer = answer.get("approved", answer.get("approve", False))
        if isinstance(answer, str):
            approved = answer.strip().lower() in ("approve", "approved", "yes", "y", "ok", "true", "1", "up", "👍")
        else:
            approved = bool(answer)
        return Verdict(success=approved, source="human", score=float(approved), reason=reason)

    async def aevaluate(self, run: RunRecord) -> Verdict:
        return self.evaluate(run)  # interrupt must run in the node's own context, not a thread


class CallableEvaluator(BaseEvaluator):
    """Wrap ``fn(run)`` returning a bool, a number (success if > 0), a dict or a :class:`Verdict`."""

    def __init__(self, fn: Callable[[RunRecord], Any], source: str = "callable"):
        self.fn = fn
        self.source = source

    def evaluate(self, run: RunRecord) -> Verdict:
        out = self.fn(run)
        if isinstance(out, Verdict):
            return out
        if isinstance(out, dict):
            return Verdict(source=self.source, **out)
        if isinstance(out, bool):
            return Verdict(success=out, source=self.source, score=float(out))
        if isinstance(out, (int, float)):
            return Verdict(success=out > 0, source=self.source, score=float(out))
        raise TypeError(f"evaluator {self.fn!r} returned {type(out).__name__}; expected bool, number, dict or Verdict")


def as_evaluator(value: Evaluator | Callable[[RunRecord], Any] | None) -> Evaluator | None:
    """Accept an evaluator, a plain function, or ``None``."""
    if value is None or isinstance(value, Evaluator):
        return value
    if callable(value):
        return CallableEvaluator(value)
    raise TypeError(f"not an evaluator: {value!r}")
