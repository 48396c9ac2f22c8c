"""Train a small CNN from scratch on scikit-learn's digits with numbaconv's layers.

    conv 3x3 (16) -> ReLU -> max pool 2x2 -> LRN -> conv 3x3 (32) -> ReLU
    -> max pool 2x2 -> fully connected (10) -> softmax cross-entropy

The convolutions, pools and LRN (forward and backward) are numbaconv's
functions; ReLU, the fully connected layer, the loss and SGD with momentum are
plain NumPy. Everything is float32, NHWC. The data is
``sklearn.datasets.load_digits`` (1797 8x8 images, bundled with scikit-learn:
no download), upsampled to 16x16 and split 80/20 (stratified, fixed split).

    python examples/train_digits.py                        # Numba kernels
    python examples/train_digits.py --backend reference    # the same model on NumPy

``--backend reference`` runs the identical model on ``numbaconv.reference``
(vectorized NumPy): compare the per-epoch times to see the speed-up. Other
options: ``--epochs``, ``--seed`` (weights and batch order), ``--batch-size``,
``--lr``, ``--momentum``. ``train(...)`` can be imported and returns the
history.
"""
import argparse
import sys
import time

import numpy as np

LRN = {"depth_radius": 2, "bias": 1.0, "alpha": 1e-3, "beta": 0.75}
CONV = {"stride": 1, "padding": "SAME"}
POOL = 2
CLASSES = 10


def backend(name):
    """The module whose functions the model uses: numbaconv or numbaconv.reference."""
    if name == "numba":
        import numbaconv
        return numbaconv
    if name == "reference":
        import numbaconv.reference
        return numbaconv.reference
    raise ValueError(f"backend must be 'numba' or 'reference', got {name!r}")


def load_data(upsample=2, test_size=0.2, split_seed=0):
    """(x_train, y_train, x_test, y_test): x float32 NHWC (N, 8u, 8u, 1) standardized, y int."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32) / np.float32(16.0)
    images = images.repeat(upsample, axis=1).repeat(upsample, axis=2)[..., None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=test_size, stratify=digits.target,
        random_state=split_seed,
    )
    mean, std = x_train.mean(), x_train.std()  # statistics of the training set only
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test


def init_params(rng, image_size, channels=(16, 32)):
    """He-initialized conv filters (HWIO), a small last layer, zero biases, all float32."""
    c1, c2 = channels
    features = (image_size // POOL // POOL) ** 2 * c2

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    return {
        "w1": normal((3, 3, 1, c1), np.sqrt(2 / 9)), "b1": np.zeros(c1, np.float32),
        "w2": normal((3, 3, c1, c2), np.sqrt(2 / (9 * c1))), "b2": np.zeros(c2, np.float32),
        # A small last layer: the first predictions are near uniform (loss ~ ln 10).
        "w3": normal((features, CLASSES), 0.1 / np.sqrt(features)),
        "b3": np.zeros(CLASSES, np.float32),
    }


def forward(ops, params, x):
    """Logits and everything the backward pass needs."""
    z1 = ops.conv2d(x, params["w1"], params["b1"], **CONV)
    a1 = np.maximum(z1, 0)
    p1, arg1 = ops.max_pool2d_argmax(a1, POOL)
    n1 = ops.lrn(p1, **LRN)
    z2 = ops.conv2d(n1, params["w2"], params["b2"], **CONV)
    a2 = np.maximum(z2, 0)
    p2, arg2 = ops.max_pool2d_argmax(a2, POOL)
    flat = p2.reshape(len(x), -1)
    logits = flat @ params["w3"] + params["b3"]
    return logits, (x, z1, a1.shape, arg1, p1, n1, z2, a2.shape, arg2, p2.shape, flat)


def softmax_cross_entropy(logits, y):
    """Mean cross-entropy of softmax(logits) against labels y, and its gradient.

    Written with a one-hot mask and no in-place writes, so that it also builds
    a lazy graph from Dask arrays (``examples/dask_digits.py``); the loss is a
    0-d array.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_prob = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    onehot = y[:, None] == np.arange(logits.shape[1])
    loss = -(log_prob * onehot).sum(axis=1).mean()
    return loss, (np.exp(log_prob) - onehot) / np.float32(len(y))


def loss_and_grads(ops, params, x, y):
    """Cross-entropy loss of a batch and the gradient of every parameter."""
    logits, (x, z1, a1_shape, arg1, p1, n1, z2, a2_shape, arg2, p2_shape, flat) = forward(
        ops, params, x)
    loss, dlogits = softmax_cross_entropy(logits, y)
    grads = {"w3": flat.T @ dlogits, "b3": dlogits.sum(axis=0)}
    dp2 = (dlogits @ params["w3"].T).reshape(p2_shape)
    dz2 = ops.max_pool2d_backward(dp2, arg2, a2_shape) * (z2 > 0)
    dn1, grads["w2"], grads["b2"] = ops.conv2d_backward(dz2, n1, params["w2"], **CONV)
    dp1 = ops.lrn_backward(dn1, p1, **LRN)
    dz1 = ops.max_pool2d_backward(dp1, arg1, a1_shape) * (z1 > 0)
    _, grads["w1"], grads["b1"] = ops.conv2d_backward(dz1, x, params["w1"], **CONV)
    return loss, grads


def predict(ops, params, x):
    """Class scores (logits) without keeping anything for a backward pass."""
    a1 = np.maximum(ops.conv2d(x, params["w1"], params["b1"], **CONV), 0)
    n1 = ops.lrn(ops.max_pool2d(a1, POOL), **LRN)
    a2 = np.maximum(ops.conv2d(n1, params["w2"], params["b2"], **CONV), 0)
    return ops.max_pool2d(a2, POOL).reshape(len(x), -1) @ params["w3"] + params["b3"]


def evaluate(ops, params, x, y, batch_size=512):
    """(mean loss, accuracy) over a data set."""
    losses, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        logits = predict(ops, params, x[start:start + batch_size])
        labels = y[start:start + batch_size]
        losses += float(softmax_cross_entropy(logits, labels)[0]) * len(labels)
        correct += int((logits.argmax(axis=1) == labels).sum())
    return losses / len(x), correct / len(x)


class ProgressBar:
    """A one-line text progress bar: ``[#####.....] 23/45 loss 0.4213``."""

    def __init__(self, total, stream, width=30):
        self.total, self.stream, self.width = total, stream, width

    def update(self, done, loss):
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r  [{bar}] {done}/{self.total} loss {loss:.4f}")
        self.stream.flush()

    def close(self):
        self.stream.write("\r" + " " * (self.width + 40) + "\r")
        self.stream.flush()


def train(backend_name="numba", epochs=8, batch_size=32, seed=0, lr=0.01, momentum=0.9,
          max_steps=None, verbose=True, stream=None, data=None):
    """Train the model with SGD + momentum; return the history.

    Parameters
    ----------
    backend_name : 'numba' or 'reference'
    epochs, batch_size, lr, momentum : the usual
    seed : seeds the weights and the batch order (the train/test split is fixed)
    max_steps : stop after this many SGD steps in total (for quick tests)
    verbose : print a progress bar and one line per epoch to ``stream`` (stdout)
    data : (x_train, y_train, x_test, y_test) instead of ``load_data()``

    Returns
    -------
    dict with ``step_loss`` (the loss of every batch, before its update),
    ``epochs`` (one dict per epoch: ``loss``, ``train_accuracy``,
    ``test_accuracy``, ``seconds`` of training), ``test_accuracy`` (final),
    ``warmup_seconds`` (first call: JIT compile or cache load) and ``params``.
    """
    ops = backend(backend_name)
    stream = sys.stdout if stream is None else stream
    x_train, y_train, x_test, y_test = load_data() if data is None else data
    rng = np.random.default_rng(seed)
    params = init_params(rng, x_train.shape[1])
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    history = {"backend": backend_name, "step_loss": [], "epochs": [], "params": params}

    # Compile (or load cached) kernels for these shapes' dtype before timing anything.
    start = time.perf_counter()
    loss_and_grads(ops, params, x_train[:2], y_train[:2])
    history["warmup_seconds"] = time.perf_counter() - start
    if verbose:
        print(f"backend {backend_name}: {len(x_train)} train / {len(x_test)} test images "
              f"{x_train.shape[1:3]}, warm-up {history['warmup_seconds']:.2f} s", file=stream)

    steps_per_epoch = -(-len(x_train) // batch_size)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        bar = ProgressBar(steps_per_epoch, stream) if verbose else None
        seen_loss, seen = 0.0, 0
        start = time.perf_counter()
        for step in range(steps_per_epoch):
            if max_steps is not None and len(history["step_loss"]) >= max_steps:
                break
            batch = order[step * batch_size:(step + 1) * batch_size]
            loss, grads = loss_and_grads(ops, params, x_train[batch], y_train[batch])
            loss = float(loss)
            for name, grad in grads.items():
                velocity[name] = momentum * velocity[name] - lr * grad
                params[name] += velocity[name]
            history["step_loss"].append(loss)
            seen_loss, seen = seen_loss + loss * len(batch), seen + len(batch)
            if bar:
                bar.update(step + 1, seen_loss / seen)
        seconds = time.perf_counter() - start
        if bar:
            bar.close()
        if seen == 0:
            break
        _, train_acc = evaluate(ops, params, x_train, y_train)
        _, test_acc = evaluate(ops, params, x_test, y_test)
        history["epochs"].append({"epoch": epoch, "loss": seen_loss / seen, "seconds": seconds,
                                  "train_accuracy": train_acc, "test_accuracy": test_acc})
        if verbose:
            print(f"epoch {epoch:2d}/{epochs}  loss {seen_loss / seen:.4f}  "
                  f"train acc {100 * train_acc:5.1f}%  test acc {100 * test_acc:5.1f}%  "
                  f"time {seconds:.2f} s", file=stream)
    history["test_accuracy"] = evaluate(ops, params, x_test, y_test)[1]
    return history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("numba", "reference"), default="numba",
                        help="numbaconv (Numba kernels) or numbaconv.reference (NumPy)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--momentum", type=float, default=0.9)
    args = parser.parse_args(argv)
    history = train(args.backend, epochs=args.epochs, batch_size=args.batch_size,
                    seed=args.seed, lr=args.lr, momentum=args.momentum)
    times = [e["seconds"] for e in history["epochs"]]
    if times:
        print(f"final test accuracy {100 * history['test_accuracy']:.1f}%  "
              f"training time {sum(times):.2f} s (median epoch {np.median(times):.2f} s, "
              f"backend {args.backend})")
    return history


if __name__ == "__main__":
    main()
