"""Imports point down the layer stack; an upward import fails here with the offending line."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rvm_render"

# Each layer may import itself and the layers listed for it, nothing else of rvm_render.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "model": {"errors"},
    "engine": {"errors", "model"},
    "media": {"errors"},
    "pipeline": {"errors", "model", "engine", "media"},
    "jobs": {"errors", "model", "engine", "media", "pipeline"},
    "otio": {"errors", "model", "engine", "media", "pipeline", "jobs"},
    "api": {"errors", "model", "engine", "media", "pipeline", "jobs", "otio"},
    "daemon": {"errors", "model", "engine", "media", "pipeline", "jobs", "otio", "api"},
    "cli": {"errors", "model", "engine", "media", "pipeline", "jobs", "otio", "api", "daemon"},
}


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "rvm_render":
        return None
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_no_upward_imports() -> None:
    violations: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        layer = relative.parts[0].removesuffix(".py") if len(relative.parts) > 1 else relative.stem
        if layer not in ALLOWED:
            continue  # the package root (__init__) re-exports lazily
        for lineno, module in _imports(path):
            target = _layer_of(module)
            if target in (None, "", layer) or target in ALLOWED[layer]:
                continue
            violations.append(f"{relative}:{lineno} imports {module} ({layer} -> {target})")
    assert not violations, "upward imports:\n" + "\n".join(violations)


def test_every_package_module_belongs_to_a_layer() -> None:
    layers = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if not p.name.startswith("_")}
    layers -= {"py.typed", "__pycache__"}
    assert layers <= set(ALLOWED), f"modules outside the layer table: {sorted(layers - set(ALLOWED))}"
