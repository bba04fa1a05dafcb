/* experiments/study/train.c — `study train`: one configuration of the study, trained
 * and evaluated, with everything written into an experiment directory.
 *
 *   study train --num-blocks-per-stage 5 --bn before --epochs 100 --experiment-dir runs/vgg38_bn
 *
 * One epoch: train (train mode, augmented, shuffled), read the gradient flow of the
 * epoch's last batch off the tape, evaluate on validation (eval mode, no tape), then
 * write summary.csv and gradflow.csv whole, the best checkpoint if validation accuracy
 * improved, and the latest checkpoint. At the end the best model is evaluated on the
 * test set (test_summary.csv) and the plots are drawn.
 *
 * Resuming. Everything random derives from (seed, epoch): initialisation from
 * split(rng(seed), 0); the batches' order, crops and flips from split(rng(seed), 1)
 * (the batcher splits per epoch itself); dropout masks from split(split(rng(seed), 2),
 * epoch), set on the tape at each epoch's start. The learning rate is a closed form of
 * the epoch. So the latest checkpoint (parameters, batch-norm statistics, optimiser
 * moments and step counts) plus the epoch number is the whole state, and a resumed run
 * ends with the same numbers as an uninterrupted one.
 *
 * Each epoch writes summary.csv and gradflow.csv, then the latest checkpoint, then the
 * best one if the epoch is the best: a run killed between two of these writes leaves the
 * CSV files one epoch ahead of the latest checkpoint (that epoch runs again; its rows
 * are dropped), or a latest checkpoint that names itself the best ahead of the best
 * file (the best is written again from it). `--resume` checks every file against the
 * latest checkpoint before it writes anything — metadata, configuration, rows 1..epoch
 * (or one more) of both CSV files, the best checkpoint — and refuses, naming the file
 * and what is wrong, on any other state: training on from files that disagree would
 * lose or mix results.
 */
#include "study.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROG "study train"

/* ------------------------------------------------------------------ options */

typedef struct options {
    const char *dataset;
    const char *data_dir; /* NULL: the data set's usual place */
    int num_stages, blocks, filters;
    tg_bn_placement bn;
    tg_activation activation;
    bool residual;
    double dropout;
    tg_optim_kind optimizer;
    double lr, weight_decay, momentum, lr_min;
    int batch_size, epochs;
    uint64_t seed;
    int64_t train_limit; /* 0: every training image */
    int threads;         /* 0: the library's default */
    const char *experiment_dir; /* NULL: derived from the configuration */
    bool resume;
} options;

enum {
    OPT_DATASET = 1, OPT_DATA_DIR, OPT_STAGES, OPT_BLOCKS, OPT_FILTERS, OPT_BN, OPT_ACTIVATION,
    OPT_RESIDUAL, OPT_DROPOUT, OPT_OPTIMIZER, OPT_LR, OPT_WEIGHT_DECAY, OPT_MOMENTUM, OPT_BATCH,
    OPT_EPOCHS, OPT_LR_MIN, OPT_SEED, OPT_TRAIN_LIMIT, OPT_THREADS, OPT_EXPERIMENT_DIR, OPT_RESUME,
    OPT_HELP, OPT_COUNT
};

static const struct option long_options[] = {
    {"dataset", required_argument, NULL, OPT_DATASET},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"num-stages", required_argument, NULL, OPT_STAGES},
    {"num-blocks-per-stage", required_argument, NULL, OPT_BLOCKS},
    {"num-filters", required_argument, NULL, OPT_FILTERS},
    {"bn", required_argument, NULL, OPT_BN},
    {"activation", required_argument, NULL, OPT_ACTIVATION},
    {"residual", no_argument, NULL, OPT_RESIDUAL},
    {"dropout", required_argument, NULL, OPT_DROPOUT},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"lr", required_argument, NULL, OPT_LR},
    {"weight-decay", required_argument, NULL, OPT_WEIGHT_DECAY},
    {"momentum", required_argument, NULL, OPT_MOMENTUM},
    {"batch-size", required_argument, NULL, OPT_BATCH},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"lr-min", required_argument, NULL, OPT_LR_MIN},
    {"seed", required_argument, NULL, OPT_SEED},
    {"train-limit", required_argument, NULL, OPT_TRAIN_LIMIT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"experiment-dir", required_argument, NULL, OPT_EXPERIMENT_DIR},
    {"resume", no_argument, NULL, OPT_RESUME},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static const char *const bn_names[] = {"none", "before", "after"};
static const char *const act_names[] = {"leaky-relu", "relu"};
static const char *const optim_names[] = {"sgd", "adam", "adamw"}; /* by tg_optim_kind */

static options default_options(void)
{
    return (options){.dataset = "fashion-mnist", .num_stages = 3, .blocks = 0, .filters = 32,
                     .bn = TG_BN_NONE, .activation = TG_ACT_LEAKY_RELU, .optimizer = TG_ADAM,
                     .lr = 1e-3, .momentum = 0.9, .lr_min = 2e-5, .batch_size = 100, .epochs = 100};
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: study train [options]\n"
        "  Trains one configuration of the study's VGG network and writes summary.csv,\n"
        "  gradflow.csv, checkpoints, test_summary.csv and plots into the experiment dir.\n"
        "data:\n"
        "  --dataset NAME              cifar100, cifar10 or fashion-mnist (default fashion-mnist;\n"
        "                              28x28 images are padded to 32x32)\n"
        "  --data-dir DIR              where the data set's files are (default: fashion-mnist's\n"
        "                              /usr/share/datasets/fashion-mnist; CIFAR needs one)\n"
        "  --train-limit N             keep the first N training images after the 95/5 split\n"
        "                              (default: all)\n"
        "network:\n"
        "  --num-stages N              default 3\n"
        "  --num-blocks-per-stage N    default 0 (VGG_08; 5 is VGG_38)\n"
        "  --num-filters N             default 32\n"
        "  --bn none|before|after      batch norm after every conv, before or after the\n"
        "                              activation (default none: the entry conv's only)\n"
        "  --activation leaky-relu|relu  default leaky-relu (slope 0.01)\n"
        "  --residual                  x + block(x) around each processing block\n"
        "  --dropout P                 after every batch norm, 0 <= P < 1 (default 0)\n"
        "training:\n"
        "  --optimizer adam|adamw|sgd  default adam\n"
        "  --lr LR                     default 0.001\n"
        "  --lr-min LR                 cosine annealing over the epochs down to this (default 2e-05)\n"
        "  --weight-decay WD           default 0 (coupled L2 for adam and sgd, decoupled for adamw)\n"
        "  --momentum M                sgd only, default 0.9\n"
        "  --batch-size N              default 100\n"
        "  --epochs N                  default 100\n"
        "  --seed S                    initialisation, shuffling, augmentation, dropout (default 0;\n"
        "                              the train/validation split always uses seed 0)\n"
        "  --threads N                 default: OMP_NUM_THREADS or the number of cores\n"
        "output:\n"
        "  --experiment-dir DIR        default runs/<dataset>_VGG_<depth>_bn-<bn>_seed<S>\n"
        "  --resume                    continue the run in DIR from its latest checkpoint\n"
        "                              (its config.txt supplies the flags not given)\n"
        "  --help                      this text\n"
        "exit status: 0 done, 1 failure, 2 usage error\n");
}

/* the shortest of %.15g .. %.17g that reads back as v */
static void fmt_double(char *buf, size_t size, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static bool parse_double(const char *flag, const char *s, double lo, bool lo_open, double hi, bool hi_open,
                         double *out)
{
    char *end;
    double v = strtod(s, &end);
    bool ok = *s && !*end && isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok) {
        char range[80];
        if (isinf(hi))
            snprintf(range, sizeof range, "%s %g", lo_open ? ">" : ">=", lo);
        else
            snprintf(range, sizeof range, "in %c%g, %g%c", lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
        fprintf(stderr, PROG ": --%s wants a number %s, got '%s'\n", flag, range, s);
        return false;
    }
    *out = v;
    return true;
}

/* A decimal integer, all of s (digits after an optional '-'; no spaces, no '+'), in
 * lo..hi; strtoll's range errors are out of range, not clamped. */
static bool parse_integer(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_int64(const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!parse_integer(s, lo, hi, out)) {
        fprintf(stderr, PROG ": --%s wants an integer in %" PRId64 "..%" PRId64 ", got '%s'\n", flag, lo,
                hi, s);
        return false;
    }
    return true;
}

static bool parse_int(const char *flag, const char *s, int lo, int hi, int *out)
{
    int64_t v;
    if (!parse_int64(flag, s, lo, hi, &v))
        return false;
    *out = (int)v;
    return true;
}

static bool parse_choice(const char *flag, const char *s, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return true;
        }
    char list[200] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? (i == n - 1 ? " or " : ", ") : "",
                 names[i]);
    fprintf(stderr, PROG ": --%s wants %s, got '%s'\n", flag, list, s);
    return false;
}

/* Parses argv into o; set[id] marks the options given. Returns 0, 2 (usage error,
 * message printed) or -1 (--help). `where` names the source in messages. */
static int parse_args(int argc, char **argv, options *o, bool *set, const char *where)
{
    optind = 0; /* GNU: reinitialise, so that a second parse in one process works */
    opterr = 0;
    int c, idx;
    while ((c = getopt_long(argc, argv, ":", long_options, &idx)) != -1) {
        const char *a = optarg, *name = NULL;
        for (const struct option *lo = long_options; lo->name; lo++)
            if (lo->val == c)
                name = lo->name;
        if (c == '?') {
            fprintf(stderr, PROG ": unknown option '%s'%s (try --help)\n", argv[optind - 1], where);
            return 2;
        }
        if (c == ':') {
            fprintf(stderr, PROG ": %s needs a value%s\n", argv[optind - 1], where);
            return 2;
        }
        int choice = 0;
        bool ok = true;
        switch (c) {
        case OPT_DATASET: {
            static const char *const ds[] = {"cifar100", "cifar10", "fashion-mnist"};
            ok = parse_choice(name, a, ds, 3, &choice);
            if (ok)
                o->dataset = ds[choice];
            break;
        }
        case OPT_DATA_DIR:
            /* config.txt holds it on one line, in full */
            ok = *a && !strpbrk(a, "\n\r") && strlen(a) < STUDY_PATH_MAX;
            if (!ok)
                fprintf(stderr, PROG ": --data-dir wants a directory name of 1..%d bytes without a line "
                        "break, got %zu bytes%s\n", STUDY_PATH_MAX - 1, strlen(a),
                        strpbrk(a, "\n\r") ? " with a line break" : "");
            o->data_dir = a;
            break;
        case OPT_STAGES: ok = parse_int(name, a, 1, 5, &o->num_stages); break; /* 32 / 2^5 = 1 */
        case OPT_BLOCKS: ok = parse_int(name, a, 0, 999, &o->blocks); break;
        case OPT_FILTERS: ok = parse_int(name, a, 1, 4096, &o->filters); break;
        case OPT_BN:
            ok = parse_choice(name, a, bn_names, 3, &choice);
            o->bn = (tg_bn_placement)choice;
            break;
        case OPT_ACTIVATION:
            ok = parse_choice(name, a, act_names, 2, &choice);
            o->activation = (tg_activation)choice;
            break;
        case OPT_RESIDUAL: o->residual = true; break;
        case OPT_DROPOUT: ok = parse_double(name, a, 0, false, 1, true, &o->dropout); break;
        case OPT_OPTIMIZER:
            ok = parse_choice(name, a, optim_names, 3, &choice);
            o->optimizer = (tg_optim_kind)choice;
            break;
        case OPT_LR: ok = parse_double(name, a, 0, true, INFINITY, false, &o->lr); break;
        case OPT_WEIGHT_DECAY: ok = parse_double(name, a, 0, false, INFINITY, false, &o->weight_decay); break;
        case OPT_MOMENTUM: ok = parse_double(name, a, 0, false, 1, true, &o->momentum); break;
        case OPT_BATCH: ok = parse_int(name, a, 1, 1000000, &o->batch_size); break;
        case OPT_EPOCHS: ok = parse_int(name, a, 1, 1000000, &o->epochs); break;
        case OPT_LR_MIN: ok = parse_double(name, a, 0, false, INFINITY, false, &o->lr_min); break;
        case OPT_SEED: {
            int64_t v;
            ok = parse_int64(name, a, 0, INT64_MAX, &v);
            o->seed = (uint64_t)v;
            break;
        }
        case OPT_TRAIN_LIMIT: ok = parse_int64(name, a, 1, INT64_MAX, &o->train_limit); break;
        case OPT_THREADS: ok = parse_int(name, a, 1, 1024, &o->threads); break;
        case OPT_EXPERIMENT_DIR:
            ok = *a && strlen(a) <= STUDY_DIR_MAX;
            if (!ok)
                fprintf(stderr, PROG ": --experiment-dir wants a directory name of 1..%d bytes (so that "
                        "its files' paths fit in %d), got %zu bytes\n", STUDY_DIR_MAX, STUDY_PATH_MAX,
                        strlen(a));
            o->experiment_dir = a;
            break;
        case OPT_RESUME: o->resume = true; break;
        case OPT_HELP: return -1;
        default:
            fprintf(stderr, PROG ": unknown option '%s'%s (try --help)\n", argv[optind - 1], where);
            return 2;
        }
        if (!ok)
            return 2;
        if (set && c > 0 && c < OPT_COUNT)
            set[c] = true;
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'%s (options only; try --help)\n", argv[optind], where);
        return 2;
    }
    if (set && set[OPT_MOMENTUM] && o->optimizer != TG_SGD) {
        fprintf(stderr, PROG ": --momentum is for --optimizer sgd only\n");
        return 2;
    }
    return 0;
}

/* An option's value as config.txt writes it ("" for a flag without value); false if the
 * option is not written (not set and without a default worth writing). */
static bool option_value(const options *o, int id, char *buf, size_t size)
{
    buf[0] = '\0';
    switch (id) {
    case OPT_DATASET: snprintf(buf, size, "%s", o->dataset); return true;
    case OPT_DATA_DIR:
        if (!o->data_dir)
            return false;
        snprintf(buf, size, "%s", o->data_dir);
        return true;
    case OPT_STAGES: snprintf(buf, size, "%d", o->num_stages); return true;
    case OPT_BLOCKS: snprintf(buf, size, "%d", o->blocks); return true;
    case OPT_FILTERS: snprintf(buf, size, "%d", o->filters); return true;
    case OPT_BN: snprintf(buf, size, "%s", bn_names[o->bn]); return true;
    case OPT_ACTIVATION: snprintf(buf, size, "%s", act_names[o->activation]); return true;
    case OPT_RESIDUAL: return o->residual;
    case OPT_DROPOUT: fmt_double(buf, size, o->dropout); return true;
    case OPT_OPTIMIZER: snprintf(buf, size, "%s", optim_names[o->optimizer]); return true;
    case OPT_LR: fmt_double(buf, size, o->lr); return true;
    case OPT_WEIGHT_DECAY: fmt_double(buf, size, o->weight_decay); return true;
    case OPT_MOMENTUM:
        if (o->optimizer != TG_SGD)
            return false;
        fmt_double(buf, size, o->momentum);
        return true;
    case OPT_BATCH: snprintf(buf, size, "%d", o->batch_size); return true;
    case OPT_EPOCHS: snprintf(buf, size, "%d", o->epochs); return true;
    case OPT_LR_MIN: fmt_double(buf, size, o->lr_min); return true;
    case OPT_SEED: snprintf(buf, size, "%" PRIu64, o->seed); return true;
    case OPT_TRAIN_LIMIT:
        if (!o->train_limit)
            return false;
        snprintf(buf, size, "%" PRId64, o->train_limit);
        return true;
    case OPT_THREADS: snprintf(buf, size, "%d", o->threads ? o->threads : tg_get_num_threads()); return true;
    default: return false; /* experiment-dir, resume, help: not part of a run's configuration */
    }
}

static const char *option_name(int id)
{
    for (const struct option *lo = long_options; lo->name; lo++)
        if (lo->val == id)
            return lo->name;
    return "?";
}

/* Options whose change would change the results: a resumed run must keep them. */
static bool affects_results(int id)
{
    return id != OPT_DATA_DIR && id != OPT_THREADS && id != OPT_EXPERIMENT_DIR && id != OPT_RESUME &&
           id != OPT_HELP;
}

/* config.txt: "--flag value" one a line, in --help's order */
static void config_text(const options *o, study_buf *b)
{
    char v[4200];
    for (int id = 1; id < OPT_COUNT; id++)
        if (option_value(o, id, v, sizeof v))
            study_buf_printf(b, "--%s%s%s\n", option_name(id), v[0] ? " " : "", v);
}

/* The options of a config.txt: each line is split at its first space into flag and
 * value (a value may contain spaces); text is modified and must outlive o. */
static int parse_config_file(char *text, const char *path, options *o, bool *set)
{
    int cap = 2, argc = 1;
    for (const char *p = text; *p; p++)
        cap += 2 * (*p == '\n');
    char **argv = calloc((size_t)cap + 2, sizeof *argv);
    if (!argv) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    argv[0] = "config.txt";
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        line[strcspn(line, "\r")] = '\0';
        if (!*line || *line == '#')
            continue;
        char *sp = strchr(line, ' ');
        if (sp)
            *sp = '\0';
        argv[argc++] = line;
        if (sp)
            argv[argc++] = sp + 1;
    }
    char where[4200];
    snprintf(where, sizeof where, " in %s", path);
    int r = parse_args(argc, argv, o, set, where);
    free(argv);
    return r == -1 ? 2 : r;
}

/* ------------------------------------------------------------------ helpers */

static void fmt_duration(char *buf, size_t size, double s)
{
    if (!(s >= 0) || s > 1e8)
        snprintf(buf, size, "?");
    else if (s < 60)
        snprintf(buf, size, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, size, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, size, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

/* "block_0_0/conv_1/weight" -> layer "block_0_0/conv_1" */
static void layer_of(const char *param, char *buf, size_t size)
{
    const char *slash = strrchr(param, '/');
    snprintf(buf, size, "%.*s", slash ? (int)(slash - param) : (int)strlen(param), param);
}

static void underscored(const char *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s", s);
    for (char *p = buf; *p; p++)
        if (*p == '/')
            *p = '_';
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* ------------------------------------------------------------------ a run */

/* Everything one run holds; freed by run_free. */
typedef struct run {
    options opt;
    char dir[STUDY_PATH_MAX]; /* at most STUDY_DIR_MAX bytes (parse_args), so every file fits */
    int lock_fd;              /* the run's lock (study_lock_dir), -1 until taken */
    tg_dataset *train, *val, *test;
    tg_vgg *net;
    tg_model *model;
    tg_optim *optim;
    tg_tape *tp;
    tg_batcher *train_b, *val_b, *test_b;
    int nstate;
    const char **state_names;
    tg_tensor **state;
    /* the gradient-flow rows: weight parameters and the layers they belong to */
    int nweights;
    int *weight_param;     /* parameter index of each weight row */
    int nlayers;
    char (*layers)[96];    /* distinct layer scopes, in parameter order */
    int *layer_record;     /* scratch: the last record of each layer */
    study_buf summary, gradflow; /* the CSV files' text so far */
    char *config;                /* config.txt's text (malloc'd), also saved in checkpoints */
    bool tty;
} run;

/* r->dir/name into buf (STUDY_PATH_MAX bytes): it fits, as the directory's length is
 * bounded */
static char *run_path(char *buf, const run *r, const char *name)
{
    study_path(buf, STUDY_PATH_MAX, r->dir, name);
    return buf;
}

static void run_free(run *r)
{
    tg_batcher_free(r->train_b);
    tg_batcher_free(r->val_b);
    tg_batcher_free(r->test_b);
    tg_optim_free(r->optim);
    tg_vgg_free(r->net);
    tg_tape_free(r->tp);
    tg_dataset_free(r->train);
    tg_dataset_free(r->val);
    tg_dataset_free(r->test);
    free(r->state_names);
    free(r->state);
    free(r->weight_param);
    free(r->layers);
    free(r->layer_record);
    study_buf_free(&r->summary);
    study_buf_free(&r->gradflow);
    free(r->config);
    study_unlock_dir(r->lock_fd);
}

static int fail(const char *what)
{
    fprintf(stderr, PROG ": %s%s%s\n", what ? what : "", what && *tg_last_error() ? ": " : "", tg_last_error());
    return 1;
}

static int load_data(run *r)
{
    const options *o = &r->opt;
    tg_dataset *full = tg_dataset_load(o->dataset, o->data_dir, TG_DATASET_TRAIN);
    if (!full)
        return fail(NULL);
    r->test = tg_dataset_load(o->dataset, o->data_dir, TG_DATASET_TEST);
    tg_dataset *train = NULL;
    tg_status st = r->test ? tg_dataset_split(full, 0.05, 0, &train, &r->val) : tg_last_status();
    tg_dataset_free(full);
    if (st != TG_OK)
        return fail(NULL);
    if (o->train_limit > 0 && o->train_limit < tg_dataset_size(train)) {
        r->train = tg_dataset_head(train, o->train_limit);
        tg_dataset_free(train); /* the head keeps the storage */
        if (!r->train)
            return fail(NULL);
    } else {
        r->train = train;
    }
    if (tg_dataset_size(r->val) == 0)
        return fprintf(stderr, PROG ": %s has %" PRId64 " training images: too few for a 5%% validation "
                               "set\n", o->dataset, tg_dataset_size(r->train)), 1;
    const tg_tensor *im = r->train->images;
    if (im->shape[2] > 32 || im->shape[3] > 32 || (im->shape[2] < 32 && im->shape[2] != im->shape[3]))
        return fprintf(stderr, PROG ": %s images are %" PRId64 "x%" PRId64 ", expected 32x32 or smaller squares\n",
                       o->dataset, im->shape[2], im->shape[3]), 1;

    int pad_to = im->shape[2] < 32 ? 32 : 0; /* fashion-mnist: 28 -> 32 */
    const tg_normalization *norm = tg_normalization_preset(o->dataset);
    tg_rng root = tg_rng_new(o->seed);
    r->train_b = tg_batcher_new(r->train, &(tg_batcher_config){
        .batch_size = o->batch_size, .shuffle = true, .crop_padding = 4, .flip = true, .pad_to = pad_to,
        .norm = norm, .rng = tg_rng_split(&root, 1), .prefetch = true});
    tg_batcher_config eval = {.batch_size = o->batch_size, .pad_to = pad_to, .norm = norm};
    r->val_b = r->train_b ? tg_batcher_new(r->val, &eval) : NULL;
    r->test_b = r->val_b ? tg_batcher_new(r->test, &eval) : NULL;
    return r->test_b ? 0 : fail(NULL);
}

static int build_model(run *r)
{
    const options *o = &r->opt;
    tg_rng root = tg_rng_new(o->seed);
    tg_rng init = tg_rng_split(&root, 0);
    tg_vgg_config cfg = {.num_stages = o->num_stages, .num_blocks_per_stage = o->blocks,
                         .num_filters = o->filters, .in_channels = (int)r->train->images->shape[1],
                         .num_classes = r->train->num_classes, .bn = o->bn, .dropout = o->dropout,
                         .activation = o->activation, .residual = o->residual};
    r->net = tg_vgg_new(&cfg, &init);
    if (!r->net)
        return fail(NULL);
    r->model = tg_vgg_model(r->net);
    tg_optim_config oc = {.kind = o->optimizer, .lr = o->lr, .weight_decay = o->weight_decay};
    if (o->optimizer == TG_SGD)
        oc.momentum = o->momentum;
    r->optim = tg_optim_new(r->model, &oc);
    r->tp = tg_tape_new(o->seed);
    if (!r->optim || !r->tp)
        return fail(NULL);
    r->nstate = tg_optim_num_state(r->optim);
    r->state_names = calloc((size_t)r->nstate + 1, sizeof *r->state_names);
    r->state = calloc((size_t)r->nstate + 1, sizeof *r->state);
    int np = tg_model_num_params(r->model);
    r->weight_param = calloc((size_t)np + 1, sizeof *r->weight_param);
    r->layers = calloc((size_t)np + 1, sizeof *r->layers);
    r->layer_record = calloc((size_t)np + 1, sizeof *r->layer_record);
    if (!r->state_names || !r->state || !r->weight_param || !r->layers || !r->layer_record)
        return fprintf(stderr, PROG ": out of memory\n"), 1;
    for (int i = 0; i < r->nstate; i++) {
        r->state_names[i] = tg_optim_state_name(r->optim, i);
        r->state[i] = tg_optim_state(r->optim, i);
    }
    /* weights (biases left out, batch norm's gamma in) and the layers they belong to */
    for (int i = 0; i < np; i++) {
        const char *name = tg_model_param_name(r->model, i);
        if (!ends_with(name, "/weight"))
            continue;
        r->weight_param[r->nweights++] = i;
        char layer[96];
        layer_of(name, layer, sizeof layer);
        bool seen = false;
        for (int k = 0; k < r->nlayers && !seen; k++)
            seen = !strcmp(r->layers[k], layer);
        if (!seen)
            snprintf(r->layers[r->nlayers++], sizeof r->layers[0], "%s", layer);
    }
    return 0;
}

/* "bn_weight" for batch norm's gamma (its layer's last part starts "bn"), else "weight" */
static const char *weight_kind(const char *layer)
{
    const char *last = strrchr(layer, '/');
    last = last ? last + 1 : layer;
    return !strncmp(last, "bn", 2) ? "bn_weight" : "weight";
}

static void stats_row(study_buf *b, int epoch, const char *layer, const char *kind, tg_grad_stats s)
{
    char name[128];
    underscored(layer, name, sizeof name);
    if (s.count == 0) /* no gradient reached it */
        study_buf_printf(b, "%d,%s,%s,0,0,0,1\n", epoch, name, kind);
    else
        study_buf_printf(b, "%d,%s,%s,%.9g,%.9g,%.9g,%.9g\n", epoch, name, kind, s.mean_abs, s.rms, s.max_abs,
                         s.zero_frac);
}

/* The gradient flow of the step just back-propagated: every weight's gradient (before
 * the update and the zeroing), then every layer's output gradient, read off the tape. */
static void record_gradflow(run *r, int epoch)
{
    for (int k = 0; k < r->nweights; k++) {
        int i = r->weight_param[k];
        char layer[96];
        layer_of(tg_model_param_name(r->model, i), layer, sizeof layer);
        tg_tensor *g = tg_grad(tg_model_param(r->model, i));
        tg_grad_stats s = g ? tg_tensor_stats(g) : (tg_grad_stats){0};
        stats_row(&r->gradflow, epoch, layer, weight_kind(layer), s);
    }
    for (int k = 0; k < r->nlayers; k++)
        r->layer_record[k] = -1;
    int n = tg_tape_size(r->tp);
    for (int id = 0; id < n; id++) {
        const char *scope = tg_tape_record(r->tp, id)->scope;
        for (int k = 0; k < r->nlayers; k++)
            if (!strcmp(scope, r->layers[k])) {
                r->layer_record[k] = id;
                break;
            }
    }
    for (int k = 0; k < r->nlayers; k++) {
        tg_grad_stats s = {0};
        if (r->layer_record[k] >= 0)
            s = tg_record_grad_stats(tg_tape_record(r->tp, r->layer_record[k]));
        stats_row(&r->gradflow, epoch, r->layers[k], "activation", s);
    }
}

typedef struct epoch_progress {
    int epoch, epochs;
    int64_t batches, done, images;
    double loss_sum, correct, t0, last_draw;
    double avg_epoch_s; /* of the epochs this process ran, 0 before the first */
} epoch_progress;

static void draw_bar(const epoch_progress *p, double t)
{
    double el = t - p->t0;
    double rate = el > 0 ? (double)p->images / el : 0;
    double left_epoch = p->done > 0 ? el / (double)p->done * (double)(p->batches - p->done) : NAN;
    double per_epoch = p->avg_epoch_s > 0 ? p->avg_epoch_s : (p->done > 0 ? el / (double)p->done * (double)p->batches : NAN);
    char eta[32];
    fmt_duration(eta, sizeof eta, left_epoch + per_epoch * (p->epochs - p->epoch - 1));
    const int width = 24;
    int fill = p->batches ? (int)(width * p->done / p->batches) : 0;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\repoch %d/%d [%s] %" PRId64 "/%" PRId64 " loss %.4f acc %.4f %.0f img/s, %s left \033[K",
            p->epoch + 1, p->epochs, bar, p->done, p->batches, p->images ? p->loss_sum / (double)p->images : 0,
            p->images ? p->correct / (double)p->images : 0, rate, eta);
    fflush(stderr);
}

/* Trains one epoch; the mean loss and accuracy over its images. */
static int train_epoch(run *r, epoch_progress *p, double *loss, double *acc)
{
    tg_model_set_training(r->model, true);
    tg_tape_set_grad_enabled(r->tp, true);
    tg_rng root = tg_rng_new(r->opt.seed), dropout_root = tg_rng_split(&root, 2);
    *tg_tape_rng(r->tp) = tg_rng_split(&dropout_root, (uint64_t)p->epoch);
    if (tg_batcher_start_epoch(r->train_b, p->epoch) != TG_OK)
        return fail(NULL);
    p->batches = tg_batcher_num_batches(r->train_b);
    tg_tensor *x, *y;
    while (tg_batcher_next(r->train_b, &x, &y)) {
        /* the layers' output gradients are read off the tape on the epoch's last batch
         * only; on the others each is given back once used, which bounds the memory */
        tg_tape_set_keep_grads(r->tp, p->done + 1 == p->batches);
        tg_tensor *logits = tg_vgg_forward(r->tp, r->net, x);
        tg_tensor *l = tg_cross_entropy(r->tp, logits, y);
        if (tg_backward(r->tp, l) != TG_OK) {
            fprintf(stderr, "%s" PROG ": epoch %d, batch %" PRId64 ": %s\n", r->tty ? "\n" : "", p->epoch + 1,
                    p->done + 1, tg_tape_error(r->tp));
            return 1;
        }
        int64_t n = y->shape[0];
        p->loss_sum += tg_tensor_item(l) * (double)n;
        p->correct += round(tg_accuracy(logits, y) * (double)n);
        p->images += n;
        if (++p->done == p->batches)
            record_gradflow(r, p->epoch + 1);
        if (tg_optim_step(r->optim) != TG_OK)
            return fail("the optimiser step");
        tg_model_zero_grad(r->model);
        tg_tape_reset(r->tp);
        double t = study_now();
        if (r->tty && (t - p->last_draw > 0.2 || p->done == p->batches)) {
            draw_bar(p, t);
            p->last_draw = t;
        }
    }
    *loss = p->images ? p->loss_sum / (double)p->images : NAN;
    *acc = p->images ? p->correct / (double)p->images : NAN;
    return 0;
}

/* Mean loss and accuracy over a data set, in evaluation mode, without recording. */
static int evaluate(run *r, tg_batcher *b, double *loss, double *acc)
{
    tg_model_set_training(r->model, false);
    bool was = tg_tape_set_grad_enabled(r->tp, false);
    double loss_sum = 0, correct = 0;
    int64_t images = 0;
    tg_tensor *x, *y;
    if (tg_batcher_start_epoch(b, 0) != TG_OK)
        return fail(NULL);
    while (tg_batcher_next(b, &x, &y)) {
        tg_tensor *logits = tg_vgg_forward(r->tp, r->net, x);
        tg_tensor *l = tg_cross_entropy(r->tp, logits, y);
        if (tg_tape_status(r->tp) != TG_OK) {
            fprintf(stderr, PROG ": evaluation: %s\n", tg_tape_error(r->tp));
            return 1;
        }
        int64_t n = y->shape[0];
        loss_sum += tg_tensor_item(l) * (double)n;
        correct += round(tg_accuracy(logits, y) * (double)n);
        images += n;
        tg_tape_reset(r->tp);
    }
    tg_tape_set_grad_enabled(r->tp, was);
    tg_model_set_training(r->model, true);
    *loss = images ? loss_sum / (double)images : NAN;
    *acc = images ? correct / (double)images : NAN;
    return 0;
}

static const char checkpoint_format[] = "tapegrad-study-train-1";

static tg_status save_checkpoint(run *r, const char *name, int epoch, int best_epoch, double best_acc)
{
    char path[STUDY_PATH_MAX], ep[32], be[32], ba[40], seed[32];
    run_path(path, r, name);
    snprintf(ep, sizeof ep, "%d", epoch);
    snprintf(be, sizeof be, "%d", best_epoch);
    fmt_double(ba, sizeof ba, best_acc);
    snprintf(seed, sizeof seed, "%" PRIu64, r->opt.seed);
    const tg_kv meta[] = {
        {"format", checkpoint_format},
        {"epoch", ep}, /* epochs completed */
        {"best_epoch", be},
        {"best_val_acc", ba},
        {"seed", seed},
        {"rng", "split(rng(seed),0): init; split(rng(seed),1): batches per epoch; "
                "split(split(rng(seed),2),epoch): dropout, reset at each epoch start"},
        {"config", r->config},
    };
    return tg_checkpoint_save(path, r->model, r->nstate, r->state_names, (const tg_tensor *const *)r->state,
                              (int)(sizeof meta / sizeof meta[0]), meta);
}

/* ------------------------------------------------------------------ resuming */

static const char summary_header[] = "epoch,train_acc,train_loss,val_acc,val_loss,lr,seconds";
static const char gradflow_header[] = "epoch,layer,kind,mean_abs,rms,max_abs,zero_frac";

/* The first option that changes results and differs between a and b (among those
 * marked in `only`, if not NULL): its id, with either value in va and vb ("(unset)" when
 * not written); 0 if they agree. */
static int differing_option(const options *a, const options *b, const bool *only, char *va, char *vb,
                            size_t size)
{
    for (int id = 1; id < OPT_COUNT; id++) {
        if (!affects_results(id) || (only && !only[id]))
            continue;
        bool ha = option_value(a, id, va, size), hb = option_value(b, id, vb, size);
        if (ha != hb || strcmp(va, vb)) {
            if (!ha)
                snprintf(va, size, "(unset)");
            if (!hb)
                snprintf(vb, size, "(unset)");
            return id;
        }
    }
    return 0;
}

/* A refusal to resume: one line naming the run, the file and what is wrong; returns 1. */
static int refuse_resume(const run *r, const char *file, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int refuse_resume(const run *r, const char *file, const char *fmt, ...)
{
    char why[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fprintf(stderr, PROG ": cannot resume %s: %s%s%s; nothing was written\n", r->dir, file ? file : "",
            file ? ": " : "", why);
    return 1;
}

/* A checkpoint's metadata, as the run reads it */
typedef struct ckpt_meta {
    int epoch, best_epoch;
    double best_acc;
    char best_acc_text[40];
} ckpt_meta;

/* The study's metadata of a checkpoint (file, in r's directory) checked against r: the
 * format, epoch 1..--epochs, best_epoch 1..epoch, best_val_acc in [0, 1], the seed and
 * every option that changes results. 0, or 1 after a message. */
static int check_meta(const run *r, const char *file, const tg_safetensors *meta, ckpt_meta *out)
{
    const char *format = tg_safetensors_meta(meta, "format"), *ep = tg_safetensors_meta(meta, "epoch"),
               *be = tg_safetensors_meta(meta, "best_epoch"), *ba = tg_safetensors_meta(meta, "best_val_acc"),
               *seed = tg_safetensors_meta(meta, "seed"), *config = tg_safetensors_meta(meta, "config");
    int64_t epoch, best_epoch;
    char *end = NULL, want_seed[32];
    if (!format || strcmp(format, checkpoint_format))
        return refuse_resume(r, file, "format '%s' is not %s", format ? format : "(missing)", checkpoint_format);
    if (!parse_integer(ep, 1, r->opt.epochs, &epoch))
        return refuse_resume(r, file, "epoch '%s' is not an integer in 1..%d (--epochs)", ep ? ep : "(missing)",
                             r->opt.epochs);
    if (!parse_integer(be, 1, epoch, &best_epoch))
        return refuse_resume(r, file, "best_epoch '%s' is not an integer in 1..%" PRId64 " (its epoch)",
                             be ? be : "(missing)", epoch);
    double acc = ba && *ba ? strtod(ba, &end) : NAN;
    if (!end || *end || !(acc >= 0 && acc <= 1) || strlen(ba) >= sizeof out->best_acc_text)
        return refuse_resume(r, file, "best_val_acc '%s' is not a number in [0, 1]", ba ? ba : "(missing)");
    snprintf(want_seed, sizeof want_seed, "%" PRIu64, r->opt.seed);
    if (!seed || strcmp(seed, want_seed))
        return refuse_resume(r, file, "seed '%s' is not the run's %s", seed ? seed : "(missing)", want_seed);
    if (!config)
        return refuse_resume(r, file, "it has no config (the flags it was trained with)");
    /* the flags it was saved with, read as config.txt is */
    char *text = strdup(config), where[STUDY_PATH_MAX + 64];
    options saved = default_options();
    snprintf(where, sizeof where, " in the config of %s/%s", r->dir, file);
    int pr = text ? parse_config_file(text, where + 4, &saved, NULL) : 1;
    char va[4200], vb[4200];
    int id = pr ? 0 : differing_option(&saved, &r->opt, NULL, va, vb, sizeof va);
    free(text);
    if (pr)
        return refuse_resume(r, file, "its config is not a config.txt");
    if (id)
        return refuse_resume(r, file, "it was saved with --%s %s, the run's %s has --%s %s", option_name(id), va,
                             STUDY_CONFIG_TXT, option_name(id), vb);
    *out = (ckpt_meta){.epoch = (int)epoch, .best_epoch = (int)best_epoch, .best_acc = acc};
    snprintf(out->best_acc_text, sizeof out->best_acc_text, "%s", ba);
    return 0;
}

/* A CSV cell: 'e' an epoch (positive integer), 'n' a number as %.9g writes it (nan and
 * inf included), 's' a name, 'k' a gradient-flow kind. */
static bool cell_ok(char type, const char *cell)
{
    int64_t v;
    char *end;
    switch (type) {
    case 'e': return parse_integer(cell, 1, INT32_MAX, &v);
    case 'n': return *cell && !isspace((unsigned char)*cell) && (strtod(cell, &end), !*end);
    case 's': return *cell != '\0';
    default: return !strcmp(cell, "weight") || !strcmp(cell, "bn_weight") || !strcmp(cell, "activation");
    }
}

/* dir/name checked as a file of the run: exactly `header`, whole lines, each cell of the
 * type `types` gives its column (cell_ok), and epochs 1, 2, ... in order with
 * per_epoch rows each. *epochs_out the number of epochs it holds (0 if the file is
 * missing). NULL without a file or after a message (*failed). */
static study_csv *check_csv(const run *r, const char *name, const char *header, const char *types,
                            int per_epoch, int *epochs_out, bool *failed)
{
    char path[STUDY_PATH_MAX];
    *epochs_out = 0;
    *failed = false;
    if (!study_file_exists(run_path(path, r, name)))
        return NULL;
    study_csv *c = study_read_csv(path);
    *failed = true;
    if (!c) {
        refuse_resume(r, NULL, "%s", tg_last_error());
        return NULL;
    }
    study_buf h = {0};
    for (int i = 0; i < c->ncols; i++)
        study_buf_printf(&h, "%s%s", i ? "," : "", c->names[i]);
    bool same = h.data && !strcmp(h.data, header);
    study_buf_free(&h);
    if (!same)
        refuse_resume(r, name, "its header is not %s", header);
    else if (c->cut)
        refuse_resume(r, name, "its last line has no line break: the file was cut short");
    else if (c->nrows % per_epoch)
        refuse_resume(r, name, "%d rows are not whole epochs of %d rows", c->nrows, per_epoch);
    else
        *failed = false;
    for (int row = 0; !*failed && row < c->nrows; row++) {
        int want = row / per_epoch + 1;
        const char *ep = study_csv_cell(c, row, 0);
        int64_t e;
        if (!parse_integer(ep, 1, INT32_MAX, &e) || e != want) {
            refuse_resume(r, name, "row %d has epoch '%s', expected %d (epochs 1, 2, ... in order, %d row%s "
                          "each)", row + 1, ep, want, per_epoch, per_epoch == 1 ? "" : "s");
            *failed = true;
        }
        for (int col = 1; !*failed && col < c->ncols; col++)
            if (!cell_ok(types[col], study_csv_cell(c, row, col))) {
                refuse_resume(r, name, "row %d, column %s: '%s' is not %s", row + 1, c->names[col],
                              study_csv_cell(c, row, col),
                              types[col] == 'n' ? "a number" : types[col] == 's' ? "a name"
                                                                                  : "weight, bn_weight or activation");
                *failed = true;
            }
    }
    if (*failed) {
        study_csv_free(c);
        return NULL;
    }
    *epochs_out = c->nrows / per_epoch;
    return c;
}

/* The header and the rows of epochs 1..epochs of c (checked by check_csv) into b. */
static void keep_rows(const study_csv *c, const char *header, int epochs, int per_epoch, study_buf *b)
{
    study_buf_printf(b, "%s\n", header);
    for (int row = 0; c && row < epochs * per_epoch && row < c->nrows; row++)
        for (int col = 0; col < c->ncols; col++)
            study_buf_printf(b, "%s%c", study_csv_cell(c, row, col), col + 1 < c->ncols ? ',' : '\n');
}

/* Where the run in r->dir stands, with nothing written: loads the best checkpoint (to
 * check it fits the model) and then the latest (the state to continue from), checks
 * their metadata and both CSV files against each other, and keeps the CSV rows of the
 * epochs done in r->summary and r->gradflow. *start is the epochs done, *rewrite_best
 * set when the best checkpoint must be written again from the latest (a run killed
 * between the two). 0, or 1 after a message. */
static int check_resume(run *r, int *start, int *best_epoch, double *best_acc, bool *rewrite_best)
{
    char latest[STUDY_PATH_MAX], best[STUDY_PATH_MAX];
    run_path(latest, r, STUDY_CHECKPOINT_LATEST);
    run_path(best, r, STUDY_CHECKPOINT_BEST);
    bool have_latest = study_file_exists(latest), have_best = study_file_exists(best);
    *start = 0;
    *best_epoch = 0;
    *best_acc = -1;
    *rewrite_best = false;

    /* both are loaded into the model (each must fit it), the latest last: its state is
     * the one to continue from; the latest's problems are reported first */
    char best_error[1400] = "";
    tg_safetensors *best_meta = NULL;
    ckpt_meta bm = {0}, lm = {0};
    if (have_best && tg_checkpoint_load(best, r->model, r->nstate, r->state_names, r->state, &best_meta) != TG_OK)
        snprintf(best_error, sizeof best_error, "%s", tg_last_error());
    int bad = 0;
    if (have_latest) {
        tg_safetensors *meta = NULL;
        if (tg_checkpoint_load(latest, r->model, r->nstate, r->state_names, r->state, &meta) != TG_OK)
            bad = refuse_resume(r, NULL, "%s", tg_last_error());
        else
            bad = check_meta(r, STUDY_CHECKPOINT_LATEST, meta, &lm);
        tg_safetensors_free(meta);
    }
    if (!bad && best_error[0])
        bad = refuse_resume(r, NULL, "%s", best_error);
    if (!bad && best_meta)
        bad = check_meta(r, STUDY_CHECKPOINT_BEST, best_meta, &bm);
    tg_safetensors_free(best_meta);
    if (bad)
        return 1;
    int done = lm.epoch; /* 0 without a latest checkpoint */

    /* the CSV files: rows of epochs 1..done, or one epoch more (written before a
     * checkpoint that a kill prevented; it runs again) */
    int per_epoch = r->nweights + r->nlayers, ns, ng;
    bool failed;
    study_csv *sc = check_csv(r, STUDY_SUMMARY_CSV, summary_header, "ennnnnn", 1, &ns, &failed);
    if (failed)
        return 1;
    study_csv *gc = check_csv(r, STUDY_GRADFLOW_CSV, gradflow_header, "esknnnn", per_epoch, &ng, &failed);
    int status = failed;
    for (int k = 0; !status && k < 2; k++) {
        int n = k ? ng : ns;
        const char *file = k ? STUDY_GRADFLOW_CSV : STUDY_SUMMARY_CSV;
        if (done && !(k ? gc : sc))
            status = refuse_resume(r, file, "it is missing, but %s is at epoch %d", STUDY_CHECKPOINT_LATEST, done);
        else if (n < done || n > done + 1)
            status = done ? refuse_resume(r, file, "it holds %d epoch%s, but %s is at epoch %d (expected %d, or "
                                          "%d of an epoch to run again)", n, n == 1 ? "" : "s",
                                          STUDY_CHECKPOINT_LATEST, done, done, done + 1)
                          : refuse_resume(r, file, "it holds %d epochs, but there is no %s (at most 1 epoch, "
                                          "to run again, without one)", n, STUDY_CHECKPOINT_LATEST);
    }
    /* the best checkpoint: the one the latest names, or one the run will write again */
    if (!status && !done && have_best && !(bm.epoch == 1 && ns == 1))
        status = refuse_resume(r, STUDY_CHECKPOINT_BEST, "it holds epoch %d, but there is no %s", bm.epoch,
                               STUDY_CHECKPOINT_LATEST);
    if (!status && done) {
        bool named = have_best && bm.epoch == lm.best_epoch && !strcmp(bm.best_acc_text, lm.best_acc_text);
        /* killed after the latest, before the best: the latest is the best */
        bool behind = lm.best_epoch == done && (!have_best || bm.epoch < done);
        /* killed after the best, before the latest (the order of earlier versions): the
         * epoch runs again and writes it again */
        bool ahead = have_best && bm.epoch == done + 1 && ns == done + 1;
        *rewrite_best = !named && behind;
        if (!named && !behind && !ahead)
            status = have_best ? refuse_resume(r, STUDY_CHECKPOINT_BEST, "it holds epoch %d (best_val_acc %s), "
                                               "but %s names epoch %d (best_val_acc %s) the best", bm.epoch,
                                               bm.best_acc_text, STUDY_CHECKPOINT_LATEST, lm.best_epoch,
                                               lm.best_acc_text)
                               : refuse_resume(r, STUDY_CHECKPOINT_BEST, "it is missing, but %s names epoch %d "
                                               "the best", STUDY_CHECKPOINT_LATEST, lm.best_epoch);
    }
    if (!status) {
        keep_rows(sc, summary_header, done, 1, &r->summary);
        keep_rows(gc, gradflow_header, done, per_epoch, &r->gradflow);
        *start = done;
        if (done) {
            *best_epoch = lm.best_epoch;
            *best_acc = lm.best_acc;
        }
    }
    study_csv_free(sc);
    study_csv_free(gc);
    return status;
}

/* ------------------------------------------------------------------ the program */

/* A file any run writes exists in dir: a new run there would overwrite results. */
static const char *has_results(const run *r)
{
    static const char *const files[] = {STUDY_SUMMARY_CSV, STUDY_GRADFLOW_CSV, STUDY_CHECKPOINT_LATEST,
                                        STUDY_CHECKPOINT_BEST, STUDY_TEST_SUMMARY_CSV};
    char path[STUDY_PATH_MAX];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (study_file_exists(run_path(path, r, files[i])))
            return files[i];
    return NULL;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The learning rate of every epoch is a finite number >= 0: checked before the
 * directory exists (--lr 1e308 gives inf in the cosine schedule's arithmetic). */
static bool check_schedule(const options *o)
{
    tg_lr_schedule sched = {.kind = TG_LR_COSINE, .lr0 = o->lr, .eta_min = o->lr_min, .t_max = o->epochs};
    for (int e = 0; e < o->epochs; e++) {
        double lr = tg_lr_at(&sched, e);
        if (!(lr >= 0) || !isfinite(lr)) {
            fprintf(stderr, PROG ": --lr %g with --lr-min %g gives a learning rate of %g at epoch %d; expected "
                    "a finite number >= 0\n", o->lr, o->lr_min, lr, e + 1);
            return false;
        }
    }
    return true;
}

int study_train_main(int argc, char **argv)
{
    options o = default_options();
    bool set[OPT_COUNT] = {0};
    int pr = parse_args(argc, argv, &o, set, "");
    if (pr == -1) {
        usage(stdout);
        return 0;
    }
    if (pr)
        return pr;

    run r = {.lock_fd = -1};
    int status = 1;
    char *config_file_text = NULL;
    double t_start = study_now();
    r.tty = isatty(2);

    /* the experiment directory: taken (locked) first if it exists, so that every look
     * at its files below sees no other writer */
    if (o.experiment_dir) {
        snprintf(r.dir, sizeof r.dir, "%s", o.experiment_dir);
    } else {
        int depth = 1 + o.num_stages * (2 * o.blocks + 2) + 1;
        snprintf(r.dir, sizeof r.dir, "runs/%s_VGG_%02d_bn-%s_seed%" PRIu64, o.dataset, depth, bn_names[o.bn],
                 o.seed);
    }
    bool existed = is_dir(r.dir);
    if (existed && (r.lock_fd = study_lock_dir(r.dir, "run")) < 0)
        return fail(NULL);
    char path[STUDY_PATH_MAX];
    if (o.resume && study_run_complete(r.dir)) {
        fprintf(stderr, PROG ": %s is complete (it has %s); nothing to do\n", r.dir, STUDY_TEST_SUMMARY_CSV);
        status = 0;
        goto out;
    }
    const char *found = has_results(&r);
    if (!o.resume && found) {
        fprintf(stderr, PROG ": %s already has a %s; continue it with --resume or choose another "
                        "--experiment-dir\n", r.dir, found);
        goto out;
    }
    /* resuming: the run's own config.txt gives the flags, and flags given now must agree */
    run_path(path, &r, STUDY_CONFIG_TXT);
    if (o.resume && !study_file_exists(path) && found) {
        fprintf(stderr, PROG ": cannot resume %s: its %s (the flags of the run) is missing, and it has a %s\n",
                r.dir, STUDY_CONFIG_TXT, found);
        goto out;
    }
    if (o.resume && study_file_exists(path)) {
        config_file_text = study_read_file(path, NULL);
        if (!config_file_text) {
            fail(NULL);
            goto out;
        }
        options base = default_options();
        int cr = parse_config_file(config_file_text, path, &base, NULL);
        if (cr) {
            status = cr;
            goto out;
        }
        char a[4200], b[4200];
        int id = differing_option(&o, &base, set, a, b, sizeof a);
        if (id) {
            fprintf(stderr, PROG ": --%s %s differs from the run's --%s %s (%s); resume without it or "
                    "choose another --experiment-dir\n", option_name(id), a, option_name(id), b, path);
            status = 2;
            goto out;
        }
        if (set[OPT_THREADS])
            base.threads = o.threads;
        if (set[OPT_DATA_DIR])
            base.data_dir = o.data_dir;
        base.experiment_dir = o.experiment_dir;
        base.resume = true;
        o = base;
    }
    r.opt = o;
    if (!check_schedule(&o)) {
        status = 2;
        goto out;
    }
    if (o.threads)
        tg_set_num_threads(o.threads);
    {
        study_buf cb = {0};
        config_text(&o, &cb);
        r.config = cb.data;
        if (cb.failed || !r.config) {
            study_buf_free(&cb);
            r.config = NULL;
            fprintf(stderr, PROG ": out of memory\n");
            goto out;
        }
    }

    if (load_data(&r) || build_model(&r)) /* before the directory: a typo leaves nothing behind */
        goto out;
    if (!existed) {
        if (study_mkdirs(r.dir) != TG_OK || (r.lock_fd = study_lock_dir(r.dir, "run")) < 0) {
            fail(NULL);
            goto out;
        }
        if ((found = has_results(&r)) != NULL) { /* another process made a run here meanwhile */
            fprintf(stderr, PROG ": %s has a %s now (another process's run?); choose another --experiment-dir\n",
                    r.dir, found);
            goto out;
        }
    }

    /* where to start: every file checked before anything is written */
    int start = 0, best_epoch = 0;
    double best_acc = -1;
    bool rewrite_best = false;
    if (o.resume && found) {
        if (check_resume(&r, &start, &best_epoch, &best_acc, &rewrite_best))
            goto out;
        if (start > 0)
            fprintf(stderr, PROG ": resuming %s after epoch %d of %d\n", r.dir, start, o.epochs);
        else
            fprintf(stderr, PROG ": resuming %s: no epoch was checkpointed, so from epoch 1\n", r.dir);
    } else {
        keep_rows(NULL, summary_header, 0, 1, &r.summary);
        keep_rows(NULL, gradflow_header, 0, 1, &r.gradflow);
    }
    if (study_write_file_atomic(run_path(path, &r, STUDY_CONFIG_TXT), r.config, strlen(r.config)) != TG_OK ||
        (rewrite_best && save_checkpoint(&r, STUDY_CHECKPOINT_BEST, start, best_epoch, best_acc) != TG_OK)) {
        fail(NULL);
        goto out;
    }
    if (start == 0)
        fprintf(stderr, PROG ": %s, %d conv layers + 1 linear, %" PRId64 " parameters; %" PRId64 " train / %" PRId64
                " validation / %" PRId64 " test images; %d threads, %s -> %s\n",
                o.dataset, 1 + o.num_stages * (2 * o.blocks + 2), tg_model_param_count(r.model),
                tg_dataset_size(r.train), tg_dataset_size(r.val), tg_dataset_size(r.test), tg_get_num_threads(),
                tg_gemm_kernels(), r.dir);

    /* the epochs: the CSV files, then the latest checkpoint, then the best (see the top) */
    tg_lr_schedule sched = {.kind = TG_LR_COSINE, .lr0 = o.lr, .eta_min = o.lr_min, .t_max = o.epochs};
    double epochs_time = 0;
    int epochs_run = 0;
    char sp[STUDY_PATH_MAX], gp[STUDY_PATH_MAX];
    run_path(sp, &r, STUDY_SUMMARY_CSV);
    run_path(gp, &r, STUDY_GRADFLOW_CSV);
    for (int e = start; e < o.epochs; e++) {
        double lr = tg_lr_at(&sched, e);
        tg_optim_set_lr(r.optim, lr);
        epoch_progress p = {.epoch = e, .epochs = o.epochs, .t0 = study_now(),
                            .avg_epoch_s = epochs_run ? epochs_time / epochs_run : 0};
        double tl, ta, vl, va;
        if (train_epoch(&r, &p, &tl, &ta))
            goto out;
        double train_secs = study_now() - p.t0;
        if (evaluate(&r, r.val_b, &vl, &va))
            goto out;
        double secs = study_now() - p.t0;
        epochs_time += secs;
        epochs_run++;
        study_buf_printf(&r.summary, "%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.3f\n", e + 1, ta, tl, va, vl, lr, secs);
        bool better = va > best_acc;
        if (better) {
            best_acc = va;
            best_epoch = e + 1;
        }
        if (study_buf_write(&r.summary, sp) != TG_OK || study_buf_write(&r.gradflow, gp) != TG_OK ||
            save_checkpoint(&r, STUDY_CHECKPOINT_LATEST, e + 1, best_epoch, best_acc) != TG_OK ||
            (better && save_checkpoint(&r, STUDY_CHECKPOINT_BEST, e + 1, best_epoch, best_acc) != TG_OK)) {
            fail(NULL);
            goto out;
        }
        char eta[32];
        fmt_duration(eta, sizeof eta, epochs_time / epochs_run * (o.epochs - e - 1));
        fprintf(stderr, "%sepoch %d/%d train loss %.4f acc %.4f | val loss %.4f acc %.4f%s | lr %.3g | %.1fs, "
                "%.0f train img/s, %s left\n", r.tty ? "\r\033[K" : "", e + 1, o.epochs, tl, ta, vl, va,
                best_epoch == e + 1 ? " (best)" : "", lr, secs, (double)p.images / train_secs, eta);
    }

    /* the best model on the test set */
    if (tg_checkpoint_load(run_path(path, &r, STUDY_CHECKPOINT_BEST), r.model, r.nstate, r.state_names, r.state,
                           NULL) != TG_OK) {
        fail("the best checkpoint");
        goto out;
    }
    double test_loss, test_acc;
    if (evaluate(&r, r.test_b, &test_loss, &test_acc))
        goto out;
    /* plots, then test_summary.csv: a run is complete when it has its results; a plot is
     * a picture of them, and one that fails is a warning, not a run left incomplete */
    if (!study_have_gnuplot()) {
        fprintf(stderr, PROG ": gnuplot is not installed (apt-get install gnuplot-nox): the CSV files are "
                        "written, the plots are not\n");
    } else {
        if (study_plot_curves(r.dir) != TG_OK)
            fprintf(stderr, PROG ": warning: no %s: %s\n", STUDY_CURVES_PNG, tg_last_error());
        if (study_plot_gradflow(r.dir) != TG_OK)
            fprintf(stderr, PROG ": warning: no %s: %s\n", STUDY_GRADFLOW_PNG, tg_last_error());
    }

    {
        char text[256];
        int n = snprintf(text, sizeof text, "test_acc,test_loss\n%.9g,%.9g\n", test_acc, test_loss);
        if (study_write_file_atomic(run_path(path, &r, STUDY_TEST_SUMMARY_CSV), text, (size_t)n) != TG_OK) {
            fail(NULL);
            goto out;
        }
    }

    /* the summary */
    printf("%s: best validation accuracy %.4f at epoch %d of %d; test accuracy %.4f, loss %.4f (%.0fs)\n",
           r.dir, best_acc, best_epoch, o.epochs, test_acc, test_loss, study_now() - t_start);
    study_grad_ends g;
    if (study_read_grad_ends(r.dir, &g)) {
        double ratio = g.first_grad / g.last_grad;
        printf("gradient flow at the last epoch: mean |dL/dW| %s %.3g / %s %.3g = %.3g: %s\n", g.first,
               g.first_grad, g.last, g.last_grad, ratio,
               ratio < 1e-2 ? "VANISHING (below 1e-2)" : !isfinite(ratio) ? "undefined" : "flows (not below 1e-2)");
    }
    status = 0;
out:
    run_free(&r);
    free(config_file_text);
    return status;
}
