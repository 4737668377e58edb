/**
 * The proxy's canonical decision log: one JSON object per request or tunnel,
 * with fixed field names (DECISION_LOG_FIELDS, in this order), so that a
 * query written against one release works against the next.
 *
 *   {"time":"2026-11-22T02:39:45.123Z","client":"10.0.1.5","client_port":50432,
 *    "endpoint":"vpce-0123456789abcdef0","method":"CONNECT","host":"api.example.com",
 *    "port":443,"url":"api.example.com:443","rule":"payments-api","decision":"allow",
 *    "reason":"rule","resolved":["203.0.113.20"],"upstream":"203.0.113.20","status":200,
 *    "bytes_to_client":5120,"bytes_from_client":830,"duration_ms":1894,"resolve_ms":2,"connect_ms":1}
 *
 * `time` is when the request started (Squid's line has when it ended);
 * absent facts are null, never missing keys.
 */
import type { AccessEntry } from '../types';
import { stripQueryTerms } from './squid-access-line';

export const DECISION_LOG_FIELDS = [
  'time',
  'client',
  'client_port',
  'endpoint',
  'method',
  'host',
  'port',
  'url',
  'rule',
  'decision',
  'reason',
  'resolved',
  'upstream',
  'status',
  'bytes_to_client',
  'bytes_from_client',
  'duration_ms',
  'resolve_ms',
  'connect_ms',
] as const;

export type DecisionLogField = (typeof DECISION_LOG_FIELDS)[number];
export type DecisionLogRecord = Record<DecisionLogField, string | number | string[] | null>;

export interface DecisionLogLineOptions {
  /** Cut URLs after their "?" (default false: the decision log is the one to debug with). */
  stripQueryTerms?: boolean;
}

/** One line (no newline): JSON.stringify escapes every control character, so the line cannot break. */
export function decisionLogLine(e: AccessEntry, opts: DecisionLogLineOptions = {}): string {
  return JSON.stringify(decisionLogRecord(e, opts));
}

export function decisionLogRecord(e: AccessEntry, opts: DecisionLogLineOptions = {}): DecisionLogRecord {
  const startMs = e.start.getTime();
  const url = opts.stripQueryTerms === true && e.method !== 'CONNECT' ? stripQueryTerms(e.url) : e.url;
  // Keys in DECISION_LOG_FIELDS order (object literal order is JSON order).
  return {
    time: Number.isFinite(startMs) ? e.start.toISOString() : null,
    client: e.client,
    client_port: e.clientPort,
    endpoint: e.endpoint,
    method: e.method,
    host: e.host,
    port: e.port,
    url,
    rule: e.rule,
    decision: e.decision,
    reason: e.reason,
    resolved: [...e.resolvedAddresses],
    upstream: e.upstreamAddress,
    status: e.status,
    bytes_to_client: e.bytesToClient,
    bytes_from_client: e.bytesFromClient,
    duration_ms: milliseconds(e.durationMs),
    resolve_ms: e.resolveMs === null ? null : milliseconds(e.resolveMs),
    connect_ms: e.connectMs === null ? null : milliseconds(e.connectMs),
  };
}

/** Whole milliseconds: sub-millisecond digits are noise in a log and cost bytes. */
function milliseconds(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}
