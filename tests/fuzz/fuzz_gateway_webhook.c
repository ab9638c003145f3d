/*  fuzz_gateway_webhook — gateway webhook parsing and authentication against arbitrary bytes.

    The front hands every POST /webhook/<kind> to rst_gateway_webhook_parse
    and rst_gateway_webhook_auth before anything else, so both must survive
    any request. Input layout (text-friendly, '\n' separates the first five
    fields, the body is the rest):

        <kind byte: '0' mercadopago, '1' pushinpay, '2' syncpay (byte % 3)>
        query \n x-signature \n x-request-id \n x-pushinpay-token \n content-type \n body

    An empty field is an absent header. Every field is copied into its own
    exact-size buffer (no NUL) so that AddressSanitizer catches a read past
    a length. Checked promises: the parse returns one of its three kinds; a
    CHARGE notice has a valid NUL-terminated id; BAD comes with a reason;
    auth returns 0 or -1, and SyncPay's is always 0. The body is also given
    to the credentials check and webhook secret lookup. now_s is fixed
    (1767225600) so that seeds can carry a fresh, correctly signed
    Mercado Pago webhook (secret "mp-webhook-secret-1").
*/
#include "rst_gateway.h"
#include "rst_gateway_impl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_CHECK(cond)                                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            abort ();                                                                          \
    } while (0)

#define S_FIELDS 5

//  A copy of DATA[0..LEN) in a buffer of exactly LEN bytes (1 when empty).
static char *
s_copy (const uint8_t *data, size_t len)
{
    char *buf = malloc (len ? len : 1);
    S_CHECK (buf);
    if (len)
        memcpy (buf, data, len);
    return buf;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    rst_gw_kind_t kind = (rst_gw_kind_t) (data[0] % RST_GW_KINDS);
    const uint8_t *p = data + 1, *end = data + size;
    char *field[S_FIELDS] = {0};
    size_t field_len[S_FIELDS] = {0};
    for (int i = 0; i < S_FIELDS; i++) {
        const uint8_t *nl = p < end ? memchr (p, '\n', (size_t) (end - p)) : NULL;
        const uint8_t *stop = nl ? nl : end;
        field_len[i] = (size_t) (stop - p);
        field[i] = s_copy (p, field_len[i]);
        p = nl ? nl + 1 : end;
    }
    size_t body_len = (size_t) (end - p);
    char *body = s_copy (p, body_len);

    static const char *const names[] = {"x-signature", "x-request-id", "x-pushinpay-token"};
    rst_gw_header_t headers[3];
    size_t nheaders = 0;
    for (int i = 0; i < 3; i++) {
        if (!field_len[i + 1])
            continue;
        headers[nheaders].name = names[i];
        headers[nheaders].name_len = strlen (names[i]);
        headers[nheaders].value = field[i + 1];
        headers[nheaders].value_len = field_len[i + 1];
        nheaders++;
    }
    rst_gw_webhook_t wh = {
        .kind = kind,
        .query = field_len[0] ? field[0] : NULL,
        .query_len = field_len[0],
        .headers = headers,
        .nheaders = nheaders,
        .content_type = field_len[4] ? field[4] : NULL,
        .content_type_len = field_len[4],
        .body = body,
        .body_len = body_len,
        .now_s = 1767225600,
    };

    rst_gw_notice_t notice;
    char err[256];
    err[0] = 0;
    rst_gw_webhook_kind_t wk = rst_gateway_webhook_parse (&wh, &notice, err, sizeof err);
    S_CHECK (wk == RST_GW_WEBHOOK_CHARGE || wk == RST_GW_WEBHOOK_IGNORED
             || wk == RST_GW_WEBHOOK_BAD);
    S_CHECK (memchr (notice.charge_id, 0, sizeof notice.charge_id));
    S_CHECK (memchr (notice.status_hint, 0, sizeof notice.status_hint));
    if (wk == RST_GW_WEBHOOK_CHARGE)
        S_CHECK (rst_gw_id_is_valid (notice.charge_id, strlen (notice.charge_id)));
    else
        S_CHECK (notice.charge_id[0] == 0);
    if (wk == RST_GW_WEBHOOK_BAD)
        S_CHECK (err[0] != 0);

    static const char *const secrets[RST_GW_KINDS] = {"mp-webhook-secret-1", "pp-webhook-token",
                                                      NULL};
    int rc = rst_gateway_webhook_auth (&wh, &notice, secrets[kind], err, sizeof err);
    S_CHECK (rc == 0 || rc == -1);
    if (kind == RST_GW_SYNCPAY)
        S_CHECK (rc == 0);
    if (kind != RST_GW_SYNCPAY && rc == 0)
        S_CHECK (nheaders > 0);     //  authentic only with a signature or token header
    rc = rst_gateway_webhook_auth (&wh, &notice, NULL, err, sizeof err);
    S_CHECK (kind == RST_GW_SYNCPAY ? rc == 0 : rc == -1);

    //  The body as credentials.
    char *text = malloc (body_len + 1);
    S_CHECK (text);
    memcpy (text, body, body_len);
    text[body_len] = 0;
    err[0] = 0;
    rc = rst_gateway_credentials_check (kind, text, err, sizeof err);
    S_CHECK (rc == 0 || (rc == -1 && err[0]));
    char *secret = rst_gateway_webhook_secret (kind, text);
    if (secret) {
        S_CHECK (kind != RST_GW_SYNCPAY && secret[0]);
        free (secret);
    }
    free (text);

    free (body);
    for (int i = 0; i < S_FIELDS; i++)
        free (field[i]);
    return 0;
}
