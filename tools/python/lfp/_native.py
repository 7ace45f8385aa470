"""lfp.Policy: liblfp's inference API (pol.h) through ctypes."""
import ctypes, ctypes.util, os, warnings

import numpy as np


class Error(RuntimeError):
    """An lfp failure, with lfp's sentence."""


class RefusedError(Error):
    """The policy refused to act (a non-finite chunk, or its sampler diverged): stop or hold."""


_ERRSZ = 1024
_lib = None
_path = None


def _candidates():
    env = os.environ.get("LFP_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        from ._install import LIBDIR  # written by cmake --install
        yield os.path.normpath(os.path.join(here, LIBDIR, "liblfp.so.0"))
    except ImportError:
        pass
    found = ctypes.util.find_library("lfp")
    if found:
        yield found


def _load():
    global _lib, _path
    if _lib is not None:
        return _lib
    tried = []
    for cand in _candidates():
        try:
            lib = ctypes.CDLL(cand)
        except OSError as e:
            tried.append(f"{cand} ({e})")
            continue
        _path = cand
        _lib = _declare(lib)
        return _lib
    raise Error("cannot load liblfp: " + ("; ".join(tried) if tried else "none installed")
                + " (set LFP_LIBRARY to the library's path)")


def _declare(lib):
    P, I, D, S, V = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_char_p, None
    U64, SZ = ctypes.c_uint64, ctypes.c_size_t
    dp = ctypes.POINTER(ctypes.c_double)
    ip = ctypes.POINTER(ctypes.c_int)
    for name, res, args in [
        ("lfp_version", S, []),
        ("fc_blas_core", S, []),
        ("fc_par_init", V, [I]),
        ("fc_threads", I, []),
        ("fc_blas_better_core", S, []),
        ("pol_load", P, [S, ctypes.c_char_p, SZ]),
        ("pol_free", V, [P]),
        ("pol_data_new", P, [P, U64]),
        ("pol_data_free", V, [P]),
        ("pol_reset", V, [P, U64]),
        ("pol_new_episode", V, [P]),
        ("pol_forget", V, [P]),
        ("pol_act", I, [P, P, dp, dp, ctypes.c_char_p, SZ]),
        ("pol_check_obs", I, [P, dp, ctypes.c_char_p, SZ]),
        ("pol_observe", I, [P, P, dp, ctypes.c_char_p, SZ]),
        ("pol_sample", I, [P, P, dp, ctypes.c_char_p, SZ]),
        ("pol_dims", V, [P, ip, ip, ip, ip, ip]),
        ("pol_nkeys", I, [P]),
        ("pol_key_name", S, [P, I]),
        ("pol_key_dim", I, [P, I]),
        ("pol_method_of", S, [P]),
        ("pol_control_hz", D, [P]),
    ]:
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


def library_path():
    """The liblfp this package loaded."""
    _load()
    return _path


def version():
    """liblfp's version string."""
    return _load().lfp_version().decode()


def blas_core():
    """(the kernel set OpenBLAS runs, a faster one this CPU has or None): Debian 12's OpenBLAS
    falls back to SSE3 "Prescott" kernels on CPUs newer than it; OPENBLAS_CORETYPE=<the faster>
    in the environment before Python starts fixes that (the lfp program does it by itself)."""
    lib = _load()
    better = lib.fc_blas_better_core()
    return lib.fc_blas_core().decode(), better.decode() if better else None


def set_threads(n=0):
    """Size flowcore's thread pool (fc_par_init: process-wide, and OpenBLAS set to one thread per
    call); n = 0: the CPUs this process may use, at most 8. Without it, lfp runs on the calling
    thread alone. Results are bit-identical for the same machine and thread count."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 56:
        raise ValueError(f"threads must be an integer in 0..56, not {n!r}")
    lib = _load()
    lib.fc_par_init(n)
    return lib.fc_threads()


_warned = False


def _warn_blas():
    global _warned
    if _warned:
        return
    _warned = True
    core, better = blas_core()
    if better:
        warnings.warn(f"lfp: OpenBLAS runs its {core} kernels on this CPU, several times slower than its {better} "
                      f"ones: start Python with OPENBLAS_CORETYPE={better} in the environment", RuntimeWarning,
                      stacklevel=3)


def _dptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


class Policy:
    """A trained lfp policy, in-process: `act` one observation at a time, as pol_act.

    Attributes: obs_keys, obs_dims (values per key, in the order the policy
    concatenates them), action_dim, To (observation frames), Tp (predicted
    actions), Ta (actions executed per chunk), method, control_hz.
    """

    def __init__(self, path, seed=0):
        lib = _load()
        err = ctypes.create_string_buffer(_ERRSZ)
        p = lib.pol_load(os.fsencode(path), err, _ERRSZ)
        if not p:
            raise Error(err.value.decode(errors="replace"))
        self._lib, self._p = lib, p
        _warn_blas()
        self._pd = lib.pol_data_new(p, seed & (2**64 - 1))
        dims = [ctypes.c_int() for _ in range(5)]
        lib.pol_dims(p, *[ctypes.byref(d) for d in dims])
        self.To, self.Tp, self.Ta, self.obs_dim, self.action_dim = (d.value for d in dims)
        n = lib.pol_nkeys(p)
        self.obs_keys = tuple(lib.pol_key_name(p, k).decode() for k in range(n))
        self.obs_dims = tuple(lib.pol_key_dim(p, k) for k in range(n))
        self.method = lib.pol_method_of(p).decode()
        self.control_hz = lib.pol_control_hz(p)
        self._err = err

    def close(self):
        """Free the policy (also done when it is garbage-collected)."""
        if getattr(self, "_p", None):
            self._lib.pol_data_free(self._pd)
            self._lib.pol_free(self._p)
            self._p = self._pd = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        keys = ", ".join(f"{k}: {d}" for k, d in zip(self.obs_keys, self.obs_dims))
        return f"lfp.Policy({self.method}, obs {{{keys}}}, action_dim {self.action_dim}, To {self.To}, Ta {self.Ta})"

    def _live(self):
        if not self._p:
            raise Error("the policy was closed")

    def _frames(self, obs, what):
        """obs dict -> (n, obs_dim) float64, the keys concatenated in the policy's order."""
        if not isinstance(obs, dict):
            raise ValueError(f"{what} must be a dict of the keys {list(self.obs_keys)}, not {type(obs).__name__}")
        missing = [k for k in self.obs_keys if k not in obs]
        extra = [k for k in obs if k not in self.obs_keys]
        if missing:
            raise ValueError(f"{what} lacks the key '{missing[0]}' (the policy observes {list(self.obs_keys)})")
        if extra:
            raise ValueError(f"{what} has the key '{extra[0]}', which the policy does not observe "
                             f"({list(self.obs_keys)})")
        parts, n = [], None
        for k, d in zip(self.obs_keys, self.obs_dims):
            try:
                a = np.asarray(obs[k], dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{what}['{k}'] is not an array of numbers") from None
            if what == "obs":
                if a.size != d or a.ndim > 2 or (a.ndim == 2 and a.shape[0] != 1):
                    raise ValueError(f"{what}['{k}'] has shape {a.shape}; the policy takes {d} values ({d},)")
                a = a.reshape(1, d)
            else:
                if a.ndim == 1 and a.shape[0] == d:
                    a = a.reshape(1, d)
                if a.ndim != 2 or a.shape[1] != d or a.shape[0] < 1:
                    raise ValueError(f"{what}['{k}'] has shape {a.shape}; the policy takes frames (n, {d})")
            if n is not None and a.shape[0] != n:
                raise ValueError(f"{what}['{k}'] has {a.shape[0]} frames but '{self.obs_keys[0]}' has {n}")
            n = a.shape[0]
            parts.append(a)
        return np.ascontiguousarray(np.concatenate(parts, axis=1))

    def _check(self, frames, what):
        for f in range(frames.shape[0]):
            if self._lib.pol_check_obs(self._p, _dptr(frames[f]), self._err, _ERRSZ):
                msg = self._err.value.decode(errors="replace")
                raise ValueError(f"{what}: {msg}" if frames.shape[0] == 1 else f"{what} frame {f}: {msg}")

    def act(self, obs):
        """Feed the newest observation (a dict: key -> values) and get the action to execute now,
        (action_dim,) float64 within the policy's bounds; a chunk is sampled when the queue is empty."""
        self._live()
        x = self._frames(obs, "obs")
        self._check(x, "obs")
        out = np.empty(self.action_dim, dtype=np.float64)
        if self._lib.pol_act(self._p, self._pd, _dptr(x[0]), _dptr(out), self._err, _ERRSZ):
            raise RefusedError(self._err.value.decode(errors="replace"))
        return out

    def sample(self, frames):
        """One chunk from the given history, (Ta, action_dim): frames is a dict key -> (n, dim)
        (oldest first; the last To count, fewer are padded with the first as an episode's start).
        It replaces the history act keeps (as the node's infer does); the RNG stream continues."""
        self._live()
        x = self._frames(frames, "frames")
        self._check(x, "frames")
        self._lib.pol_forget(self._pd)
        for f in range(x.shape[0]):
            if self._lib.pol_observe(self._p, self._pd, _dptr(x[f]), self._err, _ERRSZ):  # checked above
                raise ValueError(self._err.value.decode(errors="replace"))
        out = np.empty((self.Ta, self.action_dim), dtype=np.float64)
        if self._lib.pol_sample(self._p, self._pd, _dptr(out), self._err, _ERRSZ) < 0:
            raise RefusedError(self._err.value.decode(errors="replace"))
        return out

    def reset(self, seed=None):
        """A new episode: empty history and action queue; with a seed, the sampler's RNG reseeded
        (the same seed gives the same actions), without one its stream continues."""
        self._live()
        if seed is None:
            self._lib.pol_new_episode(self._pd)
        else:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
                raise ValueError(f"seed must be an integer in 0..2^64-1, not {seed!r}")
            self._lib.pol_reset(self._pd, int(seed))
