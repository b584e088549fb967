/**
 * HPACK Huffman code (RFC 7541 §5.2, Appendix B).
 *
 * The code is canonical: codes are handed out in order of length, then symbol value. So the 257
 * code lengths below (bytes 0..255, then EOS) determine every code, and the tables are built from
 * them at module load rather than transcribing 257 bit patterns.
 */
import { TetherError, type CodeOf } from "../../core/errors.js";

const EOS = 256;

// prettier-ignore
const CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

/** Right-aligned code of each symbol (the last bit of the code is bit 0). */
const CODES = canonicalCodes(CODE_LENGTHS);

function canonicalCodes(lengths: readonly number[]): Uint32Array {
  const symbols = lengths.map((_, symbol) => symbol).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const codes = new Uint32Array(lengths.length);
  let code = 0;
  let previousLength = lengths[symbols[0]!]!;
  for (const [rank, symbol] of symbols.entries()) {
    const length = lengths[symbol]!;
    if (rank > 0) code = (code + 1) * 2 ** (length - previousLength);
    codes[symbol] = code;
    previousLength = length;
  }
  return codes;
}

/**
 * The decoder is a state machine over whole input bytes. A state is an internal node of the code
 * tree (257 leaves → 256 internal nodes, so a state fits in 8 bits; the root is state 0). For each
 * (state, byte) one packed entry says where the byte leads and which symbols it completes: the
 * shortest code is 5 bits, so one byte completes at most two.
 */
const NEXT_STATE_MASK = 0xff;
const FIRST_SYMBOL_SHIFT = 8;
const SECOND_SYMBOL_SHIFT = 16;
const SYMBOL_COUNT_SHIFT = 24;
const DECODES_EOS = 1 << 26;

/** Bits walked since the last complete symbol, per state: what would be padding if input ended. */
const stateDepth = new Uint8Array(256);
/** Whether those bits are all ones, i.e. a prefix of EOS (the only padding RFC 7541 §5.2 allows). */
const stateAllOnes = new Uint8Array(256);
const transitions = buildTransitions();

function buildTransitions(): Uint32Array {
  // children[node * 2 + bit]: ≥ 0 is an internal node, < 0 is the leaf of symbol -(child + 1).
  const children = new Int32Array(512);
  let nodes = 1;
  stateAllOnes[0] = 1;
  for (let symbol = 0; symbol <= EOS; symbol++) {
    const length = CODE_LENGTHS[symbol]!;
    const code = CODES[symbol]!;
    let node = 0;
    for (let i = length - 1; i > 0; i--) {
      const bit = (code >>> i) & 1;
      let next = children[node * 2 + bit]!;
      if (next === 0) {
        next = nodes++;
        children[node * 2 + bit] = next;
        stateDepth[next] = stateDepth[node]! + 1;
        stateAllOnes[next] = stateAllOnes[node]! & bit;
      }
      node = next;
    }
    children[node * 2 + (code & 1)] = -(symbol + 1);
  }

  const table = new Uint32Array(256 * 256);
  for (let state = 0; state < nodes; state++) {
    for (let byte = 0; byte < 256; byte++) {
      let node = state;
      let entry = 0;
      let count = 0;
      for (let i = 7; i >= 0; i--) {
        const child = children[node * 2 + ((byte >>> i) & 1)]!;
        if (child >= 0) {
          node = child;
          continue;
        }
        const symbol = -child - 1;
        if (symbol === EOS) {
          entry |= DECODES_EOS;
          break;
        }
        entry |= symbol << (count === 0 ? FIRST_SYMBOL_SHIFT : SECOND_SYMBOL_SHIFT);
        count++;
        node = 0;
      }
      table[state * 256 + byte] = (entry | (count << SYMBOL_COUNT_SHIFT) | node) >>> 0;
    }
  }
  return table;
}

/** Why a Huffman string was rejected; the HPACK layer turns it into its own error. */
export class HuffmanError extends TetherError<CodeOf<"HuffmanError">> {
  constructor(message: string) {
    super("HPACK_BAD_HUFFMAN", message);
  }
}

/** Output scratch, grown on demand: 8 input bits decode to at most 8/5 symbols. */
let scratch = Buffer.allocUnsafe(256);

/** Decodes the Huffman string `src[start, end)` into a latin1 string. Throws HuffmanError. */
export function huffmanDecode(src: Uint8Array, start: number, end: number): string {
  const maxLength = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < maxLength) scratch = Buffer.allocUnsafe(Math.max(maxLength, scratch.length * 2));
  const out = scratch;
  let written = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const entry = transitions[state * 256 + src[i]!]!;
    if (entry & DECODES_EOS) throw new HuffmanError("the EOS symbol appears inside the string");
    const count = entry >>> SYMBOL_COUNT_SHIFT;
    if (count > 0) {
      out[written++] = (entry >>> FIRST_SYMBOL_SHIFT) & 0xff;
      if (count > 1) out[written++] = (entry >>> SECOND_SYMBOL_SHIFT) & 0xff;
    }
    state = entry & NEXT_STATE_MASK;
  }
  if (stateDepth[state]! > 7) throw new HuffmanError("the padding is longer than 7 bits");
  if (!stateAllOnes[state]) throw new HuffmanError("the padding is not the most significant bits of EOS");
  return out.toString("latin1", 0, written);
}

/** Huffman-encodes a latin1 string (each char code is one byte), padding with the EOS prefix. */
export function huffmanEncode(value: string): Buffer {
  let bits = 0;
  for (let i = 0; i < value.length; i++) bits += CODE_LENGTHS[value.charCodeAt(i) & 0xff]!;
  const out = Buffer.alloc(Math.ceil(bits / 8));
  // Pending bits, most significant first; codes are ≤ 30 bits, so pending stays < 2^38, exact in a double.
  let pending = 0;
  let pendingBits = 0;
  let written = 0;
  for (let i = 0; i < value.length; i++) {
    const symbol = value.charCodeAt(i) & 0xff;
    pending = pending * 2 ** CODE_LENGTHS[symbol]! + CODES[symbol]!;
    pendingBits += CODE_LENGTHS[symbol]!;
    while (pendingBits >= 8) {
      pendingBits -= 8;
      const scale = 2 ** pendingBits;
      out[written++] = Math.floor(pending / scale);
      pending %= scale;
    }
  }
  if (pendingBits > 0) out[written] = (pending << (8 - pendingBits)) | (0xff >>> pendingBits);
  return out;
}
