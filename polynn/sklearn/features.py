"""The estimators as feature extractors: ``transform(X)`` returns a hidden layer's activations
(:meth:`polynn.MLP.hidden`), so a fitted classifier or regressor works as a step of a
``Pipeline`` (``fit`` then ``transform``), with ``get_feature_names_out`` and ``set_output``
as scikit-learn's transformers have them (``TransformerMixin``; names as
``ClassNamePrefixFeaturesOutMixin``: "mlpclassifier0", "mlpclassifier1", ...).

The layer is the parameter ``transform_layer``: 0-based among the hidden layers, negative
counting from the last, default -1 (the last hidden layer, the features the output layer reads:
what scikit-learn's users asked for in issues 8574 and 9468)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted, validate_data

from polynn.model.hidden import hidden_layer_index

from . import inputs


class HiddenFeatures(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """``transform`` and ``get_feature_names_out`` for :class:`~polynn.sklearn._base.BaseMLP`
    (which supplies ``coefs_``, ``transform_layer``, ``_model_for_weights`` and
    ``_weights_dtype``)."""

    def _transform_index(self) -> int:
        """``transform_layer`` as an index among the fitted network's hidden layers."""
        try:
            return hidden_layer_index(len(self.coefs_) - 1, self.transform_layer)
        except ValueError as err:
            raise ValueError(f"transform_layer={self.transform_layer!r}: {err}") from None

    @property
    def _n_features_out(self) -> int:
        """The width of the ``transform_layer`` hidden layer (AttributeError before fit)."""
        if "coefs_" not in self.__dict__:
            raise NotFittedError("not fitted")  # an AttributeError: hasattr() is False
        return int(np.shape(self.coefs_[self._transform_index()])[1])

    def transform(self, X: Any) -> Any:
        """The activations of hidden layer ``transform_layer`` for ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Sparse matrices are densified a block of rows at a time.

        Returns
        -------
        ndarray of shape (n_samples, hidden_layer_sizes[transform_layer])
            In the weights' dtype (float32 for float32 input, float64 otherwise; float32 for
            bfloat16 weights), computed in chunks of rows as ``predict``; with
            ``array_api_dispatch``, in the input's namespace and device.

        Raises
        ------
        ValueError
            When ``transform_layer`` is not a hidden layer of the fitted network (or it has
            none: ``hidden_layer_sizes=()``).
        """
        check_is_fitted(self, "coefs_")
        target, X = inputs.host_input(X)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                          dtype=(np.float64, np.float32))
        layer = self._transform_index()
        model = self._model_for_weights()
        dtype = self._weights_dtype()
        H = np.concatenate([inputs.host_array(model.hidden(block, layer), dtype)
                            for block in inputs.dense_blocks(X)], axis=0)
        return inputs.to_namespace(H, target)
