/*  rst_aggstore — the aggregator's statements (schemas/sql/005_analytics.sql).

    Counting: rst_aggstore_count counts a batch of event ids (rst_aggbatch)
    into analytics_hourly exactly once, in ONE statement (so one
    transaction): it looks each id up in the durable record (clicks,
    funnel_events; a chat event's UTMs are its lead's click's), computes
    the day and hour in the owner's time zone with AT TIME ZONE, inserts the
    ids into analytics_counted ON CONFLICT DO NOTHING RETURNING event_id,
    and adds only the returned (new) ones to the hourly rows with INSERT ...
    ON CONFLICT (key) DO UPDATE SET x = x + EXCLUDED.x. A replayed id, a
    batch counted again after a crash, or the stream and the catch-up
    counting the same event: all add nothing the second time.

    Catch-up: a pass walks the durable record by stored_at, from the
    watermark minus the window (everything on the first start) to now minus
    the grace period, and returns the events not yet in analytics_counted
    (an anti-join), a chunk at a time, classified by user agent
    (rst_traffic_ua_reason; the per-IP rate is only known from the stream).
    The caller counts each chunk with rst_aggstore_count, then ends the
    pass, which moves the watermark.

    Purge: analytics_counted rows older than the retention.

    All functions take a connection the caller owns and report failures as
    RST_AGGSTORE_RETRY (the server, the connection, a lock conflict: try
    again later) or RST_AGGSTORE_REFUSED (PostgreSQL refused the data:
    trying again will not help), with PostgreSQL's message in ERR.
*/
#ifndef RST_AGGSTORE_H
#define RST_AGGSTORE_H

#include "rst_aggbatch.h"

#include <libpq-fe.h>
#include <stddef.h>

#define RST_AGGSTORE_OK      0
#define RST_AGGSTORE_RETRY   (-1)
#define RST_AGGSTORE_REFUSED (-2)

#define RST_AGGSTORE_VIA_STREAM  "stream"
#define RST_AGGSTORE_VIA_CATCHUP "catchup"
#define RST_AGGSTORE_TIME_MAX    64     //  bytes of a timestamp kept as text

//  What one rst_aggstore_count did with the ids of a batch.
typedef struct {
    long input;         //  distinct ids in the batch
    long unmatched;     //  not in the durable record (left to a later catch-up)
    long too_old;       //  older than the retention: not counted
    long duplicates;    //  counted before (replays, or the other path was first)
    long counted;       //  counted now
    long hours;         //  hourly rows inserted or updated
} rst_aggstore_tally_t;

//  One catch-up pass, filled by rst_aggstore_pass_begin. Plain data.
typedef struct {
    char from[RST_AGGSTORE_TIME_MAX];   //  stored_at lower bound ("-infinity" on a first start)
    char until[RST_AGGSTORE_TIME_MAX];  //  stored_at upper bound (excluded): start - grace
    char cursor[RST_AGGSTORE_TIME_MAX]; //  stored_at of the last row returned, or FROM
    int table;                          //  0 clicks, 1 funnel_events, 2 done
    int first;                          //  1: there was no watermark (first start)
} rst_aggstore_pass_t;

//  Counts the batch IDS / FLAGS (the literals of rst_aggbatch_params) with
//  VIA (RST_AGGSTORE_VIA_STREAM or _CATCHUP) recorded for new ids; events
//  older than RETENTION_DAYS are left out. Fills *TALLY. Returns
//  RST_AGGSTORE_OK, _RETRY or _REFUSED (reason in ERR); on failure
//  nothing was counted (the transaction rolled back).
int rst_aggstore_count (PGconn *pg, const char *ids, const char *flags, const char *via,
                        int retention_days, rst_aggstore_tally_t *tally, char *err,
                        size_t errlen);

//  Starts a catch-up pass: reads the watermark and the clock of PostgreSQL
//  into *PASS (FROM = watermark - WINDOW_S, or -infinity without one;
//  UNTIL = now - GRACE_S). Returns RST_AGGSTORE_OK or a failure.
int rst_aggstore_pass_begin (PGconn *pg, int window_s, int grace_s, rst_aggstore_pass_t *pass,
                             char *err, size_t errlen);

//  Fills BATCH (cleared first) with the next chunk of the pass: up to its
//  capacity of events stored in [cursor, until) that are not counted and
//  not older than RETENTION_DAYS, clicks first, then chat events; a click
//  is automated when rst_traffic_ua_reason says so. Advances the cursor.
//  Returns RST_AGGSTORE_OK (an empty batch and PASS->table == 2 once the
//  pass is over) or a failure.
int rst_aggstore_pass_next (PGconn *pg, rst_aggstore_pass_t *pass, rst_aggbatch_t *batch,
                            int retention_days, char *err, size_t errlen);

//  Ends a pass whose every chunk was counted: the watermark becomes
//  PASS->until (never moved back). Returns RST_AGGSTORE_OK or a failure.
int rst_aggstore_pass_end (PGconn *pg, const rst_aggstore_pass_t *pass, char *err,
                           size_t errlen);

//  Deletes up to MAX_ROWS counted ids whose day is more than RETENTION_DAYS
//  + 2 days ago; *DELETED gets how many. Returns RST_AGGSTORE_OK or a
//  failure.
int rst_aggstore_purge (PGconn *pg, int retention_days, long max_rows, long *deleted, char *err,
                        size_t errlen);

#endif
