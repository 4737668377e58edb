/**
 * Health checks and their composition into one tree and one verdict.
 *
 * Every long-lived component (the tunnel engine, each endpoint, the hook
 * runner, a proxy listener...) offers a HealthCheck. The health server calls
 * composeHealth on every probe, so checks must be cheap and synchronous: they
 * read counters and flags the component already keeps, and never block on
 * I/O. GWLB probes every few seconds per load balancer node.
 */

/** A value that survives JSON.stringify unchanged. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** What a component says about itself. */
export interface HealthReport {
  /** False when the component cannot do its job (GWLB should send it no new flows). */
  healthy: boolean;
  /** Why it is unhealthy (or a short note when healthy). One line. */
  reason?: string;
  /** Statistics to show (counters, sizes, timeouts). JSON-able; bigints are accepted and shown as numbers. */
  details?: Readonly<Record<string, JsonValue | bigint>>;
  /** Sub-components, e.g. one per endpoint. A report is healthy only if all its children are. */
  children?: readonly NamedHealthReport[];
}

export interface NamedHealthReport extends HealthReport {
  name: string;
}

/** A component's health, read on demand. */
export interface HealthCheck {
  /** Shown in the tree and in reasons ("tunnel: ..."); unique within one server. */
  readonly name: string;
  /** Cheap and synchronous; may throw (the component is then reported unhealthy with the error). */
  check(): HealthReport;
}

/**
 * One node of the composed tree, normalised: every field present, `healthy`
 * already folded with the children's, details made JSON-safe.
 */
export interface ComponentHealth {
  name: string;
  healthy: boolean;
  /** The component's reason, or null when it gave none and is healthy. */
  reason: string | null;
  details: Record<string, JsonValue>;
  children: ComponentHealth[];
}

/** The composition of every check. */
export interface OverallHealth {
  /** True only when every component (and every child) is healthy. */
  healthy: boolean;
  /** One entry per unhealthy node: "<path>: <reason>", the path joined by '/', e.g. "tunnel/vpce-0a1b: gwi-x is down". */
  reasons: string[];
  components: ComponentHealth[];
}

/** Nesting deeper than this in details is cut (a report is a summary, not a dump). */
const MAX_DETAIL_DEPTH = 6;
/** Children deeper than this are cut: protects the server from a report that contains itself. */
const MAX_CHILD_DEPTH = 8;

export function composeHealth(checks: readonly HealthCheck[]): OverallHealth {
  const reasons: string[] = [];
  const components = checks.map((c) => {
    let report: unknown;
    try {
      report = c.check();
    } catch (err) {
      report = { healthy: false, reason: `check threw: ${errorMessage(err)}` };
    }
    return normalise(String(c.name), report, [], reasons, 0);
  });
  return { healthy: components.every((c) => c.healthy), reasons, components };
}

function normalise(name: string, raw: unknown, parents: string[], reasons: string[], depth: number): ComponentHealth {
  const path = [...parents, name];
  if (!isRecord(raw) || typeof raw.healthy !== 'boolean') {
    const reason = `check returned an invalid report (expected { healthy: boolean })`;
    reasons.push(`${path.join('/')}: ${reason}`);
    return { name, healthy: false, reason, details: {}, children: [] };
  }
  const ownReason = typeof raw.reason === 'string' && raw.reason !== '' ? oneLine(raw.reason) : null;
  // The node's own reason goes first, so parents list before their children.
  const at = reasons.length;
  const children: ComponentHealth[] = [];
  if (Array.isArray(raw.children) && depth < MAX_CHILD_DEPTH) {
    raw.children.forEach((child: unknown, i: number) => {
      const childName = isRecord(child) && typeof child.name === 'string' ? child.name : `#${i}`;
      children.push(normalise(childName, child, path, reasons, depth + 1));
    });
  }
  const healthy = raw.healthy && children.every((c) => c.healthy);
  let reason = ownReason;
  if (!raw.healthy) {
    reason ??= 'unhealthy';
    reasons.splice(at, 0, `${path.join('/')}: ${reason}`);
  } else if (!healthy) {
    // Healthy itself, unhealthy through a child: the child's entry says why.
    reason ??= `unhealthy children: ${children.filter((c) => !c.healthy).map((c) => c.name).join(', ')}`;
  }
  const details = isRecord(raw.details) ? jsonRecord(raw.details, 0, new Set()) : {};
  return { name, healthy, reason, details, children };
}

function jsonRecord(obj: Record<string, unknown>, depth: number, seen: Set<object>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  seen.add(obj);
  for (const [k, v] of Object.entries(obj)) {
    const j = toJson(v, depth + 1, seen);
    if (j !== undefined) out[k] = j;
  }
  seen.delete(obj);
  return out;
}

/** Best-effort JSON value: bigints become numbers (strings beyond 2^53), cycles and deep nesting become markers. */
function toJson(v: unknown, depth: number, seen: Set<object>): JsonValue | undefined {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      return Number.isFinite(v) ? v : String(v);
    case 'bigint':
      return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    case 'object': {
      if (v === null) return null;
      if (seen.has(v)) return '[cycle]';
      if (depth > MAX_DETAIL_DEPTH) return '[too deep]';
      if (v instanceof Date) return v.toISOString();
      if (Array.isArray(v)) {
        seen.add(v);
        const arr = v.map((x) => toJson(x, depth + 1, seen) ?? null);
        seen.delete(v);
        return arr;
      }
      return jsonRecord(v as Record<string, unknown>, depth, seen);
    }
    default:
      return undefined; // undefined, functions, symbols: JSON drops them too
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reasons end up in one-line outputs (status line, log fields). */
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return oneLine(err.message) || err.name;
  return oneLine(String(err));
}

/** The last reload of a file a service reads (policy, routes): when, why, and whether it was taken. */
export interface ReloadNote {
  at: Date;
  trigger: string;
  ok: boolean;
  error?: string;
}

/** A ReloadNote as health details. */
export function reloadDetails(last: ReloadNote | null): JsonValue {
  return last ? { at: last.at.toISOString(), trigger: last.trigger, ok: last.ok, error: last.error ?? null } : null;
}

/** A proxy's listener check: healthy while it is started and not draining; its stats and addresses as details. */
export function listenerHealth<Stats extends { [K in keyof Stats]: number }>(
  stats: Stats | undefined,
  stopped: boolean,
  addresses: readonly { host: string; port: number }[],
): HealthReport {
  if (!stats || stopped) return { healthy: false, reason: stopped ? 'draining' : 'not started' };
  const counters: Record<string, number> = { ...stats };
  return { healthy: true, details: { ...counters, addresses: addresses.map((a) => `${a.host}:${a.port}`) } };
}
