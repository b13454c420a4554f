/*
 * progress: how a long batch job shows that it is moving. On a terminal
 * (stderr is a tty) a bar redrawn in place at most 10 times a second; not on
 * a terminal, a plain line "LABEL: done/total (pct%)" at most every 2 s and
 * at the end, so logs and CI output stay readable. Nothing goes to stdout,
 * which holds the job's result (table or --json).
 */
#ifndef REC_PROGRESS_H
#define REC_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct rec_progress {
    FILE *out;
    bool tty;
    char label[64];
    uint64_t total, done;
    int64_t last_ms, start_ms;
} rec_progress;

/* Start a job of `total` units (0 if unknown) writing to `out` (stderr). */
void rec_progress_begin(rec_progress *p, FILE *out, const char *label, uint64_t total);
/* `n` more units are done. */
void rec_progress_step(rec_progress *p, uint64_t n);
/* The final line (always printed), with the elapsed time. */
void rec_progress_end(rec_progress *p);

#endif
