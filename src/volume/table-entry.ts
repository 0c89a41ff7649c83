/** One partition as a partition table describes it, before it is checked against the disk. */
export interface TableEntry {
  /** The partition number Linux gives it: MBR slots 1-4 and logical partitions from 5; GPT entry index + 1. */
  number: number;
  /** Byte offset on the disk, as the table says (it may lie beyond the disk's end). */
  start: number;
  /** Size in bytes, as the table says. */
  size: number;
  /** `0x83` for MBR types, the type GUID for GPT. */
  partitionType: string;
  typeDescription?: string;
  label?: string;
  uuid?: string;
  /** An MBR extended partition: a container of logical partitions, not a filesystem. */
  container?: boolean;
  warnings: string[];
}

/** What a disk's partition table holds. `warnings` concern the whole table (a GPT read from its backup). */
export interface PartitionTable {
  scheme: 'mbr' | 'gpt';
  entries: TableEntry[];
  warnings: string[];
}
