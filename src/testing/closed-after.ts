/**
 * Things a test file opens (repositories, servers) closed when its tests end, pass or fail.
 * Call once at the top level of a test file, before `tempFolders()` so that they close before
 * their folders are removed (`after` hooks run in the order they were added):
 *
 *   const opened = closedAfter<Repository>();
 *   const repo = opened(await openRepository(...));
 */
import { after } from 'node:test';

export function closedAfter<T extends { close(): Promise<unknown> }>(): (resource: T) => T {
  const opened: T[] = [];
  after(async () => {
    for (const resource of opened) await resource.close();
  });
  return (resource) => {
    opened.push(resource);
    return resource;
  };
}
