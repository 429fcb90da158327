"""Reading pictures: formats, modes, orientation, frames, limits; writing decoded pixels."""

import gc
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps, JpegImagePlugin

import kqcodec
from kqcodec import imageio, quantizer
from kqcodec.cli import main
from kqcodec.errors import FormatError, InputError, UsageError

from . import pngmake
from .conftest import ihdr, png_chunks


@pytest.fixture(scope="module")
def photo(pictures):
    """A small real photo crop, 48x32 RGB."""
    return np.asarray(Image.open(pictures["skimage_rocket"]).convert("RGB").crop((300, 200, 348, 232)))


@pytest.mark.parametrize("fmt, ext", [("PNG", "png"), ("BMP", "bmp"), ("TIFF", "tif"), ("WEBP", "webp")])
def test_lossless_formats_read_exactly(tmp_path, photo, fmt, ext):
    path = tmp_path / f"p.{ext}"
    options = {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(photo).save(path, format=fmt, **options)
    np.testing.assert_array_equal(imageio.read_image(path), photo)


def test_jpeg_reads_like_pillow(pictures):
    got = imageio.read_image(pictures["sklearn_china"])
    np.testing.assert_array_equal(got, np.asarray(Image.open(pictures["sklearn_china"]).convert("RGB")))


@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied(tmp_path, photo, orientation, suffix):
    # photo is wider than tall: orientations 5 to 8 stand it up (a TIFF's
    # strips were once checked against the turned size, and refused).
    assert photo.shape[1] > photo.shape[0]
    img = Image.fromarray(photo)
    exif = img.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{suffix}"
    img.save(path, exif=exif, **({"quality": 95} if suffix == ".jpg" else {}))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    got = imageio.read_image(path)
    np.testing.assert_array_equal(got, expected)
    assert got.shape[:2] == (photo.shape[:2] if orientation < 5 else photo.shape[1::-1])


def test_cmyk_jpeg_is_converted(tmp_path, photo):
    path = tmp_path / "c.jpg"
    Image.fromarray(photo).convert("CMYK").save(path, quality=95)
    got = imageio.read_image(path)
    assert got.shape == photo.shape
    assert np.abs(got.astype(int) - photo).mean() < 12


def test_animated_gif_uses_first_frame_with_warning(tmp_path, photo):
    frames = [Image.fromarray(photo).quantize(16), Image.fromarray(255 - photo).quantize(16)]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    with pytest.warns(imageio.KqcodecWarning, match="2 frames"):
        got = imageio.read_image(path)
    np.testing.assert_array_equal(got, np.asarray(Image.open(path).convert("RGB")))


def test_reading_a_picture_of_several_frames_leaves_no_file_open(tmp_path, photo):
    frames = [Image.fromarray(photo).quantize(16), Image.fromarray(255 - photo).quantize(16)]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", imageio.KqcodecWarning)
        warnings.simplefilter("always", ResourceWarning)
        imageio.read_image(path)
        gc.collect()  # a file object left open says so as it is collected
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


@pytest.mark.parametrize("formats", ["TIFF", ("PPM",), ("EPS", "PNG"), None])
def test_formats_must_be_a_list_of_input_formats(tmp_path, photo, formats):
    path = tmp_path / "p.ppm"
    Image.fromarray(photo).save(path)
    with pytest.raises(UsageError, match="formats must be"):
        imageio.read_image(path, formats=formats)


def test_animated_gif_warning_is_one_line_on_the_command(tmp_path, photo, capsys):
    frames = [Image.fromarray(photo).quantize(8), Image.fromarray(255 - photo).quantize(8)]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert main(["encode", str(path), str(tmp_path / "o.png"), "-k", "8"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"kqcodec: warning: {path}: GIF has 2 frames; only the first is used"]


def test_gif_transparency_kept(tmp_path, photo):
    img = Image.fromarray(photo).quantize(16)
    path = tmp_path / "t.gif"
    img.save(path, transparency=0)
    got = imageio.read_image(path)
    assert got.shape[2] == 4
    np.testing.assert_array_equal(got[..., 3] == 0, np.asarray(img) == 0)


@pytest.mark.parametrize("size, color", [((1, 1), (10, 20, 30, 255)), ((7, 5), (200, 0, 0, 255)),
                                         ((9, 9), (0, 0, 0, 0))])
def test_tiny_single_color_and_invisible_images(tmp_path, size, color):
    pixels = np.zeros(size[::-1] + (4,), np.uint8) + np.array(color, np.uint8)
    src = tmp_path / "s.png"
    Image.fromarray(pixels, "RGBA").save(src)
    out = tmp_path / "o.png"
    image = kqcodec.encode(src, out, 16)
    assert len(image.palette) == 1 and ihdr(out)[2] == 1
    decoded = kqcodec.decode(out)
    if color[3] == 255:
        np.testing.assert_array_equal(decoded, pixels[..., :3])
    else:
        assert decoded.shape[2] == 4 and (decoded[..., 3] == 0).all()
        assert dict(png_chunks(out))[b"tRNS"] == b"\x00"


def test_grey_and_grey_alpha_inputs(tmp_path, photo):
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(imageio.read_image(tmp_path / "g.png"), np.dstack([grey] * 3))
    alpha = np.tile(np.arange(grey.shape[1], dtype=np.uint8) * 5, (grey.shape[0], 1))
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(tmp_path / "ga.png")
    got = imageio.read_image(tmp_path / "ga.png")
    np.testing.assert_array_equal(got, np.dstack([grey, grey, grey, alpha]))


def test_refused_formats_and_missing_files(tmp_path):
    eps = tmp_path / "x.eps"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(FormatError, match="not a supported picture"):
        imageio.read_image(eps)
    with pytest.raises(InputError):
        imageio.read_image(tmp_path / "missing.png")
    with pytest.raises(InputError):
        imageio.read_image(tmp_path)


def test_a_picture_too_large_for_the_memory_is_refused_in_one_line(tmp_path):
    # A header of 10^6 x 10^6 RGB pixels (2.7 TiB), the pixel limit lifted.
    path = tmp_path / "huge.png"
    path.write_bytes(pngmake.build([pngmake.ihdr(10**6, 10**6, 8, 2),
                                    (b"IDAT", zlib.compress(b"\0" * 64)), (b"IEND", b"")]))
    with pytest.raises(FormatError, match="not enough memory to decode it"):
        imageio.read_image(path, max_pixels=None)
    for command in (["encode", str(path), str(tmp_path / "o.png"), "-k", "4"],
                    ["decode", str(path), str(tmp_path / "d.png")]):
        proc = subprocess.run([sys.executable, "-m", "kqcodec", *command, "--max-pixels", "0"],
                              capture_output=True, text=True)
        assert proc.returncode == 65, proc.stderr
        assert proc.stderr.startswith(f"kqcodec: error: {path}: not enough memory to decode it")
        assert len(proc.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.png"]


def test_pixel_limit_checked_before_decoding(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "p.png")
    Image.fromarray(photo).save(tmp_path / "p.jpg")
    for name in ("p.png", "p.jpg"):
        with pytest.raises(FormatError, match="over the limit") as caught:
            imageio.read_image(tmp_path / name, max_pixels=100)
        # The option as Python code sets it; the command line says it its way.
        assert str(caught.value).endswith("(raise it with max_pixels)")
        assert caught.value.spelled(str.upper).endswith("(raise it with MAX_PIXELS)")
        proc = subprocess.run([sys.executable, "-m", "kqcodec", "encode", str(tmp_path / name),
                               str(tmp_path / "o.png"), "-k", "4", "--max-pixels", "100"],
                              capture_output=True, text=True)
        assert proc.returncode == 65
        assert "over the limit of 100" in proc.stderr
        assert proc.stderr.endswith("(raise it with --max-pixels)\n")
        assert imageio.read_image(tmp_path / name, max_pixels=None).shape[:2] == photo.shape[:2]


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "bmp", "tiff"])
def test_decode_writes_the_named_format(tmp_path, pictures, ext):
    src = tmp_path / "c.png"
    image = quantizer.quantize(np.asarray(Image.open(pictures["skimage_rocket"]).convert("RGB")), 16)
    image.save(src)
    out = tmp_path / f"back.{ext}"
    kqcodec.decode(src, out)
    written = Image.open(out)
    assert written.format == imageio.output_format(out)
    if ext != "jpg":  # the only lossy one
        np.testing.assert_array_equal(np.asarray(written.convert("RGB")), image.to_pixels())
    else:
        # Chroma at full resolution: 4:2:0 smears a palette's thin coloured lines.
        assert JpegImagePlugin.get_sampling(written) == 0


@pytest.mark.parametrize("ext", ["png", "webp", "tiff"])
def test_decode_keeps_the_colors_under_clear_pixels(tmp_path, ext):
    # The samples the PNG holds, as said: WebP's lossless coder replaced the
    # colors of clear pixels unless asked to keep them exact.
    import png as pypng

    palette = [(200, 30, 90, 0), (10, 250, 120, 0), (40, 40, 40, 255), (255, 255, 0, 128)]
    indices = np.arange(64).reshape(8, 8) % 4
    src = tmp_path / "clear.png"
    with open(src, "wb") as f:
        pypng.Writer(8, 8, palette=palette, bitdepth=8).write(f, indices.tolist())
    out = tmp_path / f"back.{ext}"
    kqcodec.decode(src, out)
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGBA")),
                                  np.array(palette, np.uint8)[indices])


@pytest.mark.parametrize("ext, fmt", [("jpg", "JPEG"), ("bmp", "BMP")])
def test_transparent_image_cannot_become_jpeg_or_bmp(tmp_path, present, ext, fmt):
    src = tmp_path / "p.png"
    quantizer.quantize(present, 16).save(src)
    with pytest.raises(UsageError, match=f"{fmt} cannot hold transparency"):
        kqcodec.decode(src, tmp_path / f"p.{ext}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


def test_16_bit_grey_png_with_trns_keeps_transparency(tmp_path):
    import png as pypng
    values = np.array([[0, 1000, 65535], [40000, 1000, 257]], np.uint16)
    path = tmp_path / "g16.png"
    with open(path, "wb") as f:
        pypng.Writer(3, 2, greyscale=True, bitdepth=16, transparent=1000).write(f, values.tolist())
    got = imageio.read_image(path)
    assert got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got[..., 3], np.where(values == 1000, 0, 255))
    np.testing.assert_array_equal(got[..., 0], (values.astype(int) * 255 + 32767) // 65535)


def test_pillow_convert_would_clip_16_bit_grey(tmp_path):
    import png as pypng
    values = np.array([[300, 30000, 65535]], np.uint16)
    path = tmp_path / "g16.png"
    with open(path, "wb") as f:
        pypng.Writer(3, 1, greyscale=True, bitdepth=16).write(f, values.tolist())
    assert np.asarray(Image.open(path).convert("L")).tolist() == [[255, 255, 255]]  # Pillow clips
    assert imageio.read_image(path)[0, :, 0].tolist() == [1, 117, 255]


def test_damaged_exif_is_one_warning_of_kqcodec_naming_the_file(tmp_path):
    # Pillow's own "Corrupt EXIF data" came out as a bare UserWarning, which
    # neither names the file nor is caught by filtering KqcodecWarning.
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4, 1) * 20
    path = tmp_path / "exif.png"
    path.write_bytes(pngmake.image_png(grey, 8, 0, before=[(b"eXIf", b"II*\0garbage")]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pixels = imageio.read_image(path)
    assert [(w.category, str(w.message).split(" (")[0]) for w in caught] == [
        (kqcodec.KqcodecWarning, f"{path}: damaged EXIF data")]
    np.testing.assert_array_equal(pixels[..., 0], grey[..., 0])
