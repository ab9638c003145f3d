/*  cmd_admin — placeholder until implemented. */
#include "commands.h"
#include <stdio.h>
int cmd_user (int argc, char **argv, const rst_config_t *cfg) { (void) argc; (void) argv; (void) cfg; fprintf (stderr, "rastro: not implemented yet\n"); return 1; }
int cmd_pixel (int argc, char **argv, const rst_config_t *cfg) { (void) argc; (void) argv; (void) cfg; fprintf (stderr, "rastro: not implemented yet\n"); return 1; }
int cmd_bot (int argc, char **argv, const rst_config_t *cfg) { (void) argc; (void) argv; (void) cfg; fprintf (stderr, "rastro: not implemented yet\n"); return 1; }
int cmd_pool (int argc, char **argv, const rst_config_t *cfg) { (void) argc; (void) argv; (void) cfg; fprintf (stderr, "rastro: not implemented yet\n"); return 1; }
