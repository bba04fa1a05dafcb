/* nn/safetensors_read.c — safetensors files read and checked whole before anything is
 * returned (nn/safetensors.c describes the format and what is checked): the header's
 * length against the file's size, the JSON header entry by entry, every tensor made
 * before any data is read, then the data straight into the tensors. */
#include "safetensors.h"
#include "../tensor/fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ small helpers */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = tg_mem_alloc(n, 1);
    if (d)
        memcpy(d, s, n);
    return d;
}

static const char *json_type(const cJSON *j)
{
    if (cJSON_IsObject(j))
        return "an object";
    if (cJSON_IsArray(j))
        return "an array";
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsNumber(j))
        return "a number";
    if (cJSON_IsBool(j))
        return "a boolean";
    if (cJSON_IsNull(j))
        return "null";
    return "not a JSON value";
}

#define MAX_EXACT 9007199254740992.0 /* 2^53: every integer up to it is a double */

/* A JSON integer in [0, 2^53] into *out; otherwise a description of what it is. */
static const char *json_size(const cJSON *j, int64_t *out, char *buf, size_t size)
{
    if (!cJSON_IsNumber(j))
        return json_type(j);
    double d = j->valuedouble;
    if (!isfinite(d) || d != floor(d)) {
        snprintf(buf, size, "%g, not an integer", d);
        return buf;
    }
    if (d < 0) {
        snprintf(buf, size, "%.0f, negative", d);
        return buf;
    }
    if (d > MAX_EXACT) {
        snprintf(buf, size, "%.0f, too large", d);
        return buf;
    }
    *out = (int64_t)d;
    return NULL;
}

/* ------------------------------------------------------------------ parsing */

/* One tensor entry of the header, validated on its own. */
typedef struct entry {
    const char *name; /* cJSON's key string */
    tg_dtype dt;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t begin, end;
    int order; /* position in the header */
} entry;

static int cmp_entry_offsets(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

typedef struct name_ref {
    const char *name;
    int index;
} name_ref;

static int cmp_name_ref(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* Checks one tensor entry; on failure sets the error and returns false. */
static bool parse_entry(const cJSON *item, const char *label, int64_t data_size, entry *e)
{
    const char *nm = item->string;
    char what[96], sh[160];
    e->name = nm;
    if (!cJSON_IsObject(item)) {
        tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': the entry is %s, not an object", label, nm,
                     json_type(item));
        return false;
    }
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!jd || !js || !jo) {
        tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': the entry has no \"%s\"", label, nm,
                     !jd ? "dtype" : !js ? "shape" : "data_offsets");
        return false;
    }
    /* dtype */
    if (!cJSON_IsString(jd)) {
        tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': dtype is %s, not a string", label, nm,
                     json_type(jd));
        return false;
    }
    if (!tg__st_dtype_of(jd->valuestring, &e->dt)) {
        tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': dtype \"%.32s\" is not one tapegrad reads "
                     "(F32, F64, U8, I32)", label, nm, jd->valuestring);
        return false;
    }
    /* shape */
    if (!cJSON_IsArray(js)) {
        tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': shape is %s, not an array", label, nm,
                     json_type(js));
        return false;
    }
    int ndim = cJSON_GetArraySize(js);
    if (ndim > TG_MAX_DIMS) {
        tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': shape has %d dimensions, more than %d",
                     label, nm, ndim, TG_MAX_DIMS);
        return false;
    }
    e->ndim = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, js)
    {
        const char *bad = json_size(d, &e->shape[e->ndim], what, sizeof what);
        if (bad) {
            tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': shape dimension %d is %s; sizes are "
                         "non-negative integers", label, nm, e->ndim, bad);
            return false;
        }
        e->ndim++;
    }
    /* bytes the shape needs, without overflow (a zero anywhere makes it empty) */
    size_t es = tg_dtype_size(e->dt);
    int64_t numel = 1;
    bool zero = false, huge = false;
    for (int i = 0; i < e->ndim; i++) {
        if (e->shape[i] == 0)
            zero = true;
        else if (numel > INT64_MAX / (int64_t)es / e->shape[i])
            huge = true;
        else
            numel *= e->shape[i];
    }
    tg_shape_str(sh, sizeof sh, e->ndim, e->shape);
    if (zero)
        numel = 0;
    else if (huge) {
        tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': %s %s has too many elements for any file",
                     label, nm, tg__st_dtype_tag(e->dt), sh);
        return false;
    }
    int64_t need = numel * (int64_t)es;
    /* data_offsets */
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2) {
        tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': data_offsets is %s, not an array [begin, end]",
                     label, nm, cJSON_IsArray(jo) ? "an array of another length" : json_type(jo));
        return false;
    }
    const char *bad = json_size(cJSON_GetArrayItem(jo, 0), &e->begin, what, sizeof what);
    if (!bad)
        bad = json_size(cJSON_GetArrayItem(jo, 1), &e->end, what, sizeof what);
    if (bad) {
        tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': a data offset is %s; offsets are "
                     "non-negative integers", label, nm, bad);
        return false;
    }
    if (e->begin > e->end) {
        tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] "
                     "end before they begin", label, nm, e->begin, e->end);
        return false;
    }
    if (e->end > data_size) {
        tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] "
                     "run past the end of the data (%" PRId64 " bytes): the file is truncated "
                     "or corrupt", label, nm, e->begin, e->end, data_size);
        return false;
    }
    if (e->end - e->begin != need) {
        tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] "
                     "hold %" PRId64 " bytes, but %s %s needs %" PRId64, label, nm, e->begin,
                     e->end, e->end - e->begin, tg__st_dtype_tag(e->dt), sh, need);
        return false;
    }
    return true;
}

/* The "__metadata__" map: every value a string. */
static bool check_metadata(const cJSON *m, const char *label, int *count)
{
    if (!cJSON_IsObject(m)) {
        tg_set_error(TG_ERR_FORMAT, "%s: __metadata__ is %s, not an object of strings", label,
                     json_type(m));
        return false;
    }
    int k = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, m)
    {
        if (!cJSON_IsString(v)) {
            tg_set_error(TG_ERR_FORMAT, "%s: __metadata__ '%s' is %s, not a string", label,
                         v->string, json_type(v));
            return false;
        }
        k++;
    }
    *count = k;
    return true;
}

/* Where a file's data region is: in memory (the fuzz targets' inputs, tests), or in an
 * open file at byte `at` (read straight into each tensor, so loading costs the tensors'
 * memory once, and only after the whole header has been checked). */
typedef struct data_source {
    const uint8_t *mem; /* the data region, or NULL: read fd */
    int fd;
    uint64_t at; /* the data region's offset in the file */
} data_source;

/* n bytes at offset off of the data region into dst; false with an error if the file
 * no longer has them. */
static bool read_data(const data_source *src, const char *label, int64_t off, void *dst, size_t n)
{
    if (src->mem) {
        memcpy(dst, src->mem + off, n);
        return true;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(src->fd, (uint8_t *)dst + done, n - done, (off_t)(src->at + (uint64_t)off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            tg_set_error(TG_ERR_IO, "%s: %s at byte %" PRIu64 "%s%s", label,
                         r < 0 ? "read failed" : "the file shrank while being read: it ends",
                         src->at + (uint64_t)off + done, r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
            return false;
        }
        done += (size_t)r;
    }
    return true;
}

/* Builds the result from validated entries (sorted by offset) and metadata: every
 * tensor is made (a shape no tensor can have is refused here) before any data is read. */
static tg_safetensors *build(const char *label, const data_source *src, entry *es, int n,
                             const name_ref *sorted_names, const cJSON *meta, int nmeta)
{
    tg_safetensors *st = tg_mem_alloc(sizeof *st, _Alignof(tg_safetensors));
    if (!st)
        goto oom;
    memset(st, 0, sizeof *st);
    size_t nn = (size_t)(n ? n : 1), nm = (size_t)(nmeta ? nmeta : 1);
    st->names = tg_mem_alloc(nn * sizeof *st->names, _Alignof(char *));
    st->tensors = tg_mem_alloc(nn * sizeof *st->tensors, _Alignof(tg_tensor *));
    st->by_name = tg_mem_alloc(nn * sizeof *st->by_name, _Alignof(int));
    st->meta = tg_mem_alloc(nm * sizeof *st->meta, _Alignof(struct meta_pair));
    if (!st->names || !st->tensors || !st->by_name || !st->meta)
        goto oom;
    memset(st->names, 0, nn * sizeof *st->names);
    memset(st->tensors, 0, nn * sizeof *st->tensors);
    memset(st->meta, 0, nm * sizeof *st->meta);
    st->n = n;
    st->nmeta = nmeta;

    for (int i = 0; i < n; i++) {
        entry *e = &es[i];
        st->names[i] = dup_str(e->name);
        if (!st->names[i])
            goto oom;
        st->tensors[i] = tg_tensor_empty(NULL, e->dt, e->ndim, e->shape);
        if (!st->tensors[i]) {
            if (tg_last_status() == TG_ERR_NOMEM)
                goto oom;
            /* sizes the data can hold but a tensor cannot (such as [2^47, 0]) */
            char sh[160];
            tg_shape_str(sh, sizeof sh, e->ndim, e->shape);
            tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': %s %s is not a shape tapegrad can hold "
                         "(%s)", label, e->name, tg__st_dtype_tag(e->dt), sh, tg_last_error());
            tg_safetensors_free(st);
            return NULL;
        }
    }
    /* the tensors' data, in file order */
    for (int i = 0; i < n; i++) {
        tg_tensor *t = st->tensors[i];
        size_t bytes = (size_t)(es[i].end - es[i].begin);
        if (bytes && !read_data(src, label, es[i].begin, tg_tensor_data(t), bytes)) {
            tg_safetensors_free(st);
            return NULL;
        }
        if (!tg__st_little_endian())
            tg__st_swap_bytes(tg_tensor_data(t), tg_tensor_numel(t), tg_dtype_size(es[i].dt));
    }
    /* by_name: sorted_names hold header positions; es[i].order is that position */
    if (n > 0) {
        int *pos_of_order = tg_mem_alloc((size_t)n * sizeof(int), _Alignof(int));
        if (!pos_of_order)
            goto oom;
        for (int i = 0; i < n; i++)
            pos_of_order[es[i].order] = i;
        for (int i = 0; i < n; i++)
            st->by_name[i] = pos_of_order[sorted_names[i].index];
        tg_mem_free(pos_of_order);
    }
    if (meta) {
        int k = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, meta)
        {
            st->meta[k].key = dup_str(v->string);
            st->meta[k].value = dup_str(v->valuestring);
            if (!st->meta[k].key || !st->meta[k].value)
                goto oom;
            k++;
        }
        qsort(st->meta, (size_t)nmeta, sizeof *st->meta, tg__st_cmp_str_ptr);
        for (int i = 1; i < nmeta; i++)
            if (strcmp(st->meta[i - 1].key, st->meta[i].key) == 0) {
                tg_set_error(TG_ERR_FORMAT, "%s: __metadata__ has the key '%s' twice", label,
                             st->meta[i].key);
                tg_safetensors_free(st);
                return NULL;
            }
    }
    return st;
oom:
    tg_safetensors_free(st);
    tg_set_error(TG_ERR_NOMEM, "%s: out of memory loading the tensors", label);
    return NULL;
}

/* The 8-byte header length of a file of len bytes (first: its first min(len, 8) bytes),
 * checked against the file's length and the cap; false with an error. */
static bool header_length(const uint8_t *first, uint64_t len, const char *label, uint64_t *hlen_out)
{
    if (len == 0) {
        tg_set_error(TG_ERR_FORMAT, "%s: the file is empty", label);
        return false;
    }
    if (len < 8) {
        tg_set_error(TG_ERR_FORMAT, "%s: the file is %" PRIu64 " bytes, shorter than the 8-byte header "
                     "length that starts a safetensors file", label, len);
        return false;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | first[i];
    if (hlen > len - 8) {
        tg_set_error(TG_ERR_FORMAT, "%s: header length %" PRIu64 " is larger than the %" PRIu64 " bytes "
                     "that follow it: truncated, or not a safetensors file", label, hlen, len - 8);
        return false;
    }
    if (hlen > TG__SAFETENSORS_MAX_HEADER) {
        tg_set_error(TG_ERR_FORMAT, "%s: header length %" PRIu64 " is over the %u-byte limit",
                     label, hlen, TG__SAFETENSORS_MAX_HEADER);
        return false;
    }
    *hlen_out = hlen;
    return true;
}

/* The header (hlen bytes at hdr) checked whole against a data region of data_size bytes,
 * then the result built with the data from src. */
static tg_safetensors *parse_header(const uint8_t *hdr, uint64_t hlen, int64_t data_size,
                                    const data_source *src, const char *label)
{
    size_t valid = tg__st_utf8_valid_prefix(hdr, (size_t)hlen);
    if (valid != hlen) {
        tg_set_error(TG_ERR_FORMAT, "%s: the header is not valid UTF-8 (at byte %zu of %" PRIu64 ")",
                     label, valid, hlen);
        return NULL;
    }
    /* cJSON reads a NUL-terminated copy, so that no parser bug can run into the data */
    char *text = tg_mem_alloc((size_t)hlen + 1, 1);
    if (!text) {
        tg_set_error(TG_ERR_NOMEM, "%s: out of memory for a %" PRIu64 "-byte header", label, hlen);
        return NULL;
    }
    memcpy(text, hdr, (size_t)hlen);
    text[hlen] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &end, 0);
    tg_safetensors *result = NULL;
    entry *es = NULL;
    name_ref *names = NULL;
    if (!root) {
        size_t at = end && end >= text && end <= text + hlen ? (size_t)(end - text) : 0;
        tg_set_error(TG_ERR_FORMAT, "%s: the header is not JSON (a syntax error at byte %zu of "
                     "%" PRIu64 ")", label, at, hlen);
        goto done;
    }
    for (const char *p = end; p < text + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            tg_set_error(TG_ERR_FORMAT, "%s: the header has something after its JSON (at byte %zu "
                         "of %" PRIu64 ")", label, (size_t)(p - text), hlen);
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        tg_set_error(TG_ERR_FORMAT, "%s: the header is %s, not a JSON object", label, json_type(root));
        goto done;
    }

    /* every entry on its own */
    int count = 0, n = 0, nmeta = 0;
    const cJSON *item, *meta = NULL;
    cJSON_ArrayForEach(item, root) count++;
    es = tg_mem_alloc((size_t)(count ? count : 1) * sizeof *es, _Alignof(entry));
    names = tg_mem_alloc((size_t)(count ? count : 1) * sizeof *names, _Alignof(name_ref));
    if (!es || !names) {
        tg_set_error(TG_ERR_NOMEM, "%s: out of memory for %d header entries", label, count);
        goto done;
    }
    cJSON_ArrayForEach(item, root)
    {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (meta) {
                tg_set_error(TG_ERR_FORMAT, "%s: the header has two __metadata__ entries", label);
                goto done;
            }
            meta = item;
            if (!check_metadata(meta, label, &nmeta))
                goto done;
            continue;
        }
        if (!parse_entry(item, label, data_size, &es[n]))
            goto done;
        es[n].order = n;
        names[n] = (name_ref){item->string, n};
        n++;
    }

    /* names are unique */
    qsort(names, (size_t)n, sizeof *names, cmp_name_ref);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1].name, names[i].name) == 0) {
            tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", label,
                         names[i].name);
            goto done;
        }

    /* the offsets tile [0, data_size) exactly: sorted, no overlap, no gap */
    qsort(es, (size_t)n, sizeof *es, cmp_entry_offsets);
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        const entry *e = &es[i];
        if (e->begin < at) {
            const entry *p = &es[i - 1]; /* at > 0, so there is a previous entry */
            tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] "
                         "overlap tensor '%s' [%" PRId64 ", %" PRId64 "]", label, e->name, e->begin,
                         e->end, p->name, p->begin, p->end);
            goto done;
        }
        if (e->begin > at) {
            tg_set_error(TG_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] "
                         "leave a gap of %" PRId64 " bytes after byte %" PRId64 " of the data",
                         label, e->name, e->begin, e->end, e->begin - at, at);
            goto done;
        }
        at = e->end;
    }
    if (at != data_size) {
        tg_set_error(TG_ERR_FORMAT, "%s: the tensors cover %" PRId64 " bytes of data but %" PRId64
                     " follow the header (%" PRId64 " bytes belong to no tensor)", label, at,
                     data_size, data_size - at);
        goto done;
    }
    result = build(label, src, es, n, names, meta, nmeta);
done:
    tg_mem_free(names);
    tg_mem_free(es);
    cJSON_Delete(root);
    tg_mem_free(text);
    return result;
}


tg_safetensors *tg__safetensors_parse(const void *buf, size_t len, const char *label)
{
    const uint8_t *b = buf;
    if (!label)
        label = "(buffer)";
    if (!buf && len > 0) {
        tg_set_error(TG_ERR_ARG, "%s: the buffer is NULL", label);
        return NULL;
    }
    uint64_t hlen;
    if (!header_length(b, len, label, &hlen))
        return NULL;
    data_source src = {.mem = b + 8 + hlen, .fd = -1, .at = 8 + hlen};
    return parse_header(b + 8, hlen, (int64_t)(len - 8 - hlen), &src, label);
}

/* ------------------------------------------------------------------ reading */

tg_safetensors *tg__safetensors_read(const char *fn, const char *path)
{
    if (!path) {
        tg_set_error_in(TG_ERR_ARG, fn, "path is NULL");
        return NULL;
    }
    /* without blocking: a FIFO in a checkpoint's place would otherwise wait for a writer
     * forever */
    uint64_t size;
    int fd = tg__open_regular(fn, path, &size);
    if (fd < 0)
        return NULL;
    /* the header first, checked against the file's size; the data only after all of it */
    uint64_t hlen = 0;
    uint8_t first[8];
    data_source src = {.fd = fd};
    uint8_t *hdr = NULL;
    tg_safetensors *st = NULL;
    if (read_data(&src, path, 0, first, size < 8 ? (size_t)size : 8) &&
        header_length(first, size, path, &hlen)) {
        hdr = tg_mem_alloc((size_t)hlen + 1, 1);
        if (!hdr)
            tg_set_error(TG_ERR_NOMEM, "%s: out of memory for a %" PRIu64 "-byte header", path, hlen);
        else if (read_data(&src, path, 8, hdr, (size_t)hlen)) {
            src.at = 8 + hlen;
            st = parse_header(hdr, hlen, (int64_t)(size - 8 - hlen), &src, path);
        }
    }
    tg_mem_free(hdr);
    close(fd);
    if (!st)
        tg_set_error_in(tg_last_status(), fn, "%s", tg_last_error());
    return st;
}

tg_safetensors *tg_safetensors_load(const char *path)
{
    return tg__safetensors_read("tg_safetensors_load", path);
}

