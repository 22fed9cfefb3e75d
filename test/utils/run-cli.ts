import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))

/** Run the nodus CLI in a child process; SIGKILL it after `timeoutMs`. */
export function runCli(
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.on('exit', (code) => {
      clearTimeout(t)
      resolve({ code, stdout, stderr })
    })
  })
}

/** Run `nodus ARGS --json`, assert it exits 0, and return its last output line parsed. */
export async function cliJson(args: string[], timeoutMs = 60_000): Promise<Record<string, unknown>> {
  const r = await runCli([...args, '--json'], timeoutMs)
  if (r.code !== 0) throw new Error(`nodus ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Record<string, unknown>
}
