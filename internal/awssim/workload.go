package awssim

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// RoleConfig returns an aws.Config for a process running inside the
// simulated account with the credentials of roleARN, as a container gets
// its task role's (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html):
// calls are signed as the session arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION,
// judged by the role's policies as they are at each call, and are workload
// calls (Principal.Workload: no faults, no latency, not in Calls). The
// config's retryer never sleeps, so a simulated process can use it from
// inside the clock's timers.
func (w *World) RoleConfig(roleARN, session string) aws.Config {
	key := "ASIA" + token("role#"+roleARN+"#"+session, 16, alnumUpper)
	name := roleARN[strings.LastIndex(roleARN, "/")+1:]
	w.AddPrincipal(key, Principal{ARN: "arn:aws:sts::" + w.Account + ":assumed-role/" + name + "/" + session, Role: roleARN, Workload: true})
	cfg := w.ConfigFor(credentials.NewStaticCredentialsProvider(key, "simulated-task-role-secret", "simulated-task-role-session"))
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return cfg
}

// currentRolePolicy is a role's identity policy now (an empty one, which
// allows nothing, for a role that does not exist).
func (w *World) currentRolePolicy(roleARN string) *PolicyDocument {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	if r := w.roleByARN(roleARN); r != nil {
		return w.rolePolicy(r)
	}
	return &PolicyDocument{Version: "2012-10-17"}
}
