/**
 * The file piscina loads in each cluster decompression thread: CommonJS on purpose, so that
 * piscina's `require()` never loads an ES module (Node 20.19+ can abort the process on a race
 * in require(esm); see src/repo/codec-worker-entry.cts). It only `import()`s the real worker.
 */
type Decompress = (task: unknown) => number;
let decompress: Decompress | undefined;

export = async function decompressWorker(task: unknown): Promise<number> {
  decompress ??= ((await import('./decompress-worker.js')) as { default: Decompress }).default;
  return decompress(task);
};
