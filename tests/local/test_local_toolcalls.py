"""Tool-call parser: a corpus of real model outputs and hand-made malformed ones (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import tool

from seer_langgraph.local.toolcalls import (
    build_tool_calls,
    normalize_tools,
    parse_tool_calls,
    validate_arguments,
)

DATA = Path(__file__).parent / "data"
TOOLSETS: dict[str, list[dict[str, Any]]] = json.loads((DATA / "toolsets.json").read_text())
CORPUS: list[dict[str, Any]] = [
    json.loads(line) for line in (DATA / "toolcall_corpus.jsonl").read_text().splitlines() if line.strip()
]


def _ids() -> Any:
    counter = iter(range(10_000))
    return lambda: f"id{next(counter)}"


def test_corpus_has_real_and_synthetic_outputs() -> None:
    sources = {r["source"] for r in CORPUS}
    assert sources == {"model", "synthetic"}
    assert sum(r["source"] == "model" for r in CORPUS) >= 30
    assert {r["model"] for r in CORPUS if r["source"] == "model"} >= {"qwen2.5-coder-1.5b"}


@pytest.mark.parametrize("record", CORPUS, ids=[r["id"] for r in CORPUS])
def test_corpus(record: dict[str, Any]) -> None:
    tools = TOOLSETS[record["toolset"]]
    parsed = parse_tool_calls(record["text"], tools, id_factory=_ids())
    expect = record["expect"]
    assert [{"name": c["name"], "args": c["args"]} for c in parsed.tool_calls] == expect["calls"]
    assert len(parsed.invalid_tool_calls) == len(expect["invalid"]), parsed.invalid_tool_calls
    for want, got in zip(expect["invalid"], parsed.invalid_tool_calls):
        assert got["type"] == "invalid_tool_call"
        assert got["name"] == want["name"]
        assert want["error_contains"] in (got["error"] or ""), got["error"]
        assert isinstance(got["args"], str)
    assert parsed.content == expect["content"]
    for call in parsed.tool_calls:
        assert isinstance(call["args"], dict)
        assert call["id"] and call["type"] == "tool_call"


def test_model_outputs_parse_rate() -> None:
    """Every recorded model output that tries to call a bound tool yields a valid call."""
    model = [r for r in CORPUS if r["source"] == "model"]
    attempted = [r for r in model if any(t["function"]["name"] in r["text"] for t in TOOLSETS[r["toolset"]])]
    parsed = [r for r in attempted if parse_tool_calls(r["text"], TOOLSETS[r["toolset"]]).tool_calls]
    assert len(attempted) >= 25
    assert len(parsed) == len(attempted)


WEATHER = TOOLSETS["weather"]


def test_hermes_wins_over_later_stages() -> None:
    text = '<tool_call>{"name": "get_weather", "arguments": {"city": "A"}}</tool_call>\n```json\n{"name": "get_weather", "arguments": {"city": "B"}}\n```'
    parsed = parse_tool_calls(text, WEATHER)
    assert [c["args"]["city"] for c in parsed.tool_calls] == ["A"]
    assert "```json" in parsed.content


def test_ids_are_unique_and_kept_from_the_object() -> None:
    text = '[{"name": "get_weather", "arguments": {"city": "A"}, "id": "given"}, {"name": "get_weather", "arguments": {"city": "B"}}]'
    parsed = parse_tool_calls(f"```json\n{text}\n```", WEATHER)
    assert parsed.tool_calls[0]["id"] == "given"
    assert parsed.tool_calls[1]["id"].startswith("call_")


def test_tools_none_accepts_any_call_shaped_object() -> None:
    parsed = parse_tool_calls('{"name": "anything", "arguments": {"x": 1}}', None)
    assert parsed.tool_calls[0]["name"] == "anything"
    # but JSON data is not a call when nothing says it is
    assert not parse_tool_calls('{"name": "Alice", "age": 3}', None).has_calls


def test_empty_tool_list_makes_every_call_unknown() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>', [])
    assert parsed.invalid_tool_calls[0]["error"].startswith("unknown tool 'get_weather'; available tools: none")


def test_langchain_tools_and_pydantic_schemas() -> None:
    @tool
    def add(a: int, b: int | None = None) -> int:
        """Add numbers."""
        return a + (b or 0)

    parsed = parse_tool_calls('{"name": "add", "arguments": {"a": "2", "b": null}}', [add])
    assert parsed.tool_calls[0]["args"] == {"a": 2, "b": None}
    parsed = parse_tool_calls('{"name": "add", "arguments": {"a": "2", "b": "x"}}', [add])
    assert "b" in parsed.invalid_tool_calls[0]["error"]


def test_nested_refs_and_additional_properties() -> None:
    schema = {
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/Item"}},
        "required": ["item"],
        "additionalProperties": False,
        "$defs": {"Item": {"type": "object", "properties": {"qty": {"type": "integer"}}, "required": ["qty"]}},
    }
    assert validate_arguments({"item": {"qty": "3"}}, schema) == ({"item": {"qty": 3}}, None)
    args, err = validate_arguments({"item": {}}, schema)
    assert args is None and "item.qty" in (err or "")
    args, err = validate_arguments({"item": {"qty": 1}, "extra": 1}, schema)
    assert args is None and "unexpected argument" in (err or "")


@pytest.mark.parametrize(
    ("value", "schema", "expected"),
    [
        ("3", {"type": "integer"}, 3),
        ("-3", {"type": "integer"}, -3),
        (3.0, {"type": "integer"}, 3),
        ("2.5", {"type": "number"}, 2.5),
        ("7", {"type": "number"}, 7),
        (5, {"type": "string"}, "5"),
        ("FALSE", {"type": "boolean"}, False),
        ("x", {"type": ["integer", "string"]}, "x"),
        ("4", {"type": ["integer", "string"]}, "4"),
        ("null", {"anyOf": [{"type": "integer"}, {"type": "null"}]}, None),
    ],
)
def test_coercions(value: Any, schema: dict[str, Any], expected: Any) -> None:
    args, err = validate_arguments({"v": value}, {"type": "object", "properties": {"v": schema}})
    assert err is None and args == {"v": expected}
    assert type(args["v"]) is type(expected)


@pytest.mark.parametrize(("value", "schema"), [(True, {"type": "integer"}), ("3.5", {"type": "integer"}), ("abc", {"type": "number"}), ([1], {"type": "string"})])
def test_refused_coercions(value: Any, schema: dict[str, Any]) -> None:
    args, err = validate_arguments({"v": value}, {"type": "object", "properties": {"v": schema}})
    assert args is None and err and "v must be" in err


def test_build_tool_calls_validates_native_calls() -> None:
    parsed = build_tool_calls(
        [{"name": "get_weather", "arguments": '{"city": "Oslo", "days": "2"}', "id": "x1"}, {"name": "nope", "arguments": "{}"}],
        WEATHER,
    )
    assert parsed.tool_calls == [{"name": "get_weather", "args": {"city": "Oslo", "days": 2}, "id": "x1", "type": "tool_call"}]
    assert parsed.invalid_tool_calls[0]["name"] == "nope"


def test_normalize_tools_accepts_mapping_of_schemas() -> None:
    assert normalize_tools({"f": {"type": "object"}}) == {"f": {"type": "object"}}
    assert normalize_tools(None) is None
    assert list(normalize_tools(WEATHER) or {}) == ["get_weather"]


@pytest.mark.parametrize(
    "text",
    ["{", "}", "<tool_call>", "</tool_call>", "```", "```json\n{", '{"name": ', "{{{{", '{"name": "get_weather", "arguments": {"city": ["x"]}}', "\x00\x01", "[" * 500 + "]" * 500, '{"name": "get_weather", "arguments": ' + "[" * 2000],
)
def test_never_raises_on_garbage(text: str) -> None:
    parsed = parse_tool_calls(text, WEATHER)
    assert isinstance(parsed.content, str)


def test_never_raises_fuzz() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    pieces = st.sampled_from(['{"name": "get_weather"', '"arguments": {', '"city": "x"', "}", "{", "<tool_call>", "</tool_call>", "```json\n", "```", ",", " ", "\n", '"', "'", "[", "]"])

    @hypothesis.settings(max_examples=300, deadline=None, database=None)
    @hypothesis.given(st.lists(pieces, max_size=25))
    def check(parts: list[str]) -> None:
        parsed = parse_tool_calls("".join(parts), WEATHER)
        for call in parsed.tool_calls:
            assert isinstance(call["args"], dict) and "city" in call["args"]

    check()
