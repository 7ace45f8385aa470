#!/usr/bin/python3
"""A fleet: lfp broker with lfp serve --connect workers, against 8 real clients (the Python
package's lfp.Client over pyzmq, Lazy Pirate retries), one worker killed mid-run.

    /usr/bin/python3 tests/test_fleet.py LFP_BINARY

1. Sticky sessions: with 2 workers, 8 clients' sessions are each created on one worker only
   (the workers' session counts add up to 8) and spread over both.
2. A worker killed (SIGKILL) while 8 clients run: every request is answered, none after more
   than one retry; the broker counts the worker lost and the sessions moved; the other worker
   goes on.
3. No worker at all: an error reply at once, naming the fix.
4. A worker whose broker dies reconnects to a new one on the same endpoint.
5. The broker with CURVE: a listed client and a listed worker work, an unlisted worker is
   never given a request; beyond loopback without CURVE needs --insecure.
6. Usage errors: one sentence each.
"""
import json, os, shutil, signal, subprocess, sys, tempfile, threading, time

import numpy as np

from lfptest import check, finish, free_port, one_sentence, train_policy, wait_for

LFP = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "python"))
import lfp  # noqa: E402

HB = 500  # ms: heartbeat period (a loaded CI machine must not starve a worker for 3 of them)


def start(args, tmp, tag):
    err = os.path.join(tmp, f"{tag}.err")
    out = os.path.join(tmp, f"{tag}.json")
    env = {**os.environ, "FC_THREADS": "1"}
    with open(err, "wb") as ef, open(out, "wb") as of:
        p = subprocess.Popen([LFP, *args, "--json"], stdout=of, stderr=ef, stdin=subprocess.DEVNULL, env=env)
    return p, err, out


def stop(p, out):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)
    text = open(out).read().strip()
    return json.loads(text.splitlines()[-1]) if text else {}


def clients(ep, n, requests, obs_keys, log, kill=None, kill_after=0):
    """n threads, each one session: reset(seed), then `requests` infers; results in log."""
    done = [0]
    lock = threading.Lock()

    def run(i):
        rec = {"answered": 0, "errors": [], "max_attempts": 0, "resent": 0}
        try:
            with lfp.Client(ep, timeout_ms=1500, retries=3, session=f"robot-{i}") as c:
                c.reset(seed=1000 + i)
                for t in range(requests):
                    obs = {k: np.full(d, 0.01 * ((t + i) % 7), dtype=np.float64) for k, d in obs_keys}
                    try:
                        a = c.infer(obs)
                        rec["answered"] += np.isfinite(a).all()
                    except lfp.Error as e:
                        rec["errors"].append(str(e))
                    rec["max_attempts"] = max(rec["max_attempts"], c.last_attempts)
                    rec["resent"] = c.resent
                    with lock:
                        done[0] += 1
                        if kill is not None and done[0] == kill_after:
                            kill()
        except Exception as e:  # noqa: BLE001 - reported
            rec["errors"].append(f"{type(e).__name__}: {e}")
        log[i] = rec

    th = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in th:
        t.start()
    for t in th:
        t.join()
    return time.monotonic() - t0


def main():
    tmp = tempfile.mkdtemp(prefix="lfp_fleet_")
    tr = train_policy(LFP, tmp)
    if not tr:
        return finish()
    _, pol = tr
    fport, bport = free_port(), free_port()
    front, back = f"tcp://127.0.0.1:{fport}", f"tcp://127.0.0.1:{bport}"
    br, br_err, br_out = start(["broker", "--frontend", front, "--backend", back, "--heartbeat-ms", str(HB)], tmp, "broker")
    check("the broker starts", wait_for(br_err, r"clients on tcp://"), open(br_err).read()[-300:])

    # 3. no worker yet
    try:
        with lfp.Client(front, timeout_ms=2000, retries=0) as c:
            c.info()
        check("no worker: an error reply", False, "answered")
    except lfp.Error as e:
        check("no worker: an error reply at once, naming the fix", "no worker is serving" in str(e) and "--connect" in str(e),
              str(e))

    worker = lambda tag: start(["serve", "--policy", pol, "--connect", back, "--heartbeat-ms", str(HB)], tmp, tag)  # noqa: E731
    w1, w2 = worker("w1"), worker("w2")
    check("2 workers join", wait_for(br_err, r"worker \S+ joined", 2), open(br_err).read()[-300:])
    with lfp.Client(front) as c:
        info = c.info()
    keys = [(k, s[0]) for k, s in zip(info["obs_keys"], info["obs_shapes"])]

    # 1. sticky sessions over 2 workers
    log = {}
    secs = clients(front, 8, 20, keys, log)
    ok = all(r["answered"] == 20 and not r["errors"] for r in log.values())
    check("8 clients x 20 infers through 2 workers: all answered", ok, str(log))
    s1, s2 = stop(w1[0], w1[2]), stop(w2[0], w2[2])
    made = (s1.get("sessions_created", 0), s2.get("sessions_created", 0))
    check("sessions are sticky: each created on one worker (8 in all), both workers used",
          sum(made) == 8 and min(made) >= 2, f"sessions created per worker {made}")
    check("the workers served every request between them",
          s1.get("infers", 0) + s2.get("infers", 0) == 160, f"{s1.get('infers')} + {s2.get('infers')}")
    print(f"  (8 clients, 2 workers: {160 / secs:.0f} infers/s on this machine)")

    # 2. a worker killed mid-run
    w3, w4 = worker("w3"), worker("w4")
    check("2 fresh workers join", wait_for(br_err, r"worker \S+ joined", 4), open(br_err).read()[-300:])
    log = {}
    clients(front, 8, 40, keys, log, kill=lambda: w3[0].kill(), kill_after=120)
    answered = sum(r["answered"] for r in log.values())
    errors = [e for r in log.values() for e in r["errors"]]
    attempts = max(r["max_attempts"] for r in log.values())
    resent = sum(r["resent"] for r in log.values())
    check("a worker killed mid-run: all 320 requests answered", answered == 320 and not errors,
          f"{answered} answered, errors {errors[:3]}")
    check("none needed more than one retry", attempts <= 2, f"at most {attempts} sends")
    w3[0].wait(timeout=10)
    s4 = stop(w4[0], w4[2])
    check("the surviving worker went on serving", s4.get("infers", 0) >= 160, str(s4))

    # 4. a worker outlives its broker: it reconnects to a new one on the same endpoint
    w5 = worker("w5")
    check("a worker joins", wait_for(br_err, r"worker \S+ joined", 5))
    # a broker frozen for 5 heartbeat periods: the worker reconnects (a fresh socket, READY)
    br.send_signal(signal.SIGSTOP)
    time.sleep(5 * HB / 1000)
    br.send_signal(signal.SIGCONT)
    check("a worker whose broker went silent reconnects", wait_for(w5[1], "is silent; reconnecting") and
          wait_for(br_err, r"worker \S+ joined", 6), open(w5[1]).read()[-300:])
    with lfp.Client(front, timeout_ms=3000, retries=2) as c:
        check("and is served through again", c.info().get("protocol", 0) >= 1)
    b1 = stop(br, br_out)
    check("the broker counted the lost workers and moved sessions",
          b1.get("workers_lost", 0) >= 3 and b1.get("moved", 0) >= 1 and b1.get("no_worker") == 1, str(b1))
    # every request is answered, refused for want of a worker, or was lost on the killed worker and sent again
    check("the broker's requests = replies + no-worker errors + the clients' resends",
          b1.get("replies", 0) + b1.get("no_worker", 0) + resent == b1.get("requests"), f"{b1}, {resent} resent")
    br, br_err, br_out = start(["broker", "--frontend", front, "--backend", back, "--heartbeat-ms", str(HB)], tmp, "broker2")
    check("the worker of the stopped broker joins the new one on the same endpoint",
          wait_for(br_err, r"worker \S+ joined", 1, timeout=15), open(br_err).read()[-300:] + open(w5[1]).read()[-300:])
    with lfp.Client(front, timeout_ms=3000, retries=2) as c:
        check("and serves through it", c.info().get("protocol", 0) >= 1)
    stop(w5[0], w5[2])
    stop(br, br_out)

    # 5. CURVE on the broker
    allow = os.path.join(tmp, "allow")
    os.mkdir(allow)
    for name in ("broker", "robot", "worker", "rogue"):
        subprocess.run([LFP, "keygen", "--out", os.path.join(tmp, name)], check=True, capture_output=True)
    for name in ("robot", "worker"):
        os.link(os.path.join(tmp, f"{name}.pub"), os.path.join(allow, f"{name}.pub"))
    k = lambda n: os.path.join(tmp, n)  # noqa: E731
    br, br_err, br_out = start(["broker", "--frontend", front, "--backend", back, "--heartbeat-ms", str(HB),
                                "--curve-secret", k("broker.key"), "--allow", allow], tmp, "broker3")
    check("a CURVE broker starts", wait_for(br_err, r"CURVE on both"), open(br_err).read()[-300:])
    rogue = start(["serve", "--policy", pol, "--connect", back, "--heartbeat-ms", str(HB),
                   "--curve-server", k("broker.pub"), "--curve-secret", k("rogue.key")], tmp, "rogue")
    check("an unlisted worker is refused", wait_for(br_err, r"refused a client .* not in"), open(br_err).read()[-300:])
    good = start(["serve", "--policy", pol, "--connect", back, "--heartbeat-ms", str(HB),
                  "--curve-server", k("broker.pub"), "--curve-secret", k("worker.key")], tmp, "good")
    check("a listed worker joins", wait_for(br_err, r"worker \S+ joined"), open(br_err).read()[-300:])
    with lfp.Client(front, timeout_ms=3000, retries=1, curve_server=k("broker.pub"), curve_secret=k("robot.key")) as c:
        for _ in range(5):
            c.info()
        check("a listed client is served through the CURVE broker", True)
    g = stop(good[0], good[2])
    r = stop(rogue[0], rogue[2])
    check("every request went to the listed worker", g.get("requests", 0) == 5 and r.get("requests", 0) == 0,
          f"listed {g.get('requests')}, unlisted {r.get('requests')}")
    stop(br, br_out)

    # 6. usage
    def usage(args, code, words):
        ok, why = one_sentence(subprocess.run([LFP, *args], capture_output=True, text=True, timeout=30), code, words)
        return check(f"lfp {' '.join(args[:3])}...: exit {code}, one sentence", ok, why)

    usage(["broker", "--frontend", f"tcp://0.0.0.0:{free_port()}", "--backend", back], 2, ["--insecure"])
    usage(["broker", "--frontend", front, "--backend", back, "--allow", allow], 2, ["--curve-secret"])
    usage(["serve", "--policy", pol, "--connect", back, "--bind", "tcp://127.0.0.1:*"], 2, ["--connect", "--bind"])
    usage(["serve", "--policy", pol, "--connect", back, "--curve-secret", k("robot.key")], 2, ["--curve-server"])
    shutil.rmtree(tmp, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
