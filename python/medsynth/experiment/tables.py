"""The run's tables as rows (lists of dicts), written as CSV and markdown: Table 1 (images per
class), Table 2 (the paper's columns per architecture and domain), the baselines, the learning
curve, synthetic-data quality and privacy, and the LIME statistics."""
from __future__ import annotations

import csv
import io
import math

#: Table 2's columns as the paper names them (Nafi et al. 2024), and the result each comes from.
TABLE2_COLUMNS = ("Domain", "Model", "Train Loss", "Val Loss", "Test Loss", "Train Acc", "Val Acc", "Test Acc",
                  "Precision", "Recall", "F1")
TABLE1_COLUMNS = ("Domain", "Class", "Total Images", "Sampled Images", "Test Images", "Generated Images")
BASELINE_COLUMNS = ("Domain", "Model", "Training set", "Training images", "Test Acc", "Precision", "Recall", "F1",
                    "Test Loss")
VARIANT_TITLES = {"synthetic": "synthetic only", "real": "real 20 % only", "real_augmented": "real 20 % + augmentation",
                  "real_plus_synthetic": "real 20 % + synthetic"}


def variant_title(variant: str) -> str:
    if variant.startswith("synthetic_n"):
        return f"synthetic, {variant[len('synthetic_n'):]} per class"
    return VARIANT_TITLES.get(variant, variant)


def table1(domains: dict) -> list:
    rows = []
    for name, d in domains.items():
        data, syn = d["data"], d["synthetic"]
        for c, cls in enumerate(data["class_names"]):
            rows.append({"Domain": data["title"], "Class": cls, "Total Images": data["counts"]["total"][c],
                         "Sampled Images": data["counts"]["sampled"][c], "Test Images": data["counts"]["test"][c],
                         "Generated Images": syn["main_counts"][c]})
    return rows


def _test(result, key):
    return None if not result or not result.get("test") else result["test"][key]


def table2(domains: dict, best: dict, refits: dict) -> list:
    """refits: {(domain, variant, arch): result}."""
    rows = []
    for name, d in domains.items():
        for (domain, arch), b in best.items():
            if domain != name:
                continue
            r = refits.get((domain, "synthetic", arch))
            rows.append({"Domain": d["data"]["title"], "Model": arch,
                         "Train Loss": r["train"]["loss"] if r else None, "Val Loss": b["mean"]["val_loss"],
                         "Test Loss": _test(r, "loss"), "Train Acc": r["train"]["accuracy"] if r else None,
                         "Val Acc": b["mean"]["accuracy"], "Test Acc": _test(r, "accuracy"),
                         "Precision": _test(r, "precision_macro"), "Recall": _test(r, "recall_macro"),
                         "F1": _test(r, "f1_macro"),
                         # beyond the paper's columns (CSV only)
                         "Val Acc std": b["std"]["accuracy"], "Best params": b["params"],
                         "Epochs (folds)": b["epochs"], "Epochs (final)": r["best_epoch"] if r else None})
    return rows


def baselines(domains: dict, refits: dict) -> list:
    rows = []
    for (domain, variant, arch), r in sorted(refits.items(), key=lambda kv: (list(domains).index(kv[0][0]), kv[0][2],
                                                                               _variant_order(kv[0][1]))):
        if variant.startswith("synthetic_n"):
            continue
        rows.append({"Domain": domains[domain]["data"]["title"], "Model": arch, "Training set": variant_title(variant),
                     "Training images": r["n_train"], "Test Acc": _test(r, "accuracy"), "Precision": _test(r, "precision_macro"),
                     "Recall": _test(r, "recall_macro"), "F1": _test(r, "f1_macro"), "Test Loss": _test(r, "loss")})
    return rows


def _variant_order(variant: str) -> tuple:
    order = ["real", "real_augmented", "synthetic", "real_plus_synthetic"]
    return (order.index(variant), 0) if variant in order else (len(order), int(variant[len("synthetic_n"):]))


def learning_curve(domains: dict, refits: dict) -> list:
    rows = []
    for (domain, variant, arch), r in refits.items():
        if variant == "synthetic":
            per_class = min(domains[domain]["synthetic"]["main_counts"])
        elif variant.startswith("synthetic_n"):
            per_class = int(variant[len("synthetic_n"):])
        else:
            continue
        rows.append({"Domain": domains[domain]["data"]["title"], "Model": arch, "Synthetic per class": per_class,
                     "Training images": r["n_train"], "Test Acc": _test(r, "accuracy"), "F1": _test(r, "f1_macro")})
    titles = [d["data"]["title"] for d in domains.values()]
    rows.sort(key=lambda row: (titles.index(row["Domain"]), row["Model"], row["Synthetic per class"]))
    return rows


def quality(domains: dict, audits: dict) -> list:
    rows = []
    for name, a in audits.items():
        if not a:
            continue
        title = domains[name]["data"]["title"]
        fid = a.get("fidelity", {})
        priv = a.get("privacy", {})
        entries = list(fid.get("per_class", {}).items()) + [("all classes", fid.get("all", {}))]
        for cls, e in entries:
            row = {"Domain": title, "Class": cls, "FID": e.get("fid"), "KID": e.get("kid"), "Precision": e.get("precision"),
                   "Recall": e.get("recall"), "Diversity ratio": e.get("diversity_ratio"),
                   "Real vs real FID": a.get("fidelity_real_reference", {}).get("per_class", {}).get(cls, {}).get("fid")
                   if cls != "all classes" else a.get("fidelity_real_reference", {}).get("all", {}).get("fid")}
            if priv:
                row["Near-copies"] = priv["per_class_share"].get(cls) if cls != "all classes" else priv["near_copy_share"]
            rows.append(row)
    return rows


def privacy(domains: dict, audits: dict) -> list:
    rows = []
    for name, a in audits.items():
        p = (a or {}).get("privacy")
        if not p:
            continue
        rows.append({"Domain": domains[name]["data"]["title"], "Threshold r": p["threshold"],
                     "Near-copies": p["near_copies"], "Near-copy share": p["near_copy_share"],
                     "Synthetic max r": p["summary"]["max"], "Synthetic median r": p["summary"]["median"],
                     "Held-out real max r": p["reference_summary"]["max"],
                     "Held-out real median r": p["reference_summary"]["median"],
                     "Held-out real above threshold": p["reference_share"]})
    return rows


def lime(domains: dict, explanations: dict) -> list:
    rows = []
    for name, e in explanations.items():
        if not e or "comparison" not in e:
            continue
        for stat, v in e["comparison"].items():
            rows.append({"Domain": domains[name]["data"]["title"], "Model": e["architecture"], "Statistic": stat,
                         "Real": v["real"], "Synthetic": v["synthetic"], "Mann-Whitney U": v["U"], "p": v["p"]})
    return rows


# ---- writing ------------------------------------------------------------------------------------


def _cell(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{digits}f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "defaults"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def to_csv(rows: list) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v if not isinstance(v, (dict, list)) else _cell(v)) for k, v in row.items()})
    return out.getvalue()


def to_markdown(rows: list, columns=None, digits: int = 4) -> str:
    if not rows:
        return "(no rows)\n"
    columns = list(columns or rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c), digits) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def to_html(rows: list, columns=None, digits: int = 4) -> str:
    import html
    if not rows:
        return "<p>(no rows)</p>"
    columns = list(columns or rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c), digits))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
