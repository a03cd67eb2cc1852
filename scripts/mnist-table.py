#!/usr/bin/env python3
"""Prints a Markdown table of MNIST class-fraction runs (jarzyn run dirs with
log.classifier set): final weighted class fractions, the largest deviation
from the target fractions over the last quarter of training, the confident
fraction, ESS, resamplings, MALA acceptance, the monitor's CE estimate at the
end, log Ẑ of the training walkers and of the monitor, and the wall time (stdlib only). Usage: scripts/mnist-table.py RUN_DIR..."""
import csv, json, math, os, sys


def num(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def table(dirs):
    print("| run | method | seed | iterations | final fractions | last-quarter mean | max dev., last quarter | confident (last quarter, min) "
          "| ESS/N | resamplings | acceptance | monitor CE at the end (all data) | log Ẑ at the end: training walkers / monitor | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for d in dirs:
        mp = os.path.join(d, "metrics.csv")
        if not os.path.exists(mp):
            print(f"| {d} | (no metrics.csv) |||||||||||", file=sys.stderr)
            continue
        rows = list(csv.DictReader(open(mp)))
        sp = os.path.join(d, "summary.json")
        s = json.load(open(sp)) if os.path.exists(sp) else {}
        last = int(rows[-1]["iter"])
        total = int(s.get("iterations") or last)
        classes = [c[len("class_"):] for c in rows[0].keys() if c.startswith("class_")]
        # unfinished runs have no summary.json yet: the method and seed from
        # config.yaml, the targets of data.counts' default 4:2:1
        cfg = {}
        cp = os.path.join(d, "config.yaml")
        if os.path.exists(cp):
            for line in open(cp):
                if not line.startswith(" ") and ":" in line:
                    k, _, v = line.partition(":")
                    cfg[k.strip()] = v.strip()
        s.setdefault("method", cfg.get("method", "?"))
        s.setdefault("seed", cfg.get("seed", "?"))
        target = s.get("target_fractions") or {"2": 4 / 7, "3": 2 / 7, "6": 1 / 7}
        labelled = [r for r in rows if num(r.get("confident_fraction")) is not None]
        quarter = [r for r in labelled if int(r["iter"]) >= 0.75 * total]
        dev = max((abs(num(r["class_" + c]) - target[c]) for r in quarter for c in classes if c in target), default=None)
        conf = min((num(r["confident_fraction"]) for r in quarter), default=None)
        qmean = "/".join(f"{sum(num(r['class_' + c]) for r in quarter) / len(quarter):.3f}" for c in classes) if quarter else "n/a"
        fin = labelled[-1] if labelled else None
        fr = "/".join(f"{num(fin['class_' + c]):.3f}" for c in classes) if fin else "n/a"
        ce = [num(r.get("ce_monitor")) for r in rows if num(r.get("ce_monitor")) is not None]
        ceq = [num(r.get("ce_monitor")) for r in rows
               if num(r.get("ce_monitor")) is not None and int(r["iter"]) >= 0.75 * total]
        # the final row averages U over the whole data set (earlier rows over one batch)
        cetxt = f"{ce[-1]:.1f}" if ce and last == total else "—"
        lzt, lzm = num(rows[-1].get("log_z_estimate")), num(rows[-1].get("log_z_monitor"))
        lztxt = f"{lzt:.1f} / {lzm:.1f}" if lzt is not None and lzm is not None else "—"
        ess = num(rows[-1].get("ess_monitor")) or num(rows[-1].get("ess"))
        acc = num(s.get("accept"))
        f = lambda v, p: "n/a" if v is None else f"{v:.{p}f}"
        it = f"{last}" if last == total else f"{last} of {total}"
        print(f"| {os.path.basename(os.path.dirname(d.rstrip('/')))}/{os.path.basename(d.rstrip('/'))} "
              f"| {s.get('method', '?')} | {s.get('seed', '?')} | {it} | {fr} | {qmean} | {f(dev, 3)} | {f(conf, 3)} | {f(ess, 2)} "
              f"| {rows[-1].get('resamplings') or '—'} | {f(acc, 2)} | {cetxt} | {lztxt} | {f(num(s.get('seconds')) or num(rows[-1]['seconds']), 0)} |")


if __name__ == "__main__":
    table(sys.argv[1:])
