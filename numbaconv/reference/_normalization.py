"""Local response normalization across channels (TensorFlow's semantics, NHWC).

    s[c] = bias + alpha * sum(x[c'] ** 2 for c' in [c - r, c + r] within the channels)
    y[c] = x[c] * s[c] ** -beta

Backward (the window is symmetric: c' is in c's window iff c is in c''s):

    dx[j] = dy[j] * s[j] ** -beta
            - 2 * alpha * beta * x[j] * sum(dy[c] * x[c] * s[c] ** (-beta - 1) for c in j's window)
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
    """y = x * s ** -beta (the caller's layout, ``nchw``, plays no part)."""
    return x * scale(x, depth_radius, bias, alpha) ** -beta


def lrn_backward(dy, x, depth_radius, bias, alpha, beta, nchw):
    """dx of the module docstring's formula (the caller's layout, ``nchw``, plays no part)."""
    s = scale(x, depth_radius, bias, alpha)
    through_s = window_sum(dy * x * s ** (-beta - 1), depth_radius)
    return dy * s ** -beta - 2 * alpha * beta * x * through_s
