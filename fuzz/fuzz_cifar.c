/* fuzz/fuzz_cifar.c — the CIFAR record parser on arbitrary bytes, as each of the three
 * formats (CIFAR-10, CIFAR-100 fine, CIFAR-100 coarse). A parse must fail with a
 * message or give a data set whose labels are in range and whose images are the
 * records' pixels. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const tg__cifar_format *formats[] = {&tg__cifar10_format, &tg__cifar100_fine_format,
                                         &tg__cifar100_coarse_format};
    for (int f = 0; f < 3; f++) {
        tg_clear_error();
        tg_dataset *d = tg__cifar_parse("fuzz", data, size, formats[f]);
        if (!d) {
            if (tg_last_status() == TG_OK || !strstr(tg_last_error(), "fuzz"))
                abort(); /* a failure must say why, naming the file */
            continue;
        }
        size_t rec = (size_t)formats[f]->label_bytes + TG__CIFAR_PIXELS;
        int64_t n = tg_dataset_size(d);
        if ((size_t)n * rec != size)
            abort();
        const int32_t *y = tg_tensor_data(d->labels);
        const uint8_t *px = tg_tensor_data(d->images);
        for (int64_t i = 0; i < n; i++) {
            if (y[i] < 0 || y[i] >= d->num_classes)
                abort();
            if (memcmp(px + i * TG__CIFAR_PIXELS, data + (size_t)i * rec + formats[f]->label_bytes,
                       TG__CIFAR_PIXELS) != 0)
                abort();
        }
        tg_dataset_free(d);
    }
    return 0;
}
