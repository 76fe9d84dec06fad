# %% [markdown]
# # Assignment 5: internal covariate shift, measured
#
# Chapter 5 of the book tests the original explanation of batch normalization, internal
# covariate shift (ICS): that BN helps because it keeps the distribution of every layer's
# inputs from moving during training. Here you write the measurements the chapter uses and
# run one experiment with them:
#
# 1. `input_drift(H)`: how far the distribution of a layer's inputs moves during training;
# 2. `gradient_change(loss_fn, params, target, preceding, lr)`: Santurkar et al.'s ICS,
#    how much a layer's gradient changes when the layers before it take a step;
# 3. `loss_along_gradient(loss_fn, params, step_sizes)`: the loss and the gradient along the
#    gradient direction, and the effective smoothness beta;
# 4. `run_experiment(seed, use_bn, epochs)`: article 002's network trained with and without
#    BN, seeded, reporting its training loss after every epoch.
#
# Parts 2 and 3 use torch's autograd on a small network given as a function
# `loss_fn(params)` of a dict `params` (name -> float64 tensor); part 4 trains with torch.
# Calling `normlab` (its `ics` and `training` modules included) inside a graded
# function scores 0 for that test, with a message saying why; `normlab.data` is allowed.
#
# ## How you are graded
#
# Each test cell runs a visible test, which you can run yourself, and hidden tests on
# other inputs (other shapes, networks, step sizes and seeds) when your notebook is graded.
# A test cell scores its points only if every test in it passes. Total: {{total}} points.
#
# {{points_table}}
#
# Check your work with the visible tests (run all cells), then
# `nbgrader validate exercises/05-ics/05-ics.ipynb` from the repository root.
#
# ### What the checker recognises
#
# When a test fails because of one of these common mistakes, the message names it. The
# last column is the score of a notebook whose only mistake is that one.
#
# {{mistakes_table}}
#
# Any other wrong answer gets the largest error and the index of the worst entry.
# A warning printed by your code does not cost points: it is shown as a note.

# %%
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from normlab import data

torch.set_num_threads(1)  # the networks are tiny: one thread is fastest


def gradients(loss_fn, params, names):
    """The gradients of loss_fn(params) with respect to params[name], name in names (a dict).

    params is not changed: the gradient is taken at detached copies of its tensors.
    """
    p = {k: v.detach().clone().requires_grad_(k in names) for k, v in params.items()}
    grads = torch.autograd.grad(loss_fn(p), [p[k] for k in names])
    return dict(zip(names, grads))

# %% [markdown]
# ## 1. Do a layer's inputs drift?
#
# During training, the book records the inputs of one hidden layer's activation on a fixed
# probe batch every few steps. `H[t, i, j]` is the input of unit `j` for probe example `i`
# at the `t`-th recording: `H` has shape `(P, B, U)`. For each recording `t` and unit `j`,
# take the mean `mu_t(j)` and the **biased** standard deviation `sigma_t(j)` over the
# probe batch (axis 1). Return three floats:
#
# - `drift = mean_j |mu_last(j) - mu_first(j)|`, how far the means moved in total;
# - `jump = mean_{t, j} |mu_{t+1}(j) - mu_t(j)|`, how far they move between two recordings;
# - `rel_jump = jump / mean_{t, j} sigma_t(j)`, the jump in units of the layer's spread.

# %% [solution] id=input_drift
def input_drift(H):
    """Drift statistics of a layer's inputs H (P, B, U): (drift, jump, rel_jump)."""
    ### BEGIN SOLUTION
    mu = H.mean(axis=1)
    sigma = H.std(axis=1)
    drift = float(np.abs(mu[-1] - mu[0]).mean())
    jump = float(np.abs(np.diff(mu, axis=0)).mean())
    rel_jump = jump / float(sigma.mean())
    ### END SOLUTION
    return drift, jump, rel_jump

# %% [tests] id=test_input_drift

# %% [markdown]
# ## 2. ICS as a change of gradient
#
# Santurkar et al. (2018) measure ICS for layer `k` as the change of its gradient when the
# layers before it are updated. With `G` the gradient of the loss with respect to
# `params[target]`, move every parameter named in `preceding` (the layers before the
# target) by one SGD step on the same loss, `W_i' = W_i - lr * dL/dW_i`, keep all other
# parameters (the target's included) as they are, and let `G'` be the target's gradient
# there. Return `diff = ||G - G'||` and `cos = <G, G'> / (||G|| ||G'||)` (norms and dot
# product over all entries, as flat vectors) as floats.
#
# `loss_fn(params)` returns the loss (a 0-d tensor) of a small MLP on a fixed batch;
# `params` maps names (`"w0"`, `"gamma0"`, `"beta0"`, `"w1"`, ...) to float64 tensors. The
# helper `gradients(loss_fn, params, names)` above returns the gradients you need.

# %% [solution] id=gradient_change
def gradient_change(loss_fn, params, target, preceding, lr):
    """(||G - G'||, cos(G, G')) of params[target]'s gradient when `preceding` take an SGD step."""
    ### BEGIN SOLUTION
    names = list(preceding) + [target]
    g = gradients(loss_fn, params, names)
    moved = dict(params)
    for k in preceding:
        moved[k] = params[k] - lr * g[k]
    G = g[target].flatten()
    G2 = gradients(loss_fn, moved, [target])[target].flatten()
    diff = (G - G2).norm().item()
    cos = (G @ G2 / (G.norm() * G2.norm())).item()
    ### END SOLUTION
    return diff, cos

# %% [tests] id=test_gradient_change_diff

# %% [tests] id=test_gradient_change_cos

# %% [markdown]
# ## 3. The loss landscape along the gradient
#
# At `theta` (all parameters) with gradient `g`, evaluate for each step size `eta` the loss
# `L(theta - eta * g)` and the gradient change `||grad L(theta - eta * g) - g||` (over all
# parameters, as one flat vector). The effective smoothness is the largest change of the
# gradient per unit of distance moved,
# `beta = max_eta ||grad L(theta - eta g) - g|| / (eta * ||g||)`.
# Return `(losses, grad_changes, beta)`: two arrays of shape `(len(step_sizes),)` and a
# float.

# %% [solution] id=loss_along_gradient
def loss_along_gradient(loss_fn, params, step_sizes):
    """Losses and gradient changes at theta - eta * g for each eta, and the effective beta."""
    ### BEGIN SOLUTION
    names = list(params)
    g = gradients(loss_fn, params, names)
    g_flat = torch.cat([g[k].flatten() for k in names])
    losses, changes = [], []
    for eta in step_sizes:
        moved = {k: params[k] - eta * g[k] for k in names}
        g2 = gradients(loss_fn, moved, names)
        g2_flat = torch.cat([g2[k].flatten() for k in names])
        losses.append(loss_fn(moved).item())
        changes.append((g2_flat - g_flat).norm().item())
    losses, changes = np.array(losses), np.array(changes)
    beta = float(np.max(changes / (np.array(step_sizes) * g_flat.norm().item())))
    ### END SOLUTION
    return losses, changes, beta

# %% [tests] id=test_loss_along_gradient

# %% [markdown]
# ## 4. The experiment: article 002's network with and without BN
#
# Article 002 trains `Dense(64, relu) + BN`, `Dense(64, relu) + BN`, `Dense(1, sigmoid)` on
# `make_classification(n_samples=1000, n_features=20)`. Re-do it in torch, small enough to
# run in a second, with exactly this protocol (the tests compare your losses with the
# reference run to a relative error of 1e-5, so follow every step):
#
# - data: `X_train, y_train` below (article 002's data, `normlab.data`, seed 0: 800
#   training examples, 20 features, labels 0/1);
# - `torch.manual_seed(seed)`, then build the model: for each of the two hidden layers of
#   64 units, `nn.Linear(in, 64, bias=not use_bn)`, then `nn.BatchNorm1d(64)` if `use_bn`,
#   then `nn.ReLU()`; then `nn.Linear(64, 1)` (one logit), all in one `nn.Sequential`;
# - `gen = torch.Generator().manual_seed(seed)`, created once; each epoch, in training mode,
#   go through `perm = torch.randperm(800, generator=gen)` in mini-batches of 32
#   (`perm[i:i + 32]`), each a plain SGD step with learning rate 0.1 on the mean binary
#   cross-entropy with logits (`F.binary_cross_entropy_with_logits`);
# - after each epoch, in eval mode and without gradients, record the mean binary
#   cross-entropy on the 800 training examples.
#
# Return the recorded losses, an array of shape `(epochs,)`. (`torch.optim.SGD` or your own
# update `p -= 0.1 * p.grad` both work; the optimizer's first step imports a lot of torch,
# which takes a few seconds once.)

# %%
X_train, y_train, X_test, y_test = data.to_tensors(data.article002_classification(seed=0))
print(X_train.shape, y_train.shape, X_train.dtype)

# %% [solution] id=run_experiment
def run_experiment(seed, use_bn, epochs=3):
    """Per-epoch training losses (eval mode) of article 002's MLP, with or without BN."""
    ### BEGIN SOLUTION
    torch.manual_seed(seed)
    layers, width = [], X_train.shape[1]
    for h in (64, 64):
        layers.append(nn.Linear(width, h, bias=not use_bn))
        if use_bn:
            layers.append(nn.BatchNorm1d(h))
        layers.append(nn.ReLU())
        width = h
    layers.append(nn.Linear(width, 1))
    model = nn.Sequential(*layers)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(X_train), generator=gen)
        for i in range(0, len(X_train), 32):
            idx = perm[i:i + 32]
            loss = F.binary_cross_entropy_with_logits(model(X_train[idx])[:, 0],
                                                      y_train[idx].float())
            model.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.1 * p.grad
        model.eval()
        with torch.no_grad():
            losses.append(F.binary_cross_entropy_with_logits(model(X_train)[:, 0],
                                                             y_train.float()).item())
    ### END SOLUTION
    return np.array(losses)

# %% [tests] id=test_experiment_bn

# %% [tests] id=test_experiment_plain

# %% [markdown]
# ## What did the experiment show?
#
# Not graded. Three seeds, with and without BN. Compare the training loss after the first
# epoch and after the last: does BN speed up training here, and is the conclusion the same
# for every seed? Chapter 5 asks whether that speed-up comes from reduced internal
# covariate shift, and answers with the noisy-BN experiment.

# %%
try:
    for seed in (0, 1, 2):
        with_bn, without = run_experiment(seed, True, 3), run_experiment(seed, False, 3)
        print(f"seed {seed}: with BN {np.round(with_bn, 3)}   without BN {np.round(without, 3)}")
except NotImplementedError:
    print("Implement run_experiment first.")
