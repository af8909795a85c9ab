package githubsim

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// ReadOutputs parses a step's GITHUB_OUTPUT file as the runner does:
// name=value lines and name<<DELIMITER … DELIMITER blocks, the form
// go-githubactions' SetOutput writes (docs/research/github-actions.md §1.6).
// A block whose delimiter never comes, or a line that is neither form, is an
// error, so that a test or the demo sees an Action that writes one.
func ReadOutputs(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var val []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				val = append(val, sc.Text())
			}
			if !closed {
				return nil, fmt.Errorf("GITHUB_OUTPUT: output %s: delimiter %s never closes", name, delim)
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		if name, val, ok := strings.Cut(line, "="); ok {
			out[name] = val
			continue
		}
		if line != "" {
			return nil, fmt.Errorf("GITHUB_OUTPUT: line %q is neither name=value nor name<<DELIMITER", line)
		}
	}
	return out, sc.Err()
}
