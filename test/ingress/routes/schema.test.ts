import { test } from 'node:test';
import { refuses } from './helpers';

const SVC = 'my-svc-0123456789abcdef.7d67968.vpc-lattice-svcs.us-east-1.on.aws';

test('schema errors name file, line and column', () => {
  refuses('', 'routes.yaml:1:1: Expected a mapping with a routes key for the routes file but received an empty file');
  refuses('version: 2\nroutes: []\n', 'routes.yaml:1:10: Expected version 1 for version but received 2');
  refuses('routes: []\nextra: 1\n', 'routes.yaml:2:1: Expected one of version, routes for a top-level key but received "extra"');
  refuses('routes:\n  - host: a.example.com\n    upstrem: { service: x.example }\n', 'routes.yaml:3:5: Expected one of host, upstream, paths, sign, timeout_ms, tls, websocket, strip_authorization for a route key but received "upstrem"');
  refuses('routes:\n  - host: a.example.com\n', 'routes.yaml:2:5: Expected an upstream or a paths key for route 1 but received a route with neither');
  refuses('routes:\n  - upstream: { service: x.example }\n', 'routes.yaml:2:5: Expected a host key for route 1 but received a route without one');
  refuses('routes:\n  - host: .example.com\n    upstream: { service: x.example }\n', 'routes.yaml:2:11: Expected an exact host name (api.example.com) or a wildcard (*.example.com) for host but received ".example.com" (a leading-dot pattern: route the domain and *.example.com as two hosts)');
  refuses('routes:\n  - host: a.example.com\n    upstream: { service: x.example, url: http://x.example }\n', 'routes.yaml:3:15: Expected exactly one of service, url, rewrite for upstream but received service and url');
  refuses('routes:\n  - host: a.example.com\n    upstream: { service: x.example }\n    timeout_ms: 0\n', 'routes.yaml:4:17: Expected an integer from 1 to 3600000 for timeout_ms but received 0');
  refuses('routes:\n  - host: a.example.com\n    upstream: { service: x.example }\n    sign: yes\n', 'routes.yaml:4:11: Expected true or false for sign but received "yes"');
  refuses('routes:\n  - host: a.example.com\n    upstream: { url: ftp://x.example }\n', 'routes.yaml:3:22: Expected an http:// or https:// URL with a host and no credentials, query or fragment for url but received "ftp://x.example"');
  refuses('routes:\n  - host: a.example.com\n    upstream: { url: https://x.example }\n    tls: false\n', 'routes.yaml:4:10: Expected tls on as the url\'s scheme says for tls but received tls off');
  refuses('routes:\n  - host: a.example.com\n    upstream: { service: x.example }\n    tls: { verify: false, ca_file: ca.pem }\n', 'routes.yaml:4:36: Expected no ca_file when verify is false for ca_file but received both');
  refuses('routes:\n  - host: a.example.com\n    upstream: { service: x.example }\n    strip_authorization: false\n', 'routes.yaml:4:26: Expected strip_authorization true (or absent) on a signed route for strip_authorization but received false');
  refuses(`routes:\n  - host: A.example.com\n    upstream: { service: ${SVC} }\n  - host: a.example.com.\n    upstream: { service: x.example }\n`, 'routes.yaml:4:5: Expected a host not already routed (line 2) for host but received "a.example.com"');
  refuses('routes:\n  - host: w.example.com\n    paths:\n      - prefix: /a\n        upstream: { service: x.example }\n      - prefix: /a\n        upstream: { service: y.example }\n', 'routes.yaml:6:9: Expected a prefix not already routed (line 4) for prefix but received "/a"');
  refuses('routes:\n  - host: w.example.com\n    paths:\n      - prefix: api/\n        upstream: { service: x.example }\n', 'routes.yaml:4:17: Expected a path prefix starting with "/" (no query, fragment, spaces or dot segments) for prefix but received "api/"');
  refuses('routes:\n  - host: w.example.com\n    upstream: { service: x.example }\n    paths: []\n', 'routes.yaml:4:12: Expected either upstream or paths for route 1 but received both');
});

test('rewrite rules are checked against the host', () => {
  refuses('routes:\n  - host: localhost\n    upstream: { rewrite: first-dot-to-service }\n', 'routes.yaml:3:26: Expected a rewrite that applies to the host for rewrite but received "localhost" has no dot after its first label to rewrite');
  refuses('routes:\n  - host: "*.example.org"\n    upstream: { rewrite: { suffix: .example.com, to: .svc.internal } }\n', 'routes.yaml:3:26: Expected a suffix that names under *.example.org end in for suffix but received ".example.com"');
  refuses('routes:\n  - host: "*.example.org"\n    upstream: { rewrite: { suffix: example.org, to: .svc.internal } }\n', 'routes.yaml:3:36: Expected a domain suffix starting with "." (e.g. .example.org) for suffix but received "example.org"');
  refuses('routes:\n  - host: "*.example.org"\n    upstream: { rewrite: last-dot }\n', 'routes.yaml:3:26: Expected first-dot-to-service or { suffix, to } for rewrite but received "last-dot"');
});

test('websocket passthrough needs sign: false and a url upstream that is not Lattice', () => {
  refuses('routes:\n  - host: a.example.com\n    upstream: { url: http://127.0.0.1:8080 }\n    tls: false\n    websocket: passthrough\n', 'routes.yaml:5:16: Expected sign: false with websocket passthrough (Lattice does not carry WebSockets) for websocket but received a signed route');
  refuses('routes:\n  - host: a.example.com\n    upstream: { service: x.example }\n    sign: false\n    websocket: passthrough\n', 'routes.yaml:5:16: Expected a url upstream that is not a Lattice service with websocket passthrough (Lattice does not carry WebSockets) for websocket but received a service upstream');
  refuses(`routes:\n  - host: a.example.com\n    upstream: { url: https://${SVC} }\n    sign: false\n    websocket: passthrough\n`, 'routes.yaml:5:16: Expected a url upstream that is not a Lattice service with websocket passthrough (Lattice does not carry WebSockets) for websocket but received a Lattice url upstream');
  refuses('routes:\n  - host: a.example.com\n    upstream: { url: http://127.0.0.1:8080 }\n    sign: false\n    websocket: maybe\n', 'routes.yaml:5:16: Expected one of reject, passthrough for websocket but received "maybe"');
});
