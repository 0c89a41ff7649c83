/**
 * QEMU's `BLOCK_IO_ERROR` event: a guest device's read or write failed, and what QEMU did
 * about it (the drive's `rerror`/`werror` policy).
 *
 * QAPI facts relied on (QEMU 7.2's qapi/block-core.json, block/block-backend.c
 * `send_qmp_error_event`):
 * - data `{"device": str, "node-name"?: str, "operation": "read"|"write",
 *   "action": "ignore"|"report"|"stop", "nospace"?: bool, "reason": str}`;
 * - `device` is the BlockBackend's name: the drive id for `-drive`, "" for a device attached
 *   to a `-blockdev` node; `node-name` is the BlockBackend's ROOT node: while a backup job runs,
 *   that is the job's copy-before-write filter (its `filter-node-name`), not the disk's node;
 * - `action: "stop"`: the VM is paused (run state `io-error`) and the failed request is
 *   retried when it is resumed (`cont`); `"report"`: the guest saw the error;
 * - `nospace` is true when the error was ENOSPC (the default `werror=enospc` stops only then).
 */
import type { QmpEvent } from './qmp-message.js';

/** The event's name. */
export const BLOCK_IO_ERROR = 'BLOCK_IO_ERROR';

/** One `BLOCK_IO_ERROR`. */
export interface BlockIoError {
  /** The BlockBackend's name ("" for an anonymous one). */
  device: string;
  /** The root node of the failed request's BlockBackend, when QEMU names it. */
  nodeName?: string;
  operation: 'read' | 'write';
  action: 'ignore' | 'report' | 'stop';
  /** The error was ENOSPC. */
  nospace: boolean;
  /** QEMU's strerror text. */
  reason: string;
}

/** The event's data, or undefined when it is not a well-formed `BLOCK_IO_ERROR`. */
export function parseBlockIoError(event: QmpEvent): BlockIoError | undefined {
  if (event.event !== BLOCK_IO_ERROR) return undefined;
  const { device, operation, action, reason } = event.data;
  const nodeName = event.data['node-name'];
  const nospace = event.data['nospace'];
  if (typeof device !== 'string' || typeof reason !== 'string') return undefined;
  if (operation !== 'read' && operation !== 'write') return undefined;
  if (action !== 'ignore' && action !== 'report' && action !== 'stop') return undefined;
  return {
    device,
    ...(typeof nodeName === 'string' ? { nodeName } : {}),
    operation,
    action,
    nospace: nospace === true,
    reason,
  };
}
