"""The student code of each recognised mistake of assignment 02-zscore, and of submissions
that call the reference or a library routine (used by the tests).

``VARIANTS[(check, mistake)]``: edits ``(solution cell id, old text, new text)`` that turn
the solution into a submission whose only mistake is that one (one entry per ``Expected``
row); ``CHEATS``: ``(edits, failing cells or "all", routine named in the message)``.
"""

# fmt: off

VARIANTS = {
    ("zscore_basic", "unbiased_std"): [("zscore", "/ (n - ddof)", "/ (n - 1)")],
    ("zscore_basic", "per_sample"): [
        ("zscore", "mean = X.mean(axis=0)", "mean = X.mean(axis=1, keepdims=True)"),
        ("zscore", "var = ((X - mean) ** 2).sum(axis=0) / (n - ddof)",
         "var = ((X - mean) ** 2).sum(axis=1, keepdims=True) / (X.shape[1] - ddof)")],
    ("zscore_basic", "not_centered"): [("zscore", "out = (X - mean) / std", "out = X / std")],
    ("zscore_ddof", "ddof_ignored"): [("zscore", "/ (n - ddof)", "/ n")],
    ("zscore_eps", "eps_outside_sqrt"): [("zscore", "np.sqrt(var + eps)", "(np.sqrt(var) + eps)")],
    ("zscore_eps", "eps_ignored"): [("zscore", "np.sqrt(var + eps)", "np.sqrt(var)")],
    ("zscore_constant", "constant_nan"): [
        ("zscore", "std = np.where(std == 0, 1.0, std)", "pass")],
    ("zscore_constant", "constant_not_centered"): [
        ("zscore", "out = (X - mean) / std", "out = np.where(var == 0, X, (X - mean) / std)")],
    ("zscore_1d", "one_d_as_row"): [
        ("zscore", "X = X[:, None]", "X = X[None, :]"),
        ("zscore", "return out[:, 0] if one_feature else out", "return out")],
    ("zscore_1d", "one_d_returned_2d"): [
        ("zscore", "return out[:, 0] if one_feature else out", "return out")],
    ("zscore_too_few", "no_error_nan"): [("zscore", "if n - ddof <= 0:", "if False:")],
    ("zscore_too_few", "wrong_exception"): [
        ("zscore", "raise ValueError(", "raise ZeroDivisionError(")],
}

CHEATS = [
    ([("zscore", "X = np.asarray(X, dtype=np.float64)\n",
       "import normlab\n    return normlab.zscore(X, ddof=ddof, eps=eps)\n")],
     "all", "normlab.scaling.zscore"),
    ([("zscore", "X = np.asarray(X, dtype=np.float64)\n",
       "import scipy.stats\n    return scipy.stats.zscore(X, ddof=ddof)\n")],
     "all", "scipy.stats"),
]
