#!/usr/bin/python3
"""lfp serve against a client of Isaac GR00T's ZeroMQ dialect, written from the protocol
(msgpack, arrays as {"__ndarray_class__": True, "as_npy": np.save bytes}), with Debian's
python3-zmq, python3-msgpack and numpy.

    /usr/bin/python3 tests/test_gr00t.py LFP_BINARY

1. ping (without data it is lfp's ping, which GR00T's client accepts: it only waits for a
   reply), get_modality_config (ModalityConfig as GR00T's serializer writes it), reset.
2. get_action, N1.5 style (flat "state.KEY", video and annotation entries skipped) and N1.6
   style ({"observation": {"state": {...}}, "options": None} -> [action, info]): (B, Ta, A)
   float32, equal bit for bit to lfp's own batched infer of the same frames and seed.
3. Refusals, each an {"error": sentence} and the node serving on: an object array (pickle),
   a Fortran-ordered or big-endian array, a truncated .npy, a (T, D) state, an unknown key,
   a missing key, kill, api_token.
"""
import io, json, os, sys, tempfile

import msgpack
import numpy as np
import zmq

from lfptest import check, finish, serve, train_policy


def npy(a, **kw):
    b = io.BytesIO()
    np.save(b, a, **kw)
    return {"__ndarray_class__": True, "as_npy": b.getvalue()}


def decode(obj):
    if isinstance(obj, dict) and "__ndarray_class__" in obj:
        return np.load(io.BytesIO(obj["as_npy"]), allow_pickle=False)
    if isinstance(obj, dict) and "__ModalityConfig_class__" in obj:
        return json.loads(obj["as_json"])
    return obj


class Gr00tClient:
    """What GR00T's PolicyClient does: REQ, {"endpoint", "data"}, msgpack with numpy hooks."""

    def __init__(self, ctx, ep):
        self.sock = ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, 10000)
        self.sock.connect(ep)

    def call(self, endpoint, data=None, **extra):
        req = {"endpoint": endpoint, **extra}
        if data is not None:
            req["data"] = data
        self.sock.send(msgpack.packb(req))
        return msgpack.unpackb(self.sock.recv(), object_hook=decode)

    def raw(self, payload):
        self.sock.send(payload)
        return msgpack.unpackb(self.sock.recv(), object_hook=decode)


def lfp_call(sock, msg):
    sock.send(msgpack.packb(msg))
    return msgpack.unpackb(sock.recv())


def main():
    lfp_bin = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="lfp_gr00t_") as tmp:
        made = train_policy(lfp_bin, tmp)
        if not made:
            return 1
        srv, ep, _ = serve(lfp_bin, made[1], tmp)
        ctx = zmq.Context()
        try:
            run(ctx, ep)
        finally:
            srv.terminate()
            srv.wait(timeout=10)
            ctx.destroy(linger=0)
    return finish()


def run(ctx, ep):
    g = Gr00tClient(ctx, ep)
    lsock = ctx.socket(zmq.REQ)
    lsock.setsockopt(zmq.LINGER, 0)
    lsock.setsockopt(zmq.RCVTIMEO, 10000)
    lsock.connect(ep)
    info = lfp_call(lsock, {"endpoint": "info"})
    keys, dims = info["obs_keys"], [s[0] for s in info["obs_shapes"]]
    To, Ta, A = info["To"], info["Ta"], info["action_dim"]

    print("1: ping, get_modality_config, reset")
    r = g.call("ping")  # without data it is lfp's ping; GR00T's client only waits for a reply
    check("ping: a reply map", isinstance(r, dict) and "error" not in r, r)
    r = g.call("ping", {})
    check("ping with data: GR00T's status ok", r.get("status") == "ok", r)
    mc = g.call("get_modality_config")
    check("modality config: the state keys", mc.get("state", {}).get("modality_keys") == keys, mc)
    check("modality config: state delta_indices -(To-1)..0",
          mc["state"].get("delta_indices") == list(range(1 - To, 1)), mc)
    check("modality config: action delta_indices 0..Ta-1", mc.get("action", {}).get("delta_indices") == list(range(Ta)))
    r = g.call("reset", {"options": None})
    check("reset: status ok", r.get("status") == "ok", r)

    print("2: get_action")
    B, T = 3, To
    rng = np.random.default_rng(4)
    frames = {k: rng.uniform(-0.2, 0.2, size=(B, T, d)).astype(np.float32) for k, d in zip(keys, dims)}
    # the same session's seed for both clients: each reseeds its own session (by ZeroMQ identity)
    lfp_call(lsock, {"endpoint": "reset", "seed": 3})
    g.raw(msgpack.packb({"endpoint": "reset", "seed": 3}))  # lfp's reset on the GR00T client's socket
    obs15 = {f"state.{k}": npy(v) for k, v in frames.items()}
    obs15["video.front"] = npy(np.zeros((B, T, 8, 8, 3), np.uint8))
    obs15["annotation.human.task_description"] = ["lift the cube"] * B
    r15 = g.call("get_action", obs15)
    a15 = r15.get("action") if isinstance(r15, dict) else None
    check("N1.5 reply: {'action': (B, Ta, A) float32}", a15 is not None and a15.shape == (B, Ta, A) and
          a15.dtype == np.float32, r15 if a15 is None else a15.shape)
    nd = lambda a: {"__ndarray__": True, "data": a.astype("<f8").tobytes(), "dtype": "<f8", "shape": list(a.shape)}
    ref = lfp_call(lsock, {"endpoint": "infer", "obs": {k: nd(v) for k, v in frames.items()}})
    ra = ref["actions"]
    mine = np.frombuffer(ra[b"data"] if b"data" in ra else ra["data"], dtype="<f4").reshape(B, Ta, A)
    check("equal bit for bit to lfp's batched infer (same frames, same seed)",
          a15 is not None and np.array_equal(a15, mine), f"{a15} vs {mine}")
    obs16 = {"observation": {"state": {k: npy(v) for k, v in frames.items()},
                             "video": {"front": npy(np.zeros((B, T, 8, 8, 3), np.uint8))},
                             "language": {"task": [["lift"]] * B}}, "options": None}
    r16 = g.call("get_action", obs16)
    ok16 = isinstance(r16, list) and len(r16) == 2 and isinstance(r16[0], dict) and "action" in r16[0]
    check("N1.6 reply: [{'action': (B, Ta, A)}, info]", ok16 and r16[0]["action"].shape == (B, Ta, A) and
          "clipped" in r16[1], r16)
    f64 = g.call("get_action", {f"state.{k}": npy(v.astype(np.float64)) for k, v in frames.items()})
    check("float64 state arrays are taken", isinstance(f64, dict) and f64["action"].shape == (B, Ta, A), f64)

    print("3: refusals")
    k0, d0 = keys[0], dims[0]
    good = {f"state.{k}": npy(v) for k, v in frames.items()}

    def refused(name, data, words, **extra):
        r = g.call("get_action", data, **extra)
        msg = r.get("error", "") if isinstance(r, dict) else ""
        check(name, bool(msg) and all(w in msg for w in words), r)

    obj = np.empty((B, T, d0), dtype=object)
    obj[...] = 1.0
    refused("an object array (pickle): refused, never unpickled", {**good, f"state.{k0}": npy(obj, allow_pickle=True)},
            [k0, "dtype"])
    refused("a Fortran-ordered array", {**good, f"state.{k0}": npy(np.asfortranarray(frames[k0]))}, [k0, "Fortran"])
    refused("a big-endian array", {**good, f"state.{k0}": npy(frames[k0].astype(">f4"))}, [k0, ">f4"])
    cut = npy(frames[k0])
    cut["as_npy"] = cut["as_npy"][:-5]
    refused("a truncated .npy", {**good, f"state.{k0}": cut}, [k0, "do not match"])
    refused("(T, D) states: GR00T's arrays are (B, T, D)", {f"state.{k}": npy(v[0]) for k, v in frames.items()},
            ["(B, T, D)"])
    refused("an unknown state key", {**good, "state.gripper_cam": npy(np.zeros((B, T, 2), np.float32))},
            ["gripper_cam"])
    refused("a missing state key", {k: v for k, v in good.items() if k != f"state.{k0}"}, [k0, "missing"])
    refused("an api_token", good, ["api_token"], api_token="secret")
    r = g.call("kill")
    check("kill is refused", "error" in r and "SIGTERM" in r["error"], r)
    r = g.call("ping", {})
    check("the node serves on after the refusals", r.get("status") == "ok", r)


if __name__ == "__main__":
    sys.exit(main())
