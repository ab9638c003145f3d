/*  rst_dlq — the dead-letter store's shared statements (dead_letters,
    schemas/sql/002_meta_pipeline.sql), used by `rastro dlq` and by the
    dashboard's API (rst_apiadmin.c), so both replay exactly the same way.

    A replay sets replay_requested_at on rows not replayed yet; the row
    trigger NOTIFYs rastro_dlq with the pixel, and the sender that owns the
    pixel takes the rows back into its spool (same event_ids) and sets
    replayed_at. A row whose replay is requested but not done yet can be
    requested again (it is NOTIFYed again, and still replayed once).
*/
#ifndef RST_DLQ_H
#define RST_DLQ_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

//  Requests the replay of the dead letters not replayed yet that match:
//  owner OWNER_ID (0: any owner), id ID (0: any id), pixel PIXEL (NULL: any
//  pixel). One statement on DB (autocommit, or the caller's transaction).
//  Sets *N (OUT) to the number of rows queued. Returns 0, or -1 with
//  PostgreSQL's one-line reason in ERR.
int rst_dlq_replay (PGconn *db, int64_t owner_id, int64_t id, const char *pixel, long *n,
                    char *err, size_t errlen);

#endif
