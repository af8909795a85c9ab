package iampolicy

// Implied lists the permissions AWS checks on the caller behind an API call,
// besides the call's own action (AWS Service Authorization Reference,
// "Dependent actions" column; docs/research/aws-ecs.md §5.2 for PassRole). The
// simulated account enforces them, and bootstrap grants them, from this one
// table.
var Implied = map[string][]string{
	// Cloud Map private DNS namespaces are Route 53 private hosted zones in the VPC.
	"servicediscovery:CreatePrivateDnsNamespace": {"route53:CreateHostedZone", "route53:GetHostedZone", "route53:ChangeResourceRecordSets", "ec2:DescribeVpcs"},
	"servicediscovery:DeleteNamespace":           {"route53:DeleteHostedZone", "route53:GetHostedZone"},
	"servicediscovery:CreateService":             {"route53:GetHostedZone", "route53:ChangeResourceRecordSets"},
	"servicediscovery:DeleteService":             {"route53:ChangeResourceRecordSets"},
	// Application Auto Scaling manages CloudWatch alarms for target tracking
	// and reads/updates the ECS service.
	"application-autoscaling:RegisterScalableTarget": {"ecs:DescribeServices", "ecs:UpdateService", "cloudwatch:DescribeAlarms"},
	"application-autoscaling:PutScalingPolicy":       {"cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms"},
	"application-autoscaling:DeleteScalingPolicy":    {"cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"},
}
