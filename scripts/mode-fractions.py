#!/usr/bin/env python3
"""Fraction of samples (a jarzyn-serve CSV; weighted if it has a log_weight
column) in each teacher mode's Voronoi cell, teacher read from a run's
summary.json (stdlib only).   scripts/mode-fractions.py RUNDIR SAMPLES.csv"""
import csv, json, math, sys

run, path = sys.argv[1], sys.argv[2]
t = json.load(open(run + "/summary.json"))["teacher"]
means, masses = t["means"], t["masses"]
rows = [r for r in csv.reader(open(path)) if r and not r[0].startswith("#")]
header = open(path).readline().lstrip("# ").strip().split(",")
weighted = header[-1] == "log_weight"
d = len(means[0])
lw = [float(r[-1]) for r in rows] if weighted else [0.0] * len(rows)
m = max(lw)
w = [math.exp(v - m) for v in lw]
tot = sum(w)
frac = [0.0] * len(means)
for r, wi in zip(rows, w):
    x = [float(v) for v in r[:d]]
    j = min(range(len(means)), key=lambda k: sum((a - b) ** 2 for a, b in zip(x, means[k])))
    frac[j] += wi / tot
print(json.dumps({"samples": len(rows), "weighted": weighted, "fractions": [round(f, 4) for f in frac],
                  "teacher": masses, "max_abs_diff": round(max(abs(a - b) for a, b in zip(frac, masses)), 4)}))
