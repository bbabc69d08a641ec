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
    contingency : ndarray, shape (ka + 1, kb + 1)
        ``contingency[i, j]`` counts pixels with label ``i`` in ``a`` and
        ``j`` in ``b`` (row and column 0: not clustered).
    n_pixels : int
        Pixels clustered in both (label > 0 in ``a`` and ``b``).
    """

    ari: float
    nmi: float
    contingency: np.ndarray
    n_pixels: int


def compare_labels(a, b) -> Comparison:
    """Compare two label images of the same shape.

    Pixels with label 0 in either image are left out of the scores.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1, 1, 2, 2]])
    >>> round(compare_labels(a, 3 - a).ari, 3)
    1.0
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

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
    a = a.ravel()
    b = b.ravel()
    both = (a > 0) & (b > 0)
    n = int(both.sum())
    if n == 0:
        raise ValueError("the two label images have no clustered pixel (label > 0) in common.")
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    contingency = np.bincount(a.astype(np.int64) * kb + b, minlength=ka * kb).reshape(ka, kb)
    ai, bi = a[both], b[both]
    return Comparison(
        ari=float(adjusted_rand_score(ai, bi)),
        nmi=float(normalized_mutual_info_score(ai, bi)),
        contingency=contingency,
        n_pixels=n,
    )
