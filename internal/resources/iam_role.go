package resources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/iampolicy"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// RoleKind is an IAM role with its trust policy, attached managed policies
// and inline policies.
type RoleKind struct{}

// iamPropagationDelay is the pause after a role is created (or its policies
// change) before ECS may use it: docs/research/aws-ecs.md §5.2 ("a short fixed
// delay (about 10–15 s)" after iam.NewRoleExistsWaiter).
const iamPropagationDelay = 15 * time.Second

// iamPropagationTimeout is the Terraform provider's IAM budget
// (docs/research/aws-ecs.md §5: "We have settled on 2 minutes").
const iamPropagationTimeout = 2 * time.Minute

func (RoleKind) Desired(r *resource.Resource, refs resource.Refs) resource.Attrs {
	s := mustSpec[stack.RoleSpec](r)
	a := resource.Attrs{
		"path":             {Value: s.Path, ForceNew: true},
		"trust_policy":     {Value: canonicalPolicy(s.Trust.JSON(refs))},
		"managed_policies": {Value: jsonList(s.ManagedPolicyARNs)},
		// Every inline policy the role has, by name: one that is not ours
		// (put by hand, e.g. granting the worker's task role more) is drift,
		// and Update deletes it.
		"inline_policies": {Value: jsonList(sortedKeys(s.Inline))},
	}
	for name, doc := range s.Inline {
		a["inline_policy."+name] = resource.Attr{Value: canonicalPolicy(doc.JSON(refs))}
	}
	addTags(a, r.Tags)
	return a
}

type liveRole struct {
	arn     string
	tags    map[string]string
	managed []string // ARNs of every attached managed policy
	inline  []string // names of every inline policy, ours or not
}

func (RoleKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	s, err := specOf[stack.RoleSpec](r)
	if err != nil {
		return nil, err
	}
	out, err := x.AWS.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(s.Name)})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("GetRole %s: %w", s.Name, err)
	}
	role := out.Role
	tags := iamTags(role.Tags)
	lr := liveRole{arn: aws.ToString(role.Arn), tags: tags}
	a := resource.Attrs{
		"path":         {Value: aws.ToString(role.Path), ForceNew: true},
		"trust_policy": {Value: canonicalPolicy(aws.ToString(role.AssumeRolePolicyDocument))},
	}
	addTags(a, tags)
	live := &resource.Live{ID: lr.arn, Ours: isOurs(r, tags), Attrs: a,
		Outputs: resource.Outputs{"arn": lr.arn, "name": s.Name}}
	if !live.Ours {
		// Not ours: the plan shows a conflict; do not read further.
		live.Raw = lr
		return live, nil
	}
	// After GetRole (which says whether the role is ours), the policy reads
	// need only the role's name: run them at once, so that a role reads in
	// 2 round trips. The inline policies are listed (so that one put by
	// hand shows) and ours are read by their deterministic names.
	names := sortedKeys(s.Inline)
	docs := make([]string, len(names))
	found := make([]bool, len(names))
	errs := make([]error, 2+len(names))
	var wg sync.WaitGroup
	// A role deleted since GetRole has no policies: not an error.
	ignoreNotFound := func(err error) error {
		if awserr.IsNotFound(err) {
			return nil
		}
		return err
	}
	wg.Go(func() {
		var err error
		lr.managed, err = attachedPolicyARNs(ctx, x, s.Name)
		errs[0] = ignoreNotFound(err)
	})
	wg.Go(func() {
		var err error
		lr.inline, err = inlinePolicyNames(ctx, x, s.Name)
		errs[1] = ignoreNotFound(err)
	})
	for i, name := range names {
		wg.Go(func() {
			p, err := x.AWS.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(s.Name), PolicyName: aws.String(name)})
			switch {
			case awserr.IsNotFound(err):
			case err != nil:
				errs[2+i] = fmt.Errorf("GetRolePolicy %s/%s: %w", s.Name, name, err)
			default:
				docs[i], found[i] = aws.ToString(p.PolicyDocument), true
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a["managed_policies"] = resource.Attr{Value: jsonList(lr.managed)}
	a["inline_policies"] = resource.Attr{Value: jsonList(lr.inline)}
	for i, name := range names {
		if found[i] {
			a["inline_policy."+name] = resource.Attr{Value: canonicalPolicy(docs[i])}
		}
	}
	live.Raw = lr
	return live, nil
}

func (k RoleKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	s, err := specOf[stack.RoleSpec](r)
	if err != nil {
		return nil, err
	}
	var arn string
	// docs/research/aws-ecs.md §5 (iam/role.go retryCreateRole).
	err = retry(ctx, x, r.Address, "CreateRole", iamPropagationTimeout,
		anyOf(codeWithMessage("MalformedPolicyDocument", "Invalid principal"), codeWithMessage("ConcurrentModification")),
		func() error {
			out, err := x.AWS.IAM.CreateRole(ctx, &iam.CreateRoleInput{
				RoleName:                 aws.String(s.Name),
				Path:                     aws.String(s.Path),
				Description:              aws.String(s.Description),
				AssumeRolePolicyDocument: aws.String(s.Trust.JSON(refs)),
				Tags:                     iamTagList(r.Tags),
			})
			if err == nil {
				arn = aws.ToString(out.Role.Arn)
			}
			return err
		})
	var live *resource.Live
	switch {
	case awserr.IsAlreadyExists(err):
		// A re-run after a crash: converge the existing role if it is ours.
		if live, err = k.Read(ctx, x, r); err != nil {
			return nil, err
		}
		if live == nil || !live.Ours {
			return nil, fmt.Errorf("IAM role %s %w", s.Name, errConflict)
		}
		arn = live.ID
	case err != nil:
		return nil, fmt.Errorf("CreateRole %s: %w", s.Name, err)
	default:
		live = &resource.Live{ID: arn, Attrs: resource.Attrs{}, Raw: liveRole{arn: arn, tags: r.Tags}}
	}
	desired := k.Desired(r, refs)
	if err := k.converge(ctx, x, r, s, refs, desired, live); err != nil {
		return nil, err
	}
	// docs/research/aws-ecs.md §5.2: CreateService does not validate the roles;
	// a role ECS cannot assume yet fails tasks later. Wait until it exists,
	// then the propagation delay.
	if err := iam.NewRoleExistsWaiter(x.AWS.IAM).Wait(ctx, &iam.GetRoleInput{RoleName: aws.String(s.Name)}, x.Wait(iamPropagationTimeout)); err != nil {
		return nil, fmt.Errorf("wait for IAM role %s: %w", s.Name, err)
	}
	x.Say(r.Address, fmt.Sprintf("waiting %s for IAM propagation", iamPropagationDelay))
	if err := x.Clock.Sleep(ctx, iamPropagationDelay); err != nil {
		return nil, err
	}
	return resource.Outputs{"arn": arn, "name": s.Name}, nil
}

// converge makes the role's trust policy, managed and inline policies and
// tags equal to desired, changing only what differs from live.
func (RoleKind) converge(ctx context.Context, x *resource.Ctx, r *resource.Resource, s *stack.RoleSpec, refs resource.Refs, desired resource.Attrs, live *resource.Live) error {
	lr, _ := live.Raw.(liveRole)
	if t, ok := live.Attrs["trust_policy"]; ok && t.Value != desired["trust_policy"].Value {
		if _, err := x.AWS.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{
			RoleName: aws.String(s.Name), PolicyDocument: aws.String(s.Trust.JSON(refs))}); err != nil {
			return fmt.Errorf("UpdateAssumeRolePolicy %s: %w", s.Name, err)
		}
	}
	have := map[string]bool{}
	for _, p := range lr.managed {
		have[p] = true
	}
	want := map[string]bool{}
	for _, p := range s.ManagedPolicyARNs {
		want[p] = true
		if !have[p] {
			if _, err := x.AWS.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(s.Name), PolicyArn: aws.String(p)}); err != nil {
				return fmt.Errorf("AttachRolePolicy %s %s: %w", s.Name, p, err)
			}
		}
	}
	for _, p := range lr.managed {
		if !want[p] {
			if _, err := x.AWS.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(s.Name), PolicyArn: aws.String(p)}); err != nil && !awserr.IsNotFound(err) {
				return fmt.Errorf("DetachRolePolicy %s %s: %w", s.Name, p, err)
			}
		}
	}
	for _, name := range sortedKeys(s.Inline) {
		path := "inline_policy." + name
		if l, ok := live.Attrs[path]; ok && l.Value == desired[path].Value {
			continue
		}
		doc := s.Inline[name].JSON(refs)
		if strings.Contains(doc, plan.Unknown) {
			return fmt.Errorf("inline policy %s of %s names a resource that does not exist yet", name, s.Name)
		}
		if _, err := x.AWS.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
			RoleName: aws.String(s.Name), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)}); err != nil {
			return fmt.Errorf("PutRolePolicy %s/%s: %w", s.Name, name, err)
		}
	}
	// Inline policies that are not ours were put by someone else: delete
	// them (never ours, which are rewritten above when they differ).
	for _, name := range lr.inline {
		if _, ours := s.Inline[name]; ours {
			continue
		}
		if _, err := x.AWS.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(s.Name), PolicyName: aws.String(name)}); err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DeleteRolePolicy %s/%s: %w", s.Name, name, err)
		}
	}
	set, remove := tagChanges(r.Tags, lr.tags)
	if len(set) > 0 {
		if _, err := x.AWS.IAM.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(s.Name), Tags: iamTagList(set)}); err != nil {
			return fmt.Errorf("TagRole %s: %w", s.Name, err)
		}
	}
	if len(remove) > 0 {
		if _, err := x.AWS.IAM.UntagRole(ctx, &iam.UntagRoleInput{RoleName: aws.String(s.Name), TagKeys: remove}); err != nil {
			return fmt.Errorf("UntagRole %s: %w", s.Name, err)
		}
	}
	return nil
}

func (k RoleKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, refs resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	s, err := specOf[stack.RoleSpec](r)
	if err != nil {
		return nil, err
	}
	if err := k.converge(ctx, x, r, s, refs, k.Desired(r, refs), live); err != nil {
		return nil, err
	}
	if !onlyTags(changed) {
		// Policy changes propagate like new roles (docs/research/aws-ecs.md §5.2).
		if err := x.Clock.Sleep(ctx, iamPropagationDelay); err != nil {
			return nil, err
		}
	}
	return live.Outputs, nil
}

func (RoleKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ *resource.Live) error {
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
		if _, err := x.AWS.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: name, PolicyArn: aws.String(p)}); err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DetachRolePolicy %s: %w", r.Name, err)
		}
	}
	inline, err := inlinePolicyNames(ctx, x, r.Name)
	if err != nil && !awserr.IsNotFound(err) {
		return err
	}
	for _, p := range inline {
		if _, err := x.AWS.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: name, PolicyName: aws.String(p)}); err != nil && !awserr.IsNotFound(err) {
			return fmt.Errorf("DeleteRolePolicy %s/%s: %w", r.Name, p, err)
		}
	}
	err = retry(ctx, x, r.Address, "DeleteRole", iamPropagationTimeout, codeWithMessage("DeleteConflict"), func() error {
		_, err := x.AWS.IAM.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: name})
		return err
	})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeleteRole %s: %w", r.Name, err)
	}
	return nil
}

// attachedPolicyARNs lists every managed policy attached to the role, all
// pages (IAM pages with Marker/IsTruncated).
func attachedPolicyARNs(ctx context.Context, x *resource.Ctx, role string) ([]string, error) {
	var arns []string
	p := iam.NewListAttachedRolePoliciesPaginator(x.AWS.IAM, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
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
func inlinePolicyNames(ctx context.Context, x *resource.Ctx, role string) ([]string, error) {
	var names []string
	p := iam.NewListRolePoliciesPaginator(x.AWS.IAM, &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ListRolePolicies %s: %w", role, err)
		}
		names = append(names, page.PolicyNames...)
	}
	return names, nil
}

func iamTags(tags []iamtypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func iamTagList(tags map[string]string) []iamtypes.Tag {
	var out []iamtypes.Tag
	for _, k := range sortedTagKeys(tags) {
		out = append(out, iamtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// canonicalPolicy is the comparable form of a policy document: URL-decoded
// (IAM returns documents URL-encoded), single values and lists alike, every
// list sorted, statements in a fixed order, compact JSON. A document that
// does not parse is compared as it is.
func canonicalPolicy(doc string) string {
	if strings.HasPrefix(strings.TrimSpace(doc), "%") {
		if d, err := url.QueryUnescape(doc); err == nil {
			doc = d
		}
	}
	d, err := iampolicy.Parse(doc)
	if err != nil {
		return doc
	}
	if d.Version == "" {
		d.Version = iampolicy.Version2012
	}
	keyed := make([]struct {
		key string
		st  iampolicy.Statement
	}, len(d.Statement))
	for i, st := range d.Statement {
		sort.Strings(st.Action)
		sort.Strings(st.Resource)
		for _, v := range st.Principal {
			sort.Strings(v)
		}
		for _, m := range st.Condition {
			for _, v := range m {
				sort.Strings(v)
			}
		}
		b, _ := json.Marshal(st)
		keyed[i].key, keyed[i].st = string(b), st
	}
	sort.Slice(keyed, func(i, j int) bool { return keyed[i].key < keyed[j].key })
	for i := range keyed {
		d.Statement[i] = keyed[i].st
	}
	return d.JSON()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
