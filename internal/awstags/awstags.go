// Package awstags is tag handling for every AWS service deploybot tags
// resources in, written once per tagging dialect rather than once per kind:
// each service has its own Tag type and its own TagResource/UntagResource
// calls (EC2 CreateTags/DeleteTags, IAM TagRole/UntagRole, maps for CloudWatch
// Logs and Application Auto Scaling, lists elsewhere). A Dialect turns a
// resource.TagChange into the service's calls; List and Map convert
// between the service's tags and a map.
package awstags

import (
	"context"
	"fmt"
	"sort"

	"github.com/deploybot/deploybot/internal/resource"
)

// Dialect is one service's way of changing a resource's tags.
type Dialect struct {
	// Service names the calls in errors ("ECS", "EC2").
	Service string
	Tag     func(ctx context.Context, id string, set map[string]string) error
	Untag   func(ctx context.Context, id string, keys []string) error
}

// Apply makes the calls that change the tags of the resource id as ch says
// (none when nothing changes).
func (d Dialect) Apply(ctx context.Context, id string, ch resource.TagChange) error {
	if len(ch.Set) > 0 {
		if err := d.Tag(ctx, id, ch.Set); err != nil {
			return fmt.Errorf("%s tag %s: %w", d.Service, id, err)
		}
	}
	if len(ch.Remove) > 0 {
		if err := d.Untag(ctx, id, ch.Remove); err != nil {
			return fmt.Errorf("%s untag %s: %w", d.Service, id, err)
		}
	}
	return nil
}

// List is tags as a service's list of tag structs, sorted by key so that
// calls are reproducible.
func List[T any](tags map[string]string, mk func(key, value string) T) []T {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		out = append(out, mk(k, tags[k]))
	}
	return out
}

// Map is a service's list of tag structs as a map.
func Map[T any](tags []T, kv func(T) (key, value *string)) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		k, v := kv(t)
		m[deref(k)] = deref(v)
	}
	return m
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// With returns a copy of tags with key set to value.
func With(tags map[string]string, key, value string) map[string]string {
	out := make(map[string]string, len(tags)+1)
	for k, v := range tags {
		out[k] = v
	}
	out[key] = value
	return out
}
