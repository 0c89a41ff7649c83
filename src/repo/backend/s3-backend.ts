import http from 'node:http';
import https from 'node:https';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { forEachLimited } from '../../concurrency/index.js';
import type { Backend, BackendEntry, Retention } from './backend.js';
import { checkedKey } from './backend-key.js';
import { translateS3Error, type S3Failure } from './s3-errors.js';
import { parseS3Location, type S3Location } from './s3-location.js';
import { createS3Object, type S3CreateAccess } from './s3-create.js';
import { contentMd5, S3ObjectLock } from './s3-object-lock.js';
import { S3ObjectRequests, S3RequestError } from './s3-object-requests.js';
import { shortObject } from './read-range.js';
import type { S3Credentials } from './s3-signature.js';

type Sdk = typeof import('@aws-sdk/client-s3');
let sdkModule: Sdk | undefined;
let sdkLoading: Promise<Sdk> | undefined;

/**
 * The AWS SDK, imported on the first S3 request: importing it costs ~70 ms, which every
 * command would otherwise pay at start-up, local repositories included.
 */
async function loadSdk(): Promise<Sdk> {
  sdkLoading ??= import('@aws-sdk/client-s3').then((module) => (sdkModule = module));
  return sdkLoading;
}

/** The SDK once {@link loadSdk} resolved (every caller awaits the client first). */
function sdk(): Sdk {
  if (sdkModule === undefined) throw new Error('the AWS SDK is used before it was loaded');
  return sdkModule;
}

/**
 * Settings of {@link S3Backend}, each default with its reason.
 * - maxAttempts 10: the SDK's standard retry strategy (exponential backoff with full jitter,
 *   base 100 ms, cap 20 s) retries throttling (503 SlowDown, 429), 5xx, timeouts and reset or
 *   refused connections; 10 attempts ride out ~10-50 s of a gateway restarting.
 * - connectTimeoutMs 10 s, requestTimeoutMs 120 s (a 64 MiB PUT at 1 MB/s fits), idleTimeoutMs
 *   30 s (no byte in either direction): no request can hang on a dead endpoint.
 * - multipartThreshold 64 MiB, partSize 16 MiB: objects are at most 64 MiB today (a chunk is
 *   at most 16 MiB before compression), so multipart is the rare path; 16 MiB parts are well
 *   above S3's 5 MiB minimum and keep 4 parts in flight under 64 MiB of memory.
 * - maxSockets 64: many requests in flight (a backup keeps dozens of puts going), each on a
 *   kept-alive connection of one agent shared by the SDK and the object requests.
 * - listPageSize 1000: S3's maximum keys per ListObjectsV2 page.
 * - preferredConcurrency 32: reads a restore keeps in flight ({@link Backend.preferredConcurrency}).
 *   Each GET waits a round trip and the gateway's work; 32 keep a gateway on the same two
 *   cores busy (the offsite benchmark, 2026-11-26, bench/README.md) and are 8 MiB of 256 KiB
 *   blocks.
 */
export const S3_DEFAULTS = {
  maxAttempts: 10,
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  idleTimeoutMs: 30_000,
  multipartThreshold: 64 * 1024 * 1024,
  partSize: 16 * 1024 * 1024,
  partsInFlight: 4,
  maxSockets: 64,
  listPageSize: 1000,
  preferredConcurrency: 32,
} as const;

type S3Settings = { -readonly [K in keyof typeof S3_DEFAULTS]: number };

/** Options of {@link S3Backend}. */
export interface S3BackendOptions extends Partial<S3Settings> {
  /** The signing region when the location names none (default `us-east-1`). */
  region?: string;
  /** Explicit keys (tests); by default the SDK's chain: environment, AWS_PROFILE, ~/.aws, instance roles. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/**
 * The backend of an `s3:` location as users write it: the region from AWS_REGION or
 * AWS_DEFAULT_REGION when the location names none, the attempts per request from
 * AWS_MAX_ATTEMPTS, credentials from the AWS SDK's chain (repo/open-location.ts).
 */
export function s3BackendFromEnvironment(location: string, env: NodeJS.ProcessEnv): S3Backend {
  const s3: S3BackendOptions = {};
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (region) s3.region = region;
  const attempts = Number(env.AWS_MAX_ATTEMPTS);
  if (Number.isInteger(attempts) && attempts >= 1) s3.maxAttempts = attempts;
  return new S3Backend(parseS3Location(location), s3);
}

/**
 * A repository in an S3-compatible bucket (AWS S3, Ceph RGW, MinIO…), under a key prefix:
 * backend key `k` is object `PREFIX/k`.
 *
 * How each promise of {@link Backend} is kept:
 * - create: a PutObject with `If-None-Match: *`, checked against the key's versions on a
 *   versioned bucket (s3-create.ts).
 * - put: one PutObject, which S3 makes visible whole or not at all; above
 *   `multipartThreshold`, a multipart upload, which is equally invisible until
 *   CompleteMultipartUpload (an upload that fails is aborted, so no part lingers).
 * - sync: nothing to do, S3 acknowledges a PUT once it is durable.
 * - get: GetObject; `NoSuchKey` is `E_MISSING_OBJECT`; the body lands in a buffer of its own
 *   (one copy from the socket), which can move to a worker thread without another. An empty object is an object (no crash
 *   leaves debris on S3, unlike a local file system).
 * - has: HeadObject; 404 is false.
 * - delete: DeleteObject, which S3 answers 204 for an absent key too.
 * - list: ListObjectsV2, page by page (1000 keys each); its order (lexicographic on S3, but not
 *   promised by every implementation) is not relied upon.
 * get, put (below the multipart threshold, unlocked), has, delete and list go through
 * {@link S3ObjectRequests} (a lean signed request, ~6× less CPU than the SDK's); multipart
 * uploads and Object Lock through the SDK, loaded only then. Every request has a deadline and is retried with backoff; errors are
 * mapped by {@link translateS3Error}. `objectLock` speaks S3 Object Lock (s3-object-lock.ts); it works
 * only on a bucket created with Object Lock enabled.
 */
export class S3Backend implements Backend {
  readonly location: string;
  readonly objectLock: S3ObjectLock;
  readonly preferredConcurrency: number;
  private s3: S3Client | undefined;
  private readonly agent: http.Agent;
  private readonly requests: S3ObjectRequests;
  private readonly staticCredentials: S3Credentials | undefined;
  private readonly clientConfig: S3ClientConfig;
  private readonly bucket: string;
  private readonly root: string;
  private readonly settings: S3Settings;
  /** What s3-create.ts and s3-object-lock.ts borrow from this backend. */
  private readonly access: S3CreateAccess;

  constructor(target: S3Location, options: S3BackendOptions = {}) {
    this.location = target.display;
    this.bucket = target.bucket;
    this.root = target.prefix === '' ? '' : `${target.prefix}/`;
    this.settings = { ...S3_DEFAULTS, ...settingsOf(options) };
    if (this.settings.partSize < 5 * 1024 * 1024) throw new RangeError('S3 multipart parts must be at least 5 MiB');
    // The SDK prints a warning about future Node versions on stderr; the core never prints.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.preferredConcurrency = this.settings.preferredConcurrency;
    const agentOptions = { keepAlive: true, maxSockets: this.settings.maxSockets };
    this.agent = target.endpoint.startsWith('https:') ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    const agent = this.agent;
    const region = target.region ?? options.region ?? 'us-east-1';
    this.staticCredentials = options.credentials ?? credentialsFromEnvironment();
    this.requests = new S3ObjectRequests({
      endpoint: target.endpoint,
      bucket: this.bucket,
      forcePathStyle: target.forcePathStyle,
      region,
      credentials: () => this.credentials(),
      agent: this.agent,
      maxAttempts: this.settings.maxAttempts,
      connectTimeoutMs: this.settings.connectTimeoutMs,
      requestTimeoutMs: this.settings.requestTimeoutMs,
      idleTimeoutMs: this.settings.idleTimeoutMs,
    });
    this.clientConfig = {
      endpoint: target.endpoint,
      region,
      forcePathStyle: target.forcePathStyle,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: this.settings.maxAttempts,
      retryMode: 'standard',
      // The default (checksums on every request) breaks streamed PUTs on RGW 16
      // (MissingContentLength 411) and costs a CRC pass over every chunk.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: this.settings.connectTimeoutMs,
        requestTimeout: this.settings.requestTimeoutMs,
        throwOnRequestTimeout: true,
        socketTimeout: this.settings.idleTimeoutMs,
        httpAgent: agent,
        httpsAgent: agent,
      },
    };
    this.access = {
      client: () => this.client(),
      sdk,
      bucket: this.bucket,
      objectKey: (key) => this.objectKey(key),
      put: (key, data, retention) => this.putObject(key, data, retention),
      translate: (error, action, key) => this.translate(error, action, key),
    };
    this.objectLock = new S3ObjectLock({ ...this.access, create: (key, data, retention) => createS3Object(this.access, key, data, retention) });
  }

  /** The SDK client, made on first use (see {@link loadSdk}). */
  private async client(): Promise<S3Client> {
    if (this.s3 === undefined) {
      const { S3Client } = await loadSdk();
      this.s3 ??= new S3Client(this.clientConfig);
    }
    return this.s3;
  }

  /**
   * The keys that sign {@link S3ObjectRequests}: given ones, else the environment's (the
   * first link of the SDK's chain, read without loading the SDK), else whatever the SDK's
   * chain finds (profiles, web identity, instance roles; refreshed by the SDK as they expire).
   */
  private async credentials(): Promise<S3Credentials> {
    if (this.staticCredentials !== undefined) return this.staticCredentials;
    const provider = (await this.client()).config.credentials;
    const found = await provider();
    return { accessKeyId: found.accessKeyId, secretAccessKey: found.secretAccessKey, ...(found.sessionToken === undefined ? {} : { sessionToken: found.sessionToken }) };
  }

  put(key: string, data: Uint8Array): Promise<void> {
    return this.putObject(key, data, undefined);
  }

  /** A conditional PutObject (s3-create.ts says how it holds on a versioned bucket). */
  create(key: string, data: Uint8Array): Promise<boolean> {
    return createS3Object(this.access, key, data, undefined);
  }

  /** A put, locked when `retention` is given (only on a bucket with Object Lock). */
  private async putObject(key: string, data: Uint8Array, retention: Retention | undefined): Promise<void> {
    const objectKey = this.objectKey(key);
    const lock = retention === undefined ? {} : { ObjectLockMode: retention.mode, ObjectLockRetainUntilDate: retention.until };
    try {
      if (data.length > this.settings.multipartThreshold) await this.putMultipart(objectKey, data, lock);
      else if (retention === undefined) await this.requests.put(objectKey, data);
      else await (await this.client()).send(new (sdk().PutObjectCommand)({ Bucket: this.bucket, Key: objectKey, Body: data, ContentLength: data.length, ContentMD5: contentMd5(data), ...lock }));
    } catch (error) {
      throw this.translate(error, 'write', key);
    }
  }

  async sync(): Promise<void> {
    // S3 acknowledges a PUT only once the object is durable.
  }

  async get(key: string): Promise<Buffer> {
    const objectKey = this.objectKey(key);
    try {
      return await this.requests.get(objectKey);
    } catch (error) {
      throw this.translate(error, 'read', key);
    }
  }

  /** One Range GET; a range past the object's end is `E_CORRUPT_OBJECT` (read-range.ts). */
  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const objectKey = this.objectKey(key);
    let data: Buffer;
    try {
      data = await this.requests.getRange(objectKey, offset, length);
    } catch (error) {
      if (error instanceof S3RequestError && error.$metadata.httpStatusCode === 416) throw shortObject(key, offset, offset, length);
      throw this.translate(error, 'read', key);
    }
    if (data.length !== length) throw shortObject(key, offset + data.length, offset, length);
    return data;
  }

  async has(key: string): Promise<boolean> {
    const objectKey = this.objectKey(key);
    try {
      return await this.requests.head(objectKey);
    } catch (error) {
      throw this.translate(error, 'check', key);
    }
  }

  async delete(key: string): Promise<void> {
    const objectKey = this.objectKey(key);
    try {
      await this.requests.delete(objectKey);
    } catch (error) {
      throw this.translate(error, 'delete', key);
    }
  }

  async *list(prefix: string): AsyncIterable<BackendEntry> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.requests.listPage(`${this.root}${prefix}`, this.settings.listPageSize, token);
      } catch (error) {
        throw this.translate(error, 'list', prefix);
      }
      for (const object of page.objects) {
        if (!object.key.startsWith(this.root)) continue;
        yield { key: object.key.slice(this.root.length), size: object.size };
      }
      token = page.next;
    } while (token !== undefined);
  }

  /** Closes the connections (the backend cannot be used afterwards). */
  destroy(): void {
    this.s3?.destroy();
    this.agent.destroy();
  }

  private async putMultipart(objectKey: string, data: Uint8Array, lock: { ObjectLockMode?: Retention['mode']; ObjectLockRetainUntilDate?: Date }): Promise<void> {
    const created = await (await this.client()).send(new (sdk().CreateMultipartUploadCommand)({ Bucket: this.bucket, Key: objectKey, ...lock }));
    const uploadId = created.UploadId;
    if (uploadId === undefined) throw new Error('CreateMultipartUpload returned no UploadId');
    try {
      const { partSize } = this.settings;
      const numbers = Array.from({ length: Math.ceil(data.length / partSize) }, (_, i) => i + 1);
      const etags = new Map<number, string>();
      await forEachLimited(numbers, this.settings.partsInFlight, async (partNumber) => {
        const body = data.subarray((partNumber - 1) * partSize, Math.min(data.length, partNumber * partSize));
        const locked = lock.ObjectLockMode !== undefined ? { ContentMD5: contentMd5(body) } : {};
        const part = await (await this.client()).send(new (sdk().UploadPartCommand)({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length, ...locked }));
        if (part.ETag === undefined) throw new Error(`UploadPart ${partNumber} returned no ETag`);
        etags.set(partNumber, part.ETag);
      });
      await (await this.client()).send(new (sdk().CompleteMultipartUploadCommand)({
        Bucket: this.bucket,
        Key: objectKey,
        UploadId: uploadId,
        MultipartUpload: { Parts: numbers.map((n) => ({ PartNumber: n, ETag: etags.get(n) as string })) },
      }));
    } catch (error) {
      await (await this.client()).send(new (sdk().AbortMultipartUploadCommand)({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId })).catch(() => undefined);
      throw error;
    }
  }

  private objectKey(key: string): string {
    return `${this.root}${checkedKey(key)}`;
  }

  private translate(error: unknown, action: S3Failure['action'], key: string) {
    return translateS3Error(error, { action, location: this.location, bucket: this.bucket, key: `${this.root}${key}` });
  }
}

/** Keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, unless AWS_PROFILE asks for a profile (as the SDK's chain does). */
function credentialsFromEnvironment(): S3Credentials | undefined {
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_SESSION_TOKEN: sessionToken, AWS_PROFILE: profile } = process.env;
  if (!accessKeyId || !secretAccessKey || profile) return undefined;
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

function settingsOf(options: S3BackendOptions): Partial<S3Settings> {
  const out: Partial<S3Settings> = {};
  for (const name of Object.keys(S3_DEFAULTS) as (keyof S3Settings)[]) {
    const value = options[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
