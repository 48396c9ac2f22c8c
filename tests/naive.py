"""Slow, obviously correct loop versions of numbaconv's ops: the test oracle.

Written straight from the definitions in ``/work/shared/design/api.md`` with
plain Python loops over every output (or input) element, independent of both
numbaconv and TensorFlow (which does not follow the contract for NaN in max
pooling). Only for small cases.

Conventions (simpler than the public API, on purpose):

- data is NHWC, filters HWIO; results are float64 (argmax int64);
- ``stride``/``dilation``/``kernel``: an int or a pair ``(h, w)``;
- ``padding``: ``"SAME"``, ``"VALID"``, an int, a pair ``(ph, pw)``, or
  ``((top, bottom), (left, right))``.

The layout helpers at the end convert NHWC/HWIO test data to NCHW/OIHW.
"""
import math

import numpy as np


# ------------------------------------------------------------------ geometry


def pair(value):
    """An int or a pair as a pair of ints."""
    if isinstance(value, (tuple, list)):
        h, w = value
        return int(h), int(w)
    return int(value), int(value)


def same_padding(size, k, stride, dilation):
    """TensorFlow's SAME rule from the contract: (before, after), the extra cell after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    top = total // 2
    return top, total - top


def explicit_padding(padding, h, w, kh, kw, stride, dilation):
    """(top, bottom, left, right) for any padding spec on an (h, w) input."""
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return 0, 0, 0, 0
        assert padding.upper() == "SAME"
        return same_padding(h, kh, sh, dh) + same_padding(w, kw, sw, dw)
    if isinstance(padding, (tuple, list)) and isinstance(padding[0], (tuple, list)):
        (top, bottom), (left, right) = padding
        return top, bottom, left, right
    ph, pw = pair(padding)
    return ph, ph, pw, pw


def out_size(size, k, stride, dilation, before, after):
    """The contract's output size along one axis."""
    return math.floor((size + before + after - dilation * (k - 1) - 1) / stride) + 1


def transpose_out_size(size, k, stride, dilation, before, after, output_padding):
    """The contract's transposed-convolution output size along one axis."""
    return (size - 1) * stride - before - after + dilation * (k - 1) + 1 + output_padding


def _window_plan(h, w, kernel, stride, padding, dilation):
    kh, kw = pair(kernel)
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    pt, pb, pl, pr = explicit_padding(padding, h, w, kh, kw, (sh, sw), (dh, dw))
    oh, ow = out_size(h, kh, sh, dh, pt, pb), out_size(w, kw, sw, dw, pl, pr)
    return kh, kw, sh, sw, dh, dw, pt, pl, oh, ow


def _taps(i, j, plan, h, w):
    """(kh, kw, row, col) of every window tap of output (i, j) that lies inside the input."""
    kh, kw, sh, sw, dh, dw, pt, pl, _, _ = plan
    for p in range(kh):
        row = i * sh - pt + p * dh
        for q in range(kw):
            col = j * sw - pl + q * dw
            if 0 <= row < h and 0 <= col < w:
                yield p, q, row, col


# --------------------------------------------------------------- convolution


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """y[n, i, j, o] = b[o] + sum over taps and input channels of x * w."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n_, h, wd, ci = x.shape
    kh, kw, _, co = w.shape
    plan = _window_plan(h, wd, (kh, kw), stride, padding, dilation)
    oh, ow = plan[-2:]
    y = np.zeros((n_, oh, ow, co))
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                for o in range(co):
                    acc = 0.0 if b is None else float(b[o])
                    for p, q, row, col in _taps(i, j, plan, h, wd):
                        for c in range(ci):
                            acc += x[n, row, col, c] * w[p, q, c, o]
                    y[n, i, j, o] = acc
    return y


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1):
    """Gradients of sum(conv2d(x, w, b) * dy), accumulated tap by tap."""
    dy, x, w = (np.asarray(a, np.float64) for a in (dy, x, w))
    n_, h, wd, ci = x.shape
    kh, kw, _, co = w.shape
    plan = _window_plan(h, wd, (kh, kw), stride, padding, dilation)
    oh, ow = plan[-2:]
    assert dy.shape == (n_, oh, ow, co)
    dx, dw, db = np.zeros(x.shape), np.zeros(w.shape), np.zeros(co)
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                for o in range(co):
                    g = dy[n, i, j, o]
                    db[o] += g
                    for p, q, row, col in _taps(i, j, plan, h, wd):
                        for c in range(ci):
                            dx[n, row, col, c] += g * w[p, q, c, o]
                            dw[p, q, c, o] += g * x[n, row, col, c]
    return dx, dw, db


def _transpose_plan(x_shape, w_shape, stride, padding, output_padding, dilation):
    _, h, wd, _ = x_shape
    kh, kw = w_shape[:2]
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    oph, opw = pair(output_padding)
    if isinstance(padding, str) and padding.upper() == "SAME":
        oh, ow = h * sh, wd * sw
        pt, _, pl, _ = same_padding(oh, kh, sh, dh) + same_padding(ow, kw, sw, dw)
    else:
        pt, pb, pl, pr = explicit_padding(padding, 0, 0, kh, kw, (sh, sw), (dh, dw))
        oh = transpose_out_size(h, kh, sh, dh, pt, pb, oph)
        ow = transpose_out_size(wd, kw, sw, dw, pl, pr, opw)
    return (kh, kw, sh, sw, dh, dw, pt, pl, h, wd), oh, ow


def conv2d_transpose(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1):
    """Scatter: x[n, i, j, o] * w[p, q, c, o] lands on y[n, i*s - pad + p*d, ..., c].

    ``x`` has the forward conv's output channels (w's last axis), ``y`` its input channels.
    """
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    plan, oh, ow = _transpose_plan(x.shape, w.shape, stride, padding, output_padding, dilation)
    n_, h, wd, co = x.shape
    ci = w.shape[2]
    y = np.zeros((n_, oh, ow, ci))
    if b is not None:
        y += np.asarray(b, np.float64)
    for n in range(n_):
        for i in range(h):
            for j in range(wd):
                for p, q, row, col in _taps(i, j, plan, oh, ow):
                    for c in range(ci):
                        for o in range(co):
                            y[n, row, col, c] += x[n, i, j, o] * w[p, q, c, o]
    return y


def conv2d_transpose_backward(dy, x, w, stride=1, padding=0, output_padding=0, dilation=1):
    """Gradients of sum(conv2d_transpose(x, w, b) * dy), from the same scatter."""
    dy, x, w = (np.asarray(a, np.float64) for a in (dy, x, w))
    plan, oh, ow = _transpose_plan(x.shape, w.shape, stride, padding, output_padding, dilation)
    n_, h, wd, co = x.shape
    ci = w.shape[2]
    assert dy.shape == (n_, oh, ow, ci)
    dx, dw = np.zeros(x.shape), np.zeros(w.shape)
    db = dy.sum(axis=(0, 1, 2)) if n_ else np.zeros(ci)
    for n in range(n_):
        for i in range(h):
            for j in range(wd):
                for p, q, row, col in _taps(i, j, plan, oh, ow):
                    for c in range(ci):
                        for o in range(co):
                            dx[n, i, j, o] += dy[n, row, col, c] * w[p, q, c, o]
                            dw[p, q, c, o] += dy[n, row, col, c] * x[n, i, j, o]
    return dx, dw, db


# ------------------------------------------------------------------- patches


def im2col(x, kernel, stride=1, padding=0, dilation=1):
    """Rows (n, i, j), columns (kh, kw, c); padding reads as zero."""
    x = np.asarray(x, np.float64)
    n_, h, wd, c_ = x.shape
    plan = _window_plan(h, wd, kernel, stride, padding, dilation)
    kh, kw = plan[:2]
    oh, ow = plan[-2:]
    cols = np.zeros((n_ * oh * ow, kh * kw * c_))
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                r = (n * oh + i) * ow + j
                for p, q, row, col in _taps(i, j, plan, h, wd):
                    for c in range(c_):
                        cols[r, (p * kw + q) * c_ + c] = x[n, row, col, c]
    return cols


def col2im(cols, x_shape, kernel, stride=1, padding=0, dilation=1):
    """Every patch entry added back where im2col read it from (padding dropped)."""
    cols = np.asarray(cols, np.float64)
    n_, h, wd, c_ = x_shape
    plan = _window_plan(h, wd, kernel, stride, padding, dilation)
    kh, kw = plan[:2]
    oh, ow = plan[-2:]
    assert cols.shape == (n_ * oh * ow, kh * kw * c_)
    x = np.zeros(x_shape)
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                r = (n * oh + i) * ow + j
                for p, q, row, col in _taps(i, j, plan, h, wd):
                    for c in range(c_):
                        x[n, row, col, c] += cols[r, (p * kw + q) * c_ + c]
    return x


# ------------------------------------------------------------------- pooling


def max_pool2d_argmax(x, pool, stride=None, padding=0):
    """Window max over the unpadded taps; ties: first in row-major order; NaN: first NaN wins."""
    x = np.asarray(x, np.float64)
    n_, h, wd, c_ = x.shape
    stride = pool if stride is None else stride
    plan = _window_plan(h, wd, pool, stride, padding, 1)
    oh, ow = plan[-2:]
    y = np.zeros((n_, oh, ow, c_))
    argmax = np.zeros((n_, oh, ow, c_), dtype=np.int64)
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                for c in range(c_):
                    best, best_at = None, None
                    for _, _, row, col in _taps(i, j, plan, h, wd):
                        v = x[n, row, col, c]
                        if math.isnan(v):
                            best, best_at = v, row * wd + col
                            break
                        if best is None or v > best:
                            best, best_at = v, row * wd + col
                    assert best_at is not None, "a window with no input position"
                    y[n, i, j, c], argmax[n, i, j, c] = best, best_at
    return y, argmax


def max_pool2d(x, pool, stride=None, padding=0):
    return max_pool2d_argmax(x, pool, stride, padding)[0]


def max_pool2d_backward(dy, argmax, x_shape):
    """dx[n, a // W, a % W, c] += dy[n, i, j, c] for a = argmax[n, i, j, c]."""
    dy = np.asarray(dy, np.float64)
    n_, _, wd, _ = x_shape
    dx = np.zeros(x_shape)
    for n, i, j, c in np.ndindex(*dy.shape):
        a = int(argmax[n, i, j, c])
        dx[n, a // wd, a % wd, c] += dy[n, i, j, c]
    return dx


def pool_out_size(size, k, stride, dilation, before, after, ceil_mode):
    """The contract's pooling output size: floor, or with ceil_mode ceil, dropping a last
    window that would start in the after-padding."""
    span = size + before + after - dilation * (k - 1) - 1
    out = (math.ceil(span / stride) if ceil_mode else math.floor(span / stride)) + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1
    return out


def avg_pool2d(x, pool, stride=None, padding=0, ceil_mode=False, count_include_pad=False):
    """Mean of each window's input cells; count_include_pad divides by the window cells
    inside the padded input instead."""
    x = np.asarray(x, np.float64)
    n_, h, wd, c_ = x.shape
    kh, kw = pair(pool)
    sh, sw = pair(pool if stride is None else stride)
    pt, pb, pl, pr = explicit_padding(padding, h, wd, kh, kw, (sh, sw), (1, 1))
    oh = pool_out_size(h, kh, sh, 1, pt, pb, ceil_mode)
    ow = pool_out_size(wd, kw, sw, 1, pl, pr, ceil_mode)
    y = np.zeros((n_, oh, ow, c_))
    for i in range(oh):
        for j in range(ow):
            cells = [(r, q) for r in range(i * sh - pt, i * sh - pt + kh)
                     for q in range(j * sw - pl, j * sw - pl + kw)]
            inside = [(r, q) for r, q in cells if 0 <= r < h and 0 <= q < wd]
            padded = [(r, q) for r, q in cells if -pt <= r < h + pb and -pl <= q < wd + pr]
            divisor = len(padded) if count_include_pad else len(inside)
            for r, q in inside:
                y[:, i, j, :] += x[:, r, q, :]
            y[:, i, j, :] /= divisor
    return y


def adaptive_avg_pool2d(x, output_size):
    """Mean over bin [floor(i * H / OH), ceil((i + 1) * H / OH)) x the same along W."""
    x = np.asarray(x, np.float64)
    n_, h, wd, c_ = x.shape
    oh, ow = pair(output_size)
    y = np.zeros((n_, oh, ow, c_))
    for i in range(oh):
        for j in range(ow):
            rows = range(math.floor(i * h / oh), math.ceil((i + 1) * h / oh))
            cols = range(math.floor(j * wd / ow), math.ceil((j + 1) * wd / ow))
            y[:, i, j, :] = np.mean([x[:, r, q, :] for r in rows for q in cols], axis=0)
    return y


# ----------------------------------------------------------------------- LRN


def _lrn_window(c, depth_radius, channels):
    return range(max(0, c - depth_radius), min(channels, c + depth_radius + 1))


def lrn(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5):
    """TensorFlow: y[c] = x[c] / (bias + alpha * sum(x[c']**2, |c' - c| <= r)) ** beta."""
    x = np.asarray(x, np.float64)
    y = np.zeros(x.shape)
    channels = x.shape[3]
    for n, i, j in np.ndindex(*x.shape[:3]):
        for c in range(channels):
            sqr_sum = sum(x[n, i, j, k] ** 2 for k in _lrn_window(c, depth_radius, channels))
            y[n, i, j, c] = x[n, i, j, c] / (bias + alpha * sqr_sum) ** beta
    return y


def lrn_backward(dy, x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5):
    """Chain rule through y[c] = x[c] * s[c] ** -beta, s[c] = bias + alpha * window sum."""
    dy, x = np.asarray(dy, np.float64), np.asarray(x, np.float64)
    dx = np.zeros(x.shape)
    channels = x.shape[3]
    for n, i, j in np.ndindex(*x.shape[:3]):
        v = x[n, i, j]
        s = [bias + alpha * sum(v[k] ** 2 for k in _lrn_window(c, depth_radius, channels))
             for c in range(channels)]
        for c in range(channels):
            g = dy[n, i, j, c]
            dx[n, i, j, c] += g * s[c] ** -beta
            # d s[c] / d x[k] = 2 * alpha * x[k] for k in c's window
            common = g * v[c] * -beta * s[c] ** (-beta - 1)
            for k in _lrn_window(c, depth_radius, channels):
                dx[n, i, j, k] += common * 2 * alpha * v[k]
    return dx


def lrn_pytorch(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """torch.nn.LocalResponseNorm(size, alpha, beta, k) as its docs define it (NHWC).

    b[c] = a[c] * (k + alpha / size * sum(a[c']**2 for c' in
    [max(0, c - size // 2), min(C - 1, c + size // 2)])) ** -beta
    """
    x = np.asarray(x, np.float64)
    y = np.zeros(x.shape)
    channels = x.shape[3]
    for n, i, j in np.ndindex(*x.shape[:3]):
        for c in range(channels):
            lo, hi = max(0, c - size // 2), min(channels - 1, c + size // 2)
            sqr_sum = sum(x[n, i, j, m] ** 2 for m in range(lo, hi + 1))
            y[n, i, j, c] = x[n, i, j, c] * (k + alpha / size * sqr_sum) ** -beta
    return y


# ------------------------------------------------------------------- layouts


def to_nchw(a):
    """(N, H, W, C) -> (N, C, H, W); shapes given as tuples are converted too."""
    if isinstance(a, tuple):
        n, h, w, c = a
        return n, c, h, w
    return np.ascontiguousarray(np.asarray(a).transpose(0, 3, 1, 2))


def to_nhwc(a):
    """(N, C, H, W) -> (N, H, W, C)."""
    return np.ascontiguousarray(np.asarray(a).transpose(0, 2, 3, 1))


def to_oihw(w):
    """HWIO (KH, KW, C_in, C_out) -> OIHW (C_out, C_in, KH, KW)."""
    return np.ascontiguousarray(np.asarray(w).transpose(3, 2, 0, 1))


def to_hwio(w):
    """OIHW -> HWIO."""
    return np.ascontiguousarray(np.asarray(w).transpose(2, 3, 1, 0))
