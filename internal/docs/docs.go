// Package docs generates the reference sections of README.md from their
// sources of truth (environments/schema.json, action.yml), so that the README
// cannot drift from what deploybot accepts; docs_test.go checks it.
package docs

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

type schemaNode struct {
	Type        any                    `json:"type"`
	Description string                 `json:"description"`
	Default     any                    `json:"default"`
	Enum        []any                  `json:"enum"`
	Required    []string               `json:"required"`
	Properties  map[string]*schemaNode `json:"properties"`
	Items       *schemaNode            `json:"items"`
	Order       []string               `json:"-"`
}

// EnvironmentReference renders schema.json as a markdown table, one row per
// field, in the schema's own key order.
func EnvironmentReference(schemaJSON []byte) (string, error) {
	var root schemaNode
	if err := json.Unmarshal(schemaJSON, &root); err != nil {
		return "", fmt.Errorf("environments/schema.json: %w", err)
	}
	order, err := keyOrder(schemaJSON)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| field | type | default | required | description |\n|---|---|---|---|---|\n")
	var walk func(prefix string, n *schemaNode)
	walk = func(prefix string, n *schemaNode) {
		req := map[string]bool{}
		for _, r := range n.Required {
			req[r] = true
		}
		for _, k := range order[prefix] {
			c := n.Properties[k]
			if c == nil {
				continue
			}
			path := k
			if prefix != "" {
				path = prefix + "." + k
			}
			typ := fmt.Sprint(c.Type)
			if alts, ok := c.Type.([]any); ok {
				// A field of several JSON types (a policy as a mapping or as
				// a string of JSON).
				names := make([]string, len(alts))
				for i, a := range alts {
					names[i] = fmt.Sprint(a)
				}
				typ = strings.Join(names, " or ")
			}
			if c.Items != nil {
				typ = "list of " + fmt.Sprint(c.Items.Type)
			}
			if len(c.Enum) > 8 {
				typ = fmt.Sprintf("%v (one of %d values in schema.json)", c.Type, len(c.Enum))
			} else if len(c.Enum) > 0 {
				var vals []string
				for _, e := range c.Enum {
					vals = append(vals, fmt.Sprint(e))
				}
				typ = strings.Join(vals, " \\| ")
			}
			def := ""
			if c.Default != nil {
				def = "`" + fmt.Sprint(c.Default) + "`"
			}
			r := ""
			if req[k] {
				r = "yes"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", path, typ, def, r, cell(c.Description))
			if len(c.Properties) > 0 {
				walk(path, c)
			}
		}
	}
	walk("", &root)
	return b.String(), nil
}

// keyOrder returns, for each object path, its property names in file order
// (encoding/json loses it; yaml.v3 nodes keep it, and JSON is YAML).
func keyOrder(schemaJSON []byte) (map[string][]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(schemaJSON, &doc); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value != "properties" {
				continue
			}
			props := n.Content[i+1]
			for j := 0; j+1 < len(props.Content); j += 2 {
				k := props.Content[j].Value
				out[prefix] = append(out[prefix], k)
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, props.Content[j+1])
			}
		}
	}
	walk("", doc.Content[0])
	return out, nil
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.Join(strings.Fields(s), " ")
}

type actionYML struct {
	Inputs map[string]struct {
		Description string `yaml:"description"`
		Default     string `yaml:"default"`
		Required    bool   `yaml:"required"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
	} `yaml:"outputs"`
}

// ActionReference renders action.yml's inputs and outputs as markdown tables.
func ActionReference(actionYAML []byte) (string, error) {
	var a actionYML
	if err := yaml.Unmarshal(actionYAML, &a); err != nil {
		return "", fmt.Errorf("action.yml: %w", err)
	}
	var b strings.Builder
	b.WriteString("| input | default | description |\n|---|---|---|\n")
	for _, k := range slices.Sorted(maps.Keys(a.Inputs)) {
		in := a.Inputs[k]
		def := ""
		if in.Default != "" {
			def = "`" + in.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", k, def, cell(in.Description))
	}
	b.WriteString("\n| output | description |\n|---|---|\n")
	for _, k := range slices.Sorted(maps.Keys(a.Outputs)) {
		fmt.Fprintf(&b, "| `%s` | %s |\n", k, cell(a.Outputs[k].Description))
	}
	return b.String(), nil
}

// Replace puts body between the markers <!-- BEGIN name --> and
// <!-- END name --> of doc.
func Replace(doc, name, body string) (string, error) {
	begin, end := "<!-- BEGIN "+name+" -->\n", "<!-- END "+name+" -->"
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("README.md: markers for %s not found", name)
	}
	return doc[:i+len(begin)] + body + doc[j:], nil
}
