"""The digits CNN of ``train_digits.py`` on Dask: inference over a memory-mapped batch
and one data-parallel training step, on a LocalCluster of worker processes.

1. Writes a large batch of digits (the training images, tiled, with a little
   noise) to a memory-mapped ``.npy`` in a temporary directory, and reads it
   as a Dask array chunked along the batch: each task opens the file and
   reads its own rows, so no image travels through the scheduler.
2. Runs the model's forward pass (``predict`` of ``train_digits.py`` with
   ``numbaconv.dask`` as its ops) over the whole batch on a LocalCluster of 1
   and of 2 worker processes (``numbaconv.dask.local_cluster``: spawned, one
   Dask thread each, Numba's threads = available cores / workers), and the
   eager ``predict`` over the same chunks in this process; checks that the
   predictions agree and prints the throughputs (median of ``--repeats``
   interleaved runs).
3. One data-parallel training step: ``loss_and_grads`` of ``train_digits.py``
   with ``numbaconv.dask`` on a chunked batch, computed on the 2-worker cluster
   (dw, db summed over the chunks by a tree reduction), against the eager
   gradients of the same batch; exits with status 1 if they differ beyond
   float32 rounding.

    python examples/dask_digits.py                                   # 32768 images
    python examples/dask_digits.py --images 2048 --chunk 512 --repeats 1 --train-epochs 0
"""
import argparse
import logging
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import train_digits  # the model: reused, not copied

# Worker processes are spawned: they import this module again as __mp_main__,
# so the heavy imports (dask, distributed, numbaconv) wait until main().


class NpyRows:
    """A ``.npy`` file read lazily by rows: what ``dask.array.from_array`` needs
    (shape, dtype, ndim, slicing), pickled as its path only, so each task opens
    the memory map in its own worker."""

    def __init__(self, path):
        self.path = str(path)
        header = np.load(self.path, mmap_mode="r")
        self.shape, self.dtype, self.ndim = header.shape, header.dtype, header.ndim

    def __getitem__(self, index):
        return np.array(np.load(self.path, mmap_mode="r")[index])


def write_batch(path, x, y, n, seed=0):
    """``n`` images drawn from ``x`` (with labels from ``y``) plus N(0, 0.1) noise, written
    chunk by chunk into a memory-mapped ``.npy``; returns the labels."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(x), n)
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                       shape=(n,) + x.shape[1:])
    for start in range(0, n, 4096):
        part = index[start:start + 4096]
        noise = rng.standard_normal((len(part),) + x.shape[1:]).astype(np.float32)
        images[start:start + len(part)] = x[part] + np.float32(0.1) * noise
    images.flush()
    del images
    return y[index]


def median_rates(runs, images, repeats):
    """Images per second of each of ``runs`` (name -> callable), median of ``repeats``
    runs interleaved (one of each in turn), so that load on a shared machine hits all."""
    seconds = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return {name: images / float(np.median(s)) for name, s in seconds.items()}


def relative_error(got, want):
    return float(np.abs(got - want).max() / max(np.abs(want).max(), np.finfo(np.float32).tiny))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=32768, help="images in the batch file")
    parser.add_argument("--chunk", type=int, default=2048, help="images per Dask chunk")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each setup")
    parser.add_argument("--train-epochs", type=int, default=1,
                        help="epochs of eager training before inference (0: initial weights)")
    parser.add_argument("--step-batch", type=int, default=1024,
                        help="images in the data-parallel training step")
    args = parser.parse_args(argv)

    import dask.array as da
    from distributed import Client

    import numbaconv
    import numbaconv.dask as nd

    data = train_digits.load_data()
    x_train, y_train = data[0], data[1]
    if args.train_epochs:
        params = train_digits.train(epochs=args.train_epochs, verbose=False,
                                    data=data)["params"]
    else:
        params = train_digits.init_params(np.random.default_rng(0), x_train.shape[1])
    # Compile (or load) the kernels here first: the workers then load them
    # from the on-disk cache instead of compiling them side by side.
    print(f"warm-up (compile or load the kernels): {numbaconv.warmup((np.float32,)):.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "digits.npy"
        labels = write_batch(path, x_train, y_train, args.images)
        mapped = np.load(path, mmap_mode="r")
        lazy = da.from_array(NpyRows(path), chunks=(args.chunk,) + mapped.shape[1:],
                             name=f"digits-npy-{os.getpid()}")
        print(f"batch: {path.name} {mapped.shape} float32 ({mapped.nbytes / 2**20:.0f} MiB, "
              f"memory-mapped), {lazy.numblocks[0]} chunks of {args.chunk}; "
              f"{nd.available_cores()} cores available")

        def eager():
            return np.concatenate([train_digits.predict(numbaconv, params, mapped[s:s + args.chunk])
                                   for s in range(0, len(mapped), args.chunk)])

        logits = train_digits.predict(nd, params, lazy)  # lazy: nothing runs yet
        clusters, clients = {}, {}
        try:
            for workers in (1, 2):
                clusters[workers] = nd.local_cluster(workers, dashboard_address=":0",
                                                     silence_logs=logging.ERROR)
                clients[workers] = Client(clusters[workers], set_as_default=False)
                # Warm-up run: the workers load the kernels and the first chunks.
                clients[workers].compute(logits[:args.chunk]).result()

            want = eager()
            status = 0
            for workers, client in clients.items():
                got = client.compute(logits).result()
                agree = np.mean(got.argmax(axis=1) == want.argmax(axis=1))
                error = relative_error(got, want)
                print(f"  {workers} worker(s): predictions agree with eager on "
                      f"{100 * agree:.2f}% of images, logits max rel. difference {error:.1e}")
                if agree < 0.999 or error > 1e-4:
                    status = 1
            print(f"  accuracy on the batch: {100 * np.mean(want.argmax(axis=1) == labels):.1f}%")

            runs = {"eager, this process (chunk by chunk)": eager}
            for workers, client in clients.items():
                runs[f"dask, {workers} worker process(es)"] = (
                    lambda c=client: c.compute(logits).result())
            rates = median_rates(runs, len(mapped), args.repeats)
            print(f"inference throughput, median of {args.repeats} interleaved run(s) "
                  f"(a shared machine: expect 10-30% noise):")
            base = rates["eager, this process (chunk by chunk)"]
            for name, rate in rates.items():
                print(f"  {name:40s} {rate:10.0f} images/s  ({rate / base:.2f}x eager)")

            # One data-parallel training step on the 2-worker cluster.
            n = min(args.step_batch, len(mapped))
            step_chunk = max(1, n // 4)
            x_step = lazy[:n].rechunk((step_chunk,) + mapped.shape[1:])
            y_step = da.from_array(labels[:n], chunks=step_chunk)
            loss, grads = train_digits.loss_and_grads(nd, params, x_step, y_step)
            futures = clients[2].compute([loss, *grads.values()])  # one graph
            loss, *values = (future.result() for future in futures)
            grads = dict(zip(grads, values))
            eager_loss, eager_grads = train_digits.loss_and_grads(
                numbaconv, params, np.asarray(mapped[:n]), labels[:n])
            errors = {name: relative_error(grads[name], eager_grads[name]) for name in grads}
            print(f"training step on {n} images in chunks of {step_chunk}, 2 workers: loss "
                  f"{float(loss):.6f} (eager {float(eager_loss):.6f}); max relative gradient "
                  f"difference " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
            same = (all(e < 1e-4 for e in errors.values())
                    and abs(float(loss) - float(eager_loss)) <= 1e-5 * abs(float(eager_loss)))
            print("gradients equal the eager ones to float32 rounding" if same else
                  "GRADIENTS DIFFER from the eager ones")
            if not same:
                status = 1
        finally:
            for client in clients.values():
                client.close()
            # Last opened, first closed: each restores the log level it found.
            for cluster in reversed(clusters.values()):
                cluster.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
