package awssim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/deploybot/deploybot/internal/iampolicy"
)

// ECSTaskExecutionRolePolicyARN is the AWS managed policy every Fargate task
// execution role gets (docs/research/aws-ecs.md §7).
const ECSTaskExecutionRolePolicyARN = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"

// awsManagedPolicies are the AWS managed policies the simulated account
// knows, with the documents AWS publishes for them.
var awsManagedPolicies = map[string]PolicyDocument{
	ECSTaskExecutionRolePolicyARN: {Version: "2012-10-17", Statement: []Statement{{
		Effect: "Allow",
		Action: StringList{"ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
			"ecr:BatchGetImage", "logs:CreateLogStream", "logs:PutLogEvents"},
		Resource: StringList{"*"},
	}}},
	"arn:aws:iam::aws:policy/AdministratorAccess": {Version: "2012-10-17", Statement: []Statement{{Effect: "Allow", Action: StringList{"*"}, Resource: StringList{"*"}}}},
	"arn:aws:iam::aws:policy/ReadOnlyAccess": {Version: "2012-10-17", Statement: []Statement{{Effect: "Allow",
		Action: StringList{"*:Describe*", "*:Get*", "*:List*"}, Resource: StringList{"*"}}}},
}

type iamRole struct {
	Name, Path, ARN, ID string
	Description         string
	TrustPolicy         string // as given (decoded); returned URL-encoded
	MaxSession          int32
	Created             time.Time
	TrustChanged        time.Time
	orderedTags
	Inline              map[string]string // policy name -> document as given
	Attached            []string          // managed policy ARNs in attach order
	PermissionsBoundary string
}

type oidcProvider struct {
	ARN, URL    string
	ClientIDs   []string
	Thumbprints []string
	Created     time.Time
	Tags        map[string]string
}

type iamState struct {
	Roles     map[string]*iamRole // by name
	Providers map[string]*oidcProvider
}

func (w *World) iam() *iamState {
	return State(w, "iam", func() *iamState {
		return &iamState{Roles: map[string]*iamRole{}, Providers: map[string]*oidcProvider{}}
	})
}

// iamEncode percent-encodes a policy document the way IAM returns documents
// (RFC 3986, everything but unreserved characters), which the SDK hands to the
// caller without decoding.
func iamEncode(doc string) string {
	var b strings.Builder
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// iamDecode accepts a document as a caller may send it: plain JSON or
// URL-encoded JSON (IAM accepts both).
func iamDecode(doc string) string {
	if !strings.HasPrefix(strings.TrimSpace(doc), "{") {
		if d, err := url.QueryUnescape(doc); err == nil {
			return d
		}
	}
	return doc
}

func malformed(msg string) error {
	return &iamtypes.MalformedPolicyDocumentException{Message: aws.String(msg)}
}

// trustDoc is an assume-role policy with principals and conditions.
type trustDoc struct {
	Version   string `json:"Version"`
	Statement []struct {
		Effect    string                           `json:"Effect"`
		Action    StringList                       `json:"Action"`
		Principal json.RawMessage                  `json:"Principal"`
		Condition map[string]map[string]StringList `json:"Condition"`
	} `json:"Statement"`
}

type principalSet struct {
	AWS       StringList `json:"AWS"`
	Service   StringList `json:"Service"`
	Federated StringList `json:"Federated"`
}

func parsePrincipal(raw json.RawMessage) principalSet {
	var p principalSet
	var star string
	if json.Unmarshal(raw, &star) == nil && star == "*" {
		return principalSet{AWS: StringList{"*"}}
	}
	_ = json.Unmarshal(raw, &p)
	return p
}

// validatePolicy checks a permissions or trust policy the way IAM's parser
// does for the mistakes deploybot could make.
func (w *World) validatePolicy(doc string, trust bool) error {
	var d trustDoc
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return malformed("This policy contains invalid Json")
	}
	if len(d.Statement) == 0 {
		var single struct{ Statement json.RawMessage }
		if json.Unmarshal([]byte(doc), &single) != nil || len(single.Statement) == 0 {
			return malformed("Syntax errors in policy.")
		}
	}
	if !trust {
		return nil
	}
	for _, s := range d.Statement {
		p := parsePrincipal(s.Principal)
		for _, f := range p.Federated {
			// A federated principal must name an OIDC provider of this account
			// (IAM answers "Invalid principal in policy").
			if strings.Contains(f, ":oidc-provider/") {
				if _, ok := w.iam().Providers[f]; !ok {
					return malformed(fmt.Sprintf("Invalid principal in policy: \"Federated\":\"%s\"", f))
				}
			}
		}
	}
	return nil
}

func roleARN(account, path, name string) string {
	return "arn:aws:iam::" + account + ":role" + path + name
}

func (w *World) roleByName(name string) (*iamRole, error) {
	r, ok := w.iam().Roles[name]
	if !ok {
		return nil, &iamtypes.NoSuchEntityException{Message: aws.String("The role with name " + name + " cannot be found.")}
	}
	return r, nil
}

// roleByARN finds a role from its ARN (path included).
func (w *World) roleByARN(arn string) *iamRole {
	i := strings.LastIndex(arn, "/")
	if i < 0 {
		return nil
	}
	r, ok := w.iam().Roles[arn[i+1:]]
	if !ok || r.ARN != arn {
		return nil
	}
	return r
}

func (r *iamRole) sdk() *iamtypes.Role {
	out := &iamtypes.Role{
		Arn: aws.String(r.ARN), RoleName: aws.String(r.Name), RoleId: aws.String(r.ID), Path: aws.String(r.Path),
		CreateDate: aws.Time(r.Created), AssumeRolePolicyDocument: aws.String(iamEncode(r.TrustPolicy)),
		MaxSessionDuration: aws.Int32(r.MaxSession),
	}
	if r.Description != "" {
		out.Description = aws.String(r.Description)
	}
	if r.PermissionsBoundary != "" {
		out.PermissionsBoundary = &iamtypes.AttachedPermissionsBoundary{PermissionsBoundaryArn: aws.String(r.PermissionsBoundary), PermissionsBoundaryType: iamtypes.PermissionsBoundaryAttachmentTypePolicy}
	}
	out.Tags = r.sdkTags()
	return out
}

func (r *iamRole) sdkTags() []iamtypes.Tag {
	return inTagOrder(r.orderedTags, func(k, v *string) iamtypes.Tag { return iamtypes.Tag{Key: k, Value: v} })
}

// RoleAssumableByECS says whether ECS can assume the role now: it exists, its
// trust policy lets ecs-tasks.amazonaws.com call sts:AssumeRole, and IAM has
// had IAMPropagation to spread it (docs/research/aws-ecs.md §5.2). Callers hold w.Mu.
func (w *World) RoleAssumableByECS(arn string) bool {
	return w.roleAssumableByECSAt(arn, w.Clock.Now())
}

func (w *World) roleAssumableByECSAt(arn string, at time.Time) bool {
	r := w.roleByARN(arn)
	if r == nil || at.Before(r.TrustChanged.Add(w.timings.IAMPropagation)) {
		return false
	}
	var d trustDoc
	if json.Unmarshal([]byte(r.TrustPolicy), &d) != nil {
		return false
	}
	for _, s := range d.Statement {
		if !strings.EqualFold(s.Effect, "Allow") || !actionMatches(s.Action, "sts:AssumeRole") {
			continue
		}
		for _, svc := range parsePrincipal(s.Principal).Service {
			if svc == "ecs-tasks.amazonaws.com" {
				return true
			}
		}
	}
	return false
}

// rolePolicy merges a role's inline and attached managed policies into one
// document, which evaluates like IAM's union of identity policies (explicit
// deny anywhere wins). Callers hold w.Mu.
func (w *World) rolePolicy(r *iamRole) *PolicyDocument {
	merged := &PolicyDocument{Version: "2012-10-17"}
	for _, name := range sortedKeys(r.Inline) {
		var d PolicyDocument
		if json.Unmarshal([]byte(r.Inline[name]), &d) == nil {
			merged.Statement = append(merged.Statement, d.Statement...)
		}
	}
	for _, arn := range r.Attached {
		merged.Statement = append(merged.Statement, awsManagedPolicies[arn].Statement...)
	}
	return merged
}

// RoleAllows evaluates the role's identity policies for one action on one
// resource (used by ECS for the execution role's secret access). Callers hold w.Mu.
func (w *World) RoleAllows(roleARN, action, resource string) bool {
	r := w.roleByARN(roleARN)
	if r == nil {
		return false
	}
	return PolicyAllows(w.rolePolicy(r), action, resource)
}

// rolePath returns an IAM role's path, for building its ARN (unknown roles
// live under "/"). Callers hold w.Mu.
func (w *World) rolePath(name string) (string, bool) {
	r, ok := w.iam().Roles[name]
	if !ok {
		return "", false
	}
	return r.Path, true
}

func init() {
	RegisterInventory(func(w *World) []Item {
		return append(listed(w.iam().Roles, func(_ string, r *iamRole) (Item, bool) {
			return Item{Service: "iam", Type: "role", ID: r.ARN, Tags: copyTags(r.Tags)}, true
		}), listed(w.iam().Providers, func(arn string, p *oidcProvider) (Item, bool) {
			return Item{Service: "iam", Type: "oidc-provider", ID: arn, Tags: copyTags(p.Tags)}, true
		})...)
	})

	Handle(func(ctx context.Context, w *World, in *iam.CreateRoleInput) (*iam.CreateRoleOutput, error) {
		s := w.iam()
		name := aws.ToString(in.RoleName)
		if name == "" || len(name) > 64 {
			return nil, Err("ValidationError", "1 validation error detected: Value at 'roleName' failed to satisfy constraint: Member must have length between 1 and 64")
		}
		if _, ok := s.Roles[name]; ok {
			return nil, &iamtypes.EntityAlreadyExistsException{Message: aws.String("Role with name " + name + " already exists.")}
		}
		path := aws.ToString(in.Path)
		if path == "" {
			path = "/"
		}
		if !strings.HasPrefix(path, "/") || !strings.HasSuffix(path, "/") {
			return nil, Err("ValidationError", "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.")
		}
		doc := iamDecode(aws.ToString(in.AssumeRolePolicyDocument))
		if err := w.validatePolicy(doc, true); err != nil {
			return nil, err
		}
		maxSession := aws.ToInt32(in.MaxSessionDuration)
		if maxSession == 0 {
			maxSession = 3600
		}
		if maxSession < 3600 || maxSession > 43200 {
			return nil, Err("ValidationError", "1 validation error detected: Value '"+fmt.Sprint(maxSession)+"' at 'maxSessionDuration' failed to satisfy constraint: Member must have value less than or equal to 43200")
		}
		now := w.Clock.Now()
		r := &iamRole{Name: name, Path: path, ARN: roleARN(w.Account, path, name),
			ID:          "AROA" + token("role:"+name+fmt.Sprint(w.NextSeq("iam-role")), 17, alnumUpper),
			Description: aws.ToString(in.Description), TrustPolicy: doc, MaxSession: maxSession,
			Created: now, TrustChanged: now, orderedTags: newOrderedTags(), Inline: map[string]string{},
			PermissionsBoundary: aws.ToString(in.PermissionsBoundary)}
		for _, t := range in.Tags {
			r.setTag(aws.ToString(t.Key), aws.ToString(t.Value))
		}
		s.Roles[name] = r
		return &iam.CreateRoleOutput{Role: r.sdk()}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.GetRoleInput) (*iam.GetRoleOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		return &iam.GetRoleOutput{Role: r.sdk()}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.DeleteRoleInput) (*iam.DeleteRoleOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		// IAM refuses while policies are attached or inline policies remain
		// (docs/research/aws-ecs.md §5 table: detach, delete inline, then DeleteRole).
		if len(r.Attached) > 0 {
			return nil, &iamtypes.DeleteConflictException{Message: aws.String("Cannot delete entity, must detach all policies first.")}
		}
		if len(r.Inline) > 0 {
			return nil, &iamtypes.DeleteConflictException{Message: aws.String("Cannot delete entity, must delete policies first.")}
		}
		delete(w.iam().Roles, r.Name)
		return &iam.DeleteRoleOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.UpdateAssumeRolePolicyInput) (*iam.UpdateAssumeRolePolicyOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		doc := iamDecode(aws.ToString(in.PolicyDocument))
		if err := w.validatePolicy(doc, true); err != nil {
			return nil, err
		}
		if doc != r.TrustPolicy {
			r.TrustPolicy = doc
			r.TrustChanged = w.Clock.Now()
		}
		return &iam.UpdateAssumeRolePolicyOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.TagRoleInput) (*iam.TagRoleOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		for _, t := range in.Tags {
			r.setTag(aws.ToString(t.Key), aws.ToString(t.Value))
		}
		return &iam.TagRoleOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.UntagRoleInput) (*iam.UntagRoleOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		r.untag(in.TagKeys)
		return &iam.UntagRoleOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.ListRoleTagsInput) (*iam.ListRoleTagsOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		return &iam.ListRoleTagsOutput{Tags: r.sdkTags()}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.AttachRolePolicyInput) (*iam.AttachRolePolicyOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		arn := aws.ToString(in.PolicyArn)
		if _, ok := awsManagedPolicies[arn]; !ok {
			return nil, &iamtypes.NoSuchEntityException{Message: aws.String("Policy " + arn + " does not exist or is not attachable.")}
		}
		for _, a := range r.Attached {
			if a == arn {
				return &iam.AttachRolePolicyOutput{}, nil // attaching twice is a no-op in IAM
			}
		}
		r.Attached = append(r.Attached, arn)
		return &iam.AttachRolePolicyOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.DetachRolePolicyInput) (*iam.DetachRolePolicyOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		arn := aws.ToString(in.PolicyArn)
		for i, a := range r.Attached {
			if a == arn {
				r.Attached = append(r.Attached[:i], r.Attached[i+1:]...)
				return &iam.DetachRolePolicyOutput{}, nil
			}
		}
		return nil, &iamtypes.NoSuchEntityException{Message: aws.String("Policy " + arn + " was not found.")}
	})

	Handle(func(ctx context.Context, w *World, in *iam.ListAttachedRolePoliciesInput) (*iam.ListAttachedRolePoliciesOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		page, truncated, marker, err := iamPage(r.Attached, in.Marker, in.MaxItems)
		if err != nil {
			return nil, err
		}
		out := &iam.ListAttachedRolePoliciesOutput{AttachedPolicies: []iamtypes.AttachedPolicy{}, IsTruncated: truncated, Marker: marker}
		for _, a := range page {
			out.AttachedPolicies = append(out.AttachedPolicies, iamtypes.AttachedPolicy{PolicyArn: aws.String(a), PolicyName: aws.String(a[strings.LastIndex(a, "/")+1:])})
		}
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.PutRolePolicyInput) (*iam.PutRolePolicyOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		doc := iamDecode(aws.ToString(in.PolicyDocument))
		if err := w.validatePolicy(doc, false); err != nil {
			return nil, err
		}
		r.Inline[aws.ToString(in.PolicyName)] = doc
		return &iam.PutRolePolicyOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.GetRolePolicyInput) (*iam.GetRolePolicyOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		name := aws.ToString(in.PolicyName)
		doc, ok := r.Inline[name]
		if !ok {
			return nil, &iamtypes.NoSuchEntityException{Message: aws.String("The role policy with name " + name + " cannot be found.")}
		}
		return &iam.GetRolePolicyOutput{RoleName: aws.String(r.Name), PolicyName: aws.String(name), PolicyDocument: aws.String(iamEncode(doc))}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.DeleteRolePolicyInput) (*iam.DeleteRolePolicyOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		name := aws.ToString(in.PolicyName)
		if _, ok := r.Inline[name]; !ok {
			return nil, &iamtypes.NoSuchEntityException{Message: aws.String("The role policy with name " + name + " cannot be found.")}
		}
		delete(r.Inline, name)
		return &iam.DeleteRolePolicyOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.ListRolePoliciesInput) (*iam.ListRolePoliciesOutput, error) {
		r, err := w.roleByName(aws.ToString(in.RoleName))
		if err != nil {
			return nil, err
		}
		page, truncated, marker, err := iamPage(sortedKeys(r.Inline), in.Marker, in.MaxItems)
		if err != nil {
			return nil, err
		}
		return &iam.ListRolePoliciesOutput{PolicyNames: page, IsTruncated: truncated, Marker: marker}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.CreateOpenIDConnectProviderInput) (*iam.CreateOpenIDConnectProviderOutput, error) {
		u := aws.ToString(in.Url)
		if !strings.HasPrefix(u, "https://") {
			return nil, &iamtypes.InvalidInputException{Message: aws.String("Invalid url: " + u)}
		}
		host := strings.TrimSuffix(strings.TrimPrefix(u, "https://"), "/")
		arn := "arn:aws:iam::" + w.Account + ":oidc-provider/" + host
		s := w.iam()
		if _, ok := s.Providers[arn]; ok {
			return nil, &iamtypes.EntityAlreadyExistsException{Message: aws.String("Provider with url " + u + " already exists.")}
		}
		p := &oidcProvider{ARN: arn, URL: host, ClientIDs: append([]string(nil), in.ClientIDList...),
			Thumbprints: append([]string(nil), in.ThumbprintList...), Created: w.Clock.Now(), Tags: map[string]string{}}
		for _, t := range in.Tags {
			p.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		s.Providers[arn] = p
		return &iam.CreateOpenIDConnectProviderOutput{OpenIDConnectProviderArn: aws.String(arn), Tags: in.Tags}, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.GetOpenIDConnectProviderInput) (*iam.GetOpenIDConnectProviderOutput, error) {
		arn := aws.ToString(in.OpenIDConnectProviderArn)
		p, ok := w.iam().Providers[arn]
		if !ok {
			return nil, &iamtypes.NoSuchEntityException{Message: aws.String("OpenIDConnect Provider not found for arn " + arn)}
		}
		out := &iam.GetOpenIDConnectProviderOutput{Url: aws.String(p.URL), ClientIDList: append([]string(nil), p.ClientIDs...),
			ThumbprintList: append([]string(nil), p.Thumbprints...), CreateDate: aws.Time(p.Created)}
		for _, k := range sortedKeys(p.Tags) {
			out.Tags = append(out.Tags, iamtypes.Tag{Key: aws.String(k), Value: aws.String(p.Tags[k])})
		}
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *iam.ListOpenIDConnectProvidersInput) (*iam.ListOpenIDConnectProvidersOutput, error) {
		arns := sortedKeys(w.iam().Providers)
		sort.Strings(arns)
		out := &iam.ListOpenIDConnectProvidersOutput{OpenIDConnectProviderList: []iamtypes.OpenIDConnectProviderListEntry{}}
		for _, a := range arns {
			out.OpenIDConnectProviderList = append(out.OpenIDConnectProviderList, iamtypes.OpenIDConnectProviderListEntry{Arn: aws.String(a)})
		}
		return out, nil
	})
}

func actionMatches(patterns []string, action string) bool {
	for _, p := range patterns {
		if iampolicy.Match(p, action, true) {
			return true
		}
	}
	return false
}

// iamPage pages an IAM list the way IAM's List* operations do: MaxItems
// defaults to 100 and may be 1 to 1000; a truncated page says IsTruncated
// and gives the Marker to pass for the next one (IAM API reference, "Using
// pagination"; the marker is opaque, here an offset).
func iamPage[T any](all []T, marker *string, maxItems *int32) (page []T, truncated bool, next *string, err error) {
	start := 0
	if m := aws.ToString(marker); m != "" {
		n, convErr := strconv.Atoi(strings.TrimPrefix(m, "mk-"))
		if convErr != nil || !strings.HasPrefix(m, "mk-") || n < 0 || n > len(all) {
			return nil, false, nil, &iamtypes.InvalidInputException{Message: aws.String("Invalid Marker: " + m)}
		}
		start = n
	}
	limit := 100
	if maxItems != nil {
		limit = int(*maxItems)
		if limit < 1 || limit > 1000 {
			return nil, false, nil, Err("ValidationError",
				"1 validation error detected: Value at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000")
		}
	}
	end := min(start+limit, len(all))
	page = append([]T{}, all[start:end]...)
	if end < len(all) {
		return page, true, aws.String("mk-" + strconv.Itoa(end)), nil
	}
	return page, false, nil, nil
}
