"""MatteRecognizer: a sequence matte whose metadata the host dropped is known by its manifest, '%' in its name too."""

from __future__ import annotations

import json
from pathlib import Path

import opentimelineio as otio
import pytest

from rvm_render.otio.earlier_mattes import MatteRecognizer


@pytest.mark.parametrize("stem", ["take", "take 100%"])
def test_a_sequence_listed_by_a_manifest_is_a_matte(tmp_path: Path, stem: str) -> None:
    pattern = stem.replace("%", "%%") + "_matte.%06d.exr"  # manifests write a literal '%' as '%%'
    (tmp_path / f"{stem}.rvm.json").write_text(json.dumps({
        "input": str(tmp_path / "take.mov"), "first_frame": 0, "last_frame": 1,
        "outputs": [{"format": "exr", "path": str(tmp_path / pattern), "first_frame": 0, "last_frame": 1}],
    }))  # fmt: skip
    matte, source = (otio.schema.ImageSequenceReference(
        target_url_base=str(tmp_path), name_prefix=f"{name}.", name_suffix=".exr", frame_zero_padding=6,
        start_frame=0, rate=24) for name in (f"{stem}_matte", f"{stem}_plate"))  # fmt: skip
    recognizer = MatteRecognizer(tmp_path)
    assert recognizer.is_matte(otio.schema.Clip("matte", matte))
    assert not recognizer.is_matte(otio.schema.Clip("plate", source))
