/**
 * What a namespace run could leave in the root namespace: its link names and iptables rules. A run
 * creates nothing there (src/netns/README.md, "Invariants"), so the state is the same before and after
 * a run; tests and `nodus demo --scenario reach` compare the two.
 */
import type { CommandRunner } from './exec.ts'

/** The root namespace's link names (sorted) and iptables rules (no comment lines, counters stripped). */
export interface RootState {
  links: string[]
  rules: string[]
}

/** Reads {@link RootState} with `ip -o link` and `iptables-save`. @throws NodusError NETNS_COMMAND_FAILED */
export async function rootState(runner: CommandRunner): Promise<RootState> {
  const links = (await runner.run(['ip', '-o', 'link'])).stdout
    .split('\n')
    .map((l) => l.split(':')[1]?.trim() ?? '')
    .filter((n) => n !== '')
    .sort()
  const rules = (await runner.run(['iptables-save'])).stdout
    .split('\n')
    .filter((l) => l.startsWith('-A') || l.startsWith(':'))
    .map((l) => l.replace(/\[\d+:\d+\]/, ''))
  return { links, rules }
}

/** What `after` has that `before` had not: links and rules a run left behind. */
export function rootStateLeft(before: RootState, after: RootState): RootState {
  return {
    links: after.links.filter((l) => !before.links.includes(l)),
    rules: after.rules.filter((r) => !before.rules.includes(r)),
  }
}
