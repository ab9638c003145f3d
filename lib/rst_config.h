/*  rst_config — the process-wide settings every node and command reads.

    Sources, later ones winning: built-in defaults, the config file (INI,
    section [rastro], keys as below in lower case without the RASTRO_ prefix,
    e.g. `http_port = 8080`), then the environment:

      RASTRO_DATA_DIR          data directory (default ./var), made absolute
      RASTRO_CONFIG            config file (default <data>/rastro.conf, optional)
      RASTRO_DATABASE_URL      libpq URL; unset = private cluster under <data>/pg
      RASTRO_HTTP_PORT         front's HTTP port (default 8080)
      RASTRO_HTTP_THREADS      front's event loops (default: number of cores)
      RASTRO_TRUSTED_PROXIES   comma-separated IPs/CIDRs whose X-Forwarded-For is believed
      RASTRO_TELEGRAM_API_URL  default https://api.telegram.org
      RASTRO_META_GRAPH_URL    default https://graph.facebook.com
      RASTRO_META_API_VERSION  default v25.0
      RASTRO_MASTER_KEY_FILE   libsodium key for secrets at rest (default <data>/master.key)
      RASTRO_TOPOLOGY          topology file (default topology/local.ini next to the binary's tree)
      RASTRO_PUBLIC_URL        base URL the outside reaches the front at (gateway
                               notification URLs; default http://127.0.0.1:<port>)
      RASTRO_WEB_DIR           the dashboard's built files the front serves at /
                               (default <exe dir>/../web/dist when it exists, else
                               web/dist under the working directory)
      RASTRO_API_THREADS       the front's API workers, each with its own database
                               connection (default 2)
      RASTRO_WS_PORT           the broadcaster's WebSocket port (default 8090)
      RASTRO_WS_PUBLIC_URL     the WebSocket URL the dashboard is told to use
                               (default ws://<host the page came from>:<ws port>/ws)

    The struct is filled once at start and is read-only afterwards, so any
    thread may read it (STYLE.md §5).
*/
#ifndef RST_CONFIG_H
#define RST_CONFIG_H

#include <limits.h>
#include <stddef.h>

#define RST_URL_MAX 1024

typedef struct {
    char data_dir[PATH_MAX];            //  absolute path of the data directory
    char config_file[PATH_MAX];         //  config file that was read, or "" if none
    char database_url[RST_URL_MAX];     //  libpq connection string (private cluster's if unset)
    int database_is_private;            //  1 when database_url points at <data>/pg
    char pg_socket_dir[PATH_MAX];       //  private cluster: socket directory
    int pg_port;                        //  private cluster: port number of the socket file
    int http_port;                      //  front's listening port
    int http_threads;                   //  front's event loops (default: half the cores)
    char trusted_proxies[RST_URL_MAX];  //  raw list; parsed by rst_netaddr
    char telegram_api_url[RST_URL_MAX]; //  base URL of the Bot API (no trailing slash)
    char meta_graph_url[RST_URL_MAX];   //  base URL of the Graph API (no trailing slash)
    char meta_api_version[32];          //  e.g. "v25.0"
    char master_key_file[PATH_MAX];     //  path of the secrets key
    char topology_file[PATH_MAX];       //  path of the topology file
    char public_url[RST_URL_MAX];       //  how gateways and Telegram reach the front (no
                                        //  trailing slash); default http://127.0.0.1:<http_port>
    char web_dir[PATH_MAX];             //  dashboard files served at / (may not exist)
    int api_threads;                    //  front's API workers
    int ws_port;                        //  broadcaster's WebSocket port
    char ws_public_url[RST_URL_MAX];    //  WebSocket URL given to the dashboard, "" = derived
} rst_config_t;

//  Fills SELF from defaults, the config file and the environment. Returns 0,
//  or -1 with a one-line reason in ERR (e.g. a bad port number).
int rst_config_load (rst_config_t *self, char *err, size_t errlen);

//  Prints the effective settings (never a secret; the database URL's password,
//  if any, is masked) as "key = value" lines through rst_log.
void rst_config_print (const rst_config_t *self, const char *cls);

//  Directory of the running executable (resolved from /proc/self/exe), into
//  OUT. Returns 0 or -1.
int rst_config_exe_dir (char *out, size_t outlen);

#endif
