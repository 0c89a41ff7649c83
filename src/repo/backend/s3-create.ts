import type { S3Client } from '@aws-sdk/client-s3';
import type { CofferError } from '../../errors/index.js';
import type { Retention } from './backend.js';
import { contentMd5 } from './s3-object-lock.js';
import type { S3Failure } from './s3-errors.js';

type Sdk = typeof import('@aws-sdk/client-s3');

/** What {@link createS3Object} borrows from its S3Backend. */
export interface S3CreateAccess {
  client(): Promise<S3Client>;
  sdk(): Sdk;
  bucket: string;
  /** Backend key → object key (with the prefix), checked. */
  objectKey(key: string): string;
  /** S3Backend's put (locked when `retention` is given). */
  put(key: string, data: Uint8Array, retention: Retention | undefined): Promise<void>;
  translate(error: unknown, action: S3Failure['action'], key: string): CofferError;
}

/** Answers of 409 ConditionalRequestConflict (AWS: another conditional write of the key is under way) tried again. */
const CONFLICT_ATTEMPTS = 5;

/**
 * Backend.create on S3: one PutObject with `If-None-Match: *`, which the store refuses with
 * 412 PreconditionFailed when the key exists (AWS S3 since 2024-08, Ceph RGW); the object
 * found is then read, and the create answers true if it holds these very bytes (the SDK
 * retried a put whose first attempt landed). On AWS a concurrent conditional write of the
 * same key may be answered 409 ConditionalRequestConflict: it is tried again, and then meets
 * the 412.
 *
 * A versioned bucket (every bucket with Object Lock is one) needs more: **RGW 16 ignores the
 * condition there** (checked on these machines: eight concurrent conditional PUTs of one key
 * in an Object Lock bucket all succeeded, each a new version; the same in a plain bucket gave
 * one success and seven 412s). So when the put made a version (the answer names a VersionId),
 * the key's versions are listed, and the **oldest** is the object that counts: the create
 * that wrote it (or its bytes) answers true. One that wrote a later version answers false, after putting the
 * oldest version's bytes back on top, so the current version (what readers get) is the
 * winner's again; its own version stays behind, hidden (a locked one cannot be removed). When
 * the listing is refused (a user without s3:ListBucketVersions), the store's answer to the
 * condition is trusted, as on AWS, which keeps it on versioned buckets too.
 */
export async function createS3Object(s3: S3CreateAccess, key: string, data: Uint8Array, retention: Retention | undefined): Promise<boolean> {
  const objectKey = s3.objectKey(key);
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
  const client = await s3.client();
  const lock = retention === undefined ? {} : { ObjectLockMode: retention.mode, ObjectLockRetainUntilDate: retention.until, ContentMD5: contentMd5(data) };
  let versionId: string | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      const answer = await client.send(new (s3.sdk().PutObjectCommand)({ Bucket: s3.bucket, Key: objectKey, Body: data, ContentLength: data.length, IfNoneMatch: '*', ...lock }));
      versionId = answer.VersionId;
      break;
    } catch (error) {
      const status = statusOf(error);
      if (status === 412) return (await bytesOf(s3, client, objectKey, key, undefined))?.equals(bytes) === true;
      if (status === 409 && attempt < CONFLICT_ATTEMPTS) {
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
        continue;
      }
      throw s3.translate(error, 'write', key);
    }
  }
  if (versionId === undefined || versionId === 'null') return true; // an unversioned bucket: the condition held
  const oldest = await oldestVersion(s3, client, objectKey, key);
  if (oldest === undefined || oldest === versionId) return true;
  const first = await bytesOf(s3, client, objectKey, key, oldest);
  if (first === undefined || first.equals(bytes)) return true; // (an earlier attempt of this very create)
  await s3.put(key, first, retention);
  return false;
}

/** The bytes of the key's current version, or of version `versionId`; undefined when absent. */
async function bytesOf(s3: S3CreateAccess, client: S3Client, objectKey: string, key: string, versionId: string | undefined): Promise<Buffer | undefined> {
  try {
    const answer = await client.send(new (s3.sdk().GetObjectCommand)({ Bucket: s3.bucket, Key: objectKey, ...(versionId === undefined ? {} : { VersionId: versionId }) }));
    return Buffer.from(await (answer.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw s3.translate(error, 'read', key);
  }
}

/**
 * The id of the key's oldest version that is not a delete marker (listings go newest first),
 * or undefined when the listing is refused (403).
 */
async function oldestVersion(s3: S3CreateAccess, client: S3Client, objectKey: string, key: string): Promise<string | undefined> {
  let oldest: string | undefined;
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  try {
    do {
      const page = await client.send(new (s3.sdk().ListObjectVersionsCommand)({
        Bucket: s3.bucket,
        Prefix: objectKey,
        ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
        ...(versionMarker === undefined ? {} : { VersionIdMarker: versionMarker }),
      }));
      for (const version of page.Versions ?? []) if (version.Key === objectKey && version.VersionId !== undefined) oldest = version.VersionId;
      const more = page.IsTruncated === true;
      keyMarker = more ? page.NextKeyMarker : undefined;
      versionMarker = more ? page.NextVersionIdMarker : undefined;
    } while (keyMarker !== undefined);
  } catch (error) {
    if (statusOf(error) === 403) return undefined;
    throw s3.translate(error, 'list', key);
  }
  return oldest;
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}
