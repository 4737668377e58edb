/**
 * One match dimension (an address family, protocol, port) as sorted
 * elementary intervals, each with the bitset of rules that match every
 * value inside it. A lookup is one binary search; the caller ANDs the
 * bitsets of all dimensions and takes the lowest set bit (first match wins).
 *
 * Keys are unsigned integers of `width` 32-bit words (1 for IPv4, ports and
 * protocols; 4 for IPv6), most significant word first.
 */

/** Per rule: its inclusive [lo, hi] ranges, or null when the rule does not constrain this dimension. */
export type RuleRanges = ReadonlyArray<readonly (readonly [bigint, bigint])[] | null>;

export class IntervalIndex {
  /** Offset in `sets` of the rules that do not constrain this dimension (for values that do not parse). */
  readonly anyOffset: number;

  private constructor(
    private readonly count: number,
    private readonly starts: Uint32Array,
    readonly sets: Uint32Array,
    private readonly words: number,
  ) {
    this.anyOffset = count * words;
  }

  static build(width: 1 | 4, words: number, perRule: RuleRanges): IntervalIndex {
    const max = (1n << BigInt(32 * width)) - 1n;
    const merged = perRule.map((ranges) => (ranges === null ? null : mergeRanges(ranges)));
    // Interval starts: 0, every range start, and every value just past a range end.
    const points = new Set<bigint>([0n]);
    for (const ranges of merged) {
      for (const [lo, hi] of ranges ?? []) {
        points.add(lo);
        if (hi < max) points.add(hi + 1n);
      }
    }
    const sorted = [...points].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const at = new Map(sorted.map((p, i) => [p, i]));
    const opens: number[][] = sorted.map(() => []);
    const closes: number[][] = sorted.map(() => []);
    const current = new Uint32Array(words);
    merged.forEach((ranges, rule) => {
      if (ranges === null) setBit(current, rule);
      for (const [lo, hi] of ranges ?? []) {
        opens[at.get(lo) as number].push(rule);
        if (hi < max) closes[at.get(hi + 1n) as number].push(rule);
      }
    });
    const any = current.slice();
    const count = sorted.length;
    const starts = new Uint32Array(count * width);
    const sets = new Uint32Array((count + 1) * words);
    for (let j = 0; j < count; j++) {
      let v = sorted[j];
      for (let w = width - 1; w >= 0; w--) {
        starts[j * width + w] = Number(v & 0xffffffffn);
        v >>= 32n;
      }
      // Ranges of one rule are merged, so a close and an open of the same rule never meet here.
      for (const rule of closes[j]) clearBit(current, rule);
      for (const rule of opens[j]) setBit(current, rule);
      sets.set(current, j * words);
    }
    sets.set(any, count * words);
    return new IntervalIndex(count, starts, sets, words);
  }

  /** Offset in `sets` for a one-word key (0 <= key <= 0xffffffff). */
  find1(key: number): number {
    const starts = this.starts;
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid] <= key) lo = mid;
      else hi = mid - 1;
    }
    return lo * this.words;
  }

  /** Offset in `sets` for a four-word key. */
  find4(key: Uint32Array): number {
    const starts = this.starts;
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (compare4(starts, mid * 4, key) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return lo * this.words;
  }
}

function compare4(starts: Uint32Array, at: number, key: Uint32Array): number {
  for (let w = 0; w < 4; w++) {
    const a = starts[at + w];
    const b = key[w];
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

/** Sorted, with overlapping and touching ranges joined. */
function mergeRanges(ranges: readonly (readonly [bigint, bigint])[]): [bigint, bigint][] {
  const sorted = [...ranges].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else {
      out.push([lo, hi]);
    }
  }
  return out;
}

export function setBit(set: Uint32Array, bit: number, offset = 0): void {
  set[offset + (bit >>> 5)] |= 1 << (bit & 31);
}

function clearBit(set: Uint32Array, bit: number): void {
  set[bit >>> 5] &= ~(1 << (bit & 31));
}
