/**
 * A new identity for a cloned VM: a random UUID and random MAC addresses. The MACs use QEMU's
 * customary prefix 52:54:00 (locally administered, unicast: bit 1 of the first octet set,
 * bit 0 clear), as libvirt and QEMU themselves generate, followed by three random octets.
 */
import { randomBytes, randomUUID } from 'node:crypto';

/** Where new identities come from; tests may pass a deterministic one. */
export interface IdentitySource {
  uuid(): string;
  mac(): string;
}

/** The prefix of every MAC address Coffer makes. */
export const MAC_PREFIX = '52:54:00';

/** Random UUIDs (v4) and random MACs under {@link MAC_PREFIX}; never the same MAC twice per source. */
export function randomIdentities(): IdentitySource {
  const given = new Set<string>();
  return {
    uuid: () => randomUUID(),
    mac: () => {
      for (;;) {
        const tail = [...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':');
        const mac = `${MAC_PREFIX}:${tail}`;
        if (!given.has(mac)) {
          given.add(mac);
          return mac;
        }
      }
    },
  };
}
