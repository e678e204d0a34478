"""Builds agentkit's one compiled module; everything else lives in pyproject.toml.

The module is optional: where no C compiler is available the install still succeeds and
the sanitizer uses its pure-Python fast path (``agentkit.sanitizer.native_available()``
tells which one is in use).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "agentkit.sanitizer._native",
            sources=["agentkit/sanitizer/_native.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
