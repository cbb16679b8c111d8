"""Pickles written as dnnlib (StyleGAN's TF1 library) wrote them, for the loader tests."""

from __future__ import annotations

import pickle
import sys
import types


class Network:
    """Pickles like dnnlib's Network: global ``dnnlib.tflib.network.Network`` + its state dict."""

    def __init__(self, state):
        self._state = state

    def __getstate__(self):
        return self._state


Network.__module__ = "dnnlib.tflib.network"
Network.__qualname__ = "Network"


def dnnlib_dumps(obj, protocol: int) -> bytes:
    """``pickle.dumps`` with ``dnnlib.tflib.network`` importable for the duration, as in a StyleGAN checkout."""
    fake = {name: types.ModuleType(name) for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")}
    fake["dnnlib.tflib.network"].Network = Network
    saved = {name: sys.modules.get(name) for name in fake}
    sys.modules.update(fake)
    try:
        return pickle.dumps(obj, protocol=protocol)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
