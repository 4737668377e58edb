import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { resolveRoute } from '../../../src/ingress/routes';
import { table } from './helpers';

const t = table(`
routes:
  - host: '*.apps.example.com'
    upstream: { rewrite: first-dot-to-service }
  - host: '*.example.org'
    upstream: { rewrite: { suffix: .example.org, to: .svc.internal } }
  - host: www.example.com
    paths:
      - prefix: /api/
        upstream: { url: https://api.internal.example/v1 }
      - prefix: /a
        upstream: { service: a.svc.example }
`);

const LABELS = ['apps', 'example', 'org', 'com', 'www', 'a', 'API', '', '-', 'x'.repeat(70), '\u00e9', '*', '%2e', '[::1]', ':80', '.', ' '];
const host = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.array(fc.constantFrom(...LABELS), { maxLength: 8 }).map((labels) => labels.join('.')),
  fc.array(fc.constantFrom(...LABELS), { maxLength: 5 }).map((labels) => `${labels.join('.')}.apps.example.com`),
);
const path = fc.oneof(fc.string({ maxLength: 200 }), fc.array(fc.constantFrom('api', 'a', '..', '.', '%2e%2e', '%61', '?', '#', ''), { maxLength: 6 }).map((s) => `/${s.join('/')}`));

test('resolveRoute never throws, and answers a well-formed result', () => {
  fc.assert(
    fc.property(host, path, (h, p) => {
      const r = resolveRoute(t, h, p);
      if (r.ok) {
        assert.ok(r.upstream.port >= 1 && r.upstream.port <= 65535);
        assert.ok(r.signHost.length > 0);
        assert.ok(!/[\s/?#@]/.test(r.upstream.host), r.upstream.host);
      } else {
        assert.ok(r.status === 421 || r.status === 404);
        assert.ok(r.reason.length > 0 && r.reason.length < 600);
      }
    }),
    { numRuns: 2000 },
  );
});
