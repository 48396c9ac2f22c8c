"""TensorFlow and PyTorch as test oracles, each run in a worker subprocess.

Why a subprocess: Numba and TensorFlow (or PyTorch) in one process can crash
or hang depending on which is imported first (numba#4870, #7299; they bundle
LLVM and OpenMP/TBB runtimes), and their thread pools compete with Numba's
for the same cores. So the pytest process never imports tensorflow or torch:
one worker per framework (``tests/tf_worker.py``, ``tests/torch_worker.py``,
each started lazily, once per session) imports it and answers requests sent
as pickled NumPy arrays over its stdin/stdout pipes
(``tests/worker_protocol.py``). :class:`WorkerOracle` is the parent's side,
the same for both.

Robustness (POSIX pipes, ``select``): every reply is awaited with a timeout; a worker that dies, hangs
or cannot import its framework raises :class:`OracleError` (with the worker's
stderr tail) in the test that asked, so the test fails instead of hanging or
skipping. A case that makes the framework raise fails only that case. A
worker that dies after starting is restarted on the next request; one that
could not start (framework missing, crash or timeout while starting) is not
retried, so every later request fails at once instead of waiting again.

Requests are built in the caller's layout (NHWC/HWIO or NCHW/OIHW) and
translated here to the framework's (TensorFlow: NHWC/HWIO, PyTorch: NCHW);
results come back in the caller's layout. Batch several requests in one
:meth:`WorkerOracle.run` call: one round trip, one pickle, instead of one per
test.
"""
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf_worker.py")
TORCH_WORKER = os.path.join(os.path.dirname(WORKER), "torch_worker.py")
START_TIMEOUT = 180.0  # importing tensorflow takes ~5 s idle, far more on a loaded machine
REQUEST_TIMEOUT = 120.0  # per run() call ...
CASE_TIMEOUT = 10.0  # ... plus this per case


class OracleError(RuntimeError):
    """The framework could not answer: not importable, crashed, timed out, or raised."""


# ------------------------------------------------------------------ layouts


def _to_nhwc(a, fmt):
    return None if a is None else (a if fmt == "NHWC" else np.ascontiguousarray(a.transpose(0, 2, 3, 1)))


def _from_nhwc(a, fmt):
    return a if fmt == "NHWC" else np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _to_hwio(w, fmt):
    return w if fmt == "NHWC" else np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def _from_hwio(w, fmt):
    return w if fmt == "NHWC" else np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def _fmt(data_format):
    fmt = data_format.upper()
    if fmt not in ("NHWC", "NCHW"):
        raise ValueError(f"data_format {data_format!r}")
    return fmt


def tf_padding(padding):
    """numbaconv's padding forms as TensorFlow's: 'SAME', 'VALID' or ((t, b), (l, r))."""
    if isinstance(padding, str):
        return padding.upper()
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    a, b = padding
    if isinstance(a, int):
        return (a, a), (b, b)
    return tuple(a), tuple(b)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class Request:
    """One case for the worker: the NHWC payload and how to bring results back."""

    def __init__(self, payload, finish):
        self.payload = payload
        self.finish = finish


# ----------------------------------------------------------------- requests


def conv2d(x, w, b, dy, *, stride=1, padding=0, dilation=1, data_format="NHWC"):
    """conv2d forward (with bias) and the gradients of sum(y * dy): keys y, dx, dw, db."""
    fmt = _fmt(data_format)

    def finish(r):
        return {"y": _from_nhwc(r["y"], fmt), "dx": _from_nhwc(r["dx"], fmt),
                "dw": _from_hwio(r["dw"], fmt), "db": r["db"]}

    return Request({
        "op": "conv2d", "x": _to_nhwc(x, fmt), "w": _to_hwio(w, fmt), "b": b,
        "dy": _to_nhwc(dy, fmt), "strides": _pair(stride), "padding": tf_padding(padding),
        "dilations": _pair(dilation),
    }, finish)


def conv2d_transpose(x, w, b, dy, out_hw, *, stride=1, padding=0, dilation=1, data_format="NHWC"):
    """The transposed conv (TensorFlow's conv2d input gradient) with output plane
    ``out_hw`` and the gradients of sum(y * dy): keys y, dx, dw, db.

    ``out_hw`` fixes the output size, so output_padding needs no parameter here.
    """
    fmt = _fmt(data_format)

    def finish(r):
        return {"y": _from_nhwc(r["y"], fmt), "dx": _from_nhwc(r["dx"], fmt),
                "dw": _from_hwio(r["dw"], fmt), "db": r["db"]}

    return Request({
        "op": "conv2d_transpose", "x": _to_nhwc(x, fmt), "w": _to_hwio(w, fmt), "b": b,
        "dy": _to_nhwc(dy, fmt), "out_hw": tuple(out_hw), "strides": _pair(stride),
        "padding": tf_padding(padding), "dilations": _pair(dilation),
    }, finish)


def max_pool(x, dy, pool_size, *, stride=None, padding=0, data_format="NHWC"):
    """max_pool2d forward, the gradient of sum(y * dy), and (for 'SAME'/'VALID')
    argmax as numbaconv's flat h * W + w index: keys y, dx, argmax."""
    fmt = _fmt(data_format)
    ksize = _pair(pool_size)

    def finish(r):
        out = {"y": _from_nhwc(r["y"], fmt), "dx": _from_nhwc(r["dx"], fmt)}
        if "argmax" in r:
            out["argmax"] = _from_nhwc(r["argmax"], fmt)
        return out

    return Request({
        "op": "max_pool", "x": _to_nhwc(x, fmt), "dy": _to_nhwc(dy, fmt), "ksize": ksize,
        "strides": ksize if stride is None else _pair(stride), "padding": tf_padding(padding),
    }, finish)


def lrn(x, dy, *, depth_radius, bias, alpha, beta, data_format="NHWC"):
    """TensorFlow's LRN and its gradient, computed in float32 (TensorFlow has no
    other LRN): keys y, dx."""
    fmt = _fmt(data_format)

    def finish(r):
        return {"y": _from_nhwc(r["y"], fmt), "dx": _from_nhwc(r["dx"], fmt)}

    return Request({
        "op": "lrn", "x": _to_nhwc(x, fmt), "dy": _to_nhwc(dy, fmt), "depth_radius": depth_radius,
        "bias": bias, "alpha": alpha, "beta": beta,
    }, finish)


def avg_pool(x, dy, pool_size, *, stride=None, padding="VALID", data_format="NHWC"):
    """TensorFlow's avg_pool2d ('SAME'/'VALID') and the gradient of sum(y * dy): keys y, dx."""
    fmt = _fmt(data_format)
    ksize = _pair(pool_size)

    def finish(r):
        return {"y": _from_nhwc(r["y"], fmt), "dx": _from_nhwc(r["dx"], fmt)}

    return Request({
        "op": "avg_pool", "x": _to_nhwc(x, fmt), "dy": _to_nhwc(dy, fmt), "ksize": ksize,
        "strides": ksize if stride is None else _pair(stride), "padding": padding.upper(),
    }, finish)


def depthwise_conv2d(x, w, b, dy, *, stride=1, padding=0, dilation=1, data_format="NHWC"):
    """TensorFlow's ``depthwise_conv2d`` for numbaconv's ``conv2d(x, w, b, groups=C_in)``.

    ``w`` is numbaconv's grouped filter in the caller's layout (HWIO
    ``(KH, KW, 1, C_in * M)`` or OIHW); TensorFlow's ``(KH, KW, C_in, M)``
    is its reshape. Keys y, dx, dw, db (dw in w's layout).
    """
    fmt = _fmt(data_format)
    w_hwio = _to_hwio(w, fmt)
    kh, kw, _, c_out = w_hwio.shape
    c_in = _to_nhwc(x, fmt).shape[3]

    def finish(r):
        return {"y": _from_nhwc(r["y"], fmt), "dx": _from_nhwc(r["dx"], fmt),
                "dw": _from_hwio(r["dw"].reshape(kh, kw, 1, c_out), fmt), "db": r["db"]}

    return Request({
        "op": "depthwise_conv2d", "x": _to_nhwc(x, fmt), "w": w_hwio.reshape(kh, kw, c_in, c_out // c_in),
        "b": b, "dy": _to_nhwc(dy, fmt), "strides": _pair(stride), "padding": tf_padding(padding),
        "dilations": _pair(dilation),
    }, finish)


def grouped_conv2d(x, w, *, stride=1, padding=0, dilation=1, data_format="NHWC", gradient=False):
    """TensorFlow's ``conv2d`` with a grouped filter: key y, or dx (of sum(y)) with ``gradient``."""
    fmt = _fmt(data_format)

    def finish(r):
        return {k: _from_nhwc(v, fmt) for k, v in r.items()}

    return Request({
        "op": "grouped_conv2d", "x": _to_nhwc(x, fmt), "w": _to_hwio(w, fmt), "strides": _pair(stride),
        "padding": tf_padding(padding), "dilations": _pair(dilation), "gradient": gradient,
    }, finish)


# ------------------------------------------------------- PyTorch requests
#
# Data go to the worker as NCHW (filters OIHW) and come back in the caller's
# layout. PyTorch's pooling takes symmetric padding (ph, pw) only; the conv
# requests carry explicit (top, bottom, left, right) padding.


def _to_nchw(a, fmt):
    return None if a is None else (a if fmt == "NCHW" else np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def _from_nchw(a, fmt):
    return a if fmt == "NCHW" else np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def _torch_request(op, fmt, arrays, params, results):
    """arrays: name -> data in fmt; results: the keys that come back as data."""
    fmt = _fmt(fmt)

    def finish(r):
        return {k: _from_nchw(r[k], fmt) for k in results}

    return Request({"op": op, **{k: _to_nchw(a, fmt) for k, a in arrays.items()}, **params}, finish)


def torch_max_pool(x, dy, pool_size, *, stride, padding=0, dilation=1, ceil_mode=False,
                   data_format="NHWC"):
    """F.max_pool2d with indices and its gradient: keys y, argmax, dx."""
    return _torch_request("max_pool", data_format, {"x": x, "dy": dy}, {
        "kernel_size": _pair(pool_size), "stride": _pair(stride), "padding": _pair(padding),
        "dilation": _pair(dilation), "ceil_mode": ceil_mode}, ("y", "argmax", "dx"))


def torch_max_unpool(y, argmax, x_hw, pool_size, *, stride, padding=0, data_format="NHWC"):
    """F.max_unpool2d(y, argmax, output_size=x_hw): key x."""
    return _torch_request("max_unpool", data_format, {"y": y, "argmax": argmax}, {
        "kernel_size": _pair(pool_size), "stride": _pair(stride), "padding": _pair(padding),
        "output_size": tuple(x_hw)}, ("x",))


def torch_avg_pool(x, dy, pool_size, *, stride, padding=0, ceil_mode=False,
                   count_include_pad=False, data_format="NHWC"):
    """F.avg_pool2d and its gradient: keys y, dx."""
    return _torch_request("avg_pool", data_format, {"x": x, "dy": dy}, {
        "kernel_size": _pair(pool_size), "stride": _pair(stride), "padding": _pair(padding),
        "ceil_mode": ceil_mode, "count_include_pad": count_include_pad}, ("y", "dx"))


def torch_adaptive_avg_pool(x, dy, output_size, *, data_format="NHWC"):
    """F.adaptive_avg_pool2d and its gradient: keys y, dx."""
    return _torch_request("adaptive_avg_pool", data_format, {"x": x, "dy": dy},
                          {"output_size": _pair(output_size)}, ("y", "dx"))


def _to_oihw(w, fmt):
    return w if fmt == "NCHW" else np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def _from_oihw(w, fmt):
    return w if fmt == "NCHW" else np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def _torch_finish(fmt):
    def finish(r):
        out = {"y": _from_nchw(r["y"], fmt), "dx": _from_nchw(r["dx"], fmt),
               "dw": _from_oihw(r["dw"], fmt)}
        out.update((k, r[k]) for k in ("db", "native") if k in r)
        return out
    return finish


def torch_conv2d(x, w, b, dy, *, stride, pads, dilation, groups, data_format):
    """``F.conv2d(..., groups)`` forward and autograd (``pads``: top, bottom, left, right): keys y, dx, dw, db."""
    fmt = _fmt(data_format)
    return Request({
        "op": "conv2d", "x": _to_nchw(x, fmt), "w": _to_oihw(w, fmt), "b": b, "dy": _to_nchw(dy, fmt),
        "stride": _pair(stride), "pads": tuple(pads), "dilation": _pair(dilation), "groups": groups,
    }, _torch_finish(fmt))


def torch_conv2d_transpose(x, w, b, dy, out_hw, *, stride, pads, dilation, groups, data_format):
    """``F.conv_transpose2d(..., groups)`` with output plane ``out_hw``, forward and autograd.

    PyTorch's transposed-conv weight ``(in_channels, out_channels // groups,
    KH, KW)`` is numbaconv's OIHW filter as it is. Keys y, dx, dw, db.
    """
    fmt = _fmt(data_format)
    return Request({
        "op": "conv2d_transpose", "x": _to_nchw(x, fmt), "w": _to_oihw(w, fmt), "b": b,
        "dy": _to_nchw(dy, fmt), "out_hw": tuple(out_hw), "stride": _pair(stride), "pads": tuple(pads),
        "dilation": _pair(dilation), "groups": groups,
    }, _torch_finish(fmt))


# ------------------------------------------------------------------- worker


def _write(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class WorkerOracle:
    """A lazily started framework worker process; :meth:`run` sends it requests.

    Subclasses name the framework (``framework``: for messages, ``module``:
    what the worker imports), the worker script and its environment.
    """

    framework = module = None
    default_worker = None

    def __init__(self, worker=None, start_timeout=START_TIMEOUT,
                 request_timeout=REQUEST_TIMEOUT, case_timeout=CASE_TIMEOUT):
        self.worker = worker or self.default_worker
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self.case_timeout = case_timeout
        self._proc = None
        self._stderr = None
        self._fatal = None  # set when the framework cannot be imported: no retries
        self.versions = None

    # -- lifecycle

    def _start(self):
        if self._fatal is not None:
            raise OracleError(self._fatal)
        env = self.environment(dict(os.environ))
        env["CUDA_VISIBLE_DEVICES"] = ""
        self._close_stderr()
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [sys.executable, self.worker], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, env=env, close_fds=True,
        )
        try:
            hello = self._receive(self.start_timeout, f"starting the {self.framework} worker")
        except OracleError as err:  # a worker that cannot start once will not start later
            self._fatal = str(err)
            raise
        if not hello.get("ok"):
            self._fatal = (
                f"{self.module} is not importable in the oracle worker; the {self.framework} "
                "tests need it (pip install -e .[test]). Worker traceback:\n" + hello.get("error", "")
            )
            self.close()
            raise OracleError(self._fatal)
        self.versions = {k: v for k, v in hello.items() if k != "ok"}

    def close(self):
        """Stop the worker (it exits on end of input; killed if it does not)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            finally:
                proc.stdout.close()
        self._close_stderr()

    def _close_stderr(self):
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _stderr_tail(self, limit=4000):
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace")
        return text[-limit:]

    def _fail(self, what):
        """Kill the worker and raise with what it printed."""
        proc = self._proc
        tail = self._stderr_tail()
        code = None
        if proc is not None:
            proc.kill()
            code = proc.wait()
            proc.stdin.close()
            proc.stdout.close()
            self._proc = None
        self._close_stderr()
        raise OracleError(f"{self.framework} worker: {what} (exit code {code}). stderr tail:\n{tail}")

    # -- transport

    def _read_exact(self, n, deadline, what):
        fd = self._proc.stdout.fileno()
        chunks, remaining = [], n
        while remaining:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(f"timed out {what}")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                self._fail(f"died {what}")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _receive(self, timeout, what):
        deadline = time.monotonic() + timeout
        (size,) = struct.unpack(">Q", self._read_exact(8, deadline, what))
        return pickle.loads(self._read_exact(size, deadline, what))

    def run(self, requests):
        """Send requests (a list of :class:`Request`); returns their results in order.

        Each result is a dict of arrays, or an :class:`OracleError` instance
        when the framework raised on that case (the caller raises it).
        """
        requests = list(requests)
        if self._proc is not None and self._proc.poll() is not None:
            self.close()  # died since the last request: start a fresh one
        if self._proc is None:
            self._start()
        data = pickle.dumps([r.payload for r in requests], protocol=pickle.HIGHEST_PROTOCOL)
        try:
            _write(self._proc.stdin.fileno(), struct.pack(">Q", len(data)) + data)
        except OSError as err:
            self._fail(f"could not take the request ({err})")
        replies = self._receive(self.request_timeout + self.case_timeout * len(requests),
                                f"answering {len(requests)} case(s)")
        return [
            r.finish(reply["value"]) if reply["ok"]
            else OracleError(f"{self.framework} raised on this case:\n" + reply["error"])
            for r, reply in zip(requests, replies)
        ]

    def run_one(self, request):
        """One request; raises OracleError if the framework raised."""
        (result,) = self.run([request])
        if isinstance(result, OracleError):
            raise result
        return result


class TFOracle(WorkerOracle):
    """TensorFlow in ``tf_worker.py``: one intra-op thread, the plain Eigen kernels."""

    framework, module, default_worker = "TensorFlow", "tensorflow", WORKER

    def environment(self, env):
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # The plain Eigen kernels: the same oracle on every CPU (oneDNN is
        # opt-in on AMD and on by default on Intel).
        env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        return env


class TorchOracle(WorkerOracle):
    """PyTorch in ``torch_worker.py`` (one thread unless NUMBACONV_TORCH_THREADS says otherwise)."""

    framework, module, default_worker = "PyTorch", "torch", TORCH_WORKER

    def environment(self, env):
        return env


class Batch:
    """Requests keyed by case id, all sent to the worker on the first lookup.

    ``batch[key]`` returns that case's result or raises its OracleError, so
    one failing case fails one test. ``make`` maps a key to its Request and
    is called for every key at the first lookup.
    """

    def __init__(self, oracle, keys, make):
        self._oracle = oracle
        self._keys = list(keys)
        self._make = make
        self._results = None
        self._failure = None  # the worker failed on the whole batch: do not wait again

    def __getitem__(self, key):
        if self._failure is not None:
            raise self._failure
        if self._results is None:
            try:
                results = self._oracle.run([self._make(k) for k in self._keys])
            except OracleError as err:
                self._failure = err
                raise
            self._results = dict(zip(self._keys, results))
        result = self._results[key]
        if isinstance(result, OracleError):
            raise result
        return result


_SESSION_ORACLES = {}


def session_oracle(kind=TFOracle):
    """The process-wide oracle of a kind (its worker starts on the first request)."""
    if kind not in _SESSION_ORACLES:
        _SESSION_ORACLES[kind] = kind()
    return _SESSION_ORACLES[kind]


def close_session_oracle(kind=TFOracle):
    oracle = _SESSION_ORACLES.pop(kind, None)
    if oracle is not None:
        oracle.close()
