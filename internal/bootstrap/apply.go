package bootstrap

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/iampolicy"
)

// Apply creates or updates the provider, both roles and the missing
// service-linked roles with admin credentials. It is idempotent: run it
// again after editing the file. Progress lines go to say.
func (r *Result) Apply(ctx context.Context, c awsapi.IAMAPI, say func(string)) error {
	if err := ensureProvider(ctx, c, r.ProviderARN, say); err != nil {
		return err
	}
	for _, slr := range r.ServiceLinkedRoles {
		if err := ensureServiceLinkedRole(ctx, c, slr, say); err != nil {
			return err
		}
	}
	for _, role := range []Role{r.PlanRole, r.ApplyRole} {
		if err := ensureRole(ctx, c, role, say); err != nil {
			return err
		}
	}
	return nil
}

func ensureProvider(ctx context.Context, c awsapi.IAMAPI, arn string, say func(string)) error {
	out, err := c.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil {
		return fmt.Errorf("list OIDC providers: %w", err)
	}
	for _, p := range out.OpenIDConnectProviderList {
		if aws.ToString(p.Arn) == arn {
			say("oidc provider " + OIDCHost + ": exists")
			return nil
		}
	}
	_, err = c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url:          aws.String(OIDCURL),
		ClientIDList: []string{OIDCAudience},
		Tags:         []iamtypes.Tag{{Key: aws.String("managed-by"), Value: aws.String("deploybot")}},
	})
	if err != nil && !awserr.IsAlreadyExists(err) {
		return fmt.Errorf("create OIDC provider %s: %w", OIDCHost, err)
	}
	say("oidc provider " + OIDCHost + ": created")
	return nil
}

// ensureServiceLinkedRole creates an AWS service's role when the account
// does not have it yet. IAM answers a second creation with InvalidInput
// ("Service role name ... has been taken in this account"), which a race
// with another bootstrap, or with the service itself, can give: then the
// role is there, which is what was wanted.
func ensureServiceLinkedRole(ctx context.Context, c awsapi.IAMAPI, slr ServiceLinkedRole, say func(string)) error {
	exists := func() (bool, error) {
		_, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(slr.Name)})
		if awserr.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	ok, err := exists()
	if err != nil {
		return fmt.Errorf("read service-linked role %s: %w", slr.Name, err)
	}
	if ok {
		say("service-linked role " + slr.Name + ": exists")
		return nil
	}
	_, err = c.CreateServiceLinkedRole(ctx, &iam.CreateServiceLinkedRoleInput{AWSServiceName: aws.String(slr.Service)})
	if err != nil {
		if awserr.Code(err) != "InvalidInput" {
			return fmt.Errorf("create service-linked role %s for %s: %w", slr.Name, slr.Service, err)
		}
		if ok, rerr := exists(); rerr != nil || !ok {
			return fmt.Errorf("create service-linked role %s for %s: %w", slr.Name, slr.Service, err)
		}
	}
	say("service-linked role " + slr.Name + ": created")
	return nil
}

func ensureRole(ctx context.Context, c awsapi.IAMAPI, r Role, say func(string)) error {
	got, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(r.Name)})
	switch {
	case awserr.IsNotFound(err):
		_, err = c.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName:                 aws.String(r.Name),
			Path:                     aws.String(r.Path),
			Description:              aws.String(r.Description),
			AssumeRolePolicyDocument: aws.String(r.Trust.JSON()),
			Tags:                     []iamtypes.Tag{{Key: aws.String("managed-by"), Value: aws.String("deploybot")}},
		})
		if err != nil {
			return fmt.Errorf("create role %s: %w", r.Name, err)
		}
		say("role " + r.Name + ": created")
	case err != nil:
		return fmt.Errorf("read role %s: %w", r.Name, err)
	default:
		cur, perr := iampolicy.Parse(aws.ToString(got.Role.AssumeRolePolicyDocument))
		if perr != nil || cur.JSON() != r.Trust.JSON() {
			if _, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(r.Name), PolicyDocument: aws.String(r.Trust.JSON())}); err != nil {
				return fmt.Errorf("update trust policy of role %s: %w", r.Name, err)
			}
			say("role " + r.Name + ": trust policy updated")
		} else {
			say("role " + r.Name + ": exists")
		}
	}
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(r.Name), PolicyName: aws.String(r.InlinePolicyName), PolicyDocument: aws.String(r.Policy.JSON())}); err != nil {
		return fmt.Errorf("put policy %s on role %s: %w", r.InlinePolicyName, r.Name, err)
	}
	say("role " + r.Name + ": policy " + r.InlinePolicyName + " written")
	return nil
}

// Print writes what bootstrap would create, as documents an administrator
// can review or apply with their own tooling.
func (r *Result) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# deploybot bootstrap for environment %q, repository %s\n\n", r.Environment, r.Repo)
	fmt.Fprintf(&b, "## 1. GitHub OIDC identity provider (once per account)\n\n%s\n  url:       %s\n  client id: %s\n\n", r.ProviderARN, OIDCURL, OIDCAudience)
	for i, role := range []Role{r.PlanRole, r.ApplyRole} {
		fmt.Fprintf(&b, "## %d. Role %s\n\n%s\n%s\n\n### trust policy\n\n%s\n\n### inline policy %s\n\n%s\n\n",
			i+2, role.Name, role.ARN, role.Description, role.Trust.Indented(), role.InlinePolicyName, role.Policy.Indented())
	}
	fmt.Fprintf(&b, "## 4. Service-linked roles (once per account, created when missing)\n\n")
	for _, slr := range r.ServiceLinkedRoles {
		fmt.Fprintf(&b, "%s\n  aws iam create-service-linked-role --aws-service-name %s\n", slr.Name, slr.Service)
	}
	b.WriteString("\n")
	b.WriteString("Apply with admin credentials: deploybot bootstrap -e FILE --repo " + r.Repo + " --apply\n")
	_, err := io.WriteString(w, b.String())
	return err
}
