import { createConnection, type OnReadOpts, type Socket } from 'node:net';
import { CofferError } from '../../errors/index.js';
import { NBD_DEFAULT_PORT } from '../protocol/constants.js';
import { describeAddress, type NbdAddress } from './address.js';

/**
 * Connects to `address` (a unix socket or TCP, with TCP_NODELAY as the spec advises), reading
 * through `onread` when given. Throws `E_CONNECTION_FAILED` when refused or unreachable,
 * `E_TIMEOUT` after `timeoutMs`.
 */
export function openSocket(address: NbdAddress, timeoutMs: number, onread?: OnReadOpts): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const reading = onread === undefined ? {} : { onread };
    const socket = 'socket' in address ? createConnection({ path: address.socket, ...reading }) : createConnection({ host: address.host, port: address.port ?? NBD_DEFAULT_PORT, ...reading });
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
