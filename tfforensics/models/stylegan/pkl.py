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
import os
import pickle
import re
import struct
from pathlib import Path

import numpy as np

from tfforensics.errors import MissingInputError, UserError

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


class PickleLimitError(pickle.UnpicklingError, UserError):
    """A pickle declares more than its file holds (a size, a shape, a count); refused before allocating."""


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

#: The most dimensions a pickled array may declare.
MAX_DIMS = 8
#: Array kinds a StyleGAN pickle holds: float, signed/unsigned int, bool.
ARRAY_KINDS = "fiub"


def _guarded(function, source: str, limit: int):
    """``function`` (an allowed global) behind checks that bound what it can allocate.

    A pickle calls these with arguments it chooses; anything that could allocate more than
    the file itself holds (``bytearray(10**10)``, ``set(range(10**10))``, an array shape
    with 10**16 elements) is refused before the call.
    """
    def refuse(what):
        raise PickleLimitError(f"{source}: {what}; refused before allocating: this is not an official StyleGAN "
                               "pickle (download the official .pkl again).")

    builtin = {getattr(__import__("builtins"), n): n for n in ("set", "frozenset", "bytearray", "range", "slice")}
    name = builtin.get(function)
    if name in ("set", "frozenset"):
        def call(items=()):
            if not isinstance(items, (list, tuple, set, frozenset)):
                refuse(f"{name}() of a {type(items).__name__} (only of stored items)")
            return function(items)
        return call
    if name == "bytearray":
        def call(data=b"", *args):
            if not isinstance(data, (bytes, str)) or len(args) > 2:
                refuse(f"bytearray() of a {type(data).__name__} (only of stored bytes)")
            return function(data, *args)
        return call
    if name in ("range", "slice"):
        def call(*args):
            if len(args) > 3 or not all(a is None or (isinstance(a, int) and abs(a) <= limit) for a in args):
                refuse(f"{name}{args!r} is out of bounds")
            return function(*args)
        return call
    if function is np.dtype:
        def call(spec, align=False, copy=False):
            try:
                dtype = np.dtype(spec) if isinstance(spec, str) else None
            except TypeError:
                dtype = None
            if dtype is None or dtype.kind not in ARRAY_KINDS or dtype.itemsize > 16:
                refuse(f"array dtype {spec!r} is not a plain numeric type")
            return np.dtype(spec, align, copy)
        return call
    if getattr(function, "__name__", "") == "_reconstruct":
        def call(subtype, shape, dtype=b"b"):
            if subtype is not np.ndarray:
                refuse(f"array subtype {getattr(subtype, '__name__', subtype)!r}")
            shape = (shape,) if isinstance(shape, int) else shape
            if (not isinstance(shape, (tuple, list)) or len(shape) > MAX_DIMS
                    or not all(isinstance(d, int) and 0 <= d <= limit for d in shape)
                    or int(np.prod(shape, dtype=object)) > limit):
                refuse(f"an array of shape {shape!r} is larger than the file ({limit} bytes)")
            return function(subtype, tuple(shape), dtype)
        return call
    if getattr(function, "__name__", "") == "scalar":
        def call(dtype, data=b""):
            if not isinstance(dtype, np.dtype) or dtype.kind not in ARRAY_KINDS:
                refuse(f"a scalar of dtype {dtype!r}")
            return function(dtype, data)
        return call
    return function


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals an official StyleGAN pickle uses."""

    def __init__(self, file, *, source: str = "<pickle>", limit: int | None = None):
        super().__init__(file)
        self.source = source
        self.limit = limit if limit is not None else 1 << 34

    def find_class(self, module, name):
        try:
            return _guarded(_ALLOWED[(module, name)], self.source, self.limit)
        except KeyError:
            raise RefusedGlobalError(
                f"{self.source}: refuses to load global '{module}.{name}': an official StyleGAN, ProGAN or "
                "GANFingerprints pickle only references the Network class (dnnlib.tflib.network.Network or "
                "tfutil.Network) and NumPy arrays; this file may run code when unpickled, do not open it "
                "with pickle.load."
            ) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"{self.source}: persistent ids are not allowed (got {pid!r}).")


#: Sane ranges of the ``static_kwargs`` that size a network (the official configurations lie
#: well inside them); checked before anything is built.
KWARG_RANGES = {
    "resolution": (4, 4096), "num_channels": (1, 4), "fmap_base": (1, 1 << 15), "fmap_max": (1, 4096),
    "latent_size": (1, 4096), "dlatent_size": (1, 4096), "mapping_layers": (1, 64), "mapping_fmaps": (1, 4096),
    "mbstd_group_size": (0, 1024), "mbstd_num_features": (0, 64), "label_size": (0, 4096),
    "truncation_cutoff": (0, 64), "dlatent_broadcast": (1, 64),
}
#: Component nesting of an official pickle: G_style -> G_mapping / G_synthesis.
MAX_DEPTH = 2


def _fail(source, problem):
    raise UserError(f"{source}: {problem}; not a network pickle this loader reads (use an official "
                    "karras2019stylegan-*.pkl, a released GANFingerprints classifier .pkl, or the port's own "
                    ".keras / .npz weights).")


def _check_kwargs(network, source, file_size: int) -> None:
    """``static_kwargs`` in sane ranges, and the weights they imply no larger than the file."""
    kwargs = network.state["static_kwargs"]
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        _fail(source, f"network {network.name!r} has static_kwargs of type {type(kwargs).__name__}")
    for key, (low, high) in KWARG_RANGES.items():
        value = kwargs.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
            _fail(source, f"network {network.name!r} has static_kwargs {key}={value!r}, outside {low}..{high}")
    for key in ("fmap_decay", "truncation_psi", "mapping_lrmul"):
        value = kwargs.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.floating))
                                  or not -16 <= float(value) <= 16):
            _fail(source, f"network {network.name!r} has static_kwargs {key}={value!r}")
    # The fewest float32 weights the port would create: the 3x3 convolution at 4x4 and the
    # dense layers of a mapping network. Each must be read from the file, so more than the
    # file holds is a lie that would otherwise allocate the difference.
    decay = float(kwargs.get("fmap_decay", 1.0))
    nf1 = min(int(kwargs.get("fmap_base", 8192) / 2.0 ** decay), kwargs.get("fmap_max", 512))
    implied = 0
    if network.build_func_name in ("D_basic", "G_synthesis"):
        implied = 9 * max(nf1, 1) ** 2
    elif network.build_func_name == "G_mapping":
        layers, fmaps = kwargs.get("mapping_layers", 8), kwargs.get("mapping_fmaps", 512)
        implied = kwargs.get("latent_size", 512) * fmaps + max(layers - 2, 0) * fmaps ** 2
    if 4 * implied > file_size:
        _fail(source, f"network {network.name!r}: its static_kwargs imply at least {4 * implied:,} bytes of "
                      f"weights but the file has {file_size:,} bytes")
    for key, kind in (("mapping_kwargs", "G_mapping"), ("synthesis_kwargs", "G_synthesis")):
        if key in kwargs:  # the port's own G_style spec nests the sub-networks' kwargs
            nested = NetworkState()
            nested.__setstate__({"name": kind, "build_func_name": kind, "static_kwargs": kwargs[key]})
            _check_kwargs(nested, source, file_size)


def _check_state(network, source, file_size: int = 1 << 40, depth: int = 0, seen=None):
    seen = set() if seen is None else seen
    if not isinstance(network, NetworkState) or not hasattr(network, "state"):
        _fail(source, f"expected StyleGAN networks, found {type(network).__name__}")
    if id(network) in seen or depth > MAX_DEPTH:
        _fail(source, f"network {network.name!r} is nested more than {MAX_DEPTH} deep or twice")
    seen.add(id(network))
    network.source = source
    state = network.state
    missing = [key for key in ("name", "static_kwargs", "build_func_name", "variables") if key not in state]
    if missing:
        _fail(source, f"network {state.get('name')!r} state lacks {missing}")
    if not isinstance(state["name"], str) or not isinstance(state["build_func_name"], str):
        _fail(source, "a network's name or build_func_name is not a string")
    if state.get("version") not in (2, 3, 4):
        _fail(source, f"network {network.name!r} has state version {state.get('version')!r} "
                      "(StyleGAN v1 pickles have version 2 or 3)")
    variables = state["variables"]
    if not isinstance(variables, (list, tuple)) or not all(isinstance(v, (list, tuple)) and len(v) == 2
                                                           for v in variables):
        _fail(source, f"network {network.name!r}: variables are not a list of (name, array) pairs")
    for name, value in variables:
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, (np.ndarray, np.generic, float, int)):
            _fail(source, f"variable {name!r} of {network.name!r} is not a named array")
        if np.asarray(value).dtype.kind not in "fiu":
            _fail(source, f"variable {name!r} of {network.name!r} has dtype {np.asarray(value).dtype}")
    components = state.get("components") or {}
    if not isinstance(components, dict):
        _fail(source, f"network {network.name!r}: components are a {type(components).__name__}, not a dict")
    _check_kwargs(network, source, file_size)
    for component in components.values():
        _check_state(component, source, file_size, depth + 1, seen)


#: What unpickling crafted data raises besides UnpicklingError: a truncated file (EOFError),
#: a bad opcode argument, a failing constructor call (TypeError, ValueError, ...).
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, MemoryError, ValueError, TypeError, AttributeError,
                  IndexError, KeyError, OverflowError, RecursionError, UnicodeDecodeError, struct.error)


#: What :func:`check_opcodes` tells the user to do by default.
PKL_FIX = "this is not an official StyleGAN pickle (download the official .pkl again)"


def check_opcodes(data: bytes, source: str, *, refused: str = PKL_FIX, what: str = "StyleGAN pickle",
                  fix: str = "download the official .pkl again") -> None:
    """Walk the opcodes once (no object is built): every declared length must fit in the file.

    The C unpickler may reserve a buffer of the declared size before it reads (a 13-byte
    file declaring 8 GiB of bytes); :mod:`pickletools` reads what is there and stops.
    ``refused``, ``what`` and ``fix`` word the messages (the PyTorch checkpoint reader shares this check).
    """
    import pickletools

    try:
        for opcode, arg, position in pickletools.genops(data):
            if opcode.name == "FRAME" and arg > len(data) - position:
                raise PickleLimitError(f"{source}: declares a pickle frame of {arg:,} bytes at offset {position} "
                                       f"but the file has {len(data):,}; refused before allocating: {refused}.")
    except PickleLimitError:
        raise
    except (ValueError, EOFError) as error:
        text = str(error)
        reason = "the file is truncated" if any(w in text for w in ("remain", "truncat", "exhausted")) or not text else text[:200]
        raise UserError(f"{source}: not a readable {what} ({reason}); {fix}.") from error


def loads_pkl(data: bytes, source: str = "<bytes>"):
    """:func:`load_pkl` for bytes already in memory."""
    check_opcodes(data, source)
    try:
        networks = RestrictedUnpickler(io.BytesIO(data), source=source, limit=len(data)).load()
    except UserError:
        raise
    except _PICKLE_ERRORS as error:
        reason = "the file is truncated" if isinstance(error, EOFError) or "truncated" in str(error) else (
            f"{type(error).__name__}: {str(error)[:200]}" if str(error) else type(error).__name__)
        raise UserError(f"{source}: not a readable StyleGAN pickle ({reason}); download the official "
                        ".pkl again.") from error
    if isinstance(networks, NetworkState):
        networks = (networks,)
    if not isinstance(networks, (tuple, list)) or not networks:
        _fail(source, f"expected a tuple of StyleGAN networks, found {type(networks).__name__}")
    for network in networks:
        _check_state(network, source, len(data))
    return tuple(networks)


def load_pkl(path, *, max_bytes: int = MAX_PICKLE_BYTES):
    """Read an official StyleGAN (or ProGAN-style) pickle; returns its :class:`NetworkState` objects.

    A StyleGAN file gives ``(G, D, Gs)``, a GANFingerprints classifier one network.
    Raises ``pickle.UnpicklingError`` naming the global if the file references anything
    besides the Network class and NumPy arrays (nothing in it is executed), and
    :class:`UserError` naming the file for anything else it cannot use (a file over
    ``max_bytes`` is refused before it is read).
    """
    path, size = checked_input(path, max_bytes, missing="StyleGAN pickle not found; download it as described in "
                                                         "docs/stylegan-lgrad.md",
                               too_big="a network pickle may have; this is not a StyleGAN/ProGAN network file")
    return loads_pkl(path.read_bytes(), source=os.fsdecode(path))


def checked_input(path, max_bytes: int, *, missing: str, too_big: str) -> tuple[Path, int]:
    """``(path, size)`` of a third-party weights file that exists and is at most ``max_bytes``.

    ``missing`` and ``too_big`` finish the one-line messages (shared with the PyTorch reader).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{os.fsdecode(path)}: {missing}.")
    size = path.stat().st_size
    if size > max_bytes:
        raise UserError(f"{os.fsdecode(path)}: {size} bytes is more than the {max_bytes} bytes {too_big}.")
    return path, size


def find_network(networks, kind: str) -> NetworkState:
    """The discriminator (``"D"``) or the averaged generator (``"Gs"``) of a loaded pickle."""
    wanted = {"D": ("D_basic",), "Gs": ("G_style",), "G": ("G_style",)}[kind]
    matches = [n for n in networks if n.build_func_name in wanted]
    if kind == "Gs":
        by_name = [n for n in matches if n.name == "Gs"]
        matches = by_name or matches[-1:]
    if not matches:
        source = getattr(networks[0], "source", "the pickle") if networks else "the pickle"
        raise UserError(f"{source}: has no {kind} network (found {[n.build_func_name for n in networks]}); "
                        "use an official karras2019stylegan-*.pkl.")
    return matches[0]


def _where(network) -> str:
    """``"<file>: network 'D'"`` for messages (the file when the network came from one)."""
    source = getattr(network, "source", None)
    return f"{source}: network {network.name!r}" if source else f"network {network.name!r}"


def _build(builder, network, kwargs):
    try:
        return builder(**kwargs)
    except (ValueError, TypeError) as error:
        raise UserError(f"{_where(network)}: its static_kwargs do not build ({error}).") from error


def build_from_state(network: NetworkState, **overrides):
    """Build the Keras port of a pickled network and copy its variables by name.

    ``overrides`` replace ``static_kwargs`` (e.g. ``mbstd_group_size=1`` or
    ``data_format="channels_first"`` for a discriminator, ``randomize_noise=False`` for a
    generator, ``truncation_psi=...``).
    """
    from tfforensics.models.stylegan.networks import BUILDERS, sub_model

    kind = network.build_func_name
    if kind not in BUILDERS:
        raise UserError(f"{_where(network)}: unknown build function {kind!r}; expected one of {sorted(BUILDERS)}.")
    kwargs = {**network.static_kwargs, **overrides}
    if kind == "G_style":
        components = {c.build_func_name: c for c in network.components.values()}
        if set(components) != {"G_mapping", "G_synthesis"}:
            raise UserError(f"{_where(network)}: expected G_mapping and G_synthesis components, "
                            f"found {sorted(components)}.")
        generator_keys = ("truncation_psi", "truncation_cutoff")
        kwargs = _plain({
            **{k: v for k, v in kwargs.items() if k in generator_keys},
            "mapping_kwargs": {**components["G_mapping"].static_kwargs, **overrides},
            "synthesis_kwargs": {**components["G_synthesis"].static_kwargs, **overrides},
        })
        model = _build(BUILDERS[kind], network, kwargs)
        assign_variables(sub_model(model, "G_mapping"), components["G_mapping"])
        assign_variables(sub_model(model, "G_synthesis"), components["G_synthesis"])
        assign_variables(model, network, own_only=True)
    else:
        kwargs = _plain({**kwargs, "name": "D" if kind == "D_basic" else kind})
        model = _build(BUILDERS[kind], network, kwargs)
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

    Raises :class:`UserError` naming the variable for a missing, unexpected or mis-shaped one.
    """
    from tfforensics.models.stylegan.networks import tf1_variables

    targets = tf1_variables(model)
    if own_only:  # components are assigned separately
        targets = {k: v for k, v in targets.items() if "/" not in k}
    values = network.variables
    lod = values.get("lod")
    if lod is not None and float(np.asarray(lod)) != 0.0:
        raise UserError(f"{_where(network)}: lod = {float(np.asarray(lod))}, a snapshot taken during "
                         "progressive growing; only fully grown networks (lod = 0) are supported.")
    missing = [name for name in targets if name not in values]
    if missing:
        raise UserError(f"{_where(network)}: variable {missing[0]!r} (shape "
                         f"{tuple(targets[missing[0]].shape)}) is missing from the pickle"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                         + "; the file does not match this network configuration.")
    unexpected = [name for name in values if name not in targets and not UNUSED_VARIABLE.match(name)]
    if unexpected:
        raise UserError(f"{_where(network)}: the pickle holds variable {unexpected[0]!r} (shape "
                         f"{np.shape(values[unexpected[0]])}) that the Keras port does not have; "
                         "the file does not match this network configuration.")
    for name, variable in targets.items():
        value = np.asarray(values[name], dtype=np.float32)
        if tuple(value.shape) != tuple(variable.shape):
            raise UserError(f"{_where(network)}: variable {name!r} has shape {tuple(value.shape)} in the "
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
            raise UserError(f"{path}: .npz needs a model made by build_from_state or load_network; "
                             "save other models as .keras.")
        arrays = {name: np.asarray(v.numpy()) for name, v in tf1_variables(model).items()}
        with atomic_open(path, "wb") as handle:
            np.savez(handle, __spec__=np.array(json.dumps(spec)), **arrays)
    else:
        raise UserError(f"{path}: unknown weights format; use .keras, .npz or .weights.h5.")
    return path


def load_network(path, **overrides):
    """Load a port model saved by :func:`save_network` (``.keras`` with safe_mode, or ``.npz``)."""
    import tfforensics.models.stylegan.layers  # noqa: F401  (registers the layers)
    from tfforensics.models.stylegan.networks import BUILDERS, tf1_variables

    from tfforensics.models.wrapped import load_keras

    path = Path(path)
    name = os.fsdecode(path)
    if not path.is_file():
        raise MissingInputError(f"{name}: weights file not found.")
    if path.suffix == ".keras":
        return load_keras(path)
    if path.suffix != ".npz":
        raise UserError(f"{name}: unknown weights format; use .keras or .npz (or a .pkl with --pkl).")
    refuse = f"{name}: is not StyleGAN port weights written by tfforensics"
    try:
        with np.load(path, allow_pickle=False) as data:
            spec = json.loads(str(data["__spec__"]))
            arrays = {k: data[k] for k in data.files if k != "__spec__"}
    except (ValueError, OSError, EOFError, KeyError) as error:  # a pickled, corrupt or foreign .npz
        raise UserError(f"{refuse} (no readable __spec__ header); save it again with save_network.") from error
    if (not isinstance(spec, dict) or spec.get("builder") not in BUILDERS or not isinstance(spec.get("kwargs"), dict)
            or any(a.dtype.kind not in "fiu" for a in arrays.values())):
        raise UserError(f"{refuse} (its header names no known builder); save it again with save_network.")
    state = NetworkState()
    state.__setstate__({"name": spec["builder"], "version": 3, "static_kwargs": dict(spec["kwargs"]),
                        "build_func_name": spec["builder"], "variables": list(arrays.items())})
    _check_kwargs(state, name, max(path.stat().st_size, 1))
    kwargs = {**spec["kwargs"], **overrides}
    model = _build(BUILDERS[spec["builder"]], state, kwargs)
    model._tfforensics_spec = {"builder": spec["builder"], "kwargs": kwargs}
    state.state["name"] = model.name
    state.source = name
    assign_variables(model, state)
    return model
