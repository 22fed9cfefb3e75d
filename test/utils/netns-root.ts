import type { CommandRunner } from '../../src/netns/index.ts'

/**
 * What of a namespace run could show in the root namespace: its link names and iptables rules (no
 * comment lines, counters stripped). A run creates nothing there, so this is the same before and after.
 */
export async function rootState(runner: CommandRunner): Promise<{ links: string[]; rules: string[] }> {
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
