package event

import (
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"
)

// Text is an event as one line of text: "title: subject: message
// (elapsed)", the elapsed time only for events of a step (a wait's line
// says its own elapsed time and budget). Line breaks in the message (AWS
// and Prefect messages are not ours) become spaces, so one event is always
// one line.
func Text(e Event) string {
	var b strings.Builder
	for _, p := range []string{e.Title, e.Subject} {
		if p != "" {
			b.WriteString(oneLine(p))
			b.WriteString(": ")
		}
	}
	b.WriteString(oneLine(e.Message))
	if d, ok := e.Elapsed(); ok && e.Wait == nil {
		b.WriteString(" (")
		b.WriteString(d.Round(time.Second).String())
		b.WriteString(")")
	}
	return b.String()
}

func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}

// lineWriter writes whole lines, one at a time.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) write(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, line+"\n")
}

// Terminal writes events for a person at a terminal (the CLI's stderr):
// resource lines indented under the phase lines, with the elapsed time of
// each resource's step, and warnings marked as such.
func Terminal(w io.Writer) Sink {
	lw := &lineWriter{w: w}
	return Func(func(e Event) {
		line := Text(e)
		if e.Level == Warning {
			line = "warning: " + line
		}
		if e.Resource {
			line = "  " + line
		}
		if e.Environment != "" {
			line = "[" + oneLine(e.Environment) + "] " + line
		}
		lw.write(line)
	})
}

// Escaper makes untrusted text safe for where a sink writes it.
type Escaper func(string) string

// EscapeWorkflowData encodes text for the data part of a GitHub Actions
// workflow command: '%', CR and LF are percent-encoded, as the runner and
// @actions/core's escapeData do
// (https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts),
// so a message cannot end the command or start another one.
func EscapeWorkflowData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ActionsOptions configure the Actions sink.
type ActionsOptions struct {
	// Escape encodes the text of workflow commands (default
	// EscapeWorkflowData). The Action fills it with its own escaping of
	// untrusted strings.
	Escape Escaper
}

// EscapeWorkflowProperty encodes the value of a workflow command's
// property (an annotation's title): escapeData's characters and ':' and
// ',', which end a property, as @actions/core's escapeProperty does
// (https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts).
func EscapeWorkflowProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// plainLine makes text a log line the runner cannot read as a workflow
// command. The runner reads a line as a command when, after leading white
// space, it starts with "::" (ActionCommand.TryParseV2 in actions/runner),
// or, in the older form, contains "##[" (TryParse); Text has already made
// it one line. So a leading "::" is quoted and "##[" is broken up.
func plainLine(text string) string {
	text = strings.ReplaceAll(text, "##[", "# #[")
	if strings.HasPrefix(strings.TrimSpace(text), "::") {
		text = "> " + text
	}
	return text
}

// Actions writes events to a GitHub Actions job log: progress as plain
// lines, warnings and errors as ::warning:: and ::error:: workflow commands
// and notices as ::notice::, so the runner lists them on the run's summary
// page (https://docs.github.com/en/actions/reference/workflow-commands-for-github-actions),
// with the event's Title as the annotation's title. A plain line is never
// a command (plainLine), and a command's data and title are escaped, so no
// message can end a command or start another.
func Actions(w io.Writer, o ActionsOptions) Sink {
	lw := &lineWriter{w: w}
	esc := o.Escape
	if esc == nil {
		esc = EscapeWorkflowData
	}
	return Func(func(e Event) {
		title := e.Title
		if e.Level != Info {
			e.Title = "" // the annotation's title, not part of its text
		}
		text := Text(e)
		if e.Environment != "" {
			text = "[" + oneLine(e.Environment) + "] " + text
		}
		switch e.Level {
		case Notice, Warning, Error:
			props := ""
			if title != "" {
				props = " title=" + EscapeWorkflowProperty(title)
			}
			lw.write("::" + e.Level.String() + props + "::" + esc(text))
		default:
			lw.write(plainLine(text))
		}
	})
}

// jsonEvent is the JSON lines form of an Event.
type jsonEvent struct {
	Time        time.Time `json:"time"`
	Level       string    `json:"level"`
	Environment string    `json:"environment,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	Resource    bool      `json:"resource,omitempty"`
	Title       string    `json:"title,omitempty"`
	Message     string    `json:"message"`
	ElapsedMS   *int64    `json:"elapsed_ms,omitempty"`
	Wait        *jsonWait `json:"wait,omitempty"`
}

type jsonWait struct {
	What      string `json:"what"`
	ElapsedMS int64  `json:"elapsed_ms"`
	LeftMS    int64  `json:"left_ms"`
}

// JSONLines writes one JSON object per event and line, for machines.
func JSONLines(w io.Writer) Sink {
	lw := &lineWriter{w: w}
	return Func(func(e Event) {
		je := jsonEvent{Time: e.Time.UTC(), Level: e.Level.String(), Environment: e.Environment,
			Subject: e.Subject, Resource: e.Resource, Title: e.Title, Message: e.Message}
		if d, ok := e.Elapsed(); ok {
			ms := d.Milliseconds()
			je.ElapsedMS = &ms
		}
		if e.Wait != nil {
			je.Wait = &jsonWait{What: e.Wait.What, ElapsedMS: e.Wait.Elapsed.Milliseconds(), LeftMS: e.Wait.Left.Milliseconds()}
		}
		b, err := json.Marshal(je)
		if err != nil {
			return // only strings, numbers and times: cannot fail
		}
		lw.write(string(b))
	})
}
