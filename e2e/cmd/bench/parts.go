package main

import (
	"regexp"
	"strings"
)

// A run may leave parts out (--parts). Each part's section and goal rows
// are marked in the report, so that a run keeps the sections and goal
// rows of the parts it left out as the last report had them; each section
// says which run measured it.

// block wraps a part's section in its markers.
func block(part, body string) string {
	return "<!-- part:" + part + " -->\n" + body + "<!-- /part:" + part + " -->\n\n"
}

// goalRow marks a row of the goals table as a part's.
func goalRow(part, row string) string {
	return strings.TrimSuffix(row, "\n") + " <!-- goal:" + part + " -->\n"
}

var (
	blockRE = regexp.MustCompile(`(?s)<!-- part:(\w+) -->\n(.*?)<!-- /part:(\w+) -->\n`)
	goalRE  = regexp.MustCompile(`(?m)^.* <!-- goal:(\w+) -->$`)
)

// kept is what an earlier report holds of each part.
type kept struct {
	blocks map[string]string   // part -> section, markers excluded
	goals  map[string][]string // part -> goal rows, markers included
}

func parseKept(old string) kept {
	k := kept{blocks: map[string]string{}, goals: map[string][]string{}}
	for _, m := range blockRE.FindAllStringSubmatch(old, -1) {
		if m[1] == m[3] {
			k.blocks[m[1]] = m[2]
		}
	}
	for _, m := range goalRE.FindAllStringSubmatch(old, -1) {
		k.goals[m[1]] = append(k.goals[m[1]], m[0]+"\n")
	}
	return k
}
