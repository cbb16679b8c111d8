"""Reading the official StyleGAN ``.pkl`` files without TF1, dnnlib or code execution.

An official ``karras2019stylegan-*.pkl`` is a pickle of ``(G, D, Gs)``, three
``dnnlib.tflib.network.Network`` objects whose ``__getstate__`` dict holds ``version``,
``name``, ``static_kwargs``, ``components`` (sub-networks), ``build_module_src`` (the
TF1 source, which dnnlib would ``exec``), ``build_func_name`` and ``variables`` as a
list of ``(local name, numpy array)``. :func:`load_pkl` reads them with an unpickler
that knows only the handful of globals such a file needs; the Network class is mapped
to :class:`NetworkState`, which just keeps the state dict. ``build_module_src`` is never
executed: :func:`build_from_state` builds the Keras port from ``build_func_name`` and
``static_kwargs`` and copies the variables by name.

The same reader takes the pickles of the ProGAN code base and of projects built on it
(GANFingerprints, Yu et al. ICCV 2019): there the class is ``tfutil.Network`` and its
state has the same keys (``version`` 2). :mod:`tfforensics.models.attribution` builds the
attribution classifier from such a state. Files larger than :data:`MAX_PICKLE_BYTES` are
refused before they are read.
"""

from __future__ import annotations

import codecs
import collections
import io
import json
import pickle
import re
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError

#: The pickle global of the official Network class.
NETWORK_GLOBAL = ("dnnlib.tflib.network", "Network")
#: The Network class of the ProGAN code base (``tfutil.py``), used by GANFingerprints.
PROGAN_NETWORK_GLOBAL = ("tfutil", "Network")
#: Largest pickle read (bytes); the biggest official StyleGAN file (FFHQ 1024) is ~310 MB.
MAX_PICKLE_BYTES = 2 << 30
#: Variables of the progressive-growing template graph that the fully grown network does
#: not use: the progress scalar and the to/from-RGB layers of lower resolutions.
UNUSED_VARIABLE = re.compile(r"^(lod|(FromRGB|ToRGB)_lod[1-9][0-9]*/(weight|bias))$")


class NetworkState:
    """Stand-in for ``dnnlib.tflib.network.Network``: holds the pickled state, runs nothing."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"a StyleGAN Network state must be a dict; got {type(state).__name__}")
        self.state = state

    @property
    def name(self) -> str:
        return self.state.get("name")

    @property
    def build_func_name(self) -> str:
        return self.state.get("build_func_name")

    @property
    def static_kwargs(self) -> dict:
        return dict(self.state.get("static_kwargs") or {})

    @property
    def components(self) -> dict:
        return dict(self.state.get("components") or {})

    @property
    def variables(self) -> dict:
        """``{local name: array}`` of this network's own variables (not its components')."""
        return dict(self.state.get("variables") or [])

    def all_variables(self) -> dict:
        """Own variables plus those of the components as ``"<component name>/<name>"`` (TF1 ``vars``)."""
        out = self.variables
        for component in self.components.values():
            out.update({f"{component.name}/{k}": v for k, v in component.all_variables().items()})
        return out

    def __repr__(self):
        return f"NetworkState(name={self.name!r}, build_func_name={self.build_func_name!r}, variables={len(self.variables)})"


class RefusedGlobalError(pickle.UnpicklingError, UserError):
    """A pickle references a global the restricted loader does not allow."""


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a plain dict here)."""


def _codecs_encode(text, encoding="utf-8", errors="strict"):
    # Protocol-2 pickles written by Python 3 store bytes as ``_codecs.encode(str, "latin1")``.
    if codecs.lookup(encoding).name not in ("latin-1", "iso8859-1", "utf-8"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, encoding, errors)


def _numpy_globals() -> dict:
    try:
        from numpy._core import multiarray
    except ImportError:  # NumPy 1.x
        from numpy.core import multiarray
    out = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(module, "_reconstruct")] = multiarray._reconstruct
        out[(module, "scalar")] = multiarray.scalar
    out[("numpy", "ndarray")] = np.ndarray
    out[("numpy", "dtype")] = np.dtype
    return out


_ALLOWED = {
    NETWORK_GLOBAL: NetworkState,
    PROGAN_NETWORK_GLOBAL: NetworkState,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _codecs_encode,
    **{("builtins", name): getattr(__import__("builtins"), name)
       for name in ("set", "frozenset", "complex", "bytearray", "slice", "range")},
    **_numpy_globals(),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals an official StyleGAN pickle uses."""

    def __init__(self, file, *, source: str = "<pickle>"):
        super().__init__(file)
        self.source = source

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobalError(
                f"{self.source}: refuses to load global '{module}.{name}': an official StyleGAN, ProGAN or "
                "GANFingerprints pickle only references the Network class (dnnlib.tflib.network.Network or "
                "tfutil.Network) and NumPy arrays; this file may run code when unpickled, do not open it "
                "with pickle.load."
            ) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"{self.source}: persistent ids are not allowed (got {pid!r}).")


def _check_state(network, source):
    if not isinstance(network, NetworkState):
        raise ValueError(f"{source}: expected StyleGAN networks, found {type(network).__name__}.")
    state = network.state
    missing = [key for key in ("name", "static_kwargs", "build_func_name", "variables") if key not in state]
    if missing:
        raise ValueError(f"{source}: network {network.name!r} state lacks {missing}; not a dnnlib Network pickle.")
    if state.get("version") not in (2, 3, 4):
        raise ValueError(f"{source}: network {network.name!r} has state version {state.get('version')!r}; "
                         "StyleGAN v1 pickles have version 2 or 3.")
    for name, value in state["variables"]:
        if not isinstance(name, str) or not isinstance(value, (np.ndarray, np.generic, float, int)):
            raise ValueError(f"{source}: variable {name!r} of {network.name!r} is not a named array.")
        if np.asarray(value).dtype.kind not in "fiu":
            raise ValueError(f"{source}: variable {name!r} of {network.name!r} has dtype {np.asarray(value).dtype}.")
    for component in network.components.values():
        _check_state(component, source)


def loads_pkl(data: bytes, source: str = "<bytes>"):
    """:func:`load_pkl` for bytes already in memory."""
    networks = RestrictedUnpickler(io.BytesIO(data), source=source).load()
    if isinstance(networks, NetworkState):
        networks = (networks,)
    if not isinstance(networks, (tuple, list)) or not networks:
        raise ValueError(f"{source}: expected a tuple of StyleGAN networks, found {type(networks).__name__}.")
    for network in networks:
        _check_state(network, source)
    return tuple(networks)


def load_pkl(path, *, max_bytes: int = MAX_PICKLE_BYTES):
    """Read an official StyleGAN (or ProGAN-style) pickle; returns its :class:`NetworkState` objects.

    A StyleGAN file gives ``(G, D, Gs)``, a GANFingerprints classifier one network.
    Raises ``pickle.UnpicklingError`` naming the global if the file references anything
    besides the Network class and NumPy arrays (nothing in it is executed), and a
    :class:`UserError` for a file over ``max_bytes`` (checked before reading it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: StyleGAN pickle not found; download it as described in docs/stylegan-lgrad.md.")
    size = path.stat().st_size
    if size > max_bytes:
        raise UserError(f"{path}: {size} bytes is more than the {max_bytes} bytes a network pickle may have; "
                        "this is not a StyleGAN/ProGAN network file.")
    return loads_pkl(path.read_bytes(), source=str(path))


def find_network(networks, kind: str) -> NetworkState:
    """The discriminator (``"D"``) or the averaged generator (``"Gs"``) of a loaded pickle."""
    wanted = {"D": ("D_basic",), "Gs": ("G_style",), "G": ("G_style",)}[kind]
    matches = [n for n in networks if n.build_func_name in wanted]
    if kind == "Gs":
        by_name = [n for n in matches if n.name == "Gs"]
        matches = by_name or matches[-1:]
    if not matches:
        raise ValueError(f"the pickle has no {kind} network (found {[n.build_func_name for n in networks]}).")
    return matches[0]


def build_from_state(network: NetworkState, **overrides):
    """Build the Keras port of a pickled network and copy its variables by name.

    ``overrides`` replace ``static_kwargs`` (e.g. ``mbstd_group_size=1`` or
    ``data_format="channels_first"`` for a discriminator, ``randomize_noise=False`` for a
    generator, ``truncation_psi=...``).
    """
    from tfforensics.models.stylegan.networks import BUILDERS, sub_model

    kind = network.build_func_name
    if kind not in BUILDERS:
        raise ValueError(f"network {network.name!r}: unknown build function {kind!r}; expected one of {sorted(BUILDERS)}.")
    kwargs = {**network.static_kwargs, **overrides}
    if kind == "G_style":
        components = {c.build_func_name: c for c in network.components.values()}
        if set(components) != {"G_mapping", "G_synthesis"}:
            raise ValueError(f"network {network.name!r}: expected G_mapping and G_synthesis components, "
                             f"found {sorted(components)}.")
        generator_keys = ("truncation_psi", "truncation_cutoff")
        kwargs = _plain({
            **{k: v for k, v in kwargs.items() if k in generator_keys},
            "mapping_kwargs": {**components["G_mapping"].static_kwargs, **overrides},
            "synthesis_kwargs": {**components["G_synthesis"].static_kwargs, **overrides},
        })
        model = BUILDERS[kind](**kwargs)
        assign_variables(sub_model(model, "G_mapping"), components["G_mapping"])
        assign_variables(sub_model(model, "G_synthesis"), components["G_synthesis"])
        assign_variables(model, network, own_only=True)
    else:
        kwargs = _plain({**kwargs, "name": "D" if kind == "D_basic" else kind})
        model = BUILDERS[kind](**kwargs)
        assign_variables(model, network)
    model._tfforensics_spec = {"builder": kind, "kwargs": kwargs}
    return model


def _plain(value):
    """static_kwargs as plain JSON types (NumPy scalars and tuples become numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def assign_variables(model, network: NetworkState, *, own_only: bool = False) -> None:
    """Copy ``network``'s variables into ``model`` by TF1 name, checking names and shapes.

    Raises ``ValueError`` naming the variable for a missing, unexpected or mis-shaped one.
    """
    from tfforensics.models.stylegan.networks import tf1_variables

    targets = tf1_variables(model)
    if own_only:  # components are assigned separately
        targets = {k: v for k, v in targets.items() if "/" not in k}
    values = network.variables
    lod = values.get("lod")
    if lod is not None and float(np.asarray(lod)) != 0.0:
        raise ValueError(f"network {network.name!r}: lod = {float(np.asarray(lod))}, a snapshot taken during "
                         "progressive growing; only fully grown networks (lod = 0) are supported.")
    missing = [name for name in targets if name not in values]
    if missing:
        raise ValueError(f"network {network.name!r}: variable {missing[0]!r} (shape "
                         f"{tuple(targets[missing[0]].shape)}) is missing from the pickle"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                         + "; the file does not match this network configuration.")
    unexpected = [name for name in values if name not in targets and not UNUSED_VARIABLE.match(name)]
    if unexpected:
        raise ValueError(f"network {network.name!r}: the pickle holds variable {unexpected[0]!r} (shape "
                         f"{np.shape(values[unexpected[0]])}) that the Keras port does not have; "
                         "the file does not match this network configuration.")
    for name, variable in targets.items():
        value = np.asarray(values[name], dtype=np.float32)
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"network {network.name!r}: variable {name!r} has shape {tuple(value.shape)} in the "
                             f"pickle but {tuple(variable.shape)} in the Keras model.")
    for name, variable in targets.items():
        variable.assign(np.asarray(values[name], dtype=np.float32))


def load_networks(path, **overrides):
    """``(D, Gs)`` Keras models from an official pickle (``overrides`` as in :func:`build_from_state`)."""
    networks = load_pkl(path)
    d_overrides = {k: v for k, v in overrides.items() if k not in ("truncation_psi", "truncation_cutoff", "randomize_noise")}
    return build_from_state(find_network(networks, "D"), **d_overrides), build_from_state(find_network(networks, "Gs"))


# --- the port's own weights -----------------------------------------------------------------

def save_network(model, path) -> Path:
    """Save a port model: ``.keras`` (full model) or ``.npz`` (TF1 names -> arrays + builder config).

    ``.weights.h5`` writes Keras weights only; load them into a model built with the same
    arguments (``model.load_weights``).
    """
    from tfforensics.io.atomic import atomic_open, save_keras
    from tfforensics.models.stylegan.networks import tf1_variables

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".weights.h5") or path.suffix == ".keras":
        save_keras(model, path)
    elif path.suffix == ".npz":
        spec = getattr(model, "_tfforensics_spec", None)
        if spec is None:
            raise ValueError(f"{path}: .npz needs a model made by build_from_state or load_network; "
                             "save other models as .keras.")
        arrays = {name: np.asarray(v.numpy()) for name, v in tf1_variables(model).items()}
        with atomic_open(path, "wb") as handle:
            np.savez(handle, __spec__=np.array(json.dumps(spec)), **arrays)
    else:
        raise ValueError(f"{path}: unknown weights format; use .keras, .npz or .weights.h5.")
    return path


def load_network(path, **overrides):
    """Load a port model saved by :func:`save_network` (``.keras`` with safe_mode, or ``.npz``)."""
    import keras

    import tfforensics.models.stylegan.layers  # noqa: F401  (registers the layers)
    from tfforensics.models.stylegan.networks import BUILDERS, tf1_variables

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found.")
    if path.suffix == ".keras":
        return keras.saving.load_model(path, safe_mode=True)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: unknown weights format; use .keras or .npz (or a .pkl with --pkl).")
    with np.load(path, allow_pickle=False) as data:
        spec = json.loads(str(data["__spec__"]))
        arrays = {k: data[k] for k in data.files if k != "__spec__"}
    kwargs = {**spec["kwargs"], **overrides}
    model = BUILDERS[spec["builder"]](**kwargs)
    model._tfforensics_spec = {"builder": spec["builder"], "kwargs": kwargs}
    state = NetworkState()
    state.__setstate__({"name": model.name, "version": 3, "static_kwargs": {}, "build_func_name": spec["builder"],
                        "variables": list(arrays.items())})
    assign_variables(model, state)
    return model
