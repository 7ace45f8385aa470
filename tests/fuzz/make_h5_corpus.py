#!/usr/bin/python3
"""Write the seed corpus of fuzz_h5 (tests/fuzz_h5.c) into tests/fuzz/h5/:

    /usr/bin/python3 tests/fuzz/make_h5_corpus.py [OUTDIR]

Two valid files (fixed-width masks and contiguous data; variable-length masks
and chunked, deflated data) and hostile ones from the classes of
tests/test_hostile_h5.py, each on that script's small base (about 12 KB, under
fuzz_h5's -max_len). h5py writes them; the files are committed so that the
replay (fuzz.h5_seeds) and the fuzz run need no Python.
"""
import os
import sys

import numpy as np
import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import test_hostile_h5 as hostile  # noqa: E402

HOSTILE = ["huge_cols", "huge_rows", "unwritten_rows", "rank9_actions", "string_actions", "huge_obs_dim", "huge_next_obs", "states_odd", "mask_huge_count",
           "mask_vlen_huge", "env_args_array", "model_file_array", "demo_not_group", "dangling_actions",
           "external_link", "virtual_actions", "gheap_huge", "gheap_loop"]


def chunked_vlen(f):
    """A2-style: chunked gzip datasets and variable-length string masks."""
    for name in list(f["data"]):
        g = f["data"][name]
        for key in ("actions", "obs/object"):
            x = g[key][()]
            del g[key]
            g.create_dataset(key, data=x, chunks=(1, x.shape[1]), compression="gzip", shuffle=True)
    del f["mask"]
    dt = h5py.string_dtype()
    f.create_dataset("mask/train", data=np.array(["demo_0", "demo_1"], dtype=object), dtype=dt)
    f.create_dataset("mask/valid", data=np.array(["demo_2"], dtype=object), dtype=dt)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "h5")
    os.makedirs(out, exist_ok=True)
    hostile.write_base(os.path.join(out, "valid.hdf5"), lens=(3, 2, 2), next_obs=False, small=True)
    hostile.write_base(os.path.join(out, "valid_chunked_vlen.hdf5"), lens=(3, 2, 2), next_obs=False, small=True,
                       mutate=chunked_vlen)
    for name in HOSTILE:
        hostile.write_case(os.path.join(out, f"{name}.hdf5"), name, small=True)
    for fn in sorted(os.listdir(out)):
        print(f"{os.path.getsize(os.path.join(out, fn)):6d}  {fn}")


if __name__ == "__main__":
    main()
