/*  rst_log — one log voice for every node and the `rastro` command.

    Every line goes to stderr as
        2026-11-29T03:20:00.123Z info  journal: committed 12 events
    so that the supervisor (which prefixes the node name) and a person
    reading a terminal see the same thing. The class name comes first
    (STYLE.md §14). Never pass a secret to these functions: tokens, keys and
    passwords are never logged, not even in part.
*/
#ifndef RST_LOG_H
#define RST_LOG_H

#include <stdarg.h>
#include <stdint.h>

typedef enum { RST_LOG_DEBUG = 0, RST_LOG_INFO, RST_LOG_WARN, RST_LOG_ERROR } rst_log_level_t;

//  Writes one line at LEVEL for class CLS. Thread-safe (one write(2) per line).
void rst_log (rst_log_level_t level, const char *cls, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
void rst_logv (rst_log_level_t level, const char *cls, const char *fmt, va_list ap);

//  Lines below LEVEL are dropped. Default INFO; RASTRO_LOG_LEVEL=debug|info|warn|error
//  sets it at the first call.
void rst_log_set_level (rst_log_level_t level);

//  A budget of log lines per second for messages that outside input can
//  trigger at any rate (e.g. "dropped a malformed event"). Zero-initialise
//  it; one per thread.
typedef struct {
    int64_t window_ms;      //  start of the current one-second window
    int logged;             //  lines asked for in it
} rst_log_budget_t;

//  Returns 1 when one more line fits in the budget of PER_S lines a second
//  at NOW_MS (monotonic), else 0. When a new second starts after lines were
//  refused, their number is written to *REFUSED (else 0), for one summary line.
int rst_log_budget (rst_log_budget_t *self, int per_s, int64_t now_ms, int *refused);

#define rst_debug(cls, ...) rst_log (RST_LOG_DEBUG, cls, __VA_ARGS__)
#define rst_info(cls, ...)  rst_log (RST_LOG_INFO, cls, __VA_ARGS__)
#define rst_warn(cls, ...)  rst_log (RST_LOG_WARN, cls, __VA_ARGS__)
#define rst_error(cls, ...) rst_log (RST_LOG_ERROR, cls, __VA_ARGS__)

#endif
