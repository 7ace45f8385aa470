#!/usr/bin/python3
"""lfp serve's websocket side against a client of openpi's protocol written from it, with
Debian's python3-websockets 10 (asyncio), python3-msgpack and numpy; the same node on ZeroMQ
at once (pyzmq).

    /usr/bin/python3 tests/test_ws.py LFP_BINARY

1. --bind tcp://... --bind ws://...: on connect the node's metadata frame (its info map);
   GET /healthz answers 200 "OK", another path 404.
2. Each binary frame (an observation dict in openpi's msgpack-numpy, with a str "prompt"
   skipped) gets {"actions": (Ta, A), "server_timing": {"infer_ms", "prev_total_ms"}};
   a websocket session reseeded over ZeroMQ gives the actions a ZeroMQ session with the same
   seed gets, bit for bit.
3. A websocket client and a ZeroMQ client served at once, nothing lost.
4. Errors as openpi's server sends them: a text frame with the sentence, then close 1011; a
   text frame from the client likewise; a frame over --max-msg-kb closed with 1009.
5. Usage: two websocket binds, a malformed ws:// endpoint, a port in use: one sentence each.
"""
import asyncio, os, socket, subprocess, sys, tempfile, threading, urllib.error, urllib.request

import msgpack
import numpy as np
import websockets
import zmq

from lfptest import check, finish, free_port, serve, train_policy


def pack(a):
    a = np.ascontiguousarray(a, dtype="<f4")
    return {b"__ndarray__": True, b"data": a.tobytes(), b"dtype": a.dtype.str, b"shape": list(a.shape)}


def unpack(o):
    if b"__ndarray__" in o:
        return np.ndarray(buffer=o[b"data"], dtype=np.dtype(o[b"dtype"]), shape=o[b"shape"])
    return o


async def ws_session(url, frames):
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        meta = msgpack.unpackb(await ws.recv(), object_hook=unpack)
        replies = []
        for f in frames:
            await ws.send(msgpack.packb(f))
            replies.append(msgpack.unpackb(await ws.recv(), object_hook=unpack))
        return meta, replies


async def ws_error(url, payload, text=False):
    """send one frame, return (the frame received, the close code)"""
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.recv()
        await ws.send(payload.decode() if text else payload)
        got = None
        try:
            got = await ws.recv()
            await ws.recv()
        except websockets.ConnectionClosed as e:
            return got, e.code
        return got, None


def main():
    lfp_bin = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="lfp_ws_") as tmp:
        made = train_policy(lfp_bin, tmp)
        if not made:
            return 1
        pol = made[1]
        zport, wport = free_port(), free_port()
        zep, wurl = f"tcp://127.0.0.1:{zport}", f"ws://127.0.0.1:{wport}"
        srv, _, errf = serve(lfp_bin, pol, tmp, (zep, wurl))
        ctx = zmq.Context()
        try:
            run(ctx, zep, wurl, wport)
        finally:
            srv.terminate()
            srv.wait(timeout=10)
        check("serve printed both endpoints", zep in open(errf).read() and wurl in open(errf).read())
        print("4b: a frame over --max-msg-kb")
        port2 = free_port()
        srv2, _, _ = serve(lfp_bin, pol, tmp, (f"ws://127.0.0.1:{port2}",), extra=("--max-msg-kb", "1"))
        try:
            got, code = asyncio.run(ws_error(f"ws://127.0.0.1:{port2}", b"\x00" * 4096))
            check("closed with 1009", code == 1009, (got, code))
        finally:
            srv2.terminate()
            srv2.wait(timeout=10)
        print("5: usage")
        for args, words in (([wurl, "ws://127.0.0.1:1"], ["one ZeroMQ and one websocket"]),
                            (["ws://nowhere"], ["ws://HOST:PORT"]), ([f"ws://127.0.0.1:{zport}"], [])):
            busy = None
            if not words:  # a port in use
                busy = socket.socket()
                busy.bind(("127.0.0.1", 0))
                busy.listen(1)
                args = [f"ws://127.0.0.1:{busy.getsockname()[1]}"]
                words = ["cannot listen on"]
            cmd = [lfp_bin, "serve", "--policy", pol]
            for b in args:
                cmd += ["--bind", b]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            lines = r.stderr.strip().splitlines()
            check(f"--bind {' --bind '.join(args)}: one sentence, exit != 0",
                  r.returncode != 0 and len(lines) == 1 and all(w in r.stderr for w in words), (r.returncode, r.stderr))
            if busy:
                busy.close()
        ctx.destroy(linger=0)
    return finish()


def run(ctx, zep, wurl, wport):
    z = ctx.socket(zmq.REQ)
    z.setsockopt(zmq.LINGER, 0)
    z.setsockopt(zmq.RCVTIMEO, 10000)
    z.connect(zep)

    def zcall(msg):
        z.send(msgpack.packb(msg))
        return msgpack.unpackb(z.recv(), object_hook=unpack)

    info = zcall({"endpoint": "info"})
    keys, dims, Ta, A = info["obs_keys"], [s[0] for s in info["obs_shapes"]], info["Ta"], info["action_dim"]
    rng = np.random.default_rng(2)
    frames = [{k: pack(rng.uniform(-0.1, 0.1, d)) for k, d in zip(keys, dims)} for _ in range(3)]
    for f in frames:
        f["prompt"] = "lift the cube"

    print("1: metadata and /healthz")
    zcall({"endpoint": "reset", "session": "ws-1", "seed": 5})  # the first websocket connection's session
    meta, replies = asyncio.run(ws_session(wurl, frames))
    check("the metadata frame is the node's info", meta.get("obs_keys") == keys and meta.get("Ta") == Ta, meta)
    body = urllib.request.urlopen(f"http://127.0.0.1:{wport}/healthz", timeout=10).read()
    check("GET /healthz: 200 OK", body.strip() == b"OK", body)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{wport}/other", timeout=10)
        check("GET /other: 404", False, "200")
    except urllib.error.HTTPError as e:
        check("GET /other: 404", e.code == 404, e.code)

    print("2: inference")
    check("3 replies of (Ta, A) actions", all(r["actions"].shape == (Ta, A) for r in replies), [r.keys() for r in replies])
    t = replies[1].get("server_timing", {})
    check("server_timing: infer_ms, and prev_total_ms after the first", "infer_ms" in replies[0]["server_timing"] and
          "prev_total_ms" not in replies[0]["server_timing"] and "infer_ms" in t and "prev_total_ms" in t, t)
    zcall({"endpoint": "reset", "session": "z", "seed": 5})
    same = [zcall({"endpoint": "infer", "session": "z", "obs": {k: v for k, v in f.items() if k != "prompt"}})
            for f in frames]
    check("equal bit for bit to a ZeroMQ session with the same seed",
          all(np.array_equal(r["actions"], s["actions"]) for r, s in zip(replies, same)))

    print("3: both transports at once")
    lost = []

    def zworker():
        zz = ctx.socket(zmq.REQ)
        zz.setsockopt(zmq.LINGER, 0)
        zz.setsockopt(zmq.RCVTIMEO, 10000)
        zz.connect(zep)
        for i in range(30):
            zz.send(msgpack.packb({"endpoint": "infer", "session": "zw",
                                   "obs": {k: v for k, v in frames[i % 3].items() if k != "prompt"}}))
            try:
                r = msgpack.unpackb(zz.recv(), object_hook=unpack)
                if "actions" not in r:
                    lost.append(r)
            except zmq.Again:
                lost.append("timeout")
        zz.close()

    th = threading.Thread(target=zworker)
    th.start()
    _, many = asyncio.run(ws_session(wurl, frames * 10))
    th.join()
    check("30 websocket and 30 ZeroMQ infers at once, all answered",
          len(many) == 30 and all("actions" in r for r in many) and not lost, lost[:3])

    print("4: errors")
    bad = dict(frames[0])
    bad["gripper_cam"] = pack(np.zeros(3))
    got, code = asyncio.run(ws_error(wurl, msgpack.packb(bad)))
    check("an unknown key: a text frame with the sentence, then close 1011",
          isinstance(got, str) and "gripper_cam" in got and code == 1011, (got, code))
    got, code = asyncio.run(ws_error(wurl, b"hello", text=True))
    check("a text frame from the client: a sentence, then close 1011",
          isinstance(got, str) and "binary" in got and code == 1011, (got, code))
    got, code = asyncio.run(ws_error(wurl, b"\xc1"))
    check("bytes that are not msgpack: a sentence, then close 1011", isinstance(got, str) and code == 1011, (got, code))
    r = zcall({"endpoint": "ping"})
    check("the node serves on", r.get("ok") is True, r)


if __name__ == "__main__":
    sys.exit(main())
