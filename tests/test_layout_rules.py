"""Size rules of the package's layout: no module over 500 lines, no function over 60 lines of code."""

import ast
from pathlib import Path

import napari_cluster_seg

PACKAGE = Path(napari_cluster_seg.__file__).parent
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def function_lines(node) -> int:
    """Lines of ``node``'s body without its docstring: from the first statement to the last line,
    blank lines and comments included."""
    body = node.body
    if ast.get_docstring(node, clean=False) is not None:
        body = body[1:]
    return node.end_lineno - body[0].lineno + 1 if body else 0


def long_functions(tree: ast.AST, limit: int = MAX_FUNCTION_LINES):
    """(name, lines) of every function (methods and nested ones too) longer than ``limit``."""
    return [
        (node.name, function_lines(node))
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and function_lines(node) > limit
    ]


def test_the_rules_see_what_they_should():
    assert len(_sources()) > 20 and (PACKAGE / "core" / "_accel.py") in _sources()
    code = "def f():\n    '''doc\n\n    more'''\n" + "    x = 1\n" * 60 + "    # note\n\n    return x\n"
    assert long_functions(ast.parse(code)) == [("f", 63)]
    assert long_functions(ast.parse("class A:\n    def g(self):\n        '''only a docstring'''\n")) == []


def test_no_module_is_over_500_lines():
    offenders = [
        f"{path.relative_to(PACKAGE)}: {n} lines"
        for path in _sources()
        if (n := len(path.read_text().splitlines())) > MAX_FILE_LINES
    ]
    assert offenders == [], "\n".join(offenders)


def test_no_function_is_over_60_lines_of_code():
    offenders = [
        f"{path.relative_to(PACKAGE)}::{name}: {n} lines"
        for path in _sources()
        for name, n in long_functions(ast.parse(path.read_text()))
    ]
    assert offenders == [], "\n".join(offenders)
