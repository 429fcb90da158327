"""Measure where the palette search should measure color distances.

For each picture and k the palette search runs in one color space after
another, and each file is scored: bytes of the palette PNG, PSNR and
SSIMULACRA2.  Prints each row, then per space the median (over the
pictures) of its BD-rate in SSIMULACRA2 against RGB (bytes at equal score,
as in bench.py) and of its differences from RGB at each k.

    python benchmarks/spaces.py [--ssimulacra2-tool PATH] [--pictures A,B] [-k 16,64,256]
                                [--variants "A;B"] [--pngquant]

With --pngquant, pngquant 2's default (dithered) and ``--nofs --speed 1``
run on the same pictures, and the summary adds each variant's median
BD-rate against them.

The spaces kqcodec offers (``rgb``, ``oklab``, ``rgb+oklab``,
``perceptual``) run through :func:`kqcodec.quantize`, also dithered at a
few strengths.  The others are candidates that were not kept: the same
weighted k-means (:func:`kqcodec.kmeans.weighted_kmeans`) on other
features, each color mapped to its nearest entry in those features:

- ``rgb+oklab xW``: RGB followed by W x 255 x Oklab (kqcodec's is W = 2.5);
- ``pngquant-like``: libimagequant's internal space, code values to the
  power 0.57 / 0.45455 and channels weighted R 0.5, G 1, B 0.45; also with
  only the power or only the weights;
- ``oklab L xW``: Oklab with its lightness weighted W (below 1: chroma
  counts more);
- ``oklab, entries ...``: Oklab clusters whose entries are the mean of
  their colors in sRGB code values or in linear light, not in Oklab;
- ``oklab, then rgb``: the Oklab palette refined by Lloyd iterations in RGB;
- ``perceptual, masked W``: kqcodec's ``perceptual`` with another weight
  for pixels on edges and in texture (kqcodec's is 0.3);
- ``oklab, reuse M[, edges xF]``: ``oklab`` with ``--reuse M``, the margin
  F times as wide on edges and in texture (kqcodec's is M = 1, F = 3), the
  palette refitted to the mapping as ``--reuse`` does; ``, no refits`` /
  ``, 1 refit``: the same with the palette refitted 0 or 1 times instead of
  ``quantizer.REUSE_REFITS``.

Opaque pictures only.  Without --ssimulacra2-tool the PyPI port scores
(slower; see the README on how far it is from the reference tool).
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import kqcodec
from kqcodec import dither, imageio, kmeans, metrics, oklab, quantizer
from kqcodec.nearest import Assignment
from kqcodec.paletteimage import PaletteImage

from bench import bd_rate, ssimulacra2_score

CORPUS = Path(__file__).resolve().parents[2] / 'shared/corpus/public'
PICTURES = ('skimage_rocket.jpg', 'skimage_coffee.png', 'sklearn_china.jpg', 'skimage_astronaut.png',
            'mate_Dune.jpg', 'skimage_hubble_deep_field.jpg', 'lomiri_Picture_1A_by_freespace.jpg')
PNGQUANT_POWER = 0.57 / 0.45455
PNGQUANT_WEIGHTS = np.array([0.5, 1.0, 0.45])


def _power_weights(power, weights):
    """Features code ** power x weights (weights scaled to a mean square of 1), and back."""
    weights = weights / np.sqrt(np.mean(weights ** 2))
    forward = lambda rgb: 255.0 * (rgb / 255.0) ** power * weights
    back = lambda f: 255.0 * np.clip(f / (255.0 * weights), 0, None) ** (1 / power)
    return forward, back


def _mixed(weight):
    forward = lambda rgb: np.hstack([rgb, weight * 255.0 * oklab.rgb_to_oklab(rgb)])
    return forward, lambda f: f[:, :3]


def _oklab(lightness, entries=None):
    scale = np.array([lightness, 1.0, 1.0]) * 255.0
    return (lambda rgb: oklab.rgb_to_oklab(rgb) * scale,
            lambda f: oklab.oklab_to_rgb(f / scale), entries)


# name -> a space of kqcodec.quantize, or (features, back to sRGB) of (U, 3) float64 arrays.
VARIANTS = {
    'rgb': 'rgb',
    'oklab': 'oklab',
    'rgb+oklab': 'rgb+oklab',
    'rgb+oklab x1.5': _mixed(1.5),
    'rgb+oklab x3.5': _mixed(3.5),
    'rgb+oklab x5': _mixed(5.0),
    'pngquant-like': _power_weights(PNGQUANT_POWER, PNGQUANT_WEIGHTS),
    'pngquant-like, power only': _power_weights(PNGQUANT_POWER, np.ones(3)),
    'pngquant-like, weights only': _power_weights(1.0, PNGQUANT_WEIGHTS),
    'oklab L x1.5': _oklab(1.5),
    'oklab L x0.75': _oklab(0.75),
    'oklab L x0.5': _oklab(0.5),
    'oklab, entries mean sRGB': _oklab(1.0, 'srgb'),
    'oklab, entries mean linear light': _oklab(1.0, 'linear'),
    'oklab, then rgb': 'oklab, then rgb',
    'oklab, dither 0.3': ('oklab', 0.3),
    'oklab, dither 0.5': ('oklab', 0.5),
    'oklab, dither 0.7': ('oklab', 0.7),
    'perceptual': 'perceptual',
    'perceptual, masked 0.1': ('masked', 0.1),
    'perceptual, masked 0.5': ('masked', 0.5),
    'perceptual, dither 0.5': ('perceptual', 0.5),
    # kqcodec's --reuse (margin 1, three times that on edges and texture), and other margins.
    'oklab, reuse 1': ('reuse', 1.0, 3.0),
    'oklab, reuse 0.5': ('reuse', 0.5, 3.0),
    'oklab, reuse 2': ('reuse', 2.0, 3.0),
    'oklab, reuse 1, edges x2': ('reuse', 1.0, 2.0),
    'oklab, reuse 1, edges x4': ('reuse', 1.0, 4.0),
    'oklab, reuse 2, edges x1': ('reuse', 2.0, 1.0),
    'oklab, reuse 1, no refits': ('reuse', 1.0, 3.0, 0),
    'oklab, reuse 1, 1 refit': ('reuse', 1.0, 3.0, 1),
}
PNGQUANT = {'pngquant default': [], 'pngquant --nofs --speed 1': ['--nofs', '--speed', '1']}


def candidate(hist, k, space):
    """Quantize a histogram with features and their inverse; nearest mapping in them.

    A third item of `space`, if any, makes each entry the mean of its
    colors in sRGB code values ('srgb') or linear light ('linear') instead
    of the centre in the features.
    """
    forward, back, entries = (*space, None)[:3]
    colors = hist.colors.astype(np.float64)
    centre = forward(colors).mean(axis=0)
    feats = (forward(colors) - centre).astype(np.float32)
    result = kmeans.weighted_kmeans(feats, hist.counts, k)
    if entries is None:
        means = back(result.centres.astype(np.float64) + centre)
    else:
        labels = Assignment(feats, result.centres).labels
        values = colors if entries == 'srgb' else oklab.srgb_to_linear(colors)
        weights = np.bincount(labels, weights=hist.counts, minlength=k)
        sums = np.stack([np.bincount(labels, weights=hist.counts * values[:, j], minlength=k)
                         for j in range(3)], axis=1)
        means = sums[weights > 0] / weights[weights > 0, None]
        means = means if entries == 'srgb' else oklab.linear_to_srgb(means)
    palette = np.unique(np.clip(np.round(means), 0, 255).astype(np.uint8), axis=0)
    labels = Assignment(feats, (forward(palette.astype(np.float64)) - centre).astype(np.float32)).labels
    return PaletteImage(palette, hist.spread(labels.astype(np.uint8)))


def refined(pixels, hist, k):
    """The Oklab palette, then Lloyd iterations in RGB from it, mapped in RGB."""
    start = quantizer.quantize(pixels, k, histogram=hist, space='oklab').palette
    feats = hist.colors.astype(np.float32) - 128
    result = kmeans.weighted_kmeans(feats, hist.counts, len(start), init=start.astype(np.float32) - 128)
    palette = np.unique(np.clip(np.round(result.centres + 128), 0, 255).astype(np.uint8), axis=0)
    return quantizer.remap(pixels, palette, histogram=hist)


def masked(pixels, hist, k, weight):
    """kqcodec's perceptual space with `weight` for pixels on edges and in texture."""
    numbers = hist.spread(np.arange(len(hist.colors), dtype=np.int32))
    weights = np.bincount(numbers.ravel(), weights=dither.visibility(pixels, masked=weight).ravel(),
                          minlength=len(hist.colors))
    return quantizer._quantize(hist, k, space='perceptual', weights=weights)[0]


def encode(pixels, hist, k, space):
    if space == 'oklab, then rgb':
        return refined(pixels, hist, k)
    if isinstance(space, str):
        return quantizer.quantize(pixels, k, histogram=hist, space=space)
    if space[0] == 'masked':
        return masked(pixels, hist, k, space[1])
    if space[0] == 'reuse':
        image = quantizer.quantize(pixels, k, histogram=hist, space='oklab')
        return quantizer._reuse(pixels, hist, image, space[1], 'oklab', refits=(*space, None)[3],
                                masked=space[2])
    if isinstance(space[0], str):
        return quantizer.quantize(pixels, k, histogram=hist, space=space[0], dither=space[1])
    return candidate(hist, k, space)


def summary(rows, ks):
    """Per variant: median BD-rates against rgb (and pngquant) and differences from rgb at each k."""
    by = {(r[0], r[1], r[2]): r for r in rows}
    pictures = sorted({r[0] for r in rows})
    variants = list(dict.fromkeys(r[2] for r in rows))
    anchors = ['rgb'] + [name for name in PNGQUANT if name in variants]
    labels = {'rgb': 'BD rgb', 'pngquant default': 'BD pq-fs', 'pngquant --nofs --speed 1': 'BD pq-s1'}
    head = '%-32s' % 'space' + ''.join(' %9s' % labels[a] for a in anchors)
    for k in ks:
        head += ' | k=%-3d %6s %6s %6s' % (k, 'dPSNR', 'dS2', 'bytes')
    print('\nMedians over the pictures: BD-rate in SSIMULACRA2 (%) against rgb, pngquant default'
          ' (pq-fs) and pngquant --nofs --speed 1 (pq-s1); differences from rgb (PSNR in dB, bytes'
          ' as a ratio):')
    print(head)

    def median_bd(variant, anchor):
        bds = []
        for p in pictures:
            mine = [by[p, k, variant] for k in ks]
            base = [by[p, k, anchor] for k in ks]
            bds.append(bd_rate([r[3] for r in mine], [r[5] for r in mine],
                               [r[3] for r in base], [r[5] for r in base]))
        return np.nanmedian(bds)

    for variant in variants:
        line = '%-32s' % variant + ''.join(
            ' %+9.1f' % (median_bd(variant, a) if variant != a else 0.0) for a in anchors)
        for k in ks:
            d = np.array([[by[p, k, variant][4] - by[p, k, 'rgb'][4],
                           by[p, k, variant][5] - by[p, k, 'rgb'][5],
                           by[p, k, variant][3] / by[p, k, 'rgb'][3]] for p in pictures])
            line += ' |       %+6.2f %+6.1f %6.3f' % tuple(np.median(d, axis=0))
        print(line)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--ssimulacra2-tool', metavar='PATH', help='the reference ssimulacra2 executable')
    p.add_argument('--pictures', default=','.join(PICTURES))
    p.add_argument('-k', default='16,64,256')
    p.add_argument('--variants', default=';'.join(VARIANTS),
                   help='semicolon-separated subset of the variants (rgb is always measured)')
    p.add_argument('--pngquant', action='store_true',
                   help="also run pngquant's default and --nofs --speed 1 (pngquant on PATH)")
    args = p.parse_args(argv)
    ks = [int(k) for k in args.k.split(',')]
    chosen = ['rgb'] + [v for v in args.variants.split(';') if v and v != 'rgb']
    unknown = set(chosen) - set(VARIANTS)
    if unknown:
        p.error(f'unknown variant(s): {", ".join(sorted(unknown))}')
    pngquant = shutil.which('pngquant') if args.pngquant else None
    if args.pngquant and not pngquant:
        p.error('pngquant not found on PATH')
    rows = []
    with tempfile.TemporaryDirectory(prefix='kqspaces-') as tmp:
        src, out = Path(tmp) / 'src.png', Path(tmp) / 'out.png'
        for name in args.pictures.split(','):
            pixels = np.ascontiguousarray(kqcodec.read_image(CORPUS / name)[..., :3])
            imageio.write_image(src, pixels, force=True)
            hist = quantizer.prepare(pixels)
            for k in ks:
                for variant in chosen + (list(PNGQUANT) if pngquant else []):
                    if variant in PNGQUANT:
                        subprocess.run([pngquant, *PNGQUANT[variant], '--strip', '--force', '-o',
                                        str(out), str(k), str(src)], check=True)
                        data = out.read_bytes()
                        decoded = np.ascontiguousarray(imageio.read_image(out)[..., :3])
                    else:
                        image = encode(pixels, hist, k, VARIANTS[variant])
                        data = image.to_png()
                        out.write_bytes(data)
                        decoded = image.to_pixels()
                    rows.append((name, k, variant, len(data), metrics.psnr(pixels, decoded),
                                 ssimulacra2_score(args.ssimulacra2_tool, src, out, pixels, decoded)))
                    print('%-36s k=%-3d %-32s %8d B %6.2f dB S2 %6.2f' % rows[-1], flush=True)
    summary(rows, ks)


if __name__ == '__main__':
    sys.exit(main())
