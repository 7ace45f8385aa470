#!/usr/bin/python3
"""`lfp serve` (the ZeroMQ controller node, protocol 3) driven from Python with
Debian's python3-zmq and python3-msgpack -- an independent client, written
from the protocol's description, that talks to the node the way openpi's
websocket clients talk to theirs (msgpack-numpy arrays).

    /usr/bin/python3 tests/test_node_py.py LFP_BINARY CLIENT_PY

It makes its own policy (lfp collect --env lift + lfp train, ~10 s at most),
starts `lfp serve` on "tcp://127.0.0.1:*" (the node binds a free port and
prints it) and checks (one line per check, then "N passed, M failed"; exit 0
only if everything passed, 1 otherwise):

1. info: every field, with its type; obs_keys / obs_shapes consistent;
   protocol 3; To, Tp, Ta, action_dim ints; bounds of length action_dim.
2. Encodings: openpi's ndarray map (bin keys, <f4), str keys with <f8 and
   plain lists give the same actions; the reply's array is openpi's map
   (bin keys, str dtype) and decodes with openpi's decoder to (Ta, A)
   float32 within [action_low, action_high]; "dtype": "<f8" gives float64
   with the same values.
3. Determinism: two sessions reset with the same seed and sent the same
   frames get bit-identical actions; another seed gives other actions.
4. History: observe f1 + infer f2 == infer [f1, f2] (rank 2) on a fresh
   session with the same seed; [f2, f1] and f2 alone differ; history_frames;
   a failed request leaves the history alone.
5. Errors: garbage, a list, unknown endpoint / field / obs key, missing obs /
   obs key, wrong shape, dtype <i4, NaN, a message over --max-msg-kb, a
   multi-frame message from a DEALER ... each gets {"error": sentence} naming
   the problem (and the id back when the request could be read); a ping
   from another client works after each. A message over 16x the limit gets
   no reply (libzmq drops the peer) and the node goes on.
6. Concurrency: 4 REQ and 2 DEALER clients (one with the empty delimiter,
   one without, both pipelining) in threads, 200 infers each on their own
   sessions: every reply arrives, ids match, seq runs 1..200 per session.
7. Eviction (--max-sessions 2): three sessions round robin lose their
   history each time (history_frames 1, seq 1), two alternating keep it;
   the counters at shutdown match an LRU model; memory does not grow.
8. Shutdown: SIGTERM and SIGINT stop the node with exit 0 within 2 s, and
   the --json line's requests / errors / infers equal what this script sent
   (the SIGINT one while a DEALER that never reads has ~thousands of
   requests outstanding).
9. tools/client.py (the example) runs against the node (exit 0, summary
   line) and fails clearly against a dead endpoint (exit 1, within seconds).

Every socket has LINGER 0 and every receive is guarded by a poll timeout, so
a broken node fails checks instead of hanging the test.
"""

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

try:
    import numpy as np
    import msgpack
    import zmq
except ImportError as e:
    print(f"test_node_py: cannot import numpy/msgpack/zmq ({e}) under {sys.executable}: "
          "python3-zmq and python3-msgpack (and python3-numpy) are missing; tools/setup.sh installs them")
    sys.exit(1)

TIMEOUT_S = 60          # a subprocess (collect, train, client.py)
RECV_MS = 5000          # one reply
STOP_S = 2.0            # SIGTERM / SIGINT -> exit
INFO_TYPES = {"protocol": int, "version": str, "policy": str, "trained_by": str, "method": str,
              "obs_keys": list, "obs_shapes": list, "action_dim": int, "action_low": list,
              "action_high": list, "To": int, "Tp": int, "Ta": int, "control_hz": float, "nfe": int,
              "sampler": str, "ode_steps": int, "env_args": str, "max_sessions": int, "max_msg": int,
              "endpoints": list}


# ----------------------------------------------------------------------------- reporting

from checks import Results  # noqa: E402  (tests/checks.py: the PASS/FAIL counting both Python tests share)


# ----------------------------------------------------------------------------- wire format

def pack_array(a, dtype="<f4", str_keys=False):
    """numpy -> openpi's msgpack-numpy map: bin keys, dtype as str (or str keys if asked)."""
    a = np.ascontiguousarray(a, dtype=np.dtype(dtype))
    m = {b"__ndarray__": True, b"data": a.tobytes(), b"dtype": a.dtype.str, b"shape": list(a.shape)}
    return {k.decode(): v for k, v in m.items()} if str_keys else m


def unpack_array(obj):
    """openpi's decoder (msgpack object_hook)."""
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
    return obj


def decode(buf):
    return msgpack.unpackb(buf, object_hook=unpack_array)


def encode(msg):
    return msg if isinstance(msg, bytes) else msgpack.packb(msg, default=pack_numpy)


def pack_numpy(obj):
    """openpi's msgpack_numpy `default`: arrays as __ndarray__ maps, numpy scalars as __npgeneric__ maps."""
    if isinstance(obj, np.ndarray):
        return pack_array(obj, obj.dtype.str)
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot pack {type(obj)}")


# ----------------------------------------------------------------------------- the node

class Server:
    """An `lfp serve --json` process on a free loopback port; counts what is sent to it."""

    def __init__(self, lfp, policy, tmp, name, *extra):
        self.name = name
        self.out_path = os.path.join(tmp, f"{name}.out")
        self.err_path = os.path.join(tmp, f"{name}.err")
        self.sent = self.errors = self.infers = 0    # requests the node should count
        self.lock = threading.Lock()
        # Under AddressSanitizer (-DLFP_SANITIZE=ON) freed memory sits in a quarantine, which
        # would look like growth to the memory check; without one, ASan reuses it (no effect otherwise).
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "quarantine_size_mb=0"]))
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([lfp, "serve", "--policy", policy, "--bind", "tcp://127.0.0.1:*",
                                          "--json", *extra], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env=env)
        deadline = time.monotonic() + 15
        self.endpoint = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            # --json: the human lines go to stderr, stdout holds only the final JSON line
            m = re.search(r"on (tcp://[0-9.]+:\d+), protocol \d+;", self.stderr())
            if m:
                self.endpoint = m.group(1)
                break
            time.sleep(0.02)
        if not self.endpoint:
            self.kill()
            raise RuntimeError(f"lfp serve ({name}) did not print its endpoint: stdout {self.stdout()!r}, "
                               f"stderr {self.stderr()!r}")

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def count(self, reply, endpoint):
        """Account one request the node received; reply None = no reply seen."""
        with self.lock:
            self.sent += 1
            if isinstance(reply, dict) and "error" in reply:
                self.errors += 1
            elif endpoint == "infer" and reply is not None:
                self.infers += 1

    def stop(self, sig):
        """Signal; returns (returncode or None, seconds, JSON object or None, stdout)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=STOP_S + 3)
        except subprocess.TimeoutExpired:
            rc = None
            self.kill()
        secs = time.monotonic() - t0
        out = self.stdout()
        lines = [l for l in out.splitlines() if l.strip()]
        try:  # the JSON object and nothing else
            js = json.loads(lines[0]) if len(lines) == 1 else None
        except ValueError:
            js = None
        return rc, secs, js, out

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1


class Client:
    """One REQ or DEALER socket. call() sends one request and returns the decoded reply,
    or None when none came within the timeout (a REQ socket is then replaced)."""

    def __init__(self, ctx, server, kind=zmq.REQ, delim=True):
        self.ctx, self.server, self.kind, self.delim = ctx, server, kind, delim
        self.envelope_ok = True
        self._open()

    def _open(self):
        self.sock = self.ctx.socket(self.kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.server.endpoint)

    def send(self, msg):
        payload = encode(msg)
        if self.kind == zmq.DEALER:
            frames = [b"", payload] if self.delim else [payload]
        else:
            frames = [payload]
        if not self.sock.poll(RECV_MS, zmq.POLLOUT):
            raise RuntimeError("socket not writable")
        self.sock.send_multipart(frames)

    def recv(self, timeout_ms=RECV_MS):
        """The raw reply payload, or None on timeout."""
        if not self.sock.poll(timeout_ms):
            if self.kind == zmq.REQ:       # a REQ socket waiting for a reply is stuck: replace it
                self.sock.close(0)
                self._open()
            return None
        frames = self.sock.recv_multipart()
        if self.kind == zmq.DEALER:
            want = 2 if self.delim else 1
            if len(frames) != want or (self.delim and frames[0] != b""):
                self.envelope_ok = False
        return frames[-1]

    def call(self, msg, timeout_ms=RECV_MS, count=True):
        self.send(msg)
        raw = self.recv(timeout_ms)
        reply = decode(raw) if raw is not None else None
        if count:
            ep = msg.get("endpoint") if isinstance(msg, dict) else None
            self.server.count(reply, ep)
        return reply

    def close(self):
        self.sock.close(0)


# ----------------------------------------------------------------------------- helpers

def obs_msg(frame, keys, enc="openpi"):
    """frame: dict key -> (dim,) or (n, dim) float array -> the request's obs map."""
    if enc == "openpi":
        return {k: pack_array(frame[k]) for k in keys}
    if enc == "str-f8":
        return {k: pack_array(frame[k], "<f8", str_keys=True) for k in keys}
    if enc == "list":
        return {k: np.asarray(frame[k], dtype=np.float64).tolist() for k in keys}
    raise ValueError(enc)


def stack(frames, keys):
    return {k: np.stack([f[k] for f in frames]) for k in keys}


def actions_of(reply):
    a = reply.get("actions") if isinstance(reply, dict) else None
    return a if isinstance(a, np.ndarray) else None


def short(reply):
    r = repr(reply)
    return r if len(r) < 300 else r[:300] + "..."


def load_frames(h5_path, keys, dims, n, rng):
    """Plausible observation frames: consecutive frames of the collected demos when h5py is
    there (python3-h5py, which tools/setup.sh installs), else small random values."""
    try:
        import h5py
        with h5py.File(h5_path, "r") as f:
            demo = f["data"][sorted(f["data"].keys())[0]]["obs"]
            T = demo[keys[0]].shape[0]
            frames = [{k: np.asarray(demo[k][min(t, T - 1)], dtype=np.float32) for k in keys} for t in range(n)]
        return frames, "frames of the collected demonstrations"
    except Exception as e:        # noqa: BLE001 -- any problem: fall back to synthetic frames
        frames = [{k: (1e-4 * rng.standard_normal(d)).astype(np.float32) for k, d in zip(keys, dims)}
                  for _ in range(n)]
        return frames, f"synthetic frames ({type(e).__name__}: {e})"


# ----------------------------------------------------------------------------- sections

class Ctx:
    pass


def section_info(res, c):
    cl = Client(c.zctx, c.main)
    info = cl.call({"endpoint": "info", "id": 1})
    cl.close()
    if not res.check("info: a reply", isinstance(info, dict) and "error" not in info, short(info)):
        raise RuntimeError("no info reply; nothing else can be checked")
    missing = [k for k in INFO_TYPES if k not in info]
    res.check("info: every field present", not missing, f"missing {missing}")
    bad = [f"{k} is {type(info[k]).__name__}" for k, t in INFO_TYPES.items()
           if k in info and not (isinstance(info[k], t) and not isinstance(info[k], bool))]
    res.check("info: field types", not bad, ", ".join(bad))
    res.check("info: protocol == 3", info.get("protocol") == 3, f"got {info.get('protocol')!r}")
    res.check("info: id echoed", info.get("id") == 1, f"got {info.get('id')!r}")
    keys, shapes = info.get("obs_keys", []), info.get("obs_shapes", [])
    consistent = (len(keys) == len(shapes) >= 1 and all(isinstance(k, str) and k for k in keys)
                  and len(set(keys)) == len(keys)
                  and all(isinstance(s, list) and len(s) == 1 and isinstance(s[0], int) and s[0] >= 1 for s in shapes))
    res.check("info: obs_keys and obs_shapes consistent", consistent, f"keys {keys!r}, shapes {shapes!r}")
    A = info.get("action_dim")
    lo, hi = info.get("action_low", []), info.get("action_high", [])
    res.check("info: action bounds", isinstance(A, int) and A >= 1 and len(lo) == len(hi) == A
              and all(l < h for l, h in zip(lo, hi)), f"action_dim {A!r}, low {lo!r}, high {hi!r}")
    res.check("info: horizons", all(isinstance(info.get(k), int) and info.get(k) >= 1 for k in ("To", "Tp", "Ta"))
              and info["Ta"] <= info["Tp"], f"To {info.get('To')!r} Tp {info.get('Tp')!r} Ta {info.get('Ta')!r}")
    res.check("info: endpoints", sorted(info.get("endpoints", [])) == sorted(["info", "infer", "observe", "reset", "ping"]),
              f"got {info.get('endpoints')!r}")
    res.check("info: max_sessions / max_msg are the defaults",
              info.get("max_sessions") == 64 and info.get("max_msg") == 1024 * 1024,
              f"max_sessions {info.get('max_sessions')!r}, max_msg {info.get('max_msg')!r}")
    try:
        env_args = json.loads(info.get("env_args", ""))
        ok = isinstance(env_args, dict)
    except ValueError as e:
        ok, env_args = False, e
    res.check("info: env_args is a JSON object", ok, repr(env_args))
    cl = Client(c.zctx, c.main)
    ping = cl.call({"endpoint": "ping", "id": 2})
    cl.close()
    res.check("ping: ok, protocol 3, version, id",
              isinstance(ping, dict) and ping.get("ok") is True and ping.get("protocol") == 3
              and ping.get("version") == info.get("version") and ping.get("id") == 2, short(ping))
    c.info, c.keys = info, keys
    c.dims = [s[0] for s in shapes]
    c.To, c.Ta, c.A = info["To"], info["Ta"], A
    c.lo, c.hi = np.array(lo), np.array(hi)
    c.frames, how = load_frames(c.h5, c.keys, c.dims, 8, np.random.default_rng(5))
    print(f"    (observations: {how})")


def section_encodings(res, c):
    cl = Client(c.zctx, c.main)
    f = c.frames[0]
    # raw look at an infer reply: openpi's layout (bin keys, str dtype)
    assert cl.call({"endpoint": "reset", "session": "enc", "seed": 7})
    cl.send({"endpoint": "infer", "session": "enc", "obs": obs_msg(f, c.keys), "id": 30})
    raw = cl.recv()
    c.main.count(decode(raw) if raw else None, "infer")
    rawmap = msgpack.unpackb(raw, raw=False) if raw else {}
    arr = rawmap.get("actions", {})
    res.check("infer reply: actions is openpi's map with bin keys and a str dtype",
              isinstance(arr, dict) and set(arr) == {b"__ndarray__", b"data", b"dtype", b"shape"}
              and arr[b"__ndarray__"] is True and arr[b"dtype"] == "<f4" and isinstance(arr[b"data"], bytes)
              and arr[b"shape"] == [c.Ta, c.A], short(rawmap))
    ref_reply = decode(raw) if raw else None
    ref = actions_of(ref_reply)
    res.check("infer (openpi <f4, bin keys): (Ta, A) float32", ref is not None and ref.shape == (c.Ta, c.A)
              and ref.dtype == np.float32, short(ref_reply))
    if ref is None:
        return
    others = {k: ref_reply.get(k) for k in ("seq", "clipped", "history_frames", "server_timing", "id")}
    st = others["server_timing"]
    res.check("infer reply: seq 1, clipped, history_frames, server_timing, id",
              others["seq"] == 1 and isinstance(others["clipped"], int) and 0 <= others["clipped"] <= c.Ta * c.A
              and others["history_frames"] == 1 and isinstance(st, dict)
              and all(isinstance(st.get(k), float) and st.get(k) >= 0 for k in ("sample_us", "handle_us"))
              and others["id"] == 30, repr(others))
    res.check("infer: actions within [action_low, action_high]",
              bool(np.all(ref >= c.lo) and np.all(ref <= c.hi)), f"{ref}")
    res.check("infer: actions are not all clipped", others["clipped"] < c.Ta * c.A,
              f"clipped {others['clipped']} of {c.Ta * c.A}", note=f"{others['clipped']} clipped")
    for enc, dtype in (("str-f8", "<f4"), ("list", "<f4"), ("openpi", "<f8"), ("list", "<f8")):
        assert cl.call({"endpoint": "reset", "session": "enc", "seed": 7})
        msg = {"endpoint": "infer", "session": "enc", "obs": obs_msg(f, c.keys, enc)}
        if dtype == "<f8":
            msg["dtype"] = "<f8"
        r = cl.call(msg)
        a = actions_of(r)
        want = np.float64 if dtype == "<f8" else np.float32
        ok = a is not None and a.shape == (c.Ta, c.A) and a.dtype == want
        res.check(f"infer (obs {enc}, actions {dtype}): ({c.Ta}, {c.A}) {np.dtype(want).name}", ok, short(r))
        if ok:
            same = np.array_equal(a.astype(np.float32), ref) and np.array_equal(a, ref.astype(want))
            res.check(f"infer (obs {enc}, actions {dtype}): same actions as openpi <f4", same,
                      f"max difference {np.max(np.abs(a - ref))}")
    # numpy scalars (openpi's __npgeneric__ maps) wherever a number goes: the seed, the id,
    # the horizon and a list observation's elements
    r = cl.call({"endpoint": "reset", "session": "enc", "seed": np.int64(7), "id": np.int32(41)})
    res.check("reset with numpy scalars for seed and id: ok, id echoed",
              isinstance(r, dict) and r.get("ok") is True and r.get("id") == 41, short(r))
    obs = {k: [np.float32(x) for x in np.asarray(f[k], dtype=np.float32).ravel()] for k in c.keys}
    r = cl.call({"endpoint": "infer", "session": "enc", "obs": obs, "horizon": np.uint8(c.Ta)})
    a = actions_of(r)
    res.check("infer with numpy scalars (list elements, horizon): the same actions",
              a is not None and np.array_equal(a, ref), short(r))
    r = cl.call({"endpoint": "reset", "session": "enc", "seed": np.float64(7.5)})
    res.check("a numpy float seed is refused with a sentence",
              isinstance(r, dict) and "seed" in str(r.get("error", "")), short(r))
    cl.close()


def section_determinism(res, c):
    ca, cb = Client(c.zctx, c.main), Client(c.zctx, c.main)
    got = {}
    for name, cl, seed in (("A", ca, 1234), ("B", cb, 1234), ("C", ca, 1235)):
        sess = f"det{name}"
        r = cl.call({"endpoint": "reset", "session": sess, "seed": seed})
        res.check(f"reset session {sess} seed {seed}: ok", isinstance(r, dict) and r.get("ok") is True, short(r))
        chunks = []
        for f in c.frames[:3]:
            a = actions_of(cl.call({"endpoint": "infer", "session": sess, "obs": obs_msg(f, c.keys)}))
            chunks.append(a.tobytes() if a is not None else None)
        got[name] = chunks
    res.check("same seed, same frames, two sessions on two sockets: bit-identical actions",
              None not in got["A"] and got["A"] == got["B"],
              "chunks differ: " + str([x == y for x, y in zip(got["A"], got["B"])]))
    res.check("another seed: other actions", None not in got["C"] and all(x != y for x, y in zip(got["A"], got["C"])),
              str([x == y for x, y in zip(got["A"], got["C"])]))
    # reset with the same seed again reproduces the first chunk (and reset clears the history)
    r = ca.call({"endpoint": "reset", "session": "detA", "seed": 1234})
    a = actions_of(ca.call({"endpoint": "infer", "session": "detA", "obs": obs_msg(c.frames[0], c.keys)}))
    res.check("reset (same seed) after 3 infers: the first chunk again", a is not None and a.tobytes() == got["A"][0])
    ca.close()
    cb.close()


def section_history(res, c):
    cl = Client(c.zctx, c.main)
    To, seed = c.To, 99
    fr = c.frames[1:1 + To]
    # A: observe f1..f(To-1), infer fTo (rank 1)
    cl.call({"endpoint": "reset", "session": "histA", "seed": seed})
    hist = []
    for i, f in enumerate(fr[:-1]):
        r = cl.call({"endpoint": "observe", "session": "histA", "obs": obs_msg(f, c.keys)})
        hist.append(r.get("history_frames") if isinstance(r, dict) else r)
        res.check(f"observe frame {i + 1}: ok, history_frames {i + 1}",
                  isinstance(r, dict) and r.get("ok") is True and r.get("history_frames") == i + 1, short(r))
    ra = cl.call({"endpoint": "infer", "session": "histA", "obs": obs_msg(fr[-1], c.keys)})
    a = actions_of(ra)
    res.check(f"infer after observes: history_frames {To}, seq 1 (observe does not count)",
              isinstance(ra, dict) and ra.get("history_frames") == To and ra.get("seq") == 1, short(ra))
    # B: rank 2, all To frames at once
    cl.call({"endpoint": "reset", "session": "histB", "seed": seed})
    rb = cl.call({"endpoint": "infer", "session": "histB", "obs": obs_msg(stack(fr, c.keys), c.keys)})
    b = actions_of(rb)
    res.check(f"observe f1..f{To - 1} + infer f{To} == infer stacked ({To}, dim) on another session",
              a is not None and b is not None and a.tobytes() == b.tobytes(), f"{short(ra)} vs {short(rb)}",
              note=f"To {To}")
    res.check(f"rank-2 infer: history_frames {To}", isinstance(rb, dict) and rb.get("history_frames") == To, short(rb))
    # controls: the order matters, and the history matters
    if To >= 2:
        cl.call({"endpoint": "reset", "session": "histC", "seed": seed})
        rc = actions_of(cl.call({"endpoint": "infer", "session": "histC",
                                 "obs": obs_msg(stack(fr[::-1], c.keys), c.keys)}))
        res.check("frames in the other order: other actions", rc is not None and a is not None
                  and rc.tobytes() != a.tobytes())
        cl.call({"endpoint": "reset", "session": "histC", "seed": seed})
        rd = actions_of(cl.call({"endpoint": "infer", "session": "histC", "obs": obs_msg(fr[-1], c.keys)}))
        res.check("the newest frame alone (fresh history): other actions", rd is not None and a is not None
                  and rd.tobytes() != a.tobytes())
        # a (1, dim) rank-2 frame == a rank-1 frame on a fresh history (padding with the oldest)
        cl.call({"endpoint": "reset", "session": "histC", "seed": seed})
        re1 = actions_of(cl.call({"endpoint": "infer", "session": "histC",
                                  "obs": obs_msg(stack(fr[-1:], c.keys), c.keys)}))
        res.check("rank-2 with one frame == rank-1 on a fresh history", re1 is not None and rd is not None
                  and re1.tobytes() == rd.tobytes())
        # rank 2 replaces a longer history: session A (now To+ frames) gets the same as B's first
        cl.call({"endpoint": "reset", "session": "histA", "seed": seed})
        for f in c.frames[4:7]:
            cl.call({"endpoint": "observe", "session": "histA", "obs": obs_msg(f, c.keys)})
        rr = actions_of(cl.call({"endpoint": "infer", "session": "histA", "obs": obs_msg(stack(fr, c.keys), c.keys)}))
        res.check("rank-2 infer replaces an existing history", rr is not None and b is not None
                  and rr.tobytes() == b.tobytes())
    # a failed request leaves the history alone: D = observe fr[:-1], bad infer, infer fr[-1] == A
    cl.call({"endpoint": "reset", "session": "histD", "seed": seed})
    for f in fr[:-1]:
        cl.call({"endpoint": "observe", "session": "histD", "obs": obs_msg(f, c.keys)})
    bad = obs_msg(c.frames[7], c.keys)
    bad[c.keys[-1]] = pack_array(np.full(c.dims[-1], np.nan))
    rbad = cl.call({"endpoint": "infer", "session": "histD", "obs": bad})
    res.check("infer with a NaN: error", isinstance(rbad, dict) and "error" in rbad, short(rbad))
    rdd = cl.call({"endpoint": "infer", "session": "histD", "obs": obs_msg(fr[-1], c.keys)})
    res.check("an error reply changes neither the history nor the sampler",
              actions_of(rdd) is not None and a is not None and actions_of(rdd).tobytes() == a.tobytes()
              and rdd.get("seq") == 1, short(rdd))
    cl.close()


def section_errors(res, c):
    keys, dims, f = c.keys, c.dims, c.frames[0]
    good = obs_msg(f, keys)
    pinger = Client(c.zctx, c.main)

    def after(name, srv):
        other = pinger if srv is c.main else Client(c.zctx, srv)
        r = other.call({"endpoint": "ping", "id": 7})
        if other is not pinger:
            other.close()
        res.check(f"{name}: a ping from another client still works",
                  isinstance(r, dict) and r.get("ok") is True and r.get("id") == 7, short(r))

    def expect(name, msg, words, rid=None, srv=None):
        srv = srv or c.main
        cl = Client(c.zctx, srv)
        r = cl.call(msg)
        err = r.get("error") if isinstance(r, dict) else None
        ok = isinstance(err, str) and len(err) > 10 and all(w.lower() in err.lower() for w in words)
        res.check(f"{name}: error naming {', '.join(repr(w) for w in words)}", ok, short(r),
                  note=repr(err))
        if rid is not None:
            res.check(f"{name}: id {rid} echoed", isinstance(r, dict) and r.get("id") == rid, short(r))
        if isinstance(r, dict):
            extra = set(r) - {"error", "id"}
            res.check(f"{name}: reply has only error (and id)", not extra, f"extra fields {extra}")
        cl.close()
        after(name, srv)

    expect("garbage bytes", b"\xc1\xffnot msgpack at all", ["msgpack"])
    expect("truncated msgpack", msgpack.packb({"endpoint": "ping"})[:-2], ["msgpack"])
    expect("a msgpack list", msgpack.packb(["endpoint", "ping"]), ["map"])
    expect("unknown endpoint", {"endpoint": "fly", "id": 11}, ["fly"], 11)
    expect("no endpoint", {"id": 12}, ["endpoint"], 12)
    expect("infer without obs", {"endpoint": "infer", "id": 13}, ["obs"], 13)
    expect("unknown obs key", {"endpoint": "infer", "id": 14, "obs": {**good, "bogus_key": pack_array(np.zeros(3))}},
           ["bogus_key"], 14)
    missing = {k: v for k, v in good.items() if k != keys[-1]}
    expect("missing obs key", {"endpoint": "infer", "id": 15, "obs": missing}, [keys[-1], "missing"], 15)
    expect("wrong shape", {"endpoint": "infer", "id": 16, "obs": {**good, keys[0]: pack_array(np.zeros(dims[0] + 1))}},
           [keys[0], "shape"], 16)
    expect("too many frames", {"endpoint": "infer", "id": 17,
                               "obs": {k: pack_array(np.zeros((c.To + 1, d))) for k, d in zip(keys, dims)}},
           [keys[0], "shape"], 17)
    mixed = {**good, keys[0]: pack_array(np.zeros((1, dims[0])))}
    expect("rank 1 and rank 2 mixed", {"endpoint": "infer", "id": 18, "obs": mixed}, ["rank"], 18)
    i4 = {b"__ndarray__": True, b"data": np.zeros(dims[0], "<i4").tobytes(), b"dtype": "<i4", b"shape": [dims[0]]}
    expect("obs dtype <i4", {"endpoint": "infer", "id": 19, "obs": {**good, keys[0]: i4}}, ["<i4", keys[0]], 19)
    expect("actions dtype <i4", {"endpoint": "infer", "id": 20, "obs": good, "dtype": "<i4"}, ["dtype"], 20)
    short_data = {**pack_array(np.zeros(dims[0])), b"data": b"\0" * 4}
    expect("data bytes do not match the shape", {"endpoint": "infer", "id": 21, "obs": {**good, keys[0]: short_data}},
           [keys[0], "bytes"], 21)
    nan = {**good, keys[1]: pack_array(np.full(dims[1], np.nan))}
    expect("NaN value", {"endpoint": "infer", "id": 22, "obs": nan}, [keys[1], "finite"], 22)
    inf = {k: np.asarray(f[k], dtype=np.float64).tolist() for k in keys}
    inf[keys[0]][0] = float("inf")
    expect("inf value (plain list)", {"endpoint": "observe", "id": 23, "obs": inf}, [keys[0], "finite"], 23)
    expect("unknown field", {"endpoint": "ping", "id": 24, "colour": "red"}, ["colour"], 24)
    expect("seed on infer", {"endpoint": "infer", "id": 25, "obs": good, "seed": 3}, ["seed"], 25)
    expect("negative seed", {"endpoint": "reset", "id": 26, "seed": -3}, ["seed"], 26)
    expect("session name over 64 bytes", {"endpoint": "reset", "id": 27, "session": "s" * 65}, ["session"], 27)
    expect("id not an integer", {"endpoint": "ping", "id": "x"}, ["id"])
    expect("obs on ping", {"endpoint": "ping", "id": 28, "obs": good}, ["obs"], 28)
    expect("obs not a map", {"endpoint": "infer", "id": 29, "obs": [1, 2]}, ["obs"], 29)
    # multi-frame messages from DEALERs, with and without the empty delimiter
    p = msgpack.packb({"endpoint": "ping", "id": 40})
    for delim in (True, False):
        d = Client(c.zctx, c.main, zmq.DEALER, delim=delim)
        d.sock.send_multipart(([b""] if delim else []) + [p, p])
        raw = d.recv()
        r = decode(raw) if raw is not None else None
        c.main.count(r, "ping")
        tag = "multi-frame message from a DEALER" + (" (with delimiter)" if delim else "")
        res.check(f"{tag}: error naming 'frame'",
                  isinstance(r, dict) and "frame" in str(r.get("error", "")).lower(), short(r), note=repr(r))
        res.check(f"{tag}: reply envelope mirrors the request's", d.envelope_ok)
        d.close()
        after(tag, c.main)
    # the message-size limit: a node with --max-msg-kb 4
    small = c.small
    big = {"endpoint": "infer", "id": 50, "obs": {**good, keys[0]: pack_array(np.zeros((10000 // 4 // dims[0], dims[0])))}}
    n = len(encode(big))
    expect(f"a {n}-byte message to a node with --max-msg-kb 4", big, ["limit"], srv=small)
    # over 16x the limit: libzmq drops the peer without a reply, the node goes on
    huge = b"\x81\xa8endpoint\xc6" + (100_000).to_bytes(4, "big") + bytes(100_000)
    d = Client(c.zctx, small, zmq.DEALER)
    d.send(huge)
    raw = d.recv(timeout_ms=500)
    res.check(f"a {len(huge)}-byte message (over 16x the limit): no reply", raw is None,
              short(decode(raw)) if raw else "")
    d.close()
    after("over 16x the limit", small)
    pinger.close()


def section_concurrency(res, c):
    N = 200
    results = {}

    def worker(idx, kind, delim, session):
        cl = Client(c.zctx, c.main, kind, delim)
        seqs, ids_ok, shapes_ok, lost = [], True, True, 0
        rng = np.random.default_rng(100 + idx)
        try:
            window = 10 if kind == zmq.DEALER else 1   # DEALERs pipeline 10 requests
            for start in range(0, N, window):
                ids = list(range(start, min(start + window, N)))
                for i in ids:
                    f = c.frames[int(rng.integers(len(c.frames)))]
                    msg = {"endpoint": "infer", "obs": obs_msg(f, c.keys), "id": idx * 1000 + i}
                    if session:
                        msg["session"] = session
                    cl.send(msg)
                for i in ids:
                    raw = cl.recv()
                    r = decode(raw) if raw is not None else None
                    c.main.count(r, "infer")
                    if r is None:
                        lost += 1
                        continue
                    seqs.append(r.get("seq"))
                    ids_ok &= r.get("id") == idx * 1000 + i
                    a = actions_of(r)
                    shapes_ok &= a is not None and a.shape == (c.Ta, c.A)
        except Exception as e:   # noqa: BLE001
            lost = f"exception {e!r}"
        finally:
            results[idx] = (seqs, ids_ok, shapes_ok, lost, cl.envelope_ok)
            cl.close()

    specs = [(0, zmq.REQ, True, "conc-req0"), (1, zmq.REQ, True, "conc-req1"),
             (2, zmq.REQ, True, None), (3, zmq.REQ, True, None),          # keyed by ZeroMQ identity
             (4, zmq.DEALER, True, None), (5, zmq.DEALER, False, "conc-dealer5")]
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=s, daemon=True) for s in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    secs = time.monotonic() - t0
    res.check("6 clients finished", all(not t.is_alive() for t in threads), "a thread is still running",
              note=f"{6 * N} infers in {secs:.2f} s")
    for idx, kind, delim, session in specs:
        name = (f"{'REQ' if kind == zmq.REQ else 'DEALER'} {idx}" + ("" if kind == zmq.REQ else
                (" ['', payload]" if delim else " [payload]")) + f", session {session or 'by identity'}")
        seqs, ids_ok, shapes_ok, lost, env_ok = results.get(idx, ([], False, False, "no result", False))
        res.check(f"{name}: {N} replies, none lost", lost == 0 and len(seqs) == N, f"lost {lost}, got {len(seqs)}")
        res.check(f"{name}: seq 1..{N}", seqs == list(range(1, N + 1)),
                  f"first seqs {seqs[:5]}, last {seqs[-3:]}")
        res.check(f"{name}: ids and shapes", ids_ok and shapes_ok and env_ok,
                  f"ids {ids_ok}, shapes {shapes_ok}, envelope {env_ok}")


def section_eviction(res, c):
    srv = Server(c.lfp, c.policy, c.tmp, "evict", "--max-sessions", "2")
    c.servers.append(srv)
    cl = Client(c.zctx, srv)
    lru, model = [], {"created": 0, "evicted": 0}   # an LRU model of the node's sessions

    def touch(s):
        if s in lru:
            lru.remove(s)
        else:
            model["created"] += 1
            if len(lru) == 2:
                lru.pop(0)
                model["evicted"] += 1
        lru.append(s)

    def infer(s, f):
        touch(s)
        return cl.call({"endpoint": "infer", "session": s, "obs": obs_msg(f, c.keys)})

    sess = ["ev0", "ev1", "ev2"]
    hf, seq = [], []
    for rnd in range(5):
        for s in sess:
            r = infer(s, c.frames[rnd])
            hf.append(r.get("history_frames") if isinstance(r, dict) else None)
            seq.append(r.get("seq") if isinstance(r, dict) else None)
    res.check("3 sessions round robin on 2 slots: each request finds its history gone (history_frames 1, seq 1)",
              hf == [1] * 15 and seq == [1] * 15, f"history_frames {hf}, seq {seq}")
    hf, seq = [], []
    for rnd in range(4):
        for s in sess[1:]:
            r = infer(s, c.frames[rnd])
            hf.append(r.get("history_frames") if isinstance(r, dict) else None)
            seq.append(r.get("seq") if isinstance(r, dict) else None)
    want_hf = [min(2 + r, c.To) for r in range(4) for _ in range(2)]
    res.check("2 sessions alternating on 2 slots: the history is kept",
              hf == want_hf and seq == [2 + r for r in range(4) for _ in range(2)],
              f"history_frames {hf} (want {want_hf}), seq {seq}")
    # memory: thousands of evictions later the node is no bigger (after a warm-up that lets
    # allocators, ASan's included, reach their steady state)
    for i in range(1500):
        infer(sess[i % 3], c.frames[i % 8])
    rss0 = srv.rss_kb()
    for i in range(1500):
        infer(f"evm{i % 3}", c.frames[i % 8])
    rss1 = srv.rss_kb()
    res.check("memory after 1500 more evicting infers does not grow (< 2 MiB)",
              rss0 > 0 and rss1 - rss0 < 2048, f"VmRSS {rss0} -> {rss1} KiB", note=f"VmRSS {rss0} -> {rss1} KiB")
    cl.close()
    rc, secs, js, out = srv.stop(signal.SIGTERM)
    res.check("eviction node: SIGTERM -> exit 0", rc == 0, f"rc {rc}, stdout {out!r}")
    js = js or {}
    want = {"requests": srv.sent, "evictions": model["evicted"], "sessions_created": model["created"],
            "sessions_live": 2, "errors": 0}
    got = {k: js.get(k) for k in want}
    res.check("eviction node: --json counters match an LRU model", got == want, f"got {got}, want {want}",
              note=f"{model['evicted']} evictions")


def check_stop(res, c, srv, sig, tag):
    rc, secs, js, out = srv.stop(sig)
    res.check(f"{tag}: exit 0 within {STOP_S:.0f} s", rc == 0 and secs <= STOP_S,
              f"rc {rc} after {secs:.2f} s; stdout {out!r}, stderr {srv.stderr()[-500:]!r}", note=f"{secs:.2f} s")
    res.check(f"{tag}: the last stdout line is a JSON object", isinstance(js, dict), repr(out[-300:]))
    js = js or {}
    want = {"requests": srv.sent, "errors": srv.errors, "infers": srv.infers}
    got = {k: js.get(k) for k in want}
    res.check(f"{tag}: --json requests / errors / infers == what was sent", got == want,
              f"got {got}, want {want}", note=str(got))
    res.check(f"{tag}: --json has the other counters",
              all(isinstance(js.get(k), (int, float)) for k in ("sessions_created", "sessions_live", "evictions",
                                                                "seconds")), repr(js))


def section_client_py(res, c):
    steps = 40
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/python3", c.client_py, "--connect", c.main.endpoint, "--steps", str(steps)],
                       capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S)
    secs = time.monotonic() - t0
    c.main.sent += 2 + steps                       # info, reset, one infer or observe per step
    c.main.infers += math.ceil(steps / c.Ta)
    out = p.stdout + p.stderr
    m = re.search(r"client: (\d+) steps, (\d+) chunks.*p50 ([0-9.]+) ms, first action \[", p.stdout)
    res.check("client.py against the node: exit 0", p.returncode == 0, f"rc {p.returncode}: {out!r}",
              note=f"{secs:.2f} s")
    res.check("client.py: prints the policy summary", "policy " in p.stdout and "action_dim" in p.stdout, repr(out))
    res.check("client.py: summary line (steps, chunks = ceil(steps / Ta))",
              bool(m) and int(m.group(1)) == steps and int(m.group(2)) == math.ceil(steps / c.Ta), repr(out),
              note=m.group(0) if m else "")
    # a dead endpoint: a port nothing listens on
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    dead = f"tcp://127.0.0.1:{port}"
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/python3", c.client_py, "--connect", dead, "--timeout-ms", "300"],
                       capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S)
    secs = time.monotonic() - t0
    out = (p.stdout + p.stderr).strip()
    res.check("client.py against a dead endpoint: exit 1 within 5 s", p.returncode == 1 and secs < 5,
              f"rc {p.returncode} after {secs:.2f} s: {out!r}", note=f"{secs:.2f} s")
    res.check("client.py against a dead endpoint: a clear message naming the endpoint",
              dead in out and "traceback" not in out.lower() and ("no reply" in out or "timed out" in out.lower()),
              repr(out), note=repr(out))


def section_shutdown(res, c):
    # SIGINT on the --max-msg-kb 4 node while a DEALER that never reads has thousands of
    # requests outstanding (its receive queue is 1 message, so replies back up in the node)
    small = c.small
    d = c.zctx.socket(zmq.DEALER)
    d.setsockopt(zmq.LINGER, 0)
    d.setsockopt(zmq.RCVHWM, 1)
    d.setsockopt(zmq.RCVBUF, 4096)
    d.connect(small.endpoint)
    K = 4000
    req = msgpack.packb({"endpoint": "info"})
    sent = 0
    for _ in range(K):
        if not d.poll(RECV_MS, zmq.POLLOUT):
            break
        d.send_multipart([b"", req])
        sent += 1
    small.sent += sent
    res.check(f"DEALER that never reads: {K} requests sent", sent == K, f"only {sent}")
    time.sleep(1.5)                                  # let the node take them all in
    other = Client(c.zctx, small)
    r = other.call({"endpoint": "ping"})
    other.close()
    res.check("the node still answers others meanwhile", isinstance(r, dict) and r.get("ok") is True, short(r))
    check_stop(res, c, small, signal.SIGINT, "SIGINT (--max-msg-kb 4 node, DEALER with requests outstanding)")
    d.close(0)
    # SIGTERM on the main node: every request of this test counted
    check_stop(res, c, c.main, signal.SIGTERM, "SIGTERM (main node)")


# ----------------------------------------------------------------------------- main

def main():
    if len(sys.argv) < 3:
        print("usage: /usr/bin/python3 tests/test_node_py.py LFP_BINARY CLIENT_PY")
        return 1
    lfp, client_py = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if not (os.path.isfile(lfp) and os.access(lfp, os.X_OK)):
        print(f"test_node_py: lfp not found or not executable: {lfp}")
        return 1
    if not os.path.isfile(client_py):
        print(f"test_node_py: client.py not found: {client_py}")
        return 1
    print(f"pyzmq {zmq.__version__} (libzmq {zmq.zmq_version()}), msgpack {'.'.join(map(str, msgpack.version))}, "
          f"numpy {np.__version__}; lfp {lfp}")
    res = Results()
    t_start = time.monotonic()
    c = Ctx()
    c.lfp, c.client_py, c.servers = lfp, client_py, []
    c.zctx = zmq.Context()
    with tempfile.TemporaryDirectory(prefix="lfp_node_py_") as tmp:
        c.tmp = tmp
        c.h5, c.policy = os.path.join(tmp, "d.hdf5"), os.path.join(tmp, "p.lfp")
        try:
            for args in (["collect", "--env", "lift", "--episodes", "10", "--seed", "1", "--out", c.h5],
                         ["train", "--data", c.h5, "--out", c.policy, "--steps", "300", "--width", "64"]):
                p = subprocess.run([lfp, *args], capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S)
                if not res.check(f"lfp {args[0]}: exit 0", p.returncode == 0,
                                 f"rc {p.returncode}: {(p.stdout + p.stderr)[-800:]!r}"):
                    raise RuntimeError(f"lfp {args[0]} failed")
            c.main = Server(lfp, c.policy, tmp, "main")
            c.small = Server(lfp, c.policy, tmp, "small", "--max-msg-kb", "4")
            c.servers += [c.main, c.small]
            print(f"    (nodes on {c.main.endpoint} and {c.small.endpoint} (--max-msg-kb 4))")
            res.section("1: info", section_info, c)
            res.section("2: encodings", section_encodings, c)
            res.section("3: determinism", section_determinism, c)
            res.section("4: history", section_history, c)
            res.section("5: errors", section_errors, c)
            res.section("6: concurrency", section_concurrency, c)
            res.section("7: session eviction", section_eviction, c)
            res.section("9: tools/client.py", section_client_py, c)
            res.section("8: shutdown", section_shutdown, c)
        except Exception:
            res.check("setup ran without a Python exception", False, "\n" + traceback.format_exc().rstrip())
        finally:
            for s in c.servers:
                s.kill()
            c.zctx.destroy(linger=0)
    print(f"{res.passed} passed, {res.failed} failed ({time.monotonic() - t_start:.1f} s)")
    return 0 if res.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
