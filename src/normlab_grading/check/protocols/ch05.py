"""Calling protocols of assignment ics (ch05): how each check calls the
student's code and describes its case. Student side: no reference, no mistake model."""

from __future__ import annotations

import functools

import numpy as np

from ..outputs import Problem, nonfinite_in, shape_text


def _param_names(case):
    names = []
    for i in range(case["n_hidden"]):
        names += [f"w{i}"] + ([f"gamma{i}", f"beta{i}"] if case["bn"] else [f"b{i}"])
    k = case["n_hidden"]
    return names + [f"w{k}", f"b{k}"]


def network(case):
    """``(loss_fn, params)`` of the case's MLP: ``loss_fn(params)`` is the mean binary
    cross-entropy on the case's batch (a 0-d tensor), in training mode: batch norm with the
    batch's statistics (biased variance, eps 1e-5), written out in torch operations."""
    import torch
    import torch.nn.functional as F

    x = torch.tensor(case["x"], dtype=torch.float64)
    y = torch.tensor(case["y"], dtype=torch.float64)
    n_hidden, bn = case["n_hidden"], case["bn"]

    def loss_fn(p):
        h = x
        for i in range(n_hidden):
            h = h @ p[f"w{i}"].T
            if bn:
                mu = h.mean(dim=0)
                var = ((h - mu) ** 2).mean(dim=0)
                h = (h - mu) / torch.sqrt(var + 1e-5) * p[f"gamma{i}"] + p[f"beta{i}"]
            else:
                h = h + p[f"b{i}"]
            h = torch.relu(h)
        out = h @ p[f"w{n_hidden}"].T + p[f"b{n_hidden}"]
        return F.binary_cross_entropy_with_logits(out[:, 0], y)

    params = {k: torch.tensor(case[k], dtype=torch.float64) for k in _param_names(case)}
    return loss_fn, params


def _describe_drift(case):
    p, b, u = case["H"].shape
    return f"H of shape ({p}, {b}, {u}): {p} probes of {b} examples, {u} units"


def _describe_net(case):
    widths = [case[f"w{i}"].shape[0] for i in range(case["n_hidden"])]
    text = (f"MLP {case['x'].shape[1]} -> {' -> '.join(map(str, widths))} -> 1"
            f"{' with BN' if case['bn'] else ''}, batch of {case['x'].shape[0]}, "
            f"target {case['target']!r}, preceding {list(case['preceding'])}, lr={case['lr']:g}")
    if "step_sizes" in case:
        text += f", step_sizes={list(case['step_sizes'])}"
    return text


def _describe_experiment(case):
    return (f"run_experiment(seed={case['seed']}, use_bn={case['use_bn']}, "
            f"epochs={case['epochs']})")


def _plain(value):
    """A torch tensor as a number or numpy array; anything else as it is."""
    if hasattr(value, "detach") and hasattr(value, "numel"):
        value = value.detach().cpu()
        return value.item() if value.numel() == 1 else value.numpy()
    return value


def _tuple_outputs(result, keys, what):
    if not (isinstance(result, (tuple, list)) and len(result) == len(keys)):
        p = Problem(f"not {what} (got {type(result).__name__})")
        return {k: p for k in keys}
    return {k: _plain(v) for k, v in zip(keys, result)}


def _call_drift(student, case):
    return _tuple_outputs(student(case["H"]), ("drift", "jump", "rel_jump"),
                          "a triple (drift, jump, rel_jump)")


def _call_gc_keys(student, case, keys):
    loss_fn, params = network(case)
    out = _tuple_outputs(student(loss_fn, params, case["target"], list(case["preceding"]),
                                 case["lr"]), ("diff", "cos"), "a pair (diff, cos)")
    return {k: out[k] for k in keys}


def _call_gc(keys):
    """The protocol of a gradient-change check that compares ``keys`` (a partial)."""
    return functools.partial(_call_gc_keys, keys=tuple(keys))


def _call_landscape(student, case):
    loss_fn, params = network(case)
    return _tuple_outputs(student(loss_fn, params, list(case["step_sizes"])),
                          ("loss", "grad_change", "beta"),
                          "a triple (losses, grad_changes, beta)")


def _call_experiment(student, case):
    losses = student(case["seed"], case["use_bn"], case["epochs"])
    if isinstance(losses, (list, tuple)):
        losses = [_plain(v) for v in losses]
    return {"losses": _plain(losses)}
