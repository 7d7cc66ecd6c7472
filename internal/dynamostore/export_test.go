package dynamostore

// SetPageSize limits GSI query pages so tests can force pagination.
func SetPageSize(s *Store, n int32) { s.pageSize = n }
