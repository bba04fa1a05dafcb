/* experiments/study/train_options.c — the flags of `study train`: parsing them (from
 * the command line and from a run's config.txt, which holds them "--flag value" one a
 * line), writing config.txt, and comparing two sets of them (a resumed run must keep
 * every flag that changes results). */
#include "train.h"
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct option long_options[] = {
    {"dataset", required_argument, NULL, OPT_DATASET},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"num-stages", required_argument, NULL, OPT_STAGES},
    {"num-blocks-per-stage", required_argument, NULL, OPT_BLOCKS},
    {"num-filters", required_argument, NULL, OPT_FILTERS},
    {"bn", required_argument, NULL, OPT_BN},
    {"activation", required_argument, NULL, OPT_ACTIVATION},
    {"residual", no_argument, NULL, OPT_RESIDUAL},
    {"sync-bn", no_argument, NULL, OPT_SYNC_BN},
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

static const char *const act_names[] = {"leaky-relu", "relu"};
static const char *const optim_names[] = {"sgd", "adam", "adamw"}; /* by tg_optim_kind */

options study_train_defaults(void)
{
    return (options){.dataset = "fashion-mnist", .num_stages = 3, .blocks = 0, .filters = 32,
                     .bn = TG_BN_NONE, .activation = TG_ACT_LEAKY_RELU, .optimizer = TG_ADAM,
                     .lr = 1e-3, .momentum = 0.9, .lr_min = 2e-5, .batch_size = 100, .epochs = 100};
}

void study_train_usage(FILE *f)
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
        "  --sync-bn                   under mpirun: batch norm over every rank's share of the\n"
        "                              batch together (default: each rank's own, as PyTorch's DDP)\n"
        "output:\n"
        "  --experiment-dir DIR        default runs/<dataset>_VGG_<depth>_bn-<bn>_seed<S>\n"
        "  --resume                    continue the run in DIR from its latest checkpoint\n"
        "                              (its config.txt supplies the flags not given)\n"
        "  --tape-html FILE            write the tape of the last batch of the first epoch run\n"
        "                              (a step whose gradient flow gradflow.csv logs) as a web\n"
        "                              page that steps through backward; needs Graphviz's dot\n"
        "  --help                      this text\n"
        "several processes (MPI): mpirun -np N study train ... trains data-parallel: each rank\n"
        "  takes batch-size / N images of every batch (N must divide it), the ranks average\n"
        "  their gradients, and rank 0 alone writes the run directory.\n"
        "exit status: 0 done, 1 failure, 2 usage error\n");
}

void study_train_fmt_double(char *buf, size_t size, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
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

int study_train_parse_args(int argc, char **argv, options *o, bool *set, const char *where)
{
    optind = 0; /* GNU: reinitialise, so that a second parse in one process works */
    opterr = 0;
    int c, idx;
    while ((c = getopt_long(argc, argv, ":", long_options, &idx)) != -1) {
        const char *a = optarg, *name = NULL;
        for (const struct option *lo = long_options; lo->name; lo++)
            if (lo->val == c)
                name = lo->name;
        char flag[64]; /* as the user writes it, for messages */
        snprintf(flag, sizeof flag, "--%s", name ? name : "?");
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
        case OPT_STAGES: ok = tg__cli_int(PROG, flag, a, 1, 5, &o->num_stages); break; /* 32 / 2^5 = 1 */
        case OPT_BLOCKS: ok = tg__cli_int(PROG, flag, a, 0, 999, &o->blocks); break;
        case OPT_FILTERS: ok = tg__cli_int(PROG, flag, a, 1, 4096, &o->filters); break;
        case OPT_BN:
            ok = parse_choice(name, a, study_bn_names, 3, &choice);
            o->bn = (tg_bn_placement)choice;
            break;
        case OPT_ACTIVATION:
            ok = parse_choice(name, a, act_names, 2, &choice);
            o->activation = (tg_activation)choice;
            break;
        case OPT_RESIDUAL: o->residual = true; break;
        case OPT_SYNC_BN: o->sync_bn = true; break;
        case OPT_DROPOUT: ok = tg__cli_double(PROG, flag, a, 0, false, 1, true, &o->dropout); break;
        case OPT_OPTIMIZER:
            ok = parse_choice(name, a, optim_names, 3, &choice);
            o->optimizer = (tg_optim_kind)choice;
            break;
        case OPT_LR: ok = tg__cli_double(PROG, flag, a, 0, true, INFINITY, false, &o->lr); break;
        case OPT_WEIGHT_DECAY: ok = tg__cli_double(PROG, flag, a, 0, false, INFINITY, false, &o->weight_decay); break;
        case OPT_MOMENTUM: ok = tg__cli_double(PROG, flag, a, 0, false, 1, true, &o->momentum); break;
        case OPT_BATCH: ok = tg__cli_int(PROG, flag, a, 1, 1000000, &o->batch_size); break;
        case OPT_EPOCHS: ok = tg__cli_int(PROG, flag, a, 1, 1000000, &o->epochs); break;
        case OPT_LR_MIN: ok = tg__cli_double(PROG, flag, a, 0, false, INFINITY, false, &o->lr_min); break;
        case OPT_SEED: {
            int64_t v;
            ok = tg__cli_int64(PROG, flag, a, 0, INT64_MAX, &v);
            o->seed = (uint64_t)v;
            break;
        }
        case OPT_TRAIN_LIMIT: ok = tg__cli_int64(PROG, flag, a, 1, INT64_MAX, &o->train_limit); break;
        case OPT_THREADS: ok = tg__cli_int(PROG, flag, a, 1, 1024, &o->threads); break;
        case OPT_EXPERIMENT_DIR:
            ok = *a && strlen(a) <= STUDY_DIR_MAX;
            if (!ok)
                fprintf(stderr, PROG ": --experiment-dir wants a directory name of 1..%d bytes (so that "
                        "its files' paths fit in %d), got %zu bytes\n", STUDY_DIR_MAX, STUDY_PATH_MAX,
                        strlen(a));
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
    case OPT_BN: snprintf(buf, size, "%s", study_bn_name(o->bn)); return true;
    case OPT_ACTIVATION: snprintf(buf, size, "%s", act_names[o->activation]); return true;
    case OPT_RESIDUAL: return o->residual;
    case OPT_SYNC_BN: return o->sync_bn; /* written only when set: older runs' config.txt agree */
    case OPT_DROPOUT: study_train_fmt_double(buf, size, o->dropout); return true;
    case OPT_OPTIMIZER: snprintf(buf, size, "%s", optim_names[o->optimizer]); return true;
    case OPT_LR: study_train_fmt_double(buf, size, o->lr); return true;
    case OPT_WEIGHT_DECAY: study_train_fmt_double(buf, size, o->weight_decay); return true;
    case OPT_MOMENTUM:
        if (o->optimizer != TG_SGD)
            return false;
        study_train_fmt_double(buf, size, o->momentum);
        return true;
    case OPT_BATCH: snprintf(buf, size, "%d", o->batch_size); return true;
    case OPT_EPOCHS: snprintf(buf, size, "%d", o->epochs); return true;
    case OPT_LR_MIN: study_train_fmt_double(buf, size, o->lr_min); return true;
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

const char *study_train_option_name(int id)
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
void study_train_config_text(const options *o, study_buf *b)
{
    char v[4200];
    for (int id = 1; id < OPT_COUNT; id++)
        if (option_value(o, id, v, sizeof v))
            study_buf_printf(b, "--%s%s%s\n", study_train_option_name(id), v[0] ? " " : "", v);
}

/* The options of a config.txt: each line is split at its first space into flag and
 * value (a value may contain spaces); text is modified and must outlive o. */
int study_train_parse_config(char *text, const char *path, options *o, bool *set)
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
    int r = study_train_parse_args(argc, argv, o, set, where);
    free(argv);
    return r == -1 ? 2 : r;
}

int study_train_differing_option(const options *a, const options *b, const bool *only, char *va, char *vb,
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
