"""The default speed's deflate rules against others: compression time against bytes and BD-rate.

For every picture of FOLDER (default ../shared/corpus/public, prepared as
bench.py prepares it) at k = 16, 32, 64, 128, 256, the palette of the
default speed is computed once; then every layout of image data below 4 MB
is compressed at libdeflate 6 and 8 to 12 in one piece, and at 9 to 12 in two
bands (see ``layout._compress_in_bands``), each compression timed alone (CPU
seconds on one core).  Each rule (which layouts reach the final level, at
which level, in one piece or in two bands) is evaluated from those sizes:

* the file's bytes (the rest of the file does not depend on the layout);
* with ``--rows`` (the CSV of a ``bench.py --csv`` run that has the
  ``kqcodec`` and ``pngquant-s1`` methods): the median of bytes / pngquant
  ``--nofs --speed 1`` at the same k and the BD-rate in PSNR against it
  (median and worst picture), with the PSNR of the saved ``kqcodec`` rows:
  layouts and levels do not change the pixels;
* the compression's CPU time (trial included) and its wall time on two idle
  cores (the busier thread: two layouts, or two bands, run at once), summed
  over the small (< 512 KB) and the medium (0.5 to 4 MB) image data.

The first rule is the package's own: the script checks that it gives the
bytes the package writes.  "before" is the second, the package's rule before
small data's layouts were ranked on a sample (at 8f235ce).  Image data of
4 MB or more is left out of the times and keeps its bytes in every rule.
The times come from one run on whatever else the machine does: the CPU
seconds move less than wall time.
"""

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import deflate

from kqcodec import imageio, layout, quantizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the input preparation and the BD-rate of the benchmark)

SMALL, LARGE = layout._MEDIUM_FROM, layout._LARGE_FROM
WHOLE_LEVELS = (6, 8, 9, 10, 11, 12)
SAMPLE_SHARES = (0.125, 0.25)
# Rankings on contiguous bands: (bands, 1 / share of the rows), the package's first.
PACKAGE_RANKING = (layout._RANK_BANDS, layout._RANK_SHARE)
RANKINGS = (PACKAGE_RANKING, (1, 6), (2, 6), (8, 6), (4, 4), (4, 8))
BAND_LEVELS = (9, 10, 11, 12)


def idat(data):
    """The zlib stream of a palette PNG kqcodec wrote (one IDAT chunk)."""
    at = data.index(b"IDAT")
    return data[at + 4:at + 4 + int.from_bytes(data[at - 4:at], "big")]


def timed(function, *args):
    start = time.process_time()
    result = function(*args)
    return result, time.process_time() - start


def measure(image):
    """Sizes and CPU seconds of every layout of `image` at every level; the file's other bytes."""
    data = image.to_png()
    entry = dict(bytes=len(data), rest=len(data) - len(idat(data)), layouts=[])
    layouts = layout._layouts(image.indices, image.palette, False)
    entry["size"] = size = layouts[0][2].nbytes
    if size >= LARGE:
        return entry
    entry["height"] = height = layouts[0][2].shape[0]
    sampled = layout._trial_rows(height, max(rows.shape[1] for _, _, rows in layouts))
    for _, depth, rows in layouts:
        sample = rows if len(sampled) == height else rows[sampled]
        trial, trial_s = timed(lambda: len(deflate.zlib_compress(sample, layout._TRIAL_LEVEL)))
        item = dict(depth=depth, bytes=rows.nbytes, sample=sample.nbytes, trial=trial,
                    trial_s=trial_s, whole={}, bands={})
        for level in WHOLE_LEVELS:
            item["whole"][level] = timed(lambda: len(deflate.zlib_compress(rows, level)))
        if size < SMALL:
            # Samples of the rows (bands spread over the image) at the final
            # level of small data, to rank the layouts by: 16 short bands of
            # a share of the bytes, and contiguous bands of a share of the rows.
            item["samples"], item["rankings"] = {}, {}
            for share in SAMPLE_SHARES:
                part = rows[layout._trial_rows(height, rows.shape[1], int(rows.nbytes * share))]
                item["samples"][share] = timed(lambda: len(deflate.zlib_compress(part, 12)))
            for bands, share in RANKINGS:
                part = rows[layout._band_rows(height, height // share, bands)]
                item["rankings"][f"{bands}/{share}"] = timed(
                    lambda: len(deflate.zlib_compress(part, 12)))
        if size >= SMALL:
            cut = rows.shape[0] // 2
            for level in BAND_LEVELS:
                first, first_s = timed(lambda: deflate.zlib_compress(rows[:cut], level))
                second, second_s = timed(lambda: deflate.deflate_compress(rows[cut:], level))
                # as layout._compress_in_bands joins them: zlib header, one stream, Adler-32
                joined = 2 + len(layout._joined(first[2:-4], second)) + 4
                item["bands"][level] = (joined, max(first_s, second_s), first_s + second_s)
        entry["layouts"].append(item)
    return entry


def rule(near=None, small_level=12, photo=10, flat=12, bands=True, sample=None, tie=0.0,
         one_byte=False, every_below=None, ranking=None, rank_from=layout._RANK_FROM,
         rank_by="largest", one_byte_within=None):
    """A rule: small data's layouts within `near` of the best trial (None: all), the levels of
    small data, of medium photos and of medium flat data, and medium data in two bands or not.

    Every layout of small 1- and 2-bit data reaches the final level; with `every_below` (bytes),
    only those smaller than that, the others (a one-byte layout) if within `near`.

    With `sample` (a share of the rows), small data's layouts within `near` are ranked by a
    level-12 compression of that share of their rows, and only the best, with those within
    `tie` of it, reach the final level; with `one_byte`, the one-byte layout (of 4-bit data and
    fewer) is left out of the ranking and reaches the final level as before.

    With `ranking` ((bands, share), one of RANKINGS), small data's layouts within `near` are
    ranked by a level-12 compression of `bands` contiguous bands of 1/`share` of their rows
    (layout._band_rows), on pictures of 24 rows or more, when the largest of them holds
    `rank_from` bytes or more (`rank_by="packed"`: when the packed, unfiltered data does), and
    only the best reaches the final level; with `one_byte_within`, the one-byte layout too, when
    its sample is within that share of the best.  ``ranking=PACKAGE_RANKING`` with the other
    defaults is the package's rule."""
    key = None if ranking is None else f"{ranking[0]}/{ranking[1]}"

    def choose(entry):
        chosen, level, in_bands = pick(entry)
        if ranks(entry, chosen):
            items = entry["layouts"]
            sizes = {i: items[i]["rankings"][key][0] for i in chosen}
            best = min(chosen, key=lambda i: (sizes[i], i))
            also = [i for i in chosen if one_byte_within is not None and i != best
                    and items[i]["depth"] > items[0]["depth"]
                    and sizes[i] <= (1 + one_byte_within) * sizes[best]]
            return sorted([best] + also), level, in_bands
        if sample is not None and entry["size"] < SMALL and len(chosen) > 1:
            items = entry["layouts"]
            ranked = [i for i in chosen
                      if not one_byte or items[i]["depth"] == items[chosen[0]]["depth"]]
            kept = [i for i in chosen if i not in ranked]
            sizes = {i: items[i]["samples"][sample][0] for i in ranked}
            best = min(sizes.values())
            chosen = sorted(kept + [i for i in ranked if sizes[i] <= (1 + tie) * best])
        return chosen, level, in_bands

    def pick(entry):
        items = entry["layouts"]
        trials = [item["trial"] for item in items]
        best = min(range(len(items)), key=lambda i: (trials[i], i))
        if entry["size"] < SMALL:
            if items[0]["depth"] < 4:
                chosen = [i for i, item in enumerate(items)
                          if every_below is None or item["bytes"] < every_below
                          or trials[i] <= (1 + (near or 0)) * trials[best]]
            elif near is None:  # every layout; the one-byte one within the margin
                chosen = [i for i, item in enumerate(items) if item["depth"] == items[0]["depth"]
                          or trials[i] <= (1 + layout._TRIAL_MARGIN) * trials[best]]
            else:
                chosen = [i for i in range(len(items)) if trials[i] <= (1 + near) * trials[best]]
            return chosen, small_level, False
        ratio = items[best]["sample"] / trials[best]
        return [best], flat if ratio >= layout._FLAT_RATIO else photo, bands
    def ranks(entry, chosen):
        if ranking is None or len(chosen) < 2 or entry["size"] >= SMALL or entry["height"] < 24:
            return False
        items = entry["layouts"]
        held = max(items[i]["bytes"] for i in chosen) if rank_by == "largest" else entry["size"]
        return held >= rank_from

    def sample_cost(entry):
        """CPU seconds of the sample compressions that rank the layouts."""
        chosen, items = pick(entry)[0], entry["layouts"]
        if ranks(entry, chosen):
            return sum(items[i]["rankings"][key][1] for i in chosen)
        if sample is None or entry["size"] >= SMALL:
            return 0.0
        close = [i for i in chosen
                 if not one_byte or items[i]["depth"] == items[chosen[0]]["depth"]]
        return sum(items[i]["samples"][sample][1] for i in close) if len(close) > 1 else 0.0

    choose.sample_cost = sample_cost
    return choose


RULES = [
    ("the package: small data within 7% at 12 (every layout of 1- and 2-bit data below 512 KB), "
     "ranked by four bands of a sixth of the rows at 12 when one holds 128 KB, medium 10/12 in "
     "two bands", rule(0.07, every_below=SMALL, ranking=PACKAGE_RANKING)),
    ("the package before: the same, not ranked", rule(0.07, every_below=SMALL)),
    ("before: small data every layout at 12, medium 10/12 in one piece", rule(None, bands=False)),
    ("small data within 7% at 12, every layout of 1- and 2-bit data, medium 10/12 in two bands",
     rule(0.07)),
    ("small data within 7% at 12, medium 10/12 in one piece", rule(0.07, bands=False)),
    ("small data every layout at 12, medium 10/12 in two bands", rule(None)),
    ("small data within 5% at 12", rule(0.05)),
    ("small data within 7% at 11", rule(0.07, 11)),
    ("small data within 7% at 10", rule(0.07, 10)),
    ("medium flat data at 11", rule(0.07, flat=11)),
    ("medium photos at 11", rule(0.07, photo=11)),
    ("medium photos at 9", rule(0.07, photo=9)),
    ("small at 10, medium 9/9", rule(0.07, 10, photo=9, flat=9)),
    ("small at 9, medium 6/9 in one piece", rule(0.07, 9, photo=6, flat=9, bands=False)),
    ("small data within 7%, ranked by 1/8 of the rows at 12", rule(0.07, sample=0.125)),
    ("small data within 7%, ranked by 1/4 of the rows at 12", rule(0.07, sample=0.25)),
    ("small data within 7%, ranked by 1/8 at 12, ties within 1%", rule(0.07, sample=0.125, tie=0.01)),
    ("small data within 7%, ranked by 1/4 at 12, ties within 1%", rule(0.07, sample=0.25, tie=0.01)),
    ("small data within 7%, ranked by 1/8 at 12, one-byte layout kept",
     rule(0.07, sample=0.125, one_byte=True)),
    ("small data within 7%, ranked by 1/4 at 12, one-byte layout kept",
     rule(0.07, sample=0.25, one_byte=True)),
    ("small data within 7%, ranked by 1/8 at 12, ties within 5%, one-byte layout kept",
     rule(0.07, sample=0.125, tie=0.05, one_byte=True)),
    ("small data within 7%, ranked by 1/4 at 12, ties within 3%", rule(0.07, sample=0.25, tie=0.03)),
    ("ranked as the package from 32 KB of packed data (66c4c5c)",
     rule(0.07, every_below=SMALL, ranking=PACKAGE_RANKING, rank_from=32 << 10, rank_by="packed")),
    ("ranked as the package when one layout holds 32 KB",
     rule(0.07, every_below=SMALL, ranking=PACKAGE_RANKING, rank_from=32 << 10)),
    ("ranked as the package, the one-byte layout also whole within 6%",
     rule(0.07, every_below=SMALL, ranking=PACKAGE_RANKING, one_byte_within=0.06)),
    ("ranked as the package on one band of a sixth",
     rule(0.07, every_below=SMALL, ranking=(1, 6))),
    ("ranked as the package on two bands of a sixth",
     rule(0.07, every_below=SMALL, ranking=(2, 6))),
    ("ranked as the package on eight bands of a sixth",
     rule(0.07, every_below=SMALL, ranking=(8, 6))),
    ("ranked as the package on four bands of a quarter",
     rule(0.07, every_below=SMALL, ranking=(4, 4))),
    ("ranked as the package on four bands of an eighth",
     rule(0.07, every_below=SMALL, ranking=(4, 8))),
]


def evaluate(entries, choose):
    """Bytes per (picture, k), and CPU and wall seconds of small and of medium data."""
    sizes, times = {}, {"small": [0.0, 0.0], "medium": [0.0, 0.0]}
    for key, entry in entries.items():
        if not entry["layouts"]:
            sizes[key] = entry["bytes"]
            continue
        chosen, level, bands = choose(entry)
        items = entry["layouts"]
        trial = sum(item["trial_s"] for item in items)
        trial += choose.sample_cost(entry)
        if bands and len(chosen) == 1:
            size, wall, cpu = items[chosen[0]]["bands"][level]
        else:
            size = min(items[i]["whole"][level][0] for i in chosen)
            each = [items[i]["whole"][level][1] for i in chosen]
            cpu, wall = sum(each), max(max(each), sum(each) / 2)
        sizes[key] = entry["rest"] + size
        part = times["small" if entry["size"] < SMALL else "medium"]
        part[0] += cpu + trial
        part[1] += wall + trial / 2
    return sizes, times


def against_pngquant(rows, sizes):
    """Median bytes / pngquant-s1, BD-rate median and worst, with `sizes` as kqcodec's bytes.

    Parameters
    ----------
    rows : pandas.DataFrame
        The rows of a ``bench.py --csv`` run.
    sizes : dict
        Bytes by ``"NAME:K"``.

    Returns
    -------
    ratio, bd_median, bd_worst : float
    """
    ok = rows[rows.status == "ok"].copy()
    mine = ok.method == "kqcodec"
    ok.loc[mine, "bytes"] = [sizes.get(f"{image}:{k}", saved)  # pictures not measured: as saved
                             for image, k, saved in zip(ok.image[mine], ok.k[mine], ok.bytes[mine])]
    pairs = bench._pairs(ok, "kqcodec", "pngquant-s1")
    rates = bench._bd_rates(ok, "kqcodec", "pngquant-s1")
    return (pairs.bytes / pairs.bytes_o).median(), rates.median(), rates.max()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", nargs="?", type=Path, default=bench.DEFAULT_FOLDER)
    p.add_argument("-k", default="16,32,64,128,256", help="palette sizes (default: %(default)s)")
    p.add_argument("--rows", type=Path, help="a bench.py --csv file: bytes ratio and BD-rate")
    p.add_argument("--cache", type=Path,
                   help="JSON of the measurements: written after a run, read instead of one")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.cache and args.cache.exists():
        entries = json.loads(args.cache.read_text())
        for entry in entries.values():
            for item in entry["layouts"]:
                for kind in ("whole", "bands"):
                    item[kind] = {int(level): value for level, value in item[kind].items()}
                if "samples" in item:
                    item["samples"] = {float(share): value
                                       for share, value in item["samples"].items()}
    else:
        entries = {}
        ks = [int(k) for k in args.k.split(",")]
        with tempfile.TemporaryDirectory() as tmp:
            for src in sorted(args.folder.iterdir()):
                if src.suffix.lower() not in bench.IMAGE_SUFFIXES:
                    continue
                path, _, _ = bench.prepare(src, tmp)
                pixels, tags = imageio.read_picture(path, color="srgb")
                for k in ks:
                    image = replace(quantizer.quantize(pixels, k), color=tags or None)
                    entries[f"{src.name}:{k}"] = measure(image)
                    print(f"{src.name} k={k}: {entries[f'{src.name}:{k}']['bytes']} bytes",
                          file=sys.stderr, flush=True)
        if args.cache:
            args.cache.write_text(json.dumps(entries))
    import pandas as pd
    rows = pd.read_csv(args.rows, keep_default_na=False, na_values=[""]) if args.rows else None
    package = evaluate(entries, RULES[0][1])[0]
    wrong = [key for key, entry in entries.items() if package[key] != entry["bytes"]]
    if wrong:
        print(f"the first rule does not give the package's bytes on {', '.join(wrong)}",
              file=sys.stderr)
    before = evaluate(entries, RULES[1][1])[0]
    small = sum(1 for entry in entries.values() if entry["layouts"] and entry["size"] < SMALL)
    medium = sum(1 for entry in entries.values() if entry["layouts"] and entry["size"] >= SMALL)
    print(f"{len(entries)} encodings: {small} of small image data, {medium} of medium; "
          f"compression CPU / wall (two cores) in seconds, summed")
    head = "| rule | small: CPU / wall | medium: CPU / wall | bytes vs before (worst file) |"
    line = "|---|---|---|---|"
    if rows is not None:
        head += " bytes / pngquant-s1 | BD-rate median | BD-rate worst |"
        line += "---|---|---|"
    print(head)
    print(line)
    for label, choose in RULES:
        sizes, times = evaluate(entries, choose)
        total = sum(sizes.values()) / sum(before.values()) - 1
        worst = max(sizes, key=lambda key: sizes[key] / before[key])
        cells = [label, "{:.2f} / {:.2f}".format(*times["small"]),
                 "{:.2f} / {:.2f}".format(*times["medium"]),
                 f"{total:+.2%} ({sizes[worst] / before[worst] - 1:+.2%}, {worst.replace(':', ' k=')})"]
        if rows is not None:
            ratio, median, most = against_pngquant(rows, sizes)
            cells += [f"{ratio:.3f}", f"{median:+.1f}%", f"{most:+.1f}%"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
