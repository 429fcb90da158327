"""Targets instead of k: what the search picks, what it costs, and pngquant beside it.

For every picture of FOLDER (default ../shared/corpus/public) and every PSNR
target, prints the k that ``encode -k auto --target-psnr`` chooses, the bytes
and PSNR of the file, and the time of that search against one ``encode -k 256``
of the same picture (both in this process, picture read included, run one
after the other; wall and CPU time).  A size budget of half the k = 256 file
is searched too.

pngquant (``--nofs``, no dithering, as kqcodec) has no PSNR target: its
``--quality`` is a 0-100 scale mapped to an MSE in its own color space.  It
is matched here by measurement: for each picture and target, the lowest
``--quality 0-Q`` whose output reaches the target PSNR (as kqcodec measures
it, against the same pixels), found by bisection on Q.

Both tools read the same RGB(A) PNG, written beforehand from the picture's
sRGB pixels.  ``--shared`` also measures the PSNR cost of one shared palette
against per-file palettes on two sets of related pictures.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


import kqcodec
from kqcodec import imageio, metrics, quantizer

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = REPO.parent / "shared/corpus/public"
SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def psnr_of(original, path):
    return metrics.psnr(original, imageio.read_image(path, max_pixels=None))


def pngquant(src, dest, quality):
    """Run pngquant at ``--quality 0-quality``; True if it wrote `dest`."""
    if dest.exists():
        dest.unlink()
    proc = subprocess.run(["pngquant", "--nofs", "--strip", "--quality", f"0-{quality}",
                           "--output", str(dest), "--", str(src)], capture_output=True)
    return proc.returncode == 0 and dest.exists()


def match_pngquant(src, original, target, work):
    """The lowest pngquant quality whose file reaches `target` dB, by bisection.

    Returns (quality, bytes, psnr), or None when even quality 100 falls short.
    """
    dest = work / "pq.png"
    results = {}

    def measure(q):
        if q not in results:
            ok = pngquant(src, dest, q)
            results[q] = (dest.stat().st_size, psnr_of(original, dest)) if ok else None
        return results[q]

    top = measure(100)
    if top is None or top[1] < target:
        return None
    lo, hi = 0, 100  # quality lo falls short (or is untried), hi reaches the target
    while hi - lo > 1:
        mid = (lo + hi) // 2
        got = measure(mid)
        if got is not None and got[1] >= target:
            hi = mid
        else:
            lo = mid
    return (hi, *results[hi])


def run_picture(path, targets, work, with_pngquant):
    original = imageio.read_image(path, max_pixels=None)
    src = work / "in.png"
    if src.exists():
        src.unlink()
    imageio.write_image(src, original)
    out = work / "out.png"
    rows = []
    base, wall256, cpu256 = timed(lambda: kqcodec.encode(src, out, 256, force=True))

    def search(**goal):
        """One search: k, size, PSNR and times over the k = 256 encode; None if out of reach."""
        try:
            result, wall, cpu = timed(lambda: kqcodec.encode(src, out, "auto", force=True, **goal))
        except kqcodec.KqcodecError:
            return None
        return dict(k=result.k, bytes=result.encoded_bytes, psnr=psnr_of(original, out),
                    tried=len(result.trials), wall=wall / wall256, cpu=cpu / cpu256)

    for target in targets:
        ours = search(target_psnr=target)
        theirs = match_pngquant(src, original, target, work) if with_pngquant else None
        rows.append((f"{target:g} dB", ours, theirs))
    budget = base.encoded_bytes // 2
    rows.append((f"<= {budget} B", search(max_bytes=budget), None))
    return original.shape, wall256, rows


def shared_cost(corpus):
    """PSNR with one palette for a set against each picture's own palette, k = 64."""
    sets = {}
    if (corpus / "lomiri_sunset_by_Aitzol_Berasategi.jpg").exists():
        photo = imageio.read_image(corpus / "lomiri_sunset_by_Aitzol_Berasategi.jpg", max_pixels=None)
        top, left = photo.shape[0] // 2 - 256, photo.shape[1] // 2 - 512
        # Eight frames of a pan across the photo, 96 pixels apart.
        sets["pan: 8 frames 512x512"] = [photo[top:top + 512, left + 96 * i:left + 96 * i + 512]
                                        for i in range(8)]
    icons = ["mpl_logo2_rgba.png", "mpl_present_rgba.png", "oxygen_web_browser_rgba.png"]
    if all((corpus / name).exists() for name in icons):
        sets["icons: 3 RGBA pictures"] = [imageio.read_image(corpus / n) for n in icons]
    lines = []
    for name, pictures in sets.items():
        own = [quantizer.quantize(p, 64).psnr for p in pictures]
        hists = []
        for p in pictures:
            hist = quantizer.prepare(p)
            hists.append((hist.colors, hist.counts))
        palette = quantizer.shared_palette(hists, 64)
        shared = [quantizer.remap(p, palette).psnr for p in pictures]
        cost = [a - b for a, b in zip(own, shared)]
        lines.append(f"| {name} | {statistics.median(own):.2f} | {statistics.median(shared):.2f} "
                     f"| {statistics.median(cost):.2f} | {max(cost):.2f} |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=DEFAULT_FOLDER, type=Path)
    parser.add_argument("--targets", default="35,38,41", help="PSNR targets, dB (default 35,38,41)")
    parser.add_argument("--no-pngquant", action="store_true", help="skip the pngquant columns")
    parser.add_argument("--shared", action="store_true", help="also the shared-palette cost")
    args = parser.parse_args(argv)
    targets = [float(t) for t in args.targets.split(",")]
    with_pngquant = not args.no_pngquant and shutil.which("pngquant") is not None
    pictures = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in SUFFIXES)
    print("| picture | MP | target | k | bytes | PSNR | ks tried | search / encode k=256, wall | "
          "CPU | pngquant Q | bytes | PSNR | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for path in pictures:
            shape, _, rows = run_picture(path, targets, work, with_pngquant)
            # The 1-minute load average: the machine may be shared.
            load = f"{os.getloadavg()[0]:.1f}"
            for target, ours, theirs in rows:
                a = ("-",) * 6 if ours is None else (
                    ours["k"], ours["bytes"], f"{ours['psnr']:.2f}", ours["tried"],
                    f"{ours['wall']:.2f}", f"{ours['cpu']:.2f}")
                b = ("-",) * 3 if theirs is None else (theirs[0], theirs[1], f"{theirs[1 + 1]:.2f}")
                print(f"| {path.name} | {shape[0] * shape[1] / 1e6:.2f} | {target} | "
                      + " | ".join(map(str, a + b)) + f" | {load} |")
                sys.stdout.flush()
                if ours is not None:
                    key = "size" if target.startswith("<=") else target
                    ratios.setdefault(key, []).append((ours["wall"], ours["cpu"], ours, theirs))
        print()
        print("| target | pictures | median search / encode k=256, wall | CPU | max CPU | "
              "median k | bytes, kqcodec / pngquant (both reached) |")
        print("|---|---|---|---|---|---|---|")
        for key, values in ratios.items():
            walls = [v[0] for v in values]
            cpus = [v[1] for v in values]
            pairs = [v[2]["bytes"] / v[3][1] for v in values if v[3] is not None]
            pair = f"{statistics.median(pairs):.3f} ({len(pairs)})" if pairs else "-"
            print(f"| {key} | {len(values)} | {statistics.median(walls):.2f} | "
                  f"{statistics.median(cpus):.2f} | {max(cpus):.2f} | "
                  f"{statistics.median(v[2]['k'] for v in values):g} | {pair} |")
        if args.shared:
            print()
            print("| related set, k = 64 | median PSNR, own palettes | shared palette | "
                  "median cost, dB | largest cost, dB |")
            print("|---|---|---|---|---|")
            lines = shared_cost(args.folder)
            for line in lines:
                print(line)
            if not lines:
                print(f"(no related set in {args.folder}: the sets are the pan across "
                      "lomiri_sunset_by_Aitzol_Berasategi.jpg and the three icons "
                      "mpl_logo2_rgba.png, mpl_present_rgba.png, oxygen_web_browser_rgba.png)")


if __name__ == "__main__":
    main()
