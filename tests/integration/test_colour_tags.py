"""Colour survives: a BT.2020/PQ source keeps its tags in every output, and stills decode by their own standard."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import av
import numpy as np
import OpenEXR
import pytest
from PIL import Image

from rvm_render.media import colour
from rvm_render.media.probe import MediaInfo, probe
from rvm_render.media.reader import open_reader
from rvm_render.media.writers import Background, OutputFormat, open_writer
from rvm_render.media.writers.comp import BackgroundSource
from rvm_render.media.writers.container import frame_from_planes
from support.cli import matte
from support.frames import planes_of

FRAMES = 4
# ITU-T H.273 code points: BT.2020 primaries, SMPTE ST 2084 (PQ) transfer, BT.2020 non-constant matrix.
BT2020, PQ, BT2020_NCL = 9, 16, 9
# BT.2020 primaries and D65 white, CIE 1931 xy (ITU-R BT.2020-2, table 3).
BT2020_XY = (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290)


def _video_tags(path: Path) -> tuple[int, int, int, int]:
    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        return ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range


@pytest.fixture(scope="module")
def hdr_clip(tmp_path_factory: pytest.TempPathFactory, clips_dir: Path) -> Path:
    """Real frames as a ProRes 422 HQ master tagged BT.2020 / PQ / BT.2020 NCL, as HDR grading exports it."""
    path = tmp_path_factory.mktemp("hdr") / "hdr_master.mov"
    source = probe(clips_dir / "bedroom.mp4")
    with av.open(str(path), "w") as output, open_reader(source, 0, FRAMES - 1) as frames:
        stream = output.add_stream("prores_ks", rate=source.rate, options={"profile": "hq"})
        stream.width, stream.height, stream.pix_fmt = source.width, source.height, "yuv422p10le"
        ctx = stream.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = BT2020, PQ, BT2020_NCL, 1
        for frame in frames:
            rgb = frame.rgb.astype(np.float32) / 255
            y, cb, cr = colour.rgb_to_ycbcr(rgb, colorspace="bt2020nc", color_range="tv", bit_depth=10)
            picture = frame_from_planes([y, cb[:, ::2].copy(), cr[:, ::2].copy()], "yuv422p10le")
            picture.pts = frame.index
            output.mux(stream.encode(picture))
        output.mux(stream.encode(None))
    return path


def test_probe_reads_primaries_and_transfer(hdr_clip: Path, clips_dir: Path) -> None:
    info = probe(hdr_clip)
    assert (info.color_primaries, info.color_trc, info.colorspace) == ("bt2020", "smpte2084", "bt2020nc")
    sdr = probe(clips_dir / "05_default_juggle.mp4")
    assert (sdr.color_primaries, sdr.color_trc, sdr.colorspace) == ("bt709", "bt709", "bt709")


def test_every_output_carries_the_source_colour_and_the_user_is_warned_once(
    hdr_clip: Path, tmp_path: Path, tfjs_weights: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        code = matte([hdr_clip], tmp_path, tfjs_weights, "--formats", "prores4444,alpha,comp,exr",
                     "--downsample-ratio", "0.25")  # fmt: skip
    assert code == 0
    for name in ("hdr_master_matte.mov", "hdr_master_alpha.mov", "hdr_master_comp.mp4"):
        assert _video_tags(tmp_path / name) == (BT2020, PQ, BT2020_NCL, 1), name
    for number in range(FRAMES):
        with OpenEXR.File(str(tmp_path / f"hdr_master_matte.{number:06d}.exr")) as exr:
            np.testing.assert_allclose(exr.header()["chromaticities"], BT2020_XY, atol=1e-6)
    warnings = [r.getMessage() for r in caplog.records if "not SDR BT.709" in r.getMessage()]
    assert len(warnings) == 1 and "smpte2084" in warnings[0] and "bt2020" in warnings[0]


def test_sdr_source_is_not_warned_about(clips_dir: Path, tmp_path: Path, tfjs_weights: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    with caplog.at_level(logging.WARNING):
        assert matte([clips_dir / "01_dog.mp4"], tmp_path, tfjs_weights, "--formats", "prores4444", "--frames", "0-1",
                     "--downsample-ratio", "0.25") == 0  # fmt: skip
    assert not [r for r in caplog.records if "not SDR BT.709" in r.getMessage()]
    assert _video_tags(tmp_path / "01_dog_matte.mov") == (1, 1, 1, 1)


@pytest.mark.parametrize("matrix", ["bt2020nc", "bt470bg"])
def test_prores_is_encoded_with_the_matrix_it_is_tagged_with(
    clips_dir: Path, tmp_path: Path, matrix: str
) -> None:
    """Decoding the written Y'CbCr with the output's own tagged matrix gives back the foreground."""
    source = probe(clips_dir / "bedroom.mp4")
    info: MediaInfo = dataclasses.replace(source, colorspace=matrix, color_primaries="bt2020", color_trc="smpte2084")
    with open_reader(source, 0, 0) as frames:
        fgr = next(iter(frames)).rgb.astype(np.float32) / 255
    pha = np.ones(fgr.shape[:2], dtype=np.float32)
    writer = open_writer(OutputFormat.PRORES4444, tmp_path, "tagged", info)
    writer.write(0, fgr, pha)
    path = writer.close().path
    with av.open(str(path)) as container:
        tagged = colour.colorspace_name(container.streams.video[0].codec_context.colorspace)
        y, cb, cr, _ = planes_of(next(container.decode(video=0)).reformat(format="yuva444p10le"))
    assert tagged == matrix
    decoded = colour.ycbcr_to_rgb(np.stack([y, cb, cr]), colorspace=tagged, color_range="tv", bit_depth=10)
    assert np.abs(decoded - fgr).mean() < 2e-3 and np.abs(decoded - fgr).max() < 0.05


def test_jpeg_background_decodes_with_its_bt601_matrix(tmp_path: Path) -> None:
    """JPEG (JFIF) is full-range BT.601 Y'CbCr: pure red must come back red, not (255, 25, 0)."""
    path = tmp_path / "red.jpg"
    Image.new("RGB", (64, 48), (255, 0, 0)).save(path, quality=100, subsampling=0)
    backdrop = BackgroundSource(Background(kind="image", path=path), 64, 48)
    rgb = backdrop.frame() * 255
    backdrop.close()
    np.testing.assert_allclose(rgb[8:-8, 8:-8].mean(axis=(0, 1)), (255, 0, 0), atol=2.0)
