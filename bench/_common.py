"""Shared helpers for the PyTorch reference benchmarks (bench only, never a product dependency).

Thread settings.  Debian's python3-torch uses OpenMP for its own element-wise kernels
(torch.set_num_threads) and the system BLAS (OpenBLAS, pthread build) for matmuls, whose
thread count is read from OPENBLAS_NUM_THREADS when the library is loaded, i.e. before
`import torch`.  To compare settings deliberately every measurement runs in a child process
with an explicit (torch threads, OpenBLAS threads) pair; the parent collects the JSON lines
and keeps the best per case.
"""

import json
import os
import statistics
import subprocess
import sys
import time

# torch threads : OPENBLAS_NUM_THREADS [: passive]  ("passive" sets OMP_WAIT_POLICY=PASSIVE so that idle
# OpenMP threads of torch's element-wise kernels sleep instead of spinning on the cores OpenBLAS needs)
DEFAULT_CONFIGS = "1:2,2:2,2:2:passive"


def parse_configs(s):
    out = []
    for item in s.split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split(":")
        wait = parts[2].lower() if len(parts) > 2 else ""
        if wait not in ("", "passive", "active"):
            raise ValueError(f"bad thread config {item!r}")
        out.append((int(parts[0]), int(parts[1]), wait))
    return out


def sweep(script, child_args, configs, key=lambda r: r["ms_per_iter"], lower_is_better=True,
          verbose=True):
    """Run `script` once per thread config in a child process, return (best_per_case, all)."""
    results = []
    for tt, bt, wait in configs:
        env = dict(os.environ)
        env["OPENBLAS_NUM_THREADS"] = str(bt)
        env["OMP_NUM_THREADS"] = str(tt)
        env.pop("OMP_WAIT_POLICY", None)
        if wait:
            env["OMP_WAIT_POLICY"] = wait.upper()
        cmd = [sys.executable, script, "--child", "--torch-threads", str(tt)] + child_args
        if verbose:
            print(f"# running torch_threads={tt} OPENBLAS_NUM_THREADS={bt} OMP_WAIT_POLICY={wait or 'default'}",
                  file=sys.stderr, flush=True)
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        if p.returncode != 0:
            print(f"# child failed (rc={p.returncode}) for config {tt}:{bt}:{wait}", file=sys.stderr)
            continue
        for line in p.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                results.append(json.loads(line))
    best = {}
    for r in results:
        c = r["case"]
        if c not in best:
            best[c] = r
            continue
        better = key(r) < key(best[c]) if lower_is_better else key(r) > key(best[c])
        if better:
            best[c] = r
    return best, results


def time_loop(fn, warmup=3, min_iters=20, min_time=3.0, max_time=60.0, sync=None):
    """Call fn() repeatedly; return list of per-call seconds (after warm-up).

    Stops once at least min_iters calls AND min_time seconds were timed, or after max_time
    seconds (with at least 5 calls)."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    t_start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
        el = time.perf_counter() - t_start
        if len(times) >= min_iters and el >= min_time:
            break
        if el >= max_time and len(times) >= 5:
            break
    return times


def median(xs):
    return statistics.median(xs)


def emit(obj):
    print(json.dumps(obj), flush=True)


def thread_info(torch):
    """Thread settings of this process, for the JSON output."""
    return {"threads": torch.get_num_threads(),
            "openblas_threads": int(os.environ.get("OPENBLAS_NUM_THREADS", "0") or 0),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default").lower()}


def config_key(r):
    k = f'{r["threads"]}:{r["openblas_threads"]}'
    if r.get("omp_wait_policy", "default") != "default":
        k += ":" + r["omp_wait_policy"]
    return k


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return None
