"""Convolution as matrix products on im2col patches (NHWC data, HWIO filters).

A grouped convolution is one matrix product per group, batched: group ``i``
multiplies the patch columns of its input channels ``i * C_in_g .. (i + 1) *
C_in_g - 1`` by the filter columns of its output channels ``i * C_out_g ..``.
The plain convolution is the one-group case.

The cores take the caller's layout (``nchw``) and ignore it: NumPy indexes
any memory order.
"""
from ._patches import col2im, im2col


def _patches_by_group(cols, taps, groups):
    """(P, taps * C) patch matrix -> (groups, P, taps * C_g): each group's columns, (tap, c) order."""
    rows, c_group = cols.shape[0], cols.shape[1] // (taps * groups)
    return cols.reshape(rows, taps, groups, c_group).transpose(2, 0, 1, 3).reshape(groups, rows, taps * c_group)


def _patches_from_groups(by_group, taps):
    """The inverse of :func:`_patches_by_group`."""
    groups, rows, width = by_group.shape
    c_group = width // taps
    return by_group.reshape(groups, rows, taps, c_group).transpose(1, 2, 0, 3).reshape(rows, taps * groups * c_group)


def _filters_by_group(w, groups):
    """HWIO (KH, KW, C_in_g, C_out) -> (groups, KH * KW * C_in_g, C_out_g)."""
    kh, kw, ci_g, co = w.shape
    return w.reshape(kh * kw * ci_g, groups, co // groups).transpose(1, 0, 2)


def _channels_by_group(a, groups):
    """(N, H, W, C) -> (groups, N * H * W, C_g)."""
    n, h, w, c = a.shape
    return a.reshape(n * h * w, groups, c // groups).transpose(1, 0, 2)


def grouped_conv2d(x, w, b, g, groups, nchw):
    """y[n, oh, ow, group i] = patch(n, oh, ow)[group i's channels] @ group i's filters + b."""
    kh, kw, _, co = w.shape
    by_group = _patches_by_group(im2col(x, g, nchw), kh * kw, groups) @ _filters_by_group(w, groups)
    y = by_group.transpose(1, 0, 2).reshape(x.shape[0], g.oh, g.ow, co)
    if b is not None:
        y += b
    return y


def grouped_conv2d_transpose(x, w, b, g, groups, nchw):
    """The adjoint of grouped_conv2d: each x entry spreads its group's w back over its patch (col2im)."""
    kh, kw, ci_g, _ = w.shape
    by_group = _channels_by_group(x, groups) @ _filters_by_group(w, groups).transpose(0, 2, 1)
    y = col2im(_patches_from_groups(by_group, kh * kw), x.shape[0], ci_g * groups, g, nchw)
    if b is not None:
        y += b
    return y


def grouped_conv2d_backward_filter(x, dy, g, groups, nchw):
    """dw for group i = patches(x)[group i's channels]^T @ dy[group i's channels], reshaped to HWIO."""
    ci_g, co = x.shape[3] // groups, dy.shape[3]
    by_group = _patches_by_group(im2col(x, g, nchw), g.kh * g.kw, groups).transpose(0, 2, 1) @ \
        _channels_by_group(dy, groups)
    return by_group.transpose(1, 0, 2).reshape(g.kh, g.kw, ci_g, co)


def conv2d(x, w, b, g, nchw):
    """y[n, oh, ow, :] = patch(n, oh, ow) @ w.reshape(KH * KW * C_in, C_out) + b."""
    return grouped_conv2d(x, w, b, g, 1, nchw)


def conv2d_transpose(x, w, b, g, nchw):
    """The adjoint of conv2d: each x entry spreads w back over its patch (col2im)."""
    return grouped_conv2d_transpose(x, w, b, g, 1, nchw)


def conv2d_backward_filter(x, dy, g, nchw):
    """dw = patches(x)^T @ dy, reshaped to HWIO."""
    return grouped_conv2d_backward_filter(x, dy, g, 1, nchw)


def bias_backward(dy, nchw):
    """db = dy summed over N, H, W."""
    return dy.sum(axis=(0, 1, 2))
