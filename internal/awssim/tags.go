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

// tagList is the tag dialect of the services whose tags are a list of
// their SDK's {Key, Value} Tag type (ECS, Cloud Map); it reads a tag's key
// and value.
type tagList[T any] func(T) (key, value *string)

// merge is TagResource: a tag whose key is there replaces it, others are
// added at the end.
func (d tagList[T]) merge(tags, add []T) []T {
	for _, t := range add {
		k, _ := d(t)
		i := slices.IndexFunc(tags, func(h T) bool { hk, _ := d(h); return aws.ToString(hk) == aws.ToString(k) })
		if i >= 0 {
			tags[i] = t
		} else {
			tags = append(tags, t)
		}
	}
	return tags
}

// untag is UntagResource: the tags whose key is not one of keys (nil when
// none is left); a key that is not there is no error.
func (d tagList[T]) untag(tags []T, keys []string) []T {
	var kept []T
	for _, t := range tags {
		if k, _ := d(t); !slices.Contains(keys, aws.ToString(k)) {
			kept = append(kept, t)
		}
	}
	return kept
}

// listed is ListTagsForResource: a copy, [] when there are none.
func (d tagList[T]) listed(tags []T) []T {
	out := clone(tags)
	if out == nil {
		out = []T{}
	}
	return out
}

func (d tagList[T]) asMap(tags []T) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		k, v := d(t)
		m[aws.ToString(k)] = aws.ToString(v)
	}
	return m
}
