/**
 * Temporary folders for the tests of one file, all removed when the file's tests end (pass or
 * fail). Call once at the top level of a test file:
 *
 *   const tempFolder = tempFolders();
 *   const dir = await tempFolder('coffer-img'); // <tmp>/coffer-img-XXXXXX
 */
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

export function tempFolders(): (prefix: string) => Promise<string> {
  const made: string[] = [];
  after(async () => {
    await Promise.all(made.map((dir) => fs.rm(dir, { recursive: true, force: true })));
  });
  return async (prefix) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
    made.push(dir);
    return dir;
  };
}
