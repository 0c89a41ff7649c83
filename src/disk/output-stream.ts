import type { Writable } from 'node:stream';
import { CofferError } from '../errors/index.js';
import { targetError } from './target-error.js';

/** Streams some {@link OutputStream} writes data to (stdout of `restore --to -`, `files cat`, `files get --tar`). */
const carryingData = new WeakSet<Writable>();

/**
 * Whether data (an image, a file, an archive) is being written to `stream`. The CLI's
 * standard output treats a reader that goes away (EPIPE) as the end of a listing piped into
 * `head`, exit 0, except when it carries data: then the data is incomplete, and the writer
 * reports it (cli/main.ts).
 */
export function carriesData(stream: Writable): boolean {
  return carryingData.has(stream);
}

/**
 * Sequential writes of data to a stream the caller does not own (standard output), with
 * backpressure, where every failure of the stream reaches the writer: a write that finds the
 * stream full waits for 'drain' (one shared wait, however many writes wait), and an error of
 * the stream (a full disk, a reader that went away), whenever it comes, fails the waiting
 * writes, every later write and {@link finish}. Never waits on a stream that already failed
 * or closed (it would wait forever). The stream is never ended (it may be stdout).
 *
 * Errors: `E_NO_SPACE` for ENOSPC and EDQUOT, `E_TARGET_UNWRITABLE` for the rest (EPIPE says
 * the reader closed it before all the data was written).
 */
export class OutputStream {
  private failure: CofferError | undefined;
  private draining: { promise: Promise<void>; reject: (error: CofferError) => void } | undefined;

  constructor(
    private readonly stream: Writable,
    /** What the stream is, for messages. */
    private readonly what = 'standard output',
  ) {
    carryingData.add(stream);
    stream.on('error', (error) => this.fail(targetError(this.what, error)));
    stream.on('close', () => this.fail(new CofferError('E_TARGET_UNWRITABLE', `cannot write ${this.what}: it was closed before all the data was written`, { subject: { path: this.what } })));
  }

  /** Queues `data` (copied: the caller may reuse its buffer once this resolves). */
  async write(data: Uint8Array): Promise<void> {
    this.check();
    if (!this.stream.write(Buffer.from(data))) await this.drained();
    this.check();
  }

  /** Resolves once everything written reached the stream's destination; rejects if it failed. */
  async finish(): Promise<void> {
    this.check();
    await new Promise<void>((resolve, reject) => {
      this.stream.write('', (error) => (error ? reject(targetError(this.what, error)) : resolve()));
    }).catch((error: unknown) => {
      throw this.failure ?? error;
    });
    this.check();
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
    const errored = this.stream.errored;
    if (errored) this.fail(targetError(this.what, errored));
    else if (this.stream.destroyed || this.stream.writableEnded) this.fail(new CofferError('E_TARGET_UNWRITABLE', `cannot write ${this.what}: it is closed`, { subject: { path: this.what } }));
    if (this.failure !== undefined) throw this.failure;
  }

  private fail(error: CofferError): void {
    this.failure ??= error;
    this.draining?.reject(this.failure);
    this.draining = undefined;
  }

  private drained(): Promise<void> {
    if (this.draining === undefined) {
      let reject!: (error: CofferError) => void;
      const promise = new Promise<void>((resolve, fail) => {
        reject = fail;
        this.stream.once('drain', () => {
          this.draining = undefined;
          resolve();
        });
      });
      promise.catch(() => {});
      this.draining = { promise, reject };
    }
    return this.draining.promise;
  }
}
