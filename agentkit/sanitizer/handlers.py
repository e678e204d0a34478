"""Known live objects and the typed placeholders they become.

A placeholder is a plain dict in the clean value domain::

    {"__agentkit_placeholder__": "lock", "type": "_thread.lock", "locked": False}

Metadata is read only through C-level descriptors of known stdlib types (never through
``getattr`` on the object), and every read is guarded, so a placeholder never fails.
"""

from __future__ import annotations

import _io
import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import io
import logging
import mmap
import os
import queue
import selectors
import socket
import sqlite3
import ssl
import subprocess
import threading
import traceback
import types
import weakref
from collections.abc import Callable
from typing import Any

from agentkit.sanitizer import _safe

__all__ = [
    "PLACEHOLDER_KEY",
    "describe_exception",
    "is_placeholder",
    "live_category",
    "placeholder",
]

#: the key that marks a dict as a placeholder for something that was not kept
PLACEHOLDER_KEY = "__agentkit_placeholder__"

Describer = Callable[[Any, type], dict[str, Any]]


def placeholder(category: str, t: type, **meta: Any) -> dict[str, Any]:
    """A placeholder dict for a value of type ``t``."""
    out: dict[str, Any] = {PLACEHOLDER_KEY: category, "type": _safe.type_name(t)}
    out.update(meta)
    return out


def is_placeholder(value: object) -> bool:
    """True for a dict made by :func:`placeholder`."""
    return type(value) is dict and PLACEHOLDER_KEY in value


def _s(v: object) -> str | None:
    return v if type(v) is str else None


def _i(v: object) -> int | None:
    return v if type(v) is int else None


def _getset(owner: type, name: str, obj: object) -> Any:
    """Read a C getset/member descriptor ``owner.name`` on obj, or None if anything fails."""
    try:
        return _safe.namespace(owner)[name].__get__(obj, owner)
    except Exception:
        return None


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:
        return None


# --- describers --------------------------------------------------------------------------


def _module(obj: Any, t: type) -> dict[str, Any]:
    d = _safe.instance_dict(obj, t) or {}
    version = d.get("__version__")
    return {"name": _s(d.get("__name__")), "version": _s(version)}


def _function(obj: Any, t: type) -> dict[str, Any]:
    qual = _s(_getset(types.FunctionType, "__qualname__", obj))
    mod = _getset(types.FunctionType, "__module__", obj)
    kind = "lambda" if qual is not None and qual.endswith("<lambda>") else "function"
    return {"kind": kind, "qualname": qual, "module": _s(mod)}


def _builtin(obj: Any, t: type) -> dict[str, Any]:
    qual = _s(_getset(types.BuiltinFunctionType, "__qualname__", obj))
    mod = _getset(types.BuiltinFunctionType, "__module__", obj)
    return {"kind": "builtin", "qualname": qual, "module": _s(mod)}


def _method(obj: Any, t: type) -> dict[str, Any]:
    func = _getset(types.MethodType, "__func__", obj)
    self_ = _getset(types.MethodType, "__self__", obj)
    meta = {"kind": "method", "qualname": None, "module": None, "self_type": None}
    if type(func) is types.FunctionType:
        meta.update(_function(func, types.FunctionType))
        meta["kind"] = "method"
    if self_ is not None:
        meta["self_type"] = _safe.type_name(type(self_))
    return meta


def _descriptor(obj: Any, t: type) -> dict[str, Any]:
    qual = _s(_getset(t, "__qualname__", obj)) if "__qualname__" in _safe.namespace(t) else None
    return {"kind": "descriptor", "qualname": qual}


def _partial(obj: Any, t: type) -> dict[str, Any]:
    func = _getset(functools.partial, "func", obj)
    args = _getset(functools.partial, "args", obj)
    meta: dict[str, Any] = {"kind": "partial", "func": None, "nargs": None}
    if func is not None:
        ft = type(func)
        if ft is types.FunctionType:
            meta["func"] = _function(func, ft)["qualname"]
        elif ft is types.BuiltinFunctionType:
            meta["func"] = _builtin(func, ft)["qualname"]
        else:
            meta["func"] = _safe.type_name(ft)
    if type(args) is tuple:
        meta["nargs"] = len(args)
    return meta


def _class(obj: Any, t: type) -> dict[str, Any]:
    return {"name": _safe.qualname_of_type(obj), "module": _safe.module_of_type(obj)}


def _code(obj: Any, t: type) -> dict[str, Any]:
    return {
        "name": _s(_getset(types.CodeType, "co_qualname", obj)),
        "filename": _s(_getset(types.CodeType, "co_filename", obj)),
        "line": _i(_getset(types.CodeType, "co_firstlineno", obj)),
    }


def _frame(obj: Any, t: type) -> dict[str, Any]:
    code = _getset(types.FrameType, "f_code", obj)
    meta = _code(code, types.CodeType) if type(code) is types.CodeType else {}
    meta["line"] = _i(_getset(types.FrameType, "f_lineno", obj))
    return meta


def _traceback(obj: Any, t: type) -> dict[str, Any]:
    frame = _getset(types.TracebackType, "tb_frame", obj)
    meta = _frame(frame, types.FrameType) if type(frame) is types.FrameType else {}
    meta["line"] = _i(_getset(types.TracebackType, "tb_lineno", obj))
    return meta


def _generator_like(owner: type, prefix: str) -> Describer:
    def describe(obj: Any, t: type) -> dict[str, Any]:
        return {
            "qualname": _s(_getset(owner, "__qualname__", obj)),
            "running": _getset(owner, f"{prefix}_running", obj) is True,
        }

    return describe


def _thread(obj: Any, t: type) -> dict[str, Any]:
    d = _safe.instance_dict(obj, t) or {}
    return {
        "name": _s(d.get("_name")),
        "ident": _i(d.get("_ident")),
        "daemon": d.get("_daemonic") is True,
    }


def _thread_lock(obj: Any, t: type) -> dict[str, Any]:
    # only ever called for the exact C lock types (see the table)
    try:
        locked = t.locked(obj)  # type: ignore[attr-defined]
    except Exception:
        locked = None
    return {"locked": locked if type(locked) is bool else None}


def _named(attr: str) -> Describer:
    def describe(obj: Any, t: type) -> dict[str, Any]:
        v = _safe.read_attr(obj, t, attr)
        return {"name": _s(v)}

    return describe


def _contextvar(obj: Any, t: type) -> dict[str, Any]:
    return {"name": _s(_getset(contextvars.ContextVar, "name", obj))}


def _socket(obj: Any, t: type) -> dict[str, Any]:
    import _socket

    return {
        "family": _i(_getset(_socket.socket, "family", obj)),
        "kind": _i(_getset(_socket.socket, "type", obj)),
    }


def _raw_file(obj: Any, t: type) -> Any:
    """The FileIO under a stdlib text or buffered stream (exact stdlib types only)."""
    if t is io.TextIOWrapper:
        obj = _call(lambda: io.TextIOWrapper.buffer.__get__(obj, t))
        t = type(obj)
    if t is io.BufferedReader or t is io.BufferedWriter or t is io.BufferedRandom:
        obj = _call(lambda: t.raw.__get__(obj, t))  # type: ignore[attr-defined]
        t = type(obj)
    return obj if t is io.FileIO else None


def _file(obj: Any, t: type) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": None, "closed": None}
    raw = _raw_file(obj, t)
    if raw is not None:
        name = (_safe.instance_dict(raw, io.FileIO) or {}).get("name")
        meta["name"] = name if type(name) is str or type(name) is int else None
        closed = _call(lambda: io.FileIO.closed.__get__(raw, io.FileIO))
        meta["closed"] = closed if type(closed) is bool else None
    return meta


def _memoryview(obj: Any, t: type) -> dict[str, Any]:
    return {"nbytes": _i(_call(lambda: memoryview.nbytes.__get__(obj, t)))}


def _mmap(obj: Any, t: type) -> dict[str, Any]:
    return {"length": _i(_call(lambda: mmap.mmap.__len__(obj)))}


def _logger(obj: Any, t: type) -> dict[str, Any]:
    d = _safe.instance_dict(obj, t) or {}
    return {"name": _s(d.get("name")), "level": _i(d.get("level"))}


def _popen(obj: Any, t: type) -> dict[str, Any]:
    d = _safe.instance_dict(obj, t) or {}
    return {"pid": _i(d.get("pid")), "returncode": _i(d.get("returncode"))}


def _executor(obj: Any, t: type) -> dict[str, Any]:
    d = _safe.instance_dict(obj, t) or {}
    return {"max_workers": _i(d.get("_max_workers"))}


def _future(obj: Any, t: type) -> dict[str, Any]:
    if t is asyncio.Future or t is asyncio.Task:
        done = _call(lambda: t.done(obj))
        return {"done": done if type(done) is bool else None}
    return {}


def _task(obj: Any, t: type) -> dict[str, Any]:
    meta = _future(obj, t)
    if t is asyncio.Task:
        name = _call(lambda: asyncio.Task.get_name(obj))
        meta["name"] = _s(name)
    return meta


def _nothing(obj: Any, t: type) -> dict[str, Any]:
    return {}


def _range(obj: Any, t: type) -> dict[str, Any]:
    return {"start": obj.start, "stop": obj.stop, "step": obj.step}


def _complex(obj: Any, t: type) -> dict[str, Any]:
    return {"real": complex.real.__get__(obj, t), "imag": complex.imag.__get__(obj, t)}


_C_LOCKS: tuple[type, ...] = (type(threading.Lock()), type(threading.RLock()))


def _table() -> list[tuple[type, str, Describer]]:
    rows: list[tuple[type, str, Describer]] = [
        (types.ModuleType, "module", _module),
        (types.FunctionType, "callable", _function),
        (types.BuiltinFunctionType, "callable", _builtin),
        (types.MethodType, "callable", _method),
        (types.MethodWrapperType, "callable", _nothing),
        (types.WrapperDescriptorType, "callable", _descriptor),
        (types.MethodDescriptorType, "callable", _descriptor),
        (types.ClassMethodDescriptorType, "callable", _descriptor),
        (types.GetSetDescriptorType, "callable", _descriptor),
        (types.MemberDescriptorType, "callable", _descriptor),
        (classmethod, "callable", _nothing),
        (staticmethod, "callable", _nothing),
        (property, "callable", _nothing),
        (functools.partial, "callable", _partial),
        (functools.partialmethod, "callable", _nothing),
        (types.CodeType, "code", _code),
        (types.FrameType, "frame", _frame),
        (types.TracebackType, "traceback", _traceback),
        (types.GeneratorType, "generator", _generator_like(types.GeneratorType, "gi")),
        (types.CoroutineType, "coroutine", _generator_like(types.CoroutineType, "cr")),
        (types.AsyncGeneratorType, "async_gen", _generator_like(types.AsyncGeneratorType, "ag")),
        (threading.Thread, "thread", _thread),
        (threading.Condition, "lock", _nothing),
        (threading.Semaphore, "lock", _nothing),
        (threading.Event, "lock", _nothing),
        (threading.Barrier, "lock", _nothing),
        (threading.local, "thread_local", _nothing),
        (asyncio.Lock, "lock", _nothing),
        (asyncio.Event, "lock", _nothing),
        (asyncio.Condition, "lock", _nothing),
        (asyncio.Semaphore, "lock", _nothing),
        (asyncio.Barrier, "lock", _nothing),
        (asyncio.Queue, "queue", _nothing),
        (queue.Queue, "queue", _nothing),
        (queue.SimpleQueue, "queue", _nothing),
        (socket.socket, "socket", _socket),
        (ssl.SSLContext, "ssl", _nothing),
        (ssl.SSLObject, "ssl", _nothing),
        (selectors.BaseSelector, "selector", _nothing),
        (io.IOBase, "file", _file),
        (_io._IOBase, "file", _file),
        (asyncio.AbstractEventLoop, "event_loop", _nothing),
        (asyncio.Task, "task", _task),
        (asyncio.Future, "future", _future),
        (asyncio.Handle, "event_loop", _nothing),
        (asyncio.BaseTransport, "socket", _nothing),
        (asyncio.StreamReader, "file", _nothing),
        (asyncio.StreamWriter, "file", _nothing),
        (concurrent.futures.Future, "future", _nothing),
        (concurrent.futures.Executor, "executor", _executor),
        (contextvars.ContextVar, "contextvar", _contextvar),
        (contextvars.Token, "contextvar", _nothing),
        (contextvars.Context, "contextvar", _nothing),
        (weakref.ReferenceType, "weakref", _nothing),
        (weakref.ProxyType, "weakref", _nothing),
        (weakref.CallableProxyType, "weakref", _nothing),
        (weakref.WeakValueDictionary, "weakref", _nothing),
        (weakref.WeakKeyDictionary, "weakref", _nothing),
        (weakref.WeakSet, "weakref", _nothing),
        (weakref.finalize, "weakref", _nothing),
        (memoryview, "memoryview", _memoryview),
        (mmap.mmap, "mmap", _mmap),
        (sqlite3.Connection, "database", _nothing),
        (sqlite3.Cursor, "database", _nothing),
        (logging.Logger, "logger", _logger),
        (logging.LoggerAdapter, "logger", _nothing),
        (logging.Handler, "logger", _named("name")),
        (logging.Manager, "logger", _nothing),
        (type(os.environ), "environment", _nothing),
        (subprocess.Popen, "subprocess", _popen),
        (range, "value", _range),
        (complex, "value", _complex),
        (slice, "value", _nothing),
        (type(Ellipsis), "value", _nothing),
        (type(NotImplemented), "value", _nothing),
    ]
    rows.extend((lock_t, "lock", _thread_lock) for lock_t in _C_LOCKS)
    with contextlib.suppress(ImportError):
        import anyio

        rows.extend(
            (cls, "lock", _nothing)
            for cls in (
                anyio.Lock,
                anyio.Event,
                anyio.Semaphore,
                anyio.Condition,
                anyio.CapacityLimiter,
            )
        )
    import multiprocessing.synchronize as mp_sync

    rows.extend(
        (cls, "lock", _nothing)
        for cls in (mp_sync.Lock, mp_sync.RLock, mp_sync.Semaphore, mp_sync.Event)
    )
    return rows


#: id(type) -> (type, category, describer); ids are safe to hash, types may not be
_LIVE: dict[int, tuple[type, str, Describer]] = {id(t): (t, c, d) for t, c, d in _table()}


def live_category(mro: tuple[type, ...]) -> tuple[str, Describer] | None:
    """The first known live category along an MRO, or None."""
    for c in mro:
        row = _LIVE.get(id(c))
        if row is not None and row[0] is c:
            return row[1], row[2]
    return None


# --- exceptions ----------------------------------------------------------------------------

_EXC_ARGS = BaseException.__dict__["args"].__get__
_EXC_CAUSE = BaseException.__dict__["__cause__"].__get__
_EXC_CONTEXT = BaseException.__dict__["__context__"].__get__
_EXC_TB = BaseException.__dict__["__traceback__"].__get__
_SAFE_ARG_TYPE_IDS = frozenset(map(id, (str, int, float, bool, type(None))))


def _exc_message(exc: BaseException) -> str:
    try:
        args = _EXC_ARGS(exc)
    except Exception:
        return ""
    if type(args) is not tuple:
        return ""
    parts = []
    for a in args[:8]:
        safe = id(type(a)) in _SAFE_ARG_TYPE_IDS
        parts.append(str(a) if safe else f"<{_safe.type_name(type(a))}>")
    return ", ".join(parts)


def describe_exception(
    exc: BaseException, *, max_chain: int = 5, max_frames: int = 30, max_text: int = 8_000
) -> dict[str, Any]:
    """``{type, message, traceback, cause}`` for an exception, never calling its methods.

    ``message`` comes from the exception's ``args`` (only plain scalars are rendered);
    ``traceback`` is the formatted stack of ``__traceback__``; ``cause`` follows
    ``__cause__`` (or an implicit ``__context__``) up to ``max_chain`` links.
    """
    seen: set[int] = set()

    def one(e: BaseException, budget: int) -> dict[str, Any]:
        seen.add(id(e))
        t = type(e)
        message = _exc_message(e)
        if issubclass(t, BaseExceptionGroup):
            group_message = _call(lambda: BaseExceptionGroup.__dict__["message"].__get__(e, t))
            message = group_message if type(group_message) is str else message
        text = ""
        try:
            tb = _EXC_TB(e)
            if type(tb) is types.TracebackType:
                frames = traceback.extract_tb(tb, limit=max_frames)
                text = "".join(traceback.format_list(frames))
        except Exception:
            text = ""
        text += f"{_safe.type_name(t)}: {message}"
        out: dict[str, Any] = placeholder(
            "exception", t, message=message[:max_text], traceback=text[-max_text:], cause=None
        )
        if issubclass(t, BaseExceptionGroup) and budget > 0:
            subs = _call(lambda: BaseExceptionGroup.__dict__["exceptions"].__get__(e, t))
            if type(subs) is tuple:
                out["exceptions"] = [
                    one(s, budget - 1)
                    for s in subs[:16]
                    if issubclass(type(s), BaseException) and id(s) not in seen
                ]
        nxt: Any = None
        try:
            nxt = _EXC_CAUSE(e)
            if nxt is None:
                nxt = _EXC_CONTEXT(e)
        except Exception:
            nxt = None
        if nxt is not None and issubclass(type(nxt), BaseException) and id(nxt) not in seen:
            out["cause"] = one(nxt, budget - 1) if budget > 0 else None
        return out

    return one(exc, max_chain)
