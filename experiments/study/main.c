/* experiments/study/main.c — the study program: train one configuration, sweep the
 * report's tables, write the report.
 *
 *   study train [options]      one run into an experiment directory (train.c)
 *   study sweep [options]      the runs behind the report's tables (sweep.c)
 *   study report [options]     tables and figures from finished runs (report.c)
 *
 * Each subcommand has its own --help. Exit status: 0 done, 1 failure, 2 usage error. */
#include "study.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: study train|sweep|report [options]   (study COMMAND --help for its options)\n"
               "  train   trains one configuration of the VGG study into an experiment directory\n"
               "  sweep   runs the configurations behind the report's tables (resumable)\n"
               "  report  writes the report's tables and figures from finished runs\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "study: missing command (train, sweep or report; try --help)\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "train"))
        return study_train_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "sweep"))
        return study_sweep_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "report"))
        return study_report_main(argc - 1, argv + 1);
    fprintf(stderr, "study: unknown command '%s' (train, sweep or report; try --help)\n", cmd);
    return 2;
}
