/**
 * The emulator's load generator and checker (native/src/generator.cc):
 * validates the options and every template, starts it, and checks that the
 * addon speaks the counter table of counters.ts.
 */
import type { GeneratorOptions, GeneratorTemplate, NativeAddon, NativeGenerator } from './binding';
import { loadNative } from './addon';
import { checkCounterNames, GENERATOR_COUNTER_NAMES, type GeneratorCounterName, type NamedCounters } from './counters';
import { LATENCY_BUCKETS } from './latency';
import { checkBoolean, checkInteger, checkIPv4, invalidArg, MAX_SOCKET_BUFFER } from './validate';
import { GENEVE_REASONS } from '../geneve/reasons';
import { GatehouseError } from '../errors';

/** Longest template the native generator takes (and reply it checks), bytes. */
export const MAX_TEMPLATE_BYTES = 9216;
/** Size of the stamp every good packet carries: u64 run tag, u64 sequence, u64 send time. */
export const STAMP_BYTES = 24;
const MAX_SOURCE_PORTS = 4096;
const MAX_RATE = 1_000_000_000;

export interface Generator extends NativeGenerator {
  readonly counters: NamedCounters<GeneratorCounterName>;
}

/** Starts the generator; throws ERR_INVALID_ARG, ERR_NATIVE_START or ERR_NATIVE_CONTRACT. */
export function startGenerator(opts: GeneratorOptions): Generator {
  const addon = loadNative();
  const checked = checkGeneratorOptions(opts, addon);
  let native: NativeGenerator;
  try {
    native = addon.startGenerator(checked);
  } catch (err) {
    throw new GatehouseError(
      'ERR_NATIVE_START',
      `Could not start the generator (${checked.bind} -> ${checked.target}:${checked.targetPort}): ${(err as Error).message}`,
      { cause: err },
    );
  }
  let counters: NamedCounters<GeneratorCounterName>;
  try {
    counters = checkCounterNames('generator', native.counters, GENERATOR_COUNTER_NAMES);
    if (native.latency.length !== LATENCY_BUCKETS || native.latencyMax.length !== 1) {
      throw new GatehouseError(
        'ERR_NATIVE_CONTRACT',
        `Expected ${LATENCY_BUCKETS} latency buckets and 1 maximum for generator.latency but received ${native.latency.length} and ${native.latencyMax.length} (rebuild the addon: npm run build:native)`,
      );
    }
  } catch (err) {
    native.stop();
    throw err;
  }
  return { counters, latency: native.latency, latencyMax: native.latencyMax, stop: () => native.stop() };
}

/** Every option checked, in a fresh object (templates keep their bytes, not copied). */
export function checkGeneratorOptions(opts: GeneratorOptions, addon: Pick<NativeAddon, 'decodeGeneve'>): GeneratorOptions {
  const sourcePorts = checkSourcePorts(opts.sourcePorts);
  if (!Array.isArray(opts.templates) || opts.templates.length === 0) {
    invalidArg('a non-empty array of templates', 'templates', opts.templates);
  }
  const templates = opts.templates.map((t, i) => checkTemplate(t, `templates[${i}]`, sourcePorts.length, addon));
  if (!templates.some((t) => t.malformedKind === -1)) {
    invalidArg('at least one good template (malformedKind -1)', 'templates', opts.templates);
  }
  const malformedPerMillion = checkInteger('malformedPerMillion', opts.malformedPerMillion, 0, 1_000_000);
  if (malformedPerMillion > 0 && !templates.some((t) => t.malformedKind >= 0)) {
    invalidArg('0 (no malformed template given)', 'malformedPerMillion', malformedPerMillion);
  }
  if (typeof opts.runTag !== 'bigint' || opts.runTag < 0n || opts.runTag >= 1n << 64n) {
    invalidArg('bigint between 0 and 2^64-1', 'runTag', opts.runTag);
  }
  return {
    target: checkIPv4('target', opts.target),
    targetPort: checkInteger('targetPort', opts.targetPort, 1, 65535),
    bind: checkIPv4('bind', opts.bind),
    replyPort: checkInteger('replyPort', opts.replyPort, 1, 65535),
    sourcePorts,
    templates,
    malformedPerMillion,
    rate: checkInteger('rate', opts.rate, 0, MAX_RATE),
    count: checkInteger('count', opts.count, 0, Number.MAX_SAFE_INTEGER),
    durationMs: checkInteger('durationMs', opts.durationMs, 0, Number.MAX_SAFE_INTEGER),
    batch: checkInteger('batch', opts.batch, 1, 1024),
    ignoreTtl: checkBoolean('ignoreTtl', opts.ignoreTtl),
    rcvbuf: checkInteger('rcvbuf', opts.rcvbuf, 0, MAX_SOCKET_BUFFER),
    sndbuf: checkInteger('sndbuf', opts.sndbuf, 0, MAX_SOCKET_BUFFER),
    runTag: opts.runTag,
  };
}

function checkSourcePorts(value: unknown): number[] {
  if (!Array.isArray(value) || value.length < 1 || value.length > MAX_SOURCE_PORTS) {
    invalidArg(`an array of 1 to ${MAX_SOURCE_PORTS} ports`, 'sourcePorts', value);
  }
  const ports = value.map((p, i) => checkInteger(`sourcePorts[${i}]`, p, 0, 65535));
  const fixed = ports.filter((p) => p !== 0);
  const dup = fixed.find((p, i) => fixed.indexOf(p) !== i);
  if (dup !== undefined) invalidArg('distinct ports (0 = ephemeral may repeat)', 'sourcePorts', dup);
  return ports;
}

function checkTemplate(
  t: GeneratorTemplate,
  name: string,
  sockets: number,
  addon: Pick<NativeAddon, 'decodeGeneve'>,
): GeneratorTemplate {
  if (typeof t !== 'object' || t === null) invalidArg('a template object', name, t);
  if (!(t.bytes instanceof Uint8Array) || t.bytes.length > MAX_TEMPLATE_BYTES) {
    invalidArg(`Uint8Array of at most ${MAX_TEMPLATE_BYTES} bytes`, `${name}.bytes`, t.bytes);
  }
  const malformedKind = checkInteger(`${name}.malformedKind`, t.malformedKind, -1, GENEVE_REASONS.length - 1);
  const socket = checkInteger(`${name}.socket`, t.socket, 0, sockets - 1);
  const decoded = addon.decodeGeneve(t.bytes);
  if (malformedKind >= 0) {
    // The checker recognises returned malformed packets by their bytes and
    // counts them under this kind: it must be what the bytes really are.
    const kind = GENEVE_REASONS[malformedKind];
    if (decoded.ok || decoded.reason !== kind) {
      invalidArg(`bytes that decode as ${kind}`, `${name}.bytes`, decoded.ok ? 'valid GENEVE' : decoded.reason);
    }
    return { ...t, malformedKind, socket };
  }
  if (!decoded.ok) invalidArg('valid GWLB GENEVE in a good template', `${name}.bytes`, decoded.reason);
  const len = t.bytes.length;
  const inner = decoded.headerLength;
  // Offsets must fall inside the inner packet, and the fields the checker
  // treats specially must not overlap the stamp.
  const stampOffset = checkInteger(`${name}.stampOffset`, t.stampOffset, inner, len - STAMP_BYTES);
  const outsideStamp = (field: string, value: number, width: number): number => {
    if (value + width > stampOffset && value < stampOffset + STAMP_BYTES) {
      invalidArg(`an offset outside the stamp [${stampOffset}, ${stampOffset + STAMP_BYTES})`, `${name}.${field}`, value);
    }
    return value;
  };
  const checksumOffset =
    t.checksumOffset === -1 ? -1 : outsideStamp('checksumOffset', checkInteger(`${name}.checksumOffset`, t.checksumOffset, inner, len - 2), 2);
  const ttlOffset = outsideStamp('ttlOffset', checkInteger(`${name}.ttlOffset`, t.ttlOffset, inner, len - 1), 1);
  const ipChecksumOffset =
    t.ipChecksumOffset === -1
      ? -1
      : outsideStamp('ipChecksumOffset', checkInteger(`${name}.ipChecksumOffset`, t.ipChecksumOffset, inner, len - 2), 2);
  if (t.bytes.subarray(stampOffset, stampOffset + STAMP_BYTES).some((b) => b !== 0)) {
    invalidArg(`${STAMP_BYTES} zero bytes at the stamp offset`, `${name}.bytes`, 'non-zero bytes');
  }
  return { bytes: t.bytes, malformedKind, stampOffset, checksumOffset, ttlOffset, ipChecksumOffset, socket };
}
