/**
 * The config area: the node's configuration (defaults < file < env < flags), validated once and frozen.
 * Other areas import only from here. See docs/CONFIG.md.
 */
export { CONFIG_FILE, type NodusConfig, parseConfig } from './config.ts'
