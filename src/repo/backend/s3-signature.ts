import { createHash, createHmac } from 'node:crypto';

/**
 * AWS Signature Version 4, header form, for S3 requests (the AWS documentation's
 * "Authenticating Requests: Using the Authorization Header (AWS Signature Version 4)").
 *
 * 1. Canonical request, lines joined by `\n`:
 *    `METHOD`, the URI-encoded path (S3: each segment encoded once, `/` kept), the canonical
 *    query string (`name=value` pairs sorted by name, both encoded, `/` too), one `name:value\n` per signed header
 *    (names lower-case, sorted, values trimmed), the signed header names joined by `;`, and
 *    the payload hash (hex SHA-256 of the body; `x-amz-content-sha256` carries it).
 * 2. String to sign: `AWS4-HMAC-SHA256\n<x-amz-date>\n<scope>\n<hex SHA-256 of 1.>`, where the
 *    date is `YYYYMMDDTHHMMSSZ` (UTC) and the scope `YYYYMMDD/REGION/s3/aws4_request`.
 * 3. Signing key: HMAC-SHA256 chained from `"AWS4" + secret` over the day, the region, `s3`
 *    and `aws4_request` (the same all day: derived once per day and secret).
 * 4. `Authorization: AWS4-HMAC-SHA256 Credential=<access key>/<scope>,
 *    SignedHeaders=<names>, Signature=<hex HMAC-SHA256(key, 2.)>`.
 * Temporary credentials add `x-amz-security-token` (signed).
 */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** What is signed of a request. */
export interface SignableRequest {
  method: string;
  /** The Host header's value (`host[:port]`, the port only when not the scheme's default). */
  host: string;
  /** The path, already URI-encoded ({@link encodeS3Path}). */
  path: string;
  /** The canonical query string ({@link canonicalQuery}); '' for none. */
  query?: string;
  /** Hex SHA-256 of the body ({@link EMPTY_PAYLOAD_HASH} for none). */
  payloadHash: string;
  /** Further headers to sign, names in lower case (e.g. `range`). */
  headers?: Record<string, string>;
}

/** Hex SHA-256 of no bytes: the payload hash of a request without a body. */
export const EMPTY_PAYLOAD_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Signs requests for one region; keeps the day's signing key. */
export class S3Signer {
  private cachedKey: { day: string; secret: string; key: Buffer } | undefined;

  constructor(private readonly region: string) {}

  /**
   * The headers to send besides the caller's: `x-amz-date`, `x-amz-content-sha256`,
   * `x-amz-security-token` (when the credentials have one) and `authorization`.
   */
  sign(request: SignableRequest, credentials: S3Credentials, now: Date): Record<string, string> {
    const amzDate = now.toISOString().replace(/[-:]|\.\d{3}/g, '');
    const day = amzDate.slice(0, 8);
    const added: Record<string, string> = { 'x-amz-content-sha256': request.payloadHash, 'x-amz-date': amzDate };
    if (credentials.sessionToken !== undefined) added['x-amz-security-token'] = credentials.sessionToken;
    const signed: [string, string][] = [['host', request.host]];
    for (const [name, value] of Object.entries({ ...request.headers, ...added })) signed.push([name.toLowerCase(), value.trim().replace(/\s+/g, ' ')]);
    signed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const names = signed.map(([name]) => name).join(';');
    const canonical = [request.method, request.path, request.query ?? '', ...signed.map(([name, value]) => `${name}:${value}`), '', names, request.payloadHash].join('\n');
    const scope = `${day}/${this.region}/s3/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
    const signature = createHmac('sha256', this.signingKey(day, credentials.secretAccessKey)).update(toSign).digest('hex');
    added.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${names}, Signature=${signature}`;
    return added;
  }

  private signingKey(day: string, secret: string): Buffer {
    const cached = this.cachedKey;
    if (cached !== undefined && cached.day === day && cached.secret === secret) return cached.key;
    const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
    const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), this.region), 's3'), 'aws4_request');
    this.cachedKey = { day, secret, key };
    return key;
  }
}

/** `/seg/seg…` with each segment URI-encoded as SigV4 wants (RFC 3986 unreserved kept). */
export function encodeS3Path(segments: string[]): string {
  return `/${segments.map(encodeRfc3986).join('/')}`;
}

/** `name=value&…` sorted by name, names and values URI-encoded (`/` too): the canonical query string, also sent as is. */
export function canonicalQuery(parameters: Record<string, string>): string {
  return Object.entries(parameters)
    .map(([name, value]) => [encodeRfc3986(name), encodeRfc3986(value)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

/** Every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) percent-encoded. */
function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
