"""Secrets never reach the pool: redaction before commit, on by default, checked on a seeded corpus."""

from __future__ import annotations

import base64
import json
import random
import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from reliability_helpers import FaultyBackend, always, stored_payload_text

from seer_langgraph import Experience, Step, open_pool
from seer_langgraph.durability import RetryPolicy
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.graph import create_seer_agent
from seer_langgraph.redaction import Redactor, luhn_ok
from seer_langgraph.testing import ScriptedChatModel, tool_call

FAST = RetryPolicy(attempts=2, initial_wait=0.001, max_wait=0.002, jitter=0.0)


# -- a seeded corpus of secrets ----------------------------------------------------------------------
def _rand(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16), ("4", 13)])
    while True:
        digits = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix)))
        if luhn_ok(digits):
            break
    style = rng.choice(["plain", "spaces", "dashes"])
    if style == "plain" or length != 16:
        return digits
    groups = [digits[i : i + 4] for i in range(0, 16, 4)]
    return (" " if style == "spaces" else "-").join(groups)


def _jwt(rng: random.Random) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")  # noqa: E731
    return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc({'sub': _rand(rng, 8), 'iat': rng.randint(1, 10**9)})}.{_rand(rng, 43, string.ascii_letters + string.digits + '-_')}"


def make_secret(rng: random.Random) -> tuple[str, str, list[str]]:
    """(kind, how it appears in text, the parts that must never be stored)."""
    kind = rng.choice(
        ["openai", "openai_proj", "aws", "github", "github_pat", "slack", "google", "stripe", "bearer", "jwt", "password_kv",
         "password_json", "api_key_kv", "secret_quoted", "url_password", "email", "card", "private_key"]
    )
    pw = _rand(rng, rng.randint(8, 16), string.ascii_letters + string.digits + "!#%*+-")
    if kind == "openai":
        v = "sk-" + _rand(rng, 40)
        return kind, v, [v]
    if kind == "openai_proj":
        v = "sk-proj-" + _rand(rng, 48, string.ascii_letters + string.digits + "_-")
        return kind, v, [v]
    if kind == "aws":
        v = "AKIA" + _rand(rng, 16, string.ascii_uppercase + string.digits)
        return kind, v, [v]
    if kind == "github":
        v = "ghp_" + _rand(rng, 36)
        return kind, v, [v]
    if kind == "github_pat":
        v = "github_pat_" + _rand(rng, 60, string.ascii_letters + string.digits + "_")
        return kind, v, [v]
    if kind == "slack":
        v = f"xoxb-{rng.randint(10**10, 10**11)}-{_rand(rng, 24)}"
        return kind, v, [v]
    if kind == "google":
        v = "AIza" + _rand(rng, 35, string.ascii_letters + string.digits + "_-")
        return kind, v, [v]
    if kind == "stripe":
        v = "sk_live_" + _rand(rng, 24)
        return kind, v, [v]
    if kind == "bearer":
        v = _rand(rng, 32) + str(rng.randint(0, 9))
        return kind, f"Authorization: Bearer {v}", [v]
    if kind == "jwt":
        v = _jwt(rng)
        return kind, v, [v]
    if kind == "password_kv":
        return kind, f"{rng.choice(['password', 'db_password', 'PASSWORD', 'passwd'])}={pw}", [pw]
    if kind == "password_json":
        return kind, json.dumps({"user": "svc", "password": pw}), [pw]
    if kind == "api_key_kv":
        return kind, f"{rng.choice(['api_key', 'API-KEY', 'x-api-key', 'access_token'])}: {pw}", [pw]
    if kind == "secret_quoted":
        return kind, f"client_secret='{pw}'", [pw]
    if kind == "url_password":
        return kind, f"postgres://admin:{pw}@db{rng.randint(1, 9)}.internal:5432/app", [pw]
    if kind == "email":
        v = f"{_rand(rng, 6, string.ascii_lowercase)}.{_rand(rng, 5, string.ascii_lowercase)}+{rng.randint(1, 99)}@{_rand(rng, 7, string.ascii_lowercase)}.{rng.choice(['com', 'io', 'co.uk', 'de'])}"
        return kind, v, [v]
    if kind == "card":
        v = _card(rng)
        return kind, v, [v]
    body = "\n".join(_rand(rng, 64, string.ascii_letters + string.digits + "+/") for _ in range(4))
    return kind, f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----", body.splitlines()


def corpus(seed: int = 20250806, n_traj: int = 50) -> tuple[list[Experience], list[tuple[str, str]]]:
    """``n_traj`` trajectories with 4 secrets each (request, tool args, observation, answer): 200 secrets."""
    rng = random.Random(seed)
    exps, secrets = [], []
    for i in range(n_traj):
        s_req, s_obs, s_ans = make_secret(rng), make_secret(rng), make_secret(rng)
        arg_key = rng.choice(["password", "token", "api_key", "secret", "Authorization", "credentials"])
        arg_val = _rand(rng, 20) + str(i)
        for kind, _, parts in (s_req, s_obs, s_ans):
            secrets += [(kind, p) for p in parts]
        secrets.append((f"arg:{arg_key}", arg_val))
        obs = json.dumps({"status": "ok", "record": i, "note": f"found {s_obs[1]} in the vault"})
        exps.append(
            Experience(
                request=f"Task {i}: connect using {s_req[1]} and list the invoices",
                steps=[
                    Step(tool="connect", args={"host": f"db{i}.internal", arg_key: arg_val, "opts": {"retries": 3}}, observation=obs),
                    Step(tool="list_invoices", args={"limit": 10}, observation=f"10 invoices for customer {i}"),
                ],
                answer=f"Done for task {i}; (debug: {s_ans[1]})",
                intent="billing",
            )
        )
    return exps, secrets


def _leaks(text: str, secrets: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, s) for k, s in secrets if s in text]


def test_the_corpus_has_200_secrets_of_many_kinds():
    exps, secrets = corpus()
    n = len(secrets) - sum(1 for k, _ in secrets if k == "private_key") * 3 // 4  # four lines per key
    assert len(exps) == 50 and 195 <= n <= 205
    assert len({k.split(":")[0] for k, _ in secrets}) >= 15


def test_seeded_corpus_zero_secrets_stored_exported_or_spilled(tmp_path):
    exps, secrets = corpus()
    # without redaction every secret would be stored: the check below can see them
    raw_pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64), redact=None)
    raw_pool.commit_many(exps)
    assert len(_leaks(stored_payload_text(raw_pool), secrets)) == len(secrets)
    raw_pool.close()

    pool = open_pool(path=tmp_path / "pool", backend="qdrant", embeddings=HashingEmbeddings(dimension=64), retry=FAST)  # default: redaction on
    real = pool.backend
    pool.backend = FaultyBackend(real, {"upsert": always(ConnectionError("down"))})
    spilled = [pool.commit(e) for e in exps[:20]]  # these go to the spill journal first
    assert {r.status for r in spilled} == {"spilled"}
    journal_text = "".join(p.read_text() for p in (tmp_path / "pool" / "spill").glob("journal-*.jsonl"))
    assert journal_text and _leaks(journal_text, secrets) == []
    pool.backend = real
    results = pool.commit_many(exps[20:])
    assert pool.replay_spill().failed == 0
    assert pool.count() == 50 and all(r.status == "created" for r in results)
    assert _leaks(stored_payload_text(pool), secrets) == []
    out = tmp_path / "export.jsonl"
    assert pool.export_jsonl(out) == 50
    assert _leaks(out.read_text(), secrets) == []
    stored = pool.get(results[0].id)
    assert "[REDACTED:" in stored.request and stored.steps[0].args["opts"] == {"retries": 3}
    assert stored.content_hash == stored.compute_hash()  # hash computed after redaction
    assert pool.commit(exps[25]).status == "present"  # committing the raw record again is a no-op
    pool.close()


def test_redaction_through_the_agent(tmp_path):
    pool = open_pool(":memory:", embeddings=HashingEmbeddings(dimension=64))

    @tool
    def whoami(token: str) -> str:
        """Who owns this token."""
        return json.dumps({"user": "ann@example.com", "card": "4111 1111 1111 1111", "api_key": "abc123def456"})

    key = "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2"
    model = ScriptedChatModel(responses=[tool_call("whoami", token=key), "It is ann@example.com"])
    out = create_seer_agent(model, [whoami], pool, evaluator=lambda r: True).invoke({"messages": [HumanMessage(f"who owns {key}?")]})
    assert out["messages"][-1].content == "It is ann@example.com"  # the run itself is untouched
    text = stored_payload_text(pool)
    for secret in (key, "ann@example.com", "4111 1111 1111 1111", "abc123def456"):
        assert secret not in text
    stored = pool.get(out["seer_committed_id"])
    assert stored.steps[0].args == {"token": "[REDACTED:secret]"}
    pool.close()


@pytest.mark.parametrize(
    "text,kind",
    [
        ("key sk-abcdefghijklmnopqrstuvwx1", "api_key"),
        ("AKIAIOSFODNN7EXAMPLE", "aws_key"),
        ("ghp_" + "a" * 36, "github_token"),
        ("Authorization: Bearer abcDEF123456789xyz", "token"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_abcdefghij", "jwt"),
        ('{"password": "p@ss w0rd"}', "password"),
        ("api_key=abc123", "secret"),
        ("mail bob.smith@example.co.uk now", "email"),
        ("pay with 5555-5555-5555-4444 today", "card"),
        ("mysql://root:hunter2@localhost/db", "url_password"),
    ],
)
def test_each_default_kind(text, kind):
    out = Redactor().redact_text(text)
    assert f"[REDACTED:{kind}]" in out


@pytest.mark.parametrize(
    "text",
    [
        "order 1700000000000 shipped on 2024-05-01 for $1,234.56",
        "token validation failed; basic arithmetic",
        "max_tokens=100 temperature=0.2",
        "the password: is required",
        "ISBN 978-3-16-148410-0 and phone +1 415 555 0100",
        "account 4111111111111112 (not a card: bad checksum)",
        "call get_order {\"order_id\": 12345678901234}",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert Redactor().redact_text(text) == text


def test_secret_argument_keys_and_card_integers():
    r = Redactor()
    assert r.redact_value({"user": "bob", "X-Api-Key": "k", "nested": {"Password": 1234, "max_tokens": 10}, "card": 4111111111111111}) == {
        "user": "bob",
        "X-Api-Key": "[REDACTED:secret]",
        "nested": {"Password": "[REDACTED:secret]", "max_tokens": 10},
        "card": "[REDACTED:card]",
    }


def test_user_patterns_hook_and_switches():
    r = Redactor(patterns=[("employee_id", r"EMP-\d{6}")], secret_keys=["ssn_last4"], hook=lambda s: s.replace("Project Falcon", "[REDACTED:codename]"))
    exp = Experience(request="EMP-123456 asks about Project Falcon", steps=[Step(tool="hr", args={"ssn_last4": "1234"})], answer="ok")
    red = r(exp)
    assert red.request == "[REDACTED:employee_id] asks about [REDACTED:codename]"
    assert red.steps[0].args == {"ssn_last4": "[REDACTED:secret]"} and red.id != exp.id
    assert Redactor(emails=False).redact_text("a@b.io") == "a@b.io"
    pool = open_pool(":memory:", redact=r)
    assert pool.get(pool.commit(exp).id).request.startswith("[REDACTED:employee_id]")
    assert open_pool(":memory:", redact=None).redact is None  # redaction can be switched off
    assert isinstance(open_pool(":memory:").redact, Redactor)  # and is on by default


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300) | st.from_regex(r"(password|api_key|token)\s?[:=]\s?\S{1,20}|sk-[A-Za-z0-9]{20,30}|[a-z]{1,8}@[a-z]{1,8}\.com", fullmatch=False))
def test_redaction_is_idempotent_and_total(text):
    r = Redactor()
    once = r.redact_text(text)
    assert r.redact_text(once) == once


def test_redaction_is_linear_time_on_hostile_input():
    r = Redactor()
    for hostile in ("a_" * 50_000, "x" * 100_000 + "@" + "y" * 100_000, "1 " * 100_000, "password=" * 30_000, "eyJ" * 50_000):
        t = time.perf_counter()
        r.redact_text(hostile)
        assert time.perf_counter() - t < 2.0
