/**
 * AWS credentials for signing Lattice requests: the default chain a proxy
 * runs under — environment, ECS container credentials, EC2 IMDSv2 — from
 * @aws-sdk/credential-providers, memoised, and refreshed before they expire so
 * that requests keep signing with valid keys while a refresh is in flight.
 *
 * IMDS is used in v2 mode only (a session token first, no v1 fallback): a
 * proxy that fronts untrusted clients must not depend on the v1 flow.
 */
import { fromEnv, fromHttp, fromInstanceMetadata } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { GatehouseError } from '../../errors';
import { checkInteger } from '../../validate';

export type CredentialSource = 'environment' | 'ecs' | 'imds';

export interface LatticeCredentialsOptions {
  /** Full URI of the ECS credentials endpoint (else AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI). */
  ecsEndpoint?: string;
  /**
   * IMDS base URL (else AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254).
   * The SDK reads this only from the environment, so giving it sets
   * AWS_EC2_METADATA_SERVICE_ENDPOINT for this process.
   */
  imdsEndpoint?: string;
  /** Per-request timeout of the ECS and IMDS calls (default 1000 ms). */
  timeoutMs?: number;
  /** Refresh this long before `expiration` (default 5 minutes). */
  refreshBeforeMs?: number;
  /** The time used to judge expiry; tests move it. */
  clock?: () => Date;
}

export interface CredentialsStatus {
  /** Credentials are held and not expired. */
  loaded: boolean;
  source?: CredentialSource;
  /** Absent for long-term (environment) keys. */
  expiration?: Date;
  lastRefresh?: Date;
  /** Why the last load or refresh failed, if it did. */
  lastError?: string;
}

export type LatticeCredentialProvider = AwsCredentialIdentityProvider & { status(): CredentialsStatus };

interface ChainStep {
  source: CredentialSource;
  /** Why the step is skipped, or undefined when it applies. */
  skipReason(): string | undefined;
  load(): Promise<AwsCredentialIdentity>;
}

const DEFAULT_REFRESH_BEFORE_MS = 5 * 60 * 1000;

function envFlagSet(value: string | undefined): boolean {
  return value !== undefined && value.toLowerCase() === 'true';
}

function chainSteps(opts: LatticeCredentialsOptions, timeoutMs: number): ChainStep[] {
  const env = process.env;
  return [
    {
      source: 'environment',
      skipReason: () => (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? undefined : 'AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set'),
      load: () => fromEnv()(),
    },
    {
      source: 'ecs',
      skipReason: () =>
        opts.ecsEndpoint || env.AWS_CONTAINER_CREDENTIALS_FULL_URI || env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
          ? undefined
          : 'AWS_CONTAINER_CREDENTIALS_FULL_URI/_RELATIVE_URI not set',
      // Built per load: fromHttp reads the environment when it is created.
      load: () =>
        fromHttp({
          timeout: timeoutMs,
          maxRetries: 1,
          // An explicit endpoint wins over a relative URI in the environment ('' is "none" to the SDK).
          ...(opts.ecsEndpoint !== undefined
            ? { awsContainerCredentialsFullUri: opts.ecsEndpoint, awsContainerCredentialsRelativeUri: '' }
            : {}),
        })(),
    },
    {
      source: 'imds',
      skipReason: () => (envFlagSet(env.AWS_EC2_METADATA_DISABLED) ? 'AWS_EC2_METADATA_DISABLED=true' : undefined),
      load: () => fromInstanceMetadata({ timeout: timeoutMs, maxRetries: 1, ec2MetadataV1Disabled: true })(),
    },
  ];
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Tries each step in order; the first that yields credentials wins. */
async function loadFromChain(steps: ChainStep[]): Promise<{ identity: AwsCredentialIdentity; source: CredentialSource }> {
  const reasons: string[] = [];
  for (const step of steps) {
    const skip = step.skipReason();
    if (skip !== undefined) {
      reasons.push(`${step.source}: ${skip}`);
      continue;
    }
    try {
      return { identity: await step.load(), source: step.source };
    } catch (err) {
      reasons.push(`${step.source}: ${describe(err)}`);
    }
  }
  throw new GatehouseError('ERR_CREDENTIALS', `No AWS credentials from the default chain (${reasons.join('; ')})`);
}

export function latticeCredentials(opts: LatticeCredentialsOptions = {}): LatticeCredentialProvider {
  const timeoutMs = checkInteger('timeoutMs', opts.timeoutMs ?? 1000, 1, 60_000);
  const refreshBeforeMs = checkInteger('refreshBeforeMs', opts.refreshBeforeMs ?? DEFAULT_REFRESH_BEFORE_MS, 0, 24 * 3600 * 1000);
  const clock = opts.clock ?? (() => new Date());
  if (opts.imdsEndpoint !== undefined) process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = opts.imdsEndpoint;
  const steps = chainSteps(opts, timeoutMs);

  let current: { identity: AwsCredentialIdentity; source: CredentialSource; loadedAt: Date } | undefined;
  let refreshing: Promise<AwsCredentialIdentity> | undefined;
  let lastError: string | undefined;

  const expiresAt = (id: AwsCredentialIdentity): number => id.expiration?.getTime() ?? Number.POSITIVE_INFINITY;

  // One refresh at a time, whatever the number of requests waiting on it.
  const refresh = (): Promise<AwsCredentialIdentity> => {
    refreshing ??= loadFromChain(steps)
      .then(({ identity, source }) => {
        current = { identity, source, loadedAt: clock() };
        lastError = undefined;
        return identity;
      })
      .catch((err: unknown) => {
        lastError = describe(err);
        throw err;
      })
      .finally(() => {
        refreshing = undefined;
      });
    return refreshing;
  };

  const provider = async (): Promise<AwsCredentialIdentity> => {
    const now = clock().getTime();
    if (current && expiresAt(current.identity) - refreshBeforeMs > now) return current.identity;
    const pending = refresh();
    if (current && expiresAt(current.identity) > now) {
      // Still valid: keep signing with it while the refresh runs; a failed refresh shows in status().
      pending.catch(() => undefined);
      return current.identity;
    }
    return pending;
  };

  const status = (): CredentialsStatus => {
    const out: CredentialsStatus = { loaded: current !== undefined && expiresAt(current.identity) > clock().getTime() };
    if (current) {
      out.source = current.source;
      if (current.identity.expiration) out.expiration = current.identity.expiration;
      out.lastRefresh = current.loadedAt;
    }
    if (lastError !== undefined) out.lastError = lastError;
    return out;
  };

  return Object.assign(provider, { status });
}
