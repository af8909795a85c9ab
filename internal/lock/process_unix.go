//go:build unix

package lock

import (
	"errors"
	"syscall"
)

// processAlive sends signal 0 (kill(2)): no error or EPERM means the
// process exists (EPERM: another user's); ESRCH means it does not.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}
