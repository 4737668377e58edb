/**
 * A streaming reader of the chunked transfer coding (RFC 9112 section 7.1):
 * bytes in, body data out, the end of the message found. Chunk extensions
 * are skipped and trailer fields dropped (a proxy that re-frames the body
 * may not forward them as fields). Sizes and the bytes spent on extensions
 * and trailers are bounded, so a peer cannot make it buffer or loop.
 */

const enum State {
  Size,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerLineStart,
  TrailerLine,
  TrailerLf,
  FinalLf,
  Done,
}

/** Hex digits of a chunk size: 13 of them reach 2^52, more than any body. */
const MAX_SIZE_DIGITS = 13;

export type ChunkedResult =
  /** `consumed` bytes of the input were read; `done` once the last chunk and the trailers were. */
  | { readonly ok: true; readonly consumed: number; readonly done: boolean }
  | { readonly ok: false; readonly reason: string };

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

export class ChunkedDecoder {
  private state = State.Size;
  private size = 0;
  private digits = 0;
  private remaining = 0;
  /** Bytes of extensions and trailers read so far. */
  private overhead = 0;

  /** @param maxOverheadBytes bound on extensions plus trailers over the whole body. */
  constructor(private readonly maxOverheadBytes = 16 * 1024) {}

  get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * Reads `buf` from `offset`, handing each piece of body data to `onData`
   * (subarrays of `buf`, no copy). Stops at the end of the message.
   */
  push(buf: Buffer, onData: (data: Buffer) => void, offset = 0): ChunkedResult {
    let i = offset;
    const n = buf.length;
    while (i < n) {
      switch (this.state) {
        case State.Data: {
          const take = Math.min(this.remaining, n - i);
          onData(buf.subarray(i, i + take));
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = State.DataCr;
          continue;
        }
        case State.Size: {
          const c = buf[i++];
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) return { ok: false, reason: 'chunk-size' };
            this.size = this.size * 16 + v;
          } else if (this.digits === 0) {
            return { ok: false, reason: 'chunk-size' };
          } else if (c === 0x0d) {
            this.state = State.SizeLf;
          } else if (c === 0x3b || c === 0x20 || c === 0x09) {
            this.state = State.Extension; // ";ext" (BWS before it is tolerated, as RFC 9112 7.1.1 allows)
          } else {
            return { ok: false, reason: 'chunk-size' };
          }
          continue;
        }
        case State.Extension: {
          const c = buf[i++];
          if (c === 0x0d) this.state = State.SizeLf;
          else if (c === 0x0a || c === 0) return { ok: false, reason: 'chunk-extension' };
          else if (++this.overhead > this.maxOverheadBytes) return { ok: false, reason: 'chunk-extension' };
          continue;
        }
        case State.SizeLf: {
          if (buf[i++] !== 0x0a) return { ok: false, reason: 'chunk-size' };
          if (this.size === 0) {
            this.state = State.TrailerLineStart;
          } else {
            this.remaining = this.size;
            this.state = State.Data;
          }
          this.size = 0;
          this.digits = 0;
          continue;
        }
        case State.DataCr:
          if (buf[i++] !== 0x0d) return { ok: false, reason: 'chunk-data' };
          this.state = State.DataLf;
          continue;
        case State.DataLf:
          if (buf[i++] !== 0x0a) return { ok: false, reason: 'chunk-data' };
          this.state = State.Size;
          continue;
        case State.TrailerLineStart: {
          const c = buf[i++];
          if (c === 0x0d) this.state = State.FinalLf;
          else if (c === 0x0a) return { ok: false, reason: 'trailer' };
          else this.state = State.TrailerLine;
          if (c !== 0x0d && ++this.overhead > this.maxOverheadBytes) return { ok: false, reason: 'trailer' };
          continue;
        }
        case State.TrailerLine: {
          const c = buf[i++];
          if (c === 0x0d) this.state = State.TrailerLf;
          else if (c === 0x0a || c === 0) return { ok: false, reason: 'trailer' };
          else if (++this.overhead > this.maxOverheadBytes) return { ok: false, reason: 'trailer' };
          continue;
        }
        case State.TrailerLf:
          if (buf[i++] !== 0x0a) return { ok: false, reason: 'trailer' };
          this.state = State.TrailerLineStart;
          continue;
        case State.FinalLf:
          if (buf[i++] !== 0x0a) return { ok: false, reason: 'trailer' };
          this.state = State.Done;
          return { ok: true, consumed: i - offset, done: true };
        case State.Done:
          return { ok: true, consumed: i - offset, done: true };
      }
    }
    return { ok: true, consumed: i - offset, done: this.state === State.Done };
  }
}

/** One piece of body data in the chunked coding (an empty piece would end the body, so it is never written). */
export function encodeChunk(data: Buffer): Buffer[] {
  return [Buffer.from(`${data.length.toString(16)}\r\n`, 'latin1'), data, CRLF];
}

const CRLF = Buffer.from('\r\n', 'latin1');
/** The last chunk, no trailers. */
export const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
