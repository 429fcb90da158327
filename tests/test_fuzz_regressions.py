"""Inputs found by fuzzing the readers (see tests/fuzz/README.md), kept as regressions.

The contract: any bytes read as a picture give a uint8 (H, W, 3|4) array or
raise FormatError, quickly and in bounded memory.  Each input is embedded as
it was minimised; the comment says what it broke.
"""

import base64
import re
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from kqcodec import imageio, pngread, quantizer
from kqcodec.errors import FormatError

# A 1x1 8-bit grey TIFF whose IFD points to a second IFD that has no entries
# at all; Pillow raises TypeError("Missing dimensions") when asked n_frames.
TIFF_EMPTY_SECOND_IFD = bytes.fromhex(
    "49492a00080000000600000103000100000001000000010103000100000001000000"
    "020103000100000008000000060103000100000001000000110104000100000056000000"
    "170104000100000001000000580000008000000000000000"
)

# The same, the second IFD with PhotometricInterpretation 77: Pillow raises
# SyntaxError("unknown pixel mode") from n_frames.
TIFF_BAD_SECOND_IFD = bytes.fromhex(
    "49492a00080000000600000103000100000001000000010103000100000001000000"
    "020103000100000008000000060103000100000001000000110104000100000056000000"
    "170104000100000001000000580000008000060000010300010000000100000001010300"
    "010000000100000002010300010000000800000006010300010000004d00000011010400"
    "010000005600000017010400010000000100000000000000"
)

# A 1x1 GIF cut just after a second image separator ','; Pillow raises
# struct.error from n_frames.
GIF_CUT_AFTER_SEPARATOR = bytes.fromhex(
    "4749463839610100010000000021f90400000000002c0000000001000100000202440100"
    "2c"
)

# The same cut after the second image descriptor, before its LZW code size:
# Pillow raises IndexError from n_frames.
GIF_CUT_AFTER_DESCRIPTOR = bytes.fromhex(
    "4749463839610100010000000021f90400000000002c0000000001000100000202440100"
    "2c000000000000000000"
)

# 37 bytes: a 1x1 GIF whose only frame is 65535x65535 with disposal method 2.
# Pillow fills a 65535x65535 "dispose" image while opening it (4.3 GB, 17 s),
# because read_image sets Image.MAX_IMAGE_PIXELS to None around Image.open;
# only afterwards does kqcodec's own limit refuse the 4.3 Gpx size.
GIF_DISPOSE_BOMB = bytes.fromhex(
    "4749463839610100010000000021f90408000000002c00000000ffffffff000202440100"
    "3b"
)

# 10,988 bytes (zlib-compressed here): a valid 9459x9459 1-bit palette PNG
# (89.47 Mpx, just under the default limit) with tRNS, all pixels index 0.
# read_image returns a 358 MB RGBA array.  The IHDR cap bounds pixels, not
# memory per input byte (about 50,000:1 here).
PNG_89MPX_1BIT_PALETTE = zlib.decompress(base64.b64decode(
    "eNrt2DFqAlEQxvF5aIIoa/pUKaw8QGqV3dUFWZZVKyFY2NhYWdi5aGVjLOxTxU49g5dQV/AGmiZ1"
    "XN+7Q6rl/4Nh3puBOcA3D/y6lX/Ni4jlNexQpPRrSmX0pP/ZWuv2HDTbju5JknzHXxf9UqPQb0Wb"
    "j64rUl55drU9Pl/3SulVtLzvfnLmHgAAAAAASLUonmVMGCBvydENOgAAAAAAIO0GL8WGyQKyf5PL"
    "ovJEOgIAAID/Ni7cDqLWp/eh+XmOb29rvekDVk96Gw=="
))

# 174,013 bytes (zlib-compressed here): a valid 8-bit grey PNG of 1 x 89,478,485
# pixels, exactly the default limit.  Decoded to a 268 MB RGB array, it peaked
# at 1.23 GB when Pillow decoded it (a row pointer per row, the image data
# inflated twice); kqcodec's reader must stay under 2.5 times the result.
PNG_89MPX_GREY_COLUMN = zlib.decompress(base64.b64decode(
    "eNrt3DsuRGEYx+EzjETIuBQaGsvQEGRcRiEipkap0OtGXAqRiD0odKayAJ0duCQSCxCFQuU2M3vQ"
    "nP/zNN85JznNW7758jvbWF+pDU0OFUVRa6zWNztnZaDZbA52Horzl3aj6Ls+adQXtg6e3+4qlc7H"
    "w8uf9vtg9wcAAACg1A6fjvu7y4Bi+vdheaMJAAAAlN3u6Ei1txT42p5aMA4AAAAovdPZmbHeDYGP"
    "1n7VOAAAAKD0Jj5f53u7gPvf2/Et8wAAAIDSexQMAAAAgCiCAQAAAJBFMAAAAACyCAYAAABAGMEA"
    "AAAAyCIYAAAAAFkEAwAAACCLYAAAAACEEQwAAACALIIBAAAAkEUwAAAAALIIBgAAAEAYwQAAAADI"
    "IhgAAAAAWQQDAAAAIItgAAAAAIQRDAAAAIAsggEAAACQRTAAAAAAsggGAAAAQBjBAAAAAMgiGAAA"
    "AABZBAMAAAAgi2AAAAAAhBEMAAAAgCyCAQAAAJBFMAAAAACyCAYAAABAGMEAAAAAyCIYAAAAAFkE"
    "AwAAACCLYAAAAACEEQwAAACALIIBAAAAkEUwAAAAALIIBgAAAEAYwQAAAADIsjc6strdBVS/Wy8X"
    "8wMFAP9srm+tXVRur6rD3bfG0nr9ZnHn6A9DkX6W"
))

# 29 bytes: a GIF with a 65535x1365 screen (89.46 Mpx, under the limit) and
# one 1x1 frame; the rest is background.  read_image returns a 268 MB RGB array
# after peaking at 0.9 GB (1.4 s).  The fuzzer found a 127-byte variant.
GIF_89MPX_SCREEN = bytes.fromhex("474946383961ffff55050000002c00000000010001000002024401003b")

# 99 bytes: an 8-bit grey TIFF of 1x4 pixels whose one strip (RowsPerStrip 1)
# holds only the first row; the StripOffsets for rows 2-4 are missing.  Pillow
# decodes the strip it has and leaves the other rows zero: read_image returns
# (4, 1, 3) without any error although the file is truncated.
TIFF_STRIPS_SHORT = bytes.fromhex(
    "49492a0008000000070000010400010000000100000001010400010000000400000002010300"
    "01000000080000000601030001000000010000001101040001000000620000001601040001000000"
    "010000001701040001000000010000000000000000"
)

# The same 99 bytes with ImageLength 89,478,485 (the default limit): read_image
# returns an (89478485, 1, 3) array of zeros after 4 s and a 2.1-2.3 GB peak
# (Pillow keeps a pointer per row, and the picture is converted twice).
TIFF_STRIPS_SHORT_TALL = bytes.fromhex(
    "49492a0008000000070000010400010000000100000001010400010000005555550502010300"
    "01000000080000000601030001000000010000001101040001000000620000001601040001000000"
    "010000001701040001000000010000000000000000"
)


@pytest.mark.parametrize("data", [
    pytest.param(TIFF_EMPTY_SECOND_IFD, id="tiff-empty-second-ifd"),
    pytest.param(TIFF_BAD_SECOND_IFD, id="tiff-bad-second-ifd"),
    pytest.param(GIF_CUT_AFTER_SEPARATOR, id="gif-cut-after-separator"),
    pytest.param(GIF_CUT_AFTER_DESCRIPTOR, id="gif-cut-after-descriptor"),
])
def test_broken_later_frame_is_a_format_error(tmp_path, data):
    # The first frame alone is fine: counting frames must not leak Pillow's errors.
    path = tmp_path / "picture"
    path.write_bytes(data)
    with pytest.raises(FormatError):
        imageio.read_image(path)


_LIMITED_READ = r"""
import resource, sys, time, warnings
warnings.simplefilter("ignore")
from kqcodec import imageio
from kqcodec.errors import FormatError
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:"))
limit = vm * 1024 + int(sys.argv[2]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
start = time.perf_counter()
try:
    outcome = "OK %r" % (imageio.read_image(sys.argv[1]).shape,)
except FormatError as exc:
    outcome = "FormatError " + str(exc)
except BaseException as exc:
    outcome = type(exc).__name__ + " " + str(exc)
print("%.3f %s" % (time.perf_counter() - start, outcome))
"""


def _read_with_budget(tmp_path, data, megabytes):
    """read_image in a child whose address space may grow by only `megabytes`."""
    path = tmp_path / "picture"
    path.write_bytes(data)
    proc = subprocess.run([sys.executable, "-c", _LIMITED_READ, str(path), str(megabytes)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seconds, outcome = proc.stdout.strip().split(" ", 1)
    return float(seconds), outcome


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and RLIMIT_AS")
@pytest.mark.parametrize("data", [
    pytest.param(GIF_DISPOSE_BOMB, id="gif-dispose-bomb-37-bytes"),
    pytest.param(TIFF_STRIPS_SHORT_TALL, id="tiff-1x89mpx-one-strip-99-bytes"),
])
def test_small_input_is_refused_fast_and_in_bounded_memory(tmp_path, data):
    seconds, outcome = _read_with_budget(tmp_path, data, 256)
    assert outcome.startswith("FormatError"), outcome
    assert seconds < 2.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and RLIMIT_AS")
@pytest.mark.parametrize("data, shape", [
    pytest.param(PNG_89MPX_1BIT_PALETTE, (9459, 9459, 4), id="png-89mpx-1bit-11-kb"),
    pytest.param(GIF_89MPX_SCREEN, (1365, 65535, 3), id="gif-89mpx-screen-29-bytes"),
])
def test_valid_picture_under_the_limit_costs_memory_in_proportion(tmp_path, data, shape):
    # kqcodec's bound is the pixel limit, not the file size: these tiny files
    # are valid pictures of 89 million pixels, just under the default limit.
    # They decode, within about twice the size of the result (268-358 MB)...
    seconds, outcome = _read_with_budget(tmp_path, data, 800)
    assert outcome == f"OK {shape!r}"
    # ...and a lower --max-pixels refuses them at once.
    path = tmp_path / "picture"
    start = time.perf_counter()
    with pytest.raises(FormatError, match="over the limit"):
        imageio.read_image(path, max_pixels=10**6)
    assert time.perf_counter() - start < 0.5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and RLIMIT_AS")
def test_png_at_the_pixel_limit_reads_within_two_and_a_half_times_its_result(tmp_path):
    result_mb = 89478485 * 3 / 2**20
    seconds, outcome = _read_with_budget(tmp_path, PNG_89MPX_GREY_COLUMN, int(2.5 * result_mb))
    assert outcome == "OK (89478485, 1, 3)"


def test_tiff_whose_strips_do_not_cover_the_image_is_a_format_error(tmp_path):
    path = tmp_path / "short.tif"
    path.write_bytes(TIFF_STRIPS_SHORT)
    with pytest.raises(FormatError):
        imageio.read_image(path)


# Inputs from the fuzzer's corpus that reach rare checks; these pass today.

# Both: 32x32 16-bit grey (basn0g16) with a mutated IDAT, CRCs and Adler-32
# recomputed by the harness.
PNG_ZLIB_STREAM_NOT_ENDED = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000200000002010000000000681f96b0000000467"
    "414d41000186a031e8965f0000005e49444154789cd4d2310ac0300c4351395bef7fc6dca093"
    "c0287b32d52a04a3d98f3f3880a7b857131363a03a82601d089900dd82f640ca04e816dc0642"
    "2640b7a03d903201ba05b7819009d02d680fa44c603f6d07ec4ff41939cf7f00164bd8d85f51"
    "6c51d70000000049454e44ae426082"
)
PNG_ROW_FILTER_250 = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000200000002010000000000681f96b0000000467"
    "414d41000186a031e8965f0000005e49444154789cd5d2310ac0300c4351395bef7fc6dca093"
    "c0287b32d52a04a3d98f3f3880a7b857131363a03a82601d089900dd82f640ca04e816dc0642"
    "2640b7a03d903201ba05b7819009d02d680fa44c603f6f07ec4ff41939cf7f00164e51dc3f19"
    "14b7160000000049454e44ae426082"
)


@pytest.mark.parametrize("data, message", [
    pytest.param(PNG_ZLIB_STREAM_NOT_ENDED, "image data stream does not end", id="zlib-not-ended"),
    pytest.param(PNG_ROW_FILTER_250, "unknown row filter type 250", id="row-filter-250"),
])
def test_fuzzed_png_reaches_its_check(tmp_path, data, message):
    with pytest.raises(FormatError, match=message):
        pngread.inspect_png(data)
    path = tmp_path / "fuzzed.png"
    path.write_bytes(data)
    with pytest.raises(FormatError, match=message):
        imageio.read_image(path)


def test_fuzzed_gif_tile_outside_image_is_a_format_error(tmp_path):
    # A 66-byte GIF whose frame lies outside the logical screen: Pillow's
    # "tile cannot extend outside image" comes out as kqcodec's FormatError.
    path = tmp_path / "fuzzed.gif"
    path.write_bytes(bytes.fromhex(
        "4749463839612c001000820000b0d0c0300100b0989c30885cb0487cb010603010205a021020"
        "21010000002c000000001000000000800053b3a33c851ab56840003b"
    ))
    with pytest.raises(FormatError, match=f"^{re.escape(str(path))}: corrupt GIF: its image data "
                                          "cannot be decoded$"):
        imageio.read_image(path)


def test_fuzzed_gif_taller_frame_reads_and_round_trips(tmp_path):
    # A mutated GIF whose 16x16 frame sits in a 16x20 screen with a
    # transparent background: 20 rows of RGBA, and its 4-color palette PNG
    # decodes back to palette[indices].
    path = tmp_path / "fuzzed.gif"
    path.write_bytes(bytes.fromhex(
        "4749463839611000140082005bb0d4c03001000000000000000000000000000000000000"
        "00d4c03001000000000000000000000000000000b0889c407cb0106030483c30102021f9"
        "0401010000002c0000000010001000000863000f081c28b080c18306090e44c850614186"
        "0609083440b1624402183156dc6820a347021c297ef41872c0480202041818c0b2a5c994"
        "3053ba741933e64c96356ddecc991200cb004083f604409468d0a3018a2a058014e852a5"
        "4d933e35da742ad1ffffffffa0c3cfa04883165dba944052a44ca33e851ab56840003b"
    ))
    pixels = imageio.read_image(path)
    assert pixels.dtype == np.uint8 and pixels.shape == (20, 16, 4)
    image = quantizer.quantize(pixels, 4)
    out = tmp_path / "out.png"
    out.write_bytes(image.to_png())
    decoded = imageio.read_image(out)
    expected = image.palette[image.indices]
    if decoded.shape[2] == 3:
        decoded = np.dstack([decoded, np.full(decoded.shape[:2], 255, np.uint8)])
    if expected.shape[2] == 3:
        expected = np.dstack([expected, np.full(expected.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(decoded, expected)


# TIFF strip and tile tags of every TIFF type.  Pillow leaves these tags to
# libtiff for compressed files, so their values reached kqcodec's strip check
# as text, rationals, NaN, infinities or empty lists: 192- and 153-byte files
# made `kqcodec encode` print a TypeError, ValueError or OverflowError
# traceback.

_TIFF_TYPES = {  # type -> (struct code, item size)
    1: "B", 2: "s", 3: "H", 4: "I", 5: "II", 6: "b", 7: "s", 8: "h", 9: "i", 10: "ii",
    11: "f", 12: "d", 16: "Q",
}


def _tiff(entries, strip):
    """A little-endian 2x2 8-bit grey TIFF: one IFD of (tag, type, values), then the strip."""
    import struct

    entries = sorted(entries)
    ifd_size = 2 + 12 * len(entries) + 4
    extra_at = 8 + ifd_size
    extra = b""
    ifd = struct.pack("<H", len(entries))
    for tag, kind, values in entries:
        code = _TIFF_TYPES[kind]
        if code == "s":
            payload, count = bytes(values), len(values)
        else:
            flat = [v for pair in values for v in (pair if isinstance(pair, tuple) else (pair,))]
            payload = struct.pack("<" + code[0] * len(flat), *flat)
            count = len(values)
        if len(payload) <= 4:
            field = payload.ljust(4, b"\0")
        else:
            field = struct.pack("<I", extra_at + len(extra))
            extra += payload + b"\0" * (len(payload) % 2)
        ifd += struct.pack("<HHI", tag, kind, count) + field
    ifd += struct.pack("<I", 0)
    strip_at = extra_at + len(extra)
    head = b"II*\0" + struct.pack("<I", 8)
    return head + ifd + extra + strip, strip_at


def _tiff_with(tag, kind, values, compression):
    strip = zlib.compress(bytes([0, 255, 255, 0])) if compression == 8 else bytes([0, 255, 255, 0])
    base = {256: (3, [2]), 257: (3, [2]), 258: (3, [8]), 259: (3, [compression]), 262: (3, [1]),
            277: (3, [1]), 278: (3, [2]), 273: (4, [0]), 279: (4, [len(strip)])}
    base[tag] = (kind, values)
    for _ in range(2):  # the strip offset depends on the IFD's size
        data, strip_at = _tiff([(t, k, v) for t, (k, v) in base.items()], strip)
        if tag != 273:
            base[273] = (4, [strip_at])
    return data


_BAD_VALUES = [
    (2, b"12\0"), (2, b""), (5, [(1, 3)]), (10, [(-1, 0)]), (11, [float("nan")]),
    (12, [float("inf")]), (12, [-1e300]), (7, b"\xff\xff"), (3, []), (16, [2**64 - 1]),
]


@pytest.mark.parametrize("compression", [1, 8])
@pytest.mark.parametrize("tag", [278, 273, 279])
@pytest.mark.parametrize("kind, values", _BAD_VALUES)
def test_tiff_strip_tags_of_any_type_give_pixels_or_a_format_error(tmp_path, tag, kind, values,
                                                                   compression):
    path = tmp_path / "strip.tif"
    path.write_bytes(_tiff_with(tag, kind, values, compression))
    try:
        pixels = imageio.read_image(path)
    except FormatError as exc:
        assert "\n" not in str(exc)
    else:
        assert pixels.dtype == np.uint8 and pixels.shape[:2] == (2, 2)


def test_crafted_tiff_reads_when_its_tags_are_right(tmp_path):
    for compression in (1, 8):
        path = tmp_path / f"good{compression}.tif"
        path.write_bytes(_tiff_with(278, 3, [2], compression))
        assert imageio.read_image(path)[..., 0].tolist() == [[0, 255], [255, 0]]
