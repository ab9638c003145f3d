/*  rst_offer — the checks on an offer's fields, shared by `rastro offer`
    (nodes/rastro/cmd_offer.c) and the dashboard's API (rst_apiadmin.c).

    An offer (table offers, 004_bots.sql) is one product of one bot. These
    functions hold the rules its fields obey beyond the table's CHECKs:
    UTF-8 text, no control characters in a name, a delivery chat that is a
    group or channel (a negative id), and a welcome message in the HTML
    subset Telegram's parse_mode=HTML accepts. Each check returns 0, or -1
    with a one-line reason in ERR that starts with WHAT (the field's name as
    the caller's user knows it: "--name" on the command line, "name" in
    JSON).
*/
#ifndef RST_OFFER_H
#define RST_OFFER_H

#include <stddef.h>

#define RST_OFFER_NAME_MAX    128           //  characters (offers.name CHECK)
#define RST_OFFER_TEXT_MAX    4096          //  characters of deliver_text (a Telegram message)
#define RST_OFFER_WELCOME_MAX 4096          //  bytes of welcome_html
#define RST_OFFER_PRICE_MIN   50            //  centavos (PushinPay's minimum charge)
#define RST_OFFER_PRICE_MAX   100000000     //  centavos: R$ 1,000,000.00

//  Checks an offer name: UTF-8, 1 to RST_OFFER_NAME_MAX characters, no
//  control characters. Returns 0 or -1 with a reason in ERR.
int rst_offer_check_name (const char *name, const char *what, char *err, size_t errlen);

//  Checks a delivery text: UTF-8, 1 to RST_OFFER_TEXT_MAX characters.
//  Returns 0 or -1 with a reason in ERR.
int rst_offer_check_text (const char *text, const char *what, char *err, size_t errlen);

//  Checks a delivery chat id: a group or channel, i.e. negative and not 0.
//  Returns 0 or -1 with a reason in ERR.
int rst_offer_check_chat (long long chat_id, const char *what, char *err, size_t errlen);

//  Checks that HTML (NUL-terminated) is text Telegram accepts with
//  parse_mode=HTML: only its tags and attributes, tags balanced, '<' and
//  '&' escaped (entities &lt; &gt; &amp; &quot; and numeric ones), and some
//  visible text. Does not check the length. Returns 0, or -1 with
//  "line N: reason" (or a reason about the whole text) in ERR.
int rst_offer_check_html (const char *html, char *err, size_t errlen);

#endif
