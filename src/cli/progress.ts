/** A one-line progress display on stderr: bytes, MB/s and ETA. Silent when disabled. */
export class Progress {
  readonly #label: string
  readonly #total: number | undefined
  readonly #enabled: boolean
  readonly #started = performance.now()
  #lastDraw = 0
  #bytes = 0

  constructor(label: string, total: number | undefined, enabled: boolean) {
    this.#label = label
    this.#total = total
    this.#enabled = enabled
  }

  update(bytes: number): void {
    this.#bytes = bytes
    const now = performance.now()
    if (!this.#enabled || now - this.#lastDraw < 250) return
    this.#lastDraw = now
    this.#draw(false)
  }

  done(): void {
    if (this.#enabled) this.#draw(true)
  }

  /** Seconds since construction. */
  get seconds(): number {
    return (performance.now() - this.#started) / 1000
  }

  #draw(final: boolean): void {
    const secs = Math.max(this.seconds, 1e-6)
    const mbps = this.#bytes / 1e6 / secs
    let line = `${this.#label} ${(this.#bytes / 1e6).toFixed(1)} MB`
    if (this.#total !== undefined && this.#total > 0) {
      const pct = Math.min(100, (100 * this.#bytes) / this.#total)
      const width = 24
      const filled = Math.round((pct / 100) * width)
      const eta = mbps > 0 ? (this.#total - this.#bytes) / 1e6 / mbps : 0
      line = `${this.#label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct.toFixed(0)}% ${(this.#bytes / 1e6).toFixed(1)}/${(this.#total / 1e6).toFixed(1)} MB`
      line += final ? '' : ` ETA ${eta.toFixed(0)}s`
    }
    line += ` ${mbps.toFixed(1)} MB/s`
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}${final ? '\n' : ''}`)
    else if (final || performance.now() - this.#lastLine > 2000) {
      this.#lastLine = performance.now()
      process.stderr.write(`${line}\n`)
    }
  }

  #lastLine = 0
}
