/**
 * CPU time of a process from Linux's /proc/PID/stat (fields 14 utime and 15 stime, in USER_HZ ticks).
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

let clockTicks: number | undefined
/** USER_HZ, the unit of the CPU times in /proc/PID/stat (100 on Linux unless configured otherwise). */
function clkTck(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
    const n = Number.parseInt(r.stdout ?? '', 10)
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100
  }
  return clockTicks
}

/**
 * CPU seconds process `pid` has used so far, user and system apart; undefined once it is gone, or where
 * /proc does not exist (not Linux).
 */
export function procCpuSplit(pid: number): { user: number; system: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may contain spaces), counted from field 3 (state).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { user: Number(fields[11]) / clkTck(), system: Number(fields[12]) / clkTck() }
  } catch {
    return undefined
  }
}

/** CPU seconds (user + system) process `pid` has used so far; undefined as for {@link procCpuSplit}. */
export function procCpuSeconds(pid: number): number | undefined {
  const t = procCpuSplit(pid)
  return t === undefined ? undefined : t.user + t.system
}

/** Resident set size of process `pid` in bytes (VmRSS in /proc/PID/status); undefined as for {@link procCpuSplit}. */
export function procRssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) * 1024
  } catch {
    return undefined
  }
}

/**
 * Proportional set size of process `pid` in bytes (Pss in /proc/PID/smaps_rollup): its private pages
 * plus its share of pages mapped by several processes (the node binary's text, shared libraries), so
 * the sum over processes is what they use together; undefined as for {@link procCpuSplit}.
 */
export function procPssBytes(pid: number): number | undefined {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
    return m === null ? undefined : Number(m[1]) * 1024
  } catch {
    return undefined
  }
}
