/* experiments/study/plots.c — the report's figures, drawn by gnuplot from the CSV files.
 *
 * Each plot is a gnuplot script written next to its PNG (curves.gp beside curves.png),
 * so a figure can be restyled and redrawn by hand with `gnuplot curves.gp`. The curves
 * read summary.csv directly; the gradient-flow and comparison scripts carry their data
 * as inline data blocks (read here from the CSV files), because gnuplot cannot easily
 * pick rows by a string column. gnuplot runs in the PNG's directory (fork, chdir, exec)
 * and writes a temporary file of a unique name (NAME.png.tmp.XXXXXX, mkstemp), which
 * replaces NAME.png only when gnuplot exited with status 0 and the file is a whole PNG
 * (gnuplot exits 0 when a full disk cut its output short); its messages go to
 * NAME.gp.log, which is removed when it succeeds.
 *
 * The pngcairo terminal runs with `noenhanced`: layer names are full of underscores,
 * which enhanced text would turn into subscripts. */
#include "study.h"
#include "../../tensor/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ running gnuplot */

bool study_have_gnuplot(void)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        return false;
    char dir[4096], exe[4200];
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (n == 0)
            snprintf(dir, sizeof dir, ".");
        else
            snprintf(dir, sizeof dir, "%.*s", (int)n, p);
        snprintf(exe, sizeof exe, "%s/gnuplot", dir);
        if (access(exe, X_OK) == 0)
            return true;
        if (!colon)
            return false;
        p = colon + 1;
    }
}

/* single-quoted gnuplot string: '' stands for ' */
static void put_quoted(study_buf *b, const char *s)
{
    study_buf_append(b, "'", 1);
    for (; *s; s++) {
        if (*s == '\'')
            study_buf_append(b, "''", 2);
        else if (*s != '\n' && *s != '\r')
            study_buf_append(b, s, 1);
    }
    study_buf_append(b, "'", 1);
}

/* path is a whole PNG file: the signature, then chunks (length, type, data, CRC) that
 * end with IEND exactly at the end of the file. The CRCs are not checked: a cut file is
 * what a full disk makes, and a cut file has no IEND at its end. */
static bool png_complete(const char *path)
{
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 8 + 12;
    uint8_t head[8];
    ok = ok && pread(fd, head, 8, 0) == 8 && !memcmp(head, signature, 8);
    for (uint64_t at = 8; ok;) {
        if (at + 12 > (uint64_t)st.st_size || pread(fd, head, 8, (off_t)at) != 8) {
            ok = false;
            break;
        }
        uint64_t len = (uint64_t)head[0] << 24 | (uint64_t)head[1] << 16 | (uint64_t)head[2] << 8 | head[3];
        at += 12 + len;
        if (!memcmp(head + 4, "IEND", 4)) {
            ok = len == 0 && at == (uint64_t)st.st_size;
            break;
        }
    }
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Writes dir/script from b, runs gnuplot on it in dir and, if it wrote a whole PNG,
 * renames that over dir/png. */
static tg_status run_script(const char *dir, const char *script, const char *png, const study_buf *b)
{
    char script_path[STUDY_PATH_MAX], log_path[STUDY_PATH_MAX], png_path[STUDY_PATH_MAX], log_name[512];
    snprintf(log_name, sizeof log_name, "%s.log", script);
    if (!study_path(script_path, sizeof script_path, dir, script) ||
        !study_path(log_path, sizeof log_path, dir, log_name) ||
        !study_path(png_path, sizeof png_path, dir, png))
        return tg_set_error(TG_ERR_ARG, "study: path too long in %s", dir);
    if (strchr(png, '\'') || strlen(png) > 500)
        return tg_set_error(TG_ERR_ARG, "study: plot file name '%s' has a quote or is too long", png);
    tg_status st = study_buf_write(b, script_path);
    if (st != TG_OK)
        return st;
    if (!study_have_gnuplot())
        return tg_set_error(TG_ERR_STATE, "gnuplot is not installed (apt-get install gnuplot-nox); "
                            "%s is written, %s is not drawn", script_path, png);
    /* the atomic writer's temporary (a unique name of mkstemp letters, no quote) is what
     * gnuplot writes; committing it syncs what gnuplot wrote and renames it over png */
    tg_atomic_file w;
    if (tg__atomic_begin(&w, "study", png_path) != TG_OK)
        return tg_last_status();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        tg__atomic_cancel(&w);
        return tg_set_error(TG_ERR_IO, "study: cannot start gnuplot: %s", strerror(errno));
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (chdir(dir) != 0 || nul < 0 || log < 0)
            _exit(126);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(log, 2);
        char out[700];
        snprintf(out, sizeof out, "out='%s'", strrchr(w.tmp, '/') + 1); /* png has no quote: checked above */
        execlp("gnuplot", "gnuplot", "-e", out, script, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            tg__atomic_cancel(&w);
            return tg_set_error(TG_ERR_IO, "study: waiting for gnuplot: %s", strerror(errno));
        }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        /* the first line of what gnuplot said, for the one-line message */
        char first[300] = "";
        FILE *f = fopen(log_path, "r");
        if (f) {
            while (fgets(first, sizeof first, f) && strspn(first, " \t\r\n^") == strlen(first))
                ;
            first[strcspn(first, "\r\n")] = '\0';
            fclose(f);
        }
        tg__atomic_cancel(&w);
        return tg_set_error(TG_ERR_IO, "gnuplot %s failed (%s %d)%s%s; see %s", script_path,
                            WIFEXITED(status) ? "exit status" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                            first[0] ? ": " : "", first, log_path);
    }
    if (!png_complete(w.tmp)) {
        tg__atomic_cancel(&w);
        return tg_set_error(TG_ERR_IO, "gnuplot %s exited 0 but wrote no whole PNG (a full disk?); %s is "
                            "left as it was", script_path, png_path);
    }
    if (tg__atomic_commit(&w) != TG_OK)
        return tg_last_status();
    unlink(log_path);
    return TG_OK;
}

/* the terminal and output lines every script starts with */
static void preamble(study_buf *b, int width, int height, const char *script, const char *png)
{
    /* `study` runs gnuplot -e "out='NAME.png.tmp.XXXXXX'" and renames the file when it succeeded;
     * run by hand, the script writes NAME.png itself */
    study_buf_printf(b, "# drawn by `study`; redraw with: gnuplot %s\n", script);
    study_buf_printf(b, "if (!exists('out')) out = '%s'\n", png);
    study_buf_printf(b, "set terminal pngcairo noenhanced size %d,%d font 'sans,10'\n", width, height);
    study_buf_printf(b, "set output out\n");
}

/* the last path component of dir, for titles */
static const char *base_name(const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    const char *s = dir + n;
    while (s > dir && s[-1] != '/')
        s--;
    return s;
}

/* ------------------------------------------------------------------ curves */

tg_status study_plot_curves(const char *dir)
{
    char path[STUDY_PATH_MAX];
    if (!study_path(path, sizeof path, dir, STUDY_SUMMARY_CSV))
        return tg_set_error(TG_ERR_ARG, "study: path too long: %s", dir);
    study_csv *c = study_read_csv(path);
    if (!c)
        return tg_last_status();
    int rows = c->nrows;
    bool ok = study_csv_col(c, "epoch") >= 0 && study_csv_col(c, "train_loss") >= 0 &&
              study_csv_col(c, "val_acc") >= 0;
    study_csv_free(c);
    if (!ok || rows == 0)
        return tg_set_error(TG_ERR_FORMAT, "study: %s: %s", path,
                            ok ? "no epochs to plot" : "not a summary (epoch, train_loss, val_acc columns)");

    const char *style = rows > 25 ? "lines lw 2" : "linespoints lw 2 pt 7 ps 0.6";
    char title[1200];
    snprintf(title, sizeof title, "%s", base_name(dir));
    study_buf b = {0};
    preamble(&b, 1200, 450, "curves.gp", STUDY_CURVES_PNG);
    study_buf_printf(&b, "set datafile separator ','\n"
                         "set grid\nset key top right\nset xlabel 'epoch'\n");
    if (rows == 1)
        study_buf_printf(&b, "set xrange [0.5:1.5]\n");
    if (rows <= 20)
        study_buf_printf(&b, "set xtics 1\n");
    study_buf_printf(&b, "set multiplot layout 1,2 title ");
    put_quoted(&b, title);
    study_buf_printf(&b, "\nset ylabel 'error (cross-entropy loss)'\n"
                         "plot '%s' using 'epoch':'train_loss' with %s title 'train', \\\n"
                         "     '' using 'epoch':'val_loss' with %s title 'validation'\n",
                     STUDY_SUMMARY_CSV, style, style);
    study_buf_printf(&b, "set ylabel 'accuracy'\nset key bottom right\n"
                         "plot '%s' using 'epoch':'train_acc' with %s title 'train', \\\n"
                         "     '' using 'epoch':'val_acc' with %s title 'validation'\n"
                         "unset multiplot\n",
                     STUDY_SUMMARY_CSV, style, style);
    tg_status st = run_script(dir, "curves.gp", STUDY_CURVES_PNG, &b);
    study_buf_free(&b);
    return st;
}

/* ------------------------------------------------------------------ gradient flow */

tg_status study_plot_gradflow(const char *dir)
{
    char path[STUDY_PATH_MAX];
    if (!study_path(path, sizeof path, dir, STUDY_GRADFLOW_CSV))
        return tg_set_error(TG_ERR_ARG, "study: path too long: %s", dir);
    study_csv *c = study_read_csv(path);
    if (!c)
        return tg_last_status();
    int ce = study_csv_col(c, "epoch"), cl = study_csv_col(c, "layer"), ck = study_csv_col(c, "kind"),
        cm = study_csv_col(c, "mean_abs");
    if (ce < 0 || cl < 0 || ck < 0 || cm < 0) {
        study_csv_free(c);
        return tg_set_error(TG_ERR_FORMAT, "study: %s: not a gradient-flow file (epoch, layer, kind, "
                            "mean_abs columns)", path);
    }
    /* the layer names (x axis) from the first epoch's weight rows; each epoch repeats them */
    study_buf data = {0}, tics = {0};
    int nlayers = 0, nepochs = 0, x = 0;
    const char *cur = NULL;
    for (int r = 0; r < c->nrows; r++) {
        const char *kind = study_csv_cell(c, r, ck);
        if (strcmp(kind, "weight") && strcmp(kind, "bn_weight"))
            continue;
        const char *ep = study_csv_cell(c, r, ce);
        if (!cur || strcmp(cur, ep)) {
            if (cur)
                study_buf_printf(&data, "\n\n");
            study_buf_printf(&data, "# epoch %s\n", ep);
            cur = ep;
            nepochs++;
            x = 0;
        }
        if (nepochs == 1) {
            study_buf_printf(&tics, "%s", nlayers ? ", " : "");
            put_quoted(&tics, study_csv_cell(c, r, cl));
            study_buf_printf(&tics, " %d", nlayers);
            nlayers++;
        }
        study_buf_printf(&data, "%d %s %s\n", x++, study_csv_cell(c, r, ce), study_csv_cell(c, r, cm));
    }
    study_csv_free(c);
    if (nepochs == 0) {
        study_buf_free(&data);
        study_buf_free(&tics);
        return tg_set_error(TG_ERR_FORMAT, "study: %s: no weight rows to plot", path);
    }

    study_buf b = {0};
    int width = 300 + 18 * nlayers;
    preamble(&b, width < 900 ? 900 : width, 1000, "gradflow.gp", STUDY_GRADFLOW_PNG);
    study_buf_printf(&b, "$grad << EOD\n%sEOD\n", data.data ? data.data : "");
    study_buf_printf(&b, "set xtics rotate by 90 right (%s)\n", tics.data ? tics.data : "");
    study_buf_printf(&b, "set xrange [-0.5:%d.5]\nset grid\nset ylabel 'mean |dL/dW|'\n"
                         "set palette defined (0 '#b3cde3', 1 '#08306b')\n"
                         "set cbrange [0.5:%d.5]\nset cblabel 'epoch'\nset cbtics 1\n",
                     nlayers - 1, nepochs);
    if (nepochs > 10)
        study_buf_printf(&b, "set cbtics %d\nset cbrange [1:%d]\n", nepochs / 5, nepochs);
    study_buf_printf(&b, "set multiplot layout 2,1 title ");
    put_quoted(&b, base_name(dir));
    study_buf_printf(&b, "\nset title 'gradient flow: mean |dL/dW| per layer (last batch of each epoch; later epochs darker)'\n"
                         "plot for [i=0:%d] $grad index i using 1:3:2 with linespoints lw 1.5 pt 7 ps 0.4 "
                         "lc palette z notitle\n"
                         "set title 'the same, log scale'\nset logscale y\nset format y '%%.0e'\n"
                         "plot for [i=0:%d] $grad index i using 1:($3 > 0 ? $3 : NaN):2 with linespoints "
                         "lw 1.5 pt 7 ps 0.4 lc palette z notitle\n"
                         "unset multiplot\n",
                     nepochs - 1, nepochs - 1);
    tg_status st = run_script(dir, "gradflow.gp", STUDY_GRADFLOW_PNG, &b);
    study_buf_free(&b);
    study_buf_free(&data);
    study_buf_free(&tics);
    return st;
}

/* ------------------------------------------------------------------ comparison of runs */

/* out_png's directory and file name; the script is out_png with .gp for .png */
static void split_out_png(const char *out_png, char dir[4096], char png[1024], char script[1100])
{
    const char *slash = strrchr(out_png, '/');
    if (slash)
        snprintf(dir, 4096, "%.*s", slash == out_png ? 1 : (int)(slash - out_png), out_png);
    else
        snprintf(dir, 4096, ".");
    snprintf(png, 1024, "%s", slash ? slash + 1 : out_png);
    size_t pl = strlen(png);
    snprintf(script, 1100, "%.*s.gp", pl > 4 && !strcmp(png + pl - 4, ".png") ? (int)(pl - 4) : (int)pl, png);
}

tg_status study_plot_compare(const char *out_png, const char *title, int n, const char *const *run_dirs,
                             const char *const *labels, const int *colors)
{
    if (!out_png || n < 1 || !run_dirs)
        return tg_set_error(TG_ERR_ARG, "study_plot_compare: needs an output and at least one run");
    char dir[4096], png[1024], script[1100];
    split_out_png(out_png, dir, png, script);

    tg_status st = study_mkdirs(dir);
    if (st != TG_OK)
        return st;
    /* $sum index k: epoch train_loss val_loss train_acc val_acc of the k-th run with a
     * summary; $grad index k: epoch and the first conv's mean |dL/dW| */
    study_buf sum = {0}, grad = {0}, plot_loss = {0}, plot_acc = {0}, plot_grad = {0};
    int nsum = 0, ngrad = 0, max_rows = 0;
    for (int i = 0; i < n; i++) {
        const char *label = labels && labels[i] ? labels[i] : base_name(run_dirs[i]);
        int color = colors ? colors[i] : i + 1;
        study_csv *c = study_read_csv_in(run_dirs[i], STUDY_SUMMARY_CSV);
        if (c && c->nrows > 0 && study_csv_col(c, "epoch") >= 0 && study_csv_col(c, "val_acc") >= 0 &&
            study_csv_col(c, "train_acc") >= 0 && study_csv_col(c, "train_loss") >= 0 &&
            study_csv_col(c, "val_loss") >= 0) {
            study_buf_printf(&sum, "%s# %s\n", nsum ? "\n\n" : "", label);
            for (int r = 0; r < c->nrows; r++)
                study_buf_printf(&sum, "%.10g %.10g %.10g %.10g %.10g\n", study_csv_num(c, r, "epoch"),
                                 study_csv_num(c, r, "train_loss"), study_csv_num(c, r, "val_loss"),
                                 study_csv_num(c, r, "train_acc"), study_csv_num(c, r, "val_acc"));
            if (c->nrows > max_rows)
                max_rows = c->nrows;
            /* validation solid and titled, training dashed in the same colour */
            for (int f = 0; f < 2; f++) {
                study_buf *pl = f ? &plot_acc : &plot_loss;
                study_buf_printf(pl, "%s$sum index %d using 1:%d with linespoints lw 2 pt 7 ps 0.5 lc %d title ", nsum ? ", \\\n     " : "",
                                 nsum, f ? 5 : 3, color);
                put_quoted(pl, label);
                study_buf_printf(pl, ", \\\n     $sum index %d using 1:%d with linespoints lw 1 dt 2 pt 6 ps 0.4 lc %d notitle", nsum,
                                 f ? 4 : 2, color);
            }
            nsum++;
        }
        study_csv_free(c);
        c = study_read_csv_in(run_dirs[i], STUDY_GRADFLOW_CSV);
        int ce = study_csv_col(c, "epoch"), cl = study_csv_col(c, "layer"), ck = study_csv_col(c, "kind"),
            cm = study_csv_col(c, "mean_abs");
        int rows = 0;
        if (c && ce >= 0 && cl >= 0 && ck >= 0 && cm >= 0) {
            for (int r = 0; r < c->nrows; r++) {
                if (strcmp(study_csv_cell(c, r, cl), "input_conv_conv_0") ||
                    strcmp(study_csv_cell(c, r, ck), "weight"))
                    continue;
                if (rows++ == 0)
                    study_buf_printf(&grad, "%s# %s\n", ngrad ? "\n\n" : "", label);
                study_buf_printf(&grad, "%s %s\n", study_csv_cell(c, r, ce), study_csv_cell(c, r, cm));
            }
        }
        if (rows > 0) {
            study_buf_printf(&plot_grad, "%s$grad index %d using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc %d notitle",
                             ngrad ? ", \\\n     " : "", ngrad, color);
            ngrad++;
        }
        study_csv_free(c);
    }
    if (nsum == 0) {
        st = tg_set_error(TG_ERR_FORMAT, "study_plot_compare: none of the %d runs has a summary.csv with epochs "
                          "(first: %s)", n, run_dirs[0]);
        goto out;
    }
    study_buf b = {0};
    preamble(&b, ngrad ? 1700 : 1300, 520, script, png);
    study_buf_printf(&b, "$sum << EOD\n%sEOD\n", sum.data);
    if (ngrad)
        study_buf_printf(&b, "$grad << EOD\n%sEOD\n", grad.data);
    study_buf_printf(&b, "set grid\nset xlabel 'epoch'\nset key bottom left\n%s"
                         "set multiplot layout 1,%d title ", max_rows <= 20 ? "set xtics 1\n" : "", ngrad ? 3 : 2);
    put_quoted(&b, title ? title : "");
    study_buf_printf(&b, "\nset title 'error: validation solid, training dashed'\nset ylabel 'cross-entropy loss'\n"
                         "set key top right\nplot %s\n"
                         "set title 'accuracy: validation solid, training dashed'\nset ylabel 'accuracy'\n"
                         "set key bottom right\nplot %s\n",
                     plot_loss.data, plot_acc.data);
    if (ngrad)
        study_buf_printf(&b, "set title 'mean |dL/dW| of the first conv layer (input_conv_conv_0)'\n"
                             "set ylabel 'mean |dL/dW|'\nset logscale y\nset format y '%%.0e'\nplot %s\n",
                         plot_grad.data);
    study_buf_printf(&b, "unset multiplot\n");
    st = run_script(dir, script, png, &b);
    study_buf_free(&b);
out:
    study_buf_free(&sum);
    study_buf_free(&grad);
    study_buf_free(&plot_loss);
    study_buf_free(&plot_acc);
    study_buf_free(&plot_grad);
    return st;
}

/* ------------------------------------------------------------------ gradient flow of runs side by side */

/* The rows of the last epoch's weight tensors (kind "weight": convolutions and the
 * linear layer, the same layers with or without batch norm) in c, a gradflow.csv, into
 * rows[]; their number (0 if c is not a gradient-flow file). */
static int last_epoch_weights(const study_csv *c, int *rows, int max)
{
    int ce = study_csv_col(c, "epoch"), ck = study_csv_col(c, "kind");
    if (!c || ce < 0 || ck < 0 || study_csv_col(c, "layer") < 0 || study_csv_col(c, "mean_abs") < 0 ||
        c->nrows == 0)
        return 0;
    const char *last = study_csv_cell(c, c->nrows - 1, ce);
    int n = 0;
    for (int r = 0; r < c->nrows && n < max; r++)
        if (!strcmp(study_csv_cell(c, r, ce), last) && !strcmp(study_csv_cell(c, r, ck), "weight"))
            rows[n++] = r;
    return n;
}

tg_status study_plot_gradflow_layers(const char *out_png, const char *title, int n, const char *const *run_dirs,
                                     const char *const *labels, const int *colors)
{
    if (!out_png || n < 1 || !run_dirs)
        return tg_set_error(TG_ERR_ARG, "study_plot_gradflow_layers: needs an output and at least one run");
    char dir[4096], png[1024], script[1100];
    split_out_png(out_png, dir, png, script);

    /* The x axis is the deepest run's layers; a shallower network's layers sit at the
     * positions of the same names (VGG_08's reduction blocks are VGG_38's too). */
    enum { MAX_LAYERS = 1024 };
    study_csv **csv = calloc((size_t)n, sizeof *csv);
    int *rows = malloc(sizeof(int) * MAX_LAYERS * (size_t)n), *nrows = calloc((size_t)n, sizeof(int));
    study_buf data = {0}, tics = {0}, plot = {0};
    tg_status st = TG_OK;
    if (!csv || !rows || !nrows) {
        st = tg_set_error(TG_ERR_NOMEM, "study_plot_gradflow_layers: out of memory");
        goto out;
    }
    int ref = -1;
    for (int i = 0; i < n; i++) {
        csv[i] = study_read_csv_in(run_dirs[i], STUDY_GRADFLOW_CSV);
        nrows[i] = last_epoch_weights(csv[i], rows + (size_t)i * MAX_LAYERS, MAX_LAYERS);
        if (nrows[i] > 0 && (ref < 0 || nrows[i] > nrows[ref]))
            ref = i;
    }
    if (ref < 0) {
        st = tg_set_error(TG_ERR_FORMAT, "study_plot_gradflow_layers: none of the %d runs has weight rows in %s "
                          "(first: %s)", n, STUDY_GRADFLOW_CSV, run_dirs[0]);
        goto out;
    }
    const int *ref_rows = rows + (size_t)ref * MAX_LAYERS, cl_ref = study_csv_col(csv[ref], "layer");
    int nlayers = nrows[ref], nruns = 0;
    for (int x = 0; x < nlayers; x++) {
        study_buf_printf(&tics, "%s", x ? ", " : "");
        put_quoted(&tics, study_csv_cell(csv[ref], ref_rows[x], cl_ref));
        study_buf_printf(&tics, " %d", x);
    }
    for (int i = 0; i < n; i++) {
        if (nrows[i] == 0)
            continue;
        int cl = study_csv_col(csv[i], "layer"), cm = study_csv_col(csv[i], "mean_abs");
        study_buf_printf(&data, "%s# %s\n", nruns ? "\n\n" : "", run_dirs[i]);
        for (int k = 0; k < nrows[i]; k++) {
            int r = rows[(size_t)i * MAX_LAYERS + k];
            for (int x = 0; x < nlayers; x++)
                if (!strcmp(study_csv_cell(csv[i], r, cl), study_csv_cell(csv[ref], ref_rows[x], cl_ref))) {
                    study_buf_printf(&data, "%d %s\n", x, study_csv_cell(csv[i], r, cm));
                    break;
                }
        }
        study_buf_printf(&plot, "%s$grad index %d using 1:($2 > 0 ? $2 : NaN) with linespoints lw 1.5 pt 7 "
                                "ps 0.5 lc %d title ",
                         nruns ? ", \\\n     " : "", nruns, colors ? colors[i] : i + 1);
        put_quoted(&plot, labels && labels[i] ? labels[i] : base_name(run_dirs[i]));
        nruns++;
    }
    if ((st = study_mkdirs(dir)) != TG_OK)
        goto out;
    study_buf b = {0};
    int width = 500 + 18 * nlayers;
    preamble(&b, width < 1000 ? 1000 : width, 600, script, png);
    study_buf_printf(&b, "$grad << EOD\n%sEOD\n", data.data);
    study_buf_printf(&b, "set xtics rotate by 90 right (%s)\nset xrange [-0.5:%d.5]\nset grid\n"
                         "set key outside right top\nset ylabel 'mean |dL/dW|'\nset logscale y\n"
                         "set format y '%%.0e'\nset title ",
                     tics.data, nlayers - 1);
    put_quoted(&b, title ? title : "");
    study_buf_printf(&b, "\nplot %s\n", plot.data);
    st = run_script(dir, script, png, &b);
    study_buf_free(&b);
out:
    for (int i = 0; csv && i < n; i++)
        study_csv_free(csv[i]);
    free(csv);
    free(rows);
    free(nrows);
    study_buf_free(&data);
    study_buf_free(&tics);
    study_buf_free(&plot);
    return st;
}
