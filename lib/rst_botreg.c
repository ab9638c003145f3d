/*  rst_botreg — see rst_botreg.h. */
#include "rst_botreg.h"
#include "rst_log.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CLS "bots"

struct rst_botreg_t {
    pthread_mutex_t lock;
    rst_bot_t *bots;            //  sorted by id
    size_t count;
    uint64_t version;
    unsigned char digest[32];   //  of the last load, to see whether anything changed
};

void
rst_bot_clear (rst_bot_t *bot)
{
    if (!bot)
        return;
    if (bot->gateway_credentials) {
        sodium_memzero (bot->gateway_credentials, strlen (bot->gateway_credentials));
        free (bot->gateway_credentials);
    }
    sodium_memzero (bot, sizeof *bot);
}

static void
s_free_all (rst_bot_t *bots, size_t count)
{
    for (size_t i = 0; i < count; i++)
        rst_bot_clear (&bots[i]);
    free (bots);
}

rst_botreg_t *
rst_botreg_new (void)
{
    rst_botreg_t *self = calloc (1, sizeof *self);
    if (self)
        pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
rst_botreg_destroy (rst_botreg_t **self_p)
{
    assert (self_p);
    rst_botreg_t *self = *self_p;
    if (!self)
        return;
    s_free_all (self->bots, self->count);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

static const char s_load_sql[]
    = "SELECT b.id, b.owner_id, b.telegram_id, b.username, b.token_enc, b.enabled, "
      "       b.update_mode = 'webhook', b.poll_offset, "
      "       COALESCE(fp.pool_id, 0), COALESCE(fp.pixel_id, ''), "
      "       g.kind, g.credentials_enc, "
      "       COALESCE((extract(epoch FROM g.updated_at) * 1000000)::bigint, 0) "
      "FROM bots b "
      "LEFT JOIN gateways g ON g.bot_id = b.id "
      "LEFT JOIN LATERAL (SELECT p.id AS pool_id, x.pixel_id FROM pool_bots pb "
      "                   JOIN pools p ON p.id = pb.pool_id JOIN pixels x ON x.id = p.pixel_ref "
      "                   WHERE pb.bot_id = b.id ORDER BY p.id LIMIT 1) fp ON true "
      "ORDER BY b.id";

static int64_t
s_int (const PGresult *res, int row, int col)
{
    return strtoll (PQgetvalue (res, row, col), NULL, 10);
}

static void
s_copy (char *dst, size_t size, const char *src)
{
    snprintf (dst, size, "%s", src ? src : "");
}

int
rst_botreg_reload (rst_botreg_t *self, PGconn *conn, rst_secret_t *secret, char *err,
                   size_t errlen)
{
    assert (self && conn);
    //  Text results, except the two sealed columns: binary would need every
    //  column in binary, so the sealed ones come back hex-escaped and are
    //  unescaped here.
    PGresult *res = PQexec (conn, s_load_sql);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        snprintf (err, errlen, "loading bots: %s", PQerrorMessage (conn));
        PQclear (res);
        return -1;
    }
    int n = PQntuples (res);
    rst_bot_t *bots = calloc (n > 0 ? (size_t) n : 1, sizeof *bots);
    if (!bots) {
        PQclear (res);
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    crypto_generichash_state hash;
    crypto_generichash_init (&hash, NULL, 0, 32);
    size_t count = 0;
    for (int r = 0; r < n; r++) {
        rst_bot_t *b = &bots[count];
        b->id = s_int (res, r, 0);
        b->owner_id = s_int (res, r, 1);
        b->telegram_id = s_int (res, r, 2);
        s_copy (b->username, sizeof b->username, PQgetvalue (res, r, 3));
        b->enabled = PQgetvalue (res, r, 5)[0] == 't';
        b->webhook = PQgetvalue (res, r, 6)[0] == 't';
        b->poll_offset = s_int (res, r, 7);
        b->organic_pool_id = s_int (res, r, 8);
        s_copy (b->organic_pixel, sizeof b->organic_pixel, PQgetvalue (res, r, 9));
        b->gateway_kind = -1;
        for (int c = 0; c < PQnfields (res); c++)
            if (c != 4 && c != 11 && c != 7)      //  secrets and the moving offset are not hashed
                crypto_generichash_update (&hash, (const unsigned char *) PQgetvalue (res, r, c),
                                           (size_t) PQgetlength (res, r, c) + 1);
        size_t len = 0;
        unsigned char *sealed = PQunescapeBytea ((const unsigned char *) PQgetvalue (res, r, 4), &len);
        char *token = secret && sealed ? rst_secret_open (secret, sealed, len) : NULL;
        PQfreemem (sealed);
        if (!token || rst_telegram_token_check (token, err, errlen)) {
            rst_warn (S_CLS, "bot @%s: its token cannot be opened with the master key; skipped "
                             "(re-add the bot)", b->username);
            rst_secret_free (token);
            sodium_memzero (b, sizeof *b);
            continue;
        }
        s_copy (b->token, sizeof b->token, token);
        rst_secret_free (token);
        if (!PQgetisnull (res, r, 10)) {
            const char *kind = PQgetvalue (res, r, 10);
            b->gateway_kind = !strcmp (kind, "mercadopago") ? 0 : !strcmp (kind, "pushinpay") ? 1
                            : !strcmp (kind, "syncpay")     ? 2 : -1;
            b->gateway_version = s_int (res, r, 12);
            sealed = PQunescapeBytea ((const unsigned char *) PQgetvalue (res, r, 11), &len);
            char *creds = secret && sealed ? rst_secret_open (secret, sealed, len) : NULL;
            PQfreemem (sealed);
            if (creds)
                b->gateway_credentials = strdup (creds);
            rst_secret_free (creds);
            if (!b->gateway_credentials) {
                rst_warn (S_CLS, "bot @%s: its gateway credentials cannot be opened; no checkout "
                                 "until `rastro gateway set` is run again", b->username);
                b->gateway_kind = -1;
            }
        }
        count++;
    }
    PQclear (res);
    unsigned char digest[32];
    crypto_generichash_final (&hash, digest, sizeof digest);

    pthread_mutex_lock (&self->lock);
    rst_bot_t *old = self->bots;
    size_t old_count = self->count;
    self->bots = bots;
    self->count = count;
    if (memcmp (digest, self->digest, sizeof digest) || self->version == 0) {
        memcpy (self->digest, digest, sizeof digest);
        self->version++;
    }
    pthread_mutex_unlock (&self->lock);
    s_free_all (old, old_count);
    return (int) count;
}

static rst_bot_t *
s_find (rst_botreg_t *self, int64_t bot_id)
{
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (self->bots[mid].id == bot_id)
            return &self->bots[mid];
        if (self->bots[mid].id < bot_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int
rst_botreg_get (rst_botreg_t *self, int64_t bot_id, int with_credentials, rst_bot_t *out)
{
    assert (self && out);
    memset (out, 0, sizeof *out);
    pthread_mutex_lock (&self->lock);
    rst_bot_t *b = s_find (self, bot_id);
    int rc = -1;
    if (b) {
        *out = *b;
        out->gateway_credentials = NULL;
        if (with_credentials && b->gateway_credentials)
            out->gateway_credentials = strdup (b->gateway_credentials);
        if (with_credentials && b->gateway_credentials && !out->gateway_credentials)
            out->gateway_kind = -1;
        rc = 0;
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
rst_botreg_polling (rst_botreg_t *self, rst_bot_t **out)
{
    assert (self && out);
    pthread_mutex_lock (&self->lock);
    rst_bot_t *list = calloc (self->count ? self->count : 1, sizeof *list);
    int n = 0;
    for (size_t i = 0; list && i < self->count; i++) {
        if (!self->bots[i].enabled || self->bots[i].webhook)
            continue;
        list[n] = self->bots[i];
        list[n].gateway_credentials = NULL;
        n++;
    }
    pthread_mutex_unlock (&self->lock);
    *out = list;
    return list ? n : -1;
}

uint64_t
rst_botreg_version (rst_botreg_t *self)
{
    pthread_mutex_lock (&self->lock);
    uint64_t v = self->version;
    pthread_mutex_unlock (&self->lock);
    return v;
}

size_t
rst_botreg_count (rst_botreg_t *self)
{
    pthread_mutex_lock (&self->lock);
    size_t n = self->count;
    pthread_mutex_unlock (&self->lock);
    return n;
}
