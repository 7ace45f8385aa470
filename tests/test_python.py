#!/usr/bin/python3
"""The Python package lfp (tools/python) against the C API and a real node.

    /usr/bin/python3 tests/test_python.py LFP_BINARY LIBLFP PY_REF

1. lfp.Policy's attributes are the policy file's (lfp info --json).
2. act: 40 steps of a recorded episode, bit for bit equal to pol_act
   (tests/py_ref, the C API, reading the same values as hex floats);
   reset(seed) reproduces them; reset() continues the RNG stream as
   pol_new_episode does.
3. sample(frames): equal to pol_forget + pol_observe + pol_sample, bit for bit.
4. Errors: ValueError with lfp's sentence for a missing or unknown key, a
   wrong shape, a non-finite value (which changes nothing: the next action is
   the one without it); lfp.Error for a missing file and a file that is not a
   policy; a closed policy refuses.
5. lfp.Client (pyzmq) against `lfp serve`: info, reset(seed) and infer(frames)
   equal to Policy.sample with the same seed, bit for bit; an error reply and
   a node that does not answer raise lfp.Error with a sentence.
"""
import os, subprocess, sys, tempfile

import h5py
import numpy as np

from lfptest import check, finish, raises, serve, train_policy


class Ref:
    """tests/py_ref: pol.h, one command per line."""

    def __init__(self, exe, policy, seed):
        self.p = subprocess.Popen([exe, policy, str(seed)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline().strip()
        if out.startswith("error: "):
            raise ValueError(out[7:])
        return out

    def act(self, v):
        return np.array([float.fromhex(t) for t in self._ask("act " + " ".join(float(x).hex() for x in v)).split()])

    def sample(self, frames):
        line = f"sample {frames.shape[0]} " + " ".join(float(x).hex() for x in frames.ravel())
        return np.array([float.fromhex(t) for t in self._ask(line).split()])

    def reset(self, seed=None):
        self._ask("new" if seed is None else f"reset {seed}")

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    lfp_bin, liblfp, py_ref = (os.path.abspath(a) for a in sys.argv[1:])
    os.environ["LFP_LIBRARY"] = liblfp
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "python"))
    import warnings
    import lfp
    warnings.simplefilter("ignore", RuntimeWarning)  # the slow-OpenBLAS hint (checked below)
    # one thread, as py_ref and the node below: a split matmul, or OpenBLAS's own threads, round differently
    check("set_threads(1)", lfp.set_threads(1) == 1)
    core, better = lfp.blas_core()
    print(f"lfp {lfp.version()} from {lfp.library_path()}, OpenBLAS {core}" + (f" ({better} is faster)" if better else ""))
    with tempfile.TemporaryDirectory(prefix="lfp_py_") as tmp:
        made = train_policy(lfp_bin, tmp, episodes=6, steps=200, width=64)
        if not made:
            return 1
        h5, pol = made

        print("1: attributes")
        p = lfp.Policy(pol, seed=7)
        # the node runs on one thread with the OpenBLAS kernels it loads with, as this process:
        # bit for bit needs the same sgemm calls (lfptest.serve)
        srv, ep, _ = serve(lfp_bin, pol, tmp)
        try:
            if run(lfp, p, pol, h5, tmp, py_ref, ep):
                return 1
        finally:
            srv.terminate()
            srv.wait(timeout=10)
    return finish()


def run(lfp, p, pol, h5, tmp, py_ref, ep):
    with lfp.Client(ep, timeout_ms=5000) as c:
        info = c.info()
    check("obs_keys as the node's info", list(p.obs_keys) == list(info["obs_keys"]), f"{p.obs_keys} vs {info}")
    check("obs_dims as the node's info", [[d] for d in p.obs_dims] == [list(s) for s in info["obs_shapes"]])
    check("action_dim, To, Tp, Ta as the node's info",
          (p.action_dim, p.To, p.Tp, p.Ta) == (info["action_dim"], info["To"], info["Tp"], info["Ta"]),
          f"{(p.action_dim, p.To, p.Tp, p.Ta)} vs {info}")
    check("method as the node's info", p.method == info["method"])
    with h5py.File(h5, "r") as f:
        demos = sorted(f["data"], key=lambda d: int(d.split("_")[1]))  # the first 40 steps, over demos
        frames = {k: np.concatenate([np.asarray(f[f"data/{d}/obs/{k}"], dtype=np.float64) for d in demos])[:40]
                  for k in p.obs_keys}
    flat = np.concatenate([frames[k] for k in p.obs_keys], axis=1)

    print("2: act, bit for bit with pol_act")
    ref = Ref(py_ref, pol, 7)
    a_py = np.array([p.act({k: frames[k][t] for k in p.obs_keys}) for t in range(40)])
    a_c = np.array([ref.act(flat[t]) for t in range(40)])
    check("40 actions equal pol_act's", a_py.shape == a_c.shape and np.array_equal(a_py, a_c),
          f"max diff {np.max(np.abs(a_py - a_c)) if a_py.shape == a_c.shape else a_py.shape}")
    check("actions are (action_dim,) float64", a_py.shape[1:] == (p.action_dim,) and a_py.dtype == np.float64)
    p.reset(seed=7)
    ref.reset(7)
    again = np.array([p.act({k: frames[k][t] for k in p.obs_keys}) for t in range(40)])
    again_c = np.array([ref.act(flat[t]) for t in range(40)])
    check("reset(seed) reproduces the episode", np.array_equal(again, a_py) and np.array_equal(again_c, a_c))
    p.reset()
    ref.reset()
    cont_py = np.array([p.act({k: frames[k][t] for k in p.obs_keys}) for t in range(16)])
    cont_c = np.array([ref.act(flat[t]) for t in range(16)])
    check("reset() continues the stream as pol_new_episode", np.array_equal(cont_py, cont_c))
    check("and differs from the reseeded episode", not np.array_equal(cont_py, a_py[:16]))

    print("3: sample, bit for bit with pol_sample")
    hist = {k: frames[k][10:10 + p.To] for k in p.obs_keys}
    s_py = p.sample(hist)
    s_c = ref.sample(flat[10:10 + p.To])
    check("sample is (Ta, action_dim)", s_py.shape == (p.Ta, p.action_dim), f"{s_py.shape}")
    check("sample equals pol_sample's", np.array_equal(s_py.ravel(), s_c))
    one = {k: frames[k][3] for k in p.obs_keys}
    check("a single frame (dim,) is one frame", np.array_equal(p.sample(one).ravel(), ref.sample(flat[3:4])))

    print("4: errors")
    obs = {k: frames[k][20] for k in p.obs_keys}
    k0 = p.obs_keys[0]
    raises("a missing key: ValueError naming it", ValueError, [k0],
           lambda: p.act({k: v for k, v in obs.items() if k != k0}))
    raises("an unknown key: ValueError naming it", ValueError, ["gripper_cam"],
           lambda: p.act({**obs, "gripper_cam": np.zeros(3)}))
    raises("a wrong shape: ValueError with both shapes", ValueError, [k0, str(p.obs_dims[0])],
           lambda: p.act({**obs, k0: np.zeros(p.obs_dims[0] + 1)}))
    raises("frames of different lengths: ValueError", ValueError, ["frames"],
           lambda: p.sample({**hist, k0: frames[k0][:1]}))
    raises("not a dict: ValueError", ValueError, ["dict"], lambda: p.act([1, 2, 3]))
    bad = dict(obs)
    bad[k0] = obs[k0].copy()
    bad[k0][1] = np.nan
    raises("a NaN: ValueError with lfp's sentence naming the key", ValueError, [k0, "finite"],
           lambda: p.act(bad))
    raises("a string value: ValueError", ValueError, [k0], lambda: p.act({**obs, k0: "abc"}))
    raises("a seed out of range: ValueError", ValueError, ["seed"], lambda: p.reset(seed=-1))
    # the refused observations changed nothing: the next action is pol_act's without them
    check("refused observations change nothing",
          np.array_equal(p.act(obs), ref.act(np.concatenate([obs[k] for k in p.obs_keys]))))
    raises("a missing file: lfp.Error naming it", lfp.Error, ["nope.lfp"],
           lambda: lfp.Policy(os.path.join(tmp, "nope.lfp")))
    with open(os.path.join(tmp, "text.lfp"), "w") as f:
        f.write("not a policy\n")
    raises("a file that is not a policy: lfp.Error", lfp.Error, ["text.lfp", "not an lfp checkpoint"],
           lambda: lfp.Policy(os.path.join(tmp, "text.lfp")))
    raises("a data file as a policy: lfp.Error", lfp.Error, ["d.hdf5"], lambda: lfp.Policy(h5))
    q = lfp.Policy(pol)
    q.close()
    raises("a closed policy: lfp.Error", lfp.Error, ["closed"], lambda: q.act(obs))
    ref.close()

    print("5: lfp.Client against lfp serve")
    with lfp.Client(ep, timeout_ms=5000) as c:
        i = c.info()
        check("info: the policy's keys", list(i["obs_keys"]) == list(p.obs_keys))
        c.reset(seed=11)
        p.reset(seed=11)
        got = c.infer(hist)
        check("infer(frames) equals Policy.sample, bit for bit", np.array_equal(got, p.sample(hist)),
              f"{got} vs policy")
        raises("an error reply: lfp.Error with the node's sentence", lfp.Error, ["gripper_cam"],
               lambda: c.infer({**obs, "gripper_cam": np.zeros(3)}))
        check("the client works after an error reply", c.infer(hist).shape == (p.Ta, p.action_dim))
    dead = lfp.Client("tcp://127.0.0.1:9", timeout_ms=150, retries=1)
    raises("a node that does not answer: lfp.Error naming it", lfp.Error,
           ["tcp://127.0.0.1:9", "did not answer 2 requests"], dead.info)
    dead.close()
    p.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
