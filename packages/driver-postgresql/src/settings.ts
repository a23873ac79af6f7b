import { defineSettings } from "@hoard/core/plugin";

/**
 * The PostgreSQL driver's settings. It has none of its own yet: it takes the common driver
 * settings (dump and restore options, `connectTimeoutMs` from `--timeout`), and everything else
 * goes in the URL (`?sslmode=`, `?connect_timeout=`, ...).
 */
export const settings = defineSettings("postgresql", "PostgreSQL", []);
