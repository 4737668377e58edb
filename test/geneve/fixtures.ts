/**
 * Hand-built GENEVE bytes and fast-check arbitraries shared by the GENEVE
 * tests (not a test file itself). The hand-built bytes are written out field
 * by field so that the decoder is judged against the wire format, not
 * against our own encoder.
 */
import fc from 'fast-check';
import {
  AWS_OPTION_CLASS,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  GENEVE_MAX_OPTIONS_LENGTH,
  encodeGeneve,
  gwlbOptions,
  type GeneveOption,
  type GenevePacket,
} from '../../src/geneve';

/** Bytes from hex, spaces ignored: hex('0108 01 02', 'ff') */
export function hex(...parts: string[]): Uint8Array {
  const s = parts.join('').replace(/\s+/g, '');
  if (s.length % 2 !== 0 || /[^0-9a-fA-F]/.test(s)) throw new Error(`bad hex in fixture: ${s}`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/** Fixed header: version 0, `optWords` words of options, protocol, VNI 0. */
export const fixed = (optWords: number, protocol = '0800', versionBits = 0): string =>
  `${((versionBits << 6) | optWords).toString(16).padStart(2, '0')} 00 ${protocol} 000000 00`;

// The three GWLB options, each a 4-byte option header + data.
export const OPT_ENI = '0108 01 02 0123456789abcdef'; // class 0x0108, type 1, 2 words
export const OPT_ATTACHMENT = '0108 02 02 fedcba9876543210'; // type 2, 2 words
export const OPT_COOKIE = '0108 03 01 deadbeef'; // type 3, 1 word
export const GWLB_OPTIONS = OPT_ENI + OPT_ATTACHMENT + OPT_COOKIE; // 8 words
export const GWLB_FIELDS = { eni: 0x0123456789abcdefn, attachment: 0xfedcba9876543210n, cookie: 0xdeadbeef };

/** Minimal IPv4 header (IHL 5, UDP, 192.0.2.1 -> 198.51.100.1). */
export const IPV4_20 = '45 00 0014 0000 0000 40 11 0000 c0000201 c6336401';
/** Minimal IPv6 header (no payload, UDP, 2001:db8::1 -> 2001:db8::2). */
export const IPV6_40 =
  '60 000000 0000 11 40 20010db8000000000000000000000001 20010db8000000000000000000000002';

/** A datagram exactly as GWLB sends it, with an IPv4 inner packet (60 bytes). */
export const GOOD_V4 = hex(fixed(8), GWLB_OPTIONS, IPV4_20);
/** Same with an IPv6 inner packet (80 bytes). */
export const GOOD_V6 = hex(fixed(8, '86dd'), GWLB_OPTIONS, IPV6_40);

// ---- arbitraries -----------------------------------------------------------

/** An inner IPv4 packet: version 4, IHL 5..15, at least IHL*4 bytes; other bytes random. */
export const ipv4Inner: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.integer({ min: 5, max: 15 }), fc.integer({ min: 0, max: 120 }))
  .chain(([ihl, extra]) =>
    fc.uint8Array({ minLength: ihl * 4 + extra, maxLength: ihl * 4 + extra }).map((b) => {
      b[0] = 0x40 | ihl;
      return b;
    }),
  );

/** An inner IPv6 packet: version 6, at least 40 bytes; other bytes random. */
export const ipv6Inner: fc.Arbitrary<Uint8Array> = fc
  .uint8Array({ minLength: 40, maxLength: 200 })
  .map((b) => {
    b[0] = 0x60 | (b[0] & 0x0f);
    return b;
  });

/** Option data: 0..31 words, weighted toward small. */
const optionData: fc.Arbitrary<Uint8Array> = fc
  .oneof({ arbitrary: fc.integer({ min: 0, max: 4 }), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: 31 }), weight: 1 })
  .chain((words) => fc.uint8Array({ minLength: words * 4, maxLength: words * 4 }));

/** Any option that is not one of the three GWLB reads (AWS class with other types included). */
export const extraOption: fc.Arbitrary<GeneveOption> = fc
  .record({
    optClass: fc.oneof(fc.constant(AWS_OPTION_CLASS), fc.integer({ min: 0, max: 0xffff })),
    type: fc.integer({ min: 0, max: 0xff }),
    data: optionData,
  })
  .filter((o) => !(o.optClass === AWS_OPTION_CLASS && o.type >= 1 && o.type <= 3))
  // a plain object: fc.record may give a null prototype, which deepStrictEqual tells apart
  .map((o) => ({ optClass: o.optClass, type: o.type, data: o.data }));

export const gwlbFields = fc.record({
  eni: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  attachment: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  cookie: fc.integer({ min: 0, max: 0xffffffff }),
});

/** Keeps options in order, skipping extras that would not fit in the 252-byte option area. */
function fitOptions(parts: { option: GeneveOption; required: boolean }[]): GeneveOption[] {
  let budget = GENEVE_MAX_OPTIONS_LENGTH - parts.filter((p) => p.required).reduce((n, p) => n + 4 + p.option.data.length, 0);
  const out: GeneveOption[] = [];
  for (const p of parts) {
    const size = 4 + p.option.data.length;
    if (p.required) out.push(p.option);
    else if (size <= budget) {
      out.push(p.option);
      budget -= size;
    }
  }
  return out;
}

/** Any packet decodeGeneve accepts: GWLB options in any order, extras anywhere, IPv4 or IPv6 inner. */
export const validPacket: fc.Arbitrary<GenevePacket> = fc
  .record({
    oam: fc.boolean(),
    critical: fc.boolean(),
    vni: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffff })),
    fields: gwlbFields,
    awsOrder: fc.constantFrom([0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]),
    extras: fc.array(fc.array(extraOption, { maxLength: 2 }), { minLength: 4, maxLength: 4 }),
    inner: fc.oneof(
      ipv4Inner.map((b) => ({ protocol: ETHERTYPE_IPV4, b })),
      ipv6Inner.map((b) => ({ protocol: ETHERTYPE_IPV6, b })),
    ),
  })
  .map((r) => {
    const aws = gwlbOptions(r.fields);
    const parts: { option: GeneveOption; required: boolean }[] = [];
    r.extras.forEach((group, i) => {
      for (const option of group) parts.push({ option, required: false });
      if (i < 3) parts.push({ option: aws[r.awsOrder[i]], required: true });
    });
    return {
      oam: r.oam,
      critical: r.critical,
      protocol: r.inner.protocol,
      vni: r.vni,
      options: fitOptions(parts),
      inner: r.inner.b,
    };
  });

/** The wire bytes of a valid packet. */
export const validDatagram: fc.Arbitrary<Uint8Array> = validPacket.map((p) => new Uint8Array(encodeGeneve(p)));

/** An option header + data with whatever length field it claims (for near-valid datagrams). */
const nearOption: fc.Arbitrary<number[]> = fc
  .record({
    optClass: fc.oneof({ arbitrary: fc.constant(AWS_OPTION_CLASS), weight: 3 }, fc.integer({ min: 0, max: 0xffff })),
    type: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 3 }), weight: 3 }, fc.integer({ min: 0, max: 0xff })),
    words: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 3 }), weight: 4 }, fc.integer({ min: 0, max: 31 })),
    reserved: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, fc.integer({ min: 0, max: 7 })),
    fill: fc.integer({ min: 0, max: 0xff }),
  })
  .map((o) => {
    // The GWLB types mostly get their right length, so later checks are reached.
    const words = o.optClass === AWS_OPTION_CLASS && o.words === 3 && o.type <= 3 ? (o.type === 3 ? 1 : 2) : o.words;
    return [o.optClass >> 8, o.optClass & 0xff, o.type, (o.reserved << 5) | words, ...new Array<number>(words * 4).fill(o.fill)];
  });

/**
 * Datagrams built field by field near the edge of validity: GWLB options
 * present, missing, duplicated or of odd lengths, an Opt Len that may not
 * match, any protocol, short inner packets. Every reason comes out often.
 */
export const nearValidDatagram: fc.Arbitrary<Uint8Array> = fc
  .record({
    version: fc.oneof({ arbitrary: fc.constant(0), weight: 9 }, fc.integer({ min: 1, max: 3 })),
    byte1: fc.integer({ min: 0, max: 0xff }),
    lead: fc.array(nearOption, { maxLength: 2 }),
    withGwlb: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, fc.constant(false)),
    tail: fc.array(nearOption, { maxLength: 2 }),
    optLenSkew: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, fc.integer({ min: -3, max: 3 })),
    protocol: fc.oneof(
      { arbitrary: fc.constantFrom(ETHERTYPE_IPV4, ETHERTYPE_IPV6), weight: 6 },
      fc.integer({ min: 0, max: 0xffff }),
    ),
    innerFirst: fc.oneof(
      { arbitrary: fc.constantFrom(0x45, 0x46, 0x4f, 0x60), weight: 4 },
      fc.integer({ min: 0, max: 0xff }),
    ),
    // any length up to 70 equally (fast-check's default sizes favour short arrays)
    inner: fc.integer({ min: 0, max: 70 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
    // now and then cut short anywhere, down to nothing
    cut: fc.oneof({ arbitrary: fc.constant(Infinity), weight: 19 }, fc.integer({ min: 0, max: 60 })),
  })
  .map((r) => {
    const gwlb = r.withGwlb ? [...hex(GWLB_OPTIONS)] : [];
    const area = [...r.lead.flat(), ...gwlb, ...r.tail.flat()];
    const words = Math.min(63, Math.max(0, area.length / 4 + r.optLenSkew));
    const inner = r.inner.length > 0 ? [r.innerFirst, ...r.inner.subarray(1)] : [];
    const bytes = new Uint8Array([
      (r.version << 6) | words,
      r.byte1,
      r.protocol >> 8,
      r.protocol & 0xff,
      0,
      0,
      0,
      0,
      ...area,
      ...inner,
    ]);
    return bytes.subarray(0, r.cut);
  });
