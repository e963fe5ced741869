"""ChatLocalLlama: request building, parsing and streaming on a fake server; the real model (slow)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool

from seer_langgraph.local.chat import ChatLocalLlama, LocalModelError, _convert_message
from seer_langgraph.local.models import load_chat_model
from seer_langgraph.local.weights import model_path


@tool
def get_weather(city: str, days: int = 1) -> str:
    """Get the weather forecast for a city for a number of days."""
    return f"sunny in {city} for {days} days"


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return "42"


FENCED_CALL = '```json\n{\n  "name": "get_weather",\n  "arguments": {\n    "city": "Paris",\n    "days": "3"\n  }\n}\n```'


class FakeServer:
    """Stands in for xllamacpp.Server: replays a text as a completion or a token stream."""

    def __init__(self, text: str, *, delay: float = 0.0) -> None:
        self.text = text
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.stopped_early = False

    def handle_chat_completions(self, req: dict[str, Any], callback: Any = None) -> Any:
        self.requests.append(json.loads(json.dumps(req)))  # what goes over the wire is JSON
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if not req.get("stream"):
            return {
                "id": "chatcmpl-1",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": self.text}}],
                "usage": usage,
                "timings": {"predicted_per_second": 30.0},
            }
        assert callback is not None
        pieces = [self.text[i : i + 3] for i in range(0, len(self.text), 3)]
        chunks = [{"id": "chatcmpl-2", "choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]}]
        chunks += [{"id": "chatcmpl-2", "choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
        chunks += [{"id": "chatcmpl-2", "choices": [{"index": 0, "finish_reason": "stop", "delta": {}}]}]
        chunks += [{"id": "chatcmpl-2", "choices": [], "usage": usage, "timings": {"predicted_per_second": 30.0}}]
        for chunk in chunks:
            if self.delay:
                time.sleep(self.delay)
            if callback(chunk):
                self.stopped_early = True
                return None
        return None


def fake_model(text: str, delay: float = 0.0, **kwargs: Any) -> tuple[ChatLocalLlama, FakeServer]:
    llm = ChatLocalLlama(model_path="/nonexistent/fake.gguf", **kwargs)
    server = FakeServer(text, delay=delay)
    llm._holder.server = server  # skip the lazy start
    return llm, server


def add_up(chunks: list[Any]) -> AIMessageChunk:
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    return total


def test_construction_is_lazy_and_has_defaults() -> None:
    llm = ChatLocalLlama()
    assert llm._holder.server is None
    assert llm.model == "qwen2.5-coder-1.5b" and llm.n_ctx == 8192 and llm.temperature == 0.0
    assert ChatLocalLlama(model="qwen2.5-0.5b").model == "qwen2.5-0.5b"


def test_server_params_are_loopback_and_explicit() -> None:
    pytest.importorskip("xllamacpp")
    llm = ChatLocalLlama(n_ctx=4096, n_threads=2, seed=5, max_tokens=77)
    p = llm._build_params("/x.gguf")
    assert list(p.hostnames) == ["127.0.0.1"] and p.port == 0
    assert p.n_ctx == 4096 and p.cpuparams.n_threads == 2 and p.cpuparams_batch.n_threads == 2
    assert p.n_predict == 77 and p.sampling.seed == 5 and list(p.api_keys) and p.ui is False


def test_messages_are_converted_and_args_encoded_once() -> None:
    ai = AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris", "days": 3}, "id": "c1"}])
    d = _convert_message(ai)
    args = d["tool_calls"][0]["function"]["arguments"]
    assert isinstance(args, str) and json.loads(args) == {"city": "Paris", "days": 3}
    assert _convert_message(ToolMessage("sunny", tool_call_id="c1")) == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
    assert _convert_message(HumanMessage([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]))["content"] == "ab"
    with pytest.raises(ValueError, match="text content only"):
        _convert_message(HumanMessage([{"type": "image_url", "image_url": {"url": "x"}}]))


def test_generate_parses_fenced_call_into_dict_args() -> None:
    llm, server = fake_model(FENCED_CALL)
    msg = llm.bind_tools([get_weather]).invoke([SystemMessage("be brief"), HumanMessage("weather in Paris for 3 days?")])
    assert msg.tool_calls == [{"name": "get_weather", "args": {"city": "Paris", "days": 3}, "id": msg.tool_calls[0]["id"], "type": "tool_call"}]
    assert msg.content == "" and msg.response_metadata["finish_reason"] == "tool_calls"
    assert msg.usage_metadata == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    req = server.requests[0]
    assert req["tools"][0]["function"]["name"] == "get_weather"
    assert req["tool_choice"] == "none"  # llama.cpp's own parser off; we parse
    assert req["temperature"] == 0.0 and req["max_tokens"] == 512 and req["stream"] is False


def test_history_with_tool_calls_round_trips() -> None:
    llm, server = fake_model("It is sunny in Paris.")
    history = [
        HumanMessage("weather?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]),
        ToolMessage("sunny", tool_call_id="c1"),
    ]
    msg = llm.bind_tools([get_weather]).invoke(history)
    assert msg.content == "It is sunny in Paris." and not msg.tool_calls
    sent = server.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}


def test_invalid_call_is_reported_not_raised() -> None:
    llm, _ = fake_model('<tool_call>{"name": "get_weather", "arguments": {"days": 2}}</tool_call>')
    msg = llm.bind_tools([get_weather]).invoke("x")
    assert not msg.tool_calls
    assert "missing required argument 'city'" in msg.invalid_tool_calls[0]["error"]


def test_no_tools_means_no_parsing() -> None:
    llm, server = fake_model('{"name": "get_weather", "arguments": {"city": "Paris"}}')
    msg = llm.invoke("x")
    assert msg.content.startswith('{"name"') and not msg.tool_calls
    assert "tools" not in server.requests[0]


def test_tool_choice_none_and_required() -> None:
    llm, server = fake_model('"city": "Oslo"}}')
    msg = llm.bind_tools([get_weather, calculator], tool_choice="get_weather").invoke("x")
    last = server.requests[-1]["messages"][-1]
    assert last == {"role": "assistant", "content": '<tool_call>\n{"name": "get_weather", "arguments": '}
    # the forced prefix is joined with the continuation (which llama.cpp may return alone)
    server.text = '{"city": "Oslo"}}'
    msg = llm.bind_tools([get_weather, calculator], tool_choice="get_weather").invoke("x")
    assert msg.tool_calls[0]["args"] == {"city": "Oslo"}
    server.text = FENCED_CALL
    msg = llm.bind_tools([get_weather], tool_choice="none").invoke("x")
    assert not msg.tool_calls
    with pytest.raises(ValueError, match="not among the bound tools"):
        llm.bind_tools([get_weather], tool_choice="nope")


def test_per_call_overrides_and_stop() -> None:
    llm, server = fake_model("ok", stop=["END"])
    llm.invoke("x", temperature=0.7, max_tokens=5, seed=3, top_p=0.9)
    req = server.requests[0]
    assert (req["temperature"], req["max_tokens"], req["seed"], req["top_p"], req["stop"]) == (0.7, 5, 3, 0.9, ["END"])


def test_stream_without_tools_passes_every_delta() -> None:
    llm, _ = fake_model("Hello there, world.")
    chunks = list(llm.stream("hi"))
    assert len(chunks) > 3
    total = add_up(chunks)
    assert total.content == "Hello there, world."
    assert total.usage_metadata and total.usage_metadata["total_tokens"] == 15


@pytest.mark.parametrize(
    "text",
    [FENCED_CALL, "Sure, let me check.\n\n" + FENCED_CALL, "No tools needed: 4.", 'Calling {"name": "get_weather", "arguments": {"city": "Paris"}} now.'],
)
def test_stream_with_tools_matches_invoke(text: str) -> None:
    llm, _ = fake_model(text)
    bound = llm.bind_tools([get_weather])
    full = bound.invoke("x")
    total = add_up(list(bound.stream("x")))
    assert total.content == full.content
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [(c["name"], c["args"]) for c in full.tool_calls]


def test_stream_keeps_invalid_calls_invalid() -> None:
    llm, _ = fake_model('{"name": "get_wether", "arguments": {"city": "Paris"}}')
    total = add_up(list(llm.bind_tools([get_weather]).stream("x")))
    assert not total.tool_calls
    assert total.invalid_tool_calls and total.invalid_tool_calls[0]["name"] == "get_wether"
    assert "unknown tool" in (total.invalid_tool_calls[0]["args"] or "")


def test_stream_stops_generation_when_consumer_stops() -> None:
    llm, server = fake_model("a" * 300, delay=0.001)
    it = llm.stream("x")
    next(it)
    it.close()
    assert server.stopped_early


def test_errors_become_local_model_error() -> None:
    llm, server = fake_model("x")

    def boom(req: dict[str, Any], callback: Any = None) -> Any:
        raise RuntimeError("The model produced output that does not match")

    server.handle_chat_completions = boom  # type: ignore[method-assign]
    with pytest.raises(LocalModelError, match="does not match"):
        llm.invoke("x")
    with pytest.raises(LocalModelError):
        list(llm.stream("x"))
    server.handle_chat_completions = lambda req, cb=None: {"error": {"message": "context too long"}}  # type: ignore[method-assign]
    with pytest.raises(LocalModelError, match="context too long"):
        llm.invoke("x")


@pytest.mark.asyncio
async def test_async_does_not_block_the_event_loop() -> None:
    llm, _ = fake_model(FENCED_CALL)
    slow = FakeServer(FENCED_CALL, delay=0.02)
    original = slow.handle_chat_completions

    def blocking(req: dict[str, Any], callback: Any = None) -> Any:
        time.sleep(0.3)  # a native call that holds its thread, not the loop
        return original(req, callback)

    slow.handle_chat_completions = blocking  # type: ignore[method-assign]
    llm._holder.server = slow
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    bound = llm.bind_tools([get_weather])
    msg = await bound.ainvoke("x")
    chunks = [c async for c in bound.astream("x")]
    stop.set()
    await task
    assert msg.tool_calls[0]["args"]["city"] == "Paris"
    assert add_up(chunks).tool_calls[0]["args"] == {"city": "Paris", "days": 3}
    assert ticks > 20, "the event loop was blocked"


def test_load_chat_model_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(load_chat_model("local"), ChatLocalLlama)
    assert load_chat_model("local:qwen2.5-coder-1.5b").model == "qwen2.5-coder-1.5b"
    assert load_chat_model("local:qwen2.5-0.5b", max_tokens=9).max_tokens == 9
    with pytest.raises(KeyError):
        load_chat_model("local:nope")
    with pytest.raises(ValueError):
        load_chat_model("anthropic:claude")
    with pytest.raises(ValueError):
        load_chat_model("openai:")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    openai_model = load_chat_model("openai:gpt-4o-mini")
    assert type(openai_model).__name__ == "ChatOpenAI" and openai_model.model_name == "gpt-4o-mini"


def test_package_exports_are_lazy() -> None:
    import seer_langgraph.local as local

    assert "ChatLocalLlama" in dir(local)
    assert local.load_chat_model is load_chat_model
    with pytest.raises(AttributeError):
        local.does_not_exist  # noqa: B018


# ---------------------------------------------------------------------------- the real model

REAL = model_path("qwen2.5-coder-1.5b")


@pytest.fixture(scope="module")
def real_llm() -> Any:
    if not REAL.is_file():
        pytest.skip(
            f"the real model is not cached at {REAL}; fetch it once with "
            "`python -m seer_langgraph.local.weights` (tests never download)"
        )
    pytest.importorskip("xllamacpp", reason="the `local` extra (xllamacpp) is not installed")
    llm = ChatLocalLlama(model_path=str(REAL), max_tokens=64, n_ctx=4096, seed=0)
    yield llm
    llm.close()


@pytest.mark.slow
def test_real_model_tool_call_and_stream(real_llm: ChatLocalLlama) -> None:
    bound = real_llm.bind_tools([get_weather])
    msg = bound.invoke("What's the weather in Paris for the next 3 days?")
    assert msg.tool_calls and msg.tool_calls[0]["name"] == "get_weather"
    assert msg.tool_calls[0]["args"]["city"] == "Paris" and isinstance(msg.tool_calls[0]["args"], dict)
    address = real_llm._holder.server.listening_address
    assert address.startswith("http://127.0.0.1:")
    assert real_llm.load_seconds is not None and real_llm.load_seconds < 60
    total = add_up(list(bound.stream("What's the weather in Paris for the next 3 days?")))
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [(c["name"], c["args"]) for c in msg.tool_calls]


@pytest.mark.slow
def test_real_model_plain_and_async(real_llm: ChatLocalLlama) -> None:
    msg = real_llm.invoke("Reply with the single word: yes", max_tokens=4)
    assert "yes" in msg.content.lower()
    assert msg.usage_metadata and msg.usage_metadata["output_tokens"] >= 1
    amsg = asyncio.run(real_llm.ainvoke("Reply with the single word: yes", max_tokens=4))
    assert amsg.content == msg.content  # temperature 0, same seed


@pytest.mark.slow
def test_real_model_concurrent_threads(real_llm: ChatLocalLlama) -> None:
    out: list[str] = []
    threads = [threading.Thread(target=lambda: out.append(real_llm.invoke("Say hi", max_tokens=3).content)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 2


def test_copies_share_the_server_unless_load_settings_differ() -> None:
    pytest.importorskip("xllamacpp")
    llm, server = fake_model("ok")
    llm._holder.key = llm._server_key()
    warm = llm.model_copy(update={"temperature": 0.7, "seed": 3})
    assert warm._get_server() is server
    warm.invoke("x")
    assert server.requests[-1]["temperature"] == 0.7 and server.requests[-1]["seed"] == 3
    other = llm.model_copy(update={"n_ctx": 1024})
    assert other._holder is llm._holder  # until it is used
    other._resolve_path = lambda: (_ for _ in ()).throw(LocalModelError("would load"))  # type: ignore[method-assign]
    with pytest.raises(LocalModelError, match="would load"):
        other._get_server()
    assert other._holder is not llm._holder and llm._get_server() is server


def test_with_structured_output_uses_a_forced_call() -> None:
    from pydantic import BaseModel

    class Person(BaseModel):
        """A person."""

        name: str
        age: int

    llm, server = fake_model('{"name": "Ada", "age": "36"}}\n</tool_call>')
    person = llm.with_structured_output(Person).invoke("Ada is 36.")
    assert person == Person(name="Ada", age=36)
    req = server.requests[-1]
    assert req["messages"][-1]["content"].startswith('<tool_call>\n{"name": "Person"')
    assert not any(k.startswith("ls_") for k in req)


def _gguf_with_template(path: Any, template: str) -> None:
    import struct

    def s(x: str) -> bytes:
        b = x.encode()
        return struct.pack("<Q", len(b)) + b

    kvs = [s("general.architecture") + struct.pack("<I", 8) + s("qwen2"), s("tokenizer.chat_template") + struct.pack("<I", 8) + s(template)]
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))


def test_template_slip_is_fixed(tmp_path: Any) -> None:
    from seer_langgraph.local.chat import _fixed_chat_template

    slip = '<tool_call>\\n{{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}}\\n</tool_call>'
    _gguf_with_template(tmp_path / "a.gguf", "{%- if tools %}" + slip + "{%- endif %}")
    fixed = _fixed_chat_template(str(tmp_path / "a.gguf"))
    assert fixed == '{%- if tools %}<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call>{%- endif %}'
    _gguf_with_template(tmp_path / "b.gguf", "{{ messages }}")
    assert _fixed_chat_template(str(tmp_path / "b.gguf")) is None
    assert _fixed_chat_template(str(tmp_path / "missing.gguf")) is None


def test_missing_extra_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # as if the `local` extra were not installed
    llm = load_chat_model("local")
    with pytest.raises(ImportError, match=r"seer-langgraph\[local\]"):
        llm.invoke("hi")
