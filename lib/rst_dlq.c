/*  rst_dlq — the dead-letter store's shared statements (see rst_dlq.h).

    `rastro dlq replay` (nodes/rastro/cmd_dlq.c) and POST /dlq/{id}/replay
    (rst_apiadmin.c) both call rst_dlq_replay: one UPDATE, whose row
    trigger (dead_letters_replay) NOTIFYs rastro_dlq for the senders.
*/
#include "rst_dlq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int
rst_dlq_replay (PGconn *db, int64_t owner_id, int64_t id, const char *pixel, long *n,
                char *err, size_t errlen)
{
    char owner_text[24], id_text[24];
    snprintf (owner_text, sizeof owner_text, "%" PRId64, owner_id);
    snprintf (id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {owner_id > 0 ? owner_text : NULL, id > 0 ? id_text : NULL, pixel};
    PGresult *res = PQexecParams (db,
                                  "UPDATE dead_letters SET replay_requested_at = now()"
                                  " WHERE replayed_at IS NULL"
                                  " AND ($1::bigint IS NULL OR owner_id = $1::bigint)"
                                  " AND ($2::bigint IS NULL OR id = $2::bigint)"
                                  " AND ($3::text IS NULL OR pixel_id = $3)",
                                  3, NULL, params, NULL, NULL, 0);
    *n = 0;
    if (PQresultStatus (res) != PGRES_COMMAND_OK) {
        const char *msg = PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY);
        snprintf (err, errlen, "postgresql: %s", msg ? msg : "no answer (connection lost?)");
        PQclear (res);
        return -1;
    }
    *n = atol (PQcmdTuples (res));
    PQclear (res);
    return 0;
}
