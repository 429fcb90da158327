"""Benchmark kqcodec against pngquant, Pillow and the original notebook.

``kqcodec`` runs at its default speed and ``kqcodec-s10`` at ``--speed 10``;
``pngquant-s1`` is pngquant (Debian's 2.17) with ``--nofs --speed 1``,
``pngquant`` the same at its default speed, and ``pngquant3`` pngquant 3.x
(the Rust rewrite; its binary comes in the ``pngquant-cli`` package of PyPI,
installed in a scratch environment: pass it with ``--pngquant3 PATH``) at its
default speed, also ``--nofs``.  The run ends with the README's tables as
markdown: medians per k, and kqcodec's targets with the BD-rate in PSNR
against ``pngquant-s1`` (PCHIP of log bytes over the common PSNR range).

Every method runs as a separate whole process on the same RGB(A) PNG, so wall
time includes start-up, decoding and writing, and peak RSS is that process's
own.  Quality (PSNR, SSIM, SSIMULACRA2), size and palette length are measured
here, from the files the methods write, never taken from the methods
themselves.  SSIMULACRA2 comes from the reference tool when
``--ssimulacra2-tool`` names it (built from cloudinary/ssimulacra2, never part
of kqcodec), else from the PyPI port through ``kqcodec.metrics``; with the
tool, ``--port-check-mp`` also scores the smaller pictures with the port and
prints how far it is from the reference.  The rate-distortion section prints
SSIMULACRA2 against bytes and the Bjontegaard rate difference (BD-rate) of
each kqcodec mode against pngquant.
Run with --help for the options.  ``bench.py --worker METHOD IN OUT K`` is
how the script runs the Pillow and notebook methods in a process of their own.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Heavy libraries (numpy, pandas, skimage, sklearn) are imported inside the
# functions that need them: worker processes are timed, and a Pillow worker
# should not pay for importing pandas.

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = REPO.parent / 'shared/corpus/public'
METHODS = ('kqcodec', 'kqcodec-s10', 'kqcodec-dither', 'kqcodec-oklab', 'kqcodec-oklab-dither',
           'kqcodec-rgb+oklab', 'kqcodec-rgb+oklab-dither', 'kqcodec-perceptual',
           'kqcodec-perceptual-dither', 'kqcodec-oklab-reuse', 'kqcodec-oklab-reuse-s1', 'pngquant-s1', 'pngquant', 'pngquant-fs', 'pngquant3',
           'pillow-mediancut', 'pillow-fastoctree', 'notebook', 'kqcodec-sklearn')
# kqcodec's modes: the options each adds to `kqcodec encode`.
KQCODEC_OPTIONS = {
    'kqcodec': [],
    'kqcodec-s10': ['--speed', '10'],
    'kqcodec-dither': ['--dither'],
    'kqcodec-oklab': ['--space', 'oklab'],
    'kqcodec-oklab-dither': ['--space', 'oklab', '--dither'],
    'kqcodec-rgb+oklab': ['--space', 'rgb+oklab'],
    'kqcodec-rgb+oklab-dither': ['--space', 'rgb+oklab', '--dither'],
    'kqcodec-perceptual': ['--space', 'perceptual'],
    'kqcodec-perceptual-dither': ['--space', 'perceptual', '--dither'],
    'kqcodec-oklab-reuse': ['--space', 'oklab', '--reuse'],
    'kqcodec-oklab-reuse-s1': ['--space', 'oklab', '--reuse', '--speed', '1'],
    # The library route for the same weighted colors: scikit-learn's KMeans.
    'kqcodec-sklearn': ['--engine', 'sklearn'],
}
# pngquant's settings: undithered at speed 1 and at its default speed, and
# its default (Floyd-Steinberg dithering).
PNGQUANT_OPTIONS = {
    'pngquant-s1': ['--nofs', '--speed', '1'],
    'pngquant': ['--nofs'],
    'pngquant-fs': [],
}
# The pictures of ../shared/corpus/public that ../shared/corpus/SOURCES.md lists as
# photos (its "kind" column); the others are graphics, charts, icons and logos.
# The perceptual targets are set on the photos, so their medians are printed
# beside those over every picture.
PHOTOS = ('lomiri_Picture_1A_by_freespace.jpg', 'lomiri_life_by_Aitzol_Berasategi.jpg',
          'lomiri_sunset_by_Aitzol_Berasategi.jpg', 'mate_Dune.jpg', 'seed_image_square.png',
          'skimage_astronaut.png', 'skimage_coffee.png', 'skimage_hubble_deep_field.jpg',
          'skimage_retina.jpg', 'skimage_rocket.jpg', 'sklearn_china.jpg')
IMAGE_SUFFIXES = {'.png', '.jpg', '.jpeg', '.bmp', '.gif', '.tif', '.tiff', '.webp'}
SSIM_CROP = 1024  # SSIM on a full 12 MP photo takes longer than quantizing it

# The timed commands run as an installed user's would: where the environment
# forbids bytecode caches, an editable install compiles kqcodec's modules
# again at every start (54 ms of a 0.25 MP encode in a profile).
TIMED_ENV = {key: value for key, value in os.environ.items()
             if key != 'PYTHONDONTWRITEBYTECODE'}

# Started with `python -I -S -c` so that it stays small: see run_timed.
LAUNCHER = '''
import os, sys, time
result, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(result, 'w') as f:
    f.write(f'{os.waitstatus_to_exitcode(status)} {wall!r} {usage.ru_maxrss}')
'''


# --- Worker mode: the in-process methods, each run as its own timed process. ---

def worker_pillow(method, src, dst, k):
    """Quantize with Pillow (no dithering) and save an optimized palette PNG.

    Parameters
    ----------
    method : {'mediancut', 'fastoctree'}
        Median cut refuses RGBA input; skip_reason keeps it from seeing any.
    src, dst : str
        Input RGB(A) PNG and output path.
    k : int
        Number of palette entries.
    """
    from PIL import Image
    quant = {'mediancut': Image.Quantize.MEDIANCUT,
             'fastoctree': Image.Quantize.FASTOCTREE}[method]
    img = Image.open(src)
    img.quantize(k, method=quant, dither=Image.Dither.NONE).save(dst, optimize=True)


def worker_notebook(src, dst, k):
    """Reproduce the original notebook: MiniBatchKMeans on every pixel.

    The palette is truncated (not rounded) and always written at bit depth 8,
    exactly as the notebook did, so its numbers stay comparable.
    """
    import numpy as np
    import png
    from PIL import Image
    from sklearn.cluster import MiniBatchKMeans
    rgb = np.asarray(Image.open(src).convert('RGB'))
    h, w, _ = rgb.shape
    pixels = rgb.reshape(-1, 3) / 255
    km = MiniBatchKMeans(n_clusters=k, max_iter=25, random_state=0).fit(pixels)
    indices = km.predict(pixels).astype(np.uint8).reshape(h, w)
    palette = [tuple(int(c) for c in row) for row in (km.cluster_centers_ * 255).astype(int)]
    with open(dst, 'wb') as f:
        png.Writer(w, h, palette=palette, bitdepth=8).write(f, indices)


def run_worker(argv):
    """Entry point of ``bench.py --worker METHOD IN OUT K``."""
    method, src, dst, k = argv
    if method == 'notebook':
        worker_notebook(src, dst, int(k))
    else:
        worker_pillow(method.removeprefix('pillow-'), src, dst, int(k))


# --- Commands and availability ---

def find_kqcodec():
    """Return the command prefix that runs kqcodec, and a note on which.

    The console script starts a little faster than ``python -m``.  It is
    looked for next to this interpreter first, so that a pyenv shim (a shell
    script that adds its own start-up time) or another environment's install
    is not picked up ahead of it.

    Returns
    -------
    prefix : list of str or None
        None when neither form answers ``--help`` with exit status 0.
    note : str
    """
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get('PATH', '')])
    script = shutil.which('kqcodec', path=search)
    candidates = ([[script]] if script else []) + [[sys.executable, '-m', 'kqcodec']]
    last_error = 'not found'
    for prefix in candidates:
        try:
            done = subprocess.run(prefix + ['--help'], cwd=REPO, capture_output=True,
                                  text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            last_error = str(exc)
            continue
        if done.returncode == 0:
            return prefix, 'kqcodec runs as: ' + ' '.join(prefix)
        last_error = last_line(done.stderr) or f'exit status {done.returncode}'
    return None, f'kqcodec skipped: cannot run it ({last_error})'


def build_commands(methods, pngquant3=None):
    """Map each runnable method to a function ``(src, dst, k) -> argv``.

    `pngquant3` is the path of the pngquant 3.x binary, if any.  Methods
    whose tool is missing are left out, with a note saying why.
    """
    commands, notes = {}, []
    pngquant = shutil.which('pngquant')
    worker = [sys.executable, str(Path(__file__).resolve()), '--worker']
    for method in methods:
        if method in KQCODEC_OPTIONS:
            prefix, note = find_kqcodec()
            if note not in notes:
                notes.append(note)
            if prefix:
                commands[method] = lambda s, d, k, p=prefix, e=KQCODEC_OPTIONS[method]: (
                    p + ['encode', s, d, '-k', str(k), '--force', *e])
        elif method == 'pngquant3':
            if not pngquant3 or not os.access(pngquant3, os.X_OK):
                notes.append('pngquant3 skipped: give its binary with --pngquant3 PATH')
                continue
            commands[method] = lambda s, d, k, exe=str(Path(pngquant3).resolve()): (
                [exe, '--nofs', '--strip', '--force', '-o', d, str(k), s])
        elif method in PNGQUANT_OPTIONS:
            if not pngquant:
                notes.append(f'{method} skipped: pngquant not found on PATH')
                continue
            commands[method] = lambda s, d, k, o=PNGQUANT_OPTIONS[method]: (
                [pngquant, *o, '--strip', '--force', '-o', d, str(k), s])
        else:
            commands[method] = lambda s, d, k, m=method: worker + [m, s, d, str(k)]
    return commands, notes


def skip_reason(method, has_alpha, mp, max_mp_notebook):
    """Why `method` is not run on this image, or None when it is."""
    if has_alpha and method == 'pillow-mediancut':
        return "Pillow's median cut does not support RGBA"
    if has_alpha and method == 'notebook':
        return 'the notebook handled RGB only'
    if method == 'notebook' and mp > max_mp_notebook:
        return f'larger than --max-mp-notebook {max_mp_notebook} MP'
    return None


# --- Running and measuring ---

def last_line(text):
    """Last non-empty line of `text`, shortened for a table cell."""
    lines = [ln.strip() for ln in (text or '').splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ''


def run_timed(argv, tmp):
    """Run `argv` to completion and measure it.

    Peak RSS cannot be read from a child of this process: Linux carries the
    parent's high-water mark into a forked or vforked child through exec, so
    every method would report this (large) process's memory.  A small
    launcher forks and execs the method instead, and reports its grandchild's
    ``ru_maxrss``; readings below the launcher's own ~5-7 MB are that floor.
    The launcher also does the timing, so its start-up is not counted.
    Stderr goes to a file, because a pipe nobody reads could stall the child.

    Parameters
    ----------
    argv : list of str
        Command with an absolute path as ``argv[0]`` (the launcher uses execv).
    tmp : Path
        Folder for the launcher's result file and the method's stderr.

    Returns
    -------
    code, wall, rss, err : int, float, float, str
        Exit status (negative: killed by that signal), seconds from fork to
        exit, peak resident set size in MB, last line of stderr.
    """
    result, errpath = Path(tmp) / 'launcher.txt', Path(tmp) / 'stderr.txt'
    result.unlink(missing_ok=True)
    with open(errpath, 'wb') as err:
        subprocess.run([sys.executable, '-I', '-S', '-c', LAUNCHER, str(result), *argv],
                       stdout=subprocess.DEVNULL, stderr=err, cwd=REPO, check=True, env=TIMED_ENV)
    code, wall, rss_kib = result.read_text().split()
    err = last_line(errpath.read_text(errors='replace'))
    return int(code), float(wall), int(rss_kib) / 1024, err  # ru_maxrss is in KiB on Linux


def compared_arrays(rgba, has_alpha):
    """Arrays that PSNR and SSIM compare, as float64 (H, W, C).

    Opaque images compare their 3 RGB channels.  With alpha, RGB is
    premultiplied so that colour under transparent pixels does not count,
    and alpha is a 4th channel; this matches kqcodec's own PSNR.
    """
    import numpy as np
    rgba = rgba.astype(np.float64)
    if not has_alpha:
        return rgba[..., :3]
    alpha = rgba[..., 3:4]
    return np.concatenate([rgba[..., :3] * alpha / 255, alpha], axis=2)


def measure_output(ref, out_path, has_alpha):
    """Quality and palette of one output file, as row fields.

    PSNR is over all pixels, SSIM over the centre crop.  'mode' is Pillow's
    ('P' for a palette PNG) and 'palette' the number of PLTE entries.
    """
    import numpy as np
    from PIL import Image
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    with Image.open(out_path) as img:
        mode = img.mode
        entries = len(img.getpalette() or []) // 3 if mode == 'P' else 0
        test = compared_arrays(np.asarray(img.convert('RGBA')), has_alpha)
    if test.shape != ref.shape:
        raise ValueError(f'output is {test.shape[1]}x{test.shape[0]}, '
                         f'input {ref.shape[1]}x{ref.shape[0]}')
    with np.errstate(divide='ignore'):  # identical images: PSNR is inf
        psnr = peak_signal_noise_ratio(ref, test, data_range=255)
    h, w = ref.shape[:2]
    top, left = max((h - SSIM_CROP) // 2, 0), max((w - SSIM_CROP) // 2, 0)
    crop = (slice(top, top + SSIM_CROP), slice(left, left + SSIM_CROP), slice(0, 3))
    ssim = structural_similarity(ref[crop], test[crop], channel_axis=2, data_range=255)
    return {'psnr': float(psnr), 'ssim': float(ssim), 'mode': mode, 'palette': entries}


def prepare(src, tmp):
    """Convert `src` once to an RGB or RGBA PNG that every method reads.

    Returns
    -------
    path : Path
    rgba : (H, W, 4) uint8 ndarray
        Pixels of that PNG, the reference for PSNR and SSIM.
    has_alpha : bool
        True when some pixel has alpha < 255 (the PNG is then RGBA).
    """
    import numpy as np
    from PIL import Image, ImageOps
    with Image.open(src) as img:
        rgba = ImageOps.exif_transpose(img).convert('RGBA')
    arr = np.asarray(rgba)
    has_alpha = bool(arr[..., 3].min() < 255)
    path = Path(tmp) / f'{src.stem}.png'
    (rgba if has_alpha else rgba.convert('RGB')).save(path)
    return path, arr, has_alpha


def run_methods(argvs, outs, repeat, shift, tmp):
    """Run each method `repeat` times, in an order rotated by `shift`.

    Rotating the order means no method always runs first (cold caches) or
    always right after the same heavy one.

    Returns a dict per method: 'wall_s' (fastest run), 'rss_mb' (peak over
    the runs) and 'error' (None, or why the last failed run failed).
    """
    names = list(argvs)
    best = {m: {'wall_s': float('inf'), 'rss_mb': 0.0, 'error': None} for m in names}
    for r in range(repeat):
        turn = (shift + r) % len(names)
        for m in names[turn:] + names[:turn]:
            outs[m].unlink(missing_ok=True)  # a failed run must not find an old file
            code, wall, rss, err = run_timed(argvs[m], tmp)
            if code != 0 or not outs[m].exists():
                best[m]['error'] = err or f'exit status {code}, no output'
                continue
            best[m]['wall_s'] = min(best[m]['wall_s'], wall)
            best[m]['rss_mb'] = max(best[m]['rss_mb'], rss)
    return best


def ssimulacra2_score(tool, src_png, out_png, original, decoded):
    """SSIMULACRA2 of a written file: by the reference tool when `tool` names it, else by the port.

    `original` and `decoded` are the pixel arrays the port scores; the tool
    reads the two PNG files itself.
    """
    if tool:
        done = subprocess.run([tool, str(src_png), str(out_png)], capture_output=True, text=True,
                              check=True)
        return float(done.stdout.split()[-1])
    from kqcodec import metrics
    return metrics.ssimulacra2(original, decoded)


def ssimulacra2_scores(src_png, out_png, rgba, has_alpha, mp, args):
    """SSIMULACRA2 of one output, as row fields.

    'ssimulacra2' is the reference tool's score when --ssimulacra2-tool is
    given (the tool handles alpha itself), else the port's through
    kqcodec.metrics (which blends over dark and light backgrounds as the
    tool does).  'ssimulacra2_port' is the port's score beside the tool's,
    for pictures up to --port-check-mp megapixels.
    """
    def port():
        import numpy as np
        from PIL import Image
        from kqcodec.metrics import ssimulacra2
        with Image.open(out_png) as img:
            test = np.asarray(img.convert('RGBA'))
        if not has_alpha:
            return ssimulacra2(rgba[..., :3], test[..., :3])
        return ssimulacra2(rgba, test)

    if not args.ssimulacra2_tool:
        return {'ssimulacra2': port()}
    done = subprocess.run([args.ssimulacra2_tool, str(src_png), str(out_png)],
                          capture_output=True, text=True, check=True)
    scores = {'ssimulacra2': float(done.stdout.split()[-1])}
    if mp <= args.port_check_mp:
        scores['ssimulacra2_port'] = port()
    return scores


def bench_image(src, ks, commands, args, tmp, position):
    """Run every method at every k on one image; return a list of row dicts.

    `position` (the image's index) shifts the method order, see run_methods.
    """
    path, rgba, has_alpha = prepare(src, tmp)
    ref = compared_arrays(rgba, has_alpha)
    h, w = rgba.shape[:2]
    mp = h * w / 1e6
    rows = []
    for j, k in enumerate(ks):
        print(f'  {src.name} ({mp:.2f} MP) k={k}', file=sys.stderr, flush=True)
        base = {'image': src.name, 'mp': round(mp, 3), 'alpha': has_alpha, 'k': k}
        outs, argvs = {}, {}
        for m, command in commands.items():
            reason = skip_reason(m, has_alpha, mp, args.max_mp_notebook)
            if reason:
                rows.append({**base, 'method': m, 'status': 'skipped', 'note': reason})
                continue
            outs[m] = Path(tmp) / f'{src.stem}_k{k}_{m}.png'
            argvs[m] = command(str(path), str(outs[m]), k)
        if not argvs:
            continue
        best = run_methods(argvs, outs, args.repeat, position * len(ks) + j, tmp)
        for m, b in best.items():
            # argv0 tells a console script from `python -m` (or a worker).
            row = {**base, 'method': m, 'argv0': Path(argvs[m][0]).name}
            if b['error']:
                rows.append({**row, 'status': 'error', 'note': b['error']})
                continue
            try:
                measured = measure_output(ref, outs[m], has_alpha)
                if args.ssimulacra2:
                    measured.update(ssimulacra2_scores(path, outs[m], rgba, has_alpha, mp, args))
            except Exception as exc:  # an unreadable output is that method's error
                rows.append({**row, 'status': 'error', 'note': f'decode: {exc}'})
                continue
            size = outs[m].stat().st_size
            rows.append({**row, 'status': 'ok', 'note': '', **measured,
                         'bytes': size, 'bpp': 8 * size / (h * w),
                         'wall_s': b['wall_s'], 's_per_mp': b['wall_s'] / mp,
                         'rss_mb': b['rss_mb']})
    return rows


# --- Reporting ---

def report(df):
    """Print the per-image and medians tables, then kqcodec_summary."""
    ok = df[df.status == 'ok']

    def cell(row):
        if row.status != 'ok':
            return row.status
        s2 = f'S2 {row.ssimulacra2:.1f} ' if 'ssimulacra2' in df and row.ssimulacra2 == row.ssimulacra2 else ''
        return (f'{row.psnr:.2f}dB {s2}{row.bytes / 1024:.1f}KiB '
                f'{row.wall_s:.2f}s {row.rss_mb:.0f}MB')

    cells = df.assign(cell=df.apply(cell, axis=1))
    per_image = cells.pivot_table(index=['image', 'mp', 'k'], columns='method',
                                  values='cell', aggfunc='first', sort=False)
    per_image = per_image[[m for m in METHODS if m in per_image.columns]]
    print('\nPer image (PSNR, size, wall time, peak RSS):')
    print(per_image.reset_index().to_string(index=False))
    for row in df[df.status == 'error'].itertuples():
        print(f'error: {row.method} on {row.image} k={row.k}: {row.note}')

    if ok.empty:
        print('\nNo successful runs.')
        return
    cols = ['psnr', 'ssim', 'bpp', 's_per_mp', 'wall_s', 'rss_mb', 'palette']
    if 'ssimulacra2' in ok:
        cols.insert(2, 'ssimulacra2')
    medians = ok.groupby(['method', 'k'])[cols].median()
    medians.insert(0, 'n', ok.groupby(['method', 'k']).size())
    print('\nMedians per method and k (n = images; the notebook runs on small RGB images only):')
    print(medians.round({'psnr': 2, 'ssim': 4, 'ssimulacra2': 2, 'bpp': 3, 's_per_mp': 2,
                         'wall_s': 2, 'rss_mb': 0, 'palette': 0}).to_string())
    kqcodec_summary(ok)
    if 'ssimulacra2' in ok:
        rate_distortion(ok)
        perceptual_targets(ok)
    if 'ssimulacra2_port' in ok:
        port_check(ok)


def kqcodec_summary(ok):
    """Print kqcodec against both pngquant settings, image by image.

    Medians of per-image differences say how often kqcodec wins; the ratio
    of summed times says what a whole batch costs, dominated by big images.
    """
    import pandas as pd
    kq = ok[ok.method == 'kqcodec']
    ratios = []
    for other in ('pngquant-s1', 'pngquant', 'pngquant3', 'pngquant-fs', 'pillow-mediancut',
                  'pillow-fastoctree', 'notebook', 'kqcodec-sklearn'):
        both = kq.merge(ok[ok.method == other], on=['image', 'k'], suffixes=('', '_o'))
        for k, g in both.groupby('k'):
            big = g[g.mp >= 1]
            ratios.append({
                'vs': other, 'k': k, 'n': len(g),
                'dPSNR_dB': (g.psnr - g.psnr_o).median(),
                'bytes_ratio': (g.bytes / g.bytes_o).median(),
                'time_ratio': (g.wall_s / g.wall_s_o).median(),
                'time_ratio_1mp+': (big.wall_s / big.wall_s_o).median() if len(big) else float('nan'),
                'sum_time_ratio': g.wall_s.sum() / g.wall_s_o.sum()})
    if not ratios:
        print('\nNo pairs to compare kqcodec with.')
        return
    print('\nkqcodec vs the others (medians of per-image differences and ratios; '
          "time_ratio_1mp+ over images of 1 MP or more):")
    print(pd.DataFrame(ratios).round(3).to_string(index=False))

    big = kq[(kq.k == 256) & (kq.mp >= 10)]
    for row in big.itertuples():
        print(f'\nkqcodec on {row.image} ({row.mp:.1f} MP) at k=256: {row.wall_s:.2f} s')
    worst = kq.loc[kq.rss_mb.idxmax()]
    print(f'Max kqcodec peak RSS: {worst.rss_mb:.0f} MB ({worst.image}, k={worst.k})')


def bd_rate(bytes_a, quality_a, bytes_b, quality_b):
    """Bjontegaard rate difference of A against B, in percent (negative: A smaller).

    Log bytes as a function of quality, interpolated with PCHIP over each
    method's points, averaged over the quality range both cover.  NaN when
    a curve has fewer than two distinct qualities or the ranges do not meet.
    """
    import numpy as np
    from scipy.interpolate import PchipInterpolator

    curves = []
    for size, quality in ((bytes_a, quality_a), (bytes_b, quality_b)):
        q = np.asarray(quality, float)
        r = np.log(np.asarray(size, float))
        order = np.argsort(q)
        q, r = q[order], r[order]
        if len(np.unique(q)) < 2 or len(np.unique(q)) < len(q):
            return float('nan')
        curves.append((q, r))
    low = max(curves[0][0][0], curves[1][0][0])
    high = min(curves[0][0][-1], curves[1][0][-1])
    if not high > low:
        return float('nan')
    mean = [PchipInterpolator(q, r).integrate(low, high) / (high - low) for q, r in curves]
    return float((np.exp(mean[0] - mean[1]) - 1) * 100)


def rate_distortion(ok):
    """Print SSIMULACRA2 against bytes per picture, and BD-rates of kqcodec's modes."""
    import pandas as pd
    methods = [m for m in METHODS if m in set(ok.method)]
    cells = ok.assign(cell=[f'{s:.1f}@{b / 1024:.0f}K' for s, b in zip(ok.ssimulacra2, ok.bytes)])
    table = cells.pivot_table(index=['image', 'k'], columns='method', values='cell',
                              aggfunc='first', sort=False)[methods]
    print('\nSSIMULACRA2 @ KiB, per picture and k:')
    print(table.reset_index().to_string(index=False))
    modes = [m for m in ('kqcodec', 'kqcodec-dither', 'kqcodec-oklab', 'kqcodec-oklab-dither',
                         'kqcodec-rgb+oklab', 'kqcodec-rgb+oklab-dither', 'kqcodec-perceptual',
                         'kqcodec-perceptual-dither', 'kqcodec-oklab-reuse',
                         'kqcodec-oklab-reuse-s1') if m in methods]
    anchors = [m for m in ('pngquant-fs', 'pngquant-s1', 'kqcodec') if m in methods]
    rows = []
    for image, group in ok.groupby('image', sort=False):
        row = {'image': image}
        for mode in modes:
            for anchor in anchors:
                if mode == anchor:
                    continue
                a, b = group[group.method == mode], group[group.method == anchor]
                row[f'{mode} vs {anchor}'] = (bd_rate(a.bytes, a.ssimulacra2, b.bytes, b.ssimulacra2)
                                             if len(a) and len(b) else float('nan'))
        rows.append(row)
    bd = pd.DataFrame(rows).set_index('image')
    print('\nBD-rate in SSIMULACRA2, % bytes at equal score (negative: kqcodec smaller), per picture:')
    print(bd.round(1).T.to_string())
    photos = bd[bd.index.isin(PHOTOS)]
    summary = pd.DataFrame({'median, photos': photos.median(), 'photos': photos.count(),
                            'median, all': bd.median(), 'pictures': bd.count()})
    print('\nBD-rate medians over the photos and over all pictures, where the quality ranges meet:')
    print(summary.round(1).to_string())


def perceptual_targets(ok):
    """Print the per-k comparisons the perceptual options are judged by."""
    import pandas as pd
    rows = []
    pairs = (('kqcodec-dither', 'pngquant-fs'), ('kqcodec-oklab-dither', 'pngquant-fs'),
             ('kqcodec-rgb+oklab-dither', 'pngquant-fs'), ('kqcodec-dither', 'kqcodec'),
             ('kqcodec-oklab', 'kqcodec'), ('kqcodec-rgb+oklab', 'kqcodec'),
             ('kqcodec-perceptual', 'kqcodec'), ('kqcodec-perceptual', 'kqcodec-oklab'))
    for mode, other in pairs:
        both = ok[ok.method == mode].merge(ok[ok.method == other], on=['image', 'k'],
                                           suffixes=('', '_o'))
        for k, g in both.groupby('k'):
            rows.append({'mode': mode, 'vs': other, 'k': k, 'n': len(g),
                         'median_S2': g.ssimulacra2.median(), 'median_S2_vs': g.ssimulacra2_o.median(),
                         'median_dS2': (g.ssimulacra2 - g.ssimulacra2_o).median(),
                         'bytes_ratio': (g.bytes / g.bytes_o).median(),
                         'dPSNR_dB': (g.psnr - g.psnr_o).median(),
                         'time_ratio': (g.wall_s / g.wall_s_o).median()})
    if rows:
        print('\nPerceptual modes against pngquant dithered and kqcodec (medians of per-picture '
              'values, differences and ratios):')
        print(pd.DataFrame(rows).round(3).to_string(index=False))


def port_check(ok):
    """Print how far the PyPI port's SSIMULACRA2 is from the reference tool's."""
    from scipy.stats import spearmanr
    both = ok.dropna(subset=['ssimulacra2', 'ssimulacra2_port'])
    diff = both.ssimulacra2_port - both.ssimulacra2
    worst = both.loc[diff.abs().idxmax()]
    print(f'\nSSIMULACRA2, PyPI port against the reference tool, {len(both)} files of '
          f'{both.image.nunique()} pictures: port - reference median {diff.median():+.2f}, '
          f'from {diff.min():+.2f} to {diff.max():+.2f}; Spearman rank correlation '
          f'{spearmanr(both.ssimulacra2, both.ssimulacra2_port)[0]:.4f}; largest gap on '
          f'{worst.image} k={worst.k} {worst.method} ({worst.ssimulacra2:.2f} against '
          f'{worst.ssimulacra2_port:.2f})')


def _pairs(ok, method, other):
    """Rows of `method` beside `other`'s on the same picture and k (columns ``*_o``)."""
    return ok[ok.method == method].merge(ok[ok.method == other], on=['image', 'k', 'mp'],
                                         suffixes=('', '_o'))


def _bd_rates(ok, method, anchor):
    """BD-rate in PSNR (%) of `method` against `anchor`, per picture where both have curves."""
    import numpy as np
    import pandas as pd
    rates = {}
    for image, rows in ok[np.isfinite(ok.psnr)].groupby('image', sort=False):
        a, b = rows[rows.method == method], rows[rows.method == anchor]
        if len(a) and len(b):
            rates[image] = bd_rate(a.bytes, a.psnr, b.bytes, b.psnr)
    return pd.Series(rates, dtype=float).dropna()


def readme_tables(ok):
    """The README's benchmark tables, as markdown: medians per k, then the targets.

    Parameters
    ----------
    ok : pandas.DataFrame
        The successful rows (``status == 'ok'``) of a run.

    Returns
    -------
    str
        Rows about a method that did not run are left out; a ratio or
        difference over no picture is ``n/a``.
    """
    import numpy as np
    ks = sorted(int(k) for k in ok.k.unique())
    present = set(ok.method)

    def per_k(frame, value, fmt):
        cells = []
        for k in ks:
            v = value(frame[frame.k == k])
            cells.append('n/a' if v is None or not np.isfinite(v) else fmt.format(v))
        return cells

    def median(series):
        series = series.replace([np.inf, -np.inf], np.nan).dropna()
        return float(series.median()) if len(series) else None

    lines = ['| medians | ' + ' | '.join(f'k={k}' for k in ks) + ' |',
             '|---|' + '---|' * len(ks)]

    def row(label, cells):
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')

    names = {'pngquant-s1': 'pngquant `--nofs --speed 1`', 'pngquant': 'pngquant `--nofs`',
             'pngquant3': 'pngquant 3 `--nofs`', 'kqcodec-s10': 'kqcodec `--speed 10`'}
    for method in ('kqcodec', 'kqcodec-s10', 'pngquant-s1', 'pngquant3'):
        if method in present:
            row(f'PSNR, {names.get(method, method)}',
                per_k(ok[ok.method == method], lambda f: f.psnr.median(), '{:.2f} dB'))
    differences = (('pngquant-s1', 'pngquant `--speed 1`'), ('pngquant', 'pngquant default speed'),
                   ('pngquant3', 'pngquant 3'), ('pillow-mediancut', 'Pillow median cut'),
                   ('notebook', 'original notebook (RGB pictures <= 1 MP)'),
                   ('kqcodec-sklearn', 'scikit-learn KMeans (`--engine sklearn`)'))
    for other, label in differences:
        both = _pairs(ok, 'kqcodec', other)
        if len(both):
            row(f'kqcodec - {label}, per picture',
                per_k(both, lambda f: median(f.psnr - f.psnr_o), '{:+.2f} dB'))
    for method, other, label in (('kqcodec', 'pngquant-s1', 'kqcodec / pngquant `--speed 1`'),
                                 ('kqcodec-s10', 'pngquant-s1',
                                  'kqcodec `--speed 10` / pngquant `--speed 1`'),
                                 ('kqcodec', 'pngquant3', 'kqcodec / pngquant 3')):
        both = _pairs(ok, method, other)
        if len(both):
            row(f'file size, {label}', per_k(both, lambda f: median(f.bytes / f.bytes_o), '{:.3f}'))
    if 'kqcodec' in present:
        row('bits per pixel, kqcodec', per_k(ok[ok.method == 'kqcodec'],
                                             lambda f: f.bpp.median(), '{:.3f}'))
    for method, other, label in (('kqcodec', 'pngquant', 'kqcodec / pngquant default'),
                                 ('kqcodec-s10', 'pngquant', 'kqcodec `--speed 10` / pngquant default'),
                                 ('kqcodec', 'pngquant3', 'kqcodec / pngquant 3')):
        both = _pairs(ok, method, other)
        if len(both):
            row(f'wall time, {label}, per picture',
                per_k(both, lambda f: median(f.wall_s / f.wall_s_o), '{:.2f}'))
            row(f'wall time, {label}, pictures of 1 MP or more',
                per_k(both[both.mp >= 1], lambda f: median(f.wall_s / f.wall_s_o), '{:.2f}'))
    if 'kqcodec' in present:
        kq = ok[ok.method == 'kqcodec']
        row('kqcodec wall time per picture', per_k(kq, lambda f: f.wall_s.median(), '{:.2f} s'))
        row('kqcodec peak RSS', per_k(kq, lambda f: f.rss_mb.median(), '{:.0f} MB'))
    pictures = ok.drop_duplicates('image')
    text = '\n'.join(lines) + (f'\n\n{len(pictures)} pictures, {pictures.mp.min():.2f} to '
                              f'{pictures.mp.max():.2f} MP.\n\n' + targets_table(ok))
    return text


PERCEPTUAL_NAMES = {
    'kqcodec': 'kqcodec', 'kqcodec-dither': 'kqcodec `--dither`',
    'kqcodec-oklab': 'kqcodec `--space oklab`', 'kqcodec-oklab-dither': 'kqcodec `--space oklab --dither`',
    'kqcodec-rgb+oklab': 'kqcodec `--space rgb+oklab`',
    'kqcodec-rgb+oklab-dither': 'kqcodec `--space rgb+oklab --dither`',
    'kqcodec-perceptual': 'kqcodec `--space perceptual`',
    'kqcodec-perceptual-dither': 'kqcodec `--space perceptual --dither`',
    'kqcodec-oklab-reuse': 'kqcodec `--space oklab --reuse`',
    'kqcodec-oklab-reuse-s1': 'kqcodec `--space oklab --reuse --speed 1`',
    'pngquant-s1': 'pngquant `--nofs --speed 1`', 'pngquant-fs': 'pngquant default (dithered)'}


def perceptual_tables(ok):
    """The README's perceptual tables, as markdown: SSIMULACRA2 / PSNR per k, then BD-rates.

    Parameters
    ----------
    ok : pandas.DataFrame
        Successful rows with an ``ssimulacra2`` column.

    Returns
    -------
    str
        Medians over the pictures of SSIMULACRA2 and PSNR per method and k;
        per-picture differences of each kqcodec mode from its anchor; the
        median BD-rate in SSIMULACRA2 of each kqcodec mode against pngquant
        and kqcodec in RGB, over the photos (:data:`PHOTOS`) and over every
        picture; and the best mode's photo medians against the targets.
    """
    import numpy as np
    ok = ok[np.isfinite(ok.ssimulacra2)]
    ks = sorted(int(k) for k in ok.k.unique())
    methods = [m for m in PERCEPTUAL_NAMES if m in set(ok.method)]
    head = ' | '.join(f'k={k}' for k in ks)
    lines = [f'| SSIMULACRA2 / PSNR, median over all pictures | {head} |', '|---|' + '---|' * len(ks)]
    for m in methods:
        g = ok[ok.method == m].groupby('k')
        s2, ps = g.ssimulacra2.median(), g.psnr.median()
        lines.append(f'| {PERCEPTUAL_NAMES[m]} | '
                     + ' | '.join(f'{s2[k]:.1f} / {ps[k]:.2f} dB' for k in ks) + ' |')
    lines += ['', f'| per picture, median | {head} |', '|---|' + '---|' * len(ks)]
    for m, o in (('kqcodec-dither', 'pngquant-fs'), ('kqcodec-rgb+oklab-dither', 'pngquant-fs'),
                 ('kqcodec-oklab', 'kqcodec'), ('kqcodec-rgb+oklab', 'kqcodec'),
             ('kqcodec-perceptual', 'kqcodec'), ('kqcodec-perceptual', 'kqcodec-oklab'),
             ('kqcodec-oklab-reuse', 'kqcodec-oklab'), ('kqcodec-oklab-reuse-s1', 'kqcodec-oklab')):
        both = _pairs(ok, m, o)
        if both.empty:
            continue
        cells = []
        for k in ks:
            x = both[both.k == k]
            cells.append(f'S2 {np.median(x.ssimulacra2 - x.ssimulacra2_o):+.1f}, bytes '
                         f'x{np.median(x.bytes / x.bytes_o):.2f}, PSNR '
                         f'{np.median(x.psnr - x.psnr_o):+.2f} dB')
        lines.append(f'| {PERCEPTUAL_NAMES[m]} - {PERCEPTUAL_NAMES[o]} | ' + ' | '.join(cells) + ' |')
    anchors = [a for a in ('pngquant-fs', 'pngquant-s1', 'kqcodec') if a in methods]
    lines += ['', '| BD-rate in SSIMULACRA2, median picture | '
              + ' | '.join(f'against {PERCEPTUAL_NAMES[a]}, {what}' for a in anchors
                           for what in ('photos', 'all')) + ' |',
              '|---|' + '---|' * (2 * len(anchors))]
    medians = {}
    for m in methods:
        if not m.startswith('kqcodec'):
            continue
        cells = []
        for a in anchors:
            rates = _s2_bd_rates(ok, m, a) if m != a else {}
            for what, names in (('photos', PHOTOS), ('all', None)):
                values = [v for image, v in rates.items() if names is None or image in names]
                medians[m, a, what] = float(np.median(values)) if values else None
                cells.append(f'{np.median(values):+.1f}% ({len(values)})' if values else '')
        lines.append(f'| {PERCEPTUAL_NAMES[m]} | ' + ' | '.join(cells) + ' |')
    # The targets ask one mode for both: the mode with the lowest photo median
    # against pngquant's dithered output, and its median against the other.
    found = [(v, m) for (m, a, what), v in medians.items()
             if a == 'pngquant-fs' and what == 'photos' and v is not None]
    if found:
        mode = min(found)[1]
        lines += ['', f'| target, photos, median picture | {PERCEPTUAL_NAMES[mode]} '
                  '(the best against pngquant default) | target |', '|---|---|---|']
        for anchor, target in (('pngquant-fs', '<= -35%'), ('pngquant-s1', '<= -20%')):
            value = medians.get((mode, anchor, 'photos'))
            if value is not None:
                lines.append(f'| BD-rate in SSIMULACRA2 against {PERCEPTUAL_NAMES[anchor]} | '
                             f'{value:+.1f}% | {target} |')
    return '\n'.join(lines)


def _s2_bd_rates(ok, method, anchor):
    """BD-rate in SSIMULACRA2 (%) of `method` against `anchor`: {picture: rate}, finite ones only."""
    import numpy as np
    rates = {}
    for image, rows in ok.groupby('image', sort=False):
        x, y = rows[rows.method == method], rows[rows.method == anchor]
        if len(x) and len(y):
            rate = bd_rate(x.bytes, x.ssimulacra2, y.bytes, y.ssimulacra2)
            if np.isfinite(rate):
                rates[image] = rate
    return rates


def targets_table(ok):
    """kqcodec's targets and what the run measured against them, as markdown."""
    import numpy as np
    lines = ['| measure | measured | target |', '|---|---|---|']

    def add(what, value, target, fmt='{:.2f}'):
        missing = value is None or (isinstance(value, float) and not np.isfinite(value))
        lines.append(f'| {what} | {"n/a" if missing else fmt.format(value)} | {target} |')

    def ratio(frame, column, how='median'):
        if frame.empty:
            return None
        values = frame[column] / frame[column + '_o']
        return float(values.median() if how == 'median' else values.max())

    fast = _pairs(ok, 'kqcodec', 'pngquant')
    add('wall time / pngquant `--nofs`, pictures of 1 MP or more (median)',
        ratio(fast[fast.mp >= 1], 'wall_s'), '<= 0.7')
    add('wall time / pngquant `--nofs`, pictures of 0.25 MP or more (worst)',
        ratio(fast[fast.mp >= 0.25], 'wall_s', 'max'), '<= 1.0')
    best = _pairs(ok, 'kqcodec', 'pngquant-s1')
    add('bytes / pngquant `--nofs --speed 1`, same k (median)', ratio(best, 'bytes'), '<= 0.92',
        '{:.3f}')
    finite = best[np.isfinite(best.psnr) & np.isfinite(best.psnr_o)]
    add('PSNR - pngquant `--nofs --speed 1`, same k (median)',
        float((finite.psnr - finite.psnr_o).median()) if len(finite) else None, '> 0',
        '{:+.2f} dB')
    rates = _bd_rates(ok, 'kqcodec', 'pngquant-s1')
    add('BD-rate in PSNR against pngquant `--nofs --speed 1` (median picture)',
        float(rates.median()) if len(rates) else None, '<= -12%', '{:+.1f}%')
    if len(rates):
        add(f'BD-rate, worst picture ({rates.idxmax()})', float(rates.max()), '<= 0%', '{:+.1f}%')
    quick = _pairs(ok, 'kqcodec-s10', 'pngquant')
    add('`--speed 10`: wall time / pngquant `--nofs`, 1 MP or more (median)',
        ratio(quick[quick.mp >= 1], 'wall_s'), '<= 0.4')
    add('`--speed 10`: bytes / pngquant `--nofs --speed 1`, same k (median)',
        ratio(_pairs(ok, 'kqcodec-s10', 'pngquant-s1'), 'bytes'), '<= 1.00', '{:.3f}')
    kq = ok[ok.method == 'kqcodec']
    for r in kq[(kq.k == 256) & (kq.mp >= 10)].itertuples():
        add(f'{r.image} ({r.mp:.1f} MP) at k=256: wall time, peak RSS', (r.wall_s, r.rss_mb),
            '<= 0.7 s, <= 150 MB', '{0[0]:.2f} s, {0[1]:.0f} MB')
    small = kq[(kq.mp >= 0.2) & (kq.mp <= 0.3)]
    if len(small):
        add('wall time, pictures of 0.2 to 0.3 MP (worst)', float(small.wall_s.max()),
            '<= 0.35 s', '{:.2f} s')
    three = _pairs(ok, 'kqcodec', 'pngquant3')
    if len(three):
        add('wall time / pngquant 3 `--nofs`, pictures of 1 MP or more (median)',
            ratio(three[three.mp >= 1], 'wall_s'), '< 1')
        finite = three[np.isfinite(three.psnr) & np.isfinite(three.psnr_o)]
        add('PSNR - pngquant 3 `--nofs`, same k (median)',
            float((finite.psnr - finite.psnr_o).median()) if len(finite) else None, '> 0',
            '{:+.2f} dB')
    text = '\n'.join(lines)
    if len(rates):
        text += '\n\nBD-rate per picture: ' + ', '.join(
            f'{name} {rate:+.1f}%' for name, rate in rates.sort_values().items())
    return text


def parse_args(argv):
    """Parse the command line of the benchmark (not of worker mode)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('folder', nargs='?', type=Path, default=DEFAULT_FOLDER,
                   help='folder of images to benchmark (default: ../shared/corpus/public)')
    p.add_argument('-k', default='16,64,256',
                   help='comma-separated palette sizes (default: 16,64,256)')
    p.add_argument('--methods', default=','.join(METHODS),
                   help=f'comma-separated subset of: {", ".join(METHODS)}')
    p.add_argument('--repeat', type=int, default=1,
                   help='runs per method; the minimum wall time is kept (default: 1)')
    p.add_argument('--csv', type=Path, help='save the raw rows to this CSV file (after each picture)')
    p.add_argument('--from-csv', type=Path, nargs='+', metavar='PATH',
                   help='print the tables of rows saved by --csv instead of running anything; '
                        'several files (runs of other methods) are read as one table')
    p.add_argument('--pngquant3', metavar='PATH',
                   help='the pngquant 3.x binary (e.g. from the pngquant-cli package of PyPI, in a '
                        'scratch environment); without it the pngquant3 method is skipped')
    p.add_argument('--ssimulacra2', action='store_true',
                   help='also measure SSIMULACRA2 and print the rate-distortion comparison')
    p.add_argument('--ssimulacra2-tool', metavar='PATH',
                   help='the reference ssimulacra2 executable (implies --ssimulacra2); without '
                        'it the PyPI port scores (slow: about 6 s a megapixel)')
    p.add_argument('--port-check-mp', type=float, default=1.5, metavar='MP',
                   help='with the tool, also score pictures up to MP megapixels with the port, '
                        'to compare the two (default: 1.5)')
    p.add_argument('--max-mp-notebook', type=float, default=1.0,
                   help='run the slow notebook method only up to this many megapixels')
    args = p.parse_args(argv)
    args.ks = [int(k) for k in args.k.split(',')]
    args.ssimulacra2 = args.ssimulacra2 or bool(args.ssimulacra2_tool)
    args.methods = [m.strip() for m in args.methods.split(',') if m.strip()]
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        p.error(f'unknown method(s): {", ".join(sorted(unknown))}')
    if args.repeat < 1:
        p.error('--repeat must be at least 1')
    return args


def main(argv=None):
    """Benchmark every image in the folder and print the tables."""
    args = parse_args(argv)
    import pandas as pd
    if args.from_csv:
        df = pd.concat([pd.read_csv(path, keep_default_na=False, na_values=[''])
                        for path in args.from_csv], ignore_index=True)
        twice = df[df.duplicated(['image', 'k', 'method'], keep=False)]
        if not twice.empty:
            first = twice.iloc[0]
            sys.exit(f'bench.py: {len(twice)} rows share a picture, k and method across the CSV '
                     f'files (e.g. {first.image}, k={first.k}, {first.method}): give each run once')
    else:
        df = run_all(args)
    with pd.option_context('display.width', 250, 'display.max_columns', None,
                           'display.max_colwidth', 60):
        report(df)
    ok = df[df.status == 'ok']
    if not ok.empty:
        print('\nREADME tables (markdown):\n')
        print(readme_tables(ok))
        if 'ssimulacra2' in ok and ok.ssimulacra2.notna().any():
            print('\nREADME perceptual tables (markdown; BD-rate: pictures where the score ranges '
                  'meet in brackets):\n')
            print(perceptual_tables(ok))


def run_all(args):
    """Run every method on every picture; the rows so far go to --csv after each picture."""
    import pandas as pd
    images = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        sys.exit(f'no images in {args.folder}')
    commands, notes = build_commands(args.methods, args.pngquant3)
    for note in notes:
        print(note, flush=True)  # before the progress lines on stderr
    if not commands:
        sys.exit('none of the methods can run')
    rows = []
    with tempfile.TemporaryDirectory(prefix='kqbench-') as tmp:
        for i, src in enumerate(images):
            try:
                rows += bench_image(src, args.ks, commands, args, tmp, i)
            except OSError as exc:  # an unreadable picture should not end the run
                print(f'{src.name} skipped: {exc}')
            if args.csv:
                pd.DataFrame(rows).to_csv(args.csv, index=False)
    if args.csv:
        print(f'Raw rows written to {args.csv}')
    return pd.DataFrame(rows)


if __name__ == '__main__':
    if sys.argv[1:2] == ['--worker']:
        run_worker(sys.argv[2:])
    else:
        main()
