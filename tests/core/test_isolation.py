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
