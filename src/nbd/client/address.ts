import { CofferError } from '../../errors/index.js';
import { NBD_DEFAULT_PORT } from '../protocol/constants.js';

/** Where an NBD server listens, and which export to open there. */
export type NbdAddress =
  | { socket: string; exportName?: string }
  | { host: string; port?: number; exportName?: string };

/**
 * Parses an NBD URI (the NBD project's doc/uri.md):
 * - `nbd+unix:///EXPORT?socket=PATH` — a unix socket;
 * - `nbd://HOST[:PORT]/EXPORT` — TCP, port 10809 by default (IPv6 hosts in brackets).
 * The export name is the path without its leading `/`, percent-decoded; empty means the
 * default export. TLS schemes (`nbds…`) and vsock are refused with `E_USAGE`.
 * @example parseNbdUri('nbd+unix:///sda?socket=/run/x.sock') // { socket: '/run/x.sock', exportName: 'sda' }
 */
export function parseNbdUri(uri: string): NbdAddress & { exportName: string } {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw usage(uri, 'not a URI');
  }
  const exportName = decodeExportName(uri, url.pathname);
  switch (url.protocol) {
    case 'nbd+unix:': {
      if (url.host !== '') throw usage(uri, 'a unix socket URI has no host (nbd+unix:///EXPORT?socket=PATH)');
      const socket = url.searchParams.get('socket');
      if (socket === null || socket === '') throw usage(uri, 'the socket=PATH query parameter is missing');
      return { socket, exportName };
    }
    case 'nbd:': {
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      if (host === '') throw usage(uri, 'no host');
      const port = url.port === '' ? NBD_DEFAULT_PORT : Number(url.port);
      return { host, port, exportName };
    }
    case 'nbds:':
    case 'nbds+unix:':
      throw usage(uri, 'NBD over TLS is not supported');
    default:
      throw usage(uri, `unknown scheme ${url.protocol.replace(/:$/, '')} (use nbd:// or nbd+unix://)`);
  }
}

/** A human description of an address, for messages. */
export function describeAddress(address: NbdAddress): string {
  const name = address.exportName === undefined || address.exportName === '' ? '' : ` export ${JSON.stringify(address.exportName)}`;
  return 'socket' in address ? `NBD server on ${address.socket}${name}` : `NBD server at ${address.host}:${address.port ?? NBD_DEFAULT_PORT}${name}`;
}

function decodeExportName(uri: string, pathname: string): string {
  const path = pathname.startsWith('/') ? pathname.slice(1) : pathname;
  try {
    return decodeURIComponent(path);
  } catch {
    throw usage(uri, 'the export name is not valid percent-encoding');
  }
}

function usage(uri: string, why: string): CofferError {
  return new CofferError('E_USAGE', `bad NBD URI ${JSON.stringify(uri)}: ${why}`);
}
