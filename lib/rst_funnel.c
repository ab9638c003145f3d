/*  rst_funnel — see rst_funnel.h.

    Every database statement here is short and autocommitted: no
    transaction is held open across a Telegram or gateway call. Steps that
    must happen once are guarded by a condition in the statement itself
    (lease, ON CONFLICT, WHERE status = 'pending').
*/
#include "rst_funnel.h"
#include "rst_click.h"
#include "rst_clock.h"
#include "rst_gateway.h"
#include "rst_log.h"
#include "rst_pix.h"
#include "rst_telegram.h"
#include "rst_tgupdate.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_CLS        "bots"
#define S_GW_CACHE   32
#define S_PHOTO_NAME "pix.png"

typedef struct {
    int64_t bot_id;
    int64_t version;
    rst_gateway_t *gw;
} s_gw_slot_t;

struct rst_funnel_t {
    rst_funnel_env_t *env;
    PGconn *db;
    rst_telegram_t *tg;
    s_gw_slot_t gws[S_GW_CACHE];
};

// ---------------------------------------------------------------------------
//  Small helpers

static double
s_now_s (void)
{
    return (double) rst_clock_mono_ns () / 1e9;
}

static void
s_sleep_s (rst_funnel_t *self, double seconds)
{
    //  In slices, so a stopping node is not held up by a long wait.
    while (seconds > 0 && !atomic_load (self->env->stop)) {
        double slice = seconds < 0.2 ? seconds : 0.2;
        struct timespec ts = {(time_t) slice, (long) ((slice - (double) (time_t) slice) * 1e9)};
        nanosleep (&ts, NULL);
        seconds -= slice;
    }
}

//  Runs SQL with NPARAMS text parameters. Returns the result (the caller
//  clears it) when its status is TUPLES_OK or COMMAND_OK, else NULL after
//  logging PostgreSQL's message under WHAT.
static PGresult *
s_q (rst_funnel_t *self, const char *what, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams (self->db, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus (res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    rst_error (S_CLS, "%s: %s", what, PQerrorMessage (self->db));
    PQclear (res);
    if (PQstatus (self->db) == CONNECTION_BAD)
        PQreset (self->db);
    return NULL;
}

static int64_t
s_int (const PGresult *res, int row, int col)
{
    return PQgetisnull (res, row, col) ? 0 : strtoll (PQgetvalue (res, row, col), NULL, 10);
}

static const char *
s_str (const PGresult *res, int row, int col)
{
    return PQgetisnull (res, row, col) ? NULL : PQgetvalue (res, row, col);
}

//  "R$ 19,90"
static void
s_brl (int64_t cents, char *out, size_t outlen)
{
    snprintf (out, outlen, "R$ %" PRId64 ",%02d", cents / 100, (int) (cents % 100));
}

//  Escapes TEXT for Telegram's HTML parse mode into OUT.
static void
s_html (const char *text, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *c = text; c && *c && n + 7 < outlen; c++) {
        const char *rep = *c == '<' ? "&lt;" : *c == '>' ? "&gt;" : *c == '&' ? "&amp;" : NULL;
        if (rep)
            n += (size_t) snprintf (out + n, outlen - n, "%s", rep);
        else
            out[n++] = *c;
    }
    out[n] = 0;
}

// ---------------------------------------------------------------------------
//  Telegram calls under the sending limits

typedef enum { S_TG_MESSAGE, S_TG_PHOTO, S_TG_ANSWER, S_TG_INVITE, S_TG_REVOKE } s_tg_kind_t;

typedef struct {
    s_tg_kind_t kind;
    int64_t chat_id;
    const char *html;                   //  text or caption
    const rst_tg_button_t *buttons;
    size_t nbuttons;
    const void *photo;
    size_t photo_len;
    const char *file_id;                //  photo by file_id
    char *file_id_out;                  //  RST_TELEGRAM_FILE_ID_MAX
    const char *callback_id;
    const char *link;                   //  revoke
    int64_t expire_date;                //  invite
    char *link_out;                     //  invite, RST_TELEGRAM_FILE_ID_MAX
} s_tg_call_t;

//  Waits for the sending limits, makes the call, waits out one 429 and
//  tries again. Returns 0, or -1 with ERR (RETRY_LATER set when only time
//  would help: throttled beyond RST_FUNNEL_MAX_WAIT_S, or a network error).
static int
s_tg (rst_funnel_t *self, const rst_bot_t *bot, s_tg_call_t *call, int *retry_later, char *err,
      size_t errlen)
{
    rst_funnel_env_t *env = self->env;
    if (retry_later)
        *retry_later = 0;
    int64_t chat = call->kind == S_TG_MESSAGE || call->kind == S_TG_PHOTO ? call->chat_id : 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        for (;;) {
            pthread_mutex_lock (&env->rate_lock);
            double wait = rst_tgrate_reserve (env->rate, bot->id, chat, s_now_s ());
            pthread_mutex_unlock (&env->rate_lock);
            if (wait <= 0)
                break;
            if (wait > RST_FUNNEL_MAX_WAIT_S || atomic_load (env->stop)) {
                snprintf (err, errlen, "Telegram sending limit: %.0f s to wait", wait);
                if (retry_later)
                    *retry_later = 1;
                return -1;
            }
            s_sleep_s (self, wait);
        }
        rst_telegram_status_t st = {0};
        int rc;
        atomic_fetch_add (&env->stats.tg_calls, 1);
        switch (call->kind) {
        case S_TG_MESSAGE:
            rc = rst_telegram_send_message (self->tg, bot->token, call->chat_id, call->html,
                                            call->buttons, call->nbuttons, NULL, &st, err, errlen);
            break;
        case S_TG_PHOTO:
            rc = rst_telegram_send_photo (self->tg, bot->token, call->chat_id, call->photo,
                                          call->photo_len, S_PHOTO_NAME, call->file_id, call->html,
                                          call->buttons, call->nbuttons, call->file_id_out, &st,
                                          err, errlen);
            break;
        case S_TG_ANSWER:
            rc = rst_telegram_answer_callback (self->tg, bot->token, call->callback_id, call->html,
                                               &st, err, errlen);
            break;
        case S_TG_INVITE:
            rc = rst_telegram_create_invite_link (self->tg, bot->token, call->chat_id, call->html,
                                                  call->expire_date, 1, call->link_out,
                                                  RST_TELEGRAM_FILE_ID_MAX, &st, err, errlen);
            break;
        default:
            rc = rst_telegram_revoke_invite_link (self->tg, bot->token, call->chat_id, call->link,
                                                  &st, err, errlen);
            break;
        }
        if (rc == 0)
            return 0;
        atomic_fetch_add (&env->stats.tg_errors, 1);
        if (st.http_status == 429 || st.error_code == 429) {
            atomic_fetch_add (&env->stats.tg_throttled, 1);
            double after = st.retry_after > 0 ? st.retry_after : 1;
            pthread_mutex_lock (&env->rate_lock);
            rst_tgrate_block (env->rate, bot->id, chat, s_now_s () + after);
            pthread_mutex_unlock (&env->rate_lock);
            rst_warn (S_CLS, "@%s: Telegram asks to wait %.0f s (429)", bot->username, after);
            if (after > RST_FUNNEL_MAX_WAIT_S) {
                if (retry_later)
                    *retry_later = 1;
                return -1;
            }
            continue;   //  the limiter now holds us back for `after` seconds
        }
        if (retry_later)
            *retry_later = st.http_status == 0 || st.http_status >= 500;
        return -1;
    }
    if (retry_later)
        *retry_later = 1;
    return -1;
}

static int
s_send_text (rst_funnel_t *self, const rst_bot_t *bot, int64_t chat_id, const char *html,
             const rst_tg_button_t *buttons, size_t nbuttons, int *retry_later, char *err,
             size_t errlen)
{
    s_tg_call_t call = {.kind = S_TG_MESSAGE, .chat_id = chat_id, .html = html,
                        .buttons = buttons, .nbuttons = nbuttons};
    return s_tg (self, bot, &call, retry_later, err, errlen);
}

// ---------------------------------------------------------------------------
//  Lifecycle

rst_funnel_t *
rst_funnel_new (rst_funnel_env_t *env, char *err, size_t errlen)
{
    assert (env);
    rst_funnel_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->env = env;
    self->db = PQconnectdb (env->cfg->database_url);
    if (PQstatus (self->db) != CONNECTION_OK) {
        snprintf (err, errlen, "PostgreSQL: %s", PQerrorMessage (self->db));
        rst_funnel_destroy (&self);
        return NULL;
    }
    self->tg = rst_telegram_new (env->cfg->telegram_api_url, err, errlen);
    if (!self->tg) {
        rst_funnel_destroy (&self);
        return NULL;
    }
    return self;
}

void
rst_funnel_destroy (rst_funnel_t **self_p)
{
    assert (self_p);
    rst_funnel_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < S_GW_CACHE; i++)
        rst_gateway_destroy (&self->gws[i].gw);
    rst_telegram_destroy (&self->tg);
    if (self->db)
        PQfinish (self->db);
    free (self);
    *self_p = NULL;
}

struct pg_conn *
rst_funnel_db (rst_funnel_t *self)
{
    return self ? self->db : NULL;
}

//  The gateway account of BOT (cached per bot and credentials version), or
//  NULL with ERR.
static rst_gateway_t *
s_gateway (rst_funnel_t *self, const rst_bot_t *bot, char *err, size_t errlen)
{
    if (bot->gateway_kind < 0 || !bot->gateway_credentials) {
        snprintf (err, errlen, "bot @%s has no payment gateway (rastro gateway set %s ...)",
                  bot->username, bot->username);
        return NULL;
    }
    s_gw_slot_t *slot = &self->gws[(uint64_t) bot->id % S_GW_CACHE];
    if (slot->gw && slot->bot_id == bot->id && slot->version == bot->gateway_version)
        return slot->gw;
    rst_gateway_destroy (&slot->gw);
    slot->gw = rst_gateway_new ((rst_gw_kind_t) bot->gateway_kind, bot->gateway_credentials, NULL,
                                err, errlen);
    slot->bot_id = bot->id;
    slot->version = bot->gateway_version;
    return slot->gw;
}

// ---------------------------------------------------------------------------
//  Events

typedef struct {
    int64_t lead_id, tg_user_id, pool_id, owner_id, bot_id;
    char click_id[RST_EVENT_ID_MAX + 1];    //  "" = organic
    char pixel_id[33];                      //  "" = no pixel: no Meta event
} s_lead_t;

//  Emits a chat event of TYPE for LEAD. Returns 0 (also when the lead has
//  no pixel: nothing to report), or -1 when it could not be kept.
static int
s_emit (rst_funnel_t *self, rst_event_type_t type, const char *event_id, const s_lead_t *lead,
        const char *offer_id, const char *offer_name, int64_t value_cents, const char *order_id)
{
    if (!lead->pixel_id[0]) {
        rst_debug (S_CLS, "%s: lead %" PRId64 " has no pixel (bot in no pool): no Meta event",
                   event_id, lead->lead_id);
        return 0;
    }
    rst_event_t ev;
    rst_event_init (&ev);
    ev.type = type;
    ev.event_id = rst_str (event_id);
    ev.time_ms = rst_clock_wall_ms ();
    ev.owner_id = lead->owner_id;
    ev.pool_id = lead->pool_id;
    ev.bot_id = lead->bot_id;
    ev.pixel_id = rst_str (lead->pixel_id);
    if (lead->click_id[0])
        ev.click_id = rst_str (lead->click_id);
    ev.lead_id = lead->lead_id;
    ev.tg_user_id = lead->tg_user_id;
    if (offer_id)
        ev.offer_id = rst_str (offer_id);
    if (offer_name)
        ev.offer_name = rst_str (offer_name);
    if (value_cents >= 0)
        ev.value_cents = value_cents;
    ev.currency = rst_str ("BRL");
    if (order_id)
        ev.order_id = rst_str (order_id);
    char err[256];
    if (rst_emitter_emit (self->env->emitter, &ev, err, sizeof err)) {
        atomic_fetch_add (&self->env->stats.events_failed, 1);
        rst_error (S_CLS, "%s not kept: %s", event_id, err);
        return -1;
    }
    return 0;
}

// ---------------------------------------------------------------------------
//  /start

//  Looks the click up, waiting up to RST_FUNNEL_CLICK_WAIT_MS for the
//  recorder to store it (only for a payload shaped like rastro's click ids:
//  anything else is looked up once). Returns 1 found (*ROW holds the row;
//  the caller clears it), 0 unknown, -1 database error.
static int
s_find_click (rst_funnel_t *self, const char *click_id, PGresult **row)
{
    const char *params[] = {click_id};
    int wait = strlen (click_id) == RST_CLICK_ID_LEN;
    int64_t deadline = rst_clock_mono_ms () + (wait ? RST_FUNNEL_CLICK_WAIT_MS : 0);
    for (;;) {
        PGresult *res = s_q (self, "click lookup",
                             "SELECT owner_id, pool_id, pixel_id, fbc, utm_source, utm_medium, "
                             "utm_campaign, utm_content, utm_term FROM clicks WHERE click_id = $1",
                             1, params);
        if (!res)
            return -1;
        if (PQntuples (res) == 1) {
            *row = res;
            return 1;
        }
        PQclear (res);
        if (rst_clock_mono_ms () >= deadline || atomic_load (self->env->stop))
            return 0;
        s_sleep_s (self, 0.1);
    }
}

//  Sends the welcome: one message per enabled offer (photo with caption, or
//  text) with its buy button; a plain greeting when the bot sells nothing yet.
static int
s_welcome (rst_funnel_t *self, const rst_bot_t *bot, int64_t chat_id, const char *first_name,
           int *retry_later, char *err, size_t errlen)
{
    char bot_id[24];
    snprintf (bot_id, sizeof bot_id, "%" PRId64, bot->id);
    const char *params[] = {bot_id};
    PGresult *res = s_q (self, "offers",
                         "SELECT id, name, price_cents, welcome_html, photo IS NOT NULL, "
                         "photo_file_id FROM offers WHERE bot_id = $1 AND enabled ORDER BY id",
                         1, params);
    if (!res) {
        *retry_later = 1;
        snprintf (err, errlen, "database unavailable");
        return -1;
    }
    int rc = 0;
    if (PQntuples (res) == 0) {
        char name[256], html[512];
        s_html (first_name && *first_name ? first_name : "", name, sizeof name);
        snprintf (html, sizeof html, "Olá%s%s! 👋", *name ? ", " : "", name);
        rc = s_send_text (self, bot, chat_id, html, NULL, 0, retry_later, err, errlen);
    }
    for (int r = 0; rc == 0 && r < PQntuples (res); r++) {
        const char *offer_id = PQgetvalue (res, r, 0);
        const char *offer_name = PQgetvalue (res, r, 1);
        char price[32], label[200], data[64], name[400], html[4200];
        s_brl (s_int (res, r, 2), price, sizeof price);
        snprintf (label, sizeof label, "Comprar por %s", price);
        snprintf (data, sizeof data, "buy:%s", offer_id);
        rst_tg_button_t button = {.text = label, .callback_data = data};
        const char *welcome = s_str (res, r, 3);
        if (welcome)
            snprintf (html, sizeof html, "%s", welcome);
        else {
            s_html (offer_name, name, sizeof name);
            snprintf (html, sizeof html, "<b>%s</b>\n%s", name, price);
        }
        int has_photo = PQgetvalue (res, r, 4)[0] == 't';
        if (!has_photo) {
            rc = s_send_text (self, bot, chat_id, html, &button, 1, retry_later, err, errlen);
            continue;
        }
        //  The photo: by file_id once Telegram has it, else uploaded (and its
        //  file_id kept). A caption is at most 1024 characters: a longer
        //  welcome goes in its own message after the photo.
        int long_text = strlen (html) > 1024;
        char file_id_out[RST_TELEGRAM_FILE_ID_MAX] = "";
        s_tg_call_t call = {.kind = S_TG_PHOTO, .chat_id = chat_id,
                            .html = long_text ? NULL : html,
                            .buttons = long_text ? NULL : &button, .nbuttons = long_text ? 0 : 1,
                            .file_id_out = file_id_out};
        PGresult *photo = NULL;
        const char *file_id = s_str (res, r, 5);
        if (file_id)
            call.file_id = file_id;
        else {
            const char *p2[] = {offer_id};
            photo = PQexecParams (self->db, "SELECT photo FROM offers WHERE id = $1", 1, NULL, p2,
                                  NULL, NULL, 1);
            if (PQresultStatus (photo) != PGRES_TUPLES_OK || PQntuples (photo) != 1) {
                PQclear (photo);
                *retry_later = 1;
                snprintf (err, errlen, "offer %s: cannot read its photo", offer_id);
                rc = -1;
                break;
            }
            call.photo = PQgetvalue (photo, 0, 0);
            call.photo_len = (size_t) PQgetlength (photo, 0, 0);
        }
        rc = s_tg (self, bot, &call, retry_later, err, errlen);
        PQclear (photo);
        if (rc == 0 && !file_id && file_id_out[0]) {
            const char *p3[] = {file_id_out, offer_id};
            PQclear (s_q (self, "photo file_id",
                          "UPDATE offers SET photo_file_id = $1 WHERE id = $2", 2, p3));
        }
        if (rc == 0 && long_text)
            rc = s_send_text (self, bot, chat_id, html, &button, 1, retry_later, err, errlen);
    }
    PQclear (res);
    return rc;
}

static int
s_on_start (rst_funnel_t *self, const rst_bot_t *bot, const rst_tgupdate_t *u, int *retry_later,
            char *err, size_t errlen)
{
    s_lead_t lead = {.tg_user_id = u->user_id, .bot_id = bot->id, .owner_id = bot->owner_id,
                     .pool_id = 0};
    snprintf (lead.pixel_id, sizeof lead.pixel_id, "%s", bot->organic_pixel);
    PGresult *click = NULL;
    if (u->start_payload[0]) {
        int found = s_find_click (self, u->start_payload, &click);
        if (found < 0) {
            *retry_later = 1;
            snprintf (err, errlen, "database unavailable");
            return -1;
        }
        //  A click of another seller's pool is not this lead's attribution.
        if (found && s_int (click, 0, 0) != bot->owner_id) {
            rst_warn (S_CLS, "@%s: /start with a click of another owner; organic lead",
                      bot->username);
            PQclear (click);
            click = NULL;
        }
    }
    char bot_id[24], user_id[24], chat_id[24], pool_id[24];
    snprintf (bot_id, sizeof bot_id, "%" PRId64, bot->id);
    snprintf (user_id, sizeof user_id, "%" PRId64, u->user_id);
    snprintf (chat_id, sizeof chat_id, "%" PRId64, u->chat_id);
    char owner_id[24], external_id[96];
    snprintf (owner_id, sizeof owner_id, "%" PRId64, bot->owner_id);
    if (click)
        snprintf (external_id, sizeof external_id, "%s", u->start_payload);
    else
        snprintf (external_id, sizeof external_id, "tg:%" PRId64, u->user_id);
    snprintf (pool_id, sizeof pool_id, "%" PRId64, click ? s_int (click, 0, 1) : (int64_t) 0);
    const char *params[] = {
        owner_id, bot_id, user_id, chat_id,
        u->first_name[0] ? u->first_name : NULL, u->last_name[0] ? u->last_name : NULL,
        u->username[0] ? u->username : NULL, u->language[0] ? u->language : NULL,
        click ? u->start_payload : NULL, pool_id,
        click ? s_str (click, 0, 2) : NULL, click ? s_str (click, 0, 4) : NULL,
        click ? s_str (click, 0, 5) : NULL, click ? s_str (click, 0, 6) : NULL,
        click ? s_str (click, 0, 7) : NULL, click ? s_str (click, 0, 8) : NULL,
        click ? s_str (click, 0, 3) : NULL, external_id,
        u->start_payload[0] ? u->start_payload : NULL,
    };
    //  A lead that came organically adopts the first click it brings; a
    //  lead with a click keeps it (its external_id never changes).
    PGresult *res = s_q (
        self, "lead upsert",
        "INSERT INTO leads (owner_id, bot_id, tg_user_id, chat_id, first_name, last_name, username, "
        "  language_code, click_id, pool_id, pixel_id, utm_source, utm_medium, utm_campaign, "
        "  utm_content, utm_term, fbc, external_id, last_click_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) "
        "ON CONFLICT (bot_id, tg_user_id) DO UPDATE SET "
        "  chat_id = EXCLUDED.chat_id, first_name = EXCLUDED.first_name, "
        "  last_name = EXCLUDED.last_name, username = EXCLUDED.username, "
        "  language_code = COALESCE(EXCLUDED.language_code, leads.language_code), "
        "  last_click_id = COALESCE(EXCLUDED.last_click_id, leads.last_click_id), "
        "  starts = leads.starts + 1, updated_at = now(), "
        "  click_id = COALESCE(leads.click_id, EXCLUDED.click_id), "
        "  pool_id = CASE WHEN leads.click_id IS NULL THEN EXCLUDED.pool_id ELSE leads.pool_id END, "
        "  pixel_id = COALESCE(leads.pixel_id, EXCLUDED.pixel_id), "
        "  utm_source = CASE WHEN leads.click_id IS NULL THEN EXCLUDED.utm_source ELSE leads.utm_source END, "
        "  utm_medium = CASE WHEN leads.click_id IS NULL THEN EXCLUDED.utm_medium ELSE leads.utm_medium END, "
        "  utm_campaign = CASE WHEN leads.click_id IS NULL THEN EXCLUDED.utm_campaign ELSE leads.utm_campaign END, "
        "  utm_content = CASE WHEN leads.click_id IS NULL THEN EXCLUDED.utm_content ELSE leads.utm_content END, "
        "  utm_term = CASE WHEN leads.click_id IS NULL THEN EXCLUDED.utm_term ELSE leads.utm_term END, "
        "  fbc = CASE WHEN leads.click_id IS NULL THEN EXCLUDED.fbc ELSE leads.fbc END, "
        "  external_id = CASE WHEN leads.click_id IS NULL AND EXCLUDED.click_id IS NOT NULL "
        "                     THEN EXCLUDED.external_id ELSE leads.external_id END "
        "RETURNING id, click_id, pool_id, pixel_id",
        19, params);
    PQclear (click);
    if (!res) {
        *retry_later = 1;
        snprintf (err, errlen, "database unavailable");
        return -1;
    }
    lead.lead_id = s_int (res, 0, 0);
    const char *lead_click = s_str (res, 0, 1);
    snprintf (lead.click_id, sizeof lead.click_id, "%s", lead_click ? lead_click : "");
    lead.pool_id = s_int (res, 0, 2);
    if (s_str (res, 0, 3))
        snprintf (lead.pixel_id, sizeof lead.pixel_id, "%s", s_str (res, 0, 3));
    PQclear (res);
    atomic_fetch_add (lead.click_id[0] ? &self->env->stats.starts : &self->env->stats.organic, 1);

    char event_id[64];
    snprintf (event_id, sizeof event_id, "vc-%" PRId64 "-%" PRId64, bot->id, u->update_id);
    if (s_emit (self, RST_EVENT_START, event_id, &lead, NULL, NULL, -1, NULL)) {
        *retry_later = 1;
        snprintf (err, errlen, "start event not kept");
        return -1;
    }
    return s_welcome (self, bot, u->chat_id, u->first_name, retry_later, err, errlen);
}

// ---------------------------------------------------------------------------
//  Checkout

//  Loads LEAD for (BOT, TG_USER_ID). Returns 1, 0 when there is none, -1 on error.
static int
s_load_lead (rst_funnel_t *self, const rst_bot_t *bot, int64_t tg_user_id, s_lead_t *lead,
             int64_t *chat_id)
{
    char bot_id[24], user_id[24];
    snprintf (bot_id, sizeof bot_id, "%" PRId64, bot->id);
    snprintf (user_id, sizeof user_id, "%" PRId64, tg_user_id);
    const char *params[] = {bot_id, user_id};
    PGresult *res = s_q (self, "lead",
                         "SELECT id, click_id, pool_id, pixel_id, chat_id FROM leads "
                         "WHERE bot_id = $1 AND tg_user_id = $2",
                         2, params);
    if (!res)
        return -1;
    int found = PQntuples (res) == 1;
    if (found) {
        memset (lead, 0, sizeof *lead);
        lead->lead_id = s_int (res, 0, 0);
        snprintf (lead->click_id, sizeof lead->click_id, "%s", s_str (res, 0, 1) ? s_str (res, 0, 1) : "");
        lead->pool_id = s_int (res, 0, 2);
        snprintf (lead->pixel_id, sizeof lead->pixel_id, "%s",
                  s_str (res, 0, 3) ? s_str (res, 0, 3) : bot->organic_pixel);
        lead->tg_user_id = tg_user_id;
        lead->bot_id = bot->id;
        lead->owner_id = bot->owner_id;
        if (chat_id)
            *chat_id = s_int (res, 0, 4);
    }
    PQclear (res);
    return found;
}

//  Sends the QR code (rendered here) and the copy-and-paste code.
static int
s_send_pix (rst_funnel_t *self, const rst_bot_t *bot, int64_t chat_id, const char *offer_name,
            int64_t cents, const char *code, int64_t expires_at, int *retry_later, char *err,
            size_t errlen)
{
    unsigned char *png = NULL;
    size_t png_len = 0;
    if (rst_pix_qr_png (code, 6, 4, &png, &png_len, err, errlen))
        return -1;
    char price[32], name[400], until[32] = "", caption[1024];
    s_brl (cents, price, sizeof price);
    s_html (offer_name, name, sizeof name);
    if (expires_at > 0) {
        //  Brazil's time (UTC−3, no daylight saving since 2019).
        time_t t = (time_t) (expires_at - 3 * 3600);
        struct tm tm;
        gmtime_r (&t, &tm);
        strftime (until, sizeof until, " até %H:%M", &tm);
    }
    snprintf (caption, sizeof caption,
              "<b>PIX de %s</b> — %s\nPague pelo QR code ou com o código copia e cola da "
              "próxima mensagem. Válido%s.",
              price, name, until);
    s_tg_call_t call = {.kind = S_TG_PHOTO, .chat_id = chat_id, .html = caption, .photo = png,
                        .photo_len = png_len};
    int rc = s_tg (self, bot, &call, retry_later, err, errlen);
    free (png);
    if (rc)
        return -1;
    char html[1200];
    snprintf (html, sizeof html, "<code>%s</code>", code);
    return s_send_text (self, bot, chat_id, html, NULL, 0, retry_later, err, errlen);
}

static int
s_on_buy (rst_funnel_t *self, const rst_bot_t *bot, const rst_tgupdate_t *u, int64_t offer,
          int *retry_later, char *err, size_t errlen)
{
    rst_funnel_env_t *env = self->env;
    s_lead_t lead;
    int64_t chat_id = u->chat_id;
    int found = s_load_lead (self, bot, u->user_id, &lead, NULL);
    if (found < 0) {
        *retry_later = 1;
        snprintf (err, errlen, "database unavailable");
        return -1;
    }
    if (!found) {
        //  A button of an old message from before rastro knew this user:
        //  make an organic lead so the sale still counts.
        char bot_id[24], user_id[24], chat[24], owner[24], ext[48];
        snprintf (bot_id, sizeof bot_id, "%" PRId64, bot->id);
        snprintf (user_id, sizeof user_id, "%" PRId64, u->user_id);
        snprintf (chat, sizeof chat, "%" PRId64, u->chat_id);
        snprintf (owner, sizeof owner, "%" PRId64, bot->owner_id);
        snprintf (ext, sizeof ext, "tg:%" PRId64, u->user_id);
        const char *params[] = {owner, bot_id, user_id, chat, ext,
                                bot->organic_pixel[0] ? bot->organic_pixel : NULL};
        PQclear (s_q (self, "organic lead",
                      "INSERT INTO leads (owner_id, bot_id, tg_user_id, chat_id, external_id, pixel_id) "
                      "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (bot_id, tg_user_id) DO NOTHING",
                      6, params));
        if (s_load_lead (self, bot, u->user_id, &lead, NULL) != 1) {
            *retry_later = 1;
            snprintf (err, errlen, "database unavailable");
            return -1;
        }
    }
    char offer_id[24], bot_id[24];
    snprintf (offer_id, sizeof offer_id, "%" PRId64, offer);
    snprintf (bot_id, sizeof bot_id, "%" PRId64, bot->id);
    const char *p_offer[] = {offer_id, bot_id};
    PGresult *o = s_q (self, "offer",
                       "SELECT name, price_cents FROM offers WHERE id = $1 AND bot_id = $2 AND enabled",
                       2, p_offer);
    if (!o) {
        *retry_later = 1;
        snprintf (err, errlen, "database unavailable");
        return -1;
    }
    if (PQntuples (o) != 1) {
        PQclear (o);
        return s_send_text (self, bot, chat_id, "Esta oferta não está mais disponível.", NULL, 0,
                            retry_later, err, errlen);
    }
    char offer_name[200];
    snprintf (offer_name, sizeof offer_name, "%s", PQgetvalue (o, 0, 0));
    int64_t cents = s_int (o, 0, 1);
    PQclear (o);

    char gwerr[256];
    rst_gateway_t *gw = s_gateway (self, bot, gwerr, sizeof gwerr);
    if (!gw) {
        rst_error (S_CLS, "@%s: checkout impossible: %s", bot->username, gwerr);
        atomic_fetch_add (&env->stats.checkout_failures, 1);
        return s_send_text (self, bot, chat_id,
                            "Pagamento indisponível no momento. Tente novamente mais tarde.", NULL,
                            0, retry_later, err, errlen);
    }
    const char *kind = rst_gateway_kind_name (rst_gateway_kind (gw));

    //  One open charge per lead and offer: a double tap finds the first.
    unsigned char key_bytes[16];
    randombytes_buf (key_bytes, sizeof key_bytes);
    char key[40], lead_id[24], owner_id[24], amount[24];
    snprintf (key, sizeof key,
              "%02x%02x%02x%02x-%02x%02x-4%01x%02x-%01x%01x%02x-%02x%02x%02x%02x%02x%02x",
              key_bytes[0], key_bytes[1], key_bytes[2], key_bytes[3], key_bytes[4], key_bytes[5],
              key_bytes[6] & 0x0f, key_bytes[7], 8 + (key_bytes[8] & 3), key_bytes[8] >> 4,
              key_bytes[9], key_bytes[10], key_bytes[11], key_bytes[12], key_bytes[13],
              key_bytes[14], key_bytes[15]);
    snprintf (lead_id, sizeof lead_id, "%" PRId64, lead.lead_id);
    snprintf (owner_id, sizeof owner_id, "%" PRId64, bot->owner_id);
    snprintf (amount, sizeof amount, "%" PRId64, cents);
    for (int pass = 0; pass < 2; pass++) {
        const char *p_ins[] = {owner_id, bot_id, lead_id, offer_id, kind, key, amount};
        PGresult *ins = s_q (self, "payment insert",
                             "INSERT INTO payments (owner_id, bot_id, lead_id, offer_id, gateway, "
                             "  idempotency_key, amount_cents) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                             "ON CONFLICT (lead_id, offer_id) WHERE status IN ('creating', 'pending') "
                             "DO NOTHING RETURNING id",
                             7, p_ins);
        if (!ins) {
            *retry_later = 1;
            snprintf (err, errlen, "database unavailable");
            return -1;
        }
        int inserted = PQntuples (ins) == 1;
        PQclear (ins);
        (void) inserted;
        const char *p_open[] = {lead_id, offer_id};
        PGresult *open = s_q (self, "open payment",
                              "SELECT id, status, idempotency_key, pix_code, "
                              "  COALESCE(extract(epoch FROM expires_at)::bigint, 0), "
                              "  expires_at IS NOT NULL AND expires_at < now(), gateway "
                              "FROM payments WHERE lead_id = $1 AND offer_id = $2 "
                              "  AND status IN ('creating', 'pending')",
                              2, p_open);
        if (!open || PQntuples (open) != 1) {
            PQclear (open);
            *retry_later = 1;
            snprintf (err, errlen, "payment row vanished; retrying");
            return -1;
        }
        int64_t payment_id = s_int (open, 0, 0);
        char status[16], pkey[64], pid[24];
        snprintf (status, sizeof status, "%s", PQgetvalue (open, 0, 1));
        snprintf (pkey, sizeof pkey, "%s", PQgetvalue (open, 0, 2));
        snprintf (pid, sizeof pid, "%" PRId64, payment_id);
        int expired = PQgetvalue (open, 0, 5)[0] == 't';
        int other_gateway = strcmp (PQgetvalue (open, 0, 6), kind) != 0;
        if (!strcmp (status, "pending") && !expired && !other_gateway) {
            //  The same charge again (double tap, or asked twice).
            char *code = strdup (PQgetvalue (open, 0, 3));
            int64_t expires_at = s_int (open, 0, 4);
            PQclear (open);
            atomic_fetch_add (&env->stats.reused_charges, 1);
            int rc = code ? s_send_pix (self, bot, chat_id, offer_name, cents, code, expires_at,
                                        retry_later, err, errlen)
                          : -1;
            free (code);
            return rc;
        }
        PQclear (open);
        if (!strcmp (status, "pending")) {
            //  Expired (or the bot changed gateway): close it and open a new one.
            const char *p_exp[] = {pid};
            PQclear (s_q (self, "expire payment",
                          "UPDATE payments SET status = 'expired' WHERE id = $1 AND status = 'pending'",
                          1, p_exp));
            continue;
        }
        //  'creating': this tap's row, or a create that failed earlier; both
        //  are (re)tried with the row's own idempotency key.
        char reference[32], webhook_url[RST_URL_MAX + 32];
        snprintf (reference, sizeof reference, "%" PRId64, payment_id);
        snprintf (webhook_url, sizeof webhook_url, "%s/webhook/%s", env->cfg->public_url, kind);
        rst_charge_request_t req = {.amount_cents = cents, .description = offer_name,
                                    .reference = reference, .idempotency_key = pkey,
                                    .webhook_url = webhook_url,
                                    .expires_in_s = RST_FUNNEL_CHARGE_TTL_S};
        rst_charge_t charge = {0};
        rst_gw_result_t gr = rst_gateway_create (gw, &req, &charge, gwerr, sizeof gwerr);
        rst_pix_info_t info;
        char pixerr[200] = "";
        if (gr == RST_GW_OK
            && (!charge.pix_code
                || rst_pix_brcode_check (charge.pix_code, strlen (charge.pix_code), &info, pixerr,
                                         sizeof pixerr)
                || (info.amount_cents >= 0 && info.amount_cents != cents))) {
            snprintf (gwerr, sizeof gwerr, "the gateway's PIX code is not valid: %s",
                      pixerr[0] ? pixerr : "missing or wrong amount");
            gr = RST_GW_PERMANENT;
        }
        if (gr != RST_GW_OK) {
            atomic_fetch_add (&env->stats.checkout_failures, 1);
            rst_error (S_CLS, "@%s: %s charge for payment %" PRId64 " failed: %s", bot->username,
                       kind, payment_id, gwerr);
            const char *p_err[] = {pid, gwerr, gr == RST_GW_PERMANENT ? "failed" : "creating"};
            PQclear (s_q (self, "payment error",
                          "UPDATE payments SET last_error = $2, status = $3 "
                          "WHERE id = $1 AND status = 'creating'",
                          3, p_err));
            rst_charge_clear (&charge);
            return s_send_text (self, bot, chat_id,
                                "Não consegui gerar o PIX agora. Toque no botão de novo em "
                                "instantes.",
                                NULL, 0, retry_later, err, errlen);
        }
        int64_t expires_at = charge.expires_at > 0 ? charge.expires_at
                                                   : (int64_t) time (NULL) + RST_FUNNEL_CHARGE_TTL_S;
        char expires[24];
        snprintf (expires, sizeof expires, "%" PRId64, expires_at);
        const char *p_up[] = {pid, charge.id, charge.pix_code, expires};
        PGresult *up = s_q (self, "payment pending",
                            "UPDATE payments SET status = 'pending', charge_id = $2, pix_code = $3, "
                            "  expires_at = to_timestamp($4), last_error = NULL "
                            "WHERE id = $1 AND status = 'creating'",
                            4, p_up);
        if (!up) {
            rst_charge_clear (&charge);
            *retry_later = 1;
            snprintf (err, errlen, "database unavailable");
            return -1;
        }
        PQclear (up);
        char event_id[40];
        snprintf (event_id, sizeof event_id, "ic-%" PRId64, payment_id);
        atomic_fetch_add (&env->stats.checkouts, 1);
        s_emit (self, RST_EVENT_CHECKOUT, event_id, &lead, offer_id, offer_name, cents, NULL);
        int rc = s_send_pix (self, bot, chat_id, offer_name, cents, charge.pix_code, expires_at,
                             retry_later, err, errlen);
        rst_charge_clear (&charge);
        return rc;
    }
    *retry_later = 1;
    snprintf (err, errlen, "could not open a payment");
    return -1;
}

// ---------------------------------------------------------------------------
//  Joins through an invite link

static int
s_on_member (rst_funnel_t *self, const rst_bot_t *bot, const rst_tgupdate_t *u, int *retry_later,
             char *err, size_t errlen)
{
    if (!u->invite_link[0] || strcmp (u->member_status, "member"))
        return 0;
    char bot_id[24];
    snprintf (bot_id, sizeof bot_id, "%" PRId64, bot->id);
    const char *params[] = {bot_id, u->invite_link};
    PGresult *res = s_q (self, "join",
                         "UPDATE payments SET joined_at = now() "
                         "WHERE bot_id = $1 AND invite_link = $2 AND joined_at IS NULL RETURNING id",
                         2, params);
    if (!res) {
        *retry_later = 1;
        snprintf (err, errlen, "database unavailable");
        return -1;
    }
    int ours = PQntuples (res) == 1;
    PQclear (res);
    if (!ours)
        return 0;
    atomic_fetch_add (&self->env->stats.joins, 1);
    s_tg_call_t call = {.kind = S_TG_REVOKE, .chat_id = u->chat_id, .link = u->invite_link};
    if (s_tg (self, bot, &call, retry_later, err, errlen))
        rst_warn (S_CLS, "@%s: could not revoke a used invite link: %s (it expires anyway)",
                  bot->username, err);
    return 0;
}

// ---------------------------------------------------------------------------
//  Updates

int
rst_funnel_update (rst_funnel_t *self, int64_t bot_id, int64_t update_id)
{
    rst_funnel_env_t *env = self->env;
    char b[24], id[24], lease[24];
    snprintf (b, sizeof b, "%" PRId64, bot_id);
    snprintf (id, sizeof id, "%" PRId64, update_id);
    snprintf (lease, sizeof lease, "%d", env->lease_s > 0 ? env->lease_s : RST_FUNNEL_LEASE_S);
    const char *params[] = {b, id, lease};
    PGresult *res = s_q (self, "claim update",
                         "UPDATE tg_updates SET attempts = attempts + 1, "
                         "  lease_until = now() + make_interval(secs => $3::int) "
                         "WHERE bot_id = $1 AND update_id = $2 AND handled_at IS NULL "
                         "  AND (lease_until IS NULL OR lease_until < now()) RETURNING body::text, attempts",
                         3, params);
    if (!res)
        return -1;
    if (PQntuples (res) != 1) {
        PQclear (res);
        return 1;   //  handled already, or another worker holds it
    }
    cJSON *json = cJSON_Parse (PQgetvalue (res, 0, 0));
    int attempts = (int) s_int (res, 0, 1);
    PQclear (res);

    char err[512] = "";
    int retry_later = 0, rc = 0;
    rst_tgupdate_t *u = calloc (1, sizeof *u);
    rst_bot_t bot;
    if (!u) {
        rc = -1;
        retry_later = 1;
        snprintf (err, sizeof err, "out of memory");
    }
    else if (rst_botreg_get (env->registry, bot_id, 1, &bot)) {
        rc = -1;
        retry_later = 1;
        snprintf (err, sizeof err, "bot %" PRId64 " is not loaded (disabled or no token)", bot_id);
        memset (&bot, 0, sizeof bot);
    }
    else if (!json || rst_tgupdate_parse (json, u, err, sizeof err)) {
        //  Nothing to do with an update we cannot read, ever: handled.
        rst_warn (S_CLS, "@%s: update %" PRId64 " ignored: %s", bot.username, update_id,
                  err[0] ? err : "not JSON");
        err[0] = 0;
    }
    else if (u->kind == RST_TGU_MESSAGE && u->is_start && !u->is_bot
             && !strcmp (u->chat_type, "private"))
        rc = s_on_start (self, &bot, u, &retry_later, err, sizeof err);
    else if (u->kind == RST_TGU_CALLBACK) {
        //  Answer first: the client shows a spinner until then, and late
        //  answers fail.
        char answer_err[256];
        s_tg_call_t call = {.kind = S_TG_ANSWER, .callback_id = u->callback_id,
                            .html = "Gerando seu PIX…"};
        int buy = !strncmp (u->callback_data, "buy:", 4);
        if (!buy)
            call.html = NULL;
        if (s_tg (self, &bot, &call, NULL, answer_err, sizeof answer_err))
            rst_debug (S_CLS, "@%s: answerCallbackQuery: %s", bot.username, answer_err);
        char *end = NULL;
        long long offer = buy ? strtoll (u->callback_data + 4, &end, 10) : 0;
        if (buy && end && !*end && offer > 0)
            rc = s_on_buy (self, &bot, u, offer, &retry_later, err, sizeof err);
    }
    else if (u->kind == RST_TGU_CHAT_MEMBER)
        rc = s_on_member (self, &bot, u, &retry_later, err, sizeof err);

    int done = rc == 0 || !retry_later || attempts >= 10;
    if (rc && !retry_later)
        rst_error (S_CLS, "@%s: update %" PRId64 " failed for good: %s", bot.username, update_id, err);
    else if (rc && done)
        rst_error (S_CLS, "@%s: update %" PRId64 " given up after %d attempts: %s", bot.username,
                   update_id, attempts, err);
    else if (rc)
        rst_warn (S_CLS, "@%s: update %" PRId64 " will be retried: %s", bot.username, update_id, err);
    const char *p_done[] = {b, id, err[0] ? err : NULL, done ? "t" : "f"};
    PQclear (s_q (self, "update done",
                  "UPDATE tg_updates SET last_error = $3, "
                  "  handled_at = CASE WHEN $4::boolean THEN now() END, "
                  "  lease_until = CASE WHEN $4::boolean THEN NULL "
                  "                     ELSE now() + make_interval(secs => least(300, 5 * attempts)) END "
                  "WHERE bot_id = $1 AND update_id = $2",
                  4, p_done));
    atomic_fetch_add (rc ? &env->stats.update_failures : &env->stats.updates, 1);
    rst_bot_clear (&bot);
    cJSON_Delete (json);
    free (u);
    return rc == 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------
//  Payments

int
rst_funnel_confirm (rst_funnel_t *self, int64_t payment_id, const char *why)
{
    rst_funnel_env_t *env = self->env;
    char pid[24];
    snprintf (pid, sizeof pid, "%" PRId64, payment_id);
    const char *params[] = {pid};
    PGresult *res = s_q (self, "payment",
                         "SELECT p.status, p.charge_id, p.amount_cents, p.bot_id, p.offer_id, "
                         "  o.name, l.id, l.tg_user_id, l.click_id, l.pool_id, l.pixel_id, p.owner_id "
                         "FROM payments p JOIN offers o ON o.id = p.offer_id "
                         "JOIN leads l ON l.id = p.lead_id WHERE p.id = $1",
                         1, params);
    if (!res)
        return -1;
    if (PQntuples (res) != 1 || strcmp (PQgetvalue (res, 0, 0), "pending") || PQgetisnull (res, 0, 1)) {
        PQclear (res);
        return 0;
    }
    char charge_id[RST_GW_CHARGE_ID_MAX], offer_id[24], offer_name[200];
    snprintf (charge_id, sizeof charge_id, "%s", PQgetvalue (res, 0, 1));
    int64_t cents = s_int (res, 0, 2);
    int64_t bot_id = s_int (res, 0, 3);
    snprintf (offer_id, sizeof offer_id, "%s", PQgetvalue (res, 0, 4));
    snprintf (offer_name, sizeof offer_name, "%s", PQgetvalue (res, 0, 5));
    s_lead_t lead = {.lead_id = s_int (res, 0, 6), .tg_user_id = s_int (res, 0, 7),
                     .pool_id = s_int (res, 0, 9), .owner_id = s_int (res, 0, 11), .bot_id = bot_id};
    snprintf (lead.click_id, sizeof lead.click_id, "%s", s_str (res, 0, 8) ? s_str (res, 0, 8) : "");
    PQclear (res);

    rst_bot_t bot;
    if (rst_botreg_get (env->registry, bot_id, 1, &bot))
        return -1;
    snprintf (lead.pixel_id, sizeof lead.pixel_id, "%s", bot.organic_pixel);
    const char *p_px[] = {pid};
    PGresult *px = s_q (self, "lead pixel",
                        "SELECT l.pixel_id FROM payments p JOIN leads l ON l.id = p.lead_id "
                        "WHERE p.id = $1 AND l.pixel_id IS NOT NULL", 1, p_px);
    if (px && PQntuples (px) == 1)
        snprintf (lead.pixel_id, sizeof lead.pixel_id, "%s", PQgetvalue (px, 0, 0));
    PQclear (px);

    char err[256];
    rst_gateway_t *gw = s_gateway (self, &bot, err, sizeof err);
    if (!gw) {
        rst_error (S_CLS, "payment %" PRId64 ": cannot check it: %s", payment_id, err);
        rst_bot_clear (&bot);
        return -1;
    }
    rst_charge_t charge = {0};
    rst_gw_result_t gr = rst_gateway_read (gw, charge_id, &charge, err, sizeof err);
    PQclear (s_q (self, "checked", "UPDATE payments SET checked_at = now() WHERE id = $1", 1, params));
    int rc = 0;
    if (gr == RST_GW_TRANSIENT) {
        rst_warn (S_CLS, "payment %" PRId64 " (%s): gateway unavailable: %s", payment_id, why, err);
        rc = -1;
    }
    else if (gr != RST_GW_OK) {
        rst_warn (S_CLS, "payment %" PRId64 " (%s): the gateway does not confirm charge %s: %s",
                  payment_id, why, charge_id, err);
    }
    else if (charge.status == RST_CHARGE_PAID) {
        if (charge.amount_cents >= 0 && charge.amount_cents != cents) {
            atomic_fetch_add (&env->stats.amount_mismatches, 1);
            rst_error (S_CLS, "payment %" PRId64 " (%s): charge %s paid %" PRId64 " centavos, "
                       "expected %" PRId64 ": not accepted, left pending for a person to look at",
                       payment_id, why, charge_id, charge.amount_cents, cents);
            char note[128];
            snprintf (note, sizeof note, "amount mismatch: paid %" PRId64 ", expected %" PRId64,
                      charge.amount_cents, cents);
            const char *p_note[] = {pid, note};
            PQclear (s_q (self, "mismatch", "UPDATE payments SET last_error = $2 WHERE id = $1", 2,
                          p_note));
        }
        else {
            char event_id[40];
            snprintf (event_id, sizeof event_id, "pur-%" PRId64, payment_id);
            //  Journal first: a crash before the UPDATE repeats this with the
            //  same event_id, which the pipeline de-duplicates.
            if (s_emit (self, RST_EVENT_PAYMENT, event_id, &lead, offer_id, offer_name, cents,
                        charge_id))
                rc = -1;
            else {
                PGresult *up = s_q (self, "paid",
                                    "UPDATE payments SET status = 'paid', paid_at = now(), "
                                    "  delivery_status = 'pending', last_error = NULL "
                                    "WHERE id = $1 AND status = 'pending' RETURNING id",
                                    1, params);
                if (!up)
                    rc = -1;
                else if (PQntuples (up) == 1) {
                    atomic_fetch_add (&env->stats.purchases, 1);
                    rst_info (S_CLS, "payment %" PRId64 " paid (%s, charge %s, %" PRId64
                              " centavos): Purchase emitted", payment_id, why, charge_id, cents);
                    PQclear (up);
                    up = NULL;
                    rst_funnel_deliver (self, payment_id);
                }
                PQclear (up);
            }
        }
    }
    else if (charge.status == RST_CHARGE_EXPIRED || charge.status == RST_CHARGE_FAILED
             || charge.status == RST_CHARGE_REFUNDED) {
        const char *to = charge.status == RST_CHARGE_EXPIRED  ? "expired"
                       : charge.status == RST_CHARGE_FAILED   ? "failed"
                                                              : "refunded";
        const char *p_to[] = {pid, to};
        PQclear (s_q (self, "close payment",
                      "UPDATE payments SET status = $2 WHERE id = $1 AND status = 'pending'", 2, p_to));
        rst_info (S_CLS, "payment %" PRId64 " (%s): charge %s is %s", payment_id, why, charge_id,
                  charge.status_text);
    }
    rst_charge_clear (&charge);
    rst_bot_clear (&bot);
    return rc;
}

int
rst_funnel_deliver (rst_funnel_t *self, int64_t payment_id)
{
    rst_funnel_env_t *env = self->env;
    char pid[24];
    snprintf (pid, sizeof pid, "%" PRId64, payment_id);
    const char *params[] = {pid};
    PGresult *res = s_q (self, "delivery",
                         "SELECT p.bot_id, l.chat_id, o.deliver_chat_id, o.deliver_text, o.name, "
                         "  p.delivery_attempts "
                         "FROM payments p JOIN offers o ON o.id = p.offer_id "
                         "JOIN leads l ON l.id = p.lead_id "
                         "WHERE p.id = $1 AND p.status = 'paid' AND p.delivery_status = 'pending'",
                         1, params);
    if (!res)
        return -1;
    if (PQntuples (res) != 1) {
        PQclear (res);
        return 0;
    }
    int64_t bot_id = s_int (res, 0, 0), chat_id = s_int (res, 0, 1);
    int64_t group = PQgetisnull (res, 0, 2) ? 0 : s_int (res, 0, 2);
    char *text = s_str (res, 0, 3) ? strdup (s_str (res, 0, 3)) : NULL;
    char name[400];
    s_html (PQgetvalue (res, 0, 4), name, sizeof name);
    int attempts = (int) s_int (res, 0, 5);
    PQclear (res);

    rst_bot_t bot;
    char err[512] = "";
    int rc = -1;
    char link[RST_TELEGRAM_FILE_ID_MAX] = "";
    if (rst_botreg_get (env->registry, bot_id, 0, &bot)) {
        snprintf (err, sizeof err, "bot %" PRId64 " is not loaded", bot_id);
        memset (&bot, 0, sizeof bot);
    }
    else if (group) {
        char link_name[33];
        snprintf (link_name, sizeof link_name, "rastro #%" PRId64, payment_id);
        s_tg_call_t call = {.kind = S_TG_INVITE, .chat_id = group, .html = link_name,
                            .expire_date = (int64_t) time (NULL) + RST_FUNNEL_INVITE_TTL_S,
                            .link_out = link};
        rc = s_tg (self, &bot, &call, NULL, err, sizeof err);
        if (rc == 0) {
            char html[800];
            snprintf (html, sizeof html,
                      "✅ <b>Pagamento confirmado!</b>\nSeu acesso a %s: %s\n"
                      "O link é só seu, vale para uma pessoa e expira em 1 hora.",
                      name, link);
            rc = s_send_text (self, &bot, chat_id, html, NULL, 0, NULL, err, sizeof err);
        }
    }
    else {
        size_t n = strlen (text ? text : "") + 64;
        char *html = malloc (n);
        if (html) {
            snprintf (html, n, "✅ <b>Pagamento confirmado!</b>\n\n%s", text ? text : "");
            rc = s_send_text (self, &bot, chat_id, html, NULL, 0, NULL, err, sizeof err);
            free (html);
        }
    }
    free (text);
    if (rc == 0) {
        const char *p_ok[] = {pid, link[0] ? link : NULL};
        PQclear (s_q (self, "delivered",
                      "UPDATE payments SET delivery_status = 'sent', delivered_at = now(), "
                      "  invite_link = $2, delivery_attempts = delivery_attempts + 1, "
                      "  delivery_error = NULL WHERE id = $1",
                      2, p_ok));
        atomic_fetch_add (&env->stats.deliveries, 1);
        rst_info (S_CLS, "payment %" PRId64 ": access delivered", payment_id);
    }
    else {
        int give_up = attempts + 1 >= RST_FUNNEL_DELIVERY_TRIES;
        const char *p_bad[] = {pid, err, give_up ? "failed" : "pending"};
        PQclear (s_q (self, "delivery failed",
                      "UPDATE payments SET delivery_attempts = delivery_attempts + 1, "
                      "  delivery_error = $2, delivery_status = $3 WHERE id = $1",
                      3, p_bad));
        atomic_fetch_add (&env->stats.delivery_failures, 1);
        rst_error (S_CLS, "payment %" PRId64 ": delivery attempt %d failed%s: %s", payment_id,
                   attempts + 1, give_up ? " (gave up: see rastro payment list)" : "", err);
    }
    rst_bot_clear (&bot);
    return rc;
}
