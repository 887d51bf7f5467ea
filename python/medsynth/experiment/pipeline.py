"""``medsynth.experiment.run``: one configuration in, the paper's tables, figures and a report out.

Stages, each in its own folder of the output and skipped when its inputs and settings are
unchanged (an interrupted run continues where it stopped):

  data/<domain>       real images, the stratified 20 % sample and the untouched 80 % test set
  diffusion/<domain>  the class-conditional DDPM trained on the sample (resumes from its checkpoint)
  synthetic/<domain>  the labelled synthetic set (resumes chunk by chunk)
  train/...           the classifier grid: cross-validation, refits, baselines, learning curve
  quality/<domain>    FID, KID, precision/recall, diversity and the memorisation audit
  lime/<domain>       LIME on the best model, real versus synthetic
  report              tables (CSV, markdown), figures and report.html
"""
from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .. import __version__
from . import backends, grid
from ._stages import Stage, load_array, write_json, write_text
from .audit import quality_stage
from .config import digest, domain_names, resolve, to_toml
from .explain import lime_stage
from .generation import data_stage, diffusion_stage, synthetic_stage


@dataclass
class ExperimentResult:
    """What ``run`` produced: the output folder, the resolved configuration, the report and the
    tables as lists of rows."""
    out_dir: Path
    config: dict
    report: Path
    tables: dict = field(default_factory=dict)
    seconds: float = 0.0
    log: list = field(default_factory=list)

    def __repr__(self) -> str:
        return f"ExperimentResult(out_dir='{self.out_dir}', report='{self.report}', {self.seconds:.0f} s)"


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


class Run:
    """The state a run's stages share: configuration, output folder, backend, logging."""

    def __init__(self, config: dict, out: Path, progress: bool, verbose: bool):
        self.config = config
        self.out = out
        self.progress = progress
        self.verbose = verbose
        self.version = __version__
        self.messages = []
        self.array_paths = {}
        self.backend = None
        self.threads = None

    def log(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.messages.append(f"{stamp} {message}")
        if self.verbose:
            print(message, flush=True)

    def bar(self, total: int, desc: str, unit: str):
        if not self.progress:
            return _NoBar()
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc, unit=unit)


def default_out_dir(config: dict) -> Path:
    hashed = {k: v for k, v in config.items() if k != "runtime"}
    return Path(f"medsynth-{config['name']}-{digest(hashed)[:8]}")


def run(config=None, out_dir=None, backend: Optional[str] = None, *, preset: Optional[str] = None,
        overrides: Optional[dict] = None, workers: Optional[int] = None, threads_per_worker: Optional[int] = None,
        ray_address: Optional[str] = None, progress: bool = True, verbose: bool = True) -> ExperimentResult:
    """Runs the paper's experiment end to end and writes its report.

    config : a TOML file, a dict, or None (the preset alone). See ``medsynth.experiment.describe()``
        for every key; unknown keys and bad values raise ConfigError naming the key.
    out_dir : the output folder (default: ``medsynth-<name>-<hash of the configuration>``). Rerun
        with the same folder to continue an interrupted run or to rerun only what a changed
        setting affects.
    backend : "local" (a process pool, the default), "ray" (a local Ray, or ``ray_address``) or
        "serial"; overrides ``runtime.backend``. Every backend gives the same tables for the same
        seeds (each task sets the same engine threads).
    preset : "quick" (default), "paper" or "none", overriding the configuration's ``preset``.
    overrides : a dict laid over the configuration (e.g. {"classifiers": {"folds": 2}}).
    Returns an ``ExperimentResult``; the report is ``<out_dir>/report.html``.
    Ctrl-C stops the run; what finished is kept and a rerun continues from there.
    """
    runtime = {k: v for k, v in (("backend", backend), ("workers", workers), ("threads_per_worker", threads_per_worker),
                                 ("ray_address", ray_address)) if v is not None}
    if runtime:
        overrides = {**(overrides or {}), "runtime": {**(overrides or {}).get("runtime", {}), **runtime}}
    cfg = resolve(config, preset=preset, overrides=overrides)
    out = Path(out_dir) if out_dir is not None else default_out_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    r = Run(cfg, out, progress, verbose)
    r.log(f"medsynth {__version__}: experiment '{cfg['name']}' (preset {cfg['preset']}) in {out}")
    write_text(out / "config.toml", to_toml(cfg))
    write_json(out / "environment.json", environment(cfg))

    domains = {}
    for name in domain_names(cfg):
        data = data_stage(r, name)
        diffusion = diffusion_stage(r, name, data)
        synthetic = synthetic_stage(r, name, data, diffusion)
        synthetic["labels"] = load_array(Path(synthetic["dir"]) / "labels.npy")
        domains[name] = {"data": data, "diffusion": diffusion, "synthetic": synthetic}
        r.array_paths.update({f"{name}/real": str(data["dir"] / "images.npy"),
                              f"{name}/real_labels": str(data["dir"] / "labels.npy"),
                              f"{name}/synthetic": str(Path(synthetic["dir"]) / "images.npy"),
                              f"{name}/synthetic_labels": str(Path(synthetic["dir"]) / "labels.npy")})

    rt = cfg["runtime"]
    workers_n, r.threads = backends.plan_threads(rt["workers"], rt["threads_per_worker"], 64)
    r.backend = backends.make(rt["backend"], workers=workers_n, threads=r.threads, address=rt["ray_address"])
    try:
        first = grid.phase_one(r, domains)
        results = grid.execute(r, first, "cross-validation")
        best = grid.select(r, results)
        second = grid.phase_two(r, domains, best)
        results.update(grid.execute(r, second, "final models, baselines, learning curve"))
    finally:
        if hasattr(r.backend, "close"):
            r.backend.close()
    refits = {(t.domain, t.variant, t.arch): res for t, res in results.items() if t.tag == "refit"}
    refit_tasks = {(t.domain, t.variant, t.arch): t for t in results if t.tag == "refit"}
    extractors = {t.domain: t for t in results if t.variant == "features"}

    audits, explanations, winners = {}, {}, {}
    for name, d in domains.items():
        audits[name] = quality_stage(r, name, d, extractors[name]) if name in extractors else None
        winners[name] = best_architecture(cfg, best, name)
        explanations[name] = lime_stage(r, name, d, refit_tasks[(name, "synthetic", winners[name])], winners[name])

    from .report import write_report
    hashed = {k: v for k, v in cfg.items() if k != "runtime"}
    stage = Stage(out, "tables", digest("report", hashed, sorted(t.key for t in results),
                                        [(d["data"]["key"], d["synthetic"]["key"]) for d in domains.values()],
                                        [(a or {}).get("key") for a in audits.values()],
                                        [(e or {}).get("key") for e in explanations.values()], __version__))
    if stage.done and (out / "report.html").is_file():
        r.log("report: done, skipped")
        report, tables = out / "report.html", stage.record["summary"]["tables"]
    else:
        stage.begin()
        r.cpu_seconds = cpu_seconds() - cpu_started
        report, tables = write_report(r, domains, best, refits, audits, explanations, winners,
                                      seconds=time.perf_counter() - started)
        stage.finish({"tables": tables})
    r.log(f"done in {time.perf_counter() - started:.0f} s ({cpu_seconds() - cpu_started:.0f} s of CPU time in this process "
          f"and its workers, load average {os.getloadavg()[0]:.1f}); report: {report}")
    return ExperimentResult(out, cfg, report, tables, time.perf_counter() - started, r.messages)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished child processes (the local
    backend's workers; Ray's workers are not our children and are not counted)."""
    import resource
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def best_architecture(cfg: dict, best: dict, domain: str) -> str:
    """The domain's best model: the highest mean cross-validation score (never the test set)."""
    scoring = cfg["classifiers"]["scoring"]
    sign = -1 if scoring == "val_loss" else 1
    candidates = [(arch, b) for (d, arch), b in best.items() if d == domain]
    return max(candidates, key=lambda ab: sign * ab[1]["mean"][scoring])[0]


def environment(cfg: dict) -> dict:
    """What reproduces the run: versions, the machine, the seed."""
    import numpy
    versions = {"medsynth": __version__, "python": sys.version.split()[0], "numpy": numpy.__version__}
    for name in ("matplotlib", "tqdm", "ray"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "?")
        except ImportError:
            pass
    import medsynth
    return {"versions": versions, "platform": platform.platform(), "machine": platform.machine(),
            "cores": os.cpu_count(), "engine_threads": medsynth.get_num_threads(), "seed": cfg["seed"],
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None}


def load_result(out_dir) -> dict:
    """The tables of a finished run, read back from its folder."""
    import csv
    out = Path(out_dir)
    tables = {}
    for path in sorted((out / "tables").glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            tables[path.stem] = list(csv.DictReader(f))
    return tables

