package prefectsim

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
)

// A container's command, read the way the container's shell runs it, for
// the few things the simulation needs to know: the arguments of `prefect
// worker start`, the variables the script sets and the files it writes
// (docs/research/prefect-flow-runs.md §E.3 writes the worker's name to a
// file for its health check). Only what deploybot's and Prefect's commands
// use is modelled: `sh -c` scripts of simple commands separated by `;`,
// `&&` or newlines, assignments, `$VAR`/`${VAR}` and command substitution
// of `hostname` and of a `python -c` that prints a uuid, `printf`/`echo`
// redirected to a file, and `exec`. The exec form (a command that is not a
// shell) gets no expansion, as Docker runs it.

// script is what running a container command amounts to.
type script struct {
	vars  map[string]string
	files map[string]string
	// argv of the last program the script runs (exec'd or not).
	argv []string
}

// runScript interprets command with env, for a container whose hostname is
// hostname; seed makes generated values (uuids) deterministic per task.
func runScript(command []string, env map[string]string, hostname, seed string) script {
	sc := script{vars: map[string]string{}, files: map[string]string{}}
	for k, v := range env {
		sc.vars[k] = v
	}
	body, isShell := shellBody(command)
	if !isShell {
		sc.argv = append([]string(nil), command...)
		return sc
	}
	for _, cmd := range splitCommands(body) {
		words, redirect := shellWords(cmd, sc.vars, hostname, seed)
		if len(words) == 0 {
			continue
		}
		// Leading assignments (NAME=value ...) with no command set variables.
		i := 0
		for ; i < len(words) && isAssignment(words[i]); i++ {
			name, value, _ := strings.Cut(words[i], "=")
			sc.vars[name] = value
		}
		words = words[i:]
		if len(words) == 0 {
			continue
		}
		if words[0] == "exec" {
			words = words[1:]
		}
		switch {
		case len(words) == 0:
		case redirect != "" && (words[0] == "printf" || words[0] == "echo"):
			out := strings.Join(words[1:], " ")
			if words[0] == "printf" && len(words) >= 3 && words[1] == "%s" {
				out = strings.Join(words[2:], "")
			} else if words[0] == "echo" {
				out += "\n"
			}
			sc.files[redirect] = out
		default:
			sc.argv = words
		}
	}
	return sc
}

// shellBody returns the script of an sh -c / bash -c command.
func shellBody(command []string) (string, bool) {
	if len(command) >= 3 && (strings.HasSuffix(command[0], "sh") || strings.HasSuffix(command[0], "bash")) && command[1] == "-c" {
		return command[2], true
	}
	if len(command) == 1 && strings.ContainsAny(command[0], " ;$") {
		return command[0], true // a CMD-SHELL-like single string
	}
	return "", false
}

// splitCommands splits a script on ; && || and newlines outside quotes.
func splitCommands(s string) []string {
	var out []string
	var cur strings.Builder
	quote := byte(0)
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' && i+1 < len(s) {
				cur.WriteByte(c)
				i++
				c = s[i]
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '$' && i+1 < len(s) && s[i+1] == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0 && (c == ';' || c == '\n'):
			out = append(out, cur.String())
			cur.Reset()
			continue
		case depth == 0 && (c == '&' || c == '|') && i+1 < len(s) && s[i+1] == c:
			out = append(out, cur.String())
			cur.Reset()
			i++
			continue
		}
		cur.WriteByte(c)
	}
	return append(out, cur.String())
}

var assignmentRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func isAssignment(w string) bool { return assignmentRe.MatchString(w) }

// shellWords splits one simple command into expanded words, and the file
// its output is redirected to (">" FILE).
func shellWords(cmd string, vars map[string]string, hostname, seed string) ([]string, string) {
	var words []string
	var cur strings.Builder
	inWord, redirectNext := false, false
	redirect := ""
	flush := func() {
		if !inWord {
			return
		}
		if redirectNext {
			redirect = cur.String()
			redirectNext = false
		} else {
			words = append(words, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case c == '>':
			flush()
			redirectNext = true
		case c == '\'':
			j := strings.IndexByte(cmd[i+1:], '\'')
			if j < 0 {
				j = len(cmd) - i - 1
			}
			cur.WriteString(cmd[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(cmd) && cmd[j] != '"'; j++ {
				if cmd[j] == '\\' {
					j++
				}
			}
			cur.WriteString(expand(cmd[i+1:min(j, len(cmd))], vars, hostname, seed))
			i = j
			inWord = true
		case c == '$':
			n, v := expandAt(cmd[i:], vars, hostname, seed)
			cur.WriteString(v)
			i += n - 1
			inWord = true
		case c == '\\' && i+1 < len(cmd):
			cur.WriteByte(cmd[i+1])
			i++
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words, redirect
}

// expand expands $ forms inside a double-quoted string.
func expand(s string, vars map[string]string, hostname, seed string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' {
			n, v := expandAt(s[i:], vars, hostname, seed)
			b.WriteString(v)
			i += n - 1
			continue
		}
		if s[i] == '\\' && i+1 < len(s) && strings.ContainsRune(`"$\`, rune(s[i+1])) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var pyUUIDSlice = regexp.MustCompile(`uuid4\(\)\.hex\[:(\d+)\]`)

// expandAt expands the $ form at the start of s, returning how many bytes
// it used and its value.
func expandAt(s string, vars map[string]string, hostname, seed string) (int, string) {
	if len(s) < 2 {
		return len(s), s
	}
	switch {
	case s[1] == '{':
		j := strings.IndexByte(s, '}')
		if j < 0 {
			return len(s), ""
		}
		return j + 1, vars[s[2:j]]
	case s[1] == '(':
		depth, j := 0, 1
		for ; j < len(s); j++ {
			if s[j] == '(' {
				depth++
			} else if s[j] == ')' {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		inner := strings.TrimSpace(s[2:min(j, len(s))])
		return min(j+1, len(s)), substitute(inner, hostname, seed)
	}
	j := 1
	for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
		j++
	}
	if j == 1 {
		return 1, "$"
	}
	return j, vars[s[1:j]]
}

// substitute is the output of a command substitution the model knows.
func substitute(cmd, hostname, seed string) string {
	switch {
	case cmd == "hostname":
		return hostname
	case strings.Contains(cmd, "uuid"):
		h := sha256.Sum256([]byte("uuid/" + seed))
		x := hex.EncodeToString(h[:16])
		if m := pyUUIDSlice.FindStringSubmatch(cmd); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil && n < len(x) {
				return x[:n]
			}
		}
		return x[0:8] + "-" + x[8:12] + "-4" + x[13:16] + "-8" + x[17:20] + "-" + x[20:32]
	}
	return ""
}
