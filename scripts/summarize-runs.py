#!/usr/bin/env python3
"""Prints a Markdown table of jarzyn run dirs: summary.json plus the exact and
estimated KL at iterations 1000 and 2000 from metrics.csv (stdlib only)."""
import csv, json, os, sys

def at(rows, it, col):
    for r in rows:
        if r["iter"] == str(it) and r.get(col):
            return float(r[col])
    return float("nan")

print("| run | method | seed | mass per teacher mode | exact KL | estimated KL | est−exact @1000 | est−exact @2000 | resamplings | seconds |")
print("|---|---|---|---|---|---|---|---|---|---|")
for d in sys.argv[1:]:
    p = os.path.join(d, "summary.json")
    if not os.path.exists(p):
        continue
    s = json.load(open(p))
    rows = list(csv.DictReader(open(os.path.join(d, "metrics.csv"))))
    f = lambda v: "n/a" if v is None else f"{v:.4f}"
    d1 = at(rows, 1000, "estimated_kl") - at(rows, 1000, "exact_kl")
    d2 = at(rows, 2000, "estimated_kl") - at(rows, 2000, "exact_kl")
    masses = ", ".join(f"{m:.4f}" for m in s.get("mode_masses") or [])
    g = lambda v: "n/a" if v != v else f"{v:+.4f}"
    print(f"| {os.path.basename(d)} | {s['method']} | {s['seed']} | {masses} | {f(s.get('exact_kl'))} | {f(s.get('estimated_kl'))} | {g(d1)} | {g(d2)} | {s['resamplings']} | {s['seconds']:.0f} |")
