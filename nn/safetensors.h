/* nn/safetensors.h — what the three safetensors files share (safetensors.c: the format,
 * the object and its lookups; safetensors_read.c; safetensors_write.c). Internal. */
#ifndef TAPEGRAD_NN_SAFETENSORS_H
#define TAPEGRAD_NN_SAFETENSORS_H

#include "internal.h"

struct tg_safetensors {
    int n;
    char **names;         /* in the order of their data in the file */
    tg_tensor **tensors;  /* heap, contiguous */
    int *by_name;         /* indices sorted by name, for lookups */
    int nmeta;
    struct meta_pair {
        char *key, *value;
    } *meta;              /* sorted by key */
};


/* "F32", "F64", "U8", "I32" for a dtype, and back (false for a tag tapegrad does not read) */
const char *tg__st_dtype_tag(tg_dtype dt);
bool tg__st_dtype_of(const char *tag, tg_dtype *dt);
/* the file's data is little-endian; on a big-endian host every element is swapped */
bool tg__st_little_endian(void);
void tg__st_swap_bytes(void *data, int64_t numel, size_t es);
/* the length of the longest valid UTF-8 prefix of s[0..n) */
size_t tg__st_utf8_valid_prefix(const uint8_t *s, size_t n);
/* qsort/bsearch comparison of two (const char *) */
int tg__st_cmp_str_ptr(const void *a, const void *b);

#endif
