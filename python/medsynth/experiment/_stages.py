"""Stage bookkeeping in the output folder: a stage is done when its ``stage.json`` holds the key
(the hash of its inputs and settings) it would have now; files are written atomically, so an
interrupted run leaves either the old file or the new one, never half of one."""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

DONE, PARTIAL = "stage.json", "stage.partial.json"


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text(path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_bytes(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def jsonable(value):
    """numpy scalars and arrays, tuples and non-finite floats as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return os.fspath(value)
    return value


def write_json(path, value) -> None:
    write_text(path, json.dumps(jsonable(value), indent=1, allow_nan=False) + "\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_array(path, array: np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array))
    os.replace(tmp, path)


def load_array(path, mmap: bool = False) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


class Stage:
    """One stage's folder. ``done`` when stage.json has this key; ``begin`` clears leftovers of
    another key (a partial run with the same key is kept, so the stage can continue it);
    ``finish`` records the key, the summary and the time taken."""

    def __init__(self, root, name: str, key: str):
        self.dir = Path(root) / name
        self.name = name
        self.key = key
        self.started = None

    @property
    def done(self) -> bool:
        path = self.dir / DONE
        if not path.is_file():
            return False
        try:
            return read_json(path).get("key") == self.key
        except (OSError, ValueError):
            return False

    @property
    def resumable(self) -> bool:
        """A partial run of the same key left files to continue from."""
        path = self.dir / PARTIAL
        try:
            return path.is_file() and read_json(path).get("key") == self.key
        except (OSError, ValueError):
            return False

    def begin(self) -> "Stage":
        if not self.resumable and self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(self.dir / PARTIAL, {"key": self.key, "started": time.time()})
        self.started = time.perf_counter()
        return self

    def finish(self, summary: dict) -> dict:
        record = {"key": self.key, "seconds": round(time.perf_counter() - (self.started or time.perf_counter()), 3),
                  "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "summary": summary}
        write_json(self.dir / DONE, record)
        (self.dir / PARTIAL).unlink(missing_ok=True)
        return record

    @property
    def record(self) -> dict:
        return read_json(self.dir / DONE)
