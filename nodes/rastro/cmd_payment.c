/*  cmd_payment — `rastro payment list|redeliver` and `rastro lead list`.

    The bots node records each Telegram user who starts a bot as a lead
    (table leads, 004_bots.sql: who, through which click and UTMs) and each
    PIX charge as a payment (table payments: the charge, its status, and
    the delivery of what was bought). These commands show them to a person:

      payment list       the charges, newest first, with their delivery;
                         a paid charge whose access could not be delivered
                         after RST_FUNNEL_DELIVERY_TRIES attempts shows as
                         delivery 'failed' with the reason: this is where
                         delivery failures are visible
      payment redeliver  puts such a charge back into the bots node's
                         delivery sweep (delivery 'pending', attempts 0),
                         once the cause is fixed (the bot made admin of the
                         group again, ...); it refuses anything else
      lead list          the leads, newest first: organic, or the click
                         (and UTMs) that brought them

    Like every admin command, all arguments are checked before anything is
    touched (bad usage: one line, exit 2, nothing changed). --owner and
    --bot narrow the lists (the bot must be the owner's); --json prints
    every field as a JSON array. Free text from Telegram or the gateway
    (names, errors) has its control characters replaced by spaces in the
    tables, so one row stays one line.
*/
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_LIMIT_DEFAULT "50"        //  rows a list prints without --limit
#define S_LIMIT_MAX     100000
#define S_ID_DIGITS     18          //  a payment id fits in a bigint
#define S_SINCE_HOURS   87600       //  --since 87600h: ten years
#define S_SINCE_DAYS    3650
#define S_ERROR_CUT     60          //  characters of delivery_error in the table
#define S_STR_(x)       #x
#define S_STR(x)        S_STR_ (x)  //  a number as an SQL literal

//  SQL: TEXT with its control characters (line breaks, tabs) as spaces.
#define S_ONE_LINE(text) "regexp_replace(" text ", '[[:cntrl:]]+', ' ', 'g')"
//  SQL: a timestamptz as "YYYY-MM-DD HH:MM" in UTC (tables) or ISO 8601 (JSON).
#define S_UTC(ts)  "to_char(" ts " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
#define S_ISO(ts)  "to_char(" ts " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

//  ---------------------------------------------------------------------------
//  Options of the lists

//  The options of `payment list` and `lead list`, as typed (NULL: not given).
typedef struct {
    const char *bot;            //  --bot, without '@' once checked
    const char *owner;          //  --owner EMAIL
    const char *limit;          //  --limit N (S_LIMIT_DEFAULT)
    const char *status;         //  --status (payment list)
    const char *delivery;       //  --delivery (payment list)
    const char *since;          //  --since as typed (payment list)
    char since_interval[32];    //  --since 24h / 7d as an SQL interval ("" if not)
    char since_date[11];        //  --since YYYY-MM-DD ("" if not)
    int json;                   //  --json
} s_filter_t;

//  1 if WORD is one of the NULL-terminated WORDS.
static int
s_is_one_of (const char *word, const char *const *words)
{
    for (; *words; words++)
        if (!strcmp (word, *words))
            return 1;
    return 0;
}

//  1 if Y-M-D is a day of the calendar.
static int
s_is_date (int y, int m, int d)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m - 1] + (m == 2 && leap);
}

//  Parses --since into F: "<N>h", "<N>d" or "YYYY-MM-DD" (midnight UTC).
//  Returns CMD_OK or CMD_USAGE after printing why.
static int
s_parse_since (s_filter_t *f)
{
    const char *s = f->since;
    size_t len = strlen (s), digits = strspn (s, "0123456789");
    if (digits >= 1 && digits <= 5 && len == digits + 1 && (s[digits] == 'h' || s[digits] == 'd')) {
        long n = strtol (s, NULL, 10);
        int hours = s[digits] == 'h';
        if (n < 1 || n > (hours ? S_SINCE_HOURS : S_SINCE_DAYS))
            return cmd_fail (CMD_USAGE, "--since '%s': from 1h to %dh, or from 1d to %dd", s,
                             S_SINCE_HOURS, S_SINCE_DAYS);
        snprintf (f->since_interval, sizeof f->since_interval, "%ld %s", n,
                  hours ? "hours" : "days");
        return CMD_OK;
    }
    int y, m, d;
    if (len == 10 && strspn (s, "0123456789") == 4 && s[4] == '-' && s[7] == '-'
        && strspn (s + 5, "0123456789") == 2 && strspn (s + 8, "0123456789") == 2
        && sscanf (s, "%4d-%2d-%2d", &y, &m, &d) == 3 && y >= 1970 && s_is_date (y, m, d)) {
        snprintf (f->since_date, sizeof f->since_date, "%s", s);
        return CMD_OK;
    }
    return cmd_fail (CMD_USAGE, "--since '%s': use hours (24h), days (7d) or a date (2026-01-31, "
                     "from midnight UTC)", s);
}

//  Parses the options of `GROUP list` (the payment-only ones when PAYMENT)
//  into *F. Returns CMD_OK, or CMD_USAGE after printing why.
static int
s_parse_filter (const char *group, int payment, int argc, char **argv, s_filter_t *f)
{
    static const char *const statuses[] = {"pending", "paid", "expired", "failed", "refunded",
                                           "creating", NULL};
    static const char *const deliveries[] = {"pending", "sent", "failed", NULL};
    memset (f, 0, sizeof *f);
    cmd_optdef_t opts[8] = {CMD_OPT ("--bot", &f->bot),
                            CMD_OPT ("--owner", &f->owner),
                            CMD_OPT ("--limit", &f->limit),
                            CMD_FLAG ("--json", &f->json)};    //  the rest: {NULL}s, the end
    if (payment) {
        opts[4] = (cmd_optdef_t) CMD_OPT ("--status", &f->status);
        opts[5] = (cmd_optdef_t) CMD_OPT ("--delivery", &f->delivery);
        opts[6] = (cmd_optdef_t) CMD_OPT ("--since", &f->since);
    }
    int rc = cmd_parse (argc, argv, opts, NULL, 0, 0,
                        "%s list takes no positional argument (see --help)", group);
    if (rc)
        return rc;
    if (cmd_check_bot (&f->bot) || cmd_check_owner (f->owner))
        return CMD_USAGE;
    if (!f->limit)
        f->limit = S_LIMIT_DEFAULT;
    else if (!cmd_is_number (f->limit, 6) || atol (f->limit) < 1 || atol (f->limit) > S_LIMIT_MAX)
        return cmd_fail (CMD_USAGE, "--limit '%s' must be a number from 1 to %d", f->limit,
                         S_LIMIT_MAX);
    if (f->status && !s_is_one_of (f->status, statuses))
        return cmd_fail (CMD_USAGE, "--status '%s': use pending, paid, expired, failed, refunded "
                         "or creating", f->status);
    if (f->delivery && !s_is_one_of (f->delivery, deliveries))
        return cmd_fail (CMD_USAGE, "--delivery '%s': use pending, sent or failed", f->delivery);
    if (f->since && (rc = s_parse_since (f)))
        return rc;
    return CMD_OK;
}

//  One list command.
typedef struct {
    const char *group;          //  "payment" or "lead", for messages
    int payment;                //  1: --status, --delivery and --since too
    const char *empty;          //  printed instead of an empty table
    const char *empty_match;    //  the same when filters were given
    const char *table_sql;      //  the table's query (S_SCOPE)
    const char *json_sql;       //  the --json query: one row, one JSON array
} s_list_t;

//  The parameters of the list queries: $1 owner id and $2 bot id (see
//  cmd_find_scope), $3 limit; for payments also $4 status, $5 delivery,
//  $6 --since as an interval and $7 as a date (each NULL: any).
#define S_SCOPE(table)                                                                          \
    " WHERE ($1::bigint IS NULL OR " table ".owner_id = $1)"                                     \
    "   AND ($2::bigint IS NULL OR " table ".bot_id = $2)"

//  Runs `LIST->group list` with the options in ARGV: prints the table or
//  the JSON. Returns the exit status.
static int
s_list (int argc, char **argv, const rst_config_t *cfg, const s_list_t *list)
{
    s_filter_t f;
    int rc = s_parse_filter (list->group, list->payment, argc, argv, &f);
    if (rc)
        return rc;
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    cmd_scope_t scope;
    rc = cmd_find_scope (conn, f.owner, f.bot, &scope);
    if (rc) {
        PQfinish (conn);
        return rc;
    }
    const char *params[] = {scope.owner_id, scope.bot_id, f.limit, f.status, f.delivery,
                            f.since_interval[0] ? f.since_interval : NULL,
                            f.since_date[0] ? f.since_date : NULL};
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn, f.json ? list->json_sql : list->table_sql,
                               list->payment ? 7 : 3, params, NULL, NULL, NULL, err, sizeof err);
    PQfinish (conn);
    if (!res)
        return cmd_fail (CMD_FAIL, "%s", err);
    int filtered = f.owner || f.bot || f.status || f.delivery || f.since;
    if (f.json)
        printf ("%s\n", PQgetvalue (res, 0, 0));
    else
        cmd_print_table (res, filtered ? list->empty_match : list->empty);
    PQclear (res);
    return CMD_OK;
}

//  ---------------------------------------------------------------------------
//  rastro payment list

//  SQL: an amount in centavos as Brazilians write it, "R$ 1.234,56".
#define S_BRL(cents)                                                                           \
    "'R$ ' || replace(to_char(" cents " / 100, 'FM999,999,990'), ',', '.') || ','"             \
    " || lpad((" cents " % 100)::text, 2, '0')"

//  FROM and WHERE of both payment queries (S_SCOPE).
#define S_PAYMENTS_FROM                                                                        \
    " FROM payments p JOIN bots b ON b.id = p.bot_id JOIN users u ON u.id = p.owner_id"        \
    " JOIN leads l ON l.id = p.lead_id JOIN offers o ON o.id = p.offer_id" S_SCOPE ("p")       \
    "   AND ($4::text IS NULL OR p.status = $4)"                                                \
    "   AND ($5::text IS NULL OR p.delivery_status = $5)"                                       \
    "   AND ($6::interval IS NULL OR p.created_at >= now() - $6::interval)"                     \
    "   AND ($7::date IS NULL OR p.created_at >= $7::date::timestamp AT TIME ZONE 'UTC')"

static const s_list_t s_payments = {
    .group = "payment",
    .payment = 1,
    .empty = "no payments yet (the bots node records every PIX charge here)",
    .empty_match = "no payments match",
    .table_sql =
        "SELECT p.id AS \"ID\", " S_UTC ("p.created_at") " AS \"CREATED (UTC)\","
        " '@' || b.username AS \"BOT\","
        " l.tg_user_id || coalesce(' ' || " S_ONE_LINE ("l.first_name") ", '') AS \"LEAD\","
        " " S_ONE_LINE ("o.name") " AS \"OFFER\", " S_BRL ("p.amount_cents") " AS \"AMOUNT\","
        " p.gateway AS \"GATEWAY\", p.charge_id AS \"CHARGE_ID\", p.status AS \"STATUS\","
        " " S_UTC ("p.paid_at") " AS \"PAID (UTC)\", p.delivery_status AS \"DELIVERY\","
        " p.delivery_attempts AS \"ATTEMPTS\","
        " CASE WHEN length(p.delivery_error) > " S_STR (S_ERROR_CUT)
        "   THEN left(" S_ONE_LINE ("p.delivery_error") ", " S_STR (S_ERROR_CUT) " - 3) || '...'"
        "   ELSE " S_ONE_LINE ("p.delivery_error") " END AS \"DELIVERY_ERROR\""
        S_PAYMENTS_FROM " ORDER BY p.id DESC LIMIT $3::int",
    .json_sql =
        "SELECT coalesce(json_agg(t.j ORDER BY t.id DESC), '[]') FROM (SELECT p.id,"
        " json_build_object('id', p.id, 'created_at', " S_ISO ("p.created_at") ","
        " 'bot', b.username, 'owner', u.email, 'lead_id', l.id, 'tg_user_id', l.tg_user_id,"
        " 'first_name', l.first_name, 'offer_id', o.id, 'offer', o.name,"
        " 'amount_cents', p.amount_cents, 'amount', " S_BRL ("p.amount_cents") ","
        " 'gateway', p.gateway, 'charge_id', p.charge_id, 'status', p.status,"
        " 'paid_at', " S_ISO ("p.paid_at") ", 'last_error', p.last_error,"
        " 'delivery_status', p.delivery_status, 'delivery_attempts', p.delivery_attempts,"
        " 'delivery_error', p.delivery_error, 'delivered_at', " S_ISO ("p.delivered_at") ")"
        " AS j" S_PAYMENTS_FROM " ORDER BY p.id DESC LIMIT $3::int) t",
};

static int
s_payment_list (int argc, char **argv, const rst_config_t *cfg)
{
    return s_list (argc, argv, cfg, &s_payments);
}

//  ---------------------------------------------------------------------------
//  rastro payment redeliver

static int
s_payment_redeliver (int argc, char **argv, const rst_config_t *cfg)
{
    const char *id;
    int rc = cmd_parse (argc, argv, NULL, &id, 1, 1, "usage: rastro payment redeliver <id>   "
                        "(`rastro payment list --delivery failed` shows them)");
    if (rc)
        return rc;
    if (!cmd_is_number (id, S_ID_DIGITS) || strspn (id, "0") == strlen (id))
        return cmd_fail (CMD_USAGE, "'%s' is not a payment id (a number; `rastro payment list` "
                         "shows them)", id);
    const char *params[] = {id};
    //  One statement: the row changes only if it is paid and failed right now.
    PGresult *res = cmd_query_once (cfg,
                                    "WITH queued AS (UPDATE payments"
                                    "   SET delivery_status = 'pending', delivery_attempts = 0"
                                    "   WHERE id = $1 AND status = 'paid'"
                                    "   AND delivery_status = 'failed' RETURNING id)"
                                    " SELECT (SELECT count(*) FROM queued), p.status,"
                                    " p.delivery_status, p.delivery_attempts, b.username,"
                                    " " S_UTC ("p.delivered_at") " FROM payments p"
                                    " JOIN bots b ON b.id = p.bot_id WHERE p.id = $1",
                                    1, params);
    if (!res)
        return CMD_FAIL;
    if (PQntuples (res) == 0)
        rc = cmd_fail (CMD_FAIL, "no payment %s (`rastro payment list` shows them)", id);
    else {
        const char *status = PQgetvalue (res, 0, 1), *delivery = PQgetvalue (res, 0, 2);
        if (!strcmp (PQgetvalue (res, 0, 0), "1"))
            printf ("payment %s of @%s: delivery queued again (the bots node sends it at its "
                    "next sweep; `rastro payment list` shows how it went)\n", id,
                    PQgetvalue (res, 0, 4));
        else if (strcmp (status, "paid"))
            rc = cmd_fail (CMD_FAIL, "payment %s is %s, not paid: only a paid payment's access is "
                           "delivered", id, status);
        else if (!strcmp (delivery, "sent"))
            rc = cmd_fail (CMD_FAIL, "payment %s was delivered already (%s UTC): nothing to "
                           "redeliver", id, PQgetvalue (res, 0, 5));
        else if (!strcmp (delivery, "pending"))
            rc = cmd_fail (CMD_FAIL, "payment %s's delivery is still pending (%s attempts so far): "
                           "the bots node retries it by itself", id, PQgetvalue (res, 0, 3));
        else
            rc = cmd_fail (CMD_FAIL, "payment %s has no failed delivery (delivery %s)", id,
                           delivery);
    }
    PQclear (res);
    return rc;
}

static const cmd_sub_t s_payment_subs[] = {
    {"list", s_payment_list,
     "payment list [--bot <username>] [--status S] [--delivery D] [--since WHEN]\n"
     "                     [--limit N] [--owner EMAIL] [--json]",
     "Lists the PIX charges, newest first: bot, lead (Telegram user id and first\n"
     "name), offer, amount, gateway and charge id, status, and the delivery of\n"
     "what was bought (status, attempts, last error). A delivery that failed for\n"
     "good shows as 'failed': fix the cause, then `rastro payment redeliver <id>`.\n\n"
     "  --bot NAME      one bot's payments (`rastro bot list`)\n"
     "  --status S      pending, paid, expired, failed, refunded or creating\n"
     "  --delivery D    pending, sent or failed\n"
     "  --since WHEN    created in the last hours (24h) or days (7d), or since a\n"
     "                  date (2026-01-31, from midnight UTC)\n"
     "  --limit N       at most N payments (default 50; 1 to 100000)\n"
     "  --owner EMAIL   one user's payments\n"
     "  --json          a JSON array with every field (delivery_error in full)\n\n"
     "example:\n  rastro payment list --delivery failed --since 7d\n"},
    {"redeliver", s_payment_redeliver, "payment redeliver <id>",
     "Tries again to deliver a paid payment whose delivery failed for good: its\n"
     "delivery goes back to 'pending' with 0 attempts, and the bots node sends it\n"
     "at its next sweep. Anything else (not paid, delivered, still pending) is\n"
     "refused.\n"},
    {NULL, NULL, NULL, NULL},
};

const cmd_group_t cmd_payment_group = {
    .name = "payment",
    .summary = "Payments are the PIX charges of the bots' offers and the delivery of what was "
               "bought.",
    .subs = s_payment_subs,
};

//  ---------------------------------------------------------------------------
//  rastro lead list

//  FROM and WHERE of both lead queries (S_SCOPE).
#define S_LEADS_FROM                                                                           \
    " FROM leads l JOIN bots b ON b.id = l.bot_id JOIN users u ON u.id = l.owner_id"           \
    S_SCOPE ("l")

static const s_list_t s_leads = {
    .group = "lead",
    .empty = "no leads yet (a lead is a Telegram user who started one of the bots)",
    .empty_match = "no leads match",
    .table_sql =
        "SELECT l.id AS \"ID\", '@' || b.username AS \"BOT\", l.tg_user_id AS \"TG_USER_ID\","
        " nullif(" S_ONE_LINE ("concat_ws(' ', l.first_name, l.last_name)") ", '') AS \"NAME\","
        " '@' || l.username AS \"USERNAME\", coalesce(l.click_id, 'organic') AS \"CLICK\","
        " CASE WHEN l.utm_source IS NOT NULL OR l.utm_campaign IS NOT NULL"
        "   THEN " S_ONE_LINE ("coalesce(l.utm_source, '-') || '/'"
                           " || coalesce(l.utm_campaign, '-')")
        "   END AS \"UTM (SOURCE/CAMPAIGN)\","
        " " S_UTC ("l.created_at") " AS \"CREATED (UTC)\", l.starts AS \"STARTS\""
        S_LEADS_FROM " ORDER BY l.id DESC LIMIT $3::int",
    .json_sql =
        "SELECT coalesce(json_agg(t.j ORDER BY t.id DESC), '[]') FROM (SELECT l.id,"
        " json_build_object('id', l.id, 'bot', b.username, 'owner', u.email,"
        " 'tg_user_id', l.tg_user_id, 'chat_id', l.chat_id, 'first_name', l.first_name,"
        " 'last_name', l.last_name, 'username', l.username, 'language_code', l.language_code,"
        " 'organic', l.click_id IS NULL, 'click_id', l.click_id, 'last_click_id', l.last_click_id,"
        " 'pool_id', l.pool_id, 'pixel_id', l.pixel_id, 'utm_source', l.utm_source,"
        " 'utm_medium', l.utm_medium, 'utm_campaign', l.utm_campaign,"
        " 'utm_content', l.utm_content, 'utm_term', l.utm_term, 'starts', l.starts,"
        " 'created_at', " S_ISO ("l.created_at") ", 'updated_at', " S_ISO ("l.updated_at") ")"
        " AS j" S_LEADS_FROM " ORDER BY l.id DESC LIMIT $3::int) t",
};

static int
s_lead_list (int argc, char **argv, const rst_config_t *cfg)
{
    return s_list (argc, argv, cfg, &s_leads);
}

static const cmd_sub_t s_lead_subs[] = {
    {"list", s_lead_list, "lead list [--bot <username>] [--limit N] [--owner EMAIL] [--json]",
     "Lists the leads, newest first: the Telegram users who started a bot, with\n"
     "the click that brought them (\"organic\" if none), its UTM source and\n"
     "campaign, and how many times they sent /start.\n\n"
     "  --bot NAME      one bot's leads (`rastro bot list`)\n"
     "  --limit N       at most N leads (default 50; 1 to 100000)\n"
     "  --owner EMAIL   one user's leads\n"
     "  --json          a JSON array with every field (all UTMs, language, ...)\n"},
    {NULL, NULL, NULL, NULL},
};

const cmd_group_t cmd_lead_group = {
    .name = "lead",
    .summary = "Leads are the Telegram users who started one of the bots.",
    .subs = s_lead_subs,
};
