/* tensor/iter.c — the strided walk under every elementwise kernel (see internal.h). */
#include "internal.h"

#include <omp.h>

void tg__iter_init(tg__iter *it, int nops, const tg_tensor *const *ops)
{
    const tg_tensor *o = ops[0];
    it->nops = nops;
    for (int k = 0; k < nops; k++)
        it->base[k] = tg__ptr(ops[k]);
    /* copy the axes of size > 1, strides in bytes */
    int nd = 0;
    for (int i = 0; i < o->ndim; i++) {
        if (o->shape[i] == 1)
            continue;
        it->shape[nd] = o->shape[i];
        for (int k = 0; k < nops; k++)
            it->stride[k][nd] = ops[k]->strides[i] * (int64_t)tg_dtype_size(ops[k]->dtype);
        nd++;
    }
    if (nd == 0) {
        it->shape[0] = o->ndim == 0 || tg_tensor_numel(o) == 1 ? 1 : 0;
        for (int k = 0; k < nops; k++)
            it->stride[k][0] = 0;
        nd = 1;
    }
    /* merge axis i into i+1 where every operand steps across both as one */
    int out = nd - 1;
    for (int i = nd - 2; i >= 0; i--) {
        bool merge = true;
        for (int k = 0; k < nops && merge; k++)
            merge = it->stride[k][i] == it->stride[k][out] * it->shape[out];
        if (merge) {
            it->shape[out] *= it->shape[i];
        } else {
            out--;
            it->shape[out] = it->shape[i];
            for (int k = 0; k < nops; k++)
                it->stride[k][out] = it->stride[k][i];
        }
    }
    /* shift the merged axes [out, nd) down to [0, nd - out) */
    it->ndim = nd - out;
    for (int i = 0; i < it->ndim; i++) {
        it->shape[i] = it->shape[i + out];
        for (int k = 0; k < nops; k++)
            it->stride[k][i] = it->stride[k][i + out];
    }
}

/* Runs rows [r0, r1) of the iterator, stepping an odometer over the outer axes. */
static void run_rows(const tg__iter *it, int64_t r0, int64_t r1, tg__row_fn fn, void *ctx)
{
    int nd = it->ndim, nops = it->nops;
    int64_t idx[TG_MAX_DIMS] = {0};
    char *p[TG__MAX_OPS];
    int64_t inner_stride[TG__MAX_OPS];
    for (int k = 0; k < nops; k++) {
        p[k] = it->base[k];
        inner_stride[k] = it->stride[k][nd - 1];
    }
    int64_t r = r0;
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = r % it->shape[d];
        r /= it->shape[d];
        for (int k = 0; k < nops; k++)
            p[k] += idx[d] * it->stride[k][d];
    }
    for (int64_t row = r0; row < r1; row++) {
        fn(it->shape[nd - 1], p, inner_stride, ctx);
        for (int d = nd - 2; d >= 0; d--) {
            for (int k = 0; k < nops; k++)
                p[k] += it->stride[k][d];
            if (++idx[d] < it->shape[d])
                break;
            for (int k = 0; k < nops; k++)
                p[k] -= it->shape[d] * it->stride[k][d];
            idx[d] = 0;
        }
    }
}

void tg__iter_run(const tg__iter *it, tg__row_fn fn, void *ctx)
{
    int nd = it->ndim, nops = it->nops;
    int64_t inner = it->shape[nd - 1], rows = 1;
    for (int d = 0; d < nd - 1; d++)
        rows *= it->shape[d];
    if (rows == 0 || inner == 0)
        return;
    if (!tg_parallel_worth(rows * inner)) {
        run_rows(it, 0, rows, fn, ctx);
        return;
    }
    if (rows == 1) {
        /* one long row: fixed-size chunks, so the split never depends on threads */
        const int64_t chunk = 8192;
        int64_t nchunks = (inner + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < nchunks; c++) {
            char *p[TG__MAX_OPS];
            int64_t s[TG__MAX_OPS];
            for (int k = 0; k < nops; k++) {
                s[k] = it->stride[k][0];
                p[k] = it->base[k] + c * chunk * s[k];
            }
            int64_t n = inner - c * chunk < chunk ? inner - c * chunk : chunk;
            fn(n, p, s, ctx);
        }
        return;
    }
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
        if (r0 < r1)
            run_rows(it, r0, r1, fn, ctx);
    }
}
