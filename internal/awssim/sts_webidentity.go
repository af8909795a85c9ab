package awssim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/deploybot/deploybot/internal/iampolicy"
)

// STS AssumeRoleWithWebIdentity as GitHub Actions OIDC uses it
// (docs/research/github-actions.md): the token's issuer must be an OIDC provider
// of the account, its audience one of the provider's client ids, and the
// role's trust policy must allow the federated principal with the token's
// sub/aud claims. The signature is not verified.

type stsSession struct {
	UserID string
}

func (w *World) stsSessions() map[string]*stsSession {
	return *State(w, "sts", func() *map[string]*stsSession { m := map[string]*stsSession{}; return &m })
}

var sessionNameRe = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

func stsAccessDenied() error {
	return Err("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
}

func invalidIdentityToken(msg string) error {
	return &ststypes.InvalidIdentityTokenException{Message: aws.String(msg)}
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		return nil, err
	}
	return claims, nil
}

func claimString(c map[string]any, k string) string {
	switch v := c[k].(type) {
	case string:
		return v
	case []any:
		if len(v) > 0 {
			s, _ := v[0].(string)
			return s
		}
	}
	return ""
}

// trustAllowsWebIdentity evaluates a role's trust policy for a federated
// principal and the token's claims as condition keys ("<host>:sub", ...).
func trustAllowsWebIdentity(trust, provider string, ctx map[string]string) bool {
	doc, err := iampolicy.Parse(trust)
	if err != nil {
		return false
	}
	eval := &iampolicy.Document{Version: doc.Version}
	for _, s := range doc.Statement {
		matches := false
		for _, f := range s.Principal["Federated"] {
			matches = matches || f == provider
		}
		if !matches {
			continue
		}
		s.Resource = iampolicy.StringList{"*"}
		s.Principal = nil
		eval.Statement = append(eval.Statement, s)
	}
	return eval.Allows(iampolicy.Request{Action: "sts:AssumeRoleWithWebIdentity", Context: ctx})
}

func init() {
	Handle(func(ctx context.Context, w *World, in *sts.AssumeRoleWithWebIdentityInput) (*sts.AssumeRoleWithWebIdentityOutput, error) {
		session := aws.ToString(in.RoleSessionName)
		if !sessionNameRe.MatchString(session) {
			return nil, Err("ValidationError", "1 validation error detected: Value '"+session+"' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")
		}
		claims, err := jwtClaims(aws.ToString(in.WebIdentityToken))
		if err != nil {
			return nil, invalidIdentityToken("The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
		}
		iss := claimString(claims, "iss")
		host := strings.TrimSuffix(strings.TrimPrefix(iss, "https://"), "/")
		providerARN := "arn:aws:iam::" + w.Account + ":oidc-provider/" + host
		p, ok := w.iam().Providers[providerARN]
		if !ok {
			return nil, invalidIdentityToken("No OpenIDConnect provider found in your account for " + iss)
		}
		aud, sub := claimString(claims, "aud"), claimString(claims, "sub")
		if !hasInclude(p.ClientIDs, aud) {
			return nil, invalidIdentityToken("Incorrect token audience")
		}
		now := w.Clock.Now()
		if exp, ok := claims["exp"].(float64); ok && now.Unix() >= int64(exp) {
			return nil, &ststypes.ExpiredTokenException{Message: aws.String(fmt.Sprintf("Token expired: current date/time %d must be before the expiration date/time %d", now.Unix(), int64(exp)))}
		}
		role := w.roleByARN(aws.ToString(in.RoleArn))
		if role == nil || !trustAllowsWebIdentity(role.TrustPolicy, providerARN, map[string]string{host + ":sub": sub, host + ":aud": aud, host + ":iss": iss}) {
			return nil, stsAccessDenied()
		}
		dur := aws.ToInt32(in.DurationSeconds)
		if dur == 0 {
			dur = 3600
		}
		if dur < 900 || dur > role.MaxSession {
			return nil, Err("ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
		}
		seq := w.NextSeq("sts-session")
		seed := fmt.Sprintf("sts#%s#%d", role.ARN, seq)
		key := "ASIA" + token(seed, 16, alnumUpper)
		assumed := "arn:aws:sts::" + w.Account + ":assumed-role/" + role.Name + "/" + session
		w.stsSessions()[assumed] = &stsSession{UserID: role.ID + ":" + session}
		// Calls signed with these credentials are authorized with the role's
		// identity policies as they are now.
		w.AddPrincipal(key, Principal{ARN: assumed, Policy: w.rolePolicy(role)})
		return &sts.AssumeRoleWithWebIdentityOutput{
			Credentials: &ststypes.Credentials{AccessKeyId: aws.String(key), SecretAccessKey: aws.String(token(seed+"secret", 40, alnumMixed)),
				SessionToken: aws.String(token(seed+"session", 120, alnumMixed)), Expiration: aws.Time(now.Add(time.Duration(dur) * time.Second))},
			AssumedRoleUser:             &ststypes.AssumedRoleUser{Arn: aws.String(assumed), AssumedRoleId: aws.String(role.ID + ":" + session)},
			SubjectFromWebIdentityToken: aws.String(sub), Audience: aws.String(aud), Provider: aws.String(providerARN),
		}, nil
	})
}
