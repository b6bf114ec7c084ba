"""Short functions (STYLE: long docs, short code): no function of hwc_risk past 80 lines
of code, and the run's driver under 60.

Lines of code exclude docstrings, comments and blank lines.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

import hwc_risk

PACKAGE = Path(hwc_risk.__file__).parent
MAX_LINES = 80
CHECKED = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py"))


def code_lines(source: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of ``node`` holding code: not blank, not only a comment, not its docstring."""
    lines = set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    if ast.get_docstring(node, clean=False) is not None:
        first = node.body[0]
        lines -= set(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    with_code: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT):
            continue
        if tok.type in (tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        with_code.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines & with_code)


def function_lengths(path: Path) -> list[tuple[str, int]]:
    source = path.read_text()
    return [
        (node.name, code_lines(source, node))
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def long_functions(path: Path) -> list[tuple[str, int]]:
    return [(name, n) for name, n in function_lengths(path) if n > MAX_LINES]


def test_the_counter_counts_code_not_docs() -> None:
    source = 'def f():\n    """Doc.\n\n    More.\n    """\n    # why\n\n'
    source += "    return (\n        1\n    )\n"
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.FunctionDef)
    assert code_lines(source, node) == 4  # def, return, 1, )


@pytest.mark.parametrize("module", CHECKED)
def test_no_function_is_longer_than_80_lines_of_code(module: str) -> None:
    assert long_functions(PACKAGE / module) == []


def test_the_run_driver_is_short() -> None:
    assert dict(function_lengths(PACKAGE / "pipeline.py"))["_run_stages"] < 60
