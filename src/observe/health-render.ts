/**
 * The three bodies the health endpoint can answer with, as gwlbtun's flags
 * choose them: text (default), JSON (`-j`), status line only (`-s`).
 * The HTTP status is 200 when healthy and 503 when not, in every format.
 */
import type { ComponentHealth, JsonValue, OverallHealth } from './health';

export type HealthFormat = 'text' | 'json' | 'status';
export const HEALTH_FORMATS: readonly HealthFormat[] = ['text', 'json', 'status'];

export const HEALTH_SCHEMA = 'gatehouse.health/v1';

/**
 * The JSON health document (format 'json'), schema `gatehouse.health/v1`.
 * Every field is always present; consumers can rely on the shape. See
 * src/observe/README.md for an example.
 */
export interface HealthDocument {
  /** Always 'gatehouse.health/v1'; a change of shape gets a new version. */
  schema: typeof HEALTH_SCHEMA;
  /** The HTTP status the document was served with. */
  status: 200 | 503;
  /** status === 200. */
  healthy: boolean;
  /** When the checks ran, ISO 8601 UTC with milliseconds. */
  time: string;
  /** "<component path>: <reason>" for every unhealthy node, parents before children; [] when healthy. */
  reasons: string[];
  /** One per health check, in the order the server was given them. */
  components: HealthComponentDocument[];
}

export interface HealthComponentDocument {
  /** The check's name, or a child's (e.g. an endpoint id). */
  name: string;
  /** False when it or any of its children is unhealthy. */
  healthy: boolean;
  /** Why it is unhealthy (or a note); null when none was given. */
  reason: string | null;
  /** The component's statistics (counters, sizes, settings); {} when none. */
  details: Record<string, JsonValue>;
  /** Sub-components, same shape; [] when none. */
  children: HealthComponentDocument[];
}

export interface RenderedHealth {
  status: 200 | 503;
  contentType: string;
  body: string;
}

export function renderHealth(health: OverallHealth, format: HealthFormat, time: Date): RenderedHealth {
  const status = health.healthy ? 200 : 503;
  switch (format) {
    case 'json': {
      const doc: HealthDocument = {
        schema: HEALTH_SCHEMA,
        status,
        healthy: health.healthy,
        time: time.toISOString(),
        reasons: health.reasons,
        components: health.components,
      };
      return { status, contentType: 'application/json; charset=utf-8', body: `${JSON.stringify(doc)}\n` };
    }
    case 'status':
      return { status, contentType: 'text/plain; charset=utf-8', body: statusLine(health) };
    case 'text':
      return { status, contentType: 'text/plain; charset=utf-8', body: textPage(health, time) };
  }
}

/** `200 OK\n`, or `503 Service Unavailable: <reason>; <reason>\n`. */
export function statusLine(health: OverallHealth): string {
  return health.healthy ? '200 OK\n' : `503 Service Unavailable: ${health.reasons.join('; ')}\n`;
}

/**
 * A page for people, in the spirit of gwlbtun's text output:
 *
 *     Health: UNHEALTHY (503)
 *     Time: 2024-05-06T07:08:09.010Z
 *     Reasons:
 *       tunnel/vpce-0a1b: gwi-x is down
 *
 *     tunnel: healthy
 *       rx_packets = 12
 *       vpce-0a1b: UNHEALTHY (gwi-x is down)
 *         packets = 4
 *
 * Details are `key = value` lines, children `name: state` lines, each level
 * indented two more spaces.
 */
export function textPage(health: OverallHealth, time: Date): string {
  const lines = [
    `Health: ${health.healthy ? 'healthy (200)' : 'UNHEALTHY (503)'}`,
    `Time: ${time.toISOString()}`,
  ];
  if (health.reasons.length > 0) lines.push('Reasons:', ...health.reasons.map((r) => `  ${r}`));
  for (const c of health.components) {
    lines.push('');
    component(c, '', lines);
  }
  return `${lines.join('\n')}\n`;
}

function component(c: ComponentHealth, indent: string, lines: string[]): void {
  const state = c.healthy ? 'healthy' : 'UNHEALTHY';
  lines.push(`${indent}${flat(c.name)}: ${state}${c.reason === null ? '' : ` (${c.reason})`}`);
  for (const [k, v] of Object.entries(c.details)) {
    lines.push(`${indent}  ${flat(k)} = ${typeof v === 'string' ? flat(v) : JSON.stringify(v)}`);
  }
  for (const child of c.children) component(child, `${indent}  `, lines);
}

/** Keeps one item on one line of the page. */
function flat(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ');
}
