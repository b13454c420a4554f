/*
 * log: record formatting. The whole record is built in a stack buffer and
 * handed to one fprintf, which holds the stream lock for the call: that, not
 * a mutex of ours, is what keeps concurrent records whole.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

static char log__service[SF_LOG_SERVICE_MAX + 1] = "stockflow";
static sf_log_level log__level = SF_LOG_INFO;

void sf_log_init(const char *service, sf_log_level level)
{
    snprintf(log__service, sizeof log__service, "%s", service ? service : "stockflow");
    log__level = level;
    setvbuf(stderr, NULL, _IOLBF, 0);
}

const char *sf_log_level_name(sf_log_level level)
{
    switch (level) {
    case SF_LOG_DEBUG: return "DEBUG";
    case SF_LOG_INFO: return "INFO";
    case SF_LOG_WARN: return "WARN";
    case SF_LOG_ERROR: return "ERROR";
    }
    return "INFO";
}

bool sf_log_level_parse(const char *name, sf_log_level *out)
{
    static const struct {
        const char *name;
        sf_log_level level;
    } names[] = {{"debug", SF_LOG_DEBUG},
                 {"info", SF_LOG_INFO},
                 {"warn", SF_LOG_WARN},
                 {"warning", SF_LOG_WARN},
                 {"error", SF_LOG_ERROR}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].level;
            return true;
        }
    }
    return false;
}

void sf_log(sf_log_level level, const char *fmt, ...)
{
    if (level < log__level)
        return;
    struct timespec ts;
    struct tm tm;
    char stamp[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);

    char msg[SF_LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (len < 0)
        snprintf(msg, sizeof msg, "(unformattable log message: %s)", fmt);
    for (char *c = msg; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
    }
    fprintf(stderr, "%s %s %s %s\n", stamp, log__service, sf_log_level_name(level), msg);
}
