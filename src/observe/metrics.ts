/**
 * Native counter blocks as Prometheus metrics.
 *
 * A native engine's counters are a live BigUint64Array over native memory
 * (src/native/binding.ts). Nothing is copied per packet: each metric carries
 * a prom-client `collect()` callback that reads the current values of every
 * registered block at scrape time. Blocks come and go (one per endpoint);
 * each scrape rebuilds the series from the blocks present then, so a removed
 * endpoint's series disappear.
 *
 * Names: `<prefix><counter name>` for gauges, `<prefix><counter name>_total`
 * for counters (the Prometheus convention for monotonic values).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { NativeCounters } from '../native/binding';
import { expected } from '../validate';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export interface CounterBlockSetOptions<L extends string = never> {
  /** e.g. 'gatehouse_tunnel_' */
  prefix: string;
  /** HELP text: one string for all, or per counter name (missing names fall back to the name itself). */
  help: string | Readonly<Record<string, string>>;
  /** Counter names that are levels, not monotonic totals (e.g. flows_active): exported as gauges. */
  gauges?: readonly string[];
  /** Label names every block of this set carries, e.g. ['endpoint']. */
  labelNames?: readonly L[];
}

interface Entry {
  labels: Record<string, string>;
  block: NativeCounters;
  /** Index in block.values of each metric's counter name, -1 when the block lacks it. */
  indexOf: Map<string, number>;
}

/**
 * A family of counter blocks with the same label names, exported under one
 * prefix. add() / remove() as components start and stop; close() unregisters
 * every metric of the set.
 */
export class CounterBlockSet<L extends string = never> {
  private readonly entries = new Map<string, Entry>();
  private readonly metrics = new Map<string, Counter<string> | Gauge<string>>();
  private readonly labelNames: readonly string[];
  private readonly gauges: ReadonlySet<string>;

  constructor(
    private readonly registry: Registry,
    private readonly options: CounterBlockSetOptions<L>,
  ) {
    if (!METRIC_NAME.test(options.prefix) && options.prefix !== '') {
      expected('a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)', 'prefix', JSON.stringify(options.prefix));
    }
    this.labelNames = options.labelNames ?? [];
    for (const l of this.labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__')) expected('a Prometheus label name', 'labelNames', JSON.stringify(l));
    }
    this.gauges = new Set(options.gauges ?? []);
  }

  /**
   * Exports `block` with `labels` (one value per label name). A block already
   * registered with the same labels is replaced (an endpoint re-created).
   */
  add(labels: Readonly<Record<L, string>>, block: NativeCounters): void {
    const values = this.labelValues(labels);
    if (block.names.length !== block.values.length) {
      expected(`${block.values.length} counter names`, 'block.names', JSON.stringify(`${block.names.length} names`));
    }
    for (const name of block.names) this.ensureMetric(name);
    const indexOf = new Map<string, number>();
    for (const name of this.metrics.keys()) indexOf.set(name, block.names.indexOf(name));
    this.entries.set(JSON.stringify(values), { labels: { ...labels }, block, indexOf });
  }

  /** Stops exporting the block with these labels; its series vanish from the next scrape. */
  remove(labels: Readonly<Record<L, string>>): boolean {
    return this.entries.delete(JSON.stringify(this.labelValues(labels)));
  }

  get size(): number {
    return this.entries.size;
  }

  /** Unregisters every metric this set created. */
  close(): void {
    for (const metric of this.metrics.values()) this.registry.removeSingleMetric(metricName(metric));
    this.metrics.clear();
    this.entries.clear();
  }

  private labelValues(labels: Readonly<Record<string, string>>): string[] {
    const keys = Object.keys(labels);
    if (keys.length !== this.labelNames.length || !this.labelNames.every((l) => typeof labels[l] === 'string')) {
      expected(`labels {${this.labelNames.join(', ')}}`, 'labels', JSON.stringify(`{${keys.join(', ')}}`));
    }
    return this.labelNames.map((l) => labels[l] as string);
  }

  private ensureMetric(name: string): void {
    if (this.metrics.has(name)) return;
    const gauge = this.gauges.has(name);
    const fullName = `${this.options.prefix}${name}${gauge ? '' : '_total'}`;
    if (!METRIC_NAME.test(fullName)) expected('a counter name usable in a Prometheus metric name', 'block.names', JSON.stringify(name));
    const help = typeof this.options.help === 'string' ? this.options.help : (this.options.help[name] ?? name);
    // `collect` runs at scrape time with `this` bound to the metric, so it reaches the blocks through this closure.
    const forEachValue = this.forEachValue.bind(this, name);
    if (this.registry.getSingleMetric(fullName) !== undefined) {
      expected('a metric name not yet registered', 'prefix + counter name', JSON.stringify(fullName));
    }
    const config = { name: fullName, help, labelNames: this.labelNames, registers: [this.registry] };
    const metric = gauge
      ? new Gauge<string>({
          ...config,
          collect(this: Gauge<string>) {
            this.reset();
            forEachValue((labels, v) => this.set(labels, v));
          },
        })
      : new Counter<string>({
          ...config,
          collect(this: Counter<string>) {
            this.reset();
            forEachValue((labels, v) => this.inc(labels, v));
          },
        });
    this.metrics.set(name, metric);
    // Blocks added before this name existed do not have it (their index is -1).
    for (const e of this.entries.values()) e.indexOf.set(name, e.block.names.indexOf(name));
  }

  private forEachValue(name: string, emit: (labels: Record<string, string>, value: number) => void): void {
    for (const e of this.entries.values()) {
      const i = e.indexOf.get(name) ?? -1;
      // Prometheus values are float64: exact up to 2^53, which a packet counter takes decades to reach.
      if (i >= 0) emit(e.labels, Number(e.block.values[i]));
    }
  }
}

/** A single block, exported once; `remove()` the returned set's only entry or `close()` it when done. */
export function registerCounterBlock<L extends string = never>(
  registry: Registry,
  options: CounterBlockSetOptions<L> & { block: NativeCounters; labels?: Readonly<Record<L, string>> },
): CounterBlockSet<L> {
  const set = new CounterBlockSet<L>(registry, options);
  set.add(options.labels ?? ({} as Record<L, string>), options.block);
  return set;
}

function metricName(metric: Counter<string> | Gauge<string>): string {
  // prom-client keeps the configured name on the instance.
  return (metric as unknown as { name: string }).name;
}
