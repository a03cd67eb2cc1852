#!/usr/bin/python3
"""Weighted fraction of image samples nearest each teacher prototype.

    scripts/prototype-fractions.py RUNDIR SAMPLES.npy [LOGW.npy]

SAMPLES.npy is what `jarzyn-serve sample --format npy` writes ([n, C, H, W] or
[n, d]); the log-weights default to SAMPLES with .npy replaced by .logw.npy
(written by --weighted; uniform weights when absent). The prototypes and the
teacher's masses are RUNDIR/summary.json's teacher.means and teacher.masses.
Prints one JSON line: samples, weighted, ess, fractions, teacher, max_abs_diff,
and the training run's own mode_masses for comparison."""
import json, os, sys

import numpy as np

if len(sys.argv) not in (3, 4):
    sys.exit(__doc__)
run, path = sys.argv[1], sys.argv[2]
logw_path = sys.argv[3] if len(sys.argv) == 4 else path[:-4] + ".logw.npy" if path.endswith(".npy") else None
summary = json.load(open(os.path.join(run, "summary.json")))
means = np.asarray(summary["teacher"]["means"], dtype=np.float64)
masses = np.asarray(summary["teacher"]["masses"], dtype=np.float64)

x = np.load(path).astype(np.float64)
x = x.reshape(x.shape[0], -1)
if x.shape[1] != means.shape[1]:
    sys.exit(f"samples have {x.shape[1]} values each, the prototypes {means.shape[1]}")
weighted = logw_path is not None and os.path.exists(logw_path)
if weighted:
    lw = np.load(logw_path).astype(np.float64).reshape(-1)
    if lw.shape[0] != x.shape[0]:
        sys.exit(f"{logw_path} has {lw.shape[0]} log-weights for {x.shape[0]} samples")
    w = np.exp(lw - lw.max())
else:
    w = np.ones(x.shape[0])
w /= w.sum()
# squared distance to every prototype, without an [n, k, d] temporary
d2 = (x * x).sum(1)[:, None] - 2 * x @ means.T + (means * means).sum(1)[None, :]
nearest = d2.argmin(1)
frac = np.bincount(nearest, weights=w, minlength=len(means))
print(json.dumps({
    "samples": int(x.shape[0]),
    "weighted": bool(weighted),
    "ess": round(float(1.0 / (w * w).sum() / x.shape[0]), 4),
    "fractions": [round(float(f), 4) for f in frac],
    "teacher": [round(float(m), 4) for m in masses],
    "max_abs_diff": round(float(np.abs(frac - masses).max()), 4),
    "run_mode_masses": [round(float(m), 4) for m in summary.get("mode_masses") or []],
}))
