/**
 * Builders for the wire formats the payload parsers read: ClientHellos (and
 * records to carry them), HTTP request heads and DNS messages. Written from
 * the RFCs so the tests do not lean on the code they test.
 */
import fc from 'fast-check';

export function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function u16(n: number): Uint8Array {
  return Uint8Array.of(n >> 8, n & 0xff);
}

const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

export interface TlsExtension {
  type: number;
  data: Uint8Array;
}

export const ext = {
  serverName(host: string): TlsExtension {
    const name = ascii(host);
    const entry = concat([Uint8Array.of(0), u16(name.length), name]);
    return { type: 0x0000, data: concat([u16(entry.length), entry]) };
  },
  alpn(protocols: string[]): TlsExtension {
    const list = concat(protocols.map((p) => concat([Uint8Array.of(p.length), ascii(p)])));
    return { type: 0x0010, data: concat([u16(list.length), list]) };
  },
  supportedVersions(versions: number[]): TlsExtension {
    return { type: 0x002b, data: concat([Uint8Array.of(versions.length * 2), ...versions.map(u16)]) };
  },
  /** encrypted_client_hello, outer form: type 0, cipher suite, config id, enc, payload. */
  ech(): TlsExtension {
    const enc = new Uint8Array(32).fill(0x11);
    const payload = new Uint8Array(144).fill(0x22);
    return {
      type: 0xfe0d,
      data: concat([Uint8Array.of(0), u16(0x0001), u16(0x0001), Uint8Array.of(7), u16(enc.length), enc, u16(payload.length), payload]),
    };
  },
  esni(): TlsExtension {
    return { type: 0xffce, data: new Uint8Array(40).fill(0x33) };
  },
  opaque(type: number, length: number): TlsExtension {
    return { type, data: new Uint8Array(length).fill(0x44) };
  },
};

export interface HelloOptions {
  legacyVersion?: number;
  sessionIdLength?: number;
  extensions?: TlsExtension[] | null; // null: no extensions block at all
}

/** A ClientHello handshake message (handshake header included, no record header). */
export function clientHello(opts: HelloOptions = {}): Uint8Array {
  const extensions = opts.extensions === undefined ? [ext.serverName('www.example.com')] : opts.extensions;
  const sessionId = new Uint8Array(opts.sessionIdLength ?? 32).fill(0x5a);
  const parts = [
    u16(opts.legacyVersion ?? 0x0303),
    new Uint8Array(32).fill(0xa5), // random
    Uint8Array.of(sessionId.length),
    sessionId,
    u16(6),
    Uint8Array.of(0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f), // cipher suites
    Uint8Array.of(1, 0), // compression: null
  ];
  if (extensions !== null) {
    const block = concat(extensions.map((e) => concat([u16(e.type), u16(e.data.length), e.data])));
    parts.push(u16(block.length), block);
  }
  const body = concat(parts);
  return concat([Uint8Array.of(0x01, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff), body]);
}

/** Wraps a handshake message in handshake records whose fragments have the given sizes (the last one takes the rest). */
export function records(handshake: Uint8Array, fragmentSizes: number[] = []): Uint8Array {
  const out: Uint8Array[] = [];
  let p = 0;
  for (const size of fragmentSizes) {
    if (p + size >= handshake.length) break;
    out.push(record(handshake.subarray(p, p + size)));
    p += size;
  }
  out.push(record(handshake.subarray(p)));
  return concat(out);
}

export function record(fragment: Uint8Array, type = 0x16, version = 0x0301): Uint8Array {
  return concat([Uint8Array.of(type), u16(version), u16(fragment.length), fragment]);
}

/** Arbitrary fragment sizes (each >= 1) for splitting a hello into 1..n records. */
export const fragmentSizes = fc.array(fc.integer({ min: 1, max: 120 }), { maxLength: 12 });

/** Host names the parsers should give back unchanged (lowercase, dotted, LDH). */
export const hostName = fc
  .array(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/), { minLength: 1, maxLength: 5 })
  .map((labels) => labels.join('.'));

// ---- DNS ----

export function encodeName(name: string): Uint8Array {
  if (name === '') return Uint8Array.of(0);
  return concat([...name.split('.').map((l) => concat([Uint8Array.of(l.length), ascii(l)])), Uint8Array.of(0)]);
}

/** A standard query: RD set, one question of class IN, no EDNS. */
export function dnsQuery(id: number, name: string, type: number): Uint8Array {
  return concat([u16(id), u16(0x0100), u16(1), u16(0), u16(0), u16(0), encodeName(name), u16(type), u16(1)]);
}

/**
 * A response to `name` A with a compressed CNAME chain: alias -> www, then
 * www's A record (pointers to the question name and to the CNAME target).
 */
export function dnsCnameResponse(id: number): Uint8Array {
  const header = concat([u16(id), u16(0x8180), u16(1), u16(2), u16(0), u16(0)]);
  const question = concat([encodeName('alias.example.com'), u16(1), u16(1)]);
  // www.example.com inside the CNAME rdata: "www" then a pointer to "example.com" at 12 + 6.
  const cnameRdata = concat([Uint8Array.of(3), ascii('www'), Uint8Array.of(0xc0, 12 + 6)]);
  const cname = concat([Uint8Array.of(0xc0, 12), u16(5), u16(1), Uint8Array.of(0, 0, 1, 44), u16(cnameRdata.length), cnameRdata]);
  const cnameRdataOffset = header.length + question.length + cname.length - cnameRdata.length;
  const ttl60 = Uint8Array.of(0, 0, 0, 60);
  const a = concat([Uint8Array.of(0xc0, cnameRdataOffset), u16(1), u16(1), ttl60, u16(4), Uint8Array.of(203, 0, 113, 10)]);
  return concat([header, question, cname, a]);
}

/** A length-prefixed DNS-over-TCP message. */
export function tcpFramed(message: Uint8Array): Uint8Array {
  return concat([u16(message.length), message]);
}
