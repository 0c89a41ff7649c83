import { stat } from 'node:fs/promises';
import type { Extent } from '../../blockdev/index.js';
import { copyDevice, openDiskImage, openDiskTarget, TARGET_FORMATS, type DiskImage, type TargetFormat } from '../../disk/index.js';
import { CofferError } from '../../errors/index.js';
import type { CommandContext } from '../context.js';
import { parseSourceFormat } from '../source-format.js';
import { formatBytes, formatTable } from '../format.js';

/** Options of `coffer disk`. */
export interface DiskCommandOptions {
  json?: boolean;
  format?: string;
  overwrite?: boolean;
  imageSnapshot?: string;
  sourceFormat?: string;
}

/**
 * Bytes copied per read when converting: large reads, few of them. 2 MiB (qemu-img's own
 * buffer) holds whole VHD and VHDX blocks, which the writers then store without copying;
 * 4 MiB measured no faster (2026-11-25, 4 GiB bench disk: four 4 MiB buffers in flight no
 * longer stay in the CPU cache between the read and the write), 1 MiB slower.
 */
const CONVERT_BLOCK_SIZE = 2 * 1024 * 1024;

/**
 * `coffer disk info IMAGE`, `coffer disk map IMAGE` and `coffer disk convert IN OUT`: what an
 * image is, where its data lies, and the same disk in another format, without a repository
 * (qemu-img info / map / convert for every format Coffer reads and writes).
 */
export async function diskCommand(action: string, path: string, output: string | undefined, options: DiskCommandOptions, context: CommandContext): Promise<number> {
  if (action === 'convert' && output === undefined) throw new CofferError('E_USAGE', 'disk convert needs an input and an output: coffer disk convert IN OUT --format FMT');
  const format = options.format ?? 'raw';
  if (!(TARGET_FORMATS as readonly string[]).includes(format)) throw new CofferError('E_USAGE', `--format ${format}: choose one of ${TARGET_FORMATS.join(', ')}`);
  const image = await openDiskImage(path, {
    ...(options.imageSnapshot === undefined ? {} : { snapshot: options.imageSnapshot }),
    ...(options.sourceFormat === undefined ? {} : { format: parseSourceFormat(options.sourceFormat) }),
  });
  try {
    if (action === 'info') await info(image, options, context);
    else if (action === 'map') await map(image, options, context);
    else if (action === 'convert') await convert(image, output as string, format as TargetFormat, options, context);
    else throw new CofferError('E_USAGE', `unknown disk action ${action}: use info, map or convert`);
    return 0;
  } finally {
    await image.close();
  }
}

async function info(image: DiskImage, options: DiskCommandOptions, context: CommandContext): Promise<void> {
  const chain: { path: string; format: string; virtualSize: number; fileSize: number; details: Record<string, unknown> }[] = [];
  for (let layer: DiskImage | null = image; layer !== null; layer = layer.backing) {
    // A VMDK's descriptor and its extent files all count: the disk's size is theirs together.
    let fileSize = 0;
    for (const path of layer.files ?? [layer.path]) {
      const file = await stat(path);
      fileSize += file.isFile() ? file.blocks * 512 : layer.size;
    }
    chain.push({ path: layer.path, format: layer.format, virtualSize: layer.size, fileSize, details: { ...layer.details } });
  }
  let dataBytes = 0;
  for await (const extent of image.extents()) if (extent.kind === 'data') dataBytes += extent.length;
  const top = chain[0] as (typeof chain)[number];
  const internalSnapshots = image.internalSnapshots ?? [];
  if (options.json) {
    context.stdout.write(`${JSON.stringify({ ...top, dataBytes, internalSnapshots, chain: chain.slice(1) })}\n`);
    return;
  }
  const rows: [string, string][] = [
    ['image', top.path],
    ['format', top.format],
    ['virtual size', `${formatBytes(top.virtualSize)} (${top.virtualSize} bytes)`],
    ['disk size', formatBytes(top.fileSize)],
    ['data', `${formatBytes(dataBytes)} (the rest reads as zeros)`],
    ...Object.entries(top.details).map(([key, value]): [string, string] => [key, String(value)]),
    ...chain.slice(1).map((layer, depth): [string, string] => [`backing ${depth + 1}`, `${layer.path} (${layer.format}, ${formatBytes(layer.virtualSize)})`]),
    ...internalSnapshots.map((s): [string, string] => [`snapshot ${s.id}`, `${s.name} (${s.date}${s.size === null ? '' : `, ${formatBytes(s.size)}`})`]),
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  context.stdout.write(`${rows.map(([label, value]) => `${`${label}:`.padEnd(width)}${value}`).join('\n')}\n`);
}

async function map(image: DiskImage, options: DiskCommandOptions, context: CommandContext): Promise<void> {
  const extents: Extent[] = [];
  for await (const extent of image.extents()) extents.push(extent);
  if (options.json) {
    context.stdout.write(`${JSON.stringify(extents)}\n`);
    return;
  }
  const rows = [['Offset', 'Length', 'Kind', 'Layer']];
  for (const e of extents) rows.push([`0x${e.offset.toString(16)}`, `0x${e.length.toString(16)}`, e.kind, e.layer === undefined ? '-' : String(e.layer)]);
  context.stdout.write(`${formatTable(rows)}\n`);
}

async function convert(image: DiskImage, output: string, format: TargetFormat, options: DiskCommandOptions, context: CommandContext): Promise<void> {
  await refuseInputAsOutput(image, output);
  const target = await openDiskTarget(output, image.size, { format, overwrite: options.overwrite === true, stdout: context.stdout });
  const progress = await copyDevice(image, target, { blockSize: CONVERT_BLOCK_SIZE, inFlight: 4, signal: context.signal });
  const summary = { input: image.path, inputFormat: image.format, output, format, size: image.size, bytesWritten: progress.bytesWritten };
  if (output === '-') return;
  context.stdout.write(options.json ? `${JSON.stringify(summary)}\n` : `converted ${image.path} (${image.format}) to ${output} (${format}), ${formatBytes(image.size)}\n`);
}

/**
 * Refuses an output that is one of the files the image reads (the input itself, through any
 * path or symlink, or a layer of its chain): `--overwrite` would empty it before it is read.
 */
async function refuseInputAsOutput(image: DiskImage, output: string): Promise<void> {
  if (output === '-') return;
  const out = await stat(output).catch(() => undefined);
  if (out === undefined) return;
  for (let layer: DiskImage | null = image; layer !== null; layer = layer.backing) {
    for (const path of layer.files ?? [layer.path]) {
      const file = await stat(path).catch(() => undefined);
      if (file !== undefined && file.dev === out.dev && file.ino === out.ino) {
        throw new CofferError('E_TARGET_UNWRITABLE', `cannot convert to ${output}: it is ${path === image.path ? 'the input image' : `${path}, which the input image reads`}; write to another file`, { subject: { path: output } });
      }
    }
  }
}
