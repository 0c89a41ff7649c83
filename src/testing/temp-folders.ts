/**
 * Temporary folders for the tests of one file, all removed when the file's tests end (pass or
 * fail). Call once at the top level of a test file:
 *
 *   const tempFolder = tempFolders();
 *   const dir = await tempFolder('coffer-img'); // <tmp>/coffer-img-XXXXXX
 */
import { after } from 'node:test';
import { makeTempDir } from './daemons.js';

export function tempFolders(): (prefix: string) => Promise<string> {
  const made: { path: string; remove(): Promise<void> }[] = [];
  after(async () => {
    await Promise.all(made.map((dir) => dir.remove()));
  });
  return async (prefix) => {
    const dir = await makeTempDir(prefix);
    made.push(dir);
    return dir.path;
  };
}
