import { X509Certificate } from 'node:crypto';
import { readFile, writeFile, rename } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CofferError } from '../../errors/index.js';
import { makeFolders } from '../../native/index.js';

/** The server's TLS certificate and key (PEM), and the certificate's SHA-256 fingerprint. */
export interface TlsIdentity {
  cert: string;
  key: string;
  /** `AB:CD:…`, what clients pin (`--repo-fingerprint`). */
  fingerprint: string;
  /** True when made just now (first start). */
  created: boolean;
  /** Where the certificate is, for messages. */
  certFile: string;
}

/**
 * The administrator's certificate and key when given (`--cert`, `--key`), else the server's
 * own self-signed one in `STATE_DIR/tls/{cert,key}.pem`, made at first start (EC P-256,
 * SHA-256 signature, 10 years, names: this host's name, localhost, 127.0.0.1, ::1) and kept,
 * so its fingerprint stays what agents pinned. Files that do not parse are E_USAGE naming them.
 */
export async function loadTlsIdentity(stateDir: string, given: { certFile?: string; keyFile?: string } = {}): Promise<TlsIdentity> {
  if ((given.certFile === undefined) !== (given.keyFile === undefined)) throw new CofferError('E_USAGE', '--cert and --key go together');
  if (given.certFile !== undefined && given.keyFile !== undefined) {
    const [cert, key] = [await readPem(given.certFile), await readPem(given.keyFile)];
    return { cert, key, fingerprint: fingerprintOf(cert, given.certFile), created: false, certFile: given.certFile };
  }
  const directory = join(stateDir, 'tls');
  const certFile = join(directory, 'cert.pem');
  const keyFile = join(directory, 'key.pem');
  const existing = await readFile(certFile, 'utf8').catch(() => undefined);
  if (existing !== undefined) {
    const key = await readPem(keyFile);
    return { cert: existing, key, fingerprint: fingerprintOf(existing, certFile), created: false, certFile };
  }
  const { generate } = (await import('selfsigned')).default;
  const notBeforeDate = new Date(Date.now() - 3600_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + 10 * 365 * 86_400_000);
  const name = hostname();
  const pems = await generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: name }, { type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
    ],
  });
  await makeFolders(directory, 0o700);
  // The key first: a certificate file exists only with its key beside it.
  await writeAtomically(keyFile, pems.private, 0o600);
  await writeAtomically(certFile, pems.cert, 0o644);
  return { cert: pems.cert, key: pems.private, fingerprint: fingerprintOf(pems.cert, certFile), created: true, certFile };
}

async function readPem(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new CofferError('E_USAGE', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}

function fingerprintOf(cert: string, file: string): string {
  try {
    return new X509Certificate(cert).fingerprint256;
  } catch (error) {
    throw new CofferError('E_USAGE', `${file} is not a PEM certificate`, { cause: error });
  }
}

async function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  await writeFile(`${file}.tmp`, text, { mode });
  await rename(`${file}.tmp`, file);
}
