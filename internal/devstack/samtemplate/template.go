// Package samtemplate reads an AWS SAM template (template.yaml) for the local
// stack: the functions (with Globals merged and their environment resolved),
// the HTTP API's routes and Lambda authorizers, and the DynamoDB tables as
// CreateTable inputs.
//
// The intrinsic functions template.yaml uses are evaluated locally, in both
// YAML short form (!Ref, !Sub, !GetAtt, !If, and in conditions !Equals, !Not,
// !And, !Or, !Condition) and long form ({"Ref": ...}, {"Fn::Sub": ...}); any
// other (!Join, !Select, !FindInMap, ...) is an error that names it, where
// the local stack reads the property:
//
//   - a parameter's !Ref is its override (like sam local --parameter-overrides)
//     or its Default; a parameter with neither is an error only when referenced;
//     overrides and defaults are checked against AllowedValues, AllowedPattern,
//     MinLength and MaxLength;
//   - a resource's !Ref is its physical name: Options.ResourceNames[id], else
//     its TableName/FunctionName property, else its logical id;
//   - !GetAtt X.Arn is a fake but well-formed local ARN
//     (arn:aws:lambda:<region>:<account>:function:<name>,
//     arn:aws:dynamodb:<region>:<account>:table/<name>);
//   - pseudo parameters: AWS::Region (Options.Region, default us-east-1),
//     AWS::AccountId (123456789012, as sam local), AWS::Partition (aws),
//     AWS::URLSuffix (amazonaws.com), AWS::StackName, AWS::NoValue.
//
// Only the properties the local stack uses are resolved (IAM policies, for
// instance, are not), so an unsupported construct there does no harm; a
// reference there to a name the template does not define is a warning
// (danglingRefs), since sam deploy refuses it. What
// the local stack cannot honour and would otherwise serve wrongly (REST API
// events, payload format 1.0, JWT or IAM authorizers, several HTTP APIs) is
// an error; what it merely ignores (CORS, OpenAPI definitions, non-HTTP
// event sources) is recorded in Template.Warnings.
package samtemplate

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.yaml.in/yaml/v3"
)

const (
	typeFunction    = "AWS::Serverless::Function"
	typeHTTPAPI     = "AWS::Serverless::HttpApi"
	typeRESTAPI     = "AWS::Serverless::Api"
	typeTable       = "AWS::DynamoDB::Table"
	typeSimpleTable = "AWS::Serverless::SimpleTable"

	// ImplicitAPIID is the logical id SAM gives the HTTP API it creates for
	// HttpApi events that name no ApiId.
	ImplicitAPIID = "ServerlessHttpApi"

	// DefaultRegion and DefaultAccountID are the local pseudo-parameter
	// values (the account id is the one sam local uses).
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "123456789012"
	// DefaultStackName is AWS::StackName locally.
	DefaultStackName = "local"

	defaultTimeout  = 3 * time.Second // Lambda's default
	defaultMemoryMB = 128
	// defaultAuthorizerTTL is API Gateway's default result TTL when an
	// authorizer has identity sources and no ReauthorizeEvery.
	defaultAuthorizerTTL = 300 * time.Second
)

// Template is the part of a SAM template the local stack runs.
type Template struct {
	// Functions by logical id.
	Functions map[string]Function
	// API is the template's single HTTP API with its routes.
	API API
	// Tables by logical id.
	Tables map[string]Table
	// Parameters by name, with the value in effect.
	Parameters map[string]Parameter
	// Warnings lists what the local stack ignores (CORS settings, non-HTTP
	// event sources, unknown parameter overrides, ...), one sentence each.
	Warnings []string
}

// Parameter is a template parameter and the value in effect.
type Parameter struct {
	Name, Type, Description string
	// Default is the template's default; HasDefault tells "" from none.
	Default    string
	HasDefault bool
	// Value is the override, else the default; HasValue is false when the
	// parameter has neither (a !Ref to it is then an error).
	Value    string
	HasValue bool
	// AllowedValues and AllowedPattern are the template's constraints.
	AllowedValues  []string
	AllowedPattern string
}

// Function is a Lambda function with Globals merged and values resolved.
type Function struct {
	LogicalID string
	// Env is the environment: Globals' variables merged with the
	// function's (the function wins), every value resolved.
	Env map[string]string
	// Timeout defaults to 3 s; Globals apply.
	Timeout time.Duration
	// MemoryMB defaults to 128; Globals apply.
	MemoryMB int
	// Runtime, Handler and CodeURI as written (Globals apply); BuildMethod
	// from Metadata.BuildMethod (e.g. "makefile").
	Runtime, Handler, CodeURI, BuildMethod string
	// Architectures defaults to [x86_64] like Lambda; Globals apply.
	Architectures []string
}

// API is an HTTP API (AWS::Serverless::HttpApi, or the implicit one).
type API struct {
	LogicalID string
	// DefaultAuthorizer applies to every route whose event names no
	// Auth.Authorizer; "" means none.
	DefaultAuthorizer string
	// Authorizers by name (Lambda authorizers only).
	Authorizers map[string]Authorizer
	// Routes sorted by path then method; $default last.
	Routes []Route
}

// Authorizer is an HTTP API Lambda authorizer.
type Authorizer struct {
	Name string
	// FunctionLogicalID is the function FunctionArn points at.
	FunctionLogicalID string
	// PayloadFormatVersion is "1.0" or "2.0".
	PayloadFormatVersion string
	// SimpleResponses is EnableSimpleResponses.
	SimpleResponses bool
	// IdentitySources in API Gateway syntax: "$request.header.Authorization",
	// "$request.querystring.token", "$context.x", "$stageVariables.x".
	IdentitySources []string
	// CacheTTL is Identity.ReauthorizeEvery (default 300 s when there are
	// identity sources); 0 when there are none: caching needs an identity.
	CacheTTL time.Duration
}

// Route is one HttpApi event of a function.
type Route struct {
	// Method is upper-case ("ANY" for any method); Path uses {param} and
	// {proxy+}. The catch-all route has Path "$default" and Method "" (its
	// route key is "$default").
	Method, Path string
	// FunctionLogicalID is the integration's function.
	FunctionLogicalID string
	// Authorizer names an entry of API.Authorizers; "" means NONE.
	Authorizer string
	// EventName is the key under the function's Events.
	EventName string
	// Timeout is the event's TimeoutInMillis; 0 means API Gateway's 30 s.
	Timeout time.Duration
}

// Key is the route key: "GET /me", "ANY /{proxy+}" or "$default".
func (r Route) Key() string {
	if r.Path == "$default" {
		return "$default"
	}
	return r.Method + " " + r.Path
}

// Table is a DynamoDB table as a CreateTable input.
type Table struct {
	LogicalID string
	// Input has TableName set to the table's physical name.
	Input dynamodb.CreateTableInput
	// TTLAttribute is TimeToLiveSpecification.AttributeName when enabled.
	TTLAttribute string
}

// Options tunes Parse and LoadOptions.
type Options struct {
	// Params overrides parameter values (sam --parameter-overrides).
	Params map[string]string
	// ResourceNames maps logical ids to physical names (a resource's !Ref).
	ResourceNames map[string]string
	// Region, AccountID and StackName are the pseudo parameters' values;
	// empty means DefaultRegion, DefaultAccountID and DefaultStackName.
	Region, AccountID, StackName string
}

// Load reads the template at path with the given parameter overrides.
func Load(path string, params map[string]string) (*Template, error) {
	return LoadOptions(path, Options{Params: params})
}

// LoadOptions reads the template at path.
func LoadOptions(path string, o Options) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	t, err := Parse(data, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse reads a template from YAML (or JSON, which is YAML) bytes.
func Parse(data []byte, o Options) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("samtemplate: parse YAML: %w", err)
	}
	raw, err := toValue(&doc)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	root, ok := raw.(map[string]any)
	if !ok {
		return nil, errors.New("samtemplate: the template is not a mapping")
	}
	p := &parser{root: root, opts: o, tmpl: &Template{
		Functions:  map[string]Function{},
		Tables:     map[string]Table{},
		Parameters: map[string]Parameter{},
	}}
	if err := p.run(); err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	return p.tmpl, nil
}

type parser struct {
	root map[string]any
	opts Options
	tmpl *Template
	r    *resolver
	// active resources (their Condition, if any, holds), by logical id.
	active map[string]resource
}

func (p *parser) warn(format string, args ...any) {
	p.tmpl.Warnings = append(p.tmpl.Warnings, fmt.Sprintf(format, args...))
}

func (p *parser) run() error {
	if tr := p.root["Transform"]; tr != nil {
		found := false
		switch t := tr.(type) {
		case string:
			found = strings.HasPrefix(t, "AWS::Serverless")
		case []any:
			for _, e := range t {
				if s, _ := e.(string); strings.HasPrefix(s, "AWS::Serverless") {
					found = true
				}
			}
		}
		if !found {
			p.warn("Transform does not name AWS::Serverless-2016-10-31; reading it as a SAM template anyway")
		}
	}
	if err := p.parameters(); err != nil {
		return err
	}
	resources, err := p.resources()
	if err != nil {
		return err
	}
	p.danglingRefs(resources)
	o := p.opts
	p.r = &resolver{
		region: cmp.Or(o.Region, DefaultRegion), accountID: cmp.Or(o.AccountID, DefaultAccountID),
		stackName: cmp.Or(o.StackName, DefaultStackName),
		params:    p.tmpl.Parameters, resources: resources,
		conditions: asMap(p.root["Conditions"]),
		names:      map[string]string{},
		condCache:  map[string]bool{}, condBusy: map[string]bool{},
	}
	// Resources whose Condition is false do not exist.
	p.active = map[string]resource{}
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		res := resources[id]
		if res.Condition != "" {
			ok, err := p.r.condition(res.Condition)
			if err != nil {
				return fmt.Errorf("resource %s: %w", id, err)
			}
			if !ok {
				continue
			}
		}
		p.active[id] = res
	}
	if err := p.names(); err != nil {
		return err
	}
	if err := p.functions(); err != nil {
		return err
	}
	if err := p.tables(); err != nil {
		return err
	}
	return p.api()
}

func (p *parser) parameters() error {
	params := asMap(p.root["Parameters"])
	for _, name := range slices.Sorted(maps.Keys(params)) {
		def := asMap(params[name])
		pr := Parameter{Name: name, Type: str(def["Type"]), Description: strings.TrimSpace(str(def["Description"]))}
		if d, ok := def["Default"]; ok {
			s, ok := scalarString(d)
			if !ok {
				if l, isList := d.([]any); isList {
					var parts []string
					for _, e := range l {
						es, _ := scalarString(e)
						parts = append(parts, es)
					}
					s, ok = strings.Join(parts, ","), true
				}
			}
			if !ok {
				return fmt.Errorf("parameter %s: Default must be a scalar", name)
			}
			pr.Default, pr.HasDefault = s, true
			pr.Value, pr.HasValue = s, true
		}
		for _, v := range asList(def["AllowedValues"]) {
			s, _ := scalarString(v)
			pr.AllowedValues = append(pr.AllowedValues, s)
		}
		pr.AllowedPattern = str(def["AllowedPattern"])
		if v, ok := p.opts.Params[name]; ok {
			pr.Value, pr.HasValue = v, true
		}
		if pr.HasValue {
			if err := checkParam(pr, def); err != nil {
				return err
			}
		}
		p.tmpl.Parameters[name] = pr
	}
	for _, name := range slices.Sorted(maps.Keys(p.opts.Params)) {
		if _, ok := params[name]; !ok {
			p.warn("parameter override %s matches no template parameter; ignored", name)
		}
	}
	return nil
}

// checkParam applies CloudFormation's parameter constraints to the value.
func checkParam(pr Parameter, def map[string]any) error {
	v := pr.Value
	if len(pr.AllowedValues) > 0 {
		ok := false
		for _, a := range pr.AllowedValues {
			if a == v {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("parameter %s: value %q is not one of AllowedValues %v", pr.Name, v, pr.AllowedValues)
		}
	}
	if pr.AllowedPattern != "" {
		re, err := regexp.Compile("^(?:" + pr.AllowedPattern + ")$")
		if err != nil {
			return fmt.Errorf("parameter %s: AllowedPattern %q does not compile: %w", pr.Name, pr.AllowedPattern, err)
		}
		if !re.MatchString(v) {
			return fmt.Errorf("parameter %s: value %q does not match AllowedPattern %s", pr.Name, v, pr.AllowedPattern)
		}
	}
	if n, ok := toInt(def["MinLength"]); ok && utf8.RuneCountInString(v) < n {
		return fmt.Errorf("parameter %s: value shorter than MinLength %d", pr.Name, n)
	}
	if n, ok := toInt(def["MaxLength"]); ok && utf8.RuneCountInString(v) > n {
		return fmt.Errorf("parameter %s: value longer than MaxLength %d", pr.Name, n)
	}
	return nil
}

func (p *parser) resources() (map[string]resource, error) {
	raw := asMap(p.root["Resources"])
	if len(raw) == 0 {
		return nil, errors.New("the template has no Resources")
	}
	out := make(map[string]resource, len(raw))
	for id, v := range raw {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("resource %s is not a mapping", id)
		}
		typ := str(m["Type"])
		if typ == "" {
			return nil, fmt.Errorf("resource %s has no Type", id)
		}
		cond, _ := m["Condition"].(string)
		out[id] = resource{Type: typ, Properties: asMap(m["Properties"]), Metadata: asMap(m["Metadata"]), Condition: cond}
	}
	return out, nil
}

// names fixes every resource's physical name before anything refers to it.
func (p *parser) names() error {
	for _, id := range slices.Sorted(maps.Keys(p.active)) {
		if n, ok := p.opts.ResourceNames[id]; ok {
			p.r.names[id] = n
		}
	}
	for _, id := range slices.Sorted(maps.Keys(p.active)) {
		if _, ok := p.r.names[id]; ok {
			continue
		}
		res := p.active[id]
		var prop string
		switch res.Type {
		case typeTable, typeSimpleTable:
			prop = "TableName"
		case typeFunction, "AWS::Lambda::Function":
			prop = "FunctionName"
		default:
			continue
		}
		if v, ok := res.Properties[prop]; ok {
			s, err := p.r.resolveString(v)
			if err != nil {
				return fmt.Errorf("resource %s: %s: %w", id, prop, err)
			}
			p.r.names[id] = s
		}
	}
	return nil
}

func (p *parser) functions() error {
	globals := asMap(asMap(p.root["Globals"])["Function"])
	for _, id := range slices.Sorted(maps.Keys(p.active)) {
		res := p.active[id]
		switch res.Type {
		case typeFunction:
		case "AWS::Lambda::Function":
			p.warn("%s is a plain AWS::Lambda::Function; the local stack runs only AWS::Serverless::Function", id)
			continue
		default:
			continue
		}
		f, err := p.function(id, res, globals)
		if err != nil {
			return fmt.Errorf("function %s: %w", id, err)
		}
		p.tmpl.Functions[id] = f
	}
	return nil
}

func (p *parser) function(id string, res resource, globals map[string]any) (Function, error) {
	prop := func(k string) (any, bool) {
		if v, ok := res.Properties[k]; ok {
			return v, true
		}
		v, ok := globals[k]
		return v, ok
	}
	f := Function{LogicalID: id, Env: map[string]string{}, Timeout: defaultTimeout, MemoryMB: defaultMemoryMB,
		Architectures: []string{"x86_64"}}
	if pt, ok := prop("PackageType"); ok && str(pt) == "Image" {
		return f, errors.New("PackageType Image is not supported by the local stack")
	}
	var err error
	strProp := func(k string) string {
		if err != nil {
			return ""
		}
		v, ok := prop(k)
		if !ok {
			return ""
		}
		var s string
		if s, err = p.r.resolveString(v); err != nil {
			err = fmt.Errorf("%s: %w", k, err)
		}
		return s
	}
	f.Runtime, f.Handler = strProp("Runtime"), strProp("Handler")
	if v, ok := prop("CodeUri"); ok {
		if _, isMap := v.(map[string]any); !isMap {
			f.CodeURI = strProp("CodeUri")
		}
	}
	if err != nil {
		return f, err
	}
	f.BuildMethod = str(res.Metadata["BuildMethod"])
	if v, ok := prop("Timeout"); ok {
		rv, err := p.r.resolve(v)
		if err != nil {
			return f, fmt.Errorf("property Timeout: %w", err)
		}
		n, ok := toInt(rv)
		if !ok || n < 1 || n > 900 {
			return f, fmt.Errorf("property Timeout must be 1-900 seconds, got %v", rv)
		}
		f.Timeout = time.Duration(n) * time.Second
	}
	if v, ok := prop("MemorySize"); ok {
		rv, err := p.r.resolve(v)
		if err != nil {
			return f, fmt.Errorf("MemorySize: %w", err)
		}
		n, ok := toInt(rv)
		if !ok || n < 128 || n > 10240 {
			return f, fmt.Errorf("MemorySize must be 128-10240 MB, got %v", rv)
		}
		f.MemoryMB = n
	}
	if v, ok := prop("Architectures"); ok {
		rv, err := p.r.resolve(v)
		if err != nil {
			return f, fmt.Errorf("property Architectures: %w", err)
		}
		f.Architectures = nil
		for _, a := range asList(rv) {
			s, _ := scalarString(a)
			f.Architectures = append(f.Architectures, s)
		}
	}
	// Environment: Globals first, the function's variables win.
	for _, src := range []map[string]any{globals, res.Properties} {
		vars := asMap(asMap(src["Environment"])["Variables"])
		for _, k := range slices.Sorted(maps.Keys(vars)) {
			rv, err := p.r.resolve(vars[k])
			if err != nil {
				return f, fmt.Errorf("environment variable %s: %w", k, err)
			}
			if rv == noValue {
				delete(f.Env, k)
				continue
			}
			s, ok := scalarString(rv)
			if !ok {
				return f, fmt.Errorf("environment variable %s: value is %s, not a string", k, describe(rv))
			}
			f.Env[k] = s
		}
	}
	return f, nil
}

func (p *parser) tables() error {
	for _, id := range slices.Sorted(maps.Keys(p.active)) {
		res := p.active[id]
		var t Table
		var err error
		switch res.Type {
		case typeTable:
			t, err = p.table(id, res)
		case typeSimpleTable:
			t, err = p.simpleTable(id, res)
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("table %s: %w", id, err)
		}
		p.tmpl.Tables[id] = t
	}
	return nil
}

func (p *parser) table(id string, res resource) (Table, error) {
	t := Table{LogicalID: id}
	rv, err := p.r.resolve(res.Properties)
	if err != nil {
		// Properties such as tags may use what we cannot resolve; retry with
		// only what CreateTable needs.
		keep := map[string]any{}
		for _, k := range []string{"AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
			"LocalSecondaryIndexes", "BillingMode", "ProvisionedThroughput", "TimeToLiveSpecification", "StreamSpecification"} {
			if v, ok := res.Properties[k]; ok {
				keep[k] = v
			}
		}
		if rv, err = p.r.resolve(keep); err != nil {
			return t, err
		}
	}
	props := asMap(rv)
	in := &t.Input
	in.TableName = aws.String(p.r.physicalName(id))
	for _, a := range asList(props["AttributeDefinitions"]) {
		m := asMap(a)
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(str(m["AttributeName"])),
			AttributeType: types.ScalarAttributeType(str(m["AttributeType"])),
		})
	}
	if len(in.AttributeDefinitions) == 0 {
		return t, errors.New("AttributeDefinitions is empty")
	}
	in.KeySchema = keySchema(props["KeySchema"])
	if len(in.KeySchema) == 0 {
		return t, errors.New("KeySchema is empty")
	}
	billing := str(props["BillingMode"])
	if billing == "" {
		billing = string(types.BillingModeProvisioned)
	}
	in.BillingMode = types.BillingMode(billing)
	if billing == string(types.BillingModeProvisioned) {
		pt, err := throughput(props["ProvisionedThroughput"])
		if err != nil {
			return t, err
		}
		in.ProvisionedThroughput = pt
	}
	for _, g := range asList(props["GlobalSecondaryIndexes"]) {
		m := asMap(g)
		gsi := types.GlobalSecondaryIndex{
			IndexName:  aws.String(str(m["IndexName"])),
			KeySchema:  keySchema(m["KeySchema"]),
			Projection: projection(m["Projection"]),
		}
		if billing == string(types.BillingModeProvisioned) {
			pt, err := throughput(m["ProvisionedThroughput"])
			if err != nil {
				return t, fmt.Errorf("index %s: %w", *gsi.IndexName, err)
			}
			gsi.ProvisionedThroughput = pt
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
	}
	for _, l := range asList(props["LocalSecondaryIndexes"]) {
		m := asMap(l)
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
			IndexName:  aws.String(str(m["IndexName"])),
			KeySchema:  keySchema(m["KeySchema"]),
			Projection: projection(m["Projection"]),
		})
	}
	if ss := asMap(props["StreamSpecification"]); ss != nil {
		in.StreamSpecification = &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewType(str(ss["StreamViewType"])),
		}
	}
	if ttl := asMap(props["TimeToLiveSpecification"]); ttl != nil {
		if on, _ := toBool(ttl["Enabled"]); on {
			t.TTLAttribute = str(ttl["AttributeName"])
		}
	}
	return t, nil
}

// simpleTable expands AWS::Serverless::SimpleTable as SAM does.
func (p *parser) simpleTable(id string, res resource) (Table, error) {
	t := Table{LogicalID: id}
	rv, err := p.r.resolve(res.Properties)
	if err != nil {
		return t, err
	}
	props := asMap(rv)
	pk := asMap(props["PrimaryKey"])
	name, typ := str(pk["Name"]), str(pk["Type"])
	if name == "" {
		name, typ = "id", "String"
	}
	short := map[string]string{"String": "S", "Number": "N", "Binary": "B"}[typ]
	if short == "" {
		return t, fmt.Errorf("PrimaryKey.Type %q: want String, Number or Binary", typ)
	}
	t.Input = dynamodb.CreateTableInput{
		TableName:            aws.String(p.r.physicalName(id)),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeType(short)}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(name), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}
	if pt := props["ProvisionedThroughput"]; pt != nil {
		tp, err := throughput(pt)
		if err != nil {
			return t, err
		}
		t.Input.BillingMode, t.Input.ProvisionedThroughput = types.BillingModeProvisioned, tp
	}
	return t, nil
}

func keySchema(v any) []types.KeySchemaElement {
	var out []types.KeySchemaElement
	for _, k := range asList(v) {
		m := asMap(k)
		out = append(out, types.KeySchemaElement{
			AttributeName: aws.String(str(m["AttributeName"])),
			KeyType:       types.KeyType(str(m["KeyType"])),
		})
	}
	return out
}

func projection(v any) *types.Projection {
	m := asMap(v)
	pt := str(m["ProjectionType"])
	if pt == "" {
		pt = string(types.ProjectionTypeAll)
	}
	p := &types.Projection{ProjectionType: types.ProjectionType(pt)}
	for _, a := range asList(m["NonKeyAttributes"]) {
		s, _ := scalarString(a)
		p.NonKeyAttributes = append(p.NonKeyAttributes, s)
	}
	return p
}

func throughput(v any) (*types.ProvisionedThroughput, error) {
	m := asMap(v)
	r, ok1 := toInt(m["ReadCapacityUnits"])
	w, ok2 := toInt(m["WriteCapacityUnits"])
	if !ok1 || !ok2 {
		return nil, errors.New("ProvisionedThroughput with ReadCapacityUnits and WriteCapacityUnits is required unless BillingMode is PAY_PER_REQUEST")
	}
	return &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(int64(r)), WriteCapacityUnits: aws.Int64(int64(w))}, nil
}

// api collects the HttpApi events of every function into the template's
// single HTTP API.
func (p *parser) api() error {
	globalsAPI := asMap(asMap(p.root["Globals"])["HttpApi"])
	explicit := map[string]resource{}
	for _, id := range slices.Sorted(maps.Keys(p.active)) {
		switch p.active[id].Type {
		case typeHTTPAPI:
			explicit[id] = p.active[id]
		case typeRESTAPI:
			p.warn("%s is a REST API (AWS::Serverless::Api); the local gateway serves HTTP APIs only", id)
		}
	}
	type routeAt struct {
		api   string
		route Route
		auth  any // the event's Auth.Authorizer, nil when absent
	}
	var routes []routeAt
	for _, fid := range slices.Sorted(maps.Keys(p.tmpl.Functions)) {
		events := asMap(p.active[fid].Properties["Events"])
		for _, ev := range slices.Sorted(maps.Keys(events)) {
			e := asMap(events[ev])
			typ := str(e["Type"])
			switch typ {
			case "HttpApi":
			case "Api":
				return fmt.Errorf("function %s event %s: Type Api (REST API) is not supported by the local gateway; use HttpApi", fid, ev)
			default:
				p.warn("function %s event %s: event source %s is not emulated locally", fid, ev, typ)
				continue
			}
			props := asMap(e["Properties"])
			apiID := ImplicitAPIID
			if v, ok := props["ApiId"]; ok {
				id, err := p.logicalRef(v)
				if err != nil {
					return fmt.Errorf("function %s event %s: ApiId: %w", fid, ev, err)
				}
				if _, ok := explicit[id]; !ok {
					return fmt.Errorf("function %s event %s: ApiId %s is not an AWS::Serverless::HttpApi of this template", fid, ev, id)
				}
				apiID = id
			}
			rt := Route{FunctionLogicalID: fid, EventName: ev}
			method, err := p.optString(props, "Method")
			if err != nil {
				return fmt.Errorf("function %s event %s: %w", fid, ev, err)
			}
			path, err := p.optString(props, "Path")
			if err != nil {
				return fmt.Errorf("function %s event %s: %w", fid, ev, err)
			}
			switch {
			case method == "" && path == "":
				rt.Path = "$default"
			case method == "" || path == "":
				return fmt.Errorf("function %s event %s: give both Method and Path, or neither (the $default route)", fid, ev)
			default:
				rt.Method = strings.ToUpper(method)
				if rt.Method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
					rt.Method = "ANY"
				}
				if path == "$default" {
					rt.Path = "$default"
				} else if err := checkPath(path); err != nil {
					return fmt.Errorf("function %s event %s: %w", fid, ev, err)
				} else {
					rt.Path = path
				}
			}
			if v, ok := props["PayloadFormatVersion"]; ok {
				s, err := p.r.resolve(v)
				if err != nil {
					return fmt.Errorf("function %s event %s: PayloadFormatVersion: %w", fid, ev, err)
				}
				if fv := formatVersion(s); fv != "2.0" {
					return fmt.Errorf("function %s event %s: PayloadFormatVersion %v is not supported by the local gateway (only 2.0)", fid, ev, s)
				}
			}
			if v, ok := props["TimeoutInMillis"]; ok {
				rv, err := p.r.resolve(v)
				if err != nil {
					return fmt.Errorf("function %s event %s: TimeoutInMillis: %w", fid, ev, err)
				}
				ms, ok := toInt(rv)
				if !ok || ms < 50 || ms > 30000 {
					return fmt.Errorf("function %s event %s: TimeoutInMillis must be 50-30000", fid, ev)
				}
				rt.Timeout = time.Duration(ms) * time.Millisecond
			}
			if _, ok := props["RouteSettings"]; ok {
				p.warn("function %s event %s: RouteSettings (throttling) are not emulated", fid, ev)
			}
			routes = append(routes, routeAt{api: apiID, route: rt, auth: asMap(props["Auth"])["Authorizer"]})
		}
	}

	apiIDs := map[string]bool{}
	for _, r := range routes {
		apiIDs[r.api] = true
	}
	var apiID string
	switch {
	case len(apiIDs) > 1:
		return fmt.Errorf("routes belong to %d HTTP APIs (%s); the local gateway serves one", len(apiIDs), strings.Join(slices.Sorted(maps.Keys(apiIDs)), ", "))
	case len(apiIDs) == 1:
		apiID = slices.Sorted(maps.Keys(apiIDs))[0]
	case len(explicit) == 1:
		apiID = slices.Sorted(maps.Keys(explicit))[0]
	case len(explicit) > 1:
		return fmt.Errorf("the template has %d HTTP APIs; the local gateway serves one", len(explicit))
	default:
		apiID = ImplicitAPIID
	}
	for _, id := range slices.Sorted(maps.Keys(explicit)) {
		if id != apiID {
			p.warn("HTTP API %s has no routes and is not served", id)
		}
	}

	// The API's properties: Globals.HttpApi merged under the resource's.
	props := map[string]any{}
	for k, v := range globalsAPI {
		props[k] = v
	}
	for k, v := range explicit[apiID].Properties {
		if gm, ok := props[k].(map[string]any); ok {
			if vm, ok := v.(map[string]any); ok {
				merged := map[string]any{}
				for kk, vv := range gm {
					merged[kk] = vv
				}
				for kk, vv := range vm {
					merged[kk] = vv
				}
				v = merged
			}
		}
		props[k] = v
	}
	api := API{LogicalID: apiID, Authorizers: map[string]Authorizer{}}
	for _, k := range []string{"DefinitionBody", "DefinitionUri"} {
		if _, ok := props[k]; ok {
			p.warn("HTTP API %s: %s (OpenAPI) is not read; only routes from functions' HttpApi events are served", apiID, k)
		}
	}
	if _, ok := props["CorsConfiguration"]; ok {
		p.warn("HTTP API %s: CorsConfiguration is not emulated (no automatic preflight responses)", apiID)
	}
	auth := asMap(props["Auth"])
	authorizers := asMap(auth["Authorizers"])
	for _, name := range slices.Sorted(maps.Keys(authorizers)) {
		a, err := p.authorizer(name, asMap(authorizers[name]))
		if err != nil {
			return fmt.Errorf("HTTP API %s authorizer %s: %w", apiID, name, err)
		}
		api.Authorizers[name] = a
	}
	if v, ok := auth["DefaultAuthorizer"]; ok {
		s, err := p.r.resolveString(v)
		if err != nil {
			return fmt.Errorf("HTTP API %s: DefaultAuthorizer: %w", apiID, err)
		}
		if s == "AWS_IAM" {
			return fmt.Errorf("HTTP API %s: DefaultAuthorizer AWS_IAM is not supported by the local gateway", apiID)
		}
		if _, ok := api.Authorizers[s]; !ok {
			return fmt.Errorf("HTTP API %s: DefaultAuthorizer %s is not among its Authorizers", apiID, s)
		}
		api.DefaultAuthorizer = s
	}

	seen := map[string]string{}
	for _, r := range routes {
		rt := r.route
		switch {
		case r.auth == nil:
			rt.Authorizer = api.DefaultAuthorizer
		default:
			s, err := p.r.resolveString(r.auth)
			if err != nil {
				return fmt.Errorf("function %s event %s: Auth.Authorizer: %w", rt.FunctionLogicalID, rt.EventName, err)
			}
			switch s {
			case "NONE":
				rt.Authorizer = ""
			case "AWS_IAM":
				return fmt.Errorf("function %s event %s: Auth.Authorizer AWS_IAM is not supported by the local gateway", rt.FunctionLogicalID, rt.EventName)
			default:
				if _, ok := api.Authorizers[s]; !ok {
					return fmt.Errorf("function %s event %s: Auth.Authorizer %s is not an authorizer of HTTP API %s", rt.FunctionLogicalID, rt.EventName, s, apiID)
				}
				rt.Authorizer = s
			}
		}
		key := rt.Key()
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("route %q is defined twice (%s and %s.%s)", key, prev, rt.FunctionLogicalID, rt.EventName)
		}
		seen[key] = rt.FunctionLogicalID + "." + rt.EventName
		api.Routes = append(api.Routes, rt)
	}
	sort.SliceStable(api.Routes, func(i, j int) bool {
		a, b := api.Routes[i], api.Routes[j]
		if (a.Path == "$default") != (b.Path == "$default") {
			return b.Path == "$default"
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Method < b.Method
	})
	p.tmpl.API = api
	return nil
}

func (p *parser) authorizer(name string, m map[string]any) (Authorizer, error) {
	a := Authorizer{Name: name}
	if _, ok := m["JwtConfiguration"]; ok {
		return a, errors.New("JWT authorizers are not supported by the local gateway")
	}
	fn, ok := m["FunctionArn"]
	if !ok {
		return a, errors.New("FunctionArn is required")
	}
	id, err := p.functionOf(fn)
	if err != nil {
		return a, fmt.Errorf("FunctionArn: %w", err)
	}
	a.FunctionLogicalID = id
	if v, ok := m["AuthorizerPayloadFormatVersion"]; ok {
		rv, err := p.r.resolve(v)
		if err != nil {
			return a, fmt.Errorf("AuthorizerPayloadFormatVersion: %w", err)
		}
		a.PayloadFormatVersion = formatVersion(rv)
		if _, isFloat := rv.(float64); isFloat {
			p.warn("authorizer %s: AuthorizerPayloadFormatVersion is a YAML number; quote it (\"%s\")", name, a.PayloadFormatVersion)
		}
	}
	switch a.PayloadFormatVersion {
	case "1.0", "2.0":
	case "":
		return a, errors.New(`AuthorizerPayloadFormatVersion is required ("1.0" or "2.0")`)
	default:
		return a, fmt.Errorf("AuthorizerPayloadFormatVersion %q: want \"1.0\" or \"2.0\"", a.PayloadFormatVersion)
	}
	if v, ok := m["EnableSimpleResponses"]; ok {
		rv, err := p.r.resolve(v)
		if err != nil {
			return a, fmt.Errorf("EnableSimpleResponses: %w", err)
		}
		if a.SimpleResponses, ok = toBool(rv); !ok {
			return a, errors.New("EnableSimpleResponses must be a boolean")
		}
	}
	if _, ok := m["FunctionInvokeRole"]; ok {
		p.warn("authorizer %s: FunctionInvokeRole is ignored locally", name)
	}
	identity := asMap(m["Identity"])
	if identity != nil {
		rv, err := p.r.resolve(identity)
		if err != nil {
			return a, fmt.Errorf("property Identity: %w", err)
		}
		identity = asMap(rv)
	}
	for _, src := range []struct{ key, prefix string }{
		{"Headers", "$request.header."}, {"QueryStrings", "$request.querystring."},
		{"Context", "$context."}, {"StageVariables", "$stageVariables."},
	} {
		for _, v := range asList(identity[src.key]) {
			s, ok := scalarString(v)
			if !ok || s == "" {
				return a, fmt.Errorf("property Identity.%s: entries must be non-empty strings", src.key)
			}
			a.IdentitySources = append(a.IdentitySources, src.prefix+s)
		}
	}
	if len(a.IdentitySources) > 0 {
		a.CacheTTL = defaultAuthorizerTTL
		if v, ok := identity["ReauthorizeEvery"]; ok {
			n, ok := toInt(v)
			if !ok || n < 0 || n > 3600 {
				return a, errors.New("Identity.ReauthorizeEvery must be 0-3600 seconds")
			}
			a.CacheTTL = time.Duration(n) * time.Second
		}
	}
	return a, nil
}

// functionOf finds the function an ARN-valued property points at:
// !GetAtt F.Arn, !Sub "${F.Arn}", or a literal ARN of a template function.
func (p *parser) functionOf(v any) (string, error) {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		if ga, ok := m["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
			if id, _ := ga[0].(string); id != "" {
				if _, ok := p.tmpl.Functions[id]; ok && ga[1] == "Arn" {
					return id, nil
				}
			}
		}
		if s, ok := m["Fn::Sub"].(string); ok && strings.HasPrefix(s, "${") && strings.HasSuffix(s, ".Arn}") {
			id := strings.TrimSuffix(strings.TrimPrefix(s, "${"), ".Arn}")
			if _, ok := p.tmpl.Functions[id]; ok {
				return id, nil
			}
		}
	}
	s, err := p.r.resolveString(v)
	if err != nil {
		return "", err
	}
	for _, id := range slices.Sorted(maps.Keys(p.tmpl.Functions)) {
		if s == p.r.functionARN(p.r.physicalName(id)) {
			return id, nil
		}
	}
	return "", fmt.Errorf("%q is not the ARN of a function of this template", s)
}

// logicalRef reads a property that must be !Ref <LogicalId> (or the id).
func (p *parser) logicalRef(v any) (string, error) {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		if id, ok := m["Ref"].(string); ok {
			return id, nil
		}
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", fmt.Errorf("want !Ref <LogicalId>, got %s", describe(v))
}

func (p *parser) optString(m map[string]any, k string) (string, error) {
	v, ok := m[k]
	if !ok {
		return "", nil
	}
	s, err := p.r.resolveString(v)
	if err != nil {
		return "", fmt.Errorf("%s: %w", k, err)
	}
	return s, nil
}

// checkPath validates an HTTP API route path.
func checkPath(path string) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("path %q must start with /", path)
	}
	if path == "/" {
		return nil
	}
	segs := strings.Split(path[1:], "/")
	for i, s := range segs {
		if s == "" {
			return fmt.Errorf("path %q has an empty segment", path)
		}
		if strings.HasPrefix(s, "{") || strings.HasSuffix(s, "}") {
			if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") || len(s) < 3 {
				return fmt.Errorf("path %q: segment %q: a path variable is a whole segment like {id}", path, s)
			}
			if strings.HasSuffix(s, "+}") && i != len(segs)-1 {
				return fmt.Errorf("path %q: the greedy variable %s must be the last segment", path, s)
			}
		}
	}
	return nil
}

// formatVersion normalises "2.0", 2.0 and 2 to "2.0".
func formatVersion(v any) string {
	switch t := v.(type) {
	case float64:
		return fmt.Sprintf("%.1f", t)
	case int:
		return fmt.Sprintf("%d.0", t)
	case string:
		return t
	}
	return fmt.Sprint(v)
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asList(v any) []any {
	switch t := v.(type) {
	case []any:
		return t
	case nil:
		return nil
	}
	return []any{v}
}

func str(v any) string {
	s, _ := scalarString(v)
	return s
}
