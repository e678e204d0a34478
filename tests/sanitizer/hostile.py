"""The hostile-object suite: one case per kind of value a sanitizer must survive.

Each case builds a value (closing anything it opens through the ``ExitStack``) and names the
report paths, relative to where the value is placed, that must be reported. Other suites
(the codec's JSON-layer checks) import :data:`CASES` and reuse the factories.

Hostile classes record every dunder call in :data:`TOUCHED`; the sanitizer must leave it
empty, because it never runs methods of objects it does not know.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import functools
import io
import logging
import mmap
import multiprocessing
import os
import queue
import selectors
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import types
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import anyio
import pydantic

#: names of hostile methods that were called (must stay empty)
TOUCHED: list[str] = []


@dataclasses.dataclass(frozen=True)
class Case:
    """One hostile value.

    Attributes:
        id: a short unique name.
        factory: builds the value; registers cleanups on the stack.
        paths: report paths relative to the value's position ("" is the value itself).
    """

    id: str
    factory: Callable[[contextlib.ExitStack], Any]
    paths: tuple[str, ...] = ("",)


def _touch(name: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        TOUCHED.append(f"{type(self).__name__}.{name}")
        raise RuntimeError(f"hostile {name} called")

    return method


class EvilRepr:
    __repr__ = _touch("__repr__")
    __str__ = _touch("__str__")

    def __init__(self) -> None:
        self.value = 1


class EvilGetattr:
    __getattr__ = _touch("__getattr__")


class EvilGetattribute:
    def __getattribute__(self, name: str) -> Any:
        TOUCHED.append(f"EvilGetattribute.__getattribute__({name})")
        raise RuntimeError("hostile __getattribute__")


class SleepyGetattribute:
    def __getattribute__(self, name: str) -> Any:
        TOUCHED.append("SleepyGetattribute.__getattribute__")
        time.sleep(5)
        return None


class EvilEqHash:
    __eq__ = _touch("__eq__")
    __hash__ = _touch("__hash__")  # type: ignore[assignment]


class EvilReduce:
    __reduce__ = _touch("__reduce__")
    __reduce_ex__ = _touch("__reduce_ex__")
    __getstate__ = _touch("__getstate__")


class EvilClassProperty:
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        TOUCHED.append("EvilClassProperty.__class__")
        raise RuntimeError("hostile __class__")


class LyingClass:
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        TOUCHED.append("LyingClass.__class__")
        return int


class EvilProperty:
    def __init__(self) -> None:
        self.lock = threading.Lock()

    @property
    def boom(self) -> int:
        TOUCHED.append("EvilProperty.boom")
        raise RuntimeError("hostile property")


class SleepyProperty:
    def __init__(self) -> None:
        self.lock = threading.Lock()

    @property
    def slow(self) -> int:
        TOUCHED.append("SleepyProperty.slow")
        time.sleep(5)
        return 1


class EvilDictDescriptor:
    @property  # type: ignore[misc]
    def __dict__(self) -> dict[str, Any]:
        TOUCHED.append("EvilDictDescriptor.__dict__")
        raise RuntimeError("hostile __dict__")


class EvilLenIter:
    __len__ = _touch("__len__")
    __iter__ = _touch("__iter__")
    __bool__ = _touch("__bool__")


class EvilMeta(type):
    __eq__ = _touch("__eq__")
    __hash__ = _touch("__hash__")  # type: ignore[assignment]
    __repr__ = _touch("__repr__")

    def __getattribute__(cls, name: str) -> Any:
        if name in ("__mro__", "__dict__", "__qualname__", "__module__", "__name__"):
            TOUCHED.append(f"EvilMeta.__getattribute__({name})")
        return type.__getattribute__(cls, name)


class WithEvilMeta(metaclass=EvilMeta):
    pass


class Slotted:
    __slots__ = ("lock", "name")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.name = "slotted"

    __getattr__ = _touch("__getattr__")


class EvilDict(dict):  # type: ignore[type-arg]
    items = _touch("items")
    keys = _touch("keys")
    values = _touch("values")
    __iter__ = _touch("__iter__")
    __len__ = _touch("__len__")
    __getitem__ = _touch("__getitem__")


class EvilList(list):  # type: ignore[type-arg]
    __iter__ = _touch("__iter__")
    __len__ = _touch("__len__")
    __getitem__ = _touch("__getitem__")


class EvilStr(str):
    __str__ = _touch("__str__")
    __repr__ = _touch("__repr__")


class FlipKey:
    """Hashable when put into a dict, hostile afterwards."""

    armed = False

    def __hash__(self) -> int:
        if FlipKey.armed:
            TOUCHED.append("FlipKey.__hash__")
            raise RuntimeError("hostile __hash__")
        return 7

    def __eq__(self, other: object) -> bool:
        if FlipKey.armed:
            TOUCHED.append("FlipKey.__eq__")
            raise RuntimeError("hostile __eq__")
        return self is other


class LiarKey:
    """Claims to equal everything."""

    def __hash__(self) -> int:
        return hash("a")

    def __eq__(self, other: object) -> bool:
        TOUCHED.append("LiarKey.__eq__")
        return True


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)
    name: str = "m"
    lock: Any = None


@dataclasses.dataclass
class DC:
    name: str
    module: Any


class NT(NamedTuple):
    name: str
    fn: Any


def _fn() -> None:
    return None


class _Holder:
    def method(self) -> None:
        return None


def _gen() -> Any:
    yield 1


async def _coro() -> None:
    return None


async def _agen() -> Any:
    yield 1


def _traceback() -> types.TracebackType:
    try:
        raise ValueError("x")
    except ValueError as exc:
        assert exc.__traceback__ is not None
        return exc.__traceback__


def _exception_with_cause() -> BaseException:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ValueError("outer", EvilRepr()) from inner
    except ValueError as exc:
        return exc


def _closing(stack: contextlib.ExitStack, obj: Any, close: str = "close") -> Any:
    stack.callback(getattr(obj, close))
    return obj


def _coroutine(stack: contextlib.ExitStack) -> Any:
    return _closing(stack, _coro())


def _async_gen(stack: contextlib.ExitStack) -> Any:
    return _agen()


def _loop(stack: contextlib.ExitStack) -> Any:
    return _closing(stack, asyncio.new_event_loop())


def _future(stack: contextlib.ExitStack) -> Any:
    loop = _loop(stack)
    return loop.create_future()


def _socket(stack: contextlib.ExitStack) -> Any:
    return _closing(stack, socket.socket(socket.AF_INET, socket.SOCK_STREAM))


def _file(stack: contextlib.ExitStack) -> Any:
    return _closing(stack, tempfile.TemporaryFile())


def _text_file(stack: contextlib.ExitStack) -> Any:
    f = tempfile.NamedTemporaryFile("w+", delete=False)  # noqa: SIM115
    stack.callback(lambda: __import__("os").unlink(f.name))
    stack.callback(f.close)
    return f.file


def _mmap(stack: contextlib.ExitStack) -> Any:
    return _closing(stack, mmap.mmap(-1, 64))


def _sqlite(stack: contextlib.ExitStack) -> Any:
    return _closing(stack, sqlite3.connect(":memory:"))


def _cursor(stack: contextlib.ExitStack) -> Any:
    return _sqlite(stack).cursor()


def _popen(stack: contextlib.ExitStack) -> Any:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    stack.callback(p.wait)
    return p


def _executor(stack: contextlib.ExitStack) -> Any:
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    stack.callback(ex.shutdown)
    return ex


def _thread(stack: contextlib.ExitStack) -> Any:
    return threading.Thread(target=_fn, name="worker")


def _token(stack: contextlib.ExitStack) -> Any:
    var: contextvars.ContextVar[int] = contextvars.ContextVar("v")
    token = var.set(1)
    stack.callback(var.reset, token)
    return token


def _weakref(stack: contextlib.ExitStack) -> Any:
    target = _Holder()
    stack.callback(lambda: target)
    return weakref.ref(target)


def _weakproxy(stack: contextlib.ExitStack) -> Any:
    target = _Holder()
    stack.callback(lambda: target)
    return weakref.proxy(target)


def _flip_key(stack: contextlib.ExitStack) -> Any:
    d = {FlipKey(): "v", "ok": 1}
    FlipKey.armed = True

    def disarm() -> None:
        FlipKey.armed = False

    stack.callback(disarm)
    return d


def _selector(stack: contextlib.ExitStack) -> Any:
    return _closing(stack, selectors.DefaultSelector())


def _s(value: Any) -> Callable[[contextlib.ExitStack], Any]:
    return lambda stack: value() if callable(value) else value


CASES: list[Case] = [
    # modules, callables, classes
    Case("module", _s(lambda: sys)),
    Case("function", _s(lambda: _fn)),
    Case("lambda", _s(lambda: lambda x: x)),
    Case("builtin", _s(lambda: len)),
    Case("bound_method", _s(lambda: _Holder().method)),
    Case("partial", _s(lambda: functools.partial(_fn))),
    Case("class", _s(lambda: _Holder)),
    Case("class_with_evil_metaclass", _s(lambda: WithEvilMeta)),
    # code, frames, tracebacks, generators
    Case("code", _s(lambda: _fn.__code__)),
    Case("frame", _s(lambda: sys._getframe())),
    Case("traceback", _s(_traceback)),
    Case("generator", _s(lambda: _gen())),
    Case("coroutine", _coroutine),
    Case("async_generator", _async_gen),
    # threads and synchronisation
    Case("thread", _thread),
    Case("thread_lock", _s(lambda: threading.Lock())),
    Case("thread_rlock", _s(lambda: threading.RLock())),
    Case("thread_condition", _s(lambda: threading.Condition())),
    Case("thread_semaphore", _s(lambda: threading.Semaphore())),
    Case("thread_event", _s(lambda: threading.Event())),
    Case("asyncio_lock", _s(lambda: asyncio.Lock())),
    Case("asyncio_event", _s(lambda: asyncio.Event())),
    Case("asyncio_semaphore", _s(lambda: asyncio.Semaphore())),
    Case("anyio_lock", _s(lambda: anyio.Lock())),
    Case("anyio_event", _s(lambda: anyio.Event())),
    Case("queue", _s(lambda: queue.Queue())),
    # I/O
    Case("socket", _socket),
    Case("ssl_context", _s(lambda: ssl.create_default_context())),
    Case("binary_file", _file),
    Case("text_file", _text_file),
    Case("bytes_io", _s(lambda: io.BytesIO(b"x"))),
    Case("sqlite_connection", _sqlite),
    Case("sqlite_cursor", _cursor),
    Case("subprocess", _popen),
    Case("mmap", _mmap),
    Case("memoryview", _s(lambda: memoryview(b"abc"))),
    # async machinery, executors, context
    Case("event_loop", _loop),
    Case("future", _future),
    Case("cf_future", _s(lambda: concurrent.futures.Future())),
    Case("executor", _executor),
    Case("contextvar", _s(lambda: contextvars.ContextVar("request_id"))),
    Case("contextvar_token", _token),
    Case("context", _s(lambda: contextvars.copy_context())),
    Case("weakref", _weakref),
    Case("weakproxy", _weakproxy),
    Case("logger", _s(lambda: logging.getLogger("agentkit.test"))),
    Case("log_handler", _s(lambda: logging.NullHandler())),
    Case("thread_local", _s(lambda: threading.local())),
    Case("thread_barrier", _s(lambda: threading.Barrier(2))),
    Case("selector", _selector),
    Case("asyncio_queue", _s(lambda: asyncio.Queue())),
    Case("asyncio_condition", _s(lambda: asyncio.Condition())),
    Case("anyio_capacity_limiter", _s(lambda: anyio.CapacityLimiter(2))),
    Case("weak_value_dict", _s(lambda: weakref.WeakValueDictionary())),
    Case("multiprocessing_lock", _s(lambda: multiprocessing.Lock())),
    Case("environment", _s(lambda: os.environ)),
    Case("exception_group", _s(lambda: ExceptionGroup("many", [ValueError("a"), KeyError("b")]))),
    # exceptions
    Case("exception_with_cause", _s(_exception_with_cause)),
    # hostile unknown objects
    Case("evil_repr", _s(lambda: EvilRepr())),
    Case("evil_getattr", _s(lambda: EvilGetattr())),
    Case("evil_getattribute", _s(lambda: EvilGetattribute())),
    Case("sleepy_getattribute", _s(lambda: SleepyGetattribute())),
    Case("evil_eq_hash", _s(lambda: EvilEqHash())),
    Case("evil_reduce", _s(lambda: EvilReduce())),
    Case("evil_class_property", _s(lambda: EvilClassProperty())),
    Case("lying_class", _s(lambda: LyingClass())),
    Case("evil_property", _s(lambda: EvilProperty()), ("", ".lock")),
    Case("evil_dict_descriptor", _s(lambda: EvilDictDescriptor())),
    Case("sleepy_property", _s(lambda: SleepyProperty()), ("", ".lock")),
    Case("huge_key", _s(lambda: {"x" * 2_000_000: 1}), ('["<key 0>"]',)),
    Case("evil_len_iter", _s(lambda: EvilLenIter())),
    Case("instance_of_evil_metaclass", _s(lambda: WithEvilMeta())),
    Case("slots_with_lock", _s(lambda: Slotted()), ("", ".lock")),
    Case("evil_dict_subclass", _s(lambda: EvilDict(a=threading.Lock())), (".a",)),
    Case("evil_list_subclass", _s(lambda: EvilList([1, sys])), ("[1]",)),
    Case("evil_str_subclass_in_list", _s(lambda: [EvilStr("x"), sys]), ("[1]",)),
    Case("flip_key", _flip_key, (f'["<{__name__}.FlipKey #0>"]',)),
    Case("liar_key", _s(lambda: {LiarKey(): 1}), (f'["<{__name__}.LiarKey #0>"]',)),
    Case("liar_in_set", _s(lambda: {LiarKey()}), (f'["<{__name__}.LiarKey #0>"]',)),
    # known protocols holding live objects
    Case("pydantic_lock_field", _s(lambda: Model(lock=threading.Lock())), (".lock",)),
    Case("dataclass_module_field", _s(lambda: DC("d", sys)), (".module",)),
    Case("namedtuple_lambda", _s(lambda: NT("n", lambda: 1)), (".fn",)),
    Case("secret_str", _s(lambda: pydantic.SecretStr("hunter2"))),
    Case("deque_of_live", _s(lambda: collections.deque([1, sys])), ("[1]",)),
    Case("ordered_dict_of_live", _s(lambda: collections.OrderedDict(m=sys)), (".m",)),
]
