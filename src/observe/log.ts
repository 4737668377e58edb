/**
 * The structured logger: one line per event, fixed field names, levels per
 * section as gwlbtun's `--logging section=level,...`.
 *
 * gwlbtun's levels are critical, important, info, debug, debugdetail; we keep
 * them (so its --logging strings work unchanged) and add error and warning,
 * which Node code needs, in their usual places. A message is written when its
 * level is at or above its section's configured level.
 *
 * Every event, written or filtered out, is also published on the
 * diagnostics_channel 'gatehouse:log' (when someone subscribes), so tests and
 * embedders can watch lifecycle events without parsing lines.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { expected } from '../validate';

/** Most severe first. */
export const LOG_LEVELS = ['critical', 'error', 'warning', 'important', 'info', 'debug', 'debugdetail'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** gwlbtun's sections plus gatehouse's endpoint lifecycle and hook scripts. */
export const TUNNEL_LOG_SECTIONS = ['core', 'udp', 'geneve', 'tunnel', 'endpoint', 'hook', 'healthcheck'] as const;
export type TunnelLogSection = (typeof TUNNEL_LOG_SECTIONS)[number];

/**
 * gwlbtun's help text says 'important' but its code sets 'info'; we follow
 * what it does (endpoint create/destroy lines are info and operators want them).
 */
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

export const LOG_CHANNEL_NAME = 'gatehouse:log';
export type LogFormat = 'text' | 'json';

/** Field values: scalars, Errors (message and code), or small JSON-able objects. */
export type LogFields = Readonly<Record<string, unknown>>;
export type LoggingConfig<S extends string> = Readonly<Record<S, LogLevel>>;

/** What is published on 'gatehouse:log'. */
export interface LogEvent {
  time: Date;
  level: LogLevel;
  section: string;
  msg: string;
  fields: LogFields;
  /** False when the section's level filtered it out of the stream. */
  written: boolean;
}

export interface Logger<S extends string = string> {
  readonly config: LoggingConfig<S>;
  /** True when a message at `level` in `section` would be written; check it before building costly fields. */
  enabled(section: S, level: LogLevel): boolean;
  log(level: LogLevel, section: S, msg: string, fields?: LogFields): void;
  critical(section: S, msg: string, fields?: LogFields): void;
  error(section: S, msg: string, fields?: LogFields): void;
  warning(section: S, msg: string, fields?: LogFields): void;
  important(section: S, msg: string, fields?: LogFields): void;
  info(section: S, msg: string, fields?: LogFields): void;
  debug(section: S, msg: string, fields?: LogFields): void;
  debugdetail(section: S, msg: string, fields?: LogFields): void;
}

export interface LoggerOptions<S extends string> {
  sections: readonly S[];
  /** From parseLoggingSpec; sections it leaves out get `defaultLevel`. */
  config?: Partial<LoggingConfig<S>>;
  defaultLevel?: LogLevel;
  format?: LogFormat;
  /** Where lines go (default process.stderr). Each event is one write ending in '\n'. */
  stream?: { write(chunk: string): unknown };
  /** Injectable for tests. */
  clock?: () => Date;
}

const rank = new Map<string, number>(LOG_LEVELS.map((l, i) => [l, i]));
const channel = diagnosticsChannel.channel(LOG_CHANNEL_NAME);

/**
 * Parses `--logging` ("core=info,udp=debug", case-insensitive, `all=` sets
 * every section, later entries win). The empty string gives the defaults.
 */
export function parseLoggingSpec<S extends string>(
  spec: string,
  sections: readonly S[],
  defaultLevel: LogLevel = DEFAULT_LOG_LEVEL,
): LoggingConfig<S> {
  const config = Object.fromEntries(sections.map((s) => [s, defaultLevel])) as Record<S, LogLevel>;
  if (spec.trim() === '') return config;
  const sectionList = [...sections, 'all'].join(', ');
  for (const raw of spec.split(',')) {
    const entry = raw.trim();
    const eq = entry.indexOf('=');
    if (eq < 0) invalid(`section=level entries separated by commas`, entry, spec);
    const section = entry.slice(0, eq).trim().toLowerCase();
    const level = entry.slice(eq + 1).trim().toLowerCase();
    if (section !== 'all' && !(sections as readonly string[]).includes(section)) {
      invalid(`a section (${sectionList})`, entry.slice(0, eq).trim(), spec);
    }
    if (!rank.has(level)) invalid(`a level (${LOG_LEVELS.join(', ')})`, entry.slice(eq + 1).trim(), spec);
    for (const s of section === 'all' ? sections : [section as S]) config[s] = level as LogLevel;
  }
  return config;
}

function invalid(what: string, got: string, spec: string): never {
  return expected(what, '--logging', `${JSON.stringify(got)} in ${JSON.stringify(spec)}`);
}

export function createLogger<S extends string>(options: LoggerOptions<S>): Logger<S> {
  const defaultLevel = options.defaultLevel ?? DEFAULT_LOG_LEVEL;
  const config = Object.freeze(
    Object.fromEntries(options.sections.map((s) => [s, options.config?.[s] ?? defaultLevel])),
  ) as LoggingConfig<S>;
  const format = options.format ?? 'text';
  const stream = options.stream ?? process.stderr;
  const clock = options.clock ?? (() => new Date());
  const defaultRank = rank.get(defaultLevel) ?? 0;

  const enabled = (section: S, level: LogLevel): boolean =>
    (rank.get(level) ?? 0) <= (rank.get(config[section]) ?? defaultRank);

  const log = (level: LogLevel, section: S, msg: string, fields: LogFields = {}): void => {
    const written = enabled(section, level);
    if (!written && !channel.hasSubscribers) return;
    const time = clock();
    if (written) stream.write(format === 'json' ? jsonLine(time, level, section, msg, fields) : textLine(time, level, section, msg, fields));
    if (channel.hasSubscribers) channel.publish({ time, level, section, msg, fields, written } satisfies LogEvent);
  };

  return {
    config,
    enabled,
    log,
    critical: (s, m, f) => log('critical', s, m, f),
    error: (s, m, f) => log('error', s, m, f),
    warning: (s, m, f) => log('warning', s, m, f),
    important: (s, m, f) => log('important', s, m, f),
    info: (s, m, f) => log('info', s, m, f),
    debug: (s, m, f) => log('debug', s, m, f),
    debugdetail: (s, m, f) => log('debugdetail', s, m, f),
  };
}

/**
 * `{"time":"<ISO 8601 UTC>","level":"info","section":"endpoint","msg":"created",<fields>}`;
 * a caller's field named like a fixed one (time, level, section, msg) is written with a leading '_'.
 */
export function jsonLine(time: Date, level: LogLevel, section: string, msg: string, fields: LogFields): string {
  const out: Record<string, unknown> = { time: time.toISOString(), level, section, msg };
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    let key = k;
    while (key in out) key = `_${key}`;
    out[key] = fieldJson(v);
  }
  try {
    return `${JSON.stringify(out, bigintReplacer)}\n`;
  } catch {
    // A field JSON cannot hold (a cycle): mark that field, keep the event.
    for (const [k, v] of Object.entries(out)) if (!serialisable(v)) out[k] = '[unserialisable]';
    return `${JSON.stringify(out, bigintReplacer)}\n`;
  }
}

function serialisable(v: unknown): boolean {
  try {
    JSON.stringify(v, bigintReplacer);
    return true;
  } catch {
    return false;
  }
}

/** `<ISO 8601 UTC> <level> [<section>] <msg> key=value ...`; values with spaces, quotes or '=' are JSON-quoted. */
export function textLine(time: Date, level: LogLevel, section: string, msg: string, fields: LogFields): string {
  let line = `${time.toISOString()} ${level} [${section}] ${escapeControls(msg)}`;
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    line += ` ${k}=${textValue(v)}`;
  }
  return `${line}\n`;
}

function fieldJson(v: unknown): unknown {
  if (v instanceof Error) {
    const code = (v as { code?: unknown }).code;
    return code === undefined ? { message: v.message } : { message: v.message, code };
  }
  return v;
}

function textValue(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(v);
    case 'string':
      return quoteIfNeeded(v);
    default: {
      if (v instanceof Error) {
        const code = (v as { code?: unknown }).code;
        return quoteIfNeeded(code === undefined ? v.message : `${String(code)}: ${v.message}`);
      }
      let json: string | undefined;
      try {
        json = JSON.stringify(v, bigintReplacer);
      } catch {
        json = undefined; // cycles: say so rather than drop the line
      }
      return quoteIfNeeded(json ?? '[unserialisable]');
    }
  }
}

function quoteIfNeeded(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s === '' || /[\s"=\\\x00-\x1f\x7f]/.test(s) ? JSON.stringify(s) : s;
}

const CONTROL_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One event is one line: control characters in a message are shown escaped. */
function escapeControls(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => CONTROL_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function bigintReplacer(_key: string, value: unknown): unknown {
  if (typeof value !== 'bigint') return value;
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
}
