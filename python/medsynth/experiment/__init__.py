"""The paper's experiment end to end: one configuration in, its tables, figures and report out.

    >>> import medsynth.experiment as ex
    >>> result = ex.run(preset="quick", out_dir="runs/quick")       # all three phantom domains
    >>> result.report                                                # runs/quick/report.html
    >>> ex.run("my_experiment.toml", out_dir="runs/mine", backend="ray")

A configuration is a TOML file or a dict; ``describe()`` lists every key with its default and
meaning. Each stage writes into the output folder and is skipped when rerun with the same inputs
and settings, so an interrupted run continues where it stopped and a changed setting reruns only
what depends on it.
"""
from ._schema import ConfigError
from .config import PAPER_ARCHITECTURES, PRESETS, read_toml, resolve, schema, to_toml
from .pipeline import ExperimentResult, load_result, run

__all__ = ["run", "resolve", "describe", "read_toml", "to_toml", "schema", "ExperimentResult", "ConfigError", "PRESETS",
           "PAPER_ARCHITECTURES", "load_result"]


def describe() -> str:
    """Every configuration key with its type, default and documentation."""
    lines = []
    for key, spec in schema().describe():
        default = "None" if spec.default is None else repr(spec.default)
        lines.append(f"{key} ({spec.kind}, default {default})\n    {spec.doc}")
    return "\n".join(lines)
