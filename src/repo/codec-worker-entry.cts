/**
 * The file piscina loads in each codec worker thread: CommonJS on purpose. piscina first
 * tries `require()` on its worker file, and on Node 20.19+ a `require()` of an ES module can
 * abort the whole process (`FATAL ERROR: v8::Module::IsGraphAsync must be used on an
 * instantiated module`, seen once in a CI run of `coffer files`: a race between require and
 * import of one module graph in Node's loader). This file is plain CommonJS and only ever
 * `import()`s the real worker (codec-worker.ts), so that path is never taken.
 */
type Run = (task: unknown) => unknown;
let run: Run | undefined;

export = async function codecWorker(task: unknown): Promise<unknown> {
  run ??= ((await import('./codec-worker.js')) as { default: Run }).default;
  return run(task);
};
