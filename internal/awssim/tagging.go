package awssim

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	tagging "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	taggingtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
)

// The Resource Groups Tagging API's GetResources, as the API reference
// documents it (https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html,
// https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_TagFilter.html),
// answered from the simulated services' inventory (inventory.go):
//
//   - TagFilters: up to 50 filters, each a key and up to 20 values. A
//     resource matches when it matches every filter (AND); it matches a
//     filter when it has the key with one of the values (OR), or with any
//     value when the filter lists none.
//   - ResourceTypeFilters: up to 100 "service[:resourceType]" strings, as
//     they appear in the resource's ARN ("ec2" is every EC2 type,
//     "ec2:security-group" only groups).
//   - ResourcesPerPage: 1 to 100. PaginationToken: opaque; an empty token in
//     the answer is the last page. A token is valid for 15 minutes
//     (PaginationTokenExpiredException) and only with the filters it was
//     issued for.
//   - Untagged resources are never returned ("GetResources does not return
//     untagged resources").
//   - IAM roles (and the IAM OIDC provider) are not returned: the API does
//     not cover IAM users, roles and groups
//     (https://github.com/aws/aws-sdk/issues/581,
//     https://github.com/cartography-cncf/cartography/pull/655 citing
//     https://docs.aws.amazon.com/ARG/latest/userguide/supported-resources.html#services-iam).
//   - Application Auto Scaling scalable targets are not returned: we found
//     no source saying the API covers them, so the simulated account does
//     not, and deploybot must not depend on it.
//   - ECS tasks are returned with the tags ECS propagated to them while they
//     have not stopped (resource type ecs:task).
//   - "Returns all the tagged or previously tagged resources": a deleted EC2
//     resource is still returned, with its last tags, for an hour after it
//     went (ghosts: https://github.com/boto/boto3/issues/3341,
//     https://github.com/boto/boto3/issues/1704 "about an hour",
//     https://github.com/aws/aws-cli/issues/4173; AWS's explanation:
//     https://github.com/aws/aws-sdk/issues/302). A client must check a
//     resource with its own service before it trusts that it exists.
//
// Compliance details (IncludeComplianceDetails, ExcludeCompliantResources)
// and ResourceARNList are not simulated: a request with them fails, so a
// test that starts using them fails instead of getting a made-up answer.

const (
	taggingMaxPerPage = 100
	taggingTokenTTL   = 15 * time.Minute
	taggingGhostTTL   = time.Hour
)

type taggingState struct {
	// seen are the resources an earlier GetResources could return, by ARN,
	// so that an EC2 one that goes lingers as a ghost.
	seen map[string]taggedResource
	// gone is when each ghost was first missed.
	gone map[string]time.Time
}

type taggedResource struct {
	ARN  string
	Tags map[string]string
}

func (w *World) tagging() *taggingState {
	return State(w, "tagging", func() *taggingState {
		return &taggingState{seen: map[string]taggedResource{}, gone: map[string]time.Time{}}
	})
}

func init() {
	Handle(func(ctx context.Context, w *World, in *tagging.GetResourcesInput) (*tagging.GetResourcesOutput, error) {
		w.advance()
		if len(in.ResourceARNList) > 0 || aws.ToBool(in.IncludeComplianceDetails) || aws.ToBool(in.ExcludeCompliantResources) {
			return nil, taggingInvalid("awssim: ResourceARNList and compliance details are not simulated")
		}
		if err := checkTagFilters(in.TagFilters); err != nil {
			return nil, err
		}
		if len(in.ResourceTypeFilters) > 100 {
			return nil, taggingInvalid("ResourceTypeFilters: at most 100 resource types")
		}
		perPage := taggingMaxPerPage // the reference documents no default; deploybot always sets it
		if in.ResourcesPerPage != nil {
			perPage = int(aws.ToInt32(in.ResourcesPerPage))
			if perPage < 1 || perPage > taggingMaxPerPage {
				return nil, taggingInvalid(fmt.Sprintf("ResourcesPerPage must be between 1 and %d", taggingMaxPerPage))
			}
		}
		if in.TagsPerPage != nil {
			if n := aws.ToInt32(in.TagsPerPage); n < 100 || n > 500 {
				return nil, taggingInvalid("TagsPerPage must be between 100 and 500")
			}
		}
		query := taggingQuery(in)
		now := w.Clock.Now()
		offset := 0
		if tok := aws.ToString(in.PaginationToken); tok != "" {
			var err error
			if offset, err = parseTaggingToken(tok, query, now); err != nil {
				return nil, err
			}
		}

		var match []taggedResource
		for _, r := range w.taggedResources(now) {
			if taggingTypeMatches(r.ARN, in.ResourceTypeFilters) && taggingTagsMatch(r.Tags, in.TagFilters) {
				match = append(match, r)
			}
		}
		out := &tagging.GetResourcesOutput{PaginationToken: aws.String("")}
		if offset > len(match) {
			offset = len(match)
		}
		end := min(offset+perPage, len(match))
		for _, r := range match[offset:end] {
			m := taggingtypes.ResourceTagMapping{ResourceARN: aws.String(r.ARN)}
			for _, k := range sortedKeys(r.Tags) {
				m.Tags = append(m.Tags, taggingtypes.Tag{Key: aws.String(k), Value: aws.String(r.Tags[k])})
			}
			out.ResourceTagMappingList = append(out.ResourceTagMappingList, m)
		}
		if end < len(match) {
			out.PaginationToken = aws.String(taggingToken(end, query, now))
		}
		return out, nil
	})
}

// taggedResources are the resources GetResources can return now, sorted by
// ARN: every tagged one the services list, except IAM's and Application
// Auto Scaling's, with running ECS tasks, and the EC2 ghosts. Callers hold
// w.Mu.
func (w *World) taggedResources(now time.Time) []taggedResource {
	inventoryMu.Lock()
	fs := append([]func(w *World) []Item(nil), inventoryFuncs...)
	inventoryMu.Unlock()
	live := map[string]taggedResource{}
	for _, f := range fs {
		for _, it := range f(w) {
			if it.Service == "iam" || it.Service == "application-autoscaling" || len(it.Tags) == 0 {
				continue
			}
			arn := it.ID
			if it.Service == "ec2" {
				arn = w.arn("ec2", ec2ARNType(it.Type)+"/"+it.ID)
			}
			live[arn] = taggedResource{ARN: arn, Tags: copyTags(it.Tags)}
		}
	}
	for _, t := range w.ecs().Tasks {
		if t.LastStatus != "STOPPED" && len(t.Tags) > 0 {
			live[t.ARN] = taggedResource{ARN: t.ARN, Tags: ecsTags.asMap(t.Tags)}
		}
	}

	st := w.tagging()
	for arn, r := range st.seen {
		if _, ok := live[arn]; ok || !strings.HasPrefix(arn, "arn:aws:ec2:") {
			delete(st.gone, arn)
			continue
		}
		if _, ok := st.gone[arn]; !ok {
			st.gone[arn] = now
		}
		if now.Sub(st.gone[arn]) < taggingGhostTTL {
			live[arn] = r
		}
	}
	for arn := range st.seen {
		if _, ok := live[arn]; !ok {
			delete(st.seen, arn)
			delete(st.gone, arn)
		}
	}
	out := make([]taggedResource, 0, len(live))
	for _, arn := range sortedKeys(live) {
		st.seen[arn] = live[arn]
		out = append(out, live[arn])
	}
	return out
}

// ec2ARNType is the resource type in an EC2 ARN for the inventory's type
// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html#amazonec2-resources-for-iam-policies).
func ec2ARNType(t string) string {
	if t == "nat-gateway" {
		return "natgateway"
	}
	return t
}

func checkTagFilters(fs []taggingtypes.TagFilter) error {
	if len(fs) > 50 {
		return taggingInvalid("TagFilters: at most 50 keys")
	}
	for _, f := range fs {
		if k := aws.ToString(f.Key); k == "" || len(k) > 128 {
			return taggingInvalid("TagFilters: a key must be 1 to 128 characters")
		}
		if len(f.Values) > 20 {
			return taggingInvalid("TagFilters: at most 20 values for key " + aws.ToString(f.Key))
		}
	}
	return nil
}

// taggingTagsMatch: every filter matches (AND); a filter matches when the
// key has one of its values (OR), or any value when it lists none.
func taggingTagsMatch(tags map[string]string, fs []taggingtypes.TagFilter) bool {
	for _, f := range fs {
		v, ok := tags[aws.ToString(f.Key)]
		if !ok {
			return false
		}
		if len(f.Values) == 0 {
			continue
		}
		found := false
		for _, want := range f.Values {
			if want == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// taggingTypeMatches: no filter, or one "service" or "service:type" that
// the ARN's service and resource type match.
func taggingTypeMatches(arn string, filters []string) bool {
	if len(filters) == 0 {
		return true
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return false
	}
	service, resource := parts[2], parts[5]
	typ := resource
	if i := strings.IndexAny(resource, "/:"); i >= 0 {
		typ = resource[:i]
	}
	for _, f := range filters {
		s, t, hasType := strings.Cut(f, ":")
		if s == service && (!hasType || t == typ) {
			return true
		}
	}
	return false
}

func taggingQuery(in *tagging.GetResourcesInput) string {
	var b strings.Builder
	for _, f := range in.TagFilters {
		b.WriteString(aws.ToString(f.Key) + "=" + strings.Join(f.Values, ",") + ";")
	}
	b.WriteString("|" + strings.Join(in.ResourceTypeFilters, ","))
	h := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(h[:8])
}

// taggingToken encodes the next offset, the filters' digest and when it
// was issued.
func taggingToken(offset int, query string, now time.Time) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d|%s|%d", offset, query, now.Unix())))
}

func parseTaggingToken(tok, query string, now time.Time) (int, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	parts := strings.Split(string(raw), "|")
	if err != nil || len(parts) != 3 || parts[1] != query {
		return 0, taggingInvalid("The specified pagination token is not valid for this request")
	}
	offset, err1 := strconv.Atoi(parts[0])
	issued, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || offset < 0 {
		return 0, taggingInvalid("The specified pagination token is not valid for this request")
	}
	if now.Sub(time.Unix(issued, 0)) > taggingTokenTTL {
		return 0, &taggingtypes.PaginationTokenExpiredException{Message: aws.String("The pagination token has expired: a token is valid for 15 minutes")}
	}
	return offset, nil
}

func taggingInvalid(msg string) error {
	return &taggingtypes.InvalidParameterException{Message: aws.String(msg)}
}
