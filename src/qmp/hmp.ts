/**
 * The human monitor through QMP: `human-monitor-command` runs one HMP command line and
 * returns its text output (QAPI: `{"command-line": str, "cpu-index": int (optional)}` →
 * str). Tests use it to simulate guest writes with HMP's `qemu-io`, e.g.
 * `qemu-io -d sda "write -P 0xab 1M 64k"` (the guest device id, or for virtio-blk the QOM
 * path `/machine/peripheral/<id>/virtio-backend`).
 *
 * HMP reports most failures as text in its output, not as QMP errors: the output is returned
 * as is, and callers that know what a success prints check it (see {@link qemuIo}).
 */
import { CofferError } from '../errors/index.js';
import type { QmpClient, QmpCallOptions } from './qmp-client.js';
import { asString } from './json-shape.js';

/** Runs one HMP command line; returns what it printed. */
export async function humanMonitorCommand(qmp: QmpClient, commandLine: string, options?: QmpCallOptions): Promise<string> {
  const reply = await qmp.execute('human-monitor-command', { 'command-line': commandLine }, options);
  return asString(reply, 'human-monitor-command');
}

/** Options of {@link qemuIo}. */
export interface QemuIoOptions extends QmpCallOptions {
  /** The guest device id (or QOM path of a virtio-blk backend). */
  device: string;
  /** One qemu-io command, e.g. `write -P 0xab 1M 64k`, `write -z 0 64k`, `discard 0 1M`. */
  command: string;
}

/**
 * Runs HMP `qemu-io -d DEVICE "COMMAND"` (a write or read as the guest would make it) and
 * throws E_QMP_ERROR when it reports a failure. Checked on QEMU 7.2: qemu-io prints its own
 * results (`wrote 65536/65536 bytes at offset …`, `write failed: …`, `Pattern verification
 * failed`) on QEMU's stdout, not into the HMP reply; the reply is empty on success and holds
 * the error when the command could not run (`Error: Device 'sdx' not found`). So a reply that
 * is neither empty nor a qemu-io result line is a failure, and a failure qemu-io prints on
 * stdout (an I/O error, a pattern mismatch) is NOT seen here: verify data by reading it back.
 */
export async function qemuIo(qmp: QmpClient, options: QemuIoOptions): Promise<string> {
  const { device, command, ...call } = options;
  if (command.includes('"') || /\s/.test(device)) throw new RangeError('a qemu-io command cannot contain a double quote, nor a device id a space');
  const output = await humanMonitorCommand(qmp, `qemu-io -d ${device} "${command}"`, call);
  const text = output.trim();
  if (text !== '' && (!/^(wrote|read) \d+\/\d+ bytes/m.test(text) || /failed|error/i.test(text))) {
    throw new CofferError('E_QMP_ERROR', `qemu-io on ${device} failed: ${text}`, { subject: { path: qmp.peer } });
  }
  return output;
}
