"""The worker side of the oracle protocol, shared by every framework's worker script.

A worker (``tf_worker.py``, ``torch_worker.py``) is started by
``oracles.WorkerOracle`` and talks to it over its stdin/stdout pipes. Each
message is an 8-byte big-endian length followed by a pickle. The worker first
sends a greeting (``{"ok": True, <versions>}``, or ``{"ok": False, "error":
<traceback>}`` when its framework cannot be imported), then answers each
request, a list of cases, with a list of results (one per case, in order); a
failing case yields its traceback, not a crash. Empty input (the parent went
away) or a ``None`` request ends the worker.
"""
import os
import pickle
import struct
import sys
import traceback


def read_message(stream):
    header = stream.read(8)
    if len(header) < 8:
        return None
    (size,) = struct.unpack(">Q", header)
    return pickle.loads(stream.read(size))


def write_message(stream, obj):
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">Q", len(data)))
    stream.write(data)
    stream.flush()


def serve(setup, ops):
    """Answer requests until the input ends; returns the exit status.

    ``setup()`` imports the framework and returns ``(module, versions)``;
    ``ops[req["op"]](module, req)`` answers one case.
    """
    # The protocol owns the real stdout; anything else printing to fd 1
    # (a framework's C++ logging, a stray print) goes to stderr instead.
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    try:
        module, versions = setup()
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the tests
        write_message(channel, {"ok": False, "error": traceback.format_exc()})
        return 1
    write_message(channel, {"ok": True, **versions})
    while True:
        batch = read_message(requests)
        if batch is None:
            return 0
        results = []
        for req in batch:
            try:
                results.append({"ok": True, "value": ops[req["op"]](module, req)})
            except Exception:  # noqa: BLE001 - one failing case must not take the others down
                results.append({"ok": False, "error": traceback.format_exc()})
        write_message(channel, results)


def run(main):
    """Run ``main()`` as a worker script's entry point and exit with its status."""
    status = main()
    sys.stderr.flush()
    # Skip the interpreter's teardown of the framework (seconds) once all replies are out.
    os._exit(status)
