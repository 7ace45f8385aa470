#!/usr/bin/python3
"""Throughput of a fleet: infers/s of C clients (8 threads of lfp.Client) against one node
bound directly, and against lfp broker with 1 and 2 lfp serve --connect workers.

    /usr/bin/python3 tools/bench_fleet.py [LFP_BINARY] [--seconds 5] [--clients 8] [--json]

The policy is a lift policy trained first (200 steps; lfp train's default network, or --width). Each client is a session
sending infers back to back (Lazy Pirate, none expected to retry). Clients, broker and workers
share this machine's cores: on a 2-core machine a second worker has at most the cores the
clients leave it; the figure that carries to a real fleet is the broker's cost (direct node
against 1 worker) and what a second machine's worker adds.
"""
import argparse, json, os, signal, subprocess, sys, tempfile, threading, time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "python"))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import lfp  # noqa: E402
import lfptest  # noqa: E402
from lfptest import free_port  # noqa: E402


def start(binary, args, tmp, tag):
    err = os.path.join(tmp, tag + ".err")
    with open(err, "wb") as ef:
        p = subprocess.Popen([binary, *args, "--json"], stdout=subprocess.DEVNULL, stderr=ef, env={**os.environ, "FC_THREADS": "1"})
    return p, err


def wait_for(path, pattern, n=1):
    if not lfptest.wait_for(path, pattern, n, timeout=15):
        raise RuntimeError(f"{path}: no {pattern!r}: {open(path).read()[-300:]}")


def load(ep, nclients, secs):
    with lfp.Client(ep) as c:
        info = c.info()
    keys = [(k, s[0]) for k, s in zip(info["obs_keys"], info["obs_shapes"])]
    counts, stop = [0] * nclients, [False]

    def run(i):
        with lfp.Client(ep, timeout_ms=3000, retries=2, session=f"bench-{i}") as c:
            c.reset(seed=i)
            obs = {k: np.full(d, 0.01 * i) for k, d in keys}
            while not stop[0]:
                c.infer(obs)
                counts[i] += 1

    th = [threading.Thread(target=run, args=(i,)) for i in range(nclients)]
    for t in th:
        t.start()
    time.sleep(0.5)  # warm-up
    c0, t0 = sum(counts), time.monotonic()
    time.sleep(secs)
    c1, t1 = sum(counts), time.monotonic()
    stop[0] = True
    for t in th:
        t.join()
    return (c1 - c0) / (t1 - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lfp", nargs="?", default=os.path.join(HERE, "..", "build", "lfp"))
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--width", type=int, default=0, help="the policy's MLP width (0: lfp train's default)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="lfp_bench_fleet_")
    h5, pol = os.path.join(tmp, "d.hdf5"), os.path.join(tmp, "p.lfp")
    subprocess.run([a.lfp, "collect", "--env", "lift", "--episodes", "10", "--seed", "1", "--out", h5], check=True,
                   capture_output=True)
    subprocess.run([a.lfp, "train", "--data", h5, "--out", pol, "--steps", "200",
                    *(["--width", str(a.width)] if a.width else [])], check=True, capture_output=True)
    res = {}
    port = free_port()
    node, err = start(a.lfp, ["serve", "--policy", pol, "--bind", f"tcp://127.0.0.1:{port}"], tmp, "node")
    wait_for(err, "protocol")
    res["direct"] = load(f"tcp://127.0.0.1:{port}", a.clients, a.seconds)
    node.send_signal(signal.SIGTERM)
    node.wait()
    for k in (1, 2):
        fp, bp = free_port(), free_port()
        br, berr = start(a.lfp, ["broker", "--frontend", f"tcp://127.0.0.1:{fp}", "--backend", f"tcp://127.0.0.1:{bp}"],
                         tmp, f"broker{k}")
        ws = [start(a.lfp, ["serve", "--policy", pol, "--connect", f"tcp://127.0.0.1:{bp}"], tmp, f"w{k}{i}")
              for i in range(k)]
        wait_for(berr, r"worker \S+ joined", k)
        res[f"workers_{k}"] = load(f"tcp://127.0.0.1:{fp}", a.clients, a.seconds)
        for p, _ in ws + [(br, berr)]:
            p.send_signal(signal.SIGTERM)
            p.wait()
    print(f"bench fleet: {a.clients} clients, {a.seconds:g} s each, {os.cpu_count()} cores shared by clients and servers, "
          f"policy width {a.width or 'default'}")
    print(f"  one node, bound directly   {res['direct']:7.0f} infers/s")
    print(f"  broker + 1 worker          {res['workers_1']:7.0f} infers/s ({res['workers_1'] / res['direct']:.2f}x direct)")
    print(f"  broker + 2 workers         {res['workers_2']:7.0f} infers/s ({res['workers_2'] / res['workers_1']:.2f}x one worker)")
    if a.json:
        print(json.dumps({"clients": a.clients, "cores": os.cpu_count(), "width": a.width,
                          **{k + "_per_s": v for k, v in res.items()}}))


if __name__ == "__main__":
    main()
