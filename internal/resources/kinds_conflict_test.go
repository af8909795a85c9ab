package resources

import "github.com/deploybot/deploybot/internal/stack"

// conflictAddresses are the kinds TestNotOursIsAConflict covers: every kind
// whose ownership is a tag (scaling policies take no tags).
var conflictAddresses = []string{
	stack.AddrLogGroup, stack.AddrExecutionRole, stack.AddrSecret,
}
