/**
 * Sends a message as e-mail through an SMTP server (nodemailer speaks SMTP, RFC 5321, with
 * STARTTLS, RFC 3207, and AUTH). One connection per message: notifications are few, and a
 * fresh connection never inherits a half-dead one. Every phase has the target's timeout
 * (connect, greeting, each reply), and the whole send a deadline of twice that.
 */
import nodemailer from 'nodemailer';
import { CofferError, isCofferError } from '../../errors/index.js';
import type { SmtpTarget } from './notification-config.js';
import { readSecretFile } from './read-secret-file.js';
import type { Message } from './render-message.js';

/**
 * Sends `message` to the target's recipients.
 * @throws CofferError E_CONNECTION_FAILED (refused, TLS, authentication, a rejected
 * recipient: the server's reply is in the message), E_TIMEOUT, or E_USAGE (password file).
 */
export async function sendMail(target: SmtpTarget, message: Message): Promise<void> {
  const password = target.passwordFile === undefined ? undefined : await readSecretFile(target.passwordFile, 'SMTP password');
  const transport = nodemailer.createTransport({
    host: target.host,
    port: target.port,
    secure: target.tls === 'tls',
    requireTLS: target.tls === 'starttls',
    ignoreTLS: target.tls === 'none',
    ...(target.user === undefined ? {} : { auth: { user: target.user, pass: password ?? '' } }),
    connectionTimeout: target.timeoutMs,
    greetingTimeout: target.timeoutMs,
    socketTimeout: target.timeoutMs,
    tls: { rejectUnauthorized: target.tlsVerify },
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new CofferError('E_TIMEOUT', `the SMTP server ${target.host}:${target.port} did not take the mail within ${(2 * target.timeoutMs) / 1000} s`)),
      2 * target.timeoutMs,
    );
  });
  try {
    const info = await Promise.race([
      transport.sendMail({ from: target.from, to: target.to, subject: message.subject, text: message.text }),
      deadline,
    ]);
    if (info.rejected.length > 0) {
      throw new CofferError('E_CONNECTION_FAILED', `the SMTP server ${target.host}:${target.port} refused ${info.rejected.join(', ')}`);
    }
  } catch (error) {
    if (isCofferError(error)) throw error;
    const e = error as Error & { code?: string; response?: string };
    const detail = e.response ?? e.message;
    const code = e.code === 'ETIMEDOUT' ? 'E_TIMEOUT' : 'E_CONNECTION_FAILED';
    throw new CofferError(code, `cannot send mail through ${target.host}:${target.port}: ${oneLine(detail)}`, { cause: error });
  } finally {
    clearTimeout(timer);
    transport.close();
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}
