#!/usr/bin/python3
"""PyTorch reference timing of ONE training iteration of Jarzynski-weighted SMC (docs/METHOD.md §2).

Benchmark/cross-check only; never a product dependency.

One iteration (resampling excluded from the timed loop, the ESS is computed):
  1. p = softmax(A)
  2. D = mean_data ∂θU(x) − Σ_i p_i ∂θU(X_i) (X detached); θ ← optimizer(θ, D)
  3. X' = X − h g + √(2h) ξ with the cached g = ∇ₓU_θold(X)
  4. U' = U_θnew(X'), g' = ∇ₓU_θnew(X') (cached for the next iteration)
  5. A += −(U' − U) + ½⟨X' − X, g + g'⟩ − (h/4)(|g'|² − |g|²)
  6. ESS = (Σe^A)² / Σe^{2A}

Cases
  gmm50d        U(x) = −logsumexp_m(−½|x−a_m|² − z_m), d=50, M=2, N=10000 walkers, the full 10000-point
                data set as batch, float64, h=0.1, plain GD (means 0.0025, z 0.0125, z[0] frozen).
  mlp_d2_H128   U(x) = |x|²/2 + f(x), f = MLP d→H→H→1 (SiLU), float32, N=4096, data batch 256 (random),
  mlp_d784_H256 Adam lr 1e-3, h=0.01 (d=784: h=1e-4), 1 ULA step per update.

Formulations ("variants"), all exact, the fastest is reported:
  autograd  the textbook way: θ-loss on data + detached walkers, backward, step; then a fresh forward of X'
            with requires_grad and torch.autograd.grad(U'.sum(), X').
  retain    one walker forward per iteration: the forward at (θ_new, X') keeps its graph
            (retain_graph=True) so the next iteration's θ-gradient backpropagates the weighted sum through it.
  fused     (MLP) one forward + one input-backward per iteration with autograd, also capturing the per-walker
            backprop signals δ_l = ∂f/∂z_l; the next θ-gradient is then Σ_i c_i δ_i a_i^T (three matmuls,
            no second backward) — backprop is linear in the per-sample output seed c_i = −p_i.
  manual    (MLP) the same algebra written by hand under torch.no_grad with preallocated buffers.
  analytic  (GMM) closed-form ∇ₓU = x − Σ r_m a_m, ∂a_m U = r_m(a_m − x), ∂z_m U = r_m, no_grad.

Threads: by default every case is measured in child processes for each (torch threads, OPENBLAS_NUM_THREADS)
pair in --configs (default "1:2,2:2,2:2:passive"; "passive" = OMP_WAIT_POLICY=PASSIVE) and the best is
printed.  The machine is shared: medians are reported, the minimum too (ms_min).

  OPENBLAS_NUM_THREADS=2 /usr/bin/python3 bench/torch_train_iter.py            # sweep, best per case
  /usr/bin/python3 bench/torch_train_iter.py --check                            # float64 correctness checks
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

CASES = ["gmm50d", "mlp_d2_H128", "mlp_d784_H256"]
GMM_VARIANTS = ["analytic", "autograd", "retain"]
MLP_VARIANTS = ["autograd", "retain", "fused", "manual"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--variants", default="", help="comma list; default: all for each family")
    ap.add_argument("--configs", default=C.DEFAULT_CONFIGS,
                    help="thread configs torch:openblas, comma separated (default %(default)s)")
    ap.add_argument("--min-iters", type=int, default=20)
    ap.add_argument("--min-time", type=float, default=3.0)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--check", action="store_true", help="float64 correctness checks, then exit")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="measure in this process with this many torch threads (no sweep)")
    return ap.parse_args()


ARGS = parse_args()

if not ARGS.check and not ARGS.child and ARGS.torch_threads == 0:
    # Parent: sweep thread configs in child processes (torch is never imported here).
    child_args = ["--cases", ARGS.cases, "--min-iters", str(ARGS.min_iters), "--min-time", str(ARGS.min_time),
                  "--warmup", str(ARGS.warmup)]
    if ARGS.variants:
        child_args += ["--variants", ARGS.variants]
    best, allr = C.sweep(os.path.abspath(__file__), child_args, C.parse_configs(ARGS.configs))
    for case in ARGS.cases.split(","):
        if case not in best:
            continue
        r = dict(best[case])
        r["by_threads"] = {C.config_key(x): x["ms_per_iter"] for x in allr if x["case"] == case}
        C.emit(r)
    sys.exit(0)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

if ARGS.torch_threads > 0:
    torch.set_num_threads(ARGS.torch_threads)
elif ARGS.check:
    torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------------------
# shared pieces
# ----------------------------------------------------------------------------------------------------------

def sqnorm(a):
    """|a_i|² per row (one pass, no N×d temporary; faster than (a*a).sum(1) on this CPU)."""
    return torch.linalg.vector_norm(a, 2, 1).square_()


def weight_increment(U0, U1, g0sq, g1sq, X0, X1, g0, g1, h, t1, t2):
    """ΔA = −(U1 − U0) + ½⟨X1 − X0, g0 + g1⟩ − (h/4)(|g1|² − |g0|²), float64 result.

    t1, t2: N×d scratch buffers (t1 may alias the noise buffer)."""
    torch.sub(X1, X0, out=t1)
    torch.add(g0, g1, out=t2)
    t1.mul_(t2)
    dot = t1.sum(1).double()
    return (U0.double() - U1.double()) + 0.5 * dot - (0.25 * h) * (g1sq.double() - g0sq.double())


def ess_fraction(A):
    lse = torch.logsumexp(A, 0)
    lse2 = torch.logsumexp(2.0 * A, 0)
    return float(torch.exp(2.0 * lse - lse2)) / A.shape[0]


class SMCBase:
    """State and the variant-independent part of the iteration."""

    def _init_state(self, X0):
        N, d = X0.shape
        self.N, self.d = N, d
        self.X = X0.clone()
        self.Xn = torch.empty_like(X0)
        self.xi = torch.empty_like(X0)   # noise, then scratch for the weight increment
        self.tmp = torch.empty_like(X0)
        self.A = torch.zeros(N, dtype=torch.float64)
        self.sq2h = math.sqrt(2.0 * self.h)
        self.U, self.g = self.eval_walkers(self.X)
        self.gsq = sqnorm(self.g)

    def iterate(self):
        p = torch.softmax(self.A, 0).to(self.dtype)
        self.theta_step(p)                                   # uses the cache at (θ_k, X_k)
        self.xi.normal_(generator=self.gen)
        X1 = self.Xn
        torch.add(self.X, self.g, alpha=-self.h, out=X1)     # ULA at the OLD θ (cached g)
        X1.add_(self.xi, alpha=self.sq2h)
        U1, g1 = self.eval_walkers(X1)                       # (θ_{k+1}, X_{k+1}); refreshes the cache
        g1sq = sqnorm(g1)
        self.A += weight_increment(self.U, U1, self.gsq, g1sq, self.X, X1, self.g, g1, self.h,
                                   self.xi, self.tmp)
        self.Xn, self.X = self.X, X1                         # separate buffers: no aliasing (docs/METHOD.md §6.1)
        self.U, self.g, self.gsq = U1, g1, g1sq
        self.ess = ess_fraction(self.A)


# ----------------------------------------------------------------------------------------------------------
# Gaussian mixture
# ----------------------------------------------------------------------------------------------------------

def gmm_energy(x, a, z):
    """U(x) = ½|x|² − logsumexp_m(⟨x, a_m⟩ − ½|a_m|² − z_m)  (= −logsumexp(−½|x−a_m|² − z_m))."""
    logits = x @ a.t() - 0.5 * (a * a).sum(1) - z
    return 0.5 * (x * x).sum(1) - torch.logsumexp(logits, 1)


def gmm_energy_ref(x, a, z):
    """Independent (broadcast) form for the checks."""
    diff = x[:, None, :] - a[None, :, :]
    return -torch.logsumexp(-0.5 * (diff * diff).sum(2) - z[None, :], 1)


class GMMBench(SMCBase):
    def __init__(self, variant, d=50, M=2, N=10000, n=10000, h=0.1, dtype=torch.float64, seed=0,
                 lr_a=0.0025, lr_z=0.0125):
        self.variant, self.h, self.dtype = variant, h, dtype
        self.lr_a, self.lr_z = lr_a, lr_z
        gen = torch.Generator().manual_seed(seed)
        # teacher (docs/METHOD.md §5.1): modes −10 e1 (¼) and +6 e1 (¾)
        n1 = n // 4
        data = torch.randn(n, d, generator=gen, dtype=dtype)
        data[:n1, 0] += -10.0
        data[n1:, 0] += 6.0
        self.data = data
        a = 0.01 * torch.randn(M, d, generator=gen, dtype=dtype)
        a[0, 0], a[1 % M, 0] = -0.1, 0.1
        self.a = a.requires_grad_(variant != "analytic")
        self.z = torch.zeros(M, dtype=dtype).requires_grad_(variant != "analytic")
        # walkers exactly from ρ_θ0
        comp = torch.multinomial(torch.softmax(-self.z.detach(), 0), N, replacement=True, generator=gen)
        X0 = self.a.detach()[comp] + torch.randn(N, d, generator=gen, dtype=dtype)
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.params = [self.a, self.z]
        if variant == "analytic":
            self.r = None
        self._init_state(X0)

    # --- θ update ---
    def _gd(self, ga, gz):
        with torch.no_grad():
            self.a.sub_(ga, alpha=self.lr_a)
            gz = gz.clone()
            gz[0] = 0.0                                      # z[0] frozen (gauge)
            self.z.sub_(gz, alpha=self.lr_z)
        self.last_grads = [ga, gz]

    def theta_step(self, p):
        if self.variant == "autograd":
            loss = gmm_energy(self.data, self.a, self.z).mean() - (p * gmm_energy(self.X, self.a, self.z)).sum()
            ga, gz = torch.autograd.grad(loss, [self.a, self.z])
        elif self.variant == "retain":
            loss = gmm_energy(self.data, self.a, self.z).mean() - (p * self.Ugraph).sum()
            ga, gz = torch.autograd.grad(loss, [self.a, self.z])
            self.Ugraph = None
        else:  # analytic: seeds c = 1/n on data, −p on walkers
            with torch.no_grad():
                rd = self._resp(self.data)
                cd = torch.full((self.data.shape[0],), 1.0 / self.data.shape[0], dtype=self.dtype)
                ga, gz = self._theta_grad(rd, cd, self.data)
                gaw, gzw = self._theta_grad(self.r, -p, self.X)
                ga += gaw
                gz += gzw
        self._gd(ga, gz)

    # --- analytic pieces ---
    def _resp(self, x):
        a, z = self.a, self.z
        logits = torch.addmm(-(0.5 * (a * a).sum(1) + z), x, a.t())
        return torch.softmax(logits, 1)

    def _theta_grad(self, r, c, x):
        # Σ_i c_i r_im (a_m − x_i) and Σ_i c_i r_im
        cr = r * c[:, None]
        gz = cr.sum(0)
        ga = gz[:, None] * self.a - cr.t() @ x
        return ga, gz

    # --- walker evaluation at the current θ ---
    def eval_walkers(self, X):
        if self.variant == "analytic":
            with torch.no_grad():
                a, z = self.a, self.z
                logits = torch.addmm(-(0.5 * (a * a).sum(1) + z), X, a.t())
                lse = torch.logsumexp(logits, 1)
                self.r = torch.exp(logits - lse[:, None])
                U = sqnorm(X).mul_(0.5).sub_(lse)
                g = torch.addmm(X, self.r, a, alpha=-1.0)   # x − r a
            return U, g
        Xr = X.detach().requires_grad_(True)
        if self.variant == "autograd":
            U = gmm_energy(Xr, self.a.detach(), self.z.detach())
            (g,) = torch.autograd.grad(U.sum(), Xr)
            return U.detach(), g
        # retain: graph wrt θ and X; keep it for the next θ-gradient
        U = gmm_energy(Xr, self.a, self.z)
        (g,) = torch.autograd.grad(U.sum(), Xr, retain_graph=True)
        self.Ugraph = U
        return U.detach(), g

    def energy_ref(self, x, params):
        return gmm_energy_ref(x, *params)


# ----------------------------------------------------------------------------------------------------------
# MLP energy U(x) = |x|²/2 + f(x), f: d→H→H→1 SiLU
# ----------------------------------------------------------------------------------------------------------

def mlp_f(x, W1, b1, W2, b2, W3, b3):
    a1 = F.silu(F.linear(x, W1, b1))
    a2 = F.silu(F.linear(a1, W2, b2))
    return F.linear(a2, W3, b3).squeeze(1)


def mlp_energy(x, params):
    return 0.5 * (x * x).sum(1) + mlp_f(x, *params)


class MLPBench(SMCBase):
    def __init__(self, variant, d=2, H=128, N=4096, B=256, h=0.01, dtype=torch.float32, seed=0, lr=1e-3):
        self.variant, self.h, self.dtype, self.B = variant, h, dtype, B
        gen = torch.Generator().manual_seed(seed)

        def U_(shape, fan_in):  # nn.Linear default init; last layer nonzero on purpose (timing)
            bound = 1.0 / math.sqrt(fan_in)
            return ((torch.rand(shape, generator=gen, dtype=dtype) * 2 - 1) * bound).requires_grad_(True)

        self.W1, self.b1 = U_((H, d), d), U_((H,), d)
        self.W2, self.b2 = U_((H, H), H), U_((H,), H)
        self.W3, self.b3 = U_((1, H), H), U_((1,), H)
        self.params = [self.W1, self.b1, self.W2, self.b2, self.W3, self.b3]
        self.opt = torch.optim.Adam(self.params, lr=lr)
        self.data = torch.randn(B, d, generator=gen, dtype=dtype)
        X0 = torch.randn(N, d, generator=gen, dtype=dtype)
        self.gen = torch.Generator().manual_seed(seed + 1)
        if variant == "manual":
            self._alloc_manual(N, B, d, H)
        self._init_state(X0)

    # --- θ update ---
    def theta_step(self, p):
        P = self.params
        if self.variant == "autograd":
            for q in P:
                q.grad = None
            loss = mlp_f(self.data, *P).mean() - (p * mlp_f(self.X, *P)).sum()
            loss.backward()
        elif self.variant == "retain":
            loss = mlp_f(self.data, *P).mean() - (p * self.fgraph).sum()
            grads = torch.autograd.grad(loss, P)
            self.fgraph = None
            for q, gq in zip(P, grads):
                q.grad = gq
        elif self.variant == "fused":
            grads = torch.autograd.grad(mlp_f(self.data, *P).mean(), P)
            with torch.no_grad():
                c = -p
                d1 = self.d1.mul_(c[:, None])
                d2 = self.d2.mul_(c[:, None])
                gW1 = grads[0].addmm_(d1.t(), self.X)
                gb1 = grads[1].add_(d1.sum(0))
                gW2 = grads[2].addmm_(d2.t(), self.a1)
                gb2 = grads[3].add_(d2.sum(0))
                gW3 = grads[4].add_((c[None, :] @ self.a2))
                gb3 = grads[5].add_(c.sum())
            for q, gq in zip(P, [gW1, gb1, gW2, gb2, gW3, gb3]):
                q.grad = gq
        else:  # manual
            with torch.no_grad():
                m = self.m
                self._forward_backward(self.data, m["dz1"], m["ds1"], m["da1"], m["dz2"], m["ds2"], m["da2"],
                                       m["dt1"], m["df"], None)
                cB = 1.0 / self.B
                G = self.grads
                torch.mm(m["dz2"].t(), m["da1"], out=G[2])           # data: Σ δ2 a1ᵀ / B
                torch.mm(m["dz1"].t(), self.data, out=G[0])
                G[0].mul_(cB)
                G[2].mul_(cB)
                torch.sum(m["dz1"], 0, out=G[1])
                G[1].mul_(cB)
                torch.sum(m["dz2"], 0, out=G[3])
                G[3].mul_(cB)
                torch.mean(m["da2"], 0, keepdim=True, out=G[4])
                G[5].fill_(1.0)
                c = p.neg_()[:, None]                                  # walkers: seeds −p_i
                d1 = m["z1"].mul_(c)                                   # z1 holds δ1, z2 holds δ2
                d2 = m["z2"].mul_(c)
                G[0].addmm_(d1.t(), self.X)
                G[1].add_(d1.sum(0))
                G[2].addmm_(d2.t(), m["a1"])
                G[3].add_(d2.sum(0))
                G[4].addmm_(c.t(), m["a2"])
                G[5].add_(c.sum())
        self.last_grads = [q.grad.detach().clone() for q in P] if getattr(self, "keep_grads", False) else None
        self.opt.step()

    # --- manual kernels ---
    def _alloc_manual(self, N, B, d, H):
        e = lambda *s: torch.empty(*s, dtype=self.dtype)  # noqa: E731
        self.m = {"z1": e(N, H), "s1": e(N, H), "a1": e(N, H), "z2": e(N, H), "s2": e(N, H), "a2": e(N, H),
                  "t1": e(N, H), "f": e(N),
                  "dz1": e(B, H), "ds1": e(B, H), "da1": e(B, H), "dz2": e(B, H), "ds2": e(B, H),
                  "da2": e(B, H), "dt1": e(B, H), "df": e(B)}
        self.grads = [torch.empty_like(q) for q in self.params]
        for q, gq in zip(self.params, self.grads):
            q.grad = gq
        self.gbuf = [e(N, d), e(N, d)]
        self.gsel = 0

    def _forward_backward(self, X, z1, s1, a1, z2, s2, a2, t1, f, gx):
        """f(X) into f; on exit z1 = δ1 = ∂f/∂z1, z2 = δ2 = ∂f/∂z2, a1, a2 the activations; gx = X + ∇f."""
        W1, b1, W2, b2, W3, b3 = (q.detach() for q in self.params)
        torch.addmm(b1, X, W1.t(), out=z1)
        torch.sigmoid(z1, out=s1)
        torch.mul(z1, s1, out=a1)
        torch.addmm(b2, a1, W2.t(), out=z2)
        torch.sigmoid(z2, out=s2)
        torch.mul(z2, s2, out=a2)
        torch.addmv(b3, a2, W3[0], out=f)
        # silu'(z) = s + a − a·s ; δ2 = w3 ⊙ silu'(z2) ; δ1 = (δ2 W2) ⊙ silu'(z1)
        torch.add(s2, a2, out=z2)
        z2.addcmul_(a2, s2, value=-1.0)
        z2.mul_(W3)
        torch.mm(z2, W2, out=t1)
        torch.add(s1, a1, out=z1)
        z1.addcmul_(a1, s1, value=-1.0)
        z1.mul_(t1)
        if gx is not None:
            torch.addmm(X, z1, W1, out=gx)

    # --- walker evaluation at the current θ ---
    def eval_walkers(self, X):
        P = self.params
        if self.variant == "manual":
            with torch.no_grad():
                m = self.m
                g = self.gbuf[self.gsel]
                self.gsel ^= 1
                self._forward_backward(X, m["z1"], m["s1"], m["a1"], m["z2"], m["s2"], m["a2"], m["t1"], m["f"], g)
                U = sqnorm(X).mul_(0.5).add_(m["f"])
            return U, g
        Xr = X.detach().requires_grad_(True)
        if self.variant == "autograd":
            f = mlp_f(Xr, *(q.detach() for q in P))
            (gf,) = torch.autograd.grad(f.sum(), Xr)
        elif self.variant == "retain":
            f = mlp_f(Xr, *P)
            (gf,) = torch.autograd.grad(f.sum(), Xr, retain_graph=True)
            self.fgraph = f
        else:  # fused
            W1, b1, W2, b2, W3, b3 = (q.detach() for q in P)
            z1 = F.linear(Xr, W1, b1)
            a1 = F.silu(z1)
            z2 = F.linear(a1, W2, b2)
            a2 = F.silu(z2)
            f = F.linear(a2, W3, b3).squeeze(1)
            gf, self.d1, self.d2 = torch.autograd.grad(f.sum(), [Xr, z1, z2])
            self.a1, self.a2 = a1.detach(), a2.detach()
        with torch.no_grad():
            g = gf.add_(X)
            U = sqnorm(X).mul_(0.5).add_(f.detach())
        return U, g

    def energy_ref(self, x, params):
        return mlp_energy(x, params)


# ----------------------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------------------

def make(case, variant):
    if case == "gmm50d":
        return GMMBench(variant)
    if case == "mlp_d2_H128":
        return MLPBench(variant, d=2, H=128, h=0.01)
    if case == "mlp_d784_H256":
        return MLPBench(variant, d=784, H=256, h=1e-4)
    raise SystemExit(f"unknown case {case}")


def run_timing():
    want = [v for v in ARGS.variants.split(",") if v]
    for case in ARGS.cases.split(","):
        variants = GMM_VARIANTS if case.startswith("gmm") else MLP_VARIANTS
        if want:
            variants = [v for v in variants if v in want]
        res, mins, iters = {}, {}, {}
        noise_ms = None
        load0 = C.loadavg()
        for v in variants:
            b = make(case, v)
            ts = C.time_loop(b.iterate, warmup=ARGS.warmup, min_iters=ARGS.min_iters, min_time=ARGS.min_time)
            res[v] = round(1e3 * C.median(ts), 4)
            mins[v] = round(1e3 * min(ts), 4)
            iters[v] = len(ts)
            if noise_ms is None:  # cost of drawing the N×d Gaussian noise alone (part of every iteration)
                tn = C.time_loop(lambda: b.xi.normal_(generator=b.gen), warmup=1, min_iters=10, min_time=0)
                noise_ms = round(1e3 * C.median(tn), 4)
            del b
        if not res:
            continue
        best = min(res, key=res.get)
        out = {"impl": "pytorch", "case": case, "ms_per_iter": res[best], "ms_min": mins[best]}
        out.update(C.thread_info(torch))
        out.update({"torch": torch.__version__, "variant": best, "variants": res, "iters": iters[best],
                    "noise_ms": noise_ms, "loadavg_before": load0})
        C.emit(out)


# ----------------------------------------------------------------------------------------------------------
# --check: float64 correctness
# ----------------------------------------------------------------------------------------------------------

def grad_ref(bench, x, params):
    xr = x.detach().clone().requires_grad_(True)
    U = bench.energy_ref(xr, [q.detach() for q in params])
    (g,) = torch.autograd.grad(U.sum(), xr)
    return U.detach(), g


def fd_grad(bench, x, params, eps=1e-6):
    P = [q.detach() for q in params]
    g = torch.zeros_like(x)
    for j in range(x.shape[1]):
        e = torch.zeros_like(x)
        e[:, j] = eps
        g[:, j] = (bench.energy_ref(x + e, P) - bench.energy_ref(x - e, P)) / (2 * eps)
    return g


def alpha(U, g, x, y, h):
    return U + 0.5 * ((y - x) * g).sum(1) + 0.25 * h * (g * g).sum(1)


def log_kernel(x, y, g, h):
    """log q(x→y) for ULA: N(y; x − h g(x), 2h I)."""
    d = x.shape[1]
    r = y - x + h * g
    return -(r * r).sum(1) / (4 * h) - 0.5 * d * math.log(4 * math.pi * h)


def run_check():
    dt = torch.float64
    fams = [
        ("gmm", lambda v: GMMBench(v, d=5, M=2, N=64, n=100, h=0.1, dtype=dt, seed=3), GMM_VARIANTS),
        ("mlp", lambda v: MLPBench(v, d=3, H=8, N=64, B=16, h=0.05, dtype=dt, seed=3), MLP_VARIANTS),
    ]
    ok = True
    tol = 1e-9
    report = []
    for fam, mk, variants in fams:
        traj = {}
        for v in variants:
            b = mk(v)
            b.keep_grads = True
            # (1) ∇ₓU (as used by the variant) vs finite differences and vs autograd of the reference energy
            Ur, gr = grad_ref(b, b.X, b.params)
            gfd = fd_grad(b, b.X, b.params)
            e_fd = float((b.g - gfd).abs().max())
            e_ad = float((b.g - gr).abs().max())
            e_U = float((b.U - Ur).abs().max())
            # one iteration, compare the weight update with the α form and the kernel form
            th0 = [q.detach().clone() for q in b.params]
            X0, U0, g0, A0 = b.X.clone(), b.U.clone(), b.g.clone(), b.A.clone()
            p = torch.softmax(A0, 0)
            # θ-gradient vs a directional finite difference of L(θ) = mean U(data) − Σ p U(X) (p, X fixed)
            L = lambda P: (b.energy_ref(b.data, P).mean() - (p * b.energy_ref(X0, P)).sum())  # noqa: E731
            b.iterate()
            D = b.last_grads
            gen = torch.Generator().manual_seed(7)
            vdir = [torch.randn(q.shape, generator=gen, dtype=dt) for q in th0]
            if fam == "gmm":
                vdir[1][0] = 0.0  # z[0] frozen: its gradient is reported as 0
            eps = 1e-6
            Lp = L([q + eps * w for q, w in zip(th0, vdir)])
            Lm = L([q - eps * w for q, w in zip(th0, vdir)])
            dd_fd = float((Lp - Lm) / (2 * eps))
            dd = float(sum((gq * w).sum() for gq, w in zip(D, vdir)))
            e_theta = abs(dd - dd_fd) / max(1.0, abs(dd_fd))
            th1 = [q.detach().clone() for q in b.params]
            X1 = b.X
            U0r, g0r = grad_ref(b, X0, th0)
            U1r, g1r = grad_ref(b, X1, th1)
            dA = b.A - A0
            dA_alpha = -alpha(U1r, g1r, X1, X0, b.h) + alpha(U0r, g0r, X0, X1, b.h)
            dA_kern = (-U1r + log_kernel(X1, X0, g1r, b.h)) - (-U0r + log_kernel(X0, X1, g0r, b.h))
            e_alpha = float((dA - dA_alpha).abs().max())
            e_kern = float((dA_alpha - dA_kern).abs().max())
            e_g1 = float((b.g - g1r).abs().max())
            for _ in range(3):
                b.iterate()
            traj[v] = ([q.detach().clone() for q in b.params], b.X.clone(), b.A.clone(), [x.clone() for x in D])
            frozen = float(b.params[1].detach()[0].abs()) if fam == "gmm" else 0.0
            row = {"family": fam, "variant": v, "gradx_vs_fd": e_fd, "gradx_vs_autograd_ref": e_ad,
                   "U_vs_ref": e_U, "gradx_new_theta": e_g1, "theta_grad_dirderiv_vs_fd": e_theta,
                   "dA_vs_alpha_form": e_alpha, "alpha_form_vs_kernel_form": e_kern}
            if fam == "gmm":
                row["z0_frozen_abs"] = frozen
            report.append(row)
            lim = {"gradx_vs_fd": 1e-7, "theta_grad_dirderiv_vs_fd": 1e-7}
            for k, val in row.items():
                if isinstance(val, float) and val > lim.get(k, tol):
                    ok = False
        ref = "autograd"
        for v in variants:
            th, X, A, D = traj[v]
            thr, Xr_, Ar, Dr = traj[ref]
            e = max(max(float((a - b_).abs().max()) for a, b_ in zip(th, thr)),
                    float((X - Xr_).abs().max()), float((A - Ar).abs().max()),
                    max(float((a - b_).abs().max()) for a, b_ in zip(D, Dr)))
            report.append({"family": fam, "variant": v, f"max_diff_vs_{ref}_after_4_iters": e})
            if e > tol:
                ok = False
    for r in report:
        C.emit(r)
    C.emit({"check": "PASS" if ok else "FAIL"})
    return ok


if __name__ == "__main__":
    if ARGS.check:
        sys.exit(0 if run_check() else 1)
    run_timing()
