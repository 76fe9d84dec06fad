"""A small, seeded training loop for the chapters' PyTorch experiments.

One way to train everywhere in the course: ``train(model, data, ...)`` runs mini-batch
training with a given optimizer and records, per epoch, the training loss and the train/test
accuracy (and optional per-step hooks). ``seed_everything`` fixes torch's and numpy's RNGs.
``mlp`` builds article 002's architecture (and deeper variants) with or without a
normalization layer after each linear layer, before the activation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["seed_everything", "mlp", "History", "loss_and_correct", "train", "evaluate"]


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global RNGs."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def mlp(
    in_features: int,
    hidden: tuple[int, ...] = (64, 64),
    out_features: int = 1,
    norm: str | Callable | None = None,
    activation: Callable | None = None,
    bias_before_norm: bool = False,
):
    """An MLP: [Linear -> (norm) -> activation] per hidden layer, then a Linear output.

    ``norm``: None, "bn" (BatchNorm1d), "ln" (LayerNorm) or a callable ``width -> Module``.
    The normalization sits after the linear layer and before the activation (Ioffe and
    Szegedy's placement); the linear layer before a norm has no bias unless
    ``bias_before_norm`` (the norm's beta makes it redundant). Output: raw logits.
    """
    import torch.nn as nn

    makers = {"bn": nn.BatchNorm1d, "ln": nn.LayerNorm, None: None}
    if isinstance(norm, str) or norm is None:
        if norm not in makers:
            raise ValueError(f"norm must be None, 'bn', 'ln' or a callable, got {norm!r}")
        make_norm = makers[norm]
    else:
        make_norm = norm
    act = activation or nn.ReLU
    layers: list = []
    width = in_features
    for h in hidden:
        layers.append(nn.Linear(width, h, bias=make_norm is None or bias_before_norm))
        if make_norm is not None:
            layers.append(make_norm(h))
        layers.append(act())
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


@dataclass
class History:
    """Per-epoch records of one training run."""

    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    step_loss: list = field(default_factory=list)

    def as_arrays(self) -> dict:
        return {k: np.asarray(v) for k, v in self.__dict__.items()}


def loss_and_correct(logits, y):
    """Summed loss and number of correct predictions of ``logits`` (B, out) for targets ``y``
    (B,): binary cross-entropy with logits for one output unit (article 002's sigmoid
    output), cross-entropy for several. Two 0-d tensors; the training loop's loss is the
    sum divided by B."""
    import torch.nn.functional as F

    if logits.ndim == 2 and logits.shape[1] == 1:  # binary, article 002's sigmoid output
        logits = logits[:, 0]
        loss = F.binary_cross_entropy_with_logits(logits, y.float(), reduction="sum")
        correct = ((logits > 0).long() == y).sum()
    else:
        loss = F.cross_entropy(logits, y, reduction="sum")
        correct = (logits.argmax(1) == y).sum()
    return loss, correct


def evaluate(model, X, y, batch_size: int = 1024) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` in eval mode on (X, y); restores the mode after."""
    import torch

    was_training = model.training
    model.eval()
    total, correct, n = 0.0, 0, len(X)
    with torch.no_grad():
        for i in range(0, n, batch_size):
            l, c = loss_and_correct(model(X[i : i + batch_size]), y[i : i + batch_size])
            total += float(l)
            correct += int(c)
    model.train(was_training)
    return total / n, correct / n


def train(
    model,
    data,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 1e-3,
    optimizer: str = "adam",
    seed: int = 0,
    on_step: Callable | None = None,
    eval_every_epoch: bool = True,
) -> History:
    """Train ``model`` on ``data = (X_train, y_train, X_test, y_test)`` (torch tensors).

    Mini-batches are shuffled by a ``torch.Generator`` seeded with ``seed``, so a run is
    reproducible given the model's initial weights. ``optimizer``: "adam" or "sgd" (plain SGD).
    Binary targets with a 1-unit output use BCE-with-logits; otherwise cross-entropy.
    ``on_step(step, model, loss)`` is called after every optimizer step.
    """
    import torch

    X_train, y_train, X_test, y_test = data
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    gen = torch.Generator().manual_seed(seed)
    hist = History()
    n = len(X_train)
    step = 0
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            if len(idx) < 2 and any(
                isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()
            ):
                continue  # a last batch of one cannot be batch-normalized in training
            loss_sum, _ = loss_and_correct(model(X_train[idx]), y_train[idx])
            loss = loss_sum / len(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            hist.step_loss.append(loss.item())
            step += 1
            if on_step is not None:
                on_step(step, model, loss.item())
        if eval_every_epoch:
            tl, ta = evaluate(model, X_train, y_train)
            vl, va = evaluate(model, X_test, y_test)
            hist.train_loss.append(tl)
            hist.train_acc.append(ta)
            hist.test_loss.append(vl)
            hist.test_acc.append(va)
    return hist
