/**
 * The HTTP/2 frame reader (src/proxy/h2/frames.ts) on arbitrary byte streams cut at arbitrary
 * points. Oracle: a plain reference reading of the same bytes (RFC 9113 §4.1: 24-bit length, type,
 * flags, reserved bit + 31-bit stream id) gives the same frames however the stream is cut, a frame
 * over SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR, and padding and SETTINGS payloads are
 * accepted exactly when well-formed (§6.1, §6.5).
 */
import fc from "fast-check";
import { ErrorCode, FrameError, FrameReader, FrameType, Flags, parseSettings, unpad, type Frame } from "../../../src/proxy/h2/frames.js";
import { expect, target } from "./target.js";

const MAX_FRAME = 64; // small, so that oversized frames are common

interface Input {
  bytes: Uint8Array;
  cuts: number[];
}

/** One frame header (maybe lying about its length) and a payload. */
const frameBytes = fc
  .record({
    length: fc.oneof({ weight: 8, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffff }) }),
    type: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 255 })),
    flags: fc.integer({ min: 0, max: 255 }),
    streamId: fc.oneof(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 0xffffffff })),
    payload: fc.uint8Array({ maxLength: MAX_FRAME + 8 }),
  })
  .map(({ length, type, flags, streamId, payload }) => {
    const out = new Uint8Array(9 + payload.length);
    const n = length < 0 ? payload.length : length;
    out.set([(n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff, type, flags, streamId >>> 24, (streamId >>> 16) & 0xff, (streamId >>> 8) & 0xff, streamId & 0xff]);
    out.set(payload, 9);
    return out;
  });

const arbitrary: fc.Arbitrary<Input> = fc.record({
  bytes: fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.array(frameBytes, { maxLength: 8 }).map((frames) => Uint8Array.from(frames.flatMap((f) => [...f]))),
  ),
  cuts: fc.array(fc.nat(400), { maxLength: 6 }),
});

/** The reference: frames until the bytes run out, or the index of the first oversized frame. */
function reference(bytes: Uint8Array): { frames: Frame[]; oversized: boolean } {
  const frames: Frame[] = [];
  let at = 0;
  while (bytes.length - at >= 9) {
    const length = bytes[at]! * 65536 + bytes[at + 1]! * 256 + bytes[at + 2]!;
    if (length > MAX_FRAME) return { frames, oversized: true };
    if (at + 9 + length > bytes.length) break;
    frames.push({
      type: bytes[at + 3]!,
      flags: bytes[at + 4]!,
      streamId: ((bytes[at + 5]! & 0x7f) << 24) | (bytes[at + 6]! << 16) | (bytes[at + 7]! << 8) | bytes[at + 8]!,
      payload: Buffer.from(bytes.subarray(at + 9, at + 9 + length)),
    });
    at += 9 + length;
  }
  return { frames, oversized: false };
}

function checkPayloadParsers(f: Frame): void {
  if ((f.type === FrameType.DATA || f.type === FrameType.HEADERS) && f.flags & Flags.PADDED) {
    const p = f.payload;
    const valid = p.length >= 1 && p[0]! < p.length;
    try {
      const body = unpad(f);
      expect(valid && body.length === p.length - 1 - p[0]!, `unpad accepted ${p.length} bytes with pad length ${p[0]}`);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      expect(!valid, `unpad refused valid padding (${p.length} bytes, pad ${p[0]})`);
    }
  }
  if (f.type === FrameType.SETTINGS) {
    try {
      const settings = parseSettings(f.payload);
      expect(f.payload.length % 6 === 0 && settings.length === f.payload.length / 6, "SETTINGS of a wrong length accepted");
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      expect(err.h2Code === ErrorCode.FRAME_SIZE_ERROR && f.payload.length % 6 !== 0, "SETTINGS refused wrongly");
    }
  }
}

export const h2FramesTarget = target<Input>({
  name: "h2-frames",
  what: "frame reader: any bytes, any cuts; same frames as a reference reader, FRAME_SIZE_ERROR past the limit",
  testRuns: 2000,
  open: () => ({
    arbitrary,
    check({ bytes, cuts }) {
      const want = reference(bytes);
      const reader = new FrameReader(MAX_FRAME);
      const got: Frame[] = [];
      let oversized = false;
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      let from = 0;
      try {
        for (const to of [...points, bytes.length]) {
          // Copy each piece: the reader may keep views of what it was given.
          reader.push(Buffer.from(bytes.subarray(from, to)), (f) => got.push({ ...f, payload: Buffer.from(f.payload) }));
          from = to;
        }
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
        expect(err.h2Code === ErrorCode.FRAME_SIZE_ERROR, `reader error code ${err.h2Code}`);
        oversized = true;
      }
      expect(oversized === want.oversized, `oversized: reader ${oversized}, reference ${want.oversized}`);
      expect(got.length === want.frames.length, `reader gave ${got.length} frames, reference ${want.frames.length}`);
      got.forEach((f, i) => {
        const w = want.frames[i]!;
        expect(f.type === w.type && f.flags === w.flags && f.streamId === w.streamId && f.payload.equals(w.payload), `frame ${i} differs`);
        checkPayloadParsers(f);
      });
    },
  }),
});
