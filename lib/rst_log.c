/*  rst_log — see rst_log.h. Formats into a stack buffer and emits it with a
    single write(2), so lines from several threads never interleave.
*/
#include "rst_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define RST_LOG_LINE_MAX 4096

static int s_level = -1;    //  set once; a benign race between threads writes the same value

static int
s_level_from_env (void)
{
    const char *env = getenv ("RASTRO_LOG_LEVEL");
    if (!env)
        return RST_LOG_INFO;
    if (!strcasecmp (env, "debug"))
        return RST_LOG_DEBUG;
    if (!strcasecmp (env, "warn"))
        return RST_LOG_WARN;
    if (!strcasecmp (env, "error"))
        return RST_LOG_ERROR;
    return RST_LOG_INFO;
}

void
rst_log_set_level (rst_log_level_t level)
{
    s_level = (int) level;
}

void
rst_logv (rst_log_level_t level, const char *cls, const char *fmt, va_list ap)
{
    if (s_level < 0)
        s_level = s_level_from_env ();
    if ((int) level < s_level)
        return;
    static const char *names[] = {"debug", "info ", "warn ", "error"};
    char line[RST_LOG_LINE_MAX];
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    int n = snprintf (line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                      tm.tm_sec, ts.tv_nsec / 1000000, names[level], cls);
    if (n < 0)
        return;
    if ((size_t) n < sizeof line) {
        int m = vsnprintf (line + n, sizeof line - (size_t) n, fmt, ap);
        if (m > 0)
            n += m;
    }
    if ((size_t) n >= sizeof line - 1)
        n = (int) sizeof line - 2;
    line[n++] = '\n';
    ssize_t rc = write (STDERR_FILENO, line, (size_t) n);
    (void) rc;
}

void
rst_log (rst_log_level_t level, const char *cls, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    rst_logv (level, cls, fmt, ap);
    va_end (ap);
}

int
rst_log_budget (rst_log_budget_t *self, int per_s, int64_t now_ms, int *refused)
{
    *refused = 0;
    if (now_ms - self->window_ms >= 1000) {
        if (self->logged > per_s)
            *refused = self->logged - per_s;
        self->window_ms = now_ms;
        self->logged = 0;
    }
    return self->logged++ < per_s;
}
