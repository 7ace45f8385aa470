"""What the Python tests of lfp share: checks that count failures, a small trained policy,
and an `lfp serve` process on free loopback endpoints."""
import os, re, socket, subprocess, time

FAILED = []


def check(name, ok, detail=""):
    """Print one check; a failure is remembered in FAILED (summary: finish())."""
    print(f"  {'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
    if not ok:
        FAILED.append(name)
    return ok


def raises(name, cls, words, fn):
    """Check that fn() raises cls with every one of words in its message."""
    try:
        fn()
    except cls as e:
        msg = str(e)
        return check(name, all(w in msg for w in words), f"{cls.__name__} {msg!r} lacks one of {words}")
    except Exception as e:  # noqa: BLE001 - reported
        return check(name, False, f"{type(e).__name__}: {e}")
    return check(name, False, "no exception")


def finish():
    """Print the summary; the exit status."""
    print("FAILED: " + ", ".join(FAILED) if FAILED else "all passed")
    return 1 if FAILED else 0


def train_policy(lfp_bin, tmp, episodes=4, steps=100, width=32):
    """lfp collect (lift, seed 1) and lfp train into tmp: (data file, policy file), or None."""
    h5, pol = os.path.join(tmp, "d.hdf5"), os.path.join(tmp, "p.lfp")
    for args in (["collect", "--env", "lift", "--episodes", str(episodes), "--seed", "1", "--out", h5],
                 ["train", "--data", h5, "--out", pol, "--steps", str(steps), "--width", str(width)]):
        r = subprocess.run([lfp_bin, *args], capture_output=True, text=True, timeout=300)
        if not check(f"lfp {args[0]}: exit 0", r.returncode == 0, (r.stdout + r.stderr)[-600:]):
            return None
    return h5, pol


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def serve(lfp_bin, pol, tmp, binds=("tcp://127.0.0.1:*",), extra=()):
    """lfp serve --json on binds, one thread, OpenBLAS as loaded (so results compare bit for bit
    with a one-thread process); returns (process, the endpoint it printed first, its stderr file)."""
    err = os.path.join(tmp, f"serve{time.monotonic_ns()}.err")
    args = [lfp_bin, "serve", "--policy", pol, "--json", *extra]
    for b in binds:
        args += ["--bind", b]
    env = {**os.environ, "LFP_BLAS_AUTO": "0", "FC_THREADS": "1"}
    with open(err, "wb") as ef:
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=ef, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and p.poll() is None:
        m = re.search(r" on ((?:tcp|ws)://[0-9.]+:\d+)(?: and \S+)?, protocol \d+;", open(err).read())
        if m:
            return p, m.group(1), err
        time.sleep(0.05)
    p.kill()
    raise RuntimeError(f"lfp serve did not start: {open(err).read()[-400:]}")


def wait_for(path, pattern, n=1, timeout=10):
    """True once the file at path holds n matches of the regex pattern (polled), False at timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(re.findall(pattern, open(path).read())) >= n:
            return True
        time.sleep(0.05)
    return False


def one_sentence(r, code, words):
    """(ok, detail): a finished subprocess exited with code and wrote one stderr line holding every word."""
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    return (r.returncode == code and len(lines) == 1 and all(w in lines[0] for w in words),
            f"exit {r.returncode}, stderr {r.stderr!r}")
