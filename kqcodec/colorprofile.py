"""Color profiles: what a picture's samples mean, and their sRGB rendering.

A viewer shows a picture through its embedded ICC profile (or PNG ``sRGB``,
``gAMA`` and ``cHRM`` chunks); a palette PNG without color information is
shown as sRGB.  So kqcodec quantizes the sRGB rendering of a picture, not its
raw samples, unless asked to keep the profile.

This module owns LittleCMS, through Pillow's ``ImageCms``: it is a sibling of
:mod:`imageio` rather than a part of it because it works on pixel arrays and
profile bytes, not on files, and because it is needed only when a picture
carries a profile that is not sRGB: ``ImageCms`` is imported, and a profile
parsed, only then.  Pillow is otherwise :mod:`imageio`'s.

Rendering intent: relative colorimetric for matrix/TRC profiles (Adobe RGB,
Display P3, ProPhoto and the like), which keeps every in-gamut color exact
and clips the rest, as browsers do; perceptual for profiles built from
lookup tables (printer CMYK, some camera profiles), whose perceptual table
is the profile maker's own gamut mapping and usually beats clipping.
"""

import functools
import io
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import ProfileWarning, UsageError

__all__ = [
    "ColorTags",
    "check_tags",
    "ProfileWarning",
    "ProfileError",
    "tags_from_info",
    "is_srgb",
    "shown_as_srgb",
    "to_srgb",
    "rendered",
    "SRGB_INTENT",
]

#: Rendering intent written in the ``sRGB`` chunk of converted pictures:
#: 0, perceptual, the usual value (libpng's and pngquant's).
SRGB_INTENT = 0

# A profile is taken as sRGB when it renders every probe color within this
# many levels of the built-in sRGB: profiles that call themselves sRGB
# differ from LittleCMS's by one level here and there (curve tables,
# rounding), far below what quantization changes.
_SRGB_TOLERANCE = 1


class ProfileError(ValueError):
    """A color profile that LittleCMS cannot read or use."""


@dataclass(frozen=True)
class ColorTags:
    """How a picture's samples are meant to be shown, in PNG's terms.

    Attributes
    ----------
    icc : bytes or None
        An embedded ICC profile (JPEG, WebP, TIFF, PNG ``iCCP``).
    srgb : int or None
        The rendering intent of a PNG ``sRGB`` chunk (0 to 3), when the
        samples are sRGB.
    gamma : int or None
        A PNG ``gAMA`` value: the file gamma times 100000.
    chromaticity : tuple of 8 int or None
        A PNG ``cHRM`` chunk: white x, y, red x, y, green x, y, blue x, y,
        each times 100000.
    """

    icc: bytes = None
    srgb: int = None
    gamma: int = None
    chromaticity: tuple = None

    def __bool__(self):
        return any(v is not None for v in (self.icc, self.srgb, self.gamma, self.chromaticity))


#: The tags of a picture kqcodec converted to sRGB.
SRGB = ColorTags(srgb=SRGB_INTENT)


def check_tags(tags):
    """Return `tags` if they are a :class:`ColorTags` or None.

    Parameters
    ----------
    tags : ColorTags or None

    Returns
    -------
    ColorTags or None

    Raises
    ------
    UsageError
        For anything else.
    """
    if tags is not None and not isinstance(tags, ColorTags):
        raise UsageError(f"color must be a colorprofile.ColorTags or None, not "
                         f"{type(tags).__name__}")
    return tags


def tags_from_info(info, *, name="picture"):
    """Read the color tags out of a Pillow ``info`` dictionary.

    Parameters
    ----------
    info : dict
        ``Image.info``: ``icc_profile`` (all formats), ``srgb``, ``gamma``
        and ``chromaticity`` (PNG).
    name : str
        What a warning calls the picture.

    Returns
    -------
    ColorTags
        An ``iCCP`` chunk Pillow could not inflate gives a
        :class:`ProfileWarning` and no profile.
    """
    icc = info.get("icc_profile")
    if "icc_profile" in info and not icc:
        warnings.warn(f"{name}: unreadable color profile; using the raw values",
                      ProfileWarning, stacklevel=2)
    srgb = info.get("srgb")
    gamma = info.get("gamma")
    chrm = info.get("chromaticity")
    return ColorTags(
        icc=bytes(icc) if icc else None,
        srgb=int(srgb) if srgb is not None and 0 <= srgb <= 3 else None,
        gamma=_fixed(gamma) if gamma else None,
        chromaticity=tuple(_fixed(v) for v in chrm) if chrm and len(chrm) == 8 else None,
    )


def _fixed(value):
    # Pillow divides PNG's integers by 100000; this gives them back exactly.
    return int(round(float(value) * 100000))


@dataclass(frozen=True)
class _Profile:
    cms: object  # ImageCms.ImageCmsProfile
    space: str  # 'RGB', 'GRAY', 'CMYK', ...
    intent: int
    srgb: bool


@functools.lru_cache(maxsize=8)
def _profile(icc):
    """Parse and classify a profile once per process (a folder of camera
    JPEGs repeats the same few)."""
    from PIL import ImageCms

    try:
        cms = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        info = cms.profile
        space = info.xcolor_space.strip()
        if info.is_matrix_shaper or not info.is_intent_supported(
                ImageCms.Intent.PERCEPTUAL, ImageCms.Direction.INPUT):
            intent = ImageCms.Intent.RELATIVE_COLORIMETRIC
        else:
            intent = ImageCms.Intent.PERCEPTUAL
        profile = _Profile(cms, space, int(intent), False)
        if space in ("RGB", "GRAY"):
            probe = _probe(space)
            # Unoptimised: LittleCMS then builds no tables, which take longer
            # than running a few thousand colors through the pipeline.
            shown = _transform(profile, space, optimize=False)(probe)
            expected = probe if space == "RGB" else np.repeat(probe[..., None], 3, axis=2)
            same = np.abs(shown.astype(np.int16) - expected).max() <= _SRGB_TOLERANCE
            profile = _Profile(cms, space, int(intent), bool(same))
        return profile
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, KeyError) as exc:
        raise ProfileError(str(exc) or type(exc).__name__) from None


def _probe(space):
    """Colors that tell sRGB from anything else: ramps of each primary and of
    grey, and a 16-level grid of the cube (4,864 pixels)."""
    ramp = np.arange(256, dtype=np.uint8)
    if space == "GRAY":
        return ramp[None, :]
    level = np.linspace(0, 255, 16).round().astype(np.uint8)
    grid = np.stack(np.meshgrid(level, level, level, indexing="ij"), -1).reshape(-1, 3)
    ramps = [np.repeat(ramp[:, None], 3, axis=1)]
    for channel in range(3):
        single = np.zeros((256, 3), np.uint8)
        single[:, channel] = ramp
        ramps.append(single)
    return np.concatenate([grid, *ramps])[None]


@functools.lru_cache(maxsize=8)
def _transform(profile, space, *, optimize=True):
    """A function mapping (H, W, C) uint8 samples in `space` to sRGB (H, W, 3)."""
    from PIL import Image, ImageCms

    mode = {"RGB": "RGB", "GRAY": "L", "CMYK": "CMYK"}.get(space)
    if mode is None:
        raise ProfileError(f"{space} profiles are not supported")
    try:
        transform = ImageCms.buildTransform(
            profile.cms, ImageCms.createProfile("sRGB"), mode, "RGB",
            renderingIntent=profile.intent,
            flags=ImageCms.Flags.NONE if optimize else ImageCms.Flags.NOOPTIMIZE,
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        raise ProfileError(str(exc) or type(exc).__name__) from None

    def apply(samples):
        # frombytes names the mode; fromarray's mode argument is deprecated.
        samples = np.ascontiguousarray(samples)
        image = Image.frombytes(mode, (samples.shape[1], samples.shape[0]), samples.tobytes())
        try:
            return np.asarray(ImageCms.applyTransform(image, transform))
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            raise ProfileError(str(exc) or type(exc).__name__) from None

    return apply


def shown_as_srgb(tags):
    """Tell whether samples with these tags show as sRGB: no tags, an sRGB chunk or profile.

    Parameters
    ----------
    tags : ColorTags or None

    Returns
    -------
    bool
    """
    if not tags or tags.srgb is not None:
        return True
    if tags.icc is not None:
        try:
            return is_srgb(tags.icc)
        except ProfileError:
            return False
    return False  # gAMA or cHRM alone


def is_srgb(icc):
    """Tell whether an ICC profile renders as sRGB.

    The profile's rendering of a few thousand probe colors is compared with
    LittleCMS's own sRGB; the answer is cached per profile, so a folder of
    pictures with the same profile pays once (``benchmarks/profiles.py``
    measures it).

    Parameters
    ----------
    icc : bytes

    Returns
    -------
    bool

    Raises
    ------
    ProfileError
        If LittleCMS cannot read the profile.
    """
    return _profile(bytes(icc)).srgb


def to_srgb(samples, icc, *, cmyk=False):
    """Convert samples from an ICC profile's color space to sRGB.

    Parameters
    ----------
    samples : (H, W, 3), (H, W, 4) or, with `cmyk`, (H, W, 4) uint8 ndarray
        RGB or straight RGBA (alpha is kept as is; grey pictures are RGB
        with equal channels), or CMYK.
    icc : bytes
        An RGB profile, a grey one for grey pictures, a CMYK one with
        `cmyk`.
    cmyk : bool
        The samples are CMYK.

    Returns
    -------
    (H, W, 3) or (H, W, 4) uint8 ndarray
        sRGB, with the alpha of `samples` when it has one (not with `cmyk`).

    Raises
    ------
    ProfileError
        If the profile is unreadable or does not fit the samples.
    """
    profile = _profile(bytes(icc))
    samples = np.asarray(samples, np.uint8)
    if cmyk:
        if profile.space != "CMYK":
            article = "an" if profile.space == "RGB" else "a"
            raise ProfileError(f"{article} {profile.space} profile in a CMYK picture")
        return _transform(profile, "CMYK")(samples)
    color, alpha = samples[..., :3], (samples[..., 3] if samples.shape[-1] == 4 else None)
    if profile.space == "GRAY":
        grey = color[..., 0]
        if not ((color[..., 1] == grey).all() and (color[..., 2] == grey).all()):
            raise ProfileError("a grey profile in a color picture")
        rgb = _transform(profile, "GRAY")(grey)
    elif profile.space == "RGB":
        rgb = _transform(profile, "RGB")(color)
    else:
        raise ProfileError(f"a {profile.space} profile, for neither RGB nor grey samples")
    return rgb if alpha is None else np.ascontiguousarray(np.dstack([rgb, alpha]))


def rendered(samples, tags, *, keep=False, cmyk=False, name="picture"):
    """The pixels to quantize and the tags to write, as kqcodec's policy says.

    Without an ICC profile, or with one that renders as sRGB, the samples
    are used as they are (an sRGB profile becomes an ``sRGB`` chunk; ``gAMA``
    and ``cHRM`` stay).  Another profile converts them to sRGB, unless
    `keep` asks to keep the raw values and the profile, which RGB pixels
    (a palette's entries, a decoded picture) can carry only for RGB
    profiles.  An unusable profile gives a
    :class:`ProfileWarning` and the raw values.

    Parameters
    ----------
    samples : (H, W, 3|4) uint8 ndarray
        As :func:`to_srgb` takes them.
    tags : ColorTags
    keep : bool
        Keep the raw values and the profile.
    cmyk : bool
        The samples are CMYK; without a usable CMYK profile they are
        converted naively (``255 - C - K`` and so on, Pillow's ``convert``).
    name : str
        What a warning calls the picture.

    Returns
    -------
    pixels : (H, W, 3|4) uint8 ndarray
    tags : ColorTags
        What the palette PNG should carry.
    """
    if tags.icc is None:
        return (_naive_cmyk(samples) if cmyk else samples), tags
    try:
        profile = _profile(tags.icc)
        if cmyk:
            if keep:
                warnings.warn(f"{name}: a palette PNG cannot hold a CMYK profile; "
                              "converting to sRGB", ProfileWarning, stacklevel=2)
            return to_srgb(samples, tags.icc, cmyk=True), SRGB
        if keep:
            if profile.space != "RGB":
                # Converted first: a profile that cannot convert them (Lab)
                # gives the one warning below, not two.
                pixels = to_srgb(samples, tags.icc)
                warnings.warn(f"{name}: RGB pixels cannot carry a {profile.space} profile; "
                              "converting to sRGB", ProfileWarning, stacklevel=2)
                return pixels, SRGB
            return samples, ColorTags(icc=tags.icc)
        if profile.srgb:
            return samples, ColorTags(srgb=SRGB_INTENT if tags.srgb is None else tags.srgb)
        return to_srgb(samples, tags.icc), SRGB
    except ProfileError as exc:
        warnings.warn(f"{name}: unusable color profile ({exc}); using the raw values",
                      ProfileWarning, stacklevel=2)
        rest = ColorTags(srgb=tags.srgb, gamma=tags.gamma, chromaticity=tags.chromaticity)
        return (_naive_cmyk(samples) if cmyk else samples), rest


def _naive_cmyk(samples):
    from PIL import Image

    samples = np.ascontiguousarray(samples)
    image = Image.frombytes("CMYK", (samples.shape[1], samples.shape[0]), samples.tobytes())
    return np.asarray(image.convert("RGB"))
