package awssim

import (
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// orderedTags are the tags of a resource whose API lists them in the order
// they were first set (IAM roles, Secrets Manager secrets); setting a key
// again keeps its place.
type orderedTags struct {
	Tags     map[string]string
	TagOrder []string
}

func newOrderedTags() orderedTags { return orderedTags{Tags: map[string]string{}} }

func (o *orderedTags) setTag(k, v string) {
	if _, ok := o.Tags[k]; !ok {
		o.TagOrder = append(o.TagOrder, k)
	}
	o.Tags[k] = v
}

// untag removes keys, as UntagRole and Secrets Manager's UntagResource do;
// a key the resource does not have is no error.
func (o *orderedTags) untag(keys []string) {
	for _, k := range keys {
		delete(o.Tags, k)
		o.TagOrder = without(o.TagOrder, k)
	}
}

// inTagOrder is the tags as the service's SDK type, in order (nil for none).
func inTagOrder[T any](o orderedTags, tag func(k, v *string) T) []T {
	var out []T
	for _, k := range o.TagOrder {
		out = append(out, tag(aws.String(k), aws.String(o.Tags[k])))
	}
	return out
}

// deleteKeys removes keys from tags, the UntagResource of the services whose
// tags are a map; a key that is not there is no error.
func deleteKeys(tags map[string]string, keys []string) {
	for _, k := range keys {
		delete(tags, k)
	}
}

// untagList is the UntagResource of the services whose tags are a list of
// {Key, Value} (ECS, Cloud Map): the tags whose key is not one of keys (nil
// when none is left).
func untagList[T any](tags []T, key func(T) *string, keys []string) []T {
	var kept []T
	for _, t := range tags {
		if !slices.Contains(keys, aws.ToString(key(t))) {
			kept = append(kept, t)
		}
	}
	return kept
}
