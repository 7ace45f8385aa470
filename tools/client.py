#!/usr/bin/python3
"""Example robot-side client of `lfp serve` (protocol 3; it uses none of the additions of protocols 2 and 3, so older nodes serve it too): info, reset, then a control loop.

    /usr/bin/python3 tools/client.py [--connect tcp://127.0.0.1:5555] [--steps 40] [--timeout-ms 2000]

Needs Debian's python3-zmq and python3-msgpack (run it with /usr/bin/python3).
"""
import argparse, sys, time
import msgpack, numpy as np, zmq

def pack_array(a):
    """numpy array -> openpi's msgpack-numpy map (bin keys, dtype as str)."""
    a = np.ascontiguousarray(a, dtype="<f4")
    return {b"__ndarray__": True, b"data": a.tobytes(), b"dtype": a.dtype.str, b"shape": list(a.shape)}

def unpack_array(obj):
    """msgpack hook: an ndarray map -> numpy array; anything else unchanged."""
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
    return obj

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connect", default="tcp://127.0.0.1:5555")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--timeout-ms", type=int, default=2000)
    ap.add_argument("--curve-server", help="CURVE: the node's public key (its .pub file, from lfp keygen)")
    ap.add_argument("--curve-secret", help="CURVE: this client's secret key (lfp keygen's .key, mode 0600)")
    args = ap.parse_args()
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)                    # never hang on exit
    if args.curve_server or args.curve_secret:        # encrypted, and our key must be on the node's allowlist
        if not (args.curve_server and args.curve_secret):
            sys.exit("client: --curve-server and --curve-secret go together")
        secret = open(args.curve_secret, "rb").read().strip()
        sock.curve_serverkey = open(args.curve_server, "rb").read().strip()
        sock.curve_secretkey, sock.curve_publickey = secret, zmq.curve_public(secret)
    sock.setsockopt(zmq.RCVTIMEO, args.timeout_ms)    # a dead server -> zmq.Again
    sock.connect(args.connect)

    def call(endpoint, **fields):
        """One request, one reply; an error reply or a timeout ends the program."""
        sock.send(msgpack.packb({"endpoint": endpoint, **fields}))
        try:
            reply = msgpack.unpackb(sock.recv(), object_hook=unpack_array)
        except zmq.Again:
            sys.exit(f"client: no reply from {args.connect} within {args.timeout_ms} ms (is `lfp serve` running?)")
        if "error" in reply:
            sys.exit(f"client: {endpoint} failed: {reply['error']}")
        return reply

    info = call("info")
    print(f"policy {info['policy']} ({info['method']}, {info['sampler']} NFE {info['nfe']}): "
          f"obs {dict(zip(info['obs_keys'], (s[0] for s in info['obs_shapes'])))}, "
          f"action_dim {info['action_dim']}, To {info['To']}, Ta {info['Ta']}, {info['control_hz']} Hz")
    call("reset", seed=0)                             # fresh history, reproducible samples
    queue, rtts, chunks, clipped, first = [], [], 0, 0, None
    for _ in range(args.steps):
        # No simulator here: a fixed observation (zeros with info's shapes, newest frame only).
        # A robot reads its sensors here; zeros are out of the training distribution, so
        # expect clipped actions.
        obs = {k: pack_array(np.zeros(s[0])) for k, s in zip(info["obs_keys"], info["obs_shapes"])}
        t = time.perf_counter()
        if not queue:                                 # queue empty: a new chunk of Ta actions
            reply = call("infer", obs=obs)
            queue, chunks, clipped = list(reply["actions"]), chunks + 1, clipped + reply["clipped"]
        else:                                         # still executing a chunk: keep the history current
            call("observe", obs=obs)
        rtts.append((time.perf_counter() - t) * 1e3)
        action = queue.pop(0)                         # a robot would send this to its controller now
        first = action if first is None else first
    print(f"client: {args.steps} steps, {chunks} chunks ({clipped} values clipped), round trip p50 "
          f"{np.median(rtts) if rtts else 0:.3f} ms, first action {None if first is None else [round(float(v), 3) for v in first]}")

if __name__ == "__main__":
    main()
