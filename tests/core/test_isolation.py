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
    from napari_cluster_seg.core._api import LAZY_IMPORTS

    lazy = _lazy_imports_of_core()
    assert {"sklearn.cluster", "skimage.segmentation", "scipy.ndimage"} <= lazy  # the scan works
    # importing "a.b.c" imports "a.b" too
    missing = [m for m in lazy if not any(w == m or w.startswith(m + ".") for w in LAZY_IMPORTS)]
    assert missing == []
    code = (
        "import sys\n"
        "from napari_cluster_seg.core import warm_up\n"
        "from napari_cluster_seg.core._api import LAZY_IMPORTS\n"
        "warm_up()\n"
        "print(all(m in sys.modules for m in LAZY_IMPORTS))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
