/** The part of yazl (a streaming zip writer, zip64 for large files) Coffer uses; yazl ships no types. */
declare module 'yazl' {
  import type { Readable } from 'node:stream';
  export interface EntryOptions {
    mtime?: Date;
    mode?: number;
    compress?: boolean;
    size?: number;
    forceZip64Format?: boolean;
  }
  export class ZipFile {
    readonly outputStream: Readable;
    addReadStreamLazy(metadataPath: string, options: EntryOptions, getReadStream: (cb: (error: Error | null, stream?: Readable) => void) => void): void;
    addBuffer(buffer: Buffer, metadataPath: string, options?: EntryOptions): void;
    addEmptyDirectory(metadataPath: string, options?: { mtime?: Date; mode?: number }): void;
    end(options?: { forceZip64Format?: boolean }, calculatedTotalSizeCallback?: (size: number) => void): void;
    on(event: 'error', listener: (error: Error) => void): this;
  }
}
