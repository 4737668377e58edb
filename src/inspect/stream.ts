/**
 * One direction of a TCP stream, put back in order from the segments the
 * engine sends up, for the payload parsers. Bounded: at most `cap` bytes
 * are kept (the parsers give up before that anyway) and at most
 * MAX_OUT_OF_ORDER segments wait for a gap to fill. Retransmissions and
 * overlaps add only the bytes not yet seen; the first copy of a byte wins.
 * Sequence numbers wrap at 2^32 (RFC 9293 3.4), so every comparison is on
 * the signed 32-bit difference.
 */

/** Segments after a gap kept waiting for the gap to fill. */
export const MAX_OUT_OF_ORDER = 16;

export class TcpStream {
  private readonly chunks: Uint8Array[] = [];
  private readonly early = new Map<number, Uint8Array>();
  private joined: Uint8Array | null = null;
  private size = 0;
  /** The sequence number of the next byte in order; undefined until the start is known. */
  private nextSeq: number | undefined;
  /** The sequence number of the stream's first byte. */
  private firstSeq: number | undefined;

  constructor(readonly cap: number) {}

  /** The stream starts at `seq` (after a SYN: its seq + 1). Ignored once the start is known. */
  begin(seq: number): void {
    if (this.nextSeq !== undefined) return;
    this.nextSeq = seq >>> 0;
    this.firstSeq = seq >>> 0;
  }

  /** The first sequence number of the stream, once known. */
  get start(): number | undefined {
    return this.firstSeq;
  }

  get length(): number {
    return this.size;
  }

  get full(): boolean {
    return this.size >= this.cap;
  }

  /**
   * Adds a segment's data (the stream starts at its seq when nothing set the
   * start before). Returns true when bytes were added in order.
   */
  add(seq: number, data: Uint8Array): boolean {
    if (data.length === 0) return false;
    this.begin(seq);
    const before = this.size;
    this.place(seq >>> 0, data);
    // Fill from waiting segments while one now starts at or before the end.
    for (let progress = true; progress && this.early.size > 0; ) {
      progress = false;
      for (const [s, d] of this.early) {
        if (distance(this.nextSeq as number, s) <= 0) {
          this.early.delete(s);
          this.place(s, d);
          progress = true;
        }
      }
    }
    return this.size > before;
  }

  /** The bytes in order so far (one copy, kept until the next add). */
  bytes(): Uint8Array {
    if (this.joined === null) {
      const out = new Uint8Array(this.size);
      let at = 0;
      for (const c of this.chunks) {
        out.set(c, at);
        at += c.length;
      }
      this.joined = out;
    }
    return this.joined;
  }

  private place(seq: number, data: Uint8Array): void {
    const next = this.nextSeq as number;
    const ahead = distance(next, seq);
    if (ahead > 0) {
      // After a gap: keep it (the longest copy per start) if there is room.
      const known = this.early.get(seq);
      if ((known !== undefined || this.early.size < MAX_OUT_OF_ORDER) && (known === undefined || known.length < data.length)) {
        this.early.set(seq, data);
      }
      return;
    }
    const skip = -ahead;
    if (skip >= data.length || this.size >= this.cap) return;
    const fresh = data.subarray(skip, skip + (this.cap - this.size));
    this.chunks.push(fresh);
    this.size += fresh.length;
    this.nextSeq = (next + fresh.length) >>> 0;
    this.joined = null;
  }
}

/** b - a as a signed 32-bit difference: positive when b is after a. */
function distance(a: number, b: number): number {
  return (b - a) | 0;
}
