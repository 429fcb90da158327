"""The bytes of a palette PNG's image data: packing, filters, palette order, deflate.

The pixels are fixed by the time the file is written, but their bytes are
not: the palette may be permuted, each row may use one of five filters, and
deflate has levels.  These choices change the file size by several percent:

* With filter type 0 (none) the order of the palette does not matter:
  deflate sees the same symbols under other names.  With a predicting filter
  it does: entries that often stand next to each other should have close
  numbers.  :func:`adjacency_order` chains the entries greedily by how often
  they are neighbours in the image.
* The per-row filter is chosen by the usual heuristic (least sum of
  absolute signed bytes, as libpng does).
* Both layouts (unfiltered, and reordered + filtered) are compressed, on two
  threads, at the strongest level the image size allows, and the smaller is
  kept: a quick trial compression does not predict the winner.  libdeflate
  (the ``deflate`` package) at level 10 gives files about 5% smaller than
  zlib at level 9, at level 12 about 6%; zlib is the fallback.

No function here knows about chunks; :mod:`pngfile` writes them.
"""

import threading
import zlib

import numpy as np

from ._kernels import layout as kernels

try:  # libdeflate: smaller and faster than zlib at its high levels
    import deflate as _libdeflate
except ImportError:  # pragma: no cover - the fallback is plain zlib
    _libdeflate = None

__all__ = [
    "bit_depth_for",
    "pack_rows",
    "adjacency_order",
    "compress",
    "image_data",
]

# libdeflate's level 10 starts its near-optimal parsing: about 7% smaller
# than levels 6 to 9 (and zlib's 9) at about 0.17 s per MB of image data,
# against 0.03 s at level 6.  Images up to this many bytes of image data
# (4 megapixels at 8 bits) get level 10; larger ones level 6.
_STRONG_UP_TO = 4 << 20
_STRONG_LEVEL = 10
_FAST_LEVEL = 6
# Small images afford level 12, a few percent smaller again.
_STRONGEST_UP_TO = 1 << 19
# Filters and reordering are tried up to the same size.
_TRY_FILTERS_UP_TO = _STRONG_UP_TO


def bit_depth_for(entries):
    """Return the smallest PNG palette bit depth (1, 2, 4 or 8) that holds `entries`."""
    for depth in (1, 2, 4, 8):
        if entries <= 1 << depth:
            return depth
    raise ValueError(f"a palette holds at most 256 entries, not {entries}")


def pack_rows(indices, depth):
    """Pack indices into bytes, leftmost pixel in the high bits (PNG #7.2).

    Parameters
    ----------
    indices : (H, W) uint8 ndarray
        Every value below ``2 ** depth``.
    depth : {1, 2, 4, 8}

    Returns
    -------
    (H, ceil(W * depth / 8)) uint8 ndarray
    """
    if depth == 8:
        return indices
    out = np.empty((indices.shape[0], -(-indices.shape[1] * depth // 8)), np.uint8)
    kernels.pack_rows(np.ascontiguousarray(indices), depth, out)
    return out


def _scanlines(rows, kinds):
    """Prefix each row with its filter type byte."""
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0] = kinds
    out[:, 1:] = rows
    return out


def _adaptive(rows):
    """Filter each row with the type whose output has the least absolute sum."""
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    kernels.adaptive_filter(np.ascontiguousarray(rows), out)
    return out


def adjacency_order(indices, entries, *, first=0):
    """A palette order that numbers often-adjacent entries consecutively.

    Builds the counts of horizontally and vertically adjacent index pairs
    and covers the entries with paths, taking the heaviest pairs first
    (greedy matching, as for a travelling-salesman tour), then joins the
    paths.  Entries ``0..first-1`` (the transparent ones) stay first.

    Parameters
    ----------
    indices : (H, W) uint8 ndarray
    entries : int
        Palette size P.
    first : int
        How many leading entries keep their place at the front.

    Returns
    -------
    (P,) int64 ndarray
        ``order[new] = old``.
    """
    counts = np.zeros((entries, entries), np.int64)
    kernels.neighbour_counts(np.ascontiguousarray(indices, np.uint8), counts)
    counts = counts + counts.T
    np.fill_diagonal(counts, 0)
    popularity = np.bincount(indices.ravel(), minlength=entries)
    fixed = list(range(first))
    movable = np.arange(first, entries)
    sub = counts[np.ix_(movable, movable)]
    rows, cols = np.triu_indices(len(movable), 1)
    weight = sub[rows, cols]
    keep = weight > 0
    rows, cols, weight = rows[keep], cols[keep], weight[keep]
    degree = np.zeros(len(movable), np.int64)
    parent = list(range(len(movable)))
    links = [[] for _ in movable]

    def root(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for e in np.argsort(-weight, kind="stable"):
        a, b = int(rows[e]), int(cols[e])
        if degree[a] == 2 or degree[b] == 2:
            continue
        ra, rb = root(a), root(b)
        if ra == rb:
            continue
        parent[ra] = rb
        degree[a] += 1
        degree[b] += 1
        links[a].append(b)
        links[b].append(a)
    # Walk each path from an end; paths are joined most popular first.
    seen = np.zeros(len(movable), bool)
    paths = []
    for start in np.argsort(-popularity[movable], kind="stable"):
        if seen[start]:
            continue
        end = int(start)
        previous = -1
        while True:  # go to one end of the path
            step = [n for n in links[end] if n != previous]
            if not step:
                break
            previous, end = end, step[0]
        path, previous, node = [], -1, end
        while node != -1:
            path.append(node)
            seen[node] = True
            step = [n for n in links[node] if n != previous]
            previous, node = node, (step[0] if step else -1)
        paths.append(path)
    order = fixed + [int(movable[i]) for path in paths for i in path]
    return np.array(order, np.int64)


def compress(data, level):
    """Return a zlib stream of `data` (libdeflate when available)."""
    if _libdeflate is not None:
        return _libdeflate.zlib_compress(data, level)
    return zlib.compress(data, min(level, 9))


def _final_level(size):
    if size > _STRONG_UP_TO:
        return _FAST_LEVEL
    if _libdeflate is None:
        return 9
    return 12 if size <= _STRONGEST_UP_TO else _STRONG_LEVEL


def image_data(indices, palette):
    """Choose the byte layout of a palette image and compress it.

    Parameters
    ----------
    indices : (H, W) uint8 ndarray
    palette : (P, 3) or (P, 4) uint8 ndarray
        RGBA entries with alpha < 255 come first and stay first.

    Returns
    -------
    order : (P,) int64 ndarray
        The palette order to write: entry ``order[i]`` becomes entry i.
    data : bytes
        The zlib stream for IDAT.
    """
    entries = len(palette)
    depth = bit_depth_for(entries)
    identity = np.arange(entries)
    plain = _scanlines(pack_rows(indices, depth), 0).tobytes()
    level = _final_level(len(plain))
    if entries < 3 or len(plain) > _TRY_FILTERS_UP_TO:
        return identity, compress(plain, level)
    first = int((palette[:, 3] < 255).sum()) if palette.shape[1] == 4 else 0
    order = adjacency_order(indices, entries, first=first)
    renumber = np.empty(entries, np.uint8)
    renumber[order] = np.arange(entries, dtype=np.uint8)
    # Compress the plain scanlines on a second thread while the filtered
    # layout is built, then compress that: deflate releases the GIL.  A quick
    # trial compression does not predict which will win at the final level.
    results = {}

    def compress_plain():
        try:
            results["plain"] = compress(plain, level)
        except BaseException as exc:  # re-raised below, in the caller's thread
            results["error"] = exc

    worker = threading.Thread(target=compress_plain)
    worker.start()
    try:
        filtered = _adaptive(pack_rows(renumber[indices], depth)).tobytes()
        results["filtered"] = compress(filtered, level)
    finally:
        worker.join()
    if "error" in results:
        raise results["error"]
    if len(results["filtered"]) < len(results["plain"]):
        return order, results["filtered"]
    return identity, results["plain"]
