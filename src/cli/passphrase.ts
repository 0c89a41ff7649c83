import { CofferError } from '../errors/index.js';
import { readPassphraseFile } from './passphrase-file.js';

/** Where the passphrase may come from, in order of precedence. */
export interface PassphraseSources {
  passwordFile?: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Variables to read: COFFER_PASSWORD / COFFER_PASSWORD_FILE, the NEW_ ones for `key add`, the TO_ ones for a sync's destination. */
  variable: 'COFFER_PASSWORD' | 'COFFER_NEW_PASSWORD' | 'COFFER_TO_PASSWORD';
  stdin: NodeJS.ReadStream;
  stderr: NodeJS.WriteStream;
  prompt: string;
  /** Ask twice on a TTY (new passphrases). */
  confirm: boolean;
  /** Ends a wait for a passphrase file that is a FIFO nobody writes to yet (Ctrl-C). */
  signal?: AbortSignal;
}

/**
 * The passphrase: from `--password-file`, `$COFFER_PASSWORD`, `$COFFER_PASSWORD_FILE`, or a
 * prompt when standard input is a terminal; `undefined` when none of these is available.
 * A file's trailing newline is not part of the passphrase; a file is read once per process,
 * and refused when empty or larger than a passphrase can be (passphrase-file.ts).
 */
export async function readPassphrase(sources: PassphraseSources): Promise<string | undefined> {
  const fileFromEnv = sources.env[`${sources.variable}_FILE`];
  const file = sources.passwordFile ?? (fileFromEnv === '' ? undefined : fileFromEnv);
  if (file !== undefined) return readPassphraseFile(file, sources.signal);
  const fromEnv = sources.env[sources.variable];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (!sources.stdin.isTTY) return undefined;
  const first = await promptHidden(sources.stdin, sources.stderr, `${sources.prompt}: `);
  if (sources.confirm) {
    const second = await promptHidden(sources.stdin, sources.stderr, `${sources.prompt} (again): `);
    if (first !== second) throw new CofferError('E_USAGE', 'the passphrases do not match');
  }
  if (first === '') throw new CofferError('E_USAGE', 'an empty passphrase is not allowed');
  return first;
}

/** Reads a line from the terminal without echoing it. Ctrl-C interrupts. */
function promptHidden(stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    stderr.write(prompt);
    let answer = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const finish = (error?: CofferError) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      stderr.write('\n');
      if (error) reject(error);
      else resolve(answer);
    };
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n') return finish();
        if (char === '\u0003') return finish(new CofferError('E_INTERRUPTED', 'interrupted at the passphrase prompt'));
        if (char === '\u007f' || char === '\b') answer = answer.slice(0, -1);
        else answer += char;
      }
    };
    stdin.on('data', onData);
  });
}
