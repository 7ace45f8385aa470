#!/usr/bin/python3
"""Interoperability of lfp's Robomimic HDF5 reader/writer with h5py.

Run it with Debian's interpreter (it needs python3-numpy and python3-h5py, which
tools/setup.sh installs) and the path of the `ds_tool` test program:

    /usr/bin/python3 tests/test_h5py_interop.py build/tests/ds_tool

What it checks (one line per check, then "N passed, M failed"; exit 0 only if
everything passed, 1 otherwise -- this test is never skipped):

A.  h5py -> lfp.  h5py writes a file in robomimic's layout and types: 12 demos
    demo_0..demo_11 created in a scrambled order, lengths 1..30 (one of length 1),
    obs keys object (N,10) f64, robot0_eef_pos (N,3) f64, robot0_eef_quat (N,4)
    f32, robot0_gripper_qpos (N,2) f64 (plus robot0_joint_pos, which is never
    requested), next_obs for each key, actions (N,7) f64 in [-1, 1], states,
    rewards, dones (int64), /data attrs total and env_args (JSON string), masks
    train/valid as fixed-width byte strings and "hard" as variable-length strings.
    `ds_tool dump` with the keys in an order different from the file's must give
    the demos in integer order (demo_2 before demo_10), the right lengths and
    total, obs.f32 and actions.f32 bit-equal to numpy's float32 cast, env_args
    unchanged and the three masks.
A2. The same data written the way newer tools may write it (libver="latest",
    creation-order tracking, chunked gzip-compressed datasets) loads the same.
B.  lfp -> h5py.  `ds_tool write FILE 4` must produce robomimic's layout, dtypes,
    shapes, values (the deterministic formulas of ds_tool's interface), attrs and
    fixed-width byte-string masks.
C.  Round trip.  `ds_tool dump` on B's file gives back B's values as float32.
D.  Bad input.  For ten broken files, `ds_tool dump` exits 1 or 2 (not a signal),
    prints exactly one non-empty line on stderr, names the file and, where it
    matters, the demo / dataset / key at fault.

ds_tool's interface:
    ds_tool dump FILE KEYS OUTDIR  -> OUTDIR/obs.f32, OUTDIR/actions.f32 (raw
        little-endian float32, row-major) and OUTDIR/meta.json with demos, lens,
        total, obs_dim, action_dim, env_args, masks.  (This script creates OUTDIR
        before calling dump.)
    ds_tool write FILE NDEMOS      -> a robomimic file with deterministic values.
"""

import json
import math
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import h5py
except ImportError as e:
    print(f"test_h5py_interop: cannot import numpy/h5py ({e}) under {sys.executable}: "
          "python3-h5py (and python3-numpy) are missing; tools/setup.sh installs them")
    sys.exit(1)

TIMEOUT_S = 60

# Obs keys of the A file, in the order they are written to the file, with dim and dtype.
A_OBS = [("object", 10, np.float64),
         ("robot0_eef_pos", 3, np.float64),
         ("robot0_eef_quat", 4, np.float32),
         ("robot0_gripper_qpos", 2, np.float64),
         ("robot0_joint_pos", 7, np.float64)]      # present but never requested
A_KEYS = ["robot0_eef_pos", "object", "robot0_gripper_qpos", "robot0_eef_quat"]
A_NDEMOS = 12
ACTION_DIM = 7
A_STATE_DIM = 32
ENV_ARGS_A = json.dumps({"env_name": "Lift", "type": 1,
                         "env_kwargs": {"has_renderer": False, "control_freq": 20,
                                        "controller_configs": {"type": "OSC_POSE"}}},
                        indent=4)                  # robomimic writes it with indent=4

# ds_tool write's deterministic file (section B).
B_NDEMOS = 4
B_OBS = [("object", 10), ("robot0_eef_pos", 3)]
B_STATE_DIM = 4
B_ENV_ARGS = {"env_name": "lift", "type": 1, "env_kwargs": {"horizon": 400}}


# ----------------------------------------------------------------------------- reporting

from checks import Results  # noqa: E402  (tests/checks.py: the PASS/FAIL counting both Python tests share)


def run_tool(args):
    """Run ds_tool; returns (returncode, stdout, stderr) or (None, '', reason) on timeout."""
    try:
        p = subprocess.run(args, capture_output=True, text=True, errors="replace",
                           timeout=TIMEOUT_S)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {TIMEOUT_S} s"


def describe_rc(rc):
    if rc is None:
        return "timed out"
    if rc < 0:
        return f"killed by signal {-rc}"
    return f"exit {rc}"


def first_mismatch(got, want, row_names=None):
    """Text locating the first element where got != want (arrays of equal shape)."""
    bad = np.argwhere(~((got == want) | (np.isnan(got) & np.isnan(want))))
    if len(bad) == 0:
        return "no mismatch"
    idx = tuple(bad[0])
    where = f"index {idx}"
    if row_names is not None:
        where += f" ({row_names[idx[0]]})"
    return (f"{len(bad)} of {got.size} elements differ; first at {where}: "
            f"got {got[idx]!r}, want {want[idx]!r}")


def as_str(x):
    """h5py gives str, bytes or numpy scalars for string attrs / elements."""
    if isinstance(x, np.ndarray) and x.shape == ():
        x = x[()]
    if isinstance(x, (bytes, np.bytes_)):
        return bytes(x).decode("utf-8")
    return str(x)


def dump(tool, path, keys, outdir):
    """ds_tool dump; returns (rc, stderr, meta or None, obs or None, actions or None)."""
    os.makedirs(outdir, exist_ok=True)
    rc, _, err = run_tool([tool, "dump", path, ",".join(keys), outdir])
    meta = obs = act = None
    if rc == 0:
        try:
            with open(os.path.join(outdir, "meta.json"), encoding="utf-8") as f:
                meta = json.load(f)
            if not isinstance(meta, dict):
                err += "\n[test] meta.json is not a JSON object"
                meta = None
        except (OSError, ValueError) as e:
            err += f"\n[test] cannot read meta.json: {e}"
        for name in ("obs.f32", "actions.f32"):
            try:
                arr = np.fromfile(os.path.join(outdir, name), dtype="<f4")
            except OSError as e:
                err += f"\n[test] cannot read {name}: {e}"
                arr = None
            if name == "obs.f32":
                obs = arr
            else:
                act = arr
    return rc, err, meta, obs, act


def check_matrix(res, name, flat, rows, cols, want, row_names=None):
    """flat: raw float32 from ds_tool; want: float32 array (rows, cols)."""
    if not res.check(f"{name}: file size is {rows} x {cols} float32",
                     flat is not None and flat.size == rows * cols,
                     "missing" if flat is None else f"{flat.size} floats"):
        return
    got = flat.reshape(rows, cols)
    res.check(f"{name}: values exactly equal to numpy's float32 cast",
              np.array_equal(got, want), first_mismatch(got, want, row_names))


def check_dump_meta(res, tag, meta, demos, lens, obs_dim, env_args, masks):
    res.check(f"{tag}: meta demos in integer order", meta.get("demos") == demos,
              f"got {meta.get('demos')}, want {demos}")
    res.check(f"{tag}: meta lens", meta.get("lens") == lens,
              f"got {meta.get('lens')}, want {lens}")
    res.check(f"{tag}: meta total", meta.get("total") == sum(lens),
              f"got {meta.get('total')}, want {sum(lens)}")
    res.check(f"{tag}: meta obs_dim", meta.get("obs_dim") == obs_dim,
              f"got {meta.get('obs_dim')}, want {obs_dim}")
    res.check(f"{tag}: meta action_dim", meta.get("action_dim") == ACTION_DIM,
              f"got {meta.get('action_dim')}, want {ACTION_DIM}")
    res.check(f"{tag}: meta env_args string unchanged", meta.get("env_args") == env_args,
              f"got {meta.get('env_args')!r}, want {env_args!r}")
    got_masks = meta.get("masks")
    res.check(f"{tag}: meta masks ({', '.join(sorted(masks))})", got_masks == masks,
              f"got {got_masks}, want {masks}")


# ----------------------------------------------------------------------------- A: h5py -> lfp

def make_a_data(rng):
    """Random robomimic-like demos: {demo name: {...}} plus masks."""
    lens = rng.integers(1, 31, size=A_NDEMOS)
    lens[7] = 1                                  # a demo of length 1
    demos = {}
    for i in range(A_NDEMOS):
        n = int(lens[i])
        obs = {}
        for key, dim, dt in A_OBS:
            # n + 1 frames so that next_obs[t] == obs[t + 1], as robomimic stores them
            frames = rng.standard_normal((n + 1, dim))
            if key == "robot0_eef_quat":
                frames /= np.linalg.norm(frames, axis=1, keepdims=True)
            obs[key] = frames.astype(dt)
        if i == 3:
            # values whose float64 -> float32 cast is delicate: float32 subnormal,
            # large, tiny, negative zero, halfway-ish
            obs["object"][0, :6] = [1e-40, -3.0e-42, 1.0e30, -0.0, 1e-300, 0.1]
        demos[f"demo_{i}"] = {
            "obs": {k: v[:n] for k, v in obs.items()},
            "next_obs": {k: v[1:] for k, v in obs.items()},
            "actions": rng.uniform(-1.0, 1.0, size=(n, ACTION_DIM)),
            "states": rng.standard_normal((n, A_STATE_DIM)),
            "rewards": np.where(np.arange(n) == n - 1, 1.0, 0.0),
            "dones": (np.arange(n) == n - 1).astype(np.int64),
        }
    names = [f"demo_{i}" for i in range(A_NDEMOS)]
    perm = [names[i] for i in rng.permutation(A_NDEMOS)]   # robomimic's split is shuffled
    masks = {"valid": perm[:2], "train": perm[2:], "hard": perm[5:9]}
    return demos, masks


def write_a_file(path, demos, masks, newer_format=False):
    """Write like robomimic's dataset_states_to_obs.py (or, newer_format, like newer tools)."""
    kw = {"libver": "latest", "track_order": True} if newer_format else {}
    ds_kw = {"compression": "gzip", "chunks": True} if newer_format else {}
    # Create the demos in a scrambled order (neither integer nor lexicographic).
    order = [5, 11, 0, 9, 2, 10, 7, 1, 8, 3, 6, 4]
    assert sorted(order) == list(range(A_NDEMOS))
    with h5py.File(path, "w", **kw) as f:
        # newer_format: /data also keeps a creation-order index, which h5py then iterates in
        data = f.create_group("data", track_order=True) if newer_format else f.create_group("data")
        total = 0
        for i in order:
            name = f"demo_{i}"
            d = demos[name]
            g = data.create_group(name)
            for field in ("actions", "states", "rewards", "dones"):
                g.create_dataset(field, data=d[field], **ds_kw)
            for key, _, _ in A_OBS:
                g.create_dataset(f"obs/{key}", data=d["obs"][key], **ds_kw)
                g.create_dataset(f"next_obs/{key}", data=d["next_obs"][key], **ds_kw)
            n = d["actions"].shape[0]
            g.attrs["num_samples"] = n
            g.attrs["model_file"] = f'<mujoco model="{name}"><worldbody/></mujoco>'
            total += n
        data.attrs["total"] = total
        data.attrs["env_args"] = ENV_ARGS_A
        m = f.create_group("mask")
        m.create_dataset("train", data=np.array(masks["train"], dtype="S"))
        m.create_dataset("valid", data=np.array(masks["valid"], dtype="S"))
        m.create_dataset("hard", data=np.array(masks["hard"], dtype=object),
                         dtype=h5py.string_dtype())


def validate_a_file(res, tag, path, demos, masks):
    """Check with h5py itself that the file is what we meant to write."""
    with h5py.File(path, "r") as f:
        ok = (set(f["data"].keys()) == set(demos)
              and f["data"].attrs["total"] == sum(d["actions"].shape[0] for d in demos.values())
              and f["data/demo_0/dones"].dtype == np.int64
              and f["data/demo_0/obs/robot0_eef_quat"].dtype == np.float32
              and f["data/demo_0/obs/object"].dtype == np.float64
              and f["mask/train"].dtype.kind == "S"
              and h5py.check_string_dtype(f["mask/hard"].dtype).length is None
              and [as_str(x) for x in f["mask/hard"][()]] == masks["hard"]
              and min(f[f"data/{k}/actions"].shape[0] for k in demos) == 1)
    res.check(f"{tag}: h5py reads back the file it wrote", ok)


def expected_a(demos, keys):
    names = [f"demo_{i}" for i in range(A_NDEMOS)]
    obs = np.concatenate([np.concatenate([demos[n]["obs"][k] for k in keys], axis=1)
                          for n in names], axis=0).astype(np.float32)
    act = np.concatenate([demos[n]["actions"] for n in names], axis=0).astype(np.float32)
    row_names = [f"{n} step {t}" for n in names for t in range(demos[n]["actions"].shape[0])]
    return names, obs, act, row_names


def section_a(res, tool, tmp, newer_format):
    tag = "A2" if newer_format else "A"
    rng = np.random.default_rng(0)
    demos, masks = make_a_data(rng)
    path = os.path.join(tmp, f"h5py_written{'_v2' if newer_format else ''}.hdf5")
    write_a_file(path, demos, masks, newer_format)
    validate_a_file(res, tag, path, demos, masks)

    names, want_obs, want_act, row_names = expected_a(demos, A_KEYS)
    lens = [demos[n]["actions"].shape[0] for n in names]
    obs_dim = want_obs.shape[1]
    rc, err, meta, obs, act = dump(tool, path, A_KEYS, os.path.join(tmp, f"dump_{tag}"))
    if not res.check(f"{tag}: ds_tool dump {os.path.basename(path)} {','.join(A_KEYS)} succeeds",
                     rc == 0 and meta is not None,
                     f"{describe_rc(rc)}, stderr: {err.strip()!r}"):
        return
    check_dump_meta(res, tag, meta, names, lens, obs_dim, ENV_ARGS_A, masks)
    check_matrix(res, f"{tag}: obs.f32 (keys {','.join(A_KEYS)})", obs, sum(lens), obs_dim,
                 want_obs, row_names)
    check_matrix(res, f"{tag}: actions.f32", act, sum(lens), ACTION_DIM, want_act, row_names)


# ----------------------------------------------------------------------------- B: lfp -> h5py

def b_len(d):
    return 5 + 3 * d


def b_obs(key, d, t, dim):
    """Formula of ds_tool write, evaluated as C evaluates it left to right:
    (d*1000 + t) + 0.01*j, with the integer part exact."""
    j = np.arange(dim, dtype=np.float64)
    base = (d * 1000 + np.asarray(t, dtype=np.int64)).astype(np.float64)[:, None]
    if key == "object":
        return base + 0.01 * j
    return -base - 0.01 * j


def b_expected(d):
    T = b_len(d)
    t = np.arange(T)
    # sin through Python's math.sin, i.e. the platform libm that the C program also calls
    # (numpy's sin may use its own SIMD implementation). Argument: (d + 0.1*t) + j.
    actions = np.array([[math.sin(d + 0.1 * tt + j) for j in range(ACTION_DIM)] for tt in t])
    exp = {
        "actions": actions,
        "states": d + 0.5 * t[:, None] + np.arange(B_STATE_DIM)[None, :],
        "rewards": np.where(t == T - 1, 1.0, 0.0),
        "dones": np.where(t == T - 1, 1, 0),
    }
    for key, dim in B_OBS:
        exp[f"obs/{key}"] = b_obs(key, d, t, dim)
        exp[f"next_obs/{key}"] = b_obs(key, d, t + 1, dim)
    return exp


def section_b(res, tool, tmp):
    path = os.path.join(tmp, "lfp_written.hdf5")
    rc, _, err = run_tool([tool, "write", path, str(B_NDEMOS)])
    if not res.check(f"B: ds_tool write {os.path.basename(path)} {B_NDEMOS} succeeds",
                     rc == 0 and os.path.isfile(path),
                     f"{describe_rc(rc)}, {'file written' if os.path.isfile(path) else 'no file'}"
                     f", stderr: {err.strip()!r}"):
        return None
    try:
        f = h5py.File(path, "r")
    except Exception as e:
        res.check("B: h5py opens the file", False, str(e))
        return None
    with f:
        names = [f"demo_{d}" for d in range(B_NDEMOS)]
        if not res.check("B: /data holds exactly demo_0..demo_3",
                         "data" in f and isinstance(f["data"], h5py.Group)
                         and set(f["data"].keys()) == set(names),
                         f"got {list(f['data'].keys()) if 'data' in f else 'no /data'}"):
            return path
        for d, name in enumerate(names):
            g = f["data"][name]
            T = b_len(d)
            exp = b_expected(d)
            want_fields = {"actions", "states", "rewards", "dones", "obs", "next_obs"}
            res.check(f"B: {name} members", set(g.keys()) == want_fields,
                      f"got {sorted(g.keys())}, want {sorted(want_fields)}")
            for grp in ("obs", "next_obs"):
                got_keys = sorted(g[grp].keys()) if grp in g else []
                res.check(f"B: {name}/{grp} keys", got_keys == sorted(k for k, _ in B_OBS),
                          f"got {got_keys}")
            shapes = {"actions": (T, ACTION_DIM), "states": (T, B_STATE_DIM),
                      "rewards": (T,), "dones": (T,)}
            for key, dim in B_OBS:
                shapes[f"obs/{key}"] = (T, dim)
                shapes[f"next_obs/{key}"] = (T, dim)
            for field, shape in shapes.items():
                full = f"{name}/{field}"
                if field not in g or not isinstance(g[field], h5py.Dataset):
                    res.check(f"B: {full} exists", False)
                    continue
                ds = g[field]
                if field == "dones":
                    res.check(f"B: {full} dtype is integer", ds.dtype.kind in "iu",
                              f"got {ds.dtype}")
                else:
                    res.check(f"B: {full} dtype is float64", ds.dtype == np.float64,
                              f"got {ds.dtype}")
                if not res.check(f"B: {full} shape {shape}", ds.shape == shape,
                                 f"got {ds.shape}"):
                    continue
                got = ds[()].astype(np.float64)
                want = exp[field].astype(np.float64)
                if np.array_equal(got, want):
                    res.check(f"B: {full} values", True)
                elif field == "actions" and np.allclose(got, want, rtol=0, atol=1e-15):
                    # sin() may differ in the last bit between two libm implementations;
                    # 1e-15 is a few ulp for values in [-1, 1].
                    res.check(f"B: {full} values", True,
                              note="within 1e-15, not bit-exact: C's sin and Python's libm differ")
                else:
                    res.check(f"B: {full} values", False, first_mismatch(got, want) +
                              f"; max |diff| {np.max(np.abs(got - want)):.3g}")
            ns = g.attrs.get("num_samples")
            res.check(f"B: {name} attr num_samples == {T}",
                      ns is not None and np.ndim(ns) == 0 and int(ns) == T, f"got {ns!r}")
            mf = g.attrs.get("model_file")
            want_mf = f'<mujoco model="demo_{d}"/>'
            res.check(f"B: {name} attr model_file", mf is not None and as_str(mf) == want_mf,
                      f"got {mf!r}, want {want_mf!r}")
        total = f["data"].attrs.get("total")
        want_total = sum(b_len(d) for d in range(B_NDEMOS))
        res.check(f"B: /data attr total == {want_total}",
                  total is not None and np.ndim(total) == 0 and int(total) == want_total,
                  f"got {total!r}")
        ea = f["data"].attrs.get("env_args")
        try:
            parsed = json.loads(as_str(ea)) if ea is not None else None
        except ValueError as e:
            parsed = f"not JSON: {e}"
        res.check("B: /data attr env_args is JSON with env_name 'lift'",
                  isinstance(parsed, dict) and parsed.get("env_name") == "lift", f"got {ea!r}")
        res.check("B: env_args equals the specified object", parsed == B_ENV_ARGS,
                  f"got {parsed!r}")
        want_masks = {"train": names[:-1], "valid": names[-1:]}
        for m, want in want_masks.items():
            p = f"mask/{m}"
            if not res.check(f"B: /{p} exists", p in f and isinstance(f[p], h5py.Dataset)):
                continue
            ds = f[p]
            res.check(f"B: /{p} is fixed-width byte strings (dtype 'S')", ds.dtype.kind == "S",
                      f"got dtype {ds.dtype}")
            got = [as_str(x) for x in ds[()]] if ds.ndim == 1 else None
            res.check(f"B: /{p} contents", got == want, f"got {got}, want {want}")
    return path


# ----------------------------------------------------------------------------- C: round trip

def section_c(res, tool, tmp, path):
    if path is None:
        res.check("C: round trip (needs B's file)", False, "B produced no file")
        return
    keys = [k for k, _ in B_OBS]
    names = [f"demo_{d}" for d in range(B_NDEMOS)]
    with h5py.File(path, "r") as f:
        file_obs = np.concatenate(
            [np.concatenate([f[f"data/{n}/obs/{k}"][()] for k in keys], axis=1) for n in names])
        file_act = np.concatenate([f[f"data/{n}/actions"][()] for n in names])
        env_args = as_str(f["data"].attrs["env_args"])
    lens = [b_len(d) for d in range(B_NDEMOS)]
    formula_obs = np.concatenate([np.concatenate([b_obs(k, d, np.arange(b_len(d)), dim)
                                                  for k, dim in B_OBS], axis=1)
                                  for d in range(B_NDEMOS)])
    row_names = [f"{n} step {t}" for n, T in zip(names, lens) for t in range(T)]
    rc, err, meta, obs, act = dump(tool, path, keys, os.path.join(tmp, "dump_C"))
    if not res.check(f"C: ds_tool dump {os.path.basename(path)} {','.join(keys)} succeeds",
                     rc == 0 and meta is not None,
                     f"{describe_rc(rc)}, stderr: {err.strip()!r}"):
        return
    masks = {"train": names[:-1], "valid": names[-1:]}
    check_dump_meta(res, "C", meta, names, lens, file_obs.shape[1], env_args, masks)
    check_matrix(res, "C: obs.f32 == file values as float32", obs, sum(lens),
                 file_obs.shape[1], file_obs.astype(np.float32), row_names)
    check_matrix(res, "C: obs.f32 == formula values as float32", obs, sum(lens),
                 file_obs.shape[1], formula_obs.astype(np.float32), row_names)
    check_matrix(res, "C: actions.f32 == file values as float32", act, sum(lens), ACTION_DIM,
                 file_act.astype(np.float32), row_names)


# ----------------------------------------------------------------------------- D: bad input

D_KEYS = ["object", "robot0_eef_pos"]


def write_valid(path, lens=(6, 9, 7), mutate=None):
    """A small valid robomimic file; mutate(f) may break it before it is closed."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        for i, n in enumerate(lens):
            g = data.create_group(f"demo_{i}")
            g.create_dataset("actions", data=rng.uniform(-1, 1, (n, ACTION_DIM)))
            g.create_dataset("states", data=rng.standard_normal((n, 8)))
            g.create_dataset("rewards", data=np.zeros(n))
            g.create_dataset("dones", data=np.zeros(n, dtype=np.int64))
            for key, dim in (("object", 10), ("robot0_eef_pos", 3)):
                g.create_dataset(f"obs/{key}", data=rng.standard_normal((n, dim)))
                g.create_dataset(f"next_obs/{key}", data=rng.standard_normal((n, dim)))
            g.attrs["num_samples"] = n
        data.attrs["total"] = sum(lens)
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {}})
        if mutate is not None:
            mutate(f)


def replace(f, path, arr):
    del f[path]
    f.create_dataset(path, data=arr)


def bad_cases(tmp):
    """(label, file, keys, [required words; a tuple means any one of them])."""
    cases = []

    def add(label, fname, maker, words, keys=D_KEYS):
        path = os.path.join(tmp, fname)
        maker(path)
        cases.append((label, path, keys, [os.path.basename(path)] + words))

    def text_file(p):
        with open(p, "w") as fh:
            fh.write("this is not an HDF5 file\n" * 20)
    add("not HDF5 (text file)", "not_hdf5.hdf5", text_file, [])

    def no_data(p):
        with h5py.File(p, "w") as f:
            f.create_group("stuff").create_dataset("x", data=np.zeros(3))
    add("no /data group", "no_data_group.hdf5", no_data, [])

    add("demo without actions", "missing_actions.hdf5",
        lambda p: write_valid(p, mutate=lambda f: f.__delitem__("data/demo_1/actions")),
        ["demo_1", "actions"])

    def short_actions(f):
        # actions (and num_samples, total) say 8 steps; demo_1's obs keep 9 rows
        replace(f, "data/demo_1/actions", np.zeros((8, ACTION_DIM)))
        for field in ("states", "rewards", "dones"):
            replace(f, f"data/demo_1/{field}", f[f"data/demo_1/{field}"][:8])
        f["data/demo_1"].attrs["num_samples"] = 8
        f["data"].attrs["total"] = f["data"].attrs["total"] - 1
    add("obs and actions of different lengths", "length_mismatch.hdf5",
        lambda p: write_valid(p, mutate=short_actions), ["demo_1"])

    add("requested obs key missing", "missing_key.hdf5", write_valid,
        ["object"], keys=D_KEYS + ["no_such_key"])

    def nan_obs(f):
        x = f["data/demo_1/obs/object"][()]
        x[4, 2] = np.nan
        replace(f, "data/demo_1/obs/object", x)
    add("NaN in an obs dataset", "nan_obs.hdf5",
        lambda p: write_valid(p, mutate=nan_obs), ["demo_1", "object"])

    def inf_actions(f):
        x = f["data/demo_2/actions"][()]
        x[3, 1] = np.inf
        replace(f, "data/demo_2/actions", x)
    add("Inf in actions", "inf_actions.hdf5",
        lambda p: write_valid(p, mutate=inf_actions), [])

    add("actions of rank 3", "bad_shape.hdf5",
        lambda p: write_valid(p, mutate=lambda f: replace(
            f, "data/demo_0/actions", np.zeros((6, ACTION_DIM, 1)))),
        [("rank", "6, 7, 1", "6,7,1", "6x7x1", "6 x 7 x 1", "3-d", "3d")])

    add("empty demo (0 samples)", "empty_demo.hdf5",
        lambda p: write_valid(p, lens=(6, 0, 7)), [])

    def truncated(p):
        write_valid(p, lens=(40, 35, 50, 45))
        size = os.path.getsize(p)
        with open(p, "r+b") as fh:
            fh.truncate(size // 2)
    add("truncated file (cut to half)", "truncated.hdf5", truncated, [])
    return cases


def section_d(res, tool, tmp):
    for i, (label, path, keys, words) in enumerate(bad_cases(tmp)):
        outdir = os.path.join(tmp, f"dump_D{i}")
        os.makedirs(outdir, exist_ok=True)
        rc, _, err = run_tool([tool, "dump", path, ",".join(keys), outdir])
        tag = f"D{i + 1} {label}"
        res.check(f"{tag}: exit code 1 or 2", rc in (1, 2), describe_rc(rc))
        lines = err.strip("\n").split("\n") if err.strip() else []
        one_line = len(lines) == 1 and lines[0].strip() != ""
        res.check(f"{tag}: exactly one non-empty line on stderr", one_line,
                  f"got {len(lines)} lines: {err!r}")
        # Look for the other words with the file's name taken out (it could contain them).
        msg = err.replace(path, "").replace(os.path.basename(path), "").lower()
        missing = [] if os.path.basename(path) in err else [repr(os.path.basename(path))]
        for w in words[1:]:
            alts = w if isinstance(w, tuple) else (w,)
            if not any(a.lower() in msg for a in alts):
                missing.append(" or ".join(repr(a) for a in alts))
        res.check(f"{tag}: message mentions {', '.join(w if isinstance(w, str) else '/'.join(w) for w in words)}",
                  not missing, f"missing {', '.join(missing)} in {err.strip()!r}")


# ----------------------------------------------------------------------------- main

def main():
    if len(sys.argv) < 2:
        print("usage: /usr/bin/python3 tests/test_h5py_interop.py PATH/TO/ds_tool")
        return 1
    tool = os.path.abspath(sys.argv[1])
    if not (os.path.isfile(tool) and os.access(tool, os.X_OK)):
        print(f"test_h5py_interop: ds_tool not found or not executable: {tool}")
        return 1
    print(f"h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}, numpy {np.__version__}; "
          f"ds_tool {tool}")
    res = Results()
    with tempfile.TemporaryDirectory(prefix="lfp_h5py_") as tmp:
        res.section("A: h5py -> lfp", section_a, tool, tmp, False)
        res.section("A2: h5py -> lfp, newer file format", section_a, tool, tmp, True)
        b_path = []
        res.section("B: lfp -> h5py", lambda r, *a: b_path.append(section_b(r, *a)), tool, tmp)
        res.section("C: round trip", section_c, tool, tmp, b_path[0] if b_path else None)
        res.section("D: bad input", section_d, tool, tmp)
    print(f"{res.passed} passed, {res.failed} failed")
    return 0 if res.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
