import { CofferError } from '../errors/index.js';

/**
 * Thrown by {@link QmpClient.execute} when QEMU answers a command with an error reply
 * (`{"error": {"class", "desc"}}`); code E_QMP_ERROR. `errorClass` is QEMU's error class
 * (QAPI `QapiErrorClass`: `GenericError`, `CommandNotFound`, `DeviceNotActive`,
 * `DeviceNotFound`, `KVMMissingCap`); callers may branch on it, never on `desc`, which QEMU
 * words for humans and may change (qmp-spec.rst: "Clients should not attempt to parse this
 * message").
 */
export class QmpCommandError extends CofferError {
  readonly command: string;
  readonly errorClass: string;
  readonly desc: string;

  constructor(command: string, errorClass: string, desc: string, peer: string) {
    super('E_QMP_ERROR', `QEMU refused ${command}: ${desc} (${errorClass})`, { subject: { path: peer } });
    this.command = command;
    this.errorClass = errorClass;
    this.desc = desc;
  }
}

/** True when `error` is a refusal by QEMU, optionally of the given error class. */
export function isQmpCommandError(error: unknown, errorClass?: string): error is QmpCommandError {
  return error instanceof QmpCommandError && (errorClass === undefined || error.errorClass === errorClass);
}
