/** The ingress access log: JSON or Apache combined lines. */
export { ACCESS_LOG_FORMATS, accessLine, combinedAccessLine, jsonAccessLine, type AccessLogFormat } from './access-line';
export { IngressAccessLog } from './access-log';
