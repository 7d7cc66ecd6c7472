package dynalite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// Table is a table to create: the CreateTable input and, optionally, the
// attribute to enable TimeToLive on.
type Table struct {
	// Input is passed to CreateTable as is.
	Input dynamodb.CreateTableInput
	// TTLAttribute, when set, is enabled as the table's TimeToLive
	// attribute after creation.
	TTLAttribute string
}

// activeWait bounds how long CreateTables waits for one table (and its
// indexes) to become ACTIVE when ctx has no earlier deadline.
const activeWait = 30 * time.Second

// CreateTables creates the tables and waits until they and their global
// secondary indexes are ACTIVE. It is idempotent: a table that already
// exists (ResourceInUseException) is accepted as is, without comparing its
// schema. TimeToLive is then enabled where requested; dynalite refuses the
// TimeToLive API, which is logged at WARN and not an error, since readers
// check expiry themselves.
func CreateTables(ctx context.Context, c *dynamodb.Client, tables []Table, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	for i := range tables {
		t := &tables[i]
		name := aws.ToString(t.Input.TableName)
		if name == "" {
			return fmt.Errorf("dynalite: table %d has no TableName", i)
		}
		in := t.Input
		_, err := c.CreateTable(ctx, &in)
		var inUse *types.ResourceInUseException
		switch {
		case err == nil:
			logger.Info("table created", "table", name)
		case errors.As(err, &inUse):
			logger.Debug("table already exists", "table", name)
		default:
			return fmt.Errorf("dynalite: create table %s: %w", name, err)
		}
		if err := waitActive(ctx, c, name); err != nil {
			return err
		}
		if t.TTLAttribute != "" {
			enableTTL(ctx, c, name, t.TTLAttribute, logger)
		}
	}
	return nil
}

func waitActive(ctx context.Context, c *dynamodb.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, activeWait)
	defer cancel()
	for {
		out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("dynalite: describe table %s: %w", name, err)
		}
		if active(out.Table) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dynalite: table %s not ACTIVE: %w", name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func active(t *types.TableDescription) bool {
	if t == nil || t.TableStatus != types.TableStatusActive {
		return false
	}
	for _, g := range t.GlobalSecondaryIndexes {
		if g.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}

func enableTTL(ctx context.Context, c *dynamodb.Client, table, attr string, logger *slog.Logger) {
	if d, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)}); err == nil &&
		d.TimeToLiveDescription != nil &&
		d.TimeToLiveDescription.TimeToLiveStatus == types.TimeToLiveStatusEnabled &&
		aws.ToString(d.TimeToLiveDescription.AttributeName) == attr {
		return
	}
	_, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attr),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		code := ""
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) {
			code = apiErr.ErrorCode()
		}
		logger.Warn("TimeToLive not enabled (the server refused it; readers still check expiry)",
			"table", table, "attribute", attr, "code", code, "err", err)
		return
	}
	logger.Info("TimeToLive enabled", "table", table, "attribute", attr)
}

// RequestTables returns the tables a DynamoDB JSON request body names
// (TableName, or the keys of RequestItems for batch operations), sorted.
// Counting and fault-injecting proxies in front of the local DynamoDB use it
// to attribute requests to tables.
func RequestTables(body []byte) []string {
	var req struct {
		TableName    string                     `json:"TableName"`
		RequestItems map[string]json.RawMessage `json:"RequestItems"`
	}
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	var out []string
	if req.TableName != "" {
		out = append(out, req.TableName)
	}
	for t := range req.RequestItems {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
