/*  rst_metrics — see rst_metrics.h.

    A registry is a fixed array of metrics; updating one is an array write,
    cheap enough for the front's request path. Rendering walks the
    declarations once and sums the registries of every thread.
*/
#include "rst_metrics.h"
#include "rst_log.h"

#include <assert.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RST_METRIC_NAME_MAX 160
#define RST_METRIC_HELP_MAX 160

typedef struct {
    rst_metric_kind_t kind;
    char name[RST_METRIC_NAME_MAX];     //  base name plus optional {labels}
    char help[RST_METRIC_HELP_MAX];
    size_t nbounds;                     //  histogram: number of finite buckets
    double bounds[RST_METRICS_MAX_BUCKETS];
    uint64_t buckets[RST_METRICS_MAX_BUCKETS + 1];  //  per bucket (not cumulative); last = +Inf
    double value;                       //  counter/gauge value; histogram: sum
    uint64_t count;                     //  histogram: observations
    int is_set;                         //  gauge: set at least once in this registry
} s_metric_t;

struct rst_metrics_t {
    size_t count;
    s_metric_t metrics[RST_METRICS_MAX];
};

rst_metrics_t *
rst_metrics_new (void)
{
    return calloc (1, sizeof (rst_metrics_t));
}

void
rst_metrics_destroy (rst_metrics_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

int
rst_metrics_add (rst_metrics_t *self, rst_metric_kind_t kind, const char *name, const char *help,
                 const double *bounds, size_t nbounds)
{
    assert (self);
    assert (self->count < RST_METRICS_MAX);
    assert (nbounds <= RST_METRICS_MAX_BUCKETS);
    assert (kind != RST_METRIC_HISTOGRAM || (bounds && nbounds > 0));
    s_metric_t *m = &self->metrics[self->count];
    memset (m, 0, sizeof *m);
    m->kind = kind;
    snprintf (m->name, sizeof m->name, "%s", name);
    snprintf (m->help, sizeof m->help, "%s", help);
    m->nbounds = nbounds;
    if (nbounds)
        memcpy (m->bounds, bounds, nbounds * sizeof (double));
    return (int) self->count++;
}

void
rst_metrics_inc (rst_metrics_t *self, int metric, double by)
{
    assert (metric >= 0 && (size_t) metric < self->count);
    self->metrics[metric].value += by;
}

void
rst_metrics_set (rst_metrics_t *self, int metric, double value)
{
    assert (metric >= 0 && (size_t) metric < self->count);
    self->metrics[metric].value = value;
    self->metrics[metric].is_set = 1;
}

void
rst_metrics_observe (rst_metrics_t *self, int metric, double value)
{
    assert (metric >= 0 && (size_t) metric < self->count);
    s_metric_t *m = &self->metrics[metric];
    assert (m->kind == RST_METRIC_HISTOGRAM);
    size_t b = 0;
    while (b < m->nbounds && value > m->bounds[b])
        b++;
    m->buckets[b]++;
    m->count++;
    m->value += value;
}

double
rst_metrics_value (const rst_metrics_t *self, int metric)
{
    assert (metric >= 0 && (size_t) metric < self->count);
    return self->metrics[metric].value;
}

void
rst_metrics_copy (rst_metrics_t *dst, const rst_metrics_t *src)
{
    memcpy (dst, src, sizeof *dst);
}

//  A growable string for rendering.
typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} s_buf_t;

static void
s_printf (s_buf_t *buf, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_printf (s_buf_t *buf, const char *fmt, ...)
{
    if (buf->failed)
        return;
    for (;;) {
        va_list ap;
        va_start (ap, fmt);
        int n = vsnprintf (buf->data + buf->len, buf->cap - buf->len, fmt, ap);
        va_end (ap);
        if (n < 0) {
            buf->failed = 1;
            return;
        }
        if ((size_t) n < buf->cap - buf->len) {
            buf->len += (size_t) n;
            return;
        }
        size_t cap = buf->cap * 2 + (size_t) n + 1;
        char *data = realloc (buf->data, cap);
        if (!data) {
            buf->failed = 1;
            return;
        }
        buf->data = data;
        buf->cap = cap;
    }
}

//  Splits NAME into its base (into BASE) and its label part without braces
//  (into LABELS, "" when none).
static void
s_split_name (const char *name, char *base, size_t baselen, char *labels, size_t labelslen)
{
    const char *brace = strchr (name, '{');
    size_t n = brace ? (size_t) (brace - name) : strlen (name);
    snprintf (base, baselen, "%.*s", (int) n, name);
    if (brace) {
        size_t l = strlen (brace + 1);
        if (l && brace[l] == '}')
            l--;
        snprintf (labels, labelslen, "%.*s", (int) l, brace + 1);
    }
    else
        labels[0] = 0;
}

static void
s_fmt_double (char *out, size_t outlen, double v)
{
    if (v == (double) (int64_t) v && v < 1e15 && v > -1e15)
        snprintf (out, outlen, "%lld", (long long) v);
    else
        snprintf (out, outlen, "%.9g", v);
}

char *
rst_metrics_render_many (rst_metrics_t *const *registries, size_t count)
{
    assert (count > 0);
    const rst_metrics_t *first = registries[0];
    s_buf_t buf = {malloc (4096), 0, 4096, 0};
    if (!buf.data)
        return NULL;
    buf.data[0] = 0;
    char last_base[RST_METRIC_NAME_MAX] = "";
    for (size_t i = 0; i < first->count; i++) {
        const s_metric_t *m = &first->metrics[i];
        char base[RST_METRIC_NAME_MAX], labels[RST_METRIC_NAME_MAX], num[64];
        s_split_name (m->name, base, sizeof base, labels, sizeof labels);
        if (strcmp (base, last_base)) {
            static const char *types[] = {"counter", "gauge", "histogram"};
            s_printf (&buf, "# HELP %s %s\n# TYPE %s %s\n", base, m->help, base, types[m->kind]);
            snprintf (last_base, sizeof last_base, "%s", base);
        }
        if (m->kind == RST_METRIC_HISTOGRAM) {
            uint64_t cumulative = 0, total = 0;
            double sum = 0;
            for (size_t b = 0; b <= m->nbounds; b++) {
                for (size_t r = 0; r < count; r++)
                    cumulative += registries[r]->metrics[i].buckets[b];
                if (b < m->nbounds)
                    s_fmt_double (num, sizeof num, m->bounds[b]);
                else
                    snprintf (num, sizeof num, "+Inf");
                s_printf (&buf, "%s_bucket{%s%sle=\"%s\"} %llu\n", base, labels,
                          labels[0] ? "," : "", num, (unsigned long long) cumulative);
            }
            for (size_t r = 0; r < count; r++) {
                total += registries[r]->metrics[i].count;
                sum += registries[r]->metrics[i].value;
            }
            s_fmt_double (num, sizeof num, sum);
            s_printf (&buf, "%s_sum%s%s%s %s\n", base, labels[0] ? "{" : "", labels,
                      labels[0] ? "}" : "", num);
            s_printf (&buf, "%s_count%s%s%s %llu\n", base, labels[0] ? "{" : "", labels,
                      labels[0] ? "}" : "", (unsigned long long) total);
            continue;
        }
        double value = 0;
        if (m->kind == RST_METRIC_COUNTER)
            for (size_t r = 0; r < count; r++)
                value += registries[r]->metrics[i].value;
        else
            for (size_t r = 0; r < count; r++)
                if (registries[r]->metrics[i].is_set) {
                    value = registries[r]->metrics[i].value;
                    break;
                }
        s_fmt_double (num, sizeof num, value);
        s_printf (&buf, "%s %s\n", m->name, num);
    }
    if (buf.failed) {
        free (buf.data);
        return NULL;
    }
    return buf.data;
}

char *
rst_metrics_render (const rst_metrics_t *self)
{
    rst_metrics_t *const list[1] = {(rst_metrics_t *) self};
    return rst_metrics_render_many (list, 1);
}

int
rst_heartbeat_write (const char *data_dir, const char *node, int instance, const char *text)
{
    char dir[4096], path[4200], tmp[4300];
    snprintf (dir, sizeof dir, "%s/run", data_dir);
    if (mkdir (dir, 0755) && errno != EEXIST)
        return -1;
    snprintf (path, sizeof path, "%s/%s-%d.prom", dir, node, instance);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen (tmp, "w");
    if (!f)
        return -1;
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    fprintf (f, "%s", text ? text : "");
    fprintf (f, "# HELP rastro_heartbeat_timestamp_seconds Last heartbeat of this node.\n"
                "# TYPE rastro_heartbeat_timestamp_seconds gauge\n"
                "rastro_heartbeat_timestamp_seconds %lld.%03ld\n"
                "# HELP rastro_node_pid Process id of this node.\n"
                "# TYPE rastro_node_pid gauge\nrastro_node_pid %d\n",
             (long long) ts.tv_sec, ts.tv_nsec / 1000000, (int) getpid ());
    if (fclose (f) != 0 || rename (tmp, path) != 0) {
        unlink (tmp);
        return -1;
    }
    return 0;
}

void
rst_metrics_heartbeat (const rst_metrics_t *self, const char *data_dir, const char *node,
                       int instance)
{
    char *text = rst_metrics_render (self);
    if (rst_heartbeat_write (data_dir, node, instance, text ? text : ""))
        rst_debug (node, "cannot write the heartbeat file under %s/run", data_dir);
    free (text);
}
