"""Output sizes and padding rules shared by every op (pure functions on ints)."""


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
