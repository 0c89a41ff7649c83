/**
 * What the Object Lock tests ask of the bucket behind Coffer's back, through the S3 API (the
 * AWS SDK against the real Ceph gateway): the keys under a prefix, an object's retention, and
 * that deleting an object's current version is refused. Shared by s3-lock.integ.test.ts
 * (format 1) and format2-s3.integ.test.ts.
 */
import assert from 'node:assert/strict';
import { DeleteObjectCommand, GetObjectRetentionCommand, ListObjectsV2Command, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';

/** The keys under `prefix` (one page: the tests' buckets are small). */
export async function keysUnder(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((object) => object.Key as string);
}

/** The retention of `key`: its mode and until when (ms; 0 when none). */
export async function retainUntil(client: S3Client, bucket: string, key: string): Promise<{ mode: string; until: number }> {
  const answer = await client.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: key }));
  return { mode: answer.Retention?.Mode ?? '', until: answer.Retention?.RetainUntilDate?.getTime() ?? 0 };
}

/** Deleting the current version of `key` through the S3 API is refused with 403 AccessDenied. */
export async function assertUndeletable(client: S3Client, bucket: string, key: string, bypass: boolean): Promise<void> {
  const versions = await client.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
  const version = versions.Versions?.find((v) => v.Key === key)?.VersionId;
  assert.ok(version !== undefined, key);
  await assert.rejects(
    client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: version, ...(bypass ? { BypassGovernanceRetention: true } : {}) })),
    (error: { name?: string; $metadata?: { httpStatusCode?: number } }) => error.name === 'AccessDenied' && error.$metadata?.httpStatusCode === 403,
    `deleting ${key} (version ${version}${bypass ? ', governance bypass' : ''}) must be refused`,
  );
}

/** Waits until the clock reads `ms`. */
export async function sleepUntil(ms: number): Promise<void> {
  const wait = ms - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}
