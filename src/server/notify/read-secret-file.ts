/** Reads a secret (an SMTP password, a webhook key) from its file at the moment it is needed. */
import { readFile } from 'node:fs/promises';
import { CofferError } from '../../errors/index.js';

/**
 * The file's content without its trailing newline.
 * @throws CofferError E_USAGE when the file cannot be read or is empty (the message names the
 * file, never its content).
 */
export async function readSecretFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new CofferError('E_USAGE', `cannot read the ${what} file ${path}: ${reason}`, { subject: { path } });
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret.length === 0) throw new CofferError('E_USAGE', `the ${what} file ${path} is empty`, { subject: { path } });
  return secret;
}
