package awssim

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func init() {
	Handle(func(ctx context.Context, w *World, in *sts.GetCallerIdentityInput) (*sts.GetCallerIdentityOutput, error) {
		p := PrincipalOf(ctx).ARN
		user := "AIDASIMULATED"
		if s, ok := w.stsSessions()[p]; ok {
			user = s.UserID // an assumed-role session: "AROA...:session"
		}
		return &sts.GetCallerIdentityOutput{Account: aws.String(w.Account), Arn: aws.String(p), UserId: aws.String(user)}, nil
	})
}

// anonymousPrincipal signs nothing: only the STS calls that take no
// credentials (AssumeRoleWithWebIdentity) are allowed without a key.
var anonymousPrincipal = Principal{ARN: "anonymous", Policy: &PolicyDocument{Version: "2012-10-17", Statement: []Statement{{
	Effect: "Allow", Action: StringList{"sts:AssumeRoleWithWebIdentity"}, Resource: StringList{"*"},
}}}}
