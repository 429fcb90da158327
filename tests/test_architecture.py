"""The package's shape: who imports what.

Each heavy library has one owner module, the compiled kernels of a stage are
called from that stage's module alone, and the package's own imports, lazy
ones inside functions included, point one way.  Read from the source with
:mod:`ast`, so that an import added anywhere is seen whether or not a test
runs it.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kqcodec"

# Library (top-level import name) -> the modules allowed to import it, as the
# README's table of modules says.
OWNERS = {
    "pandas": {"table"},
    "matplotlib": {"figures"},
    "png": {"pngfile"},
    "tqdm": {"workers"},
    "dask": {"cluster"},
    "distributed": {"cluster"},
    "skimage": {"metrics"},
    "ssimulacra2": {"metrics"},
    "sklearn": {"kmeans"},
    "deflate": {"layout"},
    "PIL": {"imageio", "colorprofile"},
    "threadpoolctl": {"threads"},
}


def _imports():
    """Module name -> (third-party top-level names, package modules) it imports, anywhere."""
    found = {}
    for path in sorted(PACKAGE.glob("*.py")):
        outside, inside = set(), set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("kqcodec."):
                        inside.add(alias.name.split(".", 1)[1])
                    else:
                        outside.add(alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0 and not node.module.startswith("kqcodec"):
                    outside.add(node.module.split(".")[0])
                elif node.module:  # from .x import y, from ._kernels.x import y
                    inside.add(node.module.removeprefix("kqcodec."))
                    if node.module == "_kernels":
                        inside.update(f"_kernels.{alias.name}" for alias in node.names)
                else:  # from . import x, y
                    inside.update(alias.name for alias in node.names)
        found[path.stem] = outside, inside
    return found


IMPORTS = _imports()


def test_the_source_is_found():
    assert {"cli", "codec", "quantizer", "table", "reporting"} <= set(IMPORTS)


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_a_heavy_library_has_one_owner(library):
    users = {module for module, (outside, _) in IMPORTS.items() if library in outside}
    assert users <= OWNERS[library], f"{library} imported by {sorted(users - OWNERS[library])}"


def test_kernels_are_called_from_their_stage_alone():
    kernels = {path.stem for path in (PACKAGE / "_kernels").glob("*.pyx")}
    assert kernels, "no kernel sources found"
    for module, (_, inside) in IMPORTS.items():
        for name in inside:
            if name.startswith("_kernels."):
                stage = name.split(".")[1]
                assert stage in kernels and module == stage, f"{module} imports {name}"


def test_the_package_imports_point_one_way():
    graph = {module: {name for name in inside if name in IMPORTS and name != module}
             for module, (_, inside) in IMPORTS.items()}
    done, path = set(), []

    def visit(module):
        if module in path:
            cycle = path[path.index(module):] + [module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        path.append(module)
        for name in sorted(graph[module]):
            visit(name)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
