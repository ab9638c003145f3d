/*  cmd_status — placeholder until implemented. */
#include "commands.h"
#include <stdio.h>
int cmd_status (int argc, char **argv, const rst_config_t *cfg) { (void) argc; (void) argv; (void) cfg; fprintf (stderr, "rastro: not implemented yet\n"); return 1; }
