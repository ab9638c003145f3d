/*  rst_topology — which nodes run, how many of each, and their endpoints.

    See rst_topology.h for the file format. The file is read once with
    libinih; every key keeps the line it came from, so that a mistake found
    later (an unknown reference, a bad placeholder, an endpoint that cannot
    be bound) is reported as "file:line: reason".

    Checked at load time, so that a node never starts on a broken file:
      - every section name is a plain word (it names a binary, rastro-<node>);
      - `instances` is a whole number from 1 to RST_TOPOLOGY_MAX_INSTANCES
        (absent means 1);
      - every value expands: only {data} and {i} are placeholders;
      - every reference (`<node>.<key>`, also inside a comma-separated list)
        names an existing section and key, and that key is not itself a
        reference (one level only, so there are no cycles).

    Instances are numbered from 0 to instances - 1; {i} is that number.

    Caveat: libinih reads lines of at most 199 characters; a longer line is
    an error rather than being silently cut.
*/
#include "rst_topology.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <zmq.h>

#define RST_TOPOLOGY_MAX_INSTANCES RST_TOPOLOGY_MAX_ENDPOINTS
#define RST_TOPOLOGY_VALUE_MAX     1024    //  an expanded value

typedef struct {
    char *key;          //  key name, as written
    char *value;        //  raw value, placeholders not expanded
    int line;           //  line of the file it came from
} s_entry_t;

typedef struct {
    char *name;         //  section name = node kind
    int line;           //  line of the section's first key
    int instances;      //  copies to run (>= 1)
    s_entry_t *entries; //  keys in file order
    size_t count;       //  entries used
    size_t cap;         //  entries allocated
} s_node_t;

struct rst_topology_t {
    char *file;         //  path as given to rst_topology_load
    char *data_dir;     //  replaces {data}; may be NULL (then {data} is an error)
    s_node_t *nodes;    //  sections in file order
    size_t count;       //  nodes used
    size_t cap;         //  nodes allocated
};

//  Parser state shared by the line reader and the key handler.
typedef struct {
    rst_topology_t *self;
    FILE *file;
    int line;           //  line number of the line inih is handling
    int at_line_start;  //  the previous chunk ended with a newline
    char *err;
    size_t errlen;
    int failed;         //  ERR holds the first error
} s_parse_t;

static void
s_fail (s_parse_t *ctx, int line, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_fail (s_parse_t *ctx, int line, const char *fmt, ...)
{
    if (ctx->failed)
        return;
    ctx->failed = 1;
    int n = snprintf (ctx->err, ctx->errlen, "%s:%d: ", ctx->self->file, line);
    if (n < 0 || (size_t) n >= ctx->errlen)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (ctx->err + n, ctx->errlen - (size_t) n, fmt, ap);
    va_end (ap);
}

static int
s_is_word (const char *s)
{
    if (!*s || strlen (s) >= RST_TOPOLOGY_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!isalnum ((unsigned char) *s) && *s != '_' && *s != '-')
            return 0;
    return 1;
}

static s_node_t *
s_find_node (const rst_topology_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (!strcmp (self->nodes[i].name, name))
            return &self->nodes[i];
    return NULL;
}

static s_entry_t *
s_find_entry (const s_node_t *node, const char *key)
{
    for (size_t i = 0; i < node->count; i++)
        if (!strcmp (node->entries[i].key, key))
            return &node->entries[i];
    return NULL;
}

//  Trims spaces on both sides of [*start, *end) in place.
static void
s_trim (const char **start, const char **end)
{
    while (*start < *end && isspace ((unsigned char) **start))
        (*start)++;
    while (*end > *start && isspace ((unsigned char) (*end)[-1]))
        (*end)--;
}

//  If the item [start, end) has the form <word>.<word> (no '/', no ':'),
//  copies both words into NODE and KEY and returns 1; else returns 0.
static int
s_split_reference (const char *start, const char *end, char *node, char *key)
{
    size_t len = (size_t) (end - start);
    if (len == 0 || len >= 2 * RST_TOPOLOGY_NAME_MAX)
        return 0;
    char item[2 * RST_TOPOLOGY_NAME_MAX];
    memcpy (item, start, len);
    item[len] = 0;
    if (!isalpha ((unsigned char) item[0]))
        return 0;
    char *dot = strchr (item, '.');
    if (!dot || strchr (dot + 1, '.'))
        return 0;
    *dot = 0;
    if (!s_is_word (item) || !s_is_word (dot + 1))
        return 0;
    strcpy (node, item);
    strcpy (key, dot + 1);
    return 1;
}

//  Expands {data} and {i} of RAW into OUT. Returns 0, or -1 with the reason
//  in WHY (a static string).
static int
s_expand (const rst_topology_t *self, const char *raw, int instance, char *out, size_t outlen,
          const char **why)
{
    size_t n = 0;
    for (const char *p = raw; *p;) {
        char piece[PATH_MAX + 32];
        const char *add;
        size_t addlen;
        if (*p == '{') {
            if (!strncmp (p, "{data}", 6)) {
                if (!self->data_dir) {
                    *why = "{data} is used but no data directory was given";
                    return -1;
                }
                add = self->data_dir;
                addlen = strlen (add);
                p += 6;
            }
            else if (!strncmp (p, "{i}", 3)) {
                snprintf (piece, sizeof piece, "%d", instance);
                add = piece;
                addlen = strlen (add);
                p += 3;
            }
            else {
                *why = "unknown placeholder (only {data} and {i} exist)";
                return -1;
            }
        }
        else {
            add = p++;
            addlen = 1;
        }
        if (n + addlen >= outlen) {
            *why = "value too long once expanded";
            return -1;
        }
        memcpy (out + n, add, addlen);
        n += addlen;
    }
    out[n] = 0;
    return 0;
}

static char *
s_reader (char *str, int num, void *stream)
{
    s_parse_t *ctx = stream;
    char *line = fgets (str, num, ctx->file);
    if (!line)
        return NULL;
    if (ctx->at_line_start)
        ctx->line++;
    size_t n = strlen (line);
    ctx->at_line_start = n > 0 && line[n - 1] == '\n';
    if (!ctx->at_line_start && !feof (ctx->file)) {
        s_fail (ctx, ctx->line, "line longer than %d characters", num - 1);
        return NULL;
    }
    return line;
}

static int
s_on_key (void *user, const char *section, const char *name, const char *value)
{
    s_parse_t *ctx = user;
    rst_topology_t *self = ctx->self;
    if (ctx->failed)
        return 1;
    if (!*section) {
        s_fail (ctx, ctx->line, "'%s' is outside a [node] section", name);
        return 1;
    }
    if (!s_is_word (section)) {
        s_fail (ctx, ctx->line, "section [%s]: a node name is letters, digits, '_' and '-'",
                section);
        return 1;
    }
    if (!s_is_word (name)) {
        s_fail (ctx, ctx->line, "key '%s': a key is letters, digits, '_' and '-'", name);
        return 1;
    }
    s_node_t *node = s_find_node (self, section);
    if (!node) {
        if (self->count == self->cap) {
            size_t cap = self->cap ? self->cap * 2 : 8;
            s_node_t *nodes = realloc (self->nodes, cap * sizeof *nodes);
            if (!nodes)
                goto oom;
            self->nodes = nodes;
            self->cap = cap;
        }
        node = &self->nodes[self->count];
        memset (node, 0, sizeof *node);
        node->name = strdup (section);
        if (!node->name)
            goto oom;
        node->line = ctx->line;
        node->instances = 1;
        self->count++;
    }
    if (s_find_entry (node, name)) {
        s_fail (ctx, ctx->line, "[%s] %s is set twice", section, name);
        return 1;
    }
    if (!strcmp (name, "instances")) {
        char *end;
        errno = 0;
        long v = strtol (value, &end, 10);
        if (errno || end == value || *end || v < 1 || v > RST_TOPOLOGY_MAX_INSTANCES) {
            s_fail (ctx, ctx->line, "[%s] instances must be a whole number from 1 to %d, not '%s'",
                    section, RST_TOPOLOGY_MAX_INSTANCES, value);
            return 1;
        }
        node->instances = (int) v;
    }
    if (node->count == node->cap) {
        size_t cap = node->cap ? node->cap * 2 : 8;
        s_entry_t *entries = realloc (node->entries, cap * sizeof *entries);
        if (!entries)
            goto oom;
        node->entries = entries;
        node->cap = cap;
    }
    s_entry_t *entry = &node->entries[node->count];
    entry->key = strdup (name);
    entry->value = strdup (value);
    entry->line = ctx->line;
    if (!entry->key || !entry->value) {
        free (entry->key);
        free (entry->value);
        goto oom;
    }
    node->count++;
    return 1;
oom:
    s_fail (ctx, ctx->line, "out of memory");
    return 1;
}

//  Checks one value: placeholders expand, and every reference of its list
//  points at an existing key that is not itself a reference.
static void
s_check_value (s_parse_t *ctx, const s_node_t *node, const s_entry_t *entry)
{
    rst_topology_t *self = ctx->self;
    char expanded[RST_TOPOLOGY_VALUE_MAX];
    const char *why;
    if (s_expand (self, entry->value, 0, expanded, sizeof expanded, &why)) {
        s_fail (ctx, entry->line, "[%s] %s: %s", node->name, entry->key, why);
        return;
    }
    const char *p = entry->value;
    while (1) {
        const char *comma = strchr (p, ',');
        const char *start = p, *end = comma ? comma : p + strlen (p);
        s_trim (&start, &end);
        char ref_node[RST_TOPOLOGY_NAME_MAX], ref_key[RST_TOPOLOGY_NAME_MAX];
        if (s_split_reference (start, end, ref_node, ref_key)) {
            const s_node_t *target = s_find_node (self, ref_node);
            const s_entry_t *target_entry = target ? s_find_entry (target, ref_key) : NULL;
            char n2[RST_TOPOLOGY_NAME_MAX], k2[RST_TOPOLOGY_NAME_MAX];
            if (!target)
                s_fail (ctx, entry->line,
                        "[%s] %s: reference to unknown node '%s' (no [%s] section; write a "
                        "path as ./%s.%s)",
                        node->name, entry->key, ref_node, ref_node, ref_node, ref_key);
            else if (!target_entry)
                s_fail (ctx, entry->line, "[%s] %s: reference to unknown key '%s' of [%s]",
                        node->name, entry->key, ref_key, ref_node);
            else if (s_split_reference (target_entry->value,
                                        target_entry->value + strlen (target_entry->value), n2,
                                        k2)
                     || strchr (target_entry->value, ','))
                s_fail (ctx, entry->line,
                        "[%s] %s: %s.%s must be an endpoint, not a reference or a list",
                        node->name, entry->key, ref_node, ref_key);
            if (ctx->failed)
                return;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
}

rst_topology_t *
rst_topology_load (const char *file, const char *data_dir, char *err, size_t errlen)
{
    assert (file);
    assert (err);
    rst_topology_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "%s: out of memory", file);
        return NULL;
    }
    self->file = strdup (file);
    self->data_dir = data_dir ? strdup (data_dir) : NULL;
    if (!self->file || (data_dir && !self->data_dir)) {
        snprintf (err, errlen, "%s: out of memory", file);
        goto fail;
    }
    s_parse_t ctx = {self, NULL, 0, 1, err, errlen, 0};
    ctx.file = fopen (file, "re");
    if (!ctx.file) {
        snprintf (err, errlen, "%s: cannot open the topology file: %s (use --topology FILE or "
                  "RASTRO_TOPOLOGY)", file, strerror (errno));
        goto fail;
    }
    int rc = ini_parse_stream (s_reader, &ctx, s_on_key, &ctx);
    fclose (ctx.file);
    if (rc > 0)
        s_fail (&ctx, rc, "syntax error (expected [node], key = value or a ; comment)");
    else if (rc < 0)
        s_fail (&ctx, ctx.line, "cannot parse (libinih error %d)", rc);
    if (!ctx.failed && self->count == 0)
        s_fail (&ctx, ctx.line, "no [node] section: nothing to run");
    for (size_t i = 0; i < self->count && !ctx.failed; i++)
        for (size_t j = 0; j < self->nodes[i].count && !ctx.failed; j++)
            s_check_value (&ctx, &self->nodes[i], &self->nodes[i].entries[j]);
    if (ctx.failed)
        goto fail;
    return self;
fail:
    rst_topology_destroy (&self);
    return NULL;
}

void
rst_topology_destroy (rst_topology_t **self_p)
{
    assert (self_p);
    rst_topology_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        s_node_t *node = &self->nodes[i];
        for (size_t j = 0; j < node->count; j++) {
            free (node->entries[j].key);
            free (node->entries[j].value);
        }
        free (node->entries);
        free (node->name);
    }
    free (self->nodes);
    free (self->file);
    free (self->data_dir);
    free (self);
    *self_p = NULL;
}

size_t
rst_topology_node_count (const rst_topology_t *self)
{
    assert (self);
    return self->count;
}

const char *
rst_topology_node_name (const rst_topology_t *self, size_t index)
{
    assert (self);
    assert (index < self->count);
    return self->nodes[index].name;
}

int
rst_topology_instances (const rst_topology_t *self, const char *node)
{
    assert (self);
    const s_node_t *n = s_find_node (self, node);
    return n ? n->instances : 0;
}

int
rst_topology_get (const rst_topology_t *self, const char *node, int instance, const char *key,
                  char *out, size_t outlen)
{
    assert (self);
    const s_node_t *n = s_find_node (self, node);
    const s_entry_t *e = n ? s_find_entry (n, key) : NULL;
    const char *why;
    if (!e || s_expand (self, e->value, instance, out, outlen, &why))
        return -1;
    return 0;
}

long
rst_topology_get_long (const rst_topology_t *self, const char *node, int instance,
                       const char *key, long default_value)
{
    char value[64];
    if (rst_topology_get (self, node, instance, key, value, sizeof value))
        return default_value;
    char *end;
    errno = 0;
    long v = strtol (value, &end, 10);
    if (errno || end == value)
        return default_value;
    while (isspace ((unsigned char) *end))
        end++;
    return *end ? default_value : v;
}

//  Appends "<prefix><endpoint>" to OUT[*count] (when OUT is not NULL) and
//  its owner, OWNER_NODE instance OWNER_INSTANCE, to OWNERS[*count] (when
//  OWNERS is not NULL). Returns 0 or -1.
static int
s_push (char **out, rst_topology_owner_t *owners, size_t max, int *count, char prefix,
        const char *endpoint, const char *owner_node, int owner_instance)
{
    if ((size_t) *count >= max)
        return -1;
    if (out) {
        size_t len = strlen (endpoint);
        char *s = malloc (len + 2);
        if (!s)
            return -1;
        s[0] = prefix;
        memcpy (s + 1, endpoint, len + 1);
        out[*count] = s;
    }
    if (owners) {
        snprintf (owners[*count].node, sizeof owners[*count].node, "%s", owner_node);
        owners[*count].instance = owner_instance;
    }
    (*count)++;
    return 0;
}

//  rst_topology_endpoints and rst_topology_endpoint_owners in one walk of
//  the value: fills OUT and OWNERS (either may be NULL) in the same order.
static int
s_endpoints (const rst_topology_t *self, const char *node, int instance, const char *key,
             char **out, rst_topology_owner_t *owners, size_t max, char *err, size_t errlen)
{
    assert (self);
    const s_node_t *n = s_find_node (self, node);
    if (!n) {
        snprintf (err, errlen, "%s: no [%s] section", self->file, node);
        return -1;
    }
    const s_entry_t *e = s_find_entry (n, key);
    if (!e) {
        snprintf (err, errlen, "%s: [%s] has no '%s' key", self->file, node, key);
        return -1;
    }
    if (instance < 0 || instance >= n->instances) {
        snprintf (err, errlen, "%s: [%s] has %d instance(s) (0 to %d), not %d", self->file, node,
                  n->instances, n->instances - 1, instance);
        return -1;
    }
    int count = 0;
    const char *why = NULL;
    char bad[RST_TOPOLOGY_VALUE_MAX] = "";
    const char *p = e->value;
    while (!why) {
        const char *comma = strchr (p, ',');
        const char *start = p, *end = comma ? comma : p + strlen (p);
        s_trim (&start, &end);
        char ref_node[RST_TOPOLOGY_NAME_MAX], ref_key[RST_TOPOLOGY_NAME_MAX];
        char raw[RST_TOPOLOGY_VALUE_MAX], value[RST_TOPOLOGY_VALUE_MAX];
        if (start == end)
            why = "empty endpoint";
        else if (s_split_reference (start, end, ref_node, ref_key)) {
            //  Checked at load: the target exists and is a single endpoint.
            const s_node_t *t = s_find_node (self, ref_node);
            const s_entry_t *te = t ? s_find_entry (t, ref_key) : NULL;
            assert (te);
            for (int j = 0; j < t->instances && !why; j++) {
                if (s_expand (self, te->value, j, value, sizeof value, &why))
                    break;
                const char *ep = value;
                while (isspace ((unsigned char) *ep))
                    ep++;
                if (*ep == '@' || *ep == '>')
                    ep++;
                if (!strstr (ep, "://")) {
                    why = "the referenced value is not an endpoint (transport://address)";
                    snprintf (bad, sizeof bad, "%s.%s", ref_node, ref_key);
                }
                else if (s_push (out, owners, max, &count, '>', ep, ref_node, j))
                    why = "too many endpoints (or out of memory)";
            }
        }
        else {
            size_t len = (size_t) (end - start);
            if (len >= sizeof raw)
                why = "value too long";
            else {
                memcpy (raw, start, len);
                raw[len] = 0;
                if (s_expand (self, raw, instance, value, sizeof value, &why) == 0) {
                    char prefix = value[0] == '@' ? '@' : '>';
                    const char *ep = value[0] == '@' || value[0] == '>' ? value + 1 : value;
                    if (!strstr (ep, "://")) {
                        why = "not an endpoint (transport://address) nor a reference node.key";
                        snprintf (bad, sizeof bad, "%s", value);
                    }
                    else if (s_push (out, owners, max, &count, prefix, ep, "", -1))
                        why = "too many endpoints (or out of memory)";
                }
            }
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (why) {
        snprintf (err, errlen, "%s:%d: [%s] %s: %s%s%s", self->file, e->line, node, key, why,
                  bad[0] ? ": " : "", bad);
        if (out)
            rst_topology_endpoints_free (out, count);
        return -1;
    }
    return count;
}

int
rst_topology_endpoints (const rst_topology_t *self, const char *node, int instance,
                        const char *key, char **out, size_t max, char *err, size_t errlen)
{
    assert (out);
    return s_endpoints (self, node, instance, key, out, NULL, max, err, errlen);
}

int
rst_topology_endpoint_owners (const rst_topology_t *self, const char *node, int instance,
                              const char *key, rst_topology_owner_t *out, size_t max, char *err,
                              size_t errlen)
{
    assert (out);
    return s_endpoints (self, node, instance, key, NULL, out, max, err, errlen);
}

void
rst_topology_endpoints_free (char **list, int count)
{
    for (int i = 0; i < count; i++) {
        free (list[i]);
        list[i] = NULL;
    }
}

//  Creates every missing directory of PATH's parent (mkdir -p `dirname PATH`).
static int
s_mkdir_parent (const char *path)
{
    char dir[PATH_MAX];
    if (snprintf (dir, sizeof dir, "%s", path) >= (int) sizeof dir)
        return -1;
    char *slash = strrchr (dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir (dir, 0755) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir (dir, 0755) && errno != EEXIST)
        return -1;
    return 0;
}

int
rst_topology_attach (const rst_topology_t *self, void *socket, const char *node, int instance,
                     const char *key, char *err, size_t errlen)
{
    assert (self);
    assert (socket);
    char *list[RST_TOPOLOGY_MAX_ENDPOINTS];
    int count = rst_topology_endpoints (self, node, instance, key, list,
                                        RST_TOPOLOGY_MAX_ENDPOINTS, err, errlen);
    if (count < 0)
        return -1;
    const s_node_t *n = s_find_node (self, node);
    const s_entry_t *e = s_find_entry (n, key);
    int rc = 0;
    for (int i = 0; i < count && rc == 0; i++) {
        const char *ep = list[i] + 1;
        if (list[i][0] == '@') {
            if (!strncmp (ep, "ipc://", 6)) {
                const char *path = ep + 6;
                struct sockaddr_un sun;
                if (strlen (path) >= sizeof sun.sun_path) {
                    snprintf (err, errlen, "%s:%d: [%s] %s: ipc path %s is longer than %zu "
                              "bytes: use a shorter RASTRO_DATA_DIR", self->file, e->line,
                              node, key, path, sizeof sun.sun_path - 1);
                    rc = -1;
                    break;
                }
                if (path[0] != '*' && s_mkdir_parent (path)) {
                    snprintf (err, errlen, "%s:%d: [%s] %s: cannot create the directory of %s: %s",
                              self->file, e->line, node, key, path, strerror (errno));
                    rc = -1;
                    break;
                }
            }
            //  libzmq unlinks a stale ipc socket file itself before binding.
            if (zmq_bind (socket, ep)) {
                snprintf (err, errlen, "%s:%d: [%s] %s: libzmq cannot bind %s: %s", self->file,
                          e->line, node, key, ep, zmq_strerror (zmq_errno ()));
                rc = -1;
            }
        }
        else if (zmq_connect (socket, ep)) {
            snprintf (err, errlen, "%s:%d: [%s] %s: libzmq cannot connect to %s: %s", self->file,
                      e->line, node, key, ep, zmq_strerror (zmq_errno ()));
            rc = -1;
        }
    }
    rst_topology_endpoints_free (list, count);
    return rc;
}
