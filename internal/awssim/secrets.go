package awssim

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

type secretVersion struct {
	ID      string
	Value   string
	Created time.Time
	Stages  []string
}

type secret struct {
	Name, ARN, Description string
	Created, LastChanged   time.Time
	orderedTags
	Versions    map[string]*secretVersion
	DeletedDate time.Time // zero unless scheduled for deletion
	PurgeAt     time.Time
	Forced      bool
}

type secretsState struct {
	ByARN map[string]*secret
}

func (w *World) secrets() *secretsState {
	return State(w, "secretsmanager", func() *secretsState { return &secretsState{ByARN: map[string]*secret{}} })
}

func init() {
	registerAdvancer(func(w *World) {
		now := w.Clock.Now()
		for arn, s := range w.secrets().ByARN {
			if !s.DeletedDate.IsZero() && !now.Before(s.PurgeAt) {
				delete(w.secrets().ByARN, arn)
			}
		}
	})
	RegisterInventory(func(w *World) []Item {
		return listed(w.secrets().ByARN, func(arn string, s *secret) (Item, bool) {
			typ := "secret"
			if !s.DeletedDate.IsZero() {
				typ = "secret (pending deletion)"
			}
			return Item{Service: "secretsmanager", Type: typ, ID: arn, Tags: copyTags(s.Tags)}, true
		})
	})
}

// findSecret resolves a SecretId: a name, a full ARN, or an ARN without the
// random suffix. Callers hold w.Mu.
func (w *World) findSecret(id string) *secret {
	st := w.secrets()
	if s, ok := st.ByARN[id]; ok {
		return s
	}
	for _, s := range st.ByARN {
		if s.Name == id || strings.TrimSuffix(s.ARN, s.ARN[len(s.ARN)-7:]) == id {
			return s
		}
	}
	return nil
}

func secretNotFound() error {
	return &smtypes.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
}

func markedForDeletion() error {
	return &smtypes.InvalidRequestException{Message: aws.String("You can't perform this operation on the secret because it was marked for deletion.")}
}

// SecretValue returns the AWSCURRENT SecretString of a live secret by ARN or
// name (what ECS injects into a container). Callers hold w.Mu.
func (w *World) SecretValue(id string) (string, bool) {
	s := w.findSecret(id)
	if s == nil || !s.DeletedDate.IsZero() {
		return "", false
	}
	if v := s.current(); v != nil {
		return v.Value, true
	}
	return "", false
}

func (s *secret) current() *secretVersion {
	for _, v := range s.Versions {
		for _, st := range v.Stages {
			if st == "AWSCURRENT" {
				return v
			}
		}
	}
	return nil
}

func (s *secret) sdkTags() []smtypes.Tag {
	tags := inTagOrder(s.orderedTags, func(k, v *string) smtypes.Tag { return smtypes.Tag{Key: k, Value: v} })
	if tags == nil {
		return []smtypes.Tag{}
	}
	return tags
}

func (s *secret) stages() map[string][]string {
	m := map[string][]string{}
	for id, v := range s.Versions {
		// Versions without staging labels are deprecated and not listed.
		if len(v.Stages) > 0 {
			m[id] = append([]string(nil), v.Stages...)
		}
	}
	return m
}

// putVersion adds a version as AWSCURRENT, moving AWSPREVIOUS to the old
// current one, as PutSecretValue does without VersionStages.
func (s *secret) putVersion(id, value string, now time.Time) {
	if old := s.current(); old != nil {
		for _, v := range s.Versions {
			v.Stages = without(v.Stages, "AWSPREVIOUS")
		}
		old.Stages = append(without(old.Stages, "AWSCURRENT"), "AWSPREVIOUS")
	}
	s.Versions[id] = &secretVersion{ID: id, Value: value, Created: now, Stages: []string{"AWSCURRENT"}}
	s.LastChanged = now
}

func without(list []string, v string) []string {
	var out []string
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func validToken(tok string) error {
	if tok != "" && (len(tok) < 32 || len(tok) > 64) {
		return &smtypes.InvalidParameterException{Message: aws.String("1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length greater than or equal to 32")}
	}
	return nil
}

func init() {
	Handle(func(ctx context.Context, w *World, in *secretsmanager.CreateSecretInput) (*secretsmanager.CreateSecretOutput, error) {
		w.advance()
		name := aws.ToString(in.Name)
		tok := aws.ToString(in.ClientRequestToken)
		if err := validToken(tok); err != nil {
			return nil, err
		}
		if name == "" || len(name) > 512 {
			return nil, &smtypes.InvalidParameterException{Message: aws.String("Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")}
		}
		if in.SecretString != nil && in.SecretBinary != nil {
			return nil, &smtypes.InvalidParameterException{Message: aws.String("You can't specify both a binary secret value and a string secret value in the same secret.")}
		}
		for _, s := range w.secrets().ByARN {
			if s.Name != name {
				continue
			}
			if !s.DeletedDate.IsZero() {
				// docs/research/aws-ecs.md §5 table: recreating a name right after
				// delete fails until it is restored or purged.
				return nil, &smtypes.InvalidRequestException{Message: aws.String("You can't create this secret because a secret with this name is already scheduled for deletion.")}
			}
			// The same ClientRequestToken with the same value is a retry of
			// this very request: answer as the first time.
			if v, ok := s.Versions[tok]; ok && tok != "" && v.Value == aws.ToString(in.SecretString) {
				return &secretsmanager.CreateSecretOutput{ARN: aws.String(s.ARN), Name: aws.String(s.Name), VersionId: aws.String(tok)}, nil
			}
			return nil, &smtypes.ResourceExistsException{Message: aws.String("The operation failed because the secret " + name + " already exists.")}
		}
		now := w.Clock.Now()
		seq := w.NextSeq("secret")
		arn := "arn:aws:secretsmanager:" + w.Region + ":" + w.Account + ":secret:" + name + "-" + token(fmt.Sprintf("%s#%d", name, seq), 6, alnumMixed)
		s := &secret{Name: name, ARN: arn, Description: aws.ToString(in.Description), Created: now, LastChanged: now,
			orderedTags: newOrderedTags(), Versions: map[string]*secretVersion{}}
		for _, t := range in.Tags {
			s.setTag(aws.ToString(t.Key), aws.ToString(t.Value))
		}
		out := &secretsmanager.CreateSecretOutput{ARN: aws.String(arn), Name: aws.String(name)}
		if in.SecretString != nil || in.SecretBinary != nil {
			if tok == "" {
				// The SDK fills ClientRequestToken itself; this only happens
				// to callers that strip it.
				tok = uuidFrom(fmt.Sprintf("%s#%d#v", name, seq))
			}
			s.putVersion(tok, aws.ToString(in.SecretString), now)
			out.VersionId = aws.String(tok)
		}
		w.secrets().ByARN[arn] = s
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *secretsmanager.DescribeSecretInput) (*secretsmanager.DescribeSecretOutput, error) {
		w.advance()
		s := w.findSecret(aws.ToString(in.SecretId))
		if s == nil {
			return nil, secretNotFound()
		}
		out := &secretsmanager.DescribeSecretOutput{ARN: aws.String(s.ARN), Name: aws.String(s.Name), CreatedDate: aws.Time(s.Created),
			LastChangedDate: aws.Time(s.LastChanged), Tags: s.sdkTags(), VersionIdsToStages: s.stages()}
		if s.Description != "" {
			out.Description = aws.String(s.Description)
		}
		if !s.DeletedDate.IsZero() {
			out.DeletedDate = aws.Time(s.DeletedDate)
		}
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *secretsmanager.PutSecretValueInput) (*secretsmanager.PutSecretValueOutput, error) {
		w.advance()
		s := w.findSecret(aws.ToString(in.SecretId))
		if s == nil {
			return nil, secretNotFound()
		}
		if !s.DeletedDate.IsZero() {
			return nil, markedForDeletion()
		}
		tok := aws.ToString(in.ClientRequestToken)
		if err := validToken(tok); err != nil {
			return nil, err
		}
		if tok == "" {
			tok = uuidFrom(fmt.Sprintf("%s#put#%d", s.ARN, w.NextSeq("secret-version")))
		}
		if v, ok := s.Versions[tok]; ok {
			// Idempotent for the same token and value; a different value
			// under an existing version id is refused.
			if v.Value != aws.ToString(in.SecretString) {
				return nil, &smtypes.ResourceExistsException{Message: aws.String("You can't modify an existing version, you can only create a new version.")}
			}
			return &secretsmanager.PutSecretValueOutput{ARN: aws.String(s.ARN), Name: aws.String(s.Name), VersionId: aws.String(tok), VersionStages: append([]string(nil), v.Stages...)}, nil
		}
		s.putVersion(tok, aws.ToString(in.SecretString), w.Clock.Now())
		return &secretsmanager.PutSecretValueOutput{ARN: aws.String(s.ARN), Name: aws.String(s.Name), VersionId: aws.String(tok), VersionStages: []string{"AWSCURRENT"}}, nil
	})

	Handle(func(ctx context.Context, w *World, in *secretsmanager.UpdateSecretVersionStageInput) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
		w.advance()
		s := w.findSecret(aws.ToString(in.SecretId))
		if s == nil {
			return nil, secretNotFound()
		}
		if !s.DeletedDate.IsZero() {
			return nil, markedForDeletion()
		}
		stage := aws.ToString(in.VersionStage)
		to, from := aws.ToString(in.MoveToVersionId), aws.ToString(in.RemoveFromVersionId)
		if to != "" {
			if _, ok := s.Versions[to]; !ok {
				return nil, &smtypes.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret version: " + to)}
			}
		}
		var holder string
		for id, v := range s.Versions {
			for _, st := range v.Stages {
				if st == stage {
					holder = id
				}
			}
		}
		if holder != "" && holder != to && holder != from {
			return nil, &smtypes.InvalidParameterException{Message: aws.String("The staging label " + stage + " is currently attached to version " + holder + ", so you must explicitly reference that version in RemoveFromVersionId.")}
		}
		if from != "" {
			v, ok := s.Versions[from]
			if !ok || holder != from {
				return nil, &smtypes.InvalidParameterException{Message: aws.String("The staging label " + stage + " is not attached to version " + from + ".")}
			}
			v.Stages = without(v.Stages, stage)
		}
		if to != "" && holder != to {
			if stage == "AWSCURRENT" && from != "" {
				// Moving AWSCURRENT moves AWSPREVIOUS to the version that had it.
				for _, v := range s.Versions {
					v.Stages = without(v.Stages, "AWSPREVIOUS")
				}
				s.Versions[from].Stages = append(s.Versions[from].Stages, "AWSPREVIOUS")
			}
			s.Versions[to].Stages = append(without(s.Versions[to].Stages, stage), stage)
		}
		s.LastChanged = w.Clock.Now()
		return &secretsmanager.UpdateSecretVersionStageOutput{ARN: aws.String(s.ARN), Name: aws.String(s.Name)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *secretsmanager.DeleteSecretInput) (*secretsmanager.DeleteSecretOutput, error) {
		w.advance()
		s := w.findSecret(aws.ToString(in.SecretId))
		if s == nil {
			return nil, secretNotFound()
		}
		force := aws.ToBool(in.ForceDeleteWithoutRecovery)
		window := aws.ToInt64(in.RecoveryWindowInDays)
		if force && in.RecoveryWindowInDays != nil {
			return nil, &smtypes.InvalidParameterException{Message: aws.String("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")}
		}
		if !force {
			if in.RecoveryWindowInDays == nil {
				window = 30 // Secrets Manager's default (docs/research/aws-ecs.md §7)
			}
			if window < 7 || window > 30 {
				return nil, &smtypes.InvalidParameterException{Message: aws.String("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")}
			}
			if !s.DeletedDate.IsZero() {
				return nil, markedForDeletion()
			}
		}
		now := w.Clock.Now()
		if s.DeletedDate.IsZero() {
			s.DeletedDate = now
		}
		if force {
			s.Forced = true
			s.PurgeAt = now.Add(w.timings.SecretForceDeletePurge)
		} else {
			s.PurgeAt = now.Add(time.Duration(window) * 24 * time.Hour)
		}
		return &secretsmanager.DeleteSecretOutput{ARN: aws.String(s.ARN), Name: aws.String(s.Name), DeletionDate: aws.Time(s.PurgeAt)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *secretsmanager.RestoreSecretInput) (*secretsmanager.RestoreSecretOutput, error) {
		w.advance()
		s := w.findSecret(aws.ToString(in.SecretId))
		if s == nil {
			return nil, secretNotFound()
		}
		if s.Forced {
			return nil, markedForDeletion()
		}
		s.DeletedDate, s.PurgeAt = time.Time{}, time.Time{}
		return &secretsmanager.RestoreSecretOutput{ARN: aws.String(s.ARN), Name: aws.String(s.Name)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *secretsmanager.TagResourceInput) (*secretsmanager.TagResourceOutput, error) {
		w.advance()
		s := w.findSecret(aws.ToString(in.SecretId))
		if s == nil {
			return nil, secretNotFound()
		}
		for _, t := range in.Tags {
			s.setTag(aws.ToString(t.Key), aws.ToString(t.Value))
		}
		return &secretsmanager.TagResourceOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *secretsmanager.UntagResourceInput) (*secretsmanager.UntagResourceOutput, error) {
		w.advance()
		s := w.findSecret(aws.ToString(in.SecretId))
		if s == nil {
			return nil, secretNotFound()
		}
		s.untag(in.TagKeys)
		return &secretsmanager.UntagResourceOutput{}, nil
	})
}
