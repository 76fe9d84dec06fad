"""Train mode versus eval mode: the classic batch norm bugs, reproduced on article 002's data.

Chapter 4 ("Test-time behaviour") uses these functions.

- ``train_bn_mlp``: article 002's architecture (Linear -> BN -> ReLU twice, then a Linear to one
  logit) trained with ``normlab.training.train``.
- ``accuracy_in_train_mode``: what a forgotten ``model.eval()`` does: every test batch is
  normalized with its own statistics, so accuracy depends on the batch size and on how the
  batches are composed. Works on a copy, so the caller's running statistics stay intact.
- ``prediction_spread``: the predicted probability of ONE test example over many random
  batches it is evaluated in (train mode), versus its single eval-mode prediction.
- ``freeze_bn`` and ``finetune``: what "freezing" BN means. ``requires_grad=False`` stops the
  optimizer from changing gamma and beta, but a BN module in training mode still normalizes
  with batch statistics and still overwrites its running statistics; only ``eval()`` mode
  freezes the statistics, and it must be re-applied after every ``model.train()``.
"""

from __future__ import annotations

import copy

import numpy as np

from normlab.data import article002_classification, to_tensors
from normlab.training import mlp, seed_everything, train
from .running_stats import bn_modules, set_bn_momentum

__all__ = [
    "train_bn_mlp",
    "accuracy_in_train_mode",
    "prediction_spread",
    "freeze_bn",
    "finetune",
]


def train_bn_mlp(seed: int = 0, epochs: int = 10, momentum=0.1, lr: float = 1e-3,
                 norm: str | None = "bn", placement: str = "before"):
    """Article 002's model with BN, trained on article 002's data; returns ``(model, data)``.

    data = (X_train, y_train, X_test, y_test) as torch tensors from
    ``article002_classification(seed)`` (800 / 200 examples, 20 features). The weights are
    initialised after ``seed_everything(seed)``; Adam, batch 32. ``momentum`` is set on both BN
    layers (it changes only the running statistics, never the trained weights).
    ``norm=None`` trains the same network without BN (the linear layers get biases), the
    baseline for comparisons. ``placement="after"`` puts BN after the ReLU, as article 002's
    Keras code does (``Dense(64, relu)`` then ``BatchNormalization``; the linear layers keep
    their biases, which are no longer redundant); ``"before"`` is Ioffe and Szegedy's
    ``Linear -> BN -> ReLU``.
    """
    if norm not in ("bn", None):
        raise ValueError(f"norm must be 'bn' or None, got {norm!r}")
    if placement not in ("before", "after"):
        raise ValueError(f"placement must be 'before' or 'after', got {placement!r}")
    data = to_tensors(article002_classification(seed=seed))
    seed_everything(seed)
    if norm == "bn" and placement == "after":
        import torch.nn as nn

        model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.BatchNorm1d(64),
                              nn.Linear(64, 64), nn.ReLU(), nn.BatchNorm1d(64), nn.Linear(64, 1))
    else:
        model = mlp(20, (64, 64), 1, norm=norm)
    set_bn_momentum(model, momentum)
    train(model, data, epochs=epochs, batch_size=32, lr=lr, seed=seed, eval_every_epoch=False)
    model.eval()
    return model, data


def _binary_correct(logits, y) -> int:
    return int(((logits[:, 0] > 0).long() == y).sum())


def accuracy_in_train_mode(model, X, y, batch_size: int, order: str = "shuffled", seed: int = 0):
    """Accuracy of ``model`` evaluated in TRAINING mode (the forgotten ``eval()``), on a copy.

    The test set is cut into consecutive batches of ``batch_size`` after ordering it
    ("shuffled": a seeded random permutation; "sorted": by label, as a loader over data stored
    class by class would deliver it). A final batch of one example is dropped (training-mode BN
    rejects it). Returns the accuracy over the examples evaluated, or nan for batch_size 1.
    """
    import torch

    if order not in ("shuffled", "sorted"):
        raise ValueError(f"order must be 'shuffled' or 'sorted', got {order!r}")
    if batch_size < 2:
        return float("nan")
    m = copy.deepcopy(model).train()
    if order == "shuffled":
        idx = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    else:
        idx = torch.argsort(y, stable=True)
    X, y = X[idx], y[idx]
    correct = total = 0
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            xb, yb = X[i : i + batch_size], y[i : i + batch_size]
            if len(xb) < 2:
                continue
            correct += _binary_correct(m(xb), yb)
            total += len(xb)
    return correct / total


def prediction_spread(model, x0, pool, batch_size: int, n_batches: int = 200, seed: int = 0):
    """Predicted probability for one example ``x0`` (shape (F,)) in many random batches.

    Each batch is x0 plus ``batch_size - 1`` examples drawn without replacement from ``pool``;
    the model (a copy, in training mode) is run on it and sigmoid(logit of x0) kept. Returns
    ``(probs in train mode, shape (n_batches,), prob in eval mode)``.
    """
    import torch

    m = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    probs = np.empty(n_batches)
    with torch.no_grad():
        # Eval mode first: the train-mode passes below overwrite the copy's running statistics.
        m.eval()
        p_eval = float(torch.sigmoid(m(x0[None])[0, 0]))
        m.train()
        for b in range(n_batches):
            others = pool[torch.randperm(len(pool), generator=gen)[: batch_size - 1]]
            batch = torch.cat([x0[None], others])
            probs[b] = float(torch.sigmoid(m(batch)[0, 0]))
    return probs, p_eval


def freeze_bn(model, how: str) -> None:
    """Freeze the BN layers of ``model`` in one of two ways (in place).

    "requires_grad": gamma and beta get ``requires_grad=False`` (the module stays in whatever
    mode the model is in); "eval": the BN modules are put in eval mode AND their parameters get
    ``requires_grad=False``. "eval" must be re-applied after every ``model.train()``.
    """
    if how not in ("requires_grad", "eval"):
        raise ValueError(f"how must be 'requires_grad' or 'eval', got {how!r}")
    for m in bn_modules(model):
        for p in m.parameters():
            p.requires_grad_(False)
        if how == "eval":
            m.eval()


def finetune(model, X, y, bn: str = "train", steps: int = 50, batch_size: int = 32,
             lr: float = 1e-3, seed: int = 0) -> dict:
    """Fine-tune a copy of a binary classifier on (X, y) with BN handled one of three ways.

    bn: "train" (nothing frozen), "requires_grad" (gamma and beta frozen only) or "eval"
    (BN frozen for real: eval mode re-applied after ``model.train()`` at every step).
    Returns {"model": the fine-tuned copy, "running_mean_change", "running_var_change",
    "gamma_change", "beta_change"}: the largest absolute change over all BN layers.
    """
    import torch
    import torch.nn.functional as F

    if bn not in ("train", "requires_grad", "eval"):
        raise ValueError(f"bn must be 'train', 'requires_grad' or 'eval', got {bn!r}")
    m = copy.deepcopy(model)
    before = [
        (l.running_mean.clone(), l.running_var.clone(), l.weight.detach().clone(),
         l.bias.detach().clone())
        for l in bn_modules(m)
    ]
    if bn != "train":
        freeze_bn(m, bn)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        m.train()
        if bn == "eval":  # model.train() just switched the BN layers back to training mode
            freeze_bn(m, "eval")
        idx = torch.randperm(len(X), generator=gen)[:batch_size]
        loss = F.binary_cross_entropy_with_logits(m(X[idx])[:, 0], y[idx].float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    m.eval()
    changes = {"running_mean_change": 0.0, "running_var_change": 0.0,
               "gamma_change": 0.0, "beta_change": 0.0}
    for l, (rm, rv, w, b) in zip(bn_modules(m), before):
        pairs = (("running_mean_change", l.running_mean, rm), ("running_var_change", l.running_var, rv),
                 ("gamma_change", l.weight.detach(), w), ("beta_change", l.bias.detach(), b))
        for key, new, old in pairs:
            changes[key] = max(changes[key], float((new - old).abs().max()))
    return {"model": m, **changes}
