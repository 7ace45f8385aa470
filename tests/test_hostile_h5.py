#!/usr/bin/python3
"""Hostile HDF5 files against `lfp info` and `lfp train`.

    /usr/bin/python3 tests/test_hostile_h5.py build/lfp

Each case is a small, valid Robomimic-style file (written by h5py) broken in one
way: sizes beyond lfp's bounds (ds_file.h: DS_MAX_RANK, DS_MAX_ROWS, DS_MAX_COLS,
DS_MAX_BYTES, DS_MAX_DEMOS, DS_MAX_STR) declared cheaply through chunked storage
with no data written, ranks up to 32, dtypes that are not numbers, string
attributes of the wrong shape, links to missing objects or to other files,
values stored outside the file, demos that are not groups.  For each case and
each command (`lfp info FILE`, `lfp train --data FILE ...`) the check is: exit
code 1 (not a signal, not 0), exactly one line on stderr, naming the file and
the demo / key at fault.  The valid base file must pass `lfp info` (exit 0).

tests/fuzz/make_h5_corpus.py imports CASES and write_base to build the fuzz
seed corpus, so the classes tried here and the seeds are the same.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import Results  # noqa: E402

TIMEOUT_S = 60
HUGE = 2 ** 32 + 7          # the column count: truncated to 7 by an int
KEYS = "object,robot0_eef_pos"


def write_base(path, lens=(4, 5, 3), next_obs=True, mutate=None, libver=None, small=False):
    """A small valid file: demos with actions (N, 2), states (N, 3), rewards,
    dones, obs/next_obs object (N, 3) and robot0_eef_pos (N, 2), masks
    train/valid, env_args naming no lfp task (train needs --obs-keys).
    small (for fuzz seeds): no dones and no robot0_eef_pos, newest format."""
    if small:
        lens, libver = lens[:3], "latest"
    rng = np.random.default_rng(0)
    kw = {"libver": libver} if libver else {}
    with h5py.File(path, "w", **kw) as f:
        data = f.create_group("data")
        for i, n in enumerate(lens):
            g = data.create_group(f"demo_{i}")
            g.create_dataset("actions", data=rng.uniform(-1, 1, (n, 2)))
            g.create_dataset("states", data=rng.standard_normal((n, 3)))
            g.create_dataset("rewards", data=np.zeros(n))
            if not small:
                g.create_dataset("dones", data=np.zeros(n, dtype=np.int64))
            for key, dim in (("object", 3),) + (() if small else (("robot0_eef_pos", 2),)):
                g.create_dataset(f"obs/{key}", data=rng.standard_normal((n, dim)))
                if next_obs:
                    g.create_dataset(f"next_obs/{key}", data=rng.standard_normal((n, dim)))
            g.attrs["num_samples"] = n
            g.attrs["model_file"] = "<mujoco/>"
        data.attrs["total"] = sum(lens)
        data.attrs["env_args"] = json.dumps({"env_name": "NoSuchTask", "type": 1, "env_kwargs": {}})
        m = f.create_group("mask")
        m.create_dataset("train", data=np.array([f"demo_{i}" for i in range(len(lens) - 1)], dtype="S8"))
        m.create_dataset("valid", data=np.array([f"demo_{len(lens) - 1}"], dtype="S8"))
        if mutate is not None:
            mutate(f)


def _replace(f, path, **kw):
    del f[path]
    return f.create_dataset(path, **kw)


def _huge(f, path, shape, dtype="f8"):
    """A dataset of any declared extent that costs nothing: chunked, never written."""
    del f[path]
    f.create_dataset(path, shape=shape, dtype=dtype, chunks=tuple(1 for _ in shape))


def _all_demos(f, fn):
    for name in f["data"]:
        fn(f["data"][name])


def _only_demo_0(f):
    for name in ("demo_1", "demo_2"):
        del f["data"][name]
    del f["mask"]
    f["data"].attrs["total"] = f["data/demo_0"].attrs["num_samples"]


def _huge_cols(g):
    n = g["actions"].shape[0]
    del g["actions"]
    g.create_dataset("actions", shape=(n, HUGE), dtype="f8", chunks=(1, 1))


def _huge_demo(f, demo, rows):
    """Every dataset of one demo `rows` long (num_samples dropped: it would be refused first)."""
    g = f["data"][demo]

    def grow(name, obj):
        if isinstance(obj, h5py.Dataset):
            shape = (rows,) + obj.shape[1:]
            dtype = obj.dtype
            del g[name]
            g.create_dataset(name, shape=shape, dtype=dtype, chunks=(1,) * len(shape))
    names = []
    g.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    for n in names:
        grow(n, g[n])
    del g.attrs["num_samples"]


def _str_type(size):
    t = h5py.h5t.C_S1.copy()
    t.set_size(size)
    return t


def _raw_dataset(f, path, tid, shape, chunked=True):
    """A dataset of an arbitrary HDF5 type (low level: numpy cannot spell some)."""
    parent, name = path.rsplit("/", 1)
    if name in f[parent]:
        del f[path]
    space = h5py.h5s.create_simple(shape)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    if chunked:
        dcpl.set_chunk(tuple(1 for _ in shape))
    h5py.h5d.create(f[parent].id, name.encode(), tid, space, dcpl=dcpl)


def _vlen_attr(obj, name, values):
    dt = h5py.string_dtype()
    obj.attrs.create(name, np.array(values, dtype=object), dtype=dt)


def _virtual(f, path):
    layout = h5py.VirtualLayout(shape=(4, 2), dtype="f8")
    layout[:] = h5py.VirtualSource("/nonexistent/other.hdf5", "x", shape=(4, 2))
    del f[path]
    f.create_virtual_dataset(path, layout, fillvalue=0)


# (name, what it is, mutate(f) on the base file, words the message must hold,
#  base lens).  Every case must make both `lfp info` and `lfp train` exit 1.
CASES = [
    ("huge_cols", "one demo, actions (4, 2^32 + 7) declared, never written (the issue's segfault)",
     lambda f: (_only_demo_0(f), _all_demos(f, _huge_cols)), ["demo_0", "actions", "4294967303"]),
    ("huge_rows", "every dataset of demo_1 2^40 rows long, never written",
     lambda f: _huge_demo(f, "demo_1", 2 ** 40), ["demo_1", "1099511627776 steps"]),
    ("unwritten_rows", "every dataset of demo_1 10^8 rows long: within the row bound, never written",
     lambda f: _huge_demo(f, "demo_1", 10 ** 8), ["demo_1", "never written"]),
    ("rank9_actions", "actions of rank 9",
     lambda f: _replace(f, "data/demo_0/actions", data=np.zeros((4, 2, 1, 1, 1, 1, 1, 1, 1))),
     ["demo_0", "actions", "rank 9", "(4, 2, 1, 1, 1, 1, 1, 1, 1)"]),
    ("rank32_obs", "an obs key of rank 32 (HDF5's largest)",
     lambda f: _huge(f, "data/demo_0/obs/object", (4,) + (1,) * 31), ["demo_0", "object", "rank 32"]),
    ("scalar_actions", "actions a scalar dataset",
     lambda f: _replace(f, "data/demo_0/actions", data=3.0), ["demo_0", "actions"]),
    ("zero_cols", "actions (4, 0)",
     lambda f: _all_demos(f, lambda g: _replace(g, "actions", shape=(g["actions"].shape[0], 0), dtype="f8")),
     ["demo_0", "actions"]),
    ("string_actions", "actions of fixed-width strings",
     lambda f: _replace(f, "data/demo_0/actions", data=np.array([[b"ab", b"cd"]] * 4)), ["demo_0", "actions"]),
    ("vlen_actions", "actions of variable-length strings",
     lambda f: _replace(f, "data/demo_0/actions", data=np.array([["a", "b"]] * 4, dtype=object),
                        dtype=h5py.string_dtype()), ["demo_0", "actions"]),
    ("compound_actions", "actions of a compound type",
     lambda f: _replace(f, "data/demo_0/actions", data=np.zeros((4, 2), dtype=[("a", "f8"), ("b", "i4")])),
     ["demo_0", "actions"]),
    ("enum_actions", "actions of an enum type",
     lambda f: _replace(f, "data/demo_0/actions", data=np.zeros((4, 2), dtype="i1"),
                        dtype=h5py.enum_dtype({"a": 0, "b": 1}, basetype="i1")), ["demo_0", "actions"]),
    ("opaque_actions", "actions of an opaque type",
     lambda f: _replace(f, "data/demo_0/actions", data=np.zeros((4, 2), dtype="V8")), ["demo_0", "actions"]),
    ("string_obs", "an obs key of strings",
     lambda f: _replace(f, "data/demo_2/obs/object", data=np.array([[b"x"] * 3] * 3)), ["demo_2", "object"]),
    ("huge_obs_dim", "an obs key (4, 65536, 65536): per-step values overflow an int",
     lambda f: _huge(f, "data/demo_0/obs/object", (4, 65536, 65536)), ["demo_0", "object"]),
    ("huge_next_obs", "a next_obs key (5, 2^31) never written",
     lambda f: _huge(f, "data/demo_1/next_obs/object", (5, 2 ** 31)), ["demo_1", "next_obs", "object"]),
    ("states_odd", "states (5, 3, 3) in demo_1, (N, 3) elsewhere",
     lambda f: _replace(f, "data/demo_1/states", data=np.zeros((5, 3, 3))), ["demo_1", "states"]),
    ("states_rows", "states with 2 rows where the demo has 5",
     lambda f: _replace(f, "data/demo_1/states", data=np.zeros((2, 3))), ["demo_1", "states"]),
    ("rewards_2d", "rewards (N, 4)",
     lambda f: _replace(f, "data/demo_0/rewards", data=np.zeros((4, 4))), ["demo_0", "rewards"]),
    ("mask_huge_count", "mask/train of 2^40 names, never written",
     lambda f: _raw_dataset(f, "mask/train", _str_type(8), (2 ** 40,)), ["mask/train"]),
    ("mask_huge_width", "mask/train of 2^31-byte strings",
     lambda f: _raw_dataset(f, "mask/train", _str_type(2 ** 31), (2,)), ["mask/train"]),
    ("mask_vlen_huge", "mask/valid of 2^40 variable-length strings, never written",
     lambda f: _raw_dataset(f, "mask/valid", h5py.h5t.py_create(h5py.string_dtype(), logical=True), (2 ** 40,)),
     ["mask/valid"]),
    ("mask_ints", "mask/train of integers",
     lambda f: _replace(f, "mask/train", data=np.arange(2)), ["mask/train"]),
    ("env_args_array", "env_args an array of three variable-length strings",
     lambda f: _vlen_attr(f["data"], "env_args", ["a", "b", "c"]), ["env_args"]),
    ("env_args_int", "env_args an integer",
     lambda f: f["data"].attrs.__setitem__("env_args", 7), ["env_args"]),
    ("env_args_huge", "env_args a fixed-width string attribute of 5 MiB",
     lambda f: f["data"].attrs.__setitem__("env_args", np.bytes_(b"{" + b" " * (5 << 20) + b"}")), ["env_args"]),
    ("num_samples_str", "num_samples a string",
     lambda f: f["data/demo_1"].attrs.__setitem__("num_samples", "five"), ["demo_1", "num_samples"]),
    ("num_samples_huge", "num_samples 2^62",
     lambda f: f["data/demo_1"].attrs.__setitem__("num_samples", 2 ** 62), ["demo_1", "num_samples"]),
    ("total_array", "/data attribute total an array",
     lambda f: f["data"].attrs.__setitem__("total", np.arange(3)), ["total"]),
    ("model_file_array", "model_file an array of strings",
     lambda f: _vlen_attr(f["data/demo_2"], "model_file", ["a", "b"]), ["demo_2", "model_file"]),
    ("demo_not_group", "data/demo_1 a dataset, not a group",
     lambda f: (f["data"].__delitem__("demo_1"), f["data"].create_dataset("demo_1", data=np.zeros(3))),
     ["demo_1"]),
    ("dangling_actions", "actions a soft link to a missing object",
     lambda f: (f["data/demo_0"].__delitem__("actions"),
                f["data/demo_0"].__setitem__("actions", h5py.SoftLink("/nowhere"))), ["demo_0", "actions"]),
    ("external_link", "actions an external link to another file",
     lambda f: (f["data/demo_0"].__delitem__("actions"),
                f["data/demo_0"].__setitem__("actions", h5py.ExternalLink("/tmp/lfp-other.hdf5", "/x"))),
     ["demo_0", "actions"]),
    ("external_storage", "actions stored in an external raw file",
     lambda f: _replace(f, "data/demo_0/actions", shape=(4, 2), dtype="f8",
                        external=[("/dev/zero", 0, 64)]), ["demo_0", "actions"]),
    ("virtual_actions", "actions a virtual dataset mapping another file",
     lambda f: _virtual(f, "data/demo_0/actions"), ["demo_0", "actions"]),
    ("gheap_huge", "the global heap of env_args damaged: an object of 2^40 bytes (libhdf5 copies past it)",
     None, ["global heap"]),
    ("gheap_loop", "the global heap of env_args damaged: a free-space object of size 0 (libhdf5 loops forever)",
     None, ["global heap"]),
    ("mask_heap_id", "a variable-length mask/train entry naming a heap object that does not exist",
     None, ["mask/train", "entry 1"]),
    ("hardlinked_demos", "1000 demos that are hard links to one demo of 2^17 rows of deflated zeros",
     None, ["hard links"]),
]


def _patch_gheap(path, loop):
    """Damage the first global heap collection (where h5py keeps variable-length
    strings: env_args, model_file): its first object claims 2^40 bytes, or
    (loop) becomes a free-space object of size 0, which HDF5 walks forever."""
    with open(path, "r+b") as fh:
        b = bytearray(fh.read())
        a = b.find(b"GCOL\x01")
        assert a >= 0, "no global heap in the base file"
        obj = a + 16                       # 8-byte lengths: the header is 16 bytes
        if loop:
            b[obj:obj + 2] = b"\x00\x00"
            b[obj + 8:obj + 16] = (0).to_bytes(8, "little")
        else:
            b[obj + 8:obj + 16] = (2 ** 40).to_bytes(8, "little")
        fh.seek(0)
        fh.write(b)


def _vlen_masks(f):
    del f["mask"]
    dt = h5py.string_dtype()
    f.create_dataset("mask/train", data=np.array(["demo_0", "demo_1"], dtype=object), dtype=dt)
    f.create_dataset("mask/valid", data=np.array(["demo_2"], dtype=object), dtype=dt)


def _patch_mask_heap_id(path):
    """mask/train's second heap ID names object 999 of its collection, which
    does not exist (libhdf5 indexes past its object table)."""
    with h5py.File(path, "r") as f:
        at = f["mask/train"].id.get_offset()
    with open(path, "r+b") as fh:
        fh.seek(at + 16 + 12)              # entry 1: 4-byte length, 8-byte address, 4-byte index
        fh.write((999).to_bytes(4, "little"))


def write_case(path, name, small=False):
    """Write case `name` of CASES to path (small: on the fuzz seeds' base)."""
    for n, _, mutate, _, in CASES:
        if n != name:
            continue
        if name == "mask_heap_id":
            write_base(path, lens=(3, 2, 2) if small else (4, 5, 3), next_obs=not small, small=small,
                       mutate=_vlen_masks)
            _patch_mask_heap_id(path)
        elif name in ("gheap_huge", "gheap_loop"):
            write_base(path, lens=(3, 2, 2) if small else (4, 5, 3), next_obs=not small, small=small)
            _patch_gheap(path, name == "gheap_loop")
        elif name == "hardlinked_demos":
            def links(f):
                g = f["data/demo_0"]
                names = []
                g.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
                for n in names:
                    shape = (2 ** 17,) + g[n].shape[1:]
                    del g[n]
                    g.create_dataset(n, data=np.zeros(shape), chunks=shape, compression="gzip")
                g.attrs["num_samples"] = 2 ** 17
                for i in range(1, 1000):
                    if f"demo_{i}" in f["data"]:
                        del f[f"data/demo_{i}"]
                    f["data"][f"demo_{i}"] = g
                del f["mask"]
            write_base(path, lens=(1,), mutate=links, small=small)
        else:  # attributes over 64 KiB need the newer object headers
            write_base(path, lens=(3, 2, 2) if small else (4, 5, 3), next_obs=not small or name == "huge_next_obs",
                       mutate=mutate, libver="latest" if name == "env_args_huge" else None, small=small)
        return
    raise KeyError(name)


def run(args):
    try:
        p = subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {TIMEOUT_S} s"


def check_refusal(res, tag, rc, err, path, words):
    res.check(f"{tag}: exit 1", rc == 1,
              "timed out" if rc is None else (f"killed by signal {-rc}" if rc < 0 else f"exit {rc}"))
    lines = [l for l in err.split("\n") if l.strip()]
    res.check(f"{tag}: one line on stderr", len(lines) == 1, f"got {len(lines)}: {err[-600:]!r}")
    msg = err.replace(path, "")
    missing = [w for w in words if w not in msg]
    res.check(f"{tag}: names the file and {', '.join(words)}", path in err and not missing,
              f"missing {missing} in {err.strip()[:400]!r}", note=err.strip())


def main():
    if len(sys.argv) != 2:
        print("usage: /usr/bin/python3 tests/test_hostile_h5.py PATH/TO/lfp")
        return 1
    lfp = os.path.abspath(sys.argv[1])
    res = Results()
    with tempfile.TemporaryDirectory(prefix="lfp_hostile_") as tmp:
        base = os.path.join(tmp, "base.hdf5")
        write_base(base)
        rc, _, err = run([lfp, "info", base])
        res.check("base file: lfp info exit 0", rc == 0, f"exit {rc}: {err.strip()}")
        for name, what, _, words, in CASES:
            path = os.path.join(tmp, f"{name}.hdf5")
            try:
                write_case(path, name)
            except Exception as e:  # h5py must be able to write every case
                res.check(f"{name}: h5py writes it", False, repr(e))
                continue
            rc, _, err = run([lfp, "info", path])
            check_refusal(res, f"{name} ({what}): lfp info", rc, err, path, words)
            rc, _, err = run([lfp, "train", "--data", path, "--out", os.path.join(tmp, "p.lfp"),
                              "--obs-keys", KEYS, "--steps", "1"])
            check_refusal(res, f"{name} ({what}): lfp train", rc, err, path, words)
    print(f"{res.passed} passed, {res.failed} failed")
    return 0 if res.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
