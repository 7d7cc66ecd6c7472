package main

import "testing"

// TestRunRefusesBadDynamoDBEndpoint: flag mistakes about the external
// DynamoDB endpoint stop wxlocal with status 2 before anything starts.
func TestRunRefusesBadDynamoDBEndpoint(t *testing.T) {
	for _, args := range [][]string{
		{"-dynamodb-endpoint", "127.0.0.1:8000"},
		{"-dynamodb-endpoint", "ftp://127.0.0.1:8000"},
		{"-dynamodb-endpoint", "http://127.0.0.1:8000/tables"},
		{"-dynamodb-endpoint", "http://127.0.0.1:8000", "-reset"},
	} {
		if got := run(args); got != 2 {
			t.Errorf("run(%q) = %d, want 2", args, got)
		}
	}
}
