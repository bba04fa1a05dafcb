/* experiments/study/files.c — text buffers, CSV reading, the lock that makes a
 * directory one process's.
 *
 * A run can be killed at any moment (the study's runs last hours), so every result
 * file is built in memory and replaced whole by the library's atomic writer
 * (tensor/fileio.h: a temporary of a unique name beside it, fsync, rename, fsync of the
 * directory). A reader then sees the old file or the new one, never half of one. */
#include "study.h"
#include "../../tensor/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double study_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ paths */

bool study_path(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < size;
}

bool study_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

bool study_run_complete(const char *dir)
{
    char p[STUDY_PATH_MAX];
    return study_path(p, sizeof p, dir, STUDY_TEST_SUMMARY_CSV) && study_file_exists(p);
}

tg_status study_mkdirs(const char *dir)
{
    char p[STUDY_PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p)
        return tg_set_error(TG_ERR_ARG, "study: directory name '%s' is empty or too long", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return tg_set_error(TG_ERR_IO, "study: cannot create directory %s: %s", p, strerror(errno));
        p[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return tg_set_error(TG_ERR_IO, "study: %s is not a directory", dir);
    return TG_OK;
}

/* ------------------------------------------------------------------ whole files */

char *study_read_file(const char *path, size_t *len_out)
{
    uint8_t *data;
    size_t len;
    if (tg__read_file("study", path, STUDY_READ_MAX, &data, &len) != TG_OK)
        return NULL;
    if (len_out)
        *len_out = len;
    return (char *)data; /* tg__read_file ends it with a NUL */
}

/* ------------------------------------------------------------------ the lock */

int study_lock_dir(const char *dir, const char *what)
{
    char path[STUDY_PATH_MAX];
    if (!study_path(path, sizeof path, dir, STUDY_LOCK_FILE)) {
        tg_set_error(TG_ERR_ARG, "study: path too long: %s/%s", dir, STUDY_LOCK_FILE);
        return -1;
    }
    /* O_CLOEXEC: a child (gnuplot, a sweep's `study train`) must not inherit the lock */
    int fd = open(path, O_RDWR | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        tg_set_error(TG_ERR_IO, "study: cannot lock the %s %s: %s %s", what, dir, path,
                     fd < 0 ? strerror(errno) : "is not a regular file");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        char text[32] = "";
        ssize_t n = e == EWOULDBLOCK ? pread(fd, text, sizeof text - 1, 0) : -1;
        text[n > 0 ? n : 0] = '\0';
        char *end;
        long pid = strtol(text, &end, 10);
        close(fd);
        if (e != EWOULDBLOCK) {
            tg_set_error(TG_ERR_IO, "study: cannot lock the %s %s (%s): %s", what, dir, path, strerror(e));
            return -1;
        }
        char holder[48] = "another process";
        if (end != text && pid > 0 && (*end == '\n' || !*end))
            snprintf(holder, sizeof holder, "process %ld", pid);
        tg_set_error(TG_ERR_STATE, "study: the %s %s is in use by %s (it holds %s); one process at "
                     "a time may write it", what, dir, holder, path);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    bool written = ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) == n;
    (void)written; /* the lock holds without it; a refused process then names no pid */
    return fd;
}

void study_unlock_dir(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock; the file (and its stale pid) stays */
}

/* ------------------------------------------------------------------ text buffers */

static bool buf_reserve(study_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void study_buf_append(study_buf *b, const char *text, size_t len)
{
    if (!buf_reserve(b, len))
        return;
    memcpy(b->data + b->len, text, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void study_buf_printf(study_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void study_buf_free(study_buf *b)
{
    free(b->data);
    *b = (study_buf){0};
}

tg_status study_buf_write(const study_buf *b, const char *path)
{
    if (b->failed)
        return tg_set_error(TG_ERR_NOMEM, "study: out of memory building %s", path);
    return tg__write_file_atomic("study", path, b->data ? b->data : "", b->len);
}

/* ------------------------------------------------------------------ CSV */

void study_csv_free(study_csv *c)
{
    if (!c)
        return;
    free(c->names);
    free(c->cells);
    tg_mem_free(c->text);
    free(c);
}

/* splits line on ',' (cut in place) into at most max fields; returns how many it has */
static int split_fields(char *line, char **out, int max)
{
    int n = 0;
    for (char *p = line;;) {
        char *comma = strchr(p, ',');
        if (n < max) {
            out[n] = p;
            if (comma)
                *comma = '\0';
        }
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return n;
}

study_csv *study_read_csv(const char *path)
{
    size_t len;
    char *text = study_read_file(path, &len);
    if (!text)
        return NULL;
    study_csv *c = calloc(1, sizeof *c);
    if (!c) {
        tg_mem_free(text);
        tg_set_error(TG_ERR_NOMEM, "study: %s: out of memory", path);
        return NULL;
    }
    c->text = text;
    /* lines: count them, then cut each in place */
    size_t nlines = 0;
    for (size_t i = 0; i < len; i++)
        nlines += text[i] == '\n';
    c->cut = len > 0 && text[len - 1] != '\n';
    nlines += c->cut;
    if (nlines == 0) {
        tg_set_error(TG_ERR_FORMAT, "study: %s: empty file, expected a CSV header", path);
        study_csv_free(c);
        return NULL;
    }
    char *p = text;
    char *nl = strchr(p, '\n');
    if (nl)
        *nl = '\0';
    if (nl && nl > p && nl[-1] == '\r')
        nl[-1] = '\0';
    int ncols = 1;
    for (const char *q = p; *q; q++)
        ncols += *q == ',';
    c->names = malloc((size_t)ncols * sizeof *c->names);
    c->cells = malloc((nlines * (size_t)ncols + 1) * sizeof *c->cells);
    if (!c->names || !c->cells) {
        tg_set_error(TG_ERR_NOMEM, "study: %s: out of memory", path);
        study_csv_free(c);
        return NULL;
    }
    c->ncols = split_fields(p, c->names, ncols);
    int line_no = 1;
    p = nl ? nl + 1 : text + len;
    while (p < text + len) {
        line_no++;
        nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        char *end = nl ? nl : text + len;
        if (end > p && end[-1] == '\r')
            end[-1] = '\0';
        if (*p) { /* blank lines are skipped */
            char **row = c->cells + (size_t)c->nrows * (size_t)ncols;
            int got = split_fields(p, row, ncols);
            if (got != ncols) {
                tg_set_error(TG_ERR_FORMAT, "study: %s: line %d has %d fields, the header %d", path,
                             line_no, got, ncols);
                study_csv_free(c);
                return NULL;
            }
            c->nrows++;
        }
        p = nl ? nl + 1 : text + len;
    }
    return c;
}

study_csv *study_read_csv_in(const char *dir, const char *name)
{
    char path[STUDY_PATH_MAX];
    if (!study_path(path, sizeof path, dir, name)) {
        tg_set_error(TG_ERR_ARG, "study: path too long: %s/%s", dir, name);
        return NULL;
    }
    return study_read_csv(path);
}

int study_csv_col(const study_csv *c, const char *name)
{
    for (int i = 0; c && i < c->ncols; i++)
        if (!strcmp(c->names[i], name))
            return i;
    return -1;
}

const char *study_csv_cell(const study_csv *c, int row, int col)
{
    if (!c || row < 0 || row >= c->nrows || col < 0 || col >= c->ncols)
        return NULL;
    return c->cells[(size_t)row * (size_t)c->ncols + (size_t)col];
}

double study_csv_num(const study_csv *c, int row, const char *name)
{
    const char *s = study_csv_cell(c, row, study_csv_col(c, name));
    if (!s || !*s)
        return NAN;
    char *end;
    double v = strtod(s, &end);
    return *end ? NAN : v;
}

bool study_read_grad_ends(const char *dir, study_grad_ends *out)
{
    *out = (study_grad_ends){.first_grad = NAN, .last_grad = NAN};
    study_csv *c = study_read_csv_in(dir, STUDY_GRADFLOW_CSV);
    int cl = study_csv_col(c, "layer"), ck = study_csv_col(c, "kind");
    if (!c || study_csv_col(c, "epoch") < 0 || cl < 0 || ck < 0 || study_csv_col(c, "mean_abs") < 0) {
        study_csv_free(c);
        return false;
    }
    double last_epoch = -INFINITY;
    for (int row = 0; row < c->nrows; row++)
        last_epoch = fmax(last_epoch, study_csv_num(c, row, "epoch"));
    for (int row = 0; row < c->nrows; row++) {
        const char *layer = study_csv_cell(c, row, cl);
        if (study_csv_num(c, row, "epoch") != last_epoch || strcmp(study_csv_cell(c, row, ck), "weight") ||
            !strstr(layer, "conv"))
            continue;
        if (out->nconv++ == 0) {
            snprintf(out->first, sizeof out->first, "%s", layer);
            out->first_grad = study_csv_num(c, row, "mean_abs");
        }
        snprintf(out->last, sizeof out->last, "%s", layer);
        out->last_grad = study_csv_num(c, row, "mean_abs");
    }
    if (out->nconv > 0)
        out->epoch = (int)last_epoch;
    study_csv_free(c);
    return out->nconv > 0;
}
