#!/usr/bin/python3
"""CURVE security of lfp serve, against real clients: pyzmq (Debian's python3-zmq, with
libsodium's CURVE), the Python package's lfp.Client, tools/client.py and lfp sim.

    /usr/bin/python3 tests/test_curve.py LFP_BINARY

1. lfp keygen: NAME.key (mode 0600) and NAME.pub, 40 Z85 characters each, the public key
   derived from the secret one; it never overwrites a key.
2. lfp serve --curve-secret server.key --allow DIR: a client whose key is in DIR is served
   (pyzmq, lfp.Client, tools/client.py, lfp sim with --curve-server/--curve-secret); an
   unlisted key, a plaintext client and a client with the wrong server key get no reply, the
   node logs one line for the unlisted key, and it goes on serving the listed client.
3. Keys with wrong permissions or malformed contents, a missing or empty allowlist: one
   sentence, exit 1; --curve-secret without --allow: exit 2.
4. Binding beyond loopback without CURVE needs --insecure (loopback needs nothing).
5. The websocket side's API key (openpi's Authorization: Api-Key header): a client without it
   or with a wrong one is refused, one with it is served.
"""
import asyncio, os, shutil, stat, subprocess, sys, tempfile, time

import msgpack
import zmq

from lfptest import check, finish, free_port, one_sentence, serve, train_policy

LFP = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "python"))
import lfp  # noqa: E402  (the Python package, from the tree)


def run(*args, timeout=120):
    return subprocess.run([LFP, *args], capture_output=True, text=True, timeout=timeout)


def req(endpoint, keys=None, timeout_ms=1500):
    """One ping over a fresh REQ socket (keys: (server public, client public, client secret)):
    the reply, or None when nothing came back in time."""
    s = zmq.Context.instance().socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    if keys:
        s.curve_serverkey, s.curve_publickey, s.curve_secretkey = keys
    s.connect(endpoint)
    s.send(msgpack.packb({"endpoint": "ping"}))
    got = msgpack.unpackb(s.recv()) if s.poll(timeout_ms) else None
    s.close(0)
    return got


def main():
    tmp = tempfile.mkdtemp(prefix="lfp_curve_")
    tr = train_policy(LFP, tmp)
    if not tr:
        return finish()
    h5, pol = tr
    k = lambda n: os.path.join(tmp, n)  # noqa: E731

    # 1. keygen
    allow = k("allow")
    os.mkdir(allow)
    for name in ("server", "c1", "c2"):
        r = run("keygen", "--out", k(name), "--json")
        check(f"keygen {name}: exit 0", r.returncode == 0, r.stderr[-300:])
    mode = stat.S_IMODE(os.stat(k("server.key")).st_mode)
    check("keygen: the secret key has mode 0600", mode == 0o600, oct(mode))
    sec, pub = (open(k("c1." + e), "rb").read() for e in ("key", "pub"))
    check("keygen: one line of 40 Z85 characters each", len(sec) == 41 and len(pub) == 41 and sec.endswith(b"\n"))
    check("keygen: the public key is the secret one's", zmq.curve_public(sec.strip()) == pub.strip())
    ok, why = one_sentence(run("keygen", "--out", k("c1")), 1, ["exists", "never replaces"])
    check("keygen refuses to overwrite a key", ok, why)
    os.link(k("c1.pub"), os.path.join(allow, "robot1.pub"))

    # 2. an encrypted, allowlisted node
    proc, ep, err = serve(LFP, pol, tmp, extra=("--curve-secret", k("server.key"), "--allow", allow))
    time.sleep(0.2)
    log = open(err).read()
    spub = open(k("server.pub"), "rb").read().strip()
    check("serve prints the server's public key", spub.decode() in log and "admitting the 1 key" in log, log[-300:])
    c1 = (spub, pub.strip(), sec.strip())
    c2s = open(k("c2.key"), "rb").read().strip()
    c2 = (spub, zmq.curve_public(c2s), c2s)
    wrong_server = (zmq.curve_keypair()[0], pub.strip(), sec.strip())
    got = req(ep, c1)
    check("a listed client is served (pyzmq)", isinstance(got, dict) and "error" not in got, str(got))
    check("an unlisted key gets nothing", req(ep, c2) is None)
    check("a plaintext client gets nothing", req(ep, None) is None)
    check("a client with the wrong server key gets nothing", req(ep, wrong_server) is None)
    check("the listed client is still served", req(ep, c1) is not None)
    time.sleep(0.2)
    log = open(err).read()
    refusals = [l for l in log.splitlines() if "refused a client" in l]
    check("the node logs one line for the unlisted key", len(refusals) >= 1 and c2[1].decode() in refusals[0] and
          allow in refusals[0], log[-500:])
    with lfp.Client(ep, timeout_ms=3000, retries=1, curve_server=k("server.pub"), curve_secret=k("c1.key")) as c:
        info = c.info()
        check("lfp.Client with CURVE: info", info.get("protocol", 0) >= 1, str(info))
    try:
        with lfp.Client(ep, timeout_ms=500, retries=0, curve_server=k("server.pub"), curve_secret=k("c2.key")) as c:
            c.info()
        check("lfp.Client with an unlisted key fails", False, "answered")
    except lfp.Error as e:
        check("lfp.Client with an unlisted key fails", "no reply" in str(e) or ep in str(e), str(e))
    r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "..", "tools", "client.py"), "--connect", ep, "--steps", "3",
                        "--curve-server", k("server.pub"), "--curve-secret", k("c1.key")],
                       capture_output=True, text=True, timeout=60)
    check("tools/client.py with CURVE", r.returncode == 0, (r.stdout + r.stderr)[-400:])
    r = run("sim", "--connect", ep, "--episodes", "1", "--curve-server", k("server.pub"), "--curve-secret", k("c1.key"),
            "--json")
    check("lfp sim with CURVE", r.returncode == 0 and '"success_rate"' in r.stdout, r.stderr[-400:])
    r = run("sim", "--connect", ep, "--episodes", "1", "--curve-server", k("server.pub"), "--curve-secret", k("c2.key"),
            "--timeout-ms", "300", "--retries", "1")
    ok, why = one_sentence(r, 1, [ep])
    check("lfp sim with an unlisted key: one sentence, exit 1", ok, why)
    proc.terminate()
    out, _ = proc.communicate(timeout=20)
    check("serve stops on SIGTERM and counts the refused", proc.returncode == 0 and "clients refused" in open(err).read(),
          open(err).read()[-300:])

    # 3. bad keys and allowlists
    os.chmod(k("c2.key"), 0o644)
    ok, why = one_sentence(run("serve", "--policy", pol, "--bind", "tcp://127.0.0.1:*", "--curve-secret", k("c2.key"),
                               "--allow", allow), 1, ["c2.key", "may be read by others", "chmod 600"])
    check("a secret key readable by others: one sentence", ok, why)
    bad = k("bad.key")
    with open(bad, "w") as f:
        f.write("not a key\n")
    os.chmod(bad, 0o600)
    ok, why = one_sentence(run("serve", "--policy", pol, "--bind", "tcp://127.0.0.1:*", "--curve-secret", bad,
                               "--allow", allow), 1, ["bad.key", "40 Z85"])
    check("a malformed secret key: one sentence", ok, why)
    empty = k("empty")
    os.mkdir(empty)
    ok, why = one_sentence(run("serve", "--policy", pol, "--bind", "tcp://127.0.0.1:*", "--curve-secret", k("server.key"),
                               "--allow", empty), 1, ["no .pub file"])
    check("an empty allowlist: one sentence", ok, why)
    with open(os.path.join(empty, "x.pub"), "w") as f:
        f.write("short\n")
    ok, why = one_sentence(run("serve", "--policy", pol, "--bind", "tcp://127.0.0.1:*", "--curve-secret", k("server.key"),
                               "--allow", empty), 1, ["x.pub", "public key"])
    check("a malformed public key in the allowlist: one sentence naming it", ok, why)
    ok, why = one_sentence(run("serve", "--policy", pol, "--curve-secret", k("server.key")), 2, ["--allow"])
    check("--curve-secret without --allow: exit 2", ok, why)
    ok, why = one_sentence(run("sim", "--connect", "tcp://127.0.0.1:9", "--curve-server", k("server.pub")), 2,
                           ["--curve-secret"])
    check("sim --curve-server without --curve-secret: exit 2", ok, why)

    # 4. beyond loopback
    port = free_port()
    ok, why = one_sentence(run("serve", "--policy", pol, "--bind", f"tcp://0.0.0.0:{port}"), 2,
                           ["leaves this machine", "--curve-secret", "--insecure"])
    check("binding 0.0.0.0 without CURVE needs --insecure", ok, why)
    p2, ep2, err2 = serve(LFP, pol, tmp, binds=(f"tcp://0.0.0.0:{port}",), extra=("--insecure",))
    check("--insecure serves it", req(f"tcp://127.0.0.1:{port}") is not None)
    p2.terminate()
    p2.communicate(timeout=20)
    p3, ep3, err3 = serve(LFP, pol, tmp, binds=(f"tcp://0.0.0.0:{free_port()}",),
                          extra=("--curve-secret", k("server.key"), "--allow", allow))
    check("0.0.0.0 with CURVE needs no --insecure", p3.poll() is None)
    p3.terminate()
    p3.communicate(timeout=20)

    # 5. the websocket side's API key
    import websockets
    keyf = k("api.key")
    with open(keyf, "w") as f:
        f.write("s3cret-0123456789abcdef\n")
    os.chmod(keyf, 0o600)
    wport = free_port()
    p4, ep4, err4 = serve(LFP, pol, tmp, binds=(f"ws://127.0.0.1:{wport}",), extra=("--api-key-file", keyf))

    async def attempt(headers):
        try:
            async with websockets.connect(f"ws://127.0.0.1:{wport}", extra_headers=headers, open_timeout=5) as ws:
                meta = msgpack.unpackb(await ws.recv())
                return "policy" in meta
        except Exception:  # noqa: BLE001 - a refused handshake
            return False

    check("websocket: with the API key, served", asyncio.run(attempt({"Authorization": "Api-Key s3cret-0123456789abcdef"})))
    check("websocket: without it, refused", not asyncio.run(attempt({})))
    check("websocket: with a wrong one, refused", not asyncio.run(attempt({"Authorization": "Api-Key wrong-0123456789abcdef"})))
    p4.terminate()
    p4.communicate(timeout=20)
    log = open(err4).read()
    check("websocket: the refusals are logged", log.count("refused a websocket client") == 2, log[-400:])
    os.chmod(keyf, 0o644)
    ok, why = one_sentence(run("serve", "--policy", pol, "--bind", f"ws://127.0.0.1:{free_port()}", "--api-key-file", keyf),
                           1, ["api.key", "may be read by others"])
    check("an API key file readable by others: one sentence", ok, why)
    ok, why = one_sentence(run("serve", "--policy", pol, "--bind", f"ws://0.0.0.0:{free_port()}"), 2,
                           ["--api-key-file", "--insecure"])
    check("a websocket beyond loopback needs an API key or --insecure", ok, why)
    shutil.rmtree(tmp, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
