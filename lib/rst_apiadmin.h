/*  rst_apiadmin — the dashboard's management routes (pixels, bots, pools,
    offers, dead letters) under /api/v1; see rst_apiadmin.c for the rules
    and schemas/openapi.yaml for the shapes.

    The routes are served through rst_api (the table rst_apiadmin_routes,
    declared in rst_api.h). This header exposes only what tests and the
    front may need besides the table.
*/
#ifndef RST_APIADMIN_H
#define RST_APIADMIN_H

#include "rst_api.h"

#define RST_APIADMIN_POOL_BOTS_MAX 100     //  bots in one pool (as `rastro pool add`)
#define RST_APIADMIN_TOKEN_MAX     4096    //  bytes of a pixel's access token
#define RST_APIADMIN_DLQ_LIMIT     50      //  GET /dlq page size by default
#define RST_APIADMIN_DLQ_LIMIT_MAX 200     //  and at most

//  The master key file the routes seal tokens with. By default the one of
//  the process's configuration (rst_config_load: RASTRO_MASTER_KEY_FILE,
//  else <data>/master.key), loaded once on first use. Call this before the
//  API's worker threads start to use another one (PATH is copied). Not
//  thread-safe: meant for start-up only.
void rst_apiadmin_set_master_key_file (const char *path);

//  The Bot API base URL POST /bots calls getMe at. By default the
//  configuration's (RASTRO_TELEGRAM_API_URL), loaded once on first use.
//  Start-up only, like rst_apiadmin_set_master_key_file.
void rst_apiadmin_set_telegram_api_url (const char *url);

#endif
