/*  rst_apiq — the analytics read routes of the JSON API (issue 5 §3).

    Routes (rst_apiq_routes, all GET, all scoped to req->owner_id; shapes in
    schemas/openapi.yaml):

        /summary   /funnel   /hourly   /daily   /utm   /by-bot   /by-pool
        /leads     /leads/:id     /payments     /payments/:id

    Ranges (range=today|yesterday|7d|30d|custom&from=&to=) are days in the
    owner's time zone (req->timezone, through rastro_timezone()); custom
    needs both dates (strict YYYY-MM-DD, from ≤ to, at most 366 days).
    `pool` and `bot` filters must be the owner's (404 otherwise, exactly as
    an id that does not exist; pool=0 means organic leads). /hourly takes
    at most RST_APIQ_HOURLY_MAX_DAYS days (a year of hours is a 1 MB answer:
    400, naming /daily); /daily has one row per day for any range.

    Speed: sums come from the rollups of schemas/sql/008_rollups.sql. A
    range is read as its canonical cover by aligned blocks of 4^L days
    (rst_apiq_cover), so a year is ~25 rows per key instead of 366. /by-bot
    and /daily by bot read per-bot cumulative sums instead
    (schemas/sql/009_api_speed.sql): a range is two rows per bot; /daily
    reads one row per day (analytics_day_owner, a pool's level-0 blocks).
    Spend comes from the spend_daily view (per pool; per campaign for
    Meta's), /daily's from its per-day sums (spend_day, 009); it is null
    where it cannot be attributed (by bot, by utm_source).

    Lists (/leads, /payments) are newest first with keyset pagination: the
    opaque cursor is the hex of "<created_at in µs since the epoch>:<id>" of
    the last item given.
*/
#ifndef RST_APIQ_H
#define RST_APIQ_H

#include "rst_api.h"

#include <stddef.h>
#include <stdint.h>

#define RST_APIQ_MAX_DAYS     366     //  longest custom range, days
#define RST_APIQ_HOURLY_MAX_DAYS 31   //  longest range of /hourly, days
#define RST_APIQ_MAX_LEVEL    4       //  largest rollup block: 4^4 = 256 days
#define RST_APIQ_MAX_BLOCKS   64      //  a cover of ≤ 366 days needs far fewer
#define RST_APIQ_LIMIT_MAX    200     //  page size bounds of /leads and /payments
#define RST_APIQ_LIMIT_DEFAULT 50
#define RST_APIQ_CURSOR_MAX   80      //  hex characters of a cursor

//  Parses a strict "YYYY-MM-DD" (exactly 10 characters, a real calendar
//  date, years 1970..9999) into *DAY_P, days since 1970-01-01. Returns 0,
//  or -1 when S is anything else.
int rst_apiq_parse_date (const char *s, int32_t *day_p);

//  Writes DAY (days since 1970-01-01, ≥ 0) as "YYYY-MM-DD" into OUT.
void rst_apiq_format_date (int32_t day, char out[11]);

//  The canonical cover of the days [FROM, TO] (FROM ≤ TO, both ≥ 0) by
//  aligned blocks: walking from FROM, each block is the largest one of
//  4^L days (L ≤ RST_APIQ_MAX_LEVEL) that starts at a multiple of 4^L and
//  ends by TO. Writes each block's level and first day into LVL[i], START[i]
//  (in day order). Returns the number of blocks, or 0 when more than MAX
//  would be needed or FROM > TO.
size_t rst_apiq_cover (int32_t from, int32_t to, int16_t *lvl, int32_t *start, size_t max);

//  Writes the cursor of an item (created_at in µs since the epoch ≥ 0, id ≥ 1)
//  into OUT (≥ RST_APIQ_CURSOR_MAX + 1 bytes).
void rst_apiq_cursor_encode (int64_t created_us, int64_t id, char *out);

//  Decodes a cursor made by rst_apiq_cursor_encode into *CREATED_US_P and
//  *ID_P. Returns 0, or -1 when S is not such a cursor.
int rst_apiq_cursor_decode (const char *s, int64_t *created_us_p, int64_t *id_p);

#endif
