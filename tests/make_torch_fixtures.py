#!/usr/bin/env python3
"""Writes the PyTorch fixtures of the chunk networks, so that the test runs
themselves do not need torch:
  tests/fixtures/unet_torch.txt  small U-Nets (tools/bench_torch.py's UNet1D,
                                 Diffusion Policy's ConditionalUnet1D with FiLM
                                 (1 + scale)), for test_unet.unet_matches_pytorch
  tests/fixtures/tfm_torch.txt   small transformers (bench_torch.py's DiT1D),
                                 for test_tfm.tfm_matches_pytorch
in double precision.

Usage: /usr/bin/python3 tests/make_torch_fixtures.py   (Debian's python3-torch)

Per case: the config, the network's flat parameter vector in flowcore's
layout, the inputs t, x, c, a cotangent dy, and PyTorch's y = v(t, x, c) and
gradients of sum(dy * y) for the parameters (same flat order), x and c. One
line per array: "name count values...".
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from bench_torch import DiT1D, UNet1D, tfm_flat_params, unet_flat_params  # noqa: E402

# T, A, C, dims, kernel, groups, temb, B
UNET_CASES = [
    (8, 2, 3, [2, 4, 6], 3, 2, 4, 2),  # 3 levels: downsampling, upsampling, 1x1 residuals
    (4, 3, 0, [4, 2], 5, 2, 2, 2),     # 2 levels, no condition, channels shrinking with depth
]
# T, A, C, width, depth, heads, ffn, temb, cond (0 adaLN, 1 FiLM, 2 cross), condition tokens, B
TFM_CASES = [
    (4, 2, 3, 8, 2, 2, 12, 4, 0, 1, 2),  # adaLN-Zero, two blocks of two heads
    (3, 3, 0, 6, 1, 3, 10, 6, 1, 1, 2),  # FiLM, no condition, three heads of 2
    (4, 2, 6, 8, 2, 2, 12, 4, 2, 2, 3),  # cross-attention to a time token and 2 condition tokens of 3
]


def unet_case(case):
    T, A, C, dims, K, G, E, B = case
    build = lambda: UNet1D(T, A, C, dims, E, K, G).double()
    net = build()
    with torch.no_grad():  # GroupNorm's affine off its 1 / 0 start, so that it is checked
        for m in net.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.add_(0.2 * torch.randn_like(m.weight))
                m.bias.add_(0.2 * torch.randn_like(m.bias))
    d4 = dims + [0] * (4 - len(dims))
    return net, build, unet_flat_params, f"case {T} {A} {C} {len(dims)} {' '.join(map(str, d4))} {K} {G} {E} {B}", T * A, C, B


def tfm_case(case):
    T, A, C, D, L, H, Fh, E, cond, ctok, B = case
    build = lambda: DiT1D(T, A, C, D, L, H, Fh, E, cond, ctok).double()
    net = build()
    with torch.no_grad():  # off adaLN-Zero's zeros
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return net, build, tfm_flat_params, f"case {T} {A} {C} {D} {L} {H} {Fh} {E} {cond} {ctok} {B}", T * A, C, B


def write(name, cases, make):
    torch.manual_seed(1234)
    out = os.path.join(HERE, "fixtures", name)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    lines = [f"# written by tests/make_torch_fixtures.py with PyTorch {torch.__version__} in double precision: "
             "do not edit"]
    for case in cases:
        net, build, flat, head, Dx, C, B = make(case)
        with torch.no_grad():  # float-representable, so that the float network holds them exactly
            for p in net.parameters():
                p.copy_(p.float().double())
        t = torch.rand(B).double()
        x = torch.randn(B, Dx).double().requires_grad_()
        c = torch.randn(B, C).double().requires_grad_()
        dy = torch.randn(B, Dx).double()
        y = net(t, x, c)
        (y * dy).sum().backward()
        # the gradients in the flat order: the same exporter on a copy holding them
        grads = build()
        for pg, p in zip(grads.parameters(), net.parameters()):
            pg.data.copy_(p.grad)
        lines.append(head)
        arrays = [("params", flat(net)), ("t", t), ("x", x.detach()), ("c", c.detach()), ("dy", dy),
                  ("y", y.detach()), ("grad", flat(grads)), ("dx", x.grad),
                  ("dc", c.grad if c.grad is not None else torch.zeros(B, C))]
        for aname, v in arrays:
            v = v.reshape(-1).tolist()
            digits = 9 if aname in ("params", "t", "x", "c", "dy") else 13  # inputs are floats
            lines.append(f"{aname} {len(v)} " + " ".join(f"{a:.{digits}g}" for a in v))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {out}")


def main():
    write("unet_torch.txt", UNET_CASES, unet_case)
    write("tfm_torch.txt", TFM_CASES, tfm_case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
