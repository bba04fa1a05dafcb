/* nn/safetensors.c — the safetensors file format, written atomically
 * (safetensors_write.c) and read with every byte checked before anything is returned
 * (safetensors_read.c); here the loaded object, its lookups and the helpers both share.
 *
 * A file is: an 8-byte little-endian header length N; N bytes of UTF-8 JSON, padded
 * with spaces so that N is a multiple of 8 (the data then starts 8-aligned), mapping
 * each tensor's name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
 * relative to the first byte after the header) and "__metadata__" to a map of
 * strings; then the raw little-endian data, tensor after tensor, with no gaps. In
 * Python:
 *
 *   n = int.from_bytes(f.read(8), "little"); header = json.loads(f.read(n))
 *   data = f.read(); b, e = header[name]["data_offsets"]
 *   x = np.frombuffer(data[b:e], "<f4").reshape(header[name]["shape"])
 *
 * Writing goes to a temporary file next to the target (mkstemp), which is flushed,
 * fsync'd and renamed over the target (tensor/fileio.c's atomic writer), so a crash or a full disk never leaves half a
 * checkpoint behind and the old file survives any failure. Reading opens the file
 * without blocking (a FIFO in its place is refused, not waited on), reads the header
 * length and checks it against the file's size, reads the header and validates it whole
 * — JSON, every entry's dtype, shape and offsets, that the offsets tile the rest of the
 * file exactly, metadata types, duplicate names — and makes every tensor before it
 * reads any data, straight into the tensors. So a truncated or corrupted file is refused
 * with a message naming the file, the tensor and what was wrong, is never half-loaded,
 * and costs no more memory than its header declares (a 4 GiB file of zeros is refused
 * after 8 bytes). tg__safetensors_parse runs the same checks on a buffer. The JSON is
 * cJSON's. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* ------------------------------------------------------------------ small helpers */

static const struct {
    const char *name;
    tg_dtype dt;
} dtype_names[] = {{"F32", TG_F32}, {"F64", TG_F64}, {"U8", TG_U8}, {"I32", TG_I32}};

const char *tg__st_dtype_tag(tg_dtype dt)
{
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (dtype_names[i].dt == dt)
            return dtype_names[i].name;
    return "?";
}

bool tg__st_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* Reverses each element's bytes: the data is little-endian on disk. */
void tg__st_swap_bytes(void *data, int64_t numel, size_t es)
{
    uint8_t *p = data;
    for (int64_t i = 0; i < numel; i++, p += es)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* Length of the valid UTF-8 prefix of s[0..n) (n when all of it is valid): no
 * overlong forms, no surrogates, nothing above U+10FFFF, as JSON text must be. */
size_t tg__st_utf8_valid_prefix(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, min = 0x80, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, min = 0x800, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, min = 0x10000, cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i < len)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += len;
    }
    return n;
}

int tg__st_cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}


bool tg__st_dtype_of(const char *tag, tg_dtype *dt)
{
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (strcmp(tag, dtype_names[i].name) == 0) {
            *dt = dtype_names[i].dt;
            return true;
        }
    return false;
}

/* ------------------------------------------------------------------ the object */

void tg_safetensors_free(tg_safetensors *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n; i++) {
        if (st->names)
            tg_mem_free(st->names[i]);
        if (st->tensors)
            tg_tensor_free(st->tensors[i]);
    }
    for (int i = 0; st->meta && i < st->nmeta; i++) {
        tg_mem_free(st->meta[i].key);
        tg_mem_free(st->meta[i].value);
    }
    tg_mem_free(st->names);
    tg_mem_free(st->tensors);
    tg_mem_free(st->by_name);
    tg_mem_free(st->meta);
    tg_mem_free(st);
}

int tg_safetensors_count(const tg_safetensors *st) { return st ? st->n : 0; }

const char *tg_safetensors_name(const tg_safetensors *st, int i)
{
    return st && i >= 0 && i < st->n ? st->names[i] : NULL;
}

tg_tensor *tg_safetensors_tensor(const tg_safetensors *st, int i)
{
    return st && i >= 0 && i < st->n ? st->tensors[i] : NULL;
}

int tg__safetensors_index(const tg_safetensors *st, const char *name)
{
    if (!st || !name)
        return -1;
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, k = st->by_name[mid];
        int c = strcmp(name, st->names[k]);
        if (c == 0)
            return k;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -1;
}

tg_tensor *tg_safetensors_find(const tg_safetensors *st, const char *name)
{
    int i = tg__safetensors_index(st, name);
    return i >= 0 ? st->tensors[i] : NULL;
}

const char *tg_safetensors_meta(const tg_safetensors *st, const char *key)
{
    if (!st || !key || st->nmeta == 0)
        return NULL;
    struct meta_pair probe = {(char *)key, NULL};
    const struct meta_pair *hit = bsearch(&probe, st->meta, (size_t)st->nmeta, sizeof *st->meta,
                                          tg__st_cmp_str_ptr); /* the key is the first member */
    return hit ? hit->value : NULL;
}

