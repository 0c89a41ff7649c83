import { CofferError } from '../../errors/index.js';

/**
 * Where an S3 repository lives, parsed from an `s3:` location. The forms:
 *
 * | location                                                   | addressing     |
 * |------------------------------------------------------------|----------------|
 * | `s3:https://HOST[:PORT]/BUCKET[/PREFIX]`                    | path-style (Ceph RGW, MinIO, any S3-compatible endpoint) |
 * | `s3:https://HOST[:PORT]/BUCKET[/PREFIX]?style=virtual`      | virtual-hosted (`BUCKET.HOST`) |
 * | `s3:https://BUCKET.s3.REGION.amazonaws.com[/PREFIX]`        | virtual-hosted on AWS, region from the host name |
 * | `s3:https://s3.REGION.amazonaws.com/BUCKET[/PREFIX]`        | path-style on AWS |
 *
 * `?region=NAME` sets the signing region (otherwise the AWS host name's, else `AWS_REGION`,
 * `AWS_DEFAULT_REGION`, else `us-east-1`, which RGW and MinIO accept whatever they are
 * configured with). `http:` is allowed (a gateway on a private network). Credentials never go
 * in the location (it is printed in messages): they come from the AWS SDK's usual chain.
 */
export interface S3Location {
  /** The service endpoint, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://10.0.0.5:7480`. */
  endpoint: string;
  bucket: string;
  /** The key prefix, without leading or trailing `/`; '' for the bucket's root. */
  prefix: string;
  /** Path-style (`ENDPOINT/BUCKET/KEY`) or virtual-hosted (`BUCKET.ENDPOINT/KEY`) requests. */
  forcePathStyle: boolean;
  /** The region named by the location (`?region=` or the AWS host name), if any. */
  region: string | undefined;
  /** The location as given, without its query: for messages. */
  display: string;
}

const BUCKET_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9._-]+$/;
const AWS_VIRTUAL_HOST = /^(.+)\.s3[.-]([a-z0-9-]+)\.amazonaws\.com$/;
const AWS_VIRTUAL_HOST_GLOBAL = /^(.+)\.s3\.amazonaws\.com$/;
const AWS_PATH_HOST = /^s3[.-]([a-z0-9-]+)\.amazonaws\.com$/;

/** True when `location` names an S3 repository (starts with `s3:`). */
export function isS3Location(location: string): boolean {
  return location.startsWith('s3:');
}

/** Parses an `s3:` location (see {@link S3Location}); a malformed one is `E_USAGE`. */
export function parseS3Location(location: string): S3Location {
  const shown = location.replace(/\/\/[^/@]*@/, '//…@'); // never echo a secret
  const bad = (why: string) =>
    new CofferError('E_USAGE', `repository ${shown}: ${why} (expected s3:https://HOST[:PORT]/BUCKET[/PREFIX] or s3:https://BUCKET.s3.REGION.amazonaws.com[/PREFIX])`);
  if (!isS3Location(location)) throw bad('not an s3: location');
  let url: URL;
  try {
    url = new URL(location.slice('s3:'.length));
  } catch {
    throw bad('not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad(`scheme ${url.protocol} is not http: or https:`);
  if (url.username !== '' || url.password !== '') throw bad('credentials do not belong in the location; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE');
  const style = url.searchParams.get('style') ?? 'path';
  if (style !== 'path' && style !== 'virtual') throw bad(`style=${style} is neither path nor virtual`);
  for (const name of url.searchParams.keys()) if (name !== 'style' && name !== 'region') throw bad(`unknown parameter ${name}`);
  let region = url.searchParams.get('region') ?? undefined;
  const segments = url.pathname.split('/').filter((segment) => segment !== '').map(decodeURIComponent);
  let endpointHost = url.host;
  let bucket: string | undefined;
  let forcePathStyle = style === 'path';
  const awsVirtual = AWS_VIRTUAL_HOST.exec(url.hostname) ?? AWS_VIRTUAL_HOST_GLOBAL.exec(url.hostname);
  if (awsVirtual !== null) {
    bucket = awsVirtual[1];
    region ??= awsVirtual[2];
    endpointHost = url.host.slice((bucket ?? '').length + 1);
    forcePathStyle = false;
  } else {
    region ??= AWS_PATH_HOST.exec(url.hostname)?.[1];
    bucket = segments.shift();
  }
  if (bucket === undefined || bucket === '') throw bad('no bucket');
  if (!BUCKET_PATTERN.test(bucket) || bucket.includes('..')) throw bad(`bucket name ${JSON.stringify(bucket)} is not valid`);
  for (const segment of segments) {
    if (!PREFIX_SEGMENT.test(segment) || segment === '.' || segment === '..') throw bad(`prefix segment ${JSON.stringify(segment)} is not valid`);
  }
  const endpoint = `${url.protocol}//${endpointHost}`;
  const prefix = segments.join('/');
  const display = `s3:${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  return { endpoint, bucket, prefix, forcePathStyle, region, display };
}
