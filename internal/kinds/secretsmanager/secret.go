// Package secretsmanager holds the Secrets Manager kind of a stack: the
// secret holding the Prefect API key. It never reads the value: whether the
// stored key is the desired one is the AWSCURRENT version id, a digest the
// writes pass as ClientRequestToken (docs/ARCHITECTURE.md). Errors never
// include the key: no SDK input is ever formatted.
package secretsmanager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/retry"
	credential "github.com/deploybot/deploybot/internal/secret"
)

// KindSecret is the secret kind.
const KindSecret resource.KindName = "secret"

// SecretSpec is the secret holding the Prefect credential (the API key,
// or a self-hosted server's auth string). The credential is a
// secret.Value: every formatting verb and encoder prints it redacted.
type SecretSpec struct {
	Name        string
	Description string
	// Value is the credential; zero when the caller has none (a destroy,
	// or a plan without it): the secret's value is then left alone.
	Value credential.Value
	// VersionID is a digest of Value (stack.SecretVersionID): the
	// ClientRequestToken of CreateSecret/PutSecretValue, so the AWSCURRENT
	// version id tells whether the stored credential is this one without
	// reading it (docs/ARCHITECTURE.md).
	VersionID string
	// ForceDelete deletes without a recovery window (destroy --force).
	ForceDelete bool
	// RecoveryWindowDays applies when not ForceDelete.
	RecoveryWindowDays int
}

// SecretModel is what a plan compares of the secret: the AWSCURRENT
// version id, only when the run has the key (without it the value is
// neither compared nor written).
type SecretModel struct {
	Value *string `attr:"value,sensitive"`
}

// Secret is the secret kind.
var Secret = resource.Define[SecretSpec, SecretModel, struct{}, awsapi.SecretsAPI](KindSecret, secretKind{},
	func(a resource.APIs) (awsapi.SecretsAPI, error) { return a.AWS.Secrets, nil })

type secretKind struct{}

type (
	x      = resource.Context[awsapi.SecretsAPI]
	secret = resource.Typed[SecretSpec]
	found  = resource.Found[SecretModel, struct{}]
)

// secretsPropagationTimeout: docs/research/aws-ecs.md §5 (secretsmanager
// consts.go propagationTimeout = 2m).
const secretsPropagationTimeout = 2 * time.Minute

func (secretKind) Desired(r *secret, _ resource.Refs) SecretModel {
	if r.Spec.VersionID == "" {
		return SecretModel{}
	}
	return SecretModel{Value: aws.String(r.Spec.VersionID)}
}

// currentVersion returns the version id that has the AWSCURRENT stage.
func currentVersion(stages map[string][]string) string {
	for id, ss := range stages {
		if slices.Contains(ss, "AWSCURRENT") {
			return id
		}
	}
	return ""
}

// Read treats a secret scheduled for deletion as absent: Create restores it.
func (secretKind) Read(ctx context.Context, x *x, r *secret) (*found, error) {
	s := r.Spec
	out, err := x.API.DescribeSecret(ctx, &awssm.DescribeSecretInput{SecretId: aws.String(s.Name)})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeSecret %s: %w", s.Name, err)
	}
	if out.DeletedDate != nil {
		return nil, nil
	}
	arn := aws.ToString(out.ARN)
	version := currentVersion(out.VersionIdsToStages)
	f := &found{ID: arn, ARN: arn, Tags: awstags.SecretsMap(out.Tags),
		Outputs: resource.Outputs{"arn": arn, "name": s.Name, "version_id": version}}
	if s.VersionID != "" {
		f.Model.Value = aws.String(version)
	}
	return f, nil
}

// ARNTypes and Adopt: a secret tagged for the environment that its stack
// no longer has is read by its ARN and deleted (with the recovery window a
// stack's secret has); one already scheduled for deletion is going.
func (secretKind) ARNTypes() []string { return []string{"secretsmanager:secret"} }

func (k secretKind) Adopt(ctx context.Context, x *x, arn string) (*secret, *found, error) {
	out, err := x.API.DescribeSecret(ctx, &awssm.DescribeSecretInput{SecretId: aws.String(arn)})
	if awserr.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("DescribeSecret %s: %w", arn, err)
	}
	name := aws.ToString(out.Name)
	s := &secret{Name: name, Spec: &SecretSpec{Name: name}}
	f, err := k.Read(ctx, x, s)
	if err != nil || f == nil {
		return nil, nil, err
	}
	return s, f, nil
}

// Right after a delete the name answers "was deleted" or
// "scheduled for deletion" for a while (docs/research/aws-ecs.md §5,
// secretsmanager/secret.go).
var (
	scheduled         = awserr.CodeWithMessage("InvalidRequestException", "scheduled for deletion")
	wasDeleted        = awserr.CodeWithMessage("InvalidRequestException", "was deleted")
	markedForDeletion = awserr.CodeWithMessage("InvalidRequestException", "marked for deletion")
)

// errNameDeleting wraps the answer of a create whose name is still being
// deleted: the create is tried again.
type errNameDeleting struct{ err error }

func (e errNameDeleting) Error() string { return e.err.Error() }
func (e errNameDeleting) Unwrap() error { return e.err }

func isNameDeleting(err error) bool {
	var nd errNameDeleting
	return errors.As(err, &nd)
}

func (k secretKind) Create(ctx context.Context, x *x, r *secret, _ resource.Refs) (resource.Outputs, error) {
	s := r.Spec
	if s.Value.IsZero() {
		return nil, fmt.Errorf("secret %s: the Prefect API key is needed to create it (PREFECT_API_KEY)", s.Name)
	}
	// A secret scheduled for deletion with a recovery window is restored
	// instead (docs/research/aws-ecs.md §5.3 step 7); one force-deleted
	// cannot be, and its name frees up shortly.
	out, err := retry.When(ctx, x.Waits(r.Address, secretsPropagationTimeout, resource.RetryEvery), "CreateSecret "+s.Name, isNameDeleting,
		func() (resource.Outputs, error) {
			out, err := x.API.CreateSecret(ctx, &awssm.CreateSecretInput{
				Name:               aws.String(s.Name),
				Description:        aws.String(s.Description),
				SecretString:       aws.String(s.Value.Reveal()),
				ClientRequestToken: aws.String(s.VersionID),
				Tags:               awstags.SecretsList(r.Tags),
			})
			switch {
			case err == nil:
				// The same token and value make CreateSecret answer with an
				// existing secret (its idempotency): make sure it is ours.
				d, err := x.API.DescribeSecret(ctx, &awssm.DescribeSecretInput{SecretId: out.ARN})
				if err != nil {
					return nil, fmt.Errorf("DescribeSecret %s: %w", s.Name, err)
				}
				if !resource.IsOurs(r.Tags, awstags.SecretsMap(d.Tags)) {
					return nil, fmt.Errorf("secret %s %w", s.Name, resource.ErrNotOurs)
				}
				return resource.Outputs{"arn": aws.ToString(out.ARN), "name": s.Name, "version_id": s.VersionID}, nil
			case scheduled(err):
				outputs, rerr := k.restore(ctx, x, r)
				if rerr == nil {
					return outputs, nil
				}
				if !markedForDeletion(rerr) && !awserr.IsNotFound(rerr) {
					return nil, rerr
				}
				return nil, errNameDeleting{err}
			case wasDeleted(err):
				return nil, errNameDeleting{err}
			case awserr.IsAlreadyExists(err):
				// A re-run after a crash between CreateSecret and the next step.
				live, err := k.Read(ctx, x, r)
				if err != nil {
					return nil, err
				}
				if live == nil || !resource.IsOurs(r.Tags, live.Tags) {
					return nil, fmt.Errorf("secret %s %w", s.Name, resource.ErrNotOurs)
				}
				return write(ctx, x, r, live.ID, live.Outputs["version_id"], live.Tags, true)
			default:
				return nil, fmt.Errorf("CreateSecret %s: %w", s.Name, scrub(err, s.Value))
			}
		})
	var te *retry.TimeoutError
	if errors.As(err, &te) {
		return nil, fmt.Errorf("CreateSecret %s: the name is still being deleted after %s: %w", s.Name, te.Budget, scrub(te.Last, s.Value))
	}
	return out, err
}

// restore brings back a secret scheduled for deletion (ours only), then
// writes the desired key and tags.
func (secretKind) restore(ctx context.Context, x *x, r *secret) (resource.Outputs, error) {
	s := r.Spec
	d, err := x.API.DescribeSecret(ctx, &awssm.DescribeSecretInput{SecretId: aws.String(s.Name)})
	if err != nil {
		return nil, fmt.Errorf("DescribeSecret %s: %w", s.Name, err)
	}
	tags := awstags.SecretsMap(d.Tags)
	if !resource.IsOurs(r.Tags, tags) {
		return nil, fmt.Errorf("secret %s (scheduled for deletion) %w", s.Name, resource.ErrNotOurs)
	}
	x.Say(r.Address, "restoring the secret scheduled for deletion")
	if _, err := x.API.RestoreSecret(ctx, &awssm.RestoreSecretInput{SecretId: aws.String(s.Name)}); err != nil {
		return nil, fmt.Errorf("RestoreSecret %s: %w", s.Name, err)
	}
	return write(ctx, x, r, aws.ToString(d.ARN), "", tags, true)
}

func (secretKind) Update(ctx context.Context, x *x, r *secret, d *resource.Delta[SecretModel, struct{}], _ resource.Refs) (resource.Outputs, error) {
	return write(ctx, x, r, d.Found.ID, d.Found.Outputs["version_id"], d.Found.Tags, !resource.Equal(d.Desired.Value, d.Live.Value))
}

// write stores the desired key in the secret arn when putValue (and the run
// has it) and makes its tags the desired ones; current is the AWSCURRENT
// version before.
func write(ctx context.Context, x *x, r *secret, arn, current string, tags map[string]string, putValue bool) (resource.Outputs, error) {
	s := r.Spec
	outputs := resource.Outputs{"arn": arn, "name": s.Name, "version_id": current}
	if putValue && !s.Value.IsZero() {
		// The same token with the same value is idempotent, so a re-run
		// after a crash converges without a second version.
		put, err := x.API.PutSecretValue(ctx, &awssm.PutSecretValueInput{
			SecretId:           aws.String(arn),
			SecretString:       aws.String(s.Value.Reveal()),
			ClientRequestToken: aws.String(s.VersionID),
		})
		if err != nil {
			return nil, fmt.Errorf("PutSecretValue %s: %w", s.Name, scrub(err, s.Value))
		}
		// Going back to a key stored before: its version exists, so the put
		// is ignored (idempotent token) and AWSCURRENT stays where it was.
		// Move the stage explicitly.
		if !slices.Contains(put.VersionStages, "AWSCURRENT") {
			in := &awssm.UpdateSecretVersionStageInput{
				SecretId: aws.String(arn), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(s.VersionID)}
			if current != "" && current != s.VersionID {
				in.RemoveFromVersionId = aws.String(current)
			}
			if _, err := x.API.UpdateSecretVersionStage(ctx, in); err != nil {
				return nil, fmt.Errorf("UpdateSecretVersionStage %s: %w", s.Name, err)
			}
		}
		outputs["version_id"] = s.VersionID
	}
	if err := awstags.Secrets(x.API).Apply(ctx, arn, resource.Tags(r.Tags, tags)); err != nil {
		return nil, err
	}
	return outputs, nil
}

// OutputsChangedByUpdate: a new key gives the secret a new version id.
func (secretKind) OutputsChangedByUpdate(*secret) []string { return []string{"version_id"} }

func (secretKind) Delete(ctx context.Context, x *x, r *secret, _ *found) error {
	s := r.Spec
	in := &awssm.DeleteSecretInput{SecretId: aws.String(s.Name)}
	if s.ForceDelete {
		in.ForceDeleteWithoutRecovery = aws.Bool(true)
	} else {
		in.RecoveryWindowInDays = aws.Int64(int64(max(s.RecoveryWindowDays, 7)))
	}
	_, err := x.API.DeleteSecret(ctx, in)
	switch {
	case err == nil, awserr.IsNotFound(err):
	case awserr.CodeWithMessage("InvalidRequestException", "already scheduled for deletion", "marked for deletion")(err) && !s.ForceDelete:
		// Deleting what is already going away succeeds.
	default:
		return fmt.Errorf("DeleteSecret %s: %w", s.Name, err)
	}
	// docs/research/aws-ecs.md §5: wait until Describe is NotFound or shows DeletedDate.
	_, err = retry.Until(ctx, x.Waits(r.Address, secretsPropagationTimeout, 5*time.Second), "secret "+s.Name+" deletion", func() (struct{}, bool, error) {
		d, err := x.API.DescribeSecret(ctx, &awssm.DescribeSecretInput{SecretId: aws.String(s.Name)})
		if awserr.IsNotFound(err) {
			return struct{}{}, true, nil
		}
		if err != nil {
			return struct{}{}, false, fmt.Errorf("DescribeSecret %s: %w", s.Name, err)
		}
		return struct{}{}, d.DeletedDate != nil, nil
	})
	return err
}

// scrub replaces err with one that cannot contain key, should a service ever
// echo the value back in a message.
func scrub(err error, key credential.Value) error {
	if err == nil || key.IsZero() {
		return err
	}
	var r credential.Redactor
	r.Add(key)
	return r.Error(err)
}
