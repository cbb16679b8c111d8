"""Writers of PyTorch's checkpoint layouts, without torch, for the tests.

They produce the bytes ``torch.save`` writes: pickle protocol 2 with the real global names
(``torch._utils._rebuild_tensor_v2``, ``torch.FloatStorage``, ``collections.OrderedDict``)
and the real file layouts (zip ``archive/data.pkl`` + ``archive/data/<key>``; the legacy
magic-number stream; the legacy tar). The globals are pickled from the stand-ins below
and renamed in the opcode stream (protocol 2 spells a global as ``c<module>\\n<name>\\n``).
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import tarfile
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
            np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage", np.dtype(np.int32): "IntStorage",
            np.dtype(np.uint8): "ByteStorage", np.dtype(np.bool_): "BoolStorage"}


def _rebuild_tensor_v2(*args):  # pickled as torch._utils._rebuild_tensor_v2
    raise AssertionError("a stand-in; never called")


def _rebuild_parameter(*args):  # pickled as torch._utils._rebuild_parameter
    raise AssertionError("a stand-in; never called")


def _make_storage_class(name):
    cls = type(name, (), {"__module__": __name__})
    globals()[name] = cls
    return cls


STORAGE_CLASSES = {name: _make_storage_class(name) for name in STORAGES.values()}
for _name in ("FloatTensor", "DoubleTensor", "LongTensor"):
    _make_storage_class(_name)


class Tensor:
    """A tensor to write: ``data`` is its storage; ``size``/``stride``/``offset`` may lie (hostile files)."""

    def __init__(self, data, *, offset=0, size=None, stride=None, numel=None, key=None, parameter=False):
        self.data = np.require(data, requirements="C")
        self.offset = offset
        self.size = tuple(self.data.shape) if size is None else tuple(size)
        if stride is None:
            stride = [int(np.prod(self.size[i + 1:])) for i in range(len(self.size))]
        self.stride = tuple(stride)
        self.numel = self.data.size if numel is None else numel
        self.key = key
        self.parameter = parameter


class _Storage:
    def __init__(self, tensor, key):
        self.tensor, self.key = tensor, key


def _rename(data: bytes, extra=()) -> bytes:
    renames = [("_rebuild_tensor_v2", "torch._utils"), ("_rebuild_parameter", "torch._utils"),
               *[(n, "torch") for n in (*STORAGES.values(), "FloatTensor", "DoubleTensor", "LongTensor")], *extra]
    for name, module in renames:
        data = data.replace(f"c{__name__}\n{name}\n".encode(), f"c{module}\n{name}\n".encode())
    return data


class _Pickler(pickle.Pickler):
    def __init__(self, file, legacy):
        super().__init__(file, protocol=2)
        self.storages = {}
        self.legacy = legacy

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            kind = STORAGE_CLASSES[STORAGES[obj.tensor.data.dtype]]
            self.storages.setdefault(obj.key, obj.tensor)
            fields = (kind, obj.key, "cpu", obj.tensor.numel)
            return ("storage", *fields, None) if self.legacy else ("storage", *fields)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            obj = Tensor(obj)
        if isinstance(obj, Tensor):
            key = obj.key if obj.key is not None else str(len(self.storages))
            while obj.key is None and key in self.storages:
                key = str(int(key) + 1)
            args = (_Storage(obj, key), obj.offset, obj.size, obj.stride, False, collections.OrderedDict())
            tensor = (_rebuild_tensor_v2, args)
            if obj.parameter:
                return _rebuild_parameter, (_Reduced(tensor), True, collections.OrderedDict())
            return tensor
        if isinstance(obj, _Reduced):
            return obj.reduced
        return NotImplemented


class _Reduced:
    def __init__(self, reduced):
        self.reduced = reduced


def _pickle(obj, legacy=False):
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, legacy)
    pickler.dump(obj)
    return _rename(buffer.getvalue()), pickler.storages


def _raw(tensor: Tensor) -> bytes:
    return tensor.data.astype(tensor.data.dtype.newbyteorder("<")).tobytes()


def state_dict(arrays: dict) -> collections.OrderedDict:
    """An OrderedDict with torch's ``_metadata`` attribute, as ``module.state_dict()`` returns."""
    out = collections.OrderedDict(arrays)
    out._metadata = collections.OrderedDict([("", {"version": 1})])
    return out


def save_zip(obj, path, *, archive="archive", edit=None):
    """The zip layout of torch >= 1.6; ``edit(name, bytes) -> bytes`` may damage members."""
    data, storages = _pickle(obj)
    members = {f"{archive}/data.pkl": data, f"{archive}/byteorder": b"little"}
    for key, tensor in storages.items():
        members[f"{archive}/data/{key}"] = _raw(tensor)
    members[f"{archive}/version"] = b"3\n"
    members[f"{archive}/.data/serialization_id"] = b"1234567890"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as handle:
        for name, content in members.items():
            content = edit(name, content) if edit else content
            if content is not None:
                handle.writestr(name, content)
    return path


def save_legacy(obj, path, *, cut=0):
    """The magic-number stream of torch 0.4 - 1.5; ``cut`` drops that many bytes at the end."""
    data, storages = _pickle(obj, legacy=True)
    out = io.BytesIO()
    for head in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                      "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(head, out, protocol=2)
    out.write(data)
    pickle.dump(list(storages), out, protocol=2)
    for tensor in storages.values():
        out.write(struct.pack("<q", tensor.numel))
        out.write(_raw(tensor))
    blob = out.getvalue()
    path.write_bytes(blob[:len(blob) - cut] if cut else blob)
    return path


class _TensorKey:
    def __init__(self, key):
        self.key = key


class _TarPickler(pickle.Pickler):
    def __init__(self, file, tensors):
        super().__init__(file, protocol=2)
        self.tensors = tensors

    def persistent_id(self, obj):
        return obj.key if isinstance(obj, _TensorKey) else None



def save_tar(obj, path):
    """The tar layout of torch <= 0.3: members storages, tensors and pickle."""
    tensors = {}
    main = io.BytesIO()
    pickler = _TarPickler(main, tensors)
    # Arrays become _TensorKey placeholders, which persistent_id writes as the tensor keys.
    swapped = _swap(obj, tensors)
    pickler.dump(swapped)
    storages = io.BytesIO()
    pickle.dump(len(tensors), storages, protocol=2)
    for key, array in tensors.items():
        kind = STORAGE_CLASSES[STORAGES[array.dtype]]
        storages.write(_rename(pickle.dumps((key, "cpu", kind), protocol=2)))
        storages.write(struct.pack("<q", array.size))
        storages.write(np.ascontiguousarray(array).tobytes())
    pickle.dump([], storages, protocol=2)
    tensor_part = io.BytesIO()
    pickle.dump(len(tensors), tensor_part, protocol=2)
    for key, array in tensors.items():
        tensor_part.write(_rename(pickle.dumps((key, key, globals()["FloatTensor"]), protocol=2)))
        tensor_part.write(struct.pack("<ii", array.ndim, 0))
        tensor_part.write(struct.pack(f"<{array.ndim}q", *array.shape))
        tensor_part.write(struct.pack(f"<{array.ndim}q", *[s // array.itemsize for s in array.strides]))
        tensor_part.write(struct.pack("<q", 0))
    with tarfile.open(path, "w:", format=tarfile.PAX_FORMAT) as tar:
        for name, content in (("storages", storages.getvalue()), ("tensors", tensor_part.getvalue()),
                              ("pickle", main.getvalue())):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def _swap(obj, tensors):
    if isinstance(obj, np.ndarray):
        key = str(len(tensors))
        tensors[key] = np.require(obj, requirements="C")
        return _TensorKey(key)
    if isinstance(obj, dict):
        out = type(obj)()
        for k, v in obj.items():
            out[k] = _swap(v, tensors)
        return out
    return obj


def pickle_with_global(module: str, name: str) -> bytes:
    """A protocol-2 pickle that calls ``module.name()`` (a hostile data.pkl)."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."
