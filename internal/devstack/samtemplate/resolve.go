package samtemplate

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// noValue is what !Ref AWS::NoValue resolves to: the enclosing key or list
// element is dropped.
type noValueT struct{}

var noValue = noValueT{}

// resolver evaluates CloudFormation intrinsic functions against local
// values: parameter values, physical names of resources, fake ARNs and the
// pseudo parameters.
type resolver struct {
	region, accountID, stackName string
	params                       map[string]Parameter
	resources                    map[string]resource
	conditions                   map[string]any
	names                        map[string]string // logical id -> physical name

	condCache map[string]bool
	condBusy  map[string]bool
}

type resource struct {
	Type       string
	Properties map[string]any
	Metadata   map[string]any
	Condition  string
}

// physicalName is what !Ref returns for a resource.
func (r *resolver) physicalName(id string) string {
	if n, ok := r.names[id]; ok {
		return n
	}
	return id
}

// resolve evaluates every intrinsic function in v.
func (r *resolver) resolve(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 1 {
			for k, arg := range t {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return r.intrinsic(k, arg)
				}
			}
		}
		out := make(map[string]any, len(t))
		for k, val := range t {
			rv, err := r.resolve(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if rv == noValue {
				continue
			}
			out[k] = rv
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(t))
		for i, val := range t {
			rv, err := r.resolve(val)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if rv == noValue {
				continue
			}
			out = append(out, rv)
		}
		return out, nil
	}
	return v, nil
}

// resolveString resolves v and requires a scalar, rendered as a string.
func (r *resolver) resolveString(v any) (string, error) {
	rv, err := r.resolve(v)
	if err != nil {
		return "", err
	}
	s, ok := scalarString(rv)
	if !ok {
		return "", fmt.Errorf("want a string, got %s", describe(rv))
	}
	return s, nil
}

// supportedIntrinsics lists the intrinsic functions the local stack
// evaluates: those template.yaml uses, and the condition functions. Any
// other is an error naming itself, never a half-evaluated value.
const supportedIntrinsics = "Ref, Fn::GetAtt, Fn::Sub, Fn::If, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition"

func (r *resolver) intrinsic(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, errors.New("!Ref: argument must be a string")
		}
		return r.ref(name)
	case "Fn::GetAtt":
		return r.getAtt(arg)
	case "Fn::Sub":
		return r.sub(arg)
	case "Fn::If":
		list, ok := arg.([]any)
		if !ok || len(list) != 3 {
			return nil, errors.New("Fn::If: want [condition, value_if_true, value_if_false]")
		}
		name, ok := list[0].(string)
		if !ok {
			return nil, errors.New("Fn::If: condition name must be a string")
		}
		b, err := r.condition(name)
		if err != nil {
			return nil, err
		}
		if b {
			return r.resolve(list[1])
		}
		return r.resolve(list[2])
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		b, err := r.condExpr(map[string]any{fn: arg})
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, fmt.Errorf("%s is not supported by the local stack: it evaluates what template.yaml uses (%s; docs/design.md §6)", fn, supportedIntrinsics)
}

func (r *resolver) ref(name string) (any, error) {
	switch name {
	case "AWS::Region":
		return r.region, nil
	case "AWS::AccountId":
		return r.accountID, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::StackName":
		return r.stackName, nil
	case "AWS::StackId":
		return fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/00000000-0000-0000-0000-000000000000", r.region, r.accountID, r.stackName), nil
	case "AWS::NotificationARNs":
		return []any{}, nil
	case "AWS::NoValue":
		return noValue, nil
	}
	if p, ok := r.params[name]; ok {
		if !p.HasValue {
			return nil, fmt.Errorf("parameter %s has no Default and no override (pass it with --parameter-overrides %s=...)", name, name)
		}
		if strings.HasPrefix(p.Type, "List<") || p.Type == "CommaDelimitedList" {
			var out []any
			for _, s := range strings.Split(p.Value, ",") {
				out = append(out, strings.TrimSpace(s))
			}
			return out, nil
		}
		return p.Value, nil
	}
	if _, ok := r.resources[name]; ok {
		return r.physicalName(name), nil
	}
	return nil, fmt.Errorf("!Ref %s: no such parameter or resource", name)
}

func (r *resolver) getAtt(arg any) (any, error) {
	list, ok := arg.([]any)
	if !ok || len(list) != 2 {
		return nil, errors.New("Fn::GetAtt: want [LogicalId, Attribute]")
	}
	id, ok := list[0].(string)
	if !ok {
		return nil, errors.New("Fn::GetAtt: logical id must be a string")
	}
	attr, err := r.resolveString(list[1])
	if err != nil {
		return nil, fmt.Errorf("Fn::GetAtt %s: %w", id, err)
	}
	return r.attribute(id, attr)
}

// attribute returns the local value of id.attr: fake but well-formed ARNs.
func (r *resolver) attribute(id, attr string) (any, error) {
	res, ok := r.resources[id]
	if !ok {
		return nil, fmt.Errorf("Fn::GetAtt %s.%s: no such resource", id, attr)
	}
	name := r.physicalName(id)
	switch res.Type {
	case typeFunction, "AWS::Lambda::Function":
		if attr == "Arn" {
			return r.functionARN(name), nil
		}
	case typeTable, typeSimpleTable:
		switch attr {
		case "Arn":
			return r.tableARN(name), nil
		case "StreamArn":
			return r.tableARN(name) + "/stream/1970-01-01T00:00:00.000", nil
		}
	case typeHTTPAPI:
		if attr == "ApiEndpoint" {
			return fmt.Sprintf("https://%s.execute-api.%s.amazonaws.com", name, r.region), nil
		}
	}
	if attr == "Arn" {
		return fmt.Sprintf("arn:aws:local:%s:%s:%s", r.region, r.accountID, name), nil
	}
	return nil, fmt.Errorf("Fn::GetAtt %s.%s: attribute not supported locally for %s", id, attr, res.Type)
}

func (r *resolver) functionARN(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", r.region, r.accountID, name)
}

func (r *resolver) tableARN(name string) string {
	return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", r.region, r.accountID, name)
}

func (r *resolver) sub(arg any) (any, error) {
	var tmpl string
	vars := map[string]any{}
	switch t := arg.(type) {
	case string:
		tmpl = t
	case []any:
		if len(t) != 2 {
			return nil, errors.New("Fn::Sub: want a string or [string, {vars}]")
		}
		s, ok := t[0].(string)
		m, ok2 := t[1].(map[string]any)
		if !ok || !ok2 {
			return nil, errors.New("Fn::Sub: want [string, {vars}]")
		}
		tmpl = s
		for k, v := range m {
			rv, err := r.resolve(v)
			if err != nil {
				return nil, fmt.Errorf("Fn::Sub variable %s: %w", k, err)
			}
			vars[k] = rv
		}
	default:
		return nil, errors.New("Fn::Sub: want a string or [string, {vars}]")
	}
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "${")
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		b.WriteString(tmpl[:i])
		rest := tmpl[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return nil, fmt.Errorf("Fn::Sub: unterminated ${ in %q", tmpl)
		}
		name := rest[:j]
		tmpl = rest[j+1:]
		if strings.HasPrefix(name, "!") { // ${!Literal} -> ${Literal}
			b.WriteString("${" + name[1:] + "}")
			continue
		}
		name = strings.TrimSpace(name)
		var val any
		var err error
		if v, ok := vars[name]; ok {
			val = v
		} else if id, attr, dotted := strings.Cut(name, "."); dotted && !strings.HasPrefix(name, "AWS::") {
			val, err = r.attribute(id, attr)
		} else {
			val, err = r.ref(name)
		}
		if err != nil {
			return nil, fmt.Errorf("Fn::Sub ${%s}: %w", name, err)
		}
		s, ok := scalarString(val)
		if !ok {
			return nil, fmt.Errorf("Fn::Sub ${%s}: value is %s, not a string", name, describe(val))
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// condition evaluates a named condition of the Conditions section.
func (r *resolver) condition(name string) (bool, error) {
	if b, ok := r.condCache[name]; ok {
		return b, nil
	}
	expr, ok := r.conditions[name]
	if !ok {
		return false, fmt.Errorf("condition %s is not defined", name)
	}
	if r.condBusy[name] {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	r.condBusy[name] = true
	b, err := r.condExpr(expr)
	delete(r.condBusy, name)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	r.condCache[name] = b
	return b, nil
}

func (r *resolver) condExpr(expr any) (bool, error) {
	m, ok := expr.(map[string]any)
	if !ok || len(m) != 1 {
		if b, ok := expr.(bool); ok {
			return b, nil
		}
		return false, fmt.Errorf("condition expression must be Fn::Equals/And/Or/Not or Condition, got %s", describe(expr))
	}
	for fn, arg := range m {
		switch fn {
		case "Condition":
			name, ok := arg.(string)
			if !ok {
				return false, errors.New("a condition name must be a string")
			}
			return r.condition(name)
		case "Fn::Equals":
			list, ok := arg.([]any)
			if !ok || len(list) != 2 {
				return false, errors.New("Fn::Equals: want [a, b]")
			}
			a, err := r.resolve(list[0])
			if err != nil {
				return false, err
			}
			b, err := r.resolve(list[1])
			if err != nil {
				return false, err
			}
			as, aok := scalarString(a)
			bs, bok := scalarString(b)
			if aok && bok {
				return as == bs, nil
			}
			return fmt.Sprint(a) == fmt.Sprint(b), nil
		case "Fn::Not", "Fn::And", "Fn::Or":
			list, ok := arg.([]any)
			if !ok || len(list) == 0 || (fn == "Fn::Not" && len(list) != 1) {
				return false, fmt.Errorf("%s: want a list of conditions", fn)
			}
			var vals []bool
			for _, e := range list {
				b, err := r.condExpr(e)
				if err != nil {
					return false, err
				}
				vals = append(vals, b)
			}
			switch fn {
			case "Fn::Not":
				return !vals[0], nil
			case "Fn::And":
				for _, b := range vals {
					if !b {
						return false, nil
					}
				}
				return true, nil
			default:
				for _, b := range vals {
					if b {
						return true, nil
					}
				}
				return false, nil
			}
		}
		return false, fmt.Errorf("%s is not a condition function", fn)
	}
	return false, nil
}

// scalarString renders a resolved scalar as CloudFormation would.
func scalarString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case int:
		return strconv.Itoa(t), true
	case int64:
		return strconv.FormatInt(t, 10), true
	case uint64:
		return strconv.FormatUint(t, 10), true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

// toInt accepts integers, integral floats and numeric strings.
func toInt(v any) (int, bool) {
	switch t := v.(type) {
	case int:
		return t, true
	case int64:
		return int(t), true
	case uint64:
		return int(t), true
	case float64:
		if t == float64(int(t)) {
			return int(t), true
		}
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(t))
		return n, err == nil
	}
	return 0, false
}

// toBool accepts booleans and "true"/"false" strings.
func toBool(v any) (bool, bool) {
	switch t := v.(type) {
	case bool:
		return t, true
	case string:
		b, err := strconv.ParseBool(t)
		return b, err == nil
	}
	return false, false
}

func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return "a map {" + strings.Join(keys, ", ") + "}"
	case []any:
		return fmt.Sprintf("a list of %d", len(t))
	case noValueT:
		return "AWS::NoValue"
	}
	return fmt.Sprintf("%T", v)
}
