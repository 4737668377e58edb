import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildReport, formatReport } from '../../src/emu/report';

const base = {
  sent: 1000, sent_bytes: 168000, sent_malformed: 100, send_errors: 0, received: 950, received_bytes: 150000,
  valid: 890, invalid_not_from_target: 0, invalid_geneve: 5, invalid_unknown_flow: 0, invalid_header_mismatch: 0,
  invalid_inner_mismatch: 3, invalid_duplicate: 2, rx_overflow: 7, sender_done: 1,
  sent_malformed_bad_version: 60, returned_malformed_bad_version: 52, sent_malformed_cookie_missing: 40,
  invalid_geneve_truncated_header: 5,
};

test('report: loss counts good packets only; invalid broken down by reason; malformed per kind', () => {
  const latency = new BigUint64Array(1024);
  latency[100] = 10n; // all samples in one bucket
  const r = buildReport({ counters: base, latency, latencyMaxNs: 12_345, sendSeconds: 2, totalSeconds: 2.5, cpuSeconds: 0.5 });
  assert.equal(r.sent_good, 900);
  assert.equal(r.loss_pct, 1.111);
  assert.equal(r.invalid, 10);
  assert.deepEqual(r.invalid_by_reason, { geneve_truncated_header: 5, inner_mismatch: 3, duplicate: 2 });
  assert.deepEqual(r.malformed, { bad_version: { sent: 60, returned: 52 }, cookie_missing: { sent: 40, returned: 0 } });
  assert.equal(r.tx_pps, 500);
  assert.equal(r.socket_drops, 7);
  assert.equal(r.max_us, 12.3);
  assert.equal(r.cpu_pct, 20);
  assert.equal(r.good_all_returned, false);
  assert.ok(r.p50_us > 0 && r.p50_us === r.p99_us);
  const text = formatReport(r);
  assert.match(text, /loss {8}1\.111 %/);
  assert.match(text, /bad_version +60 {2}52/);
});
