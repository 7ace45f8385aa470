#!/usr/bin/env python3
"""Writes tests/fixtures/unet_torch.txt: small U-Nets evaluated by PyTorch
(tools/bench_torch.py's UNet1D, Diffusion Policy's ConditionalUnet1D with FiLM
(1 + scale)), in double precision, for test_unet.unet_matches_pytorch, so the
test run itself does not need torch.

Usage: /usr/bin/python3 tests/make_unet_fixture.py   (Debian's python3-torch)

Per case: the config, fc_unet's flat parameter vector (unet_flat_params), the
inputs t, x, c, a cotangent dy, and PyTorch's y = v(t, x, c) and gradients
of sum(dy * y) for the parameters (same flat order), x and c. One line per
array: "name count values...".
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from bench_torch import UNet1D, unet_flat_params  # noqa: E402

# T, A, C, dims, kernel, groups, temb, B
CASES = [
    (8, 2, 3, [2, 4, 6], 3, 2, 4, 2),  # 3 levels: downsampling, upsampling, 1x1 residuals
    (4, 3, 0, [4, 2], 5, 2, 2, 2),     # 2 levels, no condition, channels shrinking with depth
]


def main():
    torch.manual_seed(1234)
    out = os.path.join(HERE, "fixtures", "unet_torch.txt")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    lines = [f"# written by tests/make_unet_fixture.py with PyTorch {torch.__version__} in double precision: "
             "do not edit"]
    for T, A, C, dims, K, G, E, B in CASES:
        net = UNet1D(T, A, C, dims, E, K, G).double()
        with torch.no_grad():  # GroupNorm's affine off its 1 / 0 start, so that it is checked
            for m in net.modules():
                if isinstance(m, torch.nn.GroupNorm):
                    m.weight.add_(0.2 * torch.randn_like(m.weight))
                    m.bias.add_(0.2 * torch.randn_like(m.bias))
            for p in net.parameters():  # float-representable, so that the float network holds them exactly
                p.copy_(p.float().double())
        t = torch.rand(B).double()
        x = torch.randn(B, T * A).double().requires_grad_()
        c = torch.randn(B, C).double().requires_grad_()
        dy = torch.randn(B, T * A).double()
        y = net(t, x, c)
        (y * dy).sum().backward()
        # the gradients in the flat order: the same exporter on a copy holding them
        grads = UNet1D(T, A, C, dims, E, K, G).double()
        for pg, p in zip(grads.parameters(), net.parameters()):
            pg.data.copy_(p.grad)
        L = len(dims)
        d4 = dims + [0] * (4 - L)
        lines.append(f"case {T} {A} {C} {L} {' '.join(map(str, d4))} {K} {G} {E} {B}")
        arrays = [("params", unet_flat_params(net)), ("t", t), ("x", x.detach()), ("c", c.detach()), ("dy", dy),
                  ("y", y.detach()), ("grad", unet_flat_params(grads)), ("dx", x.grad), ("dc", c.grad)]
        for name, v in arrays:
            v = v.reshape(-1).tolist()
            digits = 9 if name in ("params", "t", "x", "c", "dy") else 13  # inputs are floats
            lines.append(f"{name} {len(v)} " + " ".join(f"{a:.{digits}g}" for a in v))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
