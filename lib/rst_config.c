/*  rst_config — see rst_config.h. Defaults, then INI file (inih), then
    environment variables.
*/
#include "rst_config.h"
#include "rst_log.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RST_PG_DEFAULT_PORT 5432

static void
s_copy (char *dst, size_t dstlen, const char *src)
{
    snprintf (dst, dstlen, "%s", src);
}

static void
s_strip_slash (char *s)
{
    size_t n = strlen (s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = 0;
}

static int
s_parse_int (const char *value, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol (value, &end, 10);
    if (errno || end == value || *end || v < min || v > max)
        return -1;
    *out = (int) v;
    return 0;
}

//  Applies one setting by its lower-case key. Returns 1 if known, 0 if not,
//  -1 if the value is invalid.
static int
s_apply (rst_config_t *self, const char *key, const char *value)
{
    if (!strcmp (key, "database_url"))
        s_copy (self->database_url, sizeof self->database_url, value);
    else if (!strcmp (key, "http_port"))
        return s_parse_int (value, 1, 65535, &self->http_port) ? -1 : 1;
    else if (!strcmp (key, "http_threads"))
        return s_parse_int (value, 1, 256, &self->http_threads) ? -1 : 1;
    else if (!strcmp (key, "trusted_proxies"))
        s_copy (self->trusted_proxies, sizeof self->trusted_proxies, value);
    else if (!strcmp (key, "telegram_api_url"))
        s_copy (self->telegram_api_url, sizeof self->telegram_api_url, value);
    else if (!strcmp (key, "meta_graph_url"))
        s_copy (self->meta_graph_url, sizeof self->meta_graph_url, value);
    else if (!strcmp (key, "meta_api_version"))
        s_copy (self->meta_api_version, sizeof self->meta_api_version, value);
    else if (!strcmp (key, "master_key_file"))
        s_copy (self->master_key_file, sizeof self->master_key_file, value);
    else if (!strcmp (key, "topology"))
        s_copy (self->topology_file, sizeof self->topology_file, value);
    else if (!strcmp (key, "public_url")) {
        if (strncmp (value, "http://", 7) && strncmp (value, "https://", 8))
            return -1;
        s_copy (self->public_url, sizeof self->public_url, value);
    }
    else if (!strcmp (key, "web_dir"))
        s_copy (self->web_dir, sizeof self->web_dir, value);
    else if (!strcmp (key, "api_threads"))
        return s_parse_int (value, 1, 64, &self->api_threads) ? -1 : 1;
    else if (!strcmp (key, "ws_port"))
        return s_parse_int (value, 1, 65535, &self->ws_port) ? -1 : 1;
    else if (!strcmp (key, "ws_public_url")) {
        if (strncmp (value, "ws://", 5) && strncmp (value, "wss://", 6))
            return -1;
        s_copy (self->ws_public_url, sizeof self->ws_public_url, value);
    }
    else if (!strcmp (key, "pg_port"))
        return s_parse_int (value, 1, 65535, &self->pg_port) ? -1 : 1;
    else
        return 0;
    return 1;
}

typedef struct {
    rst_config_t *self;
    char *err;
    size_t errlen;
    int failed;
} s_ini_ctx_t;

static int
s_on_ini (void *user, const char *section, const char *name, const char *value)
{
    s_ini_ctx_t *ctx = user;
    if (strcmp (section, "rastro"))
        return 1;
    int rc = s_apply (ctx->self, name, value);
    if (rc <= 0 && !ctx->failed) {
        snprintf (ctx->err, ctx->errlen, "%s: %s setting '%s'", ctx->self->config_file,
                  rc == 0 ? "unknown" : "invalid value for", name);
        ctx->failed = 1;
    }
    return 1;
}

int
rst_config_exe_dir (char *out, size_t outlen)
{
    char path[PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0)
        return -1;
    path[n] = 0;
    char *slash = strrchr (path, '/');
    if (!slash)
        return -1;
    *slash = 0;
    s_copy (out, outlen, path);
    return 0;
}

static void
s_default_topology (rst_config_t *self)
{
    //  The binaries live in <tree>/build*/ (or <prefix>/bin): look for
    //  topology/local.ini one level up, then in the working directory.
    char dir[PATH_MAX];
    if (rst_config_exe_dir (dir, sizeof dir) == 0) {
        char path[PATH_MAX + 32];
        snprintf (path, sizeof path, "%s/../topology/local.ini", dir);
        char real[PATH_MAX];
        if (realpath (path, real)) {
            s_copy (self->topology_file, sizeof self->topology_file, real);
            return;
        }
    }
    s_copy (self->topology_file, sizeof self->topology_file, "topology/local.ini");
}

static void
s_default_web_dir (rst_config_t *self)
{
    //  Like the topology: <tree>/web/dist next to <tree>/build*/, else the
    //  working directory's web/dist (it may not exist: the front then
    //  answers / with a hint to run scripts/setup).
    char dir[PATH_MAX];
    if (rst_config_exe_dir (dir, sizeof dir) == 0) {
        char path[PATH_MAX + 32];
        snprintf (path, sizeof path, "%s/../web/dist", dir);
        char real[PATH_MAX];
        if (realpath (path, real)) {
            s_copy (self->web_dir, sizeof self->web_dir, real);
            return;
        }
    }
    char real[PATH_MAX];
    s_copy (self->web_dir, sizeof self->web_dir, realpath ("web/dist", real) ? real : "web/dist");
}

int
rst_config_load (rst_config_t *self, char *err, size_t errlen)
{
    memset (self, 0, sizeof *self);
    self->http_port = 8080;
    //  Half the cores: on one host the front shares them with the recorder,
    //  PostgreSQL and the Meta path, and one loop per core measured slower
    //  end to end there (bench/RESULTS.md, "front threads"). A host that
    //  runs only fronts sets RASTRO_HTTP_THREADS to its cores.
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    self->http_threads = cores > 1 ? (int) (cores / 2) : 1;
    self->pg_port = RST_PG_DEFAULT_PORT;
    s_copy (self->telegram_api_url, sizeof self->telegram_api_url, "https://api.telegram.org");
    s_copy (self->meta_graph_url, sizeof self->meta_graph_url, "https://graph.facebook.com");
    s_copy (self->meta_api_version, sizeof self->meta_api_version, "v25.0");

    const char *data = getenv ("RASTRO_DATA_DIR");
    if (!data || !*data)
        data = "./var";
    if (mkdir (data, 0755) && errno != EEXIST) {
        snprintf (err, errlen, "cannot create data directory %s: %s (set RASTRO_DATA_DIR)",
                  data, strerror (errno));
        return -1;
    }
    if (!realpath (data, self->data_dir)) {
        snprintf (err, errlen, "data directory %s: %s", data, strerror (errno));
        return -1;
    }
    s_default_topology (self);
    self->api_threads = 2;
    self->ws_port = 8090;

    const char *cfg = getenv ("RASTRO_CONFIG");
    if (cfg && *cfg)
        s_copy (self->config_file, sizeof self->config_file, cfg);
    else
        snprintf (self->config_file, sizeof self->config_file, "%.*s/rastro.conf",
                  (int) (sizeof self->config_file - 16), self->data_dir);
    if (access (self->config_file, R_OK) == 0) {
        s_ini_ctx_t ctx = {self, err, errlen, 0};
        int rc = ini_parse (self->config_file, s_on_ini, &ctx);
        if (rc != 0 && !ctx.failed) {
            snprintf (err, errlen, "%s: syntax error on line %d", self->config_file, rc);
            return -1;
        }
        if (ctx.failed)
            return -1;
    }
    else if (cfg && *cfg) {
        snprintf (err, errlen, "RASTRO_CONFIG=%s: %s", cfg, strerror (errno));
        return -1;
    }
    else
        self->config_file[0] = 0;

    static const char *env_keys[] = {"database_url",     "http_port",        "http_threads",
                                     "trusted_proxies",  "telegram_api_url", "meta_graph_url",
                                     "meta_api_version", "master_key_file",  "topology", "public_url",
                                     "web_dir",          "api_threads",      "ws_port",
                                     "ws_public_url",    NULL};
    for (int i = 0; env_keys[i]; i++) {
        char name[64] = "RASTRO_";
        size_t n = strlen (name);
        for (const char *k = env_keys[i]; *k && n < sizeof name - 1; k++)
            name[n++] = (char) (*k >= 'a' && *k <= 'z' ? *k - 32 : *k);
        name[n] = 0;
        if (!strcmp (env_keys[i], "master_key_file"))
            s_copy (name, sizeof name, "RASTRO_MASTER_KEY_FILE");
        const char *value = getenv (name);
        if (value && *value && s_apply (self, env_keys[i], value) < 0) {
            snprintf (err, errlen, "%s=%s is not valid", name, value);
            return -1;
        }
    }
    s_strip_slash (self->telegram_api_url);
    s_strip_slash (self->meta_graph_url);
    if (!self->public_url[0])
        snprintf (self->public_url, sizeof self->public_url, "http://127.0.0.1:%d", self->http_port);
    s_strip_slash (self->public_url);
    if (!self->web_dir[0])
        s_default_web_dir (self);
    if (!self->master_key_file[0])
        snprintf (self->master_key_file, sizeof self->master_key_file, "%.*s/master.key",
                  (int) (sizeof self->master_key_file - 16), self->data_dir);
    snprintf (self->pg_socket_dir, sizeof self->pg_socket_dir, "%.*s/pg/run",
              (int) (sizeof self->pg_socket_dir - 16), self->data_dir);
    if (!self->database_url[0]) {
        self->database_is_private = 1;
        snprintf (self->database_url, sizeof self->database_url,
                  "host=%.900s port=%d dbname=rastro user=rastro", self->pg_socket_dir,
                  self->pg_port);
    }
    return 0;
}

//  Copies URL into OUT with any password replaced by "***".
static void
s_mask_url (const char *url, char *out, size_t outlen)
{
    s_copy (out, outlen, url);
    char *pw = strstr (out, "password=");
    if (pw) {
        char *end = strpbrk (pw + 9, " &");
        char tail[RST_URL_MAX];
        s_copy (tail, sizeof tail, end ? end : "");
        snprintf (pw + 9, outlen - (size_t) (pw + 9 - out), "***%s", tail);
        return;
    }
    //  postgresql://user:password@host/...
    char *scheme = strstr (out, "://");
    char *at = scheme ? strchr (scheme + 3, '@') : NULL;
    char *colon = scheme ? strchr (scheme + 3, ':') : NULL;
    if (at && colon && colon < at) {
        char tail[RST_URL_MAX];
        s_copy (tail, sizeof tail, at);
        snprintf (colon + 1, outlen - (size_t) (colon + 1 - out), "***%s", tail);
    }
}

void
rst_config_print (const rst_config_t *self, const char *cls)
{
    char url[RST_URL_MAX];
    s_mask_url (self->database_url, url, sizeof url);
    rst_info (cls, "data_dir = %s", self->data_dir);
    rst_info (cls, "config_file = %s", self->config_file[0] ? self->config_file : "(none)");
    rst_info (cls, "database_url = %s%s", url, self->database_is_private ? " (private cluster)" : "");
    rst_info (cls, "http_port = %d, http_threads = %d", self->http_port, self->http_threads);
    rst_info (cls, "trusted_proxies = %s", self->trusted_proxies[0] ? self->trusted_proxies : "(none)");
    rst_info (cls, "telegram_api_url = %s", self->telegram_api_url);
    rst_info (cls, "meta_graph_url = %s, meta_api_version = %s", self->meta_graph_url,
              self->meta_api_version);
    rst_info (cls, "master_key_file = %s", self->master_key_file);
    rst_info (cls, "topology = %s", self->topology_file);
    rst_info (cls, "public_url = %s", self->public_url);
    rst_info (cls, "web_dir = %s, api_threads = %d", self->web_dir, self->api_threads);
    rst_info (cls, "ws_port = %d, ws_public_url = %s", self->ws_port,
              self->ws_public_url[0] ? self->ws_public_url : "(derived from the Host header)");
}
