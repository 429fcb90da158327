"""Conformance on the complete PngSuite (tests/data/pngsuite, with its licence)."""

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import png
import pytest

from kqcodec import codec, imageio, quantizer
from kqcodec.cli import main
from kqcodec.errors import FormatError

SUITE = Path(__file__).parent / "data" / "pngsuite"
VALID = sorted(p for p in (SUITE / "png").glob("*.png") if not p.name.startswith("x"))
CORRUPT = sorted((SUITE / "png").glob("x*.png"))
PALETTE = [p for p in VALID if p.stem[4:6] == "3p"]


@pytest.fixture(scope="module")
def reference():
    with gzip.open(SUITE / "reference.json.gz") as f:
        return json.load(f)


def as_rgba(pixels):
    if pixels.shape[2] == 4:
        return pixels
    return np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])


def read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few suite files are animated or odd on purpose
        return imageio.read_image(path)


def test_suite_is_complete():
    assert len(VALID) == 161 and len(CORRUPT) == 14 and len(PALETTE) == 63


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_read_matches_reference_pixels(path, reference, decoding):
    if path.stem not in reference:
        pytest.skip("no 8-bit reference for this 16-bit alpha file")
    got = as_rgba(read(path)).reshape(-1).astype(int)
    want = np.array(reference[path.stem])
    assert got.shape == want.shape
    # 16-bit references keep the high byte; kqcodec rounds: at most 1 apart.
    tolerance = 1 if "16" in path.stem[-2:] else 0
    assert np.abs(got - want).max() <= tolerance


@pytest.mark.parametrize("path", [p for p in VALID if p.stem.endswith("16")], ids=lambda p: p.stem)
def test_16_bit_samples_are_scaled_not_clipped(path):
    width, height, rows, info = png.Reader(filename=str(path)).read()
    raw = np.vstack([np.asarray(r, np.int64) for r in rows]).reshape(height, width, -1)
    scaled = (raw * 255 + 32767) // 65535
    got = read(path).astype(np.int64)
    colors = scaled[..., :1].repeat(3, axis=2) if info["greyscale"] else scaled[..., :3]
    np.testing.assert_array_equal(got[..., :3], colors)
    if info["alpha"]:
        np.testing.assert_array_equal(got[..., 3], scaled[..., -1])
    assert got.max() > 200  # a clipping conversion of 16-bit grey would saturate


@pytest.mark.parametrize("k", [2, 16, 256])
def test_every_valid_file_encodes_and_decodes(tmp_path, k):
    for path in VALID:
        pixels = read(path)
        image = quantizer.quantize(pixels, k)
        out = tmp_path / f"{path.stem}.png"
        out.write_bytes(image.to_png())
        back = codec.read_palette_png(out)
        decoded = codec.decode(out)
        np.testing.assert_array_equal(as_rgba(decoded), back.palette[back.indices], err_msg=path.stem)
        colors = np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)
        if pixels.shape[2] == 4:
            # Invisible pixels are all one color to kqcodec.
            colors = np.unique(np.where(colors[:, 3:] == 0, 0, colors), axis=0)
            assert (decoded[..., 3][pixels[..., 3] == 0] == 0).all(), path.stem
        if len(colors) <= k:
            visible = np.where(as_rgba(pixels)[..., 3:] == 0, 0, as_rgba(pixels))
            np.testing.assert_array_equal(as_rgba(decoded), visible, err_msg=path.stem)


@pytest.mark.parametrize("name", ["tbbn0g04", "tbwn0g16", "tbbn2c16", "tbrn2c08", "tbbn3p08", "tm3n3p02",
                                  "tp1n3p08"])
def test_transparency_of_every_trns_form_survives(tmp_path, name, reference):
    path = SUITE / "png" / f"{name}.png"
    pixels = read(path)
    assert pixels.shape[2] == 4
    want_alpha = np.array(reference[name]).reshape(-1, 4)[:, 3]
    np.testing.assert_array_equal(pixels[..., 3].reshape(-1), want_alpha)
    out = tmp_path / "t.png"
    quantizer.quantize(pixels, 16).save(out)
    decoded = codec.decode(out)
    assert decoded.shape[2] == 4
    assert (decoded[..., 3][pixels[..., 3] == 0] == 0).all()


@pytest.mark.parametrize("path", PALETTE, ids=lambda p: p.stem)
def test_decode_command_matches_reference(tmp_path, path, reference):
    out = tmp_path / "out.png"
    assert main(["decode", str(path), str(out)]) == 0
    got = as_rgba(imageio.read_image(out)).reshape(-1)
    np.testing.assert_array_equal(got, np.array(reference[path.stem]))


@pytest.mark.parametrize("path", CORRUPT, ids=lambda p: p.stem)
@pytest.mark.parametrize("command", ["encode", "decode"])
def test_corrupt_files_exit_65_with_one_line(tmp_path, capsys, path, command):
    out = tmp_path / "out.png"
    args = [command, str(path), str(out)] + (["-k", "16"] if command == "encode" else [])
    assert main(args) == 65
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kqcodec: error:")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_files_raise_format_error():
    for path in CORRUPT:
        with pytest.raises(FormatError):
            imageio.read_image(path)


def test_read_header_is_the_header_of_a_full_check():
    """The chunks alone give the header a full decode gives, palette and tRNS included."""
    from kqcodec import pngread

    for path in VALID:
        data = path.read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = pngread.inspect_png(data, strict=False)
            header = pngread.read_header(data, strict=False)
        assert (header.width, header.height, header.bit_depth, header.color_type,
                header.interlaced) == (full.width, full.height, full.bit_depth, full.color_type,
                                       full.interlaced), path.name
        for field in ("palette", "transparency"):
            a, b = getattr(header, field), getattr(full, field)
            assert (a is None and b is None) or np.array_equal(a, b), (path.name, field)
    for path in CORRUPT:
        # What the chunks show is refused by both; damaged image data only by the decode.
        data = path.read_bytes()
        try:
            pngread.read_header(data)
        except FormatError:
            with pytest.raises(FormatError):
                pngread.inspect_png(data)
