"""What the HTTP API takes and gives: typed request and response models (they make ``/openapi.json``)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from rvm_render.jobs.kinds import MAX_PRIORITY
from rvm_render.jobs.store import JobRecord

__all__ = ["PresetIn", "JobIn", "JobOut", "HealthOut", "LoginIn", "ErrorOut", "FilePath", "MAX_JOB_ID"]

#: Longest path taken, in UTF-8 bytes (Linux PATH_MAX), and longest name in it (NAME_MAX).
PATH_MAX_BYTES = 4096
NAME_MAX_BYTES = 255
#: Job ids are SQLite integers.
MAX_JOB_ID = 2**63 - 1


def _file_path(value: str) -> str:
    """A path as a file system can hold it: no NUL, valid UTF-8, not longer than Linux allows."""
    if "\0" in value:
        raise ValueError("contains a NUL character (\\u0000), which no file name can hold; send the path as on disk")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid UTF-8 (a lone surrogate escape); send the path as on disk") from None
    if len(encoded) > PATH_MAX_BYTES:
        raise ValueError(f"is {len(encoded)} bytes long; a path has at most {PATH_MAX_BYTES}")
    if any(len(name.encode("utf-8")) > NAME_MAX_BYTES for name in value.split("/")):
        raise ValueError(f"has a name longer than {NAME_MAX_BYTES} bytes, which no file name can be")
    return value


FilePath = Annotated[str, AfterValidator(_file_path)]


class PresetIn(BaseModel):
    """Overrides of the daemon's default preset; every field optional."""

    model_config = ConfigDict(extra="forbid")

    formats: list[str] | None = Field(default=None, examples=[["prores4444", "exr"]])
    downsample_ratio: float | Literal["auto"] | None = None
    handles: int | None = Field(default=None, ge=0)
    segment_frames: int | None = Field(default=None, ge=1)
    background: FilePath | None = Field(default=None, description="a colour, or an image/video inside media_roots")
    warmup: int | None = Field(default=None, ge=0, description="warm-start frames before each shot")

    def overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class JobIn(BaseModel):
    """A job to queue: a clip, an image-sequence pattern or folder, a timeline file, or an OTIO document."""

    model_config = ConfigDict(extra="forbid")

    path: FilePath | None = Field(
        default=None, description="absolute path of a clip, image sequence (pattern such as shot.%04d.exr, or folder) "
                                  "or timeline file",
    )  # fmt: skip
    otio: dict[str, Any] | None = Field(default=None, description="an OpenTimelineIO timeline document (JSON)")
    kind: Literal["clip", "timeline"] | None = Field(default=None, description="default: from the path")
    frames: str | None = Field(
        default=None, pattern=r"^\d+-\d+$", examples=["1001-1024"],
        description="a clip's frames FIRST-LAST, inclusive: file numbers of an image sequence, 0-based for a movie",
    )  # fmt: skip
    output_dir: FilePath | None = Field(
        default=None, description="absolute; default: beside the input, or a watch folder's output for an input in "
                                  "it (required with otio)",
    )  # fmt: skip
    priority: int = Field(default=0, ge=-MAX_PRIORITY, le=MAX_PRIORITY, description="higher runs first")
    preset: PresetIn | None = None

    @model_validator(mode="after")
    def _one_input(self) -> JobIn:
        if (self.path is None) == (self.otio is None):
            raise ValueError("give exactly one of 'path' and 'otio'")
        if self.otio is not None and self.output_dir is None:
            raise ValueError("'output_dir' is required with 'otio'")
        for name, value in (("path", self.path), ("output_dir", self.output_dir)):
            if value is not None and not PurePosixPath(value).is_absolute():
                raise ValueError(f"'{name}': '{value}' is relative, and the daemon's working folder means nothing "
                                 "to a client; give an absolute path")  # fmt: skip
        if self.frames is not None:
            if self.otio is not None or self.kind == "timeline":
                raise ValueError("'frames' selects frames of a clip; a timeline's clips come with their ranges")
            first, _, last = self.frames.partition("-")
            if int(first) > int(last):
                raise ValueError(f"'frames': {self.frames} ends before it starts; give FIRST-LAST")
        return self


class JobOut(BaseModel):
    id: int
    kind: str
    input: str
    frames: str
    preset: dict[str, Any]
    output_dir: str
    priority: int
    state: str
    source: str
    frames_done: int
    frames_total: int | None
    fps: float | None
    eta_s: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    outputs: list[str]
    error: str | None
    crashes: int

    @classmethod
    def of(cls, record: JobRecord) -> JobOut:
        document = record.to_json()
        document.pop("fingerprint")
        return cls(**document)


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    device: str
    workers: int
    queue_depth: int
    running_job: int | None


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str


class ErrorOut(BaseModel):
    detail: str
