import { createHash } from 'node:crypto';
import { CofferError } from '../../errors/index.js';
import type { ObjectLockStore, Retention } from './backend.js';
import type { S3CreateAccess } from './s3-create.js';
import type { S3Failure } from './s3-errors.js';

/**
 * The Content-MD5 (base64 of the body's MD5) of a write that locks its object (PutObject,
 * UploadPart of a locked upload). AWS refuses an upload under Object Lock retention that
 * carries neither Content-MD5 nor an SDK checksum header (400
 * MissingUploadObjectWithObjectLockHeaders: seen with moto, which follows AWS); the client
 * computes checksums only where an operation requires them (s3-backend.ts), and PutObject
 * does not declare this one. Ceph RGW accepts the header and checks it.
 */
export function contentMd5(body: Uint8Array): string {
  return createHash('md5').update(body).digest('base64');
}

/**
 * What {@link S3ObjectLock} borrows from its S3Backend: what a create borrows (the client,
 * the multipart-aware put, which here always gets the lock headers), and the create itself.
 */
export interface S3Access extends S3CreateAccess {
  /** S3Backend's create (s3-create.ts), with the lock headers added. */
  create(key: string, data: Uint8Array, retention: Retention): Promise<boolean>;
}

/**
 * S3 Object Lock (facts checked against Ceph RGW 16 in docs/s3.md):
 * - the bucket must be created with Object Lock enabled (`ObjectLockEnabledForBucket`), which
 *   turns versioning on; `GetObjectLockConfiguration` says so (`ObjectLockConfigurationNotFoundError`
 *   404 when it is off);
 * - `PutObject` (and `CreateMultipartUpload`) with `ObjectLockMode` and
 *   `ObjectLockRetainUntilDate` lock the new version; `HeadObject` returns both for the
 *   current version; `PutObjectRetention` moves the date later (earlier is refused with
 *   AccessDenied unless GOVERNANCE with `x-amz-bypass-governance-retention`);
 * - `DeleteObject` without a version id only adds a delete marker (the locked version stays,
 *   hidden); with the version id it is refused with 403 AccessDenied while the version is
 *   locked ("forbidden by object lock"). So deletes here go version by version.
 */
export class S3ObjectLock implements ObjectLockStore {
  constructor(private readonly s3: S3Access) {}

  async enabled(): Promise<boolean> {
    try {
      const answer = await (await this.s3.client()).send(new (this.s3.sdk().GetObjectLockConfigurationCommand)({ Bucket: this.s3.bucket }));
      return answer.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (error) {
      const info = error as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (info.name === 'ObjectLockConfigurationNotFoundError' || (info.$metadata?.httpStatusCode === 404 && info.name !== 'NoSuchBucket')) return false;
      throw this.s3.translate(error, 'check', '');
    }
  }

  put(key: string, data: Uint8Array, retention: Retention): Promise<void> {
    return this.s3.put(key, data, retention);
  }

  create(key: string, data: Uint8Array, retention: Retention): Promise<boolean> {
    return this.s3.create(key, data, retention);
  }

  async retention(key: string): Promise<Retention | null> {
    try {
      const head = await (await this.s3.client()).send(new (this.s3.sdk().HeadObjectCommand)({ Bucket: this.s3.bucket, Key: this.s3.objectKey(key) }));
      const mode = head.ObjectLockMode;
      const until = head.ObjectLockRetainUntilDate;
      if ((mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE') || until === undefined) return null;
      return { mode, until: new Date(until) };
    } catch (error) {
      throw this.s3.translate(error, 'read', key);
    }
  }

  async extend(key: string, retention: Retention): Promise<void> {
    try {
      await (await this.s3.client()).send(new (this.s3.sdk().PutObjectRetentionCommand)({
        Bucket: this.s3.bucket,
        Key: this.s3.objectKey(key),
        Retention: { Mode: retention.mode, RetainUntilDate: retention.until },
      }));
    } catch (error) {
      throw this.locked(error, 'write', key) ?? this.s3.translate(error, 'write', key);
    }
  }

  async deleteAll(key: string): Promise<void> {
    const objectKey = this.s3.objectKey(key);
    const client = await this.s3.client();
    const versions: string[] = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    try {
      do {
        const page = await client.send(new (this.s3.sdk().ListObjectVersionsCommand)({
          Bucket: this.s3.bucket,
          Prefix: objectKey,
          ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
          ...(versionMarker === undefined ? {} : { VersionIdMarker: versionMarker }),
        }));
        for (const version of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
          if (version.Key === objectKey && version.VersionId !== undefined) versions.push(version.VersionId);
        }
        const more = page.IsTruncated === true;
        keyMarker = more ? page.NextKeyMarker : undefined;
        versionMarker = more ? page.NextVersionIdMarker : undefined;
      } while (keyMarker !== undefined);
    } catch (error) {
      throw this.s3.translate(error, 'list', key);
    }
    let refused: CofferError | undefined;
    for (const versionId of versions) {
      try {
        await client.send(new (this.s3.sdk().DeleteObjectCommand)({ Bucket: this.s3.bucket, Key: objectKey, VersionId: versionId }));
      } catch (error) {
        refused ??= this.locked(error, 'delete', key);
        if (refused === undefined) throw this.s3.translate(error, 'delete', key);
      }
    }
    if (refused !== undefined) throw refused;
  }

  /** `E_OBJECT_LOCKED` when the store refused because of a retention, else undefined. */
  private locked(error: unknown, action: S3Failure['action'], key: string): CofferError | undefined {
    const info = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    if (info.$metadata?.httpStatusCode !== 403 || !/object lock|retention/i.test(info.message ?? '')) return undefined;
    return new CofferError('E_OBJECT_LOCKED', `cannot ${action} ${key}: it is under Object Lock retention (${(info.message ?? '').split('\n')[0]})`, {
      subject: { object: key },
      cause: error,
    });
  }
}
