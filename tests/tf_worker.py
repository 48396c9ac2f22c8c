"""TensorFlow side of the test oracle: a worker process, never imported by pytest.

``tests/oracles.py`` starts this script once per test session and talks to it
over its stdin/stdout pipes (see ``oracles.py`` for why TensorFlow does not
run in the pytest process; ``worker_protocol.py`` for the messages).

Everything here is NHWC data and HWIO filters, TensorFlow's native layout.
Padding is ``"SAME"``, ``"VALID"`` or explicit ``((top, bottom), (left, right))``.
"""
import os

import numpy as np

from worker_protocol import exit_after, serve
from worker_protocol import read_message as _read_message  # noqa: F401 - the tests' fake workers use these
from worker_protocol import write_message as _write_message  # noqa: F401


def _tf_padding(padding):
    if isinstance(padding, str):
        return padding
    (t, b), (l, r) = padding
    return [[0, 0], [t, b], [l, r], [0, 0]]


def _conv(tf, x, w, strides, padding, dilations):
    """TensorFlow's conv2d (cross-correlation), NHWC/HWIO, every padding form.

    TensorFlow's CPU kernels for the conv2d gradients (Conv2DBackpropInput
    and Conv2DBackpropFilter) refuse dilation > 1, so a dilated conv is
    computed in its space-to-batch form (``tf.nn.with_space_to_batch``, as
    ``tf.nn.atrous_conv2d`` does), whose gradients are ordinary dilation-1
    ops. TensorFlow has no dilated conv with stride > 1, so neither has this.
    """
    if tuple(dilations) == (1, 1):
        return tf.nn.conv2d(x, w, strides=[1, *strides, 1], padding=_tf_padding(padding))
    if tuple(strides) != (1, 1):
        raise ValueError(f"TensorFlow has no dilated conv with stride > 1: {strides}, {dilations}")
    if not isinstance(padding, str):
        x = tf.pad(x, _tf_padding(padding))
        padding = "VALID"
    return tf.nn.with_space_to_batch(
        x, dilation_rate=list(dilations), padding=padding, filter_shape=list(w.shape[:2]),
        op=lambda inp, num_spatial_dims, pad: tf.nn.conv2d(inp, w, strides=1, padding=pad),
    )


def _check_dilated_forward(tf, x, w, padding, dilations, y):
    """The space-to-batch form must agree with TensorFlow's own dilated conv2d."""
    direct = tf.nn.conv2d(x, w, strides=1, padding=_tf_padding(padding), dilations=[1, *dilations, 1])
    scale = float(tf.reduce_max(tf.abs(direct))) or 1.0
    err = float(tf.reduce_max(tf.abs(direct - y)))
    if direct.shape != y.shape or err > 1e-4 * scale:
        raise AssertionError(
            f"oracle self-check: dilated conv2d {direct.shape} and its space-to-batch form "
            f"{y.shape} differ by {err} (scale {scale})"
        )


def conv2d(tf, req):
    """y = conv2d(x, w) + b and the gradients of sum(y * dy) w.r.t. x, w, b."""
    x, w, dy = (tf.constant(req[k]) for k in ("x", "w", "dy"))
    b = tf.constant(req["b"]) if req["b"] is not None else tf.zeros(w.shape[3], x.dtype)
    with tf.GradientTape() as tape:
        tape.watch([x, w, b])
        y = _conv(tf, x, w, req["strides"], req["padding"], req["dilations"]) + b
    dx, dw, db = tape.gradient(y, [x, w, b], output_gradients=dy)
    if tuple(req["dilations"]) != (1, 1):
        _check_dilated_forward(tf, x, w, req["padding"], req["dilations"], y - b)
    return {"y": y.numpy(), "dx": dx.numpy(), "dw": dw.numpy(), "db": db.numpy()}


def _pad_to(tf, t, shape):
    """t zero-padded at the bottom/right of its plane to shape's plane."""
    extra_h, extra_w = shape[1] - t.shape[1], shape[2] - t.shape[2]
    if extra_h < 0 or extra_w < 0:
        raise ValueError(f"conv2d of the transposed output has shape {shape}, smaller than x {t.shape}")
    return tf.pad(t, [[0, 0], [0, extra_h], [0, extra_w], [0, 0]])


def conv2d_transpose(tf, req):
    """The transposed conv as TensorFlow's gradient of conv2d w.r.t. its input.

    y = d/dz sum(conv2d(z, w) * x) + b for z of the transposed output's shape
    ``out_hw``. When output_padding >= stride (allowed while it is smaller
    than the dilation), conv2d(z) has more rows than x; they are zero in the
    cotangent. The gradients of sum(y * dy) come from an outer tape.
    """
    x, w, dy = (tf.constant(req[k]) for k in ("x", "w", "dy"))
    b = tf.constant(req["b"]) if req["b"] is not None else tf.zeros(w.shape[2], x.dtype)
    n, (oh, ow), ci = x.shape[0], req["out_hw"], w.shape[2]
    z = tf.zeros((n, oh, ow, ci), x.dtype)
    args = (req["strides"], req["padding"], req["dilations"])
    with tf.GradientTape() as outer:
        outer.watch([x, w, b])
        with tf.GradientTape() as inner:
            inner.watch(z)
            forward = _conv(tf, z, w, *args)
        y = inner.gradient(forward, z, output_gradients=_pad_to(tf, x, forward.shape)) + b
    dx, dw, db = outer.gradient(y, [x, w, b], output_gradients=dy)
    return {"y": y.numpy(), "dx": dx.numpy(), "dw": dw.numpy(), "db": db.numpy()}


def max_pool(tf, req):
    """y = max_pool2d(x), the gradient of sum(y * dy) w.r.t. x, and (SAME/VALID) argmax.

    ``tf.nn.max_pool_with_argmax(include_batch_in_index=False)`` gives the flat
    index ((y * W + x) * C + c); ``// C`` turns it into numbaconv's y * W + x.
    It has no explicit padding, so explicit cases return no argmax.
    """
    x, dy = tf.constant(req["x"]), tf.constant(req["dy"])
    ksize, strides, padding = list(req["ksize"]), list(req["strides"]), req["padding"]
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.max_pool2d(x, ksize, strides, _tf_padding(padding))
    out = {"y": y.numpy(), "dx": tape.gradient(y, x, output_gradients=dy).numpy()}
    if isinstance(padding, str):
        y2, flat = tf.nn.max_pool_with_argmax(x, ksize, strides, padding, include_batch_in_index=False)
        flat = flat.numpy()
        c = x.shape[3]
        channels = np.broadcast_to(np.arange(c), flat.shape)
        if not np.array_equal(y2.numpy(), out["y"]) or not np.array_equal(flat % c, channels):
            raise AssertionError("oracle self-check: max_pool_with_argmax disagrees with max_pool2d")
        out["argmax"] = flat // c
    return out


def lrn(tf, req):
    """TensorFlow's LRN (float32 only in TensorFlow) and its gradient, in float32."""
    x = tf.constant(np.asarray(req["x"], np.float32))
    dy = tf.constant(np.asarray(req["dy"], np.float32))
    params = {k: req[k] for k in ("depth_radius", "bias", "alpha", "beta")}
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.local_response_normalization(x, **params)
    return {"y": y.numpy(), "dx": tape.gradient(y, x, output_gradients=dy).numpy()}


def avg_pool(tf, req):
    """y = avg_pool2d(x) ('SAME'/'VALID': padding never counted) and the gradient of sum(y * dy)."""
    x, dy = tf.constant(req["x"]), tf.constant(req["dy"])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.avg_pool2d(x, list(req["ksize"]), list(req["strides"]), req["padding"])
    return {"y": y.numpy(), "dx": tape.gradient(y, x, output_gradients=dy).numpy()}



def depthwise_conv2d(tf, req):
    """``tf.nn.depthwise_conv2d`` (filter (KH, KW, C_in, M)) + b and the gradients of sum(y * dy)."""
    x, w, dy = (tf.constant(req[k]) for k in ("x", "w", "dy"))
    b = tf.constant(req["b"]) if req["b"] is not None else tf.zeros(w.shape[2] * w.shape[3], x.dtype)
    with tf.GradientTape() as tape:
        tape.watch([x, w, b])
        y = tf.nn.depthwise_conv2d(x, w, [1, *req["strides"], 1], _tf_padding(req["padding"]),
                                   dilations=req["dilations"]) + b
    dx, dw, db = tape.gradient(y, [x, w, b], output_gradients=dy)
    return {"y": y.numpy(), "dx": dx.numpy(), "dw": dw.numpy(), "db": db.numpy()}


def grouped_conv2d(tf, req):
    """``tf.nn.conv2d`` with a grouped filter (KH, KW, C_in // groups, C_out), forward only,
    and its gradient, which TensorFlow's CPU kernels refuse (the case then fails)."""
    x, w = tf.constant(req["x"]), tf.constant(req["w"])
    args = dict(strides=[1, *req["strides"], 1], padding=_tf_padding(req["padding"]),
                dilations=[1, *req["dilations"], 1])
    if req.get("gradient"):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.conv2d(x, w, **args)
        return {"dx": tape.gradient(y, x).numpy()}
    return {"y": tf.nn.conv2d(x, w, **args).numpy()}



OPS = {"conv2d": conv2d, "conv2d_transpose": conv2d_transpose, "max_pool": max_pool, "lrn": lrn,
       "avg_pool": avg_pool, "depthwise_conv2d": depthwise_conv2d, "grouped_conv2d": grouped_conv2d}


def _setup():
    import tensorflow as tf

    threads = int(os.environ.get("NUMBACONV_TF_THREADS", "1"))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf, {"tensorflow": tf.__version__, "numpy": np.__version__}


def main():
    return serve(_setup, OPS)


if __name__ == "__main__":
    exit_after(main)
