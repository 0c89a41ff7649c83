/**
 * Encrypted containers, recognized by their first bytes (they are listed, never opened):
 * - LUKS1 and LUKS2: magic `L U K S BA BE` at offset 0, then a big-endian u16 version (1 or 2);
 * - BitLocker (Windows 7 and later): a boot sector whose OEM id at offset 3 is `-FVE-FS-`.
 */
const LUKS_MAGIC = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]);
const BITLOCKER_OEM = '-FVE-FS-';

/** What encrypts the volume whose first bytes are `start` (≥ 16 bytes to decide), if anything. */
export function detectEncryption(start: Buffer): 'luks' | 'bitlocker' | undefined {
  if (start.length >= 8 && start.subarray(0, 6).equals(LUKS_MAGIC)) {
    const version = start.readUInt16BE(6);
    if (version === 1 || version === 2) return 'luks';
  }
  if (start.length >= 11 && start.toString('latin1', 3, 11) === BITLOCKER_OEM) return 'bitlocker';
  return undefined;
}
