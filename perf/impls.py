"""The implementations the benchmark times, one function per framework.

``build(impl, case, pass_, data)`` returns an :class:`Op`: ``call()`` runs
the op once on prepared inputs (this is what is timed: conversions to a
framework's tensors or layout happen before), and ``outputs(result)`` turns
what ``call`` returned into NHWC NumPy arrays for the correctness check.

Only the worker subprocess imports a framework, and each worker imports only
its own (Numba with TensorFlow or PyTorch in one process can crash or hang,
and their thread pools fight: pitfalls 6 and 7).

What each implementation runs (the README repeats this):

- ``seed``: ``perf/seed_baseline.py``, the seed notebook's code as it ran:
  float64 dY of ones, float64 im2col buffers. Conv cases only.
- ``reference``: ``numbaconv.reference`` (vectorized NumPy).
- ``numbaconv``: ``numbaconv`` (Numba kernels), the same calls.
- ``tensorflow``: a ``tf.function`` around ``tf.nn.conv2d`` + ``tf.nn.bias_add``
  (depthwise: ``tf.nn.depthwise_conv2d`` / ``DepthwiseConv2dNativeBackpropInput``
  / ``...Filter``; other grouped convs: forward only, TensorFlow refuses their
  gradients on CPU);
  backward = ``tf.raw_ops.Conv2DBackpropInput`` / ``Conv2DBackpropFilter`` /
  ``BiasAddGrad`` (the ops ``GradientTape`` runs for conv2d, without
  recomputing the forward); ``tf.nn.max_pool2d`` / ``raw_ops.MaxPoolGrad``;
  ``tf.nn.local_response_normalization`` / ``raw_ops.LRNGrad``. NHWC.
- ``torch``: NCHW tensors (PyTorch's native layout; the transposes are not
  timed), ``F.conv2d`` / ``aten.convolution_backward`` (with ``groups``); ``F.max_pool2d`` with
  indices / ``aten.max_pool2d_with_indices_backward``; ``F.local_response_norm``
  (size = 2r + 1, alpha * size, k = bias) / autograd on its graph. Under
  ``torch.no_grad()`` except the LRN backward.

Average pooling (``avgpool``: ``count_include_pad=True``, PyTorch's
default; ``adaptive``: to 1x1): numbaconv's ``avg_pool2d`` /
``adaptive_avg_pool2d`` and their backwards; TensorFlow ``tf.pad`` (zeros:
they count in the divisor) + ``tf.nn.avg_pool2d`` VALID / ``raw_ops.AvgPoolGrad``
sliced back, and ``tf.reduce_mean`` / ``dy`` broadcast over the plane (what
its gradient is); PyTorch ``F.avg_pool2d`` / ``aten.avg_pool2d_backward``,
``F.adaptive_avg_pool2d`` / ``aten._adaptive_avg_pool2d_backward``.
"""
import importlib
import os
from typing import Callable, NamedTuple, Optional

import numpy as np

import cases as C

IMPLS = ("seed", "reference", "numbaconv", "tensorflow", "torch", "torchcl")
PEERS = ("tensorflow", "torch", "torchcl")
TITLES = {
    "seed": "seed (f64)",
    "reference": "reference",
    "numbaconv": "numbaconv",
    "tensorflow": "tensorflow",
    "torch": "torch",
    "torchcl": "torch (cl)",
}
NOTES = {
    "seed": "the seed notebook's NumPy code as it ran: float64 dY of ones, float64 im2col "
            "buffers (computes in float64); conv only",
    "reference": "numbaconv.reference, vectorized NumPy, float32",
    "numbaconv": "numbaconv, Numba kernels, float32",
    "tensorflow": "tf.function; conv backward via tf.raw_ops.Conv2DBackpropInput/Filter + "
                  "BiasAddGrad; MaxPool/MaxPoolGrad; LRN/LRNGrad; pad + AvgPool/AvgPoolGrad; "
                  "reduce_mean / broadcast; NHWC float32; TF_ENABLE_ONEDNN_OPTS=1",
    "torchcl": "as torch, with channels_last (NHWC memory) tensors and filters; conv only",
    "torch": "NCHW float32; F.conv2d / aten.convolution_backward; max_pool2d_with_indices "
             "(+backward); F.local_response_norm + autograd; avg_pool2d, adaptive_avg_pool2d "
             "(+ their aten backwards)",
}


class Op(NamedTuple):
    call: Callable[[], object]
    outputs: Callable[[object], dict]
    # For the seed only: the reference's answer to the seed's own question
    # (float64 dY of ones), since its inputs differ from everyone else's.
    expected: Optional[Callable[[], dict]] = None


def setup(impl, threads=None):
    """Import the implementation's framework, apply a thread count; return (module, info)."""
    return globals()[f"_setup_{impl}"](threads)


def runtime_info(impl, module):
    """What the framework reports after the ops ran (thread pools are started by then)."""
    return globals()[f"_info_{impl}"](module)


def build(impl, module, case, pass_, data):
    """The Op for ``impl`` on ``case``/``pass_``, or None when it does not apply."""
    return globals()[f"_build_{impl}"](module, case, pass_, data)


def _blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer")}
            for d in threadpool_info()]


# ------------------------------------------------------------------ seed


def _setup_seed(threads):
    import seed_baseline
    import numbaconv.reference as ref  # the seed's self-check (NumPy only)
    return (seed_baseline, ref), {}


def _info_seed(module):
    return {"blas": _blas_info()}


def _build_seed(module, case, pass_, d):
    if case.kind != "conv" or not case.seed_ran_it or case.groups != 1:
        return None  # the seed's Python loops take minutes on the wider layers; no groups
    seed, ref = module
    (pt, pb), (pl, pr) = C.pads(case, d["x"].shape)
    if not pt == pb == pl == pr:
        return None  # the seed's P pads all four sides alike
    x, w, b, s = d["x"], d["w"], d["b"], case.stride
    kw = dict(stride=s, padding=C.api_padding(case))
    if pass_ == "fwd":
        return Op(lambda: seed.conv_forward(x, w, b, pt, s), lambda y: {"y": y},
                  lambda: {"y": ref.conv2d(x, w, b, **kw)})
    ones = np.ones(d["dy"].shape)  # float64, as the seed ran it
    return Op(lambda: seed.conv_backward(ones, x, w, b, pt, s),
              lambda r: dict(zip(("dx", "dw", "db"), r)),
              lambda: dict(zip(("dx", "dw", "db"), ref.conv2d_backward(ones, x, w, **kw))))


# ------------------------------------------------------------------ numbaconv and its reference


def _setup_reference(threads):
    return importlib.import_module("numbaconv.reference"), {}


def _setup_numbaconv(threads):
    # Thread count: NUMBA_NUM_THREADS is set in the environment by the
    # orchestrator; nothing here touches Numba's thread functions.
    return importlib.import_module("numbaconv"), {}


def _info_reference(module):
    return {"blas": _blas_info(), "module_file": module.__file__}


def _info_numbaconv(module):
    import numba
    info = {
        "module_file": module.__file__,
        "numba": numba.__version__,
        "NUMBA_NUM_THREADS": numba.config.NUMBA_NUM_THREADS,
        "num_threads": numba.get_num_threads(),
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR") or None,
        "blas": _blas_info(),
    }
    try:
        info["threading_layer"] = numba.threading_layer()
    except ValueError:  # no parallel kernel has run in this process
        info["threading_layer"] = "not initialized (no parallel kernel ran)"
    return info


def _build_module_api(m, case, pass_, d):
    x, dy = d["x"], d["dy"]
    if case.kind == "conv":
        w, b, fmt = d["w"], d["b"], case.layout
        kw = dict(stride=case.stride, padding=C.api_padding(case), groups=case.groups, data_format=fmt)
        back, w_back = (lambda a: a), (lambda a: a)
        if fmt == "NCHW":  # the call sees NCHW data and OIHW filters; the check sees NHWC and HWIO
            x, dy = (np.ascontiguousarray(a.transpose(0, 3, 1, 2)) for a in (x, dy))
            w = np.ascontiguousarray(w.transpose(3, 2, 0, 1))
            back, w_back = (lambda a: a.transpose(0, 2, 3, 1)), (lambda a: a.transpose(2, 3, 1, 0))
        if pass_ == "fwd":
            return Op(lambda: m.conv2d(x, w, b, **kw), lambda y: {"y": back(y)})
        return Op(lambda: m.conv2d_backward(dy, x, w, **kw),
                  lambda r: {"dx": back(r[0]), "dw": w_back(r[1]), "db": r[2]})
    if case.kind == "pool":
        k, fmt = case.pool, case.layout
        if fmt == "NCHW":  # the call sees NCHW memory; the check sees NHWC
            x, dy = (np.ascontiguousarray(a.transpose(0, 3, 1, 2)) for a in (x, dy))
        back = (lambda a: a) if fmt == "NHWC" else (lambda a: a.transpose(0, 2, 3, 1))
        if pass_ == "fwd":
            return Op(lambda: m.max_pool2d_argmax(x, k, data_format=fmt),
                      lambda r: {"y": back(r[0]), "argmax": back(r[1])})
        argmax = m.max_pool2d_argmax(x, k, data_format=fmt)[1]
        return Op(lambda: m.max_pool2d_backward(dy, argmax, x.shape, data_format=fmt),
                  lambda dx: {"dx": back(dx)})
    if case.kind == "avgpool":
        kw = dict(stride=case.stride, padding=case.pad or 0, count_include_pad=True)
        if pass_ == "fwd":
            return Op(lambda: m.avg_pool2d(x, case.pool, **kw), lambda y: {"y": y})
        return Op(lambda: m.avg_pool2d_backward(dy, x.shape, case.pool, **kw), lambda dx: {"dx": dx})
    if case.kind == "adaptive":
        if pass_ == "fwd":
            return Op(lambda: m.adaptive_avg_pool2d(x, 1), lambda y: {"y": y})
        return Op(lambda: m.adaptive_avg_pool2d_backward(dy, x.shape), lambda dx: {"dx": dx})
    kw = dict(depth_radius=case.depth_radius, bias=case.bias, alpha=case.alpha, beta=case.beta)
    if pass_ == "fwd":
        return Op(lambda: m.lrn(x, **kw), lambda y: {"y": y})
    return Op(lambda: m.lrn_backward(dy, x, **kw), lambda dx: {"dx": dx})


_build_reference = _build_numbaconv = _build_module_api


# ------------------------------------------------------------------ TensorFlow


def _setup_tensorflow(threads):
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf, {}


def _info_tensorflow(tf):
    info = {
        "version": tf.__version__,
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }
    try:
        from tensorflow.python.util import _pywrap_util_port
        info["onednn_enabled"] = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        pass
    return info


def _build_tensorflow(tf, case, pass_, d):
    x, dy = tf.constant(d["x"]), tf.constant(d["dy"])
    np_out = lambda *names: lambda r: {n: t.numpy() for n, t in zip(names, r)}
    if case.kind == "conv" and case.groups != 1:
        return _build_tensorflow_grouped(tf, case, pass_, d, np_out)
    if case.kind == "conv":
        w, b = tf.constant(d["w"]), tf.constant(d["b"])
        strides = [1, case.stride, case.stride, 1]
        if case.pad is None:
            padding, explicit = case.padding, []
        else:
            padding, explicit = "EXPLICIT", [0, 0] + [case.pad] * 4 + [0, 0]
        if pass_ == "fwd":
            pads = padding if case.pad is None else [[0, 0], [case.pad] * 2, [case.pad] * 2, [0, 0]]
            f = tf.function(lambda x, w, b: (tf.nn.bias_add(tf.nn.conv2d(x, w, strides, pads), b),))
            return Op(lambda: f(x, w, b), np_out("y"))

        def backward(x, w, dy):
            dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=dy,
                                                strides=strides, padding=padding,
                                                explicit_paddings=explicit)
            dw = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(w), out_backprop=dy,
                                                 strides=strides, padding=padding,
                                                 explicit_paddings=explicit)
            return dx, dw, tf.raw_ops.BiasAddGrad(out_backprop=dy)

        f = tf.function(backward)
        return Op(lambda: f(x, w, dy), np_out("dx", "dw", "db"))
    if case.kind == "pool":
        k = [1, case.pool, case.pool, 1]
        fwd = tf.function(lambda x: (tf.nn.max_pool2d(x, k, k, "VALID"),))
        if pass_ == "fwd":
            # TF's training forward has no argmax (MaxPoolGrad recomputes it),
            # so only y is checked.
            return Op(lambda: fwd(x), np_out("y"))
        y = fwd(x)[0]
        f = tf.function(lambda x, y, dy: (tf.raw_ops.MaxPoolGrad(
            orig_input=x, orig_output=y, grad=dy, ksize=k, strides=k, padding="VALID"),))
        return Op(lambda: f(x, y, dy), np_out("dx"))
    if case.kind == "avgpool":
        k, s, p = [1, case.pool, case.pool, 1], [1, case.stride, case.stride, 1], case.pad or 0
        pads = [[0, 0], [p, p], [p, p], [0, 0]]
        if pass_ == "fwd":
            f = tf.function(lambda x: (tf.nn.avg_pool2d(tf.pad(x, pads), k, s, "VALID"),))
            return Op(lambda: f(x), np_out("y"))
        n, h, w, c = d["x"].shape
        padded_shape = tf.constant([n, h + 2 * p, w + 2 * p, c])
        f = tf.function(lambda dy: (tf.raw_ops.AvgPoolGrad(
            orig_input_shape=padded_shape, grad=dy, ksize=k, strides=s,
            padding="VALID")[:, p:p + h, p:p + w, :],))
        return Op(lambda: f(dy), np_out("dx"))
    if case.kind == "adaptive":
        if pass_ == "fwd":
            f = tf.function(lambda x: (tf.reduce_mean(x, axis=[1, 2], keepdims=True),))
            return Op(lambda: f(x), np_out("y"))
        shape, cells = d["x"].shape, d["x"].shape[1] * d["x"].shape[2]
        f = tf.function(lambda dy: (tf.broadcast_to(dy / cells, shape),))
        return Op(lambda: f(dy), np_out("dx"))
    kw = dict(depth_radius=case.depth_radius, bias=case.bias, alpha=case.alpha, beta=case.beta)
    fwd = tf.function(lambda x: (tf.nn.local_response_normalization(x, **kw),))
    if pass_ == "fwd":
        return Op(lambda: fwd(x), np_out("y"))
    y = fwd(x)[0]
    f = tf.function(lambda x, y, dy: (tf.raw_ops.LRNGrad(
        input_grads=dy, input_image=x, output_image=y, **kw),))
    return Op(lambda: f(x, y, dy), np_out("dx"))


def _build_tensorflow_grouped(tf, case, pass_, d, np_out):
    """Depthwise: ``tf.nn.depthwise_conv2d`` and its DepthwiseConv2dNativeBackprop ops.

    Other grouped convs: ``tf.nn.conv2d`` with the grouped filter forward;
    no backward (TensorFlow 2.21 refuses "Gradients for grouped convolutions"
    on CPU, tensorflow#53631).
    """
    kh, kw, ci_g, co = case.w_shape
    c_in = case.x_shape[3]
    strides = [1, case.stride, case.stride, 1]
    if ci_g != 1:
        if pass_ != "fwd":
            return None
        x, w, b = tf.constant(d["x"]), tf.constant(d["w"]), tf.constant(d["b"])
        f = tf.function(lambda x, w, b: (tf.nn.bias_add(tf.nn.conv2d(x, w, strides, case.padding), b),))
        return Op(lambda: f(x, w, b), np_out("y"))
    x, dy, b = tf.constant(d["x"]), tf.constant(d["dy"]), tf.constant(d["b"])
    w = tf.constant(d["w"].reshape(kh, kw, c_in, co // c_in))  # channel c * M + m
    strides = [1, case.stride, case.stride, 1]
    if pass_ == "fwd":
        f = tf.function(lambda x, w, b: (tf.nn.bias_add(
            tf.nn.depthwise_conv2d(x, w, strides, case.padding), b),))
        return Op(lambda: f(x, w, b), np_out("y"))

    def backward(x, w, dy):
        dx = tf.raw_ops.DepthwiseConv2dNativeBackpropInput(
            input_sizes=tf.shape(x), filter=w, out_backprop=dy, strides=strides, padding=case.padding)
        dw = tf.raw_ops.DepthwiseConv2dNativeBackpropFilter(
            input=x, filter_sizes=tf.shape(w), out_backprop=dy, strides=strides, padding=case.padding)
        return dx, tf.reshape(dw, case.w_shape), tf.raw_ops.BiasAddGrad(out_backprop=dy)

    f = tf.function(backward)
    return Op(lambda: f(x, w, dy), np_out("dx", "dw", "db"))


# ------------------------------------------------------------------ PyTorch


def _setup_torch(threads):
    import torch
    # torch defaults to the physical core count; give it every usable CPU,
    # as Numba, NumPy's BLAS and TensorFlow take, unless told otherwise.
    torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
    return torch, {}


def _info_torch(torch):
    return {
        "version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }


def _nchw(torch, a, channels_last=False):
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def _build_torch(torch, case, pass_, d, channels_last=False):
    import torch.nn.functional as F
    x, dy = _nchw(torch, d["x"], channels_last), _nchw(torch, d["dy"], channels_last)
    no_grad = torch.no_grad

    def run(f):
        def call():
            with no_grad():
                return f()
        return call

    if case.kind == "conv":
        w = torch.from_numpy(np.ascontiguousarray(d["w"].transpose(3, 2, 0, 1)))
        if channels_last:
            w = w.contiguous(memory_format=torch.channels_last)
        b = torch.from_numpy(d["b"])
        (pt, pb), (pl, pr) = C.pads(case, d["x"].shape)
        if pt != pb or pl != pr:
            return None  # asymmetric SAME padding would need an extra pad op
        stride, padding = [case.stride] * 2, [pt, pl]
        if pass_ == "fwd":
            return Op(run(lambda: F.conv2d(x, w, b, stride, padding, 1, case.groups)),
                      lambda y: {"y": _nhwc(y)})
        conv_bwd = torch.ops.aten.convolution_backward
        call = run(lambda: conv_bwd(dy, x, w, [w.shape[0]], stride, padding, [1, 1], False,
                                    [0, 0], case.groups, [True, True, True]))
        return Op(call, lambda r: {"dx": _nhwc(r[0]), "dw": r[1].numpy().transpose(2, 3, 1, 0),
                                   "db": r[2].numpy()})
    if case.kind == "pool":
        k = [case.pool] * 2
        if pass_ == "fwd":
            return Op(run(lambda: F.max_pool2d(x, k, k, return_indices=True)),
                      lambda r: {"y": _nhwc(r[0]), "argmax": _nhwc(r[1])})
        with no_grad():
            _, idx = F.max_pool2d(x, k, k, return_indices=True)
        pool_bwd = torch.ops.aten.max_pool2d_with_indices_backward
        return Op(run(lambda: pool_bwd(dy, x, k, k, [0, 0], [1, 1], False, idx)),
                  lambda dx: {"dx": _nhwc(dx)})
    if case.kind == "avgpool":
        k, s, p = [case.pool] * 2, [case.stride] * 2, [case.pad or 0] * 2
        if pass_ == "fwd":
            return Op(run(lambda: F.avg_pool2d(x, k, s, p, count_include_pad=True)),
                      lambda y: {"y": _nhwc(y)})
        avg_bwd = torch.ops.aten.avg_pool2d_backward
        return Op(run(lambda: avg_bwd(dy, x, k, s, p, False, True, None)), lambda dx: {"dx": _nhwc(dx)})
    if case.kind == "adaptive":
        if pass_ == "fwd":
            return Op(run(lambda: F.adaptive_avg_pool2d(x, 1)), lambda y: {"y": _nhwc(y)})
        adaptive_bwd = torch.ops.aten._adaptive_avg_pool2d_backward
        return Op(run(lambda: adaptive_bwd(dy, x)), lambda dx: {"dx": _nhwc(dx)})
    size = 2 * case.depth_radius + 1
    kw = dict(size=size, alpha=case.alpha * size, beta=case.beta, k=case.bias)
    if pass_ == "fwd":
        return Op(run(lambda: F.local_response_norm(x, **kw)), lambda y: {"y": _nhwc(y)})
    xg = x.clone().requires_grad_(True)
    y = F.local_response_norm(xg, **kw)
    return Op(lambda: torch.autograd.grad(y, xg, dy, retain_graph=True),
              lambda r: {"dx": _nhwc(r[0])})



# PyTorch with channels_last tensors (NHWC memory): oneDNN's fastest path for
# many conv shapes. Conv only: the bar is the better of the two layouts.
_setup_torchcl, _info_torchcl = _setup_torch, _info_torch


def _build_torchcl(torch, case, pass_, d):
    if case.kind != "conv":
        return None
    return _build_torch(torch, case, pass_, d, channels_last=True)
