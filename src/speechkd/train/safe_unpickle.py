"""The globals a released fairseq checkpoint (fairseq 0.6-0.10, numpy 1.x, 2019-2020) may name, and a restricted
pickle module for the files torch's weights_only unpickler cannot take (objects of classes we do not have).

Nothing here imports a module a pickle names, and no callable outside ALLOWED runs: a global of a module that can
run code (os, subprocess, builtins.eval, ...) is refused (RefusedGlobal), any other unknown global becomes an inert
stand-in (a PickledObject subclass that only records the module, name, arguments and state it was given).
See docs/data_and_checkpoints.md, "Loading the released checkpoints safely".
"""
from __future__ import annotations

import _compat_pickle
import argparse
import collections
import pickle
from typing import Any

import torch

# ---------------------------------------------------------------------------------------------------------------
# What the weights_only path adds to torch's own allowlist (torch.serialization.safe_globals)


def _numpy_globals() -> list[Any]:
    """numpy scalars, dtypes and arrays under both numpy 1.x (numpy.core) and numpy 2 (numpy._core) names.

    torch's weights_only unpickler looks a GLOBAL up by the exact name in the file, so each function is
    registered under both names as (object, "module.name"). BUILD on a dtype checks type(dtype) (e.g.
    numpy.dtypes.Float64DType), so those classes are allowed too."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return []
    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1
    out: list[Any] = [(np.ndarray, "numpy.ndarray"), (np.dtype, "numpy.dtype")]
    for prefix in ("numpy.core", "numpy._core"):
        out.append((core.multiarray._reconstruct, f"{prefix}.multiarray._reconstruct"))
        out.append((core.multiarray.scalar, f"{prefix}.multiarray.scalar"))
        if hasattr(core.numeric, "_frombuffer"):  # arrays pickled with protocol 5
            out.append((core.numeric._frombuffer, f"{prefix}.numeric._frombuffer"))
    dtype_classes = {type(np.dtype(c)) for c in "?bBhHiIlLqQefdgFDGSUVOMm"}
    dtypes_mod = getattr(np, "dtypes", None)
    if dtypes_mod is not None:
        dtype_classes |= {getattr(dtypes_mod, n) for n in getattr(dtypes_mod, "__all__", ())
                          if isinstance(getattr(dtypes_mod, n, None), type)}
    for cls in sorted(dtype_classes, key=lambda c: c.__name__):
        out.append((cls, f"numpy.dtypes.{cls.__name__}"))
    return out


# argparse.Namespace: fairseq <= 0.10 `args`; collections.* containers; numpy scalars/dtypes/arrays.
RELEASED_SAFE_GLOBALS: list[Any] = [
    argparse.Namespace,
    (collections.OrderedDict, "collections.OrderedDict"),
    (collections.defaultdict, "collections.defaultdict"),
    (collections.deque, "collections.deque"),
    *_numpy_globals(),
]

# ---------------------------------------------------------------------------------------------------------------
# The restricted pickle module (fallback when weights_only refuses an unknown class)

# builtins that only build plain values (torch itself allows set, bytearray, complex)
_SAFE_BUILTINS = ("set", "frozenset", "bytearray", "bytes", "complex", "slice", "range", "int", "float", "str",
                  "bool", "list", "dict", "tuple", "object")

# top-level modules whose globals can run code, read or write files, import, or build callables: a global of
# one of these that is not in ALLOWED is refused, never replaced by a stand-in.
REFUSED_MODULES = frozenset("""
    os posix nt sys subprocess _posixsubprocess builtins __builtin__ importlib imp zipimport pkgutil runpy site
    sysconfig pickle _pickle pickletools cPickle copyreg copy_reg marshal types codecs _codecs encodings operator
    _operator functools _functools itertools shutil socket _socket ssl select selectors signal ctypes _ctypes io
    _io pty tty code codeop inspect webbrowser multiprocessing concurrent threading _thread asyncio pdb bdb
    timeit trace tempfile pathlib glob fnmatch urllib urllib2 http httplib ftplib smtplib telnetlib xmlrpc
    gc weakref platform shlex resource fcntl mmap atexit contextlib ast dis compileall py_compile linecache
    distutils setuptools pip ensurepip venv commands popen2 dill cloudpickle joblib yaml requests
    torch numpy
""".split())


def _allowed() -> dict[str, Any]:
    """Every global the restricted unpickler resolves: torch's weights_only allowlist (tensor rebuild
    functions, dtypes, storages, torch.Size, torch.device, collections.OrderedDict, _codecs.encode for bytes)
    plus RELEASED_SAFE_GLOBALS and a few value-building builtins."""
    import builtins

    try:
        from torch import _weights_only_unpickler as wo
        rc: dict[str, Any] = dict(wo._get_allowed_globals())
    except (ImportError, AttributeError):  # pragma: no cover - torch internals moved
        rc = {"collections.OrderedDict": collections.OrderedDict, "torch.Size": torch.Size,
              "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
              "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter}
    for g in RELEASED_SAFE_GLOBALS:
        obj, name = g if isinstance(g, tuple) else (g, f"{g.__module__}.{g.__qualname__}")
        rc[name] = obj
    for name in _SAFE_BUILTINS:
        rc[f"builtins.{name}"] = getattr(builtins, name)
    return rc


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle names a global that could run code; `name` is its 'module.qualname'."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class PickledObject:
    """Inert stand-in for an object of a class this loader neither has nor imports (e.g. fairseq.meters.
    AverageMeter in fairseq 0.6-0.8 extra_state). Subclasses are made per pickled global; `pickled_module` /
    `pickled_name` say which. An instance keeps what the pickle gave it and does nothing else: `args` /
    `kwargs` (constructor or reduce arguments), `state` (BUILD state, often the original __dict__),
    `items` / `listitems` (dict / list subclass contents)."""

    pickled_module = ""
    pickled_name = ""

    def __new__(cls, *args: Any, **kwargs: Any):
        obj = object.__new__(cls)
        d = obj.__dict__
        d["args"], d["kwargs"], d["state"], d["items"], d["listitems"] = args, kwargs, None, {}, []
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # the arguments were kept by __new__
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.listitems.append(value)

    def extend(self, values: Any) -> None:
        self.listitems.extend(values)

    @classmethod
    def stand_in_for(cls) -> str:
        return f"{cls.pickled_module}.{cls.pickled_name}"

    def __repr__(self) -> str:
        return f"<stand-in for {self.stand_in_for()}>"


_STAND_INS: dict[tuple[str, str], type] = {}


def stand_in(module: str, name: str) -> type:
    """The (cached) PickledObject subclass standing in for global `module.name`; nothing is imported."""
    key = (module, name)
    if key not in _STAND_INS:
        _STAND_INS[key] = type(f"StandIn[{module}.{name}]", (PickledObject,),
                               {"pickled_module": module, "pickled_name": name, "__module__": __name__})
    return _STAND_INS[key]


def refused(module: str) -> bool:
    top = module.split(".", 1)[0]
    return top in REFUSED_MODULES or top.lstrip("_") in REFUSED_MODULES


def _allowed_ids() -> tuple[dict[str, Any], set[int]]:
    if Unpickler._allowed_cache is None:
        allowed = _allowed()
        Unpickler._allowed_cache = (allowed, {id(v) for v in allowed.values()})
    return Unpickler._allowed_cache


def _callable_ok(obj: Any) -> bool:
    """REDUCE / NEWOBJ may only call an allowed global or a stand-in class (as torch's weights_only does)."""
    return id(obj) in _allowed_ids()[1] or (isinstance(obj, type) and issubclass(obj, PickledObject))


def _buildable(inst: Any) -> bool:
    """BUILD (setstate / __dict__ update / setattr) only on instances of allowed classes or stand-ins, never on a
    class or function (a pickle must not patch an allowed global)."""
    cls = type(inst)
    return not isinstance(inst, type) and (issubclass(cls, PickledObject) or cls in (torch.Tensor, torch.nn.Parameter)
                                           or id(cls) in _allowed_ids()[1])


class Unpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """find_class -> an allowed global, RefusedGlobal, or a stand-in; never imports. REDUCE, NEWOBJ and BUILD are
    restricted as in torch's weights_only unpickler. The pure-Python unpickler, so that those opcodes can be
    checked; a checkpoint's pickle holds no tensor data (storages are separate), so it stays fast."""

    _allowed_cache: tuple[dict[str, Any], set[int]] | None = None
    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 names, as pickle's fix_imports does
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        allowed = _allowed_ids()[0]
        if full in allowed:
            return allowed[full]
        if refused(module):
            raise RefusedGlobal(full)
        return stand_in(module, name)

    def _check_call(self, func: Any) -> None:
        if not _callable_ok(func):
            raise pickle.UnpicklingError(f"refusing to call {type(func).__name__} {func!r:.80}: not an allowed "
                                         f"global")

    def load_reduce(self) -> None:
        self._check_call(self.stack[-2])
        pickle._Unpickler.load_reduce(self)  # type: ignore[attr-defined]

    def load_newobj(self) -> None:
        self._check_call(self.stack[-2])
        pickle._Unpickler.load_newobj(self)  # type: ignore[attr-defined]

    def load_newobj_ex(self) -> None:
        self._check_call(self.stack[-3])
        pickle._Unpickler.load_newobj_ex(self)  # type: ignore[attr-defined]

    def load_obj(self) -> None:  # protocol 0/1 opcodes; torch.save writes protocol 2
        raise pickle.UnpicklingError("the protocol 0/1 OBJ opcode is not accepted")

    def load_inst(self) -> None:
        raise pickle.UnpicklingError("the protocol 0 INST opcode is not accepted")

    def load_build(self) -> None:
        if not _buildable(self.stack[-2]):
            inst = self.stack[-2]
            raise pickle.UnpicklingError(f"refusing to set the state of {type(inst).__name__} {inst!r:.80}")
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.OBJ[0]] = load_obj
    dispatch[pickle.INST[0]] = load_inst
    dispatch[pickle.BUILD[0]] = load_build


def load(file: Any, **kwargs: Any) -> Any:
    """pickle.load with the restricted Unpickler (torch.load calls it for the legacy format's header)."""
    return Unpickler(file, **kwargs).load()


def loads(data: bytes, **kwargs: Any) -> Any:
    import io

    return Unpickler(io.BytesIO(data), **kwargs).load()


# torch.load(pickle_module=this module) subclasses Unpickler and may read these
Pickler = pickle.Pickler
UnpicklingError = pickle.UnpicklingError
