"""The strict PNG reader, the palette PNG writer and its byte layout choices."""

import io
import struct
import time
import tracemalloc
import zlib

import deflate
import numpy as np
import png
import pytest
from PIL import Image

import kqcodec
from kqcodec import layout, pngfile, pngread, quantizer
from kqcodec.errors import FormatError, UsageError

from .conftest import ihdr, synthetic_photo
from .test_kernels import reference_filter


def build(chunks):
    """PNG bytes from (type, data) chunks, CRCs computed by pypng."""
    out = io.BytesIO()
    png.write_chunks(out, chunks)
    return out.getvalue()


def palette_png(indices, palette, trns=None, *, depth=8, rows=None, extra=()):
    """A palette PNG from raw parts; `rows` overrides the scanlines."""
    height, width = indices.shape
    if rows is None:
        packed = layout.pack_rows(indices.astype(np.uint8), depth)
        rows = np.hstack([np.zeros((height, 1), np.uint8), packed]).tobytes()
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, 3, 0, 0, 0)),
              (b"PLTE", bytes(np.asarray(palette, np.uint8).ravel()))]
    if trns is not None:
        chunks.append((b"tRNS", bytes(trns)))
    chunks += list(extra) + [(b"IDAT", zlib.compress(rows)), (b"IEND", b"")]
    return build(chunks)


GOOD_INDICES = np.array([[0, 1, 2], [2, 1, 0]])
GOOD_PALETTE = [[255, 0, 0], [0, 255, 0], [0, 0, 255]]


def test_good_file_is_accepted():
    header = pngread.inspect_png(palette_png(GOOD_INDICES, GOOD_PALETTE))
    assert (header.width, header.height, header.bit_depth, header.color_type) == (3, 2, 8, 3)
    assert header.palette.tolist() == GOOD_PALETTE


def corrupt(data, fix):
    return fix(bytearray(data))


def flip(data, offset):
    data = bytearray(data)
    data[offset] ^= 0xFF
    return bytes(data)


GOOD = palette_png(GOOD_INDICES, GOOD_PALETTE)


@pytest.mark.parametrize("name, data, message", [
    ("signature only", GOOD[:8], "truncated"),
    ("truncated at 13", GOOD[:13], "corrupt PNG"),
    ("bad signature", b"\x89PNG\r\n\x1b\n" + GOOD[8:], "not a PNG"),
    ("IHDR CRC", flip(GOOD, 8 + 8 + 13), "IHDR chunk fails its CRC"),
    ("IDAT CRC", flip(GOOD, len(GOOD) - 12 - 4), "IDAT chunk fails its CRC"),
    ("no IEND", GOOD[:-12], "ends before IEND"),
])
def test_damaged_files_are_refused(name, data, message):
    with pytest.raises(FormatError, match=message):
        pngread.inspect_png(data)


def header(width=3, height=2, depth=8, ctype=3, interlace=0):
    return (b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, interlace))


def rows_for(height, nbytes, filt=0):
    return (bytes([filt]) + bytes(nbytes)) * height


@pytest.mark.parametrize("chunks, message", [
    ([header(), (b"IDAT", zlib.compress(rows_for(2, 3))), (b"IEND", b"")], "without a PLTE"),
    ([header(), (b"PLTE", bytes(4)), (b"IDAT", zlib.compress(rows_for(2, 3))), (b"IEND", b"")],
     "not 1 to 256"),
    ([header(depth=1), (b"PLTE", bytes(9)), (b"IDAT", zlib.compress(rows_for(2, 1))), (b"IEND", b"")],
     "3 palette entries at bit depth 1"),
    ([header(), (b"PLTE", bytes(6)), (b"tRNS", bytes(3)), (b"IDAT", zlib.compress(rows_for(2, 3))),
      (b"IEND", b"")], "tRNS of 3 entries for a 2-entry palette"),
    ([header(), (b"PLTE", bytes(6)), (b"tRNS", bytes(1)), (b"tRNS", bytes(1)),
      (b"IDAT", zlib.compress(rows_for(2, 3))), (b"IEND", b"")], "more than one tRNS"),
    ([header(), (b"PLTE", bytes(6)), (b"IDAT", zlib.compress(rows_for(1, 3))), (b"IEND", b"")],
     "too little image data|ends early"),
    ([header(), (b"PLTE", bytes(6)), (b"IDAT", zlib.compress(rows_for(3, 3))), (b"IEND", b"")],
     "more image data"),
    ([header(), (b"PLTE", bytes(6)), (b"IDAT", zlib.compress(rows_for(2, 3))[:-6]), (b"IEND", b"")],
     "ends early|truncated|zlib"),
    ([header(), (b"PLTE", bytes(6)), (b"IDAT", b"not zlib at all"), (b"IEND", b"")], "zlib"),
    ([header(), (b"PLTE", bytes(6)), (b"IDAT", zlib.compress(rows_for(2, 3, filt=7))), (b"IEND", b"")],
     "filter type 7"),
    ([header(), (b"PLTE", bytes(6)), (b"CRIT", b""), (b"IDAT", zlib.compress(rows_for(2, 3))),
      (b"IEND", b"")], "unknown critical chunk CRIT"),
    ([header(), (b"PLTE", bytes(6)), (b"IDAT", zlib.compress(rows_for(2, 3))[:5]), (b"tEXt", b"a\0b"),
      (b"IDAT", zlib.compress(rows_for(2, 3))[5:]), (b"IEND", b"")], "IDAT must be consecutive"),
    ([header(ctype=0), (b"PLTE", bytes(6)), (b"IDAT", zlib.compress(rows_for(2, 3))), (b"IEND", b"")],
     "PLTE in a greyscale"),
    ([header(depth=16), (b"PLTE", bytes(6)), (b"IDAT", zlib.compress(rows_for(2, 6))), (b"IEND", b"")],
     "bit depth 16 with color type 3"),
    ([header(width=0), (b"PLTE", bytes(6)), (b"IDAT", zlib.compress(b"")), (b"IEND", b"")],
     "size 0x2"),
    ([(b"PLTE", bytes(6)), header(), (b"IDAT", zlib.compress(rows_for(2, 3))), (b"IEND", b"")],
     "first chunk is PLTE"),
])
def test_structural_errors(chunks, message):
    with pytest.raises(FormatError, match=message):
        pngread.inspect_png(build(chunks))


def test_index_past_palette_is_black_or_refused_when_strict(tmp_path):
    path = tmp_path / "bad.png"
    path.write_bytes(palette_png(np.array([[0, 1, 5]]), [[0, 0, 0], [9, 9, 9]]))
    assert Image.open(path).convert("RGB")  # Pillow accepts it
    with pytest.raises(FormatError, match="index 5 is past the 2-entry palette"):
        kqcodec.decode(path, strict=True)
    with pytest.warns(UserWarning, match="index 5 is past the 2-entry palette"):
        assert kqcodec.decode(path).tolist() == [[[0, 0, 0], [9, 9, 9], [0, 0, 0]]]


def test_header_bomb_refused_fast_and_small():
    data = build([header(width=2**31 - 1, height=2**31 - 1), (b"PLTE", bytes(6)),
                  (b"IDAT", zlib.compress(b"\0")), (b"IEND", b"")])
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(FormatError, match="over the limit"):
        pngread.inspect_png(data)
    assert time.perf_counter() - start < 0.5
    assert tracemalloc.get_traced_memory()[1] < 10 * 2**20
    tracemalloc.stop()


def test_zlib_bomb_refused_fast_and_small():
    # 1x1 image whose IDAT inflates to 200 MB of zeros.
    bomb = zlib.compress(bytes(200 * 2**20), 9)
    data = build([header(width=1, height=1), (b"PLTE", bytes(3)), (b"IDAT", bomb), (b"IEND", b"")])
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(FormatError, match="more image data"):
        pngread.inspect_png(data)
    assert time.perf_counter() - start < 0.5
    assert tracemalloc.get_traced_memory()[1] < 10 * 2**20 + 2 * len(data)
    tracemalloc.stop()


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_pillow_written_palette_pngs_decode(tmp_path, pictures, bits):
    rgb = Image.open(pictures["sklearn_china"]).convert("RGB").crop((100, 100, 181, 147))
    img = rgb.quantize(2**bits)
    path = tmp_path / f"p{bits}.png"
    img.save(path, bits=bits)
    assert ihdr(path)[2:4] == (bits, 3)
    np.testing.assert_array_equal(kqcodec.decode(path), np.asarray(Image.open(path).convert("RGB")))
    back = kqcodec.read_palette_png(path)
    np.testing.assert_array_equal(back.indices, np.asarray(img))


def test_interlaced_palette_png_with_trns_from_pypng(tmp_path):
    rng = np.random.default_rng(5)
    indices = rng.integers(0, 5, (13, 11))
    palette = [(10, 20, 30, 0), (200, 10, 10, 128), (0, 0, 0, 255), (9, 99, 199, 255), (1, 2, 3, 255)]
    path = tmp_path / "i.png"
    with open(path, "wb") as f:
        png.Writer(11, 13, palette=palette, bitdepth=4, interlace=True).write(f, indices.tolist())
    assert ihdr(path)[4] == 1
    decoded = kqcodec.decode(path)
    np.testing.assert_array_equal(decoded, np.array(palette, np.uint8)[indices])


def test_writer_refuses_out_of_range_indices():
    with pytest.raises(UsageError, match="out of range"):
        pngfile.write_palette_png(io.BytesIO(), np.array([[0, 3]], np.uint8), np.zeros((3, 3), np.uint8))
    with pytest.raises(UsageError):
        pngfile.write_palette_png(io.BytesIO(), np.zeros((2, 2), np.uint8), np.zeros((0, 3), np.uint8))


@pytest.mark.parametrize("kind", range(5))
def test_each_filter_decodes_back(tmp_path, coffee, kind):
    image = quantizer.quantize(coffee[:40, :50], 64)
    packed = layout.pack_rows(image.indices, 8)
    rows = layout._scanlines(reference_filter(packed, kind), kind).tobytes()
    path = tmp_path / "f.png"
    path.write_bytes(palette_png(image.indices, image.palette, rows=rows))
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image.indices)
    np.testing.assert_array_equal(kqcodec.decode(path), image.to_pixels())


def test_adjacency_order_is_a_permutation_keeping_transparent_first(present):
    image = quantizer.quantize(present, 32)
    first = int((image.palette[:, 3] < 255).sum())
    order = layout.adjacency_order(image.indices, len(image.palette), first=first)
    assert sorted(order.tolist()) == list(range(len(image.palette)))
    assert order[:first].tolist() == list(range(first))


def idat(data):
    """The zlib stream of a PNG file, its IDAT chunks joined."""
    return b"".join(body for kind, body in png.Reader(bytes=data).chunks() if kind == b"IDAT")


def ranking_rows(height):
    """The rows that rank layouts at speed 4: a sixth of them, in four bands spread evenly."""
    per = height // 6 // 4
    return np.concatenate([int(j * (height - per) / 3) + np.arange(per) for j in range(4)])


def best_on_sample(layouts, candidates, level):
    """The candidate whose ranking rows compress smallest at `level` (ties: the lower number)."""
    rows = ranking_rows(layouts[0][2].shape[0])
    sizes = {i: len(deflate.zlib_compress(layouts[i][2][rows], level)) for i in candidates}
    return min(candidates, key=lambda i: (sizes[i], i))


@pytest.mark.parametrize("k", [4, 16])
def test_small_palette_keeps_the_smallest_layout(coffee, k):
    """Up to 16 entries: the smallest candidate at the final level, maybe one byte per index."""
    image = quantizer.quantize(coffee[:200, :300], k)
    data = image.to_png()
    level = layout.final_level(200 * (300 * layout.bit_depth_for(k) // 8 + 1), 1.0, 4)
    sizes = {}
    for order, depth, rows in layout._layouts(image.indices, image.palette, False):
        sizes.setdefault(depth, []).append(len(deflate.zlib_compress(rows.tobytes(), level)))
    assert set(sizes) == {layout.bit_depth_for(k), 8}
    assert len(idat(data)) == min(min(v) for v in sizes.values())
    header = pngread.inspect_png(data)
    assert header.bit_depth == min(sizes, key=lambda depth: min(sizes[depth]))
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(back, image.to_pixels())


@pytest.mark.parametrize("k", [16, 64, 256])
@pytest.mark.parametrize("speed", [3, 4])
@pytest.mark.parametrize("whole", [False, True])
def test_small_data_compresses_the_layouts_the_trial_finds_close(monkeypatch, coffee, k, speed,
                                                                 whole):
    """Small data: every layout at the final level up to speed 3; at speed 4 those within the
    margin, ranked first at that level on four bands of a sixth of the rows when one holds 128 KB."""
    image = quantizer.quantize(coffee if whole else coffee[:200, :300], k)
    layouts = layout._layouts(image.indices, image.palette, False)
    trials = [len(deflate.zlib_compress(rows, layout._TRIAL_LEVEL)) for _, _, rows in layouts]
    level = layout.final_level(layouts[0][2].nbytes, 1.0, speed)
    assert level == layout.final_level(layouts[0][2].nbytes, layout._FLAT_RATIO, speed)
    near = [i for i, trial in enumerate(trials) if trial <= (1 + layout._TRIAL_MARGIN) * min(trials)]
    expected = list(range(len(layouts))) if speed <= 3 else near
    finals = {i: deflate.zlib_compress(layouts[i][2], level) for i in range(len(layouts))}
    ranked = (speed == 4 and len(expected) > 1
              and max(layouts[i][2].nbytes for i in expected) >= 128 << 10)
    # The quarter picture's layouts are 30 to 60 KB: never ranked.
    assert not ranked or whole
    if ranked:
        best = best_on_sample(layouts, expected, level)
    calls = []
    real = layout.compress
    monkeypatch.setattr(layout, "compress", lambda data, at: calls.append(at) or real(data, at))
    data = image.to_png(speed=speed)
    if ranked:
        assert calls.count(level) == len(expected) + 1
        assert idat(data) == finals[best]
    else:
        assert calls.count(level) == len(expected)
        assert idat(data) == min((finals[i] for i in expected), key=len)
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(back, image.to_pixels())


@pytest.mark.parametrize("height", [24, 25, 61, 200, 1000])
def test_ranking_rows_are_four_even_bands_of_a_sixth(height):
    rows = layout._band_rows(height, height // 6, 4)
    np.testing.assert_array_equal(rows, ranking_rows(height))
    per = height // 24
    assert len(rows) == 4 * per and rows[0] == 0 and rows[-1] == height - 1
    assert np.all(np.diff(rows.reshape(4, per), axis=1) == 1)


@pytest.mark.parametrize("height, ranked", [(23, False), (24, True)])
def test_data_of_few_rows_is_not_ranked(monkeypatch, height, ranked):
    """Below 24 rows four bands of a sixth would be most of the data: every close layout whole."""
    monkeypatch.setattr(layout, "_TRIAL_MARGIN", 100.0)  # every layout is close
    image = quantizer.quantize(synthetic_photo(height, 8000), 8)
    layouts = layout._layouts(image.indices, image.palette, False)
    assert len(layouts) == 3 and layouts[-1][2].nbytes >= 128 << 10
    level = layout.final_level(layouts[0][2].nbytes, 1.0, 4)
    calls = []
    real = layout.compress
    monkeypatch.setattr(layout, "compress", lambda data, at: calls.append(at) or real(data, at))
    data = image.to_png()
    assert calls.count(level) == (4 if ranked else 3)
    assert len(idat(data)) <= max(len(deflate.zlib_compress(rows, level)) for _, _, rows in layouts)


@pytest.mark.parametrize("shape", [(960, 1280), (480, 640)])
@pytest.mark.parametrize("k", [2, 4])
def test_a_large_one_byte_layout_of_1_or_2_bit_data_must_earn_its_compression(monkeypatch, shape, k):
    """Its trial decides from 512 KB on (4 or 8 times the packed bytes); below, it is always tried.

    Tried means ranked with the others on a sample at the final level (the
    largest layout holds 128 KB or more), the best alone compressed whole.
    """
    image = quantizer.quantize(synthetic_photo(*shape), k)
    layouts = layout._layouts(image.indices, image.palette, False)
    packed, one_byte = layouts[0][2].nbytes, layouts[-1][2].nbytes
    assert layouts[-1][1] == 8 and packed < layout._MEDIUM_FROM
    sampled = layout._trial_rows(len(layouts[0][2]), layouts[-1][2].shape[1])
    trials = [len(deflate.zlib_compress(rows[sampled], layout._TRIAL_LEVEL)) for _, _, rows in layouts]
    # On this picture the trial rates the one-byte layout far behind the
    # packed one, as on photos: only its size decides.
    assert trials[-1] > (1 + layout._TRIAL_MARGIN) * min(trials)
    tried = one_byte < layout._MEDIUM_FROM
    level = layout.final_level(packed, 1.0, 4)
    calls = []
    real = layout.compress
    monkeypatch.setattr(layout, "compress",
                        lambda data, at: calls.append((at, memoryview(data).nbytes)) or real(data, at))
    data = image.to_png()
    candidates = list(range(len(layouts) if tried else len(layouts) - 1))
    assert max(rows.nbytes for _, _, rows in layouts[:len(candidates)]) >= 128 << 10
    best = best_on_sample(layouts, candidates, level)
    sample = len(ranking_rows(len(layouts[0][2])))
    finals = [nbytes for at, nbytes in calls if at == level]
    samples = [sample * layouts[i][2].shape[1] for i in candidates] if len(candidates) > 1 else []
    assert sorted(finals) == sorted(samples + [layouts[best][2].nbytes])
    assert idat(data) == deflate.zlib_compress(layouts[best][2], level)
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(back, image.to_pixels())


def test_one_byte_per_index_where_it_compresses_better(present):
    """A flat graphic's 16 entries: whole bytes let deflate find repeats that packing splits."""
    image = quantizer.quantize(present, 16)
    data = image.to_png()
    assert pngread.inspect_png(data).bit_depth == 8
    packed = layout._scanlines(layout.pack_rows(image.indices, 4), 0).tobytes()
    assert len(idat(data)) < len(deflate.zlib_compress(packed, 12))
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
    np.testing.assert_array_equal(back, image.to_pixels())


@pytest.mark.parametrize("level", [1, 10])
@pytest.mark.parametrize("rows", [1, 2, 3, 61, 300])
def test_two_bands_make_one_stream(coffee, rows, level):
    """The bands' streams joined: one zlib stream of all the rows, about as small as one piece."""
    scanlines = layout._scanlines(coffee[:rows].reshape(rows, -1)[:, ::3], 0)
    stream = layout._compress_in_bands(scanlines, level)
    assert zlib.decompress(stream) == scanlines.tobytes()
    whole = deflate.zlib_compress(scanlines, level)
    if rows == 300:
        assert len(stream) <= 1.01 * len(whole)


def test_large_data_in_two_bands_gives_the_same_bytes_on_one_thread(monkeypatch):
    """Two bands on two threads or one after the other: the same stream, the same pixels."""
    monkeypatch.setattr(layout, "_LARGE_FROM", 1 << 20)  # a 1.1 MP picture takes the large path
    monkeypatch.setattr(layout, "_BANDS_FROM", 1 << 20)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:1100, 0:1000]
    indices = ((y // 3 + x // 7 + rng.integers(0, 3, y.shape)) % 200).astype(np.uint8)
    palette = rng.integers(0, 256, (200, 3), dtype=np.uint8)
    two = io.BytesIO()
    pngfile.write_palette_png(two, indices, palette)
    monkeypatch.setattr(layout, "_on_two_threads", lambda jobs: [job() for job in jobs])
    one = io.BytesIO()
    pngfile.write_palette_png(one, indices, palette)
    assert two.getvalue() == one.getvalue()
    back = np.asarray(Image.open(io.BytesIO(two.getvalue())).convert("RGB"))
    np.testing.assert_array_equal(back, palette[indices])


@pytest.mark.parametrize("speed, banded", [(3, False), (4, True)])
def test_medium_data_in_two_bands_above_speed_3(speed, banded):
    """0.5-4 MB of image data: two bands at the default speed, one piece at the slower ones."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:760, 0:900]
    indices = ((y // 5 + x // 11 + rng.integers(0, 4, y.shape)) % 120).astype(np.uint8)
    palette = rng.integers(0, 256, (120, 3), dtype=np.uint8)
    layouts = layout._layouts(indices, palette, False)
    assert layout._MEDIUM_FROM <= layouts[0][2].nbytes < layout._LARGE_FROM
    stream = io.BytesIO()
    pngfile.write_palette_png(stream, indices, palette, speed=speed)
    written = idat(stream.getvalue())
    rows = zlib.decompress(written)
    match = [i for i, (_, _, scanlines) in enumerate(layouts) if scanlines.tobytes() == rows]
    assert match
    scanlines = layouts[match[0]][2]
    final = layout.final_level(scanlines.nbytes, 1.0, speed)  # photo-like data: a trial shrinks it < 10x
    whole = deflate.zlib_compress(scanlines, final)
    if banded:
        assert written == layout._compress_in_bands(scanlines, final)
        assert len(written) <= 1.01 * len(whole)
    else:
        assert written == whole
    back = np.asarray(Image.open(io.BytesIO(stream.getvalue())).convert("RGB"))
    np.testing.assert_array_equal(back, palette[indices])


def test_medium_flat_graphic_gets_the_strongest_level():
    """Flat data of 0.5-4 MB compresses to what libdeflate 12 makes of it (two bands aside)."""
    indices = flat_graphic(700, 1000, 20)
    palette = np.arange(60, dtype=np.uint8).reshape(20, 3) * 4
    stream = io.BytesIO()
    pngfile.write_palette_png(stream, indices, palette)
    data = stream.getvalue()
    layouts = layout._layouts(indices, palette, False)
    best = {level: min(len(deflate.zlib_compress(rows, level)) for _, _, rows in layouts)
            for level in (10, 12)}
    # Level 10 (what this size used to get) makes 4,663 bytes, level 12 3,349.
    assert len(idat(data)) <= best[12] + 64 < best[10]
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(back, palette[indices])


def test_written_layout_beats_plain_zlib(coffee):
    """The layout choices must pay: smaller than filter 0 + zlib level 9, same pixels."""
    image = quantizer.quantize(coffee, 256)
    plain = layout._scanlines(image.indices, 0).tobytes()
    ours = image.to_png()
    assert len(ours) < len(zlib.compress(plain, 9))
    back = Image.open(io.BytesIO(ours))
    np.testing.assert_array_equal(np.asarray(back.convert("RGB")), image.to_pixels())


def test_huge_header_without_a_limit_is_a_format_error(tmp_path):
    data = build([header(width=2**31 - 1, height=2**31 - 1, depth=16, ctype=6),
                  (b"IDAT", zlib.compress(b"\0")), (b"IEND", b"")])
    path = tmp_path / "huge.png"
    path.write_bytes(data)
    with pytest.raises(FormatError):
        kqcodec.decode(path, max_pixels=None)


def test_data_after_the_zlib_stream_is_refused():
    stream = zlib.compress(rows_for(2, 3)) + b"junk"
    with pytest.raises(FormatError, match="after the end"):
        pngread.inspect_png(build([header(), (b"PLTE", bytes(6)), (b"IDAT", stream), (b"IEND", b"")]))


def test_plte_after_trns_is_refused_for_rgb():
    chunks = [header(ctype=2), (b"tRNS", bytes(6)), (b"PLTE", bytes(6)),
              (b"IDAT", zlib.compress(rows_for(2, 9))), (b"IEND", b"")]
    with pytest.raises(FormatError, match="PLTE after tRNS"):
        pngread.inspect_png(build(chunks))


@pytest.mark.parametrize("indices", [np.array([[0, -1]]), np.array([[0.0, 0.7]])])
def test_writer_refuses_negative_or_float_indices(indices):
    with pytest.raises(UsageError):
        pngfile.write_palette_png(io.BytesIO(), indices, np.zeros((3, 3), np.uint8))


def flat_graphic(height, width, entries):
    """Indices of a flat illustration: bands, rectangles and a diagonal edge, long runs."""
    y, x = np.mgrid[0:height, 0:width]
    indices = (y // 97 + x // 131) % entries
    indices[(x + 2 * y) % 701 < 40] = entries - 1
    indices[height // 4 : height // 2, width // 5 : width // 2] = 3
    return indices.astype(np.uint8)


def test_large_flat_graphic_compresses_like_a_strong_level(monkeypatch):
    """Large image data gets a fast level if it is a photo's, not if it is flat."""
    # The threshold lowered from 4 MB so that a 1.3 MB picture takes that path.
    monkeypatch.setattr(layout, "_LARGE_FROM", 1 << 20)
    indices = flat_graphic(1024, 1300, 20)  # 8-bit
    palette = np.arange(60, dtype=np.uint8).reshape(20, 3) * 4
    plain = layout._scanlines(indices, 0).tobytes()
    assert len(plain) > layout._LARGE_FROM
    stream = io.BytesIO()
    pngfile.write_palette_png(stream, indices, palette)
    data = stream.getvalue()
    # The fast level used to be chosen by size alone, and stayed above this.
    assert len(data) < len(deflate.zlib_compress(plain, 9))
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(back, palette[indices])


def test_a_plan_that_cannot_be_the_picture_s_is_refused():
    # With keep_order the plan's palette order replaced the one given; a
    # plan of a larger palette failed with an IndexError.
    rng = np.random.default_rng(4)
    palette = rng.integers(0, 256, (40, 3), np.uint8)
    image = kqcodec.PaletteImage(palette, np.sort(rng.integers(0, 40, (60, 60)), axis=1)
                                 .astype(np.uint8))
    plan = image.estimated_png_size().plan
    assert image.to_png(plan=plan) == image.to_png()
    assert palette.tobytes() in image.to_png(keep_order=True)
    with pytest.raises(UsageError, match="keep_order"):
        image.to_png(keep_order=True, plan=plan)
    small = kqcodec.PaletteImage(palette[:3], np.zeros((60, 60), np.uint8))
    for wrong in (plan, (13, (0,), None), (10, (), None), (10, (5,), None), "plan"):
        with pytest.raises(UsageError, match="plan"):
            small.to_png(plan=wrong)
    kept = pngfile.estimated_size(image.indices, image.palette, keep_order=True).plan
    assert image.to_png(keep_order=True, plan=kept) == image.to_png(keep_order=True)
