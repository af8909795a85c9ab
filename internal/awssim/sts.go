package awssim

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func init() {
	Handle(func(ctx context.Context, w *World, in *sts.GetCallerIdentityInput) (*sts.GetCallerIdentityOutput, error) {
		p := PrincipalOf(ctx).ARN
		return &sts.GetCallerIdentityOutput{Account: aws.String(w.Account), Arn: aws.String(p), UserId: aws.String("AIDASIMULATED")}, nil
	})
}
