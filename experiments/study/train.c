/* experiments/study/train.c — `study train`: one configuration of the study, trained
 * and evaluated, with everything written into an experiment directory.
 *
 *   study train --num-blocks-per-stage 5 --bn before --epochs 100 --experiment-dir runs/vgg38_bn
 *
 * One epoch: train (train mode, augmented, shuffled), read the gradient flow of the
 * epoch's last batch off the tape, evaluate on validation (eval mode, no tape), then
 * write summary.csv and gradflow.csv whole, the latest checkpoint, and the best
 * checkpoint if validation accuracy improved. At the end the best model is evaluated on
 * the test set, the plots are drawn (a failed one is a warning) and test_summary.csv is
 * written last. The run holds its directory's lock (study_lock_dir) throughout.
 *
 * Resuming. Everything random derives from (seed, epoch): initialisation from
 * split(rng(seed), 0); the batches' order, crops and flips from split(rng(seed), 1)
 * (the batcher splits per epoch itself); dropout masks from split(split(rng(seed), 2),
 * epoch), set on the tape at each epoch's start. The learning rate is a closed form of
 * the epoch. So the latest checkpoint (parameters, batch-norm statistics, optimiser
 * moments and step counts) plus the epoch number is the whole state, and a resumed run
 * ends with the same numbers as an uninterrupted one. Before it continues, every file
 * of the run is checked against the latest checkpoint, and nothing is written unless
 * they agree (resume.c); the flags and config.txt are train_options.c's.
 */
#include "train.h"
#include "../../tensor/fileio.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    study_buf_free(&r->summary);
    study_buf_free(&r->gradflow);
    free(r->config);
    study_unlock_dir(r->lock_fd);
}

int study_train_fail(const char *what)
{
    fprintf(stderr, PROG ": %s%s%s\n", what ? what : "", what && *tg_last_error() ? ": " : "", tg_last_error());
    return 1;
}

static int load_data(run *r)
{
    const options *o = &r->opt;
    tg_dataset *full = tg_dataset_load(o->dataset, o->data_dir, TG_DATASET_TRAIN);
    if (!full)
        return study_train_fail(NULL);
    r->test = tg_dataset_load(o->dataset, o->data_dir, TG_DATASET_TEST);
    tg_dataset *train = NULL;
    tg_status st = r->test ? tg_dataset_split(full, 0.05, 0, &train, &r->val) : tg_last_status();
    tg_dataset_free(full);
    if (st != TG_OK)
        return study_train_fail(NULL);
    if (o->train_limit > 0 && o->train_limit < tg_dataset_size(train)) {
        r->train = tg_dataset_head(train, o->train_limit);
        tg_dataset_free(train); /* the head keeps the storage */
        if (!r->train)
            return study_train_fail(NULL);
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
    return r->test_b ? 0 : study_train_fail(NULL);
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
        return study_train_fail(NULL);
    r->model = tg_vgg_model(r->net);
    tg_optim_config oc = {.kind = o->optimizer, .lr = o->lr, .weight_decay = o->weight_decay};
    if (o->optimizer == TG_SGD)
        oc.momentum = o->momentum;
    r->optim = tg_optim_new(r->model, &oc);
    r->tp = tg_tape_new(o->seed);
    if (!r->optim || !r->tp)
        return study_train_fail(NULL);
    r->nstate = tg_optim_num_state(r->optim);
    r->state_names = calloc((size_t)r->nstate + 1, sizeof *r->state_names);
    r->state = calloc((size_t)r->nstate + 1, sizeof *r->state);
    if (!r->state_names || !r->state)
        return fprintf(stderr, PROG ": out of memory\n"), 1;
    for (int i = 0; i < r->nstate; i++) {
        r->state_names[i] = tg_optim_state_name(r->optim, i);
        r->state[i] = tg_optim_state(r->optim, i);
    }
    return 0;
}

/* Under MPI: *x and *y become this rank's rows of the batch (views in the tape's
 * arena); returns how many (0 when the batch has fewer rows than ranks). */
static int64_t take_share(run *r, tg_tensor **x, tg_tensor **y)
{
    int64_t first, count;
    study_ranks_share((*y)->shape[0], &first, &count);
    *x = tg_tensor_slice(tg_tape_arena(r->tp), *x, 0, first, first + count, 1);
    *y = tg_tensor_slice(tg_tape_arena(r->tp), *y, 0, first, first + count, 1);
    return count;
}

/* Trains one epoch; the mean loss and accuracy over its images. */
static int train_epoch(run *r, epoch_progress *p, double *loss, double *acc)
{
    tg_model_set_training(r->model, true);
    tg_tape_set_grad_enabled(r->tp, true);
    tg_rng root = tg_rng_new(r->opt.seed), dropout_root = tg_rng_split(&root, 2);
    *tg_tape_rng(r->tp) = tg_rng_split(&dropout_root, (uint64_t)p->epoch);
    if (tg_batcher_start_epoch(r->train_b, p->epoch) != TG_OK)
        return study_train_fail(NULL);
    p->batches = tg_batcher_num_batches(r->train_b);
    const int ranks = study_ranks_size();
    /* the batch whose gradient flow is logged: the last, or the one before a last batch
     * too small to share among the ranks (left out below) */
    int64_t last_size = tg_dataset_size(r->train) - (p->batches - 1) * r->opt.batch_size;
    const int64_t logged = ranks > 1 && last_size < ranks && p->batches > 1 ? p->batches - 1 : p->batches;
    tg_tensor *x, *y;
    while (tg_batcher_next(r->train_b, &x, &y)) {
        /* the layers' output gradients are read off the tape on the logged batch only; on
         * the others each is given back once used, which bounds the memory */
        tg_tape_set_keep_grads(r->tp, p->done + 1 == logged);
        /* under MPI, this rank's share of the global batch; a last batch smaller than
         * the ranks (some would get no image) is left out by every rank alike */
        int64_t n = y->shape[0], count = n;
        if (ranks > 1) {
            if (n < ranks) {
                ++p->done;
                continue;
            }
            count = take_share(r, &x, &y);
        }
        tg_tensor *logits = tg_vgg_forward(r->tp, r->net, x);
        tg_tensor *l = tg_nn_cross_entropy(r->tp, logits, y);
        /* each rank's mean, weighted so that the ranks' average is the batch's mean
         * (exactly 1 when the shares are equal) */
        tg_tensor *lw = ranks > 1 && count * ranks != n ? tg_mul_scalar(r->tp, l, (double)(count * ranks) / (double)n)
                                                        : l;
        if (tg_backward(r->tp, lw) != TG_OK) {
            fprintf(stderr, "%s" PROG ": epoch %d, batch %" PRId64 ": %s\n", r->tty ? "\n" : "", p->epoch + 1,
                    p->done + 1, tg_tape_error(r->tp));
            return 1;
        }
        if (study_ranks_average_grads(r->model) != TG_OK)
            return study_train_fail("averaging the gradients across ranks");
        p->loss_sum += tg_tensor_item(l) * (double)count;
        p->correct += round(tg_nn_accuracy(logits, y) * (double)count);
        p->images += count;
        if (++p->done == logged && study_ranks_rank() == 0) {
            study_gradflow_record(r, p->epoch + 1);
            if (r->opt.tape_html && !r->tape_html_written && study_tape_html_write(r, p->epoch + 1))
                return 1;
        }
        if (tg_optim_step(r->optim) != TG_OK)
            return study_train_fail("the optimiser step");
        tg_model_zero_grad(r->model);
        tg_tape_reset(r->tp);
        double t = study_now();
        if (r->tty && (t - p->last_draw > 0.2 || p->done == p->batches)) {
            study_progress_draw(p, t);
            p->last_draw = t;
        }
    }
    double sums[3] = {p->loss_sum, p->correct, (double)p->images}; /* every rank's */
    if (study_ranks_sum(sums, 3) != TG_OK)
        return study_train_fail("adding up the epoch's loss across ranks");
    p->images = (int64_t)sums[2]; /* the job's images, for the epoch's images per second */
    *loss = sums[2] ? sums[0] / sums[2] : NAN;
    *acc = sums[2] ? sums[1] / sums[2] : NAN;
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
        return study_train_fail(NULL);
    while (tg_batcher_next(b, &x, &y)) {
        /* under MPI each rank evaluates its share of the batch (no collective inside: batch
         * norm uses its running statistics here) */
        int64_t count = study_ranks_size() > 1 ? take_share(r, &x, &y) : y->shape[0];
        if (count == 0)
            continue;
        tg_tensor *logits = tg_vgg_forward(r->tp, r->net, x);
        tg_tensor *l = tg_nn_cross_entropy(r->tp, logits, y);
        if (tg_tape_status(r->tp) != TG_OK) {
            fprintf(stderr, PROG ": evaluation: %s\n", tg_tape_error(r->tp));
            return 1;
        }
        loss_sum += tg_tensor_item(l) * (double)count;
        correct += round(tg_nn_accuracy(logits, y) * (double)count);
        images += count;
        tg_tape_reset(r->tp);
    }
    tg_tape_set_grad_enabled(r->tp, was);
    tg_model_set_training(r->model, true);
    double sums[3] = {loss_sum, correct, (double)images};
    if (study_ranks_sum(sums, 3) != TG_OK)
        return study_train_fail("adding up the evaluation across ranks");
    *loss = sums[2] ? sums[0] / sums[2] : NAN;
    *acc = sums[2] ? sums[1] / sums[2] : NAN;
    return 0;
}

static tg_status save_checkpoint(run *r, const char *name, int epoch, int best_epoch, double best_acc)
{
    char path[STUDY_PATH_MAX], ep[32], be[32], ba[40], seed[32];
    run_path(path, r, name);
    snprintf(ep, sizeof ep, "%d", epoch);
    snprintf(be, sizeof be, "%d", best_epoch);
    study_train_fmt_double(ba, sizeof ba, best_acc);
    snprintf(seed, sizeof seed, "%" PRIu64, r->opt.seed);
    const tg_kv meta[] = {
        {"format", STUDY_CHECKPOINT_FORMAT},
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

/* ", 2 ranks (synchronised batch norm)" under MPI, else "" */
static const char *ranks_text(int ranks, bool sync_bn)
{
    static char text[64];
    if (ranks <= 1)
        return "";
    snprintf(text, sizeof text, " x %d ranks (%s batch norm)", ranks, sync_bn ? "synchronised" : "per-rank");
    return text;
}

/* Under MPI rank 0 alone takes the directory and decides where the run stands (lock,
 * resume checks); then every rank calls this exactly once, before the first epoch or
 * on its way out, to learn the decision: -1 to train (from *start, with rank 0's model
 * and optimiser state), else the exit status to end with. A rank that failed before
 * (missing data, say) makes every rank end. go: this rank is ready to train. */
static int ranks_agree(run *r, bool go, int status, int *start, int *best_epoch, double *best_acc)
{
    r->agreed = true;
    const bool root = study_ranks_rank() == 0;
    double v[7] = {0};
    if (root) {
        v[0] = go, v[1] = status, v[2] = *start, v[3] = *best_epoch, v[4] = *best_acc;
    } else if (!go && status != 0) {
        v[5] = 1;                   /* ranks that failed */
        v[6] = study_ranks_rank();  /* one of them, for the message */
    }
    if (study_ranks_sum(v, 7) != TG_OK)
        return study_train_fail("agreeing with the other ranks");
    if (v[5] > 0) {
        if (root)
            fprintf(stderr, PROG ": %g rank%s failed before training (rank %g among them; its message is "
                    "above)\n", v[5], v[5] == 1 ? "" : "s", v[6]);
        return status ? status : 1;
    }
    if (!v[0])
        return (int)v[1];
    if (!go) /* rank 0 trains, this rank does not: they disagree about the directory */
        return fprintf(stderr, PROG ": rank %d: the run directory looked different here than on rank 0\n",
                       study_ranks_rank()), 1;
    *start = (int)v[2], *best_epoch = (int)v[3], *best_acc = v[4];
    if (study_ranks_broadcast(r->model, r->nstate, r->state) != TG_OK)
        return study_train_fail("rank 0's model and optimiser state");
    return -1;
}

int study_train_main(int argc, char **argv)
{
    options o = study_train_defaults();
    bool set[OPT_COUNT] = {0};
    int pr = study_train_parse_args(argc, argv, &o, set, "");
    if (pr == -1) {
        study_train_usage(stdout);
        return 0;
    }
    if (pr)
        return pr;

    if (study_ranks_join() != TG_OK) {
        fprintf(stderr, PROG ": %s\n", tg_last_error());
        return 1;
    }
    /* under MPI rank 0 alone owns the directory: locks it and writes every file */
    const bool root = study_ranks_rank() == 0;
    const int ranks = study_ranks_size();
    run r = {.lock_fd = -1};
    int status = 1;
    char *config_file_text = NULL;
    double t_start = study_now();
    r.tty = root && isatty(2);
    int start = 0, best_epoch = 0;
    double best_acc = -1;

    /* the experiment directory: taken (locked) first if it exists, so that every look
     * at its files below sees no other writer */
    if (o.experiment_dir) {
        snprintf(r.dir, sizeof r.dir, "%s", o.experiment_dir);
    } else {
        int depth = tg_vgg_depth(&(tg_vgg_config){.num_stages = o.num_stages, .num_blocks_per_stage = o.blocks});
        snprintf(r.dir, sizeof r.dir, "runs/%s_VGG_%02d_bn-%s_seed%" PRIu64, o.dataset, depth, study_bn_name(o.bn),
                 o.seed);
    }
    bool existed = is_dir(r.dir);
    if (existed && root && (r.lock_fd = study_lock_dir(r.dir, "run")) < 0) {
        study_train_fail(NULL);
        goto out;
    }
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
            study_train_fail(NULL);
            goto out;
        }
        options base = study_train_defaults();
        int cr = study_train_parse_config(config_file_text, path, &base, NULL);
        if (cr) {
            status = cr;
            goto out;
        }
        char a[4200], b[4200];
        int id = study_train_differing_option(&o, &base, set, a, b, sizeof a);
        if (id) {
            fprintf(stderr, PROG ": --%s %s differs from the run's --%s %s (%s); resume without it or "
                    "choose another --experiment-dir\n", study_train_option_name(id), a, study_train_option_name(id), b,
                    path);
            status = 2;
            goto out;
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
    if (!check_schedule(&o)) {
        status = 2;
        goto out;
    }
    if (ranks > 1 && o.batch_size % ranks) {
        if (root)
            fprintf(stderr, PROG ": --batch-size %d does not split into %d equal shares (one per rank); "
                    "choose a multiple of %d or another -np\n", o.batch_size, ranks, ranks);
        status = 2;
        goto out;
    }
    if (o.threads)
        tg_set_num_threads(o.threads);
    {
        study_buf cb = {0};
        study_train_config_text(&o, &cb);
        r.config = cb.data;
        if (cb.failed || !r.config) {
            study_buf_free(&cb);
            r.config = NULL;
            fprintf(stderr, PROG ": out of memory\n");
            goto out;
        }
    }

    if (o.tape_html && ranks > 1 && o.sync_bn) {
        if (root)
            fprintf(stderr, PROG ": --tape-html with --sync-bn under mpirun: the page replays the backward on "
                    "rank 0 alone, which synchronised batch norm cannot do; drop one of them\n");
        status = 2;
        goto out;
    }
    /* before the directory: a typo leaves nothing behind */
    if (load_data(&r) || build_model(&r) || (o.tape_html && root && study_tape_html_check(&r)))
        goto out;
    study_ranks_sync_batch_norm(r.tp, o.sync_bn);
    if (!existed && root) {
        if (study_mkdirs(r.dir) != TG_OK || (r.lock_fd = study_lock_dir(r.dir, "run")) < 0) {
            study_train_fail(NULL);
            goto out;
        }
        if ((found = has_results(&r)) != NULL) { /* another process made a run here meanwhile */
            fprintf(stderr, PROG ": %s has a %s now (another process's run?); choose another --experiment-dir\n",
                    r.dir, found);
            goto out;
        }
    }

    /* where to start: every file checked before anything is written */
    bool rewrite_best = false;
    if (o.resume && found && root) {
        if (study_train_check_resume(&r, &start, &best_epoch, &best_acc, &rewrite_best))
            goto out;
        if (start > 0)
            fprintf(stderr, PROG ": resuming %s after epoch %d of %d\n", r.dir, start, o.epochs);
        else
            fprintf(stderr, PROG ": resuming %s: no epoch was checkpointed, so from epoch 1\n", r.dir);
    } else {
        study_buf_printf(&r.summary, "%s\n", STUDY_SUMMARY_HEADER);
        study_buf_printf(&r.gradflow, "%s\n", STUDY_GRADFLOW_HEADER);
    }
    if (root && (tg__write_file_atomic("study", run_path(path, &r, STUDY_CONFIG_TXT), r.config, strlen(r.config)) != TG_OK ||
                 (rewrite_best && save_checkpoint(&r, STUDY_CHECKPOINT_BEST, start, best_epoch, best_acc) != TG_OK))) {
        study_train_fail(NULL);
        goto out;
    }
    if (ranks > 1) {
        int agreed = ranks_agree(&r, true, 0, &start, &best_epoch, &best_acc);
        if (agreed >= 0) {
            status = agreed;
            goto out;
        }
    }
    if (start == 0 && root)
        fprintf(stderr, PROG ": %s, %d conv layers + 1 linear, %" PRId64 " parameters; %" PRId64 " train / %" PRId64
                " validation / %" PRId64 " test images; %d threads%s, %s -> %s\n",
                o.dataset, tg_vgg_depth(tg_vgg_config_of(r.net)) - 1, tg_model_param_count(r.model),
                tg_dataset_size(r.train), tg_dataset_size(r.val), tg_dataset_size(r.test), tg_get_num_threads(),
                ranks_text(ranks, o.sync_bn), tg_gemm_kernels(), r.dir);

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
        if (root && (study_buf_write(&r.summary, sp) != TG_OK || study_buf_write(&r.gradflow, gp) != TG_OK ||
                     save_checkpoint(&r, STUDY_CHECKPOINT_LATEST, e + 1, best_epoch, best_acc) != TG_OK ||
                     (better && save_checkpoint(&r, STUDY_CHECKPOINT_BEST, e + 1, best_epoch, best_acc) != TG_OK))) {
            study_train_fail(NULL);
            goto out;
        }
        if (!root)
            continue;
        char eta[32];
        study_fmt_duration(eta, sizeof eta, epochs_time / epochs_run * (o.epochs - e - 1));
        fprintf(stderr, "%sepoch %d/%d train loss %.4f acc %.4f | val loss %.4f acc %.4f%s | lr %.3g | %.1fs, "
                "%.0f train img/s, %s left\n", r.tty ? "\r\033[K" : "", e + 1, o.epochs, tl, ta, vl, va,
                best_epoch == e + 1 ? " (best)" : "", lr, secs, (double)p.images / train_secs, eta);
    }

    /* the best model on the test set (rank 0 reads it; under MPI the others get it) */
    if (root && tg_checkpoint_load(run_path(path, &r, STUDY_CHECKPOINT_BEST), r.model, r.nstate, r.state_names,
                                   r.state, NULL) != TG_OK) {
        study_train_fail("the best checkpoint");
        goto out;
    }
    if (ranks > 1 && study_ranks_broadcast(r.model, r.nstate, r.state) != TG_OK) {
        study_train_fail("the best model from rank 0");
        goto out;
    }
    double test_loss, test_acc;
    if (evaluate(&r, r.test_b, &test_loss, &test_acc))
        goto out;
    if (!root) {
        status = 0;
        goto out;
    }
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
        if (tg__write_file_atomic("study", run_path(path, &r, STUDY_TEST_SUMMARY_CSV), text, (size_t)n) != TG_OK) {
            study_train_fail(NULL);
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
    if (ranks > 1 && !r.agreed) { /* on the way out before training: every rank learns why */
        int agreed = ranks_agree(&r, false, status, &start, &best_epoch, &best_acc);
        status = agreed >= 0 ? agreed : 1;
    }
    run_free(&r);
    tg_mem_free(config_file_text);
    study_ranks_leave(status);
    return status;
}
