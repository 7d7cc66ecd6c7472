package admin

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/samenv"
	"github.com/wxsession/wxsession/internal/dynamoclient"
)

// Logical ids of the template's tables that wxadmin works on (template.yaml
// is the one owner of their schemas; the local stack names each table by
// its logical id).
const (
	TableSessions = "SessionsTable"
	TableUsers    = "UsersTable"
	TableProfiles = "ProfilesTable"
	TablePhones   = "PhonesTable"
	TableAudit    = "AuditTable"
	// AdminLogGroup is the log group of a deployed stack that receives
	// operator actions (the local stack has none).
	AdminLogGroup = "AdminLogGroup"
)

// requiredTables are the tables every command needs; a stack or local
// stack without one of them is refused before anything is done.
var requiredTables = []string{TableSessions, TableUsers, TableProfiles, TablePhones, TableAudit}

// What `make dev` serves (internal/devstack/stack and wechatemu; repeated
// here so that the operator's tool does not link the local stack, and
// checked equal by a test).
const (
	appIDParameter  = "WeChatAppId"
	localDynamoAddr = "127.0.0.1:8000"
	localDefaultApp = "wx0000000000local"
)

// Target is what the commands act on: a DynamoDB client, the physical table
// names by logical id, the appid and the operator's name for the audit
// trail.
type Target struct {
	DB *dynamodb.Client
	// Logs and AdminLogGroup are set for a deployed stack: operator
	// actions are also written there.
	Logs          *cloudwatchlogs.Client
	AdminLogGroup string
	Tables        map[string]string
	AppID         string
	Operator      string
	// Where describes the target for messages ("local stack at URL",
	// "stack NAME in REGION").
	Where string
}

// localEndpoint finds the DynamoDB endpoint of a running `make dev`:
// -dynamodb-endpoint, else DYNAMODB_ENDPOINT, else the one `make dev`
// wrote to .wxlocal/sam-env.json in the repository root at or above dir
// (host.docker.internal read as 127.0.0.1), else the stack's default
// listener. It returns the endpoint and where it came from.
func localEndpoint(flagValue, dir string, getenv func(string) string) (endpoint, source string) {
	if flagValue != "" {
		return flagValue, "-dynamodb-endpoint"
	}
	if e := getenv(config.VarDynamoDBEndpoint); e != "" {
		return e, config.VarDynamoDBEndpoint
	}
	for d := dir; d != ""; {
		path := filepath.Join(d, filepath.FromSlash(samenv.File))
		if data, err := os.ReadFile(path); err == nil {
			if e, ok := samenv.DynamoEndpoint(data); ok {
				return e, path
			}
		}
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			break // the repository root: no file further up is make dev's
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	return "http://" + localDynamoAddr, "the default"
}

// resolveLocal targets a running `make dev`: its DynamoDB endpoint
// (localEndpoint), tables named by their logical ids, the emulator's appid
// unless -appid says otherwise, and the operator's OS user name.
func resolveLocal(ctx context.Context, endpoint, appID string, getenv func(string) string) (*Target, error) {
	wd, _ := os.Getwd()
	endpoint, source := localEndpoint(endpoint, wd, getenv)
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-dynamodb-endpoint %q is not an http(s) URL", endpoint)
	}
	// dynamoclient.New, not NewFromDefaultConfig: the local stack needs
	// nothing from the operator's AWS configuration (an AWS_PROFILE no
	// file defines must not stop -local), and signs with dummy credentials.
	db, _, err := dynamoclient.New(ctx, func(k string) string {
		switch k {
		case config.VarDynamoDBEndpoint:
			return endpoint
		case "AWS_REGION":
			return "us-east-1"
		}
		return ""
	})
	if err != nil {
		return nil, err
	}
	tables := map[string]string{}
	for _, id := range requiredTables {
		tables[id] = id
	}
	t := &Target{DB: db, Tables: tables, AppID: appID, Where: "local stack (DynamoDB at " + endpoint + ")"}
	if t.AppID == "" {
		t.AppID = localDefaultApp
	}
	if err := t.checkTables(ctx); err != nil {
		return nil, fmt.Errorf("%w (tried DynamoDB at %s, from %s: is `make dev` running? Pass its endpoint with -dynamodb-endpoint http://127.0.0.1:PORT)", err, endpoint, source)
	}
	t.Operator = localOperator(getenv)
	return t, nil
}

func localOperator(getenv func(string) string) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if n := getenv("USER"); n != "" {
		return n
	}
	return "unknown"
}

// resolveStack targets a deployed stack with the operator's AWS
// credentials: the tables from the stack's resources, the appid from its
// WeChatAppId parameter unless -appid says otherwise, and the operator's
// identity (the ARN STS reports) for the audit trail.
func resolveStack(ctx context.Context, name, region, appID string, getenv func(string) string) (*Target, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: pass -region or set AWS_REGION")
	}
	cf := cloudformation.NewFromConfig(cfg)
	st, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("stack %s in %s: %w", name, cfg.Region, err)
	}
	if len(st.Stacks) != 1 {
		return nil, fmt.Errorf("stack %s in %s: not found", name, cfg.Region)
	}
	if appID == "" {
		for _, p := range st.Stacks[0].Parameters {
			if aws.ToString(p.ParameterKey) == appIDParameter {
				appID = aws.ToString(p.ParameterValue)
			}
		}
	}
	if appID == "" {
		return nil, fmt.Errorf("stack %s has no %s parameter: pass -appid", name, appIDParameter)
	}
	tables, logGroups := map[string]string{}, map[string]string{}
	p := cloudformation.NewListStackResourcesPaginator(cf, &cloudformation.ListStackResourcesInput{StackName: aws.String(name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("stack %s resources: %w", name, err)
		}
		for _, r := range page.StackResourceSummaries {
			if r.ResourceStatus == cftypes.ResourceStatusDeleteComplete {
				continue
			}
			switch aws.ToString(r.ResourceType) {
			case "AWS::DynamoDB::Table":
				tables[aws.ToString(r.LogicalResourceId)] = aws.ToString(r.PhysicalResourceId)
			case "AWS::Logs::LogGroup":
				logGroups[aws.ToString(r.LogicalResourceId)] = aws.ToString(r.PhysicalResourceId)
			}
		}
	}
	var missing []string
	for _, id := range requiredTables {
		if tables[id] == "" {
			missing = append(missing, id)
		}
	}
	if logGroups[AdminLogGroup] == "" {
		missing = append(missing, AdminLogGroup)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("stack %s has no %s: is it a wxsession stack, deployed from this version of template.yaml?", name, strings.Join(missing, ", "))
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("AWS identity: %w", err)
	}
	env := func(k string) string {
		if k == "AWS_REGION" {
			return cfg.Region
		}
		if k == config.VarDynamoDBEndpoint {
			return ""
		}
		return getenv(k)
	}
	db, _, err := dynamoclient.NewFromDefaultConfig(ctx, env)
	if err != nil {
		return nil, err
	}
	return &Target{DB: db, Tables: tables, AppID: appID, Operator: aws.ToString(id.Arn), Where: "stack " + name + " in " + cfg.Region,
		Logs: cloudwatchlogs.NewFromConfig(cfg), AdminLogGroup: logGroups[AdminLogGroup]}, nil
}

// checkTables fails when a required table does not exist.
func (t *Target) checkTables(ctx context.Context) error {
	var missing []string
	for _, id := range requiredTables {
		_, err := t.DB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.Tables[id])})
		var nf *dbtypes.ResourceNotFoundException
		switch {
		case errors.As(err, &nf):
			missing = append(missing, t.Tables[id])
		case err != nil:
			return fmt.Errorf("%s: %w", t.Where, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s has no table %s", t.Where, strings.Join(missing, ", "))
	}
	return nil
}
