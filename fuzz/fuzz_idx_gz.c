/* fuzz/fuzz_idx_gz.c — gzip IDX files: the in-memory inflate (members, CRC and length
 * checks, the output limit) on arbitrary bytes, then the IDX parser on what it gives;
 * then the same bytes inflated as the file reader does, header first (the output
 * stopped at what the IDX header declares). The limit is small so that a "bomb" input
 * cannot make the fuzzer run out of memory: the limit itself is what is being tested. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int ndims_of[4] = {0, 1, 2, 3};
    const size_t limit = (size_t)1 << 22;
    for (int ndims = 0; ndims <= 3; ndims += 1 + (ndims > 0)) { /* 0: no expectation, 1, 3 */
        tg__gz_expect expect = {4 + 4 * (size_t)ndims, tg__idx_gz_size_of, &ndims_of[ndims]};
        uint8_t *out;
        size_t out_size;
        tg_clear_error();
        if (tg__gunzip("datasets/idx", "fuzz.gz", data, size, limit, ndims ? &expect : NULL, &out,
                       &out_size) != TG_OK) {
            if (out || tg_last_status() == TG_OK || !strstr(tg_last_error(), "fuzz.gz"))
                abort();
            continue;
        }
        if (out_size > limit)
            abort();
        tg__idx idx;
        for (int d = 1; d <= 3; d += 2) {
            tg_status st = tg__idx_parse("fuzz.gz (inflated)", out, out_size, d, &idx);
            if (st != TG_OK && tg_last_status() == TG_OK)
                abort();
            /* inflated header first, nothing came out past what the header declared */
            if (st != TG_OK && ndims == d && strstr(tg_last_error(), " extra from byte "))
                abort();
        }
        tg_mem_free(out);
    }
    return 0;
}
