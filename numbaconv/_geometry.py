"""Output sizes, padding rules and pooling windows shared by every op (pure functions)."""
import numpy as np


def conv_out_size(size, k, stride, dilation, pad_before, pad_after):
    """Output length of a convolution/pooling window sliding along one axis."""
    return (size + pad_before + pad_after - dilation * (k - 1) - 1) // stride + 1


def same_padding(size, k, stride, dilation):
    """TensorFlow's SAME rule: (before, after), the odd extra cell goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def transpose_out_size(size, k, stride, dilation, pad_before, pad_after, output_padding):
    """Output length of a transposed convolution (the input length of its forward conv)."""
    return (size - 1) * stride - pad_before - pad_after + dilation * (k - 1) + 1 + output_padding


def pool_out_size(size, k, stride, dilation, pad_before, pad_after, ceil_mode):
    """Output length of a pooling window along one axis, with PyTorch's ``ceil_mode``.

    With ``ceil_mode`` the length rounds up, and a last window that would
    start in the after-padding (or past it) is dropped: every window starts
    inside the input or its before-padding.
    """
    if not ceil_mode:
        return conv_out_size(size, k, stride, dilation, pad_before, pad_after)
    span = size + pad_before + pad_after - dilation * (k - 1) - 1
    out = -(-span // stride) + 1
    if out > 0 and (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


def pool_windows(size, out, k, stride, pad_before, pad_after, count_include_pad):
    """Average-pooling windows along one axis, as (start, stop, divisor) int arrays.

    Output index ``o`` reads input cells [start[o], stop[o]). The divisor
    counts those cells, or with ``count_include_pad`` the window's cells
    inside the padded input (ceil_mode's last window may reach past the
    after-padding; that part is not counted).
    """
    first = np.arange(out, dtype=np.int64) * stride - pad_before
    start, stop = np.maximum(first, 0), np.minimum(first + k, size)
    if count_include_pad:
        return start, stop, np.minimum(first + k, size + pad_after) - first
    return start, stop, stop - start


def adaptive_bins(size, out):
    """Adaptive-pooling bins along one axis, as (start, stop, divisor) int arrays.

    Bin ``i`` is [floor(i * size / out), ceil((i + 1) * size / out)) (PyTorch's bins).
    """
    i = np.arange(out, dtype=np.int64)
    start, stop = i * size // out, -(-(i + 1) * size // out)
    return start, stop, stop - start
