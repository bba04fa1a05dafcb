/* experiments/study/plans.c — the report's experiments as data: each plan's rows (a
 * label, the configuration it varies, the numbers the report itself gives for it),
 * the canonical run names, and the names of the batch norm placements. Every other part
 * of the program (sweep's options and folders, report's tables and messages, train's
 * flags) reads them from here.
 *
 * What the student report states and what was read into it (the report is the MLP
 * coursework report this study reproduces; docs/reproduction.md summarises it):
 * - Every experiment is VGG_38 on CIFAR-100 except VGG_08 in Figures 1 and 2; Adam with
 *   the framework's defaults (lr 1e-3, cosine annealing, 100 epochs): the report changes
 *   no learning rate, so none is set here.
 * - "Adding BN" in section 5.1 is batch norm after every convolution *before* the
 *   activation (the introduction says so, and 5.1's numbers, test 47.43% / loss 1.968,
 *   are Table 1's "BN before ReLU" row): plan `bn` is none vs before.
 * - Tables 2-5 are built on "the model adding BN after ReLU": their first rows repeat
 *   Table 1's BN-after row (64.1% / 50.7% / 51.9%), so all of them use bn = after, and
 *   the baseline row of each is the same run as bn-placement's BN-after run.
 * - The report says ReLU; the framework (and this program) uses leaky ReLU, slope 0.01.
 * - Dropout is "after every Batch Normalization" (p = 0.5 and 0.2), so also after the
 *   entry convolution's batch norm (tg_vgg_config.dropout does exactly that).
 * - Batch sizes 80 and 50 keep the learning rate 1e-3: the report scales nothing.
 * - Weight decay is Adam's coupled L2 (PyTorch's Adam weight_decay), as the framework.
 * - Table 5's "Default setting" row (bn after, decay 0, batch 100) is a member of
 *   `combined` too, so that its table has the report's three rows.
 * - Seeds: the report trained "in different seeds" but prints seed 0 only.
 *
 * The report's numbers: CIFAR-100, 100 epochs, seed 0; accuracies in percent, losses as
 * printed; NAN where the report gives none. Figures 1 and 2 have no table; section 5.1's
 * text gives VGG_38's test accuracy as "1%" and its test loss as 4.609 (Figure 1: "about
 * 0 accuracy"), and "test accuracy increased from 1% to 47.43%, test loss decreased
 * from 4.609 to 1.968" when BN is added (Table 1's "BN before ReLU" row). Table 5 spells
 * "Weitght decay". */
#include "study.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const study_bn_names[3] = {"none", "before", "after"}; /* by tg_bn_placement */

/* one row of a plan: its label, what it varies (study_config's fields in order), and
 * the report's numbers for it (source, then train/val/test accuracy, train/val/test loss) */
#define ROW(label_, blocks, bn, wd, dropout, batch, ...)                                        \
    {.label = (label_), .config = {(blocks), (bn), (wd), (dropout), (batch)}, .reported = {__VA_ARGS__}}
/* the row that tables 2-5 share with Table 1: BN after ReLU */
#define BN_AFTER_NUMBERS(source) source, 64.1, 50.7, 51.9, 1.211, 1.861, 1.852

/* labels go into plan.csv unquoted: no commas */
static const study_plan plans[] = {
    {"depth", "VGG_08 vs VGG_38, no batch norm", "Figures 1 and 2", "VGG_08 vs VGG_38 (Figures 1, 2)", 2,
     {ROW("VGG_08", 0, TG_BN_NONE, 0, 0, 0, "Figure 1 (no numbers)", NAN, NAN, NAN, NAN, NAN, NAN),
      {.label = "VGG_38", .config = {5, TG_BN_NONE, 0, 0, 0},
       .reported = {"section 5.1", NAN, NAN, 1.0, NAN, NAN, 4.609},
       .direction = -1, .direction_why = "Figure 1: VGG_38 about 0% accuracy, VGG_08 trains"}}},
    {"bn", "VGG_38 without and with batch norm (before the activation)", "Figures 4 and 5",
     "VGG_38 without BN vs BN before the activation (Figures 4, 5)", 2,
     {ROW("VGG_38 without BN", 5, TG_BN_NONE, 0, 0, 0, "section 5.1", NAN, NAN, 1.0, NAN, NAN, 4.609),
      ROW("VGG_38 with BN", 5, TG_BN_BEFORE, 0, 0, 0, "Table 1, section 5.1", 55.5, 47.2, 47.4, 1.571, 1.952, 1.968)}},
    {"bn-placement", "VGG_38, batch norm before or after the activation", "Table 1, Figures 6 and 7",
     "BN before vs after the activation (Table 1, Figures 6, 7)", 2,
     {ROW("BN before ReLU", 5, TG_BN_BEFORE, 0, 0, 0, "Table 1", 55.5, 47.2, 47.4, 1.571, 1.952, 1.968),
      ROW("BN after ReLU", 5, TG_BN_AFTER, 0, 0, 0, BN_AFTER_NUMBERS("Table 1"))}},
    {"weight-decay", "VGG_38 with BN after ReLU, weight decay coefficients", "Table 2",
     "0, 0.001, 0.005 with BN after (Table 2)", 3,
     {ROW("decay coefficient=0", 5, TG_BN_AFTER, 0, 0, 0, BN_AFTER_NUMBERS("Table 2")),
      ROW("decay coefficient=0.001", 5, TG_BN_AFTER, 0.001, 0, 0, "Table 2", 62.9, 54.1, 52.7, 1.278, 1.692, 1.707),
      ROW("decay coefficient=0.005", 5, TG_BN_AFTER, 0.005, 0, 0, "Table 2", 46.7, 42.4, 43.0, 1.963, 2.084, 2.089)}},
    {"dropout", "VGG_38 with BN after ReLU, dropout after every batch norm", "Table 3",
     "none, 0.5, 0.2 after every BN, BN after (Table 3)", 3,
     {ROW("Without Dropout", 5, TG_BN_AFTER, 0, 0, 0, BN_AFTER_NUMBERS("Table 3")),
      ROW("Dropout(p=0.5)", 5, TG_BN_AFTER, 0, 0.5, 0, "Table 3", 0.7, 0.5, 0.5, 4.608, 4.610, 4.611),
      ROW("Dropout(p=0.2)", 5, TG_BN_AFTER, 0, 0.2, 0, "Table 3", 0.9, 0.6, 0.5, 4.605, 4.607, 4.610)}},
    {"batch-size", "VGG_38 with BN after ReLU, batch sizes", "Table 4", "100, 80, 50 with BN after (Table 4)", 3,
     {ROW("Batch size=100", 5, TG_BN_AFTER, 0, 0, 100, BN_AFTER_NUMBERS("Table 4")),
      ROW("Batch size=80", 5, TG_BN_AFTER, 0, 0, 80, "Table 4", 61.7, 51.3, 51.5, 1.318, 1.843, 1.850),
      ROW("Batch size=50", 5, TG_BN_AFTER, 0, 0, 50, "Table 4", 62.1, 51.6, 52.2, 1.305, 1.811, 1.785)}},
    {"combined", "VGG_38 with BN after ReLU, weight decay 0.001 with smaller batches", "Table 5",
     "weight decay 0.001 with batch size 50 and 80 (Table 5)", 3,
     {ROW("Default setting", 5, TG_BN_AFTER, 0, 0, 0, BN_AFTER_NUMBERS("Table 5")),
      ROW("Weight decay=0.001; batch size=50", 5, TG_BN_AFTER, 0.001, 0, 50, "Table 5", 53.1, 49.4, 50.0, 1.696,
          1.853, 1.828),
      ROW("Weight decay=0.001; batch size=80", 5, TG_BN_AFTER, 0.001, 0, 80, "Table 5", 59.4, 52.0, 51.7, 1.435,
          1.741, 1.777)}},
};
enum { NUM_PLANS = (int)(sizeof plans / sizeof plans[0]) };
_Static_assert(NUM_PLANS <= STUDY_MAX_PLANS, "STUDY_MAX_PLANS is too small");

int study_num_plans(void)
{
    return NUM_PLANS;
}

const study_plan *study_plan_at(int i)
{
    return i >= 0 && i < NUM_PLANS ? &plans[i] : NULL;
}

const study_plan *study_plan_find(const char *name)
{
    for (int i = 0; i < NUM_PLANS; i++)
        if (!strcmp(plans[i].name, name))
            return &plans[i];
    return NULL;
}

int study_plan_member(const study_plan *p, const char *label)
{
    for (int m = 0; p && label && m < p->n; m++)
        if (!strcmp(p->members[m].label, label))
            return m;
    return -1;
}

const char *study_plan_names(void)
{
    static char list[256];
    if (!list[0])
        for (int i = 0; i < NUM_PLANS; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", plans[i].name);
    return list;
}

const char *study_bn_name(tg_bn_placement bn)
{
    return (unsigned)bn < 3 ? study_bn_names[bn] : "?";
}

bool study_config_name(char *buf, size_t size, const study_config *c, int batch_size, int seed)
{
    char bn[16] = "", wd[40] = "", dropout[40] = "", bs[24] = "";
    if (c->bn != TG_BN_NONE)
        snprintf(bn, sizeof bn, "_bn-%s", study_bn_name(c->bn));
    if (c->weight_decay != 0)
        snprintf(wd, sizeof wd, "_wd%g", c->weight_decay);
    if (c->dropout != 0)
        snprintf(dropout, sizeof dropout, "_dropout%g", c->dropout);
    if (batch_size != STUDY_BASE_BATCH_SIZE)
        snprintf(bs, sizeof bs, "_bs%d", batch_size);
    int depth = tg_vgg_depth(&(tg_vgg_config){.num_stages = STUDY_NUM_STAGES, .num_blocks_per_stage = c->num_blocks_per_stage});
    int n = snprintf(buf, size, "VGG_%02d%s%s%s%s_seed%d", depth, bn, wd, dropout, bs, seed);
    return n >= 0 && (size_t)n < size;
}
