"""Assignment 05-ics: internal covariate shift, measured, and one experiment.

The student writes:

- ``input_drift(H) -> (drift, jump, rel_jump)`` (numpy): from a layer's inputs ``H``
  (P, B, U) recorded at P times on the same probe batch of B examples, per unit the mean and
  the biased std over the batch, then ``drift = mean_j |mu_last - mu_first|``,
  ``jump = mean_{t,j} |mu_{t+1} - mu_t|`` and ``rel_jump = jump / mean_{t,j} sigma_t``;
- ``gradient_change(loss_fn, params, target, preceding, lr) -> (diff, cos)`` (torch
  autograd): Santurkar et al.'s ICS, ``||G - G'||`` and ``cos(G, G')`` for the gradient of
  ``params[target]`` before / after the ``preceding`` parameters take one SGD step;
- ``loss_along_gradient(loss_fn, params, step_sizes) -> (losses, grad_changes, beta)``:
  the loss and the gradient change at ``theta - eta g`` and the effective beta-smoothness;
- ``run_experiment(seed, use_bn, epochs)``: article 002's MLP trained with plain SGD, with
  or without BN, returning the per-epoch training loss (eval mode).

``loss_fn`` is built here from the case (a small MLP in plain torch operations, batch norm
written out, so the tripwire does not see torch's batch norm), ``params`` maps names to
float64 tensors. References: ``normlab.ics.drift_summary``,
``gradient_change`` and ``landscape_along_gradient``; the experiment is
``answers.article002_run`` (equal to ``normlab.training``'s loop, tested).
Wrong answers: ``answers``. Nothing here imports torch at import time (the
sandbox masks torch for assignments that do not use it).
"""

NAME = "05-ics"
