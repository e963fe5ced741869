from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage

from seer_langgraph import Step, Verdict
from seer_langgraph.evaluators import CallableEvaluator, EnvironmentReward, LLMJudge, ReferenceMatch, RunRecord, as_evaluator
from seer_langgraph.testing import ScriptedChatModel


def run(answer, ref=None):
    return RunRecord(request="q", answer=answer, reference=ref, steps=[Step(tool="t", observation="o")])


@pytest.mark.parametrize(
    "mode,answer,ref,ok",
    [
        ("exact", " 42 ", "42", True),
        ("exact", "42.", "42", False),
        ("normalized", "The Eiffel Tower!", "eiffel tower", True),
        ("normalized", "Eiffel", "eiffel tower", False),
        ("contains", "It is the Eiffel Tower.", "eiffel tower", True),
        ("contains", "Eiffel Towers", "eiffel tower", False),
        ("numeric", "Total: 1,234.50 dollars", "1234.5", True),
        ("numeric", "about 1234.49", "1234.5", False),  # strict: a near-miss is a failure
        ("numeric", "5 items cost 12", 12, True),
        ("numeric", "12 for 5 items", 12, False),  # the last number counts
        ("numeric", "no number", "3", False),
        ("normalized", "yes", ["Yes", "y"], True),
    ],
)
def test_reference_match(mode, answer, ref, ok):
    v = ReferenceMatch(mode).evaluate(run(answer, ref))
    assert v.success is ok and v.source == f"reference:{mode}"


def test_reference_match_needs_reference_and_answer():
    assert ReferenceMatch().evaluate(run("x")).success is False
    assert "without an answer" in ReferenceMatch().evaluate(run(None, "x")).reason


def test_llm_judge_with_and_without_reference():
    judge = LLMJudge(ScriptedChatModel(responses=["YES, the answer matches.", "no"]))
    v = judge.evaluate(run("4", "4"))
    assert v.success and v.source == "llm-judge:reference"
    assert judge.evaluate(run("5", "4")).success is False
    assert "Reference answer: 4" in judge.model.prompts[0][-1].content
    free = LLMJudge(ScriptedChatModel(responses=["pass"]), use_reference=False)
    assert free.evaluate(run("4")).success and "Reference answer" not in free.model.prompts[0][-1].content
    assert LLMJudge(ScriptedChatModel(responses=["yes"])).evaluate(run("4")).success is False  # needs the reference


def test_llm_judge_failure_is_a_failed_verdict():
    broken = LLMJudge(ScriptedChatModel(responses=[]), use_reference=False)
    v = broken.evaluate(run("4"))
    assert v.success is False and "judge failed" in v.reason


async def test_async_evaluators():
    assert (await ReferenceMatch().aevaluate(run("a", "a"))).success
    assert (await LLMJudge(ScriptedChatModel(responses=["yes"]), use_reference=False).aevaluate(run("a"))).success


def test_environment_reward_and_callables():
    assert EnvironmentReward(lambda r: 1.0).evaluate(run("a")).success
    assert not EnvironmentReward(lambda r: 0.5).evaluate(run("a")).success
    assert as_evaluator(lambda r: True).evaluate(run("a")).success
    assert not as_evaluator(lambda r: 0).evaluate(run("a")).success
    assert as_evaluator(lambda r: {"success": True, "reason": "ok"}).evaluate(run("a")).reason == "ok"
    assert as_evaluator(lambda r: Verdict(success=True, source="x")).evaluate(run("a")).source == "x"
    with pytest.raises(TypeError, match="expected bool"):
        CallableEvaluator(lambda r: "yes").evaluate(run("a"))
    with pytest.raises(TypeError):
        as_evaluator(42)
