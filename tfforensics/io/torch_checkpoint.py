"""Reading PyTorch checkpoints (``.pth`` / ``.pt``) without torch and without running their code.

``torch.save`` writes one of three layouts, all read here:

- **zip** (torch >= 1.6): a zip archive with one top folder (``archive/`` or the file's
  stem) holding ``data.pkl`` (pickle protocol 2), ``data/<key>`` (the raw bytes of each
  storage, little-endian unless ``byteorder`` says ``big``) and ``version``. Each tensor is
  pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
  hooks)``, where ``storage`` is the persistent id ``('storage', torch.FloatStorage, key,
  location, numel)``.
- **legacy pickle** (torch 0.4 - 1.5): five pickles back to back (the magic number
  ``0x1950a86a20f9469cfc6c``, the protocol version 1001, a ``sys_info`` dict, the object,
  the list of storage keys), then each storage as an int64 element count and its bytes.
  Persistent ids add a view: ``('storage', type, key, location, numel, view_metadata)``.
- **legacy tar** (torch <= 0.3): a tar with members ``storages`` (count, then per
  storage a pickled ``(key, location, type)`` and its raw bytes, then the views),
  ``tensors`` (count, then per tensor ``(key, storage key, type)``, the rank, sizes,
  strides and offset) and ``pickle`` (the object; tensors are persistent ids).

The unpickler resolves only the globals a state dict needs (the tensor rebuild
functions, the ``torch.*Storage`` types, ``collections.OrderedDict``); any other global
is refused in one line before anything runs. Every declared size (element counts,
shapes, strides, offsets) is checked against the bytes the file really holds before an
array is allocated. :func:`load_checkpoint` returns the pickled object with NumPy arrays
in place of tensors; :func:`load_state_dict` the flat ``{name: array}`` of a model.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError
from tfforensics.models.stylegan.pkl import (
    _PICKLE_ERRORS, PickleLimitError, RefusedGlobalError, check_opcodes, checked_input,
)

#: Largest checkpoint read (bytes): a ResNet-50 is ~100 MB, with optimizer state ~300 MB.
MAX_CHECKPOINT_BYTES = 4 << 30
#: The first pickle of a legacy (non-zip) checkpoint.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
#: ``torch.<name>`` storage types -> element dtype (bfloat16 is read as its upper float32 half).
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
#: Tensor types of the tar format's ``tensors`` member (``torch.FloatTensor`` ...).
TENSOR_TYPES = {name.replace("Storage", "Tensor"): dtype for name, dtype in STORAGE_DTYPES.items()}
#: The most dimensions a tensor may declare.
MAX_DIMS = 8
#: How deep the pickled object may nest (a state dict in a dict in a list ...).
MAX_DEPTH = 32
_FIX = ("this is not a PyTorch checkpoint of weights (a state dict); re-save it with "
        "torch.save(model.state_dict(), path) or download the released .pth again")


class StorageType:
    """Stand-in for ``torch.FloatStorage`` and friends: only the element type."""

    def __init__(self, name: str):
        self.name = name
        self.bfloat16 = STORAGE_DTYPES[name] == "bfloat16"
        self.dtype = np.dtype(np.uint16 if self.bfloat16 else STORAGE_DTYPES[name])

    def __repr__(self):
        return f"torch.{self.name}"


class Storage:
    """A storage named by a persistent id; its bytes are attached once read (:meth:`attach`)."""

    def __init__(self, kind: StorageType, key: str, numel: int, source: str):
        self.kind, self.key, self.numel, self.source = kind, key, numel, source
        self.array = None  # 1-D array of numel elements, set by attach

    @property
    def nbytes(self) -> int:
        return self.numel * self.kind.dtype.itemsize

    def attach(self, data: bytes, big_endian: bool = False) -> None:
        if len(data) != self.nbytes:
            raise PickleLimitError(f"{self.source}: storage {self.key!r} declares {self.numel:,} elements of "
                                   f"{self.kind} ({self.nbytes:,} bytes) but the file holds {len(data):,}; "
                                   f"the file is truncated or edited: {_FIX}.")
        dtype = self.kind.dtype.newbyteorder(">" if big_endian else "<")
        self.array = np.frombuffer(data, dtype=dtype)


class StorageView:
    """A slice of a storage (legacy ``view_metadata``)."""

    def __init__(self, root: Storage, offset: int, numel: int):
        self.root, self.offset, self.numel, self.kind = root, offset, numel, root.kind

    @property
    def array(self):
        return None if self.root.array is None else self.root.array[self.offset:self.offset + self.numel]


class TensorRef:
    """A tensor rebuilt by ``_rebuild_tensor_v2``: storage, offset, size, stride (read later)."""

    def __init__(self, storage, offset, size, stride, source: str):
        def refuse(what):
            raise PickleLimitError(f"{source}: a tensor declares {what}; refused before allocating: {_FIX}.")

        if not isinstance(storage, (Storage, StorageView)):
            refuse(f"a storage of type {type(storage).__name__}")
        size, stride = _ints(size, refuse, "size"), _ints(stride, refuse, "stride")
        if len(size) != len(stride) or len(size) > MAX_DIMS:
            refuse(f"size {size} and stride {stride} of different or too many dimensions")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            refuse(f"storage offset {offset!r}")
        if all(s > 0 for s in size):
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= storage.numel:
                refuse(f"size {size}, stride {stride} and offset {offset} that reach element {last:,} of a "
                       f"storage of {storage.numel:,}")
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def numpy(self) -> np.ndarray:
        flat = self.storage.array
        itemsize = flat.dtype.itemsize
        if any(n == 0 for n in self.size):
            array = np.zeros(self.size, dtype=flat.dtype)
        else:
            array = np.lib.stride_tricks.as_strided(flat[self.offset:], shape=self.size,
                                                    strides=[s * itemsize for s in self.stride], writeable=False)
        array = np.array(array, dtype=flat.dtype.newbyteorder("="))
        if self.storage.kind.bfloat16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _ints(values, refuse, what):
    if not isinstance(values, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                         for v in values):
        refuse(f"a {what} {values!r} that is not a tuple of ints >= 0")
    return tuple(values)


class _Unpickler(pickle.Unpickler):
    """Resolves only the globals of a state dict; tensors become :class:`TensorRef`."""

    def __init__(self, file, *, source: str, limit: int, storages: dict, legacy: bool = False,
                 tensors: dict | None = None):
        super().__init__(file)
        self.source, self.limit, self.storages, self.legacy = source, limit, storages, legacy
        self.tensors = tensors  # tar format: persistent ids name tensors read before

    def _rebuild_tensor(self, storage, offset, size, stride, *args):
        return TensorRef(storage, offset, size, stride, self.source)

    @staticmethod
    def _rebuild_parameter(data, requires_grad=False, hooks=None, *args):
        return data

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return self._rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return self._rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        if module == "torch" and name in TENSOR_TYPES and self.tensors is not None:
            return StorageType(name.replace("Tensor", "Storage"))
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise RefusedGlobalError(
            f"{self.source}: refuses to load global '{module}.{name}': a PyTorch checkpoint of weights only "
            "references torch._utils._rebuild_tensor_v2, torch.*Storage and collections.OrderedDict; this file "
            "may run code when unpickled (a whole pickled model?), do not open it with torch.load; save "
            "model.state_dict() instead."
        )

    def persistent_load(self, pid):
        if self.tensors is not None and not isinstance(pid, tuple):
            key = str(pid)
            if key not in self.tensors:
                raise PickleLimitError(f"{self.source}: the pickle names tensor {key!r}, which the file does not hold; "
                                       f"{_FIX}.")
            return self.tensors[key]
        if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
            raise pickle.UnpicklingError(f"{self.source}: persistent id {str(pid)[:80]!r} is not a storage; {_FIX}.")
        fields = pid[1:]
        if len(fields) not in (4, 5):
            raise pickle.UnpicklingError(f"{self.source}: storage id with {len(fields)} fields; {_FIX}.")
        kind, key, _location, numel = fields[:4]
        view = fields[4] if len(fields) == 5 else None
        if not isinstance(kind, StorageType) or not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
            raise pickle.UnpicklingError(f"{self.source}: storage id {str(pid)[:80]!r} is malformed; {_FIX}.")
        key = key.decode("ascii", "replace") if isinstance(key, bytes) else str(key)
        storage = self.storages.get(key)
        if storage is None:
            if numel * kind.dtype.itemsize > self.limit:
                raise PickleLimitError(f"{self.source}: storage {key!r} declares {numel:,} elements of {kind} "
                                       f"({numel * kind.dtype.itemsize:,} bytes) but the file has {self.limit:,} "
                                       f"bytes; refused before allocating: {_FIX}.")
            storage = self.storages[key] = Storage(kind, key, numel, self.source)
        elif storage.kind.name != kind.name or storage.numel != numel:
            raise pickle.UnpicklingError(f"{self.source}: storage {key!r} is declared twice, differently; {_FIX}.")
        if view is not None:
            if (not isinstance(view, tuple) or len(view) != 3 or not all(isinstance(v, int) for v in view[1:])
                    or view[1] < 0 or view[2] < 0 or view[1] + view[2] > storage.numel):
                raise PickleLimitError(f"{self.source}: storage view {view!r} lies outside storage {key!r} of "
                                       f"{storage.numel:,} elements; {_FIX}.")
            return StorageView(storage, view[1], view[2])
        return storage


def _unpickle(data: bytes, source: str, limit: int, storages: dict, **kwargs):
    check_opcodes(data, source, refused=_FIX, what="PyTorch checkpoint pickle", fix=_FIX)
    try:
        return _Unpickler(io.BytesIO(data), source=source, limit=limit, storages=storages, **kwargs).load()
    except UserError:
        raise
    except _PICKLE_ERRORS as error:
        reason = "the file is truncated" if isinstance(error, EOFError) or "truncated" in str(error) else (
            f"{type(error).__name__}: {str(error)[:200]}")
        raise UserError(f"{source}: not a readable PyTorch checkpoint ({reason}); {_FIX}.") from error


def _materialise(value, source: str, depth: int = 0, done: dict | None = None):
    """The unpickled object with every :class:`TensorRef` replaced by its NumPy array.

    Containers are converted once each (``done``), so a pickle that shares one list many
    times over (a DAG that would unfold exponentially) costs no more than its file.
    """
    done = {} if done is None else done
    if depth > MAX_DEPTH:
        raise UserError(f"{source}: the checkpoint nests deeper than {MAX_DEPTH} levels; {_FIX}.")
    if isinstance(value, (TensorRef, dict, list, tuple)) and id(value) in done:
        return done[id(value)][1]
    if isinstance(value, TensorRef):
        if value.storage.array is None:
            raise UserError(f"{source}: storage {getattr(value.storage, 'key', '?')!r} is missing from the file; "
                            f"the file is truncated or edited: {_FIX}.")
        out = value.numpy()
    elif isinstance(value, dict):
        out = type(value)() if isinstance(value, collections.OrderedDict) else {}
        for key, item in value.items():
            out[key] = _materialise(item, source, depth + 1, done)
    elif isinstance(value, (list, tuple)):
        items = [_materialise(item, source, depth + 1, done) for item in value]
        out = items if isinstance(value, list) else tuple(items)
    elif isinstance(value, (Storage, StorageView, StorageType)):
        raise UserError(f"{source}: holds a bare storage outside a tensor; {_FIX}.")
    else:
        return value
    done[id(value)] = (value, out)  # keeps ``value`` alive, so its id is not reused
    return out


# --- the three layouts ------------------------------------------------------------------------

def _read_zip(path: Path, source: str, size: int):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise UserError(f"{source}: is a damaged zip archive ({error}); {_FIX}.") from error
    with archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1] or \
                  [n for n in names if n == "data.pkl"]
        if len(pickles) != 1:
            raise UserError(f"{source}: a zip without exactly one <archive>/data.pkl (found {len(pickles)}); "
                            f"this is not a PyTorch checkpoint: {_FIX}.")
        prefix = pickles[0][: -len("data.pkl")]
        infos = {info.filename: info for info in archive.infolist()}

        def read(name, limit):
            info = infos[name]
            # A deflated member cannot expand beyond ~1032x; a larger claim is a zip bomb.
            if info.file_size > limit or (info.compress_type != zipfile.ZIP_STORED
                                          and info.file_size > 1100 * max(info.compress_size, 1)):
                raise PickleLimitError(f"{source}: member {name} declares {info.file_size:,} bytes, more than the "
                                       f"file can hold; refused before reading: {_FIX}.")
            try:
                return archive.read(name)
            except (zipfile.BadZipFile, OSError, EOFError, zlib_error()) as error:
                raise UserError(f"{source}: member {name} is damaged ({error}); {_FIX}.") from error

        big_endian = False
        if prefix + "byteorder" in infos:
            order = read(prefix + "byteorder", 16).decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise UserError(f"{source}: byteorder {order!r} is neither little nor big; {_FIX}.")
            big_endian = order == "big"
        storages: dict = {}
        obj = _unpickle(read(pickles[0], size * 1100), source, size, storages)
        for key, storage in storages.items():
            name = f"{prefix}data/{key}"
            if name not in infos:
                raise UserError(f"{source}: storage {key!r} ({name}) is missing from the archive; the file is "
                                f"truncated or edited: {_FIX}.")
            if infos[name].file_size != storage.nbytes:
                raise PickleLimitError(f"{source}: storage {key!r} declares {storage.numel:,} elements of "
                                       f"{storage.kind} ({storage.nbytes:,} bytes) but {name} holds "
                                       f"{infos[name].file_size:,} bytes; refused before reading: {_FIX}.")
            storage.attach(read(name, storage.nbytes), big_endian)
    return obj


def zlib_error():
    import zlib

    return zlib.error


class _Stream:
    """Bytes of a legacy file with a cursor; reading past the end is a one-line error."""

    def __init__(self, data: bytes, source: str):
        self.data, self.pos, self.source = data, 0, source

    def take(self, count: int, what: str) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise PickleLimitError(f"{self.source}: {what} declares {count:,} bytes at offset {self.pos:,} but the "
                                   f"file has {len(self.data) - self.pos:,} left; the file is truncated or edited: "
                                   f"{_FIX}.")
        out = self.data[self.pos:self.pos + count]
        self.pos += count
        return out

    def pickle(self, storages: dict, **kwargs):
        """One pickle from the cursor on (the opcodes end it)."""
        import pickletools

        rest = self.data[self.pos:]
        end = None
        try:
            for opcode, _arg, position in pickletools.genops(rest):
                if opcode.name == "STOP":
                    end = position + 1
                    break
        except (ValueError, EOFError) as error:
            raise UserError(f"{self.source}: not a readable PyTorch checkpoint (a pickle at offset {self.pos:,} "
                            f"is truncated or damaged: {str(error)[:120]}); {_FIX}.") from error
        if end is None:
            raise UserError(f"{self.source}: not a readable PyTorch checkpoint (the file is truncated); {_FIX}.")
        value = _unpickle(rest[:end], self.source, len(self.data), storages, **kwargs)
        self.pos += end
        return value

    def count(self, what: str, limit: int) -> int:
        """A pickled count of entries (the tar members start with one), at most ``limit``."""
        value = self.pickle({})
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise UserError(f"{self.source}: the {what} member declares {value!r} {what}; {_FIX}.")
        return value

    def storage_bytes(self, storage, what: str) -> bytes:
        """An int64 element count, then the elements; the count must be the declared one."""
        (count,) = struct.unpack("<q", self.take(8, what))
        if count != storage.numel:
            raise PickleLimitError(f"{self.source}: {what} holds {count:,} elements but the pickle declared "
                                   f"{storage.numel:,}; the file is edited: {_FIX}.")
        return self.take(storage.nbytes, what)


def _read_legacy(data: bytes, source: str):
    stream = _Stream(data, source)
    nothing: dict = {}
    magic = stream.pickle(nothing)
    if magic != LEGACY_MAGIC:
        raise UserError(f"{source}: does not start with PyTorch's magic number; not a PyTorch checkpoint "
                        "(a .pth from torch.save is a zip archive, a legacy pickle stream or a tar).")
    protocol = stream.pickle(nothing)
    if protocol != LEGACY_PROTOCOL:
        raise UserError(f"{source}: legacy protocol version {protocol!r}, expected {LEGACY_PROTOCOL}; {_FIX}.")
    info = stream.pickle(nothing)
    if not isinstance(info, dict) or not info.get("little_endian", True):
        raise UserError(f"{source}: a big-endian or malformed legacy checkpoint (sys_info {str(info)[:80]}); {_FIX}.")
    storages: dict = {}
    obj = stream.pickle(storages)
    keys = stream.pickle(nothing)
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(storages):
        raise UserError(f"{source}: the storage key list does not match the storages the pickle declares; {_FIX}.")
    for key in keys:
        storage = storages[str(key)]
        storage.attach(stream.storage_bytes(storage, f"storage {str(key)!r}"))
    return obj


def _read_tar(path: Path, source: str, size: int):
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = {m.name: m for m in tar.getmembers()}
            if not {"storages", "tensors", "pickle"} <= set(members):
                raise UserError(f"{source}: a tar without the members storages, tensors and pickle; {_FIX}.")
            parts = {}
            for name in ("storages", "tensors", "pickle"):
                member = members[name]
                if not member.isfile() or member.size > size:
                    raise UserError(f"{source}: tar member {name} is not a plain file of the archive; {_FIX}.")
                parts[name] = tar.extractfile(member).read()
    except tarfile.TarError as error:
        raise UserError(f"{source}: is a damaged tar archive ({error}); {_FIX}.") from error
    nothing: dict = {}
    stream = _Stream(parts["storages"], source)
    count = stream.count("storages", size)
    objects: dict = {}
    for _ in range(count):
        entry = stream.pickle(nothing, tensors={})
        if not (isinstance(entry, tuple) and len(entry) == 3 and isinstance(entry[2], StorageType)):
            raise UserError(f"{source}: a storage entry is not (key, location, type); {_FIX}.")
        key, _location, kind = entry
        header = stream.data[stream.pos:stream.pos + 8]
        numel = struct.unpack("<q", header)[0] if len(header) == 8 else -1
        if numel < 0 or numel * kind.dtype.itemsize > len(stream.data):
            raise PickleLimitError(f"{source}: storage {key!r} declares {numel:,} elements, more than the file "
                                   f"holds; refused before allocating: {_FIX}.")
        storage = Storage(kind, str(key), numel, source)
        storage.attach(stream.storage_bytes(storage, f"storage {key!r}"))
        objects[str(key)] = storage
    views = stream.pickle(nothing)
    for view in views if isinstance(views, list) else []:
        if not (isinstance(view, tuple) and len(view) == 4 and all(isinstance(v, int) for v in view[2:])):
            raise UserError(f"{source}: a storage view is not (key, root key, offset, count); {_FIX}.")
        target, root, offset, numel = view
        base = objects.get(str(root))
        if not isinstance(base, Storage) or offset < 0 or numel < 0 or offset + numel > base.numel:
            raise PickleLimitError(f"{source}: storage view {view!r} lies outside its storage; {_FIX}.")
        objects[str(target)] = StorageView(base, offset, numel)
    stream = _Stream(parts["tensors"], source)
    count = stream.count("tensors", size)
    tensors: dict = {}
    for _ in range(count):
        entry = stream.pickle(nothing, tensors={})
        if not (isinstance(entry, tuple) and len(entry) == 3) or str(entry[1]) not in objects:
            raise UserError(f"{source}: a tensor entry names no stored storage; {_FIX}.")
        (ndim,) = struct.unpack("<i", stream.take(4, "a tensor's rank"))
        stream.take(4, "a tensor's rank")
        if not 0 <= ndim <= MAX_DIMS:
            raise PickleLimitError(f"{source}: a tensor declares {ndim} dimensions; {_FIX}.")
        shape = struct.unpack(f"<{ndim}q", stream.take(8 * ndim, "a tensor's size"))
        stride = struct.unpack(f"<{ndim}q", stream.take(8 * ndim, "a tensor's stride"))
        (offset,) = struct.unpack("<q", stream.take(8, "a tensor's offset"))
        tensors[str(entry[0])] = TensorRef(objects[str(entry[1])], offset, list(shape), list(stride), source)
    return _unpickle(parts["pickle"], source, size, {}, tensors=tensors)


def load_checkpoint(path, *, max_bytes: int = MAX_CHECKPOINT_BYTES):
    """The object a ``torch.save`` file holds, with NumPy arrays in place of tensors.

    Reads the zip, legacy-pickle and legacy-tar layouts (see the module docstring).
    Raises :class:`UserError` (naming the file) for a global other than the tensor
    rebuild functions, storages and ``OrderedDict``, for a size the file does not back,
    and for a truncated or damaged file; nothing in the file is executed.
    """
    path, size = checked_input(path, max_bytes,
                               missing="checkpoint not found; download the released .pth (see docs/published-models.md)",
                               too_big="a detector checkpoint may have; this is not one of the released detectors")
    source = os.fsdecode(path)
    if zipfile.is_zipfile(path):
        obj = _read_zip(path, source, size)
    elif _is_tar(path):
        obj = _read_tar(path, source, size)
    else:
        obj = _read_legacy(path.read_bytes(), source)
    return _materialise(obj, source)


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError):
        return False


#: Keys under which training scripts nest the model's state dict (CNNDetection: ``model``).
WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "net", "netC")


def state_dict_of(obj, source: str = "<checkpoint>") -> dict:
    """The flat ``{name: array}`` of a loaded checkpoint.

    Unwraps ``{'model': state_dict, 'optimizer': ...}`` (CNNDetection, LGrad, NPR) and
    ``{'state_dict': ...}``, and strips the ``module.`` prefix of ``DataParallel``.
    """
    for _ in range(3):
        if isinstance(obj, dict) and not _is_weights(obj):
            inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not _is_weights(obj):
        keys = sorted(map(str, obj))[:6] if isinstance(obj, dict) else type(obj).__name__
        raise UserError(f"{source}: holds no state dict of arrays (found {keys}); pass the checkpoint of the "
                        "model's weights (torch.save(model.state_dict(), path)).")
    out = {}
    for name, value in obj.items():
        if isinstance(value, np.ndarray):
            out[str(name).removeprefix("module.")] = value
    return out


def _is_weights(obj: dict) -> bool:
    arrays = [v for v in obj.values() if isinstance(v, np.ndarray)]
    return bool(arrays) and len(arrays) >= len(obj) / 2


def load_state_dict(path, **kwargs) -> dict:
    """``{name: array}`` of the model in a checkpoint (see :func:`load_checkpoint`, :func:`state_dict_of`)."""
    return state_dict_of(load_checkpoint(path, **kwargs), os.fsdecode(path))
