/**
 * The HTTPS certificate: the administrator's own (`--tls-cert`/`--tls-key`), or at first
 * start a self-signed one made into DIR/tls/ (ECDSA P-256, ten years, for localhost, the
 * loopback addresses and this machine's name), reused at every later start. Its SHA-256
 * fingerprint is printed so the first browser warning can be checked against it.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { CofferError } from '../../errors/index.js';
import { makeFolders } from '../../native/index.js';
import { writeFileAtomically } from '../config/index.js';

export interface TlsMaterial {
  key: string;
  cert: string;
  /** SHA-256 of the certificate, as colon-separated hex (what browsers show). */
  fingerprint: string;
  certFile: string;
  /** True when it was made just now. */
  created: boolean;
}

export async function loadOrCreateCertificate(dataDir: string, own?: { cert: string; key: string }): Promise<TlsMaterial> {
  if (own !== undefined) {
    const read = (file: string) => readFile(file, 'utf8').catch((cause: unknown) => {
      throw new CofferError('E_USAGE', `cannot read ${file}: ${(cause as Error).message}`, { cause, subject: { path: file } });
    });
    const [cert, key] = [await read(own.cert), await read(own.key)];
    return { cert, key, fingerprint: fingerprintOf(cert, own.cert), certFile: own.cert, created: false };
  }
  const dir = join(dataDir, 'tls');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const existing = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]).catch(() => undefined);
  if (existing !== undefined) return { cert: existing[0], key: existing[1], fingerprint: fingerprintOf(existing[0], certFile), certFile, created: false };
  await makeFolders(dir, 0o700);
  const name = hostname();
  const now = new Date();
  const made = await generate([{ name: 'commonName', value: `Coffer server ${name}` }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + 10 * 365 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 2, value: name }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
    ],
  });
  await writeFileAtomically(keyFile, made.private, 0o600);
  await writeFileAtomically(certFile, made.cert, 0o644);
  return { cert: made.cert, key: made.private, fingerprint: fingerprintOf(made.cert, certFile), certFile, created: true };
}

function fingerprintOf(cert: string, file: string): string {
  try {
    return new X509Certificate(cert).fingerprint256;
  } catch (cause) {
    throw new CofferError('E_USAGE', `${file} is not a PEM certificate`, { cause, subject: { path: file } });
  }
}
