# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""PNG row unfiltering, the one loop numpy cannot express.

The Average and Paeth filters make every byte depend on the byte just
reconstructed to its left, so a row is a sequential chain: in numpy that is
one Python step per byte.  Validation, the zlib stream and the unpacking of
samples stay in :mod:`kqcodec.pngread`; this only runs the five filters of
https://www.w3.org/TR/png/#9Filters, without the GIL.
"""

from libc.stdlib cimport abs as iabs


cdef inline unsigned char _paeth(int a, int b, int c) noexcept nogil:
    """The Paeth predictor (PNG #9.4), without a branch on the data.

    Photos' rows are nearly all Paeth, and which neighbour it picks is
    noise to a branch predictor: written as selects, the compiler makes
    conditional moves, and the bytes of neighbouring pixels, which do not
    depend on each other, go through the processor side by side.
    """
    cdef int pa = iabs(b - c), pb = iabs(a - c), pc = iabs(a + b - 2 * c)
    cdef int bc = b if pb <= pc else c
    return <unsigned char>(a if (pa <= pb) & (pa <= pc) else bc)


cdef inline void _paeth_pixels(const unsigned char *f, unsigned char *x, const unsigned char *up,
                               Py_ssize_t n, int bpp) noexcept nogil:
    """Paeth on a row of whole pixels of `bpp` bytes (n a multiple of bpp, bpp <= 8).

    The pixel to the left is kept in locals, not read back from the row,
    which would put a store and a load in every byte's chain; called with a
    constant `bpp`, the compiler unrolls the lanes and keeps them in
    registers, side by side.
    """
    cdef int left[8]
    cdef int corner[8]
    cdef int above, j
    cdef Py_ssize_t i
    for j in range(bpp):
        left[j] = <unsigned char>(f[j] + up[j])
        corner[j] = up[j]
        x[j] = <unsigned char>left[j]
    i = bpp
    while i < n:
        for j in range(bpp):
            above = up[i + j]
            left[j] = <unsigned char>(f[i + j] + _paeth(left[j], above, corner[j]))
            x[i + j] = <unsigned char>left[j]
            corner[j] = above
        i += bpp


def unfilter(const unsigned char[:, ::1] raw, unsigned char[:, ::1] out, Py_ssize_t bpp,
             const unsigned char[::1] above=None):
    """Undo the row filters of one pass of scanlines.

    Parameters
    ----------
    raw : (R, 1 + N) uint8 C-contiguous array
        Scanlines as inflated: a filter type byte, then N filtered bytes.
    out : (R, N) uint8 C-contiguous array
        Receives the reconstructed bytes (allocated by the caller).
    bpp : {1, 2, 3, 4, 6, 8}
        Bytes per complete pixel (the filters' left distance): 1 for depths
        of 8 bits and less.
    above : (N,) uint8 array, optional
        The reconstructed row above the first, when the pass is read in
        blocks of rows; zeros (the start of a pass) if not given.

    Returns
    -------
    int
        -1 when every row was done, else the index of the first row whose
        filter type is not 0 to 4 (that row and the next are left undone).

    Raises
    ------
    ValueError
        For arrays of other shapes, or another `bpp`.
    """
    cdef Py_ssize_t rows = raw.shape[0]
    cdef Py_ssize_t n = out.shape[1]
    cdef Py_ssize_t y, i
    cdef int a, kind
    cdef Py_ssize_t bad = -1
    cdef bint first_is_top
    cdef const unsigned char *f
    cdef unsigned char *x
    cdef const unsigned char *up
    if rows == 0 or n == 0:
        return -1
    if raw.shape[1] != n + 1 or out.shape[0] != rows or bpp not in (1, 2, 3, 4, 6, 8) or n % bpp:
        raise ValueError("raw must be (R, 1 + N) and out (R, N), with bpp 1, 2, 3, 4, 6 or 8 "
                         "dividing N")
    if above is not None and above.shape[0] != n:
        raise ValueError("above must be a row of N bytes")
    first_is_top = above is None
    with nogil:
        for y in range(rows):
            f = &raw[y, 1]
            x = &out[y, 0]
            kind = raw[y, 0]
            if y == 0 and first_is_top:
                # The row above the first is all zeros: Up is None, Paeth is Sub.
                if kind == 2:
                    kind = 0
                elif kind == 4:
                    kind = 1
                elif kind == 3:
                    for i in range(n):
                        a = x[i - bpp] if i >= bpp else 0
                        x[i] = <unsigned char>(f[i] + (a >> 1))
                    continue
            elif y == 0:
                up = &above[0]
            else:
                up = &out[y - 1, 0]
            if kind == 0:
                for i in range(n):
                    x[i] = f[i]
            elif kind == 1:
                for i in range(n):
                    x[i] = <unsigned char>(f[i] + (x[i - bpp] if i >= bpp else 0))
            elif kind == 2:
                for i in range(n):
                    x[i] = <unsigned char>(f[i] + up[i])
            elif kind == 3:
                for i in range(bpp if bpp < n else n):
                    x[i] = <unsigned char>(f[i] + (up[i] >> 1))
                for i in range(bpp, n):
                    x[i] = <unsigned char>(f[i] + ((x[i - bpp] + up[i]) >> 1))
            elif kind == 4:
                # A constant bpp for each of PNG's pixel sizes (see _paeth_pixels).
                if bpp == 1:
                    _paeth_pixels(f, x, up, n, 1)
                elif bpp == 2:
                    _paeth_pixels(f, x, up, n, 2)
                elif bpp == 3:
                    _paeth_pixels(f, x, up, n, 3)
                elif bpp == 4:
                    _paeth_pixels(f, x, up, n, 4)
                elif bpp == 6:
                    _paeth_pixels(f, x, up, n, 6)
                else:
                    _paeth_pixels(f, x, up, n, 8)
            else:
                bad = y
                break
    return bad
