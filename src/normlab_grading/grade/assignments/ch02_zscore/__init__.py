"""Assignment 02-zscore: ``zscore(X, ddof=0, eps=0.0)`` and its edge cases.

The student writes ``zscore(X, ddof=0, eps=0.0)``: per feature (column) of ``X``
(n_samples, n_features), or of a 1-D ``X`` as one feature, ``(X - mean) / sqrt(var + eps)``
with ``var = sum((X - mean)**2) / (n - ddof)``; a constant feature maps to 0 when eps is 0;
``n - ddof <= 0`` raises ValueError. Reference: ``normlab.zscore``.
"""

NAME = "02-zscore"
