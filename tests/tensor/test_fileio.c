/* tensor/fileio.c: whole-file reads (the contents with a NUL after them, a limit, a FIFO
 * refused without waiting, a missing file named) and atomic replacement (the new
 * contents and the old mode; a write, a rename or a cancel that fails leaves the old
 * file as it was and no temporary behind). */
#include "check_util.h"
#include "fileio.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/tg_fileio_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[600];
    while (d && (e = readdir(d)) != NULL) {
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && unlink(p) != 0)
            rmdir(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* dir/name in one of a few static buffers */
static const char *in_dir(const char *name)
{
    static char bufs[4][600];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, 600, "%s/%s", dir, name);
    return b;
}

/* entries of dir whose name has ".tmp." */
static int temporaries(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* the file's contents as a string (test files are small text) */
static const char *contents(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* ------------------------------------------------------------------ reading */

START_TEST(test_read_whole_file)
{
    const char *p = in_dir("a.txt");
    tt_write_file(p, "hello\nworld", 11);
    uint8_t *data;
    size_t n;
    ck_assert_int_eq(tg__read_file("t", p, 100, &data, &n), TG_OK);
    ck_assert_uint_eq(n, 11);
    ck_assert_str_eq((const char *)data, "hello\nworld"); /* ends in a NUL */
    tg_mem_free(data);

    /* an empty file is a buffer of one NUL */
    const char *e = in_dir("empty");
    tt_write_file(e, "", 0);
    ck_assert_int_eq(tg__read_file("t", e, 100, &data, &n), TG_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(data[0], 0);
    tg_mem_free(data);
}
END_TEST

START_TEST(test_read_refuses_what_it_must)
{
    uint8_t *data = (uint8_t *)"x";
    size_t n = 1;
    /* over the limit: refused before anything is allocated */
    const char *p = in_dir("big");
    tt_write_file(p, "0123456789", 10);
    ck_assert_int_eq(tg__read_file("reader", p, 9, &data, &n), TG_ERR_FORMAT);
    ck_assert_ptr_null(data);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "reader: "));
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "big: 10 bytes is more than the 9"));
    ck_assert_int_eq(tg__read_file("reader", p, 10, &data, &n), TG_OK);
    tg_mem_free(data);

    /* missing */
    ck_assert_int_eq(tg__read_file("reader", in_dir("nothing"), 100, &data, &n), TG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "nothing: cannot open: No such file"));

    /* a FIFO is refused at once, not waited on */
    const char *fifo = in_dir("fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    alarm(10);
    ck_assert_int_eq(tg__read_file("reader", fifo, 100, &data, &n), TG_ERR_IO);
    alarm(0);
    char want[700];
    snprintf(want, sizeof want, "reader: %s: not a regular file", fifo);
    ck_assert_str_eq(tg_last_error(), want);

    /* a directory too */
    ck_assert_int_eq(tg__read_file("reader", dir, 100, &data, &n), TG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "not a regular file"));
}
END_TEST

/* ------------------------------------------------------------------ writing */

START_TEST(test_write_replaces_and_keeps_the_mode)
{
    const char *p = in_dir("out.csv");
    ck_assert_int_eq(tg__write_file_atomic("w", p, "one\n", 4), TG_OK);
    ck_assert_str_eq(contents(p), "one\n");
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0644); /* not mkstemp's 0600 */
    ck_assert_int_eq(chmod(p, 0640), 0);
    ck_assert_int_eq(tg__write_file_atomic("w", p, "two\n", 4), TG_OK);
    ck_assert_str_eq(contents(p), "two\n");
    ck_assert_int_eq(stat(p, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0640);
    ck_assert_int_eq(temporaries(), 0);

    /* through the stream, in pieces */
    tg_atomic_file w;
    ck_assert_int_eq(tg__atomic_begin(&w, "w", p), TG_OK);
    ck_assert_ptr_nonnull(strstr(w.tmp, "out.csv.tmp."));
    fprintf(w.f, "a,b\n");
    fprintf(w.f, "%d,%d\n", 1, 2);
    ck_assert_str_eq(contents(p), "two\n"); /* nothing changes before the commit */
    ck_assert_int_eq(tg__atomic_commit(&w), TG_OK);
    ck_assert_str_eq(contents(p), "a,b\n1,2\n");
    ck_assert_ptr_null(w.f);
    ck_assert_int_eq(temporaries(), 0);
}
END_TEST

START_TEST(test_cancel_leaves_nothing)
{
    const char *p = in_dir("kept");
    ck_assert_int_eq(tg__write_file_atomic("w", p, "old", 3), TG_OK);
    tg_atomic_file w;
    ck_assert_int_eq(tg__atomic_begin(&w, "w", p), TG_OK);
    fprintf(w.f, "new");
    ck_assert_int_eq(temporaries(), 1);
    tg__atomic_cancel(&w);
    ck_assert_int_eq(temporaries(), 0);
    ck_assert_str_eq(contents(p), "old");
}
END_TEST

START_TEST(test_failed_write_leaves_the_old_file)
{
    /* a file size limit makes the write itself fail (EFBIG), as a full disk would;
     * in a child, so that the limit goes with it */
    const char *p = in_dir("ckpt");
    ck_assert_int_eq(tg__write_file_atomic("w", p, "old contents", 12), TG_OK);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {.rlim_cur = 1024, .rlim_max = 1024};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(77);
        static char big[1 << 16];
        memset(big, 'x', sizeof big);
        tg_status s = tg__write_file_atomic("w", p, big, sizeof big);
        bool named = strstr(tg_last_error(), "w: ") == tg_last_error() &&
                     strstr(tg_last_error(), "writing the temporary file") &&
                     strstr(tg_last_error(), "File too large");
        _exit(s == TG_ERR_IO && named ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_str_eq(contents(p), "old contents");
    ck_assert_int_eq(temporaries(), 0);
}
END_TEST

START_TEST(test_failed_rename_leaves_the_target)
{
    /* the target is a directory: the rename fails, the temporary goes, the directory stays */
    const char *d = in_dir("a_directory");
    ck_assert_int_eq(mkdir(d, 0755), 0);
    ck_assert_int_eq(tg__write_file_atomic("w", d, "x", 1), TG_ERR_IO);
    char want[700];
    snprintf(want, sizeof want, "w: %s: cannot rename the temporary file onto it: Is a directory", d);
    ck_assert_str_eq(tg_last_error(), want);
    struct stat sb;
    ck_assert_int_eq(stat(d, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_int_eq(temporaries(), 0);
    ck_assert_int_eq(rmdir(d), 0);

    /* no directory to put the temporary in */
    ck_assert_int_eq(tg__write_file_atomic("w", in_dir("no/such/file"), "x", 1), TG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "cannot create a temporary file beside it: No such file"));
}
END_TEST

/* The public forms for programs (tensor.h): the same writer, messages naming it. */
START_TEST(test_public_writer)
{
    const char *p = in_dir("public.csv");
    ck_assert_int_eq(tg_write_file_atomic(p, "a\n", 2), TG_OK);
    ck_assert_str_eq(contents(p), "a\n");
    tg_atomic_file w;
    ck_assert_int_eq(tg_atomic_begin(&w, p), TG_OK);
    fprintf(w.f, "b\n");
    ck_assert_str_eq(contents(p), "a\n");
    ck_assert_int_eq(tg_atomic_commit(&w), TG_OK);
    ck_assert_str_eq(contents(p), "b\n");
    ck_assert_int_eq(tg_atomic_begin(&w, p), TG_OK);
    fprintf(w.f, "c\n");
    tg_atomic_cancel(&w);
    tg_atomic_cancel(&w); /* done with: nothing */
    ck_assert_str_eq(contents(p), "b\n");
    ck_assert_int_eq(temporaries(), 0);

    ck_assert_int_eq(tg_write_file_atomic(in_dir("no/such/file"), "x", 1), TG_ERR_IO);
    tt_expect_last(TG_ERR_IO, "tg_write_file_atomic", "cannot create a temporary file beside it");
    ck_assert_int_eq(tg_atomic_begin(&w, in_dir("no/such/file")), TG_ERR_IO);
    tt_expect_last(TG_ERR_IO, "tg_atomic_begin", "cannot create a temporary file beside it");
    ck_assert_int_eq(tg_write_file_atomic(p, NULL, 1), TG_ERR_ARG);
    ck_assert_int_eq(tg_atomic_begin(NULL, p), TG_ERR_ARG);
    ck_assert_int_eq(tg_atomic_commit(&w), TG_ERR_STATE); /* after a failed begin */
    tt_expect_last(TG_ERR_STATE, "tg_atomic_commit", "the file is not being written");
    ck_assert_str_eq(contents(p), "b\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/fileio");
    TCase *tc = tt_tcase("fileio");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_read_whole_file);
    tcase_add_test(tc, test_read_refuses_what_it_must);
    tcase_add_test(tc, test_write_replaces_and_keeps_the_mode);
    tcase_add_test(tc, test_cancel_leaves_nothing);
    tcase_add_test(tc, test_failed_write_leaves_the_old_file);
    tcase_add_test(tc, test_failed_rename_leaves_the_target);
    tcase_add_test(tc, test_public_writer);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
