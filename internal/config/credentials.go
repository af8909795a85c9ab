package config

import (
	"math"
	"regexp"
	"strings"
)

// Credential detection for worker.env. The values of worker.env are
// committed to git and written into the task definition in plain text, so a
// credential there is a leak however it is named. Two kinds of rule, written
// for deploybot after the well-known secret scanners' rule sets (gitleaks'
// config/gitleaks.toml rules, https://github.com/gitleaks/gitleaks, and
// detect-secrets' KeywordDetector and plugins,
// https://github.com/Yelp/detect-secrets):
//
//   - value shapes: a value that has the form of a known credential is one,
//     whatever the variable is called (an AWS access key id, a GitHub or
//     GitLab token, a Slack or Stripe key, an OpenAI-style sk- key, a Google
//     API key, a JWT, a PEM private key, a URL with a password in it, a
//     service-account JSON);
//   - names: a variable whose name says it holds a credential (its last
//     word is PASSWORD, SECRET, TOKEN, CREDENTIALS..., or its last two are
//     API_KEY, SECRET_KEY, PRIVATE_KEY..., or it is one of the well-known
//     ones: AWS_SECRET_ACCESS_KEY, PGPASSWORD, ...). A name that only
//     mentions one (DB_PASSWORD_FILE, TOKEN_URL, SECRET_ARN) points at a
//     credential kept elsewhere, which is the right way, and passes; so does
//     a value that is a reference (${VAR}, an ARN).

// credentialRule is one rule: what it is called in the message, and the
// advice for it.
type credentialRule struct {
	what   string
	re     *regexp.Regexp
	advice string
}

const (
	adviceAWS    = "the worker's task role (deploybot-NAME-task) gives AWS access; no access keys are needed, and keys in the file would be committed to git"
	adviceSecret = "environment values are stored in git and in the task definition in plain text; credentials belong in Secrets Manager (or a Prefect Secret block), read by the flow at run time with its role's permissions"
)

// valueRules are credential shapes, matched anywhere in a value.
var valueRules = []credentialRule{
	{"an AWS access key id", regexp.MustCompile(`\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b`), adviceAWS},
	{"a GitHub token", regexp.MustCompile(`\b(?:gh[pousr]_[0-9A-Za-z]{36,}|github_pat_[0-9A-Za-z_]{22,})\b`), adviceSecret},
	{"a GitLab token", regexp.MustCompile(`\bglpat-[0-9A-Za-z_-]{20,}\b`), adviceSecret},
	{"a Slack token", regexp.MustCompile(`\bxox[abposr]-[0-9A-Za-z-]{10,}\b`), adviceSecret},
	{"a Slack webhook URL", regexp.MustCompile(`https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/]{20,}`), adviceSecret},
	{"a Stripe key", regexp.MustCompile(`\b[sr]k_(?:live|test)_[0-9A-Za-z]{20,}\b`), adviceSecret},
	{"an API secret key (sk-...)", regexp.MustCompile(`\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}`), adviceSecret},
	{"a Google API key", regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}\b`), adviceSecret},
	{"a JSON Web Token", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`), adviceSecret},
	{"a private key", regexp.MustCompile(`-----BEGIN[A-Z ]*PRIVATE KEY( BLOCK)?-----`), adviceSecret},
	{"a URL with a password in it", regexp.MustCompile(`\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@`), adviceSecret},
	{"a service account key (JSON)", regexp.MustCompile(`"(?:private_key|private_key_id)"\s*:`), adviceSecret},
}

// credentialNames are well-known variables that hold a credential, by their
// whole name.
var credentialNames = map[string]string{
	"AWS_SECRET_ACCESS_KEY": adviceAWS, "AWS_SESSION_TOKEN": adviceAWS, "AWS_ACCESS_KEY_ID": adviceAWS,
	"AWS_SECURITY_TOKEN": adviceAWS, "PGPASSWORD": adviceSecret, "MYSQL_PWD": adviceSecret,
	"PREFECT_API_AUTH_STRING": adviceSecret, "GCP_CREDENTIALS": adviceSecret, "GOOGLE_CREDENTIALS": adviceSecret,
	"AZURE_CLIENT_SECRET": adviceSecret, "NPM_TOKEN": adviceSecret, "DATABASE_URL": "",
}

// credentialWords end a name that holds a credential; credentialPairs are
// its last two words.
var (
	credentialWords = map[string]bool{
		"PASSWORD": true, "PASSWD": true, "PASS": true, "PWD": true, "PASSPHRASE": true,
		"SECRET": true, "SECRETS": true, "TOKEN": true, "CREDENTIAL": true, "CREDENTIALS": true, "CREDS": true,
		"APIKEY": true, "PRIVATEKEY": true, "SECRETKEY": true, "ACCESSKEY": true, "AUTHKEY": true,
	}
	credentialPairs = map[[2]string]bool{
		{"API", "KEY"}: true, {"SECRET", "KEY"}: true, {"PRIVATE", "KEY"}: true, {"ACCESS", "KEY"}: true,
		{"AUTH", "KEY"}: true, {"CLIENT", "KEY"}: true, {"SERVICE", "KEY"}: true, {"ACCOUNT", "KEY"}: true,
		{"SIGNING", "KEY"}: true, {"ENCRYPTION", "KEY"}: true, {"MASTER", "KEY"}: true, {"AUTH", "STRING"}: true,
		{"CONNECTION", "STRING"}: true,
	}
	// referenceValue is a value that names a credential kept elsewhere.
	referenceValue = regexp.MustCompile(`^(?:\$\{[^}]+\}|\$[A-Za-z_][A-Za-z0-9_]*|arn:[a-z-]+:[a-z0-9-]+:.*|)$`)
)

// credentialIn says whether the variable name=value holds a credential: what
// it looks like, and what to do instead. ok is false when it does not.
func credentialIn(name, value string) (what, advice string, ok bool) {
	for _, r := range valueRules {
		m := r.re.FindStringSubmatch(value)
		if m == nil {
			continue
		}
		if r.what == "a URL with a password in it" && referenceValue.MatchString(m[1]) {
			continue // postgres://app:${DB_PASSWORD}@db/...: a reference
		}
		return r.what, r.advice, true
	}
	if referenceValue.MatchString(strings.TrimSpace(value)) {
		return "", "", false
	}
	up := strings.ToUpper(name)
	if advice, known := credentialNames[up]; known {
		if advice == "" {
			// DATABASE_URL holds a credential only when it carries a
			// password, which the value rules above have looked for.
			return "", "", false
		}
		return "a credential (" + up + ")", advice, true
	}
	words := strings.FieldsFunc(up, func(r rune) bool { return r == '_' || r == '-' })
	for len(words) > 1 && isDigits(words[len(words)-1]) {
		words = words[:len(words)-1] // DB_PASSWORD_2
	}
	if len(words) == 0 {
		return "", "", false
	}
	last := words[len(words)-1]
	if credentialWords[last] && up != "PWD" { // PWD alone is the working directory
		return "a credential (its name ends in " + last + ")", adviceSecret, true
	}
	if len(words) > 1 && credentialPairs[[2]string{words[len(words)-2], last}] {
		return "a credential (its name ends in " + words[len(words)-2] + "_" + last + ")", adviceSecret, true
	}
	if len(words) > 2 && last == "ID" && words[len(words)-2] == "KEY" && words[len(words)-3] == "ACCESS" {
		return "a credential (an access key id)", adviceAWS, true
	}
	// A name ending in KEY holds a credential when its value looks like
	// one: long and random (a cache key or an object key is neither).
	if last == "KEY" && looksRandom(value) {
		return "a credential (a random-looking value for a name ending in KEY)", adviceSecret, true
	}
	return "", "", false
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// looksRandom is detect-secrets' high-entropy test in spirit: at least 20
// characters of one token, and at least 3.5 bits of Shannon entropy per
// character (English words and paths stay well below).
func looksRandom(v string) bool {
	if len(v) < 20 || strings.ContainsAny(v, " \t/") {
		return false
	}
	counts := map[rune]int{}
	n := 0
	for _, r := range v {
		counts[r]++
		n++
	}
	h := 0.0
	for _, c := range counts {
		p := float64(c) / float64(n)
		h -= p * math.Log2(p)
	}
	return h >= 3.5
}
