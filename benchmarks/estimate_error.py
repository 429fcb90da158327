"""How far the size estimates of a size search fall below the real sizes.

A size search (``encode -k auto --max-bytes``) does not compress k + 1 when
its estimate is over the budget by more than the estimates err (see
``quantizer._LOWEST_RATIO`` and ``_DRIFT``).  This script measures that
error: for every picture of FOLDER (default ../shared/corpus/public) and
every budget share, it finds the search's answer k, then encodes the ks
within ``--span`` of it as the search does (each warm-started from the one
before, the estimates kept as the search keeps them, by
``quantizer.SizeEstimates``), estimates each file and compresses it for real.

It prints one line per k (kind = bit depth, deflate level, layout and the k
whose gain it uses; real / estimated size), then the smallest ratio of real
to estimated size over all of them, and the largest fall of that ratio from
a k to another of the same kind within one and two ks.
"""

import argparse

from kqcodec import imageio, quantizer

from corpus import add_search_arguments, pictures


def sweep(hist, weights, first, ks):
    """(k, kind, estimate, real) for each of `ks`, in order, warm-started one from the other.

    The estimates are kept as a size search keeps them (``quantizer.SizeEstimates``).
    """
    labels, sizes, rows = first, quantizer.SizeEstimates(), []
    for k in ks:
        image, labels = quantizer._quantize(hist, k, init=labels, weights=weights)
        estimate, kind = sizes.estimate(image)
        rows.append((k, kind, estimate, len(sizes.write(image))))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    budgets = add_search_arguments(parser)
    parser.add_argument("--span", type=int, default=3,
                        help="ks on either side of each answer (default 3)")
    args = parser.parse_args(argv)
    paths = pictures(args.paths)
    ratios, falls = [], {1: [], 2: []}
    for path in paths:
        pixels = imageio.read_image(path, max_pixels=None)
        hist = quantizer.prepare(pixels)
        weights = quantizer._search_weights(pixels, hist, "rgb")
        full = len(quantizer.quantize(pixels, 256, histogram=hist).to_png())
        _, first = quantizer._quantize(hist, 256, weights=weights, speed=10)
        for share in budgets(args):
            answer = quantizer.choose_k(pixels, histogram=hist, max_bytes=int(full * share)).k
            ks = range(max(2, answer - args.span), min(256, answer + args.span) + 1)
            rows = sweep(hist, weights, first, ks)
            for k, kind, estimate, real in rows:
                ratios.append((real / estimate, path.name, k))
                print(f"{path.name} budget {share} answer {answer}: k={k} kind={kind} "
                      f"estimate {estimate:.0f} real {real} ratio {real / estimate:.4f}", flush=True)
            for j, kind_j, est_j, real_j in rows:
                for k, kind_k, est_k, real_k in rows:
                    if kind_j == kind_k and abs(j - k) in falls:
                        fall = 1 - (real_k / est_k) / (real_j / est_j)
                        falls[abs(j - k)].append((fall, path.name, j, k))
    low = min(ratios)
    print(f"smallest real/estimated ratio over {len(ratios)} estimates: {low[0]:.4f} "
          f"({low[1]}, k={low[2]})")
    for distance, found in falls.items():
        top = max(found)
        print(f"largest fall of the ratio to a k of the same kind {distance} away, over "
              f"{len(found)} pairs: {top[0]:.2%} ({top[1]}, from k={top[2]} to k={top[3]})")


if __name__ == "__main__":
    main()
