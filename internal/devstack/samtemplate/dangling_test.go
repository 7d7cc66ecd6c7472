package samtemplate

import (
	"strings"
	"testing"
)

// TestDanglingRefs: a reference, anywhere in Resources or Outputs, to a
// name the template does not define is reported as a warning (the local
// stack runs such a template, sam deploy refuses it: the business guide's
// OrdersFunction without its OrdersTable); defined names, pseudo
// parameters, SAM's generated names and !Sub's own variables are not.
func TestDanglingRefs(t *testing.T) {
	const base = `Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  HttpApi:
    Type: AWS::Serverless::HttpApi
  OrdersFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties:
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
      Events:
        ListOrders:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Method: GET, Path: /orders}
      Policies:
%s
`
	tests := []struct {
		name     string
		policies string
		extra    string
		want     []string // substrings, one warning each
	}{
		{"undefined table", "        - DynamoDBReadPolicy: {TableName: !Ref OrdersTable}", "",
			[]string{"resource OrdersFunction: !Ref OrdersTable names no parameter or resource"}},
		{"defined table", "        - DynamoDBReadPolicy: {TableName: !Ref OrdersTable}",
			"  OrdersTable:\n    Type: AWS::DynamoDB::Table\n    Properties: {KeySchema: [{AttributeName: openid, KeyType: HASH}], AttributeDefinitions: [{AttributeName: openid, AttributeType: S}], BillingMode: PAY_PER_REQUEST}\n", nil},
		{"GetAtt and Sub", "        - Statement: [{Effect: Allow, Action: 'dynamodb:*', Resource: [!GetAtt Missing.Arn, !Sub '${AWS::Partition}:${Stage}:${Gone.Arn}:${!Literal}:${Stage}', {'Fn::Sub': ['${Var}', {Var: !Ref AlsoGone}]}]}]", "",
			[]string{"!GetAtt Missing", "${} Gone", "!Ref AlsoGone"}},
		{"generated names", "        - Statement: [{Effect: Allow, Action: 'lambda:*', Resource: [!Ref OrdersFunctionRole, !Ref HttpApiApiGatewayDefaultStage, !Ref ServerlessHttpApi, !Sub '${OrdersFunction.Arn}']}]", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(base, "%s", tc.policies, 1) + tc.extra
			tmpl, err := Parse([]byte(src), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var dangling []string
			for _, w := range tmpl.Warnings {
				if strings.Contains(w, "names no parameter or resource") {
					dangling = append(dangling, w)
				}
			}
			if len(dangling) != len(tc.want) {
				t.Fatalf("warnings %q, want %d about %q", dangling, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(dangling[i], w) {
					t.Errorf("warning %q, want %q", dangling[i], w)
				}
			}
		})
	}
	t.Run("the repository's template", func(t *testing.T) {
		for _, w := range loadRepo(t, appParams).Warnings {
			if strings.Contains(w, "names no parameter or resource") {
				t.Errorf("template.yaml: %s", w)
			}
		}
	})
}
