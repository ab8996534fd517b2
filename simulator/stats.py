"""Statistics across replications: t-based confidence intervals, paired differences, histogram percentiles."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import numpy as np

from simulator.engine import HIST_PER_UNIT


def hist_percentile(hist: np.ndarray, q: float) -> float:
    """The q-quantile (0..1) of a log-scale duration histogram, interpolated inside the bin; NaN if empty."""
    n = int(hist.sum())
    if n == 0:
        return math.nan
    cum = np.cumsum(hist)
    rank = q * n
    b = int(np.searchsorted(cum, rank, side="left"))
    b = min(b, hist.size - 1)
    before = cum[b - 1] if b > 0 else 0
    inside = hist[b]
    frac = (rank - before) / inside if inside else 0.0
    lo = b / HIST_PER_UNIT
    return float(math.expm1(lo + frac / HIST_PER_UNIT))


def t_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Mean and t-based confidence interval of independent replications (NaNs dropped)."""
    from scipy.stats import t as student_t

    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "half_width": math.nan, "n": 0}
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "ci_low": math.nan, "ci_high": math.nan, "half_width": math.nan, "n": 1}
    half = float(student_t.ppf(0.5 + level / 2.0, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "half_width": half, "n": n}


def hall_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Mean and Hall's skewness-corrected interval (Hall 1992, "On the removal of skewness by transformation").

    The t statistic T = (mean − μ) / s is made nearly symmetric by g(T) = T + γT²/3 + γ²T³/27 + γ/(6n), with γ the
    sample skewness; g is monotone, so μ lies in [mean − s·g⁻¹(q/√n), mean − s·g⁻¹(−q/√n)], q the t quantile.
    For right-skewed KPIs (rare long waits) the interval reaches further up than the t interval. `half_width`
    is the larger of its two sides. Falls back to the t interval below 3 values or without skew.
    """
    from scipy.stats import t as student_t

    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    ci = t_interval(x, level)
    n = int(x.size)
    if n < 3:
        return ci
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    if sd == 0:
        return ci
    g = float(((x - mean) ** 3).mean() / sd**3)
    if abs(g) < 1e-6:
        return ci
    q = float(student_t.ppf(0.5 + level / 2.0, n - 1)) / math.sqrt(n)

    def inv(y: float) -> float:
        return 3.0 / g * (float(np.cbrt(1.0 + g * (y - g / (6.0 * n)))) - 1.0)

    low, high = mean - sd * inv(q), mean - sd * inv(-q)
    return {"mean": mean, "ci_low": low, "ci_high": high, "half_width": max(mean - low, high - mean), "n": n}


INTERVALS = {"t": t_interval, "hall": hall_interval}


def needed_replications(
    values: Sequence[float] | np.ndarray, precision: float, level: float = 0.95, method: str = "t"
) -> int:
    """Replications for a t half-width <= precision × |mean|: n if met, else the usual n · (h / target)² estimate.

    NaNs are dropped; a KPI whose mean is 0 and whose values all agree needs no more. An unreachable target (a
    mean of 0 with noise) gives a huge number: the caller bounds it.
    """
    ci = INTERVALS[method](values, level)
    n = int(ci["n"])
    if n < 2:
        return n + 2
    target = precision * abs(ci["mean"])
    if ci["half_width"] <= target:
        return n
    if target == 0:
        return 1 << 30
    return max(n + 1, math.ceil(n * (ci["half_width"] / target) ** 2))


def summarize(
    per_rep: Sequence[Mapping[str, float]], level: float = 0.95, signed: Collection[str] = (), method: str = "t"
) -> dict[str, dict[str, float]]:
    """A confidence interval for every KPI of a list of per-replication KPI dicts.

    A KPI not listed in `signed` whose replications are all >= 0 is a non-negative quantity (a wait, a count, a
    utilisation): the lower end of its interval is clipped at 0 (`half_width` stays the symmetric t half-width).
    """
    keys = sorted({k for d in per_rep for k in d})
    out = {}
    for k in keys:
        x = [d.get(k, math.nan) for d in per_rep]
        ci = INTERVALS[method](x, level)
        if k not in signed and ci["ci_low"] < 0 and all(v >= 0 for v in x if not math.isnan(v)):
            ci["ci_low"] = 0.0
        out[k] = ci
    return out


def paired_differences(
    a: Sequence[Mapping[str, float]], b: Sequence[Mapping[str, float]], level: float = 0.95
) -> dict[str, dict[str, float]]:
    """B − A per KPI, paired by replication (same seed, so common random numbers), with t intervals."""
    if len(a) != len(b):
        raise ValueError("paired differences need the same number of replications")
    keys = sorted(set().union(*a) & set().union(*b)) if a else []
    out = {}
    for k in keys:
        d = [rb.get(k, math.nan) - ra.get(k, math.nan) for ra, rb in zip(a, b, strict=True)]
        ci = t_interval(d, level)
        ci["significant"] = float(not math.isnan(ci["ci_low"]) and (ci["ci_low"] > 0 or ci["ci_high"] < 0))
        out[k] = ci
    return out


def relative_change(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, level: float = 0.95, non_negative: bool = True
) -> dict[str, float]:
    """B / A − 1 of paired replications (the ratio of the two means), with a delta-method t interval.

    The ratio estimator R = mean(B) / mean(A) has the standard error s(B − R·A) / (√n · mean(A)) to first order
    (the delta method; the residuals B − R·A keep the pairing). NaN when mean(A) <= 0 or fewer than 2 pairs give
    an interval. With `non_negative` (both quantities >= 0, so B / A >= 0) the lower end is clipped at −100 %.
    """
    from scipy.stats import t as student_t

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    n = int(x.size)
    nan = {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": n}
    if n == 0 or x.mean() <= 0:
        return nan
    r = float(y.mean() / x.mean())
    if n < 2:
        return {**nan, "mean": r - 1.0}
    se = float((y - r * x).std(ddof=1) / math.sqrt(n) / x.mean())
    half = float(student_t.ppf(0.5 + level / 2.0, n - 1)) * se
    low = r - 1.0 - half
    if non_negative:
        low = max(low, -1.0)
    return {"mean": r - 1.0, "ci_low": low, "ci_high": r - 1.0 + half, "n": n}


def relative_changes(
    a: Sequence[Mapping[str, float]], b: Sequence[Mapping[str, float]], signed: Collection[str] = ()
) -> dict[str, dict[str, float]]:
    """`relative_change` of every KPI the two lists share (paired by replication); KPIs in `signed` are left out."""
    keys = sorted(set().union(*a) & set().union(*b)) if a else []
    return {
        k: relative_change([r.get(k, math.nan) for r in a], [r.get(k, math.nan) for r in b])
        for k in keys
        if k not in signed
    }


def hourly_interval(per_rep: Sequence[np.ndarray], level: float = 0.95) -> dict[str, list]:
    """Element-wise mean and CI half-width of per-replication arrays (e.g. [24, resources])."""
    import warnings

    from scipy.stats import t as student_t

    x = np.asarray(per_rep, dtype=float)
    n = x.shape[0]
    # Hours when a resource is closed have no utilisation (NaN); an all-NaN column is expected, not an error.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=0) if n else x
        if n > 1:
            half = student_t.ppf(0.5 + level / 2.0, n - 1) * np.nanstd(x, axis=0, ddof=1) / math.sqrt(n)
        else:
            half = np.full_like(mean, math.nan)
    return {"mean": _jsonable(mean), "half_width": _jsonable(half)}


def _jsonable(a: np.ndarray) -> list:
    return [_jsonable(x) if isinstance(x, np.ndarray) else (None if math.isnan(x) else float(x)) for x in a]
