package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"
)

// narrator prints the demo's steps; colour only on a terminal.
type narrator struct {
	w     io.Writer
	color bool
}

func (n *narrator) printf(format string, args ...any) { fmt.Fprintf(n.w, format, args...) }

func (n *narrator) step(title, what string) {
	n.printf("\n%s\n%s\n", n.bold("== "+title), what)
}

func (n *narrator) yaml(v any) {
	b, err := yaml.Marshal(v)
	if err != nil {
		n.printf("  (cannot render: %v)\n", err)
		return
	}
	n.printf("%s", indentLines(string(b)))
}

func (n *narrator) json(raw []byte) {
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "  ", "  "); err != nil {
		n.printf("  %s\n", raw)
		return
	}
	n.printf("  %s\n", out.String())
}

// diff prints after, marking with + the lines that are not in before (a
// longest-common-subsequence line diff; the documents are small).
func (n *narrator) diff(before, after string) {
	a, b := strings.Split(strings.TrimRight(before, "\n"), "\n"), strings.Split(strings.TrimRight(after, "\n"), "\n")
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for j < len(b) {
		switch {
		case i < len(a) && a[i] == b[j]:
			n.printf("    %s\n", b[j])
			i, j = i+1, j+1
		case i < len(a) && lcs[i+1][j] >= lcs[i][j+1]:
			n.printf("  %s\n", n.red("- "+a[i]))
			i++
		default:
			n.printf("  %s\n", n.green("+ "+b[j]))
			j++
		}
	}
	for ; i < len(a); i++ {
		n.printf("  %s\n", n.red("- "+a[i]))
	}
}

// indent returns a writer that prints progress lines indented.
func (n *narrator) indent() io.Writer { return indentWriter{n.w} }

type indentWriter struct{ w io.Writer }

func (iw indentWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(iw.w, indentLines(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (n *narrator) paint(code, s string) string {
	if !n.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (n *narrator) bold(s string) string  { return n.paint("1", s) }
func (n *narrator) green(s string) string { return n.paint("32", s) }
func (n *narrator) red(s string) string   { return n.paint("31", s) }
