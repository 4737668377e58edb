/**
 * VPC flow logs to CloudWatch Logs for every VPC the stacks create: the record
 * of what crossed the network that an appliance's own logs cannot give (flows
 * it never saw, rejected by security groups or routed around it).
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';

export function addFlowLogs(vpc: ec2.Vpc, retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH): ec2.FlowLog {
  const group = new logs.LogGroup(vpc, 'FlowLogGroup', { retention, removalPolicy: RemovalPolicy.DESTROY });
  return vpc.addFlowLog('FlowLogs', {
    destination: ec2.FlowLogDestination.toCloudWatchLogs(group),
    trafficType: ec2.FlowLogTrafficType.ALL,
  });
}
