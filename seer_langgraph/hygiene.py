"""Pool hygiene: near-duplicate detection at commit, a size cap per tenant, and pruning.

A pool that agents write to unattended fills with near-copies of the runs they repeat most, and a
recall of k=4 that returns four copies of one trajectory teaches the model one thing four times.

- **Near-duplicates**: a new record with the same ordered tool chain (and, by default, the same
  intent) as a stored record of its tenant, whose trajectory embedding has cosine >=
  ``dedup_threshold`` (default 0.97) with it, is not stored: the stored one is kept and its
  ``usage.duplicates`` counter goes up. An exact re-commit (same content hash) is a no-op and is
  not counted.
- **Size cap**: with ``max_per_tenant`` set, a commit that takes a tenant over the cap prunes it
  back (to ``cap - cap // 20``, so that pruning is not paid on every commit at the cap).
- **Pruning** drops the least useful records first: the lowest Laplace-smoothed success rate
  ``(succeeded + 1) / (succeeded + failed + 2)`` (a record that led runs astray goes first), then
  the least recalled, then the oldest. ``pool.prune(max_records=N, dry_run=True)`` and
  ``seer pool prune --max N --dry-run`` show what would go.

Example:
    >>> usefulness_key({"recalled": 4, "succeeded": 1, "failed": 3}, "2025-01-01T00:00:00Z")[0]
    0.3333333333333333
    >>> usefulness_key({}, "2025-01-01T00:00:00Z")[0]  # never recalled: neutral
    0.5
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .errors import DimensionMismatchError

if TYPE_CHECKING:  # pragma: no cover
    from .experience import Experience
    from .pool.pool import CommitResult, ExperiencePool

__all__ = [
    "HygienePolicy",
    "PruneCandidate",
    "PruneReport",
    "VerifyReport",
    "hygienic_write",
    "prune_tenant",
    "usefulness_key",
    "verify_pool",
]

logger = logging.getLogger(__name__)

_EPS = 1e-6


class HygienePolicy(BaseModel):
    """What the pool does about near-duplicates and size (see the module docs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dedup_threshold: float | None = Field(
        default=0.97, gt=0.0, le=1.0, description="Trajectory cosine at or above which a record with the same tool chain is a near-duplicate (None: off)."
    )
    dedup_same_intent: bool = Field(default=True, description="Near-duplicates must also share the intent label.")
    dedup_candidates: int = Field(default=8, ge=1, le=256, description="Nearest stored records compared with each new one.")
    max_per_tenant: int | None = Field(default=None, ge=1, description="Size cap per tenant (None: no cap).")


def usefulness_key(usage: dict[str, Any] | None, created_at: str | None) -> tuple[float, int, str]:
    """Sort key of pruning: least useful first (Laplace success rate, then recalls, then age)."""
    usage = usage or {}
    ok = int(usage.get("succeeded", 0) or 0)
    bad = int(usage.get("failed", 0) or 0)
    return ((ok + 1) / (ok + bad + 2), int(usage.get("recalled", 0) or 0), str(created_at or ""))


class PruneCandidate(BaseModel):
    """A record pruning would drop, and why."""

    id: str
    success_rate: float
    recalled: int
    created_at: str
    request: str


class PruneReport(BaseModel):
    """What a prune did (or, with ``dry_run``, would do)."""

    tenant: str
    max_records: int
    before: int
    after: int
    dry_run: bool
    dropped: list[PruneCandidate] = []


def prune_tenant(pool: "ExperiencePool", tenant: str, max_records: int, *, dry_run: bool = False, target: int | None = None) -> PruneReport:
    """Drop the tenant's least useful records until it holds at most ``target`` (default ``max_records``)."""
    if not isinstance(max_records, int) or isinstance(max_records, bool) or max_records < 0:
        raise ValueError(f"max_records must be an integer >= 0, got {max_records!r}")
    keep = max_records if target is None else min(target, max_records)
    with pool._lock:
        pool._check_open()
        rows: list[tuple[tuple[float, int, str], str, dict[str, Any]]] = []
        offset = None
        while True:
            points, offset = pool.backend.scroll(tenant, 512, offset)
            for p in points:
                record = p.payload.get("record") or {}
                rows.append((usefulness_key(p.payload.get("usage"), record.get("created_at")), p.id, record))
            if offset is None:
                break
        before = len(rows)
        rows.sort(key=lambda r: (r[0], r[1]))
        drop = rows[: max(0, before - keep)] if before > max_records else []
        dropped = [
            PruneCandidate(id=pid, success_rate=key[0], recalled=key[1], created_at=key[2], request=str(rec.get("request", ""))[:120])
            for key, pid, rec in drop
        ]
        if drop and not dry_run:
            pool.delete([pid for _, pid, _ in drop], tenant=tenant)
    after = before - (0 if dry_run else len(drop))
    if drop and not dry_run:
        logger.info("pruned %d experience(s) of tenant %s (%d -> %d)", len(drop), tenant, before, after)
    return PruneReport(tenant=tenant, max_records=max_records, before=before, after=after, dry_run=dry_run, dropped=dropped)


def _same_chain(record: dict[str, Any], exp: "Experience") -> bool:
    return [s.get("tool") for s in record.get("steps") or []] == exp.tools


def _find_duplicates(
    pool: "ExperiencePool", exps: Sequence["Experience"], vectors: Sequence[dict[str, np.ndarray]], present: set[str]
) -> dict[int, str]:
    """Index of each new record that is a near-duplicate -> id of the record it duplicates."""
    policy = pool.hygiene
    thr = float(policy.dedup_threshold or 2.0) - _EPS
    dup_of: dict[int, str] = {}
    accepted: list[int] = []
    seen: set[str] = set()
    for i, (exp, vec) in enumerate(zip(exps, vectors)):
        if exp.id in present or exp.id in seen:
            continue  # an exact re-commit: a no-op, not a duplicate
        traj = vec["traj"]
        match: str | None = None
        hits = [
            h
            for h in pool.backend.dense_search(traj, "traj", exp.tenant, policy.dedup_candidates)
            if h.score >= thr and (not policy.dedup_same_intent or h.intent == exp.intent) and set(h.tools) == set(exp.tools)
        ]
        if hits:
            stored = {p.id: p for p in pool.backend.retrieve([h.id for h in hits], exp.tenant)}
            for h in hits:  # best first
                p = stored.get(h.id)
                if p is not None and _same_chain(p.payload.get("record") or {}, exp):
                    match = h.id
                    break
        if match is None:
            for j in accepted:  # near-duplicates inside one batch
                other = exps[j]
                if (
                    other.tenant == exp.tenant
                    and other.tools == exp.tools
                    and (not policy.dedup_same_intent or other.intent == exp.intent)
                    and float(np.dot(vectors[j]["traj"], traj)) >= thr
                ):
                    match = other.id
                    break
        if match is not None:
            dup_of[i] = match
        else:
            accepted.append(i)
            seen.add(exp.id)
    return dup_of


def _count_duplicates(pool: "ExperiencePool", counts: dict[tuple[str, str], int]) -> None:
    for (tenant, kept), n in counts.items():
        points = pool.backend.retrieve([kept], tenant)
        if not points:
            continue
        usage = dict(points[0].payload.get("usage") or {})
        usage["duplicates"] = int(usage.get("duplicates", 0) or 0) + n
        pool.backend.set_payload(kept, {"usage": usage})


def hygienic_write(pool: "ExperiencePool", exps: list["Experience"], vectors: list[dict[str, np.ndarray]]) -> list["CommitResult"]:
    """Write prepared, embedded experiences: near-duplicates are counted, not stored; the cap is kept."""
    from .pool.pool import CommitResult

    policy = pool.hygiene
    if not exps:
        return []
    with pool._lock:
        pool._check_open()
        pool._ensure_dim(int(vectors[0]["traj"].shape[0]))
        for exp, vec in zip(exps, vectors):
            if vec["traj"].shape[0] != pool._checked_dim:
                raise DimensionMismatchError(
                    f"experience {exp.id}: vectors have {vec['traj'].shape[0]} dimensions, the collection {pool._checked_dim}"
                )
        dup_of: dict[int, str] = {}
        if policy.dedup_threshold is not None and pool.backend.dimension() is not None:
            present: set[str] = set()
            for tenant in {e.tenant for e in exps}:
                present |= {p.id for p in pool.backend.retrieve([e.id for e in exps if e.tenant == tenant], tenant)}
            dup_of = _find_duplicates(pool, exps, vectors, present)
        keep = [i for i in range(len(exps)) if i not in dup_of]
        written = pool._write([exps[i] for i in keep], [vectors[i] for i in keep]) if keep else []
        results: list[CommitResult | None] = [None] * len(exps)
        for i, res in zip(keep, written):
            results[i] = res
        counts: dict[tuple[str, str], int] = {}
        for i, kept in dup_of.items():
            counts[(exps[i].tenant, kept)] = counts.get((exps[i].tenant, kept), 0) + 1
            results[i] = CommitResult(id=kept, created=False, status="duplicate", duplicate_of=kept)
        if counts:
            _count_duplicates(pool, counts)
        if policy.max_per_tenant is not None and any(r is not None and r.created for r in results):
            cap = policy.max_per_tenant
            for tenant in {exps[i].tenant for i in keep}:
                if pool.backend.count(tenant) > cap:
                    prune_tenant(pool, tenant, cap, target=cap - cap // 20)
    return [r for r in results if r is not None]


class VerifyReport(BaseModel):
    """Integrity of a pool: records checked, per tenant, and the corrupt ones (id, why)."""

    checked: int = 0
    tenants: dict[str, int] = {}
    corrupt: list[tuple[str, str]] = []
    spill_pending: int = 0


def verify_pool(pool: Any) -> VerifyReport:
    """Check every stored record: its content hash, its id, and the payload fields recall uses.

    A record is corrupt when its content no longer hashes to its id, or when the tenant, intent or
    tool set that recall filters on disagrees with the record itself.
    """
    if hasattr(pool, "_call"):  # a shared-pool client: the owner checks
        return pool._call("verify")
    from .errors import CorruptRecordError

    report = VerifyReport()
    pool._check_open()
    with pool._lock:
        tenants = pool.backend.tenants()
    for tenant in sorted(tenants):
        offset = None
        n = 0
        while True:
            with pool._lock:
                points, offset = pool.backend.scroll(tenant, 512, offset)
            for p in points:
                n += 1
                try:
                    exp = pool._to_experience(p)
                except CorruptRecordError as exc:
                    report.corrupt.append((p.id, str(exc).split(";")[0]))
                    continue
                problems = []
                if exp.id != p.id:
                    problems.append(f"stored under id {p.id} but its content gives {exp.id}")
                if exp.tenant != tenant or p.payload.get("tenant") != tenant:
                    problems.append(f"tenant {exp.tenant!r} in the record, {p.payload.get('tenant')!r} in the payload")
                if p.payload.get("intent") != exp.intent:
                    problems.append("payload intent differs from the record's")
                if list(p.payload.get("tools") or []) != list(dict.fromkeys(exp.tools)):
                    problems.append("payload tools differ from the record's")
                if problems:
                    report.corrupt.append((p.id, "; ".join(problems)))
            if offset is None:
                break
        report.tenants[tenant] = n
        report.checked += n
    report.spill_pending = pool.spill_pending()
    return report
