/**
 * A TCP proxy on 127.0.0.1 for network faults between a client and a real server: it can swallow what
 * the clients send (the server never sees it, as on a link that died one way) and cut every
 * connection at once. Used to make a real MQTT broker redeliver a message whose acknowledgement was lost.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'

export class TcpProxy {
  readonly port: number
  /** While true, bytes from clients are read and thrown away. */
  dropUpstream = false
  readonly #server: Server
  readonly #sockets = new Set<Socket>()

  private constructor(server: Server, port: number) {
    this.#server = server
    this.port = port
  }

  /** A proxy to 127.0.0.1:`targetPort`, listening on a free port. */
  static async start(targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined
    const server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1')
      const p = proxy as TcpProxy
      for (const s of [client, upstream]) {
        p.#sockets.add(s)
        s.on('close', () => {
          p.#sockets.delete(s)
          client.destroy()
          upstream.destroy()
        })
        s.on('error', () => {})
      }
      client.on('data', (chunk) => {
        if (!p.dropUpstream) upstream.write(chunk)
      })
      upstream.pipe(client)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    proxy = new TcpProxy(server, (server.address() as { port: number }).port)
    return proxy
  }

  /** Destroy every open connection (both sides). */
  cutAll(): void {
    for (const s of this.#sockets) s.destroy()
  }

  /** Cut every connection and stop listening. */
  async close(): Promise<void> {
    this.cutAll()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}
