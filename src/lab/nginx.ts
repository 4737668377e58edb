/**
 * nginx for the lab's internet host: HTTP :80 and HTTPS :443 on IPv4 and
 * IPv6, one server per site name (certificate chosen by SNI) answering a
 * short body that names the vhost, so a test can tell which site answered.
 * Every path nginx writes (pid, logs, temp dirs) is inside the lab's state
 * directory, and `daemon off` keeps it under our supervision.
 */
import { join } from 'node:path';
import type { CertificateFiles } from './certificates';
import { DEFAULT_CERT_NAME } from './certificates';

export interface NginxPaths {
  stateDir: string;
  conf: string;
  pid: string;
  errorLog: string;
  accessLog: string;
  tempDir: string;
}

export function nginxPaths(stateDir: string): NginxPaths {
  return {
    stateDir,
    conf: join(stateDir, 'nginx.conf'),
    pid: join(stateDir, 'nginx.pid'),
    errorLog: join(stateDir, 'nginx-error.log'),
    accessLog: join(stateDir, 'nginx-access.log'),
    tempDir: join(stateDir, 'nginx-temp'),
  };
}

/** The body a vhost answers; tests compare against it. */
export function siteBody(name: string): string {
  return `gatehouse lab: ${name}\n`;
}

function listenLines(isDefault: boolean): string[] {
  const flag = isDefault ? ' default_server' : '';
  return [
    `listen 80${flag};`,
    `listen [::]:80${flag};`,
    `listen 443 ssl${flag};`,
    `listen [::]:443 ssl${flag};`,
  ];
}

/** nginx's quoting: a double-quoted string with \ and " escaped. */
function quote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function serverBlock(certs: CertificateFiles): string[] {
  const isDefault = certs.name === DEFAULT_CERT_NAME;
  return [
    '  server {',
    ...listenLines(isDefault).map((line) => `    ${line}`),
    `    server_name ${isDefault ? '_' : certs.name};`,
    `    ssl_certificate ${quote(certs.cert)};`,
    `    ssl_certificate_key ${quote(certs.key)};`,
    '    location / {',
    `      return 200 ${quote(siteBody(isDefault ? 'default' : certs.name))};`,
    '    }',
    '  }',
  ];
}

export function nginxConfig(paths: NginxPaths, sites: readonly CertificateFiles[]): string {
  const temp = (what: string): string => quote(join(paths.tempDir, what));
  return [
    '# Written by gatehouse lab up; removed by gatehouse lab down.',
    'daemon off;',
    'worker_processes 1;',
    `pid ${quote(paths.pid)};`,
    `error_log ${quote(paths.errorLog)} warn;`,
    'events {',
    '  worker_connections 256;',
    '}',
    'http {',
    '  default_type text/plain;',
    `  access_log ${quote(paths.accessLog)};`,
    `  client_body_temp_path ${temp('body')};`,
    `  proxy_temp_path ${temp('proxy')};`,
    `  fastcgi_temp_path ${temp('fastcgi')};`,
    `  uwsgi_temp_path ${temp('uwsgi')};`,
    `  scgi_temp_path ${temp('scgi')};`,
    '  server_tokens off;',
    ...sites.flatMap(serverBlock),
    '}',
    '',
  ].join('\n');
}

/**
 * -e sets the error log before the config is read (nginx otherwise opens its
 * compiled-in path first); -p keeps relative paths inside the state dir.
 */
export function nginxArgv(paths: NginxPaths): string[] {
  return ['nginx', '-p', paths.stateDir, '-e', paths.errorLog, '-c', paths.conf];
}
