package identity

import (
	"strings"
	"testing"
)

// FuzzProfiles: whatever the annotations hold, the parsers return only
// valid, distinct profile names with valid roles, at most MaxProfiles, and
// container profiles only with both names set.
func FuzzProfiles(f *testing.F) {
	for _, seed := range []string{
		"reader=arn:aws:iam::111122223333:role/reader, writer=arn:aws:iam::111122223333:role/writer",
		"a=b=c", "=,=,", "dup=arn:aws:iam::111122223333:role/a,dup=arn:aws:iam::111122223333:role/b",
		"default=arn:aws:iam::111122223333:role/x", "\xff=\xfe", strings.Repeat("p=arn:aws:iam::111122223333:role/x,", 40),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		p := ParseProfiles(value)
		if len(p.Profiles) > MaxProfiles {
			t.Fatalf("%d profiles, more than %d", len(p.Profiles), MaxProfiles)
		}
		seen := map[string]bool{}
		for _, pr := range p.Profiles {
			if ValidateProfileName(pr.Name) != nil || ValidateRoleARN(pr.RoleARN) != nil || seen[pr.Name] || !p.Declared[pr.Name] {
				t.Fatalf("profile %+v is invalid, repeated or undeclared", pr)
			}
			seen[pr.Name] = true
		}
		cp, err := ParseContainerProfiles(value)
		if err != nil {
			return
		}
		for c, name := range cp {
			if c == "" || name == "" || strings.Contains(c, ",") || strings.Contains(name, ",") {
				t.Fatalf("container profile %q=%q", c, name)
			}
		}
	})
}
