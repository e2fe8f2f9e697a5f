// Package chartdoc makes the values table of the chart's README from the
// comments of its values.yaml, so the two cannot drift: every key must have
// a comment, and TestChartReadme holds the README to the table.
package chartdoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Markers around the generated table in the README.
const (
	Begin = "<!-- values table: generated from values.yaml by make chart-docs; do not edit -->"
	End   = "<!-- end of values table -->"
)

// Value is one key of values.yaml.
type Value struct {
	Key         string // dotted path
	Default     string // JSON; empty for a section (a mapping of values)
	Description string
}

// Parse returns every key of values.yaml in file order, or an error naming
// the keys without a comment.
func Parse(valuesYAML []byte) ([]Value, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(valuesYAML, &doc); err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("values.yaml: not a mapping")
	}
	var out []Value
	var missing []string
	var walk func(prefix string, m *yaml.Node) error
	walk = func(prefix string, m *yaml.Node) error {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			key := prefix + k.Value
			desc := comment(k.HeadComment)
			if desc == "" {
				missing = append(missing, key)
			}
			if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
				out = append(out, Value{Key: key, Description: desc})
				if err := walk(key+".", v); err != nil {
					return err
				}
				continue
			}
			var val any
			if err := v.Decode(&val); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			js, err := json.Marshal(val)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			out = append(out, Value{Key: key, Default: string(js), Description: desc})
		}
		return nil
	}
	if err := walk("", doc.Content[0]); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("values.yaml: keys without a comment: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// comment is a head comment as one line of text: the last paragraph (a
// blank line separates a file or section header from the key's own).
func comment(head string) string {
	paras := strings.Split(strings.TrimSpace(head), "\n\n")
	var words []string
	for _, line := range strings.Split(paras[len(paras)-1], "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if line != "" {
			words = append(words, line)
		}
	}
	return strings.Join(words, " ")
}

// Table renders values as a Markdown table.
func Table(values []Value) string {
	var b bytes.Buffer
	b.WriteString("| Key | Default | Description |\n|---|---|---|\n")
	for _, v := range values {
		def := ""
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		key := "`" + v.Key + "`"
		if v.Default == "" {
			key = "**" + key + "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", key, escape(def), escape(v.Description))
	}
	return b.String()
}

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Splice replaces the table between Begin and End in readme.
func Splice(readme, table string) (string, error) {
	i := strings.Index(readme, Begin)
	j := strings.Index(readme, End)
	if i < 0 || j < i {
		return "", fmt.Errorf("README has no %q ... %q markers", Begin, End)
	}
	return readme[:i+len(Begin)] + "\n" + table + readme[j:], nil
}
