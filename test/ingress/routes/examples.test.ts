import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadRoutes, resolveRoute } from '../../../src/ingress/routes';

// dist/test/ingress/routes -> the repository root.
const EXAMPLES = join(__dirname, '..', '..', '..', '..', 'examples', 'ingress');

test('examples/ingress/routes.yaml loads and routes as its comments say', async () => {
  const file = join(EXAMPLES, 'routes.yaml');
  const t = await loadRoutes(file);
  const up = (host: string, path = '/'): string => {
    const r = resolveRoute(t, host, path);
    return r.ok ? `${r.upstream.host}:${r.upstream.port} sign=${r.route.sign} ws=${r.route.websocket}` : `${r.status}`;
  };
  assert.equal(up('api.example.com'), 'my-svc-0123456789abcdef.7d67968.vpc-lattice-svcs.us-east-1.on.aws:443 sign=true ws=reject');
  assert.equal(up('billing.apps.example.com'), 'billing-service.apps.example.com:443 sign=true ws=reject');
  assert.equal(up('old.legacy.apps.example.com'), 'old.legacy.svc.internal:443 sign=true ws=reject');
  assert.equal(up('shop.example.org'), 'shop.svc.internal:443 sign=true ws=reject');
  assert.equal(up('www.example.com', '/api/v1'), 'api-svc.lattice.example:443 sign=true ws=reject');
  assert.equal(up('www.example.com', '/static/app.js'), 'assets.internal.example:8443 sign=false ws=reject');
  assert.equal(up('www.example.com', '/chat'), '127.0.0.1:8080 sign=false ws=passthrough');
  assert.equal(up('unknown.example.net'), '421');
  const statics = resolveRoute(t, 'www.example.com', '/static/x');
  assert.ok(statics.ok);
  assert.equal(statics.route.tls.caFile, join(EXAMPLES, 'internal-ca.pem'));
  assert.equal(statics.upstream.pathPrefix, '/www');
});
