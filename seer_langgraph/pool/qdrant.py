"""The qdrant-client backend: ``:memory:``, a local ``path=``, or a Qdrant server / cluster ``url=``.

Local modes (``:memory:`` and ``path=``) are qdrant-client's pure-Python engine: exact but a
brute-force scan (fine to ~10k experiences per tenant). ``url=`` talks to a Qdrant server or
cluster, the production path: the collection is created with a tenant payload index
(``is_tenant=True``), keyword indexes on ``intent`` and ``tools``, and the shard, replication and
quantization settings you pass in :class:`QdrantCollectionSettings`. With a server the SEER score
is computed inside Qdrant by a ``FormulaQuery`` (see :meth:`QdrantClientBackend.formula_search`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from qdrant_client import QdrantClient, models

from ..scoring import RecallQuery
from .backend import VECTOR_NAMES, DenseHit, PointData, StoredPoint

__all__ = ["QdrantClientBackend", "QdrantCollectionSettings", "build_seer_formula", "tenant_filter"]

_SCORING_FIELDS = ["tenant", "intent", "tools"]


@dataclass(frozen=True)
class QdrantCollectionSettings:
    """Collection settings passed to Qdrant when the collection is created (server / cluster).

    The defaults suit one server. For a cluster see ``docs/SCALING.md``: the ``is_tenant``
    payload index (always created) co-locates each tenant's points; ``sharding_method="custom"``
    gives each tenant (or group of tenants, see ``shard_key``) its own shard key, so its reads and
    writes touch only its shards; ``replication_factor`` >= 2 with ``write_consistency_factor``
    for durability; int8 scalar quantization and ``on_disk_vectors`` to keep RAM small.

    Args:
        shard_number: shards of the collection (``auto`` sharding), or per shard key (``custom``).
        sharding_method: ``"auto"`` (Qdrant spreads points by id) or ``"custom"`` (by shard key).
        shard_key: with ``custom`` sharding, the shard key of a tenant (default: the tenant itself).
            Map small tenants onto a few shared keys (e.g. ``lambda t: "small"``) and give big ones
            their own; the tenant filter still applies inside a key. Keys are created on first write.
        shard_key_shards: shards per shard key (``create_shard_key(shards_number=...)``).
        replication_factor, write_consistency_factor: copies of each shard, and how many must
            acknowledge a write.
        on_disk_payload, on_disk_vectors: keep payloads / original vectors on disk (mmap).
        hnsw_m, hnsw_ef_construct, hnsw_payload_m: HNSW graph; ``hnsw_m=0`` with
            ``hnsw_payload_m=16`` builds one graph per tenant only (Qdrant's multitenancy layout).
        int8_quantization: scalar int8 quantization of both vectors, kept in RAM.
        exact_search: prefetches and dense searches scan the tenant exactly (the default, and what
            makes recall exact). ``False`` uses HNSW (with ``hnsw_ef`` and, when quantized,
            rescoring with ``quantization_oversampling``): for tenants far past ~1M points, where
            a full scan is too slow; recall is then approximate.
        extra: more keyword arguments for ``create_collection``.
    """

    shard_number: int | None = None
    sharding_method: str | None = None
    shard_key: Callable[[str], str] | None = None
    shard_key_shards: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None
    on_disk_payload: bool | None = None
    on_disk_vectors: bool | None = None
    hnsw_m: int | None = None
    hnsw_ef_construct: int | None = None
    hnsw_payload_m: int | None = 16
    int8_quantization: bool = False
    exact_search: bool = True
    hnsw_ef: int | None = None
    quantization_oversampling: float | None = 2.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sharding_method not in (None, "auto", "custom"):
            raise ValueError(f"sharding_method must be 'auto' or 'custom', got {self.sharding_method!r}")
        if self.shard_key is not None and self.sharding_method != "custom":
            raise ValueError("shard_key needs sharding_method='custom'")

    @property
    def custom_sharding(self) -> bool:
        return self.sharding_method == "custom"

    def shard_key_of(self, tenant: str) -> str | None:
        """The shard key of ``tenant`` (``None`` unless ``sharding_method="custom"``)."""
        if not self.custom_sharding:
            return None
        return self.shard_key(tenant) if self.shard_key is not None else tenant

    def search_params(self) -> models.SearchParams:
        """Search parameters of every prefetch and dense search on a server."""
        if self.exact_search:
            return models.SearchParams(exact=True)
        quant = None
        if self.int8_quantization:
            quant = models.QuantizationSearchParams(rescore=True, oversampling=self.quantization_oversampling)
        return models.SearchParams(hnsw_ef=self.hnsw_ef, quantization=quant)

    def create_kwargs(self, dim: int) -> dict[str, Any]:
        """Keyword arguments for ``QdrantClient.create_collection`` (without the name)."""
        quant = None
        if self.int8_quantization:
            quant = models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, always_ram=True)
            )
        vectors = {
            name: models.VectorParams(size=dim, distance=models.Distance.DOT, quantization_config=quant, on_disk=self.on_disk_vectors)
            for name in VECTOR_NAMES
        }
        hnsw = None
        if self.hnsw_m is not None or self.hnsw_ef_construct is not None or self.hnsw_payload_m is not None:
            hnsw = models.HnswConfigDiff(m=self.hnsw_m, ef_construct=self.hnsw_ef_construct, payload_m=self.hnsw_payload_m)
        kwargs: dict[str, Any] = {"vectors_config": vectors, "hnsw_config": hnsw}
        for key in ("shard_number", "replication_factor", "write_consistency_factor", "on_disk_payload"):
            value = getattr(self, key)
            if value is not None:
                kwargs[key] = value
        if self.sharding_method is not None:
            kwargs["sharding_method"] = models.ShardingMethod(self.sharding_method)
        kwargs.update(self.extra)
        return kwargs


def tenant_filter(tenant: str) -> models.Filter:
    """The filter that scopes every read to one tenant."""
    return models.Filter(must=[models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant))])


def build_seer_formula(query: RecallQuery) -> models.FormulaQuery:
    """The whole SEER score as a Qdrant ``FormulaQuery`` over one dense prefetch.

    ``w1 * $score + (w2/|T|) * sum(tools == t for t in T) + w3 * (intent == I)``: a match on an
    array payload is true if any element matches, so the sum counts the distinct current tools
    the candidate also used, which divided by |T| is exactly the coverage s2.
    """
    w = query.weights
    terms: list[Any] = [models.MultExpression(mult=[w.trajectory, "$score"])]
    if query.tools and w.toolchain:
        per_tool = w.toolchain / len(query.tools)
        for tool in query.tools:
            terms.append(
                models.MultExpression(mult=[per_tool, models.FieldCondition(key="tools", match=models.MatchValue(value=tool))])
            )
    if query.intent is not None and w.intent:
        terms.append(
            models.MultExpression(mult=[w.intent, models.FieldCondition(key="intent", match=models.MatchValue(value=query.intent))])
        )
    return models.FormulaQuery(formula=models.SumExpression(sum=terms), defaults={})


class QdrantClientBackend:
    """Backend over a ``qdrant_client.QdrantClient`` (any mode).

    Args:
        client: an open client. Build one with ``QdrantClient(":memory:")``,
            ``QdrantClient(path=...)`` or ``QdrantClient(url=..., api_key=...)``.
        collection: collection name.
        settings: collection settings used when the collection is created.
    """

    def __init__(self, client: QdrantClient, collection: str = "seer_experiences", settings: QdrantCollectionSettings | None = None):
        self.client = client
        self.collection = collection
        self.settings = settings or QdrantCollectionSettings()
        self.is_local = getattr(client, "_client", None).__class__.__name__ == "QdrantLocal"
        location = getattr(getattr(client, "_client", None), "location", None)
        if self.is_local:
            self.name = "qdrant-client:memory" if location == ":memory:" else "qdrant-client:path"
        else:
            self.name = "qdrant-client:server"
        self._dim: int | None = None
        self._shard_keys: set[str] = set()

    # -- collection -----------------------------------------------------------------------
    def dimension(self) -> int | None:
        if self._dim is not None:
            return self._dim
        if not self.client.collection_exists(self.collection):
            return None
        info = self.client.get_collection(self.collection)
        vectors = info.config.params.vectors
        params = vectors["traj"] if isinstance(vectors, dict) else vectors
        self._dim = int(params.size)
        return self._dim

    def metadata(self) -> dict[str, Any]:
        if self.dimension() is None:
            return {}
        return dict(self.client.get_collection(self.collection).config.metadata or {})

    def ensure_collection(self, dim: int, metadata: dict[str, Any]) -> None:
        if self.dimension() is not None:
            return
        self.client.create_collection(self.collection, metadata=metadata, **self.settings.create_kwargs(dim))
        if not self.is_local:  # local mode has no payload indexes (and warns if asked)
            self.client.create_payload_index(
                self.collection,
                "tenant",
                field_schema=models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
            )
            for key in ("intent", "tools"):
                self.client.create_payload_index(self.collection, key, field_schema=models.PayloadSchemaType.KEYWORD)
        self._dim = dim

    # -- writes ---------------------------------------------------------------------------
    def _key(self, tenant: str) -> str | None:
        """The shard key selector of ``tenant`` (custom sharding), else ``None``."""
        return self.settings.shard_key_of(tenant) if not self.is_local else None

    def _ensure_shard_key(self, key: str) -> None:
        if key in self._shard_keys:
            return
        try:
            self.client.create_shard_key(
                self.collection,
                key,
                shards_number=self.settings.shard_key_shards,
                replication_factor=self.settings.replication_factor,
            )
        except Exception as exc:  # created by another writer meanwhile
            if "already exists" not in str(exc):
                raise
        self._shard_keys.add(key)

    def upsert(self, points: list[PointData]) -> None:
        if not points:
            return
        groups: dict[str | None, list[models.PointStruct]] = {}
        for p in points:
            key = self._key(p.payload.get("tenant", ""))
            groups.setdefault(key, []).append(
                models.PointStruct(
                    id=p.id,
                    vector={name: np.asarray(v, dtype=np.float32).tolist() for name, v in p.vectors.items()},
                    payload=p.payload,
                )
            )
        for key, structs in groups.items():  # one request per shard key
            if key is not None:
                self._ensure_shard_key(key)
            self.client.upsert(self.collection, points=structs, wait=True, shard_key_selector=key)

    def set_payload(self, point_id: str, payload: dict[str, Any]) -> None:
        # no shard key: Qdrant applies the update on every shard that holds the id
        self.client.set_payload(self.collection, payload=payload, points=[point_id], wait=True)

    def delete(self, ids: list[str]) -> None:
        if ids:  # no shard key: every shard deletes the ids it holds
            self.client.delete(self.collection, points_selector=models.PointIdsList(points=list(ids)), wait=True)

    # -- reads ----------------------------------------------------------------------------
    @staticmethod
    def _vectors(raw: Any) -> dict[str, np.ndarray]:
        if not raw:
            return {}
        return {k: np.asarray(v, dtype=np.float32) for k, v in raw.items()}

    def retrieve(self, ids: list[str], tenant: str, with_vectors: bool = False) -> list[StoredPoint]:
        if not ids or self.dimension() is None:
            return []
        recs = self.client.retrieve(
            self.collection, ids=list(ids), with_payload=True, with_vectors=with_vectors, shard_key_selector=self._key(tenant)
        )
        out = [StoredPoint(str(r.id), r.payload or {}, self._vectors(r.vector)) for r in recs]
        return [p for p in out if p.payload.get("tenant") == tenant]

    def _scroll(self, tenant: str, limit: int, offset: str | None, with_payload: Any, with_vectors: bool) -> tuple[list[StoredPoint], str | None]:
        if self.dimension() is None:
            return [], None
        recs, nxt = self.client.scroll(
            self.collection,
            scroll_filter=tenant_filter(tenant),
            limit=limit,
            offset=offset,
            with_payload=with_payload,
            with_vectors=with_vectors,
            shard_key_selector=self._key(tenant),
        )
        points = [StoredPoint(str(r.id), r.payload or {}, self._vectors(r.vector)) for r in recs]
        return points, (str(nxt) if nxt is not None else None)

    def scroll(
        self, tenant: str, limit: int, offset: str | None = None, with_vectors: bool = False
    ) -> tuple[list[StoredPoint], str | None]:
        return self._scroll(tenant, limit, offset, True, with_vectors)

    def scroll_scoring(self, tenant: str, limit: int, offset: str | None = None) -> tuple[list[StoredPoint], str | None]:
        """Like :meth:`scroll` with vectors, but only the scoring payload (tenant, tools, intent)."""
        return self._scroll(tenant, limit, offset, _SCORING_FIELDS, True)

    def retrieve_scoring(self, ids: list[str], tenant: str, using: str, full_payload: bool = False) -> list[StoredPoint]:
        """Like :meth:`retrieve` with the ``using`` vector only, and only the scoring payload
        (tenant, tools, intent) unless ``full_payload``."""
        if not ids or self.dimension() is None:
            return []
        recs = self.client.retrieve(
            self.collection,
            ids=list(ids),
            with_payload=True if full_payload else _SCORING_FIELDS,
            with_vectors=[using],
            shard_key_selector=self._key(tenant),
        )
        out = [StoredPoint(str(r.id), r.payload or {}, self._vectors(r.vector)) for r in recs]
        return [p for p in out if p.payload.get("tenant") == tenant]

    def point_ids(self, tenant: str) -> list[str]:
        """Every id of ``tenant`` (no payload, no vectors)."""
        out: list[str] = []
        offset = None
        while self.dimension() is not None:
            recs, offset = self.client.scroll(
                self.collection,
                scroll_filter=tenant_filter(tenant),
                limit=4096,
                offset=offset,
                with_payload=False,
                with_vectors=False,
                shard_key_selector=self._key(tenant),
            )
            out += [str(r.id) for r in recs]
            if offset is None:
                break
        return out

    def count(self, tenant: str | None) -> int:
        if self.dimension() is None:
            return 0
        flt = tenant_filter(tenant) if tenant is not None else None
        key = self._key(tenant) if tenant is not None else None
        return int(self.client.count(self.collection, count_filter=flt, exact=True, shard_key_selector=key).count)

    def tenants(self) -> dict[str, int]:
        if self.dimension() is None:
            return {}
        if not self.is_local:
            facet = self.client.facet(self.collection, key="tenant", limit=1_000_000, exact=True)
            return {str(h.value): int(h.count) for h in facet.hits}
        counts: dict[str, int] = {}
        offset = None
        while True:
            recs, offset = self.client.scroll(self.collection, limit=1024, offset=offset, with_payload=["tenant"])
            for r in recs:
                t = (r.payload or {}).get("tenant")
                counts[t] = counts.get(t, 0) + 1
            if offset is None:
                return counts

    def dense_search(self, vector: np.ndarray, using: str, tenant: str, limit: int) -> list[DenseHit]:
        if self.dimension() is None or limit <= 0:
            return []
        res = self.client.query_points(
            self.collection,
            query=np.asarray(vector, dtype=np.float32).tolist(),
            using=using,
            query_filter=tenant_filter(tenant),
            limit=limit,
            with_payload=_SCORING_FIELDS,
            with_vectors=[using],
            search_params=self._exact_params(),
            shard_key_selector=self._key(tenant),
        )
        return [self._hit(p, using) for p in res.points]

    def _exact_params(self) -> models.SearchParams | None:
        """Exact search on a server (unless ``settings.exact_search`` is off); local mode is always
        exact (and warns if asked)."""
        return None if self.is_local else self.settings.search_params()

    def _hit(self, p: Any, using: str) -> DenseHit:
        payload = p.payload or {}
        vec = p.vector[using] if isinstance(p.vector, dict) else p.vector
        return DenseHit(
            id=str(p.id),
            score=float(p.score),
            vector=np.asarray(vec, dtype=np.float32),
            tools=tuple(payload.get("tools") or ()),
            intent=payload.get("intent"),
        )

    # -- in-engine SEER score ---------------------------------------------------------------
    def formula_search(self, query: RecallQuery, tenant: str, prefetch_limit: int, limit: int) -> list[DenseHit]:
        """Top ``limit`` by the full SEER score, computed by Qdrant over an exact dense prefetch.

        The hit's ``score`` is the engine's SEER score (float32). Only the ``prefetch_limit``
        nearest points are scored: the pool widens the prefetch until a bound proves that no
        unseen point can enter the top k.
        """
        if self.dimension() is None or limit <= 0:
            return []
        flt = tenant_filter(tenant)
        using = query.vector_name
        res = self.client.query_points(
            self.collection,
            prefetch=models.Prefetch(
                query=np.asarray(query.vector, dtype=np.float32).tolist(),
                using=using,
                filter=flt,
                limit=prefetch_limit,
                params=self._exact_params(),
            ),
            query=build_seer_formula(query),
            query_filter=flt,
            limit=limit,
            with_payload=_SCORING_FIELDS,
            with_vectors=[using],
            shard_key_selector=self._key(tenant),
        )
        return [self._hit(p, using) for p in res.points]

    def dense_score_at(self, vector: np.ndarray, using: str, tenant: str, rank: int) -> float | None:
        """The dense score of the ``rank``-th nearest point (1-based), or ``None`` past the end."""
        res = self.client.query_points(
            self.collection,
            query=np.asarray(vector, dtype=np.float32).tolist(),
            using=using,
            query_filter=tenant_filter(tenant),
            limit=1,
            offset=rank - 1,
            with_payload=False,
            search_params=self._exact_params(),
            shard_key_selector=self._key(tenant),
        )
        return float(res.points[0].score) if res.points else None

    def close(self) -> None:
        self.client.close()
