/** The constructs, for use in other CDK apps. */
export * from './inspection/appliance-user-data';
export * from './inspection/central-inspection-vpc';
export * from './inspection/gateway-load-balancer';
export * from './inspection/gwlb-endpoints';
export * from './inspection/inspected-vpc';
export * from './inspection/inspection-fleet';
export * from './ingress/lattice-ingress';
export * from './proxy/egress-proxy-consumer';
export * from './proxy/egress-proxy-fleet';
export * from './shared/endpoint-acceptance';
export * from './shared/endpoint-service';
export * from './shared/gatehouse-fargate-service';
export * from './shared/nag';
