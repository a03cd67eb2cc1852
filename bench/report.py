#!/usr/bin/python3
"""Turn the raw outputs in bench/out/ into Markdown tables (Go vs PyTorch). Used by bench/run.sh.

Reads: go_train_t*.txt, go_gula_t*.txt, go_ula_r*.txt (go test -bench output), torch_train_iter.jsonl, torch_ula_r*.jsonl,
sgemm.jsonl, env.txt. A missing file or benchmark prints "n/a".
"""

import json
import os
import re
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")

TRAIN_CASES = ["gmm50d", "mlp_d2_H128", "mlp_d784_H256"]
# flops per training iteration of the MLP cases: 6·(N + B)·(d·H + H·H + H), N = 4096, B = 256
TRAIN_FLOPS = {c: 6.0 * (4096 + 256) * (d * H + H * H + H) for c, d, H in
               [("mlp_d2_H128", 2, 128), ("mlp_d784_H256", 784, 256)]}
# (row, Go benchmark, PyTorch case, N, d of the walk, H); the latent row walks in ℝ²⁵⁶ (r = H)
ULA_CASES = [("d2_H128_N4096", "BenchmarkSampleULA/d2_H128_N4096", "mlp_d2_H128_N4096", 4096, 2, 128),
             ("d784_H256_N4096 (walk in ℝ⁷⁸⁴, --no-latent)", "BenchmarkSampleULA/d784_H256_N4096",
              "mlp_d784_H256_N4096", 4096, 784, 256),
             ("d784_H256_N4096 latent (walk in ℝ²⁵⁶, default)", "BenchmarkSampleULALatent/d784_H256_N4096",
              "mlp_d784_H256_N4096_latent", 4096, 256, 256)]

BENCH_RE = re.compile(r"^(Benchmark\S+?)(?:-(\d+))?\s+(\d+)\s+(.*)$")


def read(name):
    try:
        with open(os.path.join(OUT, name)) as f:
            return f.read()
    except OSError:
        return ""


def parse_go(text):
    """{'BenchmarkX/sub': {'ns/op': v, 'walker-steps/s': v, ...}} — the last run of each name wins
    unless -count>1, in which case the median is kept."""
    runs = {}
    for line in text.splitlines():
        m = BENCH_RE.match(line.strip())
        if not m:
            continue
        name, rest = m.group(1), m.group(4).split()
        metrics = {}
        for i in range(0, len(rest) - 1, 2):
            try:
                metrics[rest[i + 1]] = float(rest[i])
            except ValueError:
                break
        runs.setdefault(name, []).append(metrics)
    out = {}
    for name, ms in runs.items():
        keys = set().union(*ms)
        out[name] = {}
        for k in keys:
            vals = sorted(x[k] for x in ms if k in x)
            out[name][k] = vals[len(vals) // 2]
    return out


def best_go(prefix, key, lower):
    """Merges prefix_t1.txt, prefix_t2.txt, … (one per OPENBLAS_NUM_THREADS), keeping per benchmark the run
    with the best `key`; falls back to prefix.txt. Returns (results, {name: threads})."""
    best, threads = {}, {}
    files = sorted(f for f in os.listdir(OUT) if f.startswith(prefix + "_t") and f.endswith(".txt")) if os.path.isdir(OUT) else []
    for f in files or [prefix + ".txt"]:
        t = f[len(prefix) + 2:-4] if f != prefix + ".txt" else "?"
        for name, m in parse_go(read(f)).items():
            if key not in m:
                continue
            if name not in best or (m[key] < best[name][key]) == lower:
                best[name], threads[name] = m, t
    return best, threads


def parse_jsonl(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if "case" in r:
                out[r["case"]] = r
    return out


def sorted_rounds(prefix, suffix):
    if not os.path.isdir(OUT):
        return []
    names = [f for f in os.listdir(OUT) if f.startswith(prefix) and f.endswith(suffix)]
    return sorted(names, key=lambda f: int(f[len(prefix):-len(suffix)]) if f[len(prefix):-len(suffix)].isdigit() else 0)


def median(v):
    v = sorted(x for x in v if x is not None)
    if not v:
        return None
    return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])


def round_ratios(gs, ps):
    """Median of the per-round ratios Go/PyTorch, with the rounds in brackets."""
    rs = [g / p["walker_steps_per_s"] for g, p in zip(gs, ps) if g and p]
    if not rs:
        return "n/a"
    m = median(rs)
    return f"{m:.2f}×" + (" (" + ", ".join(f"{r:.2f}" for r in rs) + ")" if len(rs) > 1 else "")


def fmt(x, nd=2):
    if x is None:
        return "n/a"
    if abs(x) >= 1e5:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}×"


def threads(r):
    t = f'torch {r.get("threads")}, OpenBLAS {r.get("openblas_threads")}'
    if r.get("omp_wait_policy", "default") != "default":
        t += f', OMP {r["omp_wait_policy"]}'
    return t


def main():
    go_train, go_train_threads = best_go("go_train", "ns/op", lower=True)
    go_gula, go_gula_threads = best_go("go_gula", "walker-steps/s", lower=False)
    go_rounds = [parse_go(read(f)) for f in sorted_rounds("go_ula_r", ".txt")] or [parse_go(read("go_ula.txt"))]
    pt_train = parse_jsonl(read("torch_train_iter.jsonl"))
    pt_rounds = [parse_jsonl(read(f)) for f in sorted_rounds("torch_ula_r", ".jsonl")] or [parse_jsonl(read("torch_ula.jsonl"))]
    sg = [dict(json.loads(x), when=when) for name, when in (("sgemm_start.jsonl", "start"), ("sgemm.jsonl", "with PyTorch"))
          for x in read(name).splitlines() if x.startswith("{")]
    ceiling = max((r["gflops"] for r in sg), default=None)
    env = read("env.txt").strip()

    print("# Benchmarks: Go vs PyTorch (CPU)\n")
    if env:
        print("```\n" + env + "\n```\n")

    print("## Training iteration (ms per iteration, median; lower is better)\n")
    print("MLP GFLOP/s = 6·(N + B)·(d·H + H·H + H) / time (forward, input-gradient and weight-gradient matmuls of "
          "walkers and data batch).\n")
    print("| case | Go ms/iter | PyTorch ms/iter | Go GFLOP/s | PyTorch GFLOP/s | PyTorch variant | PyTorch threads "
          "| Go speed-up (PyTorch/Go) |")
    print("|---|---|---|---|---|---|---|---|")
    for c in TRAIN_CASES:
        g = go_train.get(f"BenchmarkTrainIteration/{c}", {})
        gms = g["ns/op"] / 1e6 if "ns/op" in g else None
        p = pt_train.get(c)
        pms = p["ms_per_iter"] if p else None
        fi = TRAIN_FLOPS.get(c)
        gg = fi / gms / 1e6 if fi and gms else None
        pg = fi / pms / 1e6 if fi and pms else None
        gt = go_train_threads.get(f"BenchmarkTrainIteration/{c}", "?")
        print(f"| {c} | {fmt(gms)} (OpenBLAS {gt}) | {fmt(pms)} | {fmt(gg, 1)} | {fmt(pg, 1)} | {p['variant'] if p else 'n/a'} | "
              f"{threads(p) if p else 'n/a'} | {ratio(pms, gms)} |")

    print(f"\n## ULA sampler throughput (walker-steps/s, median of {max(len(go_rounds), len(pt_rounds))} alternating rounds; "
          "higher is better)\n")
    print("GFLOP/s = walker-steps/s × 4·(d·H + H·H + H) / 1e9 (forward + input-gradient matmuls), with d the "
          "dimension the walk runs in (256 for the latent rows). The latent rows run the same reduction on both "
          "sides; the last column compares jarzyn-serve's default with the PyTorch reference walk in ℝᵈ.\n")
    print("| case | Go (ONNX Runtime) walker-steps/s | gorgonia walker-steps/s | PyTorch walker-steps/s | "
          "Go (ORT) GFLOP/s | gorgonia GFLOP/s | PyTorch GFLOP/s | PyTorch variant, threads | ORT/PyTorch | "
          "gorgonia/PyTorch | ORT/PyTorch reference in ℝᵈ |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ceil_rows = []
    for row, gbench, pcase, N, d, H in ULA_CASES:
        gs = [r.get(gbench, {}).get("walker-steps/s") for r in go_rounds]
        ps = [r.get(pcase) for r in pt_rounds]
        refs = [r.get(pcase.removesuffix("_latent")) for r in pt_rounds]
        gr = median([g for g in gs if g])
        pvals = [p["walker_steps_per_s"] for p in ps if p]
        pr = median(pvals)
        p = next((x for x in ps if x and x["walker_steps_per_s"] == pr), None)
        rr = median([x["walker_steps_per_s"] for x in refs if x])
        fl = 4.0 * (d * H + H * H + H)
        gg = gr * fl / 1e9 if gr else None
        pg = pr * fl / 1e9 if pr else None
        q = None if "Latent" in gbench else go_gula.get("BenchmarkULA/" + gbench.split("/")[1], {}).get("walker-steps/s")
        qg = q * fl / 1e9 if q else None
        print(f"| {row} | {fmt(gr, 0)} | {fmt(q, 0)} | {fmt(pr, 0)} | {fmt(gg, 1)} | {fmt(qg, 1)} | {fmt(pg, 1)} | "
              f"{(p['variant'] + ', ' + threads(p)) if p else 'n/a'} | {round_ratios(gs, ps)} | {ratio(q, pr)} | "
              f"{round_ratios(gs, refs)} |")
        if gg and ceiling:
            ceil_rows.append(f"{row}: {gg:.1f} GFLOP/s = {100 * gg / ceiling:.0f} % of {ceiling:.1f}")
    if ceil_rows:
        print("\nONNX Runtime sampler against the best sgemm ceiling of this run: " + "; ".join(ceil_rows) + ".")

    go_conv, go_conv_threads = best_go("go_conv", "ns/op", lower=True)
    pt_conv = parse_jsonl(read("torch_conv.jsonl"))
    print("\n## Conv family (ms, median; lower is better)\n")
    print("Energy + ∇ₓU at batch 256 (float32) and one training iteration of the MNIST net (256 walkers, 1 ULA step, "
          "data batch 128, Adam); Go at its best OPENBLAS_NUM_THREADS, PyTorch at its best thread count.\n")
    print("| case | Go ms | Go GFLOP/s | PyTorch ms | PyTorch threads | Go speed-up (PyTorch/Go) |")
    print("|---|---|---|---|---|---|")
    for row, gname, pname in (("MNIST energy + grad, batch 256", "BenchmarkConvEnergyGrad/mnist", "mnist/energy_grad"),
                              ("MNIST training iteration", "BenchmarkConvTrainIteration/mnist", "mnist/train_iter"),
                              ("CIFAR energy + grad, batch 256", "BenchmarkConvEnergyGrad/cifar", "cifar/energy_grad")):
        g = go_conv.get(gname, {})
        gms = g.get("ms/op", g.get("ms/iter"))
        p = pt_conv.get(pname)
        pms = p["ms"] if p else None
        gt = go_conv_threads.get(gname)
        print(f"| {row} | {fmt(gms)}{f' (OpenBLAS {gt})' if gt and gms else ''} | {fmt(g.get('GFLOP/s'), 1)} | {fmt(pms)} | "
              f"{p.get('torch_threads') if p else 'n/a'} | {ratio(pms, gms)} |")

    gu = parse_go(read("go_conv_ula.txt")).get("BenchmarkSampleULAConv/mnist_N1024", {}).get("walker-steps/s")
    pu = (pt_conv.get("mnist/ula") or {}).get("walker_steps_per_s")
    print(f"\nSampler, plain ULA on the MNIST net (1024 walkers, walker-steps/s; higher is better): ONNX Runtime "
          f"{fmt(gu, 0)}, PyTorch {fmt(pu, 0)} ({(pt_conv.get('mnist/ula') or {}).get('torch_threads', 'n/a')} threads): "
          f"ORT/PyTorch {ratio(gu, pu)}.")

    print("\n## float32 GEMM ceiling (2048³, best of repeats)\n")
    print("| library | measured | GFLOP/s (best) | GFLOP/s (median) | OPENBLAS_NUM_THREADS |")
    print("|---|---|---|---|---|")
    if not sg:
        print("| n/a | n/a | n/a | n/a | n/a |")
    for r in sg:
        print(f"| {r['impl']} {r.get('version', '')} | {r['when']} | {fmt(r['gflops'], 1)} | "
              f"{fmt(r.get('gflops_median'), 1)} | {r.get('openblas_threads')} |")

    go_ula = {k: v for r in go_rounds for k, v in r.items()}
    other = sorted(k for k in list(go_train) + list(go_ula) if not k.startswith("BenchmarkULA/")
                   if not any(k == f"BenchmarkTrainIteration/{c}" for c in TRAIN_CASES)
                   and not any(k == u[1] for u in ULA_CASES))
    if other:
        print("\nOther Go benchmarks found: " + ", ".join(other))


if __name__ == "__main__":
    main()
