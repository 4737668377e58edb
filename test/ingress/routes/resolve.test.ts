import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveRoute, type RouteTable } from '../../../src/ingress/routes';
import { table } from './helpers';

const SVC = 'my-svc-0123456789abcdef.7d67968.vpc-lattice-svcs.us-east-1.on.aws';

/** The upstream host and the matched route's host and prefix, or the status and reason. */
function where(t: RouteTable, host: string, path = '/'): string {
  const r = resolveRoute(t, host, path);
  return r.ok ? `${r.route.host} ${r.route.prefix} -> ${r.upstream.tls ? 'https' : 'http'}://${r.upstream.host}:${r.upstream.port}${r.upstream.pathPrefix ?? ''} sign-as ${r.signHost}` : `${r.status} ${r.reason}`;
}

test('a later exact host wins over an earlier wildcard, and the longest wildcard wins whatever the order', () => {
  const t = table(`
routes:
  - host: '*.example.com'
    upstream: { rewrite: first-dot-to-service }
  - host: '*.b.example.com'
    upstream: { service: deep.svc.example }
  - host: api.example.com
    upstream: { service: ${SVC} }
`);
  assert.equal(where(t, 'api.example.com'), `api.example.com / -> https://${SVC}:443 sign-as ${SVC}`);
  assert.equal(where(t, 'web.example.com'), '*.example.com / -> https://web-service.example.com:443 sign-as web-service.example.com');
  assert.equal(where(t, 'x.b.example.com'), '*.b.example.com / -> https://deep.svc.example:443 sign-as deep.svc.example');
  assert.equal(where(t, 'x.y.b.example.com'), '*.b.example.com / -> https://deep.svc.example:443 sign-as deep.svc.example');
  // A wildcard covers subdomains only, not the domain itself.
  assert.equal(where(t, 'example.com'), '421 No route for host "example.com" on this proxy');
});

test("the seed's rewrite on request hosts with ports, trailing dots and capitals", () => {
  const t = table(`
routes:
  - host: '*.apps.example.com'
    upstream: { rewrite: first-dot-to-service }
`);
  const expected = '*.apps.example.com / -> https://billing-service.apps.example.com:443 sign-as billing-service.apps.example.com';
  assert.equal(where(t, 'billing.apps.example.com'), expected);
  assert.equal(where(t, 'Billing.Apps.Example.COM'), expected);
  assert.equal(where(t, 'billing.apps.example.com.'), expected);
  assert.equal(where(t, 'billing.apps.example.com.:8443'), expected);
  assert.equal(where(t, 'BILLING.apps.example.com:443'), expected);
  assert.equal(where(t, 'a.b.apps.example.com'), '*.apps.example.com / -> https://a-service.b.apps.example.com:443 sign-as a-service.b.apps.example.com');
  assert.equal(where(t, `${'a'.repeat(60)}.apps.example.com`).split(':')[0], '421 No upstream for host "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.apps.example.com"');
});

test('suffix swap, and an exact host with the seed rule', () => {
  const t = table(`
routes:
  - host: '*.example.org'
    upstream: { rewrite: { suffix: .example.org, to: .svc.internal }, port: 8443 }
  - host: api.example.net
    upstream: { rewrite: first-dot-to-service }
    tls: false
`);
  assert.equal(where(t, 'shop.example.org'), '*.example.org / -> https://shop.svc.internal:8443 sign-as shop.svc.internal:8443');
  assert.equal(where(t, 'api.example.net'), 'api.example.net / -> http://api-service.example.net:80 sign-as api-service.example.net');
});

test('the longest path prefix wins; unmatched path is 404; unknown host is 421', () => {
  const t = table(`
routes:
  - host: www.example.com
    paths:
      - prefix: /
        upstream: { url: http://127.0.0.1:8080 }
        sign: false
        tls: false
      - prefix: /api/
        upstream: { url: https://api.internal.example/v1/ }
      - prefix: /api/admin
        upstream: { url: 'https://[2001:db8::1]:8443' }
  - host: docs.example.com
    paths:
      - prefix: /guide/
        upstream: { service: docs.svc.example }
`);
  assert.equal(where(t, 'www.example.com', '/index.html'), 'www.example.com / -> http://127.0.0.1:8080 sign-as 127.0.0.1:8080');
  assert.equal(where(t, 'www.example.com', '/api/users?x=1'), 'www.example.com /api/ -> https://api.internal.example:443/v1 sign-as api.internal.example');
  assert.equal(where(t, 'www.example.com', '/api/admin'), 'www.example.com /api/admin -> https://2001:db8::1:8443 sign-as [2001:db8::1]:8443');
  assert.equal(where(t, 'www.example.com', '/api/admin/x'), 'www.example.com /api/admin -> https://2001:db8::1:8443 sign-as [2001:db8::1]:8443');
  // /api/admin does not cover /api/administrators: prefixes without a trailing slash end at a segment.
  assert.equal(where(t, 'www.example.com', '/api/administrators'), 'www.example.com /api/ -> https://api.internal.example:443/v1 sign-as api.internal.example');
  // Another spelling of /api/admin picks the same route; dot segments are refused.
  assert.equal(where(t, 'www.example.com', '/%61pi/admin'), 'www.example.com /api/admin -> https://2001:db8::1:8443 sign-as [2001:db8::1]:8443');
  assert.equal(where(t, 'www.example.com', '/x/../api/admin'), '404 No route for path "/x/../api/admin" on host "www.example.com": not an absolute path without dot segments');
  assert.equal(where(t, 'docs.example.com', '/guide/intro'), 'docs.example.com /guide/ -> https://docs.svc.example:443 sign-as docs.svc.example');
  assert.equal(where(t, 'docs.example.com', '/other'), '404 No route for path "/other" on host "docs.example.com" (routed prefixes: /guide/)');
  assert.equal(where(t, 'docs.example.com', '*'), '404 No route for path "*" on host "docs.example.com": not an absolute path without dot segments');
  assert.equal(where(t, 'nope.example.com', '/'), '421 No route for host "nope.example.com" on this proxy');
  assert.equal(where(t, '', '/'), '421 The request has no Host; this proxy routes by host name');
  assert.equal(where(t, 'www.example.com/x', '/'), '421 No route for host "www.example.com/x": it is not a host name (the character "/")');
});

test('route options: defaults and overrides', () => {
  const t = table(`
routes:
  - host: a.example.com
    upstream: { service: a.svc.example }
  - host: b.example.com
    timeout_ms: 5000
    sign: false
    paths:
      - prefix: /x/
        upstream: { url: https://b.internal.example }
        tls: { verify: false }
      - prefix: /
        upstream: { url: https://b.internal.example }
        timeout_ms: 7000
        tls: { ca_file: /etc/ssl/ca.pem }
        strip_authorization: true
`);
  const a = resolveRoute(t, 'a.example.com', '/');
  assert.ok(a.ok);
  assert.deepEqual(
    { sign: a.route.sign, timeoutMs: a.route.timeoutMs, tls: a.route.tls, websocket: a.route.websocket, strip: a.route.stripAuthorization },
    { sign: true, timeoutMs: 30000, tls: { enabled: true, verify: true, caFile: null }, websocket: 'reject', strip: true },
  );
  const x = resolveRoute(t, 'b.example.com', '/x/1');
  assert.ok(x.ok);
  assert.deepEqual({ sign: x.route.sign, timeoutMs: x.route.timeoutMs, tls: x.route.tls, strip: x.route.stripAuthorization }, { sign: false, timeoutMs: 5000, tls: { enabled: true, verify: false, caFile: null }, strip: false });
  const root = resolveRoute(t, 'b.example.com', '/');
  assert.ok(root.ok);
  assert.deepEqual({ timeoutMs: root.route.timeoutMs, tls: root.route.tls, strip: root.route.stripAuthorization }, { timeoutMs: 7000, tls: { enabled: true, verify: true, caFile: '/etc/ssl/ca.pem' }, strip: true });
});
