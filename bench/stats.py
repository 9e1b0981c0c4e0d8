"""Units and the statistics the report uses: the median, nearest-rank percentiles, paired ratios."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
MB = 1_000_000


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` in [0, 1]) of `values`."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return float(ordered[max(1, math.ceil(fraction * len(ordered))) - 1])


def paired(these: Sequence[float], those: Sequence[float]) -> list[float]:
    """`these` over `those`, round by round, sorted."""
    return sorted(a / b for a, b in zip(these, those, strict=True))


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Count, p50, p99 and max, in milliseconds."""
    ms = [value * 1000 for value in seconds]
    return {
        "count": len(ms),
        "p50_ms": percentile(ms, 0.50),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms, default=math.nan),
    }
