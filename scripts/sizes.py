"""Report: modules and functions of the application code over the house's size limits.

Not a test and not a gate: it prints two tables and exits 0, so that a refactor can show what
it shrank and what is still long. The limits are the style guide's (modules under ~400 lines,
functions under ~60), and data declarations do not count against a module: a table of
categories or messages is long because the data is, not because the code is. So a module is
listed when its raw line count is over the limit, with a second figure: the count without its
module-level assignments (``X = ...``, ``X: T = ...``). Only when that one is over too is the
module's code long ("code"); otherwise its data is ("data only").

Sizes come from the syntax tree (``lineno`` to ``end_lineno``), so a function's length counts
its docstring, comments and blank lines inside it, but not its decorators. Nested functions
and methods are listed on their own, by qualified name.

    python scripts/sizes.py [--max-module 400] [--max-function 60] [--root DIR]
"""

import argparse
import ast
import sys
from pathlib import Path

# The application code: not tests, migrations or these scripts.
APP_PATHS = ("storage", "retention_policies", "rights", "web", "cli", "demo", "app.py", "config.py")
ASSIGNMENTS = (ast.Assign, ast.AnnAssign, ast.AugAssign)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def python_files(root: Path) -> list[Path]:
    """Every module under the application paths that exist at ``root`` (an old commit may
    lack some), sorted."""
    files: list[Path] = []
    for name in APP_PATHS:
        path = root / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(files)


def module_sizes(tree: ast.Module, source: str) -> tuple[int, int]:
    """(raw lines, lines without the module-level data assignments)."""
    raw = len(source.splitlines())
    data = sum(
        node.end_lineno - node.lineno + 1 for node in tree.body if isinstance(node, ASSIGNMENTS)
    )
    return raw, raw - data


def function_sizes(tree: ast.Module) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length) of every function and method, nested ones too."""
    found: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (*FUNCTIONS, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if isinstance(child, FUNCTIONS):
                    found.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def measure(root: Path) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]], int]:
    """(modules: path, raw, without data), (functions: path:line name, length), files read."""
    modules, functions = [], []
    files = python_files(root)
    for path in files:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
        relative = path.relative_to(root).as_posix()
        modules.append((relative, *module_sizes(tree, source)))
        for name, line, length in function_sizes(tree):
            functions.append((f"{relative}:{line}", name, length))
    return modules, functions, len(files)


def table(headers: tuple[str, ...], rows: list[tuple]) -> str:
    """A plain text table, numbers right-aligned, widths from the content."""
    cells = [headers] + [tuple(str(v) for v in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(isinstance(row[i], int) for row in rows) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-module", type=int, default=400)
    parser.add_argument("--max-function", type=int, default=60)
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="the repository to measure (default: this one)",
    )
    args = parser.parse_args(argv)
    modules, functions, count = measure(args.root)
    long_modules = sorted(
        (
            (path, raw, code, "code" if code > args.max_module else "data only")
            for path, raw, code in modules
            if raw > args.max_module
        ),
        key=lambda m: (-m[2], -m[1], m[0]),
    )
    long_functions = sorted(
        (f for f in functions if f[2] > args.max_function), key=lambda f: (-f[2], f[0])
    )
    print(f"Modules over {args.max_module} lines ({len(long_modules)} of {count}):")
    headers = ("module", "raw", "without data", "long")
    print(table(headers, long_modules) if long_modules else "(none)")
    print()
    print(f"Functions over {args.max_function} lines ({len(long_functions)} of {len(functions)}):")
    print(table(("where", "function", "lines"), long_functions) if long_functions else "(none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
