/**
 * The user data of a gatehouse appliance instance (Amazon Linux 2023): install
 * Node.js 22 and a toolchain (the packet core is a native addon built at
 * install time), install gatehouse from the `npm pack` tarball in S3, write
 * the systemd unit from packaging/ verbatim, configure the mode (hook or
 * policy), ship logs to CloudWatch, start the service.
 *
 * The instance needs outbound HTTPS at boot (dnf repositories, the npm
 * registry for gatehouse's JavaScript dependencies, node-gyp's Node headers).
 */
import { packagingFile } from '../shared/repo-files';
import { heredocFile, shellCommand, shellQuote } from '../shared/shell';

export type ApplianceMode = 'tunnel' | 'inspect';
export const APPLIANCE_MODES: readonly ApplianceMode[] = ['tunnel', 'inspect'];

/** The tunnel's hook scripts (examples/hooks/<name>.sh); each handles CREATE and DESTROY. */
export type TunnelHook = 'passthrough' | 'route' | 'nat' | 'overlapping-cidrs';
export const TUNNEL_HOOKS: readonly TunnelHook[] = ['passthrough', 'route', 'nat', 'overlapping-cidrs'];

/** Both units in packaging/ serve health on -p 8080; the target group checks this port. */
export const APPLIANCE_HEALTH_PORT = 8080;

export const EVE_LOG_PATH = '/var/log/gatehouse/eve.json';
const TARBALL_PATH = '/root/gatehouse.tgz';
const CLOUDWATCH_CONFIG_PATH = '/opt/aws/amazon-cloudwatch-agent/etc/gatehouse.json';
/** Heredoc delimiter of the unit file; the tests find the unit between it. */
export const UNIT_DELIMITER = 'GATEHOUSE_UNIT';

export interface ApplianceUserDataOptions {
  readonly mode: ApplianceMode;
  /** Tunnel mode: which example hook runs for every endpoint. */
  readonly hook: TunnelHook;
  /** Inspect mode: the policy (YAML text). */
  readonly policy: string;
  /** Where the tarball is: bucket, key and region (values or CloudFormation tokens). */
  readonly tarball: { readonly bucket: string; readonly key: string };
  readonly region: string;
  /** The GWLB's subnets' CIDR (--gwlb-cidr): only it may send GENEVE to the appliance. */
  readonly gwlbCidr: string;
  /** The appliance's flow idle timeout (-i); longer than GWLB's TCP idle timeout. */
  readonly flowIdleSeconds: number;
  /** nat hook: the interface masqueraded traffic leaves by (EGRESS_IF). */
  readonly egressInterface: string;
  /** CloudWatch Logs group the agent ships syslog (and EVE) to. */
  readonly logGroupName: string;
}

/** The name of the unit file in packaging/ and of the service. */
export function unitName(mode: ApplianceMode): string {
  return `gatehouse-${mode}.service`;
}

/** The user data script's lines (ec2.UserData.forLinux adds the shebang). */
export function applianceUserDataLines(o: ApplianceUserDataOptions): string[] {
  const service = `gatehouse-${o.mode}`;
  return [
    'set -euo pipefail',
    // Everything below also lands in the console output (cloud-init) for debugging.
    'exec > >(tee -a /var/log/gatehouse-install.log) 2>&1',
    shellCommand([
      'dnf',
      'install',
      '-y',
      'nodejs22',
      'nodejs22-npm',
      'gcc-c++',
      'make',
      'python3',
      'iproute',
      'iproute-tc',
      'iptables-nft',
      'rsyslog',
      'amazon-cloudwatch-agent',
    ]),
    // `node` is an alternatives link on AL2023: pin it to 22 (Node 20 left upstream support
    // in April 2026), the unit runs `env gatehouse`.
    'alternatives --set node /usr/bin/node-22',
    shellCommand(['aws', 's3', 'cp', '--region', o.region, `s3://${o.tarball.bucket}/${o.tarball.key}`, TARBALL_PATH]),
    shellCommand(['npm-22', 'install', '--global', '--no-audit', '--no-fund', TARBALL_PATH]),
    'PKG="$(npm-22 root --global)/gatehouse"',
    'install -d -m 755 /etc/gatehouse',
    ...modeLines(o),
    ...heredocFile(`/etc/systemd/system/${unitName(o.mode)}`, packagingFile(unitName(o.mode)), UNIT_DELIMITER),
    ...cloudWatchLines(o),
    'systemctl daemon-reload',
    shellCommand(['systemctl', 'enable', '--now', service]),
  ];
}

function modeLines(o: ApplianceUserDataOptions): string[] {
  const args = ['--gwlb-cidr', o.gwlbCidr, '-i', String(o.flowIdleSeconds), '--log-format', 'json'].join(' ');
  if (o.mode === 'inspect') {
    return [
      ...heredocFile('/etc/gatehouse/policy.yaml', o.policy, 'GATEHOUSE_POLICY'),
      'chmod 600 /etc/gatehouse/policy.yaml',
      ...heredocFile('/etc/default/gatehouse-inspect', `GATEHOUSE_INSPECT_ARGS=${args}\n`, 'GATEHOUSE_DEFAULTS'),
    ];
  }
  return [
    'install -d -m 755 /etc/gatehouse/hooks',
    `install -m 755 "$PKG/examples/hooks/${o.hook}.sh" /etc/gatehouse/hooks/create.sh`,
    'ln -sf create.sh /etc/gatehouse/hooks/destroy.sh',
    'install -m 644 "$PKG/packaging/sysctl.d/60-gatehouse-tunnel.conf" /etc/sysctl.d/',
    'sysctl --system',
    ...heredocFile(
      '/etc/default/gatehouse-tunnel',
      `GATEHOUSE_TUNNEL_ARGS=${args}\nEGRESS_IF=${o.egressInterface}\n`,
      'GATEHOUSE_DEFAULTS',
    ),
    ...(o.hook === 'nat' ? sourceDestCheckOffLines(o.region) : []),
  ];
}

/**
 * Two-arm NAT sends answers out of the instance with addresses that are not
 * its own: EC2 drops those unless the source/destination check is off. The
 * instance turns it off for itself (its role may do that to the fleet's
 * instances only).
 */
function sourceDestCheckOffLines(region: string): string[] {
  return [
    `IMDS_TOKEN="$(curl -sS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' http://169.254.169.254/latest/api/token)"`,
    `INSTANCE_ID="$(curl -sS -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" http://169.254.169.254/latest/meta-data/instance-id)"`,
    `aws ec2 modify-instance-attribute --region ${shellQuote(region)} --instance-id "$INSTANCE_ID" --no-source-dest-check`,
  ];
}

/**
 * gatehouse logs to the journal; rsyslog copies it to /var/log/messages (AL2023
 * has no syslog file by default), which the CloudWatch agent ships with the
 * EVE log. The unit stays exactly packaging/'s.
 */
function cloudWatchLines(o: ApplianceUserDataOptions): string[] {
  const files = [{ file_path: '/var/log/messages', log_group_name: o.logGroupName, log_stream_name: '{instance_id}/messages' }];
  if (o.mode === 'inspect') {
    files.push({ file_path: EVE_LOG_PATH, log_group_name: o.logGroupName, log_stream_name: '{instance_id}/eve' });
  }
  const config = JSON.stringify({ logs: { logs_collected: { files: { collect_list: files } } } }, null, 2);
  return [
    'systemctl enable --now rsyslog',
    ...heredocFile(CLOUDWATCH_CONFIG_PATH, `${config}\n`, 'GATEHOUSE_CLOUDWATCH'),
    shellCommand([
      '/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl',
      '-a',
      'fetch-config',
      '-m',
      'ec2',
      '-s',
      '-c',
      `file:${CLOUDWATCH_CONFIG_PATH}`,
    ]),
  ];
}
