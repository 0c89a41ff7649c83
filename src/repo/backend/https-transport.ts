import { Agent, request, type RequestOptions } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { CofferError } from '../../errors/index.js';

/** How {@link HttpsTransport} trusts the server and bounds its waits. */
export interface HttpsTransportOptions {
  /**
   * The SHA-256 fingerprint of the server's certificate (`AB:CD:…`, or 64 hex digits, with or
   * without a `SHA256:` prefix). When given, that certificate and no other is accepted, whoever
   * signed it (the server's self-signed one); the CA chain and the host name are not checked.
   */
  fingerprint?: string;
  /** PEM certificates of the CAs to trust instead of the system's (`--cacert`). */
  ca?: string | Buffer;
  /** Connections kept open to the server (default 32). */
  maxSockets: number;
  /** Deadline for TCP + TLS set-up, ms. */
  connectTimeoutMs: number;
  /** Deadline for a silence on an open request (no byte either way), ms. */
  idleTimeoutMs: number;
}

/** One HTTP exchange's answer, body read whole. */
export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** `AB:CD:…` (what Node's `fingerprint256` prints) from any accepted spelling; E_USAGE if malformed. */
export function normalizeFingerprint(text: string): string {
  const hex = text.trim().replace(/^sha-?256:/i, '').replace(/:/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new CofferError('E_USAGE', `${JSON.stringify(text)} is not a SHA-256 fingerprint (64 hex digits, colons optional, as coffer serve-repo prints it)`);
  }
  return hex.match(/../g)?.join(':') ?? hex;
}

/**
 * HTTPS to one server over a keep-alive pool of connections, trusting it in exactly one of
 * three ways: a pinned certificate fingerprint, a CA file, or the system's CAs. Verification
 * is never skipped: with a pin, the TLS handshake's certificate is compared with it before the
 * connection is handed to the HTTP layer, so no request (and no token) is ever written to a
 * server that did not prove it holds the pinned certificate. A mismatch or an untrusted chain
 * is `E_SERVER_UNTRUSTED`, never retried. One attempt per {@link send}: retries are the
 * caller's.
 */
export class HttpsTransport {
  private readonly agent: Agent;
  private readonly url: URL;

  constructor(origin: string, private readonly options: HttpsTransportOptions) {
    this.url = new URL(origin);
    const pinned = options.fingerprint === undefined ? undefined : normalizeFingerprint(options.fingerprint);
    this.agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets, ...(options.ca === undefined ? {} : { ca: options.ca }) });
    const connectTimeoutMs = options.connectTimeoutMs;
    const display = this.url.host;
    // The agent calls createConnection(options, callback) and, when it returns nothing, waits
    // for the callback: the socket reaches the HTTP layer only once it is trusted.
    (this.agent as unknown as { createConnection: (o: ConnectionOptions, cb: (error: Error | null, socket?: Duplex) => void) => undefined }).createConnection = (
      connectOptions,
      callback,
    ) => {
      const socket: TLSSocket = connect({ ...connectOptions, ...(pinned === undefined ? {} : { rejectUnauthorized: false }) });
      let settled = false;
      const settle = (error: Error | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error !== null) {
          socket.destroy();
          callback(error);
        } else callback(null, socket);
      };
      const timer = setTimeout(() => settle(Object.assign(new Error(`no TLS connection to ${display} within ${connectTimeoutMs} ms`), { code: 'ETIMEDOUT' })), connectTimeoutMs);
      socket.once('error', (error) => settle(untrusted(error, display) ?? error));
      socket.once('secureConnect', () => {
        if (pinned === undefined) return settle(null);
        const seen = socket.getPeerCertificate().fingerprint256;
        if (seen === pinned) return settle(null);
        settle(new CofferError('E_SERVER_UNTRUSTED', `the certificate of ${display} (SHA256 ${seen || 'none'}) is not the one pinned (${pinned}): check --repo-fingerprint / COFFER_REPO_FINGERPRINT against what coffer serve-repo printed`));
      });
      return undefined;
    };
  }

  /** One request; the body is read whole. Network failures reject with Node's error (or E_SERVER_UNTRUSTED). */
  send(method: string, path: string, body?: Uint8Array, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve, reject) => {
      const options: RequestOptions = {
        agent: this.agent,
        protocol: this.url.protocol,
        hostname: this.url.hostname.replace(/^\[|\]$/g, ''),
        port: this.url.port === '' ? 443 : Number(this.url.port),
        method,
        path,
        headers: body === undefined ? headers : { 'content-type': 'application/octet-stream', ...headers, 'content-length': String(body.length) },
      };
      const req = request(options, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.once('error', reject);
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      });
      req.setTimeout(this.options.idleTimeoutMs, () => req.destroy(Object.assign(new Error(`${this.url.host} was silent for ${this.options.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.once('error', (error) => reject(untrusted(error, this.url.host) ?? error));
      req.end(body === undefined ? undefined : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    });
  }

  /** Closes the pooled connections. */
  destroy(): void {
    this.agent.destroy();
  }
}

/** TLS verification errors (OpenSSL's codes) become E_SERVER_UNTRUSTED; others are left as they are. */
function untrusted(error: Error, host: string): CofferError | undefined {
  if (error instanceof CofferError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (!/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(code)) return undefined;
  return new CofferError('E_SERVER_UNTRUSTED', `the certificate of ${host} is not trusted (${code}): pin the fingerprint coffer serve-repo printed (--repo-fingerprint or COFFER_REPO_FINGERPRINT), or give its CA with --cacert`, { cause: error });
}
