/*  rst_metrics — counters, gauges and histograms in Prometheus text format.

    A registry is owned by one thread (no locks, STYLE.md §5). A node with
    several threads keeps one registry per thread with the same metric names
    in the same order, and renders them together with rst_metrics_render_many,
    which sums counters and histogram buckets and takes gauges from the first
    registry that set them (gauges that belong to one thread).

    Every node also writes its rendered metrics plus a heartbeat line to
    <data>/run/<node>-<instance>.prom about once a second (rst_heartbeat),
    which `rastro status` and later the health node read.
*/
#ifndef RST_METRICS_H
#define RST_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define RST_METRICS_MAX        64   //  metrics per registry
#define RST_METRICS_MAX_BUCKETS 24  //  buckets per histogram

typedef struct rst_metrics_t rst_metrics_t;

typedef enum { RST_METRIC_COUNTER, RST_METRIC_GAUGE, RST_METRIC_HISTOGRAM } rst_metric_kind_t;

//  Returns a new empty registry the caller owns, or NULL.
rst_metrics_t *rst_metrics_new (void);
void rst_metrics_destroy (rst_metrics_t **self_p);

//  Declares a metric; NAME may carry labels, e.g. `rastro_http_requests_total{status="302"}`
//  (metrics that share the base name share HELP/TYPE lines). BOUNDS (ascending,
//  NBOUNDS of them) are the histogram's upper bounds in the metric's unit;
//  NULL for counters and gauges. Returns the metric's index, used by the
//  updaters below. Asserts on overflow of RST_METRICS_MAX (a bug).
int rst_metrics_add (rst_metrics_t *self, rst_metric_kind_t kind, const char *name,
                     const char *help, const double *bounds, size_t nbounds);

void rst_metrics_inc (rst_metrics_t *self, int metric, double by);
void rst_metrics_set (rst_metrics_t *self, int metric, double value);
void rst_metrics_observe (rst_metrics_t *self, int metric, double value);
double rst_metrics_value (const rst_metrics_t *self, int metric);

//  Copies every declaration and value of SRC into DST (a registry from
//  rst_metrics_new). Used to publish a thread's registry to a reader.
void rst_metrics_copy (rst_metrics_t *dst, const rst_metrics_t *src);

//  Renders COUNT registries (same declarations) as Prometheus text. Returns
//  a new NUL-terminated string the caller frees, or NULL.
char *rst_metrics_render_many (rst_metrics_t *const *registries, size_t count);
char *rst_metrics_render (const rst_metrics_t *self);

//  Writes TEXT plus `rastro_heartbeat_timestamp_seconds` and
//  `rastro_node_pid` lines to <data_dir>/run/<node>-<instance>.prom atomically
//  (temp file + rename). Returns 0 or -1.
int rst_heartbeat_write (const char *data_dir, const char *node, int instance, const char *text);

//  Renders SELF and writes it with rst_heartbeat_write as the heartbeat of
//  NODE INSTANCE. A failure is only logged (debug, class NODE): the
//  supervisor sees a heartbeat that is late.
void rst_metrics_heartbeat (const rst_metrics_t *self, const char *data_dir, const char *node,
                            int instance);

#endif
