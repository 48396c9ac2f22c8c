"""What the benchmark measures: the cases, their inputs, and their work counts.

Imported by the orchestrators (``bench.py``, ``compare.py``) and by every
worker subprocess, so it imports nothing but NumPy: no numbaconv, no
framework. Each case is one layer on one shape; each case has a forward
and a backward op, so the op ids are ``<case>.fwd`` and ``<case>.bwd``.

Inputs are float32 NHWC arrays drawn from a seeded generator and handed to
the workers as ``.npy`` files, so every implementation computes on the same
numbers.
"""
import math
from typing import NamedTuple, Optional, Tuple

import numpy as np

SEED = 20261122


class Case(NamedTuple):
    name: str  # id used in op names, JSON and on the command line
    title: str  # what the table shows
    kind: str  # "conv", "pool" or "lrn"
    x_shape: Tuple[int, int, int, int]  # NHWC, full benchmark
    quick_batch: int  # batch size used by --quick
    w_shape: Optional[Tuple[int, int, int, int]] = None  # HWIO (conv): (KH, KW, C_in // groups, C_out)
    stride: int = 1
    padding: str = "VALID"  # TensorFlow's padding name; explicit pads follow from it
    pool: int = 2  # window = stride (pool)
    depth_radius: int = 5  # LRN parameters, TensorFlow's names
    bias: float = 1.0
    alpha: float = 1.0
    beta: float = 0.5
    seed_ran_it: bool = False  # the seed notebook ran its conv_backward on this shape
    groups: int = 1  # conv: grouped (depthwise when groups = C_in)


CASES = (
    # The seed benchmark: 693 ms for the seed's conv_backward.
    Case("conv", "conv 128x28x28x3 * 3x3x3x16 SAME (seed benchmark)", "conv",
         (128, 28, 28, 3), 16, w_shape=(3, 3, 3, 16), padding="SAME", seed_ran_it=True),
    # The seed's shape tests: P=3 with a 7x7 kernel is SAME; P=0 is VALID.
    Case("conv7x7", "conv 64x11x9x16 * 7x7x16x32 P=3", "conv",
         (64, 11, 9, 16), 8, w_shape=(7, 7, 16, 32), padding="SAME", seed_ran_it=True),
    Case("conv8x16s5", "conv 4x28x46x128 * 8x16x128x2 S=5 VALID", "conv",
         (4, 28, 46, 128), 2, w_shape=(8, 16, 128, 2), stride=5, padding="VALID",
         seed_ran_it=True),
    # Grouped and depthwise conv (issue 12): MobileNet/ResNeXt layers, where
    # the peers' CPU paths are weakest.
    Case("dw56", "depthwise 3x3 SAME on 32x56x56x64", "conv",
         (32, 56, 56, 64), 4, w_shape=(3, 3, 1, 64), padding="SAME", groups=64),
    Case("dw28", "depthwise 3x3 SAME on 128x28x28x32", "conv",
         (128, 28, 28, 32), 16, w_shape=(3, 3, 1, 32), padding="SAME", groups=32),
    Case("grouped4", "grouped 3x3 SAME (groups 4) on 32x28x28x64 -> 64", "conv",
         (32, 28, 28, 64), 4, w_shape=(3, 3, 16, 64), padding="SAME", groups=4),
    Case("maxpool", "max pool 2x2/2 on 128x28x28x16 (with argmax)", "pool",
         (128, 28, 28, 16), 16),
    Case("lrn", "LRN r=5 bias=1 alpha=1 beta=0.5 (TF defaults) on 128x28x28x16", "lrn",
         (128, 28, 28, 16), 16),
    Case("lrn075", "LRN r=5 bias=1 alpha=1e-4 beta=0.75 on 128x28x28x16", "lrn",
         (128, 28, 28, 16), 16, alpha=1e-4, beta=0.75),
)
BY_NAME = {c.name: c for c in CASES}
PASSES = ("fwd", "bwd")


def op_ids(cases=CASES):
    return [f"{c.name}.{p}" for c in cases for p in PASSES]


def select(patterns):
    """The cases whose name matches one of ``patterns`` (exact or prefix); all if none."""
    if not patterns:
        return list(CASES)
    chosen = [c for c in CASES if any(c.name == p or c.name.startswith(p) for p in patterns)]
    if not chosen:
        raise SystemExit(f"no case matches {patterns}; cases: {', '.join(BY_NAME)}")
    return chosen


# ------------------------------------------------------------------ geometry


def same_pads(size, k, stride):
    """TensorFlow's SAME rule (dilation 1): (before, after), the odd cell after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def pads(case, x_shape=None):
    """Explicit ((top, bottom), (left, right)) of a conv case."""
    _, h, w, _ = x_shape or case.x_shape
    kh, kw = case.w_shape[:2]
    if case.padding == "VALID":
        return (0, 0), (0, 0)
    return same_pads(h, kh, case.stride), same_pads(w, kw, case.stride)


def out_hw(case, x_shape):
    _, h, w, _ = x_shape
    if case.kind == "conv":
        (pt, pb), (pl, pr) = pads(case, x_shape)
        kh, kw = case.w_shape[:2]
        return (h + pt + pb - kh) // case.stride + 1, (w + pl + pr - kw) // case.stride + 1
    if case.kind == "pool":
        return (h - case.pool) // case.pool + 1, (w - case.pool) // case.pool + 1
    return h, w


def x_shape_for(case, quick):
    return (case.quick_batch,) + case.x_shape[1:] if quick else case.x_shape


# ------------------------------------------------------------------ inputs


def make_inputs(case, quick, rng):
    """The case's arrays: conv x, w, b, dy; pool x, dy; lrn x, dy (float32 NHWC)."""
    xs = x_shape_for(case, quick)
    n, _, _, c = xs
    oh, ow = out_hw(case, xs)
    data = {"x": rng.standard_normal(xs, dtype=np.float32)}
    if case.kind == "conv":
        co = case.w_shape[3]
        data["w"] = rng.standard_normal(case.w_shape, dtype=np.float32)
        data["b"] = rng.standard_normal(co, dtype=np.float32)
        data["dy"] = rng.standard_normal((n, oh, ow, co), dtype=np.float32)
    else:
        # Continuous random inputs: max-pool windows have no ties, so every
        # implementation routes the gradient to the same element.
        data["dy"] = rng.standard_normal((n, oh, ow, c), dtype=np.float32)
    return data


def save_inputs(directory, cases, quick):
    """Write every case's inputs as ``<dir>/<case>.<array>.npy``; same seed, same numbers."""
    rng = np.random.default_rng(SEED)
    for case in cases:
        for key, arr in make_inputs(case, quick, rng).items():
            np.save(f"{directory}/{case.name}.{key}.npy", arr)


def load_inputs(directory, case):
    keys = ("x", "w", "b", "dy") if case.kind == "conv" else ("x", "dy")
    return {k: np.load(f"{directory}/{case.name}.{k}.npy") for k in keys}


# ------------------------------------------------------------------ work counts


def conv_flops_per_pass(case, x_shape):
    """2 * N * OH * OW * KH * KW * (C_in // groups) * C_out: one conv pass (forward, or dx, or dw)."""
    n = x_shape[0]
    oh, ow = out_hw(case, x_shape)
    kh, kw, ci, co = case.w_shape
    return 2 * n * oh * ow * kh * kw * ci * co


def work(case, pass_, x_shape):
    """(flops, bytes) of one call: the rate the table reports and its limit.

    Conv: flops only, forward = one pass, backward = two (dx and dw; db is
    negligible). Pool and LRN: the bytes an ideal implementation must move,
    the same figure for every implementation (float32 data, int64 argmax):
    pool forward reads x and writes y and argmax, backward reads dy and
    argmax and writes dx; LRN forward reads x and writes y, backward reads
    dy and x and writes dx.
    """
    size = math.prod(x_shape)
    if case.kind == "conv":
        per_pass = conv_flops_per_pass(case, x_shape)
        return (per_pass if pass_ == "fwd" else 2 * per_pass), None
    if case.kind == "pool":
        oh, ow = out_hw(case, x_shape)
        out = x_shape[0] * oh * ow * x_shape[3]
        return None, (4 * size + 4 * out + 8 * out) if pass_ == "fwd" else (4 * out + 8 * out + 4 * size)
    return None, (8 * size if pass_ == "fwd" else 12 * size)
