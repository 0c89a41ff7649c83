import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { Info, Option, OptionReply } from './constants.js';
import {
  decodeClientFlags,
  decodeExportNameReply,
  decodeGreeting,
  decodeInfoReply,
  decodeInfoRequest,
  decodeMetaContextReply,
  decodeMetaContextRequest,
  decodeOptionHeader,
  decodeOptionReplyHeader,
  decodeServerReply,
  encodeClientFlags,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoReply,
  encodeInfoRequest,
  encodeMetaContextReply,
  encodeMetaContextRequest,
  encodeOption,
  encodeOptionReply,
  encodeServerReply,
} from './handshake.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const isProtocolError = (error: unknown): boolean => isCofferError(error, 'E_PROTOCOL');

test('the greeting is NBDMAGIC, IHAVEOPT and the flags, byte for byte', () => {
  assert.deepEqual(encodeGreeting(3), hex('4e42444d41474943 49484156454f5054 0003'));
  assert.equal(decodeGreeting(encodeGreeting(1)), 1);
});

test('greetings that are not fixed newstyle NBD are refused with a reason', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['not NBD', hex('485454502f312e31 0000000000000000 0000'), /not an NBD server/],
    ['oldstyle', hex('4e42444d41474943 0000420281861253 0000'), /oldstyle/],
    ['unknown magic', hex('4e42444d41474943 1111111111111111 0001'), /unknown handshake magic/],
    ['short', hex('4e42444d41474943'), /bytes instead of 18/],
  ];
  for (const [name, bytes, message] of cases) {
    assert.throws(() => decodeGreeting(bytes), (e: unknown) => isProtocolError(e) && message.test((e as Error).message), name);
  }
});

test('client flags, options and option replies have the documented layout', () => {
  assert.deepEqual(encodeClientFlags(3), hex('00000003'));
  assert.equal(decodeClientFlags(hex('00000001')), 1);
  const option = encodeOption(Option.GO, Buffer.from('ab'));
  assert.deepEqual(option, hex('49484156454f5054 00000007 00000002 6162'));
  assert.deepEqual(decodeOptionHeader(option.subarray(0, 16)), { option: Option.GO, length: 2 });
  assert.throws(() => decodeOptionHeader(hex('00'.repeat(16))), isProtocolError);
  const reply = encodeOptionReply(Option.LIST, OptionReply.ERR_UNSUP, Buffer.from('x'));
  assert.deepEqual(reply, hex('0003e889045565a9 00000003 80000001 00000001 78'));
  assert.deepEqual(decodeOptionReplyHeader(reply.subarray(0, 20)), { option: Option.LIST, type: OptionReply.ERR_UNSUP, length: 1 });
  assert.throws(() => decodeOptionReplyHeader(hex('00'.repeat(20))), isProtocolError);
});

test('INFO/GO requests round-trip and malformed ones are refused', () => {
  const request = { name: 'sda', infos: [Info.NAME, Info.BLOCK_SIZE] };
  const bytes = encodeInfoRequest(request);
  assert.deepEqual(bytes, hex('00000003 736461 0002 0001 0003'));
  assert.deepEqual(decodeInfoRequest(bytes), request);
  const bad: [string, Buffer][] = [
    ['name longer than the data', hex('000000ff 736461 0000')],
    ['missing info count', hex('00000001 61')],
    ['trailing bytes', hex('00000001 61 0000 ff')],
    ['count beyond the data', hex('00000000 0005 0001')],
    ['NUL in the name', hex('00000002 6100 0000')],
    ['invalid UTF-8', hex('00000002 c328 0000')],
  ];
  for (const [name, data] of bad) assert.throws(() => decodeInfoRequest(data), isProtocolError, name);
});

test('each NBD_REP_INFO type round-trips; unknown types are reported, not refused', () => {
  const infos = [
    { type: Info.EXPORT, size: 2 ** 40 + 7, flags: 0x0d },
    { type: Info.NAME, name: 'disk-é' },
    { type: Info.DESCRIPTION, description: 'root disk' },
    { type: Info.BLOCK_SIZE, sizes: { minimum: 512, preferred: 4096, maximumPayload: 32 << 20 } },
  ] as const;
  for (const info of infos) assert.deepEqual(decodeInfoReply(encodeInfoReply(info)), info);
  assert.deepEqual(encodeInfoReply(infos[0]), hex('0000 0000010000000007 000d'));
  assert.deepEqual(decodeInfoReply(hex('0009 abcdef')), { type: 'unknown', code: 9 });
  assert.throws(() => decodeInfoReply(hex('0000 0000000000000001')), isProtocolError, 'EXPORT too short');
  assert.throws(() => decodeInfoReply(hex('0003 00000200 00001000 00002000 00')), isProtocolError, 'BLOCK_SIZE too long');
});

test('export listings, meta context requests and replies round-trip', () => {
  assert.deepEqual(decodeServerReply(encodeServerReply({ name: 'a', description: 'the a disk' })), { name: 'a', description: 'the a disk' });
  assert.deepEqual(decodeServerReply(hex('00000001 61')), { name: 'a', description: '' });
  assert.throws(() => decodeServerReply(hex('00000009 61')), isProtocolError);
  const request = { exportName: 'sda', queries: ['base:allocation', 'qemu:dirty-bitmap:b0'] };
  assert.deepEqual(decodeMetaContextRequest(encodeMetaContextRequest(request), 8), request);
  assert.throws(() => decodeMetaContextRequest(encodeMetaContextRequest(request), 1), isProtocolError, 'more queries than allowed');
  assert.throws(() => decodeMetaContextRequest(hex('00000000 00000001 000000ff 61'), 8), isProtocolError, 'query overruns');
  assert.deepEqual(encodeMetaContextReply({ id: 5, name: 'base:allocation' }).subarray(0, 4), hex('00000005'));
  assert.deepEqual(decodeMetaContextReply(encodeMetaContextReply({ id: 5, name: 'base:allocation' })), { id: 5, name: 'base:allocation' });
});

test('the NBD_OPT_EXPORT_NAME reply carries 124 zeroes unless NO_ZEROES', () => {
  assert.equal(encodeExportNameReply(4096, 1, false).length, 134);
  assert.equal(encodeExportNameReply(4096, 1, true).length, 10);
  assert.deepEqual(decodeExportNameReply(encodeExportNameReply(4096, 3, true)), { size: 4096, flags: 3 });
});

test('strings the protocol forbids are refused when encoding', () => {
  assert.throws(() => encodeInfoRequest({ name: 'x'.repeat(4097), infos: [] }), RangeError);
  assert.throws(() => encodeInfoRequest({ name: 'a\0b', infos: [] }), RangeError);
});
