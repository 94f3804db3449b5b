"""Imports point down the layer stack; an upward import fails here with the offending line."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rvm_render"
#: The editor plug-ins as studios deploy them: the repository's top-level integrations/ (davinci, nuke, deadline).
PLUGINS = PACKAGE.parent / "integrations"

# Each layer may import itself and the layers listed for it, nothing else of rvm_render.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "lazy": set(),
    "model": {"errors"},
    "engine": {"errors", "model"},
    "media": {"errors"},
    "quality": {"errors", "media"},
    "pipeline": {"errors", "model", "engine", "media"},
    "jobs": {"errors", "model", "engine", "media", "pipeline"},
    "otio": {"errors", "model", "engine", "media", "pipeline", "jobs"},
    "api": {"errors", "model", "engine", "media", "pipeline", "jobs", "otio"},
    "daemon": {"errors", "model", "engine", "media", "pipeline", "jobs", "otio", "api"},
    "cli": {"errors", "model", "engine", "media", "pipeline", "jobs", "otio", "api", "daemon", "quality"},
    # Editor plug-ins run inside Resolve's and Nuke's Python: of rvm_render only the client (see below).
    "integrations": {"api"},
}
#: Modules below every layer, which any layer may import: ``rvm_render.lazy`` (package attributes on first use).
BELOW_EVERY_LAYER = {"lazy"}
#: The only modules of other layers a layer may import, where it may not import the whole layer.
ONLY_MODULES: dict[str, set[str]] = {"integrations": {"rvm_render.api.client"}}


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
            own = target in (None, "", layer) or target in BELOW_EVERY_LAYER
            if own or (target in ALLOWED[layer] and module in ONLY_MODULES.get(layer, {module})):
                continue
            violations.append(f"{relative}:{lineno} imports {module} ({layer} -> {target})")
    assert not violations, "upward imports:\n" + "\n".join(violations)


#: What the plug-ins may import besides the standard library: the hosts' own modules.
HOST_MODULES = {"nuke", "nukescripts", "hiero", "DaVinciResolveScript", "PySide2", "PySide6", "Deadline"}
#: The plug-ins' own packages (integrations/davinci/rvm_render_davinci, integrations/nuke/rvm_render_nuke).
PLUGIN_PACKAGES = {path.name for path in PLUGINS.glob("*/rvm_render_*")}


def _plugin_sources() -> list[Path]:
    return sorted((PACKAGE / "integrations").rglob("*.py")) + sorted(PLUGINS.rglob("*.py"))


def test_plugins_import_only_the_standard_library_the_host_and_the_client() -> None:
    assert PLUGIN_PACKAGES == {"rvm_render_davinci", "rvm_render_nuke"}
    foreign = []
    for path in _plugin_sources():
        for lineno, module in _imports(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in HOST_MODULES | PLUGIN_PACKAGES or top == "__future__":
                continue
            if top == "rvm_render" and (path.is_relative_to(PACKAGE) or module in ONLY_MODULES["integrations"]
                                        or module.startswith("rvm_render.integrations.plugin_settings")):  # fmt: skip
                continue
            foreign.append(f"{path.relative_to(PACKAGE.parent)}:{lineno} imports {module}")
    assert not foreign, "plug-ins may import the standard library, the host and the client only:\n" + "\n".join(foreign)


def test_editor_plugins_load_in_python_3_7() -> None:
    """Nuke 13 and older Resolve installs run Python 3.7: no newer syntax, no builtin generics evaluated at import."""
    sources = [PACKAGE / "api" / "client.py", *_plugin_sources()]
    newer = []
    for path in sources:
        tree = ast.parse(path.read_text(), feature_version=(3, 7))
        for node in tree.body:
            value = node.value if isinstance(node, ast.Assign) else None
            if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name) and value.value.id in {
                    "dict", "list", "tuple", "set", "type"}:  # fmt: skip
                newer.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} subscripts {value.value.id} at import")
    assert not newer, "\n".join(newer)


def test_every_package_module_belongs_to_a_layer() -> None:
    layers = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if not p.name.startswith("_")}
    layers -= {"py.typed", "__pycache__"}
    assert layers <= set(ALLOWED), f"modules outside the layer table: {sorted(layers - set(ALLOWED))}"
