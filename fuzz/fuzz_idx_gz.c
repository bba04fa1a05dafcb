/* fuzz/fuzz_idx_gz.c — gzip IDX files: the in-memory inflate (members, CRC and length
 * checks, the output limit) on arbitrary bytes, then the IDX parser on what it gives.
 * The limit is small so that a "bomb" input cannot make the fuzzer run out of memory:
 * the limit itself is what is being tested. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out;
    size_t out_size;
    tg_clear_error();
    if (tg__gunzip("datasets/idx", "fuzz.gz", data, size, (size_t)1 << 22, &out, &out_size) != TG_OK) {
        if (out || tg_last_status() == TG_OK || !strstr(tg_last_error(), "fuzz.gz"))
            abort();
        return 0;
    }
    if (out_size > (size_t)1 << 22)
        abort();
    tg__idx idx;
    for (int ndims = 1; ndims <= 3; ndims += 2)
        if (tg__idx_parse("fuzz.gz (inflated)", out, out_size, ndims, &idx) != TG_OK &&
            tg_last_status() == TG_OK)
            abort();
    tg_mem_free(out);
    return 0;
}
