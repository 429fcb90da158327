"""Color profiles: pictures are quantized as a viewer shows them, and their tags carried."""

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

import kqcodec
from kqcodec import batch, colorprofile, imageio, imagereport, metrics
from kqcodec.cli import main
from kqcodec.errors import KqcodecWarning

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


@pytest.mark.parametrize("target", [34.0, 38.0])
def test_keep_profile_meets_a_target_psnr_as_a_viewer_shows_it(tmp_path, in_adobe, target):
    # The raw values of a file that keeps its profile are 1-2 dB away from
    # what a viewer shows: the search measures the latter, as -v and the
    # report do, or it could stop below the target.
    source = save(in_adobe, tmp_path / "adobe.png", icc_profile=ADOBE)
    out = tmp_path / "kept.png"
    result = kqcodec.encode(source, out, "auto", target_psnr=target, keep_profile=True)
    seen = metrics.psnr(srgb_rendering(source), srgb_rendering(out))
    assert seen >= target
    tried = {trial.k: trial.psnr for trial in result.trials}
    assert tried[result.k] == pytest.approx(seen, abs=0.01)
    assert tried[result.k - 1] < target
    # The result says the same PSNR as its trial (a batch's -v prints both).
    assert result.psnr == pytest.approx(tried[result.k], abs=1e-9)
    # So does a fixed k.
    fixed = kqcodec.encode(source, tmp_path / "fixed.png", 16, keep_profile=True)
    assert fixed.psnr == pytest.approx(
        metrics.psnr(srgb_rendering(source), srgb_rendering(tmp_path / "fixed.png")), abs=0.01)


def test_a_shared_palette_keeping_the_profile_measures_what_a_viewer_shows(tmp_path, in_adobe):
    # A batch with one palette measured the raw values (3 dB off on a ProPhoto picture)
    # where a single encode measures both pictures through the profile.
    folder = tmp_path / "in"
    folder.mkdir()
    source = save(in_adobe, folder / "adobe.png", icc_profile=ADOBE)
    (outcome,) = batch.encode_batch(folder, tmp_path / "out", 16, shared=True,
                                    keep_profile=True, jobs=1)
    out = Path(outcome.dest)
    seen = metrics.psnr(srgb_rendering(source), srgb_rendering(out))
    assert outcome.psnr == pytest.approx(seen, abs=0.01)
    raw = metrics.psnr(in_adobe, np.asarray(Image.open(out).convert("RGB")))
    assert abs(raw - seen) > 0.05  # the raw figure it gave is another number


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


# A PNG's reader drops a profile without an ICC header, as libpng does;
# another format's profile is found unusable later.
@pytest.mark.parametrize("suffix, warning, match", [
    (".png", KqcodecWarning, "iCCP chunk's data is not an ICC profile"),
    (".jpg", colorprofile.ProfileWarning, "color profile")])
def test_broken_profile_warns_and_encodes_raw_values(tmp_path, photo, suffix, warning, match):
    source = save(photo, tmp_path / f"broken{suffix}", icc_profile=b"not a profile" * 20)
    out = tmp_path / "out.png"
    with pytest.warns(warning, match=match):
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


def test_a_profile_too_large_for_jpeg_is_dropped_with_a_warning(tmp_path, photo):
    # A valid profile padded past the 255 markers of 65,519 bytes a JPEG holds: Pillow
    # numbered the markers past 255, wrapping, and readers found no profile at all.
    size = 255 * 65519 + 1000
    padded = struct.pack(">I", size) + ADOBE[4:] + bytes(size - len(ADOBE))
    tags = colorprofile.ColorTags(icc=padded)
    with pytest.warns(colorprofile.ProfileWarning, match="over the 16707345 a JPEG holds"):
        kqcodec.write_image(tmp_path / "big.jpg", photo[:16, :16], color=tags)
    assert "icc_profile" not in Image.open(tmp_path / "big.jpg").info
    # TIFF holds it.
    kqcodec.write_image(tmp_path / "big.tif", photo[:16, :16], color=tags)
    assert Image.open(tmp_path / "big.tif").info["icc_profile"] == padded


def test_decode_keeps_srgb_and_gamma_chunks_in_png(tmp_path, photo):
    out = tmp_path / "out.png"
    kqcodec.encode(save(photo, tmp_path / "p.png", icc_profile=ADOBE), out, K)
    kqcodec.decode(out, tmp_path / "back.png")
    assert dict(png_chunks(tmp_path / "back.png"))[b"sRGB"] == b"\x00"


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".tif", ".bmp"])
def test_decode_says_when_gamma_chunks_cannot_follow(tmp_path, photo, suffix):
    # A gAMA-only PNG decoded to another format lost its gamma without a word.
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add(b"gAMA", struct.pack(">I", 100000))
    source = save(photo, tmp_path / "linear.png", pnginfo=info)
    with pytest.warns(colorprofile.ProfileWarning, match="cannot hold the PNG's gAMA and cHRM"):
        pixels = kqcodec.decode(source, tmp_path / f"out{suffix}")
    np.testing.assert_array_equal(pixels, photo)
    # sRGB-tagged pixels lose nothing: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kqcodec.decode(save(photo, tmp_path / "plain.png"), tmp_path / f"plain{suffix}")


def test_rocket_report_row_is_measured_against_its_srgb_rendering(tmp_path, pictures):
    rocket = pictures["skimage_rocket"]
    assert profile(Image.open(rocket).info["icc_profile"]).profile.profile_description.startswith(
        "Adobe RGB")
    row = imagereport.report_image(rocket, ks=[K], out=tmp_path).iloc[0]
    written = tmp_path / f"skimage_rocket_k{K}.png"
    decoded = np.asarray(Image.open(written).convert("RGB"))
    assert b"sRGB" in chunk_types(written)
    assert row["psnr"] == pytest.approx(metrics.psnr(srgb_rendering(rocket), decoded), abs=1e-9)
    raw = np.asarray(Image.open(rocket).convert("RGB"))
    assert abs(row["psnr"] - metrics.psnr(raw, decoded)) > 1


def s15(value):
    return struct.pack(">i", round(value * 65536))


def icc_v2(device_class, space, pcs, name, tags):
    """An ICC v2 profile (ICC.1:2001-04): header, tag table, desc/wtpt/cprt and `tags`."""
    d50 = s15(0.9642) + s15(1.0) + s15(0.8249)
    desc = (b"desc" + bytes(4) + struct.pack(">I", len(name) + 1) + name + b"\0"
            + bytes(8) + bytes(3) + bytes(67))
    tags = [(b"desc", desc), (b"wtpt", b"XYZ " + bytes(4) + d50),
            (b"cprt", b"text" + bytes(4) + b"No copyright\0"), *tags]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (struct.pack(">I", offset + len(body)) + bytes(4) + bytes([2, 0x10, 0, 0])
              + device_class + space + pcs + bytes(12) + b"acsp" + bytes(28) + d50)
    return header + bytes(128 - len(header)) + struct.pack(">I", len(tags)) + table + body


def cmyk_profile():
    """A small ICC v2 CMYK profile: one A2B0 lookup table, ink on warm paper.

    No free CMYK profile is small enough to ship, so this one is built here:
    a 2-point grid per ink whose corners are the ink products on paper of
    color (250, 240, 220), in the Lab encoding of a lut8Type (ICC.1:2001-04,
    6.5.8).  It is not the naive ``255 - C - K``, so a conversion that ignored
    it would show.
    """
    paper = np.array([250, 240, 220]) / 255
    corners = np.array([paper * [(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)]
                        for c in (0, 1) for m in (0, 1) for y in (0, 1) for k in (0, 1)])
    rgb = Image.fromarray((corners * 255).round().astype(np.uint8)[None])
    lab = np.asarray(ImageCms.applyTransform(rgb, ImageCms.buildTransform(
        ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"))).copy()
    lab[..., 1:] = lab[..., 1:].view(np.int8).astype(np.int16) + 128  # Pillow's a*, b* are signed
    ramp = bytes(range(256))
    lut = (b"mft1" + bytes(4) + bytes([4, 3, 2, 0])
           + b"".join(s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
           + ramp * 4 + lab.tobytes() + ramp * 3)
    return icc_v2(b"prtr", b"CMYK", b"Lab ", b"CMYK test", [(b"A2B0", lut)])


@pytest.fixture(scope="module")
def cmyk_jpeg(tmp_path_factory, photo):
    source = tmp_path_factory.mktemp("cmyk") / "cmyk.jpg"
    Image.fromarray(photo).convert("CMYK").save(source, quality=95, icc_profile=cmyk_profile())
    return source


def test_cmyk_jpeg_goes_through_its_profile(tmp_path, cmyk_jpeg):
    img = Image.open(cmyk_jpeg)
    assert img.mode == "CMYK"
    reference = np.asarray(ImageCms.profileToProfile(
        img, profile(img.info["icc_profile"]), ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB"))
    pixels, tags = kqcodec.read_picture(cmyk_jpeg)
    np.testing.assert_array_equal(pixels, reference)
    assert tags == colorprofile.ColorTags(srgb=0)
    naive = np.asarray(img.convert("RGB"))
    assert metrics.psnr(naive, pixels) < 30
    out = tmp_path / "out.png"
    with pytest.warns(colorprofile.ProfileWarning, match="CMYK"):
        kqcodec.encode(cmyk_jpeg, out, K, keep_profile=True)
    assert chunk_types(out) == [b"IHDR", b"sRGB", b"PLTE", b"IDAT", b"IEND"]


def test_cmyk_jpeg_without_profile_is_converted_as_before(tmp_path, photo):
    source = tmp_path / "plain.jpg"
    Image.fromarray(photo).convert("CMYK").save(source, quality=95)
    pixels, tags = kqcodec.read_picture(source)
    np.testing.assert_array_equal(pixels, np.asarray(Image.open(source).convert("RGB")))
    assert not tags


def grey_profile():
    """An ICC v2 grey profile with a linear tone curve (kTRC gamma 1.0)."""
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, 0x0100)
    return icc_v2(b"mntr", b"GRAY", b"XYZ ", b"Linear grey", [(b"kTRC", curve)])


def test_grey_picture_goes_through_its_grey_profile(tmp_path, photo):
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    source = tmp_path / "grey.png"
    Image.fromarray(grey).save(source, icc_profile=grey_profile())
    pixels, tags = kqcodec.read_picture(source)
    reference = np.asarray(ImageCms.profileToProfile(
        Image.open(source), profile(grey_profile()), ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB"))
    np.testing.assert_array_equal(pixels, reference)
    assert tags.srgb == 0
    # Linear light shown in sRGB is brighter: mid-grey 128 becomes about 188.
    assert abs(int(colorprofile.to_srgb(np.full((1, 1, 3), 128, np.uint8), grey_profile())[0, 0, 0])
               - 188) <= 2
    with pytest.warns(colorprofile.ProfileWarning, match="GRAY"):
        kept, tags = kqcodec.read_picture(source, color="keep")
    np.testing.assert_array_equal(kept, reference)
    # Decoded to RGB pixels, which cannot carry a grey profile: to sRGB, as shown.
    for suffix in (".png", ".tiff"):
        out = tmp_path / f"decoded{suffix}"
        with pytest.warns(colorprofile.ProfileWarning, match="cannot carry a GRAY profile"):
            kqcodec.decode(source, out)
        written = Image.open(out)
        assert "icc_profile" not in written.info
        np.testing.assert_array_equal(np.asarray(written.convert("RGB")), reference)


def test_decode_drops_a_profile_it_cannot_use_with_a_warning(tmp_path, photo):
    source = save(photo, tmp_path / "broken.png", icc_profile=b"not a profile" * 20)
    out = tmp_path / "decoded.png"
    with pytest.warns(KqcodecWarning, match="iCCP chunk.s data is not an ICC profile"):
        pixels = kqcodec.decode(source, out)
    assert b"iCCP" not in chunk_types(out)
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), pixels)


def test_a_lab_profile_kept_is_one_warning(tmp_path, photo):
    # A PNG's reader drops it, as libpng does: a JPEG carries it to the quantizer.
    source = save(photo, tmp_path / "lab.jpg", icc_profile=ImageCms.ImageCmsProfile(
        ImageCms.createProfile("LAB")).tobytes())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kqcodec.encode(source, tmp_path / "out.png", K, keep_profile=True)
    assert [str(w.message).split(": ", 1)[1] for w in caught] == [
        "unusable color profile (a Lab profile, for neither RGB nor grey samples); using the raw values"]


def test_srgb_verbose_psnr_is_against_the_srgb_rendering(tmp_path, pictures, capsys):
    rocket = pictures["skimage_rocket"]
    out = tmp_path / "rocket.png"
    assert main(["encode", str(rocket), str(out), "-k", str(K), "-v"]) == 0
    decoded = np.asarray(Image.open(out).convert("RGB"))
    expected = metrics.psnr(srgb_rendering(rocket), decoded)
    assert f"PSNR {expected:.2f} dB" in capsys.readouterr().err


def test_a_pillow_image_with_a_profile_is_quantized_as_its_file(tmp_path, pictures):
    rocket = np.asarray(Image.open(pictures["skimage_rocket"]).convert("RGB"))[:60, :80]
    path = tmp_path / "pro.png"
    save(rocket, path, icc_profile=PROPHOTO)
    with Image.open(path) as img:
        pixels = imageio.from_pil(img)
    np.testing.assert_array_equal(pixels, srgb_rendering(path))
    np.testing.assert_array_equal(pixels, imageio.read_image(path))


def test_a_pillow_cmyk_image_is_quantized_as_its_file(tmp_path, pictures):
    path = tmp_path / "cmyk.jpg"
    Image.open(pictures["skimage_rocket"]).convert("CMYK").save(path)
    with Image.open(path) as img:
        assert img.mode == "CMYK"
        pixels = imageio.from_pil(img)
        image = kqcodec.quantize(img, 8)
    assert pixels.shape[2] == 3
    np.testing.assert_array_equal(pixels, imageio.read_image(path))
    assert image.palette.shape == (8, 3)
    np.testing.assert_array_equal(image.palette, kqcodec.quantize(pixels, 8).palette)


def test_a_shared_palette_over_kept_profiles_that_differ_is_warned(tmp_path, pictures):
    # The same PLTE in files of other profiles shows as other colors in each:
    # said, where it was silent; sRGB by a profile or by no tag is the same.
    from kqcodec import batch

    pics = tmp_path / "pics"
    pics.mkdir()
    small = Image.open(pictures["skimage_coffee"]).convert("RGB").resize((80, 60))
    small.save(pics / "a.png")
    small.save(pics / "b.jpg", icc_profile=(ICC / "sRGB.icc").read_bytes(), quality=95)

    def encoded(out, keep_profile=True):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outcomes = list(batch.encode_batch(pics, out, 16, shared=True,
                                               keep_profile=keep_profile))
        assert [o.status for o in outcomes] == ["written"] * len(outcomes)
        return [str(w.message) for w in caught if "shared palette" in str(w.message)]

    assert encoded(tmp_path / "same") == []
    small.save(pics / "c.jpg", icc_profile=(ICC / "AdobeRGB1998.icc").read_bytes(), quality=95)
    assert encoded(tmp_path / "differ") == [
        "a shared palette for pictures whose own color profiles are kept, and differ: each "
        "shared entry shows as another color in each file (converted to sRGB, they would share "
        "colors)"]
    assert encoded(tmp_path / "srgb", keep_profile=False) == []
