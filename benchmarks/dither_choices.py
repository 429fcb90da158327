"""Measure the choices inside kqcodec's dithering, one at a time.

For each picture and k, the palette is found once; then the indices come
from nearest mapping or from error diffusion with one choice changed (error
space, error limit, floor, the map), and each result is scored: bytes of the
palette PNG, PSNR, SSIMULACRA2.  Prints each row and the medians per variant.

    python benchmarks/dither_choices.py [--ssimulacra2-tool PATH] [--pictures A,B] [-k 16,64]

Without --ssimulacra2-tool the PyPI port scores (slower; see the README on
how far it is from the reference tool).  Pictures come from
../shared/corpus/public.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import kqcodec
from kqcodec import dither, imageio, metrics, quantizer
from kqcodec.paletteimage import PaletteImage

from bench import ssimulacra2_score

CORPUS = Path(__file__).resolve().parents[2] / 'shared/corpus/public'
PICTURES = ('skimage_rocket.jpg', 'skimage_coffee.png', 'sklearn_china.jpg', 'skimage_astronaut.png',
            'mate_Dune.jpg', 'skimage_hubble_deep_field.jpg', 'lomiri_Picture_1A_by_freespace.jpg')
# name -> keyword arguments of dither.dither_indices (None: nearest mapping);
# 'map' gives the (low, high) contrast of dither.dither_map, or 'off' for none.
VARIANTS = {
    'nearest': None,
    'default': {},
    'sRGB error': {'space': 'srgb'},
    'linear-light error': {'space': 'linear'},
    'no limit': {'limit': 1e9},
    'limit 12': {'limit': 12.0},
    'limit 24': {'limit': 24.0},
    'no floor': {'floor': 0.0},
    'floor 4': {'floor': 4.0},
    'map 8-32': {'map': (8, 32)},
    'map 24-64': {'map': (24, 64)},
    'no map, no limit, no floor': {'map': 'off', 'limit': 1e9, 'floor': 0.0},
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--ssimulacra2-tool', metavar='PATH', help='the reference ssimulacra2 executable')
    p.add_argument('--pictures', default=','.join(PICTURES))
    p.add_argument('-k', default='16,64')
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix='kqdither-') as tmp:
        src, out = Path(tmp) / 'src.png', Path(tmp) / 'out.png'
        for name in args.pictures.split(','):
            pixels = kqcodec.read_image(CORPUS / name)
            imageio.write_image(src, pixels, force=True)
            hist = quantizer.prepare(pixels)
            for k in map(int, args.k.split(',')):
                base = quantizer.quantize(pixels, k, histogram=hist)
                for variant, options in VARIANTS.items():
                    if options is None:
                        image = base
                    else:
                        options = dict(options)
                        chosen = options.pop('map', None)
                        weight = (np.ones(pixels.shape[:2], np.float32) if chosen == 'off' else
                                  dither.dither_map(pixels, low=chosen[0], high=chosen[1])
                                  if chosen else None)
                        indices = dither.dither_indices(pixels, base.palette, base.indices, 1.0,
                                                        weight=weight, histogram=hist, **options)
                        image = PaletteImage(base.palette, indices)
                    data = image.to_png()
                    out.write_bytes(data)
                    decoded = image.to_pixels()
                    rows.append((name, k, variant, len(data), metrics.psnr(pixels, decoded),
                                 ssimulacra2_score(args.ssimulacra2_tool, src, out, pixels, decoded)))
                    print('%-36s k=%-3d %-28s %8d B %6.2f dB S2 %6.2f' % rows[-1], flush=True)
    print('\nMedians over the pictures (bytes as a ratio to nearest mapping):')
    print('%-5s %-28s %8s %8s %8s' % ('k', 'variant', 'bytes', 'PSNR', 'S2'))
    for k in sorted({r[1] for r in rows}):
        nearest = {r[0]: r[3] for r in rows if r[1] == k and r[2] == 'nearest'}
        for variant in VARIANTS:
            sel = [r for r in rows if r[1] == k and r[2] == variant]
            print('%-5d %-28s %8.3f %8.2f %8.2f' % (
                k, variant, np.median([r[3] / nearest[r[0]] for r in sel]),
                np.median([r[4] for r in sel]), np.median([r[5] for r in sel])))


if __name__ == '__main__':
    sys.exit(main())
