/**
 * Secrets never leave the server: passphrases, SMTP and webhook passwords, tokens. A value is
 * a secret when its key says so (`password`, `passphrase`, `secret`, `token`, `api-key`, …);
 * a key naming a file that holds one (`passphrase-file`) is a path, not a secret. API output,
 * stored config versions shown through the API, and audit details go through these.
 */
import { isPair, isScalar, isSeq, visit, type Document } from 'yaml';

/** What a secret reads as in API output; sent back unchanged in a PUT, it keeps the stored secret. */
export const REDACTED = '(secret)';

export function isSecretKey(key: string): boolean {
  return /(password|passphrase|passwd|secret|token|api-?key|credentials?|authorization)$/i.test(key) && !/-file$/i.test(key);
}

/** A deep copy of `value` with every secret replaced by {@link REDACTED}. */
export function redactValue<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => redactValue(v)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = isSecretKey(k) && v !== null && typeof v !== 'object' ? REDACTED : redactValue(v);
    return out as T;
  }
  return value;
}

/** Replaces every secret scalar of a YAML document in place (comments and layout stay). */
export function redactDocument(document: Document): void {
  visit(document, {
    Pair(_, pair) {
      if (isScalar(pair.key) && isSecretKey(String(pair.key.value)) && isScalar(pair.value) && pair.value.value !== null) pair.value.value = REDACTED;
    },
  });
}

/**
 * Puts the secrets of `previous` back where `next` holds {@link REDACTED} at the same key
 * path; returns the paths where no secret can be restored.
 */
export function restoreRedacted(next: Document, previous: Document): string[] {
  const unresolved: string[] = [];
  visit(next, {
    Pair(_, pair, path) {
      if (!isScalar(pair.key) || !isScalar(pair.value) || pair.value.value !== REDACTED) return;
      // The key path from the ancestors: a pair gives its key, a sequence the index of the next node.
      const chain = [...path, pair];
      const keys: (string | number)[] = [];
      chain.forEach((node, i) => {
        if (isPair(node) && isScalar(node.key)) keys.push(String(node.key.value));
        else if (isSeq(node)) keys.push(node.items.indexOf(chain[i + 1] as never));
      });
      const original = previous.getIn(keys, true);
      if (isScalar(original) && typeof original.value === 'string' && original.value !== REDACTED) pair.value.value = original.value;
      else unresolved.push(keys.join('.'));
    },
  });
  return unresolved;
}
