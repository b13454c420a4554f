/*
 * progress: the clock is read on every step, so a step must be a batch
 * (hundreds of rows), not a row.
 */
#include "progress.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t progress__ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void progress__draw(rec_progress *p, bool final)
{
    double secs = (double)(progress__ms() - p->start_ms) / 1000.0;
    if (p->tty) {
        int width = 30, fill = p->total ? (int)(p->done * (uint64_t)width / p->total) : 0;
        if (fill > width)
            fill = width;
        char bar[32];
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(width - fill));
        bar[width] = '\0';
        fprintf(p->out, "\r%s [%s] %" PRIu64 "/%" PRIu64 " %.1fs%s", p->label, bar, p->done,
                p->total, secs, final ? "\n" : "");
    } else if (p->total) {
        fprintf(p->out, "%s: %" PRIu64 "/%" PRIu64 " (%.0f%%) %.1fs\n", p->label, p->done, p->total,
                100.0 * (double)p->done / (double)p->total, secs);
    } else {
        fprintf(p->out, "%s: %" PRIu64 " %.1fs\n", p->label, p->done, secs);
    }
    fflush(p->out);
}

void rec_progress_begin(rec_progress *p, FILE *out, const char *label, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = isatty(fileno(out)) == 1;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->start_ms = p->last_ms = progress__ms();
}

void rec_progress_step(rec_progress *p, uint64_t n)
{
    p->done += n;
    int64_t now = progress__ms();
    if (now - p->last_ms >= (p->tty ? 100 : 2000)) {
        p->last_ms = now;
        progress__draw(p, false);
    }
}

void rec_progress_end(rec_progress *p)
{
    progress__draw(p, true);
}
