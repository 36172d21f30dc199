#!/usr/bin/env python3
"""Markdown tables of the fidelity study from protocol output folders (standard library only).

    fidelity_tables.py curve DIR            the AUROC-against-epochs table of a run with --eval-at
    fidelity_tables.py seeds EPOCHS DIR ...  per class and mean, the mean and sample standard
                                            deviation (n-1) over the runs (one per seed) of the
                                            three AUROCs after EPOCHS epochs and of the restarts:
                                            a run of EPOCHS epochs, or a longer one's --eval-at
                                            EPOCHS evaluation (the same model, see
                                            crates/detector/tests/budgets.rs)
    fidelity_tables.py budget EPOCHS DIR     per class, what a run of EPOCHS epochs gives: the
                                            three AUROCs, restarts, selected epoch and split
                                            sizes, from a longer run's --eval-at EPOCHS

    fidelity_tables.py long DIR ...        per class of every folder, the AUROCs at each --eval-at
                                            budget reached so far, with the selected epoch: from a
                                            finished class's class_<c>.json or, while it trains,
                                            from its class_<c>.budgets.json (its last attempt's)

A folder's classes are read from its class_<c>.json files (finished classes only), so the
tables can be made while a run is still going; each table says which classes it covers.
"""
import json
import statistics
import sys
from pathlib import Path


def classes(folder):
    out = {}
    for p in sorted(Path(folder).glob("class_*.json")):
        if not p.stem[len("class_"):].isdigit():
            continue  # class_<c>.budgets.json: a class still training
        r = json.loads(p.read_text())
        out[r["class"]] = r
    return out


def curve(folder):
    rows = classes(folder)
    if not rows:
        sys.exit(f"{folder}: no finished classes")
    epochs = [b["epoch"] for b in next(iter(rows.values()))["budgets"]]
    print(f"Classes {', '.join(str(c) for c in rows)} of {folder}.\n")
    print("| epochs | GradCon | recon | grad | GradCon - recon | classes where GradCon > recon |")
    print("|---:|---:|---:|---:|---:|---:|")
    for e in epochs:
        at = [next(b for b in r["budgets"] if b["epoch"] == e)["auroc"] for r in rows.values()]
        g, rc, gr = (statistics.mean(a[k] for a in at) for k in ("gradcon", "recon", "grad"))
        wins = sum(a["gradcon"] > a["recon"] for a in at)
        print(f"| {e} | {g:.4f} | {rc:.4f} | {gr:.4f} | {g - rc:+.4f} | {wins} of {len(at)} |")
    print()
    print("| class | " + " | ".join(f"{e} ep. GradCon / recon" for e in epochs) + " |")
    print("|---|" + "---|" * len(epochs))
    for c, r in rows.items():
        cells = []
        for e in epochs:
            a = next(b for b in r["budgets"] if b["epoch"] == e)["auroc"]
            cells.append(f"{a['gradcon']:.3f} / {a['recon']:.3f}")
        print(f"| {c} | " + " | ".join(cells) + " |")


def budget(epochs, folder):
    rows = classes(folder)
    if not rows:
        sys.exit(f"{folder}: no finished classes")
    print(f"Classes {', '.join(str(c) for c in rows)} of {folder}, after {epochs} epochs.\n")
    print("| class | GradCon | recon | grad | restarts | selected epoch | train / val / test |")
    print("|---|---:|---:|---:|---:|---:|---|")
    sums = [0.0, 0.0, 0.0]
    restarts = 0
    for c, r in rows.items():
        b = next((b for b in r.get("budgets", []) if b["epoch"] == epochs), None)
        if b is None:
            sys.exit(f"{folder}: class {c} has no evaluation at {epochs} epochs")
        a = b["auroc"]
        for i, k in enumerate(("gradcon", "recon", "grad")):
            sums[i] += a[k]
        restarts += r["restarts"]
        print(f"| {c} | {a['gradcon']:.4f} | {a['recon']:.4f} | {a['grad']:.4f} | "
              f"{r['restarts']} | {b['selected_epoch']} | "
              f"{r['train_images']} / {r['val_images']} / {r['test_images']} |")
    n = len(rows)
    print(f"| mean | {sums[0] / n:.4f} | {sums[1] / n:.4f} | {sums[2] / n:.4f} | "
          f"{restarts} | | |")


def progress(folder):
    """Per class of `folder`: (class, restarts or None, {epoch: budget record}), finished or not."""
    out = []
    for p in sorted(Path(folder).glob("class_*.json")):
        stem = p.name[len("class_"):].split(".")[0]
        if not stem.isdigit():
            continue
        r = json.loads(p.read_text())
        if p.name.endswith(".budgets.json"):
            if (Path(folder) / f"class_{stem}.json").exists():
                continue  # finished: read from its result
            last = max((b["attempt"] for b in r["records"]), default=0)
            records = [b for b in r["records"] if b["attempt"] == last]
            out.append((int(stem), None, {b["epoch"]: b for b in records}))
        else:
            out.append((r["class"], r["restarts"], {b["epoch"]: b for b in r.get("budgets", [])}))
    return out


def long(folders):
    rows = [(f, c, rs, by) for f in folders for c, rs, by in progress(f)]
    if not rows:
        sys.exit("no class has reached a budget yet")
    epochs = sorted({e for *_, by in rows for e in by})
    print("| folder | class | " + " | ".join(f"{e} ep." for e in epochs) + " |")
    print("|---|---|" + "---|" * len(epochs))
    for f, c, rs, by in rows:
        cells = [f"{by[e]['auroc']['gradcon']:.3f} / {by[e]['auroc']['recon']:.3f} "
                 f"({by[e]['selected_epoch']})" if e in by else "" for e in epochs]
        print(f"| {Path(f).name} | {c} | " + " | ".join(cells) + " |")
    print("\nEach cell: GradCon / recon AUROC (selected epoch); empty: not reached yet.")


def at_epochs(r, epochs, folder):
    """The AUROCs of class result r after `epochs` epochs."""
    if r["pin"]["config"]["epochs"] == epochs:
        return r["auroc"]
    for b in r.get("budgets", []):
        if b["epoch"] == epochs:
            return b["auroc"]
    sys.exit(f"{folder}: class {r['class']} has no result at {epochs} epochs")


def seeds(epochs, folders):
    runs = [classes(f) for f in folders]
    for f, r in zip(folders, runs):
        for c in r.values():
            c["auroc"] = at_epochs(c, epochs, f)
    common = sorted(set.intersection(*(set(r) for r in runs)))
    if not common:
        sys.exit("no class finished in every folder")
    seeds_ = [next(iter(r.values()))["pin"]["config"]["seed"] for r in runs]
    print(f"Seeds {', '.join(map(str, seeds_))}; classes {', '.join(map(str, common))}; "
          f"{epochs} epochs.\n")

    def ms(values):
        sd = statistics.stdev(values) if len(values) > 1 else float("nan")
        return f"{statistics.mean(values):.4f} ± {sd:.4f}"

    print("| class | GradCon | recon | grad | restarts |")
    print("|---|---|---|---|---|")
    for c in common:
        a = [r[c]["auroc"] for r in runs]
        rs = [r[c]["restarts"] for r in runs]
        print(f"| {c} | {ms([x['gradcon'] for x in a])} | {ms([x['recon'] for x in a])} | "
              f"{ms([x['grad'] for x in a])} | {statistics.mean(rs):.1f} ± "
              f"{statistics.stdev(rs) if len(rs) > 1 else float('nan'):.1f} |")
    means = {k: [statistics.mean(r[c]["auroc"][k] for c in common) for r in runs]
             for k in ("gradcon", "recon", "grad")}
    total = [sum(r[c]["restarts"] for c in common) for r in runs]
    print(f"| mean | {ms(means['gradcon'])} | {ms(means['recon'])} | {ms(means['grad'])} | "
          f"{statistics.mean(total):.1f} ± "
          f"{statistics.stdev(total) if len(total) > 1 else float('nan'):.1f} (total) |")
    diffs = [g - rc for g, rc in zip(means["gradcon"], means["recon"])]
    print("\nMean GradCon - recon per seed: " + ", ".join(
        f"seed {s}: {d:+.4f}" for s, d in zip(seeds_, diffs)) + f"; {ms(diffs)}.")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "curve":
        curve(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "budget":
        budget(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == "long":
        long(sys.argv[2:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "seeds":
        seeds(int(sys.argv[2]), sys.argv[3:])
    else:
        sys.exit(__doc__)
