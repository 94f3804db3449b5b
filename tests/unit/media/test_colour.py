"""Y'CbCr <-> R'G'B': swscale and numpy paths against a direct BT.709/BT.601 computation."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from rvm_render.media import colour, open_reader
from rvm_render.media.probe import probe
from rvm_render.media.reader import frame_to_rgb

# Luma coefficients as printed in ITU-R BT.709-6 item 3.2 and BT.601-7 item 2.5.1.
SPEC_KR_KB = {"bt709": (0.2126, 0.0722), "bt470bg": (0.299, 0.114)}


def reference_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, standard: str, bits: int) -> np.ndarray:
    """Limited-range Y'CbCr -> R'G'B' 0..1, written out from the spec equations in float64."""
    kr, kb = SPEC_KR_KB[standard]
    kg = 1.0 - kr - kb
    unit = 2.0 ** (bits - 8)
    ey = (y - 16 * unit) / (219 * unit)
    ecb = (cb - 128 * unit) / (224 * unit)
    ecr = (cr - 128 * unit) / (224 * unit)
    r = ey + 2 * (1 - kr) * ecr
    b = ey + 2 * (1 - kb) * ecb
    g = (ey - kr * r - kb * b) / kg
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 1.0)


def real_yuv444(clip: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, Cb, Cr of a real frame at full size (chroma repeated), uint8."""
    with av.open(str(clip)) as container:
        frame = next(container.decode(video=0))
    y, u, v = (np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes)
    u = u.repeat(2, 0).repeat(2, 1)[: y.shape[0], : y.shape[1]]
    v = v.repeat(2, 0).repeat(2, 1)[: y.shape[0], : y.shape[1]]
    return y.copy(), u.copy(), v.copy()


def saturated_yuv(bits: int, size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every Y'/Cb/Cr code spread over a size x size frame (far from grey: tells matrices apart)."""
    unit = 1 << (bits - 8)
    rng = np.random.default_rng(7)
    y = rng.integers(16 * unit, 235 * unit + 1, (size, size))
    cb = rng.integers(16 * unit, 240 * unit + 1, (size, size))
    cr = rng.integers(16 * unit, 240 * unit + 1, (size, size))
    return y, cb, cr


@pytest.mark.parametrize("standard", ["bt709", "bt470bg"])
def test_swscale_8bit_matches_spec_on_real_and_saturated_pixels(clips_dir: Path, standard: str) -> None:
    for y, cb, cr in (real_yuv444(clips_dir / "01_dog.mp4"), saturated_yuv(8)):
        frame = av.VideoFrame.from_ndarray(np.stack([y, cb, cr]).astype(np.uint8), format="yuv444p")
        got = frame_to_rgb(frame, standard, "tv", wide=False).astype(np.float64)
        expected = reference_rgb(y.astype(float), cb.astype(float), cr.astype(float), standard, 8) * 255.0
        assert np.abs(got - expected).max() <= 1.0


def test_bt601_and_bt709_differ_on_saturated_pixels() -> None:
    y, cb, cr = (a.astype(float) for a in saturated_yuv(8))
    gap = np.abs(reference_rgb(y, cb, cr, "bt709", 8) - reference_rgb(y, cb, cr, "bt470bg", 8)) * 255.0
    assert gap.max() > 10.0  # so the test above can tell the standards apart


def test_numpy_10bit_decode_matches_spec() -> None:
    y, cb, cr = saturated_yuv(10)
    frame = av.VideoFrame(y.shape[1], y.shape[0], "yuv444p10le")
    for plane, data in zip(frame.planes, (y, cb, cr)):
        np.frombuffer(plane, np.uint16).reshape(plane.height, -1)[:, : plane.width] = data
    got = frame_to_rgb(frame, "bt709", "tv", wide=True).astype(np.float64) / 65535.0
    expected = reference_rgb(y.astype(float), cb.astype(float), cr.astype(float), "bt709", 10)
    assert np.abs(got - expected).max() <= 1.0 / 65535.0 + 1e-6


@pytest.mark.parametrize("standard", ["bt709", "bt470bg", "bt2020nc"])
@pytest.mark.parametrize("color_range", ["tv", "pc"])
@pytest.mark.parametrize("bits", [8, 10])
def test_rgb_ycbcr_round_trip_within_quantisation(standard: str, color_range: str, bits: int) -> None:
    rgb = np.random.default_rng(3).random((32, 32, 3), dtype=np.float32)
    codes = colour.rgb_to_ycbcr(rgb, colorspace=standard, color_range=color_range, bit_depth=bits)
    back = colour.ycbcr_to_rgb(codes, colorspace=standard, color_range=color_range, bit_depth=bits)
    step = 1.0 / (219 * 2 ** (bits - 8)) if color_range == "tv" else 1.0 / (2**bits - 1)
    assert np.abs(back - rgb).max() <= 2.5 * step


def test_rgb_to_ycbcr_matches_spec_forward_equations() -> None:
    rgb = np.random.default_rng(5).random((16, 16, 3))
    kr, kb = SPEC_KR_KB["bt709"]
    ey = kr * rgb[..., 0] + (1 - kr - kb) * rgb[..., 1] + kb * rgb[..., 2]
    expected_y = np.rint(64 + 876 * ey)
    expected_cb = np.rint(512 + 896 * (rgb[..., 2] - ey) / (2 * (1 - kb)))
    expected_cr = np.rint(512 + 896 * (rgb[..., 0] - ey) / (2 * (1 - kr)))
    got = colour.rgb_to_ycbcr(rgb, colorspace="bt709", color_range="tv", bit_depth=10).astype(float)
    for plane, expected in zip(got, (expected_y, expected_cb, expected_cr)):
        assert np.abs(plane - expected).max() <= 1.0


def test_reader_decodes_untagged_709_and_tagged_601(clips_dir: Path) -> None:
    """bedroom.mp4 is tagged bt470bg: its reader output sits closer to BT.601 than to BT.709."""
    info = probe(clips_dir / "bedroom.mp4")
    assert info.colorspace == "bt470bg"
    with open_reader(info, 0, 0) as reader:
        got = next(iter(reader)).rgb.astype(float)
    y, cb, cr = (a.astype(float) for a in real_yuv444(clips_dir / "bedroom.mp4"))
    err_601 = np.abs(got - reference_rgb(y, cb, cr, "bt470bg", 8) * 255).mean()
    err_709 = np.abs(got - reference_rgb(y, cb, cr, "bt709", 8) * 255).mean()
    assert err_601 < err_709


def test_chroma_upsampled_keeps_flat_and_linear_planes() -> None:
    flat = np.full((3, 4), 77.0, dtype=np.float32)
    assert np.array_equal(colour.chroma_upsampled(flat, 6, 8), np.full((6, 8), 77.0, dtype=np.float32))
    ramp = np.tile(np.arange(4, dtype=np.float32) * 2.0, (6, 1))  # 4:2:2 plane, left-sited samples
    up = colour.chroma_upsampled(ramp, 6, 7)
    assert np.allclose(up[:, :7], np.tile(np.arange(7, dtype=np.float32), (6, 1)))
