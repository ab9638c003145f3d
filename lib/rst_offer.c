/*  rst_offer — the checks on an offer's fields (see rst_offer.h), shared by
    the command line and the API so that both accept exactly the same offers.

    The HTML check follows core.telegram.org/bots/api#html-style: the tags
    b, strong, i, em, u, ins, s, strike, del, span class="tg-spoiler",
    tg-spoiler, a href, code (class="language-..."), pre and blockquote
    (expandable), balanced and at most S_HTML_DEPTH deep; '<' and '&' only
    as tags and entities. It is a checker, not a sanitizer: it never
    rewrites the text, so what is stored is what the seller wrote.
*/
#include "rst_offer.h"
#include "rst_utf8.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define S_HTML_DEPTH    32              //  nesting levels rst_offer_check_html follows
#define S_TAG_MAX       16              //  longest tag name worth reporting in full

int
rst_offer_check_name (const char *name, const char *what, char *err, size_t errlen)
{
    long chars = rst_utf8_chars (name, strlen (name));
    if (chars < 0) {
        snprintf (err, errlen, "%s is not valid UTF-8 text", what);
        return -1;
    }
    if (chars < 1 || chars > RST_OFFER_NAME_MAX) {
        snprintf (err, errlen, "%s must have 1 to %d characters (it has %ld)", what,
                  RST_OFFER_NAME_MAX, chars);
        return -1;
    }
    for (const char *s = name; *s; s++)
        if ((unsigned char) *s < ' ' || *s == 127) {
            snprintf (err, errlen, "%s holds a control character (a line break or a tab?): the "
                      "name is one line, the buy button's text", what);
            return -1;
        }
    return 0;
}

int
rst_offer_check_text (const char *text, const char *what, char *err, size_t errlen)
{
    long chars = rst_utf8_chars (text, strlen (text));
    if (chars < 0) {
        snprintf (err, errlen, "%s is not valid UTF-8 text", what);
        return -1;
    }
    if (chars < 1 || chars > RST_OFFER_TEXT_MAX) {
        snprintf (err, errlen, "%s must have 1 to %d characters (it has %ld)", what,
                  RST_OFFER_TEXT_MAX, chars);
        return -1;
    }
    return 0;
}

int
rst_offer_check_chat (long long chat_id, const char *what, char *err, size_t errlen)
{
    if (chat_id >= 0) {
        snprintf (err, errlen, "%s %lld is not a group or channel id: it is negative, e.g. "
                  "-1001234567890 (the bot must be an admin there)", what, chat_id);
        return -1;
    }
    return 0;
}

//  The tags Telegram's parse_mode=HTML knows (core.telegram.org/bots/api#html-style).
static const char *const s_tags[] = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del",
                                     "span", "tg-spoiler", "a", "code", "pre", "blockquote",
                                     NULL};

#define S_TAGS_ALLOWED "b, strong, i, em, u, ins, s, strike, del, span class=\"tg-spoiler\", " \
                       "tg-spoiler, a href, code, pre, blockquote"

//  Parses an attribute value at *P (quoted with " or ', or bare) into
//  VALUE (VALUELEN bytes, truncated). Returns 0 with *P past it, or -1.
static int
s_attr_value (const char **p, char *value, size_t valuelen)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '"' || *s == '\'') {
        char quote = *s++;
        for (; *s && *s != quote; s++)
            if (n + 1 < valuelen)
                value[n++] = *s;
        if (*s != quote)
            return -1;
        s++;
    }
    else {
        for (; *s && !isspace ((unsigned char) *s) && *s != '>'; s++) {
            if (strchr ("\"'<=`", *s))
                return -1;
            if (n + 1 < valuelen)
                value[n++] = *s;
        }
        if (n == 0)
            return -1;
    }
    value[n] = 0;
    *p = s;
    return 0;
}

//  Checks one tag at HTML[*I] (a '<'). Pushes or pops STACK (depth
//  *DEPTH). Returns 0 with *I at the '>' or -1 with a reason in ERR.
static int
s_check_tag (const char *html, size_t *i, char stack[][S_TAG_MAX + 1], int *depth, char *err,
             size_t errlen)
{
    const char *s = html + *i + 1;
    int closing = *s == '/';
    if (closing)
        s++;
    char name[S_TAG_MAX + 1];
    size_t n = 0, full = 0;
    for (; isalnum ((unsigned char) *s) || *s == '-'; s++, full++)
        if (n < S_TAG_MAX)
            name[n++] = (char) tolower ((unsigned char) *s);
    name[n] = 0;
    if (full == 0) {
        snprintf (err, errlen, "a '<' that starts no tag: write &lt; for a literal '<'");
        return -1;
    }
    int known = 0;
    for (const char *const *t = s_tags; *t && !known; t++)
        known = full <= S_TAG_MAX && !strcmp (*t, name);
    if (!known) {
        snprintf (err, errlen, "tag <%s%s> is not allowed by Telegram (allowed: %s)", name,
                  full > S_TAG_MAX ? "..." : "", S_TAGS_ALLOWED);
        return -1;
    }
    //  Attributes: a href (required), span class="tg-spoiler" (required),
    //  code class="language-..." and blockquote expandable (optional).
    int has_href = 0, has_spoiler = 0;
    while (1) {
        int space = isspace ((unsigned char) *s);
        while (isspace ((unsigned char) *s))
            s++;
        if (*s == '>' || *s == 0)
            break;
        char attr[S_TAG_MAX + 1], value[256];
        size_t an = 0;
        for (; isalpha ((unsigned char) *s) || *s == '-'; s++)
            if (an < S_TAG_MAX)
                attr[an++] = (char) tolower ((unsigned char) *s);
        attr[an] = 0;
        value[0] = 0;
        int has_value = 0;
        if (an > 0 && *s == '=') {
            s++;
            if (s_attr_value (&s, value, sizeof value)) {
                snprintf (err, errlen, "tag <%s>: attribute %s has a malformed value", name, attr);
                return -1;
            }
            has_value = 1;
        }
        if (an == 0 || !space) {
            snprintf (err, errlen, "tag <%s%s> is malformed (a tag is <name attribute=\"value\">)",
                      closing ? "/" : "", name);
            return -1;
        }
        if (closing) {
            snprintf (err, errlen, "closing tag </%s> has attributes", name);
            return -1;
        }
        if (!strcmp (name, "a") && !strcmp (attr, "href") && !value[0]) {
            snprintf (err, errlen, "tag <a>: href is empty (write href=\"https://...\")");
            return -1;
        }
        if (!strcmp (name, "a") && !strcmp (attr, "href") && !has_href)
            has_href = 1;
        else if (!strcmp (name, "span") && !strcmp (attr, "class")
                 && !strcmp (value, "tg-spoiler") && !has_spoiler)
            has_spoiler = 1;
        else if (!strcmp (name, "code") && !strcmp (attr, "class")
                 && !strncmp (value, "language-", 9) && value[9])
            ;
        else if (!strcmp (name, "blockquote") && !strcmp (attr, "expandable") && !has_value)
            ;
        else {
            snprintf (err, errlen, "tag <%s>: attribute %s%s%s is not allowed by Telegram "
                      "(allowed: %s)", name, attr, has_value ? "=" : "",
                      has_value ? "..." : "", S_TAGS_ALLOWED);
            return -1;
        }
    }
    if (*s != '>') {
        snprintf (err, errlen, "tag <%s%s> is not closed with '>'", closing ? "/" : "", name);
        return -1;
    }
    if (!closing && !strcmp (name, "a") && !has_href) {
        snprintf (err, errlen, "tag <a> needs href=\"...\"");
        return -1;
    }
    if (!closing && !strcmp (name, "span") && !has_spoiler) {
        snprintf (err, errlen, "tag <span> needs class=\"tg-spoiler\" (the only span Telegram "
                  "knows)");
        return -1;
    }
    if (closing) {
        if (*depth == 0) {
            snprintf (err, errlen, "</%s> closes nothing", name);
            return -1;
        }
        if (strcmp (stack[*depth - 1], name)) {
            snprintf (err, errlen, "</%s> closes <%s>: close tags in the reverse order you "
                      "opened them", name, stack[*depth - 1]);
            return -1;
        }
        (*depth)--;
    }
    else {
        if (*depth == S_HTML_DEPTH) {
            snprintf (err, errlen, "tags are nested more than %d deep", S_HTML_DEPTH);
            return -1;
        }
        snprintf (stack[(*depth)++], S_TAG_MAX + 1, "%s", name);
    }
    *i = (size_t) (s - html);
    return 0;
}

//  The named entities Telegram's HTML knows (all numeric ones work too).
static const char *const s_entities[] = {"lt", "gt", "amp", "quot", NULL};

//  Checks that HTML (NUL-terminated) is text Telegram accepts with
//  parse_mode=HTML: only its tags and attributes, tags balanced, '<' and
//  '&' escaped (entities &lt; &gt; &amp; &quot; and numeric ones), and some
//  visible text. Returns 0, or -1 with "line N: reason" in ERR.
int
rst_offer_check_html (const char *html, char *err, size_t errlen)
{
    char stack[S_HTML_DEPTH][S_TAG_MAX + 1];
    int depth = 0, line = 1, visible = 0;
    char why[512];
    for (size_t i = 0; html[i]; i++) {
        char c = html[i];
        if (c == '\n')
            line++;
        else if (c == '<') {
            size_t start = i;
            if (s_check_tag (html, &i, stack, &depth, why, sizeof why))
                goto fail;
            for (size_t k = start; k < i; k++)
                line += html[k] == '\n';
        }
        else if (c == '&') {
            const char *s = html + i + 1;
            size_t n = 0;
            if (*s == '#') {
                int hex = s[1] == 'x' || s[1] == 'X';
                n = 1 + hex;
                size_t digits = hex ? strspn (s + n, "0123456789abcdefABCDEF")
                                    : strspn (s + n, "0123456789");
                n = digits >= 1 && digits <= 7 ? n + digits : 0;
            }
            else
                for (const char *const *e = s_entities; *e && !n; e++)
                    if (!strncmp (s, *e, strlen (*e)))
                        n = strlen (*e);
            if (n == 0 || s[n] != ';') {
                snprintf (why, sizeof why, "'&' starts no entity Telegram knows: write &amp; for "
                          "a literal '&' (entities: &lt; &gt; &amp; &quot; &#NNN;)");
                goto fail;
            }
            i += n + 1;
            visible = 1;
        }
        else if (!isspace ((unsigned char) c))
            visible = 1;
    }
    if (depth > 0) {
        snprintf (err, errlen, "<%s> is never closed", stack[depth - 1]);
        return -1;
    }
    if (!visible) {
        snprintf (err, errlen, "it has no visible text (Telegram refuses empty messages)");
        return -1;
    }
    return 0;
fail:
    snprintf (err, errlen, "line %d: %s", line, why);
    return -1;
}
