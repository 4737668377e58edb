/**
 * Every error gatehouse raises on purpose carries a stable `code`, listed
 * here once. Messages say what was expected and what was received.
 */
export const ERROR_CODES = {
  ERR_NATIVE_LOAD: 'the native addon could not be loaded',
  ERR_NATIVE_START: 'a native engine could not start (socket, TUN or thread)',
  ERR_NATIVE_CONTRACT: 'the native addon does not match src/native/binding.ts (rebuild it)',
  ERR_INVALID_ARG: 'a value passed to an API or a CLI flag is out of range',
  ERR_USAGE: 'the command line could not be understood',
  ERR_NEEDS_ROOT: 'the operation needs root or CAP_NET_ADMIN',
  ERR_LAB: 'a lab step failed',
  ERR_LAB_EXISTS: 'a lab with this name is already up',
  ERR_LAB_MISSING: 'no lab with this name is up',
  ERR_LISTEN: 'a server could not listen on its address and port (in use, or not allowed)',
  ERR_POLICY: 'a policy file (or a domain list it imports) is invalid; the message names file, line, column and reason',
  ERR_PROXY_PROTOCOL: 'a connection did not start with a valid PROXY protocol v1/v2 header in time',
  ERR_CREDENTIALS: 'no AWS credentials could be loaded from the default chain (environment, ECS, IMDSv2)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class GatehouseError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GatehouseError';
    this.code = code;
  }
}
