"""core/ (and the package's top-level API) must never import napari, Qt or magicgui."""

import ast
import subprocess
import sys
from pathlib import Path

import napari_cluster_seg

CORE = Path(napari_cluster_seg.__file__).parent / "core"
FORBIDDEN = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt", "vispy")


def test_importing_the_api_loads_no_gui_module():
    code = (
        "import sys, numpy as np\n"
        "import napari_cluster_seg, napari_cluster_seg.core\n"
        "from napari_cluster_seg import cluster_image\n"
        "cluster_image(np.arange(16, dtype=np.uint8).reshape(4, 4), 2, 'agglomerative')\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_core_sources_have_no_gui_import():
    offenders = []
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def _lazy_imports_of_core():
    """Modules of scikit-learn, scikit-image and scipy that core imports inside functions."""
    found = set()
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    module = node.module
                    if module in ("scipy", "sklearn", "skimage"):  # from scipy import ndimage
                        found |= {f"{module}.{a.name}" for a in node.names}
                    else:
                        found.add(module)
                elif isinstance(node, ast.Import):
                    found |= {a.name for a in node.names}
    return {m for m in found if m.split(".")[0] in ("sklearn", "skimage", "scipy")}


def test_warm_up_imports_every_module_core_loads_lazily():
    from napari_cluster_seg.core._segment import LAZY_IMPORTS

    lazy = _lazy_imports_of_core()
    assert {"sklearn.cluster", "skimage.segmentation", "scipy.ndimage"} <= lazy  # the scan works
    # importing "a.b.c" imports "a.b" too
    missing = [m for m in lazy if not any(w == m or w.startswith(m + ".") for w in LAZY_IMPORTS)]
    assert missing == []
    code = (
        "import sys\n"
        "from napari_cluster_seg.core import warm_up\n"
        "from napari_cluster_seg.core._segment import LAZY_IMPORTS\n"
        "warm_up()\n"
        "print(all(m in sys.modules for m in LAZY_IMPORTS))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def _core_imports(path):
    """The core modules ``path`` imports at module level (outside ``if TYPE_CHECKING:``), and the
    imports it makes inside functions, as (module, imported names)."""
    tree = ast.parse(path.read_text())
    top, inner = set(), []

    def target(node):
        if node.level == 0:
            return node.module
        return (node.module or "").split(".")[0]  # core is flat: `.x` / `.x.y` is core module x

    def visit(body):
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue  # annotations only, never executed
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                top.update([target(node)] if node.module else [a.name for a in node.names])
            elif isinstance(node, (ast.If, ast.Try)):
                visit(
                    node.body
                    + getattr(node, "orelse", [])
                    + [h for x in getattr(node, "handlers", []) for h in x.body]
                )

    visit(tree.body)
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom):
                    inner.append((("." * node.level) + (node.module or ""), [a.name for a in node.names]))
                elif isinstance(node, ast.Import):
                    inner.append((node.names[0].name, []))
    return top, inner


def test_core_has_no_import_cycle():
    graph = {p.stem: _core_imports(p)[0] for p in CORE.glob("*.py")}
    graph.pop("__init__")
    state = {}

    def visit(module, stack):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join(stack + [module])}"
        state[module] = "open"
        for dep in sorted(graph.get(module, ())):
            if dep != "__init__":
                visit(dep, stack + [module])
        state[module] = "done"

    assert {"_segment", "_prepare", "_fit_kmeans", "model", "preprocess"} <= set(graph)  # the walk works
    assert "_prepare" in graph["_fit_kmeans"] and "features" in graph["preprocess"]
    for module in sorted(graph):
        visit(module, [])


def test_core_imports_at_module_top_and_no_private_names_across_modules():
    """Imports inside functions are only the heavy optional libraries loaded lazily (scipy,
    scikit-learn, scikit-image, and dask, which core never requires) and the optional numba
    kernels; no module imports another's underscored name (package-private modules themselves,
    `_accel`, are fine)."""
    lazy_ok = ("scipy", "sklearn", "skimage", "numba", "dask", ".", "._kernels", "._feature_kernels")
    inside, private = [], []
    for path in CORE.glob("*.py"):
        _, inner = _core_imports(path)
        for module, names in inner:
            if module.split(".")[0] not in lazy_ok[:5] and module not in lazy_ok[5:]:
                inside.append(f"{path.name}: {module}")
            if module == "." and not set(names) <= {"_kernels", "_feature_kernels"}:
                inside.append(f"{path.name}: from . import {names}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                private += [
                    f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")
                ]
    assert inside == []
    assert private == []
