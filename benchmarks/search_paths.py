"""The ks a size search tries, picture by picture: what to compare when the search's policy changes.

    python benchmarks/search_paths.py [PICTURE|FOLDER ...] [--budgets 0.5,0.33]

For every picture (default ../shared/corpus/public) and every budget, given
as a share of the picture's k = 256 file, runs ``quantizer.choose_k`` in
this process and prints the answer, its size and the first hex digits of
its SHA-256 (to see which answers a change moves), the search's CPU time,
and the ks it encoded in order: ``e`` for a k only estimated, ``R`` for a
k compressed for real (``+`` it fits, ``-`` it does not).  The last line
sums the estimates, the real compressions and the CPU time over all
searches.  CPU time is the process's, so one search at a time: on a shared
machine it moves less than wall time, but say the load.
"""

import argparse
import hashlib
import time

from kqcodec import imageio, quantizer

from corpus import add_search_arguments, pictures


def path_of(choice, budget):
    """The ks of a Choice's trials, in order, as e<k> or R<k>+ / R<k>-."""
    steps = []
    for trial in choice.trials:
        if trial.size is not None:
            steps.append(f"R{trial.k}{'+' if trial.size <= budget else '-'}")
        elif trial.estimate is not None:
            steps.append(f"e{trial.k}")
    return steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    budgets = add_search_arguments(parser)
    args = parser.parse_args(argv)
    shares = budgets(args)
    paths = pictures(args.paths)
    estimates = reals = 0
    total = 0.0
    for path in paths:
        pixels = imageio.read_image(path, max_pixels=None)
        hist = quantizer.prepare(pixels)
        whole = len(quantizer.quantize(pixels, 256, histogram=hist).to_png())
        for share in shares:
            budget = int(whole * share)
            start = time.process_time()
            choice = quantizer.choose_k(pixels, histogram=hist, max_bytes=budget)
            spent = time.process_time() - start
            steps = path_of(choice, budget)
            real = sum(step.startswith("R") for step in steps)
            estimates += len(steps) - real
            reals += real
            total += spent
            digest = hashlib.sha256(choice.data).hexdigest()[:10]
            print(f"{path.name[:28]:28s} {share:<4g} k={choice.k:<3d} {choice.size:>8d} B {digest} "
                  f"{spent:5.2f} s  {' '.join(steps)}", flush=True)
    print(f"{len(paths)} pictures x {len(shares)} budgets: {estimates} ks only estimated, "
          f"{reals} compressed, {total:.2f} s CPU")


if __name__ == "__main__":
    main()
