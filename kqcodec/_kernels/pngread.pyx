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


cdef inline void _paeth_row(const unsigned char *f, unsigned char *x, const unsigned char *up,
                            Py_ssize_t n, Py_ssize_t bpp) noexcept nogil:
    """Undo Paeth on one row of n bytes, `bpp` of them a pixel (n > bpp)."""
    cdef Py_ssize_t i
    for i in range(bpp):
        x[i] = <unsigned char>(f[i] + up[i])
    for i in range(bpp, n):
        x[i] = <unsigned char>(f[i] + _paeth(x[i - bpp], up[i], up[i - bpp]))


cdef void _paeth_row3(const unsigned char *f, unsigned char *x, const unsigned char *up,
                      Py_ssize_t n) noexcept nogil:
    """Paeth on an RGB row (n a multiple of 3 and > 3), the previous pixel kept in registers.

    Reading it back from the row would put a store and a load in every
    byte's chain; as three locals the three lanes run side by side.
    """
    cdef Py_ssize_t i
    cdef int a0 = <unsigned char>(f[0] + up[0])
    cdef int a1 = <unsigned char>(f[1] + up[1])
    cdef int a2 = <unsigned char>(f[2] + up[2])
    cdef int c0 = up[0], c1 = up[1], c2 = up[2], b0, b1, b2
    x[0] = <unsigned char>a0
    x[1] = <unsigned char>a1
    x[2] = <unsigned char>a2
    for i in range(3, n, 3):
        b0 = up[i]
        b1 = up[i + 1]
        b2 = up[i + 2]
        a0 = <unsigned char>(f[i] + _paeth(a0, b0, c0))
        a1 = <unsigned char>(f[i + 1] + _paeth(a1, b1, c1))
        a2 = <unsigned char>(f[i + 2] + _paeth(a2, b2, c2))
        x[i] = <unsigned char>a0
        x[i + 1] = <unsigned char>a1
        x[i + 2] = <unsigned char>a2
        c0 = b0
        c1 = b1
        c2 = b2


cdef void _paeth_row4(const unsigned char *f, unsigned char *x, const unsigned char *up,
                      Py_ssize_t n) noexcept nogil:
    """Paeth on an RGBA row (n a multiple of 4 and > 4), as :func:`_paeth_row3`."""
    cdef Py_ssize_t i
    cdef int a0 = <unsigned char>(f[0] + up[0])
    cdef int a1 = <unsigned char>(f[1] + up[1])
    cdef int a2 = <unsigned char>(f[2] + up[2])
    cdef int a3 = <unsigned char>(f[3] + up[3])
    cdef int c0 = up[0], c1 = up[1], c2 = up[2], c3 = up[3], b0, b1, b2, b3
    x[0] = <unsigned char>a0
    x[1] = <unsigned char>a1
    x[2] = <unsigned char>a2
    x[3] = <unsigned char>a3
    for i in range(4, n, 4):
        b0 = up[i]
        b1 = up[i + 1]
        b2 = up[i + 2]
        b3 = up[i + 3]
        a0 = <unsigned char>(f[i] + _paeth(a0, b0, c0))
        a1 = <unsigned char>(f[i + 1] + _paeth(a1, b1, c1))
        a2 = <unsigned char>(f[i + 2] + _paeth(a2, b2, c2))
        a3 = <unsigned char>(f[i + 3] + _paeth(a3, b3, c3))
        x[i] = <unsigned char>a0
        x[i + 1] = <unsigned char>a1
        x[i + 2] = <unsigned char>a2
        x[i + 3] = <unsigned char>a3
        c0 = b0
        c1 = b1
        c2 = b2
        c3 = b3


def unfilter(const unsigned char[:, ::1] raw, unsigned char[:, ::1] out, Py_ssize_t bpp,
             const unsigned char[::1] above=None):
    """Undo the row filters of one pass of scanlines.

    Parameters
    ----------
    raw : (R, 1 + N) uint8 C-contiguous array
        Scanlines as inflated: a filter type byte, then N filtered bytes.
    out : (R, N) uint8 C-contiguous array
        Receives the reconstructed bytes (allocated by the caller).
    bpp : int
        Bytes per complete pixel, at least 1 (the filters' left distance).
    above : (N,) uint8 array, optional
        The reconstructed row above the first, when the pass is read in
        blocks of rows; zeros (the start of a pass) if not given.

    Returns
    -------
    int
        -1 when every row was done, else the index of the first row whose
        filter type is not 0 to 4 (that row and the next are left undone).
    """
    cdef Py_ssize_t rows = raw.shape[0]
    cdef Py_ssize_t n = out.shape[1]
    cdef Py_ssize_t y, i
    cdef int a, b, c, p, pa, pb, pc, kind
    cdef Py_ssize_t bad = -1
    cdef bint first_is_top
    cdef const unsigned char *f
    cdef unsigned char *x
    cdef const unsigned char *up
    if rows == 0 or n == 0:
        return -1
    if raw.shape[1] != n + 1 or out.shape[0] != rows or bpp < 1:
        raise ValueError("raw must be (R, 1 + N) and out (R, N), with bpp >= 1")
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
                if n <= bpp:
                    for i in range(n):
                        x[i] = <unsigned char>(f[i] + up[i])
                elif bpp == 3 and n % 3 == 0:
                    _paeth_row3(f, x, up, n)
                elif bpp == 4 and n % 4 == 0:
                    _paeth_row4(f, x, up, n)
                else:
                    _paeth_row(f, x, up, n, bpp)
            else:
                bad = y
                break
    return bad
