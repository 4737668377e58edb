/**
 * Flag parsing and validation shared by every command. Parsing is Node's
 * util.parseArgs; these helpers turn its strings into checked values, with
 * one message shape: "Expected <what> for --flag but received <value>".
 */
import { isIPv4 } from 'node:net';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { GatehouseError } from '../errors';

export type FlagValues = Record<string, string | boolean | undefined>;

/** util.parseArgs with unknown flags and stray arguments turned into ERR_USAGE. */
export function parseFlags(
  argv: string[],
  options: NonNullable<ParseArgsConfig['options']>,
  command: string,
  allowPositionals = false,
): { values: FlagValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals });
    return { values: values as FlagValues, positionals };
  } catch (err) {
    throw new GatehouseError('ERR_USAGE', `${command}: ${(err as Error).message} (see '${command} --help')`);
  }
}

/** How a flag is named in messages: "-t/--timeout" when it has a short form, "--udpthreads" otherwise. */
export function flagLabelIn(specs: NonNullable<ParseArgsConfig['options']>, flag: string): string {
  const short = specs[flag]?.short;
  return short ? `-${short}/--${flag}` : `--${flag}`;
}

/** The one message shape for a bad flag value; `detail` adds why, e.g. ` ("x" is not one)`. */
export function invalidFlag(label: string, what: string, raw: string, detail = ''): GatehouseError {
  return new GatehouseError('ERR_INVALID_ARG', `Expected ${what} for ${label} but received ${JSON.stringify(raw)}${detail}`);
}

function invalid(flag: string, what: string, raw: string, label = `--${flag}`): GatehouseError {
  return invalidFlag(label, what, raw);
}

/** A string flag's value, or undefined when absent. */
export function textFlag(values: FlagValues, flag: string): string | undefined {
  const v = values[flag];
  return v === undefined ? undefined : String(v);
}

/** `label` names the flag in errors; commands with short forms pass e.g. "-t/--timeout". */
export function intFlag(values: FlagValues, flag: string, fallback: number, min: number, max: number, label?: string): number {
  const raw = values[flag];
  if (raw === undefined) return fallback;
  const s = String(raw);
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw invalid(flag, `an integer between ${min} and ${max}`, s, label);
  return n;
}

export function numberFlag(values: FlagValues, flag: string, fallback: number, min: number, max: number): number {
  const raw = values[flag];
  if (raw === undefined) return fallback;
  const s = String(raw);
  const n = /^\d+(\.\d+)?$/.test(s) ? Number(s) : NaN;
  if (!Number.isFinite(n) || n < min || n > max) throw invalid(flag, `a number between ${min} and ${max}`, s);
  return n;
}

export function choiceFlag<T extends string>(values: FlagValues, flag: string, fallback: T, choices: readonly T[]): T {
  const raw = values[flag];
  if (raw === undefined) return fallback;
  const s = String(raw);
  if (!(choices as readonly string[]).includes(s)) throw invalid(flag, `one of ${choices.join(', ')}`, s);
  return s as T;
}

export function ipv4Flag(values: FlagValues, flag: string, fallback?: string): string | undefined {
  const raw = values[flag];
  if (raw === undefined) return fallback;
  const s = String(raw);
  if (!isIPv4(s)) throw invalid(flag, 'an IPv4 address', s);
  return s;
}

/** A 64-bit id given as hex (with or without 0x, up to 17 digits as gwlbtun prints it). */
export function hex64Flag(values: FlagValues, flag: string, fallback: bigint): bigint {
  const raw = values[flag];
  if (raw === undefined) return fallback;
  const s = String(raw).replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]{1,17}$/.test(s) || BigInt('0x' + s) > 0xffffffffffffffffn) {
    throw invalid(flag, 'a 64-bit id in hex (up to 17 digits, e.g. 00123456789abcdef)', String(raw));
  }
  return BigInt('0x' + s);
}

/** "LO:HI" with LO < HI, both integers in [min, max]. */
export function rangeFlag(values: FlagValues, flag: string, min: number, max: number): [number, number] | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  const s = String(raw);
  const m = /^(\d+):(\d+)$/.exec(s);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2]) : NaN;
  if (!m || lo < min || hi > max || lo >= hi) throw invalid(flag, `LO:HI with ${min} <= LO < HI <= ${max}`, s);
  return [lo, hi];
}

/** Comma-separated list, each entry one of `choices`. */
export function listFlag<T extends string>(values: FlagValues, flag: string, fallback: readonly T[], choices: readonly T[]): T[] {
  const raw = values[flag];
  if (raw === undefined) return [...fallback];
  const items = String(raw)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.find((s) => !(choices as readonly string[]).includes(s));
  if (bad !== undefined || items.length === 0) {
    throw invalid(flag, `a comma-separated list of ${choices.join(', ')}`, String(raw));
  }
  return items as T[];
}
