"""Per-feature drift scores of a current sample against a reference sample, computed by scipy.

Only the binning is done here; every statistic is scipy's:

``ks``
    The two-sample Kolmogorov-Smirnov statistic D (``scipy.stats.ks_2samp``), numeric features.
``wasserstein``
    The first Wasserstein distance (``scipy.stats.wasserstein_distance``), numeric features, in
    the feature's own unit.
``psi``
    The population stability index of the binned shares: KL(current‖reference) +
    KL(reference‖current), each ``scipy.stats.entropy`` (natural log), which is
    Σ (current − reference) · ln(current / reference).
``kl``
    KL(current‖reference) of the binned shares (``scipy.stats.entropy``, natural log).
``js``
    The Jensen-Shannon distance of the binned shares in base 2, between 0 and 1
    (``scipy.spatial.distance.jensenshannon``).
``chi2``
    Cramér's V of the chi-squared test of the 2 × bins contingency table (reference and current
    counts; ``scipy.stats.contingency.association``), between 0 and 1: the chi-squared
    statistic itself grows with the sample size, so no fixed threshold could be read on it.

Binning: a numeric feature is cut at the reference's quantiles (``bins`` bins of about equal
reference share, fewer when quantiles coincide), values outside the reference's range falling
in the outer bins; any other feature (strings, booleans, dictionaries) is binned by category,
the union of both samples' categories. For ``psi`` and ``kl``, a bin empty on one side counts
as :data:`EMPTY_SHARE` of that sample (then shares are renormalised), as a logarithm of zero
has no value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
from scipy import stats  # type: ignore[import-untyped]
from scipy.spatial import distance  # type: ignore[import-untyped]
from scipy.stats import contingency  # type: ignore[import-untyped]

from mlplane.drift.errors import DriftError

METHODS = ("psi", "ks", "kl", "js", "wasserstein", "chi2")
NUMERIC_ONLY = frozenset({"ks", "wasserstein"})
DEFAULT_BINS = 10
EMPTY_SHARE = 1e-4
MAX_CATEGORIES = 10_000
"""A categorical feature with more distinct values than this is refused (an identifier, not a
category); its bins would also make the scores meaningless."""

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
_Values = TypeVar("_Values", bound=np.ndarray[Any, Any])


@dataclass(frozen=True, slots=True)
class Counts:
    """Bin counts of the two samples, bin for bin."""

    reference: FloatArray
    current: FloatArray


def is_numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def numeric_values(column: pa.ChunkedArray) -> FloatArray:
    """The finite values of a numeric column as float64 (nulls, NaN and infinities left out)."""
    values = np.asarray(pc.drop_null(column).to_numpy(zero_copy_only=False), dtype=np.float64)
    return values[np.isfinite(values)]


def category_values(column: pa.ChunkedArray) -> np.ndarray[Any, np.dtype[np.str_]]:
    """The non-null values of any column as strings (the categories)."""
    text = pc.cast(pc.drop_null(column), pa.string())
    return np.asarray(text.to_numpy(zero_copy_only=False), dtype=np.str_)


def quantile_counts(reference: FloatArray, current: FloatArray, bins: int) -> Counts:
    """Counts in the bins cut at the reference's inner quantiles."""
    cuts = np.unique(np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    size = len(cuts) + 1
    return Counts(
        np.bincount(np.searchsorted(cuts, reference, side="right"), minlength=size).astype(float),
        np.bincount(np.searchsorted(cuts, current, side="right"), minlength=size).astype(float),
    )


def category_counts(reference: np.ndarray[Any, Any], current: np.ndarray[Any, Any]) -> Counts:
    """Counts per category of the union of both samples' categories."""
    categories = np.union1d(reference, current)
    if len(categories) > MAX_CATEGORIES:
        raise DriftError(
            f"{len(categories)} distinct values, more than {MAX_CATEGORIES}: an identifier "
            "rather than a category"
        )
    return Counts(
        np.bincount(np.searchsorted(categories, reference), minlength=len(categories)).astype(
            float
        ),
        np.bincount(np.searchsorted(categories, current), minlength=len(categories)).astype(float),
    )


def _floored(counts: FloatArray) -> FloatArray:
    shares = counts / counts.sum()
    return np.where(shares == 0.0, EMPTY_SHARE, shares)


def binned_score(method: str, counts: Counts) -> float:
    """``psi``, ``kl``, ``js`` or ``chi2`` of two binned samples."""
    if method == "js":
        return float(distance.jensenshannon(counts.current, counts.reference, base=2.0))
    if method == "chi2":
        table = np.vstack([counts.reference, counts.current])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            return 0.0  # one category on both sides: nothing can differ
        return float(contingency.association(table.astype(np.int64), method="cramer"))
    current, reference = _floored(counts.current), _floored(counts.reference)
    forward = float(stats.entropy(current, reference))
    if method == "kl":
        return forward
    return forward + float(stats.entropy(reference, current))


def score(method: str, reference: pa.ChunkedArray, current: pa.ChunkedArray, bins: int) -> float:
    """The drift score of one feature; :class:`DriftError` when it has no score."""
    if method not in METHODS:
        raise DriftError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    numeric = is_numeric(reference.type) and is_numeric(current.type)
    if method in NUMERIC_ONLY and not numeric:
        raise DriftError(
            f"method {method!r} needs numbers, and the feature holds {reference.type} in the "
            f"reference and {current.type} in the current sample"
        )
    if not numeric:
        categories = _present(category_values(reference), category_values(current))
        return binned_score(method, category_counts(*categories))
    ref, cur = _present(numeric_values(reference), numeric_values(current))
    if method == "ks":
        return float(stats.ks_2samp(ref, cur).statistic)
    if method == "wasserstein":
        return float(stats.wasserstein_distance(ref, cur))
    return binned_score(method, quantile_counts(ref, cur, bins))


def _present(reference: _Values, current: _Values) -> tuple[_Values, _Values]:
    """Both samples, unless one has no values."""
    for side, values in (("reference", reference), ("current", current)):
        if len(values) == 0:
            raise DriftError(f"the {side} sample has no values")
    return reference, current
