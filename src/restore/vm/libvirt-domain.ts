/**
 * A libvirt domain definition (format `libvirt-xml`: the domain XML as `virsh dumpxml` prints
 * it) rewritten for a clone: a new name, a new UUID, new MAC addresses, every backed-up disk
 * on its restored image, and nothing that ties it to the original VM or its running state.
 *
 * What changes (elements of libvirt's domain XML, docs/formatdomain.rst):
 * - `<domain id='N'>`: the running domain's number is dropped.
 * - `<name>`, `<uuid>`: the new name and UUID. `<genid>` (the VM generation id a guest uses
 *   to notice it was cloned) is emptied, so libvirt generates a new one.
 * - `<interface>`: `<mac address>` becomes a new random MAC; `<target dev>` (the host's tap
 *   name, vnetN), `<alias>` and the runtime `<address type='…'>` of the host side are
 *   left to libvirt: target is dropped.
 * - `<disk device='disk'>` (and `lun`) whose `<target dev>` names a restored disk (or, when
 *   no target matches any, the N-th such disk for the N-th restored disk): `type='file'`,
 *   `<source file='PATH'/>`, `<driver type='FORMAT'>`; `<backingStore>`, `<mirror>` (block
 *   job state), `<auth>` and `<encryption>` (of the old source; the restored file is plain)
 *   and the old `<source>` with its `index` are dropped. CD-ROMs and floppies are kept.
 * - `<seclabel>` anywhere (the original's SELinux/AppArmor labels, relabel state): dropped.
 * - `<alias name>` not starting with `ua-` (names libvirt gave the running domain): dropped.
 * - `<os><nvram>` (the domain's UEFI variable store): the restored store when the backup held
 *   it (the disk `nvram`, written raw; `<nvram>` is added after `<loader>` when the stored XML
 *   had none: `firmware='efi'` names it only once the domain runs), as the element's text,
 *   its `template` kept; otherwise the original's path is dropped (the element too when it
 *   names no template), so libvirt makes a fresh store for the new domain. `<loader>` and
 *   `<firmware>` (Secure Boot) are kept as they are. The store is never a `<disk>`.
 * Everything else (devices, their PCI addresses, CPU, memory, features) is kept as is.
 */
import { CofferError } from '../../errors/index.js';
import type { IdentitySource } from './new-identity.js';
import {
  attr, childElements, newElement, parseXml, removeAttr, removeChildren, serializeXml, setAttr, setText,
  type XmlElement, type XmlNode,
} from '../../xml/index.js';

/** The stored definition format this module reads. */
export const LIBVIRT_XML_FORMAT = 'libvirt-xml';

/**
 * The disk name under which live backup stores a domain's UEFI variable store, the `<os><nvram>`
 * file (source/libvirt/libvirt-nvram.ts; no `<target dev>` can be named so).
 */
export const LIBVIRT_NVRAM_DISK = 'nvram';

/** A restored disk: the snapshot's disk name and the image it was written to. */
export interface RestoredDiskImage {
  name: string;
  path: string;
  /** The image format written (`raw`, `qcow2` …), as libvirt names it. */
  format: string;
}

/** What the rewrite did, for the report. */
export interface CloneDefinition {
  /** The new definition. */
  text: string;
  name: string;
  uuid: string;
  /** Old MAC → new MAC, one per NIC. */
  macs: { from: string | undefined; to: string }[];
  /** Guest disk (target dev) → restored image. */
  disks: { target: string; disk: string; path: string }[];
  /** Things the administrator should know (a disk with no restored image…). */
  notes: string[];
}

/**
 * Rewrites `xml` for a clone named `name` whose disks are `disks` and whose UEFI variable store
 * is `nvram` (the restored store, raw), if the backup held one. Pure; throws E_IMAGE_INVALID
 * for XML it cannot read.
 */
export function cloneLibvirtDomain(xml: string, options: { name: string; disks: readonly RestoredDiskImage[]; nvram?: RestoredDiskImage; identity: IdentitySource }): CloneDefinition {
  const doc = parseXml(xml, { what: 'the stored libvirt domain XML', code: 'E_IMAGE_INVALID' });
  const domain = doc.root;
  if (domain.name !== 'domain') throw new CofferError('E_IMAGE_INVALID', `the stored libvirt definition is a <${domain.name}>, not a <domain>`);
  const uuid = options.identity.uuid();
  removeAttr(domain, 'id');
  setChildText(domain, 'name', options.name);
  setChildText(domain, 'uuid', uuid);
  for (const genid of childElements(domain, 'genid')) {
    genid.children = [];
    genid.empty = true;
  }
  const notes: string[] = [];
  const os = childElements(domain, 'os')[0];
  const uefi = os !== undefined && (attr(os, 'firmware') === 'efi' || childElements(os, 'loader').length > 0);
  if (os !== undefined && options.nvram !== undefined && uefi) pointNvramAt(os, options.nvram.path);
  else {
    if (options.nvram !== undefined) notes.push(`the restored UEFI variable store ${options.nvram.path} is not used: the definition does not boot through UEFI`);
    for (const nvram of os === undefined ? [] : childElements(os, 'nvram')) {
      // Keep a template (libvirt then makes NAME_VARS.fd from it), never the original's store.
      nvram.children = [];
      nvram.empty = true;
    }
    if (os !== undefined) removeChildren(os, (c) => c.name === 'nvram' && attr(c, 'template') === undefined);
  }
  dropEverywhere(domain, (e) => e.name === 'seclabel' || (e.name === 'alias' && !(attr(e, 'name') ?? '').startsWith('ua-')));

  const devices = childElements(domain, 'devices')[0];
  const macs: CloneDefinition['macs'] = [];
  const mapped: CloneDefinition['disks'] = [];
  if (devices !== undefined) {
    for (const nic of childElements(devices, 'interface')) {
      const mac = childElements(nic, 'mac')[0];
      const to = options.identity.mac();
      macs.push({ from: mac === undefined ? undefined : attr(mac, 'address'), to });
      if (mac) setAttr(mac, 'address', to);
      else insertFirst(nic, newElement('mac', { address: to }));
      removeChildren(nic, (c) => c.name === 'target');
    }
    const guestDisks = childElements(devices, 'disk').filter((d) => ['disk', 'lun', undefined].includes(attr(d, 'device')));
    const targetOf = (d: XmlElement): string => attr(childElements(d, 'target')[0] ?? newElement('target', {}), 'dev') ?? '';
    const byTarget = options.disks.some((r) => guestDisks.some((d) => targetOf(d) === r.name));
    const unused = new Set(options.disks);
    guestDisks.forEach((d, i) => {
      const restored = byTarget ? options.disks.find((r) => r.name === targetOf(d)) : options.disks[i];
      if (restored === undefined) {
        notes.push(`disk ${targetOf(d) || `#${i}`} has no restored image (it was not in the backup): removed from the clone`);
        removeChildren(devices, (c) => c === d);
        return;
      }
      unused.delete(restored);
      pointDiskAt(d, restored);
      mapped.push({ target: targetOf(d), disk: restored.name, path: restored.path });
    });
    for (const r of unused) notes.push(`restored disk ${r.name} matches no disk of the definition: attach ${r.path} yourself`);
  }
  return { text: serializeXml(doc), name: options.name, uuid, macs, disks: mapped, notes };
}

/** `<nvram>` names the restored store (as text: a `type='file'` with `<source>` says the same), its `template` kept. */
function pointNvramAt(os: XmlElement, path: string): void {
  let nvram = childElements(os, 'nvram')[0];
  if (nvram === undefined) {
    nvram = newElement('nvram', {});
    // libvirt's order: <type>, <loader>, <nvram>, then the rest.
    const after = childElements(os, 'loader')[0] ?? childElements(os, 'type')[0];
    const at = after === undefined ? -1 : os.children.indexOf(after);
    if (at === -1) insertFirst(os, nvram);
    else os.children.splice(at + 1, 0, ...indentLike(os), nvram);
  }
  removeAttr(nvram, 'type');
  setText(nvram, path);
}

function pointDiskAt(disk: XmlElement, restored: RestoredDiskImage): void {
  setAttr(disk, 'type', 'file');
  // The old source's chain, block job, network credentials and image encryption do not apply to the restored file.
  removeChildren(disk, (c) => ['backingStore', 'mirror', 'auth', 'encryption'].includes(c.name));
  const source = newElement('source', { file: restored.path });
  const old = childElements(disk, 'source')[0];
  if (old) disk.children[disk.children.indexOf(old)] = source;
  const driver = childElements(disk, 'driver')[0];
  if (driver) setAttr(driver, 'type', restored.format);
  else insertFirst(disk, newElement('driver', { name: 'qemu', type: restored.format }));
  if (!old) {
    const at = disk.children.indexOf(childElements(disk, 'driver')[0] as XmlElement);
    disk.children.splice(at + 1, 0, ...indentLike(disk), source);
  }
}

function setChildText(parent: XmlElement, name: string, text: string): void {
  const existing = childElements(parent, name)[0];
  if (existing) setText(existing, text);
  else {
    const element = newElement(name, {});
    setText(element, text);
    insertFirst(parent, element);
  }
}

/** Inserts `element` as the first child element, indented like its siblings. */
function insertFirst(parent: XmlElement, element: XmlElement): void {
  const first = parent.children.findIndex((c) => c.kind === 'element');
  if (first === -1) {
    parent.children.push(element);
    parent.empty = false;
    return;
  }
  parent.children.splice(first, 0, element, ...indentLike(parent));
}

/** The whitespace before the parent's first child element, to repeat it. */
function indentLike(parent: XmlElement): XmlNode[] {
  const first = parent.children.findIndex((c) => c.kind === 'element');
  const before = first > 0 ? parent.children[first - 1] : undefined;
  return before?.kind === 'text' && /^\s*$/.test(before.raw) ? [{ kind: 'text', raw: before.raw }] : [];
}

function dropEverywhere(element: XmlElement, drop: (e: XmlElement) => boolean): void {
  removeChildren(element, drop);
  for (const child of childElements(element)) dropEverywhere(child, drop);
}
