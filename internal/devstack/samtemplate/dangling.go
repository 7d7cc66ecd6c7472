package samtemplate

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// danglingRefs warns about each !Ref, !GetAtt and ${} of !Sub, anywhere in
// Resources and Outputs, that names no parameter, resource or pseudo
// parameter of the template. The local stack evaluates only the properties
// it reads (not IAM policies, for instance), so without this a reference
// to a table the template never defines runs locally and then fails
// `sam deploy`. Names SAM generates from a declared resource
// (<Function>Role, <Api>ApiGatewayDefaultStage, ...) and its implicit APIs
// (ServerlessHttpApi, ServerlessRestApi) are not reported.
func (p *parser) danglingRefs(resources map[string]resource) {
	known := func(name string) bool {
		if strings.HasPrefix(name, "AWS::") || strings.HasPrefix(name, "Serverless") {
			return true
		}
		if _, ok := p.tmpl.Parameters[name]; ok {
			return true
		}
		for id := range resources {
			if strings.HasPrefix(name, id) {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	report := func(where, form, name string) {
		if known(name) || seen[where+" "+name] {
			return
		}
		seen[where+" "+name] = true
		p.warn("%s: %s %s names no parameter or resource of the template (sam deploy refuses it; the local stack does not evaluate that property)", where, form, name)
	}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch t := v.(type) {
		case map[string]any:
			if len(t) == 1 {
				if name, ok := t["Ref"].(string); ok {
					report(where, "!Ref", name)
					return
				}
				if arg, ok := t["Fn::GetAtt"]; ok {
					switch a := arg.(type) {
					case string:
						report(where, "!GetAtt", strings.SplitN(a, ".", 2)[0])
					case []any:
						if id, ok := firstString(a); ok {
							report(where, "!GetAtt", id)
						}
					}
					return
				}
				if arg, ok := t["Fn::Sub"]; ok {
					var tmpl string
					vars := map[string]bool{}
					switch a := arg.(type) {
					case string:
						tmpl = a
					case []any:
						tmpl, _ = firstString(a)
						if len(a) == 2 {
							if m, ok := a[1].(map[string]any); ok {
								for k, val := range m {
									vars[k] = true
									walk(where, val)
								}
							}
						}
					}
					for _, name := range subNames(tmpl) {
						if !vars[name] {
							report(where, "${}", name)
						}
					}
					return
				}
			}
			for _, k := range slices.Sorted(maps.Keys(t)) {
				walk(where, t[k])
			}
		case []any:
			for _, e := range t {
				walk(where, e)
			}
		}
	}
	for _, section := range []string{"Resources", "Outputs"} {
		m := asMap(p.root[section])
		for _, id := range slices.Sorted(maps.Keys(m)) {
			walk(fmt.Sprintf("%s %s", strings.TrimSuffix(strings.ToLower(section), "s"), id), m[id])
		}
	}
}

func firstString(l []any) (string, bool) {
	if len(l) == 0 {
		return "", false
	}
	s, ok := l[0].(string)
	return s, ok
}

// subNames returns the names a !Sub string refers to: ${Name} and
// ${Name.Attribute}, not the literal ${!...}.
func subNames(tmpl string) []string {
	var out []string
	for {
		i := strings.Index(tmpl, "${")
		if i < 0 {
			return out
		}
		rest := tmpl[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return out
		}
		name := rest[:j]
		tmpl = rest[j+1:]
		if name == "" || strings.HasPrefix(name, "!") {
			continue
		}
		out = append(out, strings.SplitN(name, ".", 2)[0])
	}
}
