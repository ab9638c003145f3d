/*  cmd_dlq — `rastro dlq list|show|replay|purge`: the dead-letter store.

    The senders write one dead_letters row per event Meta refused for good
    (schemas/sql/002_meta_pipeline.sql), with Meta's error, fbtrace_id and
    the exact event object. This command lets a person look at them and,
    once the cause is fixed (a new token, a fixed pixel), send them again:
    `replay` sets replay_requested_at, whose trigger NOTIFYs rastro_dlq; the
    sender that owns the pixel takes the rows back into its spool with their
    original event_ids and sets replayed_at. `purge` deletes rows for good.
    Rows already replayed are hidden from `list` (and not replayed twice).
    No token is ever stored in or shown from this table.
*/
#include "commands.h"
#include "rst_db.h"
#include "rst_dlq.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_LIST_LIMIT_DEFAULT 100
#define S_COL_MAX 48            //  widest column printed by list

static const char *s_usage =
    "usage: rastro dlq <subcommand> ...\n\n"
    "Dead letters: events Meta refused for good (invalid token, invalid parameter,\n"
    "too old, permissions ...), with Meta's error, fbtrace_id and the event sent.\n\n"
    "subcommands:\n"
    "  rastro dlq list [--pixel ID] [--owner EMAIL] [--limit N]\n"
    "        the dead letters not yet replayed, newest first (default limit 100)\n"
    "  rastro dlq show <id>\n"
    "        one dead letter in full, its event included\n"
    "  rastro dlq replay <id> | --all [--pixel ID]\n"
    "        send again once the cause is fixed (same event_ids; the sender that\n"
    "        owns the pixel takes them back within a second)\n"
    "  rastro dlq purge <id> | --all [--older-than DAYS]\n"
    "        delete for good\n";

typedef struct {
    const char *pixel, *owner, *limit, *older, *id;
    int all;
} s_args_t;

//  Parses ARGV[1..] allowing the options in ALLOWED ("p" pixel, "o" owner,
//  "l" limit, "d" older-than, "a" --all, "i" one positional id). Returns 0
//  or the exit status after printing why.
static int
s_parse (const char *sub, int argc, char **argv, const char *allowed, s_args_t *a)
{
    memset (a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int m = 0;
        if (strchr (allowed, 'p') && (m = cmd_opt (argc, argv, &i, "--pixel", &a->pixel, 0)))
            ;
        else if (strchr (allowed, 'o') && (m = cmd_opt (argc, argv, &i, "--owner", &a->owner, 0)))
            ;
        else if (strchr (allowed, 'l') && (m = cmd_opt (argc, argv, &i, "--limit", &a->limit, 0)))
            ;
        else if (strchr (allowed, 'd')
                 && (m = cmd_opt (argc, argv, &i, "--older-than", &a->older, 0)))
            ;
        else if (strchr (allowed, 'a') && !strcmp (arg, "--all"))
            a->all = m = 1;
        if (m < 0)
            return CMD_USAGE;
        if (m > 0)
            continue;
        if (arg[0] == '-')
            return cmd_fail (CMD_USAGE, "dlq %s: unknown option %s (see rastro dlq --help)", sub,
                             arg);
        if (!strchr (allowed, 'i') || a->id)
            return cmd_fail (CMD_USAGE, "dlq %s: unexpected argument '%s' (see rastro dlq --help)",
                             sub, arg);
        a->id = arg;
    }
    if (a->pixel && !cmd_is_number (a->pixel, 32))
        return cmd_fail (CMD_USAGE, "--pixel '%s' is not a pixel id (digits)", a->pixel);
    if (a->limit && (!cmd_is_number (a->limit, 6) || !atoi (a->limit)))
        return cmd_fail (CMD_USAGE, "--limit '%s' must be a number from 1 to 999999", a->limit);
    if (a->older && !cmd_is_number (a->older, 5))
        return cmd_fail (CMD_USAGE, "--older-than '%s' must be a number of days", a->older);
    if (a->id && !cmd_is_number (a->id, 18))
        return cmd_fail (CMD_USAGE, "'%s' is not a dead letter id (the ID column of `rastro dlq "
                         "list`)", a->id);
    if (strchr (allowed, 'i')) {
        if (strchr (allowed, 'a') && a->id && a->all)
            return cmd_fail (CMD_USAGE, "dlq %s takes an id or --all, not both", sub);
        if (!a->id && !a->all)
            return cmd_fail (CMD_USAGE, "dlq %s needs an id%s (see rastro dlq --help)", sub,
                             strchr (allowed, 'a') ? " or --all" : "");
        if (a->id && (a->pixel || a->older))
            return cmd_fail (CMD_USAGE, "dlq %s: --pixel and --older-than go with --all", sub);
    }
    return 0;
}

//  Runs SQL; prints PostgreSQL's message and returns NULL on failure.
static PGresult *
s_exec (PGconn *conn, const char *sql, int n, const char *const *params)
{
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn, sql, n, params, NULL, NULL, NULL, err, sizeof err);
    if (!res)
        cmd_fail (CMD_FAIL, "%s", err);
    return res;
}

//  A cell of `dlq list`, cut at S_COL_MAX characters (CTX is the result).
static const char *
s_cell (void *ctx, int r, int c)
{
    static char cut[S_COL_MAX * 4 + 1];     //  UTF-8: up to 4 bytes a character
    PGresult *res = ctx;
    if (r < 0)
        return PQfname (res, c);
    const char *v = PQgetvalue (res, r, c);
    if (cmd_chars (v) <= S_COL_MAX)
        return v;
    size_t n = 0, chars = 0;
    for (; v[n]; n++)
        if (((unsigned char) v[n] & 0xC0) != 0x80 && chars++ == S_COL_MAX)
            break;
    snprintf (cut, sizeof cut, "%.*s", (int) n, v);
    return cut;
}

static int
s_list (int argc, char **argv, const rst_config_t *cfg)
{
    s_args_t a;
    int rc = s_parse ("list", argc, argv, "pol", &a);
    if (rc)
        return rc;
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    char owner_lower[CMD_EMAIL_MAX + 1] = "";
    if (a.owner) {
        cmd_email_lower (a.owner, owner_lower);
        const char *p[] = {owner_lower};
        PGresult *u = s_exec (conn, "SELECT 1 FROM users WHERE email = $1", 1, p);
        if (!u) {
            PQfinish (conn);
            return CMD_FAIL;
        }
        int found = PQntuples (u) == 1;
        PQclear (u);
        if (!found) {
            PQfinish (conn);
            return cmd_fail (CMD_FAIL, "no user %s (rastro user list shows them)", owner_lower);
        }
    }
    const char *params[] = {a.pixel, a.owner ? owner_lower : NULL,
                            a.limit ? a.limit : "100"};
    PGresult *res = s_exec (
        conn,
        "SELECT d.id AS \"ID\", d.pixel_id AS \"PIXEL\", coalesce(u.email, '?') AS \"OWNER\","
        " d.event_id AS \"EVENT_ID\", coalesce(d.event_name, '-') AS \"EVENT\","
        " d.reason AS \"REASON\","
        " coalesce(d.error_code::text || coalesce('/' || d.error_subcode, ''), '-') AS \"CODE\","
        " coalesce(d.fbtrace_id, '-') AS \"FBTRACE_ID\","
        " to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS \"CREATED (UTC)\","
        " CASE WHEN d.replay_requested_at IS NOT NULL THEN 'requested' ELSE '-' END AS \"REPLAY\""
        " FROM dead_letters d LEFT JOIN users u ON u.id = d.owner_id"
        " WHERE d.replayed_at IS NULL AND ($1::text IS NULL OR d.pixel_id = $1)"
        " AND ($2::text IS NULL OR u.email = $2)"
        " ORDER BY d.id DESC LIMIT $3::int",
        3, params);
    if (!res) {
        PQfinish (conn);
        return CMD_FAIL;
    }
    if (PQntuples (res) == 0)
        fprintf (stderr, "no dead letters%s\n", a.pixel || a.owner ? " matching" : "");
    else
        cmd_print_rows (PQntuples (res), PQnfields (res), s_cell, res, "");
    PQclear (res);
    PQfinish (conn);
    return CMD_OK;
}

static int
s_show (int argc, char **argv, const rst_config_t *cfg)
{
    s_args_t a;
    int rc = s_parse ("show", argc, argv, "i", &a);
    if (rc)
        return rc;
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    const char *params[] = {a.id};
    PGresult *res = s_exec (
        conn,
        "SELECT d.id, d.pixel_id, coalesce(u.email, '?'), d.event_id, coalesce(d.event_name, '-'),"
        " coalesce(to_char(d.event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), '-'),"
        " d.reason, coalesce(d.http_status::text, '-'), coalesce(d.error_code::text, '-'),"
        " coalesce(d.error_subcode::text, '-'), coalesce(d.error_message, '-'),"
        " coalesce(d.fbtrace_id, '-'), coalesce(d.source, '-'),"
        " to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
        " coalesce(to_char(d.replay_requested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), '-'),"
        " coalesce(to_char(d.replayed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), '-'),"
        " jsonb_pretty(d.payload::jsonb)"
        " FROM dead_letters d LEFT JOIN users u ON u.id = d.owner_id WHERE d.id = $1::bigint",
        1, params);
    if (!res) {
        PQfinish (conn);
        return CMD_FAIL;
    }
    if (PQntuples (res) == 0) {
        PQclear (res);
        PQfinish (conn);
        return cmd_fail (CMD_FAIL, "no dead letter %s (rastro dlq list shows them)", a.id);
    }
    static const char *labels[] = {"id", "pixel", "owner", "event_id", "event", "event_time (UTC)",
                                   "reason", "http_status", "error_code", "error_subcode",
                                   "error_message", "fbtrace_id", "source", "created (UTC)",
                                   "replay requested", "replayed"};
    for (int c = 0; c < 16; c++)
        printf ("%-18s %s\n", labels[c], PQgetvalue (res, 0, c));
    printf ("payload:\n%s\n", PQgetvalue (res, 0, 16));
    PQclear (res);
    PQfinish (conn);
    return CMD_OK;
}

//  Runs the DELETE SQL with PARAMS (two) on a new connection and puts the
//  number of rows it touched in *N. Returns 0, or -1 (reported).
static int
s_change (const rst_config_t *cfg, const char *sql, const char *const *params, long *n)
{
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return -1;
    PGresult *res = s_exec (conn, sql, 2, params);
    if (res)
        *n = atol (PQcmdTuples (res));
    PQclear (res);
    PQfinish (conn);
    return res ? 0 : -1;
}

static int
s_replay (int argc, char **argv, const rst_config_t *cfg)
{
    s_args_t a;
    int rc = s_parse ("replay", argc, argv, "iap", &a);
    if (rc)
        return rc;
    //  rst_dlq_replay reads id 0 as "any id": id 0 exists nowhere.
    long long id = a.id ? atoll (a.id) : 0;
    long n = 0;
    if (!a.id || id > 0) {
        PGconn *conn = cmd_open_db (cfg);
        if (!conn)
            return CMD_FAIL;
        char err[CMD_ERR_MAX];
        //  The same statement as the API's POST /dlq/{id}/replay (rst_dlq.c).
        rc = rst_dlq_replay (conn, 0, id, a.pixel, &n, err, sizeof err);
        PQfinish (conn);
        if (rc)
            return cmd_fail (CMD_FAIL, "%s", err);
    }
    if (a.id && n == 0)
        return cmd_fail (CMD_FAIL, "no dead letter %s waiting (already replayed, or unknown: "
                         "rastro "
                         "dlq list shows them)", a.id);
    printf ("%ld dead letter%s queued for replay (the sender of each pixel takes them back)\n",
            n, n == 1 ? "" : "s");
    return CMD_OK;
}

static int
s_purge (int argc, char **argv, const rst_config_t *cfg)
{
    s_args_t a;
    int rc = s_parse ("purge", argc, argv, "iad", &a);
    if (rc)
        return rc;
    const char *params[] = {a.id, a.older};
    long n = 0;
    if (s_change (cfg,
                  "DELETE FROM dead_letters WHERE ($1::bigint IS NULL OR id = $1::bigint)"
                  " AND ($2::int IS NULL OR created_at < now() - make_interval(days => $2::int))",
                  params, &n))
        return CMD_FAIL;
    if (a.id && n == 0)
        return cmd_fail (CMD_FAIL, "no dead letter %s (rastro dlq list shows them)", a.id);
    printf ("%ld dead letter%s purged\n", n, n == 1 ? "" : "s");
    return CMD_OK;
}

int
cmd_dlq (int argc, char **argv, const rst_config_t *cfg)
{
    if (argc < 2 || cmd_is_help (argv[1])) {
        fputs (s_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CMD_USAGE : CMD_OK;
    }
    for (int i = 2; i < argc; i++)
        if (cmd_is_help (argv[i])) {
            fputs (s_usage, stdout);
            return CMD_OK;
        }
    const char *sub = argv[1];
    if (!strcmp (sub, "list"))
        return s_list (argc - 1, argv + 1, cfg);
    if (!strcmp (sub, "show"))
        return s_show (argc - 1, argv + 1, cfg);
    if (!strcmp (sub, "replay"))
        return s_replay (argc - 1, argv + 1, cfg);
    if (!strcmp (sub, "purge"))
        return s_purge (argc - 1, argv + 1, cfg);
    return cmd_fail (CMD_USAGE, "dlq: unknown subcommand '%s' (list, show, replay, purge)", sub);
}
