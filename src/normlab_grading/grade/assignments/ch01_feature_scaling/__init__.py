"""Assignment 01-feature-scaling: scalers, leakage, conditioning, gradient-descent steps.

The student writes:

- ``class MinMaxScaler(feature_range=(0.0, 1.0))`` and ``class StandardScaler()``, each
  with ``fit(X)`` (returns self), ``transform(X)`` and ``inverse_transform(X)``; per
  feature, with the statistics of the data given to ``fit`` (population std);
- ``scale_train_test(X_train, X_test) -> (X_train_scaled, X_test_scaled)``: standardize
  both with a StandardScaler fitted on X_train only;
- ``condition_number(X)``: ``lambda_max / lambda_min`` of the least-squares Hessian
  ``H = X^T X / n`` (no intercept);
- ``count_gd_iterations(X, y, lr, tol=1e-6, max_iter=100_000)``: the number of updates
  ``w <- w - lr * X^T (X w - y) / n`` from ``w = 0`` until ``||g|| <= tol * ||g_0||``.

References: ``normlab.MinMaxScaler``, ``normlab.StandardScaler``,
``normlab.condition_number``, ``normlab.count_gd_iterations``.
"""

NAME = "01-feature-scaling"
