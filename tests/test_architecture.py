"""The package tree reads like the pipeline: no package imports one further down it, only the plugin
imports napari or Qt, and every module and function stays small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "napari_entrust"
#: the pipeline, bottom up: a package may import itself and any package before it, never one after it
LAYERS = (
    "errors",
    "crash_report",
    "progress",
    "io",
    "phantom",
    "heldout",
    "model",
    "inference",
    "outputs",
    "training",
    "evaluation",
    "benchmark",
    "review",
    "explain",
    "plugin",
    "cli",
)
GUI = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt", "vispy")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 80


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> list[str]:
    """Every module ``path`` imports, anywhere in it (functions included), as absolute names."""
    name = module_name(path)
    return imports_of(path.read_text(), name if path.name == "__init__.py" else name.rsplit(".", 1)[0])


def imports_of(source: str, package: str) -> list[str]:
    """The modules a module of ``package`` with this source imports (relative imports resolved)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out += [f"{base}.{alias.name}" if not node.module else base for alias in node.names]
    return out


def layer(module: str) -> str | None:
    """The pipeline layer of one of our modules (None for the package's root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "napari_entrust" else None


def test_no_package_imports_one_further_down_the_pipeline():
    problems = []
    for path in modules()[1:]:  # [0]: the package's root
        own = layer(module_name(path))
        if own not in LAYERS:
            problems.append(f"{module_name(path)}: add its package to LAYERS, in pipeline order")
            continue
        upward = [m for m in imported(path) if layer(m) in LAYERS and LAYERS.index(layer(m)) > LAYERS.index(own)]
        problems += [f"{module_name(path)} ({own}) imports {m}, which comes later in the pipeline" for m in upward]
    assert not problems, "\n".join(problems)


def test_only_the_plugin_imports_napari_or_qt():
    problems = [
        f"{module_name(path)} imports {m}: the core must run without a GUI (move it to plugin/)"
        for path in modules()
        if layer(module_name(path)) != "plugin"
        for m in imported(path)
        if m.split(".")[0] in GUI
    ]
    assert not problems, "\n".join(problems)


def test_modules_and_functions_stay_small():
    problems = []
    for path in modules():
        source = path.read_text()
        if source.count("\n") > MAX_MODULE_LINES:
            problems.append(f"{module_name(path)}: over {MAX_MODULE_LINES} lines; split it")
        problems += [
            f"{module_name(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
        ]
    assert not problems, "\n".join(problems)


def test_the_layers_exist_and_imports_are_resolved_as_python_does():
    """The rules are not vacuous: every layer is a real package or module, and imports are found."""
    assert modules()[0] == PACKAGE / "__init__.py"
    for name in LAYERS:
        assert (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file(), name
    source = "from ..plugin.reader import get_reader\ndef f():\n    from . import labels\n    import napari\n"
    assert imports_of(source, "napari_entrust.io") == [
        "napari_entrust.plugin.reader",
        "napari_entrust.io.labels",
        "napari",
    ]
