import { NodusError } from '../common/errors.ts'

/**
 * Parse a duration: a whole number with a unit s, m, h, d or w (`90m`, `30d`), or plain seconds.
 * Returns seconds. Throws INVALID_ARGUMENT.
 */
export function parseDuration(text: string): number {
  const m = /^(\d+)\s*([smhdw]?)$/.exec(text.trim())
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }
  if (m === null || Number(m[1]) === 0) {
    throw new NodusError('INVALID_ARGUMENT', `bad duration "${text}": use e.g. 3600, 90m, 12h, 30d`)
  }
  return Number(m[1]) * unit[(m[2] ?? '') as keyof typeof unit]
}
