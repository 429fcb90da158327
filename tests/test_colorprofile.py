"""Color profiles: pictures are quantized as a viewer shows them, and their tags carried."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

import kqcodec
from kqcodec import colorprofile, metrics, reporting
from kqcodec.cli import main

from .conftest import png_chunks

ICC = Path(__file__).resolve().parent / "data" / "icc"
ADOBE = (ICC / "AdobeRGB1998.icc").read_bytes()
PROPHOTO = (ICC / "ProPhotoRGB.icc").read_bytes()
SRGB_ICC = (ICC / "sRGB.icc").read_bytes()
K = 16


def profile(data):
    return ImageCms.ImageCmsProfile(io.BytesIO(data))


def srgb_rendering(path):
    """The reference: LittleCMS's rendering of a file's samples through its own profile."""
    img = Image.open(path)
    icc = img.info["icc_profile"]
    return np.asarray(ImageCms.profileToProfile(
        img.convert("RGB"), profile(icc), ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB"))


def chunk_types(path):
    return [ctype for ctype, _ in png_chunks(path)]


def save(pixels, path, **options):
    fmt = {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP", ".tif": "TIFF"}[path.suffix]
    extra = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True}}.get(fmt, {})
    Image.fromarray(pixels).save(path, format=fmt, **extra, **options)
    return path


@pytest.fixture(scope="module")
def photo(coffee):
    """A crop of a real sRGB photo, small enough to encode quickly."""
    return np.ascontiguousarray(coffee[100:260, 150:390])


@pytest.fixture(scope="module")
def in_adobe(photo):
    """The same photo's colors re-expressed in Adobe RGB: what a camera set to Adobe RGB writes."""
    converted = ImageCms.profileToProfile(
        Image.fromarray(photo), ImageCms.createProfile("sRGB"), profile(ADOBE),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB")
    return np.asarray(converted)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_wide_gamut_picture_is_quantized_in_srgb(tmp_path, photo, in_adobe, suffix):
    source = save(in_adobe, tmp_path / f"adobe{suffix}", icc_profile=ADOBE)
    out = tmp_path / "out.png"
    image = kqcodec.encode(source, out, K)
    assert chunk_types(out) == [b"IHDR", b"sRGB", b"PLTE", b"IDAT", b"IEND"]
    assert dict(png_chunks(out))[b"sRGB"] == b"\x00"
    decoded = np.asarray(Image.open(out).convert("RGB"))
    np.testing.assert_array_equal(decoded, image.to_pixels())
    reference = srgb_rendering(source)
    plain = kqcodec.quantize(photo, K).to_pixels()
    # As good against the sRGB rendering as the untagged photo against itself...
    assert metrics.psnr(reference, decoded) >= metrics.psnr(photo, plain) - 0.5
    # ...and far from what quantizing the raw Adobe RGB values would show.
    raw = np.asarray(Image.open(source).convert("RGB"))
    assert metrics.psnr(raw, decoded) < metrics.psnr(reference, decoded) - 3


def test_prophoto_picture_converts_too(tmp_path, photo):
    source = save(photo, tmp_path / "pro.tif", icc_profile=PROPHOTO)
    pixels, tags = kqcodec.read_picture(source)
    np.testing.assert_array_equal(pixels, srgb_rendering(source))
    assert tags == colorprofile.ColorTags(srgb=0)


def test_keep_profile_embeds_the_same_bytes_and_keeps_raw_values(tmp_path, in_adobe, capsys):
    source = save(in_adobe, tmp_path / "adobe.jpg", icc_profile=ADOBE)
    out = tmp_path / "kept.png"
    assert main(["encode", str(source), str(out), "-k", str(K), "--keep-profile", "-v"]) == 0
    chunks = dict(png_chunks(out))
    assert b"sRGB" not in chunks
    name, rest = chunks[b"iCCP"].split(b"\0", 1)
    assert name == b"ICC Profile" and rest[0] == 0
    assert zlib.decompress(rest[1:]) == ADOBE
    raw = np.asarray(Image.open(source).convert("RGB"))
    expected = kqcodec.quantize(raw, K).to_pixels()
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), expected)
    # -v measures what a viewer shows: the output through its profile against the input's.
    shown = colorprofile.to_srgb(expected, ADOBE)
    printed = capsys.readouterr().err
    assert f"PSNR {metrics.psnr(srgb_rendering(source), shown):.2f} dB" in printed


@pytest.mark.parametrize("tag", ["icc", "chunk"])
def test_srgb_input_is_not_converted(tmp_path, photo, tag):
    plain = save(photo, tmp_path / "plain.png")
    if tag == "icc":
        tagged = save(photo, tmp_path / "tagged.png", icc_profile=SRGB_ICC)
    else:
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add(b"sRGB", b"\x01")
        tagged = save(photo, tmp_path / "tagged.png", pnginfo=info)
    kqcodec.encode(plain, tmp_path / "a.png", K)
    kqcodec.encode(tagged, tmp_path / "b.png", K)
    a, b = (tmp_path / "a.png").read_bytes(), (tmp_path / "b.png").read_bytes()
    assert b"sRGB" not in chunk_types(tmp_path / "a.png")
    intent = b"\x00" if tag == "icc" else b"\x01"  # an sRGB chunk keeps its intent
    srgb = struct.pack(">I", 1) + b"sRGB" + intent + struct.pack(">I", zlib.crc32(b"sRGB" + intent))
    assert b.replace(srgb, b"", 1) == a


def test_srgb_profile_is_recognised_and_others_are_not():
    assert colorprofile.is_srgb(SRGB_ICC)
    assert colorprofile.is_srgb(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    assert not colorprofile.is_srgb(ADOBE)
    assert not colorprofile.is_srgb(PROPHOTO)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_broken_profile_warns_and_encodes_raw_values(tmp_path, photo, suffix):
    source = save(photo, tmp_path / f"broken{suffix}", icc_profile=b"not a profile" * 20)
    out = tmp_path / "out.png"
    with pytest.warns(colorprofile.ProfileWarning, match="color profile"):
        image = kqcodec.encode(source, out, K)
    raw = np.asarray(Image.open(source).convert("RGB"))
    np.testing.assert_array_equal(image.to_pixels(), kqcodec.quantize(raw, K).to_pixels())
    assert chunk_types(out) == [b"IHDR", b"PLTE", b"IDAT", b"IEND"]


def test_uninflatable_profile_is_one_warning_line_from_the_command(tmp_path, photo, capsys):
    source = save(photo, tmp_path / "broken.png", icc_profile=ADOBE)
    data = bytearray(source.read_bytes())
    start = data.index(b"iCCP") - 4
    (length,) = struct.unpack(">I", data[start : start + 4])
    stream = start + 8 + len(b"ICC Profile\0\0")
    data[stream : stream + 2] = b"\xff\xff"  # not a zlib header; the CRC is made valid again
    crc = zlib.crc32(bytes(data[start + 4 : start + 8 + length]))
    data[start + 8 + length : start + 12 + length] = struct.pack(">I", crc)
    source.write_bytes(bytes(data))
    assert main(["encode", str(source), str(tmp_path / "out.png"), "-k", str(K)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kqcodec: warning: ") and "profile" in err[0]


def test_gamma_only_png_keeps_its_chunks(tmp_path, photo):
    from PIL import PngImagePlugin

    gama = struct.pack(">I", 55555)
    chrm = struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)
    info = PngImagePlugin.PngInfo()
    info.add(b"gAMA", gama)
    info.add(b"cHRM", chrm)
    source = save(photo, tmp_path / "gamma.png", pnginfo=info)
    out = tmp_path / "out.png"
    image = kqcodec.encode(source, out, K)
    chunks = dict(png_chunks(out))
    assert chunks[b"gAMA"] == gama and chunks[b"cHRM"] == chrm
    assert b"sRGB" not in chunks and b"iCCP" not in chunks
    np.testing.assert_array_equal(image.to_pixels(), kqcodec.quantize(photo, K).to_pixels())


def test_transparency_is_kept_through_the_conversion(tmp_path, present):
    source = tmp_path / "present.png"
    Image.fromarray(present).save(source, icc_profile=ADOBE)
    pixels, tags = kqcodec.read_picture(source)
    np.testing.assert_array_equal(pixels[..., 3], present[..., 3])
    expected = colorprofile.to_srgb(present[..., :3], ADOBE)
    np.testing.assert_array_equal(pixels[..., :3], expected)
    assert tags.srgb == 0


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_decode_carries_the_profile(tmp_path, in_adobe, suffix):
    source = save(in_adobe, tmp_path / "adobe.png", icc_profile=ADOBE)
    kept = tmp_path / "kept.png"
    kqcodec.encode(source, kept, K, keep_profile=True)
    out = tmp_path / f"decoded{suffix}"
    pixels = kqcodec.decode(kept, out)
    np.testing.assert_array_equal(pixels, np.asarray(Image.open(kept).convert("RGB")))
    assert Image.open(out).info["icc_profile"] == ADOBE


def test_decode_to_bmp_warns_that_the_profile_is_dropped(tmp_path, in_adobe):
    source = save(in_adobe, tmp_path / "adobe.png", icc_profile=ADOBE)
    kept = tmp_path / "kept.png"
    kqcodec.encode(source, kept, K, keep_profile=True)
    with pytest.warns(colorprofile.ProfileWarning, match="BMP"):
        kqcodec.decode(kept, tmp_path / "out.bmp")


def test_decode_keeps_srgb_and_gamma_chunks_in_png(tmp_path, photo):
    out = tmp_path / "out.png"
    kqcodec.encode(save(photo, tmp_path / "p.png", icc_profile=ADOBE), out, K)
    kqcodec.decode(out, tmp_path / "back.png")
    assert dict(png_chunks(tmp_path / "back.png"))[b"sRGB"] == b"\x00"


def test_rocket_report_row_is_measured_against_its_srgb_rendering(tmp_path, pictures):
    rocket = pictures["skimage_rocket"]
    assert profile(Image.open(rocket).info["icc_profile"]).profile.profile_description.startswith(
        "Adobe RGB")
    row = reporting.report_image(rocket, ks=[K], out=tmp_path).iloc[0]
    written = tmp_path / f"skimage_rocket_k{K}.png"
    decoded = np.asarray(Image.open(written).convert("RGB"))
    assert b"sRGB" in chunk_types(written)
    assert row["psnr"] == pytest.approx(metrics.psnr(srgb_rendering(rocket), decoded), abs=1e-9)
    raw = np.asarray(Image.open(rocket).convert("RGB"))
    assert abs(row["psnr"] - metrics.psnr(raw, decoded)) > 1
