"""Agreement between two label images (e.g. K-means against hierarchical)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Comparison:
    """Agreement of two labelings over the pixels both clustered.

    Attributes
    ----------
    ari : float
        Adjusted Rand index (1 = identical partitions, ~0 = chance).
    nmi : float
        Normalised mutual information (0..1).
    contingency : ndarray, shape (len(labels_a), len(labels_b))
        ``contingency[i, j]`` counts pixels with label ``labels_a[i]`` in
        ``a`` and ``labels_b[j]`` in ``b`` (row and column 0: label 0, not
        clustered). For labels 0..k that all occur (every result of
        :func:`cluster_image` without clean-up), row ``i`` is label ``i``.
    n_pixels : int
        Pixels clustered in both (label > 0 in ``a`` and ``b``).
    labels_a, labels_b : ndarray
        The label of each row / column: 0, then the labels > 0 that occur,
        in increasing order (so sparse labels such as 1e9 cost no memory).
    """

    ari: float
    nmi: float
    contingency: np.ndarray
    n_pixels: int
    labels_a: np.ndarray | None = None
    labels_b: np.ndarray | None = None


def compare_labels(a, b) -> Comparison:
    """Compare two label images of the same shape.

    Pixels with label 0 in either image are left out of the scores. Labels
    are compared by their distinct values, so any integer labels (up to
    uint64) work; rows and columns of the contingency table are the labels
    that occur (see :class:`Comparison`).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1, 1, 2, 2]])
    >>> round(compare_labels(a, 3 - a).ari, 3)
    1.0
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # heavy: lazy

    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(
            f"cannot compare label images of shapes {a.shape} and {b.shape}; "
            "compare results of the same image."
        )
    for name, arr in (("first", a), ("second", b)):
        if not np.issubdtype(arr.dtype, np.integer) or (arr.size and arr.min() < 0):
            raise ValueError(
                f"the {name} label image must hold non-negative integers, got dtype {arr.dtype}."
            )
    labels_a, ia = _distinct(a)
    labels_b, ib = _distinct(b)
    both = (ia > 0) & (ib > 0)
    n = int(both.sum())
    if n == 0:
        raise ValueError("the two label images have no clustered pixel (label > 0) in common.")
    ka, kb = labels_a.size, labels_b.size
    contingency = np.bincount(ia * kb + ib, minlength=ka * kb).reshape(ka, kb)
    ai, bi = ia[both], ib[both]
    return Comparison(
        ari=float(adjusted_rand_score(ai, bi)),
        nmi=float(normalized_mutual_info_score(ai, bi)),
        contingency=contingency,
        n_pixels=n,
        labels_a=labels_a,
        labels_b=labels_b,
    )


def _distinct(labels: np.ndarray):
    """0 and the labels > 0 that occur (sorted), and the index of every pixel's label among them."""
    flat = labels.ravel()
    if labels.dtype.itemsize <= 2:  # small labels: a table of every value is cheapest
        present = np.flatnonzero(np.bincount(flat, minlength=1))
        values = np.union1d([0], present)
        lookup = np.zeros(int(values[-1]) + 1, np.int64)
        lookup[values] = np.arange(values.size)
        return values.astype(labels.dtype), lookup[flat]
    values, index = np.unique(flat, return_inverse=True)
    if values.size == 0 or values[0] != 0:
        values, index = np.concatenate([np.zeros(1, values.dtype), values]), index + 1
    return values, index.ravel().astype(np.int64)
