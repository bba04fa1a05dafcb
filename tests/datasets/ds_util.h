/* tests/datasets/ds_util.h — what the datasets suites share: a scratch directory per
 * test, writing files in the real formats (plain and through zlib's gzwrite), and
 * checking an error's status and the key parts of its message. */
#ifndef TAPEGRAD_TESTS_DS_UTIL_H
#define TAPEGRAD_TESTS_DS_UTIL_H

#include "check_util.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* A fresh directory under $TMPDIR (or /tmp); the caller removes it with ds_rmtree. */
static inline char *ds_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    static char path[512];
    snprintf(path, sizeof path, "%s/tapegrad-ds-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(path));
    return path;
}

static inline void ds_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[1400]; /* path (< 1024) + "/" + a name (< 256) */
            if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
                ds_rmtree(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* dir/name into a static buffer (one of 4 in rotation, so a few can be held at once). */
static inline const char *ds_path(const char *dir, const char *name)
{
    static char bufs[4][1024];
    static int next;
    char *p = bufs[next++ % 4];
    ck_assert_int_lt(snprintf(p, 1024, "%s/%s", dir, name), 1024);
    return p;
}

static inline const char *ds_write(const char *dir, const char *name, const void *data, size_t size)
{
    const char *path = ds_path(dir, name);
    tt_write_file(path, data, size);
    return path;
}

static inline const char *ds_write_gz(const char *dir, const char *name, const void *data, size_t size)
{
    const char *path = ds_path(dir, name);
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, data, (unsigned)size), (int)size);
    ck_assert_int_eq(gzclose(f), Z_OK);
    return path;
}

/* A call that must fail with this status and a message containing each of the given
 * parts (NULL-terminated list). */
static inline void ds_expect_error_parts(const void *result, tg_status status, const char *const *parts)
{
    ck_assert_ptr_null(result);
    ck_assert_msg(tg_last_status() == status, "status %s, expected %s: %s",
                  tg_status_name(tg_last_status()), tg_status_name(status), tg_last_error());
    for (int i = 0; parts[i]; i++)
        ck_assert_msg(strstr(tg_last_error(), parts[i]) != NULL, "message \"%s\" lacks \"%s\"",
                      tg_last_error(), parts[i]);
}
#define ds_expect_error_has(result, status, ...) \
    ds_expect_error_parts((result), (status), (const char *const[]){__VA_ARGS__, NULL})

/* Big-endian 32-bit store, for IDX headers. */
static inline void ds_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

#endif
