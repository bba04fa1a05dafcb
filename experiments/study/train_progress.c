/* experiments/study/train_progress.c — `study train`'s progress line on a terminal: the
 * epoch's bar, its loss and accuracy so far, images a second and the time left. */
#include "train.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

void study_fmt_duration(char *buf, size_t size, double s)
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


void study_progress_draw(const epoch_progress *p, double t)
{
    double el = t - p->t0;
    double rate = el > 0 ? (double)p->images / el : 0;
    double left_epoch = p->done > 0 ? el / (double)p->done * (double)(p->batches - p->done) : NAN;
    double per_epoch = p->avg_epoch_s > 0 ? p->avg_epoch_s : (p->done > 0 ? el / (double)p->done * (double)p->batches : NAN);
    char eta[32];
    study_fmt_duration(eta, sizeof eta, left_epoch + per_epoch * (p->epochs - p->epoch - 1));
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

