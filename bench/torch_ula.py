#!/usr/bin/python3
"""PyTorch reference sampler throughput: N walkers, K ULA steps, U and ∇ₓU of the MLP energy every step.

Benchmark/cross-check only; never a product dependency.

Energy U(x) = |x|²/2 + f(x), f = MLP d→H→H→1 with SiLU (hidden [H, H]), random nonzero weights
(nn.Linear default init), float32 by default. One step:
    X ← X − h ∇U(X) + √(2h) ξ ;  U(X), ∇U(X) at the new X (cached for the next step).
No parameter update, no weights (unless --weights: then the fixed-θ log-weight increment
−α(X',X) + α(X,X') is accumulated in float64 too).

Reported: walker-steps per second = N·K / seconds (median over repeats), and achieved GFLOP/s with
    flops per step = 2·N·(d·H + H·H + H)   [forward: the three matmuls, 2 flops per multiply-add]
                   + 2·N·(d·H + H·H + H)   [input-gradient backward: the same matmuls transposed]
                   = 4·N·(d·H + H·H + H)
(element-wise work — SiLU, its derivative, the ULA update, the RNG — is not counted.)

Cases: mlp_d2_H128_N4096, mlp_d784_H256_N4096 (h = 0.01 and 1e-4).  Custom: --n N --d D --h H
(--h is the hidden WIDTH, as in the case names; the ULA step size is --step), e.g. on a GPU:
    /usr/bin/python3 bench/torch_ula.py --device cuda --n 65536 --d 784 --h 256
CPU runs sweep thread configs in child processes like torch_train_iter.py:
    OPENBLAS_NUM_THREADS=2 /usr/bin/python3 bench/torch_ula.py
"""

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

# mlp_d784_H256_N4096_latent is the same walk as jarzyn-serve's latent sampler for d=784, H=256: ULA in the
# latent space ℝ²⁵⁶ of the first layer (models.Latent), i.e. the MLP with d = H = 256; the map back to ℝ⁷⁸⁴,
# once per run, is not timed. It measures PyTorch with the same algorithmic reduction.
CASES = {"mlp_d2_H128_N4096": (4096, 2, 128, 0.01), "mlp_d784_H256_N4096": (4096, 784, 256, 1e-4),
         "mlp_d784_H256_N4096_latent": (4096, 256, 256, 1e-4)}
# "grad" is "manual" without U (plain ULA reads ∇U only, like jarzyn-serve's gradient-only graph); it is
# left out with --weights, which needs U.
VARIANTS = ["autograd", "manual", "grad"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--n", type=int, default=0, help="walkers (custom case)")
    ap.add_argument("--d", type=int, default=0, help="dimension (custom case)")
    ap.add_argument("--h", type=int, default=0, help="hidden width H (custom case)")
    ap.add_argument("--step", type=float, default=0.0, help="ULA step size (default 0.01, 1e-4 if d>=100)")
    ap.add_argument("--k", type=int, default=10, help="ULA steps per timed repeat")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--variants", default="")
    ap.add_argument("--weights", action="store_true", help="also accumulate the fixed-θ log-weight increment")
    ap.add_argument("--configs", default=C.DEFAULT_CONFIGS)
    ap.add_argument("--min-repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=3.0)
    ap.add_argument("--check", action="store_true",
                    help="float64: manual ∇U/U vs autograd and vs finite differences along a trajectory, then exit")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--torch-threads", type=int, default=0)
    return ap.parse_args()


ARGS = parse_args()


def case_list():
    if ARGS.n or ARGS.d or ARGS.h:
        n, d, H = ARGS.n or 4096, ARGS.d or 2, ARGS.h or 128
        step = ARGS.step or (1e-4 if d >= 100 else 0.01)
        return [(f"mlp_d{d}_H{H}_N{n}", (n, d, H, step))]
    out = []
    for c in ARGS.cases.split(","):
        n, d, H, step = CASES[c]
        out.append((c, (n, d, H, ARGS.step or step)))
    return out


if ARGS.device == "cpu" and not ARGS.child and not ARGS.check and ARGS.torch_threads == 0:
    passthru = []
    for k in ("n", "d", "h", "k", "step", "min_repeats", "min_time"):
        v = getattr(ARGS, k)
        if v:
            passthru += ["--" + k.replace("_", "-"), str(v)]
    passthru += ["--cases", ARGS.cases, "--dtype", ARGS.dtype]
    if ARGS.variants:
        passthru += ["--variants", ARGS.variants]
    if ARGS.weights:
        passthru += ["--weights"]
    best, allr = C.sweep(os.path.abspath(__file__), passthru, C.parse_configs(ARGS.configs),
                         key=lambda r: r["walker_steps_per_s"], lower_is_better=False)
    for case, _ in case_list():
        if case in best:
            r = dict(best[case])
            r["by_threads"] = {C.config_key(x): x["walker_steps_per_s"] for x in allr if x["case"] == case}
            C.emit(r)
    sys.exit(0)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

if ARGS.torch_threads > 0:
    torch.set_num_threads(ARGS.torch_threads)


class Sampler:
    def __init__(self, variant, N, d, H, h, dtype, device, weights=False, seed=0):
        self.variant, self.h, self.dtype, self.dev, self.weights = variant, h, dtype, device, weights
        gen = torch.Generator().manual_seed(seed)

        def U_(shape, fan_in):
            bound = 1.0 / math.sqrt(fan_in)
            return ((torch.rand(shape, generator=gen, dtype=dtype) * 2 - 1) * bound).to(device)

        self.W1, self.b1 = U_((H, d), d), U_((H,), d)
        self.W2, self.b2 = U_((H, H), H), U_((H,), H)
        self.W3, self.b3 = U_((1, H), H), U_((1,), H)
        self.X = torch.randn(N, d, generator=gen, dtype=dtype).to(device)
        self.Xn = torch.empty_like(self.X)
        self.xi = torch.empty_like(self.X)
        self.tmp = torch.empty_like(self.X)
        self.gen = torch.Generator(device=device).manual_seed(seed + 1)
        self.sq2h = math.sqrt(2 * h)
        self.A = torch.zeros(N, dtype=torch.float64, device=device)
        if variant in ("manual", "grad"):
            e = lambda *s: torch.empty(*s, dtype=dtype, device=device)  # noqa: E731
            self.buf = [e(N, H) for _ in range(7)] + [e(N)]
            self.gbuf = [e(N, d), e(N, d)]
            self.gsel = 0
        self.U, self.g = self.eval(self.X)

    def eval(self, X):
        P = (self.W1, self.b1, self.W2, self.b2, self.W3, self.b3)
        if self.variant == "autograd":
            Xr = X.detach().requires_grad_(True)
            f = F.linear(F.silu(F.linear(F.silu(F.linear(Xr, P[0], P[1])), P[2], P[3])), P[4], P[5]).squeeze(1)
            (gf,) = torch.autograd.grad(f.sum(), Xr)
            with torch.no_grad():
                return torch.linalg.vector_norm(X, 2, 1).square_().mul_(0.5).add_(f.detach()), gf.add_(X)
        with torch.no_grad():
            W1, b1, W2, b2, W3, b3 = P
            z1, s1, a1, z2, s2, a2, t1, f = self.buf
            g = self.gbuf[self.gsel]
            self.gsel ^= 1
            torch.addmm(b1, X, W1.t(), out=z1)
            torch.sigmoid(z1, out=s1)
            torch.mul(z1, s1, out=a1)
            torch.addmm(b2, a1, W2.t(), out=z2)
            torch.sigmoid(z2, out=s2)
            torch.mul(z2, s2, out=a2)
            if self.variant == "manual":
                torch.addmv(b3, a2, W3[0], out=f)
            torch.add(s2, a2, out=z2)                 # silu'(z) = s + a − a·s
            z2.addcmul_(a2, s2, value=-1.0).mul_(W3)  # δ2
            torch.mm(z2, W2, out=t1)
            torch.add(s1, a1, out=z1)
            z1.addcmul_(a1, s1, value=-1.0).mul_(t1)  # δ1
            torch.addmm(X, z1, W1, out=g)             # ∇U = x + δ1 W1
            if self.variant == "grad":
                return None, g
            U = torch.linalg.vector_norm(X, 2, 1).square_().mul_(0.5).add_(f)
        return U, g

    def step(self):
        with torch.no_grad():
            self.xi.normal_(generator=self.gen)
            X1 = self.Xn
            torch.add(self.X, self.g, alpha=-self.h, out=X1)
            X1.add_(self.xi, alpha=self.sq2h)
        U1, g1 = self.eval(X1)
        if self.weights:
            with torch.no_grad():
                torch.sub(X1, self.X, out=self.xi)
                torch.add(self.g, g1, out=self.tmp)
                dot = self.xi.mul_(self.tmp).sum(1)
                n1 = torch.linalg.vector_norm(g1, 2, 1).square_()
                n0 = torch.linalg.vector_norm(self.g, 2, 1).square_()
                self.A += ((self.U - U1) + 0.5 * dot - 0.25 * self.h * (n1 - n0)).double()
        self.Xn, self.X = self.X, X1
        self.U, self.g = U1, g1


def main():
    dev = torch.device(ARGS.device)
    dtype = getattr(torch, ARGS.dtype)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    want = [v for v in ARGS.variants.split(",") if v]
    variants = [v for v in VARIANTS if (not want or v in want) and not (v == "grad" and ARGS.weights)]
    for case, (N, d, H, h) in case_list():
        flops_step = 4.0 * N * (d * H + H * H + H)
        res, gfl = {}, {}
        load0 = C.loadavg()
        for v in variants:
            s = Sampler(v, N, d, H, h, dtype, dev, weights=ARGS.weights)

            def run_k():
                for _ in range(ARGS.k):
                    s.step()

            ts = C.time_loop(run_k, warmup=1, min_iters=ARGS.min_repeats, min_time=ARGS.min_time, sync=sync)
            t = C.median(ts)
            res[v] = N * ARGS.k / t
            gfl[v] = flops_step * ARGS.k / t / 1e9
            assert torch.isfinite(s.X).all(), "walkers diverged"
            del s
        best = max(res, key=res.get)
        out = {"impl": "pytorch", "case": case, "walker_steps_per_s": round(res[best], 1),
               "gflops": round(gfl[best], 2), "ms_per_step": round(1e3 * N / res[best], 4)}
        out.update(C.thread_info(torch))
        out.update({"torch": torch.__version__, "device": str(dev), "dtype": ARGS.dtype, "k": ARGS.k,
                    "step_size": h, "weights": ARGS.weights, "variant": best,
                    "variants": {k: round(x, 1) for k, x in res.items()},
                    "flops_per_step": flops_step, "flop_formula": "4*N*(d*H + H*H + H)",
                    "loadavg_before": load0})
        if dev.type == "cuda":
            out["gpu"] = torch.cuda.get_device_name(dev)
        C.emit(out)


def check():
    """Same seed ⇒ same noise: the manual and autograd samplers must follow the same trajectory (float64),
    and ∇U must match central finite differences of U."""
    dt = torch.float64
    N, d, H, h = 32, 3, 8, 0.05
    a = Sampler("autograd", N, d, H, h, dt, torch.device("cpu"), weights=True, seed=5)
    m = Sampler("manual", N, d, H, h, dt, torch.device("cpu"), weights=True, seed=5)
    for _ in range(5):
        a.step()
        m.step()
    e_traj = max(float((a.X - m.X).abs().max()), float((a.U - m.U).abs().max()),
                 float((a.g - m.g).abs().max()), float((a.A - m.A).abs().max()))
    eps = 1e-6
    gfd = torch.zeros_like(m.X)
    for j in range(d):
        e = torch.zeros_like(m.X)
        e[:, j] = eps
        up, _ = m.eval(m.X + e)
        um, _ = m.eval(m.X - e)
        gfd[:, j] = (up - um) / (2 * eps)
    _, g = m.eval(m.X)
    e_fd = float((g - gfd).abs().max())
    # the gradient-only variant follows the same trajectory (plain ULA)
    a = Sampler("autograd", N, d, H, h, dt, torch.device("cpu"), seed=6)
    gv = Sampler("grad", N, d, H, h, dt, torch.device("cpu"), seed=6)
    for _ in range(5):
        a.step()
        gv.step()
    e_grad = max(float((a.X - gv.X).abs().max()), float((a.g - gv.g).abs().max()))
    ok = e_traj < 1e-12 and e_fd < 1e-7 and e_grad < 1e-12
    C.emit({"check": "PASS" if ok else "FAIL", "manual_vs_autograd_trajectory": e_traj, "gradx_vs_fd": e_fd,
            "grad_only_vs_autograd_trajectory": e_grad})
    return ok


if __name__ == "__main__":
    if ARGS.check:
        sys.exit(0 if check() else 1)
    main()
