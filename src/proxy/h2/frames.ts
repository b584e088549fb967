/**
 * HTTP/2 framing (RFC 9113 §4, §6): constants, an incremental reader that cuts a byte stream into
 * frames, and builders for the frames the proxy writes. Pure: no sockets, no state beyond the
 * reader's partial frame.
 */
import { TetherError, type CodeOf } from "../../core/errors.js";

export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flags = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const MAX_WINDOW = 2 ** 31 - 1;
export const FRAME_HEADER_LENGTH = 9;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** A frame the peer should not have sent: the connection ends with GOAWAY(h2Code). */
export class FrameError extends TetherError<CodeOf<"FrameError">> {
  constructor(
    readonly h2Code: number,
    message: string,
  ) {
    super(frameErrorCode(h2Code), message);
  }
}

/** tether's code for each HTTP/2 error code a FrameError is raised with. */
const FRAME_ERROR_CODES: Readonly<Record<number, CodeOf<"FrameError">>> = {
  [ErrorCode.PROTOCOL_ERROR]: "H2_PROTOCOL_ERROR",
  [ErrorCode.FLOW_CONTROL_ERROR]: "H2_FLOW_CONTROL_ERROR",
  [ErrorCode.FRAME_SIZE_ERROR]: "H2_FRAME_SIZE_ERROR",
  [ErrorCode.ENHANCE_YOUR_CALM]: "H2_ENHANCE_YOUR_CALM",
};

function frameErrorCode(h2Code: number): CodeOf<"FrameError"> {
  return FRAME_ERROR_CODES[h2Code] ?? "H2_PROTOCOL_ERROR";
}

/**
 * Cuts incoming bytes into frames. Frames longer than `maxFrameSize` (what we advertised) are a
 * FRAME_SIZE_ERROR; the payload of each frame is a view of the received bytes, not a copy.
 */
export class FrameReader {
  private pending: Buffer | undefined;

  constructor(private readonly maxFrameSize: number = DEFAULT_MAX_FRAME_SIZE) {}

  /** Calls `onFrame` for every complete frame in what has arrived so far. */
  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let offset = 0;
    while (buf.length - offset >= FRAME_HEADER_LENGTH) {
      const length = buf.readUIntBE(offset, 3);
      if (length > this.maxFrameSize) {
        throw new FrameError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE ${this.maxFrameSize}`);
      }
      const end = offset + FRAME_HEADER_LENGTH + length;
      if (end > buf.length) break;
      const frame: Frame = {
        type: buf[offset + 3]!,
        flags: buf[offset + 4]!,
        streamId: buf.readUInt32BE(offset + 5) & 0x7fffffff,
        payload: buf.subarray(offset + FRAME_HEADER_LENGTH, end),
      };
      offset = end;
      onFrame(frame);
    }
    if (offset < buf.length) {
      // Keep only the unfinished frame; copy so the large chunk it came in can be collected.
      buf = buf.subarray(offset);
      this.pending = Buffer.from(buf);
    }
  }
}

/** Strips the padding of a DATA or HEADERS frame (RFC 9113 §6.1). */
export function unpad(frame: Frame): Buffer {
  if (!(frame.flags & Flags.PADDED)) return frame.payload;
  const p = frame.payload;
  if (p.length < 1) throw new FrameError(ErrorCode.FRAME_SIZE_ERROR, "padded frame without a pad length");
  const padLength = p[0]!;
  if (padLength >= p.length) throw new FrameError(ErrorCode.PROTOCOL_ERROR, "padding longer than the frame");
  return p.subarray(1, p.length - padLength);
}

/** A whole frame with a small payload, in one buffer. */
export function frame(type: number, flags: number, streamId: number, payload?: Buffer): Buffer {
  const length = payload?.length ?? 0;
  const b = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + length);
  b.writeUIntBE(length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(streamId, 5);
  if (payload) payload.copy(b, FRAME_HEADER_LENGTH);
  return b;
}

export function settingsFrame(settings: ReadonlyArray<readonly [number, number]>): Buffer {
  const payload = Buffer.allocUnsafe(settings.length * 6);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, payload);
}

export function parseSettings(payload: Buffer): Array<[number, number]> {
  if (payload.length % 6 !== 0) throw new FrameError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS payload is not a multiple of 6 bytes");
  const out: Array<[number, number]> = [];
  for (let i = 0; i < payload.length; i += 6) out.push([payload.readUInt16BE(i), payload.readUInt32BE(i + 2)]);
  return out;
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const b = frame(FrameType.RST_STREAM, 0, streamId, Buffer.alloc(4));
  b.writeUInt32BE(code, FRAME_HEADER_LENGTH);
  return b;
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const b = frame(FrameType.WINDOW_UPDATE, 0, streamId, Buffer.alloc(4));
  b.writeUInt32BE(increment, FRAME_HEADER_LENGTH);
  return b;
}

export function goawayFrame(lastStreamId: number, code: number, debug = ""): Buffer {
  const debugBytes = Buffer.from(debug, "utf8");
  const payload = Buffer.allocUnsafe(8 + debugBytes.length);
  payload.writeUInt32BE(lastStreamId, 0);
  payload.writeUInt32BE(code, 4);
  debugBytes.copy(payload, 8);
  return frame(FrameType.GOAWAY, 0, 0, payload);
}

/**
 * Accumulates outgoing frames of one connection in one growing scratch buffer, then hands them
 * over as a single right-sized buffer: no allocation per frame, one copy per flush.
 */
export class FrameWriter {
  private buf = Buffer.allocUnsafe(1024);
  private length = 0;

  get empty(): boolean {
    return this.length === 0;
  }

  /** A frame whose payload is `payload[start, end)` (copied). */
  frame(type: number, flags: number, streamId: number, payload?: Buffer, start = 0, end = payload?.length ?? 0): void {
    const n = end - start;
    this.reserve(FRAME_HEADER_LENGTH + n);
    const b = this.buf;
    const at = this.length;
    b[at] = (n >>> 16) & 0xff;
    b[at + 1] = (n >>> 8) & 0xff;
    b[at + 2] = n & 0xff;
    b[at + 3] = type;
    b[at + 4] = flags;
    b.writeUInt32BE(streamId, at + 5);
    if (payload && n > 0) payload.copy(b, at + FRAME_HEADER_LENGTH, start, end);
    this.length = at + FRAME_HEADER_LENGTH + n;
  }

  /** A header block as HEADERS plus CONTINUATION frames of at most `maxFrameSize` bytes. */
  headers(streamId: number, block: Buffer, endStream: boolean, maxFrameSize: number): void {
    const endStreamFlag = endStream ? Flags.END_STREAM : 0;
    let offset = 0;
    do {
      const end = Math.min(block.length, offset + maxFrameSize);
      const type = offset === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
      const flags = (end === block.length ? Flags.END_HEADERS : 0) | (offset === 0 ? endStreamFlag : 0);
      this.frame(type, flags, streamId, block, offset, end);
      offset = end;
    } while (offset < block.length);
  }

  /** Bytes already framed (e.g. the client preface). */
  raw(bytes: Buffer): void {
    this.reserve(bytes.length);
    bytes.copy(this.buf, this.length);
    this.length += bytes.length;
  }

  /** Everything written so far, in a buffer of its own; the writer starts empty again. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.length);
    this.buf.copy(out, 0, 0, this.length);
    this.length = 0;
    // A burst may have grown the scratch buffer: do not keep a large one per idle connection.
    if (this.buf.length > 64 * 1024) this.buf = Buffer.allocUnsafe(1024);
    return out;
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }
}
