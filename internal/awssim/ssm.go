package awssim

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

type ssmParameter struct {
	Name, Value, Description string
	Type                     ssmtypes.ParameterType
	Version                  int64
	Modified                 time.Time
	Tags                     map[string]string
}

func (w *World) ssmParams() map[string]*ssmParameter {
	return *State(w, "ssm", func() *map[string]*ssmParameter { m := map[string]*ssmParameter{}; return &m })
}

func (w *World) ssmARN(name string) string {
	return "arn:aws:ssm:" + w.Region + ":" + w.Account + ":parameter/" + strings.TrimPrefix(name, "/")
}

func parameterNotFound() error {
	return &ssmtypes.ParameterNotFound{Message: aws.String("")}
}

func init() {
	RegisterInventory(func(w *World) []Item {
		return listed(w.ssmParams(), func(n string, p *ssmParameter) (Item, bool) {
			return Item{Service: "ssm", Type: "parameter", ID: w.ssmARN(n), Tags: copyTags(p.Tags)}, true
		})
	})

	// PutParameter with Overwrite=false is a create-if-absent: deploybot's
	// environment lock relies on exactly one of two racing calls succeeding.
	Handle(func(ctx context.Context, w *World, in *ssm.PutParameterInput) (*ssm.PutParameterOutput, error) {
		name := aws.ToString(in.Name)
		if name == "" || aws.ToString(in.Value) == "" {
			return nil, Err("ValidationException", "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1")
		}
		overwrite := aws.ToBool(in.Overwrite)
		if overwrite && len(in.Tags) > 0 {
			return nil, Err("ValidationException", "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.")
		}
		params := w.ssmParams()
		p, exists := params[name]
		if exists && !overwrite {
			return nil, &ssmtypes.ParameterAlreadyExists{Message: aws.String("The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")}
		}
		typ := in.Type
		if typ == "" {
			if !exists {
				typ = ssmtypes.ParameterTypeString
			} else {
				typ = p.Type
			}
		}
		if !exists {
			p = &ssmParameter{Name: name, Tags: map[string]string{}}
			for _, t := range in.Tags {
				p.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			params[name] = p
		}
		p.Value, p.Type, p.Description = aws.ToString(in.Value), typ, aws.ToString(in.Description)
		p.Version++
		p.Modified = w.Clock.Now()
		return &ssm.PutParameterOutput{Version: p.Version, Tier: ssmtypes.ParameterTierStandard}, nil
	})

	Handle(func(ctx context.Context, w *World, in *ssm.GetParameterInput) (*ssm.GetParameterOutput, error) {
		p, ok := w.ssmParams()[aws.ToString(in.Name)]
		if !ok {
			return nil, parameterNotFound()
		}
		return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: aws.String(p.Name), Value: aws.String(p.Value), Type: p.Type,
			Version: p.Version, LastModifiedDate: aws.Time(p.Modified), ARN: aws.String(w.ssmARN(p.Name)), DataType: aws.String("text")}}, nil
	})

	Handle(func(ctx context.Context, w *World, in *ssm.DeleteParameterInput) (*ssm.DeleteParameterOutput, error) {
		name := aws.ToString(in.Name)
		if _, ok := w.ssmParams()[name]; !ok {
			return nil, parameterNotFound()
		}
		delete(w.ssmParams(), name)
		return &ssm.DeleteParameterOutput{}, nil
	})
}
