/* datasets/io.c — reading a whole file into memory and inflating gzip in memory.
 *
 * The parsers work on buffers, not streams, so that one code path serves the files and
 * the fuzz targets, and so that every size can be checked before any byte is trusted.
 * Gzip goes through zlib's inflate (not gzread) because gzread passes a file without
 * the gzip magic through as plain data and shows a cut stream only as a short read
 * plus gzerror; here a .gz file that is cut short or fails its CRC must be an error
 * that says so, with the offset, and the same code must run on a fuzzer's buffer. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

bool tg__path_join(const char *module, char *buf, size_t size, const char *dir, const char *file)
{
    int n = snprintf(buf, size, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= size) {
        tg_set_error(TG_ERR_ARG, "%s: path %s/%s is longer than %zu bytes", module, dir, file,
                     size - 1);
        return false;
    }
    return true;
}

bool tg__path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

tg_status tg__read_file(const char *module, const char *path, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return tg_set_error(TG_ERR_IO, "%s: %s: cannot open: %s", module, path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return tg_set_error(TG_ERR_IO, "%s: %s: cannot stat: %s", module, path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        return tg_set_error(TG_ERR_IO, "%s: %s: not a regular file", module, path);
    }
    size_t n = (size_t)st.st_size;
    /* one spare byte so that an empty file still gets a buffer, and so that reading
     * one byte more than stat promised tells us the file grew meanwhile */
    uint8_t *buf = tg_mem_alloc(n + 1, 64);
    if (!buf) {
        fclose(f);
        return tg_set_error(TG_ERR_NOMEM, "%s: %s: cannot allocate %zu bytes to read it", module,
                            path, n);
    }
    size_t got = fread(buf, 1, n + 1, f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err || got != n) {
        tg_mem_free(buf);
        if (err)
            return tg_set_error(TG_ERR_IO, "%s: %s: read error at byte %zu: %s", module, path, got,
                                strerror(err));
        return tg_set_error(TG_ERR_IO, "%s: %s: changed size while being read (%zu bytes, then %s%zu)",
                            module, path, n, got > n ? "more than " : "", got > n ? n : got);
    }
    *data = buf;
    *size = n;
    return TG_OK;
}

/* ------------------------------------------------------------------ gzip */

bool tg__is_gzip(const uint8_t *data, size_t size)
{
    return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

/* The buffer that inflate writes into, grown by doubling up to max. */
typedef struct growbuf {
    uint8_t *p;
    size_t len, cap, max;
} growbuf;

static bool grow(growbuf *b)
{
    if (b->cap >= b->max)
        return false;
    size_t cap = b->cap > b->max / 2 ? b->max : b->cap * 2;
    uint8_t *p = tg_mem_alloc(cap, 64);
    if (!p)
        return false;
    if (b->len)
        memcpy(p, b->p, b->len);
    tg_mem_free(b->p);
    b->p = p;
    b->cap = cap;
    return true;
}

tg_status tg__gunzip(const char *module, const char *path, const uint8_t *in, size_t in_size,
                     size_t max_out, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    if (!tg__is_gzip(in, in_size))
        return tg_set_error(TG_ERR_FORMAT, "%s: %s: not a gzip file (no 1f 8b magic at byte 0)",
                            module, path);
    /* The trailer's ISIZE is the (last member's) length mod 2^32: a good first guess, so
     * a real file inflates without regrowing; trusted only as far as deflate's best
     * ratio (1032:1) allows, so a lying trailer cannot make us allocate a lot. */
    size_t hint = 0;
    if (in_size >= 18) {
        const uint8_t *t = in + in_size - 4;
        hint = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
    }
    size_t ratio_cap = in_size > SIZE_MAX / 1032 ? SIZE_MAX : in_size * 1032;
    if (hint > ratio_cap)
        hint = ratio_cap;
    if (hint < 4096)
        hint = 4096;
    if (hint > max_out)
        hint = max_out > 0 ? max_out : 1;
    growbuf b = {.p = tg_mem_alloc(hint, 64), .len = 0, .cap = hint, .max = max_out};
    if (!b.p)
        return tg_set_error(TG_ERR_NOMEM, "%s: %s: cannot allocate %zu bytes to inflate it", module,
                            path, hint);

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK) { /* 15+16: a gzip wrapper, checked */
        tg_mem_free(b.p);
        return tg_set_error(TG_ERR_NOMEM, "%s: %s: zlib could not start inflating", module, path);
    }
    /* avail_in is a uInt: feed the input in pieces that fit */
    size_t consumed = 0;
    tg_status st = TG_OK;
    int members = 0;
    for (;;) {
        if (zs.avail_in == 0 && consumed < in_size) {
            size_t piece = in_size - consumed;
            if (piece > (size_t)1 << 30)
                piece = (size_t)1 << 30;
            zs.next_in = (Bytef *)(in + consumed);
            zs.avail_in = (uInt)piece;
            consumed += piece;
        }
        if (b.len == b.cap && !grow(&b)) {
            st = b.cap >= b.max
                     ? tg_set_error(TG_ERR_FORMAT, "%s: %s: inflates to more than %zu bytes", module,
                                    path, b.max)
                     : tg_set_error(TG_ERR_NOMEM, "%s: %s: cannot allocate %zu bytes to inflate it",
                                    module, path, b.cap * 2);
            break;
        }
        size_t room = b.cap - b.len;
        if (room > (size_t)1 << 30)
            room = (size_t)1 << 30;
        zs.next_out = b.p + b.len;
        zs.avail_out = (uInt)room;
        int rc = inflate(&zs, Z_NO_FLUSH);
        b.len += room - zs.avail_out;
        size_t at = consumed - zs.avail_in; /* compressed bytes read so far */
        if (rc == Z_STREAM_END) {
            members++;
            if (at == in_size)
                break;
            /* another member may follow (gzip allows concatenation); anything else is
             * not gzip data and is refused rather than ignored */
            if (!tg__is_gzip(in + at, in_size - at)) {
                st = tg_set_error(TG_ERR_FORMAT,
                                  "%s: %s: %zu bytes after the end of gzip member %d at byte %zu are "
                                  "not another gzip member",
                                  module, path, in_size - at, members, at);
                break;
            }
            inflateReset(&zs);
            continue;
        }
        if (rc == Z_OK)
            continue;
        if (rc == Z_BUF_ERROR && zs.avail_out > 0 && zs.avail_in == 0 && consumed == in_size) {
            st = tg_set_error(TG_ERR_FORMAT,
                              "%s: %s: gzip stream is cut short: %zu compressed bytes end inside "
                              "member %d (%zu bytes inflated so far)",
                              module, path, in_size, members + 1, b.len);
            break;
        }
        if (rc == Z_BUF_ERROR) /* no progress possible only for want of output room */
            continue;
        st = tg_set_error(rc == Z_MEM_ERROR ? TG_ERR_NOMEM : TG_ERR_FORMAT,
                          "%s: %s: gzip data is corrupt near compressed byte %zu of member %d "
                          "(zlib: %s)",
                          module, path, at, members + 1, zs.msg ? zs.msg : "error");
        break;
    }
    inflateEnd(&zs);
    if (st != TG_OK) {
        tg_mem_free(b.p);
        return st;
    }
    *out = b.p;
    *out_size = b.len;
    return TG_OK;
}
