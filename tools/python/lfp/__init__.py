"""lfp in Python: run a trained lfp policy in-process, or talk to an `lfp serve` node.

    import lfp, numpy as np
    policy = lfp.Policy("lift.lfp", seed=0)       # liblfp through ctypes
    policy.reset(seed=100000)                      # each episode
    action = policy.act({"robot0_eef_pos": np.zeros(3), ...})   # (action_dim,) float64

    client = lfp.Client("tcp://127.0.0.1:5555")   # protocol 1 over pyzmq (python3-zmq)
    actions = client.infer({...})                  # (Ta, action_dim)

Errors carry lfp's own sentence: ValueError for wrong keys, shapes or
non-finite values, lfp.RefusedError when the policy refuses to act (a
non-finite chunk: never a command), lfp.Error for the rest (a file that is not
a policy, a node that does not answer).
"""
from ._native import Policy, Error, RefusedError, blas_core, library_path, set_threads, version

__all__ = ["Policy", "Client", "Error", "RefusedError", "blas_core", "library_path", "set_threads", "version"]


def __getattr__(name):
    # the client needs pyzmq and msgpack, the in-process policy does not
    if name == "Client":
        from .client import Client
        return Client
    raise AttributeError(f"module 'lfp' has no attribute {name!r}")
