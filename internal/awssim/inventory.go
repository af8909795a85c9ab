package awssim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
)

// Item is one live resource of the simulated account, as a test or the demo
// lists them to prove that a destroy left nothing behind.
type Item struct {
	Service string // "iam", "logs", "secretsmanager", "ecs", "servicediscovery", "application-autoscaling", "ssm", "ec2"
	Type    string // "role", "log-group", "secret", "secret (pending deletion)", "cluster", ...
	ID      string // ARN where the resource has one, else its name or id
	Tags    map[string]string
}

var (
	inventoryMu    sync.Mutex
	inventoryFuncs []func(w *World) []Item
)

// RegisterInventory adds a lister of live resources; each service (and the
// EC2 simulator) registers one from init(). Listers run with w.Mu held and
// after the world's lazy state has been advanced.
func RegisterInventory(f func(w *World) []Item) {
	inventoryMu.Lock()
	defer inventoryMu.Unlock()
	inventoryFuncs = append(inventoryFuncs, f)
}

// Inventory lists every live resource of every simulated service, sorted by
// service, type and id.
func (w *World) Inventory() []Item {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	w.advance()
	inventoryMu.Lock()
	fs := append([]func(w *World) []Item(nil), inventoryFuncs...)
	inventoryMu.Unlock()
	var items []Item
	for _, f := range fs {
		items = append(items, f(w)...)
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.ID < b.ID
	})
	return items
}

// TaggedFor lists the live resources tagged deploybot:environment=env.
func (w *World) TaggedFor(env string) []Item {
	var out []Item
	for _, it := range w.Inventory() {
		if it.Tags["deploybot:environment"] == env {
			out = append(out, it)
		}
	}
	return out
}

// advancers bring each service's lazy state up to the clock; registered by
// the service files from init(). Callers hold w.Mu.
var advancers []func(w *World)

func registerAdvancer(f func(w *World)) { advancers = append(advancers, f) }

// advance brings all lazy state up to w.Clock.Now(). Every handler of the
// services in this file family calls it first. Callers hold w.Mu.
func (w *World) advance() {
	for _, f := range advancers {
		f(w)
	}
}

// Advance brings all lazily simulated state (tasks, deployments, Cloud Map
// operations, secrets pending purge) up to w.Clock.Now().
func (w *World) Advance() {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	w.advance()
}

// token returns n deterministic, random-looking characters from alphabet,
// derived from seed: AWS ids look random, tests need them reproducible.
func token(seed string, n int, alphabet string) string {
	out := make([]byte, 0, n)
	for i := 0; len(out) < n; i++ {
		h := sha256.Sum256([]byte(fmt.Sprintf("%s#%d", seed, i)))
		for _, b := range h {
			if len(out) == n {
				break
			}
			out = append(out, alphabet[int(b)%len(alphabet)])
		}
	}
	return string(out)
}

const (
	alnumMixed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	alnumLower = "abcdefghijklmnopqrstuvwxyz0123456789"
	alnumUpper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	hexDigits  = "0123456789abcdef"
)

// uuidFrom returns a UUID-shaped deterministic digest of seed.
func uuidFrom(seed string) string {
	h := sha256.Sum256([]byte(seed))
	s := hex.EncodeToString(h[:16])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// listed is the inventory of one resource type: the resources of m in key
// order, as item answers each; ok false leaves one out (one still being
// created, or already gone).
func listed[T any](m map[string]T, item func(key string, r T) (it Item, ok bool)) []Item {
	var items []Item
	for _, k := range sortedKeys(m) {
		if it, ok := item(k, m[k]); ok {
			items = append(items, it)
		}
	}
	return items
}

func copyTags(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
