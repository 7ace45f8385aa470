#!/usr/bin/env python3
"""PyTorch reference benchmark for `lfp bench flowcore`.

Builds the same velocity network as flowcore/fc_mlp.c (FiLM residual MLP:
x 112, condition 38, width 512, 4 blocks, sinusoidal time embedding 32, SiLU)
or, with --unet, as flowcore/fc_unet.c (Diffusion Policy's ConditionalUnet1D
with FiLM (1 + scale), see fc_unet.h), or, with --tfm, as flowcore/fc_tfm.c
(DiT blocks with adaLN-Zero over the chunk's steps, see fc_tfm.h), and times, in the fastest thread /
execution setting found on this machine:
  - one training step at batch 256: flow-matching loss on the linear
    interpolant, backward, clip_grad_norm_(1.0), AdamW (lr 1e-4, wd 1e-6) and
    an EMA update (decay 0.999); median over 30 steps after 3 warm-up steps
    (10 after 2 for the U-Net, whose steps are longer);
  - one batch-1 forward under torch.inference_mode(), eager or "jit"
    (torch.jit.trace + freeze + optimize_for_inference, which also
    pre-transposes the weights), each setting screened over 300 calls (30
    for the U-Net), the fastest timed over 2000 (500), in microseconds.

Usage: /usr/bin/python3 tools/bench_torch.py [--json] [--unet T,A,C,D0-D1-D2,TEMB | --tfm T,A,C,D,L,H,F,E,COND[,CTOK]]
  --unet 16,2,40,64-128-256,64: chunks of T = 16 steps of A = 2 actions,
  condition C = 40, level channels 64, 128, 256, time embedding 64 (kernel 5,
  8 groups, Mish, as fc_unet_config_default).
  --tfm 16,2,40,128,4,4,512,64,0: the same chunks, width 128, depth 4, 4
  heads, MLP width 512, time embedding 64, adaLN (1: FiLM; 2: cross-attention
  to a time token and CTOK condition tokens, default 1), GELU.
Progress goes to stderr; with --json the last stdout line is one JSON object
(read by tools/cmd_bench.c), otherwise a human summary goes to stdout.
Needs Debian's python3-torch (OpenBLAS); exits 1 if torch cannot be imported.
UNet1D and unet_flat_params are also what tests/make_torch_fixtures.py builds
the U-Net's PyTorch fixture with; DiT1D and tfm_flat_params,
tests/make_torch_fixtures.py the transformer's.
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


def time_features(freq, t):
    """[sin ; cos] of 1000 t w_j, in double as the C side (fc_nn_impl.inc)."""
    arg = t[:, None].double() * freq
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


class CondResBlock(nn.Module):
    """Diffusion Policy's ConditionalResidualBlock1D with FiLM (1 + scale)."""

    def __init__(self, cin, cout, dk, K, G):
        super().__init__()
        self.conv1, self.gn1 = nn.Conv1d(cin, cout, K, padding=K // 2), nn.GroupNorm(G, cout)
        self.conv2, self.gn2 = nn.Conv1d(cout, cout, K, padding=K // 2), nn.GroupNorm(G, cout)
        self.film = nn.Linear(dk, 2 * cout)
        self.res = nn.Conv1d(cin, cout, 1) if cin != cout else None

    def forward(self, x, km):
        u = F.mish(self.gn1(self.conv1(x)))
        scale, shift = self.film(km).unsqueeze(-1).chunk(2, dim=1)
        u = (1 + scale) * u + shift
        return F.mish(self.gn2(self.conv2(u))) + (self.res(x) if self.res is not None else x)


class UNet1D(nn.Module):
    """v(t, x, c) exactly as fc_unet_impl.inc's forward: x (B, T * A)
    time-major, channels x horizon inside (as Diffusion Policy)."""

    def __init__(self, T, A, C, dims, E, K=5, G=8):
        super().__init__()
        self.T, self.A, L, dk = T, A, len(dims), E + C
        self.fc1, self.fc2 = nn.Linear(E, 4 * E), nn.Linear(4 * E, E)
        j = torch.arange(E // 2, dtype=torch.float64)
        self.register_buffer("freq", 1000.0 * 10000.0 ** (-j / (E // 2)))
        self.enc = nn.ModuleList(
            nn.ModuleList([CondResBlock(dims[i - 1] if i else A, dims[i], dk, K, G),
                           CondResBlock(dims[i], dims[i], dk, K, G)]) for i in range(L))
        self.down = nn.ModuleList(nn.Conv1d(dims[i], dims[i], 3, 2, 1) for i in range(L - 1))
        self.mid = nn.ModuleList(CondResBlock(dims[-1], dims[-1], dk, K, G) for _ in range(2))
        # decoder stage j at level i = L - 1 - j: [x ; skip i] -> dims[i - 1], then upsample
        lv = list(range(L - 1, 0, -1))
        self.dec = nn.ModuleList(
            nn.ModuleList([CondResBlock(2 * dims[i], dims[i - 1], dk, K, G),
                           CondResBlock(dims[i - 1], dims[i - 1], dk, K, G)]) for i in lv)
        self.up = nn.ModuleList(nn.ConvTranspose1d(dims[i - 1], dims[i - 1], 4, 2, 1) for i in lv)
        self.fin_conv, self.fin_gn = nn.Conv1d(dims[0], dims[0], K, padding=K // 2), nn.GroupNorm(G, dims[0])
        self.out = nn.Conv1d(dims[0], A, 1)

    def forward(self, t, x, c):
        e = time_features(self.freq, t).to(x.dtype)
        km = F.mish(torch.cat([self.fc2(F.mish(self.fc1(e))), c], dim=1))
        h = x.view(-1, self.T, self.A).transpose(1, 2)
        skips = []
        for i, (b1, b2) in enumerate(self.enc):
            h = b2(b1(h, km), km)
            skips.append(h)
            if i < len(self.down):
                h = self.down[i](h)
        for b in self.mid:
            h = b(h, km)
        for (b1, b2), up in zip(self.dec, self.up):
            h = torch.cat([h, skips.pop()], dim=1)
            h = up(b2(b1(h, km), km))
        h = self.out(F.mish(self.fin_gn(self.fin_conv(h))))
        return h.transpose(1, 2).reshape(x.shape)


class DiT1D(nn.Module):
    """v(t, x, c) exactly as fc_tfm_impl.inc's forward: one token per chunk
    step, learned positions, pre-LayerNorm blocks (no affine, eps 1e-6)
    modulated by adaLN (shift, scale, gate; cond 0) or FiLM (shift, scale;
    cond 1) from act([time MLP(e) ; c]), or (cond 2, Diffusion Policy's
    transformer) unmodulated blocks with a cross-attention to memory tokens:
    a time token from act(time MLP(e)) and ctok condition tokens of c, plus
    their positions, through the memory MLP; GELU (tanh) throughout."""

    def __init__(self, T, A, C, D, L, H, Fh, E, cond=0, ctok=1):
        super().__init__()
        self.T, self.A, self.D, self.L, self.H, self.cond, self.E = T, A, D, L, H, cond, E
        self.nm = 6 if cond == 0 else 4
        act = lambda x: F.gelu(x, approximate="tanh")
        self.act = act
        self.fc1, self.fc2 = nn.Linear(E, 4 * E), nn.Linear(4 * E, E)
        j = torch.arange(E // 2, dtype=torch.float64)
        self.register_buffer("freq", 1000.0 * 10000.0 ** (-j / (E // 2)))
        self.inp = nn.Linear(A, D)
        self.pos = nn.Parameter(0.02 * torch.randn(T, D))
        if cond == 2:
            self.Tc = ctok if C else 0
            self.ctime = nn.Linear(E, D)
            self.ccond = nn.Linear(C // ctok, D) if C else None
            self.cpos = nn.Parameter(0.02 * torch.randn(1 + self.Tc, D))
            self.me1, self.me2 = nn.Linear(D, Fh), nn.Linear(Fh, D)
        self.qkv = nn.ModuleList(nn.Linear(D, 3 * D) for _ in range(L))
        self.proj = nn.ModuleList(nn.Linear(D, D) for _ in range(L))
        if cond == 2:
            self.xq = nn.ModuleList(nn.Linear(D, D) for _ in range(L))
            self.xkv = nn.ModuleList(nn.Linear(D, 2 * D) for _ in range(L))
            self.xproj = nn.ModuleList(nn.Linear(D, D) for _ in range(L))
        self.m1 = nn.ModuleList(nn.Linear(D, Fh) for _ in range(L))
        self.m2 = nn.ModuleList(nn.Linear(Fh, D) for _ in range(L))
        if cond != 2:
            self.mod = nn.Linear(E + C, (L * self.nm + 2) * D)
        self.out = nn.Linear(D, A)
        if cond == 0:  # adaLN-Zero
            for m in (self.mod, self.out):
                nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)

    def attend(self, q, k, v):
        """softmax(q k^T / sqrt(dh)) v per head; q (B, Tq, D), k and v (B, Tk, D)"""
        B, H, dh = q.shape[0], self.H, self.D // self.H
        heads = lambda z: z.reshape(B, z.shape[1], H, dh).transpose(1, 2)
        p = torch.softmax(heads(q) @ heads(k).transpose(-1, -2) / dh ** 0.5, dim=-1)
        return (p @ heads(v)).transpose(1, 2).reshape(B, q.shape[1], self.D)

    def forward(self, t, x, c):
        e = time_features(self.freq, t).to(x.dtype)
        km = self.act(torch.cat([self.fc2(self.act(self.fc1(e))), c], dim=1))
        B, T, D = x.shape[0], self.T, self.D
        h = self.inp(x.view(B, T, self.A)) + self.pos
        ln = lambda z: F.layer_norm(z, (D,), eps=1e-6)
        if self.cond == 2:
            tok = [self.ctime(km[:, :self.E]).unsqueeze(1)]
            if self.Tc:
                tok.append(self.ccond(c.reshape(B, self.Tc, -1)))
            mem = self.me2(self.act(self.me1(torch.cat(tok, dim=1) + self.cpos)))
            for l in range(self.L):
                h = h + self.proj[l](self.attend(*self.qkv[l](ln(h)).chunk(3, dim=2)))
                h = h + self.xproj[l](self.attend(self.xq[l](ln(h)), *self.xkv[l](mem).chunk(2, dim=2)))
                h = h + self.m2[l](self.act(self.m1[l](ln(h))))
            return self.out(ln(h)).reshape(x.shape)
        mod = self.mod(km).unsqueeze(1).chunk(self.L * self.nm + 2, dim=2)
        for l in range(self.L):
            m = mod[l * self.nm:(l + 1) * self.nm]
            sh1, sc1, g1, sh2, sc2, g2 = m if self.cond == 0 else (m[0], m[1], 1, m[2], m[3], 1)
            h = h + g1 * self.proj[l](self.attend(*self.qkv[l](ln(h) * (1 + sc1) + sh1).chunk(3, dim=2)))
            h = h + g2 * self.m2[l](self.act(self.m1[l](ln(h) * (1 + sc2) + sh2)))
        h = ln(h) * (1 + mod[-1]) + mod[-2]
        return self.out(h).reshape(x.shape)


def tfm_flat_params(net):
    """The parameters as fc_tfm's flat vector (fc_tfm_layout's order)."""
    parts = [net.fc1.weight, net.fc1.bias, net.fc2.weight, net.fc2.bias, net.inp.weight, net.inp.bias, net.pos]
    cross = net.cond == 2
    if cross:
        parts.extend([net.ctime.weight, net.ctime.bias])
        if net.ccond is not None:
            parts.extend([net.ccond.weight, net.ccond.bias])
        parts.extend([net.cpos, net.me1.weight, net.me1.bias, net.me2.weight, net.me2.bias])
    for l in range(net.L):
        mods = (net.qkv[l], net.proj[l], net.xq[l], net.xkv[l], net.xproj[l], net.m1[l], net.m2[l]) if cross else \
            (net.qkv[l], net.proj[l], net.m1[l], net.m2[l])
        for m in mods:
            parts.extend([m.weight, m.bias])
    if not cross:
        parts.extend([net.mod.weight, net.mod.bias])
    parts.extend([net.out.weight, net.out.bias])
    return torch.cat([p.detach().reshape(-1) for p in parts])


def unet_blocks(net):
    """The residual blocks in fc_unet's order: encoder, middle, decoder."""
    return [b for pair in net.enc for b in pair] + list(net.mid) + [b for pair in net.dec for b in pair]


def unet_flat_params(net):
    """The parameters as fc_unet's flat vector (fc_unet_layout's order):
    Conv1d weights (out, K, in), ConvTranspose1d weights (K, out, in), the
    blocks' FiLM layers as one (sum 2 out, dk) matrix after the decoder."""
    conv = lambda w: w.permute(0, 2, 1)
    parts = []

    def block(b):
        parts.extend([conv(b.conv1.weight), b.conv1.bias, b.gn1.weight, b.gn1.bias,
                      conv(b.conv2.weight), b.conv2.bias, b.gn2.weight, b.gn2.bias])
        if b.res is not None:
            parts.extend([b.res.weight[:, :, 0], b.res.bias])

    parts.extend([net.fc1.weight, net.fc1.bias, net.fc2.weight, net.fc2.bias])
    for i, pair in enumerate(net.enc):
        for b in pair:
            block(b)
        if i < len(net.down):
            parts.extend([conv(net.down[i].weight), net.down[i].bias])
    for b in net.mid:
        block(b)
    for pair, up in zip(net.dec, net.up):
        for b in pair:
            block(b)
        parts.extend([up.weight.permute(2, 1, 0), up.bias])
    blocks = unet_blocks(net)
    parts.extend([torch.cat([b.film.weight for b in blocks]), torch.cat([b.film.bias for b in blocks])])
    parts.extend([conv(net.fin_conv.weight), net.fin_conv.bias, net.fin_gn.weight, net.fin_gn.bias,
                  net.out.weight[:, :, 0], net.out.bias])
    return torch.cat([p.detach().reshape(-1) for p in parts])


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


def parse_unet(spec):
    """"T,A,C,D0-D1-D2,TEMB" -> the U-Net's sizes"""
    T, A, C, dims, E = spec.split(",")
    return int(T), int(A), int(C), [int(d) for d in dims.split("-")], int(E)


def parse_tfm(spec):
    """"T,A,C,D,L,H,F,E,COND[,CTOK]" -> the transformer's sizes (COND 2, cross: CTOK condition tokens)"""
    return [int(v) for v in spec.split(",")]


def main():
    argv = sys.argv[1:]
    json_out = "--json" in argv
    unet = parse_unet(argv[argv.index("--unet") + 1]) if "--unet" in argv else None
    tfm = parse_tfm(argv[argv.index("--tfm") + 1]) if "--tfm" in argv else None
    torch.manual_seed(0)
    set_blas = openblas_setter()
    # (torch intra-op threads, OpenBLAS threads); 2 + 2 would oversubscribe 2 cores
    settings = [(1, 1), (2, 1)] + ([(1, 2)] if set_blas else [])

    def use(s):
        torch.set_num_threads(s[0])
        if set_blas:
            set_blas(s[1])

    if unet:
        T, A, Cu, dims, E = unet
        net, Dn, Cn = UNet1D(T, A, Cu, dims, E), T * A, Cu
        train_n, screen_n, fwd_n = (10, 2), (30, 5), 500
    elif tfm:
        T, A, Ct = tfm[:3]
        net, Dn, Cn = DiT1D(*tfm), T * A, Ct
        train_n, screen_n, fwd_n = (10, 2), (30, 5), 500
    else:
        net, Dn, Cn = VelocityNet(), D, C
        train_n, screen_n, fwd_n = (30, 3), (300, 50), 2000
    params = list(net.parameters())
    n_params = sum(p.numel() for p in params)
    if not unet and not tfm:
        assert n_params == N_PARAMS, (n_params, N_PARAMS)  # = fc_mlp_nparams() on the C side
    log(f"bench_torch: torch {torch.__version__}, {n_params} parameters, batch {B}, "
        f"{os.cpu_count()} cpus, OpenBLAS thread control {'yes' if set_blas else 'no'}")

    # ---- training step: FM loss, backward, clip, AdamW, EMA ----
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-6, foreach=True)
    ema = [p.detach().clone() for p in params]
    x0, x1, c, t = torch.randn(B, Dn), torch.randn(B, Dn), torch.randn(B, Cn), torch.rand(B)
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
        train[s] = B / median_s(train_step, *train_n)
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
                screen[s, mode] = median_s(lambda: m(*a1), *screen_n) * 1e6
                log(f"  fwd b1 torch threads {s[0]}, BLAS threads {s[1]}, {mode:5s}: "
                    f"{screen[s, mode]:8.1f} us (screen)")
        s_fwd, mode = min(screen, key=screen.get)
        use(s_fwd)
        fwd_us = median_s(lambda: modes[mode](*a1), fwd_n, 100) * 1e6
    # the hand-written matrix-vector forward (MLP only), in its best thread setting
    mv_us = None
    if not unet and not tfm:
        with torch.inference_mode():
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
    summary = (f"PyTorch {torch.__version__} {'U-Net' if unet else 'transformer' if tfm else 'MLP'}: training {train[best_train]:.0f} "
               f"samples/s ({desc(best_train)}); batch-1 forward {fwd_us:.1f} us ({mode}, {desc(s_fwd)})"
               + (f"; hand-written addmv batch-1 forward {mv_us:.1f} us" if mv_us is not None else ""))
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
        "torch_fwd_b1_addmv_us": round(mv_us, 2) if mv_us is not None else None,
        "params": n_params,
        "batch": B,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
