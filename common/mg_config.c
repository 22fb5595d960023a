/*
 * mg_config.c — placeholder; the table-driven YAML loader lands next.
 */
