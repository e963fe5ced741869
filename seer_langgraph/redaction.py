"""Redaction of secrets and personal data before an experience is stored.

An agent's trajectories carry whatever its users and tools handed it: API keys pasted into a
request, a token in a tool argument, an e-mail address in an observation. The pool stores them
for good and shows them to later runs (of the same tenant) as worked examples, so
:class:`~seer_langgraph.pool.ExperiencePool` runs a :class:`Redactor` over every experience
before it is embedded, journaled or written -- on by default.

What the default redactor replaces (with ``[REDACTED:<kind>]``):

- API keys and tokens by shape: OpenAI/Anthropic-style ``sk-...``, Stripe ``sk_live_...``, AWS access
  key ids (``AKIA...``/``ASIA...``), GitHub (``ghp_...``, ``github_pat_...``), GitLab ``glpat-...``,
  Slack ``xox?-...``, Google ``AIza...``, JWTs, ``Bearer``/``Basic`` credentials, PEM private keys,
  passwords in URLs (``https://user:pw@host``);
- values of secret-looking keys in text: ``password=...``, ``api_key: ...``, ``"token": "..."``
  (JSON) and similar;
- e-mail addresses and payment card numbers (13-19 digits, a known issuer prefix and a valid Luhn
  checksum, so ordinary long numbers stay);
- in tool arguments and metadata, the whole value of any key whose name looks secret
  (``password``, ``token``, ``api_key``, ``secret``, ``authorization``, ``cookie``, ...), whatever
  its shape.

It applies to the request, every step's arguments and observation, the answer, the verdict's
reason and the metadata. Add your own regular expressions with ``patterns=`` and any last pass
with ``hook=`` (a ``str -> str`` function run on every string). Redaction is idempotent, so a
redacted record redacted again is unchanged (its content hash too).

Example:
    >>> r = Redactor()
    >>> r.redact_text("key sk-abcdefghijklmnopqrstuvwx, mail bob@example.com, password=hunter2")
    'key [REDACTED:api_key], mail [REDACTED:email], password=[REDACTED:password]'
    >>> r.redact_value({"user": "bob", "api_key": 12345})
    {'user': 'bob', 'api_key': '[REDACTED:secret]'}
    >>> r.redact_text("card 4111 1111 1111 1111, order 4111111111111112")
    'card [REDACTED:card], order 4111111111111112'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .experience import Experience

__all__ = ["DEFAULT_PATTERNS", "SECRET_KEY_WORDS", "RedactionPattern", "Redactor", "luhn_ok", "placeholder"]


def placeholder(kind: str) -> str:
    """The text that replaces a secret of ``kind``."""
    return f"[REDACTED:{kind}]"


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum (payment card numbers do).

    >>> luhn_ok("4111111111111111"), luhn_ok("4111111111111112")
    (True, False)
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_ok(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    if not 13 <= len(digits) <= 19 or not luhn_ok(digits):
        return False
    first = digits[0]
    if first in "3456":
        return True
    return first == "2" and 2221 <= int(digits[:4]) <= 2720  # Mastercard 2-series


@dataclass(frozen=True)
class RedactionPattern:
    """A regular expression whose match (or named group ``secret``) is replaced.

    ``check`` may veto a match (e.g. the Luhn test for card numbers).
    """

    kind: str
    regex: re.Pattern[str]
    check: Callable[[str], bool] | None = None

    def apply(self, text: str) -> str:
        has_group = "secret" in self.regex.groupindex
        repl = placeholder(self.kind)

        def sub(m: re.Match[str]) -> str:
            target = m.group("secret") if has_group else m.group(0)
            if target is None or target.startswith("[REDACTED:"):
                return m.group(0)
            if self.check is not None and not self.check(target):
                return m.group(0)
            if not has_group:
                return repl
            s, e = m.span("secret")
            base = m.start(0)
            whole = m.group(0)
            return whole[: s - base] + repl + whole[e - base :]

        return self.regex.sub(sub, text)


# Secret-looking key names, compared after lower-casing and removing everything but letters and
# digits ("X-Api-Key" -> "xapikey"). A key is secret when it contains one of these.
SECRET_KEY_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "authorization",
    "credential",
    "cookie",
    "sessionid",
    "cvv",
    "cvc",
)
_SECRET_KEY_EXACT = {"pwd", "pass", "pin", "auth", "otp", "ssn", "iban"}
_NOT_SECRET_KEYS = {
    "maxtokens",
    "maxnewtokens",
    "maxoutputtokens",
    "maxcompletiontokens",
    "numtokens",
    "ntokens",
    "tokens",
    "tokencount",
    "tokenlimit",
    "totaltokens",
    "prompttokens",
    "completiontokens",
    "tokenizer",
}

# Key names recognised inside free text (key=value, key: value, "key": "value").
_TEXT_KEYS = (
    r"(?:[A-Za-z0-9]{1,32}[_-]){0,4}(?:password|passwd|passphrase|pwd|secret|client[_-]?secret|api[_-]?key|apikey|"
    r"access[_-]?key(?:[_-]?id)?|secret[_-]?key|private[_-]?key|(?:access|refresh|auth|session|id|bearer)?[_-]?token|"
    r"credentials?|authorization)"
)
# a value: JSON-escaped quotes (JSON inside a JSON string), double, single quotes, or bare
_QUOTED_OR_BARE = (
    r"""(?:\\"(?P<eq>[^"\\\n]{0,512})\\"|"(?P<dq>(?:[^"\\\n]|\\.){0,512})"|'(?P<sq>[^'\n]{0,512})'"""
    r"""|(?P<bare>[^\s"'\\,;&}\])]{1,512}))"""
)


def _kv_pattern() -> re.Pattern[str]:
    return re.compile(
        r"(?<![A-Za-z0-9])(?P<key>" + _TEXT_KEYS + r")(?:\\?[\"'])?\s{0,8}(?:=|:)\s{0,8}" + _QUOTED_OR_BARE,
        re.IGNORECASE,
    )


_KV = _kv_pattern()


def _redact_kv(text: str) -> str:
    """``password=x``, ``api_key: x``, ``"token": "x"`` -> the value replaced, the key kept."""

    def sub(m: re.Match[str]) -> str:
        for group in ("eq", "dq", "sq", "bare"):
            value = m.group(group)
            if value is None:
                continue
            if value.startswith("[REDACTED:") or not value.strip():
                return m.group(0)
            if group == "bare" and value.lower() in ("null", "none", "true", "false", "required", "is", "was", "bearer", "basic", "token"):
                return m.group(0)
            kind = "password" if re.search(r"pass|pwd", m.group("key"), re.IGNORECASE) else "secret"
            s, e = m.span(group)
            base = m.start(0)
            whole = m.group(0)
            return whole[: s - base] + placeholder(kind) + whole[e - base :]
        return m.group(0)

    return _KV.sub(sub, text)


def _tokenish(value: str) -> bool:
    """A credential after ``Bearer``/``Basic`` has a digit or is long (not an ordinary word)."""
    return any(c.isdigit() for c in value) or len(value) >= 20


# Patterns that must run before the key=value pass (their matches contain ':' or '=').
_EARLY_PATTERNS: tuple[RedactionPattern, ...] = (
    RedactionPattern(
        "private_key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----|[\s\S]*)"
        ),
    ),
    RedactionPattern("jwt", re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}")),
    RedactionPattern("token", re.compile(r"(?i)\b(?:bearer|basic)\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})"), check=_tokenish),
    RedactionPattern("url_password", re.compile(r"(?i)\b[a-z][a-z0-9+.-]{0,20}://[^\s:/@]{1,256}:(?P<secret>[^\s@/]{1,256})@")),
)
_LATE_PATTERNS: tuple[RedactionPattern, ...] = (
    RedactionPattern("api_key", re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{16,}")),
    RedactionPattern("api_key", re.compile(r"(?<![A-Za-z0-9])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}")),
    RedactionPattern("aws_key", re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Za-z0-9])")),
    RedactionPattern("github_token", re.compile(r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    RedactionPattern("gitlab_token", re.compile(r"(?<![A-Za-z0-9])glpat-[A-Za-z0-9_-]{20,}")),
    RedactionPattern("slack_token", re.compile(r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}")),
    RedactionPattern("google_key", re.compile(r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{35}")),
    RedactionPattern(
        "email",
        re.compile(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z])"
        ),
    ),
    RedactionPattern("card", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?!\d)"), check=_card_ok),
)
#: The built-in patterns, in the order they run (the key=value pass runs between the two groups).
DEFAULT_PATTERNS: tuple[RedactionPattern, ...] = _EARLY_PATTERNS + _LATE_PATTERNS


def _compile(pattern: str | re.Pattern[str] | RedactionPattern | tuple[str, str | re.Pattern[str]]) -> RedactionPattern:
    if isinstance(pattern, RedactionPattern):
        return pattern
    if isinstance(pattern, tuple):
        kind, rx = pattern
        return RedactionPattern(str(kind), re.compile(rx) if isinstance(rx, str) else rx)
    if isinstance(pattern, (str, re.Pattern)):
        return RedactionPattern("custom", re.compile(pattern) if isinstance(pattern, str) else pattern)
    raise TypeError(f"a redaction pattern is a regex string, a compiled regex or (kind, regex); got {type(pattern).__name__}")


class Redactor:
    """Replaces secrets and personal data in experiences (see the module docs for what).

    Args:
        patterns: extra patterns: regex strings, compiled regexes, ``(kind, regex)`` pairs or
            :class:`RedactionPattern`. A named group ``secret`` limits the replacement to it.
        secret_keys: extra key names whose values are always redacted in arguments and metadata.
        hook: a function run on every string after the patterns (your own scrubber).
        defaults: use the built-in patterns (``False`` keeps only yours).
        emails: redact e-mail addresses.
        cards: redact payment card numbers.
    """

    def __init__(
        self,
        *,
        patterns: Iterable[str | re.Pattern[str] | RedactionPattern | tuple[str, str | re.Pattern[str]]] = (),
        secret_keys: Sequence[str] = (),
        hook: Callable[[str], str] | None = None,
        defaults: bool = True,
        emails: bool = True,
        cards: bool = True,
    ) -> None:
        keep = lambda p: (emails or p.kind != "email") and (cards or p.kind != "card")  # noqa: E731
        self.defaults = defaults
        self.cards = cards
        custom = tuple(_compile(p) for p in patterns)
        self.patterns: tuple[RedactionPattern, ...] = (DEFAULT_PATTERNS if defaults else ()) + custom
        passes: list[Callable[[str], str]] = []
        if defaults:
            passes += [p.apply for p in _EARLY_PATTERNS if keep(p)]
            passes.append(_redact_kv)
            passes += [p.apply for p in _LATE_PATTERNS if keep(p)]
        passes += [p.apply for p in custom]
        self._passes = tuple(passes)
        self.secret_keys = {_norm_key(k) for k in secret_keys}
        self.hook = hook

    def __repr__(self) -> str:
        return f"Redactor(patterns={len(self.patterns)}, hook={self.hook is not None})"

    # -- strings and values ---------------------------------------------------------------------
    def redact_text(self, text: str) -> str:
        """``text`` with every secret replaced by ``[REDACTED:<kind>]``."""
        if not isinstance(text, str) or not text:
            return text
        out = text
        for apply in self._passes:
            out = apply(out)
        if self.hook is not None:
            hooked = self.hook(out)
            if not isinstance(hooked, str):
                raise TypeError(f"the redaction hook must return a str, got {type(hooked).__name__}")
            out = hooked
        return out

    def is_secret_key(self, key: Any) -> bool:
        """True when values under this key name are always redacted."""
        norm = _norm_key(key)
        if not norm or norm in _NOT_SECRET_KEYS:
            return False
        if norm in self.secret_keys or norm in _SECRET_KEY_EXACT:
            return True
        return any(word in norm for word in SECRET_KEY_WORDS)

    def redact_value(self, value: Any, key: Any = None) -> Any:
        """Redact a JSON-like value: secret keys whole, strings by pattern, card-like integers."""
        if key is not None and self.is_secret_key(key) and value is not None and not isinstance(value, bool):
            if isinstance(value, str) and (not value.strip() or value.startswith("[REDACTED:")):
                return value
            return placeholder("secret")
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return {k: self.redact_value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        if isinstance(value, tuple):
            return [self.redact_value(v) for v in value]
        if isinstance(value, int) and not isinstance(value, bool) and self.defaults and self.cards and 10**12 <= abs(value) < 10**20:
            return placeholder("card") if _card_ok(str(abs(value))) else value
        return value

    # -- experiences ----------------------------------------------------------------------------
    def __call__(self, experience: "Experience") -> "Experience":
        return self.redact_experience(experience)

    def redact_experience(self, experience: "Experience") -> "Experience":
        """A copy of ``experience`` with secrets replaced (the same object when there were none).

        The content hash and id are computed again over the redacted content.
        """
        from .experience import Experience

        data = experience.model_dump(mode="json")
        new = dict(data)
        new["request"] = self.redact_text(data["request"])
        new["answer"] = self.redact_text(data["answer"])
        new["steps"] = [
            {**s, "args": self.redact_value(s.get("args") or {}), "observation": self.redact_text(s.get("observation") or "")}
            for s in data["steps"]
        ]
        verdict = dict(data["verdict"])
        verdict["reason"] = self.redact_text(verdict.get("reason") or "")
        new["verdict"] = verdict
        new["metadata"] = self.redact_value(data.get("metadata") or {})
        if new == data:
            return experience
        new["id"] = ""
        new["content_hash"] = ""
        if not new["request"].strip():
            new["request"] = placeholder("request")
        return Experience.model_validate(new)


def _norm_key(key: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(key).lower())
