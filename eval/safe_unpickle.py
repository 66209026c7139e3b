"""Read a file written by ``torch.save(obj)`` without running any code the file names.

A whole pickled model (``torch.save(model)``) is a pickle whose globals name the model's classes;
``torch.load`` imports and calls them, so it runs whatever the file asks for. This reader parses
both on-disk layouts itself (the zip archive that ``torch.save`` writes by default since
PyTorch 1.6, and the older single-stream "legacy" layout) with a :class:`pickle.Unpickler`
whose ``find_class`` admits only

* the tensor-rebuild helpers (``torch._utils._rebuild_tensor_v2`` / ``_rebuild_tensor`` /
  ``_rebuild_parameter``) and the typed storage names (``torch.FloatStorage``, ...), all mapped
  onto small functions of this module that build plain CPU tensors;
* ``collections.OrderedDict``, ``set``, ``frozenset``, ``_codecs.encode`` (latin-1 only: how
  protocol 2 spells ``bytes``), ``torch.Size``, ``torch.device`` (kept as a string) and the
  ``_backend`` marker of pre-1.0 modules;
* the module classes the caller lists (``allowed_classes``), each replaced by an inert
  :class:`Stub` that only records the pickled attribute dict.

Everything else raises :class:`Refused` naming the class, before anything is called. The
result is the object graph with stubs in place of modules; the caller walks it and copies the
tensors into its own implementation.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import torch

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a legacy torch.save file
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}  # protocol 2 writes Python 2 names


class Refused(Exception):
    """The file names a global outside the admitted set (``qualname`` = ``module.name``)."""

    def __init__(self, qualname: str) -> None:
        super().__init__(qualname)
        self.qualname = qualname


class Malformed(Exception):
    """The file is not a well-formed torch.save file (truncated, bad layout, bad tensor)."""


class Stub:
    """Inert stand-in for a pickled module class: keeps the attribute dict, defines no behaviour."""

    pickled_name = "?"
    dump_patches = False

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict):
            raise Malformed(f"{self.pickled_name}: pickled state is {type(state).__name__}, not a dict")
        self.state = state

    def __repr__(self) -> str:
        return f"<stub {self.pickled_name}>"


class _Storage:
    """A typed storage read from the file: ``data`` is a flat tensor of ``dtype``."""

    __slots__ = ("dtype", "data")

    def __init__(self, dtype: torch.dtype, data: torch.Tensor) -> None:
        self.dtype, self.data = dtype, data


class _StorageType:
    """What ``torch.FloatStorage`` & co. resolve to: only the dtype."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _as_shape(x: object, what: str) -> tuple[int, ...]:
    if not isinstance(x, tuple | list) or not all(type(v) is int and v >= 0 for v in x):
        raise Malformed(f"tensor {what} {x!r} is not a tuple of non-negative ints")
    return tuple(x)


def _rebuild_tensor(storage: object, offset: object, size: object, stride: object, *_ignored: object) -> torch.Tensor:
    """``_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`` (and
    the older 4-argument ``_rebuild_tensor``) → a plain tensor view of the storage (bounds-checked)."""
    if not isinstance(storage, _Storage) or type(offset) is not int:
        raise Malformed("tensor record without a storage")
    size, stride = _as_shape(size, "size"), _as_shape(stride, "stride")
    if len(size) != len(stride):
        raise Malformed(f"tensor size {size} and stride {stride} differ in length")
    try:
        return storage.data.as_strided(size, stride, offset)
    except RuntimeError as err:
        raise Malformed(f"tensor outside its storage ({str(err).splitlines()[0][:80]})") from None


def _rebuild_parameter(data: object, *_ignored: object) -> torch.Tensor:
    """``_rebuild_parameter(data, requires_grad, hooks)`` → the tensor itself (no Parameter, no hooks)."""
    if not isinstance(data, torch.Tensor):
        raise Malformed("parameter record without a tensor")
    return data


def _latin1_encode(text: object, encoding: object = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise Malformed("unexpected _codecs.encode call")
    return text.encode("latin-1")


def _device(kind: object, index: object = None) -> str:
    return f"{kind}:{index}" if index is not None else str(kind)


def _size(dims: object = ()) -> tuple[int, ...]:
    return _as_shape(dims, "Size")


def _no_backend(*_ignored: object) -> None:
    return None


_FUNCTIONS: dict[tuple[str, str], object] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _latin1_encode,
    ("torch", "device"): _device,
    ("torch", "Size"): _size,
    ("torch.nn.backends.thnn", "_get_thnn_function_backend"): _no_backend,  # `_backend` of torch < 1.0
}


def admitted_globals(allowed_classes: frozenset[tuple[str, str]]) -> list[str]:
    """Every ``module.name`` the reader admits with these module classes (for messages and docs)."""
    names = [f"{m}.{n}" for m, n in _FUNCTIONS] + [f"torch.{n}" for n in STORAGE_DTYPES]
    return names + [f"{m}.{n}" for m, n in sorted(allowed_classes)]


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, stubs: dict[tuple[str, str], type[Stub]], storages) -> None:
        super().__init__(file, encoding="utf-8")
        self._stubs = stubs
        self._storages = storages  # persistent id → _Storage (None: plain pickles, no tensors)

    def find_class(self, module: str, name: str) -> object:
        module = _PY2_MODULES.get(module, module)
        key = (module, name)
        if key in self._stubs:
            return self._stubs[key]
        if key in _FUNCTIONS:
            return _FUNCTIONS[key]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        raise Refused(f"{module}.{name}")

    def persistent_load(self, pid: object) -> object:
        if self._storages is None:
            raise Malformed("unexpected persistent id")
        return self._storages(pid)


def _stub_classes(allowed_classes: frozenset[tuple[str, str]]) -> dict[tuple[str, str], type[Stub]]:
    out = {}
    for module, name in allowed_classes:
        qual = f"{module}.{name}"
        out[(module, name)] = type(name, (Stub,), {"pickled_name": qual, "__qualname__": f"Stub[{qual}]"})
    return out


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _storage_from_bytes(raw: bytes | bytearray, dtype: torch.dtype, numel: int) -> _Storage:
    nbytes = numel * _element_size(dtype)
    if len(raw) < nbytes:
        raise Malformed(f"storage of {numel} {dtype} elements has only {len(raw)} bytes")
    if numel == 0:
        return _Storage(dtype, torch.empty(0, dtype=dtype))
    flat = torch.frombuffer(bytearray(raw[:nbytes]), dtype=torch.uint8).view(dtype)
    return _Storage(dtype, flat)


def _read_zip(path: Path, stubs: dict[tuple[str, str], type[Stub]]) -> object:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkls = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pkls) != 1:
            if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
                raise Malformed("a TorchScript archive (torch.jit.save), not a pickled model")
            raise Malformed("zip archive without exactly one <name>/data.pkl record")
        prefix = pkls[0][: -len("data.pkl")]
        if f"{prefix}constants.pkl" in names:
            raise Malformed("a TorchScript archive (torch.jit.save), not a pickled model")
        if f"{prefix}byteorder" in names and zf.read(f"{prefix}byteorder").strip() not in (b"little", b""):
            raise Malformed("big-endian tensors are not supported")
        loaded: dict[str, _Storage] = {}

        def storage(pid: object) -> _Storage:
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
                raise Malformed(f"unexpected persistent id {str(pid)[:60]}")
            _, kind, key, _location, numel = pid
            if not isinstance(kind, _StorageType) or type(numel) is not int or numel < 0:
                raise Malformed("bad storage record")
            key = str(key)
            if key not in loaded:
                record = f"{prefix}data/{key}"
                if record not in names:
                    raise Malformed(f"storage record {record} missing")
                if zf.getinfo(record).file_size < numel * _element_size(kind.dtype):
                    raise Malformed(f"storage record {record} is shorter than its {numel} elements")
                loaded[key] = _storage_from_bytes(zf.read(record), kind.dtype, numel)
            return loaded[key]

        return _RestrictedUnpickler(io.BytesIO(zf.read(pkls[0])), stubs, storage).load()


def _read_legacy(path: Path, stubs: dict[tuple[str, str], type[Stub]]) -> object:
    file_size = path.stat().st_size
    with open(path, "rb") as f:
        def plain() -> object:
            return _RestrictedUnpickler(f, stubs, None).load()

        if plain() != LEGACY_MAGIC:
            raise Malformed("not a torch.save file (no legacy magic number)")
        if plain() != LEGACY_PROTOCOL:
            raise Malformed("unknown legacy protocol version")
        info = plain()
        if isinstance(info, dict) and info.get("little_endian") is False:
            raise Malformed("big-endian tensors are not supported")
        roots: dict[str, _Storage] = {}
        views: dict[str, _Storage] = {}

        def persistent(pid: object) -> object:
            if isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "module":
                if not (isinstance(pid[1], type) and issubclass(pid[1], Stub)):
                    raise Malformed("module record without an admitted class")
                return pid[1]  # the class (already admitted by find_class); its saved source is ignored
            if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
                raise Malformed(f"unexpected persistent id {str(pid)[:60]}")
            _, kind, key, _location, numel, view = pid
            if not isinstance(kind, _StorageType) or type(numel) is not int or numel < 0:
                raise Malformed("bad storage record")
            if numel * _element_size(kind.dtype) > file_size:
                raise Malformed(f"storage of {numel} elements is larger than the file")
            key = str(key)
            if key not in roots:
                roots[key] = _Storage(kind.dtype, torch.zeros(numel, dtype=kind.dtype))  # filled below
            root = roots[key]
            if view is None:
                return root
            view_key, offset, view_size = view
            if view_key not in views:
                views[view_key] = _Storage(root.dtype, root.data[offset : offset + view_size])
            return views[view_key]

        obj = _RestrictedUnpickler(f, stubs, persistent).load()
        keys = plain()
        if not isinstance(keys, list):
            raise Malformed("bad legacy storage key list")
        for key in keys:
            header = f.read(8)
            if len(header) != 8:
                raise Malformed("truncated storage data")
            (numel,) = struct.unpack("<q", header)
            root = roots.get(str(key))
            if root is None or numel != root.data.numel():
                raise Malformed(f"storage {key} does not match its record")
            raw = f.read(numel * _element_size(root.dtype))
            root.data.copy_(_storage_from_bytes(raw, root.dtype, numel).data)
        return obj


def read_torch_pickle(path: str | Path, allowed_classes: frozenset[tuple[str, str]]) -> object:
    """The object graph of a ``torch.save`` file, read without running its code.

    Module classes listed in ``allowed_classes`` (``(module, name)`` pairs as pickled) come back
    as :class:`Stub` instances with ``.state`` (the pickled attribute dict) and ``.pickled_name``;
    tensors come back as plain CPU tensors. Raises :class:`Refused` for any other global,
    :class:`Malformed` for a damaged or unsupported file, ``OSError`` when unreadable.
    """
    path = Path(path)
    stubs = _stub_classes(allowed_classes)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if head == b"PK\x03\x04":  # what torch.save writes by default (a zip archive)
            return _read_zip(path, stubs)
        if tarfile.is_tarfile(path):
            raise Malformed("the tar layout of PyTorch < 0.4 is not supported; re-save it with a newer torch")
        return _read_legacy(path, stubs)
    except (Refused, Malformed, OSError):
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError, KeyError,
            AttributeError, IndexError, struct.error, RecursionError, MemoryError) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0][:100]
        raise Malformed(f"{type(err).__name__}: {reason}") from None


__all__ = ["Malformed", "Refused", "Stub", "admitted_globals", "read_torch_pickle", "STORAGE_DTYPES"]
