#!/usr/bin/env python3
"""Writes tests/fixtures/tfm_torch.txt: small transformers evaluated by
PyTorch (tools/bench_torch.py's DiT1D), in double precision, for
test_tfm.tfm_matches_pytorch, so the test run itself does not need torch.

Usage: /usr/bin/python3 tests/make_tfm_fixture.py   (Debian's python3-torch)

Per case: the config, fc_tfm's flat parameter vector (tfm_flat_params), the
inputs t, x, c, a cotangent dy, and PyTorch's y = v(t, x, c) and gradients
of sum(dy * y) for the parameters (same flat order), x and c. One line per
array: "name count values...".
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from bench_torch import DiT1D, tfm_flat_params  # noqa: E402

# T, A, C, width, depth, heads, ffn, temb, cond (0 adaLN, 1 FiLM), B
CASES = [
    (4, 2, 3, 8, 2, 2, 12, 4, 0, 2),  # adaLN-Zero, two blocks of two heads
    (3, 3, 0, 6, 1, 3, 10, 6, 1, 2),  # FiLM, no condition, three heads of 2
]


def main():
    torch.manual_seed(1234)
    out = os.path.join(HERE, "fixtures", "tfm_torch.txt")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    lines = [f"# written by tests/make_tfm_fixture.py with PyTorch {torch.__version__} in double precision: "
             "do not edit"]
    for T, A, C, D, L, H, Fh, E, cond, B in CASES:
        net = DiT1D(T, A, C, D, L, H, Fh, E, cond).double()
        with torch.no_grad():
            for p in net.parameters():  # off adaLN-Zero's zeros, float-representable
                p.add_(0.2 * torch.randn_like(p))
                p.copy_(p.float().double())
        t = torch.rand(B).double()
        x = torch.randn(B, T * A).double().requires_grad_()
        c = torch.randn(B, C).double().requires_grad_()
        dy = torch.randn(B, T * A).double()
        y = net(t, x, c)
        (y * dy).sum().backward()
        grads = DiT1D(T, A, C, D, L, H, Fh, E, cond).double()
        for pg, p in zip(grads.parameters(), net.parameters()):
            pg.data.copy_(p.grad)
        lines.append(f"case {T} {A} {C} {D} {L} {H} {Fh} {E} {cond} {B}")
        arrays = [("params", tfm_flat_params(net)), ("t", t), ("x", x.detach()), ("c", c.detach()), ("dy", dy),
                  ("y", y.detach()), ("grad", tfm_flat_params(grads)), ("dx", x.grad),
                  ("dc", c.grad if c.grad is not None else torch.zeros(B, C))]
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
