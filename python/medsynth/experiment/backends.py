"""Where the classifier grid runs: in this process ("serial"), on a local process pool ("local",
the default, no Ray needed) or on Ray ("ray": a local Ray, or a cluster's address).

Every backend takes the same tasks (``tasks.execute``), sets the same engine threads in each and
calls ``on_result`` as each finishes, so results are saved as they arrive and an interrupted grid
continues with what is missing. Arrays travel as .npy files (process pool) or Ray objects put
once; models come back as bytes.
"""
from __future__ import annotations

import os
from typing import Callable, Optional

from . import tasks as _tasks


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def plan_threads(workers: Optional[int], threads: Optional[int], n_tasks: int) -> tuple:
    """(workers, threads per worker): by default as many workers as cores (no more than tasks),
    each with cores / workers engine threads."""
    cores = default_workers()
    workers = int(workers or min(cores, max(1, n_tasks)))
    threads = int(threads or max(1, cores // workers))
    return workers, threads


class SerialBackend:
    name = "serial"

    def __init__(self, workers=None, threads=None, **_):
        self.threads = threads

    def run(self, specs: list, paths: dict, on_result: Callable, progress=None) -> None:
        import medsynth
        before = medsynth.get_num_threads()
        arrays = {}
        try:
            for index, spec in enumerate(specs):
                needed = {n: paths[n] for n in _tasks.arrays_used(spec)}
                for name, path in needed.items():
                    if name not in arrays:
                        arrays[name] = _tasks.np.load(path, mmap_mode="r", allow_pickle=False)
                on_result(index, _tasks.execute(spec, {n: arrays[n] for n in needed}))
                if progress:
                    progress.update(1)
        finally:
            medsynth.set_num_threads(before)


class LocalBackend:
    """A pool of fresh worker interpreters (``_pool.WorkerPool``), started for each grid."""
    name = "local"

    def __init__(self, workers=None, threads=None, **_):
        self.workers = workers or default_workers()

    def run(self, specs: list, paths: dict, on_result: Callable, progress=None) -> None:
        from ._pool import WorkerPool

        def done(index, result):
            on_result(index, result)
            if progress:
                progress.update(1)

        jobs = [(spec, {n: paths[n] for n in _tasks.arrays_used(spec)}) for spec in specs]
        with WorkerPool(min(self.workers, len(jobs))) as pool:
            pool.map("medsynth.experiment.tasks:execute_from_files", jobs, done)


class RayBackend:
    """Tasks as Ray remote functions, each reserving its engine threads as CPUs."""
    name = "ray"

    def __init__(self, workers=None, threads=None, address=None, **_):
        try:
            import ray
        except ImportError as e:
            raise ImportError("backend='ray' needs Ray: pip install 'medsynth[ray]'") from e
        self.ray = ray
        self.threads = threads or 1
        self.workers = workers
        if not ray.is_initialized():
            options = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False}
            if address:
                options["address"] = address
            else:
                options["num_cpus"] = int((workers or default_workers()) * self.threads)
            # workers import the same medsynth as this process
            import medsynth
            package_root = os.path.dirname(os.path.dirname(os.path.abspath(medsynth.__file__)))
            path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
            options["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
            ray.init(**options)
            self.started = True
        else:
            self.started = False

    def run(self, specs: list, paths: dict, on_result: Callable, progress=None) -> None:
        ray = self.ray
        import numpy as np

        remote = ray.remote(num_cpus=self.threads, max_retries=0)(_tasks.execute_with_arrays)
        refs = {}
        pending = {}
        try:
            for index, spec in enumerate(specs):
                names = _tasks.arrays_used(spec)
                for name in names:
                    if name not in refs:
                        refs[name] = ray.put(np.load(paths[name], allow_pickle=False))
                pending[remote.remote(spec, names, *[refs[n] for n in names])] = index
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    index = pending.pop(ref)
                    on_result(index, ray.get(ref))
                    if progress:
                        progress.update(1)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


BACKENDS = {"serial": SerialBackend, "local": LocalBackend, "ray": RayBackend}


def make(name: str, *, workers=None, threads=None, address=None):
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    return BACKENDS[name](workers=workers, threads=threads, address=address)
