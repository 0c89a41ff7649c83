/**
 * Checks on JSON received from a peer: each function takes an `unknown` and returns it typed,
 * or throws E_PROTOCOL naming where in the message the value was and what it should have been,
 * e.g. `query-block[0].inserted.node-name should be a string (got 5)`.
 * QMP lets servers add members at any time (qmp-spec.rst, "Compatibility Considerations"), so
 * unknown members are ignored; only what a caller reads is checked.
 */
import { CofferError } from '../errors/index.js';

/** A JSON object, neither null nor an array. */
export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function asObject(value: unknown, where: string): JsonObject {
  if (!isObject(value)) throw mismatch(where, 'an object', value);
  return value;
}

export function asArray(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw mismatch(where, 'an array', value);
  return value;
}

export function asString(value: unknown, where: string): string {
  if (typeof value !== 'string') throw mismatch(where, 'a string', value);
  return value;
}

export function asBoolean(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') throw mismatch(where, 'a boolean', value);
  return value;
}

/** A JSON number that is a safe integer (QAPI `int`, `uint64` and `size` values up to 2^53). */
export function asInteger(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw mismatch(where, 'an integer', value);
  return value;
}

export function optString(value: unknown, where: string): string | undefined {
  return value === undefined ? undefined : asString(value, where);
}

export function optBoolean(value: unknown, where: string): boolean | undefined {
  return value === undefined ? undefined : asBoolean(value, where);
}

export function optInteger(value: unknown, where: string): number | undefined {
  return value === undefined ? undefined : asInteger(value, where);
}

/** The elements of an array, each checked by `each` with its index in `where`. */
export function arrayOf<T>(value: unknown, where: string, each: (item: unknown, where: string) => T): T[] {
  return asArray(value, where).map((item, i) => each(item, `${where}[${i}]`));
}

function mismatch(where: string, expected: string, got: unknown): CofferError {
  const shown = got === undefined ? 'nothing' : JSON.stringify(got)?.slice(0, 60) ?? String(got);
  return new CofferError('E_PROTOCOL', `${where} should be ${expected} (got ${shown})`);
}
