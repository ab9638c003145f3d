/*  rastro — the one command for people.

    `rastro <command> ...` dispatches to the functions of commands.h. The
    config (rst_config: defaults, config file, RASTRO_* environment) is
    loaded once here and handed to every command.
*/
#include "commands.h"
#include "rst_log.h"

#include <stdio.h>
#include <string.h>

//  A command: a function, or a group of subcommands (cmd_dispatch).
typedef struct {
    const char *name;
    int (*run) (int argc, char **argv, const rst_config_t *cfg);   //  or NULL for
    const cmd_group_t *group;                                       //  a group
    const char *summary;
} s_command_t;

static const s_command_t s_commands[] = {
    {"up", cmd_up, NULL, "start every node of the topology in the foreground; Ctrl-C stops them"},
    {"status", cmd_status, NULL, "show each node and its state"},
    {"user", NULL, &cmd_user_group, "add or list users (the owners of everything else)"},
    {"pixel", NULL, &cmd_pixel_group, "add, list or set Meta pixels (token encrypted at rest)"},
    {"bot", NULL, &cmd_bot_group,
     "add, import, list or mark Telegram bots; choose polling or webhook"},
    {"pool", NULL, &cmd_pool_group, "add, list, enable or disable pools (the /go/<slug> links)"},
    {"offer", NULL, &cmd_offer_group, "add, list, set, enable or disable what a bot sells"},
    {"gateway", NULL, &cmd_gateway_group,
     "set, list or remove a bot's PIX gateway (credentials encrypted)"},
    {"payment", NULL, &cmd_payment_group,
     "list PIX charges and their deliveries; redeliver a failed one"},
    {"lead", NULL, &cmd_lead_group, "list leads (the Telegram users who started a bot)"},
    {"adaccount", NULL, &cmd_adaccount_group,
     "add, list, remove or set Meta ad accounts (spend from Insights; token encrypted)"},
    {"spend", NULL, &cmd_spend_group, "set manual spend per pool and day; list every spend"},
    {"dlq", cmd_dlq, NULL, "list, show, replay or purge dead letters (events Meta refused)"},
    {"db", cmd_db, NULL, "start/stop the private PostgreSQL, apply migrations, open psql"},
    {NULL, NULL, NULL, NULL},
};

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: rastro <command> [options]   (rastro <command> --help for more)\n\n"
                  "commands:\n");
    for (const s_command_t *c = s_commands; c->name; c++)
        fprintf (out, "  %-9s %s\n", c->name, c->summary);
    fprintf (out, "\nenvironment: RASTRO_DATA_DIR (default ./var), RASTRO_DATABASE_URL, "
                  "RASTRO_HTTP_PORT,\nRASTRO_TRUSTED_PROXIES, RASTRO_TELEGRAM_API_URL, "
                  "RASTRO_META_GRAPH_URL, RASTRO_META_API_VERSION,\nRASTRO_MASTER_KEY_FILE, "
                  "RASTRO_TOPOLOGY, RASTRO_CONFIG, RASTRO_LOG_LEVEL (see README.md).\n");
}

int
main (int argc, char **argv)
{
    if (argc < 2 || cmd_is_help (argv[1]) || !strcmp (argv[1], "help")) {
        s_usage (argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const s_command_t *c = s_commands; c->name; c++) {
        if (strcmp (argv[1], c->name))
            continue;
        rst_config_t cfg;
        char err[512];
        if (rst_config_load (&cfg, err, sizeof err)) {
            fprintf (stderr, "rastro: %s\n", err);
            return 1;
        }
        if (c->group)
            return cmd_dispatch (c->group, argc - 1, argv + 1, &cfg);
        return c->run (argc - 1, argv + 1, &cfg);
    }
    fprintf (stderr, "rastro: unknown command '%s' (rastro --help lists them)\n", argv[1]);
    return 2;
}
