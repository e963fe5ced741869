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
