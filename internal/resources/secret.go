package resources

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// SecretKind is the Secrets Manager secret holding the Prefect API key. It
// never reads the value: whether the stored key is the desired one is the
// AWSCURRENT version id, a digest the writes pass as ClientRequestToken
// (docs/ARCHITECTURE.md). Errors never include the key: no SDK input is ever formatted.
type SecretKind struct{}

// secretsPropagationTimeout: docs/research/aws-ecs.md §5 (secretsmanager
// consts.go propagationTimeout = 2m).
const secretsPropagationTimeout = 2 * time.Minute

func (SecretKind) Desired(r *resource.Resource, _ resource.Refs) resource.Attrs {
	s := mustSpec[stack.SecretSpec](r)
	a := resource.Attrs{}
	if s.VersionID != "" {
		a["value"] = resource.Attr{Value: s.VersionID, Sensitive: true}
	}
	addTags(a, r.Tags)
	return a
}

type liveSecret struct {
	arn  string
	tags map[string]string
}

// currentVersion returns the version id that has the AWSCURRENT stage.
func currentVersion(stages map[string][]string) string {
	for id, ss := range stages {
		for _, s := range ss {
			if s == "AWSCURRENT" {
				return id
			}
		}
	}
	return ""
}

// Read treats a secret scheduled for deletion as absent: Create restores it.
func (SecretKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	s, err := specOf[stack.SecretSpec](r)
	if err != nil {
		return nil, err
	}
	out, err := x.AWS.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.Name)})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeSecret %s: %w", s.Name, err)
	}
	if out.DeletedDate != nil {
		return nil, nil
	}
	tags := secretTags(out.Tags)
	arn := aws.ToString(out.ARN)
	version := currentVersion(out.VersionIdsToStages)
	a := resource.Attrs{}
	// Without a key (destroy, or a plan run without it) the value is not
	// managed, so it is not compared either.
	if s.VersionID != "" {
		a["value"] = resource.Attr{Value: version, Sensitive: true}
	}
	addTags(a, tags)
	return &resource.Live{ID: arn, Ours: isOurs(r, tags), Attrs: a,
		Outputs: resource.Outputs{"arn": arn, "name": s.Name, "version_id": version},
		Raw:     liveSecret{arn: arn, tags: tags}}, nil
}

func (k SecretKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ resource.Refs) (resource.Outputs, error) {
	s, err := specOf[stack.SecretSpec](r)
	if err != nil {
		return nil, err
	}
	if s.Value == "" {
		return nil, fmt.Errorf("secret %s: the Prefect API key is needed to create it (PREFECT_API_KEY)", s.Name)
	}
	// docs/research/aws-ecs.md §5 (secretsmanager/secret.go): right after a
	// delete the name answers "was deleted" / "scheduled for deletion" for a
	// while; retry for 2 minutes. A secret scheduled for deletion with a
	// recovery window is restored instead (§5.3 step 7); one force-deleted
	// cannot be, and its name frees up shortly.
	deadline := x.Clock.Now().Add(x.Wait(secretsPropagationTimeout))
	for {
		out, err := x.AWS.Secrets.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name:               aws.String(s.Name),
			Description:        aws.String(s.Description),
			SecretString:       aws.String(s.Value),
			ClientRequestToken: aws.String(s.VersionID),
			Tags:               secretTagList(r.Tags),
		})
		switch {
		case err == nil:
			// The same token and value make CreateSecret answer with an
			// existing secret (its idempotency): make sure it is ours.
			d, err := x.AWS.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: out.ARN})
			if err != nil {
				return nil, fmt.Errorf("DescribeSecret %s: %w", s.Name, err)
			}
			if !isOurs(r, secretTags(d.Tags)) {
				return nil, fmt.Errorf("secret %s %w", s.Name, errConflict)
			}
			return resource.Outputs{"arn": aws.ToString(out.ARN), "name": s.Name, "version_id": s.VersionID}, nil
		case codeWithMessage("InvalidRequestException", "scheduled for deletion")(err):
			outputs, rerr := k.restore(ctx, x, r, s)
			if rerr == nil {
				return outputs, nil
			}
			if !codeWithMessage("InvalidRequestException", "marked for deletion")(rerr) && !awserr.IsNotFound(rerr) {
				return nil, rerr
			}
		case codeWithMessage("InvalidRequestException", "was deleted")(err):
		case awserr.IsAlreadyExists(err):
			// A re-run after a crash between CreateSecret and the next step.
			live, err := k.Read(ctx, x, r)
			if err != nil {
				return nil, err
			}
			if live == nil || !live.Ours {
				return nil, fmt.Errorf("secret %s %w", s.Name, errConflict)
			}
			return k.Update(ctx, x, r, live, nil, []plan.FieldChange{{Path: "value", Sensitive: true}})
		default:
			return nil, fmt.Errorf("CreateSecret %s: %w", s.Name, scrub(err, s.Value))
		}
		if !x.Clock.Now().Before(deadline) {
			return nil, fmt.Errorf("CreateSecret %s: the name is still being deleted after %s: %w", s.Name, x.Wait(secretsPropagationTimeout), scrub(err, s.Value))
		}
		x.Say(r.Address, "the secret's name is still being deleted; retrying")
		if err := x.Clock.Sleep(ctx, retryDelay); err != nil {
			return nil, err
		}
	}
}

// restore brings back a secret scheduled for deletion (ours only), then
// writes the desired key and tags.
func (k SecretKind) restore(ctx context.Context, x *resource.Ctx, r *resource.Resource, s *stack.SecretSpec) (resource.Outputs, error) {
	d, err := x.AWS.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.Name)})
	if err != nil {
		return nil, fmt.Errorf("DescribeSecret %s: %w", s.Name, err)
	}
	tags := secretTags(d.Tags)
	if !isOurs(r, tags) {
		return nil, fmt.Errorf("secret %s (scheduled for deletion) %w", s.Name, errConflict)
	}
	x.Say(r.Address, "restoring the secret scheduled for deletion")
	if _, err := x.AWS.Secrets.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(s.Name)}); err != nil {
		return nil, fmt.Errorf("RestoreSecret %s: %w", s.Name, err)
	}
	arn := aws.ToString(d.ARN)
	live := &resource.Live{ID: arn, Ours: true, Outputs: resource.Outputs{"arn": arn, "name": s.Name},
		Raw: liveSecret{arn: arn, tags: tags}}
	return k.Update(ctx, x, r, live, nil, []plan.FieldChange{{Path: "value", Sensitive: true}})
}

func (SecretKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, _ resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	s, err := specOf[stack.SecretSpec](r)
	if err != nil {
		return nil, err
	}
	ls := live.Raw.(liveSecret)
	outputs := resource.Outputs{"arn": ls.arn, "name": s.Name, "version_id": live.Outputs["version_id"]}
	if changedPaths(changed)["value"] && s.Value != "" {
		// The same token with the same value is idempotent, so a re-run
		// after a crash converges without a second version.
		put, err := x.AWS.Secrets.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId:           aws.String(ls.arn),
			SecretString:       aws.String(s.Value),
			ClientRequestToken: aws.String(s.VersionID),
		})
		if err != nil {
			return nil, fmt.Errorf("PutSecretValue %s: %w", s.Name, scrub(err, s.Value))
		}
		// Going back to a key stored before: its version exists, so the put
		// is ignored (idempotent token) and AWSCURRENT stays where it was.
		// Move the stage explicitly.
		if !slices.Contains(put.VersionStages, "AWSCURRENT") {
			in := &secretsmanager.UpdateSecretVersionStageInput{
				SecretId: aws.String(ls.arn), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(s.VersionID)}
			if cur := live.Outputs["version_id"]; cur != "" && cur != s.VersionID {
				in.RemoveFromVersionId = aws.String(cur)
			}
			if _, err := x.AWS.Secrets.UpdateSecretVersionStage(ctx, in); err != nil {
				return nil, fmt.Errorf("UpdateSecretVersionStage %s: %w", s.Name, err)
			}
		}
		outputs["version_id"] = s.VersionID
	}
	set, remove := tagChanges(r.Tags, ls.tags)
	if len(set) > 0 {
		if _, err := x.AWS.Secrets.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(ls.arn), Tags: secretTagList(set)}); err != nil {
			return nil, fmt.Errorf("TagResource %s: %w", s.Name, err)
		}
	}
	if len(remove) > 0 {
		if _, err := x.AWS.Secrets.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(ls.arn), TagKeys: remove}); err != nil {
			return nil, fmt.Errorf("UntagResource %s: %w", s.Name, err)
		}
	}
	return outputs, nil
}

// OutputsChangedByUpdate: a new key gives the secret a new version id.
func (SecretKind) OutputsChangedByUpdate(*resource.Resource) []string { return []string{"version_id"} }

func (SecretKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ *resource.Live) error {
	s, err := specOf[stack.SecretSpec](r)
	if err != nil {
		return err
	}
	in := &secretsmanager.DeleteSecretInput{SecretId: aws.String(s.Name)}
	if s.ForceDelete {
		in.ForceDeleteWithoutRecovery = aws.Bool(true)
	} else {
		in.RecoveryWindowInDays = aws.Int64(int64(max(s.RecoveryWindowDays, 7)))
	}
	_, err = x.AWS.Secrets.DeleteSecret(ctx, in)
	switch {
	case err == nil, awserr.IsNotFound(err):
	case codeWithMessage("InvalidRequestException", "already scheduled for deletion", "marked for deletion")(err) && !s.ForceDelete:
		// Deleting what is already going away succeeds.
	default:
		return fmt.Errorf("DeleteSecret %s: %w", s.Name, err)
	}
	// docs/research/aws-ecs.md §5: wait until Describe is NotFound or shows DeletedDate.
	return poll(ctx, x, "secret "+s.Name+" deletion", 5*time.Second, secretsPropagationTimeout, func() (bool, error) {
		d, err := x.AWS.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.Name)})
		if awserr.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("DescribeSecret %s: %w", s.Name, err)
		}
		return d.DeletedDate != nil, nil
	})
}

func secretTags(tags []smtypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func secretTagList(tags map[string]string) []smtypes.Tag {
	var out []smtypes.Tag
	for _, k := range sortedTagKeys(tags) {
		out = append(out, smtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// scrub replaces err with one that cannot contain key, should a service ever
// echo the value back in a message.
func scrub(err error, key string) error {
	if err == nil || key == "" || !strings.Contains(err.Error(), key) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), key, "(redacted)"))
}
