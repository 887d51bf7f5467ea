"""The run's report: tables (CSV and markdown) in tables/, figures in figures/, and report.html
(self-contained apart from the PNGs it links relatively), with the resolved configuration,
seeds and versions that rerun it, and notes on what was scaled down or stood in."""
from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np

from ..classifier import ARCHITECTURES
from . import figures, tables
from ._stages import load_array, read_json, write_text
from .config import PAPER_ARCHITECTURES, PRESETS, digest
from .explain import lime_module

_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:first-child,td:nth-child(2){text-align:left}img{max-width:100%;margin:.3em 0}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em 1em;margin:1em 0}
.warn{background:#fdecea;border-left:4px solid #d93025;padding:.5em 1em;margin:1em 0}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.8em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}"""


def _scaled_down(cfg: dict) -> list:
    """(setting, this run, paper preset) for the settings that differ from the paper preset."""
    paper = PRESETS["paper"]

    def get(c, *keys):
        for k in keys:
            c = (c or {}).get(k)
        return c

    rows = []
    checks = [("image size (px)", ("data", "image_size")), ("share of Table 1's real images", ("data", "count_scale")),
              ("diffusion training steps", ("diffusion", "train", "steps")),
              ("U-Net base channels", ("diffusion", "model", "base_channels")),
              ("sampling steps", ("diffusion", "sample", "steps")), ("synthetic counts x", ("synthetic", "scale")),
              ("folds", ("classifiers", "folds")), ("max epochs", ("classifiers", "fit", "epochs")),
              ("architectures", ("classifiers", "architectures")), ("hyperparameter grid", ("classifiers", "grid"))]
    for label, keys in checks:
        mine, theirs = get(cfg, *keys), get(paper, *keys)
        if keys == ("data", "count_scale") or keys == ("synthetic", "scale"):
            theirs = 1.0 if theirs is None else theirs
        if mine != theirs:
            rows.append((label, mine if mine is not None else "library default", theirs if theirs is not None else "library default"))
    return rows


def _stand_ins(cfg: dict, domains: dict) -> list:
    notes = [d["data"]["stand_in"] for d in domains.values() if d["data"].get("stand_in")]
    notes = sorted(set(notes))
    missing = [a for a in PAPER_ARCHITECTURES if a not in ARCHITECTURES]
    if missing:
        notes.append(f"architectures not in this build of medsynth: {', '.join(missing)}")
    if cfg["lime"]["enabled"] and lime_module() is None:
        notes.append("medsynth.lime is not in this build: the LIME section is empty")
    return notes


def write_report(run, domains: dict, best: dict, refits: dict, audits: dict, explanations: dict, winners: dict,
                 seconds: float):
    out, cfg = run.out, run.config
    tdir, fdir = out / "tables", out / "figures"
    rows = {"table1": tables.table1(domains), "table2": tables.table2(domains, best, refits),
            "baselines": tables.baselines(domains, refits), "learning_curve": tables.learning_curve(domains, refits),
            "quality": tables.quality(domains, audits), "privacy": tables.privacy(domains, audits),
            "lime": tables.lime(domains, explanations)}
    columns = {"table1": tables.TABLE1_COLUMNS, "table2": tables.TABLE2_COLUMNS, "baselines": tables.BASELINE_COLUMNS}
    for name, r in rows.items():
        write_text(tdir / f"{name}.csv", tables.to_csv(r))
        write_text(tdir / f"{name}.md", tables.to_markdown(r, columns.get(name)))

    figs = {}
    for name, d in domains.items():
        figs[name] = _domain_figures(run, name, d, best, refits, audits.get(name), explanations.get(name), winners[name], fdir)

    html_text = _html(run, domains, rows, columns, figs, audits, explanations, winners, seconds)
    report = out / "report.html"
    write_text(report, html_text)
    write_text(out / "report.md", _markdown(run, rows, columns, seconds))
    return report, rows


def _domain_figures(run, name, d, best, refits, audit, explanation, winner, fdir) -> dict:
    data, syn = d["data"], d["synthetic"]
    names = data["class_names"]
    real = load_array(data["dir"] / "images.npy", mmap=True)
    real_y = load_array(data["dir"] / "labels.npy")
    X_syn = load_array(Path(syn["dir"]) / "images.npy", mmap=True)
    title = data["title"]
    out = {}
    train = data["train"]
    out["samples"] = figures.real_vs_synthetic(real[train], real_y[train], X_syn, syn["labels"], names,
                                               fdir / f"{name}_real_vs_synthetic.png",
                                               title=f"{title}: real sample (left) and synthetic images (right)")
    archs = [a for (dom, a) in best if dom == name]
    out["curves"] = figures.training_curves({a: refits[(name, "synthetic", a)]["history"] for a in archs
                                             if (name, "synthetic", a) in refits}, fdir / f"{name}_training_curves.png",
                                            title=f"{title}: final models trained on synthetic images")
    out["confusion"] = figures.confusion_matrices({a: refits[(name, "synthetic", a)]["test"]["confusion_matrix"] for a in archs
                                                   if (name, "synthetic", a) in refits}, names,
                                                  fdir / f"{name}_confusion.png",
                                                  title=f"{title}: real test set, models trained on synthetic images")
    points, refs = {}, {}
    for (dom, variant, arch), r in refits.items():
        if dom != name or not r.get("test"):
            continue
        if variant == "synthetic":
            points.setdefault(arch, []).append((min(syn["main_counts"]), r["test"]["accuracy"]))
        elif variant.startswith("synthetic_n"):
            points.setdefault(arch, []).append((int(variant[len("synthetic_n"):]), r["test"]["accuracy"]))
        elif arch == winner:
            refs[f"{arch}, {tables.variant_title(variant)}"] = r["test"]["accuracy"]
    if points and any(len(v) > 1 for v in points.values()):
        out["learning_curve"] = figures.learning_curve(points, refs, fdir / f"{name}_learning_curve.png", title=title)
    if audit and audit.get("privacy"):
        p = audit["privacy"]
        pairs = p["closest_pairs"]
        out["pairs"] = figures.closest_pairs(np.asarray(X_syn[[q["synthetic"] for q in pairs]]),
                                             np.asarray(real[[q["training"] for q in pairs]]), pairs,
                                             fdir / f"{name}_closest_pairs.png",
                                             title=f"{title}: the synthetic images closest to a training image")
        qdir = Path(audit["dir"])
        out["correlations"] = figures.correlation_histogram(load_array(qdir / "correlation.npy"),
                                                            load_array(qdir / "reference_correlation.npy"),
                                                            p["threshold"], fdir / f"{name}_correlations.png", title=title)
    if explanation and explanation.get("overlays"):
        ldir = Path(explanation["dir"])
        items = explanation["overlays"]
        out["lime"] = figures.image_grid([ldir / o["path"] for o in items], [f"{o['kind']}\n{o['class']}" for o in items],
                                         fdir / f"{name}_lime.png", columns=min(8, len(items)),
                                         title=f"{title}: LIME on {explanation['architecture']} (true class)")
    return {k: os.path.relpath(v, run.out) for k, v in out.items()}


def _img(path: str) -> str:
    return f'<img src="{html.escape(path)}" alt="{html.escape(Path(path).stem)}">'


def _html(run, domains, rows, columns, figs, audits, explanations, winners, seconds) -> str:
    cfg = run.config
    env = read_json(run.out / "environment.json")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(cfg['name'])}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(cfg['name'])}: diffusion-generated training data, as in Nafi et al. 2024</h1>",
             f"<p>Preset <b>{cfg['preset']}</b>, seed {cfg['seed']}, {len(domains)} domain(s), run time {seconds / 60:.1f} min "
             f"({getattr(run, 'cpu_seconds', 0) / 60:.1f} min of CPU time) on {env['cores']} cores (load average at the "
             f"end: {_load()}; a run continued from earlier stages counts only this invocation), "
             f"medsynth {env['versions']['medsynth']}, "
             f"{run.backend.name if run.backend else ''} backend. Pipeline: a class-conditional DDPM trained on a stratified "
             f"{cfg['data']['train_fraction']:.0%} sample of each class generates a labelled synthetic set; CNNs trained "
             f"on it (cross-validated hyperparameters, early stopping) are tested on the untouched rest of the real images.</p>"]
    scaled = _scaled_down(cfg)
    if scaled and cfg["preset"] != "paper":
        items = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(str(b))}</td><td>{html.escape(str(c))}</td></tr>"
                        for a, b, c in scaled)
        parts.append("<div class='note'><b>Scaled down.</b> This run differs from the paper preset in:"
                     f"<table><tr><th>setting</th><th>this run</th><th>paper preset</th></tr>{items}</table></div>")
    for note in _stand_ins(cfg, domains):
        parts.append(f"<div class='note'><b>Stand-in.</b> {html.escape(note)}</div>")
    parts.append("<div class='note'>The paper's per-class 'Generated Images' counts were not available: unless "
                 "synthetic.n_per_class is set, each class gets its real total clamped to the paper's stated 1000-1700, "
                 f"times synthetic.scale ({cfg['synthetic']['scale']}).</div>")
    parts.append("<h2>Table 1: images per class</h2>" + tables.to_html(rows["table1"], columns["table1"]))
    parts.append("<h2>Table 2: CNNs trained on synthetic images, tested on real ones</h2>"
                 "<p>Val: mean over the cross-validation folds of the chosen hyperparameters. Train and Test: the final model "
                 "(refitted on the whole synthetic set with those hyperparameters), its training loss and accuracy at the "
                 "epoch kept, and its scores on the real test set. Precision, recall and F1 are macro averages.</p>"
                 + tables.to_html(rows["table2"], columns["table2"]))
    parts.append("<h2>Baselines: what the synthetic images are worth</h2>" + tables.to_html(rows["baselines"], columns["baselines"]))
    if rows["learning_curve"]:
        parts.append("<h2>Learning curve</h2>" + tables.to_html(rows["learning_curve"]))
    if rows["quality"]:
        parts.append("<h2>Synthetic-data quality</h2><p>In the feature space of a "
                     f"{html.escape(cfg['fidelity']['architecture'])} trained on the real sample: Inception-v3's ImageNet "
                     "weights are not available offline, so these FID and KID values compare runs of this experiment, not "
                     "published FIDs. Real: the held-out test images. 'Real vs real FID' is the real sample against the "
                     "same test images, the level two real sets of these sizes reach.</p>" + tables.to_html(rows["quality"]))
    if rows["privacy"]:
        flagged = [r for r in rows["privacy"] if r["Near-copies"]]
        parts.append("<h2>Memorisation audit</h2>")
        if flagged:
            parts.append("<div class='warn'><b>Near-copies found.</b> " + ", ".join(
                f"{html.escape(r['Domain'])}: {r['Near-copies']} synthetic image(s) at pixel correlation >= {r['Threshold r']}"
                for r in flagged) + " with a training image. They are shown below; do not release them as patient-free data."
                "</div>")
        parts.append("<p>Each synthetic image against its most correlated training image (the diffusion model's "
                     "training sample); held-out real images, which are other patients, give the background level.</p>"
                     + tables.to_html(rows["privacy"]))
    if rows["lime"]:
        parts.append("<h2>LIME: real versus synthetic explanations</h2>" + tables.to_html(rows["lime"]))
    for name, d in domains.items():
        f = figs[name]
        parts.append(f"<h2>{html.escape(d['data']['title'])}</h2><p>Source: {html.escape(str(d['data']['source']))}; "
                     f"best model by cross-validation: <b>{html.escape(winners[name])}</b>.</p>")
        for key in ("samples", "curves", "confusion", "learning_curve", "pairs", "correlations", "lime"):
            if key in f:
                parts.append(_img(f[key]))
        e = explanations.get(name)
        if e and e.get("skipped"):
            parts.append(f"<p>LIME: {html.escape(e['skipped'])}.</p>")
    parts.append("<h2>Rerun</h2><p>Settings and environment: <code>config.toml</code>, <code>environment.json</code>. "
                 "Rerun (completed stages are skipped): <code>medsynth run config.toml --out .</code> in this folder.</p>"
                 f"<pre>{html.escape((run.out / 'config.toml').read_text(encoding='utf-8'))}</pre>"
                 f"<pre>{html.escape(json.dumps(env, indent=1))}</pre>")
    parts.append(f"<h2>Log</h2><pre>{html.escape(chr(10).join(run.messages))}</pre></body></html>")
    return "\n".join(parts)


def _load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _markdown(run, rows, columns, seconds) -> str:
    cfg = run.config
    text = [f"# {cfg['name']}\n", f"Preset {cfg['preset']}, seed {cfg['seed']}, {seconds / 60:.1f} min. "
            f"Report: report.html. Configuration hash {digest(cfg)[:12]}.\n"]
    for name, title in (("table1", "Table 1: images per class"), ("table2", "Table 2: trained on synthetic, tested on real"),
                        ("baselines", "Baselines"), ("learning_curve", "Learning curve"), ("quality", "Quality"),
                        ("privacy", "Memorisation audit"), ("lime", "LIME: real versus synthetic")):
        if rows[name]:
            text.append(f"\n## {title}\n\n" + tables.to_markdown(rows[name], columns.get(name)))
    return "".join(text)
