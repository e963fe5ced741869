from __future__ import annotations

import pytest
from pydantic import ValidationError

from seer_langgraph import Experience, Step, UnknownIntentError
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.experience import truncate_observation, validate_tenant
from seer_langgraph.intent import IntentClassifier, IntentSet
from seer_langgraph.pool import RecalledExperience
from seer_langgraph.render import render_examples
from seer_langgraph.testing import ScriptedChatModel


def test_content_hash_is_stable_and_ignores_counters():
    a = Experience(request="r", steps=[Step(tool="t", args={"b": 1, "a": 2})], answer="x")
    b = Experience(request="r", steps=[Step(tool="t", args={"a": 2, "b": 1})], answer="x", usage={"recalled": 5})
    assert a.id == b.id and a.content_hash == b.content_hash
    assert a.id != Experience(request="r", steps=[], answer="x").id
    assert a.id != Experience(request="r", steps=a.steps, answer="x", tenant="other").id


def test_bad_records_are_refused():
    with pytest.raises(ValidationError, match="request is empty"):
        Experience(request="   ")
    with pytest.raises(ValidationError, match="invalid tenant"):
        Experience(request="r", tenant="a/b")
    with pytest.raises(ValidationError, match="does not match"):
        Experience(request="r", answer="x", content_hash="0" * 64)
    with pytest.raises(ValidationError):
        Step(tool="", args={})
    for bad in ["", "x" * 129, "-lead", "white space", "semi;colon", None]:
        with pytest.raises(ValueError):
            validate_tenant(bad)


def test_truncation_keeps_values_used_later():
    long_obs = "header " + "filler " * 100 + "unit_price=17.25 " + "more " * 100
    exp = Experience(
        request="cost of 3?",
        steps=[Step(tool="get_item", args={"id": 1}, observation=long_obs), Step(tool="multiply", args={"a": 17.25, "b": 3}, observation="51.75")],
        answer="51.75",
    )
    short = exp.truncated(100)
    assert len(short.steps[0].observation) < 200 and "17.25" in short.steps[0].observation
    assert truncate_observation("abc", 10) == "abc"
    assert truncate_observation("a" * 50, 10) == "a" * 10 + " …"


def test_render_shows_calls_observations_answer_and_scores():
    exp = Experience(request="r?", steps=[Step(tool="t", args={"x": 1}, observation="obs", error=True)], answer="ans")
    rec = [RecalledExperience(experience=exp, s1=0.5, s2=1.0, s3=1.0, score=2.5)]
    plain = render_examples(rec, style="plain", include_errors=True)
    assert 'Step 1 tool call: call t with {"x": 1}' in plain and "Observation (error): obs" in plain and "Final answer: ans" in plain
    assert "Step 1" not in render_examples(rec)  # failed steps are left out by default
    ok = Experience(request="r?", steps=[Step(tool="t", args={"x": 1}, observation="obs")], answer="ans")
    rec = [RecalledExperience(experience=ok, s1=0.5, s2=1.0, s3=1.0, score=2.5)]
    assert 'Step 1 tool call: {"name": "t", "arguments": {"x": 1}}' in render_examples(rec)
    assert '<tool_call>\n{"name": "t", "arguments": {"x": 1}}\n</tool_call>' in render_examples(rec, style="hermes")
    assert "<tool_response>\nobs\n</tool_response>" in render_examples(rec, style="hermes")
    assert render_examples([]) == ""
    with pytest.raises(ValueError, match="render style"):
        render_examples(rec, style="xml")


def test_intent_set_validation_and_fallbacks():
    intents = IntentSet.from_dict({"cancel_order": "cancel an order", "book_flight": "book a flight ticket"})
    assert intents.validate_label("book_flight") == "book_flight"
    with pytest.raises(UnknownIntentError, match="cancel_order"):
        intents.validate_label("refund")
    with pytest.raises(ValidationError):
        IntentSet.from_dict({"bad label": "x"})
    clf = IntentClassifier(intents, model=ScriptedChatModel(responses=["book_flight", "gibberish"]), embeddings=HashingEmbeddings())
    assert clf.classify("please cancel my order").model_dump() == {"label": "book_flight", "source": "model"}
    assert clf.classify("please cancel my order").model_dump() == {"label": "cancel_order", "source": "embedding"}
    broken = IntentClassifier(intents, model=ScriptedChatModel(responses=[]), embeddings=None)
    assert broken.classify("x").model_dump() == {"label": None, "source": "none"}


def test_render_says_where_values_came_from():
    exp = Experience(
        request="How much do 9 units of 'copper desk' cost?",
        steps=[
            Step(tool="find_product", args={"name": "copper desk"}, observation='{"product_id": "P-119", "price": 110.29}'),
            Step(tool="calculator", args={"expression": "9 * 110.29"}, observation="992.61"),
        ],
        answer="992.61",
    )
    text = render_examples([RecalledExperience(experience=exp, s1=1, s2=1, s3=1, score=3)])
    assert "(values: copper desk from the request)" in text
    assert "(values: 9 from the request; 110.29 from step 1's observation)" in text
    assert "Final answer: 992.61   (from step 2's observation)" in text
    assert "(values" not in render_examples([RecalledExperience(experience=exp, s1=1, s2=1, s3=1, score=3)], annotate=False)


def test_examples_end_with_the_method_from_where_the_run_stands():
    """Stepwise: before each model step the footer outlines the best example's remaining method."""
    from langchain_core.messages import AIMessage, ToolMessage
    from langchain_core.tools import tool

    from seer_langgraph import open_pool
    from seer_langgraph.config import SeerConfig
    from seer_langgraph.graph import create_seer_agent
    from seer_langgraph.render import EXAMPLES_FOOTER, next_step_note
    from seer_langgraph.testing import tool_call

    @tool
    def find_product(name: str) -> dict:
        """Look up a product."""
        return {"name": name, "price": 4.0}

    @tool
    def calculator(expression: str) -> float:
        """Arithmetic."""
        return 12.0

    pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64))
    pool.commit(Experience(request="cost of 2 'red pen'?", answer="5.0", steps=[
        Step(tool="find_product", args={"name": "red pen"}, observation='{"name": "red pen", "price": 2.5}'),
        Step(tool="calculator", args={"expression": "2 * 2.5"}, observation="5.0")]))
    model = ScriptedChatModel(responses=[tool_call("find_product", name="blue pen"), tool_call("calculator", expression="3 * 4.0"), "12.0"])
    agent = create_seer_agent(model, [find_product, calculator], pool, config=SeerConfig(k=1))
    out = agent.invoke({"messages": [("user", "cost of 3 'blue pen'?")]})
    assert isinstance(out["messages"][-1], AIMessage) and isinstance(out["messages"][-2], ToolMessage)
    first, second, third = (p[0].content for p in model.prompts)
    assert first.endswith(
        f"{EXAMPLES_FOOTER} Example 1's method: step 1 find_product (name from the request) -> step 2 calculator "
        "(expression from the request and step 1's observation) -> answer from step 2's observation.")
    assert "made 1 tool call so far (find_product). Example 1's method from here: step 2 calculator" in second
    assert "Begin with your first tool call" not in second
    assert third.endswith("made 2 tool calls so far (find_product -> calculator). Example 1 gave its final answer at this point (from step 2's observation).")
    # an example whose method went another way gets no outline; failed calls do not count as progress
    other = RecalledExperience(experience=Experience(request="r", steps=[Step(tool="get_order")], answer="x"), s1=1, s2=0, s3=0, score=1)
    assert next_step_note([other], ["find_product"]) == "The current task has made 1 tool call so far (find_product)."


def test_follow_examples_requires_a_call_only_while_a_matching_example_continued():
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    from seer_langgraph.config import SeerConfig
    from seer_langgraph.nodes import must_call_tool

    exp = Experience(request="r", steps=[Step(tool="find"), Step(tool="calculator")], answer="1")
    ex = [RecalledExperience(experience=exp, s1=1, s2=1, s3=0, score=2)]

    def turn(*tools, error=False):
        msgs = [HumanMessage("q")]
        for i, t in enumerate(tools):
            msgs += [AIMessage("", tool_calls=[{"name": t, "args": {}, "id": f"c{i}"}]),
                     ToolMessage("boom" if error else "ok", tool_call_id=f"c{i}", status="error" if error else "success")]
        return msgs

    on, off = SeerConfig(follow_examples=True), SeerConfig()
    assert must_call_tool(turn("find"), ex, on)  # the example called calculator next
    assert not must_call_tool(turn("find"), ex, off)  # option off
    assert not must_call_tool(turn("find"), [], on)  # no examples (k=0): no effect
    assert not must_call_tool(turn("find", "calculator"), ex, on)  # the example answered here
    assert not must_call_tool(turn("other"), ex, on)  # went another way: the model decides
    assert must_call_tool(turn("find", error=True), ex, on)  # a failed call is not progress: the example's step 1 is still ahead
    assert must_call_tool(turn(), ex, SeerConfig(require_tool_first=True)) and not must_call_tool(turn(), ex, on)


def test_middleware_requires_the_call_too():
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    from langchain_core.tools import tool

    from seer_langgraph import open_pool
    from seer_langgraph.config import SeerConfig
    from seer_langgraph.middleware import SeerMiddleware

    @tool
    def find(q: str) -> str:
        """Find."""
        return q

    exp = Experience(request="r", steps=[Step(tool="find"), Step(tool="find")], answer="1")
    ex = [RecalledExperience(experience=exp, s1=1, s2=1, s3=0, score=2).model_dump(mode="json")]
    mw = SeerMiddleware(open_pool(":memory:", embeddings=HashingEmbeddings(dimension=16)), config=SeerConfig(follow_examples=True))
    msgs = [HumanMessage("q"), AIMessage("", tool_calls=[{"name": "find", "args": {"q": "a"}, "id": "c"}]), ToolMessage("a", tool_call_id="c")]

    class Req:  # the parts of ModelRequest the middleware reads
        def __init__(self, **kw):
            self.__dict__.update({"system_message": None, "tools": [find], "tool_choice": None, "messages": msgs, "state": {"seer_examples": ex}, **kw})

        def override(self, **kw):
            new = Req()
            new.__dict__.update({**self.__dict__, **kw})
            return new

    out = mw._with_examples(Req())
    assert out.tool_choice == "any" and "Example 1 called" not in out.system_message.content
    assert "Example 1's method from here: step 2 find" in out.system_message.content
    assert mw._with_examples(Req(state={"seer_examples": []})).tool_choice is None
