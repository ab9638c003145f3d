/*  rst_recorder — stores journaled clicks in PostgreSQL and acknowledges them.

    Role: the consumer of ARCHITECTURE.md's "Clicks reach PostgreSQL". The
    front journals every click before its 302, pushes it here and deletes
    the journal entry once we acknowledge it; what we never acknowledge, it
    replays. So the one rule of this file is: ack an event only after the
    transaction that stored it committed.

    Sockets:
      in     PULL, bound (topology [recorder] in). Each message holds one or
             more msgpack events back to back (schemas/events.md).
      acks   one PUSH per journal, connected (topology [recorder] acks,
             references such as `front.acks`; rst_acks routes an event by
             its src "<node>.<i>"), {"v":1,"stage":1,"seqs":[...]},
             ZMQ_DONTWAIT; a failed send is counted and forgotten (the
             entry is replayed and stored again as a no-op).

    Loop and states:

        IDLE --event--> FILLING --batch_max events, or batch_ms since the
          ^                         first one, or SIGTERM--> WRITING
          |                                                     |
          +---- COMMIT ok: ack every stored event, free batch --+
                                                                |
        WRITING --connection lost, or any other error--> RETRYING (reconnect,
          ^          backoff 100 ms doubling to 5 s; the batch is kept,
          |          nothing is read from `in` meanwhile, so the fronts'
          |          journals absorb the backlog; logged once per episode)
          +----------------------------------------------------+

        WRITING --data error (SQLSTATE class 22 or 23: PostgreSQL refused
          a row's data)--> ROW BY ROW: each event alone; a row that still
          fails is logged, counted (rejected) and dropped WITHOUT ack, so it
          stays in the journal for a person to look at.

    Insert: one `INSERT INTO clicks ... SELECT ... FROM unnest (arrays) ON
    CONFLICT DO NOTHING` per batch (a prepared statement, one text-format
    array parameter per column). A single statement is its own
    transaction (autocommit): when PQexecPrepared returns
    PGRES_COMMAND_OK the rows are committed (synchronous_commit as the
    server says). The conflict target is left out on purpose: both unique
    keys (click_id, event_id) then mean "already stored", never an error
    that would block a batch forever. Rows affected vs. rows sent gives the
    duplicates (replays) count. Multi-row INSERT was chosen over COPY into a
    temporary table: one round trip instead of four, no temp-table churn,
    and it measured at tens of thousands of rows per second here (see the
    integration test's log), far above what one front produces.

    Chat events (start, checkout, payment; schemas/events.md) go to
    funnel_events instead, with a second unnest INSERT ... ON CONFLICT
    (event_id) DO NOTHING written after the clicks' statement (so a click
    and its lead's start in one batch reach PostgreSQL click first, and
    the enricher finds the click's fbc). Each statement is its own
    transaction: an event is acked and forwarded only after its own
    statement committed; a failure of the second keeps only the chat
    events for the retry. They have the same row-by-row fallback.

    Column mapping (also in schemas/events.md): clicked_at = time_ms as
    timestamptz (exact to the millisecond); user_agent = ua; source = src;
    utm_source, utm_medium, utm_campaign, utm_content, utm_term = the value of
    the utm entry with exactly that key (the first one if repeated, NULL if
    absent); utm = every utm entry as a JSON object {key: value} (first
    occurrence of a key wins; '{}' when there is none). Text that is not
    valid UTF-8, or holds NUL bytes (PostgreSQL refuses both), is stored with
    each bad byte replaced by U+FFFD rather than refused: the click was
    accepted, so it is kept.

    Shutdown: on SIGTERM/SIGINT the loop drains what is already queued on
    `in` (without waiting), writes the batch if PostgreSQL answers, acks,
    and returns. Whatever was not written is replayed by the journals.
*/
#include "rst_recorder.h"
#include "rst_acks.h"
#include "rst_clock.h"
#include "rst_db.h"
#include "rst_event.h"
#include "rst_log.h"
#include "rst_metrics.h"
#include "rst_zsock.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_CLS               "recorder"
#define S_IN_HWM            10000       //  messages (each holds many events)
#define S_OUT_LINGER_MS     1000        //  bounded: never hang in zmq_ctx_term
#define S_DRAIN_MAX         64          //  messages read per poll wake-up
#define S_HEARTBEAT_MS      1000
#define S_BACKOFF_MIN_MS    100
#define S_BACKOFF_MAX_MS    5000
#define S_BAD_LOGS_PER_S    10          //  decode failures logged per second at most
#define S_PARAMS_PER_ROW    21
#define S_INT_TEXT          24          //  room for an int64 as text
#define S_UTM_COLUMNS       5
#define S_CHAT_PARAMS       16          //  funnel_events columns we fill
#define S_PARAMS_MAX        S_PARAMS_PER_ROW    //  the wider of the two

//  The batch INSERT: one array parameter per column, so PostgreSQL parses
//  and plans a 21-parameter statement whatever the batch size (a VALUES list
//  of 500 rows has 10,500 parameters, and planning it cost PostgreSQL more
//  than the insert itself: bench/RESULTS.md, "Pipeline end to end"). The
//  arrays are unnested side by side in a select list, which streams the
//  rows (unnest in FROM first copies every row into a tuplestore).
static const char *s_insert_unnest =
    "INSERT INTO clicks (click_id, event_id, owner_id, pool_id, bot_id, pixel_id, clicked_at, "
    "ip, user_agent, url, referer, fbclid, fbc, fbp, utm_source, utm_medium, utm_campaign, "
    "utm_content, utm_term, utm, source) "
    "SELECT c0, c1, c2, c3, c4, c5, timestamptz 'epoch' + c6 * interval '1 millisecond', "
    "c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20 "
    "FROM (SELECT unnest ($1::text[]) c0, unnest ($2::text[]) c1, unnest ($3::bigint[]) c2, "
    "unnest ($4::bigint[]) c3, unnest ($5::bigint[]) c4, unnest ($6::text[]) c5, "
    "unnest ($7::bigint[]) c6, unnest ($8::text[]) c7, unnest ($9::text[]) c8, "
    "unnest ($10::text[]) c9, unnest ($11::text[]) c10, unnest ($12::text[]) c11, "
    "unnest ($13::text[]) c12, unnest ($14::text[]) c13, unnest ($15::text[]) c14, "
    "unnest ($16::text[]) c15, unnest ($17::text[]) c16, unnest ($18::text[]) c17, "
    "unnest ($19::text[]) c18, unnest ($20::jsonb[]) c19, unnest ($21::text[]) c20) u "
    "ON CONFLICT DO NOTHING";

//  The chat events' batch INSERT (funnel_events), same shape as the clicks'.
static const char *s_insert_chat =
    "INSERT INTO funnel_events (event_id, type, owner_id, pool_id, bot_id, pixel_id, click_id, "
    "lead_id, tg_user_id, offer_id, offer_name, value_cents, currency, order_id, happened_at, "
    "source) "
    "SELECT c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, "
    "timestamptz 'epoch' + c14 * interval '1 millisecond', c15 "
    "FROM (SELECT unnest ($1::text[]) c0, unnest ($2::text[]) c1, unnest ($3::bigint[]) c2, "
    "unnest ($4::bigint[]) c3, unnest ($5::bigint[]) c4, unnest ($6::text[]) c5, "
    "unnest ($7::text[]) c6, unnest ($8::bigint[]) c7, unnest ($9::bigint[]) c8, "
    "unnest ($10::text[]) c9, unnest ($11::text[]) c10, unnest ($12::bigint[]) c11, "
    "unnest ($13::text[]) c12, unnest ($14::text[]) c13, unnest ($15::bigint[]) c14, "
    "unnest ($16::text[]) c15) u "
    "ON CONFLICT (event_id) DO NOTHING";

static const char *s_utm_columns[S_UTM_COLUMNS] = {"utm_source", "utm_medium", "utm_campaign",
                                                   "utm_content", "utm_term"};

static const double s_latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,   0.25,   0.5,   1,    2.5,   5};

typedef enum {
    S_PG_OK,                //  committed
    S_PG_RETRY,             //  connection lost or transient: keep the batch, retry later
    S_PG_DATA,              //  the statement was refused for its data
} s_pg_result_t;

struct rst_recorder_t {
    const rst_config_t *cfg;        //  borrowed
    const rst_topology_t *topo;     //  borrowed
    int instance;
    void *zmq_ctx;                  //  owned
    void *in;                       //  PULL, bound
    rst_acks_t *acks;               //  PUSH per journal (topology `acks`)
    void *out;                      //  PUSH to the next stage (topology `out`), or NULL
    msgpack_sbuffer outbuf;         //  scratch: one packed forward message
    char in_endpoint[1024];         //  raw topology value, for the config print
    size_t batch_max;
    int batch_ms;

    PGconn *pg;                     //  NULL while disconnected
    int pg_down;                    //  inside a failure episode (logged once)
    int64_t pg_down_since_ms;
    int pg_attempts;                //  failed attempts in this episode
    int backoff_ms;

    rst_event_t **batch;            //  batch_max slots: the clicks; events owned
    size_t count;
    rst_event_t **chat;             //  batch_max slots: the chat events; owned
    size_t nchat;
    int64_t deadline_ms;            //  batch_ms after the first event of the batch

    char *text;                     //  scratch: parameter text of one batch
    size_t text_cap;
    const char **values;            //  scratch: S_PARAMS_PER_ROW * batch_max params
    char *arrays;                   //  scratch: the 21 array literals of one batch
    size_t arrays_cap;
    char *chat_text;                //  scratch: parameter text of the chat events
    size_t chat_text_cap;
    const char **chat_values;       //  scratch: S_CHAT_PARAMS * batch_max params

    rst_metrics_t *metrics;         //  owned by the loop's thread
    int m_delay;        //  click born → row committed
    int m_received, m_bad, m_inserted, m_dups, m_rejected, m_latency, m_pg_errors, m_acks,
        m_ack_fail, m_pending, m_pg_up, m_forwarded, m_forward_fail;
    int64_t next_heartbeat_ms;
    rst_log_budget_t bad_logs;      //  rate limit of decode-failure logs
};

//  Records how long EV took from its birth to its row being committed.
static void
s_observe_delay (rst_recorder_t *self, const rst_event_t *ev)
{
    double delay = (double) (rst_clock_wall_ms () - ev->time_ms) / 1000.0;
    rst_metrics_observe (self->metrics, self->m_delay, delay > 0 ? delay : 0);
}

//  --------------------------------------------------------------------------
//  Metrics and heartbeat

static void
s_metrics_declare (rst_recorder_t *self)
{
    rst_metrics_t *m = self->metrics;
    self->m_received = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_recorder_events_total",
                                        "Events received and decoded.", NULL, 0);
    self->m_bad = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_recorder_decode_failures_total",
                                   "Malformed events dropped (counted, logged).", NULL, 0);
    self->m_inserted = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_recorder_clicks_inserted_total",
                                        "Clicks newly stored in PostgreSQL.", NULL, 0);
    self->m_dups = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_recorder_duplicates_total",
                                    "Clicks already stored (replays), skipped and acked.", NULL, 0);
    self->m_rejected = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_recorder_rejected_total",
                                        "Clicks PostgreSQL refused; left unacked in the journal.",
                                        NULL, 0);
    self->m_latency = rst_metrics_add (m, RST_METRIC_HISTOGRAM,
                                       "rastro_recorder_insert_seconds",
                                       "Duration of one batch INSERT (commit included).",
                                       s_latency_bounds,
                                       sizeof s_latency_bounds / sizeof s_latency_bounds[0]);
    self->m_delay = rst_metrics_add (m, RST_METRIC_HISTOGRAM, "rastro_click_store_delay_seconds",
                                     "Time from a click's 302 to its row committed in PostgreSQL "
                                     "(wall clocks of front and recorder).",
                                     s_latency_bounds,
                                     sizeof s_latency_bounds / sizeof s_latency_bounds[0]);
    self->m_forwarded = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_recorder_forwarded_total",
                                         "Stored events handed to the next stage (topology `out`).",
                                         NULL, 0);
    self->m_forward_fail = rst_metrics_add (m, RST_METRIC_COUNTER,
                                            "rastro_recorder_forward_failures_total",
                                            "Stored events the next stage did not take (absent or "
                                            "full); the journal replays them.", NULL, 0);
    self->m_pg_errors = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_recorder_pg_errors_total",
                                         "Failed PostgreSQL connects and statements.", NULL, 0);
    self->m_acks = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_recorder_acks_sent_total",
                                    "Sequence numbers acknowledged to the journals.", NULL, 0);
    self->m_ack_fail = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_recorder_ack_failures_total",
                                        "Sequence numbers whose ack could not be sent "
                                        "(the journal replays them).", NULL, 0);
    self->m_pending = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_recorder_batch_events",
                                       "Events in the batch being filled or written.", NULL, 0);
    self->m_pg_up = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_recorder_postgres_up",
                                     "1 when the last PostgreSQL operation succeeded.", NULL, 0);
}

//  Writes the heartbeat file when it is due.
static void
s_heartbeat (rst_recorder_t *self, int force)
{
    int64_t now = rst_clock_mono_ms ();
    if (!force && now < self->next_heartbeat_ms)
        return;
    self->next_heartbeat_ms = now + S_HEARTBEAT_MS;
    rst_metrics_set (self->metrics, self->m_pending, (double) (self->count + self->nchat));
    rst_metrics_set (self->metrics, self->m_pg_up, self->pg && !self->pg_down ? 1 : 0);
    rst_metrics_heartbeat (self->metrics, self->cfg->data_dir, S_CLS, self->instance);
}

//  --------------------------------------------------------------------------
//  Construction

rst_recorder_t *
rst_recorder_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance, char *err,
                  size_t errlen)
{
    assert (cfg);
    assert (topo);
    rst_recorder_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "recorder: out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->topo = topo;
    self->instance = instance;
    msgpack_sbuffer_init (&self->outbuf);
    self->backoff_ms = S_BACKOFF_MIN_MS;

    long bmax = rst_topology_get_long (topo, S_CLS, instance, "batch_max",
                                       RST_RECORDER_BATCH_MAX_DEFAULT);
    long bms = rst_topology_get_long (topo, S_CLS, instance, "batch_ms",
                                      RST_RECORDER_BATCH_MS_DEFAULT);
    if (bmax < 1 || bmax > RST_RECORDER_BATCH_MAX_LIMIT) {
        snprintf (err, errlen, "topology: [recorder] batch_max must be 1..%d, not %ld",
                  RST_RECORDER_BATCH_MAX_LIMIT, bmax);
        goto fail;
    }
    if (bms < 0 || bms > 60000) {
        snprintf (err, errlen, "topology: [recorder] batch_ms must be 0..60000, not %ld", bms);
        goto fail;
    }
    self->batch_max = (size_t) bmax;
    self->batch_ms = (int) bms;
    if (rst_topology_get (topo, S_CLS, instance, "in", self->in_endpoint,
                          sizeof self->in_endpoint))
        snprintf (self->in_endpoint, sizeof self->in_endpoint, "(none)");

    self->batch = calloc (self->batch_max, sizeof *self->batch);
    self->values = calloc (self->batch_max * S_PARAMS_PER_ROW, sizeof *self->values);
    self->chat = calloc (self->batch_max, sizeof *self->chat);
    self->chat_values = calloc (self->batch_max * S_CHAT_PARAMS, sizeof *self->chat_values);
    self->metrics = rst_metrics_new ();
    if (!self->batch || !self->values || !self->chat || !self->chat_values || !self->metrics) {
        snprintf (err, errlen, "recorder: out of memory");
        goto fail;
    }
    s_metrics_declare (self);

    self->zmq_ctx = zmq_ctx_new ();
    if (!self->zmq_ctx) {
        snprintf (err, errlen, "recorder: libzmq: zmq_ctx_new: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    self->in = rst_zsock_new (self->zmq_ctx, ZMQ_PULL, S_IN_HWM, 0, 0);
    if (!self->in) {
        snprintf (err, errlen, "recorder: libzmq: socket: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    if (rst_topology_attach (topo, self->in, S_CLS, instance, "in", err, errlen))
        goto fail;

    self->acks = rst_acks_new (self->zmq_ctx, topo, S_CLS, instance, "acks", 0, err, errlen);
    if (!self->acks)
        goto fail;

    //  Optional next stage: without `out` the recorder only stores.
    char out_value[4096];
    if (rst_topology_get (topo, S_CLS, instance, "out", out_value, sizeof out_value) == 0) {
        self->out = rst_zsock_new (self->zmq_ctx, ZMQ_PUSH, S_IN_HWM, S_OUT_LINGER_MS,
                                   RST_ZSOCK_IMMEDIATE);
        if (!self->out || rst_topology_attach (topo, self->out, S_CLS, instance, "out", err, errlen))
            goto fail;
    }

    char why[512];
    self->pg = rst_db_connect (cfg, why, sizeof why);
    if (!self->pg) {
        rst_error (S_CLS, "%s; will retry when the first batch is written", why);
        self->pg_down = 1;
        self->pg_down_since_ms = rst_clock_mono_ms ();
        rst_metrics_inc (self->metrics, self->m_pg_errors, 1);
    }
    return self;
fail:
    rst_recorder_destroy (&self);
    return NULL;
}

void
rst_recorder_destroy (rst_recorder_t **self_p)
{
    assert (self_p);
    rst_recorder_t *self = *self_p;
    if (!self)
        return;
    if (self->count + self->nchat)
        rst_warn (S_CLS, "%zu events not stored at exit; their journals will replay them",
                  self->count + self->nchat);
    for (size_t i = 0; i < self->count; i++)
        rst_event_destroy (&self->batch[i]);
    for (size_t i = 0; i < self->nchat; i++)
        rst_event_destroy (&self->chat[i]);
    free (self->chat);
    free (self->chat_values);
    free (self->chat_text);
    if (self->pg)
        PQfinish (self->pg);
    rst_acks_destroy (&self->acks);
    if (self->in)
        zmq_close (self->in);
    if (self->out)
        zmq_close (self->out);
    if (self->zmq_ctx)
        zmq_ctx_term (self->zmq_ctx);
    rst_metrics_destroy (&self->metrics);
    msgpack_sbuffer_destroy (&self->outbuf);
    free (self->batch);
    free (self->values);
    free (self->text);
    free (self->arrays);
    free (self);
    *self_p = NULL;
}

void
rst_recorder_print (const rst_recorder_t *self)
{
    assert (self);
    rst_info (S_CLS, "instance = %d", self->instance);
    rst_info (S_CLS, "in = %s (PULL)", self->in_endpoint);
    rst_acks_print (self->acks, "events", "");
    if (self->out) {
        char value[4096];
        rst_topology_get (self->topo, S_CLS, self->instance, "out", value, sizeof value);
        rst_info (S_CLS, "out = %s (PUSH; stored events go on there)", value);
    }
    else
        rst_info (S_CLS, "out = (none: events are only stored)");
    rst_info (S_CLS, "batch_max = %zu", self->batch_max);
    rst_info (S_CLS, "batch_ms = %d", self->batch_ms);
}

//  --------------------------------------------------------------------------
//  Text for PostgreSQL

//  Copies SRC[0..LEN) to DST as valid UTF-8 without NUL bytes: every byte
//  that does not start a well-formed sequence (overlong forms, surrogates
//  and code points above U+10FFFF included) becomes U+FFFD. DST needs
//  3 * LEN + 1 bytes. Returns the length written (DST is NUL-terminated).
static size_t
s_clean_utf8 (const char *src, size_t len, char *dst)
{
    const unsigned char *s = (const unsigned char *) src;
    size_t i = 0, o = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c >= 0x01 && c < 0x80) {
            dst[o++] = (char) c;
            i++;
            continue;
        }
        size_t n = 0;
        uint32_t cp = 0, min = 0;
        if ((c & 0xe0) == 0xc0)
            n = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            n = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            n = 4, cp = c & 0x07, min = 0x10000;
        int ok = n > 0 && n <= len - i;
        for (size_t k = 1; ok && k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                ok = 0;
            else
                cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (ok && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)))
            ok = 0;
        if (ok) {
            memcpy (dst + o, s + i, n);
            o += n;
            i += n;
        }
        else {
            dst[o++] = (char) 0xef;
            dst[o++] = (char) 0xbf;
            dst[o++] = (char) 0xbd;
            i++;
        }
    }
    dst[o] = 0;
    return o;
}

//  Appends S (valid UTF-8, no NUL) as a JSON string to DST. DST needs
//  6 * strlen(S) + 2 bytes. Returns the length written.
static size_t
s_json_string (const char *s, char *dst)
{
    size_t o = 0;
    dst[o++] = '"';
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char) *p;
        }
        else if (*p < 0x20)
            o += (size_t) sprintf (dst + o, "\\u%04x", *p);
        else
            dst[o++] = (char) *p;
    }
    dst[o++] = '"';
    return o;
}

//  Upper bound of the parameter text of one event.
static size_t
s_text_size (const rst_event_t *ev)
{
    const rst_str_t *strs[] = {&ev->click_id, &ev->event_id, &ev->pixel_id, &ev->ip,
                               &ev->user_agent, &ev->url, &ev->referer, &ev->fbclid,
                               &ev->fbc, &ev->fbp, &ev->src};
    size_t size = 4 * S_INT_TEXT + 4;       //  ints, braces of the JSON
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        size += 3 * strs[i]->len + 1;
    for (size_t i = 0; i < ev->utm_count; i++) {
        size_t k = ev->utm[i].key.len, v = ev->utm[i].value.len;
        //  cleaned copy for a column (3x), the escaped JSON (6 * 3x) and
        //  the cleaning scratch just after it (3x)
        size += 3 * v + 1 + 21 * (k + v) + 16;
    }
    return size;
}

//  Fills the S_PARAMS_PER_ROW parameters of EV into VALUES, their text at
//  *AT (advanced). Absent optional fields are SQL NULL.
static void
s_params (const rst_event_t *ev, const char **values, char **at)
{
    char *p = *at;
#define S_TEXT(idx, str)                                                                       \
    do {                                                                                       \
        if ((str).ptr) {                                                                       \
            values[idx] = p;                                                                   \
            p += s_clean_utf8 ((str).ptr, (str).len, p) + 1;                                   \
        }                                                                                      \
        else                                                                                   \
            values[idx] = NULL;                                                                \
    } while (0)
#define S_INT(idx, v)                                                                          \
    do {                                                                                       \
        values[idx] = p;                                                                       \
        p += snprintf (p, S_INT_TEXT, "%" PRId64, (int64_t) (v)) + 1;                          \
    } while (0)
    S_TEXT (0, ev->click_id);
    S_TEXT (1, ev->event_id);
    S_INT (2, ev->owner_id);
    S_INT (3, ev->pool_id);
    S_INT (4, ev->bot_id);
    S_TEXT (5, ev->pixel_id);
    S_INT (6, ev->time_ms);
    S_TEXT (7, ev->ip);
    S_TEXT (8, ev->user_agent);
    S_TEXT (9, ev->url);
    S_TEXT (10, ev->referer);
    S_TEXT (11, ev->fbclid);
    S_TEXT (12, ev->fbc);
    S_TEXT (13, ev->fbp);
    //  utm columns: the first entry with exactly that key.
    for (int c = 0; c < S_UTM_COLUMNS; c++) {
        values[14 + c] = NULL;
        for (size_t i = 0; i < ev->utm_count; i++) {
            const rst_kv_t *kv = &ev->utm[i];
            if (kv->key.len == strlen (s_utm_columns[c])
                && !memcmp (kv->key.ptr, s_utm_columns[c], kv->key.len)) {
                S_TEXT (14 + c, kv->value);
                break;
            }
        }
    }
    //  utm jsonb: every entry, first occurrence of a key wins.
    values[19] = p;
    *p++ = '{';
    int first = 1;
    for (size_t i = 0; i < ev->utm_count; i++) {
        const rst_kv_t *kv = &ev->utm[i];
        int repeated = 0;
        for (size_t j = 0; j < i && !repeated; j++)
            repeated = ev->utm[j].key.len == kv->key.len
                       && !memcmp (ev->utm[j].key.ptr, kv->key.ptr, kv->key.len);
        if (repeated)
            continue;
        //  Clean into the space after the JSON text, then escape into place.
        char *tmp = p + 6 * 3 * (kv->key.len + kv->value.len) + 8;
        if (!first)
            *p++ = ',';
        first = 0;
        s_clean_utf8 (kv->key.ptr, kv->key.len, tmp);
        p += s_json_string (tmp, p);
        *p++ = ':';
        s_clean_utf8 (kv->value.ptr, kv->value.len, tmp);
        p += s_json_string (tmp, p);
    }
    *p++ = '}';
    *p++ = 0;
    S_TEXT (20, ev->src);
#undef S_TEXT
#undef S_INT
    *at = p;
}

//  Upper bound of the parameter text of one chat event.
static size_t
s_chat_text_size (const rst_event_t *ev)
{
    const rst_str_t *strs[] = {&ev->event_id, &ev->pixel_id, &ev->click_id, &ev->offer_id,
                               &ev->offer_name, &ev->currency, &ev->order_id, &ev->src};
    size_t size = 7 * S_INT_TEXT + 16;      //  ints, the type name, "BRL"
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        size += 3 * strs[i]->len + 1;
    return size;
}

//  Fills the S_CHAT_PARAMS parameters of the chat event EV (funnel_events
//  columns, in s_insert_chat's order) into VALUES, their text at *AT
//  (advanced). Absent optional fields are SQL NULL; an absent currency is
//  RST_EVENT_CURRENCY_DEFAULT, a present one is stored in upper case.
static void
s_chat_params (const rst_event_t *ev, const char **values, char **at)
{
    char *p = *at;
#define S_TEXT(idx, str)                                                                       \
    do {                                                                                       \
        if ((str).ptr) {                                                                       \
            values[idx] = p;                                                                   \
            p += s_clean_utf8 ((str).ptr, (str).len, p) + 1;                                   \
        }                                                                                      \
        else                                                                                   \
            values[idx] = NULL;                                                                \
    } while (0)
#define S_INT(idx, v)                                                                          \
    do {                                                                                       \
        values[idx] = p;                                                                       \
        p += snprintf (p, S_INT_TEXT, "%" PRId64, (int64_t) (v)) + 1;                          \
    } while (0)
#define S_OPT_INT(idx, v)                                                                      \
    do {                                                                                       \
        if ((v) != RST_EVENT_NONE)                                                             \
            S_INT (idx, v);                                                                    \
        else                                                                                   \
            values[idx] = NULL;                                                                \
    } while (0)
    S_TEXT (0, ev->event_id);
    S_TEXT (1, rst_str (rst_event_type_name (ev->type)));
    S_INT (2, ev->owner_id);
    S_INT (3, ev->pool_id);
    S_INT (4, ev->bot_id);
    S_TEXT (5, ev->pixel_id);
    S_TEXT (6, ev->click_id);
    S_OPT_INT (7, ev->lead_id);
    S_OPT_INT (8, ev->tg_user_id);
    S_TEXT (9, ev->offer_id);
    S_TEXT (10, ev->offer_name);
    S_OPT_INT (11, ev->value_cents);
    values[12] = p;
    rst_str_t cur = ev->currency.ptr ? ev->currency : rst_str (RST_EVENT_CURRENCY_DEFAULT);
    for (size_t i = 0; i < cur.len; i++)    //  letters only (the decoder checked)
        *p++ = (char) (cur.ptr[i] >= 'a' && cur.ptr[i] <= 'z' ? cur.ptr[i] - 32 : cur.ptr[i]);
    *p++ = 0;
    S_TEXT (13, ev->order_id);
    S_INT (14, ev->time_ms);
    S_TEXT (15, ev->src);
#undef S_TEXT
#undef S_INT
#undef S_OPT_INT
    *at = p;
}

//  --------------------------------------------------------------------------
//  PostgreSQL

//  Notes a failure: counted every time, logged once per episode.
static void
s_pg_failed (rst_recorder_t *self, const char *what, const char *why)
{
    rst_metrics_inc (self->metrics, self->m_pg_errors, 1);
    self->pg_attempts++;
    if (!self->pg_down) {
        self->pg_down = 1;
        self->pg_down_since_ms = rst_clock_mono_ms ();
        char line[512];
        snprintf (line, sizeof line, "%s", why ? why : "");
        for (char *c = line; *c; c++)
            if (*c == '\n')
                *c = ' ';
        rst_error (S_CLS, "PostgreSQL: %s: %s; keeping %zu events, retrying with backoff "
                   "(no acks until it is back)", what, line, self->count + self->nchat);
    }
}

static void
s_pg_ok (rst_recorder_t *self)
{
    if (self->pg_down)
        rst_info (S_CLS, "PostgreSQL is back after %.1f s and %d failed attempts",
                  (double) (rst_clock_mono_ms () - self->pg_down_since_ms) / 1000.0, self->pg_attempts);
    self->pg_down = 0;
    self->pg_attempts = 0;
    self->backoff_ms = S_BACKOFF_MIN_MS;
}

//  Is SQLSTATE about the data of a row (class 22 data exception, class 23
//  integrity constraint violation)? Everything else (connection, resources,
//  a missing table or permission, operator intervention, ...) is about the
//  server, not the batch: keep the batch and retry it as a whole.
static int
s_is_data_error (const char *sqlstate)
{
    return sqlstate && strlen (sqlstate) == 5
           && (!strncmp (sqlstate, "22", 2) || !strncmp (sqlstate, "23", 2));
}

//  Runs SQL with N_PARAMS parameters. On success stores the rows affected in
//  *AFFECTED. Returns S_PG_OK, S_PG_RETRY or S_PG_DATA (reason in WHY).
static s_pg_result_t
s_exec (rst_recorder_t *self, const char *sql, int n_params, const char *const *values,
        long *affected, char *why, size_t whylen)
{
    //  Prepared once per connection (named after SQL, a static string):
    //  parsing and planning per batch cost PostgreSQL a tenth of its time.
    char name[40];
    snprintf (name, sizeof name, "rst_recorder_%p", (const void *) sql);
    PGresult *res = rst_db_exec_prepared (self->pg, name, sql, n_params, NULL, values, NULL, NULL);
    s_pg_result_t result;
    if (res && PQresultStatus (res) == PGRES_COMMAND_OK) {
        *affected = atol (PQcmdTuples (res));
        result = S_PG_OK;
    }
    else {
        const char *state = res ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;
        snprintf (why, whylen, "%s%s%s", state ? state : "", state ? " " : "",
                  res ? PQresultErrorMessage (res) : PQerrorMessage (self->pg));
        if (!why[0])
            snprintf (why, whylen, "%s", PQerrorMessage (self->pg));
        if (PQstatus (self->pg) == CONNECTION_OK && res && s_is_data_error (state))
            result = S_PG_DATA;
        else
            result = S_PG_RETRY;
    }
    PQclear (res);
    return result;
}

//  --------------------------------------------------------------------------
//  Acks

//  Adds what an ack send or flush did to the metrics.
static void
s_count_acks (rst_recorder_t *self, rst_acks_tally_t tally)
{
    if (tally.sent)
        rst_metrics_inc (self->metrics, self->m_acks, (double) tally.sent);
    if (tally.failed)
        rst_metrics_inc (self->metrics, self->m_ack_fail, (double) tally.failed);
}

//  Acknowledges COUNT stored EVENTS to their journals.
static void
s_ack_events (rst_recorder_t *self, rst_event_t *const *events, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const rst_event_t *ev = events[i];
        if (rst_acks_add (self->acks, ev->src.ptr, ev->src.len, ev->seq))
            rst_warn (S_CLS, "event %s: source %.*s has no ack endpoint in the topology",
                      ev->event_id.ptr, (int) ev->src.len, ev->src.ptr);
    }
    s_count_acks (self, rst_acks_flush (self->acks, RST_ACK_STAGE_STORED));
}

//  Hands COUNT stored events to the next stage in one message, never
//  blocking. Duplicates (replays) are forwarded too: the next stages keep
//  their own idempotence, and the replay may be what fills a gap there. A
//  failed send is only counted: the journal replays what the Meta path never
//  acknowledged.
static void
s_forward (rst_recorder_t *self, rst_event_t *const *events, size_t count)
{
    if (!self->out || count == 0)
        return;
    msgpack_sbuffer_clear (&self->outbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &self->outbuf, msgpack_sbuffer_write);
    size_t packed = 0;
    for (size_t i = 0; i < count; i++)
        packed += rst_event_pack (events[i], &pk) == 0;
    if (packed && zmq_send (self->out, self->outbuf.data, self->outbuf.size, ZMQ_DONTWAIT) >= 0)
        rst_metrics_inc (self->metrics, self->m_forwarded, (double) packed);
    else
        rst_metrics_inc (self->metrics, self->m_forward_fail, (double) count);
}

//  --------------------------------------------------------------------------
//  Writing a batch

//  Sleeps MS milliseconds in short steps, keeping the heartbeat. Returns 1 if
//  STOP was raised meanwhile.
static int
s_pause (rst_recorder_t *self, int ms, volatile sig_atomic_t *stop)
{
    int64_t until = rst_clock_mono_ms () + ms;
    while (!*stop) {
        int64_t left = until - rst_clock_mono_ms ();
        if (left <= 0)
            return 0;
        struct timespec ts = {0, (left > 100 ? 100 : left) * 1000000L};
        nanosleep (&ts, NULL);
        s_heartbeat (self, 0);
    }
    return 1;
}

//  One part of a batch: the clicks (→ clicks) or the chat events
//  (→ funnel_events). Both are written the same way; this says where their
//  events, scratch buffers and statement are.
typedef struct {
    const char *what;               //  "clicks", "chat events": for the logs
    const char *sql;                //  the unnest INSERT
    size_t ncols;                   //  parameters (array columns) per row
    size_t (*text_size) (const rst_event_t *ev);
    void (*params) (const rst_event_t *ev, const char **values, char **at);
    int observe_delay;              //  feed rastro_click_store_delay_seconds
    rst_event_t **events;           //  the part's events (owned by the recorder)
    size_t *count;
    char **text;                    //  parameter text scratch
    size_t *text_cap;
    const char **values;            //  ncols * batch_max parameter slots
} s_part_t;

static s_part_t
s_clicks_part (rst_recorder_t *self)
{
    return (s_part_t) {"clicks", s_insert_unnest, S_PARAMS_PER_ROW, s_text_size, s_params, 1,
                       self->batch, &self->count, &self->text, &self->text_cap, self->values};
}

static s_part_t
s_chat_part (rst_recorder_t *self)
{
    return (s_part_t) {"chat events", s_insert_chat, S_CHAT_PARAMS, s_chat_text_size,
                       s_chat_params, 0, self->chat, &self->nchat, &self->chat_text,
                       &self->chat_text_cap, self->chat_values};
}

//  Prepares the parameter text of every event of PART. Returns 0 or -1.
static int
s_prepare (const s_part_t *part)
{
    size_t need = 1;
    for (size_t i = 0; i < *part->count; i++)
        need += part->text_size (part->events[i]);
    if (need > *part->text_cap) {
        char *grown = realloc (*part->text, need);
        if (!grown)
            return -1;
        *part->text = grown;
        *part->text_cap = need;
    }
    char *at = *part->text;
    for (size_t i = 0; i < *part->count; i++)
        part->params (part->events[i], part->values + i * part->ncols, &at);
    assert ((size_t) (at - *part->text) <= need);
    return 0;
}

//  Builds, from the per-row parameters VALUES (ROWS rows of NCOLS), one
//  PostgreSQL array literal per column ({"a","b",NULL}) into self->arrays,
//  and points COLUMNS[c] at each. Returns 0, or -1 when out of memory.
static int
s_build_arrays (rst_recorder_t *self, const char *const *values, size_t rows, size_t ncols,
                const char **columns)
{
    size_t need = ncols * 3;
    for (size_t i = 0; i < rows * ncols; i++)
        need += values[i] ? 2 * strlen (values[i]) + 3 : 5;
    if (need > self->arrays_cap) {
        char *arrays = realloc (self->arrays, need);
        if (!arrays)
            return -1;
        self->arrays = arrays;
        self->arrays_cap = need;
    }
    char *p = self->arrays;
    for (size_t c = 0; c < ncols; c++) {
        columns[c] = p;
        *p++ = '{';
        for (size_t r = 0; r < rows; r++) {
            if (r)
                *p++ = ',';
            const char *v = values[r * ncols + c];
            if (!v) {
                memcpy (p, "NULL", 4);
                p += 4;
                continue;
            }
            *p++ = '"';
            for (; *v; v++) {
                if (*v == '"' || *v == '\\')
                    *p++ = '\\';
                *p++ = *v;
            }
            *p++ = '"';
        }
        *p++ = '}';
        *p++ = 0;
    }
    assert ((size_t) (p - self->arrays) <= need);
    return 0;
}

//  Inserts the events of PART one by one after their statement was refused
//  for its data: rows PostgreSQL accepts are acked and forwarded at once (they
//  must not be inserted again on retry), rows it refuses are dropped without
//  ack (they stay in the journal). Returns S_PG_OK, or S_PG_RETRY (the rows
//  not yet tried stay in the part).
static s_pg_result_t
s_insert_rows (rst_recorder_t *self, const s_part_t *part)
{
    size_t kept = 0;
    s_pg_result_t result = S_PG_OK;
    for (size_t i = 0; i < *part->count; i++) {
        rst_event_t *ev = part->events[i];
        if (result == S_PG_RETRY) {
            part->events[kept++] = ev;      //  untried: stays for the retry
            continue;
        }
        const char *columns[S_PARAMS_MAX];
        long affected = 0;
        char why[512];
        s_pg_result_t r = S_PG_RETRY;
        if (s_build_arrays (self, part->values + i * part->ncols, 1, part->ncols, columns))
            snprintf (why, sizeof why, "out of memory");
        else
            r = s_exec (self, part->sql, (int) part->ncols, columns, &affected, why, sizeof why);
        if (r == S_PG_OK) {
            rst_metrics_inc (self->metrics, affected ? self->m_inserted : self->m_dups, 1);
            if (part->observe_delay)
                s_observe_delay (self, ev);
            s_ack_events (self, &ev, 1);
            s_forward (self, &ev, 1);
            rst_event_destroy (&ev);
        }
        else if (r == S_PG_DATA) {
            for (char *c = why; *c; c++)
                if (*c == '\n')
                    *c = ' ';
            rst_error (S_CLS, "PostgreSQL refused %s event %s from %.*s seq %" PRIu64
                       ": %s; not acked, it stays in the journal",
                       rst_event_type_name (ev->type), ev->event_id.ptr, (int) ev->src.len,
                       ev->src.ptr, ev->seq, why);
            rst_metrics_inc (self->metrics, self->m_rejected, 1);
            rst_event_destroy (&ev);
        }
        else {
            s_pg_failed (self, "insert", why);
            result = S_PG_RETRY;
            part->events[kept++] = ev;
        }
    }
    *part->count = kept;
    return result;
}

//  Writes the events of PART (one statement), acks and forwards them.
//  Returns S_PG_OK (they are gone from the batch) or S_PG_RETRY (they are
//  kept; a failure was noted).
static s_pg_result_t
s_write (rst_recorder_t *self, const s_part_t *part)
{
    size_t count = *part->count;
    const char *columns[S_PARAMS_MAX];
    if (s_prepare (part) || s_build_arrays (self, part->values, count, part->ncols, columns)) {
        rst_error (S_CLS, "out of memory building an INSERT of %zu %s", count, part->what);
        return S_PG_RETRY;
    }
    long affected = 0;
    char why[512];
    double started = (double) rst_clock_mono_ns () / 1e9;
    s_pg_result_t r = s_exec (self, part->sql, (int) part->ncols, columns, &affected, why,
                              sizeof why);
    if (r == S_PG_OK) {
        rst_metrics_observe (self->metrics, self->m_latency,
                             (double) rst_clock_mono_ns () / 1e9 - started);
        if (part->observe_delay)
            for (size_t i = 0; i < count; i++)
                s_observe_delay (self, part->events[i]);
        rst_metrics_inc (self->metrics, self->m_inserted, (double) affected);
        rst_metrics_inc (self->metrics, self->m_dups, (double) ((long) count - affected));
        s_ack_events (self, part->events, count);
        s_forward (self, part->events, count);
        for (size_t i = 0; i < count; i++)
            rst_event_destroy (&part->events[i]);
        *part->count = 0;
        return S_PG_OK;
    }
    if (r == S_PG_DATA) {
        for (char *c = why; *c; c++)
            if (*c == '\n')
                *c = ' ';
        rst_warn (S_CLS, "PostgreSQL refused a batch of %zu %s (%s); inserting them one by one",
                  count, part->what, why);
        rst_metrics_inc (self->metrics, self->m_pg_errors, 1);
        return s_insert_rows (self, part);
    }
    s_pg_failed (self, "insert", why);
    return S_PG_RETRY;
}

//  Writes the batch: clicks first, then chat events; each part is acked
//  once its statement committed. Retries until it worked or STOP. Returns
//  0 when the batch is empty afterwards, -1 when STOP interrupted the
//  retries (what is left is kept, unacknowledged).
static int
s_flush (rst_recorder_t *self, volatile sig_atomic_t *stop)
{
    while (self->count > 0 || self->nchat > 0) {
        if (!self->pg) {
            char why[512];
            self->pg = rst_db_connect (self->cfg, why, sizeof why);
            if (!self->pg) {
                s_pg_failed (self, "connect", why);
                goto backoff;
            }
        }
        s_part_t clicks = s_clicks_part (self), chats = s_chat_part (self);
        if (self->count > 0 && s_write (self, &clicks) != S_PG_OK)
            goto failed;
        if (self->nchat > 0 && s_write (self, &chats) != S_PG_OK)
            goto failed;
        s_pg_ok (self);
        return 0;
    failed:
        if (PQstatus (self->pg) != CONNECTION_OK) {
            PQfinish (self->pg);
            self->pg = NULL;
        }
    backoff:
        if (s_pause (self, self->backoff_ms, stop))
            return -1;
        self->backoff_ms = self->backoff_ms * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS
                                                                   : self->backoff_ms * 2;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Receiving

//  Logs a decode failure, at most S_BAD_LOGS_PER_S a second.
static void
s_bad_event (rst_recorder_t *self, const char *why)
{
    rst_metrics_inc (self->metrics, self->m_bad, 1);
    int refused;
    int log = rst_log_budget (&self->bad_logs, S_BAD_LOGS_PER_S, rst_clock_mono_ms (), &refused);
    if (refused)
        rst_warn (S_CLS, "%d more malformed events were dropped without a log line", refused);
    if (log)
        rst_warn (S_CLS, "dropped a malformed event: %s", why);
}

//  Decodes every event of one message into the batch, writing the batch
//  whenever it is full. Returns 0, or -1 if STOP interrupted a write (the
//  rest of the message is dropped; it is replayed by the journal).
static int
s_take_message (rst_recorder_t *self, const char *data, size_t len,
                volatile sig_atomic_t *stop)
{
    size_t offset = 0;
    while (offset < len) {
        char why[256];
        rst_event_t *ev = rst_event_decode (data, len, &offset, why, sizeof why);
        if (!ev) {
            s_bad_event (self, why);
            continue;
        }
        rst_metrics_inc (self->metrics, self->m_received, 1);
        if (self->count + self->nchat == 0)
            self->deadline_ms = rst_clock_mono_ms () + self->batch_ms;
        if (rst_event_is_chat (ev->type))
            self->chat[self->nchat++] = ev;
        else
            self->batch[self->count++] = ev;
        if (self->count + self->nchat == self->batch_max && s_flush (self, stop))
            return -1;
    }
    return 0;
}

//  Reads up to MAX messages without waiting. Returns the number read, or -1
//  on a stop during a write or a libzmq failure (reason logged).
static int
s_drain (rst_recorder_t *self, int max, volatile sig_atomic_t *stop)
{
    int n = 0;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    while (n < max) {
        if (zmq_msg_recv (&msg, self->in, ZMQ_DONTWAIT) < 0) {
            if (zmq_errno () != EAGAIN && zmq_errno () != EINTR) {
                rst_error (S_CLS, "libzmq: receive: %s", zmq_strerror (zmq_errno ()));
                n = -1;
            }
            break;
        }
        n++;
        if (s_take_message (self, zmq_msg_data (&msg), zmq_msg_size (&msg), stop)) {
            n = -1;
            break;
        }
    }
    zmq_msg_close (&msg);
    return n;
}

int
rst_recorder_run (rst_recorder_t *self, volatile sig_atomic_t *stop)
{
    assert (self);
    assert (stop);
    rst_info (S_CLS, "recording clicks%s", self->pg ? "" : " (PostgreSQL not reachable yet)");
    s_heartbeat (self, 1);
    int rc = 0;
    while (!*stop) {
        int64_t now = rst_clock_mono_ms ();
        int64_t wake = self->next_heartbeat_ms;
        if (self->count + self->nchat && self->deadline_ms < wake)
            wake = self->deadline_ms;
        long timeout = wake > now ? (long) (wake - now) : 0;
        zmq_pollitem_t item = {self->in, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll (&item, 1, timeout);
        if (n < 0) {
            if (zmq_errno () == EINTR)
                continue;
            rst_error (S_CLS, "libzmq: poll: %s", zmq_strerror (zmq_errno ()));
            rc = -1;
            break;
        }
        if (n > 0 && (item.revents & ZMQ_POLLIN) && s_drain (self, S_DRAIN_MAX, stop) < 0
            && *stop)
            break;
        if (self->count + self->nchat && rst_clock_mono_ms () >= self->deadline_ms)
            s_flush (self, stop);
        s_heartbeat (self, 0);
    }
    //  Stopping: take what is already queued and write it, one attempt (STOP
    //  is raised, so a failed write does not wait for a retry).
    if (*stop) {
        rst_info (S_CLS, "stopping: writing the current batch (%zu events)",
                  self->count + self->nchat);
        s_drain (self, S_DRAIN_MAX, stop);
        s_flush (self, stop);
    }
    s_heartbeat (self, 1);
    return rc;
}
