//go:build !unix

package raftnode

import "errors"

// diskFree is not implemented here: no nospace alarm is raised.
func diskFree(string) (uint64, error) {
	return 0, errors.New("free disk space: not supported on this system")
}
