#!/usr/bin/env python3
"""PyTorch reference benchmark for `lfp bench flowcore`.

Builds the same velocity network as flowcore/fc_mlp.c (FiLM residual MLP:
x 112, condition 38, width 512, 4 blocks, sinusoidal time embedding 32, SiLU)
and times, in the fastest thread / execution setting found on this machine:
  - one training step at batch 256: flow-matching loss on the linear
    interpolant, backward, clip_grad_norm_(1.0), AdamW (lr 1e-4, wd 1e-6) and
    an EMA update (decay 0.999); median over 30 steps after 3 warm-up steps;
  - one batch-1 forward under torch.inference_mode(), eager or "jit"
    (torch.jit.trace + freeze + optimize_for_inference, which also
    pre-transposes the weights); median over 2000 calls, in microseconds.

Usage: /usr/bin/python3 tools/bench_torch.py [--json]
Progress goes to stderr; with --json the last stdout line is one JSON object
(read by tools/cmd_bench.c), otherwise a human summary goes to stdout.
Needs Debian's python3-torch (OpenBLAS); exits 1 if torch cannot be imported.
"""
import os
import sys

# Debian's torch calls OpenBLAS (pthreads) for matmuls; left alone it starts
# one BLAS thread per core on top of torch's own OpenMP threads and
# oversubscribes the cores.  Must be set before torch is imported; the BLAS
# thread count is then varied explicitly through openblas_set_num_threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import ctypes
import json
import statistics
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"bench_torch.py: cannot import torch ({e})", file=sys.stderr)
    sys.exit(1)

D, C, H, L, E, B = 112, 38, 512, 4, 32, 256  # x, condition, width, depth, time emb, batch
K = E + C  # FiLM input: [time embedding ; condition]
N_PARAMS = D * H + H + L * (2 * (H * H + H) + 2 * H * K + 2 * H) + H * D + D
assert N_PARAMS == 112*512+512 + 4*(2*(512*512+512) + 1024*70+1024) + 512*112+112


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class VelocityNet(nn.Module):
    """v(t, x, c) exactly as fc_mlp_impl.inc's forward (FiLM conditioning)."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(D, H)
        self.w1 = nn.ModuleList(nn.Linear(H, H) for _ in range(L))
        self.film = nn.ModuleList(nn.Linear(K, 2 * H) for _ in range(L))
        self.w2 = nn.ModuleList(nn.Linear(H, H) for _ in range(L))
        self.out = nn.Linear(H, D)
        j = torch.arange(E // 2, dtype=torch.float64)  # 1000 w_j, w_j = 10000^(-j / (E/2))
        self.register_buffer("freq", 1000.0 * 10000.0 ** (-j / (E // 2)))

    def forward(self, t, x, c):
        arg = t[:, None].double() * self.freq  # in double, as the C side
        k = torch.cat([torch.sin(arg).float(), torch.cos(arg).float(), c], dim=1)
        h = self.inp(x)
        for w1, film, w2 in zip(self.w1, self.film, self.w2):
            a = w1(F.silu(h))
            g, be = film(k).chunk(2, dim=1)
            h = h + w2(F.silu(a * (1 + g) + be))
        return self.out(F.silu(h))


def forward_b1_addmv(net, t, x, c):
    """The same forward for one sample written on matrix-vector products.
    Not how a torch user writes a model (nn.Linear at batch 1 goes through
    OpenBLAS sgemm with M = 1, which is slow), but the fastest torch can do
    for this network at batch 1; reported beside the standard module."""
    arg = t.double() * net.freq
    k = torch.cat([torch.sin(arg).float(), torch.cos(arg).float(), c])
    h = torch.addmv(net.inp.bias, net.inp.weight, x)
    for w1, film, w2 in zip(net.w1, net.film, net.w2):
        a = torch.addmv(w1.bias, w1.weight, F.silu(h))
        g, be = torch.addmv(film.bias, film.weight, k).chunk(2)
        h = h + torch.addmv(w2.bias, w2.weight, F.silu(a * (1 + g) + be))
    return torch.addmv(net.out.bias, net.out.weight, F.silu(h))


def openblas_setter():
    """openblas_set_num_threads of the OpenBLAS that torch loaded, or None."""
    try:
        return ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads
    except (OSError, AttributeError):
        return None


def median_s(fn, n, warm):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def desc_short(s):
    return f"torch {s[0]}, openblas {s[1]}"


def main():
    json_out = "--json" in sys.argv[1:]
    torch.manual_seed(0)
    set_blas = openblas_setter()
    # (torch intra-op threads, OpenBLAS threads); 2 + 2 would oversubscribe 2 cores
    settings = [(1, 1), (2, 1)] + ([(1, 2)] if set_blas else [])

    def use(s):
        torch.set_num_threads(s[0])
        if set_blas:
            set_blas(s[1])

    net = VelocityNet()
    params = list(net.parameters())
    n_params = sum(p.numel() for p in params)
    assert n_params == N_PARAMS, (n_params, N_PARAMS)  # = fc_mlp_nparams() on the C side
    log(f"bench_torch: torch {torch.__version__}, {n_params} parameters, batch {B}, "
        f"{os.cpu_count()} cpus, OpenBLAS thread control {'yes' if set_blas else 'no'}")

    # ---- training step: FM loss, backward, clip, AdamW, EMA ----
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-6, foreach=True)
    ema = [p.detach().clone() for p in params]
    x0, x1, c, t = torch.randn(B, D), torch.randn(B, D), torch.randn(B, C), torch.rand(B)
    tc = t[:, None]

    def train_step():
        opt.zero_grad(set_to_none=True)
        xt = (1 - tc) * x0 + tc * x1
        loss = (net(t, xt, c) - (x1 - x0)).pow(2).mean()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema, 0.999)
            torch._foreach_add_(ema, params, alpha=1 - 0.999)

    train = {}
    for s in settings:
        use(s)
        train[s] = B / median_s(train_step, 30, 3)
        log(f"  train  torch threads {s[0]}, BLAS threads {s[1]}: {train[s]:8.0f} samples/s")
    best_train = max(train, key=train.get)

    # ---- batch-1 forward latency: screen every setting, then time the winner ----
    net.eval()
    a1 = (t[:1].clone(), x0[:1].clone(), c[:1].clone())
    with torch.inference_mode():
        jit = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, a1)))
        assert torch.allclose(jit(*a1), net(*a1), atol=1e-5)
        modes = {"eager": net, "jit": jit}
        screen = {}
        for s in settings:
            use(s)
            for mode, m in modes.items():
                screen[s, mode] = median_s(lambda: m(*a1), 300, 50) * 1e6
                log(f"  fwd b1 torch threads {s[0]}, BLAS threads {s[1]}, {mode:5s}: "
                    f"{screen[s, mode]:8.1f} us (screen)")
        s_fwd, mode = min(screen, key=screen.get)
        use(s_fwd)
        fwd_us = median_s(lambda: modes[mode](*a1), 2000, 100) * 1e6
        # the hand-written matrix-vector forward, in its best thread setting
        v1 = (t[:1].clone(), x0[0].clone(), c[0].clone())
        assert torch.allclose(forward_b1_addmv(net, *v1), net(*a1)[0], atol=1e-5)
        mv = {}
        for s in settings:
            use(s)
            mv[s] = median_s(lambda: forward_b1_addmv(net, *v1), 300, 50) * 1e6
        s_mv = min(mv, key=mv.get)
        use(s_mv)
        mv_us = median_s(lambda: forward_b1_addmv(net, *v1), 2000, 100) * 1e6
        log(f"  fwd b1 addmv ({desc_short(s_mv)}): {mv_us:8.1f} us")

    desc = lambda s: f"{max(s)} thread(s): torch {s[0]}, OpenBLAS {s[1]}"
    summary = (f"PyTorch {torch.__version__}: training {train[best_train]:.0f} samples/s "
               f"({desc(best_train)}); batch-1 forward {fwd_us:.1f} us ({mode}, {desc(s_fwd)}); "
               f"hand-written addmv batch-1 forward {mv_us:.1f} us")
    print(summary, file=sys.stderr if json_out else sys.stdout)
    if not json_out:
        return 0
    print(json.dumps({
        "torch_version": torch.__version__,
        "torch_train_samples_per_s": round(train[best_train], 1),
        "torch_train_threads": max(best_train),  # cores used: max(intra-op, BLAS)
        "torch_train_setting": f"torch {best_train[0]}, openblas {best_train[1]}",
        "torch_fwd_b1_us": round(fwd_us, 2),
        "torch_fwd_b1_threads": max(s_fwd),
        "torch_fwd_b1_mode": mode,
        "torch_fwd_b1_setting": f"torch {s_fwd[0]}, openblas {s_fwd[1]}",
        "torch_fwd_b1_addmv_us": round(mv_us, 2),
        "params": n_params,
        "batch": B,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
