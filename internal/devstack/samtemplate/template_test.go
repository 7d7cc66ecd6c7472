package samtemplate

import (
	"maps"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// repoTemplate is the project's template.yaml.
func repoTemplate(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "template.yaml")
}

func loadRepo(t *testing.T, params map[string]string) *Template {
	t.Helper()
	tmpl, err := Load(repoTemplate(t), params)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tmpl
}

var appParams = map[string]string{"WeChatAppId": "wx1234567890abcdef"}

func TestRepoTemplateRoutes(t *testing.T) {
	tmpl := loadRepo(t, appParams)
	api := tmpl.API
	if api.LogicalID != "HttpApi" {
		t.Errorf("API.LogicalID = %q, want HttpApi", api.LogicalID)
	}
	if api.DefaultAuthorizer != "SessionAuthorizer" {
		t.Errorf("DefaultAuthorizer = %q", api.DefaultAuthorizer)
	}
	type rk struct{ key, fn, auth, event string }
	var got []rk
	for _, r := range api.Routes {
		got = append(got, rk{r.Key(), r.FunctionLogicalID, r.Authorizer, r.EventName})
	}
	want := []rk{
		{"POST /login", "LoginFunction", "", "Login"},
		{"POST /logout", "ApiFunction", "SessionAuthorizer", "Logout"},
		{"DELETE /me", "ApiFunction", "SessionAuthorizer", "DeleteMe"},
		{"GET /me", "ApiFunction", "SessionAuthorizer", "Me"},
		{"POST /me/decrypt", "WechatFunction", "SessionAuthorizer", "Decrypt"},
		{"DELETE /me/phone", "WechatFunction", "SessionAuthorizer", "DeletePhone"},
		{"GET /me/phone", "WechatFunction", "SessionAuthorizer", "GetPhone"},
		{"POST /me/phone", "WechatFunction", "SessionAuthorizer", "BindPhone"},
		{"GET /me/profile", "ApiFunction", "SessionAuthorizer", "GetProfile"},
		{"PUT /me/profile", "ApiFunction", "SessionAuthorizer", "PutProfile"},
		{"GET /me/session-key", "WechatFunction", "SessionAuthorizer", "CheckSessionKey"},
		{"POST /me/session-key/reset", "WechatFunction", "SessionAuthorizer", "ResetSessionKey"},
		{"GET /me/sessions", "ApiFunction", "SessionAuthorizer", "ListSessions"},
		{"DELETE /me/sessions/{sid}", "ApiFunction", "SessionAuthorizer", "DeleteSession"},
		{"GET /session", "ApiFunction", "", "SessionState"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routes:\n got %v\nwant %v", got, want)
	}
}

func TestRepoTemplateAuthorizer(t *testing.T) {
	tmpl := loadRepo(t, appParams)
	a, ok := tmpl.API.Authorizers["SessionAuthorizer"]
	if !ok {
		t.Fatalf("no SessionAuthorizer in %v", tmpl.API.Authorizers)
	}
	want := Authorizer{Name: "SessionAuthorizer", FunctionLogicalID: "AuthorizerFunction",
		PayloadFormatVersion: "2.0", SimpleResponses: true}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("authorizer = %+v, want %+v (no identity sources, no caching)", a, want)
	}
}

func TestRepoTemplateFunctions(t *testing.T) {
	tmpl := loadRepo(t, map[string]string{"WeChatAppId": "wx1234567890abcdef", "LogLevel": "debug"})
	if len(tmpl.Functions) != 4 {
		t.Fatalf("functions: %v", keys(tmpl.Functions))
	}
	// Every function reads the whole session model (docs/design.md §3).
	sessions := func(m map[string]string) map[string]string {
		for k, v := range map[string]string{"SESSION_TTL": "336h", "SESSION_IDLE_TIMEOUT": "0", "SESSION_TOUCH_INTERVAL": "",
			"SESSION_MAX_PER_USER": "10", "SESSION_OVERFLOW": "evict_oldest", "SESSION_EXCLUSIVE": "none"} {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		id      string
		timeout time.Duration
		env     map[string]string
	}{
		{"LoginFunction", 10 * time.Second, sessions(map[string]string{
			"LOG_LEVEL": "debug", "SESSIONS_TABLE": "SessionsTable", "USERS_TABLE": "UsersTable", "DYNAMODB_ENDPOINT": "", "METRICS_NAMESPACE": "wxsession/local",
			"WECHAT_APPID": "wx1234567890abcdef", "WECHAT_APPS": "", "WECHAT_SECRET_PARAMETER": "/wxsession/wechat-secret", "WECHAT_SECRET": "",
			"WECHAT_API_BASE": "",
		})},
		{"AuthorizerFunction", 5 * time.Second, sessions(map[string]string{"LOG_LEVEL": "debug", "SESSIONS_TABLE": "SessionsTable", "DYNAMODB_ENDPOINT": "", "METRICS_NAMESPACE": "wxsession/local"})},
		{"ApiFunction", 10 * time.Second, sessions(map[string]string{"LOG_LEVEL": "debug", "SESSIONS_TABLE": "SessionsTable", "PROFILES_TABLE": "ProfilesTable", "USERS_TABLE": "UsersTable", "PHONES_TABLE": "PhonesTable", "DYNAMODB_ENDPOINT": "", "METRICS_NAMESPACE": "wxsession/local"})},
		{"WechatFunction", 10 * time.Second, sessions(map[string]string{
			"LOG_LEVEL": "debug", "SESSIONS_TABLE": "SessionsTable", "USERS_TABLE": "UsersTable", "DYNAMODB_ENDPOINT": "", "METRICS_NAMESPACE": "wxsession/local",
			"WECHAT_APPID": "wx1234567890abcdef", "WECHAT_APPS": "", "WECHAT_SECRET_PARAMETER": "/wxsession/wechat-secret", "WECHAT_SECRET": "",
			"WECHAT_API_BASE": "", "TOKENS_TABLE": "TokensTable",
			"PHONES_TABLE": "PhonesTable", "PHONE_UNIQUE": "false", "PHONE_LOOKUPS_PER_USER_PER_DAY": "5", "WATERMARK_MAX_AGE": "5m",
		})},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			f := tmpl.Functions[tt.id]
			if f.Timeout != tt.timeout {
				t.Errorf("Timeout = %v, want %v", f.Timeout, tt.timeout)
			}
			if !reflect.DeepEqual(f.Env, tt.env) {
				t.Errorf("Env:\n got %v\nwant %v", f.Env, tt.env)
			}
			if f.MemoryMB != 128 || f.Runtime != "provided.al2023" || f.Handler != "bootstrap" ||
				f.CodeURI != "." || f.BuildMethod != "makefile" || !reflect.DeepEqual(f.Architectures, []string{"arm64"}) {
				t.Errorf("function = %+v", f)
			}
		})
	}
}

func TestRepoTemplateTables(t *testing.T) {
	tmpl := loadRepo(t, appParams)
	for _, id := range []string{"SessionsTable", "UsersTable", "ProfilesTable", "AuditTable", "TokensTable", "PhonesTable"} {
		if _, ok := tmpl.Tables[id]; !ok {
			t.Fatalf("no %s in tables %v", id, keys(tmpl.Tables))
		}
	}
	s := tmpl.Tables["SessionsTable"]
	in := s.Input
	if aws.ToString(in.TableName) != "SessionsTable" || in.BillingMode != types.BillingModePayPerRequest || in.ProvisionedThroughput != nil {
		t.Errorf("sessions table = %+v", in)
	}
	if s.TTLAttribute != "purge_at" {
		t.Errorf("TTLAttribute = %q", s.TTLAttribute)
	}
	if len(in.KeySchema) != 1 || aws.ToString(in.KeySchema[0].AttributeName) != "sid" || in.KeySchema[0].KeyType != types.KeyTypeHash {
		t.Errorf("key schema = %+v", in.KeySchema)
	}
	if len(in.AttributeDefinitions) != 3 {
		t.Errorf("attribute definitions = %+v", in.AttributeDefinitions)
	}
	if len(in.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("GSIs = %+v", in.GlobalSecondaryIndexes)
	}
	g := in.GlobalSecondaryIndexes[0]
	if aws.ToString(g.IndexName) != "user-index" || aws.ToString(g.KeySchema[0].AttributeName) != "user" || aws.ToString(g.KeySchema[1].AttributeName) != "created_sid" ||
		g.Projection.ProjectionType != types.ProjectionTypeKeysOnly || g.ProvisionedThroughput != nil {
		t.Errorf("GSI = %+v", g)
	}
	if tmpl.Tables["UsersTable"].TTLAttribute != "" {
		t.Error("UsersTable has no TTL")
	}
}

func TestRepoTemplateResourceNames(t *testing.T) {
	tmpl, err := LoadOptions(repoTemplate(t), Options{
		Params:        appParams,
		ResourceNames: map[string]string{"SessionsTable": "dev-sessions"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := tmpl.Functions["AuthorizerFunction"].Env["SESSIONS_TABLE"]; got != "dev-sessions" {
		t.Errorf("SESSIONS_TABLE = %q", got)
	}
	if got := aws.ToString(tmpl.Tables["SessionsTable"].Input.TableName); got != "dev-sessions" {
		t.Errorf("TableName = %q", got)
	}
}

func TestRepoTemplateParameterErrors(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"missing appid", nil, "WeChatAppId has no Default and no override"},
		{"bad pattern", map[string]string{"WeChatAppId": "nope"}, "does not match AllowedPattern"},
		{"bad allowed value", map[string]string{"WeChatAppId": "wx1234567890", "LogLevel": "loud"}, "not one of AllowedValues"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(repoTemplate(t), tt.params)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func parse(t *testing.T, src string, o Options) (*Template, error) {
	t.Helper()
	return Parse([]byte(strings.ReplaceAll(src, "\t", "  ")), o)
}

const head = `
Transform: AWS::Serverless-2016-10-31
Parameters:
	Stage: {Type: String, Default: dev}
	Flag: {Type: String, Default: "yes"}
Conditions:
	IsProd: !Equals [!Ref Stage, prod]
	FlagOn: !And [!Equals [!Ref Flag, "yes"], !Not [!Condition IsProd]]
`

// TestUnsupportedIntrinsics: an intrinsic template.yaml does not use is an
// error naming it, not a half-evaluated value.
func TestUnsupportedIntrinsics(t *testing.T) {
	for _, expr := range []string{
		`!Join ["-", [a, b]]`, `!Select [0, [a]]`, `!Split [",", "a,b"]`,
		`!FindInMap [M, a, b]`, `!Base64 hi`, `!GetAZs ""`, `!ImportValue x`, `{"Fn::Length": [a]}`,
	} {
		t.Run(expr, func(t *testing.T) {
			src := head + `
Resources:
	Fn:
		Type: AWS::Serverless::Function
		Properties:
			Environment:
				Variables:
					X: ` + expr + "\n"
			_, err := parse(t, src, Options{})
			if err == nil || !strings.Contains(err.Error(), "is not supported by the local stack") {
				t.Fatalf("err = %v, want a clear refusal", err)
			}
		})
	}
}

func TestIntrinsics(t *testing.T) {
	src := head + `
Resources:
	Fn:
		Type: AWS::Serverless::Function
		Properties:
			Timeout: 7
			MemorySize: 256
			Environment:
				Variables:
					SUB: !Sub "${Stage}-${AWS::Region}-${Tbl}-${Tbl.Arn}-${!Literal}"
					SUBVARS: !Sub ["${a}/${b}", {a: !Ref Stage, b: x}]
					IF: !If [IsProd, prod-value, !Ref AWS::AccountId]
					FLAG: !If [FlagOn, on, off]
					GONE: !If [IsProd, x, !Ref AWS::NoValue]
					LONG: {"Fn::Sub": "${AWS::Partition}.${AWS::URLSuffix}"}
					LONGREF: {"Ref": Tbl}
					GETATT: {"Fn::GetAtt": [Fn, Arn]}
					NUM: 42
					BOOL: true
	Tbl:
		Type: AWS::DynamoDB::Table
		Properties:
			TableName: !Sub "${Stage}-table"
			AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: sk, AttributeType: N}]
			KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
			ProvisionedThroughput: {ReadCapacityUnits: 2, WriteCapacityUnits: 3}
			LocalSecondaryIndexes:
				- IndexName: lsi
					KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
					Projection: {ProjectionType: INCLUDE, NonKeyAttributes: [a, b]}
	ProdOnly:
		Type: AWS::Serverless::Function
		Condition: IsProd
		Properties: {}
	Simple:
		Type: AWS::Serverless::SimpleTable
`
	tmpl, err := parse(t, src, Options{Region: "ap-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tmpl.Functions["ProdOnly"]; ok {
		t.Error("ProdOnly's condition is false; it must not exist")
	}
	f := tmpl.Functions["Fn"]
	want := map[string]string{
		"SUB":     "dev-ap-east-1-dev-table-arn:aws:dynamodb:ap-east-1:123456789012:table/dev-table-${Literal}",
		"SUBVARS": "dev/x",
		"IF":      "123456789012",
		"FLAG":    "on",
		"LONG":    "aws.amazonaws.com",
		"LONGREF": "dev-table",
		"GETATT":  "arn:aws:lambda:ap-east-1:123456789012:function:Fn",
		"NUM":     "42",
		"BOOL":    "true",
	}
	if !reflect.DeepEqual(f.Env, want) {
		t.Errorf("env:\n got %v\nwant %v", f.Env, want)
	}
	if f.Timeout != 7*time.Second || f.MemoryMB != 256 || !reflect.DeepEqual(f.Architectures, []string{"x86_64"}) {
		t.Errorf("function = %+v", f)
	}
	tbl := tmpl.Tables["Tbl"].Input
	if aws.ToString(tbl.TableName) != "dev-table" || tbl.BillingMode != types.BillingModeProvisioned ||
		aws.ToInt64(tbl.ProvisionedThroughput.WriteCapacityUnits) != 3 || len(tbl.LocalSecondaryIndexes) != 1 ||
		!reflect.DeepEqual(tbl.LocalSecondaryIndexes[0].Projection.NonKeyAttributes, []string{"a", "b"}) {
		t.Errorf("table = %+v", tbl)
	}
	simple := tmpl.Tables["Simple"].Input
	if aws.ToString(simple.KeySchema[0].AttributeName) != "id" || simple.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("simple table = %+v", simple)
	}
}

func TestDefaultsAndImplicitAPI(t *testing.T) {
	src := `
Resources:
	Fn:
		Type: AWS::Serverless::Function
		Properties:
			Events:
				CatchAll: {Type: HttpApi}
				Proxy:
					Type: HttpApi
					Properties: {Method: any, Path: "/files/{proxy+}", TimeoutInMillis: 5000}
				Queue: {Type: SQS, Properties: {Queue: arn}}
`
	tmpl, err := parse(t, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := tmpl.Functions["Fn"]
	if f.Timeout != 3*time.Second || f.MemoryMB != 128 || len(f.Env) != 0 {
		t.Errorf("defaults: %+v", f)
	}
	api := tmpl.API
	if api.LogicalID != ImplicitAPIID || len(api.Routes) != 2 {
		t.Fatalf("api = %+v", api)
	}
	if api.Routes[0].Key() != "ANY /files/{proxy+}" || api.Routes[0].Timeout != 5*time.Second {
		t.Errorf("route 0 = %+v", api.Routes[0])
	}
	if api.Routes[1].Key() != "$default" {
		t.Errorf("route 1 = %+v", api.Routes[1])
	}
	if len(tmpl.Warnings) != 1 || !strings.Contains(tmpl.Warnings[0], "SQS") {
		t.Errorf("warnings = %q", tmpl.Warnings)
	}
}

func TestAuthorizerIdentityAndCache(t *testing.T) {
	src := `
Resources:
	Api:
		Type: AWS::Serverless::HttpApi
		Properties:
			Auth:
				Authorizers:
					A:
						FunctionArn: !Sub "${Authz.Arn}"
						AuthorizerPayloadFormatVersion: 2.0
						Identity: {Headers: [Authorization], QueryStrings: [t]}
					B:
						FunctionArn: !GetAtt Authz.Arn
						AuthorizerPayloadFormatVersion: "2.0"
						EnableSimpleResponses: true
						Identity: {Headers: [X], ReauthorizeEvery: 0}
	Authz: {Type: AWS::Serverless::Function}
	Fn:
		Type: AWS::Serverless::Function
		Properties:
			Events:
				E:
					Type: HttpApi
					Properties: {ApiId: !Ref Api, Method: get, Path: /x, Auth: {Authorizer: B}}
`
	tmpl, err := parse(t, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := tmpl.API.Authorizers["A"]
	if a.FunctionLogicalID != "Authz" || a.PayloadFormatVersion != "2.0" || a.SimpleResponses ||
		!reflect.DeepEqual(a.IdentitySources, []string{"$request.header.Authorization", "$request.querystring.t"}) ||
		a.CacheTTL != 300*time.Second {
		t.Errorf("A = %+v", a)
	}
	if b := tmpl.API.Authorizers["B"]; b.CacheTTL != 0 || !b.SimpleResponses {
		t.Errorf("B = %+v", b)
	}
	if r := tmpl.API.Routes[0]; r.Authorizer != "B" || r.Key() != "GET /x" {
		t.Errorf("route = %+v", r)
	}
	if len(tmpl.Warnings) != 1 || !strings.Contains(tmpl.Warnings[0], "quote it") {
		t.Errorf("warnings = %q", tmpl.Warnings)
	}
}

func TestErrors(t *testing.T) {
	fn := func(events string) string {
		return `
Resources:
	Api:
		Type: AWS::Serverless::HttpApi
		Properties:
			Auth:
				DefaultAuthorizer: A
				Authorizers:
					A: {FunctionArn: !GetAtt Fn.Arn, AuthorizerPayloadFormatVersion: "2.0"}
	Fn:
		Type: AWS::Serverless::Function
		Properties:
			Events:
` + events
	}
	tests := []struct {
		name, src, want string
	}{
		{"unknown tag", "Resources: {X: !Nope 1}", "unknown YAML tag !Nope"},
		{"bad getatt", "Resources: {X: {Type: T, Properties: {P: !GetAtt nodot}}}", "want LogicalId.Attribute"},
		{"rest api event", fn("\t\t\t\tE: {Type: Api, Properties: {Method: get, Path: /x}}\n"), "REST API"},
		{"payload 1.0", fn("\t\t\t\tE: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: get, Path: /x, PayloadFormatVersion: \"1.0\"}}\n"), "only 2.0"},
		{"unknown authorizer", fn("\t\t\t\tE: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: get, Path: /x, Auth: {Authorizer: Z}}}\n"), "Z is not an authorizer"},
		{"iam", fn("\t\t\t\tE: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: get, Path: /x, Auth: {Authorizer: AWS_IAM}}}\n"), "AWS_IAM"},
		{"duplicate route", fn("\t\t\t\tE: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: get, Path: /x}}\n\t\t\t\tF: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: GET, Path: /x}}\n"), "defined twice"},
		{"two apis", fn("\t\t\t\tE: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: get, Path: /x}}\n\t\t\t\tF: {Type: HttpApi, Properties: {Method: get, Path: /y}}\n"), "2 HTTP APIs"},
		{"method without path", fn("\t\t\t\tE: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: get}}\n"), "both Method and Path"},
		{"greedy not last", fn("\t\t\t\tE: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: get, Path: \"/{p+}/x\"}}\n"), "last segment"},
		{"unknown ref", "Resources: {F: {Type: AWS::Serverless::Function, Properties: {Environment: {Variables: {X: !Ref Nope}}}}}", "Ref Nope: no such parameter or resource"},
		{"unsupported fn", "Resources: {F: {Type: AWS::Serverless::Function, Properties: {Environment: {Variables: {X: !ImportValue y}}}}}", "Fn::ImportValue is not supported"},
		{"jwt", `
Resources:
	Api:
		Type: AWS::Serverless::HttpApi
		Properties: {Auth: {Authorizers: {J: {JwtConfiguration: {}, IdentitySource: x}}}}
`, "JWT"},
		{"authorizer fn not in template", `
Resources:
	Api:
		Type: AWS::Serverless::HttpApi
		Properties: {Auth: {Authorizers: {A: {FunctionArn: "arn:aws:lambda:us-east-1:1:function:x", AuthorizerPayloadFormatVersion: "2.0"}}}}
`, "not the ARN of a function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.src, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
