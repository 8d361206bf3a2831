package nft

import (
	"fmt"
	"strings"
	"syscall"
)

// BatchError is the kernel's refusal of a batch: nothing in it was
// applied. It names the objects the kernel refused, first one first.
type BatchError struct {
	// Errors are the refused objects, in batch order: "rule
	// \"zone lan input: allow ssh\" (chain input): operation not
	// supported".
	Errors []string
	// Errno is the first refusal's error number.
	Errno syscall.Errno
}

func (e *BatchError) Error() string {
	if len(e.Errors) == 0 {
		return "kernel rejected the batch"
	}
	s := "kernel rejected the batch: " + e.Errors[0]
	if n := len(e.Errors) - 1; n > 0 {
		shown := e.Errors[1:min(len(e.Errors), 4)]
		s += fmt.Sprintf("; %d more error(s): %s", n, strings.Join(shown, "; "))
		if n > len(shown) {
			s += "; ..."
		}
	}
	return s
}

// Unwrap returns the first refusal's error number, for errors.Is.
func (e *BatchError) Unwrap() error { return e.Errno }
