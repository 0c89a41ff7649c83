import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { ChunkType, Command, CommandFlag, ReplyFlag } from './constants.js';
import {
  decodeBlockStatus,
  decodeChunkHeaderRest,
  decodeErrorChunk,
  decodeHole,
  decodeOffset,
  decodeRequest,
  decodeSimpleReplyRest,
  encodeBlockStatus,
  encodeChunkHeader,
  encodeErrorChunk,
  encodeHole,
  encodeOffset,
  encodeRequest,
  encodeSimpleReply,
} from './transmission.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const isProtocolError = (error: unknown): boolean => isCofferError(error, 'E_PROTOCOL');

test('a request is magic, flags, type, cookie, offset, length', () => {
  const request = { flags: CommandFlag.FUA, type: Command.WRITE, cookie: 0x0102030405060708n, offset: 2 ** 33, length: 512 };
  const bytes = encodeRequest(request);
  assert.deepEqual(bytes, hex('25609513 0001 0001 0102030405060708 0000000200000000 00000200'));
  assert.deepEqual(decodeRequest(bytes), request);
  assert.throws(() => decodeRequest(hex(`25609514${'00'.repeat(24)}`)), isProtocolError, 'bad magic');
});

test('offsets past 2^53 are clamped so no export contains them', () => {
  const bytes = hex('25609513 0000 0000 0000000000000001 ffffffffffffffff 00000001');
  assert.equal(decodeRequest(bytes).offset, Number.MAX_SAFE_INTEGER);
});

test('simple replies and chunk headers have the documented layout', () => {
  const simple = encodeSimpleReply({ error: 22, cookie: 9n });
  assert.deepEqual(simple, hex('67446698 00000016 0000000000000009'));
  assert.deepEqual(decodeSimpleReplyRest(simple.subarray(4)), { error: 22, cookie: 9n });
  const chunk = { flags: ReplyFlag.DONE, type: ChunkType.OFFSET_HOLE, cookie: 3n, length: 12 };
  const header = encodeChunkHeader(chunk);
  assert.deepEqual(header, hex('668e33ef 0001 0002 0000000000000003 0000000c'));
  assert.deepEqual(decodeChunkHeaderRest(header.subarray(4)), chunk);
});

test('chunk payloads round-trip', () => {
  assert.equal(decodeOffset(encodeOffset(12345678901)), 12345678901);
  assert.deepEqual(decodeHole(encodeHole({ offset: 4096, length: 65536 })), { offset: 4096, length: 65536 });
  const status = { contextId: 2, descriptors: [{ length: 4096, flags: 3 }, { length: 8192, flags: 0 }] };
  assert.deepEqual(encodeBlockStatus(status), hex('00000002 00001000 00000003 00002000 00000000'));
  assert.deepEqual(decodeBlockStatus(encodeBlockStatus(status)), status);
  const error = { error: 5, message: 'disk gone', offset: 4096 };
  assert.deepEqual(decodeErrorChunk(ChunkType.ERROR_OFFSET, encodeErrorChunk(error)), error);
  assert.deepEqual(decodeErrorChunk(ChunkType.ERROR, encodeErrorChunk({ error: 22, message: '' })), { error: 22, message: '' });
  // An unknown error type: error and message are still read.
  assert.deepEqual(decodeErrorChunk(0x8123, hex('0000001c 0002 6869 ffff')), { error: 28, message: 'hi' });
});

test('malformed chunk payloads are protocol errors', () => {
  const cases: [string, () => unknown][] = [
    ['hole of zero bytes', () => decodeHole(hex('0000000000000000 00000000'))],
    ['hole of 11 bytes', () => decodeHole(hex('0000000000000000 000001'))],
    ['block status without descriptors', () => decodeBlockStatus(hex('00000001'))],
    ['block status not a multiple of 8', () => decodeBlockStatus(hex('00000001 00001000 000000'))],
    ['descriptor of zero bytes', () => decodeBlockStatus(hex('00000001 00000000 00000000'))],
    ['error 0', () => decodeErrorChunk(ChunkType.ERROR, hex('00000000 0000'))],
    ['message overruns the chunk', () => decodeErrorChunk(ChunkType.ERROR, hex('00000005 0010 41'))],
    ['ERROR_OFFSET without offset', () => decodeErrorChunk(ChunkType.ERROR_OFFSET, hex('00000005 0000'))],
    ['ERROR with trailing bytes', () => decodeErrorChunk(ChunkType.ERROR, hex('00000005 0000 00'))],
  ];
  for (const [name, decode] of cases) assert.throws(decode, isProtocolError, name);
});
