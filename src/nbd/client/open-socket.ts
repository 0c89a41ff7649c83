import { createConnection, type Socket } from 'node:net';
import { CofferError } from '../../errors/index.js';
import { NBD_DEFAULT_PORT } from '../protocol/constants.js';
import { describeAddress, type NbdAddress } from './address.js';

/**
 * Connects to `address` (a unix socket or TCP, with TCP_NODELAY as the spec advises).
 * Throws `E_CONNECTION_FAILED` when refused or unreachable, `E_TIMEOUT` after `timeoutMs`.
 */
export function openSocket(address: NbdAddress, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = 'socket' in address ? createConnection({ path: address.socket }) : createConnection({ host: address.host, port: address.port ?? NBD_DEFAULT_PORT });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new CofferError('E_TIMEOUT', `no connection to the ${describeAddress(address)} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new CofferError('E_CONNECTION_FAILED', `cannot connect to the ${describeAddress(address)}: ${error.code ?? error.message}`, { cause: error }));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      if (!('socket' in address)) socket.setNoDelay(true);
      resolve(socket);
    });
  });
}
