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
    kind: str  # "conv", "pool" (max), "avgpool", "adaptive" or "lrn"
    x_shape: Tuple[int, int, int, int]  # NHWC, full benchmark
    quick_batch: int  # batch size used by --quick
    w_shape: Optional[Tuple[int, int, int, int]] = None  # HWIO (conv): (KH, KW, C_in // groups, C_out)
    stride: int = 1  # conv and avgpool
    padding: str = "VALID"  # TensorFlow's padding name; explicit pads follow from it
    pad: Optional[int] = None  # explicit symmetric padding instead (conv), as every framework takes it
    pool: int = 2  # window = stride (pool); the window of avgpool (its padding: pad or 0)
    depth_radius: int = 5  # LRN parameters, TensorFlow's names
    bias: float = 1.0
    alpha: float = 1.0
    beta: float = 0.5
    seed_ran_it: bool = False  # the seed notebook ran its conv_backward on this shape
    layout: str = "NHWC"  # numbaconv's data_format (conv, pool); inputs are stored NHWC either way
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
    # A typical CNN layer (ResNet-18's first stage) and the batch-1 calls of
    # issue 8: per-call overhead must not dominate small tensors.
    Case("conv56x64", "conv 32x56x56x64 * 3x3x64x64 P=1 (ResNet stage 1)", "conv",
         (32, 56, 56, 64), 2, w_shape=(3, 3, 64, 64), pad=1),
    Case("conv1x28", "conv 1x28x28x3 * 3x3x3x16 P=1 (seed layer, batch 1)", "conv",
         (1, 28, 28, 3), 1, w_shape=(3, 3, 3, 16), pad=1),
    Case("conv1x7x512", "conv 1x7x7x512 * 3x3x512x512 P=1 (VGG/ResNet last stage, batch 1)",
         "conv", (1, 7, 7, 512), 1, w_shape=(3, 3, 512, 512), pad=1),
    # The same layers for an NCHW caller (PyTorch's and cs231n's layout; issue 8
    # wants it within 10% of NHWC), and a 1x1 layer (ResNet-50) in both layouts.
    Case("conv56x64nchw", "conv 32x56x56x64 * 3x3x64x64 P=1, NCHW (ResNet stage 1)", "conv",
         (32, 56, 56, 64), 2, w_shape=(3, 3, 64, 64), pad=1, layout="NCHW"),
    Case("conv1x1", "conv 8x56x56x64 * 1x1x64x256 (ResNet-50 stage 1)", "conv",
         (8, 56, 56, 64), 2, w_shape=(1, 1, 64, 256), pad=0),
    Case("conv1x1nchw", "conv 8x56x56x64 * 1x1x64x256, NCHW (ResNet-50 stage 1)", "conv",
         (8, 56, 56, 64), 2, w_shape=(1, 1, 64, 256), pad=0, layout="NCHW"),
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
    # The layer family beyond the seeds (issue 12).
    Case("avgpool2", "avg pool 2x2/2 on 128x28x28x16", "avgpool", (128, 28, 28, 16), 16,
         pool=2, stride=2),
    Case("avgpool3p1", "avg pool 3x3/2 pad 1 (count_include_pad) on 128x28x28x16", "avgpool",
         (128, 28, 28, 16), 16, pool=3, stride=2, pad=1),
    Case("adaptive1", "adaptive avg pool to 1x1 (global) on 128x7x7x512", "adaptive",
         (128, 7, 7, 512), 16),
)


def _layer(net, n, hw, c_in, c_out, k, stride=1, pad=None):
    """A conv layer of a real network: NHWC x (n, hw, hw, c_in), k x k filters, symmetric padding."""
    pad = k // 2 if pad is None else pad
    name = f"sw-{net}-{n}x{hw}x{c_in}-{k}x{k}s{stride}-{c_out}"
    return Case(name, f"{net}: {n}x{hw}x{hw}x{c_in} * {k}x{k}x{c_in}x{c_out} S={stride} P={pad}",
                "conv", (n, hw, hw, c_in), 1, w_shape=(k, k, c_in, c_out), stride=stride, pad=pad)


# The shape sweep (perf/sweep.py): conv layers of real networks, with the
# batch sizes they are trained and served at (quick: batch 1).
SWEEP = (
    _layer("lenet", 64, 28, 1, 6, 5, pad=0),
    _layer("lenet", 64, 12, 6, 16, 5, pad=0),
    _layer("alexnet", 8, 224, 3, 64, 11, 4, 2),
    _layer("alexnet", 8, 27, 64, 192, 5),
    _layer("alexnet", 8, 13, 192, 384, 3),
    _layer("alexnet", 8, 13, 384, 256, 3),
    _layer("alexnet", 8, 13, 256, 256, 3),
    _layer("vgg", 2, 224, 3, 64, 3),
    _layer("vgg", 2, 224, 64, 64, 3),
    _layer("vgg", 2, 112, 64, 128, 3),
    _layer("vgg", 2, 112, 128, 128, 3),
    _layer("vgg", 2, 56, 128, 256, 3),
    _layer("vgg", 2, 56, 256, 256, 3),
    _layer("vgg", 2, 28, 256, 512, 3),
    _layer("vgg", 2, 28, 512, 512, 3),
    _layer("vgg", 2, 14, 512, 512, 3),
    _layer("resnet18", 8, 224, 3, 64, 7, 2, 3),
    _layer("resnet18", 8, 56, 64, 64, 3),
    _layer("resnet18", 8, 56, 64, 128, 3, 2),
    _layer("resnet18", 8, 56, 64, 128, 1, 2, 0),
    _layer("resnet18", 8, 28, 128, 128, 3),
    _layer("resnet18", 8, 28, 128, 256, 3, 2),
    _layer("resnet18", 8, 14, 256, 256, 3),
    _layer("resnet18", 8, 14, 256, 512, 3, 2),
    _layer("resnet18", 8, 7, 512, 512, 3),
    _layer("resnet18", 1, 7, 512, 512, 3),
    _layer("resnet50", 8, 56, 64, 64, 1),
    _layer("resnet50", 8, 56, 64, 256, 1),
    _layer("resnet50", 8, 56, 256, 64, 1),
    _layer("resnet50", 8, 28, 512, 128, 1),
    _layer("resnet50", 8, 28, 128, 512, 1),
    _layer("resnet50", 8, 14, 1024, 256, 1),
    _layer("resnet50", 8, 14, 256, 1024, 1),
    _layer("resnet50", 8, 7, 2048, 512, 1),
    _layer("resnet50", 8, 7, 512, 2048, 1),
    _layer("mobilenet", 8, 112, 32, 64, 1),
    _layer("mobilenet", 8, 56, 128, 128, 1),
    _layer("mobilenet", 8, 28, 256, 256, 1),
    _layer("mobilenet", 8, 14, 512, 512, 1),
    _layer("mobilenet", 8, 7, 1024, 1024, 1),
    _layer("unet", 1, 256, 32, 32, 3),
    _layer("unet", 1, 128, 64, 64, 3),
    _layer("unet", 1, 256, 64, 32, 3),
    _layer("unet", 1, 64, 128, 128, 3),
    # Planes of a power of two of pixels, a whole number of 4 KB pages of float32 apart in NCHW memory:
    _layer("cifar", 128, 32, 16, 16, 3),  # a CIFAR ResNet's first stage
    _layer("dcgan", 64, 64, 3, 64, 4, 2, 1),  # the discriminator's first layers, on 64x64 images
    _layer("dcgan", 64, 32, 64, 128, 4, 2, 1),
    _layer("dcgan", 64, 4, 512, 1, 4, pad=0),  # the discriminator's last layer: one output per image
)
# Short calls for perf/under_load.py; not in bench.py's default set, chosen by exact name.
EXTRA_CASES = (
    Case("conv_b1", "conv 1x28x28x3 * 3x3x3x16 SAME (the seed benchmark at batch 1)", "conv",
         (1, 28, 28, 3), 1, w_shape=(3, 3, 3, 16), padding="SAME"),
    Case("pool_cs231n", "max pool 2x2/2 on 100x3x32x32 NCHW (cs231n-sized)", "pool",
         (100, 32, 32, 3), 100, layout="NCHW"),
)
BY_NAME = {c.name: c for c in CASES + SWEEP + EXTRA_CASES}
PASSES = ("fwd", "bwd")


def op_ids(cases=CASES):
    return [f"{c.name}.{p}" for c in cases for p in PASSES]


def select(patterns, exact=False):
    """The cases whose name matches one of ``patterns``; the main job's if none.

    A pattern matches a name exactly or (unless ``exact``) as a prefix; the
    sweep's cases (``sw-...``) need a pattern that names them, and
    EXTRA_CASES match by exact name only.
    """
    if not patterns:
        return list(CASES)
    chosen = [c for c in CASES + SWEEP
              if any(c.name == p or (not exact and c.name.startswith(p)) for p in patterns)]
    chosen += [c for c in EXTRA_CASES if c.name in patterns]
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
    if case.pad is not None:
        return (case.pad, case.pad), (case.pad, case.pad)
    if case.padding == "VALID":
        return (0, 0), (0, 0)
    return same_pads(h, kh, case.stride), same_pads(w, kw, case.stride)


def api_padding(case):
    """The conv padding as numbaconv's API (and the reference) take it."""
    return case.pad if case.pad is not None else case.padding


def out_hw(case, x_shape):
    _, h, w, _ = x_shape
    if case.kind == "conv":
        (pt, pb), (pl, pr) = pads(case, x_shape)
        kh, kw = case.w_shape[:2]
        return (h + pt + pb - kh) // case.stride + 1, (w + pl + pr - kw) // case.stride + 1
    if case.kind == "pool":
        return (h - case.pool) // case.pool + 1, (w - case.pool) // case.pool + 1
    if case.kind == "avgpool":
        pad = case.pad or 0
        return ((h + 2 * pad - case.pool) // case.stride + 1,
                (w + 2 * pad - case.pool) // case.stride + 1)
    if case.kind == "adaptive":
        return 1, 1
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
    argmax and writes dx; average pooling forward reads x and writes y,
    backward reads dy and writes dx; LRN forward reads x and writes y,
    backward reads dy and x and writes dx.
    """
    size = math.prod(x_shape)
    if case.kind == "conv":
        per_pass = conv_flops_per_pass(case, x_shape)
        return (per_pass if pass_ == "fwd" else 2 * per_pass), None
    if case.kind == "pool":
        oh, ow = out_hw(case, x_shape)
        out = x_shape[0] * oh * ow * x_shape[3]
        return None, (4 * size + 4 * out + 8 * out) if pass_ == "fwd" else (4 * out + 8 * out + 4 * size)
    if case.kind in ("avgpool", "adaptive"):
        oh, ow = out_hw(case, x_shape)
        return None, 4 * size + 4 * x_shape[0] * oh * ow * x_shape[3]
    return None, (8 * size if pass_ == "fwd" else 12 * size)
