"""The digits CNN of ``train_digits.py`` with its whole forward and backward pass in one ``@njit`` function.

    conv 3x3 (16) -> ReLU -> max pool 2x2 -> LRN -> conv 3x3 (32) -> ReLU
    -> max pool 2x2 -> fully connected (10) -> softmax cross-entropy

``loss_and_grads`` below is nopython code over ``numbaconv.kernels``: no
Python between the layers, results in arrays it allocates from the
``output_shape_*`` helpers. The model, data, initialization and SGD are
those of ``train_digits.py`` (imported, not copied). The script checks that
the loss and every gradient equal those of the same network through the
public API (``train_digits.loss_and_grads`` on ``numbaconv``) on a few
batches, to float32 tolerance, exiting 1 if not; then trains with both and
prints the time per SGD step of each.

    python examples/njit_digits.py            # 3 epochs each
    python examples/njit_digits.py --quick    # a few steps each (CI)
    python examples/njit_digits.py --threads 1

At batch 32 the layers are small, so the Python between them (validation,
layout, allocation) is a visible part of a step: on the project's 2-core
machine, one thread (``--threads 1``), a step took 2.16 ms as one @njit
function and 2.87 ms through the public API (mean over 3 epochs, 135 steps
each; with both threads, while another process kept a core busy, parallel
regions waited on the descheduled thread and the figures were 43 and 110 ms).

The @njit functions here are ``cache=True``: compiling ``loss_and_grads``
links every kernel it calls into it (about 15 s on that machine, on top of
the kernels' own compile); later runs load it from the cache.
"""
import argparse
import pathlib
import sys
import time

import numba
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import train_digits  # noqa: E402  the model: reused, not copied

import numbaconv  # noqa: E402
from numbaconv import kernels as K  # noqa: E402

RADIUS, BIAS, ALPHA, BETA = (train_digits.LRN[k] for k in ("depth_radius", "bias", "alpha", "beta"))
POOL = train_digits.POOL


@numba.njit(cache=True)
def conv_same(x, w, b):
    """A stride-1 "SAME" convolution (train_digits.CONV): returns y and the padding it used."""
    pt, pb = K.same_padding(x.shape[1], w.shape[0], 1, 1)
    pl, pr = K.same_padding(x.shape[2], w.shape[1], 1, 1)
    y = np.empty(K.output_shape_conv2d(x.shape, w.shape, 1, 1, pt, pb, pl, pr, 1, 1), x.dtype)
    K.conv2d(x, w, b, y, 1, 1, pt, pl, 1, 1)
    return y, pt, pl


@numba.njit(cache=True)
def relu(z):
    return np.maximum(z, z.dtype.type(0))  # a 0 of z's dtype: an int 0 would promote to float64


@numba.njit(cache=True)
def pool_argmax(a):
    shape = K.output_shape_pool2d(a.shape, POOL, POOL, POOL, POOL, 0, 0, 0, 0, 1, 1, False)
    p, argmax = np.empty(shape, a.dtype), np.empty(shape, np.int64)
    K.max_pool2d_argmax(a, p, argmax, POOL, POOL, POOL, POOL, 0, 0, 1, 1)
    return p, argmax


@numba.njit(cache=True)
def pool_backward_relu(dp, argmax, z):
    """The gradient through max pooling and then the ReLU whose input was z."""
    dz = np.empty_like(z)
    K.max_pool2d_backward(dp, argmax, dz)
    dz_flat, z_flat = dz.reshape(-1), z.reshape(-1)
    for i in range(dz_flat.size):
        if not z_flat[i] > 0:
            dz_flat[i] = 0
    return dz


@numba.njit(cache=True)
def loss_and_grads(x, y, w1, b1, w2, b2, w3, b3):
    """Cross-entropy loss of a batch and the gradients (w1, b1, w2, b2, w3, b3), all in nopython code."""
    n = x.shape[0]
    z1, pt1, pl1 = conv_same(x, w1, b1)
    p1, arg1 = pool_argmax(relu(z1))
    n1 = np.empty_like(p1)
    K.lrn(p1, n1, RADIUS, BIAS, ALPHA, BETA)
    z2, pt2, pl2 = conv_same(n1, w2, b2)
    p2, arg2 = pool_argmax(relu(z2))
    flat = p2.reshape(n, -1)
    logits = flat @ w3 + b3
    # Softmax cross-entropy, as train_digits.softmax_cross_entropy.
    loss = 0.0
    dlogits = np.empty_like(logits)
    for i in range(n):
        row = logits[i] - logits[i].max()
        log_sum = np.log(np.exp(row).sum())
        loss -= row[y[i]] - log_sum
        dlogits[i] = np.exp(row - log_sum)
        dlogits[i, y[i]] -= 1
    dlogits /= np.float32(n)
    dw3, db3 = flat.T @ dlogits, dlogits.sum(axis=0)
    dz2 = pool_backward_relu(np.ascontiguousarray(dlogits @ w3.T).reshape(p2.shape), arg2, z2)
    dn1, dw2, db2 = np.empty_like(n1), np.empty_like(w2), np.empty_like(b2)
    K.conv2d_backward_input(dz2, w2, dn1, 1, 1, pt2, pl2, 1, 1)
    K.conv2d_backward_filter(dz2, n1, dw2, 1, 1, pt2, pl2, 1, 1)
    K.conv2d_backward_bias(dz2, db2)
    dp1 = np.empty_like(p1)
    K.lrn_backward(dn1, p1, dp1, RADIUS, BIAS, ALPHA, BETA)
    dz1 = pool_backward_relu(dp1, arg1, z1)
    dw1, db1 = np.empty_like(w1), np.empty_like(b1)
    K.conv2d_backward_filter(dz1, x, dw1, 1, 1, pt1, pl1, 1, 1)
    K.conv2d_backward_bias(dz1, db1)
    return loss / n, (dw1, db1, dw2, db2, dw3, db3)


NAMES = ("w1", "b1", "w2", "b2", "w3", "b3")


def njit_step(params, x, y):
    loss, grads = loss_and_grads(x, y, *(params[k] for k in NAMES))
    return loss, dict(zip(NAMES, grads, strict=True))


def api_step(params, x, y):
    return train_digits.loss_and_grads(numbaconv, params, x, y)


def check_equal(params, data, batches, batch_size):
    """The njit pass against the public API's on a few batches; the largest relative difference."""
    x_train, y_train = data[0], data[1]
    worst = 0.0
    for i in range(batches):
        x, y = x_train[i * batch_size:(i + 1) * batch_size], y_train[i * batch_size:(i + 1) * batch_size]
        loss, grads = njit_step(params, x, y)
        loss_api, grads_api = api_step(params, x, y)
        worst = max(worst, abs(loss - float(loss_api)) / abs(float(loss_api)))
        for k in NAMES:
            scale = float(np.abs(grads_api[k]).max()) or 1.0
            worst = max(worst, float(np.abs(grads[k] - grads_api[k]).max()) / scale)
    return worst


def train(step, params, data, epochs, batch_size, max_steps, seed, lr=0.01, momentum=0.9):
    """train_digits' SGD with momentum around ``step``; (seconds per step, test accuracy)."""
    x_train, y_train, x_test, y_test = data
    rng = np.random.default_rng(seed)
    params = {k: v.copy() for k, v in params.items()}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    seconds, steps = 0.0, 0
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(x_train), batch_size):
            if max_steps is not None and steps >= max_steps:
                break
            batch = order[start:start + batch_size]
            begin = time.perf_counter()
            _, grads = step(params, x_train[batch], y_train[batch])
            for name, grad in grads.items():
                velocity[name] = momentum * velocity[name] - lr * grad
                params[name] += velocity[name]
            seconds += time.perf_counter() - begin
            steps += 1
    accuracy = train_digits.evaluate(numbaconv, params, x_test, y_test)[1]
    return seconds / max(steps, 1), accuracy


def main(argv=None):
    """Check the njit pass against the public API, then train with each and print their speeds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps each (CI)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    args = parser.parse_args(argv)
    if args.threads:
        numba.set_num_threads(args.threads)
    data = train_digits.load_data()
    params = train_digits.init_params(np.random.default_rng(args.seed), data[0].shape[1])

    start = time.perf_counter()
    njit_step(params, data[0][:2], data[1][:2])  # compile (or load from the cache)
    api_step(params, data[0][:2], data[1][:2])
    print(f"compile or cache load: {time.perf_counter() - start:.1f} s")
    worst = check_equal(params, data, batches=3, batch_size=args.batch_size)
    equal = worst < 1e-4
    print(f"njit pass vs public API: largest relative difference {worst:.2e} "
          f"({'equal' if equal else 'DIFFERENT'} to float32 tolerance 1e-4)")

    epochs, max_steps = (1, 20) if args.quick else (args.epochs, None)
    for name, step in (("public API (numbaconv.*)", api_step), ("one @njit function", njit_step)):
        per_step, accuracy = train(step, params, data, epochs, args.batch_size, max_steps, args.seed)
        print(f"{name:26s} {1e3 * per_step:7.2f} ms per SGD step (batch {args.batch_size}), "
              f"test accuracy {100 * accuracy:5.1f}%")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
