"""PyTorch side of the test oracle: a worker process, never imported by pytest.

Started by ``oracles.TorchOracle`` (see ``oracles.py`` for why frameworks run
out of process, ``worker_protocol.py`` for the messages). Everything here is
PyTorch's native NCHW data and OIHW filters, computed in the dtype it arrives
in (float32 or float64), forward and autograd. Convolution padding arrives
explicit, ``(top, bottom, left, right)``; pooling padding is PyTorch's
symmetric ``(ph, pw)``. Each op returns the forward result and (except
unpooling) the autograd gradients of ``sum(y * dy)``.
"""
import os

import numpy as np

from worker_protocol import exit_after, serve

def _tensors(torch, req, *keys):
    return [None if req[k] is None else torch.tensor(req[k], requires_grad=True) for k in keys]


def _grads(y, dy, tensors, names):
    y.backward(dy)
    out = {"y": y.detach().numpy()}
    for name, t in zip(names, tensors):
        if t is not None:
            out[name] = t.grad.numpy()
    return out


def conv2d(torch, req):
    """F.conv2d(x, w, b, stride, padding, dilation, groups) and the gradients of sum(y * dy).

    Symmetric padding goes to conv2d itself; asymmetric padding, which
    conv2d does not take, is an F.pad of x first.
    """
    import torch.nn.functional as F
    x, w, b = _tensors(torch, req, "x", "w", "b")
    top, bottom, left, right = req["pads"]
    inp, padding = x, (top, left)
    if top != bottom or left != right:
        inp, padding = F.pad(x, (left, right, top, bottom)), 0
    y = F.conv2d(inp, w, b, req["stride"], padding, req["dilation"], req["groups"])
    return _grads(y, torch.tensor(req["dy"]), (x, w, b), ("dx", "dw", "db"))


def conv2d_transpose(torch, req):
    """F.conv_transpose2d with output plane ``out_hw`` and the gradients of sum(y * dy).

    Symmetric padding with an output_padding PyTorch accepts goes to
    conv_transpose2d itself; otherwise the unpadded transposed conv is
    cropped (and zero-extended at the bottom/right) to the output plane.
    """
    import torch.nn.functional as F
    x, w, b = _tensors(torch, req, "x", "w", "b")
    top, bottom, left, right = req["pads"]
    (sh, sw), (dh, dw) = req["stride"], req["dilation"]
    kh, kw = w.shape[2:]
    ih, iw = x.shape[2:]
    oh, ow = req["out_hw"]
    full_h, full_w = (ih - 1) * sh + dh * (kh - 1) + 1, (iw - 1) * sw + dw * (kw - 1) + 1
    op_h, op_w = oh - (full_h - top - bottom), ow - (full_w - left - right)
    native = (top == bottom and left == right and 0 <= op_h < max(sh, dh)
              and 0 <= op_w < max(sw, dw))
    if native:
        y = F.conv_transpose2d(x, w, b, (sh, sw), (top, left), (op_h, op_w), req["groups"], (dh, dw))
    else:
        full = F.conv_transpose2d(x, w, None, (sh, sw), 0, 0, req["groups"], (dh, dw))
        full = F.pad(full, (0, max(0, left + ow - full_w), 0, max(0, top + oh - full_h)))
        y = full[:, :, top:top + oh, left:left + ow]
        if b is not None:
            y = y + b.view(1, -1, 1, 1)
    out = _grads(y, torch.tensor(req["dy"]), (x, w, b), ("dx", "dw", "db"))
    out["native"] = native
    return out



def _grad(torch, forward, x, dy):
    """forward(x) and the gradient of sum(forward(x) * dy) w.r.t. x."""
    x = torch.from_numpy(x).requires_grad_(True)
    out = forward(x)
    y = out[0] if isinstance(out, tuple) else out
    (dx,) = torch.autograd.grad(y, x, torch.from_numpy(dy))
    return out, dx.numpy()


def max_pool(torch, req):
    """y, argmax (PyTorch's indices: h * W + w), dx of F.max_pool2d with dilation and ceil_mode."""
    import torch.nn.functional as F
    args = {k: req[k] for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode")}
    (y, idx), dx = _grad(torch, lambda x: F.max_pool2d(x, return_indices=True, **args),
                         req["x"], req["dy"])
    return {"y": y.detach().numpy(), "argmax": idx.numpy(), "dx": dx}


def max_unpool(torch, req):
    """F.max_unpool2d(y, argmax, ..., output_size)."""
    import torch.nn.functional as F
    args = {k: req[k] for k in ("kernel_size", "stride", "padding", "output_size")}
    x = F.max_unpool2d(torch.from_numpy(req["y"]), torch.from_numpy(req["argmax"]), **args)
    return {"x": x.numpy()}


def avg_pool(torch, req):
    """y and dx of F.avg_pool2d with ceil_mode and count_include_pad."""
    import torch.nn.functional as F
    args = {k: req[k] for k in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")}
    y, dx = _grad(torch, lambda x: F.avg_pool2d(x, **args), req["x"], req["dy"])
    return {"y": y.detach().numpy(), "dx": dx}


def adaptive_avg_pool(torch, req):
    """y and dx of F.adaptive_avg_pool2d."""
    import torch.nn.functional as F
    y, dx = _grad(torch, lambda x: F.adaptive_avg_pool2d(x, req["output_size"]), req["x"], req["dy"])
    return {"y": y.detach().numpy(), "dx": dx}


OPS = {"conv2d": conv2d, "conv2d_transpose": conv2d_transpose, "max_pool": max_pool,
       "max_unpool": max_unpool, "avg_pool": avg_pool, "adaptive_avg_pool": adaptive_avg_pool}


def _setup():
    import torch

    torch.set_num_threads(int(os.environ.get("NUMBACONV_TORCH_THREADS", "1")))
    # str(): torch.__version__ is a TorchVersion, and unpickling it would import torch here.
    return torch, {"torch": str(torch.__version__), "numpy": np.__version__}


def main():
    return serve(_setup, OPS)


if __name__ == "__main__":
    exit_after(main)
