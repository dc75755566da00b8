"""``MLP.fit(class_weight=...)``: class weights as per-example weights, at one place.

scikit-learn's meaning (``sklearn.utils.class_weight.compute_class_weight``) on polynn's labels,
the class indices 0..k-1 (softmax) or 0/1 (one sigmoid unit):

- a dict ``{class index: weight}``: each example of class c weighs ``class_weight[c]``
  (classes not named weigh 1);
- "balanced": class c weighs ``n / (n_classes * n_c)``, where ``n_c`` is the (sample-weighted)
  count of class c among the training rows, ``n`` their total and ``n_classes`` the number of
  classes present (as ``compute_class_weight("balanced", classes=np.unique(y), y=y,
  sample_weight=sample_weight)``).

The result multiplies ``sample_weight``, so a model trained with class weights equals one
trained with the equivalent per-example ``sample_weight``.
"""

from __future__ import annotations

import numpy as np

from polynn.nn.losses import CLASSIFIERS


def example_weights(class_weight, T, output: str, sample_weight=None):
    """Per-example weights from class weights.

    Parameters
    ----------
    class_weight : None, "balanced" or dict {int: float}
        Already checked in form by :data:`polynn.validate.FIT_OPTIONS`.
    T : numpy.ndarray, shape (k, m)
        The encoded targets as columns (one-hot for softmax, one 0/1 row for one sigmoid unit),
        any float dtype.
    output : str
        The model's output/loss pair.
    sample_weight : numpy.ndarray of float64, shape (m,), or None
        Checked example weights, multiplied with the class weights.

    Returns
    -------
    numpy.ndarray of float64, shape (m,), or None
        ``sample_weight`` when ``class_weight`` is None.

    Raises
    ------
    ValueError
        For a model that is not a single-label classifier (regression, multilabel), a class
        index the model does not have, or weights whose sum over the rows is 0.
    """
    if class_weight is None:
        return sample_weight
    if output not in CLASSIFIERS or (output == "sigmoid" and T.shape[0] > 1):
        raise ValueError(f"class_weight needs one class per example (output='softmax', or "
                         f"output='sigmoid' with one unit); this model has output={output!r} "
                         f"with {T.shape[0]} unit(s): pass per-example sample_weight instead")
    # Indicator rows (n_classes, m): one-hot columns, also for one sigmoid unit ([1 - t; t]).
    onehot = np.concatenate([1.0 - T, T], axis=0) if output == "sigmoid" else T
    onehot = onehot.astype(np.float64, copy=False)
    n_classes = onehot.shape[0]
    if class_weight == "balanced":
        counts = onehot @ (np.ones(onehot.shape[1]) if sample_weight is None else sample_weight)
        present = counts > 0
        per_class = np.ones(n_classes)
        with np.errstate(over="ignore"):  # refused below, with the reason
            per_class[present] = counts.sum() / (present.sum() * counts[present])
    else:
        unknown = sorted(c for c in class_weight if c >= n_classes)
        if unknown:
            raise ValueError(f"class_weight names class(es) {unknown}, but this model's "
                             f"classes are 0..{n_classes - 1}")
        per_class = np.ones(n_classes)
        for c, weight in class_weight.items():
            per_class[c] = weight
    weights = per_class[np.argmax(onehot, axis=0)]  # indexing: no inf * 0 from other classes
    if sample_weight is not None:
        weights = weights * sample_weight
    if not np.isfinite(weights.sum()):
        raise ValueError("class_weight='balanced' overflows: a class's (sample-weighted) count "
                         "is too small for its weight n / (n_classes * n_c) to be finite")
    if not weights.sum() > 0:
        raise ValueError("class_weight (times sample_weight) gives every training row weight "
                         "0: at least one row needs a positive weight")
    return weights
