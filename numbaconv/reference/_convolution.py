"""Convolution as a matrix product on im2col patches (NHWC data, HWIO filters).

The cores take the caller's layout (``nchw``) and ignore it: NumPy indexes
any memory order.
"""
from ._patches import col2im, im2col


def conv2d(x, w, b, g, nchw):
    """y[n, oh, ow, :] = patch(n, oh, ow) @ w.reshape(KH * KW * C_in, C_out) + b."""
    kh, kw, ci, co = w.shape
    y = im2col(x, g, nchw) @ w.reshape(kh * kw * ci, co)
    if b is not None:
        y += b
    return y.reshape(x.shape[0], g.oh, g.ow, co)


def conv2d_transpose(x, w, b, g, nchw):
    """The adjoint of conv2d: each x entry spreads w back over its patch (col2im)."""
    kh, kw, ci, co = w.shape
    n = x.shape[0]
    y = col2im(x.reshape(n * g.oh * g.ow, co) @ w.reshape(kh * kw * ci, co).T, n, ci, g, nchw)
    if b is not None:
        y += b
    return y


def conv2d_backward_filter(x, dy, g, nchw):
    """dw = patches(x)^T @ dy, reshaped to HWIO."""
    n, ci, co = x.shape[0], x.shape[3], dy.shape[3]
    return (im2col(x, g, nchw).T @ dy.reshape(n * g.oh * g.ow, co)).reshape(g.kh, g.kw, ci, co)


def bias_backward(dy, nchw):
    """db = dy summed over N, H, W."""
    return dy.sum(axis=(0, 1, 2))
