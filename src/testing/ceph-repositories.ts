/**
 * Repository backends in Ceph's S3 gateway for the tests of one file: the gateway starts
 * before the file's tests and stops after them (pass or fail), and each call gives an
 * S3 backend on a fresh bucket (`s3:<endpoint>/<bucket>/repo`), destroyed at the end. Call
 * once at the top level of a test file:
 *
 *   const s3Repository = cephRepositories();
 *   const backend = await s3Repository('restore-moved'); // a bucket of its own
 */
import { after, before } from 'node:test';
import { parseS3Location, S3Backend } from '../repo/index.js';
import { startCephS3, type CephS3 } from './ceph-s3.js';

export function cephRepositories(): (label: string) => Promise<S3Backend> {
  let s3: CephS3 | undefined;
  const backends: S3Backend[] = [];
  before(async () => {
    s3 = await startCephS3();
  });
  after(async () => {
    for (const backend of backends) backend.destroy();
    await s3?.stop();
  });
  return async (label) => {
    if (s3 === undefined) throw new Error('the Ceph gateway is not started: call cephRepositories() at the top level of the test file');
    const bucket = await s3.createBucket(label);
    const backend = new S3Backend(parseS3Location(`s3:${s3.endpoint}/${bucket}/repo`), { credentials: s3.credentials });
    backends.push(backend);
    return backend;
  };
}
