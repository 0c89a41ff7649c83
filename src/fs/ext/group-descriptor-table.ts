import { isCofferError } from '../../errors/index.js';
import type { FsType } from '../filesystem.js';
import { fsCorrupt } from '../fs-errors.js';
import type { BlockReader } from './block-reader.js';
import {
  backupDescriptorBlocks, descriptorBlockCount, descriptorProblem, descriptorsPerBlock, parseGroupDescriptor, primaryDescriptorBlock,
  type GroupDescriptor,
} from './group-descriptors.js';
import type { Superblock } from './superblock.js';

/**
 * Descriptor blocks checked when the filesystem opens, so that damage is known (and
 * reported in the notice) before anything is listed: the whole table of any filesystem up
 * to 8 TiB with 4 KiB blocks (64 groups a block), 4 MiB read. Linux reads the whole table
 * at mount; past this many blocks, each is checked when first used instead, so a
 * superblock claiming billions of groups costs nothing at open.
 */
const DESCRIPTOR_BLOCKS_CHECKED_AT_OPEN = 1024;

/** Ranges of groups (and backup groups) named in the notice before "and N more". */
const RANGES_IN_NOTICE = 4;

/** A group's descriptor as it will be used, or why it cannot be. */
type Slot = { descriptor: GroupDescriptor } | { unreadable: string };

/**
 * The group descriptors in use: each group's primary descriptor when it checks (see
 * `descriptorProblem`), else the first of its backup copies that checks (group 1's table,
 * then group 3's, 5's …; a meta group's second group, then its last: backupDescriptorBlocks),
 * else an `E_FS_CORRUPT` naming every copy's problem for the inodes of that group only. Each descriptor block is checked once, as a whole, and remembered; the primary
 * copies that check stay in use beside the backup ones of their damaged neighbours.
 */
export class GroupDescriptorTable {
  private readonly checked = new Map<number, Promise<Slot[]>>();
  private readonly fromBackup: number[] = [];
  private readonly backupGroups = new Set<number>();
  private readonly unreadable: number[] = [];
  private firstDamage: string | undefined;

  private constructor(
    private readonly sb: Superblock,
    private readonly blocks: BlockReader,
    private readonly type: FsType,
  ) {}

  /** Checks the descriptor blocks (the first {@link DESCRIPTOR_BLOCKS_CHECKED_AT_OPEN}). Throws what the device's reads throw. */
  static async open(sb: Superblock, blocks: BlockReader, type: FsType): Promise<GroupDescriptorTable> {
    const table = new GroupDescriptorTable(sb, blocks, type);
    const count = Math.min(descriptorBlockCount(sb), DESCRIPTOR_BLOCKS_CHECKED_AT_OPEN);
    for (let index = 0; index < count; index++) await table.slots(index);
    return table;
  }

  /**
   * The descriptor of `group`. Throws `E_FS_CORRUPT` when no group has that number, when both
   * copies of its descriptor are damaged, or when its inode table lies beyond the device.
   */
  async descriptor(group: number): Promise<GroupDescriptor> {
    const sb = this.sb;
    if (!Number.isSafeInteger(group) || group < 0 || group >= sb.groupCount) throw fsCorrupt(this.type, `no block group ${group}`);
    const perBlock = descriptorsPerBlock(sb);
    const slot = (await this.slots(Math.floor(group / perBlock)))[group % perBlock] as Slot;
    if ('unreadable' in slot) throw fsCorrupt(this.type, slot.unreadable, { object: `group ${group}` });
    const tableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize);
    this.blocks.check(slot.descriptor.inodeTable, tableBlocks, `inode table of group ${group}`);
    return slot.descriptor;
  }

  /** What was read around so far (backup descriptors, groups that do not read), for the user; undefined when nothing was. */
  get notice(): string | undefined {
    if (this.firstDamage === undefined) return undefined;
    const parts = [`the primary group descriptors are damaged (${this.firstDamage})`];
    if (this.fromBackup.length > 0) {
      const holders = [...this.backupGroups].sort((a, b) => a - b);
      const where = `${holders.length === 1 ? 'the backup copy in group' : 'backup copies in groups'} ${holders.slice(0, RANGES_IN_NOTICE).join(', ')}${holders.length > RANGES_IN_NOTICE ? ' …' : ''}`;
      parts.push(`${groupList(this.fromBackup)} read through ${where} (every such group taken as initialised)`);
    }
    if (this.unreadable.length > 0) parts.push(`${groupList(this.unreadable)} unreadable (the backup copies are damaged too, or missing): files there do not read`);
    return parts.join('; ');
  }

  private slots(index: number): Promise<Slot[]> {
    let pending = this.checked.get(index);
    if (pending === undefined) {
      pending = this.check(index);
      pending.catch(() => this.checked.delete(index)); // a read error: try again next time
      this.checked.set(index, pending);
    }
    return pending;
  }

  private async check(index: number): Promise<Slot[]> {
    const sb = this.sb;
    const perBlock = descriptorsPerBlock(sb);
    const first = index * perBlock;
    const groups = Math.min(perBlock, sb.groupCount - first);
    const primaryBlock = primaryDescriptorBlock(sb, index);
    const primary = await this.readBlock(primaryBlock, `group descriptor block ${index}`);
    const slotOf = (bytes: Uint8Array, i: number): Uint8Array => bytes.subarray(i * sb.descSize, (i + 1) * sb.descSize);
    const problems = Array.from({ length: groups }, (_, i) =>
      typeof primary === 'string' ? primary : descriptorProblem(sb, first + i, slotOf(primary, i)));
    if (problems.every((p) => p === undefined)) {
      return problems.map((_, i) => ({ descriptor: parseGroupDescriptor(sb, slotOf(primary as Uint8Array, i), false) }));
    }
    const backups = backupDescriptorBlocks(sb, index);
    /** Each backup block read once, when a damaged descriptor first needs it. */
    const backupBytes: (Promise<Uint8Array | string> | undefined)[] = [];
    const readBackup = (n: number): Promise<Uint8Array | string> =>
      (backupBytes[n] ??= this.readBlock((backups[n] as { block: number }).block, `backup of group descriptor block ${index}`));
    const slots: Slot[] = [];
    for (const [i, problem] of problems.entries()) {
      const group = first + i;
      if (problem === undefined) {
        slots.push({ descriptor: parseGroupDescriptor(sb, slotOf(primary as Uint8Array, i), false) });
        continue;
      }
      this.firstDamage ??= `group ${group}: ${problem}`;
      const damagedCopies: string[] = [];
      let found: GroupDescriptor | undefined;
      for (const [n, backup] of backups.entries()) {
        const bytes = await readBackup(n);
        const backupProblem = typeof bytes === 'string' ? bytes : descriptorProblem(sb, group, slotOf(bytes, i));
        if (backupProblem === undefined) {
          found = parseGroupDescriptor(sb, slotOf(bytes as Uint8Array, i), true);
          this.backupGroups.add(backup.group);
          break;
        }
        damagedCopies.push(`in group ${backup.group} at block ${backup.block}` + (backups.length === 1 ? ` is damaged too (${backupProblem})` : ` (${backupProblem})`));
      }
      if (found !== undefined) {
        this.fromBackup.push(group);
        slots.push({ descriptor: found });
        continue;
      }
      this.unreadable.push(group);
      const copies = backups.length === 0 ? 'there is no backup copy'
        : backups.length === 1 ? `its backup ${damagedCopies[0] as string}`
        : `its ${backups.length} backups are damaged too: ${damagedCopies.join(', ')}`;
      slots.push({ unreadable: `the descriptor of group ${group} at block ${primaryBlock} is damaged (${problem}) and ${copies}` });
    }
    return slots;
  }

  /** The block, or why it cannot be read (outside the filesystem or the device). */
  private async readBlock(block: number, what: string): Promise<Uint8Array | string> {
    try {
      return await this.blocks.block(block, what);
    } catch (error) {
      if (isCofferError(error, 'E_FS_CORRUPT')) return `block ${block} is outside the filesystem or the device`;
      throw error;
    }
  }
}

/** `group 3`, `groups 0-15, 32`, with at most {@link RANGES_IN_NOTICE} ranges named. */
function groupList(groups: readonly number[]): string {
  const sorted = [...groups].sort((a, b) => a - b);
  const ranges: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] as number) + 1) j++;
    ranges.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  const named = ranges.slice(0, RANGES_IN_NOTICE).join(', ') + (ranges.length > RANGES_IN_NOTICE ? ` and ${ranges.length - RANGES_IN_NOTICE} more ranges` : '');
  return `${sorted.length === 1 ? 'group' : 'groups'} ${named}`;
}
