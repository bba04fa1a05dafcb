/* tensor/fileio.c — whole-file reads and atomic replacement (tensor/fileio.h says what
 * each guarantees). Written once here because three readers and two atomic writers had
 * drifted apart: one writer used a fixed ".tmp" name, neither fsynced the directory. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ reading */

int tg__open_regular(const char *module, const char *path, uint64_t *size)
{
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever;
     * it does not change how a regular file reads */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        tg_set_error_in(TG_ERR_IO, module, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        tg_set_error_in(TG_ERR_IO, module, "%s: cannot stat: %s", path, strerror(e));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        tg_set_error_in(TG_ERR_IO, module, "%s: not a regular file", path);
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

tg_status tg__read_at(const char *module, const char *path, int fd, uint64_t off, void *buf, size_t n,
                      size_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return tg_set_error_in(TG_ERR_IO, module, "%s: read error at byte %llu: %s", path,
                                (unsigned long long)(off + done), strerror(errno));
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return TG_OK;
}

tg_status tg__read_open_file(const char *module, const char *path, int fd, uint64_t fsize, size_t max,
                             uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    if (max > SIZE_MAX - 1)
        max = SIZE_MAX - 1;
    if (fsize > max)
        return tg_set_error_in(fsize > SIZE_MAX - 1 ? TG_ERR_NOMEM : TG_ERR_FORMAT,
                            module, "%s: %llu bytes is more than the %zu this reader takes", path,
                            (unsigned long long)fsize, max);
    size_t n = (size_t)fsize;
    /* one spare byte: an empty file still gets a buffer, text ends in a NUL, and reading
     * one byte more than stat promised tells us the file grew meanwhile */
    uint8_t *buf = tg_mem_alloc(n + 1, 64);
    if (!buf)
        return tg_set_error_in(TG_ERR_NOMEM, module, "%s: cannot allocate %zu bytes to read it",
                            path, n);
    size_t got;
    if (tg__read_at(module, path, fd, 0, buf, n + 1, &got) != TG_OK) {
        tg_mem_free(buf);
        return tg_last_status();
    }
    if (got != n) {
        tg_mem_free(buf);
        return tg_set_error_in(TG_ERR_IO, module, "%s: changed size while being read (%zu bytes, then %s%zu)",
                            path, n, got > n ? "more than " : "", got > n ? n : got);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return TG_OK;
}

tg_status tg__read_file(const char *module, const char *path, size_t max, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    uint64_t fsize;
    int fd = tg__open_regular(module, path, &fsize);
    if (fd < 0)
        return tg_last_status();
    tg_status st = tg__read_open_file(module, path, fd, fsize, max, data, size);
    close(fd);
    return st;
}

/* ------------------------------------------------------------------ writing */

/* fsync of the directory holding path, so that a rename into it is durable; best effort
 * (some file systems refuse to sync a directory, and the file itself is already synced) */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = tg_mem_alloc(n + 1, 1);
    if (!dir)
        return;
    if (!slash)
        memcpy(dir, ".", 2);
    else {
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    tg_mem_free(dir);
}

static void finish(tg_atomic_file *w, bool remove_tmp)
{
    if (w->f)
        fclose(w->f);
    if (w->tmp) {
        if (remove_tmp)
            unlink(w->tmp);
        tg_mem_free(w->tmp);
    }
    w->f = NULL;
    w->tmp = NULL;
}

tg_status tg__atomic_begin(tg_atomic_file *w, const char *module, const char *path)
{
    *w = (tg_atomic_file){.module = module, .path = path};
    if (!path)
        return tg_set_error_in(TG_ERR_ARG, module, "path is NULL");
    static const char suffix[] = ".tmp.XXXXXX";
    size_t plen = strlen(path);
    w->tmp = tg_mem_alloc(plen + sizeof suffix, 1);
    if (!w->tmp)
        return tg_set_error_in(TG_ERR_NOMEM, module, "%s: out of memory", path);
    memcpy(w->tmp, path, plen);
    memcpy(w->tmp + plen, suffix, sizeof suffix);
    int fd = mkstemp(w->tmp);
    if (fd < 0) {
        int e = errno;
        finish(w, false);
        return tg_set_error_in(TG_ERR_IO, module, "%s: cannot create a temporary file beside it: %s",
                            path, strerror(e));
    }
    /* a child the caller starts (gnuplot writing a plot into it) needs only the name */
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* mkstemp makes the file 0600: keep the mode of the file replaced, else rw-r--r-- */
    struct stat old;
    (void)fchmod(fd, stat(path, &old) == 0 && S_ISREG(old.st_mode) ? (old.st_mode & 07777) : 0644);
    w->f = fdopen(fd, "wb");
    if (!w->f) {
        int e = errno;
        close(fd);
        finish(w, true);
        return tg_set_error_in(TG_ERR_IO, module, "%s: cannot write the temporary file beside it: %s",
                            path, strerror(e));
    }
    errno = 0; /* so that a short write without an errno reads as one */
    return TG_OK;
}

tg_status tg__atomic_commit(tg_atomic_file *w)
{
    if (!w->f)
        return tg_set_error_in(TG_ERR_STATE, w->module, "%s: the file is not being written",
                            w->path ? w->path : "(null)");
    int err = errno;
    if (ferror(w->f) || fflush(w->f) != 0 || fsync(fileno(w->f)) != 0) {
        err = errno ? errno : err;
        tg_status s = tg_set_error_in(TG_ERR_IO, w->module, "%s: writing the temporary file %s failed: %s",
                                   w->path, w->tmp, err ? strerror(err) : "short write");
        finish(w, true);
        return s;
    }
    FILE *f = w->f;
    w->f = NULL;
    if (fclose(f) != 0) {
        tg_status s = tg_set_error_in(TG_ERR_IO, w->module, "%s: closing the temporary file %s failed: %s",
                                   w->path, w->tmp, strerror(errno));
        finish(w, true);
        return s;
    }
    if (rename(w->tmp, w->path) != 0) {
        tg_status s = tg_set_error_in(TG_ERR_IO, w->module, "%s: cannot rename the temporary file onto it: %s",
                                   w->path, strerror(errno));
        finish(w, true);
        return s;
    }
    finish(w, false);
    sync_parent_dir(w->path);
    return TG_OK;
}

void tg__atomic_cancel(tg_atomic_file *w)
{
    if (w)
        finish(w, true);
}

tg_status tg__write_file_atomic(const char *module, const char *path, const void *data, size_t len)
{
    if (!data && len > 0)
        return tg_set_error_in(TG_ERR_ARG, module, "%s: data is NULL", path ? path : "(null)");
    tg_atomic_file w;
    tg_status s = tg__atomic_begin(&w, module, path);
    if (s != TG_OK)
        return s;
    /* a short write sets the stream's error flag, which commit reports */
    if (len > 0)
        (void)fwrite(data, 1, len, w.f);
    return tg__atomic_commit(&w);
}

/* ------------------------------------------------------------------ public forms */

tg_status tg_atomic_begin(tg_atomic_file *w, const char *path)
{
    if (!w)
        return tg_set_error_in(TG_ERR_ARG, "tg_atomic_begin", "the tg_atomic_file is NULL");
    return tg__atomic_begin(w, "tg_atomic_begin", path);
}

tg_status tg_atomic_commit(tg_atomic_file *w)
{
    if (!w)
        return tg_set_error_in(TG_ERR_ARG, "tg_atomic_commit", "the tg_atomic_file is NULL");
    w->module = "tg_atomic_commit"; /* its messages name the function the user called */
    return tg__atomic_commit(w);
}

void tg_atomic_cancel(tg_atomic_file *w) { tg__atomic_cancel(w); }

tg_status tg_write_file_atomic(const char *path, const void *data, size_t len)
{
    return tg__write_file_atomic("tg_write_file_atomic", path, data, len);
}
