"""The render node's configuration: ``config.yaml`` parsed once into typed dataclasses.

Every key is checked at start-up; an error names its key path and the fix, as
``watch[1].formats: 'mp3' is not a format (choose from prores4444, exr, alpha, comp, png)``.
Relative paths are taken relative to the config file's folder. See the shipped ``config.yaml``
for every key with its meaning and default.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from rvm_render.engine.defaults import AUTO_RATIO_STEP
from rvm_render.errors import ConfigError
from rvm_render.jobs.kinds import MAX_PRIORITY, JobKind
from rvm_render.jobs.segments import DEFAULT_SEGMENT_FRAMES
from rvm_render.media.writers import OutputFormat, parse_background
from rvm_render.otio.defaults import DEFAULT_HANDLES
from rvm_render.pipeline.defaults import DEFAULT_WARMUP_FRAMES

__all__ = ["Preset", "WatchFolder", "ApiConfig", "DaemonConfig", "load_config", "DEFAULT_PORT", "TOKEN_FILE"]

DEFAULT_PORT = 8765
#: The API token made at the first start in ``state_dir`` (mode 0600) when none is configured.
TOKEN_FILE = "token"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Preset:
    """How a job renders: deliverables, network scale, timeline handles, checkpoint interval, warm start."""

    formats: tuple[OutputFormat, ...] = (OutputFormat.PRORES4444, OutputFormat.EXR)
    downsample_ratio: float | Literal["auto"] = "auto"
    handles: int = DEFAULT_HANDLES
    segment_frames: int = DEFAULT_SEGMENT_FRAMES
    background: str | None = None
    warmup: int = DEFAULT_WARMUP_FRAMES

    def to_json(self) -> dict[str, Any]:
        return {
            "formats": [fmt.value for fmt in self.formats],
            "downsample_ratio": self.downsample_ratio,
            "handles": self.handles,
            "segment_frames": self.segment_frames,
            "background": self.background,
            "warmup": self.warmup,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str, *, base: Preset | None = None) -> Preset:
        """A preset from a mapping, each key optional (defaults from ``base``).

        Raises:
            ConfigError: naming ``where.<key>``.
        """
        base = base or cls()
        _known(data, PRESET_KEYS, where)
        return cls(
            formats=_formats(data["formats"], f"{where}.formats") if "formats" in data else base.formats,
            downsample_ratio=_ratio(data.get("downsample_ratio", base.downsample_ratio), f"{where}.downsample_ratio"),
            handles=_count(data.get("handles", base.handles), f"{where}.handles"),
            segment_frames=_count(data.get("segment_frames", base.segment_frames), f"{where}.segment_frames",
                                  minimum=1),  # fmt: skip
            background=_background(data.get("background", base.background), f"{where}.background"),
            warmup=_count(data.get("warmup", base.warmup), f"{where}.warmup"),
        )


PRESET_KEYS = frozenset({"formats", "downsample_ratio", "handles", "segment_frames", "background", "warmup"})


@dataclass(frozen=True, slots=True)
class WatchFolder:
    """A hot folder: what lands in ``path`` becomes a ``kind`` job rendered into ``output``."""

    path: Path
    kind: JobKind
    output: Path
    preset: Preset = field(default_factory=Preset)
    priority: int = 0
    poll: bool = False
    """Use the polling observer (network shares, where file-system events do not arrive)."""


@dataclass(frozen=True, slots=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None

    @property
    def loopback_only(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """Everything ``rvm-render daemon`` runs by (see the shipped ``config.yaml``)."""

    path: Path
    state_dir: Path
    media_roots: tuple[Path, ...]
    watch: tuple[WatchFolder, ...] = ()
    settle_seconds: float = 2.0
    claim_timeout_seconds: float = 60.0
    """A watch folder's owner whose heartbeat is older than this is taken over (see daemon/folder_claims.py)."""
    weights: Path | None = None
    device: str = "auto"
    workers: int | None = None
    executor: Literal["local", "ray"] = "local"
    address: str | None = None
    api: ApiConfig = field(default_factory=ApiConfig)
    memory_reserve_gib: float = 1.0
    """New jobs wait while less memory than this is available."""
    default_preset: Preset = field(default_factory=Preset)
    """The preset of jobs submitted through the API that name none."""

    def watch_folder_holding(self, path: Path) -> WatchFolder | None:
        """The watch folder ``path`` lies in (itself or below it, links resolved), if any."""
        real = path.resolve()
        return next((f for f in self.watch if real == f.path.resolve() or real.is_relative_to(f.path.resolve())), None)

    def check_output_dir(self, path: Path, what: str) -> Path:
        """``path``, when mattes may go there: never inside a watch folder, where they would be queued as inputs.

        Raises:
            ConfigError: naming ``what`` and the watch folder.
        """
        folder = self.watch_folder_holding(path)
        if folder is not None:
            raise ConfigError(f"{what}: '{path}' is inside the watch folder '{folder.path}', where the mattes would be "
                              "taken as new inputs; pick an output folder outside every watch folder")  # fmt: skip
        return path


TOP_KEYS = frozenset({
    "weights", "state_dir", "media_roots", "watch", "settle_seconds", "device", "workers", "executor", "address",
    "api", "memory_reserve_gib", "preset", "claim_timeout_seconds",
})  # fmt: skip
WATCH_KEYS = frozenset({"path", "kind", "output", "poll", "priority"}) | PRESET_KEYS
API_KEYS = frozenset({"host", "port", "token"})


def _known(data: Mapping[str, Any], keys: frozenset[str], where: str) -> None:
    for key in data:
        if key not in keys:
            close = difflib.get_close_matches(str(key), sorted(keys), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            prefix = f"{where}." if where else ""
            raise ConfigError(f"{prefix}{key}: unknown key{hint}; known keys: {', '.join(sorted(keys))}")


def _typed(value: Any, kind: type[_T] | tuple[type, ...], where: str, what: str) -> _T:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{where}: expected {what}, got {value!r}")
    return value  # type: ignore[return-value]


def _formats(value: Any, where: str) -> tuple[OutputFormat, ...]:
    names = [value] if isinstance(value, str) else _typed(value, list, where, "a list of formats")
    known = [fmt.value for fmt in OutputFormat]
    formats: list[OutputFormat] = []
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}: '{name}' is not a format{hint} (choose from {', '.join(known)})")
        if OutputFormat(name) not in formats:
            formats.append(OutputFormat(name))
    if not formats:
        raise ConfigError(f"{where}: empty; choose from {', '.join(known)}")
    return tuple(formats)


#: The smallest downsample ratio taken: the step ``auto`` uses (a 16K frame's long side at 512 px).
#: Below it the network sees a few pixels, or none (1e-9 failed every frame).
MIN_DOWNSAMPLE_RATIO = AUTO_RATIO_STEP


def _ratio(value: Any, where: str) -> float | Literal["auto"]:
    if value == "auto":
        return "auto"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and MIN_DOWNSAMPLE_RATIO <= value <= 1:
        return float(value)
    raise ConfigError(f"{where}: {value!r} is not 'auto' or a number from {MIN_DOWNSAMPLE_RATIO:g} to 1, e.g. 0.25")


def _count(value: Any, where: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: {value!r} is not a whole number >= {minimum}")
    return value


def _priority(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_PRIORITY:
        raise ConfigError(f"{where}: {value!r} is not a whole number from -{MAX_PRIORITY} to {MAX_PRIORITY}")
    return value


def _background(value: Any, where: str) -> str | None:
    if value is None:
        return None
    parse_background(_typed(value, str, where, "a colour or an image/video path"), setting=where)
    return value


def _path(value: Any, where: str, base: Path) -> Path:
    text = _typed(value, str, where, "a path")
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def _optional(data: Mapping[str, Any], key: str, convert: Callable[[Any, str], _T], where: str,
              default: _T) -> _T:  # fmt: skip
    value = data.get(key)
    return default if value is None else convert(value, f"{where}{key}")


def _watch(data: Any, where: str, base: Path, preset: Preset) -> WatchFolder:
    data = _typed(data, dict, where, "a mapping with path, kind and output")
    _known(data, WATCH_KEYS, where)
    for required in ("path", "kind", "output"):
        if required not in data:
            raise ConfigError(f"{where}.{required}: missing; every watch folder needs path, kind and output")
    kinds = [kind.value for kind in JobKind]
    if data["kind"] not in kinds:
        raise ConfigError(f"{where}.kind: {data['kind']!r} is not one of {', '.join(kinds)}")
    folder = WatchFolder(
        path=_path(data["path"], f"{where}.path", base),
        kind=JobKind(data["kind"]),
        output=_path(data["output"], f"{where}.output", base),
        preset=Preset.from_json({k: v for k, v in data.items() if k in PRESET_KEYS}, where, base=preset),
        priority=_priority(data.get("priority", 0), f"{where}.priority"),
        poll=_typed(data.get("poll", False), bool, f"{where}.poll", "true or false"),
    )
    return folder


def load_config(path: Path) -> DaemonConfig:
    """Read and check ``path``.

    Raises:
        ConfigError: unreadable YAML, an unknown key, a wrong value, or folders outside
            ``media_roots``, naming the key path.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"cannot read config '{path}': {err.strerror}; pass --config PATH") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}; fix the file") from err
    data = _typed(data, dict, str(path), "a mapping of settings")
    _known(data, TOP_KEYS, "")
    base = path.resolve().parent
    preset = Preset.from_json(_typed(data.get("preset") or {}, dict, "preset", "a mapping"), "preset")
    listed_roots = _typed(data.get("media_roots") or [], list, "media_roots", "a list of folders")
    roots = tuple(_path(value, f"media_roots[{i}]", base) for i, value in enumerate(listed_roots))
    if not roots:
        raise ConfigError("media_roots: empty; list the folders the daemon may read media from and write to")
    watch = tuple(
        _watch(entry, f"watch[{i}]", base, preset)
        for i, entry in enumerate(_typed(data.get("watch") or [], list, "watch", "a list of watch folders"))
    )
    resolved_roots = [root.resolve() for root in roots]
    for i, folder in enumerate(watch):
        for key, where in (("path", folder.path), ("output", folder.output)):
            if not any(where.resolve().is_relative_to(root) for root in resolved_roots):
                raise ConfigError(f"watch[{i}].{key}: '{where}' is outside media_roots; add its folder to media_roots")
    api_data = _typed(data.get("api") or {}, dict, "api", "a mapping with host, port, token")
    _known(api_data, API_KEYS, "api")
    port = _optional(api_data, "port", lambda v, w: _count(v, w, minimum=1), "api.", DEFAULT_PORT)
    if port > 65535:
        raise ConfigError(f"api.port: {port} is not a TCP port (1-65535)")
    executor = data.get("executor") or "local"
    if executor not in ("local", "ray"):
        raise ConfigError(f"executor: {executor!r} is not 'local' or 'ray'")
    settle = data.get("settle_seconds", 2.0)
    if isinstance(settle, bool) or not isinstance(settle, (int, float)) or not 0 <= settle < math.inf:
        raise ConfigError(f"settle_seconds: {settle!r} is not a number of seconds >= 0")
    claim_timeout = data.get("claim_timeout_seconds", 60.0)
    if isinstance(claim_timeout, bool) or not isinstance(claim_timeout, (int, float)) or not 0 < claim_timeout < 1e9:
        raise ConfigError(f"claim_timeout_seconds: {claim_timeout!r} is not a number of seconds > 0")
    reserve = data.get("memory_reserve_gib", 1.0)
    if isinstance(reserve, bool) or not isinstance(reserve, (int, float)) or reserve < 0:
        raise ConfigError(f"memory_reserve_gib: {reserve!r} is not a number >= 0")
    config = DaemonConfig(
        path=path.resolve(),
        state_dir=_path(data.get("state_dir") or ".rvm-render-state", "state_dir", base),
        media_roots=roots,
        watch=watch,
        settle_seconds=float(settle),
        claim_timeout_seconds=float(claim_timeout),
        weights=_optional(data, "weights", lambda v, w: _path(v, w, base), "", None),
        device=_typed(data.get("device") or "auto", str, "device", "auto, cpu, cuda or cuda:N"),
        workers=_optional(data, "workers", lambda v, w: _count(v, w, minimum=1), "", None),
        executor=executor,
        address=_optional(data, "address", lambda v, w: _typed(v, str, w, "a Ray address"), "", None),
        api=ApiConfig(
            host=_optional(api_data, "host", lambda v, w: _typed(v, str, w, "a host name or address"), "api.",
                           "127.0.0.1"),  # fmt: skip
            port=port,
            token=_optional(api_data, "token", lambda v, w: _typed(v, str, w, "a string"), "api.", None),
        ),
        memory_reserve_gib=float(reserve),
        default_preset=preset,
    )
    for i, folder in enumerate(watch):
        config.check_output_dir(folder.output, f"watch[{i}].output")
    holding_state = config.watch_folder_holding(config.state_dir)
    if holding_state is not None:
        raise ConfigError(f"state_dir: '{config.state_dir}' is inside the watch folder '{holding_state.path}', where "
                          "the daemon's own files would be taken as inputs; pick a state_dir outside every watch "
                          "folder")  # fmt: skip
    return config
