"""The student code of each recognised mistake of assignment 01-feature-scaling, and of submissions
that call the reference or a library routine (used by the tests).

``VARIANTS[(check, mistake)]``: edits ``(solution cell id, old text, new text)`` that turn
the solution into a submission whose only mistake is that one (one entry per ``Expected``
row); ``CHEATS``: ``(edits, failing cells or "all", routine named in the message)``.
"""

# fmt: off

VARIANTS = {
    ("minmax_fit_transform", "global_minmax"): [
        ("minmax_scaler", "self.data_min_ = X.min(axis=0)", "self.data_min_ = X.min()"),
        ("minmax_scaler", "self.data_max_ = X.max(axis=0)", "self.data_max_ = X.max()")],
    ("minmax_fit_transform", "per_sample"): [
        ("minmax_scaler", "self.data_min_ = X.min(axis=0)",
         "self.data_min_ = X.min(axis=1, keepdims=True)"),
        ("minmax_scaler", "self.data_max_ = X.max(axis=0)",
         "self.data_max_ = X.max(axis=1, keepdims=True)")],
    ("minmax_fit_transform", "divide_by_max"): [
        ("minmax_scaler", "return a + (X - self.data_min_) / (self.data_max_ - self.data_min_)",
         "return a + (X - self.data_min_) / self.data_max_")],
    ("minmax_new_data", "refit_on_new_data"): [
        ("minmax_scaler", "return a + (X - self.data_min_) / (self.data_max_ - self.data_min_)",
         "return a + (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))")],
    ("minmax_new_data", "feature_range_ignored"): [
        ("minmax_scaler", "a, b = self.feature_range", "a, b = 0.0, 1.0")],
    ("minmax_new_data", "clipped"): [
        ("minmax_scaler",
         "return a + (X - self.data_min_) / (self.data_max_ - self.data_min_) * (b - a)",
         "return np.clip(a + (X - self.data_min_) / (self.data_max_ - self.data_min_)"
         " * (b - a), a, b)")],
    ("minmax_new_data", "inverse_ignores_range"): [
        ("minmax_scaler", "return self.data_min_ + (X - a) / (b - a) * (",
         "return self.data_min_ + X * (")],
    ("standard_fit_transform", "unbiased_std"): [
        ("standard_scaler", "self.scale_ = np.sqrt(((X - self.mean_) ** 2).mean(axis=0))",
         "self.scale_ = X.std(axis=0, ddof=1)")],
    ("standard_fit_transform", "global_stats"): [
        ("standard_scaler", "self.mean_ = X.mean(axis=0)", "self.mean_ = X.mean()"),
        ("standard_scaler", "self.scale_ = np.sqrt(((X - self.mean_) ** 2).mean(axis=0))",
         "self.scale_ = X.std()")],
    ("standard_new_data", "refit_on_new_data"): [
        ("standard_scaler",
         "return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_",
         "X = np.asarray(X, dtype=np.float64)\n        return (X - X.mean(axis=0)) / X.std(axis=0)")],
    ("standard_new_data", "inverse_wrong_order"): [
        ("standard_scaler", "return np.asarray(X, dtype=np.float64) * self.scale_ + self.mean_",
         "return (np.asarray(X, dtype=np.float64) + self.mean_) * self.scale_")],
    ("standard_new_data", "inverse_divides"): [
        ("standard_scaler", "return np.asarray(X, dtype=np.float64) * self.scale_ + self.mean_",
         "return np.asarray(X, dtype=np.float64) / self.scale_ + self.mean_")],
    ("scale_train_test", "fit_on_test"): [
        ("scale_train_test", "return scaler.transform(X_train), scaler.transform(X_test)",
         "return scaler.transform(X_train), StandardScaler().fit(X_test).transform(X_test)")],
    ("scale_train_test", "fit_on_train_and_test"): [
        ("scale_train_test", "StandardScaler().fit(X_train)",
         "StandardScaler().fit(np.vstack([X_train, X_test]))")],
    ("condition_number", "singular_value_ratio"): [
        ("condition_number", "return float(eigenvalues[-1] / eigenvalues[0])",
         "return float(np.linalg.cond(X))")],
    ("condition_number", "centered_covariance"): [
        ("condition_number", "np.linalg.eigvalsh(X.T @ X / X.shape[0])",
         "np.linalg.eigvalsh(np.cov(X.T, bias=True))")],
    ("condition_number", "diagonal_ratio"): [
        ("condition_number", "return float(eigenvalues[-1] / eigenvalues[0])",
         "h = np.diag(X.T @ X)\n    return float(h.max() / h.min())")],
    ("condition_number", "inverted"): [
        ("condition_number", "eigenvalues[-1] / eigenvalues[0]",
         "eigenvalues[0] / eigenvalues[-1]")],
    ("gd_iterations", "one_too_many"): [("count_gd_iterations", "return k", "return k + 1")],
    ("gd_iterations", "one_too_few"): [("count_gd_iterations", "return k", "return k - 1")],
    ("gd_iterations", "absolute_tolerance"): [
        ("count_gd_iterations", "threshold = tol * np.linalg.norm(g)", "threshold = tol")],
}

CHEATS = [
    ([("condition_number", "X = np.asarray(X, dtype=np.float64)\n",
       "import normlab\n    return normlab.condition_number(X)\n")],
     ("test_condition_number",), "normlab.conditioning.condition_number"),
    ([("standard_scaler", "X = np.asarray(X, dtype=np.float64)\n        self.mean_",
       "from sklearn.preprocessing import StandardScaler as S\n"
       "        s = S().fit(X)\n        self.mean_, self.scale_ = s.mean_, s.scale_\n"
       "        return self\n        self.mean_")],
     ("test_standard_fit_transform", "test_standard_new_data", "test_scale_train_test"),
     "sklearn.preprocessing"),
]
