"""A lenient parser for tool calls written as text by small local models.

Small models (e.g. Qwen2.5-Coder-1.5B) rarely emit well-formed ``<tool_call>`` tags: they write
the call as a fenced ```json block or as a bare JSON object. :func:`parse_tool_calls` looks, in
this order, for

1. hermes tags ``<tool_call>{...}</tool_call>`` (an unclosed last tag is accepted too);
2. fenced code blocks (```json, ```tool_call or unlabelled) holding a call-shaped object;
3. bare JSON objects naming a known tool.

The first stage that finds anything wins. Call objects may be ``{"name", "arguments"}``, use
``"parameters"``/``"args"``/``"input"`` instead of ``"arguments"``, give arguments as a JSON string,
or use the OpenAI shape ``{"type": "function", "function": {...}}``; a list of them is several calls.
Arguments are validated against the tool's JSON schema (required keys, basic types, enums) and
coerced where that is unambiguous (``"3"`` -> ``3`` for an integer). Anything malformed becomes a
LangChain ``invalid_tool_calls`` entry with a readable error, never an exception.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import InvalidToolCall, ToolCall
from langchain_core.messages.tool import invalid_tool_call, tool_call

__all__ = [
    "ParsedToolCalls",
    "build_tool_calls",
    "normalize_tools",
    "parse_tool_calls",
    "validate_arguments",
]

_ARG_KEYS = ("arguments", "parameters", "args", "input", "tool_input", "kwargs")
_NAME_KEYS = ("name", "tool", "tool_name", "function_name")
_CALL_KEYS = set(_ARG_KEYS) | set(_NAME_KEYS) | {"id", "type", "function", "call_id"}
_FENCE_LANGS = {"", "json", "json5", "tool_call", "tool_calls", "tool", "tools", "function", "functioncall", "function_call"}

_HERMES_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_\-]*)[ \t]*\n?(.*?)(?:```|$)", re.DOTALL)


@dataclass
class ParsedToolCalls:
    """The result of :func:`parse_tool_calls`."""

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)

    @property
    def has_calls(self) -> bool:
        """True if any call (valid or not) was found."""
        return bool(self.tool_calls or self.invalid_tool_calls)


def _new_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


# --------------------------------------------------------------------------------------
# Tools -> {name: parameters schema}
# --------------------------------------------------------------------------------------


def normalize_tools(tools: Any) -> dict[str, dict[str, Any]] | None:
    """Map tool name -> JSON schema of its parameters.

    Accepts OpenAI tool dicts, anything ``convert_to_openai_tool`` accepts (BaseTool,
    functions, pydantic models), or a mapping name -> schema. ``None`` stays ``None``
    (meaning: accept any tool name, no validation).
    """
    if tools is None:
        return None
    if isinstance(tools, Mapping) and not ("type" in tools or "function" in tools or "name" in tools):
        return {str(k): dict(v or {}) for k, v in tools.items()}
    if isinstance(tools, Mapping):
        tools = [tools]
    from langchain_core.utils.function_calling import convert_to_openai_tool

    out: dict[str, dict[str, Any]] = {}
    for tool in tools:
        spec = tool if isinstance(tool, Mapping) and tool.get("type") == "function" else convert_to_openai_tool(tool)
        fn = spec.get("function", spec)
        out[str(fn["name"])] = dict(fn.get("parameters") or {"type": "object", "properties": {}})
    return out


# --------------------------------------------------------------------------------------
# Lenient JSON
# --------------------------------------------------------------------------------------

_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _loads_lenient(text: str) -> tuple[Any, str | None]:
    """Parse JSON leniently: trailing commas, Python literals, doubled outer braces.

    Returns ``(value, None)`` or ``(None, error message)``.
    """
    text = text.strip()
    if not text:
        return None, "empty tool call"
    candidates = [text]
    if text.startswith("{{") and text.endswith("}}"):
        candidates.append(text[1:-1].strip())  # the 1.5B chat template shows {{"name": ...}}
    first_error = None
    for cand in candidates:
        for attempt in (cand, _TRAILING_COMMA.sub(r"\1", cand)):
            try:
                return json.loads(attempt), None
            except json.JSONDecodeError as exc:
                first_error = first_error or f"invalid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})"
        try:
            value = ast.literal_eval(cand)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            continue
        if isinstance(value, (dict, list)):
            return value, None
    if text.count("{") > text.count("}"):
        return None, f"{first_error} (the JSON looks truncated)"
    return None, first_error


# --------------------------------------------------------------------------------------
# Schema validation and coercion
# --------------------------------------------------------------------------------------

_INT_RE = re.compile(r"^[+-]?\d+$")
_NUM_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MISSING = object()


class _Invalid(Exception):
    pass


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _resolve(schema: Any, root: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/") and depth < 20:
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        merged = {**_resolve(node, root, depth + 1), **{k: v for k, v in schema.items() if k != "$ref"}}
        return merged
    return dict(schema)


def _coerce_to(value: Any, typ: str, path: str) -> Any:
    if typ == "integer":
        if isinstance(value, bool):
            raise _Invalid(f"{path} must be an integer, got a boolean")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT_RE.match(value.strip()):
            return int(value.strip())
        if isinstance(value, str) and _NUM_RE.match(value.strip()) and float(value).is_integer():
            return int(float(value))
    elif typ == "number":
        if isinstance(value, bool):
            raise _Invalid(f"{path} must be a number, got a boolean")
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str) and _INT_RE.match(value.strip()):
            return int(value.strip())
        if isinstance(value, str) and _NUM_RE.match(value.strip()):
            return float(value)
    elif typ == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif typ == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    elif typ == "null":
        if value is None:
            return None
        if isinstance(value, str) and value.strip().lower() in ("null", "none"):
            return None
    elif typ == "array":
        if isinstance(value, (list, tuple)):
            return list(value)
        if isinstance(value, str) and value.strip().startswith("["):
            parsed, err = _loads_lenient(value)
            if err is None and isinstance(parsed, list):
                return parsed
    elif typ == "object":
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, str) and value.strip().startswith("{"):
            parsed, err = _loads_lenient(value)
            if err is None and isinstance(parsed, dict):
                return parsed
    else:  # unknown type keyword: accept as is
        return value
    raise _Invalid(f"{path} must be {'an' if typ[0] in 'aeiou' else 'a'} {typ}, got {_type_name(value)} {value!r}")


def _validate(value: Any, schema: Any, root: Mapping[str, Any], path: str) -> Any:
    schema = _resolve(schema, root)
    if not schema:
        return value
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            errors = []
            for option in options:  # exact matches first, then coercions
                try:
                    return _validate(value, option, root, path)
                except _Invalid as exc:
                    errors.append(str(exc))
            raise _Invalid(errors[0] if len(errors) == 1 else f"{path} matches none of: " + "; ".join(errors))
    if isinstance(schema.get("allOf"), list):
        for option in schema["allOf"]:
            value = _validate(value, option, root, path)
    typ = schema.get("type")
    if isinstance(typ, list):
        exact = [t for t in typ if _type_name(value) == t or (t == "number" and _type_name(value) == "integer")]
        errors = []
        for t in exact + [t for t in typ if t not in exact]:
            try:
                return _validate(value, {**schema, "type": t}, root, path)
            except _Invalid as exc:
                errors.append(str(exc))
        raise _Invalid(errors[0])
    if isinstance(typ, str):
        value = _coerce_to(value, typ, path)
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        # case-insensitive match for strings, e.g. "Paris" vs "paris"
        if isinstance(value, str):
            for option in schema["enum"]:
                if isinstance(option, str) and option.lower() == value.lower():
                    return option
        raise _Invalid(f"{path} must be one of {schema['enum']!r}, got {value!r}")
    if "const" in schema and value != schema["const"]:
        raise _Invalid(f"{path} must be {schema['const']!r}, got {value!r}")
    if isinstance(value, list) and "items" in schema and isinstance(schema["items"], Mapping):
        value = [_validate(v, schema["items"], root, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and (typ == "object" or "properties" in schema):
        value = _validate_object(value, schema, root, path)
    return value


def _validate_object(value: dict[str, Any], schema: Mapping[str, Any], root: Mapping[str, Any], path: str) -> dict[str, Any]:
    props = schema.get("properties") or {}
    required = [r for r in schema.get("required") or [] if isinstance(r, str)]
    prefix = f"{path}." if path else ""
    missing = [r for r in required if r not in value]
    if missing:
        names = ", ".join(repr(f"{prefix}{m}") for m in missing)
        raise _Invalid(f"missing required argument{'s' if len(missing) > 1 else ''} {names}")
    out: dict[str, Any] = {}
    extra = []
    for key, item in value.items():
        if key in props:
            out[key] = _validate(item, props[key], root, f"{prefix}{key}")
        else:
            extra.append(key)
            out[key] = item
    if extra and schema.get("additionalProperties") is False:
        allowed = ", ".join(props) or "none"
        raise _Invalid(f"unexpected argument(s) {', '.join(map(repr, extra))} (allowed: {allowed})")
    return out


def validate_arguments(args: Mapping[str, Any], schema: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """Validate and coerce ``args`` against a JSON schema of an object.

    Returns ``(coerced_args, None)`` or ``(None, error message)``.
    """
    if not schema:
        return dict(args), None
    try:
        result = _validate(dict(args), {"type": "object", **schema}, schema, "")
    except _Invalid as exc:
        return None, str(exc)
    except RecursionError:  # pragma: no cover - pathological schemas
        return None, "schema too deeply nested"
    return result, None


# --------------------------------------------------------------------------------------
# Call objects
# --------------------------------------------------------------------------------------


def _call_name(obj: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """(name, the mapping that holds the arguments) of a call-shaped object."""
    fn = obj.get("function")
    if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
        return fn["name"], fn
    if isinstance(fn, str) and not any(k in obj for k in _NAME_KEYS):
        return fn, obj
    for key in _NAME_KEYS:
        if isinstance(obj.get(key), str):
            return obj[key], obj
    return None, obj


def _is_call_shaped(obj: Any) -> bool:
    """True for ``{"name": str, "arguments"-like: ...}`` with no other foreign keys."""
    if not isinstance(obj, Mapping):
        return False
    name, holder = _call_name(obj)
    if name is None:
        return False
    has_args = any(k in holder for k in _ARG_KEYS)
    return has_args and set(obj) <= _CALL_KEYS


def _raw(obj: Any) -> str:
    try:
        return json.dumps(obj, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(obj)


class _Builder:
    def __init__(self, tools: dict[str, dict[str, Any]] | None, id_factory: Callable[[], str]) -> None:
        self.tools = tools
        self.id_factory = id_factory
        self.calls: list[ToolCall] = []
        self.invalid: list[InvalidToolCall] = []

    def known(self, name: str | None) -> bool:
        return name is not None and (self.tools is None or name in self.tools)

    def is_call(self, obj: Any) -> bool:
        """Call-shaped, or naming a bound tool with its arguments flattened beside the name."""
        if _is_call_shaped(obj):
            return True
        if not isinstance(obj, Mapping) or self.tools is None:
            return False
        name, holder = _call_name(obj)
        if name is None or name not in self.tools:
            return False
        props = set(self.tools[name].get("properties") or {})
        return set(holder) - _CALL_KEYS <= props

    def invalid_call(self, name: str | None, raw: str, error: str) -> None:
        self.invalid.append(invalid_tool_call(name=name, args=raw, id=self.id_factory(), error=error))

    def add(self, obj: Any, raw: str) -> None:
        """Turn one parsed object (or list of them) into valid/invalid calls."""
        if isinstance(obj, list):
            if not obj:
                self.invalid_call(None, raw, "empty list of tool calls")
            for item in obj:
                self.add(item, _raw(item))
            return
        if not isinstance(obj, Mapping):
            self.invalid_call(None, raw, f"a tool call must be a JSON object, got {_type_name(obj)}")
            return
        name, holder = _call_name(obj)
        if name is None:
            self.invalid_call(None, raw, 'tool call has no "name"')
            return
        name = name.strip()
        if not self.known(name):
            available = ", ".join(sorted(self.tools or {})) or "none"
            self.invalid_call(name, raw, f"unknown tool {name!r}; available tools: {available}")
            return
        args_value: Any = _MISSING
        for key in _ARG_KEYS:
            if key in holder:
                args_value = holder[key]
                break
        if args_value is _MISSING:  # arguments flattened beside the name
            args_value = {k: v for k, v in holder.items() if k not in _CALL_KEYS}
        if args_value is None or args_value == "":
            args_value = {}
        for _ in range(2):  # arguments given as a JSON string (possibly encoded twice)
            if isinstance(args_value, str):
                parsed, err = _loads_lenient(args_value)
                if err is not None:
                    self.invalid_call(name, raw, f"arguments of {name!r} are not a JSON object: {err}")
                    return
                args_value = parsed
        if not isinstance(args_value, Mapping):
            self.invalid_call(name, raw, f"arguments of {name!r} must be a JSON object, got {_type_name(args_value)}")
            return
        schema = None if self.tools is None else self.tools.get(name)
        args, err = validate_arguments(args_value, schema)
        if err is not None:
            self.invalid_call(name, raw, f"invalid arguments for {name!r}: {err}")
            return
        call_id = obj.get("id") if isinstance(obj.get("id"), str) and obj.get("id") else self.id_factory()
        self.calls.append(tool_call(name=name, args=args or {}, id=call_id))


# --------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------


def _strip_fence(body: str) -> str:
    m = re.match(r"^```[ \t]*[A-Za-z0-9_\-]*[ \t]*\n?(.*?)(?:```)?\s*$", body.strip(), re.DOTALL)
    return m.group(1) if m else body


def _hermes(text: str, b: _Builder) -> list[tuple[int, int]]:
    spans = []
    for m in _HERMES_RE.finditer(text):
        body = _strip_fence(m.group(1)).strip()
        spans.append(m.span())
        objs = _decode_all(body)
        if objs is None:
            value, err = _loads_lenient(body)
            if err is not None:
                b.invalid_call(_guess_name(body), body, f"could not parse <tool_call>: {err}")
                continue
            objs = [value]
        for obj in objs:
            b.add(obj, _raw(obj))
    return spans


def _decode_all(body: str) -> list[Any] | None:
    """Several JSON values back to back (e.g. two objects in one tag), or None."""
    decoder = json.JSONDecoder()
    out, i = [], 0
    while i < len(body):
        while i < len(body) and body[i] in " \t\r\n,":
            i += 1
        if i >= len(body):
            break
        try:
            value, i = decoder.raw_decode(body, i)
        except json.JSONDecodeError:
            return None
        out.append(value)
    return out or None


_NAME_GUESS = re.compile(r'"(?:name|tool)"\s*:\s*"([^"]+)"')


def _guess_name(body: str) -> str | None:
    m = _NAME_GUESS.search(body)
    return m.group(1) if m else None


def _fenced(text: str, b: _Builder) -> list[tuple[int, int]]:
    spans = []
    for m in _FENCE_RE.finditer(text):
        lang = m.group(1).lower()
        if lang not in _FENCE_LANGS:
            continue
        body = m.group(2).strip()
        if not body.startswith(("{", "[")):
            continue
        several = _decode_all(body)  # e.g. two call objects one after the other in one block
        if several is not None and len(several) > 1 and all(b.is_call(v) for v in several):
            spans.append(m.span())
            b.add(several, body)
            continue
        value, err = _loads_lenient(body)
        if err is not None:
            name = _guess_name(body)
            if name is not None and (b.known(name) or re.search(r'"(?:arguments|parameters|args)"\s*:', body)):
                spans.append(m.span())
                b.invalid_call(name, body, f"could not parse the tool call in a ```{lang or 'code'} block: {err}")
            continue
        items = value if isinstance(value, list) else [value]
        if items and all(b.is_call(v) for v in items):
            spans.append(m.span())
            b.add(value, body)
    return spans


def _code_blocks(text: str) -> list[tuple[int, int]]:
    """Spans of fenced code blocks in a language that never holds a call (python, ...)."""
    return [m.span() for m in _FENCE_RE.finditer(text) if m.group(1).lower() not in _FENCE_LANGS]


def _bare(text: str, b: _Builder) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    decoder = json.JSONDecoder()
    code = _code_blocks(text)
    i = 0
    while True:
        i = text.find("{", i)
        if i < 0:
            break
        inside = next((end for start, end in code if start <= i < end), None)
        if inside is not None:  # JSON inside a python/bash/... block is code, not a call
            i = inside
            continue
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            value, end = None, _balanced_end(text, i)
            if end > 0:  # single quotes, trailing commas, doubled braces ...
                value, err = _loads_lenient(text[i:end])
                if err is not None:
                    end = -1
            if end < 0:
                m = _BROKEN_CALL.match(text, i)
                if m and (b.known(m.group(1)) or _ARGS_KEY.search(text, m.end())):
                    # a call that does not parse (truncated output, bad JSON) runs to the end
                    _, err = _loads_lenient(text[i:])
                    b.invalid_call(m.group(1), text[i:], f"could not parse the tool call: {err}")
                    spans.append((i, len(text)))
                    break
                i += 1
                continue
        if isinstance(value, Mapping) and b.is_call(value):
            # a bound tool, or an unmistakable {"name", "arguments"} call of an unknown one
            b.add(value, text[i:end])
            start = i
            before = text[:i].rstrip()
            if before.endswith("{"):  # '{{"name": ..., "arguments": {...}}': a stray extra brace
                start = len(before) - 1
                after = text[end:]
                if after.lstrip().startswith("}"):
                    end += len(after) - len(after.lstrip()) + 1
            spans.append((start, end))
            i = end
            continue
        i += 1
    return spans


_BROKEN_CALL = re.compile(r'\{\s*"(?:name|tool|tool_name)"\s*:\s*"([^"\n]+)"')
_ARGS_KEY = re.compile(r'"(?:arguments|parameters|args)"\s*:')


def _balanced_end(text: str, start: int) -> int:
    """Index after the brace that closes the one at ``start`` (quotes respected), or -1."""
    depth, quote, escaped = 0, "", False
    for k in range(start, len(text)):
        ch = text[k]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return k + 1
    return -1


def _join(left: str, right: str) -> str:
    """Join the text around a removed call, tidying only the whitespace at the junction."""
    body_l = left.rstrip(" \t")
    body_r = right.lstrip(" \t")
    nl_l = len(body_l) - len(body_l.rstrip("\n"))
    nl_r = len(body_r) - len(body_r.lstrip("\n"))
    body_l, body_r = body_l.rstrip("\n"), body_r.lstrip("\n")
    if not body_l or not body_r:
        return body_l + body_r
    newlines = min(2, nl_l + nl_r)
    if newlines:
        return body_l + "\n" * newlines + body_r
    space = (left != body_l or right != body_r) and body_r[0] not in ".,;:!?)]}"
    return body_l + (" " if space else "") + body_r


_STRAY_TAG = re.compile(r"</?tool_call>")


def _remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """Text without the call spans (and stray tags); whitespace is tidied only where cut."""
    cuts = sorted(list(spans) + [m.span() for m in _STRAY_TAG.finditer(text)])
    if not cuts:
        return text.strip()
    pieces, pos = [], 0
    for start, end in cuts:
        if start < pos:  # overlapping cut
            pos = max(pos, end)
            continue
        pieces.append(text[pos:start])
        pos = end
    pieces.append(text[pos:])
    result = pieces[0]
    for piece in pieces[1:]:
        result = _join(result, piece)
    return result.strip()


def build_tool_calls(objs: Sequence[Any], tools: Any = None, *, id_factory: Callable[[], str] | None = None) -> ParsedToolCalls:
    """Validate already-parsed call objects (e.g. llama.cpp's own ``tool_calls``).

    Each object is ``{"name", "arguments", "id"?}`` with arguments as a dict or JSON string.
    """
    try:
        schemas = normalize_tools(tools)
    except Exception:
        schemas = None
    b = _Builder(schemas, id_factory or _new_id)
    for obj in objs:
        try:
            b.add(obj, _raw(obj))
        except Exception as exc:  # defensive: never raise
            b.invalid_call(None, _raw(obj), f"tool-call parser error: {type(exc).__name__}: {exc}")
    return ParsedToolCalls("", b.calls, b.invalid)


def parse_tool_calls(
    text: str,
    tools: Any = None,
    *,
    id_factory: Callable[[], str] | None = None,
) -> ParsedToolCalls:
    """Extract tool calls from model text; never raises on malformed input.

    ``tools``: OpenAI tool dicts, LangChain tools, or a mapping name -> parameters schema;
    ``None`` accepts any tool name without validation. Returns the text with the calls
    removed, the valid calls (``args`` are dicts, coerced to the schema) and the invalid ones.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    try:
        schemas = normalize_tools(tools)
    except Exception as exc:  # a tool that cannot be converted: parse without validation
        schemas = None
        _ = exc
    b = _Builder(schemas, id_factory or _new_id)
    spans: list[tuple[int, int]] = []
    for stage in (_hermes, _fenced, _bare):
        try:
            spans = stage(text, b)
        except Exception as exc:  # defensive: the parser must never raise
            b.invalid_call(None, text, f"tool-call parser error: {type(exc).__name__}: {exc}")
            spans = []
        if spans or b.calls or b.invalid:
            break
    return ParsedToolCalls(_remove_spans(text, spans), b.calls, b.invalid)
