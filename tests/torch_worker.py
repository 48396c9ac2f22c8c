"""PyTorch side of the test oracle: a worker process, never imported by pytest.

Started by ``oracles.TorchOracle`` (see ``oracles.py`` for why frameworks run
out of process, ``worker_protocol.py`` for the messages). Everything here is
NCHW, PyTorch's layout; padding is PyTorch's symmetric ``(ph, pw)``. Each op
returns the forward result and (except unpooling) the autograd gradient of
``sum(y * dy)``.
"""
import os

import numpy as np

from worker_protocol import exit_after, serve


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


OPS = {"max_pool": max_pool, "max_unpool": max_unpool, "avg_pool": avg_pool,
       "adaptive_avg_pool": adaptive_avg_pool}


def _setup():
    import torch

    torch.set_num_threads(int(os.environ.get("NUMBACONV_TORCH_THREADS", "1")))
    # str(): torch.__version__ is a TorchVersion, and unpickling it would import torch here.
    return torch, {"torch": str(torch.__version__), "numpy": np.__version__}


def main():
    return serve(_setup, OPS)


if __name__ == "__main__":
    exit_after(main)
