/* fuzz/fuzz_idx.c — the IDX parser on arbitrary bytes: the whole input as an images
 * file and as a labels file, and split in two (the first byte picks where) as an
 * images/labels pair. A parse must fail with a message or account for every byte. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_one(const uint8_t *data, size_t size, int ndims)
{
    tg__idx idx;
    tg_clear_error();
    if (tg__idx_parse("fuzz", data, size, ndims, &idx) != TG_OK) {
        if (tg_last_status() == TG_OK || !strstr(tg_last_error(), "fuzz"))
            abort();
        return;
    }
    uint64_t body = (uint64_t)idx.dims[0];
    for (int i = 1; i < ndims; i++)
        body *= (uint64_t)idx.dims[i];
    if (idx.body != data + 4 + 4 * ndims || 4 + 4 * (uint64_t)ndims + body != size)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(data, size, 3);
    check_one(data, size, 1);
    if (size < 1)
        return 0;
    /* a pair: images first, then labels; the first byte says how much of the rest
     * (in 1/255ths) is the images file, the last byte's low 5 bits the class count */
    size_t rest = size - 1, cut = rest * data[0] / 255;
    int classes = size > 1 ? (data[size - 1] & 31) + 1 : 10;
    tg_clear_error();
    tg_dataset *d = tg__idx_parse_pair("fuzz", "images", data + 1, cut, "labels", data + 1 + cut,
                                       rest - cut, classes);
    if (!d) {
        if (tg_last_status() == TG_OK)
            abort();
        return 0;
    }
    const int32_t *y = tg_tensor_data(d->labels);
    for (int64_t i = 0; i < tg_dataset_size(d); i++)
        if (y[i] < 0 || y[i] >= classes)
            abort();
    tg_dataset_free(d);
    return 0;
}
