"""The PNG reader: its unfilter kernel, 16-bit samples, tRNS, and the policy.

Second decoders: pypng (its pure-Python filters and tRNS handling) and a
plain-Python unfilter written from the specification (tests/pngmake.py).
"""

import io
import re
import struct
import threading
import zlib

import numpy as np
import png
import pytest
from PIL import Image

import kqcodec
from kqcodec import pngread
from kqcodec._kernels import pngread as kernels
from kqcodec.errors import FormatError, KqcodecWarning

from .conftest import synthetic_photo
from .pngmake import (build, chunks_of, ihdr, image_png, packed_png, pypng_rgba8, scanlines,
                      unfilter_reference)


@pytest.mark.parametrize("bpp", [1, 2, 3, 4, 6, 8])
@pytest.mark.parametrize("width", [1, 2, 7, 40])
def test_kernel_matches_the_reference_for_every_filter(bpp, width):
    rng = np.random.default_rng(bpp * 100 + width)
    rows = 12
    raw = rng.integers(0, 256, (rows, 1 + width * bpp), dtype=np.uint8)
    raw[:, 0] = np.resize([0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 3, 4], rows)
    raw[0, 0] = rng.integers(0, 5)
    out = np.empty((rows, width * bpp), np.uint8)
    assert kernels.unfilter(raw, out, bpp) == -1
    np.testing.assert_array_equal(out, unfilter_reference(raw, bpp))


@pytest.mark.parametrize("split", [1, 5, 11])
def test_kernel_in_blocks_matches_one_pass(split):
    rng = np.random.default_rng(split)
    raw = rng.integers(0, 256, (12, 1 + 9), dtype=np.uint8)
    raw[:, 0] = np.resize([4, 3, 2, 1, 0], 12)
    whole = np.empty((12, 9), np.uint8)
    kernels.unfilter(raw, whole, 3)
    first, second = np.empty((split, 9), np.uint8), np.empty((12 - split, 9), np.uint8)
    kernels.unfilter(raw[:split], first, 3)
    kernels.unfilter(np.ascontiguousarray(raw[split:]), second, 3, first[-1])
    np.testing.assert_array_equal(np.vstack([first, second]), whole)


def test_kernel_names_the_first_bad_row():
    raw = np.zeros((3, 5), np.uint8)
    raw[1, 0] = 5
    assert kernels.unfilter(raw, np.empty((3, 4), np.uint8), 1) == 1


def _rgba8(samples, depth):
    """Expected 8-bit values of samples, rounding v * 255 / (2**depth - 1)."""
    top = (1 << depth) - 1
    return ((np.asarray(samples, np.uint64) * 255 + top // 2) // top).astype(np.uint8)


@pytest.mark.parametrize("ctype, channels", [(0, 1), (2, 3), (4, 2), (6, 4)])
@pytest.mark.parametrize("kinds", [0, 1, 2, 3, 4, (4, 3, 2, 1, 0)])
def test_16_bit_samples_decode_exactly_with_every_filter(ctype, channels, kinds, decoding):
    rng = np.random.default_rng(channels * 10 + (kinds if isinstance(kinds, int) else 9))
    samples = rng.integers(0, 65536, (9, 13, channels))
    if ctype in (4, 6):
        samples[..., -1] = rng.choice([0, 65535, 30000], (9, 13))
    data = image_png(samples, 16, ctype, kinds=kinds)
    pixels = pngread.read_png(data, strict=True).pixels
    np.testing.assert_array_equal(pixels, pypng_rgba8(data)[..., : pixels.shape[2]])
    eight = _rgba8(samples, 16)
    color = np.repeat(eight[..., :1], 3, axis=2) if ctype in (0, 4) else eight[..., :3]
    np.testing.assert_array_equal(pixels[..., :3], color)


@pytest.mark.parametrize("shape", [(1, 5000), (3000, 1), (2, 2)])
def test_16_bit_one_long_row_or_many_short_rows(shape):
    height, width = shape
    samples = np.arange(height * width * 3).reshape(height, width, 3) * 7919 % 65536
    data = image_png(samples, 16, 2, kinds=(4, 3))
    pixels = pngread.read_png(data, strict=True).pixels
    np.testing.assert_array_equal(pixels, _rgba8(samples, 16))


def test_16_bit_interlaced_matches_pypng(decoding):
    rng = np.random.default_rng(3)
    samples = rng.integers(0, 65536, (11, 9, 2)).astype(np.uint16)
    stream = png.Writer(9, 11, greyscale=True, alpha=True, bitdepth=16, interlace=True)
    out = io.BytesIO()
    stream.write(out, samples.reshape(11, -1).tolist())
    data = out.getvalue()
    np.testing.assert_array_equal(pngread.read_png(data, strict=True).pixels, pypng_rgba8(data))


def test_16_bit_trns_matches_all_sixteen_bits():
    samples = np.array([[[0x1234], [0x1235], [0x12FF]]])
    data = image_png(samples, 16, 0, trns=struct.pack(">H", 0x1234))
    assert pngread.read_png(data, strict=True).pixels[0, :, 3].tolist() == [0, 255, 255]


# tRNS keys with bits set above the bit depth: the specification has decoders
# mask them, and libpng does (so does Pillow, except for 2-bit grey); pypng
# compares them unmasked, as kqcodec did.

def _pillow_rgba(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def test_trns_of_1_bit_grey_is_masked():
    data = packed_png([[0, 1, 1, 0]], 1, 0, trns=struct.pack(">H", 0x00FF))
    pixels = pngread.read_png(data, strict=True).pixels
    assert pixels[0, :, 3].tolist() == [255, 0, 0, 255]
    np.testing.assert_array_equal(pixels, _pillow_rgba(data))


def test_trns_of_2_bit_grey_is_masked():
    data = packed_png([[0, 1, 2, 3, 2]], 2, 0, trns=struct.pack(">H", 0xFFF6))  # low bits: 2
    pixels = pngread.read_png(data, strict=True).pixels
    assert pixels[0, :, 3].tolist() == [255, 255, 0, 255, 0]
    assert pixels[0, :, 0].tolist() == [0, 85, 170, 255, 170]


def test_trns_of_8_bit_rgb_is_masked():
    samples = np.array([[[10, 20, 30], [10, 20, 31]]])
    data = image_png(samples, 8, 2, trns=struct.pack(">HHH", 0x010A, 0xFF14, 0x801E))
    pixels = pngread.read_png(data, strict=True).pixels
    assert pixels[0, :, 3].tolist() == [0, 255]
    np.testing.assert_array_equal(pixels, _pillow_rgba(data))


# The policy, on small files made to break one rule each.  Harmless damage is
# decoded to the clean file's pixels with a problem named; strict refuses it.

GREY = np.arange(12).reshape(3, 4, 1) * 20
CLEAN = image_png(GREY, 8, 0)
TEXT = (b"tEXt", b"Comment\0hello")


def _flip_crc(data, ctype):
    """`data` with the CRC of its first `ctype` chunk damaged."""
    at = data.index(ctype) - 4
    (length,) = struct.unpack(">I", data[at : at + 4])
    crc = at + 8 + length
    return data[:crc] + bytes([data[crc] ^ 0xFF]) + data[crc + 1 :]


# ICC profile headers of each color space (bytes 16-19), enough for the reader's check.
# The least a profile is to libpng: its length, the color space, the signature, no tags.
_PROFILE = {space: struct.pack(">I", 132) + bytes(12) + space + bytes(16) + b"acsp" + bytes(92)
            for space in (b"GRAY", b"RGB ", b"Lab ")}

HARMLESS = {
    "gAMA CRC": (_flip_crc(image_png(GREY, 8, 0, before=[(b"gAMA", bytes(4))]), b"gAMA"),
                 "gAMA chunk with a bad CRC"),
    "zTXt CRC": (_flip_crc(image_png(GREY, 8, 0, after=[(b"zTXt", b"a\0\0" + zlib.compress(b"b"))]),
                           b"zTXt"), "zTXt chunk with a bad CRC"),
    "short cHRM": (image_png(GREY, 8, 0, before=[(b"cHRM", bytes(31))]), "cHRM chunk of 31 bytes"),
    "long pHYs": (image_png(GREY, 8, 0, before=[(b"pHYs", bytes(10))]), "pHYs chunk of 10 bytes"),
    "gAMA after IDAT": (image_png(GREY, 8, 0, after=[(b"gAMA", bytes(4))]), "gAMA chunk after"),
    "gAMA of 0": (image_png(GREY, 8, 0, before=[(b"gAMA", bytes(4))]),
                  "gAMA chunk of 0, out of range"),
    # Chunks of the right length whose data libpng finds invalid (and skips).
    "gAMA too large": (image_png(GREY, 8, 0, before=[(b"gAMA", b"\xff" * 4)]),
                       "gAMA chunk of 4294967295, out of range"),
    "cHRM all zero": (image_png(GREY, 8, 0, before=[(b"cHRM", bytes(32))]),
                      "cHRM chunk of invalid chromaticities"),
    "cHRM primaries in a line": (image_png(GREY, 8, 0, before=[(b"cHRM", struct.pack(
        ">8I", 31270, 32900, 10000, 10000, 20000, 20000, 30000, 30000))]),
        "cHRM chunk of invalid chromaticities"),
    "sRGB intent 9": (image_png(GREY, 8, 0, before=[(b"sRGB", b"\x09")]),
                      "sRGB chunk of rendering intent 9, not 0 to 3"),
    "bKGD of RGB length": (image_png(GREY, 8, 0, before=[(b"bKGD", bytes(6))]),
                           "bKGD chunk of 6 bytes for color type 0"),
    "bKGD over the depth": (image_png(GREY, 8, 0, before=[(b"bKGD", b"\x01\x00")]),
                            "bKGD chunk value 256 over bit depth 8"),
    "sBIT of RGB length": (image_png(GREY, 8, 0, before=[(b"sBIT", b"\x08" * 3)]),
                           "sBIT chunk of 3 bytes for color type 0"),
    "sBIT of 0": (image_png(GREY, 8, 0, before=[(b"sBIT", b"\x00")]),
                  "sBIT chunk of significant bits 0, not 1 to 8"),
    "sBIT over the depth": (image_png(GREY, 8, 0, before=[(b"sBIT", b"\x09")]),
                            "sBIT chunk of significant bits 9, not 1 to 8"),
    "hIST without PLTE": (image_png(GREY, 8, 0, before=[(b"hIST", bytes(2))]),
                          "hIST chunk without a PLTE before it"),
    "tIME of month 0": (image_png(GREY, 8, 0, after=[(b"tIME", struct.pack(">HBBBBB", 2020, 0, 1,
                                                                          0, 0, 0))]),
                        "tIME chunk of an invalid date or time"),
    "zTXt not zlib": (image_png(GREY, 8, 0, after=[(b"zTXt", b"a\0\0not zlib")]),
                      "zTXt chunk whose text is not a valid zlib stream"),
    "iTXt not zlib": (image_png(GREY, 8, 0, after=[(b"iTXt", b"a\0\x01\0en\0a\0not zlib")]),
                      "iTXt chunk whose text is not a valid zlib stream"),
    "zTXt without keyword": (image_png(GREY, 8, 0, after=[(b"zTXt", b"\0\0" + zlib.compress(b"b"))]),
                             "zTXt chunk without a keyword of 1 to 79 bytes"),
    "eXIf of no byte order": (image_png(GREY, 8, 0, before=[(b"eXIf", b"Exif\0\0MM\0*" + bytes(4))]),
                              "eXIf chunk without a TIFF byte order (MM or II)"),
    "iCCP of no profile": (image_png(GREY, 8, 0, before=[(b"iCCP", b"p\0\0" + zlib.compress(
        bytes(16) + b"GRAY" + bytes(200)))]),
        "iCCP chunk's data is not an ICC profile"),
    "sRGB and iCCP": (image_png(GREY, 8, 0, before=[(b"sRGB", b"\0"), (b"iCCP", b"grey\0\0"
                                                    + zlib.compress(_PROFILE[b"GRAY"]))]),
                      "both sRGB and iCCP chunks"),
    # libpng drops a profile of another color space than the image's.
    "RGB profile in grey": (image_png(GREY, 8, 0, before=[(b"iCCP", b"p\0\0"
                                                          + zlib.compress(_PROFILE[b"RGB "]))]),
                            "iCCP profile of the RGB color space in a greyscale image"),
    "Lab profile in grey": (image_png(GREY, 8, 0, before=[(b"iCCP", b"p\0\0"
                                                          + zlib.compress(_PROFILE[b"Lab "]))]),
                            "iCCP profile of the Lab color space in a greyscale image"),
    "two sRGB": (image_png(GREY, 8, 0, before=[(b"sRGB", b"\0"), (b"sRGB", b"\0")]),
                 "more than one sRGB"),
    "empty tRNS": (image_png(GREY, 8, 0, trns=b""), "tRNS of 0 bytes"),
    "PLTE in grey": (image_png(GREY, 8, 0, palette=[[1, 2, 3]]), "PLTE in a greyscale image"),
    "late IDAT": (build([ihdr(4, 3, 8, 0), (b"IDAT", zlib.compress(scanlines(GREY, 8, 0))), TEXT,
                         (b"IDAT", zlib.compress(b"x")), (b"IEND", b"")]),
                  "IDAT chunks after other chunks"),
    "padded stream": (image_png(GREY, 8, 0, data=zlib.compress(scanlines(GREY, 8, 0)) + bytes(9)),
                      "data after the end of the image data stream"),
    "extra rows": (image_png(GREY, 8, 0, data=zlib.compress(scanlines(GREY, 8, 0) * 2)),
                   "more image data than the header's rows"),
    "after IEND": (CLEAN + b"trailing junk", "13 bytes after IEND"),
    "huge text": (image_png(GREY, 8, 0, after=[(b"tEXt", b"k\0" + bytes(pngread.MAX_TEXT_CHUNK))]),
                  "over kqcodec's 1 MiB limit for text"),
    "late eXIf": (image_png(GREY, 8, 0, after=[(b"eXIf", b"MM\0*" + bytes(4))]),
                  "eXIf chunk after the image data"),
}


@pytest.mark.parametrize("name", HARMLESS)
def test_harmless_damage_is_skipped_by_default_and_refused_when_strict(name, decoding):
    data, problem = HARMLESS[name]
    image = pngread.read_png(data)
    np.testing.assert_array_equal(image.pixels, pngread.read_png(CLEAN, strict=True).pixels)
    assert len(image.problems) == 1 and problem in image.problems[0]
    with pytest.raises(FormatError, match=re.escape(problem)) as refused:
        pngread.read_png(data, strict=True)
    assert str(refused.value).startswith("corrupt PNG: ")


# Palette images: the chunks that refer to PLTE (a 3-entry palette, indices 0 to 2).
_INDICES = np.array([[0, 1, 2], [2, 1, 0]]).reshape(2, 3, 1)
_PLTE = (b"PLTE", bytes(range(9)))


def _palette_png(*chunks_before_idat):
    return build([ihdr(3, 2, 8, 3), *chunks_before_idat,
                  (b"IDAT", zlib.compress(scanlines(_INDICES, 8, 0))), (b"IEND", b"")])


@pytest.mark.parametrize("chunks, problem", [
    ([(b"bKGD", b"\x01"), _PLTE], "bKGD chunk before PLTE"),
    ([_PLTE, (b"bKGD", b"\x03")], "bKGD chunk index 3 past the 3-entry palette"),
    ([_PLTE, (b"bKGD", bytes(2))], "bKGD chunk of 2 bytes for color type 3"),
    ([(b"hIST", bytes(6)), _PLTE], "hIST chunk without a PLTE before it"),
    ([_PLTE, (b"hIST", bytes(4))], "hIST chunk of 2 entries for a 3-entry palette"),
    ([(b"sBIT", b"\x08\x08\x09"), _PLTE], "sBIT chunk of significant bits 8, 8, 9, not 1 to 8"),
])
def test_chunks_that_refer_to_the_palette_are_checked_against_it(chunks, problem):
    clean = pngread.read_png(_palette_png(_PLTE), strict=True)
    image = pngread.read_png(_palette_png(*chunks))
    np.testing.assert_array_equal(image.pixels, clean.pixels)
    assert image.problems == (f"{problem} (skipped)",)
    assert not image.ancillary
    with pytest.raises(FormatError, match=re.escape(problem)):
        pngread.read_png(_palette_png(*chunks), strict=True)
    # The same chunks, right: kept without a word.
    right = pngread.read_png(_palette_png((b"sBIT", b"\x05\x06\x07"), _PLTE, (b"bKGD", b"\x02"),
                                          (b"hIST", bytes(6))), strict=True)
    assert [c for c, _ in right.ancillary] == [b"sBIT", b"bKGD", b"hIST"]


def test_invalid_color_chunks_are_neither_used_nor_copied(tmp_path):
    # An all-zero cHRM and a gAMA out of range went into the decoded PNG as they were:
    # a file that libpng then warned about.
    data = image_png(GREY, 8, 0, before=[(b"gAMA", b"\xff" * 4), (b"cHRM", bytes(32))])
    image = pngread.read_png(data)
    assert "gamma" not in image.info and "chromaticity" not in image.info
    (tmp_path / "in.png").write_bytes(data)
    with pytest.warns(KqcodecWarning, match="gAMA chunk of 4294967295, out of range"):
        kqcodec.decode(tmp_path / "in.png", tmp_path / "out.png")
    assert [c for c, _ in chunks_of((tmp_path / "out.png").read_bytes())
            if c in (b"gAMA", b"cHRM")] == []


def test_a_warning_names_a_few_problems_and_counts_the_others(tmp_path):
    # 20 ancillary chunks of distinct names, each failing its CRC.
    chunks = [(f"aaA{chr(97 + i)}".encode(), b"x") for i in range(20)]
    data = image_png(GREY, 8, 0, before=chunks)
    for name, _ in chunks:
        data = _flip_crc(data, name)
    assert len(pngread.read_png(data).problems) == 20
    (tmp_path / "in.png").write_bytes(data)
    with pytest.warns(KqcodecWarning) as caught:
        kqcodec.read_image(tmp_path / "in.png")
    (message,) = [str(w.message) for w in caught]
    assert message.count("chunk with a bad CRC") == 8 and message.endswith("; and 12 more")


@pytest.mark.parametrize("space, color_type, kept", [(b"GRAY", 0, True), (b"GRAY", 4, True),
                                                     (b"RGB ", 2, True), (b"RGB ", 6, True),
                                                     (b"RGB ", 3, True), (b"GRAY", 2, False),
                                                     (b"GRAY", 3, False), (b"RGB ", 4, False)])
def test_a_profile_is_kept_only_in_an_image_of_its_color_space(space, color_type, kept):
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    samples = np.zeros((2, 3, channels), np.uint8)
    chunk = (b"iCCP", b"p\0\0" + zlib.compress(_PROFILE[space]))
    if color_type == 3:  # iCCP comes before PLTE
        data = build([ihdr(3, 2, 8, 3), chunk, (b"PLTE", bytes(3)),
                      (b"IDAT", zlib.compress(scanlines(samples, 8, 3))), (b"IEND", b"")])
    else:
        data = image_png(samples, 8, color_type, before=[chunk])
    image = pngread.read_png(data)
    assert (image.info.get("icc_profile") == _PROFILE[space]) is kept
    assert bool(image.problems) is not kept


def test_trns_in_an_image_with_alpha_is_skipped():
    grey_alpha = np.dstack([GREY, GREY + 1])
    data = image_png(grey_alpha, 8, 4, trns=bytes(2))
    image = pngread.read_png(data)
    assert "tRNS in an image with an alpha channel" in image.problems[0]
    np.testing.assert_array_equal(image.pixels, pngread.read_png(image_png(grey_alpha, 8, 4)).pixels)
    with pytest.raises(FormatError, match="tRNS in an image with an alpha channel"):
        pngread.read_png(data, strict=True)


def test_clean_file_has_no_problems():
    assert pngread.read_png(CLEAN).problems == ()


FATAL = {
    "IDAT CRC": (_flip_crc(CLEAN, b"IDAT"), "IDAT chunk fails its CRC check"),
    "PLTE CRC": (_flip_crc(packed_png([[0, 1]], 1, 3, palette=[[0, 0, 0], [9, 9, 9]]), b"PLTE"),
                 "PLTE chunk fails its CRC check"),
    "unknown critical": (image_png(GREY, 8, 0, before=[(b"CRIT", b"")]), "unknown critical chunk"),
    "rows missing": (image_png(GREY, 8, 0, data=zlib.compress(scanlines(GREY[:2], 8, 0))),
                     "image data ends early"),
    "stream cut": (image_png(GREY, 8, 0, data=zlib.compress(scanlines(GREY, 8, 0))[:-4]),
                   "does not end"),
    "not zlib": (image_png(GREY, 8, 0, data=b"not zlib at all"), "not a valid zlib stream"),
    "bad Adler-32": (image_png(GREY, 8, 0, data=zlib.compress(scanlines(GREY, 8, 0))[:-1] + b"?"),
                     "checksum is wrong"),
    "filter 5": (image_png(GREY, 8, 0, data=zlib.compress(b"\5" + scanlines(GREY, 8, 0)[1:])),
                 "unknown row filter type 5"),
    "no IEND": (CLEAN[:-12], "ends before IEND"),
    "no IDAT": (build([ihdr(4, 3, 8, 0), (b"IEND", b"")]), "no IDAT"),
    "bad IHDR": (build([ihdr(4, 3, 3, 0), (b"IEND", b"")]), "bit depth 3"),
    "no PLTE": (build([ihdr(2, 1, 1, 3), (b"IDAT", zlib.compress(b"\0\0")), (b"IEND", b"")]),
                "without a PLTE"),
}


@pytest.mark.parametrize("name", FATAL)
@pytest.mark.parametrize("strict", [False, True])
def test_real_damage_is_refused_in_both_modes(name, strict, decoding):
    data, message = FATAL[name]
    with pytest.raises(FormatError, match=message):
        pngread.read_png(data, strict=strict)


def test_palette_longer_than_the_bit_depth_is_cut_like_libpng():
    data = packed_png([[0, 1, 1]], 1, 3, palette=[[0, 0, 0], [9, 9, 9], [5, 5, 5]])
    image = pngread.read_png(data)
    assert image.pixels.tolist() == [[[0, 0, 0], [9, 9, 9], [9, 9, 9]]]
    assert "3 palette entries at bit depth 1" in image.problems[0]
    with pytest.raises(FormatError, match="3 palette entries at bit depth 1"):
        pngread.read_png(data, strict=True)


def _actl(frames):
    return (b"acTL", struct.pack(">II", frames, 0))


def _fctl(seq, width=4, height=3):
    return (b"fcTL", struct.pack(">IIIIIHHBB", seq, width, height, 0, 0, 1, 10, 0, 0))


def test_valid_animation_reports_its_frames_and_decodes_the_still_image():
    second = (b"fdAT", struct.pack(">I", 2) + zlib.compress(scanlines(GREY, 8, 0)))
    data = image_png(GREY, 8, 0, before=[_actl(2), _fctl(0)], after=[_fctl(1), second])
    image = pngread.read_png(data, strict=True)
    assert image.frames == 2 and image.problems == ()


@pytest.mark.parametrize("chunks, reason", [
    ([_actl(3), _fctl(0)], "announces 3 frames"),
    ([_actl(1), _fctl(1)], "out of sequence"),
    ([_actl(1), _fctl(0, width=9)], "outside the image"),
    ([_fctl(0)], "without acTL"),
])
def test_broken_animation_leaves_the_still_image(chunks, reason):
    data = image_png(GREY, 8, 0, before=chunks)
    image = pngread.read_png(data)
    assert image.frames == 1 and reason in image.problems[0]
    np.testing.assert_array_equal(image.pixels, pngread.read_png(CLEAN).pixels)
    with pytest.raises(FormatError, match=reason):
        pngread.read_png(data, strict=True)


def test_exif_only_before_the_image_data():
    exif = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0"
    early = pngread.read_png(image_png(GREY, 8, 0, before=[(b"eXIf", exif)]), strict=True)
    assert early.exif == exif
    late = pngread.read_png(image_png(GREY, 8, 0, after=[(b"eXIf", exif)]))
    assert late.exif is None


def test_damaged_ancillary_chunks_are_not_handed_on():
    data = _flip_crc(image_png(GREY, 8, 0, before=[(b"iCCP", b"p\0\0" + zlib.compress(b"x"))]),
                     b"iCCP")
    assert pngread.read_png(data).ancillary == ()
    good = image_png(GREY, 8, 0, before=[(b"sRGB", b"\0")])
    assert pngread.read_png(good).ancillary == ((b"sRGB", b"\0"),)


def test_large_image_data_is_inflated_ahead_with_the_same_pixels(monkeypatch):
    # 1.2 MP of RGBA: 4.9 MB of image data, over the size inflated ahead.
    photo = synthetic_photo()
    alpha = (np.arange(photo.shape[1]) % 251).astype(np.uint8)
    rgba = np.dstack([photo, np.broadcast_to(alpha, photo.shape[:2])])
    out = io.BytesIO()
    Image.fromarray(rgba).save(out, format="PNG")
    data = out.getvalue()
    calls = []
    read_ahead = pngread._read_ahead
    monkeypatch.setattr(pngread, "_read_ahead",
                        lambda items, depth: calls.append(depth) or read_ahead(items, depth))
    ahead = pngread.read_png(data, strict=True).pixels
    assert calls == [pngread._AHEAD]
    np.testing.assert_array_equal(ahead, rgba)
    monkeypatch.setattr(pngread, "_AHEAD_FROM", len(rgba.tobytes()) * 2)
    np.testing.assert_array_equal(pngread.read_png(data, strict=True).pixels, ahead)
    assert calls == [pngread._AHEAD]
    # Damage half-way through, met by the inflating thread or by the unfiltering one.
    stream = zlib.decompress(b"".join(body for kind, body in chunks_of(data) if kind == b"IDAT"))
    row = 4 * rgba.shape[1] + 1
    bad_filter = bytearray(stream)
    bad_filter[700 * row] = 7
    for damaged, message in ((zlib.compress(stream)[: len(stream) // 40], "image data ends early"),
                             (zlib.compress(bytes(bad_filter)), "unknown row filter type 7")):
        with pytest.raises(FormatError, match=message):
            pngread.read_png(build([chunks_of(data)[0], (b"IDAT", damaged), (b"IEND", b"")]))
        assert not [t for t in threading.enumerate() if t.name == "kqcodec-inflate"]


def test_ctrl_c_while_the_inflating_thread_starts_stops_it(monkeypatch):
    # The interrupt lands once the thread runs, inside Thread.start's wait for it.
    class Interrupted(threading.Thread):
        def start(self):
            super().start()
            raise KeyboardInterrupt

    monkeypatch.setattr(pngread, "_BLOCK", 1)
    monkeypatch.setattr(pngread, "_AHEAD_FROM", 0)
    monkeypatch.setattr(pngread.threading, "Thread", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        pngread.read_png(image_png(np.arange(600).reshape(20, 30, 1) % 251, 8, 0))
    assert not [t for t in threading.enumerate() if t.name == "kqcodec-inflate"]
