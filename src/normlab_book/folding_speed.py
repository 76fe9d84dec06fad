"""Folding batch norm into the previous layer, and what BN costs at inference.

Chapter 4 ("Test-time behaviour") uses these functions to check article 004's claim that
"computing mean and variance at inference adds cost".

- ``digits_cnn``: a small CNN for the 8x8 digits, conv -> (BN) -> ReLU twice, then a Linear.
  With BN the convolutions have no bias (BN's beta replaces it).
- ``fold_sequential``: a copy of an ``nn.Sequential`` in which every (Linear or Conv) followed by
  a BN module is replaced by one layer with the folded weight and bias from
  ``normlab.fold_batchnorm``, and the BN module is dropped. Needs eval mode.
- ``inference_times``: eval-mode, no-grad forward times of several models on the same input,
  interleaved (``normlab_book.timing``).
"""

from __future__ import annotations

import copy

from normlab.folding import fold_batchnorm
from .timing import time_interleaved

__all__ = ["digits_cnn", "fold_sequential", "inference_times"]


def digits_cnn(bn: bool = True, channels=(16, 32), n_classes: int = 10):
    """Conv(1->c1, 3x3, pad 1) -> [BN] -> ReLU -> Conv(c1->c2) -> [BN] -> ReLU -> Linear.

    Input (N, 1, 8, 8); output (N, n_classes) logits. With ``bn=False`` the convolutions carry
    a bias, so the network has exactly the layers of a folded BN network.
    """
    import torch.nn as nn

    c1, c2 = channels
    layers = [nn.Conv2d(1, c1, 3, padding=1, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(c1))
    layers += [nn.ReLU(), nn.Conv2d(c1, c2, 3, padding=1, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(c2))
    layers += [nn.ReLU(), nn.Flatten(), nn.Linear(c2 * 8 * 8, n_classes)]
    return nn.Sequential(*layers)


def _with_bias(layer):
    """A copy of a Linear or Conv layer that has a bias parameter (zeros if it had none)."""
    import torch
    import torch.nn as nn

    if layer.bias is not None:
        return copy.deepcopy(layer)
    if isinstance(layer, nn.Linear):
        new = nn.Linear(layer.in_features, layer.out_features, bias=True)
    else:
        new = type(layer)(
            layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
            padding=layer.padding, dilation=layer.dilation, groups=layer.groups, bias=True,
            padding_mode=layer.padding_mode,
        )
    new = new.to(dtype=layer.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(layer.weight)
        new.bias.zero_()
    return new


def fold_sequential(model):
    """A folded copy of ``model`` (an ``nn.Sequential``) for inference, in eval mode.

    Every Linear / Conv1d / Conv2d / Conv3d immediately followed by a BatchNorm module becomes
    one layer with weight ``W * s`` and bias ``(b - running_mean) * s + beta``,
    ``s = gamma / sqrt(running_var + eps)``; the BN module disappears. The model must be in
    eval mode (BN is a fixed affine map only there). Weights keep their dtype.
    """
    import torch
    import torch.nn as nn
    from torch.nn.modules.batchnorm import _BatchNorm

    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    if model.training:
        raise ValueError("call model.eval() before folding: BN uses batch statistics in training")
    mods = list(model)
    out = []
    i = 0
    foldable = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    while i < len(mods):
        layer = mods[i]
        nxt = mods[i + 1] if i + 1 < len(mods) else None
        if isinstance(layer, foldable) and isinstance(nxt, _BatchNorm):
            w, b = fold_batchnorm(layer.weight, layer.bias, nxt)
            new = _with_bias(layer)
            with torch.no_grad():
                new.weight.copy_(torch.as_tensor(w))
                new.bias.copy_(torch.as_tensor(b))
            out.append(new)
            i += 2
        else:
            out.append(copy.deepcopy(layer))
            i += 1
    return nn.Sequential(*out).eval()


def inference_times(models: dict, x, repeats: int = 20, number: int = 5,
                    clock: str = "cpu") -> dict:
    """Seconds per eval-mode, no-grad forward of each model on ``x``; {name: (repeats,)}.

    CPU time of this process by default (see ``normlab_book.timing``).
    """
    import torch

    def runner(m):
        m.eval()

        def run():
            with torch.no_grad():
                m(x)

        return run

    return time_interleaved({k: runner(m) for k, m in models.items()}, repeats=repeats,
                            number=number, clock=clock)
