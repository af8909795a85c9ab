// Package iam holds the IAM kind of a stack: a role with its trust policy,
// attached managed policies and inline policies.
package iam

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/retry"
)

// KindRole is the IAM role kind.
const KindRole resource.KindName = "iam_role"

// RoleSpec is an IAM role with its trust policy, managed policies and inline
// policies (one per name).
type RoleSpec struct {
	Name        string
	Path        string
	Description string
	Trust       PolicyDocument
	// ManagedPolicyARNs are attached; nothing else may be attached.
	ManagedPolicyARNs []string
	Inline            map[string]PolicyDocument
}

// RoleModel is what a plan compares of a role. The policy documents are
// canonical (CanonicalPolicy), desired and live alike.
type RoleModel struct {
	Path  string `attr:"path,forcenew"`
	Trust string `attr:"trust_policy"`
	// Managed and InlineNames are every attached managed policy and every
	// inline policy the role has, ours or not: one added by hand (granting
	// the worker's task role more) is drift, and Update removes it. They
	// are not read for a role that is not ours (a conflict shows no fields).
	Managed     *resource.Set `attr:"managed_policies"`
	InlineNames *resource.Set `attr:"inline_policies"`
	// Inline are the documents of our inline policies, by name.
	Inline map[string]string `attr:"inline_policy"`
}

// Normalize canonicalises the policy documents.
func (m *RoleModel) Normalize() {
	m.Trust = CanonicalPolicy(m.Trust)
	for k, v := range m.Inline {
		m.Inline[k] = CanonicalPolicy(v)
	}
}

// Role is the IAM role kind.
var Role = resource.Define[RoleSpec, RoleModel, struct{}, awsapi.IAMAPI](KindRole, roleKind{},
	func(a resource.APIs) (awsapi.IAMAPI, error) { return a.AWS.IAM, nil })

type roleKind struct{}

type (
	x     = resource.Context[awsapi.IAMAPI]
	role  = resource.Typed[RoleSpec]
	found = resource.Found[RoleModel, struct{}]
)

// A role is not slept on after it is created or its policies change (it
// was 15 s, docs/research/aws-ecs.md §5.2's "short fixed delay"): the
// create waits only until IAM itself answers for the role (GetRole, as the
// Terraform provider's iam/role.go retries its read while NotFound within
// propagationTimeout). What a role propagating does to its user is retried
// where AWS reports it: ECS failing a first deployment's task launches with
// "ECS was unable to assume the role" (internal/kinds/ecs, roleNotAssumedYet),
// CreateService's and RegisterScalableTarget's role errors (their kinds'
// retries, §5). IAM is eventually consistent
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency);
// the simulated account models it (awssim Timings.IAMPropagation).

// iamPropagationTimeout is the Terraform provider's IAM budget
// (docs/research/aws-ecs.md §5: "We have settled on 2 minutes").
const iamPropagationTimeout = 2 * time.Minute

func (roleKind) Desired(r *role, refs resource.Refs) RoleModel {
	s := r.Spec
	names := slices.Sorted(maps.Keys(s.Inline))
	m := RoleModel{Path: s.Path, Trust: s.Trust.JSON(refs), Managed: set(s.ManagedPolicyARNs),
		InlineNames: set(names), Inline: map[string]string{}}
	for name, doc := range s.Inline {
		m.Inline[name] = doc.JSON(refs)
	}
	return m
}

func set(items []string) *resource.Set {
	s := resource.Set(items)
	return &s
}

func (k roleKind) Read(ctx context.Context, x *x, r *role) (*found, error) {
	return k.read(ctx, x, r.Spec.Name, slices.Sorted(maps.Keys(r.Spec.Inline)), r.Tags)
}

// read reads the role name; inline names the inline policies whose
// documents are compared (the spec's). desired are the tags that make it ours.
func (roleKind) read(ctx context.Context, x *x, name string, inline []string, desired map[string]string) (*found, error) {
	out, err := x.API.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String(name)})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("GetRole %s: %w", name, err)
	}
	arn := aws.ToString(out.Role.Arn)
	f := &found{ID: arn, ARN: arn, Tags: awstags.IAMMap(out.Role.Tags),
		Model:   RoleModel{Path: aws.ToString(out.Role.Path), Trust: aws.ToString(out.Role.AssumeRolePolicyDocument)},
		Outputs: resource.Outputs{"arn": arn, "name": name}}
	if !resource.IsOurs(desired, f.Tags) {
		// Not ours: the plan shows a conflict; do not read further.
		return f, nil
	}
	// After GetRole (which says whether the role is ours), the policy reads
	// need only the role's name: run them at once, so that a role reads in
	// 2 round trips. The inline policies are listed (so that one put by
	// hand shows) and ours are read by their deterministic names.
	var managed, names []string
	docs := make([]string, len(inline))
	got := make([]bool, len(inline))
	errs := make([]error, 2+len(inline))
	// A role deleted since GetRole has no policies: not an error.
	ignoreNotFound := func(err error) error {
		if awserr.IsNotFound(err) {
			return nil
		}
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		var err error
		managed, err = attachedPolicyARNs(ctx, x, name)
		errs[0] = ignoreNotFound(err)
	})
	wg.Go(func() {
		var err error
		names, err = inlinePolicyNames(ctx, x, name)
		errs[1] = ignoreNotFound(err)
	})
	for i, p := range inline {
		wg.Go(func() {
			out, err := x.API.GetRolePolicy(ctx, &awsiam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(p)})
			switch {
			case awserr.IsNotFound(err):
			case err != nil:
				errs[2+i] = fmt.Errorf("GetRolePolicy %s/%s: %w", name, p, err)
			default:
				docs[i], got[i] = aws.ToString(out.PolicyDocument), true
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	f.Model.Managed, f.Model.InlineNames, f.Model.Inline = set(managed), set(names), map[string]string{}
	for i, p := range inline {
		if got[i] {
			f.Model.Inline[p] = docs[i]
		}
	}
	return f, nil
}

// createRetryable: docs/research/aws-ecs.md §5 (iam/role.go retryCreateRole).
var createRetryable = awserr.AnyOf(awserr.CodeWithMessage("MalformedPolicyDocument", "Invalid principal"), awserr.CodeWithMessage("ConcurrentModification"))

func (k roleKind) Create(ctx context.Context, x *x, r *role, refs resource.Refs) (resource.Outputs, error) {
	s := r.Spec
	arn, err := retry.When(ctx, x.Waits(r.Address, iamPropagationTimeout, resource.RetryEvery), "CreateRole", createRetryable,
		func() (string, error) {
			out, err := x.API.CreateRole(ctx, &awsiam.CreateRoleInput{
				RoleName:                 aws.String(s.Name),
				Path:                     aws.String(s.Path),
				Description:              aws.String(s.Description),
				AssumeRolePolicyDocument: aws.String(s.Trust.JSON(refs)),
				Tags:                     awstags.IAMList(r.Tags),
			})
			if err != nil {
				return "", err
			}
			return aws.ToString(out.Role.Arn), nil
		})
	var live *found
	fresh := false
	switch {
	case awserr.IsAlreadyExists(err):
		// A re-run after a crash: converge the existing role if it is ours.
		if live, err = k.Read(ctx, x, r); err != nil {
			return nil, err
		}
		if live == nil || !resource.IsOurs(r.Tags, live.Tags) {
			return nil, fmt.Errorf("IAM role %s %w", s.Name, resource.ErrNotOurs)
		}
		arn = live.ID
		live.Model = resource.Normalize(live.Model)
	case err != nil:
		return nil, fmt.Errorf("CreateRole %s: %w", s.Name, err)
	default:
		live, fresh = &found{ID: arn, Tags: r.Tags}, true
	}
	if err := converge(ctx, x, r, refs, live, fresh); err != nil {
		return nil, err
	}
	// docs/research/aws-ecs.md §5.2: CreateService does not validate the roles;
	// a role ECS cannot assume yet fails tasks later, which the ECS service
	// kind retries. Wait until IAM answers for it.
	if err := awsiam.NewRoleExistsWaiter(x.API).Wait(ctx, &awsiam.GetRoleInput{RoleName: aws.String(s.Name)}, x.Wait(iamPropagationTimeout)); err != nil {
		return nil, fmt.Errorf("wait for IAM role %s: %w", s.Name, err)
	}
	return resource.Outputs{"arn": arn, "name": s.Name}, nil
}

// converge makes the role's trust policy, managed and inline policies and
// tags the desired ones, changing only what differs from have (a role just
// created has only its trust policy and tags).
func converge(ctx context.Context, x *x, r *role, refs resource.Refs, have *found, fresh bool) error {
	s := r.Spec
	want := resource.Normalize(roleKind{}.Desired(r, refs))
	if !fresh && have.Model.Trust != want.Trust {
		if _, err := x.API.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{
			RoleName: aws.String(s.Name), PolicyDocument: aws.String(s.Trust.JSON(refs))}); err != nil {
			return fmt.Errorf("UpdateAssumeRolePolicy %s: %w", s.Name, err)
		}
	}
	var attached, inline []string
	if m := have.Model.Managed; m != nil {
		attached = *m
	}
	if n := have.Model.InlineNames; n != nil {
		inline = *n
	}
	for _, p := range s.ManagedPolicyARNs {
		if !slices.Contains(attached, p) {
			if _, err := x.API.AttachRolePolicy(ctx, &awsiam.AttachRolePolicyInput{RoleName: aws.String(s.Name), PolicyArn: aws.String(p)}); err != nil {
				return fmt.Errorf("AttachRolePolicy %s %s: %w", s.Name, p, err)
			}
		}
	}
	for _, p := range attached {
		if !slices.Contains(s.ManagedPolicyARNs, p) {
			if _, err := x.API.DetachRolePolicy(ctx, &awsiam.DetachRolePolicyInput{RoleName: aws.String(s.Name), PolicyArn: aws.String(p)}); err != nil && !awserr.IsNotFound(err) {
				return fmt.Errorf("DetachRolePolicy %s %s: %w", s.Name, p, err)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Inline)) {
		if doc, ok := have.Model.Inline[name]; ok && doc == want.Inline[name] {
			continue
		}
		doc := s.Inline[name].JSON(refs)
		if strings.Contains(doc, plan.Unknown) {
			return fmt.Errorf("inline policy %s of %s names a resource that does not exist yet", name, s.Name)
		}
		if _, err := x.API.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{
			RoleName: aws.String(s.Name), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)}); err != nil {
			return fmt.Errorf("PutRolePolicy %s/%s: %w", s.Name, name, err)
		}
	}
	// Inline policies that are not ours were put by someone else: delete
	// them (never ours, which are rewritten above when they differ).
	for _, name := range inline {
		if _, ours := s.Inline[name]; ours {
			continue
		}
		if _, err := x.API.DeleteRolePolicy(ctx, &awsiam.DeleteRolePolicyInput{RoleName: aws.String(s.Name), PolicyName: aws.String(name)}); err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DeleteRolePolicy %s/%s: %w", s.Name, name, err)
		}
	}
	return awstags.IAMRole(x.API).Apply(ctx, s.Name, resource.Tags(r.Tags, have.Tags))
}

func (roleKind) Update(ctx context.Context, x *x, r *role, d *resource.Delta[RoleModel, struct{}], refs resource.Refs) (resource.Outputs, error) {
	if err := converge(ctx, x, r, refs, d.Found, false); err != nil {
		return nil, err
	}
	return d.Found.Outputs, nil
}

func (roleKind) Delete(ctx context.Context, x *x, r *role, _ *found) error {
	name := aws.String(r.Name)
	// docs/research/aws-ecs.md §5 (iam/role.go deleteRole): detach managed,
	// delete inline, then DeleteRole retrying DeleteConflict. deploybot
	// never adds instance profiles.
	managed, err := attachedPolicyARNs(ctx, x, r.Name)
	if awserr.IsNotFound(err) {
		return nil // already gone
	}
	if err != nil {
		return err
	}
	for _, p := range managed {
		if _, err := x.API.DetachRolePolicy(ctx, &awsiam.DetachRolePolicyInput{RoleName: name, PolicyArn: aws.String(p)}); err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DetachRolePolicy %s: %w", r.Name, err)
		}
	}
	inline, err := inlinePolicyNames(ctx, x, r.Name)
	if err != nil && !awserr.IsNotFound(err) {
		return err
	}
	for _, p := range inline {
		if _, err := x.API.DeleteRolePolicy(ctx, &awsiam.DeleteRolePolicyInput{RoleName: name, PolicyName: aws.String(p)}); err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DeleteRolePolicy %s/%s: %w", r.Name, p, err)
		}
	}
	err = retry.Do(ctx, x.Waits(r.Address, iamPropagationTimeout, resource.RetryEvery), "DeleteRole", awserr.CodeWithMessage("DeleteConflict"), func() error {
		_, err := x.API.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: name})
		return err
	})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeleteRole %s: %w", r.Name, err)
	}
	return nil
}

// ARNTypes and Adopt: a role of the environment that its stack no longer
// has (inventory.List finds it by path and name) is read by its name and
// deleted with what is attached to it.
func (roleKind) ARNTypes() []string { return []string{"iam:role"} }

func (k roleKind) Adopt(ctx context.Context, x *x, arn string) (*role, *found, error) {
	name := arn[strings.LastIndex(arn, "/")+1:]
	f, err := k.read(ctx, x, name, nil, nil)
	if err != nil || f == nil {
		return nil, nil, err
	}
	return &role{Name: name, Spec: &RoleSpec{Name: name, Path: f.Model.Path}}, f, nil
}

// attachedPolicyARNs lists every managed policy attached to the role, all
// pages (IAM pages with Marker/IsTruncated).
func attachedPolicyARNs(ctx context.Context, x *x, role string) ([]string, error) {
	var arns []string
	p := awsiam.NewListAttachedRolePoliciesPaginator(x.API, &awsiam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ListAttachedRolePolicies %s: %w", role, err)
		}
		for _, a := range page.AttachedPolicies {
			arns = append(arns, aws.ToString(a.PolicyArn))
		}
	}
	return arns, nil
}

// inlinePolicyNames lists the names of every inline policy of the role, all
// pages.
func inlinePolicyNames(ctx context.Context, x *x, role string) ([]string, error) {
	var names []string
	p := awsiam.NewListRolePoliciesPaginator(x.API, &awsiam.ListRolePoliciesInput{RoleName: aws.String(role)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ListRolePolicies %s: %w", role, err)
		}
		names = append(names, page.PolicyNames...)
	}
	return names, nil
}
