"""lfp.Client: the robot stack's side of an `lfp serve` node, protocol 1 over pyzmq.

Needs Debian's python3-zmq and python3-msgpack. Requests are msgpack maps,
arrays travel as openpi's msgpack-numpy maps; a request that gets no reply
within timeout_ms is sent again on a fresh REQ socket (Lazy Pirate), up to
`retries` times, then lfp.Error names the endpoint.
"""
import os, time

import msgpack
import numpy as np
import zmq
import zmq.utils.z85

from ._native import Error, RefusedError


def pack_array(a):
    """numpy array -> openpi's msgpack-numpy map (float64 kept as <f8, the rest as <f4)."""
    a = np.asarray(a)
    a = np.ascontiguousarray(a, dtype="<f8" if a.dtype == np.float64 else "<f4")
    return {b"__ndarray__": True, b"data": a.tobytes(), b"dtype": a.dtype.str, b"shape": list(a.shape)}


def _unpack_hook(obj):
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"]).copy()
    return obj


def read_key(path, secret=False):
    """A CURVE key file of lfp keygen (one line of 40 Z85 characters) -> bytes.

    A secret key must not be readable by group or others (mode 0600), as lfp checks."""
    if secret:
        mode = os.stat(path).st_mode & 0o777
        if mode & 0o077:
            raise ValueError(f"the secret key {path} may be read by others (mode {mode:04o}): chmod 600 {path}")
    with open(path, "rb") as f:
        text = f.read().rstrip(b"\r\n")
    try:
        ok = len(text) == 40 and len(zmq.utils.z85.decode(text)) == 32
    except Exception:
        ok = False
    if not ok:
        raise ValueError(f"{path} is not a CURVE {'secret' if secret else 'public'} key: it should hold one line of "
                         f"40 Z85 characters (lfp keygen writes them)")
    return text


class Client:
    """A client of the node at endpoint ("tcp://host:port", "ipc://path").

    info() -> dict; reset(seed=None); infer(obs, horizon=None) -> (Ta or horizon, action_dim);
    observe(obs) -> frames in the history. obs maps each key to its newest frame (dim,) or to
    frames (n, dim), oldest first. One session per client (its history and RNG on the node).
    With curve_server (the node's .pub file) and curve_secret (this client's .key file) the
    connection is encrypted with CURVE; a node that does not admit the key never answers.
    """

    def __init__(self, endpoint, timeout_ms=2000, retries=3, session=None, context=None, curve_server=None,
                 curve_secret=None):
        self.endpoint, self.timeout_ms, self.retries = endpoint, int(timeout_ms), int(retries)
        self.session = session or f"py-{os.getpid()}-{id(self):x}-{time.time_ns()}"
        self._ctx = context or zmq.Context.instance()
        self._sock, self._id = None, 0
        self.resent = 0       # requests sent again after a timeout (Lazy Pirate), over the client's life
        self.last_attempts = 0  # sends of the last request (1: answered at once)
        if (curve_server is None) != (curve_secret is None):
            raise ValueError("CURVE needs both curve_server (the node's .pub) and curve_secret (this client's .key)")
        self._curve = None
        if curve_server is not None:
            sec = read_key(curve_secret, secret=True)
            self._curve = (read_key(curve_server), zmq.curve_public(sec), sec)
        self._open()

    def _open(self):
        if self._sock is not None:
            self._sock.close(0)
        self._sock = self._ctx.socket(zmq.REQ)
        self._sock.setsockopt(zmq.LINGER, 0)
        if self._curve is not None:
            self._sock.curve_serverkey, self._sock.curve_publickey, self._sock.curve_secretkey = self._curve
        self._sock.connect(self.endpoint)

    def close(self):
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, endpoint, **fields):
        """One request (endpoint, session, id and fields) and its reply map; errors raise."""
        self._id += 1
        msg = msgpack.packb({"endpoint": endpoint, "session": self.session, "id": self._id, **fields})
        for attempt in range(self.retries + 1):
            if attempt:
                self._open()  # Lazy Pirate: the old REQ socket waits for its reply forever
                self.resent += 1
            self.last_attempts = attempt + 1
            self._sock.send(msg)
            if self._sock.poll(self.timeout_ms, zmq.POLLIN):
                reply = msgpack.unpackb(self._sock.recv(), object_hook=_unpack_hook, strict_map_key=False)
                break
        else:
            self._open()
            raise Error(f"the controller at {self.endpoint} did not answer {self.retries + 1} "
                        f"request{'s' if self.retries else ''} within {self.timeout_ms} ms each")
        if not isinstance(reply, dict):
            raise Error("the controller's reply is not a msgpack map")
        if "error" in reply:
            raise (RefusedError if reply.get("refused") else Error)(f"the controller answered with an error: {reply['error']}")
        if reply.get("id", self._id) != self._id:
            raise Error(f"the controller's reply has id {reply['id']}, not {self._id}")
        return reply

    def info(self):
        return self.call("info")

    def reset(self, seed=None):
        if seed is None:
            self.call("reset")
        else:
            self.call("reset", seed=int(seed))

    def _obs(self, obs):
        return {k: pack_array(v) for k, v in obs.items()}

    def infer(self, obs, horizon=None):
        fields = {"obs": self._obs(obs), "dtype": "<f8"}  # the actions as the node computed them
        if horizon is not None:
            fields["horizon"] = int(horizon)
        reply = self.call("infer", **fields)
        return np.asarray(reply["actions"], dtype=np.float64)

    def observe(self, obs):
        return self.call("observe", obs=self._obs(obs))["history_frames"]
