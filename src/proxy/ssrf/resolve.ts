/**
 * From a destination host to the one address the proxy may connect to.
 * The check and the connection use the same address: the caller connects
 * to the address returned here and never resolves the name again, so DNS
 * rebinding (a second answer, after the check, pointing inside) has
 * nothing to act on.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { GatehouseError } from '../../errors';
import { deniedAddressReason } from './address-classes';
import { parseDestinationHost, type DestinationHost } from './host';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a name to every address it has (A and AAAA); an answer already known may come back at once, without a promise. */
export type LookupFunction = (name: string) => Promise<ResolvedAddress[]> | ResolvedAddress[];

export interface ResolveAndCheckOptions {
  lookup: LookupFunction;
  /** The deciding rule's allow_addresses. */
  allow: readonly string[];
  /** The proxy's own addresses. */
  own: readonly string[];
  /** How long resolving may take before the request fails with 504. */
  timeoutMs: number;
}

export type ResolveAndCheckResult =
  | { ok: true; address: string; family: 4 | 6; addresses: string[] }
  | {
      ok: false;
      /** 'ssrf:<class>' (403), 'invalid-host' (403), 'resolve:timeout' (504), 'resolve:<error code>' or 'resolve:no-addresses' (502). */
      reason: string;
      /** Every address the name resolved to, normalised (empty when it did not resolve). */
      addresses: string[];
      status: 403 | 502 | 504;
    };

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), every address in the resolver's order. */
export const systemLookup: LookupFunction = async (name) => {
  const found = await dnsLookup(name, { all: true, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

const TIMED_OUT = Symbol('timed out');

async function lookupWithin(found: Promise<ResolvedAddress[]>, timeoutMs: number): Promise<ResolvedAddress[] | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs);
  });
  try {
    return await Promise.race([found, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function errorCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,32}$/.test(code) ? code : 'failed';
}

/**
 * Resolves `host` (a name, or an IP literal in any notation, which is not
 * looked up; text, or as parseDestinationHost returned it) and checks every address. A name is refused when ANY of its
 * addresses is denied, even if another is public: the resolver's order
 * and a later connection retry are not ours to trust, and a name that
 * points both outside and inside is the shape of a rebinding attack.
 */
export async function resolveAndCheck(host: string | DestinationHost, opts: ResolveAndCheckOptions): Promise<ResolveAndCheckResult> {
  return resolveAndCheckNow(host, opts);
}

/**
 * resolveAndCheck, with the answer at once (no promise) when the lookup
 * has it at once: an IP literal, or a name in the resolver cache. The
 * proxy's request path uses this to skip a promise per request.
 */
export function resolveAndCheckNow(host: string | DestinationHost, opts: ResolveAndCheckOptions): ResolveAndCheckResult | Promise<ResolveAndCheckResult> {
  if (!(Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0)) {
    throw new GatehouseError('ERR_INVALID_ARG', `Expected a positive number of milliseconds for timeoutMs but received ${String(opts.timeoutMs)}`);
  }
  // A caller that has parsed the host already (the proxy's request target) hands over the result.
  const target = typeof host === 'string' ? parseDestinationHost(host) : host;
  const judge = { allow: opts.allow, own: opts.own };
  if (target.kind === 'invalid') return { ok: false, reason: 'invalid-host', addresses: [], status: 403 };
  if (target.kind === 'ip') {
    const denied = deniedAddressReason(target.address, judge);
    if (denied !== null) return { ok: false, reason: `ssrf:${denied}`, addresses: [target.address], status: 403 };
    return { ok: true, address: target.address, family: target.family, addresses: [target.address] };
  }

  let found: ResolvedAddress[] | Promise<ResolvedAddress[]>;
  try {
    found = opts.lookup(target.name);
  } catch (err) {
    return { ok: false, reason: `resolve:${errorCode(err)}`, addresses: [], status: 502 };
  }
  // A cached answer needs no deadline (and no timer or promise per request).
  if (Array.isArray(found)) return checkAnswers(found, judge);
  return lookupWithin(found, opts.timeoutMs).then(
    (answer) => (answer === TIMED_OUT ? { ok: false, reason: 'resolve:timeout', addresses: [], status: 504 } : checkAnswers(answer, judge)),
    (err: unknown) => ({ ok: false, reason: `resolve:${errorCode(err)}`, addresses: [], status: 502 }),
  );
}

/** Answers normalised before (text -> address, family), so a cached answer is not parsed again per request. */
const normalisedAnswers = new Map<string, { text: string; family: 0 | 4 | 6 }>();
const MAX_NORMALISED_ANSWERS = 4096;

function normaliseAnswer(raw: string): { text: string; family: 0 | 4 | 6 } {
  let answer = normalisedAnswers.get(raw);
  if (answer === undefined) {
    const parsed = parseDestinationHost(raw);
    answer = parsed.kind === 'ip' ? { text: parsed.address, family: parsed.family } : { text: raw, family: 0 };
    if (normalisedAnswers.size >= MAX_NORMALISED_ANSWERS) normalisedAnswers.clear();
    normalisedAnswers.set(raw, answer);
  }
  return answer;
}

function checkAnswers(found: readonly ResolvedAddress[], judge: { allow: readonly string[]; own: readonly string[] }): ResolveAndCheckResult {

  // Normalised (IPv4-mapped answers become IPv4), duplicates removed, order kept.
  // A resolver answer that is not an address (a name, garbage) is kept as
  // written, with family 0, and refused below: never connected to.
  const answers: Array<{ text: string; family: 0 | 4 | 6 }> = [];
  const seen = new Set<string>();
  for (const entry of Array.isArray(found) ? found : []) {
    const raw = typeof entry?.address === 'string' ? entry.address : String(entry?.address);
    const answer = normaliseAnswer(raw);
    if (seen.has(answer.text)) continue;
    seen.add(answer.text);
    answers.push(answer);
  }
  const addresses = answers.map((a) => a.text);
  if (answers.length === 0) return { ok: false, reason: 'resolve:no-addresses', addresses, status: 502 };

  for (const a of answers) {
    const denied = a.family === 0 ? 'invalid' : deniedAddressReason(a.text, judge);
    if (denied !== null) return { ok: false, reason: `ssrf:${denied}`, addresses, status: 403 };
  }
  const first = answers[0];
  return { ok: true, address: first.text, family: first.family === 6 ? 6 : 4, addresses };
}
