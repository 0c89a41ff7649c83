/**
 * An HTTP proxy in front of an S3 gateway that records every request a client makes, for tests
 * and benchmarks that count what a backup costs in requests (PUT/GET/HEAD/LIST…): the client
 * is pointed at `endpoint` instead of the gateway's. Requests and answers are passed through
 * unchanged, headers included (SigV4 signs the Host header the client sent, which the
 * gateway checks as received), so the proxy changes nothing but the port.
 *
 * What a request is called (path-style addressing, `/BUCKET/KEY?QUERY`):
 * | kind        | request                                                        |
 * |-------------|----------------------------------------------------------------|
 * | `LIST`      | GET of a bucket (ListObjects/ListObjectsV2/ListObjectVersions) |
 * | `GET`       | GET of an object without a Range header                        |
 * | `RANGE`     | GET of an object with a Range header                           |
 * | `HEAD`      | HEAD of an object or a bucket                                  |
 * | `PUT`       | PUT of an object (one PutObject, or one part of a multipart)   |
 * | `RETENTION` | PUT `?retention` (PutObjectRetention: an Object Lock extended) |
 * | `POST`      | POST (multipart create/complete, DeleteObjects)                |
 * | `DELETE`    | DELETE                                                         |
 * | `OTHER`     | any other GET/PUT of a bucket's sub-resource (`?object-lock`…) |
 *
 * @example
 * const counter = await startS3RequestCounter(s3.endpoint);
 * after(() => counter.close());
 * // run coffer against s3:${counter.endpoint}/bucket/repo, then:
 * counter.take(); // [{ kind: 'PUT', key: 'repo/packs/ab/ab…' }, …] since the last take
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type S3RequestKind = 'LIST' | 'GET' | 'RANGE' | 'HEAD' | 'PUT' | 'RETENTION' | 'POST' | 'DELETE' | 'OTHER';

/** One request seen: its kind and its object key (without the bucket; '' for a bucket request). */
export interface S3Request {
  kind: S3RequestKind;
  key: string;
}

/** A running counter. */
export interface S3RequestCounter {
  /** `http://127.0.0.1:PORT`: give it to the client as the S3 endpoint. */
  readonly endpoint: string;
  /** The requests seen since the last call, oldest first (and forgets them). */
  take(): S3Request[];
  /** Stops listening and ends every connection (idempotent). */
  close(): Promise<void>;
}

/** Requests counted by kind, e.g. `{ PUT: 12, RANGE: 40 }` (kinds never seen are absent). */
export function countByKind(requests: readonly S3Request[], keyFilter: (key: string) => boolean = () => true): Partial<Record<S3RequestKind, number>> {
  const counts: Partial<Record<S3RequestKind, number>> = {};
  for (const request of requests) if (keyFilter(request.key)) counts[request.kind] = (counts[request.kind] ?? 0) + 1;
  return counts;
}

/** Starts the proxy in front of `upstream` (`http://HOST:PORT`). */
export async function startS3RequestCounter(upstream: string): Promise<S3RequestCounter> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let seen: S3Request[] = [];
  const server = http.createServer((request, response) => {
    seen.push(classify(request.method ?? 'GET', request.url ?? '/', request.headers.range !== undefined));
    const forward = http.request(
      { host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers, agent },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(response);
      },
    );
    forward.on('error', () => response.destroy());
    request.pipe(forward);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  let closed: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    take() {
      const taken = seen;
      seen = [];
      return taken;
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      });
      return closed;
    },
  };
}

function classify(method: string, url: string, ranged: boolean): S3Request {
  const parsed = new URL(url, 'http://x');
  const [, , ...rest] = parsed.pathname.split('/');
  const key = decodeURIComponent(rest.join('/'));
  const query = parsed.searchParams;
  switch (method) {
    case 'HEAD':
      return { kind: 'HEAD', key };
    case 'GET':
      if (key === '') return { kind: [...query.keys()].some((q) => q === 'object-lock' || q === 'versioning' || q === 'location') ? 'OTHER' : 'LIST', key };
      return { kind: ranged ? 'RANGE' : 'GET', key };
    case 'PUT':
      if (query.has('retention')) return { kind: 'RETENTION', key };
      return { kind: key === '' ? 'OTHER' : 'PUT', key };
    case 'POST':
      return { kind: 'POST', key };
    case 'DELETE':
      return { kind: 'DELETE', key };
    default:
      return { kind: 'OTHER', key };
  }
}
