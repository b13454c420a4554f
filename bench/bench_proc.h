/*
 * bench_proc: CPU accounting for the benchmark helpers (Linux /proc).
 *
 * A rate alone cannot say where the time went on 2 shared cores, so each
 * timed phase also reports the CPU seconds it cost: the helper itself
 * (getrusage, every thread), each watched server process tree (nats-server,
 * the postmaster with its backends) and the machine as a whole, whose rest
 * is "other": other tenants and the kernel. That makes a slow run readable:
 * a phase that used 2 of 2 cores was CPU-bound, one that left cores idle
 * waited on something (fsync, a lock, the network).
 *
 * Header-only on purpose: the Makefile builds every C file of bench/ into its own
 * binary, so a shared bench module cannot be a .c file there.
 */
#ifndef SF_BENCH_PROC_H
#define SF_BENCH_PROC_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define BENCH_WATCH_MAX 4

typedef struct bench_watch {
    char name[32];
    pid_t pid; /* the root of the tree: its own time, its reaped children's, live children's */
} bench_watch;

/* A snapshot of every counter at one instant. */
typedef struct bench_cpu {
    double wall;                  /* CLOCK_MONOTONIC seconds */
    double self;                  /* this process, user + system */
    double tree[BENCH_WATCH_MAX]; /* per watched tree */
    double machine_busy;          /* all CPUs, non-idle seconds */
} bench_cpu;

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime (and, with children, cutime + cstime) of pid in ticks;
 * *ppid gets its parent. -1 if it is gone. */
static inline long long bench__stat_ticks(pid_t pid, int children, pid_t *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    /* fields after ") ": 3 state, 4 ppid, ... 14 utime 15 stime 16 cutime 17 cstime */
    long long v[18] = {0};
    int field = 3;
    for (char *tok = strtok(p + 2, " "); tok && field <= 17; tok = strtok(NULL, " "), field++)
        v[field] = strtoll(tok, NULL, 10);
    if (ppid)
        *ppid = (pid_t)v[4];
    return v[14] + v[15] + (children ? v[16] + v[17] : 0);
}

/* CPU seconds of pid, its reaped children and its live children. */
static inline double bench_tree_cpu(pid_t pid)
{
    double hz = (double)sysconf(_SC_CLK_TCK);
    long long t = bench__stat_ticks(pid, 1, NULL);
    if (t < 0)
        return 0;
    DIR *d = opendir("/proc");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char *end;
            long child = strtol(e->d_name, &end, 10);
            if (*end || child <= 0 || child == pid)
                continue;
            pid_t parent = 0;
            long long c = bench__stat_ticks((pid_t)child, 0, &parent);
            if (c > 0 && parent == pid)
                t += c;
        }
        closedir(d);
    }
    return (double)t / hz;
}

static inline double bench_machine_busy(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    unsigned long long u = 0, ni = 0, sy = 0, id = 0, io = 0, irq = 0, sirq = 0, st = 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &u, &ni, &sy, &id, &io, &irq,
                   &sirq, &st);
    fclose(f);
    if (n < 4)
        return 0;
    return (double)(u + ni + sy + irq + sirq + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Wall time is read first, so a phase that ends with a snapshot does not
 * count the /proc scan; take the start time after the opening snapshot. */
static inline void bench_cpu_snap(const bench_watch *w, int nw, bench_cpu *out)
{
    out->wall = bench_now();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    out->self = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    for (int i = 0; i < nw; i++)
        out->tree[i] = bench_tree_cpu(w[i].pid);
    out->machine_busy = bench_machine_busy();
}

/* "cpu PHASE: wall W s; self S, name T, ..., other O core-s; B of C cores busy"
 * and the same figures as key=value pairs appended to kv (for RESULT). */
static inline void bench_cpu_report(const char *prog, const char *phase, const bench_watch *w,
                                    int nw, const bench_cpu *a, const bench_cpu *b, char *kv,
                                    size_t kv_size)
{
    double wall = b->wall - a->wall, self = b->self - a->self;
    double busy = b->machine_busy - a->machine_busy, ours = self;
    char line[512];
    int off =
        snprintf(line, sizeof line, "%s: cpu %s: wall %.2f s; self %.2f", prog, phase, wall, self);
    size_t kvl = strlen(kv);
    kvl += (size_t)snprintf(kv + kvl, kv_size - kvl, " %s_cpu_self=%.3f", phase, self);
    for (int i = 0; i < nw && off > 0 && (size_t)off < sizeof line && kvl < kv_size; i++) {
        double t = b->tree[i] - a->tree[i];
        ours += t;
        off += snprintf(line + off, sizeof line - (size_t)off, ", %s %.2f", w[i].name, t);
        kvl += (size_t)snprintf(kv + kvl, kv_size - kvl, " %s_cpu_%s=%.3f", phase, w[i].name, t);
    }
    double other = busy - ours > 0 ? busy - ours : 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (off > 0 && (size_t)off < sizeof line)
        snprintf(line + off, sizeof line - (size_t)off,
                 ", other %.2f core-s; %.2f of %ld cores busy", other, wall > 0 ? busy / wall : 0,
                 ncpu);
    if (kvl < kv_size)
        snprintf(kv + kvl, kv_size - kvl, " %s_cpu_other=%.3f", phase, other);
    printf("%s\n", line);
}

/* Parse "NAME=PID" into w; 0 on a malformed value. */
static inline int bench_watch_parse(const char *s, bench_watch *w)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s || (size_t)(eq - s) >= sizeof w->name)
        return 0;
    char *end;
    long pid = strtol(eq + 1, &end, 10);
    if (*end || pid <= 0)
        return 0;
    memcpy(w->name, s, (size_t)(eq - s));
    w->name[eq - s] = '\0';
    w->pid = (pid_t)pid;
    return 1;
}

#endif
