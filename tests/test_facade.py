"""The facade only re-exports, and its __all__ is sorted and complete."""

import ast
import inspect

import agentkit
import agentkit.errors as errors


def test_all_is_sorted_and_unique() -> None:
    assert list(agentkit.__all__) == sorted(agentkit.__all__)
    assert len(set(agentkit.__all__)) == len(agentkit.__all__)


def test_every_name_in_all_resolves() -> None:
    for name in agentkit.__all__:
        assert hasattr(agentkit, name), name


def test_facade_defines_nothing() -> None:
    tree = ast.parse(inspect.getsource(agentkit))
    for node in tree.body:
        assert not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef), (
            f"the facade defines {node.name}; move it into a module and re-export it"
        )


def test_public_names_not_in_all_are_modules_or_private() -> None:
    public = {n for n in vars(agentkit) if not n.startswith("_")}
    missing = {
        n for n in public - set(agentkit.__all__) if not inspect.ismodule(getattr(agentkit, n))
    }
    assert not missing, f"exported but not in __all__: {sorted(missing)}"


def test_every_error_derives_from_one_root_on_two_branches() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.AgentkitError), name
        if cls not in (errors.AgentkitError, errors.UsageError, errors.AgentkitRuntimeError):
            assert issubclass(cls, errors.UsageError) != issubclass(
                cls, errors.AgentkitRuntimeError
            ), name
        assert name in errors.__doc__, f"{name} is missing from the tree in the docstring"
