package fence

// maxNameLen is the longest lock name, in bytes (api.MaxLockNameLen).
const maxNameLen = 256

// validateName refuses what is not a lock name, with the rules of
// api.ValidateLockName (this package may not import api; a test holds the
// two to the same answers): 1 to 256 bytes of ASCII letters, digits and
// . _ - : /, in '/'-separated segments none of which is empty, "." or "..".
// Nothing else can carry a token, and the rule bounds a Guard's entries.
func validateName(name string) error {
	if name == "" {
		return invalidf("lock name is empty")
	}
	if len(name) > maxNameLen {
		return invalidf("lock name is %d bytes long: at most %d are allowed", len(name), maxNameLen)
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			if !nameByte(name[i]) {
				return invalidf("lock name %q has the character %q at byte %d: only ASCII letters, digits and . _ - : / are allowed", clip(name), name[i], i)
			}
			continue
		}
		switch seg := name[start:i]; seg {
		case "":
			return invalidf("lock name %q has an empty segment at byte %d: no leading or trailing '/', no \"//\"", clip(name), start)
		case ".", "..":
			return invalidf("lock name %q has the segment %q at byte %d", clip(name), seg, start)
		}
		start = i + 1
	}
	return nil
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == ':' || c == '/'
}

// clip shortens s for a message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
