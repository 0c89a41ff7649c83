/**
 * A TCP proxy on 127.0.0.1 that counts the bytes each way, for the offsite benchmark: the
 * sync is pointed at the proxy instead of the S3 gateway, so "bytes transferred" is what
 * really crossed the wire (HTTP headers, signatures, HEAD and LIST requests included), not
 * what the tool says it sent.
 *
 * @module
 */
import net from 'node:net';

/** A running proxy. */
export interface CountingProxy {
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** Bytes from clients to the upstream (requests and uploads). */
  readonly sent: () => number;
  /** Bytes from the upstream to clients (responses and downloads). */
  readonly received: () => number;
  /** Stops listening and ends every connection. */
  close(): Promise<void>;
}

/** Proxies every connection to `upstreamPort` on 127.0.0.1. */
export async function startCountingProxy(upstreamPort: number): Promise<CountingProxy> {
  let sent = 0;
  let received = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => (sent += chunk.length));
    upstream.on('data', (chunk: Buffer) => (received += chunk.length));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    sent: () => sent,
    received: () => received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
