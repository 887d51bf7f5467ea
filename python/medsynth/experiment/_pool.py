"""A small pool of worker processes for the local backend.

Workers are fresh interpreters (``python -m medsynth.experiment._pool``), not forked or spawned
through multiprocessing: the engine's thread pool starts clean in each, and the caller's script is
never re-imported (multiprocessing's spawn would run an unguarded script again in every worker).
Jobs and results travel as length-prefixed pickles over the workers' stdin and stdout; anything a
worker prints goes to its stderr.
"""
from __future__ import annotations

import os
import pickle
import selectors
import signal
import struct
import subprocess
import sys
import traceback

_HEADER = struct.Struct("<Q")


def _write(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class WorkerError(RuntimeError):
    """A task failed in a worker; the message holds the worker's traceback."""


class WorkerPool:
    def __init__(self, workers: int):
        import medsynth
        root = os.path.dirname(os.path.dirname(os.path.abspath(medsynth.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.processes = []
        for _ in range(max(1, int(workers))):
            self.processes.append(subprocess.Popen([sys.executable, "-m", "medsynth.experiment._pool"], stdin=subprocess.PIPE,
                                                   stdout=subprocess.PIPE, env=env))

    def map(self, function: str, jobs: list, on_result) -> None:
        """Runs ``function`` (a "module:name" path) on each job's arguments, calling
        ``on_result(index, result)`` as each finishes. A failed job raises (after the pool stops)."""
        selector = selectors.DefaultSelector()
        queue = list(enumerate(jobs))
        busy = {}
        try:
            for process in self.processes:
                if not queue:
                    break
                self._send(process, function, queue.pop(0), busy, selector)
            while busy:
                for key, _ in selector.select():
                    process = key.data
                    index = busy.pop(process.pid)
                    selector.unregister(process.stdout)
                    try:
                        status, payload = _read(process.stdout)
                    except EOFError:
                        raise WorkerError(f"a worker process stopped (exit code {process.wait()}) while running a task")
                    if status == "error":
                        error, text = payload
                        raise WorkerError(f"a task failed in a worker:\n{text}") from error
                    on_result(index, payload)
                    if queue:
                        self._send(process, function, queue.pop(0), busy, selector)
        finally:
            selector.close()

    @staticmethod
    def _send(process, function, item, busy, selector) -> None:
        index, args = item
        _write(process.stdin, (function, args))
        busy[process.pid] = index
        selector.register(process.stdout, selectors.EVENT_READ, process)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for process in self.processes:
            for stream in (process.stdin, process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _serve() -> None:
    # the driver stops workers itself (Ctrl-C reaches the whole process group)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())      # stray prints go to stderr, not into the protocol
    import importlib
    while True:
        try:
            function, args = _read(requests)
        except EOFError:
            return
        try:
            module, name = function.split(":")
            result = getattr(importlib.import_module(module), name)(*args)
            _write(replies, ("ok", result))
        except BaseException as e:  # noqa: BLE001 - reported to the driver
            text = traceback.format_exc()
            try:
                pickle.dumps(e)
                error = e
            except Exception:  # noqa: BLE001
                error = None
            _write(replies, ("error", (error, text)))


if __name__ == "__main__":
    _serve()
