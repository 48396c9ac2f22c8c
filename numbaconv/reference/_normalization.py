"""Local response normalization across channels (TensorFlow's semantics, NHWC).

    s[c] = bias + alpha * sum(x[c'] ** 2 for c' in [c - r, c + r] within the channels)
    y[c] = x[c] * s[c] ** -beta

Backward (the window is symmetric: c' is in c's window iff c is in c''s):

    dx[j] = dy[j] * s[j] ** -beta
            - 2 * alpha * beta * x[j] * sum(dy[c] * x[c] * s[c] ** (-beta - 1) for c in j's window)

The math runs in float64 whatever the data's dtype, and the result is
rounded to it once: in float32, x ** 2 overflows from |x| ~ 1.8e19 and the
scale from bias or alpha ~ 3.4e38, which would turn finite answers into 0
or NaN. Non-finite values follow IEEE float64 arithmetic (an inf in x makes
the scales of its window inf), without NumPy's warnings.
"""
import numpy as np


def window_sum(a, depth_radius):
    """sum(a[..., c'] for c' in [c - r, c + r] clipped to the channel axis)."""
    c = a.shape[-1]
    r = min(depth_radius, c - 1) if c else 0  # farther channels do not exist
    padded = np.pad(a, ((0, 0), (0, 0), (0, 0), (r, r)))
    return sum(padded[..., d:d + c] for d in range(2 * r + 1))


def scale(x, depth_radius, bias, alpha):
    """s = bias + alpha * (the window sum of x ** 2)."""
    return bias + alpha * window_sum(x * x, depth_radius)


def lrn(x, depth_radius, bias, alpha, beta, nchw):
    """y = x * s ** -beta in float64, rounded once (the caller's layout, ``nchw``, plays no part)."""
    wide = x.astype(np.float64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return (wide * scale(wide, depth_radius, bias, alpha) ** -beta).astype(x.dtype)


def lrn_backward(dy, x, depth_radius, bias, alpha, beta, nchw):
    """dx of the module docstring's formula in float64, rounded once (``nchw`` plays no part)."""
    wide_dy, wide_x = dy.astype(np.float64), x.astype(np.float64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        s = scale(wide_x, depth_radius, bias, alpha)
        through_s = window_sum(wide_dy * wide_x * s ** (-beta - 1), depth_radius)
        dx = wide_dy * s ** -beta - 2 * alpha * beta * wide_x * through_s
        return dx.astype(x.dtype)
