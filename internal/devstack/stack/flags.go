package stack

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// FindRoot returns the nearest directory with go.mod at or above the
// working directory that also holds template.yaml.
func FindRoot() (string, error) { return findRoot("") }

// LoadEnvVars reads a file in sam local's --env-vars format:
//
//	{"Parameters": {"VAR": "value"}, "LoginFunction": {"VAR": "value"}}
//
// "Parameters" applies to every function, a logical id to that function.
// Numbers and booleans are accepted and turned into strings.
func LoadEnvVars(path string) (map[string]map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("env vars: %w", err)
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("env vars %s: want {\"FunctionLogicalId\" or \"Parameters\": {\"VAR\": \"value\"}}: %w", path, err)
	}
	out := make(map[string]map[string]string, len(raw))
	for fn, vars := range raw {
		out[fn] = make(map[string]string, len(vars))
		for k, v := range vars {
			switch t := v.(type) {
			case string:
				out[fn][k] = t
			case float64, bool:
				out[fn][k] = fmt.Sprint(t)
			default:
				return nil, fmt.Errorf("env vars %s: %s.%s must be a string", path, fn, k)
			}
		}
	}
	return out, nil
}

// pairStart finds where a new Key= pair starts after a comma.
var pairStart = regexp.MustCompile(`,([A-Za-z0-9]+)=`)

// ParseParameterOverrides parses -parameter-overrides in the forms sam
// accepts: "K=V K2=V2", "K=V,K2=V2" and
// "ParameterKey=K,ParameterValue=V ...". A comma starts a new pair only when
// a Key= follows it, so values may contain commas
// ("WeChatApiBase=http://a,http://b,LogLevel=debug" is two pairs).
func ParseParameterOverrides(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, tok := range strings.Fields(s) {
		if strings.HasPrefix(tok, "ParameterKey=") {
			k, v, ok := strings.Cut(strings.TrimPrefix(tok, "ParameterKey="), ",ParameterValue=")
			if !ok || k == "" {
				return nil, fmt.Errorf("parameter override %q: want ParameterKey=K,ParameterValue=V", tok)
			}
			out[k] = v
			continue
		}
		idx := pairStart.FindAllStringIndex(tok, -1)
		starts := []int{0}
		for _, m := range idx {
			starts = append(starts, m[0]+1)
		}
		for i, st := range starts {
			end := len(tok)
			if i+1 < len(starts) {
				end = starts[i+1] - 1
			}
			k, v, ok := strings.Cut(tok[st:end], "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("parameter override %q: want Key=Value", tok[st:end])
			}
			out[k] = v
		}
	}
	return out, nil
}
