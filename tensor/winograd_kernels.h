/* tensor/winograd_kernels.h — the input, output and weight-gradient transforms of
 * tensor/winograd.c, written once for float and double and every instruction set:
 * winograd.c includes this file once per (type, set), with T the element type, TARGET
 * the set's target attribute (empty for the baseline) on every function, so that the
 * helpers are compiled for the set even where not inlined, and FN(name) giving the
 * copy's name (row_split_f32_generic, input_f64_avx512, ...). Real functions, so a
 * debugger steps through their lines (this file's) and shows their variables; not a
 * header of its own (no include guard), and nothing else includes it. What each
 * transform computes is described in winograd.c above its #include. */

/* One input row (src, element stride ws) split into the even and odd columns of the
 * padded row, e and o (tw + 1 each, padding already zeroed: the caller zeroes it once):
 * row[j] is padded column j + pw. */
INLINE TARGET void FN(row_split)(const T *src, int64_t ws, int64_t w, int64_t pw, T *restrict e,
                          T *restrict o)
{
    int64_t half = w / 2;
    /* row[2k] and row[2k + 1] land in (de, dodd)[k] */
    T *restrict de = pw % 2 ? o + (pw - 1) / 2 : e + pw / 2;
    T *restrict dodd = pw % 2 ? e + (pw + 1) / 2 : o + pw / 2;
    if (ws == 1) {
        SIMD for (int64_t k = 0; k < half; k++) {
            de[k] = src[2 * k];
            dodd[k] = src[2 * k + 1];
        }
    } else {
        for (int64_t k = 0; k < half; k++) {
            de[k] = src[2 * k * ws];
            dodd[k] = src[(2 * k + 1) * ws];
        }
    }
    if (w % 2)
        de[half] = src[(w - 1) * ws];
}

/* h = d B for the tw tiles of one split row: tile t's d0..d3 are e[t], o[t], e[t + 1],
 * o[t + 1] */
INLINE TARGET void FN(row_bt)(int64_t tw, const T *restrict e, const T *restrict o,
                       T *restrict h0, T *restrict h1, T *restrict h2, T *restrict h3)
{
    SIMD for (int64_t t = 0; t < tw; t++) {
        h0[t] = e[t] - e[t + 1];
        h1[t] = o[t] + e[t + 1];
        h2[t] = e[t + 1] - o[t];
        h3[t] = o[t] - o[t + 1];
    }
}

/* V = B^T h for n tiles: B^T applied to (e[t], o[t], e[t + tw], o[t + tw]), e and o
 * the even and odd input rows' h (one column j) */
INLINE TARGET void FN(col_bt)(int64_t n, int64_t step, const T *restrict e,
                         const T *restrict o, T *restrict v0, T *restrict v1,
                         T *restrict v2, T *restrict v3)
{
    SIMD for (int64_t t = 0; t < n; t++) {
        v0[t] = e[t] - e[t + step];
        v1[t] = o[t] + e[t + step];
        v2[t] = e[t + step] - o[t];
        v3[t] = o[t] - o[t + step];
    }
}

/* The rows of one image's tile rows in the chunk are all split first, then all turned
 * into h, then V: a row's h read the split row long after it was stored, where reading
 * it right away (e[t + 1] straddles two of the split's vector stores) stalled on store
 * forwarding. Splitting the rows made every tile alike (before, the edge tiles were
 * scalar and the inner ones gathered pairs of columns). The sums are the same ones on
 * the same values, so the bits are too. With the next channel's rows prefetched, the
 * input transforms of one call (N = 100, C = 32, pad 1, one zen3 core, min of 9) took
 * 32x32 4.1-4.2 -> 2.5-2.6 ms, 16x16 1.4-1.5 -> 0.76-0.79, 8x8 0.61 -> 0.38.
 *
 * h for the plane's rows ih = ih0 + i, i < nr (row stride rs, element stride ws), 0
 * outside the plane (i outside [i0, i1)): the rows split into `split` (2 (tw + 1) apart)
 * then summed into h [even, odd rows][column j][hs]. `next`: the plane to prefetch, or
 * NULL. */
INLINE TARGET void FN(rows_bt)(const T *plane, const T *next, int64_t ih0, int64_t rs, int64_t ws,
                        int64_t w, int64_t pw, int64_t tw, int64_t i0, int64_t i1,
                        int64_t nr, T *split, T *h, int64_t hs)
{
    int64_t ss = 2 * (tw + 1);
    for (int64_t i = i0; i < i1; i++) {
        FN(row_split)(plane + (ih0 + i) * rs, ws, w, pw, split + i * ss,
                      split + i * ss + tw + 1);
        if (next)
            prefetch_row(next + (ih0 + i) * rs, w, ws, sizeof(T), false);
    }
    for (int64_t i = 0; i < nr; i++) {
        T *hi = h + (i % 2) * 4 * hs + (i / 2) * tw;
        if (i >= i0 && i < i1) {
            FN(row_bt)(tw, split + i * ss, split + i * ss + tw + 1, hi, hi + hs,
                       hi + 2 * hs, hi + 3 * hs);
        } else {
            for (int j = 0; j < 4; j++)
                memset(hi + j * hs, 0, (size_t)tw * sizeof(T));
        }
    }
}

TARGET static void FN(input)(const plan *p, int64_t row0, int64_t nrows, T *v, T *buf)
{
    int64_t tw = p->tw, ld = nrows * tw, ks = p->cin * ld;
    int64_t hs = (p->chunk_rows + 1) * tw; /* one [row][tile] plane of h */
    int64_t ss = 2 * (tw + 1);             /* one split row: e then o */
    T *h = buf; /* h [even, odd input rows][column j][hs] */
    T *split = h + 8 * hs; /* [2 * chunk_rows + 2][ss] */
    bool long_rows = p->w * sizeof(T) >= 64; /* shorter: prefetching cost more (8x8) */
    bool usual = p->pw == 1 && p->xs[3] == 1 && p->w == 2 * tw;
    for (int64_t e = 0; e < (2 * p->chunk_rows + 2) * ss; e++)
        split[e] = 0; /* the padding; the rows' own columns are written per row */
    for (int64_t c = 0; c < p->cin; c++)
        for (int64_t r = 0; r < nrows;) { /* the chunk's tile rows of one image */
            int64_t n = (row0 + r) / p->th, ty = (row0 + r) % p->th;
            int64_t count = p->th - ty < nrows - r ? p->th - ty : nrows - r;
            const T *plane = (const T *)p->x + n * p->xs[0] + c * p->xs[1];
            /* input rows 2 ty - ph + i, i < 2 count + 2, those inside the plane */
            int64_t i0 = p->ph - 2 * ty > 0 ? p->ph - 2 * ty : 0;
            int64_t i1 = p->h + p->ph - 2 * ty;
            i1 = i1 < 2 * count + 2 ? i1 : 2 * count + 2;
            const T *next = c + 1 < p->cin && long_rows ? plane + p->xs[1] : NULL;
            int64_t ih0 = 2 * ty - p->ph, rs = p->xs[2], nr = 2 * count + 2;
            BY_WIDTH(usual, tw, INPUT_ROWS);
            T *out = v + c * ld + r * tw;
            for (int j = 0; j < 4; j++)
                FN(col_bt)(count * tw, tw, h + j * hs, h + (4 + j) * hs, out + j * ks,
                             out + (4 + j) * ks, out + (8 + j) * ks, out + (12 + j) * ks);
            r += count;
        }
}

/* s = A^T M over n tiles: m0..m3 are rows 0..3 of M (one column j), s0, s1 the two */
INLINE TARGET void FN(rows_at)(int64_t n, const T *restrict m0, const T *restrict m1,
                        const T *restrict m2, const T *restrict m3, T *restrict s0,
                        T *restrict s1)
{
    SIMD for (int64_t t = 0; t < n; t++) {
        s0[t] = m0[t] + m1[t] + m2[t];
        s1[t] = m1[t] - m2[t] - m3[t];
    }
}

/* one output row = s A + bias for n tiles, both columns of each, interleaved */
INLINE TARGET void FN(cols_a)(int64_t n, const T *restrict s0, const T *restrict s1,
                       const T *restrict s2, const T *restrict s3, T bias, T *restrict y)
{
    SIMD for (int64_t t = 0; t < n; t++) {
        y[2 * t] = s0[t] + s1[t] + s2[t] + bias;
        y[2 * t + 1] = s1[t] - s2[t] - s3[t] + bias;
    }
}

/* y = s A + bias for output channel oc's tile rows of the chunk, s [i][j][ld] its rows
 * of A^T M; ow and tw as p's (constants where BY_WIDTH makes them so) */
INLINE TARGET void FN(out_rows)(const plan *p, int64_t row0, int64_t nrows, int64_t oc,
                         const T *s, T *spare, T bias, int64_t ow, int64_t tw, int64_t ld)
{
    int64_t whole = ow / 2; /* tiles whose two columns are inside */
    bool prefetch = oc + 1 < p->cout && ow * sizeof(T) >= 64;
    for (int64_t r = 0; r < nrows; r++) {
        int64_t n = (row0 + r) / p->th, ty = (row0 + r) % p->th;
        T *y0 = (T *)p->y + ((n * p->cout + oc) * p->oh + 2 * ty) * ow;
        T *y1 = 2 * ty + 1 < p->oh ? y0 + ow : spare;
        if (prefetch) { /* the next channel's rows */
            prefetch_row(y0 + p->oh * ow, ow, 1, sizeof(T), true);
            if (y1 != spare)
                prefetch_row(y1 + p->oh * ow, ow, 1, sizeof(T), true);
        }
        for (int i = 0; i < 2; i++) {
            const T *si = s + 4 * i * ld + r * tw;
            T *yi = i ? y1 : y0;
            FN(cols_a)(whole, si, si + ld, si + 2 * ld, si + 3 * ld, bias, yi);
            const T *sl = si + whole; /* an odd width: the last tile's left column */
            if (whole < tw)
                yi[2 * whole] = sl[0] + sl[ld] + sl[2 * ld] + bias;
        }
    }
}

TARGET static void FN(output)(const plan *p, int64_t row0, int64_t nrows, const T *m,
                              T *buf)
{
    int64_t tw = p->tw, ld = nrows * tw, ks = p->cout * ld;
    T *s = buf, *spare = buf + 8 * ld; /* s[i][j][ld]: row i, column j of A^T M */
    for (int64_t oc = 0; oc < p->cout; oc++) {
        T bias = p->bias ? ((const T *)p->bias)[oc * p->bs] : (T)0;
        const T *src = m + oc * ld;
        for (int j = 0; j < 4; j++)
            FN(rows_at)(ld, src + j * ks, src + (4 + j) * ks, src + (8 + j) * ks,
                        src + (12 + j) * ks, s + j * ld, s + (4 + j) * ld);
        if (p->ow == 2 * tw)
            BY_WIDTH(true, tw, OUTPUT_ROWS);
        else
            OUTPUT_ROWS_ANY(tw);
    }
}

/* h = dY A^T for the tw tiles of one output-gradient row (src, element stride ws):
 * tile t's columns a, b = row[2t], row[2t + 1] give (a, a + b, a - b, -b); an odd
 * width's last tile has b = 0. */
INLINE TARGET void FN(row_a)(const T *src, int64_t ws, int64_t ow, T *restrict h0, T *restrict h1,
                      T *restrict h2, T *restrict h3)
{
    int64_t whole = ow / 2;
    if (ws == 1) {
        SIMD for (int64_t t = 0; t < whole; t++) {
            T a = src[2 * t], b = src[2 * t + 1];
            h0[t] = a;
            h1[t] = a + b;
            h2[t] = a - b;
            h3[t] = -b;
        }
    } else {
        for (int64_t t = 0; t < whole; t++) {
            T a = src[2 * t * ws], b = src[(2 * t + 1) * ws];
            h0[t] = a;
            h1[t] = a + b;
            h2[t] = a - b;
            h3[t] = -b;
        }
    }
    if (2 * whole < ow) {
        T a = src[2 * whole * ws];
        h0[whole] = h1[whole] = h2[whole] = a;
        h3[whole] = 0;
    }
}

/* D = A h for n tiles: rows e, o of h (one column j) give (e, e + o, e - o, -o) */
INLINE TARGET void FN(col_a)(int64_t n, const T *restrict e, const T *restrict o, T *restrict d0,
                      T *restrict d1, T *restrict d2, T *restrict d3)
{
    SIMD for (int64_t t = 0; t < n; t++) {
        d0[t] = e[t];
        d1[t] = e[t] + o[t];
        d2[t] = e[t] - o[t];
        d3[t] = -o[t];
    }
}

/* h = dY A^T for output channel oc's tile rows of the chunk into h [even, odd output
 * rows][column j][ld]; ws, ow and tw as p's (constants where BY_WIDTH makes them so) */
INLINE TARGET void FN(grad_rows)(const plan *p, int64_t row0, int64_t nrows, int64_t oc, T *h,
                          int64_t ld, int64_t ws, int64_t ow, int64_t tw)
{
    bool prefetch = oc + 1 < p->cout && ow * sizeof(T) >= 64;
    for (int64_t r = 0; r < nrows; r++) {
        int64_t n = (row0 + r) / p->th, ty = (row0 + r) % p->th;
        const T *plane = (const T *)p->dy + n * p->dys[0] + oc * p->dys[1];
        for (int i = 0; i < 2; i++) {
            T *hi = h + 4 * i * ld + r * tw;
            if (2 * ty + i < p->oh) {
                const T *row = plane + (2 * ty + i) * p->dys[2];
                FN(row_a)(row, ws, ow, hi, hi + ld, hi + 2 * ld, hi + 3 * ld);
                if (prefetch) /* the next channel's row */
                    prefetch_row(row + p->dys[1], ow, ws, sizeof(T), false);
            } else {
                for (int j = 0; j < 4; j++)
                    memset(hi + j * ld, 0, (size_t)tw * sizeof(T));
            }
        }
    }
}

TARGET static void FN(grad)(const plan *p, int64_t row0, int64_t nrows, T *d, T *buf)
{
    int64_t tw = p->tw, ld = nrows * tw, ks = p->cout * ld;
    T *h = buf; /* h [even, odd output rows][column j][ld] */
    for (int64_t oc = 0; oc < p->cout; oc++) {
        if (p->dys[3] == 1 && p->ow == 2 * tw)
            BY_WIDTH(true, tw, GRAD_ROWS);
        else
            GRAD_ROWS_ANY(tw);
        T *out = d + oc * ld;
        for (int j = 0; j < 4; j++)
            FN(col_a)(ld, h + j * ld, h + (4 + j) * ld, out + j * ks, out + (4 + j) * ks,
                      out + (8 + j) * ks, out + (12 + j) * ks);
    }
}
