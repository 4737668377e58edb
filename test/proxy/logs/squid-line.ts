/**
 * A reader for Squid's native access.log line that mirrors its field order
 * (%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt), written
 * from Squid's documentation, used to judge both our lines and Squid's own.
 */
import assert from 'node:assert/strict';

export interface SquidLine {
  seconds: number;
  millis: number;
  /** %6tr as it stands in the line, padding included. */
  durationField: string;
  durationMs: number;
  client: string;
  result: string;
  status: string;
  bytes: number;
  method: string;
  url: string;
  user: string;
  hierarchy: string;
  upstream: string;
  mediaType: string;
}

// ts.tu, then %6tr (spaces to at least six columns), then eight single-space separated fields.
const SQUID_LINE =
  /^(\d+)\.(\d{3}) ( *\d+) (\S+) ([A-Z_-]+|-)\/(\d{3}) (\d+) (\S+) (\S+) (\S+) (HIER_[A-Z_]+)\/(\S+) (\S+)$/;

export function parseSquidLine(line: string): SquidLine {
  const m = SQUID_LINE.exec(line);
  assert.ok(m, `not a Squid native access.log line: ${JSON.stringify(line)}`);
  const durationField = m[3];
  assert.ok(durationField.length >= 6, `%6tr is at least six columns: ${JSON.stringify(durationField)}`);
  assert.ok(durationField.length === 6 || !durationField.startsWith(' '), `%6tr pads only up to six columns: ${JSON.stringify(durationField)}`);
  return {
    seconds: Number(m[1]),
    millis: Number(m[2]),
    durationField,
    durationMs: Number(durationField.trim()),
    client: m[4],
    result: m[5],
    status: m[6],
    bytes: Number(m[7]),
    method: m[8],
    url: m[9],
    user: m[10],
    hierarchy: m[11],
    upstream: m[12],
    mediaType: m[13],
  };
}
