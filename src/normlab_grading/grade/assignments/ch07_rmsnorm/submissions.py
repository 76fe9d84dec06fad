"""The student code of each recognised mistake of assignment 07-rmsnorm, and of submissions
that call the reference or a library routine (used by the tests).

``VARIANTS[(check, mistake)]``: edits ``(solution cell id, old text, new text)`` that turn
the solution into a submission whose only mistake is that one (one entry per ``Expected``
row); ``CHEATS``: ``(edits, failing cells or "all", routine named in the message)``.
"""

# fmt: off

_MS = "np.mean(x ** 2, axis=axes, keepdims=True)"
_DX_RMS = "dx = dx - x_hat * (g * x_hat).mean(axis=axes, keepdims=True) / rms"
_FORWARD_CELLS = ("test_rms_forward", "test_rms_forward_two_axes", "test_rms_forward_3d_last",
                  "test_rms_forward_eps", "test_rms_forward_default_eps",
                  "test_rms_shape_check")

VARIANTS = {
    ("rms_forward", "mean_subtracted"): [
        ("rmsnorm_forward", f"rms = np.sqrt({_MS} + eps)",
         "x = x - x.mean(axis=axes, keepdims=True)\n"
         f"    rms = np.sqrt({_MS} + eps)")],
    ("rms_forward", "l2_norm"): [("rmsnorm_forward", "np.mean(x ** 2", "np.sum(x ** 2")],
    ("rms_forward", "gamma_missing"): [("rmsnorm_forward", "out = gamma * x_hat", "out = x_hat")],
    ("rms_forward_two_axes", "last_axis_only"): [
        ("rmsnorm_forward", "axes = tuple(range(x.ndim - k, x.ndim))", "axes = (x.ndim - 1,)")],
    ("rms_forward_3d_last", "all_axes_but_first"): [
        ("rmsnorm_forward", "axes = tuple(range(x.ndim - k, x.ndim))",
         "axes = tuple(range(1, x.ndim))")],
    ("rms_forward_eps", "eps_outside_sqrt"): [
        ("rmsnorm_forward", f"rms = np.sqrt({_MS} + eps)", f"rms = np.sqrt({_MS}) + eps")],
    ("rms_forward_eps", "eps_ignored"): [
        ("rmsnorm_forward", f"rms = np.sqrt({_MS} + eps)", f"rms = np.sqrt({_MS})")],
    ("rms_forward_default_eps", "fixed_eps"): [
        ("rmsnorm_forward", "eps = float(np.finfo(x.dtype).eps)", "eps = 1e-5")],
    ("rms_forward_default_eps", "other_dtype_eps"): [
        ("rmsnorm_forward", "eps = float(np.finfo(x.dtype).eps)",
         "eps = float(np.finfo(np.float32).eps)")],
    ("rms_forward_default_eps_float32", "other_dtype_eps"): [
        ("rmsnorm_forward", "eps = float(np.finfo(x.dtype).eps)", "eps = float(np.finfo(float).eps)")],
    ("rms_shape_check", "no_shape_check"): [
        ("rmsnorm_forward", "if k == 0 or x.ndim < k or", "if False and")],
    ("rms_shape_check", "wrong_exception"): [
        ("rmsnorm_forward", "raise ValueError(", "raise TypeError(")],
    ("rms_backward_dx", "rms_constant"): [("rmsnorm_backward", _DX_RMS, "dx = dx")],
    ("rms_backward_dx", "layer_norm_backward"): [
        ("rmsnorm_backward", "dx = dx - x_hat *",
         "dx = dx - g.mean(axis=axes, keepdims=True) / rms - x_hat *")],
    ("rms_backward_dx", "gamma_missing"): [("rmsnorm_backward", "g = dout * gamma", "g = dout")],
    ("rms_backward_dx_two_axes", "last_axis_only"): [
        ("rmsnorm_backward", "axes = tuple(range(dout.ndim - gamma.ndim, dout.ndim))",
         "axes = (dout.ndim - 1,)")],
    ("rms_backward_dgamma", "dgamma_wrong_axes"): [
        ("rmsnorm_backward", "(dout * x_hat).sum(axis=leading)", "(dout * x_hat).sum(axis=0)")],
    ("rms_backward_dgamma_two_axes", "dgamma_wrong_axes"): [
        ("rmsnorm_backward", "(dout * x_hat).sum(axis=leading)",
         "(dout * x_hat).sum(axis=tuple(range(dout.ndim - 1)))")],
    ("rms_backward_dgamma", "dgamma_not_summed"): [
        ("rmsnorm_backward", "(dout * x_hat).sum(axis=leading)", "dout * x_hat")],
    ("rms_backward_dgamma", "dgamma_mean"): [
        ("rmsnorm_backward", "(dout * x_hat).sum(axis=leading)",
         "(dout * x_hat).mean(axis=leading)")],
}

CHEATS = [
    ([("rmsnorm_forward", "k = gamma.ndim\n",
       "import normlab\n    return normlab.rmsnorm_forward(x, gamma, eps)\n")],
     _FORWARD_CELLS, "normlab.rmsnorm"),
    ([("rmsnorm_backward", "axes = tuple(range(dout.ndim - gamma.ndim, dout.ndim))\n",
       "import torch\n"
       "    xt = torch.tensor(x, requires_grad=True)\n"
       "    gt = torch.tensor(gamma, requires_grad=True)\n"
       "    torch.nn.functional.rms_norm(xt, gamma.shape, gt, eps).backward(torch.tensor(dout))\n"
       "    return xt.grad.numpy(), gt.grad.numpy()\n")],
     ("test_rms_backward_dx", "test_rms_backward_dgamma"), "torch.nn.functional.rms_norm"),
]
