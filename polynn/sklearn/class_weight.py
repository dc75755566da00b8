"""``MLPClassifier(class_weight=...)``: scikit-learn's class weights as per-example weights.

scikit-learn's meaning, with its own functions: a dict ``{label: weight}`` (labels as in
``classes_``; labels not named weigh 1), or "balanced": ``n_samples / (n_classes *
np.bincount(y))`` weighted by ``sample_weight`` (``compute_class_weight(..., sample_weight=)``,
as ``LogisticRegression``), so integer sample weights still equal repeated rows. The result
multiplies ``sample_weight``: a model trained with class weights equals one trained with the
equivalent ``sample_weight``. Multilabel targets (a 0/1 indicator) take "balanced" or a list of
dicts ``[{0: w0, 1: w1}, ...]``, one per label, multiplied over the labels (as
``compute_sample_weight``). ``partial_fit`` is not available with "balanced" (one batch's
frequencies are not the data's; ``SGDClassifier`` refuses it too).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

PARTIAL_FIT_BALANCED = (
    "class_weight='balanced' is not supported for partial_fit (one batch's class frequencies "
    "are not the data's). Compute the weights once with sklearn.utils.class_weight."
    "compute_class_weight('balanced', classes=classes, y=y) on a large enough sample of the "
    "targets and pass them as class_weight={label: weight}.")


def class_sample_weight(class_weight, classes, Y, multilabel, sample_weight):
    """Per-example weights ``(m,)`` float64: the class weights of each row's label times
    ``sample_weight`` (None: 1).

    Parameters
    ----------
    class_weight : None, "balanced", dict {label: weight} or list of dicts (multilabel)
    classes : ndarray of shape (n_classes,)
        ``classes_``.
    Y : ndarray of shape (m, k)
        The binarized targets (``LabelBinarizer``): one column for two classes, one-hot rows
        for more, the indicator for multilabel.
    multilabel : bool
    sample_weight : ndarray of float64, shape (m,), or None

    Raises
    ------
    ValueError
        A list for single-label targets, a dict for multilabel ones, labels that are not
        classes, or weights whose sum is 0.
    """
    if class_weight is None:
        return sample_weight
    if multilabel:
        if isinstance(class_weight, dict):
            raise ValueError("For multi-output, class_weight should be a list of dicts, or the "
                             "string 'balanced'.")
        per_label = [class_weight] * Y.shape[1] if class_weight == "balanced" else class_weight
        if len(per_label) != Y.shape[1]:
            raise ValueError(f"class_weight has {len(per_label)} dicts but y has {Y.shape[1]} "
                             "labels: give one dict {0: w0, 1: w1} per label")
        weights = np.ones(Y.shape[0])
        keep = slice(None) if sample_weight is None else sample_weight > 0
        for column, table in zip(Y.T.astype(np.int64), per_label):
            present = np.unique(column[keep])
            vector = np.ones(2)
            vector[present] = compute_class_weight(
                table, classes=present, y=column[keep],
                sample_weight=None if sample_weight is None else sample_weight[keep])
            weights = weights * vector[column]
    else:
        if isinstance(class_weight, list):
            raise ValueError("class_weight as a list of dicts is for multilabel targets; give "
                             "a dict {label: weight} or 'balanced'")
        index = np.argmax(Y, axis=1) if Y.shape[1] > 1 else Y[:, 0].astype(np.int64)
        if class_weight == "balanced":
            # Over the samples that weigh: classes_ may hold labels this y lacks (warm_start),
            # and a class whose samples all weigh 0 has no frequency (its weight is moot).
            keep = slice(None) if sample_weight is None else sample_weight > 0
            present = np.unique(index[keep])
            vector = np.ones(len(classes))
            vector[present] = compute_class_weight(
                "balanced", classes=classes[present], y=classes[index[keep]],
                sample_weight=None if sample_weight is None else sample_weight[keep])
        else:
            vector = compute_class_weight(class_weight, classes=classes, y=classes[index])
        weights = vector[index]
    weights = weights.astype(np.float64)
    if sample_weight is not None:
        weights = weights * sample_weight
    if not weights.sum() > 0:
        raise ValueError("class_weight times sample_weight gives every sample weight 0: at "
                         "least one sample needs a positive weight")
    return weights
