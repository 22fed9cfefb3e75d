/** Types of sse.js (the dashboard's server-sent-event parsing), for the Node tests that import it. */
export function createSseParser(
  onEvent: (name: string, data: string, id: string) => void,
): (chunk: string) => void
