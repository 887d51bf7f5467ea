"""The ``medsynth`` command (also ``python -m medsynth``).

    medsynth run [CONFIG] [--preset quick|paper|none] --out DIR     the paper's experiment, with its report
    medsynth report DIR                                            (re)write the report of a run folder
    medsynth generate DATA --out DIR                               train a diffusion model, write synthetic images
    medsynth train DATA --out MODEL                                train a CNN classifier
    medsynth evaluate MODEL DATA                                   score a classifier on labelled images
    medsynth explain MODEL IMAGE... --out DIR                      LIME explanations as PNG overlays
    medsynth describe                                              every configuration key of `run`

DATA is an image folder (root/<class>/<image>) or a phantom domain as ``phantom:brain_mri``.
Exit codes: 0 done, 1 failed, 2 bad arguments or configuration, 130 interrupted (Ctrl-C; rerun
the same command to continue where it stopped).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad arguments: exit code 2."""


def _load_data(spec: str, image_size=None, channels=None, n_per_class=None, seed: int = 0):
    """(X, y, class_names) from an image folder or ``phantom:<domain>``."""
    import medsynth
    if spec.startswith("phantom:"):
        from medsynth.experiment.data import PAPER_DOMAINS, phantoms_available
        domain = spec.split(":", 1)[1]
        if phantoms_available():
            kwargs = {"image_size": image_size} if image_size else {}
            return medsynth.datasets.phantom(domain, n_per_class=n_per_class, seed=seed, **kwargs)
        if domain not in PAPER_DOMAINS:
            raise UsageError(f"unknown phantom domain {domain!r}; choose one of {', '.join(PAPER_DOMAINS)}")
        raise UsageError("phantoms need medsynth.datasets.phantom, which this build of medsynth does not have")
    if not os.path.isdir(spec):
        raise UsageError(f"data '{spec}' is neither an image folder nor phantom:<domain>")
    if hasattr(medsynth.datasets, "load_folder"):
        kwargs = {k: v for k, v in (("image_size", image_size), ("channels", channels)) if v}
        return medsynth.datasets.load_folder(spec, **kwargs)
    X, y, names = medsynth.datasets.load_image_folder(spec)
    have = (X.shape[1], X.shape[3] if X.ndim == 4 else 1)
    if (image_size and have[0] != image_size) or (channels and have[1] != channels):
        raise UsageError(f"the images are {have[0]} px with {have[1]} channel(s); resizing or converting them needs "
                         f"medsynth.datasets.load_folder, which this build does not have")
    return X, y, names


def _parse_value(text: str):
    """A --set value: JSON when it parses (numbers, true/false, lists), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _overrides(pairs) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UsageError(f"--set takes key=value (e.g. classifiers.folds=3), got {pair!r}")
        key, value = pair.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _parse_value(value.strip())
    return out


# ---- commands -----------------------------------------------------------------------------------


def cmd_run(args) -> int:
    import medsynth.experiment as ex
    if args.config and not os.path.isfile(args.config):
        raise UsageError(f"configuration file '{args.config}' does not exist")
    result = ex.run(args.config, out_dir=args.out, backend=args.backend, preset=args.preset,
                    overrides=_overrides(args.set), workers=args.workers, threads_per_worker=args.threads,
                    ray_address=args.ray_address, progress=not args.quiet, verbose=not args.quiet)
    print(f"report: {result.report}")
    return EXIT_OK


def cmd_report(args) -> int:
    import medsynth.experiment as ex
    config = os.path.join(args.dir, "config.toml")
    if not os.path.isfile(config):
        raise UsageError(f"'{args.dir}' is not a run folder (it has no config.toml)")
    if args.force:
        stage = os.path.join(args.dir, "tables", "stage.json")
        if os.path.exists(stage):
            os.remove(stage)
    result = ex.run(config, out_dir=args.dir, backend=args.backend, progress=not args.quiet, verbose=not args.quiet)
    print(f"report: {result.report}")
    return EXIT_OK


def cmd_generate(args) -> int:
    import numpy as np

    import medsynth
    X, y, names = _load_data(args.data, args.image_size, args.channels, seed=args.seed)
    train = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size)) if v is not None}
    images, labels = medsynth.generate((X, np.asarray(names)[y]), n_per_class=args.n_per_class, checkpoint=args.checkpoint,
                                       out_dir=args.out, model={"seed": args.seed}, train=train, sampler=args.sampler,
                                       steps=args.sample_steps, seed=args.seed)
    print(f"wrote {len(images)} synthetic images of {len(names)} classes to {args.out}")
    return EXIT_OK


def cmd_train(args) -> int:
    import medsynth
    X, y, names = _load_data(args.data, args.image_size, args.channels, seed=args.seed)
    import numpy as np
    fit = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr), ("batch_size", args.batch_size),
                             ("early_stopping_patience", args.patience)) if v is not None}
    clf = medsynth.Classifier(args.arch, seed=args.seed)
    clf.fit(X, np.asarray(names)[y], validation_split=args.validation_split, **fit)
    clf.save(args.out)
    print(f"saved {args.arch} ({len(names)} classes) to {args.out}")
    return EXIT_OK


def cmd_evaluate(args) -> int:
    import numpy as np

    import medsynth
    from medsynth import metrics
    clf = medsynth.Classifier.load(args.model)
    size = int(clf.config["image_size"])
    X, y, names = _load_data(args.data, size, int(clf.config["in_channels"]), seed=args.seed)
    classes = [str(c) for c in clf.classes_]
    if set(names) <= set(classes):
        truth = clf.classes_[[classes.index(n) for n in np.asarray(names)[y]]]
    elif len(names) == len(classes) and classes == [str(i) for i in range(len(classes))]:
        truth = clf.classes_[y]            # a model trained on class indices: folders in sorted order
    else:
        raise UsageError(f"the data's classes {names} are not the model's {classes}")
    report = clf.evaluate(X, truth)
    print(metrics.format_report(report) if hasattr(metrics, "format_report") else json.dumps(report, indent=1, default=str))
    if args.json:
        from medsynth.experiment._stages import write_json
        write_json(args.json, report)
    return EXIT_OK


def cmd_explain(args) -> int:
    import numpy as np

    import medsynth
    try:
        from medsynth import lime
    except ImportError:
        raise UsageError("medsynth.lime is not in this build of medsynth") from None
    clf = medsynth.Classifier.load(args.model)
    os.makedirs(args.out, exist_ok=True)
    for path in args.images:
        image = medsynth.io.read_png(path)
        image = image.astype(np.float32) / (65535.0 if image.dtype == np.uint16 else 255.0)
        e = lime.explain(clf, image, num_samples=args.num_samples, seed=args.seed)
        target = os.path.join(args.out, os.path.splitext(os.path.basename(path))[0] + "_lime.png")
        e.save_png(target)
        print(f"{path}: predicted {clf.classes_[e.top_labels[0]]}, overlay {target}")
    return EXIT_OK


def cmd_describe(args) -> int:
    import medsynth.experiment as ex
    if args.preset:
        print(ex.to_toml(ex.resolve(preset=args.preset)), end="")
    else:
        print(ex.describe())
    return EXIT_OK


# ---- parser -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsynth", formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Labelled synthetic medical images from diffusion models, and the CNN "
                                                 "classifiers that learn from them (Nafi et al. 2024).",
                                     epilog=__doc__.split("\n\n", 1)[1])
    from medsynth import __version__
    parser.add_argument("--version", action="version", version=f"medsynth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("run", help="run the paper's experiment and write its report",
                       description="Runs the paper's experiment (data split, diffusion model, synthetic images, CNNs with "
                                   "cross-validation, baselines, quality and privacy audit, LIME) and writes tables, "
                                   "figures and report.html into --out. Rerun with the same --out to continue an "
                                   "interrupted run; completed stages are skipped.")
    p.add_argument("config", nargs="?", help="a TOML configuration (see `medsynth describe`); default: the preset alone")
    p.add_argument("--preset", choices=("quick", "paper", "none"), help="base settings (default: the config's, else quick)")
    p.add_argument("--out", help="output folder (default: medsynth-<name>-<configuration hash>)")
    p.add_argument("--backend", choices=("local", "ray", "serial"), help="where the classifier grid runs (default: local)")
    p.add_argument("--workers", type=int, help="parallel training tasks (default: the number of cores)")
    p.add_argument("--threads", type=int, help="engine threads per task (default: cores / workers)")
    p.add_argument("--ray-address", help="an existing Ray cluster (default: start a local Ray)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting, e.g. classifiers.folds=3 "
                                                                        "(repeatable; values parsed as JSON)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or log")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="(re)write the report of a run folder",
                       description="Completes a run folder from its config.toml (skipping finished stages) and writes "
                                   "its report.")
    p.add_argument("dir", help="a folder written by `medsynth run`")
    p.add_argument("--force", action="store_true", help="rewrite the report even if it is up to date")
    p.add_argument("--backend", choices=("local", "ray", "serial"))
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("generate", help="train a diffusion model on labelled images and write synthetic ones",
                       description="Trains a class-conditional diffusion model on DATA and writes N synthetic images per "
                                   "class as an image folder (out/<class>/synthetic_<i>.png).")
    p.add_argument("data", help="an image folder (root/<class>/<image>) or phantom:<domain>")
    p.add_argument("--out", required=True, help="folder for the synthetic images")
    p.add_argument("--n-per-class", type=int, default=100, help="synthetic images per class (default 100)")
    p.add_argument("--image-size", type=int, help="resize the images first")
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--steps", type=int, help="diffusion training steps (default: the library's)")
    p.add_argument("--batch-size", type=int, help="diffusion training batch size")
    p.add_argument("--sampler", help="ddim, ddpm or dpm_solver++ (default: the library's)")
    p.add_argument("--sample-steps", type=int, help="sampling steps (default: the library's)")
    p.add_argument("--checkpoint", help="reuse this diffusion model if it exists, else save the trained one there")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("train", help="train a CNN classifier on labelled images",
                       description="Trains a classifier on DATA and saves it as safetensors (torchvision's names).")
    p.add_argument("data")
    p.add_argument("--out", required=True, help="the model file (.safetensors)")
    p.add_argument("--arch", default="simple_cnn", help="architecture (default simple_cnn)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--patience", type=int, help="early stopping patience (needs --validation-split)")
    p.add_argument("--validation-split", type=float, default=0.1)
    p.add_argument("--image-size", type=int)
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a saved classifier on labelled images",
                       description="Prints scikit-learn's classification report of MODEL on DATA (images resized to the "
                                   "model's size).")
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("--json", help="also write the report as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("explain", help="LIME explanations of a classifier's predictions",
                       description="Explains MODEL's prediction on each IMAGE (PNG) with LIME and writes overlays.")
    p.add_argument("model")
    p.add_argument("images", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("describe", help="every configuration key of `run`, or a preset as TOML")
    p.add_argument("--preset", choices=("quick", "paper", "none"), help="print this preset's resolved configuration")
    p.set_defaults(func=cmd_describe)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from medsynth.experiment import ConfigError
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted: finished stages are kept; run the same command again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UsageError, ConfigError) as e:
        print(f"medsynth {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, ValueError, OSError, RuntimeError, ImportError, MemoryError) as e:
        print(f"medsynth {args.command}: failed: {e}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
