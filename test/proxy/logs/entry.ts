/** One AccessEntry with every fact set, for the log tests to vary. */
import type { AccessEntry } from '../../../src/proxy/types';

export function entry(over: Partial<AccessEntry> = {}): AccessEntry {
  return {
    start: new Date('2026-11-22T02:39:45.123Z'),
    durationMs: 5,
    client: '10.0.1.5',
    clientPort: 50432,
    endpoint: 'vpce-0123456789abcdef0',
    method: 'GET',
    url: 'http://api.example.com/v1/items',
    host: 'api.example.com',
    port: 80,
    status: 200,
    squidResult: 'TCP_MISS',
    bytesToClient: 1251,
    bytesFromClient: 87,
    hierarchy: 'HIER_DIRECT',
    upstreamAddress: '203.0.113.20',
    contentType: 'text/plain; charset=utf-8',
    rule: 'api',
    decision: 'allow',
    reason: 'rule',
    resolvedAddresses: ['203.0.113.20'],
    resolveMs: 2,
    connectMs: 1,
    ...over,
  };
}
