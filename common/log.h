/*
 * log: one-line, timestamped log records on stderr for every service.
 *
 *   2026-11-25T10:00:00.123Z inv-consumer INFO applied 1000 events
 *
 * The service name and level are process-wide, set once by main through
 * sf_log_init() before any thread starts (the one deliberate global besides
 * the shutdown flag: a logger handle threaded through every call would buy
 * nothing). Each record is formatted in full and written with one fprintf, so
 * records from different threads never interleave. Control characters in a
 * message (newlines from input data included) are replaced by spaces: one
 * record, one line.
 */
#ifndef SF_LOG_H
#define SF_LOG_H

#include <stdbool.h>

typedef enum sf_log_level { SF_LOG_DEBUG = 0, SF_LOG_INFO, SF_LOG_WARN, SF_LOG_ERROR } sf_log_level;

#define SF_LOG_SERVICE_MAX 64
#define SF_LOG_MSG_MAX 2048 /* longer messages are cut */

/* Name the service (copied, cut at SF_LOG_SERVICE_MAX bytes) and set the
 * lowest level written; makes stderr line-buffered. */
void sf_log_init(const char *service, sf_log_level level);

/* Write one record if level >= the level set by sf_log_init (INFO before). */
void sf_log(sf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "debug", "info", "warn"/"warning", "error" (any case) -> level; false if
 * the name is none of these. */
bool sf_log_level_parse(const char *name, sf_log_level *out);

/* "DEBUG", "INFO", "WARN", "ERROR". */
const char *sf_log_level_name(sf_log_level level);

#endif
