/**
 * The service owner's acceptance of given endpoints' connections, for a
 * service that requires acceptance and a consumer in the same account and
 * stack: without it a one-command deploy would end with endpoints stuck in
 * pendingAcceptance. A custom resource (AcceptVpcEndpointConnections) whose
 * role may accept connections on this one service and do nothing else.
 */
import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { acknowledge } from './nag';

/** The id CDK gives the one Lambda function behind every AwsCustomResource of a stack. */
const PROVIDER_ID = 'AWS679f53fac002430cb0da5b7982bd2287';

export interface ServiceToAccept {
  readonly serviceId: string;
  readonly serviceArn: string;
}

export interface EndpointAcceptanceProps {
  readonly service: ServiceToAccept;
  readonly endpointIds: readonly string[];
}

export class EndpointAcceptance extends Construct {
  readonly resource: cr.AwsCustomResource;

  constructor(scope: Construct, id: string, props: EndpointAcceptanceProps) {
    super(scope, id);
    const accept: cr.AwsSdkCall = {
      service: 'EC2',
      action: 'acceptVpcEndpointConnections',
      parameters: { ServiceId: props.service.serviceId, VpcEndpointIds: [...props.endpointIds] },
      physicalResourceId: cr.PhysicalResourceId.of(`${id}-accepted`),
    };
    this.resource = new cr.AwsCustomResource(this, 'Accept', {
      onCreate: accept,
      // Endpoints replaced by an update are new connections to accept too.
      onUpdate: accept,
      policy: cr.AwsCustomResourcePolicy.fromStatements([
        new iam.PolicyStatement({ actions: ['ec2:AcceptVpcEndpointConnections'], resources: [props.service.serviceArn] }),
      ]),
      // The SDK in the Lambda runtime has this call; downloading a newer one at deploy adds a failure point.
      installLatestAwsSdk: false,
    });
    const provider = Stack.of(this).node.tryFindChild(PROVIDER_ID);
    if (provider !== undefined) {
      acknowledge(
        provider,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        'AWSLambdaBasicExecutionRole on the CDK-managed custom resource function: it only writes its own CloudWatch logs.',
      );
      acknowledge(
        provider,
        'AwsSolutions-L1',
        'The runtime of the CDK-managed AwsCustomResource function is chosen by aws-cdk-lib, which tracks supported Node.js runtimes.',
      );
    }
  }
}
