/**
 * What a VM's UEFI variable store (its OVMF/edk2 `VARS.fd`, backed up with the VM) says of
 * Secure Boot, for a definition that leaves it open (libvirt's `firmware='efi'`, which lets
 * libvirt pick Secure Boot firmware; a QEMU VM whose command line could not be read).
 *
 * The layout read (edk2 MdeModulePkg VariableFormat.h, PI firmware volumes; all little-endian):
 * ```
 * firmware volume header   @0   ZeroVector[16] FileSystemGuid[16] FvLength u64 (@32)
 *                               Signature "_FVH" (@40) Attributes u32 HeaderLength u16 (@48) …
 * variable store header    @HeaderLength
 *                               Signature GUID[16]: aaf32c78-947b-439a-a180-2e144ec37792
 *                                 (authenticated variables) or ddcf3616-3275-4164-98b6-fe85707ffe7d
 *                               Size u32, Format u8 (0x5a), State u8 (0xfe), reserved u16 + u32
 * variables, from the header's end (+28), each 4-byte aligned:
 *   StartId u16 = 0x55aa, State u8, reserved u8, Attributes u32,
 *   [authenticated: MonotonicCount u64, TimeStamp[16], PubKeyIndex u32,]
 *   NameSize u32, DataSize u32, VendorGuid[16]      (header: 60 bytes authenticated, 32 plain)
 *   Name (UTF-16LE, NameSize bytes), Data (DataSize bytes)
 * ```
 * A variable is live when its State is VAR_ADDED (0x3f), or VAR_ADDED while being replaced
 * (0x3e: the new copy may not be complete); later live copies of a name replace earlier ones.
 * Secure Boot is enforced when the platform key `PK` (EFI global variable
 * 8be4df61-93ca-11d2-aa0d-00e098032b8c) is enrolled and OVMF's `SecureBootEnable`
 * (f0a30bc7-af08-4556-99c4-001009c93a44) is not 0.
 */
import type { BlockDevice } from '../../blockdev/index.js';

const FV_SIGNATURE = '_FVH';
/** The largest store read (live backup bounds a libvirt store so too). */
const MAX_STORE_BYTES = 64 * 1024 * 1024;
const AUTHENTICATED_STORE = 'aaf32c78-947b-439a-a180-2e144ec37792';
const PLAIN_STORE = 'ddcf3616-3275-4164-98b6-fe85707ffe7d';
const STORE_HEADER_SIZE = 28;
const START_ID = 0x55aa;
const VAR_ADDED = 0x3f;
const VAR_ADDED_IN_TRANSITION = 0x3e;
const GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
const SECURE_BOOT_ENABLE = 'f0a30bc7-af08-4556-99c4-001009c93a44';

/**
 * true when the store enforces Secure Boot, false when it does not, undefined when it is not
 * an edk2 variable store this reads, or is cut short or damaged (then the caller decides). Never throws: a store is the
 * guest's data, damaged or hostile; every size is bounds-checked and the walk always advances.
 */
export function secureBootOfStore(store: Uint8Array): boolean | undefined {
  const b = Buffer.from(store.buffer, store.byteOffset, store.length);
  if (b.length < 64 || b.toString('latin1', 40, 44) !== FV_SIGNATURE) return undefined;
  const storeAt = b.readUInt16LE(48);
  if (storeAt + STORE_HEADER_SIZE > b.length) return undefined;
  const kind = guidAt(b, storeAt);
  if (kind !== AUTHENTICATED_STORE && kind !== PLAIN_STORE) return undefined;
  const headerSize = kind === AUTHENTICATED_STORE ? 60 : 32;
  const sizesAt = kind === AUTHENTICATED_STORE ? 36 : 8;
  const end = storeAt + b.readUInt32LE(storeAt + 16);
  if (end > b.length) return undefined; // cut short: a later copy of a variable may be missing
  const live = new Map<string, Buffer>();
  for (let at = storeAt + STORE_HEADER_SIZE; at + headerSize <= end; ) {
    if (b.readUInt16LE(at) !== START_ID) break; // free space (0xff) after the last variable
    const state = b.readUInt8(at + 2);
    const nameSize = b.readUInt32LE(at + sizesAt);
    const dataSize = b.readUInt32LE(at + sizesAt + 4);
    const next = at + headerSize + nameSize + dataSize;
    if (next > end) return undefined; // a variable running past the store: damaged
    if (state === VAR_ADDED || state === VAR_ADDED_IN_TRANSITION) {
      const name = b.toString('utf16le', at + headerSize, at + headerSize + nameSize).replace(/\0+$/, '');
      live.set(`${guidAt(b, at + sizesAt + 8)}/${name}`, b.subarray(at + headerSize + nameSize, next));
    }
    at = (next + 3) & ~3;
  }
  const pk = live.get(`${GLOBAL_VARIABLE}/PK`);
  if (pk === undefined || pk.length === 0) return false;
  const enable = live.get(`${SECURE_BOOT_ENABLE}/SecureBootEnable`);
  return enable === undefined || enable.length === 0 || enable[0] !== 0;
}

/** {@link secureBootOfStore} of a store on a device (a snapshot's disk); undefined when it is larger than a store may be or does not read. */
export async function deviceSecureBoot(device: BlockDevice): Promise<boolean | undefined> {
  if (device.size > MAX_STORE_BYTES) return undefined;
  try {
    return secureBootOfStore(await device.read(0, device.size));
  } catch {
    return undefined;
  }
}

/** The GUID at `at` in its text form (the first three fields are little-endian). */
function guidAt(b: Buffer, at: number): string {
  const hex = (from: number, to: number, reverse: boolean) => {
    const part = Buffer.from(b.subarray(at + from, at + to));
    return (reverse ? part.reverse() : part).toString('hex');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`;
}
