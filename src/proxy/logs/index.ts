/** The proxy's logs: Squid's native access.log line, the JSON decision log, and both opened as LineLogs. */
export { field as squidField, squidAccessLine, stripQueryTerms, type SquidAccessLineOptions } from './squid-access-line';
export {
  DECISION_LOG_FIELDS,
  decisionLogLine,
  decisionLogRecord,
  type DecisionLogField,
  type DecisionLogLineOptions,
  type DecisionLogRecord,
} from './decision-log-line';
export { ProxyLogs, type ProxyLogsOptions, type ProxyLogsStats } from './proxy-logs';
