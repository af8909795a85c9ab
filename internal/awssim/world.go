// Package awssim is an in-memory AWS account that the real aws-sdk-go-v2 clients
// talk to. A Finalize-step middleware (after the SDK's retry and signing
// middleware) hands each operation's typed input to a handler here and returns
// its typed output or an API error, so the SDK's own retryers, paginators and
// waiters run unchanged. Semantics and error codes follow
// docs/research/aws-ecs.md; each handler cites what it models.
package awssim

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/deploybot/deploybot/internal/clock"
)

// DefaultAccount is the account id of a world made by New.
const DefaultAccount = "123456789012"

// Call is one operation as the simulated account saw it.
type Call struct {
	Service   string // SDK service id, e.g. "ECS", "EC2", "IAM"
	Operation string // e.g. "CreateCluster"
	Write     bool
	Principal string // the access key that signed the call
	ErrCode   string // "" on success
	At        time.Time
}

// Faults are switches that make the account misbehave the way real AWS can.
type Faults struct {
	// ThrottleFraction of calls (0..1) answer with the service's throttling
	// error code before doing anything. Deterministic for a given Seed.
	ThrottleFraction float64
	Seed             int64
	// FailCall makes the Nth call (1-based, counted over all calls) fail with
	// an InternalFailure (HTTP 500 class, which the SDK retries).
	FailCall int
	// StopAfterWrites simulates the deploybot process dying: after this many
	// successful writes every further call fails with ErrCrashed. 0 = off.
	StopAfterWrites int
}

// ErrCrashed is returned for every call after Faults.StopAfterWrites writes.
var ErrCrashed = fmt.Errorf("awssim: process crashed (injected after write limit)")

// ProcessWrite is a write the process under test is about to make to a
// service outside the account (the Prefect API: its work pool). It counts
// towards Faults.StopAfterWrites as the account's own writes do, so that a
// crash can be injected after it too; once the process has crashed it
// returns ErrCrashed and the write must not be made. done reports whether
// the write went through (only those count).
func (w *World) ProcessWrite() (done func(ok bool), err error) {
	w.faultsMu.Lock()
	defer w.faultsMu.Unlock()
	if f := w.faults; f.StopAfterWrites > 0 && w.nWrites+w.writesInFlight >= f.StopAfterWrites {
		return nil, ErrCrashed
	}
	w.writesInFlight++
	return func(ok bool) {
		w.faultsMu.Lock()
		w.writesInFlight--
		if ok {
			w.nWrites++
		}
		w.faultsMu.Unlock()
	}, nil
}

type handlerFunc func(ctx context.Context, w *World, in any) (any, error)

var (
	handlersMu sync.RWMutex
	handlers   = map[reflect.Type]handlerFunc{}
)

// Handle registers the simulated implementation of one SDK operation; service
// files call it from init(). I is the operation's input struct type.
// The output is dropped when f returns an error, so a handler may return
// the output it built together with the error of the call that built it.
func Handle[I any, O any](f func(ctx context.Context, w *World, in *I) (*O, error)) {
	handlersMu.Lock()
	defer handlersMu.Unlock()
	handlers[reflect.TypeOf((*I)(nil))] = func(ctx context.Context, w *World, in any) (any, error) {
		out, err := f(ctx, w, in.(*I))
		if err != nil {
			return nil, err
		}
		return out, nil
	}
}

// World is one simulated AWS account in one or more regions.
type World struct {
	// Mu guards all simulated state. Handlers hold it for their whole run.
	Mu      sync.Mutex
	Clock   clock.Clock
	Account string
	Region  string
	// Latency is real time each call takes (benchmarks set 50ms).
	Latency time.Duration

	faultsMu      sync.Mutex
	faults        Faults
	rng           *rand.Rand
	calls         []Call
	workloadCalls []Call
	nCalls        int
	nWrites       int
	// writesInFlight are writes begun and not yet answered: with them, a
	// crash after write k refuses a write that starts beside the k-th
	// (concurrent steps), as a process dead after k writes makes no more.
	writesInFlight int

	// ids hands out deterministic resource ids per prefix.
	ids map[string]int

	// Services keep their state here, keyed by a name of their choosing, so
	// that each service's file owns its own types.
	state map[string]any

	// Principals maps an access key id to the principal (role ARN) it
	// belongs to; the default key is the account's admin.
	principals map[string]Principal

	// Images says how container images behave when ECS runs them (see
	// images.go); unknown images are healthy. Guarded by Mu.
	Images map[string]ImageBehavior

	// timings are the world's durations (options.go).
	timings Timings

	// unsupported: operations answered as an endpoint without them
	// (SetUnsupported). Guarded by faultsMu.
	unsupported map[string]Endpoint

	// runtimes run the programs of simulated containers (runtime.go).
	// Guarded by Mu.
	runtimes []ContainerRuntime
}

// Principal is who signs a call: a role session with an optional policy.
type Principal struct {
	ARN string
	// Policy, when non-nil, is evaluated for every call (AccessDenied on deny).
	Policy *PolicyDocument
	// Workload marks a process running inside the simulated account (a
	// Prefect worker in an ECS task, signed with the task role's
	// credentials). Its calls are not deploybot's: Faults do not apply to
	// them (they model deploybot's process and network), they take no
	// Latency, they are logged in WorkloadCalls instead of Calls, and they
	// never block on the clock (long polls answer at once).
	Workload bool
	// Role, when set, is the IAM role this is a session of: each call is
	// judged by the role's policies as they are at that moment (RoleConfig).
	Role string
}

// AdminAccessKey signs calls made with Config(); it is allowed everything.
const AdminAccessKey = "ASIASIMULATEDADMIN00"

// New makes an empty account whose time is c.
func New(c clock.Clock, opts ...Option) *World {
	w := &World{
		Clock:      c,
		Account:    DefaultAccount,
		Region:     "us-east-1",
		ids:        map[string]int{},
		state:      map[string]any{},
		principals: map[string]Principal{},
		rng:        rand.New(rand.NewSource(1)),
		Images:     map[string]ImageBehavior{},
		timings:    DefaultTimings(),
	}
	for _, o := range opts {
		o(w)
	}
	w.principals[AdminAccessKey] = Principal{ARN: "arn:aws:iam::" + w.Account + ":user/admin"}
	// Unsigned calls (STS AssumeRoleWithWebIdentity) come without a key.
	w.principals[""] = anonymousPrincipal
	return w
}

// SetFaults replaces the fault switches and resets the call counters they use.
func (w *World) SetFaults(f Faults) {
	w.faultsMu.Lock()
	defer w.faultsMu.Unlock()
	w.faults = f
	w.rng = rand.New(rand.NewSource(f.Seed))
	w.nCalls = 0
	w.nWrites = 0
}

// Calls returns a copy of every call seen so far.
func (w *World) Calls() []Call {
	w.faultsMu.Lock()
	defer w.faultsMu.Unlock()
	return append([]Call(nil), w.calls...)
}

// CallsBesideAccountCheck returns the logged calls other than STS
// GetCallerIdentity, the account check that changes nothing: what tests of
// "nothing happens before (or after) the account check" expect to be empty.
func (w *World) CallsBesideAccountCheck() []Call {
	var out []Call
	for _, c := range w.Calls() {
		if c.Service != "STS" || c.Operation != "GetCallerIdentity" {
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets the call log (not the state).
func (w *World) ResetCalls() {
	w.faultsMu.Lock()
	defer w.faultsMu.Unlock()
	w.calls = nil
}

// WorkloadCalls returns a copy of every call made by simulated processes
// (principals with Workload set), e.g. a Prefect worker's RunTask.
func (w *World) WorkloadCalls() []Call {
	w.faultsMu.Lock()
	defer w.faultsMu.Unlock()
	return append([]Call(nil), w.workloadCalls...)
}

// State returns the service state stored under key, creating it with mk.
// Callers must hold w.Mu.
func State[T any](w *World, key string, mk func() *T) *T {
	if s, ok := w.state[key]; ok {
		return s.(*T)
	}
	s := mk()
	w.state[key] = s
	return s
}

// NewID returns a deterministic id like "vpc-0000000000000001" for prefix "vpc".
// Callers must hold w.Mu.
func (w *World) NewID(prefix string) string {
	w.ids[prefix]++
	return fmt.Sprintf("%s-%017x", prefix, w.ids[prefix])
}

// NextSeq returns 1, 2, 3... per key. Callers must hold w.Mu.
func (w *World) NextSeq(key string) int {
	w.ids["seq:"+key]++
	return w.ids["seq:"+key]
}

// AddPrincipal registers an access key for a principal (used by STS
// AssumeRole* handlers and by tests that run with a narrower policy).
func (w *World) AddPrincipal(accessKey string, p Principal) {
	w.faultsMu.Lock()
	defer w.faultsMu.Unlock()
	w.principals[accessKey] = p
}

// Config returns an aws.Config whose clients talk to this world, signed as
// the account admin.
func (w *World) Config() aws.Config {
	return w.ConfigFor(credentials.NewStaticCredentialsProvider(AdminAccessKey, "simulated-secret", "simulated-session"))
}

// ConfigFor returns an aws.Config for this world using the given credentials.
func (w *World) ConfigFor(creds aws.CredentialsProvider) aws.Config {
	cfg := aws.Config{
		Region:      w.Region,
		Credentials: creds,
		HTTPClient:  noNetwork{},
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 10
				o.RateLimiter = ratelimit.None
				o.Backoff = w.backoff()
			})
		},
	}
	cfg.APIOptions = append(cfg.APIOptions, w.middleware)
	return cfg
}

// backoff sleeps on the world's clock instead of the wall clock: the SDK's
// retryer will then not sleep again because we return 0.
func (w *World) backoff() retry.BackoffDelayer {
	return retry.BackoffDelayerFunc(func(attempt int, err error) (time.Duration, error) {
		d := time.Duration(1<<min(attempt, 5)) * 50 * time.Millisecond
		_ = w.Clock.Sleep(context.Background(), d)
		return 0, nil
	})
}

type noNetwork struct{}

func (noNetwork) Do(*http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("awssim: a request tried to reach the network")
}

type paramsKey struct{}

func (w *World) middleware(st *middleware.Stack) error {
	if err := st.Initialize.Add(middleware.InitializeMiddlewareFunc("awssimParams",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			ctx = middleware.WithStackValue(ctx, paramsKey{}, in.Parameters)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before); err != nil {
		return err
	}
	return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("awssimDispatch",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			params := middleware.GetStackValue(ctx, paramsKey{})
			key := accessKeyOf(in.Request)
			out, err := w.dispatch(ctx, awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx), key, params)
			return middleware.FinalizeOutput{Result: out}, middleware.Metadata{}, err
		}), middleware.After)
}

var credRe = regexp.MustCompile(`Credential=([A-Z0-9]+)/`)

func accessKeyOf(req any) string {
	r, ok := req.(*smithyhttp.Request)
	if !ok {
		return ""
	}
	if m := credRe.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return m[1]
	}
	return ""
}

// IsWrite says whether an operation changes state (anything but Describe,
// List, Get, and STS identity calls).
func IsWrite(op string) bool {
	for _, p := range []string{"Describe", "List", "Get", "AssumeRole", "Validate"} {
		if strings.HasPrefix(op, p) {
			return false
		}
	}
	return true
}

func throttleCode(service string) string {
	switch service {
	case "EC2":
		return "RequestLimitExceeded"
	case "IAM", "STS":
		return "Throttling"
	case "SQS":
		// SQS's query-protocol code, which the SDK reports (see sqs.go).
		return "RequestThrottled"
	default:
		return "ThrottlingException"
	}
}

func (w *World) dispatch(ctx context.Context, service, op, accessKey string, params any) (any, error) {
	w.faultsMu.Lock()
	principal, known := w.principals[accessKey]
	w.faultsMu.Unlock()
	if w.Latency > 0 && !principal.Workload {
		if err := (clock.Real{}).Sleep(ctx, w.Latency); err != nil {
			return nil, err
		}
	}
	write := IsWrite(op)
	call := Call{Service: service, Operation: op, Write: write, At: w.Clock.Now(), Principal: principal.ARN}

	var n int
	var f Faults
	throttled, crashed := false, false
	w.faultsMu.Lock()
	unsupported := w.unsupportedError(service, op)
	if !principal.Workload {
		w.nCalls++
		n = w.nCalls
		f = w.faults
		throttled = f.ThrottleFraction > 0 && w.rng.Float64() < f.ThrottleFraction
		crashed = f.StopAfterWrites > 0 && w.nWrites >= f.StopAfterWrites
		if write && !crashed && f.StopAfterWrites > 0 {
			crashed = w.nWrites+w.writesInFlight >= f.StopAfterWrites
			if !crashed {
				w.writesInFlight++
				defer func() {
					w.faultsMu.Lock()
					w.writesInFlight--
					w.faultsMu.Unlock()
				}()
			}
		}
	}
	w.faultsMu.Unlock()

	var out any
	var err error
	switch {
	case crashed:
		err = ErrCrashed
	case throttled:
		err = &smithy.GenericAPIError{Code: throttleCode(service), Message: "Rate exceeded", Fault: smithy.FaultClient}
	case f.FailCall > 0 && f.FailCall == n:
		err = &smithy.GenericAPIError{Code: "InternalFailure", Message: "injected failure of call " + fmt.Sprint(n), Fault: smithy.FaultServer}
	case unsupported != nil:
		err = unsupported
	case !known:
		err = &smithy.GenericAPIError{Code: invalidTokenCode(service), Message: "The security token included in the request is invalid.", Fault: smithy.FaultClient}
	default:
		if principal.Role != "" {
			principal.Policy = w.currentRolePolicy(principal.Role)
		}
		if principal.Policy != nil {
			if denied := w.authorize(principal, service, op, params); denied != nil {
				err = denied
				break
			}
		}
		handlersMu.RLock()
		h, ok := handlers[reflect.TypeOf(params)]
		handlersMu.RUnlock()
		if !ok {
			err = fmt.Errorf("awssim: %s.%s is not simulated", service, op)
			break
		}
		out, err = w.run(context.WithValue(ctx, principalKey{}, principal), h, params)
	}
	if err != nil {
		var ae smithy.APIError
		if ok := asAPIError(err, &ae); ok {
			call.ErrCode = ae.ErrorCode()
		} else {
			call.ErrCode = "error"
		}
	}
	w.faultsMu.Lock()
	if principal.Workload {
		w.workloadCalls = append(w.workloadCalls, call)
	} else {
		if err == nil && write {
			w.nWrites++
		}
		w.calls = append(w.calls, call)
	}
	w.faultsMu.Unlock()
	return out, err
}

// run calls a handler with the world locked, after every simulated
// service's lazy state has caught up with the clock (so that e.g. ENIs
// released by stopped ECS tasks show up in EC2 calls without an ECS call in
// between). A handler that long-polls (errLongPoll) is called again after
// the world is unlocked and the clock has slept until its wake-up.
func (w *World) run(ctx context.Context, h handlerFunc, params any) (any, error) {
	for {
		w.Mu.Lock()
		w.advance()
		out, err := h(ctx, w, params)
		w.afterCall()
		w.Mu.Unlock()
		var lp *errLongPoll
		if !errors.As(err, &lp) {
			return out, err
		}
		ctx = context.WithValue(ctx, longPollKey{}, lp.deadline)
		if err := w.Clock.Sleep(ctx, lp.wake.Sub(w.Clock.Now())); err != nil {
			return nil, err
		}
	}
}

func invalidTokenCode(service string) string {
	return byProtocol(service, "AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException")
}

type principalKey struct{}

// PrincipalOf returns who signed the call being handled.
func PrincipalOf(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}
