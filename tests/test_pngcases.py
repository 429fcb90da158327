"""PNG files other projects wrote to test their decoders, read as libpng reads them.

The files and their sources are listed in tests/data/pngcases/README.md.
``libpng_rgba.json`` holds, for each file, the SHA-256 of the RGBA pixels
libpng 1.6 decodes (or null where libpng refuses the file), made with
``libpng_rgba.c`` beside it.
"""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kqcodec
from kqcodec import pngread
from kqcodec.errors import FormatError

DATA = Path(__file__).parent / "data" / "pngcases"
LIBPNG = json.loads((DATA / "libpng_rgba.json").read_text())

# What the default mode says it skipped ("" for a file that breaks no rule);
# strict refuses each of these files with that rule named.
DECODED = {
    "pillow/chunk_no_fctl.png": "broken animation: acTL announces 1 frames, fcTL chunks give 0",
    "pillow/sequence_gap.png": "broken animation: frame chunks out of sequence",
    "pillow/syntax_num_frames_high.png": "broken animation: acTL announces 3 frames",
    "pillow/chunk_actl_after_idat.png": "acTL chunk after IDAT",
    "pillow/num_plays.png": "",
    "pillow/exif_imagemagick_orientation.png": "",
    "pillow/xmp_tags_orientation.png": "",
    "pillow/hopper_idat_after_image_end.png": "data after the end of the image data stream",
    "pillow/padded_idat.png": "data after the end of the image data stream",
    "pillow/tRNS_null_1x1.png": "1 bytes after IEND",
    "pillow/unknown_compression_method.png": "iCCP chunk with a bad CRC",
    "pillow/icc_profile_none.png": "iCCP chunk's profile is not a valid zlib stream",
    "libpng/pngtest.png": "eXIf chunk after the image data",
    "libpng/small-palette-2.png": "pixel index 3 is past the 3-entry palette",
    "libpng/test-palette-8.png": "pixel index 254 is past the 254-entry palette",
    "libpng/empty_ancillary_chunks.png": "bKGD chunk of 0 bytes, not 1 to 6",
    "image-png/cicp_pq.png": "cLLI chunk with a bad CRC",
    "image-png/issue430.png": "iCCP chunk with a bad CRC",
    "image-png/issue1825.png": "more than one iCCP chunk",
    "image-png/invalid_palette_index.png": "pixel index 255 is past the 17-entry palette",
    "image-png/F-exif-chunk-early.png": "",
}

# Damage libpng refuses too: refused in both modes, in kqcodec's words.
REFUSED = {
    "pillow/syntax_num_frames_zero.png": "no IDAT chunk",
    "pillow/truncated_image.png": "file ends inside the IDAT chunk (truncated)",
    "pillow/broken_data_stream.png": "IDAT chunk fails its CRC check",
    "libpng/badadler.png": "checksum is wrong",
    "libpng/badcrc.png": "IDAT chunk fails its CRC check",
    "libpng/huge_tEXt_chunk.png": "file ends inside the tEXt chunk",
    "libpng/huge_IDAT.png": "file ends inside the IDAT chunk",
    "image-png/x_consecutive_idat.png": "image data ends early",
    "libspng/missing_plte.png": "palette image without a PLTE chunk",
    "libspng/zero_width.png": "image size 0x32 is not allowed",
}


def test_every_file_is_listed_and_libpng_agrees_which_it_refuses():
    on_disk = {str(p.relative_to(DATA)) for p in DATA.glob("*/*.png")}
    assert on_disk == set(DECODED) | set(REFUSED) == set(LIBPNG)
    assert {name for name, ref in LIBPNG.items() if ref is None} == set(REFUSED)


def _rgba_digest(pixels):
    if pixels.shape[2] == 3:
        pixels = np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


@pytest.mark.parametrize("name", DECODED)
def test_default_mode_decodes_libpngs_pixels_and_names_what_it_skipped(name):
    image = pngread.read_png((DATA / name).read_bytes())
    assert _rgba_digest(image.pixels) == LIBPNG[name]["rgba_sha256"]
    problem = DECODED[name]
    if problem:
        assert any(problem in p for p in image.problems), image.problems
    else:
        assert image.problems == ()


@pytest.mark.parametrize("name", [n for n, problem in DECODED.items() if problem])
def test_strict_refuses_the_rule_default_skips(name):
    with pytest.raises(FormatError, match="corrupt PNG: " + re.escape(DECODED[name])):
        pngread.read_png((DATA / name).read_bytes(), strict=True)


@pytest.mark.parametrize("name", REFUSED)
@pytest.mark.parametrize("strict", [False, True])
def test_damage_libpng_refuses_is_refused_in_both_modes(name, strict):
    # Strict may stop earlier, at a rule the default mode lets pass.
    with pytest.raises(FormatError, match=None if strict else re.escape(REFUSED[name])) as refused:
        pngread.read_png((DATA / name).read_bytes(), strict=strict)
    assert str(refused.value).startswith("corrupt PNG: ")


@pytest.mark.parametrize("name", [
    "libpng/pngtest.png",  # eXIf after IDAT
    "pillow/exif_imagemagick_orientation.png",  # a "Raw profile type exif" text chunk
    "pillow/xmp_tags_orientation.png",  # XMP
])
def test_orientation_outside_an_early_exif_is_not_applied(name):
    path = DATA / name
    assert Image.open(path).getexif().get(0x0112, 1) != 1  # Pillow would turn it
    with pytest.warns() if name == "libpng/pngtest.png" else _no_warning():
        pixels = kqcodec.decode(path)
    np.testing.assert_array_equal(pixels, pngread.read_png(path.read_bytes()).pixels)


def test_early_exif_orientation_is_applied():
    path = DATA / "image-png/F-exif-chunk-early.png"
    stored = pngread.read_png(path.read_bytes()).pixels
    np.testing.assert_array_equal(kqcodec.decode(path), np.rot90(stored, -1))  # orientation 6


def test_valid_animation_decodes_its_still_image_with_a_warning():
    with pytest.warns(UserWarning, match="animated PNG of 2 frames; only its still image"):
        kqcodec.decode(DATA / "pillow/num_plays.png")


class _no_warning:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)


def _run(*args):
    proc = subprocess.run([sys.executable, "-m", "kqcodec", *map(str, args)],
                          capture_output=True, text=True)
    return proc.returncode, proc.stderr.strip().splitlines()


def test_command_warns_once_and_strict_refuses_in_one_line(tmp_path):
    source = DATA / "pillow/padded_idat.png"
    code, lines = _run("decode", source, tmp_path / "out.png")
    assert code == 0
    assert lines == [f"kqcodec: warning: {source}: data after the end of the image data stream "
                     "(skipped)"]
    for command in (["decode", source, tmp_path / "strict.png"],
                    ["encode", source, tmp_path / "strict.png", "-k", "4"]):
        code, lines = _run(*command, "--strict")
        assert (code, lines) == (65, [f"kqcodec: error: {source}: corrupt PNG: data after the "
                                      "end of the image data stream"])
    assert not (tmp_path / "strict.png").exists()


def test_report_reads_with_the_same_policy(tmp_path):
    source = DATA / "pillow/padded_idat.png"
    with pytest.warns(UserWarning, match="data after the end of the image data stream"):
        lenient = kqcodec.report_image(source, ks=[2], out=tmp_path / "a")
    assert list(lenient["status"]) == ["ok"]
    strict = kqcodec.report_image(source, ks=[2], out=tmp_path / "b", strict=True)
    assert list(strict["error"]) == [f"{source}: corrupt PNG: data after the end of the image "
                                     "data stream"]
