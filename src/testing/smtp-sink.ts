/**
 * A real SMTP server (smtp-server, the nodemailer project's) on a local port that keeps every
 * mail it receives, for notification tests. Plain SMTP, or STARTTLS when given a key and
 * certificate; AUTH PLAIN/LOGIN when a user is given (allowed over plain text: the test runs on
 * 127.0.0.1).
 */
import { SMTPServer } from 'smtp-server';

/** One received mail: envelope, headers, and the text body decoded from its transfer encoding. */
export interface ReceivedMail {
  from: string;
  to: string[];
  /** Header names lower-cased; folded lines unfolded. */
  headers: Record<string, string>;
  subject: string;
  text: string;
  raw: string;
  /** The user that authenticated, if any. */
  user?: string;
  /** Whether the mail came over TLS (after STARTTLS). */
  secure: boolean;
}

export interface SmtpSink {
  port: number;
  mails: ReceivedMail[];
  /** Resolves with the first `count` mails once that many arrived; rejects after `timeoutMs`. */
  waitForMails(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

/**
 * Starts the sink on `port` (0: any free port).
 * @param options.user / options.password  when given, only that login is accepted.
 * @param options.tls  a PEM key and certificate: STARTTLS is offered.
 */
export async function startSmtpSink(port = 0, options: { user?: string; password?: string; tls?: { key: string; cert: string } } = {}): Promise<SmtpSink> {
  const mails: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  const server = new SMTPServer({
    disabledCommands: [...(options.tls === undefined ? ['STARTTLS'] : []), ...(options.user === undefined ? ['AUTH'] : [])],
    ...(options.tls === undefined ? {} : { key: options.tls.key, cert: options.tls.cert }),
    authOptional: options.user === undefined,
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === options.user && auth.password === options.password) callback(null, { user: auth.username });
      else callback(new Error('invalid login'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        mails.push({
          ...parseMail(raw),
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          secure: session.secure,
          ...(typeof session.user === 'string' ? { user: session.user } : {}),
        });
        for (const wake of waiters) wake();
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  return {
    port: bound,
    mails,
    waitForMails(count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (mails.length < count) return;
          cleanup();
          resolve(mails.slice(0, count));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`the SMTP sink received ${mails.length} mail(s) in ${timeoutMs} ms, expected ${count}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Headers and the text body of a single-part mail (quoted-printable and base64 decoded). */
function parseMail(raw: string): { headers: Record<string, string>; subject: string; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const body = raw.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  let text = body;
  if (encoding === 'quoted-printable') {
    text = Buffer.from(body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8');
  } else if (encoding === 'base64') text = Buffer.from(body, 'base64').toString('utf8');
  return { headers, subject: headers.subject ?? '', text: text.replace(/\r\n/g, '\n') };
}
