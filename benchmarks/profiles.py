"""What color profiles cost and change: PSNR against the sRGB rendering, and check times.

For each picture, prints how far its raw values are from their sRGB rendering
(what a color-managed viewer shows), then per k the PSNR against that
rendering of three encodings:

* ``raw``: the raw values quantized and written without color information,
  so that every viewer shows them as sRGB (what kqcodec did before it read
  profiles; ``--keep-profile`` writes the same pixels, seen so by viewers that
  ignore its iCCP chunk);
* ``kept``: the same file as a color-managed viewer shows it through the
  ``--keep-profile`` iCCP chunk;
* ``srgb``: kqcodec's default, the sRGB rendering quantized.

Then the time of the sRGB check (a profile's first sight, then from the
cache), the conversion, and the whole read, median of ``--repeat`` runs;
and the wall time of ``kqcodec encode`` as a whole process on the picture's
pixels saved as a PNG with and without its profile, alternating, median of
``--processes`` runs each (0 skips it).  Times on a shared machine are noisy.

    python benchmarks/profiles.py [PICTURE ...] [-k 16,64,256] [--repeat N] [--processes N]
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(function, repeat):
    """Median wall time of `repeat` calls, in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pictures", nargs="*", type=Path,
                        default=[REPO / "test_pictures" / "skimage_rocket.jpg"])
    parser.add_argument("-k", default="16,64,256", help="palette sizes (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs (default %(default)s)")
    parser.add_argument("--processes", type=int, default=5,
                        help="whole encode runs, tagged and untagged (default %(default)s)")
    args = parser.parse_args()
    ks = [int(k) for k in args.k.split(",")]

    from kqcodec import colorprofile, imageio, metrics
    from kqcodec.codec import quantize

    for path in args.pictures:
        raw, tags = imageio.read_picture(path, color="raw")
        # A profile's first sight, before anything is cached (for the first
        # picture with a profile, with the ImageCms import).
        start = time.perf_counter()
        if tags.icc is not None:
            colorprofile.is_srgb(tags.icc)
        first = 1000 * (time.perf_counter() - start)
        shown, _ = colorprofile.rendered(raw, tags)
        print(f"== {path.name}: {raw.shape[1]}x{raw.shape[0]}, "
              f"raw values against their sRGB rendering: PSNR {metrics.psnr(shown, raw):.2f} dB")
        print(f"{'k':>4}  {'raw':>7}  {'kept':>7}  {'srgb':>7}   (PSNR in dB against the sRGB rendering)")
        for k in ks:
            before = quantize(raw, k).to_pixels()
            kept = colorprofile.rendered(before, tags)[0]
            after = quantize(shown, k).to_pixels()
            print(f"{k:>4}  {metrics.psnr(shown, before):7.2f}  {metrics.psnr(shown, kept):7.2f}  "
                  f"{metrics.psnr(shown, after):7.2f}")
        if tags.icc is None:
            continue
        def fresh():
            colorprofile._profile.cache_clear()
            colorprofile._transform.cache_clear()
            colorprofile.is_srgb(tags.icc)

        rows = [
            ("sRGB check, first sight", first),
            ("sRGB check, new profile", timed(fresh, args.repeat)),
            ("sRGB check, cached", timed(lambda: colorprofile.is_srgb(tags.icc), args.repeat)),
        ]
        if not colorprofile.is_srgb(tags.icc):
            rows.append(("conversion to sRGB", timed(
                lambda: colorprofile.to_srgb(raw, tags.icc), args.repeat)))
        rows.append(("read, raw values", timed(
            lambda: imageio.read_picture(path, color="raw"), args.repeat)))
        rows.append(("read, as encode does", timed(
            lambda: imageio.read_picture(path), args.repeat)))
        if args.processes:
            rows += encode_times(raw, tags.icc, min(ks), args.processes)
        for label, ms in rows:
            print(f"  {label:<40} {ms:8.2f} ms")


def encode_times(raw, icc, k, runs):
    """Median wall time of ``kqcodec encode`` on the same pixels, with and without `icc`."""
    from PIL import Image

    times = {"untagged": [], "tagged": []}
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"untagged": Path(tmp) / "untagged.png", "tagged": Path(tmp) / "tagged.png"}
        Image.fromarray(raw).save(sources["untagged"])
        Image.fromarray(raw).save(sources["tagged"], icc_profile=icc)
        for run in range(runs):
            for name in ("untagged", "tagged") if run % 2 == 0 else ("tagged", "untagged"):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "kqcodec", "encode", str(sources[name]),
                                str(Path(tmp) / "out.png"), "-k", str(k), "--force"], check=True)
                times[name].append(time.perf_counter() - start)
    return [(f"encode -k {k} process, {name} PNG", 1000 * statistics.median(values))
            for name, values in times.items()]


if __name__ == "__main__":
    main()
