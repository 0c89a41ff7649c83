import { stat } from 'node:fs/promises';
import type { Extent } from '../../blockdev/index.js';
import { openDiskImage, type DiskImage } from '../../disk/index.js';
import { CofferError } from '../../errors/index.js';
import type { CommandContext } from '../context.js';
import { formatBytes, formatTable } from '../format.js';

/** Options of `coffer disk`. */
export interface DiskCommandOptions {
  json?: boolean;
}

/**
 * `coffer disk info IMAGE` and `coffer disk map IMAGE`: what an image is and where its data
 * lies, without a repository (qemu-img info / map for every format Coffer reads).
 */
export async function diskCommand(action: string, path: string, options: DiskCommandOptions, context: CommandContext): Promise<number> {
  const image = await openDiskImage(path);
  try {
    if (action === 'info') await info(image, options, context);
    else if (action === 'map') await map(image, options, context);
    else throw new CofferError('E_USAGE', `unknown disk action ${action}: use info or map`);
    return 0;
  } finally {
    await image.close();
  }
}

async function info(image: DiskImage, options: DiskCommandOptions, context: CommandContext): Promise<void> {
  const chain: { path: string; format: string; virtualSize: number; fileSize: number; details: Record<string, unknown> }[] = [];
  for (let layer: DiskImage | null = image; layer !== null; layer = layer.backing) {
    const file = await stat(layer.path);
    chain.push({ path: layer.path, format: layer.format, virtualSize: layer.size, fileSize: file.isFile() ? file.blocks * 512 : layer.size, details: { ...layer.details } });
  }
  let dataBytes = 0;
  for await (const extent of image.extents()) if (extent.kind === 'data') dataBytes += extent.length;
  const top = chain[0] as (typeof chain)[number];
  if (options.json) {
    context.stdout.write(`${JSON.stringify({ ...top, dataBytes, chain: chain.slice(1) })}\n`);
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
