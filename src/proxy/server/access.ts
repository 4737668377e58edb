/**
 * One AccessEntry per request or tunnel, filled in as the request goes and
 * handed on exactly once when it ends, whichever way it ends.
 */
import { performance } from 'node:perf_hooks';
import type { AccessEntry } from '../types';
import type { ProxyDecision } from './options';

/** Who is asking, as the connection knows it (PROXY header source, else the TCP peer). */
export interface ClientIdentity {
  client: string;
  clientPort: number;
  endpoint: string | null;
}

export type AccessSink = (entry: AccessEntry) => void;

export class AccessRecord {
  readonly entry: AccessEntry;
  private startedAt = performance.now();
  private tookMs: number | null = null;
  private finished = false;

  constructor(
    private readonly sink: AccessSink,
    who: ClientIdentity,
    method: string,
    url: string,
  ) {
    this.entry = {
      start: new Date(),
      durationMs: 0,
      client: who.client,
      clientPort: who.clientPort,
      endpoint: who.endpoint,
      method,
      url,
      host: '',
      port: 0,
      status: 0,
      squidResult: 'NONE',
      bytesToClient: 0,
      bytesFromClient: 0,
      hierarchy: 'HIER_NONE',
      upstreamAddress: null,
      contentType: null,
      rule: null,
      decision: 'error',
      reason: null,
      resolvedAddresses: [],
      resolveMs: null,
      connectMs: null,
    };
  }

  /** The request began earlier than this record (epoch ms): its start and duration count from then. */
  backdate(epochMs: number): void {
    const earlier = Date.now() - epochMs;
    if (!(earlier > 0)) return;
    this.entry.start = new Date(epochMs);
    this.startedAt -= earlier;
  }

  /** The request took this long, as the relay measured it (its report may come well after its end). */
  took(ms: number): void {
    this.tookMs = ms;
  }

  decided(decision: ProxyDecision): void {
    this.entry.rule = decision.rule?.id ?? null;
    this.entry.decision = decision.action;
    this.entry.reason = decision.reason;
  }

  connected(address: string, connectMs: number): void {
    this.entry.hierarchy = 'HIER_DIRECT';
    this.entry.upstreamAddress = address;
    this.entry.connectMs = connectMs;
  }

  /** Hands the entry on; later calls do nothing. */
  finish(fields: Partial<AccessEntry>): void {
    if (this.finished) return;
    this.finished = true;
    Object.assign(this.entry, fields);
    this.entry.durationMs = Math.round(this.tookMs ?? performance.now() - this.startedAt);
    this.sink(this.entry);
  }
}
