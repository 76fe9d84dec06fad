"""Benchmark: normlab's numpy batch norm against torch's CPU kernel, in float32.

Run: ``make bench`` or ``python tools/bench_batchnorm.py``. Prints, for (N, D) = (512, 1024) and
(N, C, H, W) = (32, 64, 32, 32):

- numpy ``batchnorm_forward`` + ``batchnorm_backward_alt`` vs torch ``F.batch_norm`` forward +
  autograd backward (input, weight and bias gradients), and their ratio (goal: <= 2x);
- for reference, the same computation through the generic core
  ``normalize_forward`` / ``normalize_backward`` (why batchnorm.py has its own layout);
- staged (``batchnorm_backward``) vs closed-form (``batchnorm_backward_alt``) backward;
- page faults per forward + backward. numpy's step allocates and frees four input-sized
  arrays; depending on glibc's dynamic thresholds (so on the process's history) glibc may
  hand the freed heap back to the OS after every call, and each call then page-faults it in
  again (~2000 faults; in a VM each costs microseconds). If that is seen, everything is
  measured again with glibc's heap trimming off, for both libraries, to show the
  computation without that allocator artefact.

Times are medians over repeats of timeit loops, measured in two passes over the variants
(so that a change of machine load affects them alike) and, within a pass, one variant after
the other: sampling them in alternation would time numpy while torch's OpenMP threads are
still spin-waiting on the other core after their last parallel region. torch runs with as many
threads as this process may use cores (the headline ratio) and, for reference, with one
thread like numpy's elementwise code. On a shared machine torch's multi-threaded figure
suffers most from other load (its threads wait for each other): check the printed load
average and rerun on a quiet machine.
"""

from __future__ import annotations

import ctypes
import os
import resource
import statistics
import sys
import timeit
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from normlab.batchnorm import (  # noqa: E402
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
)
from normlab.normalize import normalize_backward, normalize_forward  # noqa: E402

SHAPES = [(512, 1024), (32, 64, 32, 32)]
REPEATS = 16


def minor_faults() -> int:
    """Minor page faults so far: fresh memory the kernel had to map for this process."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def median_ms(fns: dict, repeat: int = REPEATS, passes: int = 2):
    """Median time of one call in ms, and page faults per call, for each function.

    ``fns`` maps a name to ``(fn, threads)``; torch's thread count is set before timing.
    Each pass times every function in turn: a warm-up loop (which also picks the loop size,
    at least 20 ms), then ``repeat // passes`` timed loops, counting page faults over them.
    """
    samples = {name: [] for name in fns}
    faults, calls = dict.fromkeys(fns, 0), dict.fromkeys(fns, 0)
    for _ in range(passes):
        for name, (fn, threads) in fns.items():
            torch.set_num_threads(threads)
            number = 1
            while timeit.timeit(fn, number=number) < 0.02:
                number *= 2
            before = minor_faults()
            loops = timeit.repeat(fn, number=number, repeat=max(1, repeat // passes))
            faults[name] += minor_faults() - before
            calls[name] += number * len(loops)
            samples[name] += [t / number for t in loops]
    medians = {name: statistics.median(t) * 1e3 for name, t in samples.items()}
    return medians, {name: faults[name] / calls[name] for name in fns}


def make_inputs(shape, seed: int = 0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    gamma = rng.standard_normal(c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    return x, gamma, beta, dout


def numpy_step(x, gamma, beta, dout):
    _, cache = batchnorm_forward(x, gamma, beta)
    return batchnorm_backward_alt(dout, cache)


def generic_core_step(x, gamma, beta, dout):
    """The same forward + backward written with normalize.py's normalize-over-axes core."""
    axes = (0,) + tuple(range(2, x.ndim))
    keep = (-1,) + (1,) * (x.ndim - 2)
    x_hat, cache = normalize_forward(x, axes, 1e-5)
    out = x_hat * gamma.reshape(keep)
    out += beta.reshape(keep)
    dbeta = dout.sum(axis=axes)
    dgamma = np.sum(dout * x_hat, axis=axes)
    scaled = (x_hat, cache[1] * gamma.reshape(keep), axes)  # gamma * invstd in place of invstd
    return normalize_backward(dout, scaled), dgamma, dbeta


def torch_step_fn(x, gamma, beta, dout):
    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(gamma).requires_grad_()
    bt = torch.from_numpy(beta).requires_grad_()
    dt = torch.from_numpy(dout)

    def step():
        xt.grad = wt.grad = bt.grad = None
        F.batch_norm(xt, None, None, wt, bt, training=True, eps=1e-5).backward(dt)

    return step


def keep_heap_warm() -> bool:
    """Stop glibc from returning freed heap memory to the OS after every call (M_TRIM_THRESHOLD).

    A forward + backward allocates and frees a few arrays of the input's size; by default
    glibc trims the heap once more than twice its (dynamic) mmap threshold is free, so the
    next call page-faults all that memory in again. A long-running process with a larger
    heap rarely sees this. Returns False where glibc's mallopt is unavailable.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-1, 1 << 28))  # M_TRIM_THRESHOLD = 256 MiB
    except (OSError, AttributeError):
        return False


def report(shape, cores: int) -> bool:
    """Print one shape's figures; return True if numpy's step page-faults its memory in."""
    x, gamma, beta, dout = make_inputs(shape)
    _, cache = batchnorm_forward(x, gamma, beta)
    variants = {
        "numpy": (lambda: numpy_step(x, gamma, beta, dout), 1),
        "core": (lambda: generic_core_step(x, gamma, beta, dout), 1),
        "staged": (lambda: batchnorm_backward(dout, cache), 1),
        "closed": (lambda: batchnorm_backward_alt(dout, cache), 1),
        "torch1": (torch_step_fn(x, gamma, beta, dout), 1),
        "torch": (torch_step_fn(x, gamma, beta, dout), cores),
    }
    t, faults = median_ms(variants)
    torch.set_num_threads(cores)
    rows = [
        (f"torch F.batch_norm fwd+bwd, {cores} threads", t["torch"], None),
        ("torch F.batch_norm fwd+bwd, 1 thread", t["torch1"], None),
        ("numpy forward + backward_alt", t["numpy"], t["torch"]),
        ("generic normalize_forward/_backward", t["core"], t["torch"]),
    ]
    print(f"shape {shape}")
    for label, ms, ref in rows:
        ratio = "" if ref is None else (
            f"   {ms / ref:5.2f}x torch ({ms / t['torch1']:.2f}x 1-thread torch)")
        print(f"  {label:<42} {ms:8.3f} ms{ratio}")
    print(f"  backward: staged {t['staged']:.3f} ms, closed form {t['closed']:.3f} ms, "
          f"staged/closed = {t['staged'] / t['closed']:.2f}x")
    print(f"  page faults per fwd+bwd: numpy {faults['numpy']:.0f}, torch {faults['torch']:.0f}"
          f" (input: {x.nbytes // 4096} pages)\n")
    return faults["numpy"] > 0.1 * x.nbytes / 4096


def main() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"torch {torch.__version__}, numpy {np.__version__}, float32")
    print(f"torch.set_num_threads({cores}): the {cores} core(s) available to this process "
          f"(plus a 1-thread reference); numpy is single-threaded. "
          f"Load average: {os.getloadavg()[0]:.2f}")
    print(f"median of {REPEATS // 2 * 2} loops in 2 passes, ms per call\n")
    print("== default allocator ==")
    faulting = [report(shape, cores) for shape in SHAPES]
    if any(faulting) and keep_heap_warm():
        print("== glibc heap trimming off (mallopt M_TRIM_THRESHOLD = 256 MiB), both libraries ==")
        for shape in SHAPES:
            report(shape, cores)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
