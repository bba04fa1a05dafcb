/* datasets/io.c — paths, and inflating gzip in memory or from an open file (reading
 * files whole is tensor/fileio.c's).
 *
 * The parsers work on buffers, not streams, so that one code path serves the files and
 * the fuzz targets, and so that every size can be checked before any byte is trusted.
 * Gzip goes through zlib's inflate (not gzread) because gzread passes a file without
 * the gzip magic through as plain data and shows a cut stream only as a short read
 * plus gzerror; here a .gz file that is cut short or fails its CRC must be an error
 * that says so, with the offset, and the same code must run on a fuzzer's buffer. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

bool tg__path_join(const char *module, char *buf, size_t size, const char *dir, const char *file)
{
    int n = snprintf(buf, size, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= size) {
        tg_set_error_in(TG_ERR_ARG, module, "path %s/%s is longer than %zu bytes", dir, file,
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

/* ------------------------------------------------------------------ gzip */

bool tg__is_gzip(const uint8_t *data, size_t size)
{
    return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

/* Where the compressed bytes come from: a buffer (the fuzz targets' inputs), or an open
 * file read a piece at a time, so that a file's compressed bytes are never all in memory. */
typedef struct gz_source {
    const char *module, *path;
    const uint8_t *mem; /* the whole input, or NULL: read fd */
    int fd;
    uint64_t size;      /* bytes in the input */
    uint64_t consumed;  /* of them, handed to zlib so far */
    uint8_t *piece;     /* a file's current piece */
} gz_source;

#define GZ_PIECE ((size_t)1 << 16)

/* Gives zlib more input once it has used up what it had. */
static tg_status refill(gz_source *src, z_stream *zs)
{
    if (zs->avail_in > 0 || src->consumed == src->size)
        return TG_OK;
    uint64_t left = src->size - src->consumed;
    if (src->mem) {
        /* avail_in is a uInt: feed the input in pieces that fit */
        size_t n = left > ((uint64_t)1 << 30) ? (size_t)1 << 30 : (size_t)left;
        zs->next_in = (Bytef *)(src->mem + src->consumed);
        zs->avail_in = (uInt)n;
        src->consumed += n;
        return TG_OK;
    }
    size_t n = left > GZ_PIECE ? GZ_PIECE : (size_t)left, got;
    if (tg__read_at(src->module, src->path, src->fd, src->consumed, src->piece, n, &got) != TG_OK)
        return tg_last_status();
    if (got == 0)
        return tg_set_error_in(TG_ERR_IO, src->module, "%s: changed size while being read (%llu bytes, then %llu)",
                               src->path, (unsigned long long)src->size,
                               (unsigned long long)src->consumed);
    zs->next_in = src->piece;
    zs->avail_in = (uInt)got;
    src->consumed += got;
    return TG_OK;
}

/* Whether a gzip member starts at byte `at` of the input (at < size). */
static bool member_at(gz_source *src, uint64_t at)
{
    uint8_t magic[2];
    size_t got = 0;
    if (src->mem)
        return tg__is_gzip(src->mem + at, (size_t)(src->size - at));
    return tg__read_at(src->module, src->path, src->fd, at, magic, 2, &got) == TG_OK &&
           tg__is_gzip(magic, got);
}

/* The buffer that inflate writes into, grown up to what is wanted. */
typedef struct growbuf {
    uint8_t *p;
    size_t len, cap;
} growbuf;

static bool grow_to(growbuf *b, size_t cap)
{
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

/* The trailer's ISIZE is the (last member's) length mod 2^32: a good first guess at the
 * output's size, so a real file inflates without regrowing; trusted only as far as
 * deflate's best ratio (1032:1) allows, so a lying trailer cannot make us allocate a lot. */
static size_t first_guess(gz_source *src, size_t max_out)
{
    size_t hint = 0;
    uint8_t t[4];
    size_t got = 0;
    if (src->size >= 18) {
        if (src->mem)
            memcpy(t, src->mem + src->size - 4, 4), got = 4;
        else if (tg__read_at(src->module, src->path, src->fd, src->size - 4, t, 4, &got) != TG_OK)
            got = 0;
        if (got == 4)
            hint = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
    }
    uint64_t ratio_cap = src->size > UINT64_MAX / 1032 ? UINT64_MAX : src->size * 1032;
    if (hint > ratio_cap)
        hint = (size_t)ratio_cap;
    if (hint < 4096)
        hint = 4096;
    if (hint > max_out)
        hint = max_out > 0 ? max_out : 1;
    return hint;
}

static tg_status gunzip(gz_source *src, size_t max_out, const tg__gz_expect *expect, uint8_t **out,
                        size_t *out_size)
{
    const char *module = src->module, *path = src->path;
    *out = NULL;
    *out_size = 0;
    uint8_t magic[2];
    size_t got = 0;
    if (src->mem)
        got = src->size >= 2 ? 2 : (size_t)src->size, memcpy(magic, src->mem, got);
    else if (tg__read_at(module, path, src->fd, 0, magic, 2, &got) != TG_OK)
        return tg_last_status();
    if (!tg__is_gzip(magic, got))
        return tg_set_error_in(TG_ERR_FORMAT, module, "%s: not a gzip file (no 1f 8b magic at byte 0)",
                            path);
    /* With an expectation, only its head is inflated until the head has said how long the
     * whole must be; the output then stops there. */
    bool judged = expect == NULL;
    size_t want = judged ? max_out : (expect->head_len < max_out ? expect->head_len : max_out);
    growbuf b = {0};
    size_t first = judged ? first_guess(src, max_out) : (want > 0 ? want : 1);
    if (!grow_to(&b, first))
        return tg_set_error_in(TG_ERR_NOMEM, module, "%s: cannot allocate %zu bytes to inflate it",
                            path, first);

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK) { /* 15+16: a gzip wrapper, checked */
        tg_mem_free(b.p);
        return tg_set_error_in(TG_ERR_NOMEM, module, "%s: zlib could not start inflating", path);
    }
    tg_status st = TG_OK;
    int members = 0;
    for (;;) {
        if ((st = refill(src, &zs)) != TG_OK)
            break;
        if (!judged && b.len == want) {
            size_t total;
            if (!expect->size_of(path, b.p, b.len, expect->ctx, &total)) {
                st = tg_last_status();
                break;
            }
            if (total > max_out) {
                st = tg_set_error_in(TG_ERR_FORMAT, module, "%s: its header declares %zu bytes (inflated), "
                                  "more than the %zu-byte limit", path, total, max_out);
                break;
            }
            judged = true;
            want = total > b.len ? total : b.len;
            if (want > b.cap && !grow_to(&b, want)) {
                st = tg_set_error_in(TG_ERR_NOMEM, module, "%s: cannot allocate %zu bytes to inflate it",
                                  path, want);
                break;
            }
        }
        if (b.len == b.cap && b.cap < want) {
            size_t cap = b.cap > want / 2 ? want : b.cap * 2;
            if (!grow_to(&b, cap)) {
                st = tg_set_error_in(TG_ERR_NOMEM, module, "%s: cannot allocate %zu bytes to inflate it",
                                  path, cap);
                break;
            }
        }
        /* with all that is wanted out, one byte of room more: any output there is too much */
        uint8_t spill;
        bool full = b.len == want;
        size_t room = full ? 1 : b.cap - b.len;
        if (room > (size_t)1 << 30)
            room = (size_t)1 << 30;
        zs.next_out = full ? &spill : b.p + b.len;
        zs.avail_out = (uInt)room;
        int rc = inflate(&zs, Z_NO_FLUSH);
        size_t made = room - zs.avail_out;
        if (full && made > 0) {
            st = expect ? tg_set_error_in(TG_ERR_FORMAT, module, "%s: inflates to more than the %zu bytes its "
                                       "header declares", path, want)
                        : tg_set_error_in(TG_ERR_FORMAT, module, "%s: inflates to more than %zu bytes",
                                       path, want);
            break;
        }
        if (!full)
            b.len += made;
        uint64_t at = src->consumed - zs.avail_in; /* compressed bytes read so far */
        if (rc == Z_STREAM_END) {
            members++;
            if (at == src->size)
                break;
            /* another member may follow (gzip allows concatenation); anything else is
             * not gzip data and is refused rather than ignored */
            if (!member_at(src, at)) {
                st = tg_set_error_in(TG_ERR_FORMAT,
                                  module, "%s: %llu bytes after the end of gzip member %d at byte %llu are "
                                  "not another gzip member",
                                  path, (unsigned long long)(src->size - at), members,
                                  (unsigned long long)at);
                break;
            }
            inflateReset(&zs);
            continue;
        }
        if (rc == Z_OK)
            continue;
        if (rc == Z_BUF_ERROR && zs.avail_out > 0 && zs.avail_in == 0 && src->consumed == src->size) {
            st = tg_set_error_in(TG_ERR_FORMAT,
                              module, "%s: gzip stream is cut short: %llu compressed bytes end inside "
                              "member %d (%zu bytes inflated so far)",
                              path, (unsigned long long)src->size, members + 1, b.len);
            break;
        }
        if (rc == Z_BUF_ERROR) /* no progress possible only for want of output room */
            continue;
        st = tg_set_error_in(rc == Z_MEM_ERROR ? TG_ERR_NOMEM : TG_ERR_FORMAT,
                          module, "%s: gzip data is corrupt near compressed byte %llu of member %d "
                          "(zlib: %s)",
                          path, (unsigned long long)at, members + 1, zs.msg ? zs.msg : "error");
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

tg_status tg__gunzip(const char *module, const char *path, const uint8_t *in, size_t in_size,
                     size_t max_out, const tg__gz_expect *expect, uint8_t **out, size_t *out_size)
{
    gz_source src = {.module = module, .path = path, .mem = in ? in : (const uint8_t *)"", .fd = -1,
                     .size = in_size};
    return gunzip(&src, max_out, expect, out, out_size);
}

tg_status tg__gunzip_file(const char *module, const char *path, int fd, uint64_t fsize,
                          size_t max_out, const tg__gz_expect *expect, uint8_t **out,
                          size_t *out_size)
{
    gz_source src = {.module = module, .path = path, .fd = fd, .size = fsize,
                     .piece = tg_mem_alloc(GZ_PIECE, 64)};
    *out = NULL;
    *out_size = 0;
    if (!src.piece)
        return tg_set_error_in(TG_ERR_NOMEM, module, "%s: cannot allocate %zu bytes to inflate it",
                            path, GZ_PIECE);
    tg_status st = gunzip(&src, max_out, expect, out, out_size);
    tg_mem_free(src.piece);
    return st;
}
