"""What an encode costs besides its palette search, against pngquant's whole run.

    python benchmarks/floor.py [FOLDER] [-k 16,32,64,128,256] [--min-mp 0.25] [--repeat 3]
                               [--speed S] [--level1]

The default encode spends its time on start-up (the interpreter, numpy and
kqcodec's modules), reading the picture, the color histogram, the palette
search, mapping the pixels, and writing the PNG (filters, layouts,
deflate).  Only the palette search and the mapping are free to be made
faster without changing the file; the rest is fixed by the bytes the file
must have (the deflate effort, see ``deflate_rules.py``) or by Python.
This script measures that rest, the floor a faster search can approach but
not pass, as a whole process, the way ``bench.py`` times kqcodec:

- ``encode``: ``kqcodec encode PNG OUT -k K`` at the default speed, run by
  this script in a process of its own;
- ``floor``: the same process and command, with the palette search and the
  nearest-entry mapping replaced by loading their result (the palette and
  each distinct color's entry) from a file saved by a first run; the file
  written is checked to be byte for byte the encode's;
- ``level1`` (only with ``--level1``): the floor's process with every
  deflate call of the PNG writer made at libdeflate's level 1, its fastest
  that still compresses; the file is then larger than any speed writes, so
  this is a floor under any encode whatever bytes it is allowed;
- ``read``: a process that only starts, imports what an encode imports to
  read its input, and reads the picture with ``kqcodec.imageio.read_image``
  (the histogram, search, mapping and PNG writing all left out), a floor
  under any encode of a Python program that reads the picture this way;
- ``pngquant``: pngquant ``--nofs`` at its default speed on the same PNG.

Each command runs ``--repeat`` times in rotating order and keeps its fastest
run, so the floor is if anything too low.  The table gives each time as a
multiple of pngquant's, and the summary the medians and worst cases that
the compiled core's targets are stated in (wall time <= 0.7x pngquant on
pictures of 1 MP or more, median; <= 1.0x on every picture of 0.25 MP or
more; with ``--speed 10``, <= 0.4x on pictures of 1 MP or more).  Pictures
are converted to PNG first, as ``bench.py`` does.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (input preparation and the timed launcher of the benchmark)

STAGES = ('encode', 'floor', 'read', 'pngquant')
LEVEL1_STAGES = ('encode', 'floor', 'level1', 'read', 'pngquant')


def child(mode, cache, argv):
    """Run ``kqcodec`` with `argv` in this process, its palette search recorded or replayed.

    Parameters
    ----------
    mode : {'record', 'replay', 'level1', 'plain', 'read'}
        'record' runs the search and saves its result to `cache`; 'replay'
        loads it from `cache` instead of searching; 'level1' replays and
        deflates everything at level 1; 'plain' changes nothing;
        'read' only reads the input file (``argv[1]``) and returns 0.
    cache : str
        Path of the ``.npz`` file holding the palette and labels.
    argv : list of str
        The command line after ``kqcodec``.

    Returns
    -------
    int
        0 for 'read'; the other modes end the process as the command
        does (``cli.run``), with kqcodec's exit status.
    """
    if mode == 'read':
        from kqcodec import imageio
        imageio.read_image(argv[1])
        return 0
    import numpy as np

    from kqcodec import cli, layout, quantizer

    if mode == 'level1':
        fastest = layout._libdeflate
        if fastest is None:
            raise RuntimeError('the level1 stage needs libdeflate (the deflate package)')

        class Level1:
            @staticmethod
            def zlib_compress(data, level):
                return fastest.zlib_compress(data, 1)

            @staticmethod
            def deflate_compress(data, level):
                return fastest.deflate_compress(data, 1)

        layout._libdeflate = Level1
        mode = 'replay'
    search = quantizer._cluster
    if mode == 'record':
        def recorded(*args, **kwargs):
            palette, labels = search(*args, **kwargs)
            np.savez(cache, palette=palette, labels=labels)
            return palette, labels
        quantizer._cluster = recorded
    elif mode == 'replay':
        def replayed(*args, **kwargs):
            with np.load(cache) as saved:
                return saved['palette'], saved['labels']
        quantizer._cluster = replayed
    # As the kqcodec command runs (cli.run): its own process's malloc
    # options, and no interpreter teardown at the end.
    sys.argv = ['kqcodec', *argv]
    return cli.run()


def measure(src, k, repeat, tmp, pngquant, speed=None, stages=STAGES):
    """Fastest wall time of each stage for one picture and k, in seconds.

    Raises
    ------
    RuntimeError
        If a command fails, or the replayed encode writes other bytes.
    """
    me = [sys.executable, str(Path(__file__).resolve()), '--child']
    cache = str(tmp / 'search.npz')
    outs = {stage: tmp / f'{stage}.png' for stage in LEVEL1_STAGES}
    options = ['-k', str(k), '--force'] + ([] if speed is None else ['--speed', str(speed)])
    argvs = {
        'encode': me + ['plain', cache, 'encode', str(src), str(outs['encode'])] + options,
        'floor': me + ['replay', cache, 'encode', str(src), str(outs['floor'])] + options,
        'level1': me + ['level1', cache, 'encode', str(src), str(outs['level1'])] + options,
        'read': me + ['read', cache, 'encode', str(src)],
        'pngquant': [pngquant, '--nofs', '--strip', '--force', '-o', str(outs['pngquant']),
                     str(k), str(src)],
    }
    record = me + ['record', cache, 'encode', str(src), str(tmp / 'record.png')] + options
    code, _, _, err = bench.run_timed(record, tmp)
    if code:
        raise RuntimeError(f'{src.name} k={k}: {err}')
    best = {}
    for run in range(repeat):
        order = stages[run % len(stages):] + stages[:run % len(stages)]
        for stage in order:
            code, wall, _, err = bench.run_timed(argvs[stage], tmp)
            if code:
                raise RuntimeError(f'{src.name} k={k} {stage}: {err}')
            best[stage] = min(best.get(stage, wall), wall)
    if outs['floor'].read_bytes() != outs['encode'].read_bytes():
        raise RuntimeError(f'{src.name} k={k}: the replayed search wrote other bytes')
    if 'level1' in stages:
        best['level1 bytes / encode bytes'] = (outs['level1'].stat().st_size
                                               / outs['encode'].stat().st_size)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('folder', nargs='?', type=Path, default=bench.DEFAULT_FOLDER)
    parser.add_argument('-k', default='16,32,64,128,256', help='palette sizes, comma-separated')
    parser.add_argument('--min-mp', type=float, default=0.25,
                        help='only pictures of at least this many megapixels (default 0.25)')
    parser.add_argument('--repeat', type=int, default=3, help='runs of each command (fastest kept)')
    parser.add_argument('--speed', type=int, default=None,
                        help="kqcodec's --speed (default: its default speed)")
    parser.add_argument('--level1', action='store_true',
                        help='add the level1 stage (search free, every deflate at level 1)')
    args = parser.parse_args(argv)
    pngquant = shutil.which('pngquant')
    if not pngquant:
        parser.error('pngquant is not on PATH (apt-get install pngquant)')
    ks = [int(k) for k in args.k.split(',')]
    import numpy as np
    from PIL import Image
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for src in sorted(p for p in args.folder.iterdir()
                          if p.suffix.lower() in bench.IMAGE_SUFFIXES):
            with Image.open(src) as img:
                mp = img.width * img.height / 1e6
            if mp < args.min_mp:
                continue
            png, _, _ = bench.prepare(src, tmp)
            for k in ks:
                best = measure(png, k, args.repeat, tmp, pngquant, args.speed,
                               LEVEL1_STAGES if args.level1 else STAGES)
                rows.append({'image': src.name, 'mp': mp, 'k': k, **best})
                print(f"{src.name} {mp:.2f} MP k={k}: encode {best['encode']:.2f} s, "
                      f"floor {best['floor']:.2f} s, "
                      + (f"level1 {best['level1']:.2f} s, " if args.level1 else '')
                      + f"read {best['read']:.2f} s, pngquant {best['pngquant']:.2f} s",
                      file=sys.stderr, flush=True)
    import pandas as pd
    if not rows:
        sys.exit(f'floor.py: no picture of {args.min_mp:g} MP or more in {args.folder}')
    df = pd.DataFrame(rows)
    df['encode / pngquant'] = df['encode'] / df['pngquant']
    df['floor / pngquant'] = df['floor'] / df['pngquant']
    df['read / pngquant'] = df['read'] / df['pngquant']
    columns = ['encode', 'floor'] + (['level1'] if args.level1 else []) + ['read']
    if args.level1:
        df['level1 / pngquant'] = df['level1'] / df['pngquant']
    df['search share'] = 1 - df['floor'] / df['encode']
    print(df.to_markdown(index=False, floatfmt='.2f'))
    print()
    large = df[df.mp >= 1.0]
    if args.speed == 10:
        summary = [('median over pictures of 1 MP or more', large, np.median, '<= 0.4')]
    else:
        summary = [('median over pictures of 1 MP or more', large, np.median, '<= 0.7'),
                   (f'worst over pictures of {args.min_mp:g} MP or more', df, np.max,
                    '<= 1.0' if args.min_mp >= 0.25 else '<= 1.0 from 0.25 MP')]
    speed = 'the default speed' if args.speed is None else f'--speed {args.speed}'
    print(f'kqcodec at {speed}:\n')
    print('| measure | ' + ' | '.join(f'{c} / pngquant' for c in columns) + ' | target |')
    print('|---' * (len(columns) + 2) + '|')
    for label, frame, how, target in summary:
        if len(frame):
            cells = ' | '.join(f"{how(frame[f'{c} / pngquant']):.2f}" for c in columns)
            print(f'| {label} | {cells} | {target} |')
    share = statistics.median(df['search share']) if len(df) else float('nan')
    print(f'\nmedian share of the palette search and mapping in the encode: {share:.0%}')


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        sys.exit(child(sys.argv[2], sys.argv[3], sys.argv[4:]))
    main()
