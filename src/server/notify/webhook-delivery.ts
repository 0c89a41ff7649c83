/**
 * Posts a message to a webhook: the body is the rendered template (or the whole context) as
 * JSON, with headers
 * - `Content-Type: application/json`,
 * - `X-Coffer-Event`: the event type (`summary` for the daily summary),
 * - `X-Coffer-Signature-256: sha256=<hex>`: HMAC-SHA256 of the exact body bytes with the key
 *   in `secret-file` (when set). The receiver recomputes it over the raw body and compares in
 *   constant time (GitHub's scheme, so existing receivers verify it unchanged).
 * Any 2xx answer is success; anything else, a connection error or the timeout is a failure.
 */
import { createHmac } from 'node:crypto';
import { CofferError } from '../../errors/index.js';
import type { WebhookTarget } from './notification-config.js';
import { readSecretFile } from './read-secret-file.js';
import type { Message } from './render-message.js';
import { renderTemplate } from './render-template.js';

/** The signature header's name. */
export const SIGNATURE_HEADER = 'x-coffer-signature-256';

/** The body a webhook target sends for `message`. */
export function webhookBody(target: WebhookTarget, message: Message): string {
  return JSON.stringify(target.body === undefined ? message.context : renderTemplate(target.body, message.context));
}

/** `sha256=<hex>` of `body` under `key`. */
export function signBody(key: string, body: string): string {
  return `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
}

/**
 * Sends `message` to the webhook.
 * @throws CofferError E_CONNECTION_FAILED (refused, or a non-2xx status with the start of the
 * answer), E_TIMEOUT, or E_USAGE (secret file).
 */
export async function postWebhook(target: WebhookTarget, message: Message): Promise<void> {
  const body = webhookBody(target, message);
  const headers: Record<string, string> = {
    'user-agent': 'coffer-notifier',
    ...target.headers,
    'content-type': 'application/json',
    'x-coffer-event': String(message.context.type ?? 'summary'),
  };
  if (target.secretFile !== undefined) headers[SIGNATURE_HEADER] = signBody(await readSecretFile(target.secretFile, 'webhook secret'), body);
  const where = redacted(target.url);
  const signal = AbortSignal.timeout(target.timeoutMs);
  let response: Response;
  let answer: string;
  try {
    response = await fetch(target.url, { method: target.method, headers, body, signal, redirect: 'error' });
    answer = await response.text();
  } catch (error) {
    if (signal.aborted) throw new CofferError('E_TIMEOUT', `the webhook ${where} did not answer within ${target.timeoutMs / 1000} s`, { cause: error });
    const cause = (error as Error & { cause?: Error }).cause;
    throw new CofferError('E_CONNECTION_FAILED', `cannot reach the webhook ${where}: ${cause?.message ?? (error as Error).message}`, { cause: error });
  }
  if (!response.ok) {
    throw new CofferError('E_CONNECTION_FAILED', `the webhook ${where} answered ${response.status}: ${answer.replace(/\s+/g, ' ').slice(0, 200)}`);
  }
}

/** The URL without credentials or query (which may hold a token), for error messages. */
function redacted(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}
