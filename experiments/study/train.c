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
 * ends with the same numbers as an uninterrupted one. The CSV files are written before
 * the checkpoint; on resume, rows of epochs after the checkpoint's are dropped.
 */
#include "study.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    const char *tape_html; /* --tape-html: NULL, or where the page goes */
} options;

enum {
    OPT_DATASET = 1, OPT_DATA_DIR, OPT_STAGES, OPT_BLOCKS, OPT_FILTERS, OPT_BN, OPT_ACTIVATION,
    OPT_RESIDUAL, OPT_DROPOUT, OPT_OPTIMIZER, OPT_LR, OPT_WEIGHT_DECAY, OPT_MOMENTUM, OPT_BATCH,
    OPT_EPOCHS, OPT_LR_MIN, OPT_SEED, OPT_TRAIN_LIMIT, OPT_THREADS, OPT_EXPERIMENT_DIR, OPT_RESUME,
    OPT_TAPE_HTML, OPT_HELP, OPT_COUNT
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
    {"tape-html", required_argument, NULL, OPT_TAPE_HTML},
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
        "  --tape-html FILE            write the tape of the last batch of the first epoch run\n"
        "                              (a step whose gradient flow gradflow.csv logs) as a web\n"
        "                              page that steps through backward; needs Graphviz's dot\n"
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

static bool parse_int64(const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, PROG ": --%s wants an integer in %" PRId64 "..%" PRId64 ", got '%s'\n", flag, lo,
                hi, s);
        return false;
    }
    *out = v;
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
        case OPT_DATA_DIR: o->data_dir = a; break;
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
            ok = *a != '\0';
            if (!ok)
                fprintf(stderr, PROG ": --experiment-dir wants a directory name, got ''\n");
            o->experiment_dir = a;
            break;
        case OPT_RESUME: o->resume = true; break;
        case OPT_TAPE_HTML: o->tape_html = a; break;
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
           id != OPT_TAPE_HTML && id != OPT_HELP;
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
    char dir[2048];
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
    bool tape_html_written;      /* --tape-html: once a run */
    char config[8192];
    bool tty;
} run;

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

/* --tape-html: the tape of the step whose gradient flow was just read, as a web page
 * that steps through its backward (tg_tape_write_html), replaced whole or not at all. */
static int write_tape_html(run *r, int epoch)
{
    char *text = NULL, title[2200], what[4200];
    size_t len = 0;
    snprintf(title, sizeof title, "study train %s: epoch %d, last batch", r->dir, epoch);
    snprintf(what, sizeof what, "--tape-html %s", r->opt.tape_html);
    FILE *f = open_memstream(&text, &len);
    tg_status st = f ? tg_tape_write_html(r->tp, f, &(tg_html_options){.title = title})
                     : tg_set_error(TG_ERR_NOMEM, "out of memory");
    if (f && fclose(f) != 0 && st == TG_OK)
        st = tg_set_error(TG_ERR_NOMEM, "out of memory");
    if (st == TG_OK)
        st = study_write_file_atomic(r->opt.tape_html, text, len);
    free(text);
    if (st != TG_OK)
        return fail(what);
    r->tape_html_written = true;
    fprintf(stderr, "%s" PROG ": wrote %s (%zu bytes): the tape of epoch %d's last batch, to open in a browser\n",
            r->tty ? "\r\033[K" : "", r->opt.tape_html, len, epoch);
    return 0;
}

/* --tape-html needs Graphviz's dot: the empty tape's page, thrown away, says before
 * training whether it can be written, not after the first epoch. */
static int check_tape_html(run *r)
{
    char *text = NULL, what[4200];
    size_t len = 0;
    snprintf(what, sizeof what, "--tape-html %s", r->opt.tape_html);
    FILE *f = open_memstream(&text, &len);
    tg_status st = f ? tg_tape_write_html(r->tp, f, NULL) : tg_set_error(TG_ERR_NOMEM, "out of memory");
    if (f)
        fclose(f);
    free(text);
    return st == TG_OK ? 0 : fail(what);
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
        if (++p->done == p->batches) {
            record_gradflow(r, p->epoch + 1);
            if (r->opt.tape_html && !r->tape_html_written && write_tape_html(r, p->epoch + 1))
                return 1;
        }
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

static tg_status save_checkpoint(run *r, const char *name, int epoch, int best_epoch, double best_acc)
{
    char path[4096], ep[32], be[32], ba[40], seed[32];
    study_path(path, sizeof path, r->dir, name);
    snprintf(ep, sizeof ep, "%d", epoch);
    snprintf(be, sizeof be, "%d", best_epoch);
    fmt_double(ba, sizeof ba, best_acc);
    snprintf(seed, sizeof seed, "%" PRIu64, r->opt.seed);
    const tg_kv meta[] = {
        {"format", "tapegrad-study-train-1"},
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

/* Rows of a CSV file whose first field (the epoch) is at most `epochs`, header first,
 * into b; false if the file's header is not `header`. */
static bool keep_rows(const char *path, const char *header, int epochs, study_buf *b, int *max_epoch)
{
    char *text = study_read_file(path, NULL);
    if (!text)
        return false;
    size_t hl = strlen(header);
    bool ok = !strncmp(text, header, hl) && text[hl] == '\n';
    *max_epoch = 0;
    if (ok) {
        study_buf_printf(b, "%s\n", header);
        for (char *line = strtok(text + hl + 1, "\n"); line; line = strtok(NULL, "\n")) {
            int e = atoi(line);
            if (e >= 1 && e <= epochs) {
                study_buf_printf(b, "%s\n", line);
                if (e > *max_epoch)
                    *max_epoch = e;
            }
        }
    }
    free(text);
    return ok;
}

static const char summary_header[] = "epoch,train_acc,train_loss,val_acc,val_loss,lr,seconds";
static const char gradflow_header[] = "epoch,layer,kind,mean_abs,rms,max_abs,zero_frac";

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

    run r = {0};
    int status = 1;
    char *config_file_text = NULL;
    double t_start = study_now();
    r.tty = isatty(2);

    /* the experiment directory */
    if (o.experiment_dir) {
        snprintf(r.dir, sizeof r.dir, "%s", o.experiment_dir);
    } else {
        int depth = 1 + o.num_stages * (2 * o.blocks + 2) + 1;
        snprintf(r.dir, sizeof r.dir, "runs/%s_VGG_%02d_bn-%s_seed%" PRIu64, o.dataset, depth, bn_names[o.bn],
                 o.seed);
    }
    char path[4096];
    if (o.resume && study_run_complete(r.dir)) {
        fprintf(stderr, PROG ": %s is complete (it has %s); nothing to do\n", r.dir, STUDY_TEST_SUMMARY_CSV);
        return 0;
    }
    study_path(path, sizeof path, r.dir, STUDY_SUMMARY_CSV);
    if (!o.resume && study_file_exists(path)) {
        fprintf(stderr, PROG ": %s already has a %s; continue it with --resume or choose another "
                        "--experiment-dir\n", r.dir, STUDY_SUMMARY_CSV);
        return 1;
    }
    /* resuming: the run's own config.txt gives the flags, and flags given now must agree */
    study_path(path, sizeof path, r.dir, STUDY_CONFIG_TXT);
    if (o.resume && study_file_exists(path)) {
        config_file_text = study_read_file(path, NULL);
        if (!config_file_text)
            return fail(NULL);
        options base = default_options();
        int cr = parse_config_file(config_file_text, path, &base, NULL);
        if (cr) {
            free(config_file_text);
            return cr;
        }
        for (int id = 1; id < OPT_COUNT; id++) {
            char a[4200], b[4200];
            bool ha = option_value(&o, id, a, sizeof a), hb = option_value(&base, id, b, sizeof b);
            if (set[id] && affects_results(id) && (ha != hb || strcmp(a, b))) {
                fprintf(stderr, PROG ": --%s %s differs from the run's --%s %s (%s); resume without it or "
                        "choose another --experiment-dir\n", option_name(id), ha ? a : "(unset)",
                        option_name(id), hb ? b : "(unset)", path);
                free(config_file_text);
                return 2;
            }
        }
        if (set[OPT_THREADS])
            base.threads = o.threads;
        if (set[OPT_DATA_DIR])
            base.data_dir = o.data_dir;
        base.experiment_dir = o.experiment_dir;
        base.resume = true;
        base.tape_html = o.tape_html;
        o = base;
    }
    r.opt = o;
    if (o.threads)
        tg_set_num_threads(o.threads);
    {
        study_buf cb = {0};
        config_text(&o, &cb);
        snprintf(r.config, sizeof r.config, "%s", cb.data ? cb.data : "");
        study_buf_free(&cb);
    }

    if (load_data(&r) || build_model(&r) || (o.tape_html && check_tape_html(&r))) /* before the directory: */
        goto out;                                                                 /* a typo leaves nothing */
    if (study_mkdirs(r.dir) != TG_OK) {
        fail(NULL);
        goto out;
    }

    /* where to start */
    int start = 0, best_epoch = 0;
    double best_acc = -1;
    char ckpt[4096];
    study_path(ckpt, sizeof ckpt, r.dir, STUDY_CHECKPOINT_LATEST);
    if (o.resume && study_file_exists(ckpt)) {
        tg_safetensors *meta = NULL;
        if (tg_checkpoint_load(ckpt, r.model, r.nstate, r.state_names, r.state, &meta) != TG_OK) {
            fail("cannot resume");
            goto out;
        }
        const char *ep = tg_safetensors_meta(meta, "epoch"), *be = tg_safetensors_meta(meta, "best_epoch"),
                   *ba = tg_safetensors_meta(meta, "best_val_acc");
        start = ep ? atoi(ep) : -1;
        best_epoch = be ? atoi(be) : 0;
        best_acc = ba ? strtod(ba, NULL) : -1;
        tg_safetensors_free(meta);
        if (start < 0 || start > o.epochs) {
            fprintf(stderr, PROG ": %s: epoch '%s' is not in 0..%d\n", ckpt, ep ? ep : "(missing)", o.epochs);
            goto out;
        }
    }
    if (start > 0) {
        int have_s, have_g;
        char sp[4096], gp[4096];
        study_path(sp, sizeof sp, r.dir, STUDY_SUMMARY_CSV);
        study_path(gp, sizeof gp, r.dir, STUDY_GRADFLOW_CSV);
        if (!keep_rows(sp, summary_header, start, &r.summary, &have_s) ||
            !keep_rows(gp, gradflow_header, start, &r.gradflow, &have_g) || have_s != start || have_g != start) {
            fprintf(stderr, PROG ": cannot resume %s: its CSV files do not hold the %d epochs of its checkpoint%s%s\n",
                    r.dir, start, *tg_last_error() ? ": " : "", tg_last_error());
            goto out;
        }
        fprintf(stderr, PROG ": resuming %s after epoch %d of %d\n", r.dir, start, o.epochs);
    } else {
        study_buf_printf(&r.summary, "%s\n", summary_header);
        study_buf_printf(&r.gradflow, "%s\n", gradflow_header);
    }
    study_path(path, sizeof path, r.dir, STUDY_CONFIG_TXT);
    if (study_write_file_atomic(path, r.config, strlen(r.config)) != TG_OK) {
        fail(NULL);
        goto out;
    }
    if (start == 0)
        fprintf(stderr, PROG ": %s, %d conv layers + 1 linear, %" PRId64 " parameters; %" PRId64 " train / %" PRId64
                " validation / %" PRId64 " test images; %d threads, %s -> %s\n",
                o.dataset, 1 + o.num_stages * (2 * o.blocks + 2), tg_model_param_count(r.model),
                tg_dataset_size(r.train), tg_dataset_size(r.val), tg_dataset_size(r.test), tg_get_num_threads(),
                tg_gemm_kernels(), r.dir);

    /* the epochs */
    tg_lr_schedule sched = {.kind = TG_LR_COSINE, .lr0 = o.lr, .eta_min = o.lr_min, .t_max = o.epochs};
    double epochs_time = 0;
    int epochs_run = 0;
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
        char sp[4096], gp[4096];
        study_path(sp, sizeof sp, r.dir, STUDY_SUMMARY_CSV);
        study_path(gp, sizeof gp, r.dir, STUDY_GRADFLOW_CSV);
        if (study_buf_write(&r.summary, sp) != TG_OK || study_buf_write(&r.gradflow, gp) != TG_OK) {
            fail(NULL);
            goto out;
        }
        if (va > best_acc) {
            best_acc = va;
            best_epoch = e + 1;
            if (save_checkpoint(&r, STUDY_CHECKPOINT_BEST, e + 1, best_epoch, best_acc) != TG_OK) {
                fail(NULL);
                goto out;
            }
        }
        if (save_checkpoint(&r, STUDY_CHECKPOINT_LATEST, e + 1, best_epoch, best_acc) != TG_OK) {
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
    study_path(ckpt, sizeof ckpt, r.dir, STUDY_CHECKPOINT_BEST);
    if (tg_checkpoint_load(ckpt, r.model, r.nstate, r.state_names, r.state, NULL) != TG_OK) {
        fail("the best checkpoint");
        goto out;
    }
    double test_loss, test_acc;
    if (evaluate(&r, r.test_b, &test_loss, &test_acc))
        goto out;
    /* plots, then test_summary.csv: a run is complete when it has every file */
    if (!study_have_gnuplot()) {
        fprintf(stderr, PROG ": gnuplot is not installed (apt-get install gnuplot-nox): the CSV files are "
                        "written, the plots are not\n");
    } else if (study_plot_curves(r.dir) != TG_OK || study_plot_gradflow(r.dir) != TG_OK) {
        fail("plots");
        goto out;
    }

    {
        char text[256];
        int n = snprintf(text, sizeof text, "test_acc,test_loss\n%.9g,%.9g\n", test_acc, test_loss);
        study_path(path, sizeof path, r.dir, STUDY_TEST_SUMMARY_CSV);
        if (study_write_file_atomic(path, text, (size_t)n) != TG_OK) {
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
