"""numba kernels of the exact scoring index (:mod:`seer_langgraph.pool.index`).

Imported lazily, only when an index is used, so ``import seer_langgraph`` never pays for numba.

The kernels compute *bounds*, never the final score: for each row ``lo <= score <= hi`` where
``score`` is the float64 SEER score the reference scorer would compute. The bounds are widened by
the quantisation error (known per row and per query) and by a slack that covers every float64
rounding difference between this arithmetic and the reference's, so they hold for the
reference's floats, not just for real numbers.

``bonus[c, m]`` is ``w2*s2 + w3*s3`` for a row sharing ``c`` of the query's tools and matching
the intent (``m = 1``) or not, computed by the caller with the reference's own float operations,
so it is exact; with ``w1 == 0`` the score is the bonus and the bounds are exact too.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: rows per block of the stage-1 scan (int32 dot products of a block, then their bounds)
CHUNK = 512

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_S1 = np.uint64(1)
_S2 = np.uint64(2)
_S4 = np.uint64(4)
_S56 = np.uint64(56)


@njit(cache=True, inline="always")
def _popcount(x):  # pragma: no cover - compiled
    x = x - ((x >> _S1) & _M1)
    x = (x & _M2) + ((x >> _S2) & _M2)
    x = (x + (x >> _S4)) & _M4
    return (x * _H01) >> _S56


@njit(cache=True, inline="always")
def _bonus(masks, intents, j, qmask, qintent, bonus):  # pragma: no cover - compiled
    c = 0
    for w in range(masks.shape[1]):
        c += int(_popcount(masks[j, w] & qmask[w]))
    m = 1 if (qintent >= 0 and intents[j] == qintent) else 0
    return bonus[c, m]


@njit(cache=True, inline="always")
def _heap_push(heap, v):  # pragma: no cover - compiled
    """Keep the k largest values seen in the min-heap ``heap`` (``-inf`` filled)."""
    if v <= heap[0]:
        return
    k = heap.shape[0]
    heap[0] = v
    i = 0
    while True:
        left = 2 * i + 1
        if left >= k:
            break
        m = left
        if left + 1 < k and heap[left + 1] < heap[left]:
            m = left + 1
        if heap[i] <= heap[m]:
            break
        heap[i], heap[m] = heap[m], heap[i]
        i = m


@njit(cache=True, inline="never")
def _dots(Q, q16, start, end, acc):  # pragma: no cover - compiled
    """Exact int32 dot products of rows ``start:end`` with the int16 query.

    Kept as its own small loop nest: LLVM turns it into ``vpmaddwd`` (int16 products, int32
    sums); with the bound arithmetic in the same loop it does not, and the scan is 3x slower.
    """
    d = Q.shape[1]
    for j in range(start, end):
        s = np.int32(0)
        row = Q[j]
        for i in range(d):
            s += np.int32(np.int16(row[i]) * q16[i])
        acc[j - start] = s


@njit(cache=True, inline="never")
def _dots_rows(Q, q16, order, start, end, acc):  # pragma: no cover - compiled
    """:func:`_dots` for the rows ``order[start:end]`` (a gather)."""
    d = Q.shape[1]
    for p in range(start, end):
        s = np.int32(0)
        row = Q[order[p]]
        for i in range(d):
            s += np.int32(np.int16(row[i]) * q16[i])
        acc[p - start] = s


@njit(cache=True)
def stage1_by_class(Q, scale, err1, masks, intents, n, q16, sx, exn, qmask, qintent, bonus, w1, slack, hi, k, min_score, order):  # pragma: no cover
    """Stage 1, visiting rows by bonus class, best first, and skipping whole classes.

    A row's score is at most ``w1 * 1 + bonus`` (``s1`` is a cosine), known without reading its
    vector. Rows are grouped by ``(shared tools, intent match)`` -- at most ``2 * (|T| + 1)``
    classes -- and the classes scanned in decreasing bonus; once a class's ``w1 + bonus`` is below
    the k-th largest lower bound so far (or ``min_score``), it and every class after it are skipped
    unread. Returns the k-th largest lower bound and how many rows were scanned: those rows are
    ``order[:scanned]``, with their upper bounds in ``hi``.
    """
    n_cls = bonus.shape[0] * 2
    flat = bonus.ravel()
    cls = np.empty(n, dtype=np.int32)
    counts = np.zeros(n_cls, dtype=np.int64)
    for j in range(n):
        c = 0
        for w in range(masks.shape[1]):
            c += int(_popcount(masks[j, w] & qmask[w]))
        m = 1 if (qintent >= 0 and intents[j] == qintent) else 0
        cid = c * 2 + m
        cls[j] = cid
        counts[cid] += 1
    rank = np.argsort(-flat)
    start = np.empty(n_cls, dtype=np.int64)
    pos = np.empty(n_cls, dtype=np.int64)
    run = 0
    for ci in rank:
        start[ci] = run
        pos[ci] = run
        run += counts[ci]
    for j in range(n):
        order[pos[cls[j]]] = j
        pos[cls[j]] += 1
    heap = np.full(k, -np.inf)
    acc = np.empty(CHUNK, dtype=np.int32)
    s1_max = w1 * (1.0 + 1e-9)
    scanned = 0
    for ci in rank:
        cnt = counts[ci]
        if cnt == 0:
            continue
        b = flat[ci]
        if s1_max + b + slack < max(heap[0], min_score):
            break  # this class and every later one (lower bonus) cannot reach the top k
        first = start[ci]
        for blk in range(first, first + cnt, CHUNK):
            end = min(first + cnt, blk + CHUNK)
            if w1 != 0.0:
                _dots_rows(Q, q16, order, blk, end, acc)
            for p in range(blk, end):
                j = order[p]
                if w1 == 0.0:
                    hi[j] = b
                    _heap_push(heap, b)
                else:
                    s1 = sx * scale[j] * acc[p - blk]
                    e = err1[j] * (1.0 + exn) + exn + 1e-9
                    hi[j] = w1 * (s1 + e) + b + slack
                    _heap_push(heap, w1 * (s1 - e) + b - slack)
        scanned = first + cnt
    return heap[0], scanned


@njit(cache=True, inline="always")
def _block(Q, scale, err1, masks, intents, start, end, q16, sx, exn, qmask, qintent, bonus, w1, slack, hi, heap, acc):  # pragma: no cover
    """Upper bounds of rows ``start:end`` into ``hi``; their lower bounds into the top-k heap."""
    if w1 == 0.0:
        for j in range(start, end):
            b = _bonus(masks, intents, j, qmask, qintent, bonus)
            hi[j] = b
            _heap_push(heap, b)
        return
    _dots(Q, q16, start, end, acc)
    for j in range(start, end):
        b = _bonus(masks, intents, j, qmask, qintent, bonus)
        s1 = sx * scale[j] * acc[j - start]
        e = err1[j] * (1.0 + exn) + exn + 1e-9
        hi[j] = w1 * (s1 + e) + b + slack
        _heap_push(heap, w1 * (s1 - e) + b - slack)


@njit(cache=True)
def stage1_serial(Q, scale, err1, masks, intents, n, q16, sx, exn, qmask, qintent, bonus, w1, slack, hi, k):  # pragma: no cover
    """Upper bound of every row into ``hi``; returns the k-th largest lower bound (one thread).

    The stage-1 error of a row is ``||v - a*q||`` (Cauchy-Schwarz against the unit query) plus
    the query's own quantisation error ``exn`` times ``||a*q|| <= 1 + err1``.
    """
    heap = np.full(k, -np.inf)
    acc = np.empty(CHUNK, dtype=np.int32)
    for start in range(0, n, CHUNK):
        end = min(n, start + CHUNK)
        _block(Q, scale, err1, masks, intents, start, end, q16, sx, exn, qmask, qintent, bonus, w1, slack, hi, heap, acc)
    return heap[0]


@njit(cache=True, parallel=True)
def stage1_parallel(Q, scale, err1, masks, intents, n, q16, sx, exn, qmask, qintent, bonus, w1, slack, hi, k):  # pragma: no cover
    """:func:`stage1_serial` over blocks of rows on numba's thread pool."""
    n_chunks = (n + CHUNK - 1) // CHUNK
    heaps = np.full((n_chunks, k), -np.inf)
    for c in prange(n_chunks):
        acc = np.empty(CHUNK, dtype=np.int32)
        start = c * CHUNK
        end = min(n, start + CHUNK)
        _block(Q, scale, err1, masks, intents, start, end, q16, sx, exn, qmask, qintent, bonus, w1, slack, hi, heaps[c], acc)
    heap = np.full(k, -np.inf)
    for c in range(n_chunks):
        for i in range(k):
            _heap_push(heap, heaps[c, i])
    return heap[0]


@njit(cache=True)
def stage2(Q, R, scale, rscale, err2, masks, intents, order, n, x, qmask, qintent, bonus, w1, slack, hi1, t1, k):  # pragma: no cover
    """Keep the rows ``order[:n]`` with ``hi1 >= t1``, tighten their bounds with the int8
    residual, prune again.

    ``t1`` is the k-th largest stage-1 lower bound (or ``min_score`` if larger): a row whose upper
    bound is below it has k rows certainly better, or fails ``min_score``. Survivors are bounded
    with ``scale*q + rscale*r`` against the float64 query (error ``err2``, about 1/250 of stage
    1) and pruned the same way. Returns the rows left, their bounds and the stage-1 survivors.
    """
    count = 0
    for p in range(n):
        if hi1[order[p]] >= t1:
            count += 1
    rows = np.empty(count, dtype=np.int64)
    lo2 = np.empty(count, dtype=np.float64)
    hi2 = np.empty(count, dtype=np.float64)
    heap = np.full(k, -np.inf)
    d = x.shape[0]
    m = 0
    for p in range(n):
        j = order[p]
        if hi1[j] < t1:
            continue
        rows[m] = j
        b = _bonus(masks, intents, j, qmask, qintent, bonus)
        if w1 == 0.0:
            lo2[m] = b
            hi2[m] = b
        else:
            dq = 0.0
            dr = 0.0
            for i in range(d):
                dq += x[i] * Q[j, i]
                dr += x[i] * R[j, i]
            s1 = scale[j] * dq + rscale[j] * dr
            e = err2[j] + 1e-9
            lo2[m] = w1 * (s1 - e) + b - slack
            hi2[m] = w1 * (s1 + e) + b + slack
        _heap_push(heap, lo2[m])
        m += 1
    t2 = max(heap[0], t1)
    keep = 0
    for i in range(count):
        if hi2[i] >= t2:
            rows[keep] = rows[i]
            lo2[keep] = lo2[i]
            hi2[keep] = hi2[i]
            keep += 1
    return rows[:keep], lo2[:keep], hi2[:keep], count
