"""Fusion of dense and BM25 rankings.

Weighted fusion is the default: on CMRC 2018 (see README), reciprocal-rank fusion let the weaker
dense side drag BM25's precision down, while max-normalised BM25 plus a down-weighted min-max
normalised cosine kept it and added recall. RRF stays available for comparison.
"""

from __future__ import annotations

def weighted_fusion(
    bm25: dict[int, float], dense: dict[int, float], bm25_weight: float, dense_weight: float
) -> dict[int, float]:
    """bm25_weight · bm25/max(bm25) + dense_weight · min-max(cosine), over the union of candidates."""
    top_bm25 = max(bm25.values(), default=0.0)
    lo, hi = min(dense.values(), default=0.0), max(dense.values(), default=0.0)
    span = hi - lo
    fused = {}
    for i in set(bm25) | set(dense):
        b = bm25.get(i, 0.0) / top_bm25 if top_bm25 > 0 else 0.0
        if i not in dense:
            d = 0.0
        else:
            d = (dense[i] - lo) / span if span > 0 else 1.0
        fused[i] = bm25_weight * b + dense_weight * d
    return fused


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = 60) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, i in enumerate(ranking, start=1):
            fused[i] = fused.get(i, 0.0) + 1.0 / (k + rank)
    return fused
