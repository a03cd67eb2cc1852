#!/usr/bin/python3
"""float32 GEMM ceiling of this machine with numpy and torch (bench only).

C = A·B with A, B n×n float32 (default n = 2048): flops = 2·n³ per product. Best (and median) of
--repeats products after a warm-up. BLAS threads come from the environment, so run e.g.
    OPENBLAS_NUM_THREADS=2 /usr/bin/python3 bench/sgemm.py
(known ceiling on the 2-core machine: about 180–196 GFLOP/s). One JSON line per library.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--n", type=int, default=2048)
ap.add_argument("--repeats", type=int, default=10)
ap.add_argument("--libs", default="numpy,torch")
ap.add_argument("--torch-threads", type=int, default=1,
                help="torch.set_num_threads (BLAS threads come from OPENBLAS_NUM_THREADS)")
args = ap.parse_args()
n = args.n
flops = 2.0 * n ** 3


def bench(fn):
    fn()
    ts = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return flops / min(ts) / 1e9, flops / statistics.median(ts) / 1e9


load0 = C.loadavg()
for lib in args.libs.split(","):
    if lib == "numpy":
        import numpy as np
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        c = np.empty((n, n), dtype=np.float32)
        best, med = bench(lambda: np.matmul(a, b, out=c))
        ver = np.__version__
    elif lib == "torch":
        import torch
        torch.set_num_threads(args.torch_threads)
        a = torch.randn(n, n)
        b = torch.randn(n, n)
        c = torch.empty(n, n)
        best, med = bench(lambda: torch.mm(a, b, out=c))
        ver = torch.__version__
    else:
        raise SystemExit(f"unknown lib {lib}")
    print(json.dumps({"impl": lib, "case": f"sgemm_{n}", "gflops": round(best, 2), "gflops_median": round(med, 2),
                      "n": n, "repeats": args.repeats, "version": ver,
                      "openblas_threads": int(os.environ.get("OPENBLAS_NUM_THREADS", "0") or 0),
                      "loadavg_before": load0}), flush=True)
