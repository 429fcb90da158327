"""The start-up floor of a whole-process encode, against pngquant on the same small picture.

    python benchmarks/startup.py [PICTURE] [-k 256] [--repeat 10]

A Python tool pays for the interpreter and for numpy before it reads a byte;
pngquant, a C program, starts in milliseconds.  On small pictures that sets
a floor under kqcodec's time ratio to pngquant that no kernel can lower.
For PICTURE (default ``skimage_logo.png`` of ../shared/corpus/public, 0.25 MP,
converted to PNG first so that both tools read the same file) this prints the
best wall time over ``--repeat`` runs of each command, in rotating order:
Python doing nothing, Python importing numpy (a required library), Python
importing what ``kqcodec encode`` imports, the whole ``kqcodec encode`` and
pngquant ``--nofs`` (when installed), and each time as a multiple of
pngquant's.  Best of N, so that other work on the machine moves it less.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PICTURE = REPO.parent / "shared/corpus/public/skimage_logo.png"


def best_wall(commands, repeat):
    """The best wall time of each command over `repeat` rounds, commands rotating within a round."""
    best = {name: float("inf") for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("picture", nargs="?", type=Path, default=DEFAULT_PICTURE)
    parser.add_argument("-k", type=int, default=256, help="palette size (default 256)")
    parser.add_argument("--repeat", type=int, default=10, help="runs of each command (default 10)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        src, out = Path(work) / "in.png", Path(work) / "out.png"
        with Image.open(args.picture) as image:
            image.save(src)
            pixels = image.width * image.height
        python = sys.executable
        commands = {
            "python, nothing": [python, "-c", "pass"],
            "python, import numpy": [python, "-c", "import numpy"],
            "python, kqcodec encode's imports": [python, "-c", "import kqcodec.codec, kqcodec.quantizer"],
            f"kqcodec encode -k {args.k}": [python, "-m", "kqcodec", "encode", str(src), str(out),
                                            "-k", str(args.k), "--force"],
        }
        pngquant = shutil.which("pngquant")
        if pngquant:
            commands[f"pngquant --nofs {args.k}"] = [pngquant, "--nofs", "--force", "-o", str(out),
                                                      str(args.k), str(src)]
        best = best_wall(commands, args.repeat)
    anchor = best.get(f"pngquant --nofs {args.k}")
    print(f"{args.picture.name}: {pixels / 1e6:.2f} MP, best of {args.repeat} runs\n")
    print("| command | wall time | / pngquant |")
    print("|---|---|---|")
    for name, seconds in best.items():
        ratio = f"{seconds / anchor:.2f}" if anchor else "-"
        print(f"| {name} | {seconds * 1000:.0f} ms | {ratio} |")


if __name__ == "__main__":
    main()
