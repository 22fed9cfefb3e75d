/**
 * The config area: the node's configuration (defaults < file < env < flags), validated once and frozen,
 * assembled from the areas' key tables; and the areas' error tables assembled into one status table.
 * Other areas import only from here. See docs/CONFIG.md, docs/ERRORS.md and README.md.
 */
export { CONFIG_FILE, type NodusConfig, parseConfig } from './config.ts'
export { ERROR_TABLES, HTTP_STATUS } from './error-table.ts'
