package awssim

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// ListRoles as the IAM API reference documents it
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListRoles.html):
// the roles whose path starts with PathPrefix (default "/"), MaxItems 1 to
// 1000 (default 100) per page, IsTruncated and an opaque Marker for the
// next. "IAM resource-listing operations return a subset of the available
// attributes": no tags, no permissions boundary, no last use; GetRole or
// ListRoleTags has them.
func init() {
	Handle(func(ctx context.Context, w *World, in *iam.ListRolesInput) (*iam.ListRolesOutput, error) {
		prefix := aws.ToString(in.PathPrefix)
		if prefix == "" {
			prefix = "/"
		}
		if !strings.HasPrefix(prefix, "/") || len(prefix) > 512 {
			return nil, Err("ValidationError", "The specified value for pathPrefix is invalid. It must begin with / and contain only alphanumeric characters and/or / characters.")
		}
		max := 100
		if in.MaxItems != nil {
			max = int(aws.ToInt32(in.MaxItems))
			if max < 1 || max > 1000 {
				return nil, Err("ValidationError", "1 validation error detected: Value at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000")
			}
		}
		var roles []*iamRole
		for _, r := range w.iam().Roles {
			if strings.HasPrefix(r.Path, prefix) {
				roles = append(roles, r)
			}
		}
		sort.Slice(roles, func(i, j int) bool { return roles[i].Path+roles[i].Name < roles[j].Path+roles[j].Name })
		start := 0
		if m := aws.ToString(in.Marker); m != "" {
			n, err := strconv.Atoi(strings.TrimPrefix(m, "roles-"))
			if err != nil || !strings.HasPrefix(m, "roles-") || n < 0 || n > len(roles) {
				return nil, Err("ValidationError", "Invalid Marker.")
			}
			start = n
		}
		end := min(start+max, len(roles))
		out := &iam.ListRolesOutput{}
		for _, r := range roles[start:end] {
			role := r.sdk()
			role.Tags, role.PermissionsBoundary = nil, nil
			out.Roles = append(out.Roles, *role)
		}
		if end < len(roles) {
			out.IsTruncated = true
			out.Marker = aws.String("roles-" + strconv.Itoa(end))
		}
		return out, nil
	})
}
