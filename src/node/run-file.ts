/**
 * The run file a started node writes into its data directory (JSON `{url}` of its HTTP API) so that CLI
 * commands can find it. In a module of its own so that the CLI's client commands need not load the node.
 */
export const RUN_FILE = 'api.json'
